//! The resolve stage: a small OCI distribution client that turns each package version's digest
//! into the platform manifests to scan, with their platforms and sizes.
//!
//! Every request goes through [`crate::http::HttpClient`] (retries, concurrency cap). A 401 is
//! answered once per request: Basic credentials, or a Bearer token fetched from the challenge's
//! realm and cached per repository. Names and digests from the GitHub API are checked before
//! they reach a URL, bodies are capped and verified against their digest, and no credential or
//! query string reaches a log or an error.

pub mod auth;
pub mod cache;
pub mod manifest;
pub mod reference;
pub mod tags;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use oci_spec::image::{Descriptor, ImageManifest};
use reqwest::header::{ACCEPT, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::http::{HttpClient, HttpError};
use crate::inventory::{Inventory, Package, Version};
use crate::plan::{Platform, PlatformManifest, Resolution};
use crate::secret::Secret;

use auth::{Authorization, Challenge};
use cache::ResolutionCache;
use manifest::Document;
use reference::{printable, shorten};

/// The largest manifest or image config dragnet reads; real ones are a few kilobytes.
const DOCUMENT_LIMIT: u64 = 4 * 1024 * 1024;
/// The largest token or error answer dragnet reads.
const SMALL_LIMIT: u64 = 256 * 1024;

/// Where the registry is and how to sign in to it.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The registry host, with an optional port: `ghcr.io`, `127.0.0.1:5000`.
    pub host: String,
    /// Credentials for Basic auth and token exchange; `None` for anonymous access.
    pub credentials: Option<Credentials>,
    /// The platforms to keep from an index (`--platform`); empty keeps all.
    pub platforms: Vec<Platform>,
}

/// A registry login. For ghcr.io the password is a GitHub token and the username can be any
/// non-empty string.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The username sent with Basic auth.
    pub username: String,
    /// The password or token.
    pub password: Secret,
}

/// A failed registry operation. Messages name the operation, the repository and the digest,
/// and never carry a credential or a query string.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A repository path that is not a valid distribution name.
    #[error(
        "repository `{}` is not a valid registry path: {reason}; registry paths are lowercase \
         letters, digits and `.`, `_`, `-` separators",
        printable(repository)
    )]
    InvalidRepository { repository: String, reason: String },
    /// A digest that is not `sha256:` or `sha512:` hex.
    #[error(
        "digest `{}` of {repository} is not a valid digest: {reason}",
        printable(digest)
    )]
    InvalidDigest {
        repository: String,
        digest: String,
        reason: String,
    },
    /// The exchange failed after retries (connection, 5xx, rate limit).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The registry answered with an error status.
    #[error("{what}: the registry answered {status}{detail}")]
    Status {
        what: String,
        status: StatusCode,
        detail: String,
    },
    /// The answer was larger than dragnet reads from a registry.
    #[error("{what}: the answer is larger than {limit} bytes; refusing to read it")]
    TooLarge { what: String, limit: u64 },
    /// The content does not hash to the digest that was asked for.
    #[error(
        "{what}: the content's digest is {actual}, not the requested {expected}; the registry \
         served different content than the digest names"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A manifest, config or token answer dragnet cannot read.
    #[error("{what}: {detail}")]
    Malformed { what: String, detail: String },
    /// An index that lists another index; dragnet follows one level.
    #[error(
        "{what}: it lists {child}, which is itself an index; dragnet follows only one level of \
         image indexes"
    )]
    NestedIndex { what: String, child: String },
    /// A 401 whose `WWW-Authenticate` challenge dragnet cannot answer.
    #[error("{what}: the registry's authentication challenge is unusable: {detail}")]
    Challenge { what: String, detail: String },
}

/// What the registry says about one package version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedVersion {
    /// The platform manifests to scan.
    pub manifests: Vec<PlatformManifest>,
    /// For an index, the digest of every manifest it lists (platforms the user did not ask for
    /// and attestations included); empty for a single image.
    pub children: Vec<String>,
}

/// A client for one registry host.
#[derive(Clone)]
pub struct RegistryClient {
    config: RegistryConfig,
    http: HttpClient,
    base: String,
    /// The authorization that last worked, per repository; the inner lock makes concurrent
    /// requests wait for one token exchange instead of each starting their own.
    auth: Arc<Mutex<HashMap<String, AuthSlot>>>,
    /// Resolutions from earlier runs, when kept.
    resolutions: Option<ResolutionCache>,
}

/// The authorization cached for one repository.
type AuthSlot = Arc<tokio::sync::Mutex<Option<Authorization>>>;

impl RegistryClient {
    /// A client for `config.host`, over plain HTTP for a loopback host and HTTPS otherwise.
    pub fn new(config: RegistryConfig, http: HttpClient) -> RegistryClient {
        let base = format!("{}://{}", reference::scheme_for(&config.host), config.host);
        RegistryClient {
            config,
            http,
            base,
            auth: Arc::default(),
            resolutions: None,
        }
    }

    /// This client, answering [`RegistryClient::resolve_version`] from the resolutions it made
    /// in earlier runs under `cache_dir`, and keeping the new ones there.
    pub fn with_resolution_cache(mut self, cache_dir: &std::path::Path) -> RegistryClient {
        let cache = ResolutionCache::under(cache_dir, &self.config.host, &self.config.platforms);
        self.resolutions = Some(cache);
        self
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.config.host
    }

    /// The platform manifests a version's digest leads to (itself, or an index's children),
    /// with sizes.
    ///
    /// Attestation manifests are skipped and the configured platforms applied; an index whose
    /// children are all filtered out yields an empty list.
    pub async fn platform_manifests(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Vec<PlatformManifest>, RegistryError> {
        Ok(self.resolve_version(repository, digest).await?.manifests)
    }

    /// Like [`RegistryClient::platform_manifests`], and also every manifest an index lists,
    /// kept or not, so that untagged versions pushed with it can be recognised.
    pub async fn resolve_version(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<ResolvedVersion, RegistryError> {
        check_names(repository, digest)?;
        let Some(cache) = &self.resolutions else {
            return self.resolve_uncached(repository, digest).await;
        };
        if let Some(resolved) = cache.get(repository, digest) {
            debug!("{repository}@{digest}: resolved in an earlier run");
            return Ok(resolved);
        }
        let resolved = self.resolve_uncached(repository, digest).await?;
        cache.put(repository, digest, &resolved);
        Ok(resolved)
    }

    /// [`RegistryClient::resolve_version`], asking the registry.
    async fn resolve_uncached(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<ResolvedVersion, RegistryError> {
        let index = match self.fetch_manifest(repository, digest).await? {
            Document::Image(image) => {
                let platform = self.image_platform(repository, &image).await?;
                if !manifest::is_wanted(&self.config.platforms, platform.as_ref()) {
                    debug!(
                        "{repository}@{digest}: skipped, {} is not a requested platform",
                        describe(platform.as_ref())
                    );
                    return Ok(ResolvedVersion::default());
                }
                let size = manifest::image_size(&image);
                return Ok(ResolvedVersion {
                    manifests: vec![PlatformManifest {
                        digest: digest.to_string(),
                        platform,
                        size,
                    }],
                    children: Vec::new(),
                });
            }
            Document::Index(index) => index,
        };
        let listed: Vec<String> = index
            .manifests()
            .iter()
            .map(|child| child.digest().to_string())
            .collect();

        // Decide on each child before fetching any.
        let mut children = Vec::new();
        for child in index.manifests() {
            let child_digest = child.digest().to_string();
            if manifest::is_attestation(child) {
                debug!("{repository}@{digest}: skipped attestation manifest {child_digest}");
                continue;
            }
            let platform = manifest::declared_platform(child);
            if !manifest::is_wanted(&self.config.platforms, platform.as_ref()) {
                debug!(
                    "{repository}@{digest}: skipped {child_digest}, {} is not a requested \
                        platform",
                    describe(platform.as_ref())
                );
                continue;
            }
            if manifest::names_an_index(child) {
                return Err(RegistryError::NestedIndex {
                    what: format!("resolving index {digest} of {repository}"),
                    child: child_digest,
                });
            }
            check_names(repository, &child_digest)?;
            children.push((child, platform));
        }

        let fetches = children
            .into_iter()
            .map(|(child, platform)| self.index_child(repository, digest, child, platform));
        let manifests: Vec<PlatformManifest> = futures::future::try_join_all(fetches)
            .await?
            .into_iter()
            .flatten()
            .collect();
        if manifests.is_empty() {
            debug!("{repository}@{digest}: the index lists no platform manifest to scan");
        }
        Ok(ResolvedVersion {
            manifests,
            children: listed,
        })
    }

    /// One platform manifest listed by an index: fetched to check that it exists and to sum
    /// its sizes. `None` when its config reveals a platform the user did not ask for.
    async fn index_child(
        &self,
        repository: &str,
        index_digest: &str,
        child: &Descriptor,
        declared: Option<Platform>,
    ) -> Result<Option<PlatformManifest>, RegistryError> {
        let digest = child.digest().to_string();
        let image = match self.fetch_manifest(repository, &digest).await? {
            Document::Image(image) => image,
            Document::Index(_) => {
                return Err(RegistryError::NestedIndex {
                    what: format!("resolving index {index_digest} of {repository}"),
                    child: digest,
                });
            }
        };

        let platform = match declared {
            Some(platform) => Some(platform),
            None => {
                let platform = self.image_platform(repository, &image).await?;
                if !manifest::is_wanted(&self.config.platforms, platform.as_ref()) {
                    debug!(
                        "{repository}@{index_digest}: skipped {digest}, {} is not a requested \
                            platform",
                        describe(platform.as_ref())
                    );
                    return Ok(None);
                }
                platform
            }
        };
        let size = manifest::image_size(&image);
        Ok(Some(PlatformManifest {
            digest,
            platform,
            size,
        }))
    }

    /// Fetches a manifest by digest, checks the body against the digest and parses it.
    async fn fetch_manifest(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Document, RegistryError> {
        let what = format!("fetching manifest {digest} of {repository}");
        let path = format!("manifests/{digest}");
        let response = self
            .get(&what, repository, &path, Some(manifest::ACCEPT))
            .await?;
        let response = self
            .expect_success(&what, response, MISSING_MANIFEST)
            .await?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);

        let body = read_capped(&what, response, DOCUMENT_LIMIT).await?;
        verify_digest(&what, digest, &body)?;
        manifest::parse(&body, content_type.as_deref())
            .map_err(|detail| RegistryError::Malformed { what, detail })
    }

    /// The platform an image's config blob declares.
    async fn image_platform(
        &self,
        repository: &str,
        image: &ImageManifest,
    ) -> Result<Option<Platform>, RegistryError> {
        let digest = image.config().digest().to_string();
        check_names(repository, &digest)?;
        let what = format!("fetching config blob {digest} of {repository}");
        if image.config().size() > DOCUMENT_LIMIT {
            return Err(RegistryError::TooLarge {
                what,
                limit: DOCUMENT_LIMIT,
            });
        }

        let response = self
            .get(&what, repository, &format!("blobs/{digest}"), None)
            .await?;
        let response = self.expect_success(&what, response, MISSING_BLOB).await?;
        let body = read_capped(&what, response, DOCUMENT_LIMIT).await?;
        verify_digest(&what, &digest, &body)?;
        manifest::config_platform(&body).map_err(|detail| RegistryError::Malformed { what, detail })
    }

    /// GETs `/v2/<repository>/<path>`, answering one authentication challenge if the registry
    /// asks. The response may still be an error status; the caller judges it.
    async fn get(
        &self,
        what: &str,
        repository: &str,
        path: &str,
        accept: Option<&str>,
    ) -> Result<Response, RegistryError> {
        self.request(Method::GET, what, repository, path, accept)
            .await
    }

    /// Sends `method` to `/v2/<repository>/<path>` the way [`RegistryClient::get`] does.
    async fn request(
        &self,
        method: Method,
        what: &str,
        repository: &str,
        path: &str,
        accept: Option<&str>,
    ) -> Result<Response, RegistryError> {
        let url = format!("{}/v2/{repository}/{path}", self.base);
        let slot = self.auth_slot(repository);
        let sent = slot.lock().await.clone();
        let send = |authorization: Option<Authorization>| {
            let method = method.clone();
            let url = url.clone();
            async move {
                self.send(method, what, &url, accept, authorization.as_ref())
                    .await
            }
        };
        let response = send(sent.clone()).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }

        // Answer the challenge, unless another request already replaced what we sent.
        let fresh = {
            let mut current = slot.lock().await;
            if current.is_some() && *current != sent {
                current.clone()
            } else {
                let answer = self.answer_challenge(what, repository, &response).await?;
                // Resending exactly what was just refused (the same Basic login) cannot help.
                if answer.is_some() && answer != sent {
                    current.clone_from(&answer);
                    answer
                } else {
                    None
                }
            }
        };
        let Some(fresh) = fresh else {
            return Ok(response);
        };
        debug!("{what}: retrying with {}", fresh.scheme());
        Ok(send(Some(fresh)).await?)
    }

    /// Sends one request through the shared HTTP layer.
    async fn send(
        &self,
        method: Method,
        what: &str,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&Authorization>,
    ) -> Result<Response, HttpError> {
        self.http
            .send(what, || {
                let request = self.http.inner().request(method.clone(), url);
                let request = match accept {
                    Some(accept) => request.header(ACCEPT, accept),
                    None => request,
                };
                self.authorize(request, authorization)
            })
            .await
    }

    /// Adds an `Authorization` header; reqwest marks it sensitive so it is never logged.
    fn authorize(
        &self,
        request: RequestBuilder,
        authorization: Option<&Authorization>,
    ) -> RequestBuilder {
        match (authorization, &self.config.credentials) {
            (Some(Authorization::Bearer(token)), _) => request.bearer_auth(token.expose()),
            (Some(Authorization::Basic), Some(credentials)) => {
                request.basic_auth(&credentials.username, Some(credentials.password.expose()))
            }
            _ => request,
        }
    }

    /// What to send after a 401: a Bearer token from the challenge's realm, or Basic
    /// credentials; `None` when dragnet has nothing the registry would accept.
    async fn answer_challenge(
        &self,
        what: &str,
        repository: &str,
        response: &Response,
    ) -> Result<Option<Authorization>, RegistryError> {
        let mut challenges: Vec<Challenge> = Vec::new();
        for value in response.headers().get_all(WWW_AUTHENTICATE) {
            let unusable = |detail: String| RegistryError::Challenge {
                what: what.into(),
                detail,
            };
            let text = value
                .to_str()
                .map_err(|_| unusable("it is not ASCII text".into()))?;
            challenges.extend(auth::parse_challenges(text).map_err(|e| unusable(e.to_string()))?);
        }

        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = auth::fetch_token(
                &self.http,
                bearer,
                repository,
                self.config.credentials.as_ref(),
            )
            .await?;
            return Ok(Some(Authorization::Bearer(token)));
        }
        if challenges.iter().any(|c| c.scheme == "basic") && self.config.credentials.is_some() {
            return Ok(Some(Authorization::Basic));
        }
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        debug!(
            "{what}: no answerable challenge among [{}]",
            schemes.join(", ")
        );
        Ok(None)
    }

    /// The cached authorization slot of a repository.
    fn auth_slot(&self, repository: &str) -> AuthSlot {
        let mut slots = self
            .auth
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slots.entry(repository.to_string()).or_default().clone()
    }

    /// Passes a successful response through; turns any other into a [`RegistryError::Status`]
    /// with the registry's own error and a hint.
    async fn expect_success(
        &self,
        what: &str,
        response: Response,
        missing: &str,
    ) -> Result<Response, RegistryError> {
        let hints = Hints {
            missing,
            signed_in: self.config.credentials.is_some(),
        };
        expect_success(what, response, &hints).await
    }
}

/// The hint for a 404 on a manifest.
const MISSING_MANIFEST: &str = "the version may have been deleted";
/// The hint for a 404 on a blob.
const MISSING_BLOB: &str = "the image is incomplete in the registry";

/// What to suggest when an answer is an error.
struct Hints<'a> {
    /// For a 404.
    missing: &'a str,
    /// Whether credentials were offered, which changes the advice for 401/403.
    signed_in: bool,
}

impl Hints<'_> {
    fn for_status(&self, status: StatusCode) -> Option<&str> {
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.signed_in => {
                Some("the token was refused, or it lacks `read:packages` or access to this package")
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Some("the package may be private: give dragnet a token with `read:packages`")
            }
            StatusCode::NOT_FOUND => Some(self.missing),
            _ => None,
        }
    }
}

/// The registry's JSON error body. Read leniently rather than with `oci-spec`'s
/// `ErrorResponse`, whose closed set of codes rejects the ones registries invent.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Passes a 2xx response through; turns any other into a [`RegistryError::Status`].
async fn expect_success(
    what: &str,
    response: Response,
    hints: &Hints<'_>,
) -> Result<Response, RegistryError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }

    let body = read_capped(what, response, SMALL_LIMIT)
        .await
        .unwrap_or_default();
    let said: Vec<String> = serde_json::from_slice::<ErrorBody>(&body)
        .map(|body| body.errors)
        .unwrap_or_default()
        .iter()
        .take(3)
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", shorten(&e.code, 40), shorten(&e.message, 200)),
            (false, true) => shorten(&e.code, 40),
            _ => shorten(&e.message, 200),
        })
        .filter(|text| !text.is_empty())
        .collect();

    let mut detail = String::new();
    if !said.is_empty() {
        detail = format!(" ({})", said.join("; "));
    }
    if let Some(hint) = hints.for_status(status) {
        detail.push_str("; ");
        detail.push_str(hint);
    }
    Err(RegistryError::Status {
        what: what.to_string(),
        status,
        detail,
    })
}

/// Reads a body of at most `limit` bytes, refusing larger ones without reading them.
async fn read_capped(
    what: &str,
    mut response: Response,
    limit: u64,
) -> Result<Vec<u8>, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        what: what.to_string(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let chunk = response.chunk().await.map_err(|error| {
            RegistryError::Http(HttpError::Transport {
                what: what.to_string(),
                detail: format!("reading the answer failed: {}", error.without_url()),
                tries: 1,
            })
        })?;
        let Some(chunk) = chunk else {
            return Ok(body);
        };
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
}

/// Checks that `body` hashes to `expected`.
fn verify_digest(what: &str, expected: &str, body: &[u8]) -> Result<(), RegistryError> {
    let actual = manifest::digest_like(expected, body);
    if actual == expected {
        return Ok(());
    }
    Err(RegistryError::DigestMismatch {
        what: what.to_string(),
        expected: expected.to_string(),
        actual,
    })
}

/// Rejects a repository path or digest that must not reach a URL.
fn check_names(repository: &str, digest: &str) -> Result<(), RegistryError> {
    reference::check_repository(repository).map_err(|reason| RegistryError::InvalidRepository {
        repository: repository.to_string(),
        reason,
    })?;
    reference::check_digest(digest).map_err(|reason| RegistryError::InvalidDigest {
        repository: repository.to_string(),
        digest: digest.to_string(),
        reason,
    })
}

fn describe(platform: Option<&Platform>) -> String {
    platform.map_or_else(|| "an unknown platform".into(), |p| p.to_string())
}

/// Resolves every version of the inventory with bounded concurrency; one version's failure
/// never stops the others.
///
/// Tagged versions go first. An untagged version that a tagged index of the same package lists
/// (a platform or attestation manifest of a multi-platform push) is then not fetched again: it
/// is marked [`Resolution::platform_of`] that index, and scanned through it. The result is
/// ordered by package, then version digest, whatever order the answers came in.
pub async fn resolve(
    client: &RegistryClient,
    inventory: &Inventory,
    concurrency: usize,
) -> Vec<Resolution> {
    let versions = || {
        inventory.packages.iter().flat_map(|package| {
            package
                .versions
                .iter()
                .map(move |version| (package, version))
        })
    };
    let resolve_one = |package: &Package, version: &Version| {
        let repository = inventory.repository_path(&package.name);
        let package = package.name.clone();
        let version = version.clone();
        async move {
            let resolved = client
                .resolve_version(&repository, &version.digest)
                .await
                .map_err(|error| {
                    warn!("{error}");
                    error.to_string()
                });
            (package, version, resolved)
        }
    };

    // Tagged versions, remembering what each index lists.
    let tagged: Vec<(String, Version, Result<ResolvedVersion, String>)> =
        futures::stream::iter(versions().filter(|(_, v)| !v.tags.is_empty()))
            .map(|(package, version)| resolve_one(package, version))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut listed_by: HashMap<(String, String), String> = HashMap::new();
    let mut resolutions = Vec::new();
    for (package, version, resolved) in tagged {
        if let Ok(resolved) = &resolved {
            for child in &resolved.children {
                listed_by
                    .entry((package.clone(), child.clone()))
                    .or_insert_with(|| version.digest.clone());
            }
        }
        resolutions.push(Resolution {
            package,
            version,
            manifests: resolved.map(|r| r.manifests),
            platform_of: None,
        });
    }

    // Untagged versions: children of a tagged index need no request; the rest are orphans.
    let mut orphans = Vec::new();
    for (package, version) in versions().filter(|(_, v)| v.tags.is_empty()) {
        let key = (package.name.clone(), version.digest.clone());
        match listed_by.get(&key) {
            Some(index) => resolutions.push(Resolution {
                package: package.name.clone(),
                version: version.clone(),
                manifests: Ok(Vec::new()),
                platform_of: Some(index.clone()),
            }),
            None => orphans.push((package, version)),
        }
    }
    let orphans: Vec<(String, Version, Result<ResolvedVersion, String>)> =
        futures::stream::iter(orphans)
            .map(|(package, version)| resolve_one(package, version))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    resolutions.extend(
        orphans
            .into_iter()
            .map(|(package, version, resolved)| Resolution {
                package,
                version,
                manifests: resolved.map(|r| r.manifests),
                platform_of: None,
            }),
    );
    resolutions.sort_by(|a, b| {
        (a.package.as_str(), a.version.digest.as_str())
            .cmp(&(b.package.as_str(), b.version.digest.as_str()))
    });

    let manifests: usize = resolutions
        .iter()
        .filter_map(|r| r.manifests.as_ref().ok())
        .map(Vec::len)
        .sum();
    let failed = resolutions.iter().filter(|r| r.manifests.is_err()).count();
    let children = resolutions
        .iter()
        .filter(|r| r.platform_of.is_some())
        .count();
    info!(
        "resolved {} versions into {manifests} platform manifests ({failed} failed; {children} \
         untagged versions are platforms of tagged images)",
        resolutions.len()
    );
    resolutions
}

#[cfg(test)]
mod contract_tests;
