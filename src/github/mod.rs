//! A small typed client for the GitHub REST endpoints dragnet uses: the Packages API
//! (discovery) and code scanning (SARIF upload).
//!
//! Octocrab covers neither the container packages endpoints nor SARIF uploads, so this client is
//! written here on top of [`crate::http`], which owns retries and rate limits. The token is sent
//! only to the configured API origin: a `Link` header pointing elsewhere is refused.

pub mod code_scanning;
pub mod discover;
pub mod etag;
pub mod link;
pub mod rate_limit;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::StatusCode;
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde::de::DeserializeOwned;
use url::Url;

use crate::http::{HttpClient, HttpError};
use crate::secret::Secret;
use etag::{CachedAnswer, EtagCache};

/// GitHub's REST API version dragnet is written against.
const API_VERSION: &str = "2022-11-28";

/// A failed GitHub API call.
#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    /// GitHub answered, but not with success.
    #[error(
        "{what}: GitHub answered {status}: {message}{}",
        hint.as_deref().map(|h| format!("\n  hint: {h}")).unwrap_or_default()
    )]
    Status {
        what: String,
        status: StatusCode,
        message: String,
        hint: Option<String>,
    },
    /// The request did not get an answer.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The answer was not what GitHub documents.
    #[error("{what}: unexpected answer from GitHub: {detail}")]
    Decode { what: String, detail: String },
    /// The API URL given by the user (or a `Link` header) is unusable.
    #[error("{what}: {detail}")]
    Url { what: String, detail: String },
}

impl GitHubError {
    /// The HTTP status GitHub answered, when it answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            GitHubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client for one GitHub API origin with one token.
#[derive(Clone)]
pub struct GitHubClient {
    http: HttpClient,
    api_url: Url,
    token: Option<Secret>,
    etags: Option<EtagCache>,
    calls: Arc<CallCounts>,
}

/// How many GETs a client made, and how many of them GitHub answered `304 Not Modified`
/// (which do not count against the rate limit).
#[derive(Debug, Default)]
pub struct CallCounts {
    gets: AtomicUsize,
    not_modified: AtomicUsize,
}

impl CallCounts {
    /// GETs answered (any status), retries not counted.
    pub fn gets(&self) -> usize {
        self.gets.load(Ordering::Relaxed)
    }

    /// GETs answered `304` from the ETag cache.
    pub fn not_modified(&self) -> usize {
        self.not_modified.load(Ordering::Relaxed)
    }
}

/// The largest JSON answer dragnet reads from GitHub (a page of 100 versions is ~100 KiB).
const MAX_BODY: usize = 32 * 1024 * 1024;

impl GitHubClient {
    /// A client for `api_url` (`https://api.github.com`, or a GHES `/api/v3` URL).
    pub fn new(
        api_url: &str,
        token: Option<Secret>,
        http: HttpClient,
    ) -> Result<Self, GitHubError> {
        let mut url = Url::parse(api_url).map_err(|e| GitHubError::Url {
            what: format!("the API URL `{api_url}`"),
            detail: format!("{e}; pass a URL such as https://api.github.com"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(GitHubError::Url {
                what: format!("the API URL `{api_url}`"),
                detail: "only http and https URLs are supported".into(),
            });
        }
        if !url.path().ends_with('/') {
            url.set_path(&format!("{}/", url.path()));
        }
        Ok(GitHubClient {
            http,
            api_url: url,
            token,
            etags: None,
            calls: Arc::default(),
        })
    }

    /// Keeps GET answers in `cache` and revalidates them with `If-None-Match`.
    pub fn with_etag_cache(mut self, cache: EtagCache) -> Self {
        self.etags = Some(cache);
        self
    }

    /// The GETs this client (and its clones) made so far.
    pub fn calls(&self) -> &CallCounts {
        &self.calls
    }

    /// Whether the ETag cache holds an answer for a GET of `url`.
    fn has_cached(&self, url: &Url) -> bool {
        self.etags
            .as_ref()
            .is_some_and(|cache| cache.contains(&EtagCache::key(url.as_str(), self.token.as_ref())))
    }

    /// The HTTP layer, shared with other clients.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// An absolute URL for an API path (`orgs/acme/packages`); the path must already be
    /// percent-encoded.
    fn url(&self, path: &str) -> Result<Url, GitHubError> {
        self.api_url
            .join(path.trim_start_matches('/'))
            .map_err(|e| GitHubError::Url {
                what: format!("building the URL for `{path}`"),
                detail: e.to_string(),
            })
    }

    /// Refuses to send the token anywhere but the API's own origin.
    fn check_origin(&self, url: &Url, what: &str) -> Result<(), GitHubError> {
        if url.origin() != self.api_url.origin() {
            return Err(GitHubError::Url {
                what: what.to_string(),
                detail: format!(
                    "GitHub pointed to another host ({}); refusing to send the token there",
                    url.host_str().unwrap_or("?")
                ),
            });
        }
        Ok(())
    }

    fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        let request = self
            .http
            .inner()
            .request(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION);
        match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }

    /// GETs one page of JSON; returns it with the `rel="next"` URL.
    async fn get_page<T: DeserializeOwned>(
        &self,
        what: &str,
        url: Url,
    ) -> Result<(T, Option<Url>), GitHubError> {
        let (body, next) = self.get_body(what, url).await?;
        let value = serde_json::from_slice(&body).map_err(|e| GitHubError::Decode {
            what: what.to_string(),
            detail: e.to_string(),
        })?;
        let next = next
            .map(|next| {
                Url::parse(&next).map_err(|e| GitHubError::Decode {
                    what: what.to_string(),
                    detail: format!("the Link header's next URL is invalid: {e}"),
                })
            })
            .transpose()?;
        Ok((value, next))
    }

    /// GETs a successful answer's body and `rel="next"` link, revalidating a cached answer
    /// when there is one: a `304` answers from the cache.
    async fn get_body(
        &self,
        what: &str,
        url: Url,
    ) -> Result<(Vec<u8>, Option<String>), GitHubError> {
        self.check_origin(&url, what)?;
        let key = self
            .etags
            .as_ref()
            .map(|_| EtagCache::key(url.as_str(), self.token.as_ref()));
        let cached = match (&self.etags, &key) {
            (Some(cache), Some(key)) => cache.get(key),
            _ => None,
        };
        let response = self
            .http
            .send(what, || {
                let request = self.request(reqwest::Method::GET, url.clone());
                match &cached {
                    Some(cached) => request.header(IF_NONE_MATCH, &cached.etag),
                    None => request,
                }
            })
            .await?;
        self.calls.gets.fetch_add(1, Ordering::Relaxed);

        let status = response.status();
        if status == StatusCode::NOT_MODIFIED
            && let Some(cached) = cached
        {
            self.calls.not_modified.fetch_add(1, Ordering::Relaxed);
            tracing::trace!("{what}: not modified since the cached answer");
            return Ok((cached.body, cached.next));
        }
        let next = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(link::next_url);
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = read_capped(what, response).await?;
        if !status.is_success() {
            return Err(status_error(what, status, &body));
        }
        if let (Some(cache), Some(key), Some(etag)) = (&self.etags, &key, etag) {
            let answer = CachedAnswer {
                etag,
                next: next.clone(),
                body,
            };
            cache.put(key, &answer);
            return Ok((answer.body, next));
        }
        Ok((body, next))
    }

    /// GETs every page of a list, following `Link: rel="next"`.
    async fn get_all<T: DeserializeOwned>(
        &self,
        what: &str,
        first: Url,
    ) -> Result<Vec<T>, GitHubError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0usize;
        while let Some(url) = next {
            pages += 1;
            let (page, following): (Vec<T>, _) = self.get_page(what, url).await?;
            tracing::debug!("{what}: page {pages} had {} items", page.len());
            items.extend(page);
            next = following;
        }
        Ok(items)
    }

    /// POSTs JSON and reads a JSON answer.
    async fn post_json<T: DeserializeOwned>(
        &self,
        what: &str,
        url: Url,
        body: &serde_json::Value,
    ) -> Result<T, GitHubError> {
        self.check_origin(&url, what)?;
        let response = self
            .http
            .send(what, || {
                self.request(reqwest::Method::POST, url.clone()).json(body)
            })
            .await?;
        read_json(what, response).await
    }
}

/// Reads a success answer as JSON, or turns an error answer into [`GitHubError::Status`].
async fn read_json<T: DeserializeOwned>(
    what: &str,
    response: reqwest::Response,
) -> Result<T, GitHubError> {
    let status = response.status();
    let body = read_capped(what, response).await?;
    if !status.is_success() {
        return Err(status_error(what, status, &body));
    }
    serde_json::from_slice(&body).map_err(|e| GitHubError::Decode {
        what: what.to_string(),
        detail: e.to_string(),
    })
}

/// An error answer as [`GitHubError::Status`], with GitHub's `message` when it sent one.
fn status_error(what: &str, status: StatusCode, body: &[u8]) -> GitHubError {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    GitHubError::Status {
        what: what.to_string(),
        status,
        message,
        hint: None,
    }
}

/// Reads a body, refusing one larger than [`MAX_BODY`].
async fn read_capped(what: &str, mut response: reqwest::Response) -> Result<Vec<u8>, GitHubError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(GitHubError::Decode {
                        what: what.to_string(),
                        detail: format!("the answer is larger than {} MiB", MAX_BODY >> 20),
                    });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                return Err(GitHubError::Decode {
                    what: what.to_string(),
                    detail: format!("the answer was cut short: {}", e.without_url()),
                });
            }
        }
    }
}

/// Percent-encodes one path segment, so that `products/bfx/x` becomes `products%2Fbfx%2Fx`:
/// exactly once, as GitHub requires for package names.
pub fn encode_segment(segment: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod contract_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_package_names_exactly_once() {
        assert_eq!(
            encode_segment("products/bfx/samtools"),
            "products%2Fbfx%2Fsamtools"
        );
        assert_eq!(encode_segment("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(encode_segment("../x"), "..%2Fx");
        assert_eq!(encode_segment("%2e"), "%252e");
    }

    #[test]
    fn refuses_to_follow_links_to_another_host() {
        let http = HttpClient::new(1).unwrap();
        let client = GitHubClient::new("https://api.github.com", None, http).unwrap();
        let elsewhere = Url::parse("https://evil.example/orgs/x/packages?page=2").unwrap();
        let error = client
            .check_origin(&elsewhere, "listing packages")
            .unwrap_err();
        assert!(
            error.to_string().contains("refusing to send the token"),
            "{error}"
        );
    }

    #[test]
    fn joins_paths_under_an_enterprise_prefix() {
        let http = HttpClient::new(1).unwrap();
        let client = GitHubClient::new("https://ghe.example/api/v3", None, http).unwrap();
        let url = client.url("orgs/acme/packages").unwrap();
        assert_eq!(
            url.as_str(),
            "https://ghe.example/api/v3/orgs/acme/packages"
        );
    }
}
