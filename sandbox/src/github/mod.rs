//! An in-process emulator of the GitHub REST API endpoints dragnet calls: container packages and
//! their versions, users, rate limits, SARIF uploads for code scanning, and ghcr.io's registry
//! token endpoint. It answers as GitHub documents (shapes checked against GitHub's OpenAPI
//! description in `tests/openapi.rs`), including the awkward parts a client must survive:
//! `Link` pagination, names percent-encoded exactly once, tokens that cannot list, ETags, rate
//! limits, injected faults and a SARIF processing state machine that moves without timers.

mod auth;
mod code_scanning;
mod packages;
mod pagination;
mod registry_token;
mod repos;
mod server;
mod shapes;
mod state;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::token::TokenIssuer;
pub use repos::{DEFAULT_BRANCH, head_sha};
use state::State;

/// The largest gzipped SARIF file the upload endpoint accepts, in bytes (GitHub says "10 MB";
/// the emulator reads it strictly as 10,000,000 bytes so that clients stay on the safe side).
pub const MAX_SARIF_GZIP_BYTES: usize = 10_000_000;

/// A running GitHub API emulator. The server runs on a tokio task and stops when this is dropped.
///
/// Setup methods (`add_owner`, `add_package`, ...) may be called at any time, also while a client
/// is talking to the server; state lives behind one mutex that is never held across an await.
pub struct Emulator {
    url: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// Whether an account is an organization or a user; decides which URL family serves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OwnerKind {
    /// Served under `/orgs/{org}/...`; `GET /users/{name}` says `"type": "Organization"`.
    Organization,
    /// Served under `/users/{user}/...`; `GET /users/{name}` says `"type": "User"`.
    User,
}

/// Who may see a package without being granted access.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone, also anonymous registry pulls.
    Public,
    /// Only tokens with access.
    #[default]
    Private,
    /// Members of the enterprise; the emulator treats it like private.
    Internal,
}

impl Visibility {
    /// The word GitHub uses in JSON and in the `visibility` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Internal => "internal",
        }
    }
}

/// A container package to create with [`Emulator::add_package`].
#[derive(Debug, Clone, Default)]
pub struct PackageSpec {
    /// The package name, which may contain slashes (`products/bfx/tool`).
    pub name: String,
    /// Public, private or internal.
    pub visibility: Visibility,
    /// The linked repository (`owner/repo`), if any. An Actions token of that repository may
    /// read the package.
    pub repository: Option<String>,
    /// Further repositories (`owner/repo`) whose Actions tokens were granted read access.
    pub actions_access: Vec<String>,
}

impl PackageSpec {
    /// A private package with no linked repository.
    pub fn new(name: &str) -> PackageSpec {
        PackageSpec {
            name: name.to_string(),
            ..PackageSpec::default()
        }
    }

    /// The same package with the given visibility.
    pub fn visibility(mut self, visibility: Visibility) -> PackageSpec {
        self.visibility = visibility;
        self
    }

    /// The same package linked to `repository` (`owner/repo`).
    pub fn repository(mut self, repository: &str) -> PackageSpec {
        self.repository = Some(repository.to_string());
        self
    }
}

/// A package version to create with [`Emulator::add_version`].
#[derive(Debug, Clone, Default)]
pub struct VersionSpec {
    /// The manifest digest (`sha256:...`), which GitHub reports as the version's `name`.
    pub digest: String,
    /// Tags pointing at the digest; empty for an untagged version. As on GHCR, a tag moves: it
    /// is taken off any older version of the same package that carried it.
    pub tags: Vec<String>,
    /// RFC 3339; defaults to a fixed 2024 date plus one minute per version created, so that
    /// versions added later are newer.
    pub created_at: Option<String>,
    /// RFC 3339; defaults to `created_at`.
    pub updated_at: Option<String>,
}

impl VersionSpec {
    /// A version of `digest` carrying `tags`, with default timestamps.
    pub fn new(digest: &str, tags: &[&str]) -> VersionSpec {
        VersionSpec {
            digest: digest.to_string(),
            tags: tags.iter().map(|tag| tag.to_string()).collect(),
            ..VersionSpec::default()
        }
    }
}

/// What a token may do, mirroring the token kinds dragnet meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A classic personal access token with `read:packages` and `security_events`, belonging to
    /// no registered user: it reads every package, and `GET /user/packages` lists nothing.
    Pat,
    /// A classic personal access token of the user `login`: like [`TokenKind::Pat`], and
    /// `GET /user/packages` lists that user's packages.
    UserPat {
        /// The login of the token's user.
        login: String,
    },
    /// The Actions `GITHUB_TOKEN` of `repository` (`owner/repo`): listing an organization's
    /// packages answers `400 Invalid argument.`; it reads public packages and those linked to or
    /// granted to its repository by exact name, and uploads SARIF only to its repository.
    Actions {
        /// The repository the workflow runs in.
        repository: String,
    },
}

/// One request the emulator answered, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    /// The HTTP method (`GET`, `POST`, ...).
    pub method: String,
    /// The path exactly as sent, still percent-encoded.
    pub path: String,
    /// The raw query string, empty when there was none.
    pub query: String,
    /// Whether an `Authorization` header was present (its value is never recorded).
    pub had_authorization: bool,
    /// Whether the request carried `If-None-Match`.
    pub conditional: bool,
    /// The status answered.
    pub status: u16,
    /// Whether the answer came from a fault armed with [`Emulator::fail_next`].
    pub faulted: bool,
}

/// One SARIF upload the emulator accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SarifUpload {
    /// The upload id (uuid-like), as answered in the 202 receipt.
    pub id: String,
    /// The repository uploaded to (`owner/repo`), as spelled in the URL.
    pub repository: String,
    /// The commit the analysis belongs to.
    pub commit_sha: String,
    /// The Git reference (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The SARIF document after base64-decoding and gunzipping; `Null` if it was not JSON.
    pub sarif: serde_json::Value,
    /// `pending` until processed, then `complete` or `failed`.
    pub processing_status: String,
    /// Why processing failed (empty unless `failed`).
    pub errors: Vec<String>,
    /// The `tool_name` field of the request, if given.
    pub tool_name: Option<String>,
    /// The `checkout_uri` field of the request, if given.
    pub checkout_uri: Option<String>,
    /// The `started_at` field of the request, if given.
    pub started_at: Option<String>,
    /// The size of the gzipped SARIF in bytes.
    pub gzipped_bytes: usize,
}

/// One code scanning analysis created from a processed upload (one per SARIF run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// GitHub's numeric analysis id.
    pub id: u64,
    /// The repository (`owner/repo`).
    pub repository: String,
    /// The upload the run came from.
    pub sarif_id: String,
    /// The Git reference.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The commit.
    pub commit_sha: String,
    /// The category: `automationDetails.id` up to its last `/`, or empty.
    pub category: String,
    /// `runs[].tool.driver.name`.
    pub tool_name: String,
    /// The number of results in the run.
    pub results_count: usize,
    /// The number of rules in the run.
    pub rules_count: usize,
}

/// A canned answer for the next requests whose path starts with a prefix; see
/// [`Emulator::fail_next`]. The emulator's usual rate-limit headers are added unless the fault
/// sets a header of the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The status to answer.
    pub status: u16,
    /// Headers to answer, overriding the emulator's own of the same name.
    pub headers: Vec<(String, String)>,
    /// The JSON body; `None` answers an empty body.
    pub body: Option<serde_json::Value>,
    /// Only requests with this method match (any method when `None`).
    pub method: Option<String>,
}

impl Fault {
    /// Answers `status` with a GitHub-style error body naming the status.
    pub fn status(status: u16) -> Fault {
        let reason = axum::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|code| code.canonical_reason())
            .unwrap_or("Error");
        Fault {
            status,
            headers: Vec::new(),
            body: Some(serde_json::json!({ "message": reason })),
            method: None,
        }
    }

    /// GitHub's secondary rate limit: `403` with `retry-after` and the usual message.
    pub fn secondary_rate_limit(retry_after_secs: u64) -> Fault {
        Fault {
            status: 403,
            headers: vec![("retry-after".to_string(), retry_after_secs.to_string())],
            body: Some(serde_json::json!({
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes \
                            before you try again.",
                "documentation_url": "https://docs.github.com/rest/using-the-rest-api/\
                                      rate-limits-for-the-rest-api#about-secondary-rate-limits",
                "status": "403",
            })),
            method: None,
        }
    }

    /// `429 Too Many Requests` with `retry-after`.
    pub fn too_many_requests(retry_after_secs: u64) -> Fault {
        Fault {
            status: 429,
            headers: vec![("retry-after".to_string(), retry_after_secs.to_string())],
            body: Some(serde_json::json!({ "message": "Too Many Requests", "status": "429" })),
            method: None,
        }
    }

    /// The primary rate limit exhausted: `403` with `x-ratelimit-remaining: 0` and a reset
    /// `reset_in_secs` from now, and no `retry-after`.
    pub fn primary_rate_limit(reset_in_secs: u64) -> Fault {
        let reset = state::epoch_now() + reset_in_secs;
        Fault {
            status: 403,
            headers: vec![
                ("x-ratelimit-remaining".to_string(), "0".to_string()),
                ("x-ratelimit-reset".to_string(), reset.to_string()),
            ],
            body: Some(serde_json::json!({
                "message": "API rate limit exceeded.",
                "documentation_url": "https://docs.github.com/rest/using-the-rest-api/\
                                      rate-limits-for-the-rest-api",
                "status": "403",
            })),
            method: None,
        }
    }

    /// The same fault with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Fault {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The same fault, matching only requests with `method` (`GET`, `POST`).
    pub fn only_method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }
}

impl Emulator {
    /// Starts the emulator on `127.0.0.1` with a free port.
    pub async fn start() -> anyhow::Result<Emulator> {
        Emulator::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts the emulator on `addr` (for the demo binary, which may want a fixed port).
    pub async fn start_on(addr: SocketAddr) -> anyhow::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let url = format!("http://{local}");
        let state = Arc::new(Mutex::new(State::new(&url)));
        let app = server::router(state.clone());

        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(error) = serving.await {
                tracing::warn!(%error, "github emulator stopped");
            }
        });
        tracing::debug!(%url, "github emulator listening");
        Ok(Emulator {
            url,
            state,
            shutdown: Some(shutdown),
            task,
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Registers an account. Logins compare case-insensitively, as on GitHub.
    pub fn add_owner(&self, login: &str, kind: OwnerKind) {
        self.lock().add_owner(login, kind);
    }

    /// Adds a container package to `owner` (registered as an organization if unknown).
    pub fn add_package(&self, owner: &str, package: PackageSpec) {
        self.lock().add_package(owner, package);
    }

    /// Adds a version to a package. Panics if the package is unknown or a timestamp is not
    /// RFC 3339: both are mistakes in the test's setup.
    pub fn add_version(&self, owner: &str, package: &str, version: VersionSpec) {
        self.lock().add_version(owner, package, version);
    }

    /// Adds several versions to a package, oldest first, under one lock (for large fixtures).
    pub fn add_versions(&self, owner: &str, package: &str, versions: Vec<VersionSpec>) {
        let mut state = self.lock();
        for version in versions {
            state.add_version(owner, package, version);
        }
    }

    /// Makes `token` valid with the given powers.
    pub fn add_token(&self, token: &str, kind: TokenKind) {
        self.lock().tokens.insert(token.to_string(), kind);
    }

    /// Registers a repository (`owner/repo`) with code scanning enabled, so that it accepts
    /// SARIF uploads. Repositories only named by packages exist but answer 403 to uploads.
    pub fn add_repository(&self, full_name: &str) {
        self.lock().add_repository(full_name, true);
    }

    /// Enables `GET /token`, the ghcr.io-style registry token endpoint, signing with `issuer`.
    pub fn set_registry_tokens(&self, issuer: Arc<TokenIssuer>) {
        self.lock().registry_tokens = Some(issuer);
    }

    /// How many status reads of an upload answer `pending` before it is processed (default 1).
    /// With 0, uploads are processed as they arrive.
    pub fn set_pending_polls(&self, polls: u32) {
        self.lock().pending_polls = polls;
    }

    /// Processes every pending upload now, as if GitHub had caught up.
    pub fn process_uploads(&self) {
        self.lock().process_all_uploads();
    }

    /// Sets how many core requests `token` has left in the current window; at 0 the emulator
    /// answers `403` with `x-ratelimit-remaining: 0` until the window resets.
    pub fn set_rate_limit_remaining(&self, token: &str, remaining: u64) {
        self.lock().set_remaining(token, remaining);
    }

    /// Makes the next `count` requests whose raw path starts with `path_prefix` (and whose
    /// method matches, if the fault names one) answer `fault`. Faults armed earlier match first.
    pub fn fail_next(&self, path_prefix: &str, count: usize, fault: Fault) {
        self.lock().arm_fault(path_prefix, count, fault);
    }

    /// Every request answered so far, oldest first (inspection endpoints excluded).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Every accepted SARIF upload, oldest first.
    pub fn uploads(&self) -> Vec<SarifUpload> {
        self.lock().upload_views()
    }

    /// Every analysis created so far, oldest first.
    pub fn analyses(&self) -> Vec<Analysis> {
        self.lock().analysis_views()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        state::lock(&self.state)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.abort();
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}
