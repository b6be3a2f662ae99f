//! The HTTP side: the route table, and the gate every API request passes through. The gate
//! records the request, answers armed faults, rejects bad credentials, enforces and reports the
//! rate limits, and turns matching `If-None-Match` into `304` (which, as on GitHub, costs
//! nothing). Handlers then only decide what the endpoint itself answers.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, Path, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::auth::{self, Credentials};
use super::state::{self, BucketKey, Caller, RateReading, Resource};
use super::{RecordedRequest, code_scanning, packages, registry_token, repos, shapes};

/// The state shared by all handlers.
pub(crate) type Shared = Arc<Mutex<super::State>>;

/// The largest request body accepted: enough for a SARIF just over GitHub's limit, base64'd,
/// so that the upload handler (not the framework) answers `413` as GitHub does.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Builds the emulator's router.
pub(crate) fn router(shared: Shared) -> Router {
    let api = Router::new()
        .route("/rate_limit", get(rate_limit))
        .route("/users/{name}", get(get_user))
        .route("/orgs/{owner}/packages", get(packages::list_for_org))
        .route("/users/{owner}/packages", get(packages::list_for_user))
        .route("/user/packages", get(packages::list_for_me))
        .route(
            "/orgs/{owner}/packages/{kind}/{name}",
            get(packages::get_for_org),
        )
        .route(
            "/users/{owner}/packages/{kind}/{name}",
            get(packages::get_for_user),
        )
        .route("/user/packages/{kind}/{name}", get(packages::get_for_me))
        .route(
            "/orgs/{owner}/packages/{kind}/{name}/versions",
            get(packages::versions_for_org),
        )
        .route(
            "/users/{owner}/packages/{kind}/{name}/versions",
            get(packages::versions_for_user),
        )
        .route(
            "/user/packages/{kind}/{name}/versions",
            get(packages::versions_for_me),
        )
        .route(
            "/orgs/{owner}/packages/{kind}/{name}/versions/{id}",
            get(packages::version_for_org),
        )
        .route(
            "/users/{owner}/packages/{kind}/{name}/versions/{id}",
            get(packages::version_for_user),
        )
        .route(
            "/user/packages/{kind}/{name}/versions/{id}",
            get(packages::version_for_me),
        )
        .route("/repos/{owner}/{repo}", get(repos::repository))
        .route(
            "/repos/{owner}/{repo}/branches/{branch}",
            get(repos::branch),
        )
        .route(
            "/repos/{owner}/{repo}/code-scanning/sarifs",
            post(code_scanning::upload),
        )
        .route(
            "/repos/{owner}/{repo}/code-scanning/sarifs/{id}",
            get(code_scanning::status),
        )
        .route(
            "/repos/{owner}/{repo}/code-scanning/analyses",
            get(code_scanning::analyses),
        )
        .route("/token", get(registry_token::token))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));

    let inspection = Router::new()
        .route("/_emulator/uploads", get(inspect_uploads))
        .route("/_emulator/requests", get(inspect_requests))
        .route("/_emulator/analyses", get(inspect_analyses));

    api.merge(inspection).with_state(shared)
}

/// A JSON answer with GitHub's content type.
pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// GitHub's error answer.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    documentation_url: &str,
) -> Response {
    json_response(
        status,
        &shapes::error_body(status.as_u16(), message, documentation_url),
    )
}

/// `404 Not Found`, as GitHub answers for anything missing or hidden.
pub(crate) fn not_found(documentation_url: &str) -> Response {
    error_response(StatusCode::NOT_FOUND, "Not Found", documentation_url)
}

/// `401 Requires authentication`.
pub(crate) fn requires_authentication(documentation_url: &str) -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "Requires authentication",
        documentation_url,
    )
}

/// `403 Resource not accessible by integration`, GitHub's answer to an Actions token
/// reaching beyond its repository.
pub(crate) fn not_accessible_by_integration(documentation_url: &str) -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "Resource not accessible by integration",
        documentation_url,
    )
}

/// An error answer on its way out of a helper, boxed to keep `Result`s small.
pub(crate) struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Refusal {
        Refusal(Box::new(response))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

const REST_DOCS: &str = "https://docs.github.com/rest";

async fn fallback() -> Response {
    not_found(REST_DOCS)
}

/// The gate in front of every API route; see the module header.
async fn gate(State(shared): State<Shared>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let had_authorization = request.headers().contains_key(AUTHORIZATION);
    let if_none_match = request
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let credentials = auth::credentials(request.headers());
    let record = |status: StatusCode, faulted: bool| {
        state::lock(&shared).requests.push(RecordedRequest {
            method: method.as_str().to_string(),
            path: path.clone(),
            query: query.clone(),
            had_authorization,
            conditional: if_none_match.is_some(),
            status: status.as_u16(),
            faulted,
        });
    };

    // Who is calling; `None` for credentials GitHub would reject.
    let caller = {
        let state = state::lock(&shared);
        match (&credentials, credentials.token()) {
            (Credentials::Missing, _) => Some(Caller::Anonymous),
            (_, Some(token)) => state.tokens.get(token).map(|kind| Caller::Token {
                token: token.to_string(),
                kind: kind.clone(),
            }),
            (_, None) => None,
        }
    };
    let key = caller.as_ref().map_or(BucketKey::Anonymous, BucketKey::of);
    let resource = if method == Method::POST && path.ends_with("/code-scanning/sarifs") {
        Resource::CodeScanningUpload
    } else {
        Resource::Core
    };

    // An armed fault answers before anything else looks at the request.
    let fault = state::lock(&shared).take_fault(method.as_str(), &path);
    if let Some(fault) = fault {
        let status =
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match &fault.body {
            Some(body) => json_response(status, body),
            None => status.into_response(),
        };
        let reading = state::lock(&shared).rate(&key, resource);
        add_rate_headers(&mut response, reading);
        for (name, value) in &fault.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        record(status, true);
        return response;
    }

    // The registry token endpoint belongs to the registry: no API rate limit, own auth rules.
    if path == "/token" {
        let response = next.run(request).await;
        record(response.status(), false);
        return response;
    }

    let Some(caller) = caller else {
        let mut response = error_response(StatusCode::UNAUTHORIZED, "Bad credentials", REST_DOCS);
        let reading = state::lock(&shared).rate(&BucketKey::Anonymous, Resource::Core);
        add_rate_headers(&mut response, reading);
        record(response.status(), false);
        return response;
    };

    // `GET /rate_limit` is free; everything else needs allowance left.
    let free = path == "/rate_limit";
    if !free {
        let reading = state::lock(&shared).rate(&key, resource);
        if reading.remaining() == 0 {
            let message = "API rate limit exceeded. Wait for the reset or use another token.";
            let docs =
                "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api";
            let mut response = error_response(StatusCode::FORBIDDEN, message, docs);
            add_rate_headers(&mut response, reading);
            record(response.status(), false);
            return response;
        }
    }

    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;

    let mut not_modified = false;
    if method == Method::GET && response.status() == StatusCode::OK {
        (response, not_modified) = with_etag(response, if_none_match.as_deref()).await;
    }
    let reading = {
        let mut state = state::lock(&shared);
        if free || not_modified {
            state.rate(&key, resource)
        } else {
            state.spend(&key, resource)
        }
    };
    add_rate_headers(&mut response, reading);
    response.headers_mut().insert(
        VARY,
        HeaderValue::from_static("Accept, Authorization, Cookie"),
    );
    response.headers_mut().insert(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
    record(response.status(), false);
    response
}

/// Adds an `ETag` (a weak tag over the body, as GitHub's lists carry) and answers `304` with
/// no body when the client's `If-None-Match` names it.
async fn with_etag(response: Response, if_none_match: Option<&str>) -> (Response, bool) {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let etag = format!("W/\"{}\"", hex::encode(Sha256::digest(&bytes)));
    let matches = if_none_match.is_some_and(|header| {
        header
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || weak_eq(tag, &etag))
    });
    if let Ok(value) = HeaderValue::from_str(&etag) {
        parts.headers.insert(ETAG, value);
    }
    if matches {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(CONTENT_TYPE);
        return (Response::from_parts(parts, Body::empty()), true);
    }
    (Response::from_parts(parts, Body::from(bytes)), false)
}

/// Weak comparison of entity tags: `W/"x"` equals `"x"`.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

fn add_rate_headers(response: &mut Response, reading: RateReading) {
    let headers = response.headers_mut();
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    put("x-ratelimit-limit", reading.limit.to_string());
    put("x-ratelimit-remaining", reading.remaining().to_string());
    put("x-ratelimit-used", reading.used.to_string());
    put("x-ratelimit-reset", reading.reset.to_string());
    put("x-ratelimit-resource", reading.resource.name().to_string());
}

/// `GET /rate_limit`: the caller's allowances, free of charge.
async fn rate_limit(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let key = BucketKey::of(&caller);
    let (core, upload) = {
        let mut state = state::lock(&shared);
        (
            state.rate(&key, Resource::Core),
            state.rate(&key, Resource::CodeScanningUpload),
        )
    };
    let anonymous = key == BucketKey::Anonymous;
    let entry = |reading: RateReading| {
        json!({
            "limit": reading.limit,
            "remaining": reading.remaining(),
            "reset": reading.reset,
            "used": reading.used,
        })
    };
    let fixed =
        |limit: u64| json!({ "limit": limit, "remaining": limit, "reset": core.reset, "used": 0 });
    let body = json!({
        "resources": {
            "core": entry(core),
            "search": fixed(if anonymous { 10 } else { 30 }),
            "graphql": fixed(if anonymous { 0 } else { 5000 }),
            "code_scanning_upload": entry(upload),
        },
        "rate": entry(core),
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /users/{name}`: the account, organization or user.
async fn get_user(State(shared): State<Shared>, Path(name): Path<String>) -> Response {
    let state = state::lock(&shared);
    let Some(owner) = state.owner(&name) else {
        return not_found("https://docs.github.com/rest/users/users#get-a-user");
    };
    let prefix = format!("{}/", owner.login.to_lowercase());
    let repos = state
        .repositories
        .keys()
        .filter(|key| key.starts_with(&prefix))
        .count();
    json_response(
        StatusCode::OK,
        &shapes::public_user(&state.base_url, owner, repos),
    )
}

async fn inspect_uploads(State(shared): State<Shared>) -> Response {
    let uploads = state::lock(&shared).upload_views();
    json_response(
        StatusCode::OK,
        &serde_json::to_value(uploads).unwrap_or_default(),
    )
}

async fn inspect_requests(State(shared): State<Shared>) -> Response {
    let requests = state::lock(&shared).requests.clone();
    json_response(
        StatusCode::OK,
        &serde_json::to_value(requests).unwrap_or_default(),
    )
}

async fn inspect_analyses(State(shared): State<Shared>) -> Response {
    let analyses = state::lock(&shared).analysis_views();
    json_response(
        StatusCode::OK,
        &serde_json::to_value(analyses).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_and_strong_tags_compare_equal() {
        assert!(weak_eq("W/\"abc\"", "\"abc\""));
        assert!(!weak_eq("W/\"abc\"", "W/\"abd\""));
    }
}
