//! Uploading SARIF to code scanning, and waiting until GitHub has processed it.
//!
//! GitHub answers an upload with 202 as soon as it has the file; "accepted" is not "processed",
//! so dragnet polls the upload's status until it is `complete` or `failed` and reports GitHub's
//! own errors. Uploads are paced ([`UploadPacer`]) to stay under GitHub's 1,000 uploads an
//! hour, and the analyses a repository already has are listed ([`GitHubClient::list_analyses`])
//! so that categories no longer produced can be closed. This module knows nothing of Trivy or
//! of how the SARIF was made.

use std::io::Write;
use std::time::{Duration, Instant};

use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::{GitHubClient, GitHubError, encode_segment};

/// GitHub's limit on one upload, gzipped ("10 MB", read as the smaller 10,000,000 bytes).
pub const MAX_GZIPPED_BYTES: usize = 10_000_000;

/// GitHub accepts at most this many SARIF uploads an hour.
pub const UPLOADS_PER_HOUR: u32 = 1_000;

/// Uploads sent at once before pacing starts: well under GitHub's secondary limit of 80
/// content-creating requests a minute.
const UPLOAD_BURST: u32 = 20;

/// Spaces SARIF uploads so that no hour holds more than `per_hour` of them.
///
/// A token bucket: the first [`UPLOAD_BURST`] uploads go at once (a typical run never waits);
/// after that one upload every `3600 s / (per_hour - burst)`, less the time already spent since
/// the previous one, so that the burst plus an hour's refill never exceeds `per_hour`. Waits
/// go through the HTTP client's clock, so tests do not sleep. Throttling answers (403/429 with
/// `retry-after`) are still honoured by the HTTP layer.
#[derive(Debug, Clone)]
pub struct UploadPacer {
    per_hour: u32,
    burst: u32,
    interval: Duration,
    sent: u32,
    last: Option<Instant>,
}

impl UploadPacer {
    /// A pacer for at most `per_hour` uploads an hour (at least 1).
    pub fn new(per_hour: u32) -> UploadPacer {
        let per_hour = per_hour.max(1);
        let burst = UPLOAD_BURST.min(per_hour / 2).max(1);
        let refill = (per_hour - burst).max(1);
        UploadPacer {
            per_hour,
            burst,
            interval: Duration::from_secs(3600) / refill,
            sent: 0,
            last: None,
        }
    }

    /// The wait between uploads once the burst is spent.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How many uploads go without waiting.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// The wait `planned` uploads will take in all, at most (for the log before they start).
    pub fn planned_wait(&self, planned: usize) -> Duration {
        let paced = (planned as u32).saturating_sub(self.burst.saturating_sub(self.sent));
        self.interval * paced
    }

    /// Waits, if needed, before the next upload, then counts it.
    pub async fn before_upload(&mut self, github: &GitHubClient) {
        if self.sent >= self.burst {
            let since = self.last.map_or(Duration::ZERO, |last| last.elapsed());
            let wait = self.interval.saturating_sub(since);
            if !wait.is_zero() {
                tracing::debug!(
                    "pacing uploads under {} an hour: waiting {:.1}s",
                    self.per_hour,
                    wait.as_secs_f64()
                );
                github.http().pause(wait).await;
            }
        }
        self.sent += 1;
        self.last = Some(Instant::now());
    }
}

/// One analysis a repository has, as `GET /repos/{owner}/{repo}/code-scanning/analyses` lists
/// it (only the fields dragnet reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// GitHub's id for the analysis.
    pub id: u64,
    /// The ref it belongs to (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The category (`dragnet/products/bfx/samtools`).
    #[serde(default)]
    pub category: String,
    /// When GitHub created it.
    #[serde(default)]
    pub created_at: String,
    /// How many results the run had.
    #[serde(default)]
    pub results_count: u64,
    /// The tool that produced it.
    pub tool: AnalysisTool,
}

/// The tool of an [`Analysis`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisTool {
    /// The driver's name (`dragnet`).
    #[serde(default)]
    pub name: Option<String>,
}

/// Where an analysis belongs: a repository, a commit and a ref.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadTarget {
    /// `owner/repo`.
    pub repository: String,
    /// The 40-hex commit SHA the analysis is attached to.
    pub commit_sha: String,
    /// `refs/heads/…`, `refs/tags/…` or `refs/pull/N/merge`.
    pub git_ref: String,
}

/// GitHub's answer to an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SarifReceipt {
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
}

/// The processing state of an upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SarifStatus {
    pub processing_status: String,
    #[serde(default)]
    pub analyses_url: Option<String>,
    #[serde(default)]
    pub errors: Option<Vec<String>>,
}

/// A bad `--repository`, `--sha` or `--ref`.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "invalid repository `{0}`: expected OWNER/REPO (set --repository or GITHUB_REPOSITORY)"
    )]
    Repository(String),
    #[error("invalid commit SHA `{0}`: expected 40 hexadecimal digits (set --sha or GITHUB_SHA)")]
    Sha(String),
    #[error(
        "invalid ref `{0}`: expected refs/heads/NAME, refs/tags/NAME or refs/pull/N/merge \
         (set --ref or GITHUB_REF)"
    )]
    Ref(String),
}

impl UploadTarget {
    /// Checks the three parts before anything is sent.
    pub fn new(repository: &str, commit_sha: &str, git_ref: &str) -> Result<Self, TargetError> {
        let valid_part = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match repository.split_once('/') {
            Some((owner, repo)) if valid_part(owner) && valid_part(repo) && repo != ".." => {}
            _ => return Err(TargetError::Repository(repository.to_string())),
        }
        if commit_sha.len() != 40 || !commit_sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(TargetError::Sha(commit_sha.to_string()));
        }
        let ref_ok = ["refs/heads/", "refs/tags/", "refs/pull/"]
            .iter()
            .any(|prefix| git_ref.len() > prefix.len() && git_ref.starts_with(prefix))
            && !git_ref.chars().any(|c| c.is_control() || c == ' ');
        if !ref_ok {
            return Err(TargetError::Ref(git_ref.to_string()));
        }
        Ok(UploadTarget {
            repository: repository.to_string(),
            commit_sha: commit_sha.to_ascii_lowercase(),
            git_ref: git_ref.to_string(),
        })
    }

    fn path(&self) -> String {
        format!("{}/code-scanning/sarifs", repository_path(&self.repository))
    }
}

/// `repos/OWNER/REPO`, each part percent-encoded.
fn repository_path(repository: &str) -> String {
    let (owner, repo) = repository.split_once('/').unwrap_or((repository, ""));
    format!("repos/{}/{}", encode_segment(owner), encode_segment(repo))
}

/// Gzips and base64-encodes a SARIF file, as the upload endpoint wants it.
pub fn encode_sarif(sarif: &[u8]) -> std::io::Result<(String, usize)> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(sarif)?;
    let gzipped = encoder.finish()?;
    let size = gzipped.len();
    Ok((
        base64::engine::general_purpose::STANDARD.encode(gzipped),
        size,
    ))
}

impl GitHubClient {
    /// Uploads one SARIF file (its JSON text) and returns GitHub's receipt.
    pub async fn upload_sarif(
        &self,
        target: &UploadTarget,
        name: &str,
        sarif: &[u8],
        started_at: Option<&str>,
    ) -> Result<SarifReceipt, GitHubError> {
        let what = format!("uploading {name} to {}", target.repository);
        let (encoded, gzipped) = encode_sarif(sarif).map_err(|e| GitHubError::Decode {
            what: what.clone(),
            detail: format!("could not compress the SARIF: {e}"),
        })?;
        if gzipped > MAX_GZIPPED_BYTES {
            return Err(GitHubError::Decode {
                what,
                detail: format!(
                    "the SARIF is {gzipped} bytes gzipped, over GitHub's limit of {MAX_GZIPPED_BYTES}"
                ),
            });
        }

        let mut body = serde_json::json!({
            "commit_sha": target.commit_sha,
            "ref": target.git_ref,
            "sarif": encoded,
            "tool_name": "dragnet",
        });
        if let Some(started_at) = started_at {
            body["started_at"] = started_at.into();
        }
        let url = self.url(&target.path())?;
        tracing::debug!("{what}: {gzipped} bytes gzipped");
        self.post_json(&what, url, &body)
            .await
            .map_err(|e| upload_hint(e, target))
    }

    /// Every analysis of `tool_name` on `git_ref` in `repository`, newest first, following
    /// every page. A repository without any analysis (GitHub answers 404 "no analysis found")
    /// gives an empty list.
    pub async fn list_analyses(
        &self,
        repository: &str,
        tool_name: &str,
        git_ref: &str,
    ) -> Result<Vec<Analysis>, GitHubError> {
        let what = format!("listing the {tool_name} analyses of {repository}");
        let mut url = self.url(&format!(
            "{}/code-scanning/analyses",
            repository_path(repository)
        ))?;
        url.query_pairs_mut()
            .append_pair("tool_name", tool_name)
            .append_pair("ref", git_ref)
            .append_pair("per_page", "100");
        match self.get_all(&what, url).await {
            Ok(analyses) => Ok(analyses),
            Err(GitHubError::Status {
                status: StatusCode::NOT_FOUND,
                message,
                ..
            }) if message.to_ascii_lowercase().contains("no analysis found") => Ok(Vec::new()),
            Err(error) => Err(analyses_hint(error, repository)),
        }
    }

    /// Where an analysis of `repository` belongs when no commit was given for it: the head of
    /// its default branch (`GET /repos/{owner}/{repo}`, then that branch). An upload must name
    /// a commit of the repository it goes to.
    pub async fn default_branch_target(
        &self,
        repository: &str,
    ) -> Result<UploadTarget, GitHubError> {
        #[derive(Deserialize)]
        struct Repository {
            default_branch: String,
        }
        #[derive(Deserialize)]
        struct Branch {
            commit: Commit,
        }
        #[derive(Deserialize)]
        struct Commit {
            sha: String,
        }

        let what = format!("reading the repository {repository}");
        let url = self.url(&repository_path(repository))?;
        let (found, _): (Repository, _) = self
            .get_page(&what, url)
            .await
            .map_err(|e| analyses_hint(e, repository))?;
        let what = format!(
            "reading the branch {} of {repository}",
            found.default_branch
        );
        let url = self.url(&format!(
            "{}/branches/{}",
            repository_path(repository),
            encode_segment(&found.default_branch)
        ))?;
        let (branch, _): (Branch, _) = self.get_page(&what, url).await?;
        let git_ref = format!("refs/heads/{}", found.default_branch);
        UploadTarget::new(repository, &branch.commit.sha, &git_ref).map_err(|e| {
            GitHubError::Decode {
                what,
                detail: e.to_string(),
            }
        })
    }

    /// The processing status of one upload.
    pub async fn sarif_status(
        &self,
        target: &UploadTarget,
        id: &str,
    ) -> Result<SarifStatus, GitHubError> {
        let what = format!("checking upload {id} in {}", target.repository);
        let url = self.url(&format!("{}/{}", target.path(), encode_segment(id)))?;
        let (status, _) = self.get_page(&what, url).await?;
        Ok(status)
    }

    /// Polls an upload until GitHub has processed it, at most `max_polls` times.
    pub async fn wait_for_processing(
        &self,
        target: &UploadTarget,
        id: &str,
        interval: Duration,
        max_polls: usize,
    ) -> Result<SarifStatus, GitHubError> {
        let mut status = self.sarif_status(target, id).await?;
        for _ in 1..max_polls {
            if status.processing_status != "pending" {
                break;
            }
            self.http().pause(crate::http::jittered(interval)).await;
            status = self.sarif_status(target, id).await?;
        }
        Ok(status)
    }
}

fn analyses_hint(error: GitHubError, repository: &str) -> GitHubError {
    match error {
        GitHubError::Status {
            what,
            status,
            message,
            hint: None,
        } => {
            let hint = match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Some(format!(
                    "the token needs security-events: read on {repository} (write, to upload), \
                     and code scanning must be enabled there"
                )),
                StatusCode::NOT_FOUND => Some(format!(
                    "the repository {repository} does not exist or the token cannot see it"
                )),
                _ => None,
            };
            GitHubError::Status {
                what,
                status,
                message,
                hint,
            }
        }
        other => other,
    }
}

fn upload_hint(error: GitHubError, target: &UploadTarget) -> GitHubError {
    let repository = &target.repository;
    match error {
        GitHubError::Status {
            what,
            status,
            message,
            hint: None,
        } => {
            let hint = match status {
                StatusCode::UNAUTHORIZED => {
                    Some("the token is missing or invalid; it needs security-events: write".into())
                }
                StatusCode::FORBIDDEN => Some(format!(
                    "the token needs security-events: write on {repository}, and code scanning \
                     must be enabled (public repositories, or GitHub Advanced Security); an \
                     archived repository accepts no uploads"
                )),
                StatusCode::NOT_FOUND => Some(format!(
                    "the repository {repository} does not exist or the token cannot see it"
                )),
                StatusCode::PAYLOAD_TOO_LARGE => Some(format!(
                    "GitHub refused the file as too large (10 MB gzipped at most); dragnet packs \
                     files to {} bytes gzipped, so GitHub counted differently: the upload is \
                     split and sent again",
                    crate::sarif::pack::MAX_GZIPPED_BYTES
                )),
                StatusCode::BAD_REQUEST => Some(
                    "GitHub could not read the `sarif` field (gzip, then base64, of a SARIF \
                     file): the file may be corrupt or not SARIF; check it with \
                     `dragnet upload --dry-run`"
                        .into(),
                ),
                StatusCode::UNPROCESSABLE_ENTITY => Some(
                    "GitHub refused the request: check --sha names a commit of the repository \
                     and --ref a branch, tag or pull request ref"
                        .into(),
                ),
                _ => None,
            };
            GitHubError::Status {
                what,
                status,
                message,
                hint,
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn validates_the_target_before_sending() {
        let sha = "a".repeat(40);
        assert!(UploadTarget::new("acme/pipelines", &sha, "refs/heads/main").is_ok());
        assert!(matches!(
            UploadTarget::new("acme", &sha, "refs/heads/main"),
            Err(TargetError::Repository(_))
        ));
        assert!(matches!(
            UploadTarget::new("acme/..", &sha, "refs/heads/main"),
            Err(TargetError::Repository(_))
        ));
        assert!(matches!(
            UploadTarget::new("acme/x", "abc", "refs/heads/main"),
            Err(TargetError::Sha(_))
        ));
        assert!(matches!(
            UploadTarget::new("acme/x", &sha, "main"),
            Err(TargetError::Ref(_))
        ));
    }

    #[test]
    fn encodes_gzip_then_base64() {
        let (encoded, _) = encode_sarif(br#"{"version":"2.1.0"}"#).unwrap();
        let gz = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, r#"{"version":"2.1.0"}"#);
    }
}
