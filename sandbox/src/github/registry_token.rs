//! `GET /token`, the registry token endpoint as ghcr.io runs it: Basic auth `anything:TOKEN`
//! with a known token earns pull access, no credentials earn pull access to public packages
//! only, and a wrong token is refused. The JWT itself comes from [`TokenIssuer`], which the
//! token-mode registry trusts.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;
use time::OffsetDateTime;

use super::auth::{self, Credentials};
use super::pagination::Query;
use super::server::{Shared, json_response};
use super::state::{self, State as World, github_time};
use super::{TokenKind, Visibility};
use crate::token::Access;

/// How long issued tokens live, as the answer states it.
const EXPIRES_IN_SECS: u64 = 300;

/// Who asks for a registry token.
enum Requester {
    Anonymous,
    Holder { user: String, kind: TokenKind },
}

/// The names of the requested `repository:NAME:ACTIONS` scopes that ask for `pull` (scopes
/// come space-separated, repeated, or both).
fn requested_pulls(query: &Query) -> Vec<String> {
    query
        .all("scope")
        .iter()
        .flat_map(|scopes| {
            scopes
                .split(' ')
                .filter_map(Access::parse_scope)
                .collect::<Vec<_>>()
        })
        .filter(|access| access.kind == "repository" && access.actions.iter().any(|a| a == "pull"))
        .map(|access| access.name)
        .collect()
}

/// Whether `requester` may pull the registry repository `name` (`owner/package`).
fn may_pull(world: &World, requester: &Requester, name: &str) -> bool {
    let package = name
        .split_once('/')
        .and_then(|(owner, package)| world.package(owner, package));
    match (requester, package) {
        (
            Requester::Holder {
                kind: TokenKind::Pat | TokenKind::UserPat { .. },
                ..
            },
            _,
        ) => true,
        (Requester::Holder { kind, .. }, Some(package)) => World::can_read(kind, package),
        (Requester::Anonymous, Some(package)) => package.visibility == Visibility::Public,
        (_, None) => false,
    }
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({ "errors": [{ "code": code, "message": message }] }),
    )
}

/// `GET /token?service=...&scope=repository:NAME:pull`.
pub(crate) async fn token(State(shared): State<Shared>, headers: HeaderMap, uri: Uri) -> Response {
    let query = Query::parse(uri.query().unwrap_or(""));
    let (issuer, subject, access) = {
        let world = state::lock(&shared);
        let Some(issuer) = world.registry_tokens.clone() else {
            let message = "registry tokens are not enabled: call Emulator::set_registry_tokens";
            return refuse(StatusCode::NOT_FOUND, "NOT_FOUND", message);
        };
        let requester = match auth::credentials(&headers) {
            Credentials::Missing => Requester::Anonymous,
            credentials => {
                let user = match &credentials {
                    Credentials::Basic { user, .. } => user.clone(),
                    _ => String::new(),
                };
                let kind = credentials
                    .token()
                    .and_then(|token| world.tokens.get(token));
                match kind {
                    Some(kind) => Requester::Holder {
                        user,
                        kind: kind.clone(),
                    },
                    None => {
                        return refuse(
                            StatusCode::UNAUTHORIZED,
                            "UNAUTHORIZED",
                            "authentication required",
                        );
                    }
                }
            }
        };
        let access: Vec<Access> = requested_pulls(&query)
            .into_iter()
            .filter(|name| may_pull(&world, &requester, name))
            .map(|name| Access::repository(&name, &["pull"]))
            .collect();
        let subject = match requester {
            Requester::Anonymous => String::new(),
            Requester::Holder { user, .. } => user,
        };
        (issuer, subject, access)
    };

    match issuer.issue(&subject, access) {
        Ok(token) => json_response(
            StatusCode::OK,
            &json!({
                "token": token,
                "access_token": token,
                "expires_in": EXPIRES_IN_SECS,
                "issued_at": github_time(OffsetDateTime::now_utc()),
            }),
        ),
        Err(error) => {
            let message = format!("cannot issue a registry token: {error}");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", &message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pull_scopes_repeated_or_space_separated() {
        let query = Query::parse(
            "service=ghcr.io&scope=repository:acme/a/b:pull%20repository:acme/c:push\
             &scope=repository:acme/d:pull,push",
        );
        assert_eq!(requested_pulls(&query), vec!["acme/a/b", "acme/d"]);
    }
}
