//! Repositories: `GET /repos/{owner}/{repo}` (its default branch) and
//! `GET /repos/{owner}/{repo}/branches/{branch}` (the branch's head commit).
//!
//! A client uploading SARIF to a package's linked repository needs a commit and ref of that
//! repository; these two endpoints give them. Every repository the emulator knows has one
//! branch, `main`, whose head is a SHA derived from the repository's name, so that tests can
//! predict it ([`head_sha`]).

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::server::{Shared, json_response, not_found, requires_authentication};
use super::state::{self, Caller};

const REPOSITORY_DOCS: &str = "https://docs.github.com/rest/repos/repos#get-a-repository";
const BRANCH_DOCS: &str = "https://docs.github.com/rest/branches/branches#get-a-branch";

/// The one branch every emulated repository has.
pub const DEFAULT_BRANCH: &str = "main";

/// The head commit of `main` in `full_name` (`owner/repo`, compared case-insensitively): the
/// first 40 hex digits of SHA-256 of `head:` and the lowercased name.
pub fn head_sha(full_name: &str) -> String {
    let digest = Sha256::digest(format!("head:{}", full_name.to_lowercase()));
    hex::encode(digest)[..40].to_string()
}

/// `GET /repos/{owner}/{repo}`.
pub(crate) async fn repository(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    if matches!(caller, Caller::Anonymous) {
        return requires_authentication(REPOSITORY_DOCS);
    }
    let world = state::lock(&shared);
    let Some(repository) = world.repository(&format!("{owner}/{repo}")) else {
        return not_found(REPOSITORY_DOCS);
    };
    let (owner_login, name) = repository
        .full_name
        .split_once('/')
        .unwrap_or((&repository.full_name, ""));
    let body = json!({
        "id": repository.id,
        "name": name,
        "full_name": repository.full_name,
        "owner": { "login": owner_login, "type": "Organization" },
        "private": false,
        "html_url": format!("https://github.com/{}", repository.full_name),
        "url": format!("{}/repos/{}", world.base_url, repository.full_name),
        "default_branch": DEFAULT_BRANCH,
        "archived": false,
        "disabled": false,
        "visibility": "public",
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /repos/{owner}/{repo}/branches/{branch}`: only `main` exists.
pub(crate) async fn branch(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((owner, repo, branch)): Path<(String, String, String)>,
) -> Response {
    if matches!(caller, Caller::Anonymous) {
        return requires_authentication(BRANCH_DOCS);
    }
    let world = state::lock(&shared);
    let Some(repository) = world.repository(&format!("{owner}/{repo}")) else {
        return not_found(BRANCH_DOCS);
    };
    if branch != DEFAULT_BRANCH {
        return not_found(BRANCH_DOCS);
    }
    let sha = head_sha(&repository.full_name);
    let body = json!({
        "name": DEFAULT_BRANCH,
        "commit": {
            "sha": sha,
            "url": format!("{}/repos/{}/commits/{sha}", world.base_url, repository.full_name),
        },
        "protected": false,
    });
    json_response(StatusCode::OK, &body)
}
