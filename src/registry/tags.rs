//! The registry's own tag list (`/v2/<name>/tags/list`), and the digest each tag points at: the
//! source of versions when the GitHub API will not list a package's versions for this token.
//!
//! The list is paginated with `n` and a `Link: <…?last=…>; rel="next"` header, as the
//! distribution spec says; links are followed only on the same host and repository. Tags are
//! checked against the spec's grammar before they reach a URL.

use reqwest::Method;
use serde::Deserialize;
use tracing::debug;

use super::reference::{check_repository, check_tag, printable};
use super::{DOCUMENT_LIMIT, RegistryClient, RegistryError, check_names, manifest, read_capped};

/// Tags asked for per page.
const PAGE_SIZE: usize = 1000;
/// Pages followed before giving up on a registry whose links never end.
const MAX_PAGES: usize = 1000;
/// The largest tag-list page read (1,000 tags of 128 characters and the JSON around them).
const PAGE_LIMIT: u64 = 256 * 1024;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// The hint for a 404 on a tag list.
const MISSING_REPOSITORY: &str = "the registry has no such repository: check the package name";
/// The hint for a 404 on a tag.
const MISSING_TAG: &str = "the tag was removed since the list was read";

impl RegistryClient {
    /// Every tag of `repository`, in the registry's order, following `Link` pagination.
    ///
    /// Tags that do not follow the distribution grammar are left out with a debug message.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        check_repository(repository).map_err(|reason| RegistryError::InvalidRepository {
            repository: repository.to_string(),
            reason,
        })?;
        let what = format!("listing the tags of {repository} in the registry");
        let mut tags = Vec::new();
        let mut path = format!("tags/list?n={PAGE_SIZE}");
        for _ in 0..MAX_PAGES {
            let response = self.get(&what, repository, &path, None).await?;
            let response = self
                .expect_success(&what, response, MISSING_REPOSITORY)
                .await?;
            let next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(crate::github::link::next_url);
            let body = read_capped(&what, response, PAGE_LIMIT).await?;
            let page: TagList =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Malformed {
                    what: what.clone(),
                    detail: format!("the tag list is not JSON: {e}"),
                })?;
            let page = page.tags.unwrap_or_default();
            let before = tags.len();
            for tag in page {
                match check_tag(&tag) {
                    Ok(()) => tags.push(tag),
                    Err(reason) => debug!("{what}: left out a tag: {reason}"),
                }
            }
            let Some(next) = next else {
                return Ok(tags);
            };
            if tags.len() == before {
                return Ok(tags);
            }
            path = self.next_page(&what, repository, &next)?;
        }
        Err(RegistryError::Malformed {
            what,
            detail: format!("the tag list goes on for more than {MAX_PAGES} pages"),
        })
    }

    /// The `tags/list?…` path of a `rel="next"` link, refusing one that leaves the repository.
    fn next_page(&self, what: &str, repository: &str, next: &str) -> Result<String, RegistryError> {
        let base =
            url::Url::parse(&format!("{}/", self.base)).map_err(|e| RegistryError::Malformed {
                what: what.to_string(),
                detail: e.to_string(),
            })?;
        let url = base.join(next).map_err(|e| RegistryError::Malformed {
            what: what.to_string(),
            detail: format!("the Link header's next URL is invalid: {e}"),
        })?;
        let expected = format!("/v2/{repository}/tags/list");
        if url.origin() != base.origin() || url.path() != expected {
            return Err(RegistryError::Malformed {
                what: what.to_string(),
                detail: format!(
                    "the Link header points away from the tag list (`{}`); refusing to follow it",
                    printable(next)
                ),
            });
        }
        Ok(format!("tags/list?{}", url.query().unwrap_or("")))
    }

    /// The digest `tag` points at: the registry's `Docker-Content-Digest` from a `HEAD`, or, if
    /// it sends none, the hash of the manifest itself.
    pub async fn tag_digest(&self, repository: &str, tag: &str) -> Result<String, RegistryError> {
        check_tag(tag).map_err(|reason| RegistryError::Malformed {
            what: format!("reading tag `{}` of {repository}", printable(tag)),
            detail: reason,
        })?;
        let what = format!("reading tag {tag} of {repository}");
        let path = format!("manifests/{tag}");
        let response = self
            .request(
                Method::HEAD,
                &what,
                repository,
                &path,
                Some(manifest::ACCEPT),
            )
            .await?;
        let response = self.expect_success(&what, response, MISSING_TAG).await?;
        let header = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if let Some(digest) = header
            && check_names(repository, &digest).is_ok()
        {
            return Ok(digest);
        }

        // No usable header: the manifest's own bytes name it.
        let response = self
            .get(&what, repository, &path, Some(manifest::ACCEPT))
            .await?;
        let response = self.expect_success(&what, response, MISSING_TAG).await?;
        let body = read_capped(&what, response, DOCUMENT_LIMIT).await?;
        let digest = manifest::digest_like("sha256:", &body);
        debug!("{what}: no digest header; hashed the manifest to {digest}");
        Ok(digest)
    }
}
