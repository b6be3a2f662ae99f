//! Trivy's JSON report (SchemaVersion 2) normalised into dragnet's [`Finding`]s.
//!
//! This is the only place that knows Trivy's report format. It is pure and tolerant: unknown
//! fields are ignored, absent or `null` lists mean "none", and an unknown severity becomes
//! [`Severity::Unknown`]; but output that is not JSON, or a report of another schema version,
//! is rejected with an error that says so, since guessing would silently lose findings.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::error::Category;

use crate::finding::{Finding, Severity};

/// The report schema this module reads (Trivy 0.76 writes `"SchemaVersion": 2`).
pub const SCHEMA_VERSION: u64 = 2;

/// What one Trivy scan of one image found.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanReport {
    /// The artifact Trivy scanned, as it named it (`ArtifactName`).
    pub artifact: String,
    /// The OS Trivy detected, as `family name` (`debian 12.5`), if any.
    pub os: Option<String>,
    /// Every vulnerability of every result, in Trivy's order.
    pub findings: Vec<Finding>,
}

/// Why a Trivy report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The bytes are not JSON at all (an HTML page, a log line, a truncated write).
    #[error("trivy's output is not JSON ({bytes} bytes): {source}")]
    NotJson {
        bytes: usize,
        #[source]
        source: serde_json::Error,
    },
    /// The JSON has no usable `SchemaVersion`, or another one than [`SCHEMA_VERSION`].
    #[error(
        "trivy's report has schema version {found}, expected {SCHEMA_VERSION}; \
         hint: dragnet reads the JSON of Trivy 0.76, check `trivy --version`"
    )]
    UnsupportedSchema { found: String },
    /// The JSON is a report of the right version, but a known field has the wrong shape.
    #[error("trivy's report does not have the expected shape ({bytes} bytes): {source}")]
    Malformed {
        bytes: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Normalises Trivy's JSON report into findings.
///
/// `Results[].Vulnerabilities[]` become [`Finding`]s carrying their result's `Class` and
/// `Type`; `Metadata.OS` becomes `family name`. A report without `Results` or
/// `Vulnerabilities` has no findings.
pub fn parse_report(json: &[u8]) -> Result<ScanReport, ReportError> {
    let bytes = json.len();

    // First the version alone, so that a report of another schema is named as such rather
    // than as whichever of its fields happens not to fit.
    let not_json = |source: serde_json::Error| ReportError::NotJson { bytes, source };
    let starts_an_object = json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_an_object {
        serde_json::from_slice::<IgnoredAny>(json).map_err(not_json)?;
        return Err(ReportError::UnsupportedSchema {
            found: "none (not a JSON object)".into(),
        });
    }
    let header: Header =
        serde_json::from_slice(json).map_err(|source| match source.classify() {
            Category::Data => ReportError::UnsupportedSchema {
                found: "none".into(),
            },
            Category::Io | Category::Syntax | Category::Eof => not_json(source),
        })?;
    match &header.schema_version {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(SCHEMA_VERSION) => {}
        Some(other) => {
            return Err(ReportError::UnsupportedSchema {
                found: other.to_string(),
            });
        }
        None => {
            return Err(ReportError::UnsupportedSchema {
                found: "none".into(),
            });
        }
    }

    let report: Report =
        serde_json::from_slice(json).map_err(|source| ReportError::Malformed { bytes, source })?;
    Ok(normalise(report))
}

fn normalise(report: Report) -> ScanReport {
    let os = report.metadata.and_then(|m| m.os).and_then(|os| {
        let family = os.family.unwrap_or_default();
        let name = os.name.unwrap_or_default();
        let joined = format!("{} {}", family.trim(), name.trim());
        let joined = joined.trim();
        (!joined.is_empty()).then(|| joined.to_string())
    });

    let mut findings = Vec::new();
    for result in report.results.unwrap_or_default() {
        let class = result.class.unwrap_or_default();
        let package_type = result.kind.unwrap_or_default();
        for vulnerability in result.vulnerabilities.unwrap_or_default() {
            findings.push(vulnerability.into_finding(&class, &package_type));
        }
    }

    ScanReport {
        artifact: report.artifact_name.unwrap_or_default(),
        os,
        findings,
    }
}

/// Just enough of a report to check its schema version.
#[derive(Deserialize)]
struct Header {
    #[serde(rename = "SchemaVersion")]
    schema_version: Option<serde_json::Value>,
}

/// The parts of Trivy's report dragnet uses; every other field is ignored.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Report {
    artifact_name: Option<String>,
    metadata: Option<Metadata>,
    results: Option<Vec<ReportResult>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Metadata {
    #[serde(rename = "OS")]
    os: Option<Os>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Os {
    family: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReportResult {
    class: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    vulnerabilities: Option<Vec<Vulnerability>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Vulnerability {
    #[serde(rename = "VulnerabilityID")]
    vulnerability_id: String,
    pkg_name: String,
    installed_version: Option<String>,
    fixed_version: Option<String>,
    severity: Option<String>,
    status: Option<String>,
    pkg_path: Option<String>,
    title: Option<String>,
    description: Option<String>,
    #[serde(rename = "CVSS")]
    cvss: Option<HashMap<String, Cvss>>,
    #[serde(rename = "CweIDs")]
    cwe_ids: Option<Vec<String>>,
    #[serde(rename = "PrimaryURL")]
    primary_url: Option<String>,
    references: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Cvss {
    #[serde(rename = "V3Score")]
    v3_score: Option<f64>,
}

impl Vulnerability {
    fn into_finding(self, class: &str, package_type: &str) -> Finding {
        let cvss_score = self
            .cvss
            .unwrap_or_default()
            .values()
            .filter_map(|source| source.v3_score)
            .fold(None, |best: Option<f64>, score| {
                Some(best.map_or(score, |b| b.max(score)))
            });

        Finding {
            vulnerability_id: self.vulnerability_id,
            package_name: self.pkg_name,
            installed_version: self.installed_version.unwrap_or_default(),
            fixed_version: non_empty(self.fixed_version),
            // Trivy's own rating (vendor first, then NVD); a name it adds later is Unknown
            // rather than a failed scan.
            severity: self
                .severity
                .and_then(|s| s.parse::<Severity>().ok())
                .unwrap_or(Severity::Unknown),
            status: non_empty(self.status),
            package_path: non_empty(self.pkg_path),
            class: class.to_string(),
            package_type: package_type.to_string(),
            title: non_empty(self.title),
            description: non_empty(self.description),
            cvss_score,
            cwe_ids: self.cwe_ids.unwrap_or_default(),
            primary_url: non_empty(self.primary_url),
            references: self.references.unwrap_or_default(),
        }
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests;
