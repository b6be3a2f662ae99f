//! The scan stage's output: per target, Trivy's findings or the reason there are none.

use serde::{Deserialize, Serialize};

use crate::finding::Finding;

/// Everything one scan run produced, with the tools that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanRun {
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// Wall time of the scan stage in milliseconds.
    pub duration_ms: u64,
    /// The Trivy version that scanned (`0.76.0`).
    pub trivy_version: String,
    /// When the vulnerability DB was built (RFC 3339), when Trivy said.
    pub db_updated_at: Option<String>,
    /// The options that shape the findings.
    pub options: ScanOptions,
    /// One result per target, in plan order.
    pub results: Vec<ScanResult>,
}

/// The scan options that change what is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanOptions {
    /// The severities reported, most severe first.
    pub severities: Vec<crate::finding::Severity>,
    /// Whether vulnerabilities without a fix were left out.
    pub ignore_unfixed: bool,
}

/// The outcome for one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanResult {
    /// The target's manifest digest.
    pub digest: String,
    /// The reference Trivy scanned.
    pub image: String,
    /// How long the scan took in milliseconds.
    pub duration_ms: u64,
    /// What the scan produced.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Findings, or the reason there are none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Trivy finished; the findings may be empty.
    Scanned {
        /// The OS Trivy detected (`debian 12.5`), if any.
        os: Option<String>,
        findings: Vec<Finding>,
    },
    /// Trivy could not scan this image.
    Failed {
        /// Why, in words a user can act on.
        cause: String,
    },
}

/// Scans every target with at most `concurrency` Trivy processes at once.
///
/// Targets arrive largest first (see [`crate::plan::build`]) so the longest scans start early
/// and the cores do not idle at the end. A failed scan is recorded with its cause; it never stops
/// the others. Results come back in plan order.
pub async fn scan_all(
    trivy: &crate::trivy::Trivy,
    targets: &[crate::plan::ScanTarget],
    concurrency: usize,
    cache: Option<&crate::result_cache::ResultCache>,
) -> Vec<ScanResult> {
    let never = std::future::pending::<String>();
    scan_until(trivy, targets, concurrency, cache, never).await
}

/// [`scan_all`], until `stop` resolves with a cause (a signal): then no new scan starts, the
/// running ones are dropped — which kills their Trivy process groups — and every target
/// without a result is recorded as failed with that cause. Finished results are kept.
pub async fn scan_until(
    trivy: &crate::trivy::Trivy,
    targets: &[crate::plan::ScanTarget],
    concurrency: usize,
    cache: Option<&crate::result_cache::ResultCache>,
    stop: impl std::future::Future<Output = String>,
) -> Vec<ScanResult> {
    use futures::StreamExt;

    let total = targets.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    let scans = futures::stream::iter(targets.iter().enumerate())
        .map(|(index, target)| {
            let done = &done;
            async move {
                let started = std::time::Instant::now();
                let outcome = scan_one(trivy, target, cache).await;
                let duration_ms = started.elapsed().as_millis() as u64;
                let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                let name = target_name(target);
                match &outcome {
                    Outcome::Scanned { findings, .. } => tracing::info!(
                        "scanned {finished}/{total}: {name}: {} findings in {:.1}s",
                        findings.len(),
                        duration_ms as f64 / 1000.0
                    ),
                    Outcome::Failed { cause } => {
                        tracing::warn!("scanned {finished}/{total}: {name}: failed: {cause}")
                    }
                }
                let result = ScanResult {
                    digest: target.digest.clone(),
                    image: target.image.clone(),
                    duration_ms,
                    outcome,
                };
                (index, result)
            }
        })
        .buffer_unordered(concurrency.max(1));

    let mut results: Vec<Option<ScanResult>> = targets.iter().map(|_| None).collect();
    let stopped = {
        futures::pin_mut!(scans);
        futures::pin_mut!(stop);
        loop {
            tokio::select! {
                next = scans.next() => match next {
                    Some((index, result)) => results[index] = Some(result),
                    None => break None,
                },
                cause = &mut stop => break Some(cause),
            }
        }
        // Leaving this block drops the running scans, and with them their Trivy children.
    };

    let cause = stopped.unwrap_or_default();
    let stopped_here = results.iter().filter(|r| r.is_none()).count();
    if stopped_here > 0 {
        tracing::warn!("{stopped_here} of {total} images were not scanned: {cause}");
    }
    results
        .into_iter()
        .zip(targets)
        .map(|(result, target)| {
            result.unwrap_or_else(|| ScanResult {
                digest: target.digest.clone(),
                image: target.image.clone(),
                duration_ms: 0,
                outcome: Outcome::Failed {
                    cause: cause.clone(),
                },
            })
        })
        .collect()
}

/// One target's outcome: the cached result when there is one, else a fresh scan (cached if it
/// succeeded). Failures are never cached: the next run tries again.
async fn scan_one(
    trivy: &crate::trivy::Trivy,
    target: &crate::plan::ScanTarget,
    cache: Option<&crate::result_cache::ResultCache>,
) -> Outcome {
    use crate::result_cache::CachedScan;

    if let Some(hit) = cache.and_then(|cache| cache.get(&target.digest)) {
        tracing::debug!("{}: reusing the cached result", target.digest);
        return Outcome::Scanned {
            os: hit.os,
            findings: hit.findings,
        };
    }
    match scan_with_retries(trivy, &target.image).await {
        Ok(report) => {
            let scan = CachedScan {
                os: report.os,
                findings: report.findings,
            };
            if let Some(cache) = cache {
                cache.put(&target.digest, &scan);
            }
            Outcome::Scanned {
                os: scan.os,
                findings: scan.findings,
            }
        }
        Err(cause) => Outcome::Failed { cause },
    }
}

/// How many times a scan that failed for a transient reason is tried again, and the pause
/// before each retry. Trivy (go-containerregistry) retries 5xx and 429 itself but not a 403
/// rate limit, nor a connection reset or a body cut short while reading a layer: those fail
/// the whole scan, so dragnet tries it again. A hang, a crash or a bad report is not retried.
const SCAN_RETRIES: [std::time::Duration; 2] = [
    std::time::Duration::from_secs(2),
    std::time::Duration::from_secs(6),
];

/// Scans one image, retrying transient failures ([`SCAN_RETRIES`]); the error is the last
/// cause, with the number of tries when there was more than one.
async fn scan_with_retries(
    trivy: &crate::trivy::Trivy,
    image: &str,
) -> Result<crate::trivy::ScanReport, String> {
    let mut tries = 0;
    loop {
        tries += 1;
        let error = match trivy.scan(image).await {
            Ok(report) => return Ok(report),
            Err(error) => error,
        };
        let cause = error.to_string();
        let Some(wait) = SCAN_RETRIES.get(tries - 1).filter(|_| is_transient(&error)) else {
            return Err(if tries > 1 {
                format!("{cause} (gave up after {tries} tries)")
            } else {
                cause
            });
        };
        tracing::warn!("{image}: {cause}; a transient failure, scanning again in {wait:?}");
        tokio::time::sleep(*wait).await;
    }
}

/// Whether a failed scan may succeed when tried again: the registry throttled, failed with a
/// 5xx, or the connection broke. Judged from Trivy's own words, which the error carries.
fn is_transient(error: &crate::trivy::TrivyError) -> bool {
    use crate::trivy::TrivyError;

    const THROTTLED: &[&str] = &["toomanyrequests", "too many requests", "429", "rate limit"];
    const BROKEN: &[&str] = &[
        "connection reset",
        "broken pipe",
        "unexpected eof",
        "i/o timeout",
        "connection refused",
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
    ];
    let text = error.to_string().to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
    match error {
        TrivyError::RegistryUnreachable { .. } | TrivyError::ScanFailed { .. } => {
            has(THROTTLED) || has(BROKEN)
        }
        TrivyError::RegistryAuth { .. } => has(THROTTLED),
        _ => false,
    }
}

/// How a target is named in logs: its first package and tags, platform and short digest.
fn target_name(target: &crate::plan::ScanTarget) -> String {
    let short = target
        .digest
        .strip_prefix("sha256:")
        .unwrap_or(&target.digest);
    let short = &short[..short.len().min(12)];
    let first = target.refs.first();
    let package = first.map(|r| r.package.as_str()).unwrap_or("?");
    let tags = first.map(|r| r.tags.join(",")).unwrap_or_default();
    match &target.platform {
        Some(platform) => format!("{package}:{tags} ({platform}, {short})"),
        None => format!("{package}:{tags} ({short})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trivy::TrivyError;

    #[test]
    fn throttling_and_broken_connections_are_transient_answers_are_not() {
        let image = "ghcr.io/acme/x@sha256:ab".to_string();
        let auth = |detail: &str| TrivyError::RegistryAuth {
            image: image.clone(),
            detail: detail.into(),
        };
        let failed = |detail: &str| TrivyError::ScanFailed {
            image: image.clone(),
            status: "exit status: 1".into(),
            detail: detail.into(),
        };
        assert!(is_transient(&auth(
            "GET …/blobs/sha256:0a: unexpected status code 403 Forbidden: secondary rate limit"
        )));
        assert!(!is_transient(&auth(
            "UNAUTHORIZED: authentication required"
        )));
        assert!(is_transient(&failed(
            "read tcp: read: connection reset by peer"
        )));
        assert!(is_transient(&failed(
            "unexpected status code 503 Service Unavailable"
        )));
        assert!(!is_transient(&failed("unsupported os")));
        let missing = TrivyError::BlobMissing {
            image: image.clone(),
            detail: "BLOB_UNKNOWN; connection reset".into(),
        };
        assert!(!is_transient(&missing), "a missing blob stays missing");
    }
}
