//! dragnet's own vocabulary for what a scan found, independent of Trivy's JSON.
//!
//! [`crate::trivy`] normalises Trivy's report into [`Finding`]s; SARIF, the summary and the
//! JSON results are all written from these, so no other module reads Trivy's format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A severity as Trivy rates it, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Unknown,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Unknown,
    ];

    /// The name Trivy uses (`CRITICAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a severity name that Trivy does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown severity `{0}`: expected one of CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN")]
pub struct UnknownSeverity(String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "UNKNOWN" => Ok(Severity::Unknown),
            "LOW" => Ok(Severity::Low),
            "MEDIUM" => Ok(Severity::Medium),
            "HIGH" => Ok(Severity::High),
            "CRITICAL" => Ok(Severity::Critical),
            _ => Err(UnknownSeverity(s.to_string())),
        }
    }
}

/// One vulnerability in one installed package of one scanned image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The advisory id (`CVE-2023-5363`, `GHSA-…`).
    pub vulnerability_id: String,
    /// The installed package's name (`libssl3`, `django`).
    pub package_name: String,
    /// The installed version.
    pub installed_version: String,
    /// The version that fixes it, when one exists.
    pub fixed_version: Option<String>,
    /// Trivy's rating, which prefers the data source's vendor over NVD.
    pub severity: Severity,
    /// Trivy's status (`fixed`, `affected`, `will_not_fix`, …).
    pub status: Option<String>,
    /// The file the package was found in, for language packages (`usr/lib/python3/…/METADATA`).
    pub package_path: Option<String>,
    /// The package class Trivy reported (`os-pkgs`, `lang-pkgs`).
    pub class: String,
    /// The package type (`debian`, `alpine`, `python-pkg`).
    pub package_type: String,
    /// The advisory's title, when the DB has one.
    pub title: Option<String>,
    /// The advisory's description.
    pub description: Option<String>,
    /// The highest CVSS v3 score any source gave, for reference only.
    pub cvss_score: Option<f64>,
    /// CWE ids (`CWE-787`).
    pub cwe_ids: Vec<String>,
    /// The advisory's main page.
    pub primary_url: Option<String>,
    /// Further references.
    pub references: Vec<String>,
}

impl Finding {
    /// True when a fixed version exists.
    pub fn is_fixable(&self) -> bool {
        self.fixed_version.as_deref().is_some_and(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_severities_case_insensitively_and_orders_them() {
        assert_eq!("critical".parse::<Severity>().unwrap(), Severity::Critical);
        assert_eq!(" HIGH ".parse::<Severity>().unwrap(), Severity::High);
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Low > Severity::Unknown);
        let err = "severe".parse::<Severity>().unwrap_err().to_string();
        assert!(
            err.contains("`severe`") && err.contains("CRITICAL"),
            "{err}"
        );
    }
}
