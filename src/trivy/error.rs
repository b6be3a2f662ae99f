//! What can go wrong running Trivy, named after what failed, and how Trivy's stderr says so.
//!
//! Trivy reports a failed scan as exit status 1 and a `FATAL` log line on stderr whose wrapped
//! error chain ends in the registry's own words (`MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`,
//! `UNAUTHORIZED`, a dial error). [`classify_scan_failure`] sorts a failure by those words;
//! [`summarize_stderr`] keeps the lines that say why, without timestamps, bounded in length.

use std::path::PathBuf;

use super::report::ReportError;

/// A failed Trivy run. Messages start lowercase, name the image or the operation, carry
/// Trivy's own last words where they help, and never a credential.
#[derive(Debug, thiserror::Error)]
pub enum TrivyError {
    /// An image reference dragnet refuses to pass to Trivy.
    #[error(
        "image reference `{image}` {reason}; hint: pass a reference such as \
         `ghcr.io/org/name@sha256:…`"
    )]
    InvalidImageRef { image: String, reason: &'static str },
    /// The Trivy program does not exist.
    #[error(
        "trivy program `{}` was not found; hint: install Trivy 0.76 or pass --trivy PATH",
        program.display()
    )]
    ProgramNotFound { program: PathBuf },
    /// The Trivy program exists but could not be started.
    #[error("could not start trivy program `{}`: {error}", program.display())]
    Spawn {
        program: PathBuf,
        error: std::io::Error,
    },
    /// Reading Trivy's output or waiting for it failed.
    #[error("{what}: reading from trivy failed: {error}")]
    Io { what: String, error: std::io::Error },
    /// dragnet's deadline passed; Trivy was killed.
    #[error(
        "{what}: trivy did not finish within {deadline} and was killed; hint: raise the scan \
         timeout, or check that the registry answers"
    )]
    TimedOut { what: String, deadline: String },
    /// Trivy's own `--timeout` passed and it gave up.
    #[error(
        "{what}: trivy gave up after its --timeout of {deadline}: {detail}; hint: raise the \
         scan timeout"
    )]
    TrivyTimedOut {
        what: String,
        deadline: String,
        detail: String,
    },
    /// Trivy printed more than dragnet reads; it was killed.
    #[error(
        "{what}: trivy printed more than {limit} bytes and was stopped; hint: a report that \
         large is not plausible for one image, check the trivy program"
    )]
    OutputTooLarge { what: String, limit: usize },
    /// Trivy died from a signal or panicked.
    #[error("{what}: trivy crashed ({status}): {detail}")]
    Crashed {
        what: String,
        status: String,
        detail: String,
    },
    /// The registry does not know the image (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`).
    #[error(
        "image `{image}` was not found in its registry: {detail}; hint: it may have been \
         deleted since it was listed, discover again"
    )]
    ImageNotFound { image: String, detail: String },
    /// The manifest exists but one of its layers does not (`BLOB_UNKNOWN`).
    #[error(
        "image `{image}` names a layer its registry does not hold (blob unknown): {detail}; \
         hint: the image is broken in the registry, push it again or delete it"
    )]
    BlobMissing { image: String, detail: String },
    /// The registry refused the credentials, or their absence.
    #[error(
        "the registry refused access to image `{image}`: {detail}; hint: pass credentials that \
         can pull it (for ghcr.io, a token with `read:packages`)"
    )]
    RegistryAuth { image: String, detail: String },
    /// The registry could not be reached (refused, DNS, TLS).
    #[error(
        "the registry of image `{image}` could not be reached: {detail}; hint: check the \
         network, proxy and TLS settings"
    )]
    RegistryUnreachable { image: String, detail: String },
    /// A scan was asked for before the vulnerability DB was downloaded.
    #[error(
        "trivy has no vulnerability DB in `{}`; hint: download it first (`Trivy::download_db`), \
         or check that --cache-dir is the one it was downloaded to",
        cache_dir.display()
    )]
    DbMissing { cache_dir: PathBuf },
    /// The image holds Java archives and there is no Java DB to look them up in.
    #[error(
        "image `{image}` holds Java archives, but trivy has no Java DB in `{}`; hint: run \
         `trivy image --download-java-db-only --cache-dir {}` once",
        cache_dir.display(),
        cache_dir.display()
    )]
    JavaDbMissing { image: String, cache_dir: PathBuf },
    /// Trivy failed scanning for a reason dragnet does not recognise.
    #[error("trivy failed scanning image `{image}` ({status}): {detail}")]
    ScanFailed {
        image: String,
        status: String,
        detail: String,
    },
    /// Trivy finished, but its report cannot be read.
    #[error("trivy's report for image `{image}` is unusable: {error}")]
    ReportUnusable { image: String, error: ReportError },
    /// Trivy finished, but its SBOM is not CycloneDX JSON.
    #[error("trivy's SBOM for image `{image}` is not CycloneDX JSON: {detail}")]
    SbomUnusable { image: String, detail: String },
    /// Downloading the vulnerability DB failed.
    #[error(
        "downloading the vulnerability DB from {repositories} failed ({status}): {detail}; \
         hint: each --db-repository must be reachable and hold a trivy-db artifact (tag `2`)"
    )]
    DbDownloadFailed {
        repositories: String,
        status: String,
        detail: String,
    },
    /// `trivy version` failed.
    #[error("`trivy version` failed ({status}): {detail}")]
    VersionFailed { status: String, detail: String },
    /// `trivy version` printed something dragnet cannot read.
    #[error(
        "`trivy version` printed output dragnet cannot read ({bytes} bytes): {error}; hint: \
         dragnet needs Trivy 0.76"
    )]
    VersionUnreadable {
        bytes: usize,
        error: serde_json::Error,
    },
}

/// What a failed scan's stderr says went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanFailure {
    DbMissing,
    JavaDbMissing,
    BlobMissing,
    ImageNotFound,
    RegistryAuth,
    TrivyTimedOut,
    RegistryUnreachable,
    Crashed,
    Other,
}

/// Sorts a failed scan by the words in its stderr, most specific first.
pub(crate) fn classify_scan_failure(stderr: &str) -> ScanFailure {
    let text = stderr.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));

    if has(&[
        "--skip-db-update cannot be specified",
        "first run cannot skip downloading db",
    ]) {
        ScanFailure::DbMissing
    } else if has(&[
        "'--skip-java-db-update' cannot be specified",
        "skip-java-db-update cannot",
    ]) {
        ScanFailure::JavaDbMissing
    } else if has(&["blob_unknown", "blob unknown"]) {
        ScanFailure::BlobMissing
    } else if has(&["manifest_unknown", "manifest unknown", "name_unknown"]) {
        ScanFailure::ImageNotFound
    } else if has(&[
        "unauthorized",
        // The registry's `DENIED:` code, not a file's "permission denied".
        "denied: ",
        "forbidden",
        "authentication required",
        "status code 401",
        "status code 403",
    ]) {
        ScanFailure::RegistryAuth
    } else if has(&["context deadline exceeded"]) {
        ScanFailure::TrivyTimedOut
    } else if has(&[
        "connection refused",
        "no such host",
        "i/o timeout",
        "network is unreachable",
        "connection reset",
        "tls:",
        "x509:",
    ]) {
        ScanFailure::RegistryUnreachable
    } else if has(&["panic:", "goroutine "]) {
        ScanFailure::Crashed
    } else {
        ScanFailure::Other
    }
}

/// How many lines of stderr an error carries at most.
const DETAIL_LINES: usize = 4;
/// How many characters of one stderr line an error carries at most (its end, where the
/// registry's words are).
const DETAIL_LINE_CHARS: usize = 400;

/// The lines of Trivy's stderr that say why it failed: from the last `FATAL`/`ERROR` line on
/// (or the last few lines), without timestamps and levels, each shortened to its end.
pub(crate) fn summarize_stderr(stderr: &str) -> String {
    let lines: Vec<(bool, String)> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(strip_log_prefix)
        .collect();
    if lines.is_empty() {
        return "trivy wrote nothing on stderr".to_string();
    }

    let start = lines
        .iter()
        .rposition(|(is_error, _)| *is_error)
        .unwrap_or(lines.len().saturating_sub(DETAIL_LINES));
    let start = start.max(lines.len().saturating_sub(DETAIL_LINES));
    lines[start..]
        .iter()
        .map(|(_, line)| shorten_front(line))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Removes Trivy's `2024-01-01T00:00:00Z\tFATAL\t` prefix; says whether the level was an error.
fn strip_log_prefix(line: &str) -> (bool, String) {
    let mut fields = line.split('\t');
    let (Some(stamp), Some(level)) = (fields.next(), fields.next()) else {
        return (false, line.to_string());
    };
    let is_stamp = stamp.len() >= 19 && stamp.as_bytes()[..4].iter().all(u8::is_ascii_digit);
    let is_level = matches!(level, "DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL");
    if !(is_stamp && is_level) {
        return (false, line.to_string());
    }
    let rest: Vec<&str> = fields
        .filter(|f| !f.is_empty() && *f != "Fatal error")
        .collect();
    (
        matches!(level, "ERROR" | "FATAL"),
        strip_wrappers(&rest.join(": ")).to_string(),
    )
}

/// The layers of Trivy's error chain that say nothing about the cause.
const WRAPPERS: [&str; 8] = [
    "run error: ",
    "init error: ",
    "image scan error: ",
    "rootfs scan error: ",
    "scan error: ",
    "unable to initialize a scan service: ",
    "unable to initialize artifact: ",
    "unable to initialize container image: ",
];

/// Drops the leading [`WRAPPERS`] of an error chain.
fn strip_wrappers(mut message: &str) -> &str {
    while let Some(rest) = WRAPPERS.iter().find_map(|w| message.strip_prefix(w)) {
        message = rest;
    }
    message
}

/// Keeps the end of a long line, where the wrapped error chain names the root cause.
fn shorten_front(line: &str) -> String {
    let line: String = line.chars().filter(|c| !c.is_control()).collect();
    let count = line.chars().count();
    if count <= DETAIL_LINE_CHARS {
        return line;
    }
    let tail: String = line.chars().skip(count - DETAIL_LINE_CHARS).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trivy 0.76's stderr, captured scanning images in a local docker-registry 2.8.
    const MANIFEST_UNKNOWN: &str = include_str!("testdata/manifest-unknown.stderr");
    const BLOB_UNKNOWN: &str = include_str!("testdata/blob-unknown.stderr");
    const UNAUTHORIZED: &str = include_str!("testdata/unauthorized.stderr");
    const REFUSED: &str = include_str!("testdata/connection-refused.stderr");
    const NO_DB: &str = include_str!("testdata/no-db.stderr");
    const NO_JAVA_DB: &str = include_str!("testdata/no-java-db.stderr");

    #[test]
    fn sorts_real_trivy_failures_by_their_cause() {
        assert_eq!(
            classify_scan_failure(MANIFEST_UNKNOWN),
            ScanFailure::ImageNotFound
        );
        assert_eq!(
            classify_scan_failure(BLOB_UNKNOWN),
            ScanFailure::BlobMissing
        );
        assert_eq!(
            classify_scan_failure(UNAUTHORIZED),
            ScanFailure::RegistryAuth
        );
        assert_eq!(
            classify_scan_failure(REFUSED),
            ScanFailure::RegistryUnreachable
        );
        assert_eq!(classify_scan_failure(NO_DB), ScanFailure::DbMissing);
        assert_eq!(
            classify_scan_failure(NO_JAVA_DB),
            ScanFailure::JavaDbMissing
        );
    }

    #[test]
    fn sorts_other_failures_by_their_words() {
        let denied = "GET https://ghcr.io/v2/o/p/manifests/sha256:1: DENIED: permission_denied";
        assert_eq!(classify_scan_failure(denied), ScanFailure::RegistryAuth);
        let deadline = "FATAL\tscan error: context deadline exceeded";
        assert_eq!(classify_scan_failure(deadline), ScanFailure::TrivyTimedOut);
        let panic = "panic: runtime error: index out of range\n\ngoroutine 1 [running]:";
        assert_eq!(classify_scan_failure(panic), ScanFailure::Crashed);
        assert_eq!(classify_scan_failure("something new"), ScanFailure::Other);
        // A digest's hex can hold "401" without meaning a status.
        let digest = "GET /v2/a/manifests/sha256:401403aa: something odd";
        assert_eq!(classify_scan_failure(digest), ScanFailure::Other);
        let disk = "open /cache/fanal/fanal.db: permission denied";
        assert_eq!(classify_scan_failure(disk), ScanFailure::Other);
    }

    #[test]
    fn summary_keeps_the_fatal_line_and_the_registrys_words() {
        let summary = summarize_stderr(UNAUTHORIZED);

        assert!(
            summary.contains("UNAUTHORIZED: authentication required"),
            "{summary}"
        );
        assert!(
            summary.starts_with("unable to find the specified image"),
            "{summary}"
        );
        assert!(
            !summary.contains("2026-12-03"),
            "timestamps are dropped: {summary}"
        );
        assert!(!summary.contains("Fatal error"), "{summary}");
        assert!(
            summary.chars().count() <= DETAIL_LINES * (DETAIL_LINE_CHARS + 4),
            "{summary}"
        );
    }

    #[test]
    fn summary_starts_at_the_last_error_and_shows_few_lines() {
        let noisy = format!(
            "{}{NO_DB}",
            "2026-12-03T16:34:50Z\tINFO\tprogress\n".repeat(50)
        );
        let summary = summarize_stderr(&noisy);
        assert!(
            summary.starts_with("DB error: database error: --skip-db"),
            "{summary}"
        );
        assert!(!summary.contains("progress"), "{summary}");

        let plain = (1..=10).map(|i| format!("line {i}\n")).collect::<String>();
        assert_eq!(
            summarize_stderr(&plain),
            "line 7 | line 8 | line 9 | line 10"
        );
        assert_eq!(summarize_stderr("\n \n"), "trivy wrote nothing on stderr");
    }

    #[test]
    fn summary_shortens_a_long_line_to_its_end() {
        let long = format!("{}THE CAUSE", "x".repeat(5000));
        let summary = summarize_stderr(&long);
        assert!(
            summary.starts_with('…') && summary.ends_with("THE CAUSE"),
            "{summary}"
        );
        assert_eq!(summary.chars().count(), DETAIL_LINE_CHARS + 1);
    }
}
