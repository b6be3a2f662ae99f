//! Uploading SARIF to code scanning, and waiting until GitHub has processed it.
//!
//! GitHub answers an upload with 202 as soon as it has the file; "accepted" is not "processed",
//! so dragnet polls the upload's status until it is `complete` or `failed` and reports GitHub's
//! own errors. This module knows nothing of Trivy or of how the SARIF was made.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::{GitHubClient, GitHubError, encode_segment};

/// GitHub's limit on one upload, gzipped.
pub const MAX_GZIPPED_BYTES: usize = 10 * 1024 * 1024;

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
        let (owner, repo) = self
            .repository
            .split_once('/')
            .unwrap_or((&self.repository, ""));
        format!(
            "repos/{}/{}/code-scanning/sarifs",
            encode_segment(owner),
            encode_segment(repo)
        )
    }
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
                StatusCode::PAYLOAD_TOO_LARGE => {
                    Some("GitHub refused the file as too large (10 MB gzipped at most)".into())
                }
                StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Some(
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
