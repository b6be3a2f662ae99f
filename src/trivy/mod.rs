//! The scan stage's one door to Trivy: the only place in dragnet that spawns a process.
//!
//! [`Trivy`] builds each command line in one place (`command`) and runs it without a shell,
//! with dragnet's environment less every `TRIVY_*`, `DRAGNET_*` and GitHub token variable
//! (registry credentials go in as `TRIVY_USERNAME`/`TRIVY_PASSWORD`, never argv), under a
//! deadline that kills its process group (`process`); stdout is read as the JSON report
//! ([`parse_report`]), and a failure is named after the cause in stderr ([`TrivyError`]).

mod command;
mod error;
mod process;
mod report;
mod server;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::{debug, warn};

use crate::finding::Severity;
use crate::scan::ScanOptions;

pub use error::TrivyError;
pub use report::{ReportError, SCHEMA_VERSION, ScanReport, parse_report};
pub use server::TrivyServer;

use command::go_duration;
use error::{ScanFailure, classify_scan_failure, summarize_stderr};
use process::{Captured, RunFailure};

/// A registry login for Trivy: the same type the registry client uses.
pub type RegistryCredentials = crate::registry::Credentials;

/// The Trivy release dragnet is built and tested against.
pub const SUPPORTED_VERSION: &str = "0.76";

/// The per-scan deadline when none is configured.
pub const DEFAULT_SCAN_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The most bytes of stdout read from one run; a real report for one image is a few MiB.
pub const DEFAULT_OUTPUT_LIMIT: usize = 512 * 1024 * 1024;

/// How long past its own `--timeout` Trivy may take before dragnet kills it, so that Trivy
/// can report its own deadline (and clean up its temp files) first.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The deadline of `trivy version`, which reads only local files.
const VERSION_DEADLINE: Duration = Duration::from_secs(60);

/// How dragnet runs Trivy.
#[derive(Debug, Clone)]
pub struct TrivyConfig {
    /// The Trivy executable: `--trivy PATH`, else `trivy` looked up on `PATH`.
    pub program: PathBuf,
    /// Trivy's `--cache-dir` (vulnerability DB and layer cache), under dragnet's cache dir.
    pub cache_dir: PathBuf,
    /// `--db-repository` values, in order; empty leaves Trivy's defaults.
    pub db_repositories: Vec<String>,
    /// The severities reported; empty reports all.
    pub severities: Vec<Severity>,
    /// Leave out vulnerabilities without a fixed version.
    pub ignore_unfixed: bool,
    /// The per-scan deadline: Trivy's `--timeout`, after which dragnet also kills it.
    pub timeout: Duration,
    /// Registry credentials, handed to Trivy through its environment only.
    pub credentials: Option<RegistryCredentials>,
}

impl TrivyConfig {
    /// A configuration with dragnet's defaults: `trivy` from `PATH`, CRITICAL and HIGH,
    /// fixed and unfixed, [`DEFAULT_SCAN_TIMEOUT`], Trivy's DB repositories, no credentials.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        TrivyConfig {
            program: PathBuf::from("trivy"),
            cache_dir: cache_dir.into(),
            db_repositories: Vec::new(),
            severities: vec![Severity::Critical, Severity::High],
            ignore_unfixed: false,
            timeout: DEFAULT_SCAN_TIMEOUT,
            credentials: None,
        }
    }
}

/// Trivy's version and the metadata of the vulnerability DB in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrivyVersion {
    /// Trivy's version (`0.76.0`).
    pub version: String,
    /// The DB's metadata; `None` before the DB was downloaded.
    pub db: Option<DbMetadata>,
}

/// The vulnerability DB's `metadata.json`, as `trivy version` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbMetadata {
    /// The DB schema version (2).
    pub version: u32,
    /// When the DB was built.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When a newer DB is expected.
    #[serde(with = "time::serde::rfc3339")]
    pub next_update: OffsetDateTime,
    /// When this cache downloaded it.
    #[serde(with = "time::serde::rfc3339")]
    pub downloaded_at: OffsetDateTime,
}

impl DbMetadata {
    /// `updated_at` in RFC 3339, as [`crate::scan::ScanRun::db_updated_at`] holds it.
    pub fn updated_at_rfc3339(&self) -> String {
        self.updated_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| self.updated_at.to_string())
    }
}

/// Runs Trivy as configured.
#[derive(Debug, Clone)]
pub struct Trivy {
    config: TrivyConfig,
    output_limit: usize,
    /// The `trivy server` image scans go to (see [`Trivy::serve`]), if any.
    server: Option<server::ServerAddress>,
}

impl Trivy {
    /// A runner for `config`; nothing is started until a method is called.
    pub fn new(config: TrivyConfig) -> Trivy {
        Trivy {
            config,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            server: None,
        }
    }

    /// Refuses stdout beyond `bytes` instead of [`DEFAULT_OUTPUT_LIMIT`].
    pub fn with_output_limit(mut self, bytes: usize) -> Trivy {
        self.output_limit = bytes;
        self
    }

    /// The configuration this runner uses.
    pub fn config(&self) -> &TrivyConfig {
        &self.config
    }

    /// The options that shape the findings, for [`crate::scan::ScanRun`].
    pub fn scan_options(&self) -> ScanOptions {
        let severities = Severity::ALL
            .into_iter()
            .filter(|s| self.config.severities.is_empty() || self.config.severities.contains(s))
            .collect();
        ScanOptions {
            severities,
            ignore_unfixed: self.config.ignore_unfixed,
        }
    }

    /// `trivy version --format json --cache-dir ..`: Trivy's version and the DB metadata.
    pub async fn version(&self) -> Result<TrivyVersion, TrivyError> {
        let what = "reading trivy's version";
        let args = command::version_args(&self.config);
        let captured = self.run(what, &args, VERSION_DEADLINE, false).await?;
        if !captured.status.success() {
            return Err(TrivyError::VersionFailed {
                status: captured.status.to_string(),
                detail: summarize_stderr(&String::from_utf8_lossy(&captured.stderr_tail)),
            });
        }

        let version = parse_version(&captured.stdout)?;
        if !is_supported(&version.version) {
            warn!(
                version = %version.version,
                "dragnet is tested with Trivy {SUPPORTED_VERSION}; its findings or report \
                 format may differ"
            );
        }
        Ok(version)
    }

    /// Downloads the vulnerability DB once (`trivy image --download-db-only`), from the
    /// configured `--db-repository` list.
    pub async fn download_db(&self) -> Result<(), TrivyError> {
        let what = "downloading the vulnerability DB";
        let args = command::download_db_args(&self.config);
        let captured = self
            .run(what, &args, self.config.timeout + KILL_GRACE, false)
            .await?;
        if captured.status.success() {
            return Ok(());
        }

        let repositories = if self.config.db_repositories.is_empty() {
            "Trivy's default repositories".to_string()
        } else {
            self.config
                .db_repositories
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(TrivyError::DbDownloadFailed {
            repositories,
            status: captured.status.to_string(),
            detail: summarize_stderr(&String::from_utf8_lossy(&captured.stderr_tail)),
        })
    }

    /// Scans one image, named by digest, with `--skip-db-update --skip-java-db-update`:
    /// the DB must have been downloaded before.
    pub async fn scan(&self, image: &str) -> Result<ScanReport, TrivyError> {
        check_image_ref(image)?;
        if !image.contains("@sha256:") {
            debug!(
                image,
                "scanning an image by tag; its content may change between runs"
            );
        }

        let what = format!("scanning image `{image}`");
        let server = self.server.as_ref().map(|s| s.url.as_str());
        let args = command::scan_args_with(&self.config, image, server);
        let deadline = self.config.timeout + KILL_GRACE;
        let captured = self.run(&what, &args, deadline, true).await?;

        if !captured.status.success() {
            return Err(self.scan_failure(image, what, &captured));
        }
        report::parse_report(&captured.stdout).map_err(|error| TrivyError::ReportUnusable {
            image: image.to_string(),
            error,
        })
    }

    /// The CycloneDX SBOM of one image (`trivy image --format=cyclonedx`), as Trivy wrote it.
    /// Credentials go through the environment, as for [`Trivy::scan`].
    pub async fn sbom(&self, image: &str) -> Result<Vec<u8>, TrivyError> {
        check_image_ref(image)?;
        let what = format!("listing the packages of image `{image}`");
        let args = command::sbom_args(&self.config, image);
        let deadline = self.config.timeout + KILL_GRACE;
        let captured = self.run(&what, &args, deadline, true).await?;
        if !captured.status.success() {
            return Err(self.scan_failure(image, what, &captured));
        }
        let unusable = |detail: String| TrivyError::SbomUnusable {
            image: image.to_string(),
            detail,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&captured.stdout).map_err(|e| unusable(e.to_string()))?;
        if value.get("bomFormat").and_then(|f| f.as_str()) != Some("CycloneDX") {
            return Err(unusable("no `bomFormat: CycloneDX`".into()));
        }
        Ok(captured.stdout)
    }

    /// Names a failed scan after the cause its stderr gives.
    fn scan_failure(&self, image: &str, what: String, captured: &Captured) -> TrivyError {
        let stderr = String::from_utf8_lossy(&captured.stderr_tail);
        let detail = summarize_stderr(&stderr);
        let status = captured.status.to_string();
        let image = image.to_string();

        if killed_by_signal(&captured.status) {
            return TrivyError::Crashed {
                what,
                status,
                detail,
            };
        }
        match classify_scan_failure(&stderr) {
            ScanFailure::DbMissing => TrivyError::DbMissing {
                cache_dir: self.config.cache_dir.clone(),
            },
            ScanFailure::JavaDbMissing => TrivyError::JavaDbMissing {
                image,
                cache_dir: self.config.cache_dir.clone(),
            },
            ScanFailure::BlobMissing => TrivyError::BlobMissing { image, detail },
            ScanFailure::ImageNotFound => TrivyError::ImageNotFound { image, detail },
            ScanFailure::RegistryAuth => TrivyError::RegistryAuth { image, detail },
            ScanFailure::RegistryUnreachable => TrivyError::RegistryUnreachable { image, detail },
            ScanFailure::TrivyTimedOut => TrivyError::TrivyTimedOut {
                what,
                deadline: go_duration(self.config.timeout),
                detail,
            },
            ScanFailure::Crashed => TrivyError::Crashed {
                what,
                status,
                detail,
            },
            ScanFailure::Other => TrivyError::ScanFailed {
                image,
                status,
                detail,
            },
        }
    }

    /// Runs Trivy with `args`, killing it after `deadline`.
    async fn run(
        &self,
        what: &str,
        args: &[OsString],
        deadline: Duration,
        with_credentials: bool,
    ) -> Result<Captured, TrivyError> {
        let program = &self.config.program;
        let credentials = self
            .config
            .credentials
            .as_ref()
            .filter(|_| with_credentials);
        debug!(
            program = %program.display(),
            args = ?args,
            credentials = credentials.is_some(),
            deadline = %go_duration(deadline),
            "running trivy"
        );

        let started = Instant::now();
        let mut command = command::command(program, args, credentials);
        if let Some(server) = self.server.as_ref().filter(|_| with_credentials) {
            // The server's token, like credentials, goes through the environment only.
            command.env("TRIVY_TOKEN", &server.token);
        }
        let result = process::run(command, deadline, self.output_limit).await;
        let elapsed_ms = started.elapsed().as_millis();

        let captured = result.map_err(|failure| match failure {
            RunFailure::Spawn(error) if error.kind() == std::io::ErrorKind::NotFound => {
                TrivyError::ProgramNotFound {
                    program: program.clone(),
                }
            }
            RunFailure::Spawn(error) => TrivyError::Spawn {
                program: program.clone(),
                error,
            },
            RunFailure::Io(error) => TrivyError::Io {
                what: what.to_string(),
                error,
            },
            RunFailure::TimedOut => TrivyError::TimedOut {
                what: what.to_string(),
                deadline: go_duration(self.config.timeout.min(deadline)),
            },
            RunFailure::StdoutTooLarge => TrivyError::OutputTooLarge {
                what: what.to_string(),
                limit: self.output_limit,
            },
        })?;
        debug!(
            status = %captured.status,
            elapsed_ms,
            stdout_bytes = captured.stdout.len(),
            "trivy finished"
        );
        Ok(captured)
    }
}

/// Refuses references Trivy could misread: empty, starting with `-`, or with whitespace or
/// control characters.
fn check_image_ref(image: &str) -> Result<(), TrivyError> {
    let reason = if image.is_empty() {
        "is empty"
    } else if image.starts_with('-') {
        "starts with `-` and could be read as a flag"
    } else if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "contains whitespace or control characters"
    } else {
        return Ok(());
    };
    Err(TrivyError::InvalidImageRef {
        image: image.escape_debug().to_string(),
        reason,
    })
}

fn killed_by_signal(status: &std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal().is_some()
}

fn is_supported(version: &str) -> bool {
    version
        .strip_prefix(SUPPORTED_VERSION)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Reads `trivy version --format json`.
fn parse_version(stdout: &[u8]) -> Result<TrivyVersion, TrivyError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Raw {
        version: String,
        #[serde(rename = "VulnerabilityDB")]
        vulnerability_db: Option<RawDb>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct RawDb {
        version: u32,
        #[serde(with = "time::serde::rfc3339")]
        updated_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        next_update: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        downloaded_at: OffsetDateTime,
    }

    let raw: Raw =
        serde_json::from_slice(stdout).map_err(|error| TrivyError::VersionUnreadable {
            bytes: stdout.len(),
            error,
        })?;
    Ok(TrivyVersion {
        version: raw.version,
        db: raw.vulnerability_db.map(|db| DbMetadata {
            version: db.version,
            updated_at: db.updated_at,
            next_update: db.next_update,
            downloaded_at: db.downloaded_at,
        }),
    })
}

#[cfg(test)]
mod tests;
