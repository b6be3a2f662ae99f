//! The Packages endpoints for containers, in their three families: `/orgs/{org}/...`,
//! `/users/{user}/...` and `/user/...` (the token's own user). Names arrive percent-encoded
//! once and are decoded once by the router, so `a%2Fb` finds `a/b` while `a/b` matches no route
//! and `a%252Fb` names a package that does not exist: both 404, as on GitHub. An Actions token
//! cannot list (`400 Invalid argument.`) but reads packages granted to its repository.

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use serde_json::Value;

use super::pagination::{Page, Query};
use super::server::{
    Refusal, Shared, error_response, json_response, not_accessible_by_integration, not_found,
    requires_authentication,
};
use super::state::{self, Caller, Owner, Package, State as World};
use super::{OwnerKind, TokenKind, shapes};

/// The package types GitHub knows; only containers exist in the emulator.
const PACKAGE_TYPES: [&str; 6] = ["npm", "maven", "rubygems", "docker", "nuget", "container"];

/// Which URL family a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Org,
    User,
    Me,
}

/// Which operation, for the documentation link in error bodies.
#[derive(Debug, Clone, Copy)]
enum Operation {
    List,
    Get,
    Versions,
    Version,
}

fn docs(family: Family, operation: Operation) -> String {
    let anchor = match (operation, family) {
        (Operation::List, Family::Org) => "list-packages-for-an-organization",
        (Operation::List, Family::User) => "list-packages-for-a-user",
        (Operation::List, Family::Me) => "list-packages-for-the-authenticated-users-namespace",
        (Operation::Get, Family::Org) => "get-a-package-for-an-organization",
        (Operation::Get, Family::User) => "get-a-package-for-a-user",
        (Operation::Get, Family::Me) => "get-a-package-for-the-authenticated-user",
        (Operation::Versions, Family::Org) => {
            "list-package-versions-for-a-package-owned-by-an-organization"
        }
        (Operation::Versions, Family::User) => {
            "list-package-versions-for-a-package-owned-by-a-user"
        }
        (Operation::Versions, Family::Me) => {
            "list-package-versions-for-a-package-owned-by-the-authenticated-user"
        }
        (Operation::Version, Family::Org) => "get-a-package-version-for-an-organization",
        (Operation::Version, Family::User) => "get-a-package-version-for-a-user",
        (Operation::Version, Family::Me) => "get-a-package-version-for-the-authenticated-user",
    };
    format!("https://docs.github.com/rest/packages/packages#{anchor}")
}

/// A JSON list answer with its `Link` header, if it has more than one page.
fn page_response(items: Vec<Value>, link: Option<String>) -> Response {
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    if let Some(value) = link.and_then(|link| HeaderValue::from_str(&link).ok()) {
        response.headers_mut().insert("link", value);
    }
    response
}

/// The token kind of an authenticated caller, or the 401 an anonymous one gets.
fn token_kind(caller: &Caller, docs: &str) -> Result<TokenKind, Refusal> {
    match caller {
        Caller::Anonymous => Err(requires_authentication(docs).into()),
        Caller::Token { kind, .. } => Ok(kind.clone()),
    }
}

/// The account a request is about: the named one in its family, or the token's own user.
/// `Ok(None)` means the token has no user of its own (a plain PAT on `/user/...`).
fn account<'a>(
    world: &'a World,
    family: Family,
    owner: Option<&str>,
    kind: &TokenKind,
    docs: &str,
) -> Result<Option<&'a Owner>, Refusal> {
    let wanted = match family {
        Family::Org => OwnerKind::Organization,
        Family::User | Family::Me => OwnerKind::User,
    };
    let login = match (family, owner, kind) {
        (Family::Me, _, TokenKind::Actions { .. }) => {
            return Err(not_accessible_by_integration(docs).into());
        }
        (Family::Me, _, TokenKind::UserPat { login }) => login.as_str(),
        (Family::Me, _, TokenKind::Pat) => return Ok(None),
        (_, Some(login), _) => login,
        (_, None, _) => return Err(not_found(docs).into()),
    };
    match world.owner(login) {
        Some(owner) if owner.kind == wanted => Ok(Some(owner)),
        _ if family == Family::Me => Ok(None),
        _ => Err(not_found(docs).into()),
    }
}

/// The `package` JSON of one package, with its linked repository.
fn package_json(world: &World, owner: &Owner, package: &Package) -> Value {
    let repository = package.repository.as_deref().and_then(|full_name| {
        let repository = world.repository(full_name)?;
        let repo_owner = world.owner(full_name.split_once('/')?.0)?;
        Some((repository, repo_owner))
    });
    shapes::package(&world.base_url, owner, package, repository)
}

async fn list(
    shared: Shared,
    caller: Caller,
    uri: Uri,
    family: Family,
    owner: Option<String>,
) -> Response {
    let docs = docs(family, Operation::List);
    let kind = match token_kind(&caller, &docs) {
        Ok(kind) => kind,
        Err(refusal) => return refusal.into_response(),
    };
    if let TokenKind::Actions { .. } = kind {
        // What GitHub really answers the Actions GITHUB_TOKEN here.
        if family != Family::Me {
            return error_response(StatusCode::BAD_REQUEST, "Invalid argument.", &docs);
        }
    }

    let query = Query::parse(uri.query().unwrap_or(""));
    let package_type = query.get("package_type").unwrap_or_default();
    if !PACKAGE_TYPES.contains(&package_type.as_str()) {
        let message = "Invalid argument. `package_type` is required: one of npm, maven, \
                       rubygems, docker, nuget, container.";
        return error_response(StatusCode::BAD_REQUEST, message, &docs);
    }
    let visibility = query.get("visibility");
    if let Some(visibility) = &visibility
        && !["public", "private", "internal"].contains(&visibility.as_str())
    {
        let message = "Invalid argument. `visibility` must be public, private or internal.";
        return error_response(StatusCode::BAD_REQUEST, message, &docs);
    }
    let page = Page::from_query(&query);
    if page.page.saturating_mul(page.per_page) > 10_000 {
        let message = "The value of `per_page` multiplied by `page` cannot be greater than 10000.";
        return error_response(StatusCode::BAD_REQUEST, message, &docs);
    }

    let world = state::lock(&shared);
    let owner = match account(&world, family, owner.as_deref(), &kind, &docs) {
        Ok(owner) => owner,
        Err(refusal) => return refusal.into_response(),
    };
    let packages: Vec<&Package> = match owner {
        Some(owner) if package_type == "container" => world
            .packages_of(&owner.login)
            .into_iter()
            .filter(|p| {
                visibility
                    .as_deref()
                    .is_none_or(|v| p.visibility.as_str() == v)
            })
            .collect(),
        _ => Vec::new(),
    };
    let items = page
        .slice(&packages)
        .iter()
        .filter_map(|package| Some(package_json(&world, owner?, package)))
        .collect();
    let link = page.link(&world.base_url, uri.path(), &query, packages.len());
    page_response(items, link)
}

/// Finds the package a request names, applying every rule that hides it.
fn find<'a>(
    world: &'a World,
    caller: &Caller,
    family: Family,
    owner: Option<&str>,
    package_type: &str,
    name: &str,
    docs: &str,
) -> Result<(&'a Owner, &'a Package), Refusal> {
    let kind = token_kind(caller, docs)?;
    let owner = account(world, family, owner, &kind, docs)?.ok_or_else(|| not_found(docs))?;
    if package_type != "container" {
        return Err(not_found(docs).into());
    }
    let package = world
        .package(&owner.login, name)
        .ok_or_else(|| not_found(docs))?;
    if !World::can_read(&kind, package) {
        return Err(not_found(docs).into());
    }
    Ok((owner, package))
}

async fn get(
    shared: Shared,
    caller: Caller,
    family: Family,
    owner: Option<String>,
    (package_type, name): (String, String),
) -> Response {
    let docs = docs(family, Operation::Get);
    let world = state::lock(&shared);
    match find(
        &world,
        &caller,
        family,
        owner.as_deref(),
        &package_type,
        &name,
        &docs,
    ) {
        Ok((owner, package)) => {
            json_response(StatusCode::OK, &package_json(&world, owner, package))
        }
        Err(refusal) => refusal.into_response(),
    }
}

async fn versions(
    shared: Shared,
    caller: Caller,
    uri: Uri,
    family: Family,
    owner: Option<String>,
    (package_type, name): (String, String),
) -> Response {
    let docs = docs(family, Operation::Versions);
    let world = state::lock(&shared);
    let (owner, package) = match find(
        &world,
        &caller,
        family,
        owner.as_deref(),
        &package_type,
        &name,
        &docs,
    ) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };

    let query = Query::parse(uri.query().unwrap_or(""));
    let page = Page::from_query(&query);
    // Deleted versions are never kept, so `state=deleted` lists nothing.
    let versions = match query.get("state").as_deref() {
        Some("deleted") => Vec::new(),
        _ => package.versions_newest_first(),
    };
    let items = page
        .slice(&versions)
        .iter()
        .map(|version| shapes::package_version(&world.base_url, owner, package, version))
        .collect();
    let link = page.link(&world.base_url, uri.path(), &query, versions.len());
    page_response(items, link)
}

async fn version(
    shared: Shared,
    caller: Caller,
    family: Family,
    owner: Option<String>,
    (package_type, name, id): (String, String, String),
) -> Response {
    let docs = docs(family, Operation::Version);
    let world = state::lock(&shared);
    let (owner, package) = match find(
        &world,
        &caller,
        family,
        owner.as_deref(),
        &package_type,
        &name,
        &docs,
    ) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let wanted = id.parse::<u64>().ok();
    match package
        .versions
        .iter()
        .find(|version| Some(version.id) == wanted)
    {
        Some(version) => {
            let body = shapes::package_version(&world.base_url, owner, package, version);
            json_response(StatusCode::OK, &body)
        }
        None => not_found(&docs),
    }
}

// The route handlers: thin adapters from each URL family to the shared logic above.

type Who = (State<Shared>, Extension<Caller>);

pub(crate) async fn list_for_org(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Path(owner): Path<String>,
) -> Response {
    list(shared, caller, uri, Family::Org, Some(owner)).await
}

pub(crate) async fn list_for_user(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Path(owner): Path<String>,
) -> Response {
    list(shared, caller, uri, Family::User, Some(owner)).await
}

pub(crate) async fn list_for_me(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
) -> Response {
    list(shared, caller, uri, Family::Me, None).await
}

pub(crate) async fn get_for_org(
    (State(shared), Extension(caller)): Who,
    Path((owner, kind, name)): Path<(String, String, String)>,
) -> Response {
    get(shared, caller, Family::Org, Some(owner), (kind, name)).await
}

pub(crate) async fn get_for_user(
    (State(shared), Extension(caller)): Who,
    Path((owner, kind, name)): Path<(String, String, String)>,
) -> Response {
    get(shared, caller, Family::User, Some(owner), (kind, name)).await
}

pub(crate) async fn get_for_me(
    (State(shared), Extension(caller)): Who,
    Path((kind, name)): Path<(String, String)>,
) -> Response {
    get(shared, caller, Family::Me, None, (kind, name)).await
}

pub(crate) async fn versions_for_org(
    (State(shared), Extension(caller)): Who,
    uri: Uri,
    Path((owner, kind, name)): Path<(String, String, String)>,
) -> Response {
    versions(shared, caller, uri, Family::Org, Some(owner), (kind, name)).await
}

pub(crate) async fn versions_for_user(
    (State(shared), Extension(caller)): Who,
    uri: Uri,
    Path((owner, kind, name)): Path<(String, String, String)>,
) -> Response {
    versions(shared, caller, uri, Family::User, Some(owner), (kind, name)).await
}

pub(crate) async fn versions_for_me(
    (State(shared), Extension(caller)): Who,
    uri: Uri,
    Path((kind, name)): Path<(String, String)>,
) -> Response {
    versions(shared, caller, uri, Family::Me, None, (kind, name)).await
}

pub(crate) async fn version_for_org(
    (State(shared), Extension(caller)): Who,
    Path((owner, kind, name, id)): Path<(String, String, String, String)>,
) -> Response {
    version(shared, caller, Family::Org, Some(owner), (kind, name, id)).await
}

pub(crate) async fn version_for_user(
    (State(shared), Extension(caller)): Who,
    Path((owner, kind, name, id)): Path<(String, String, String, String)>,
) -> Response {
    version(shared, caller, Family::User, Some(owner), (kind, name, id)).await
}

pub(crate) async fn version_for_me(
    (State(shared), Extension(caller)): Who,
    Path((kind, name, id)): Path<(String, String, String)>,
) -> Response {
    version(shared, caller, Family::Me, None, (kind, name, id)).await
}
