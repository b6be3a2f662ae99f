//! The JSON objects GitHub answers with (`simple-user`, `public-user`, `minimal-repository`,
//! `package`, `package-version`, `basic-error`), built field by field as GitHub's OpenAPI
//! description requires them. URLs point at the emulator itself, so nothing links outside.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::OwnerKind;
use super::state::{Owner, Package, Repository, Version, github_time};

/// Everything but RFC 3986's unreserved characters is encoded, so `/` becomes `%2F`.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment (a package name with slashes stays one segment).
pub(crate) fn encode_segment(text: &str) -> String {
    utf8_percent_encode(text, PATH_SEGMENT).to_string()
}

/// GitHub's error body: `{"message", "documentation_url", "status"}`.
pub(crate) fn error_body(status: u16, message: &str, documentation_url: &str) -> Value {
    json!({
        "message": message,
        "documentation_url": documentation_url,
        "status": status.to_string(),
    })
}

/// GitHub's global node id: base64 of `0<length of Type>:<Type><id>`.
fn node_id(kind: &str, id: u64) -> String {
    STANDARD.encode(format!("0{}:{kind}{id}", kind.len()))
}

fn kind_name(kind: OwnerKind) -> &'static str {
    match kind {
        OwnerKind::Organization => "Organization",
        OwnerKind::User => "User",
    }
}

/// The fields every user object shares.
fn user_core(base: &str, owner: &Owner) -> Map<String, Value> {
    let login = &owner.login;
    let url = format!("{base}/users/{login}");
    let fields = json!({
        "login": login,
        "id": owner.id,
        "node_id": node_id(kind_name(owner.kind), owner.id),
        "avatar_url": format!("{base}/avatars/u/{}", owner.id),
        "gravatar_id": "",
        "url": url,
        "html_url": format!("{base}/{login}"),
        "followers_url": format!("{url}/followers"),
        "following_url": format!("{url}/following{{/other_user}}"),
        "gists_url": format!("{url}/gists{{/gist_id}}"),
        "starred_url": format!("{url}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{url}/subscriptions"),
        "organizations_url": format!("{url}/orgs"),
        "repos_url": format!("{url}/repos"),
        "events_url": format!("{url}/events{{/privacy}}"),
        "received_events_url": format!("{url}/received_events"),
        "type": kind_name(owner.kind),
        "user_view_type": "public",
        "site_admin": false,
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The `simple-user` object (package owners, repository owners).
pub(crate) fn simple_user(base: &str, owner: &Owner) -> Value {
    Value::Object(user_core(base, owner))
}

/// The `public-user` object answered by `GET /users/{name}`.
pub(crate) fn public_user(base: &str, owner: &Owner, public_repos: usize) -> Value {
    let mut map = user_core(base, owner);
    let extra = json!({
        "name": owner.login,
        "company": null,
        "blog": "",
        "location": null,
        "email": null,
        "hireable": null,
        "bio": null,
        "twitter_username": null,
        "public_repos": public_repos,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": "2020-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    });
    if let Value::Object(extra) = extra {
        map.extend(extra);
    }
    Value::Object(map)
}

/// The `minimal-repository` object linked from a package.
pub(crate) fn minimal_repository(base: &str, repository: &Repository, owner: &Owner) -> Value {
    let full_name = &repository.full_name;
    let name = full_name
        .split_once('/')
        .map_or(full_name.as_str(), |(_, name)| name);
    let url = format!("{base}/repos/{full_name}");
    let mut map = Map::new();
    map.insert("id".into(), json!(repository.id));
    map.insert(
        "node_id".into(),
        json!(node_id("Repository", repository.id)),
    );
    map.insert("name".into(), json!(name));
    map.insert("full_name".into(), json!(full_name));
    map.insert("owner".into(), simple_user(base, owner));
    map.insert("private".into(), json!(false));
    map.insert("html_url".into(), json!(format!("{base}/{full_name}")));
    map.insert("description".into(), Value::Null);
    map.insert("fork".into(), json!(false));
    map.insert("url".into(), json!(url));
    // The hypermedia links GitHub puts on every repository, templates included.
    let links = [
        ("archive_url", "/{archive_format}{/ref}"),
        ("assignees_url", "/assignees{/user}"),
        ("blobs_url", "/git/blobs{/sha}"),
        ("branches_url", "/branches{/branch}"),
        ("collaborators_url", "/collaborators{/collaborator}"),
        ("comments_url", "/comments{/number}"),
        ("commits_url", "/commits{/sha}"),
        ("compare_url", "/compare/{base}...{head}"),
        ("contents_url", "/contents/{+path}"),
        ("contributors_url", "/contributors"),
        ("deployments_url", "/deployments"),
        ("downloads_url", "/downloads"),
        ("events_url", "/events"),
        ("forks_url", "/forks"),
        ("git_commits_url", "/git/commits{/sha}"),
        ("git_refs_url", "/git/refs{/sha}"),
        ("git_tags_url", "/git/tags{/sha}"),
        ("hooks_url", "/hooks"),
        ("issue_comment_url", "/issues/comments{/number}"),
        ("issue_events_url", "/issues/events{/number}"),
        ("issues_url", "/issues{/number}"),
        ("keys_url", "/keys{/key_id}"),
        ("labels_url", "/labels{/name}"),
        ("languages_url", "/languages"),
        ("merges_url", "/merges"),
        ("milestones_url", "/milestones{/number}"),
        (
            "notifications_url",
            "/notifications{?since,all,participating}",
        ),
        ("pulls_url", "/pulls{/number}"),
        ("releases_url", "/releases{/id}"),
        ("stargazers_url", "/stargazers"),
        ("statuses_url", "/statuses/{sha}"),
        ("subscribers_url", "/subscribers"),
        ("subscription_url", "/subscription"),
        ("tags_url", "/tags"),
        ("teams_url", "/teams"),
        ("trees_url", "/git/trees{/sha}"),
    ];
    for (key, suffix) in links {
        map.insert(key.into(), json!(format!("{url}{suffix}")));
    }
    Value::Object(map)
}

/// The API and web paths of a package: `/orgs/acme/packages/container/a%2Fb` and
/// `/orgs/acme/packages/container/package/a%2Fb` (`/users/...` for a user).
pub(crate) fn package_paths(owner: &Owner, package: &Package) -> (String, String) {
    let family = match owner.kind {
        OwnerKind::Organization => "orgs",
        OwnerKind::User => "users",
    };
    let prefix = format!("/{family}/{}/packages/container", owner.login);
    let name = encode_segment(&package.name);
    (
        format!("{prefix}/{name}"),
        format!("{prefix}/package/{name}"),
    )
}

/// The `package` object. `repository` is the linked repository, when there is one.
pub(crate) fn package(
    base: &str,
    owner: &Owner,
    package: &Package,
    repository: Option<(&Repository, &Owner)>,
) -> Value {
    let (api_path, html_path) = package_paths(owner, package);
    let mut value = json!({
        "id": package.id,
        "name": package.name,
        "package_type": "container",
        "owner": simple_user(base, owner),
        "version_count": package.versions.len(),
        "visibility": package.visibility.as_str(),
        "url": format!("{base}{api_path}"),
        "html_url": format!("{base}{html_path}"),
        "created_at": github_time(package.created_at),
        "updated_at": github_time(package.updated_at()),
    });
    if let (Some((repository, repo_owner)), Value::Object(map)) = (repository, &mut value) {
        map.insert(
            "repository".into(),
            minimal_repository(base, repository, repo_owner),
        );
    }
    value
}

/// The `package-version` object of a container version.
pub(crate) fn package_version(
    base: &str,
    owner: &Owner,
    package: &Package,
    version: &Version,
) -> Value {
    let (api_path, html_path) = package_paths(owner, package);
    let name = encode_segment(&package.name);
    let html_prefix = api_path.trim_end_matches(&name).trim_end_matches('/');
    json!({
        "id": version.id,
        "name": version.digest,
        "url": format!("{base}{api_path}/versions/{}", version.id),
        "package_html_url": format!("{base}{html_path}"),
        "html_url": format!("{base}{html_prefix}/{name}/{}", version.id),
        "created_at": github_time(version.created_at),
        "updated_at": github_time(version.updated_at),
        "metadata": {
            "package_type": "container",
            "container": { "tags": version.tags },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_package_name_slashes_once() {
        assert_eq!(encode_segment("products/bfx/tool"), "products%2Fbfx%2Ftool");
        assert_eq!(encode_segment("a-b_c.d"), "a-b_c.d");
    }

    #[test]
    fn node_ids_look_like_githubs() {
        assert_eq!(node_id("User", 1), "MDQ6VXNlcjE=");
        assert_eq!(node_id("Organization", 1), "MDEyOk9yZ2FuaXphdGlvbjE=");
    }
}
