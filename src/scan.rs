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

