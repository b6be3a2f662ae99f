//! The report stage: scan results fanned back out to the packages, versions and tags that lead
//! to each image, with run metadata, totals, and every failure with its cause.
//!
//! [`Report`] is exactly what `results.json` holds (its schema is `docs/results-schema.md`); the
//! summary Markdown and the SARIF are both written from it, so all outputs count the same way:
//! a finding counts once per image (manifest digest), and a tag shows its image's counts.

mod build;
#[cfg(test)]
pub(crate) mod fixtures;
mod html;
mod markdown;
mod summary;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::finding::{Finding, Severity};
use crate::plan::{Platform, TargetRef};
use crate::scan::ScanOptions;

pub(crate) use build::finding_key;
pub use html::report_html;
pub(crate) use markdown::{escape_inline, short_digest, single_line};
pub use summary::summary_markdown;

/// The version of the `results.json` layout; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// What a run scanned, found and failed to do: the content of `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA_VERSION`] for reports this build writes.
    pub schema_version: u32,
    /// The owner whose packages were scanned.
    pub owner: String,
    /// The registry host the images were pulled from.
    pub registry: String,
    /// When and with what the scan ran.
    pub run: RunInfo,
    /// Counts over the whole run.
    pub totals: Totals,
    /// Every package, sorted by name, with its versions, tags and per-image status.
    pub packages: Vec<PackageReport>,
    /// Every scan target (one per unique platform manifest digest), sorted by digest, with its
    /// findings. Packages refer to these by digest.
    pub images: Vec<ImageReport>,
    /// Every version that could not be resolved and every image that could not be scanned.
    pub failures: Vec<Failure>,
    /// What the version filters left out, by reason, and the untagged versions scanned as
    /// platforms of a tagged image.
    #[serde(default, skip_serializing_if = "crate::filter::Selection::is_empty")]
    pub selection: crate::filter::Selection,
    /// The ignore entries (ignore files, allowlists) in force and what they matched, and
    /// those that have expired.
    #[serde(default, skip_serializing_if = "IgnoreSummary::is_empty")]
    pub ignore: IgnoreSummary,
}

/// What the ignore files and allowlists did in this run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoreSummary {
    /// Every entry in force, with how many findings it matched (counted once per image).
    pub entries: Vec<IgnoreEntry>,
    /// Entries past their expiry date: they ignore nothing any more.
    pub expired: Vec<IgnoreEntry>,
}

impl IgnoreSummary {
    /// True when no ignore file or allowlist was given, or they were empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.expired.is_empty()
    }
}

/// One ignore entry and what it matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoreEntry {
    /// The vulnerability id it names.
    pub id: String,
    /// Where it is written, why, and until when.
    #[serde(flatten)]
    pub reason: crate::ignore::IgnoreReason,
    /// Findings it matched, counted once per image.
    pub matched: usize,
}

/// A finding an ignore entry took out of the SARIF and the counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IgnoredFinding {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// The entry that ignores it.
    pub ignored_by: crate::ignore::IgnoreReason,
}

/// When and with what the scan ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    /// When the scan stage started (RFC 3339, UTC).
    pub started_at: String,
    /// Wall time of the scan stage in milliseconds.
    pub duration_ms: u64,
    /// The Trivy version that scanned.
    pub trivy_version: String,
    /// When the vulnerability DB was built (RFC 3339), when Trivy said.
    pub db_updated_at: Option<String>,
    /// The options that shaped the findings.
    pub options: ScanOptions,
}

/// Findings counted by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub unknown: usize,
}

impl SeverityCounts {
    /// Counts the given findings.
    pub fn of<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> Self {
        let mut counts = SeverityCounts::default();
        for finding in findings {
            *counts.slot(finding.severity) += 1;
        }
        counts
    }

    /// Counts one more finding of `severity`.
    pub fn count(&mut self, severity: Severity) {
        *self.slot(severity) += 1;
    }

    /// The count for one severity.
    pub fn get(&self, severity: Severity) -> usize {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Unknown => self.unknown,
        }
    }

    /// The number of findings of any severity.
    pub fn total(&self) -> usize {
        Severity::ALL.iter().map(|s| self.get(*s)).sum()
    }

    /// Adds another set of counts to this one.
    pub fn add(&mut self, other: &SeverityCounts) {
        for severity in Severity::ALL {
            *self.slot(severity) += other.get(severity);
        }
    }

    fn slot(&mut self, severity: Severity) -> &mut usize {
        match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Unknown => &mut self.unknown,
        }
    }
}

/// Counts over the whole run. Findings count once per image (digest), however many tags or
/// packages lead to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Packages in the plan.
    pub packages: usize,
    /// Package versions (distinct package and version digest), resolved or not.
    pub versions: usize,
    /// Distinct (package, tag) pairs.
    pub tags: usize,
    /// Unique platform manifest digests planned.
    pub images: usize,
    /// Of those, scanned successfully.
    pub images_scanned: usize,
    /// Of those, failed (or produced no result).
    pub images_failed: usize,
    /// Versions the registry could not resolve to any image.
    pub versions_unresolved: usize,
    /// Findings by severity, summed over scanned images.
    pub findings: SeverityCounts,
    /// Findings with a fixed version, summed over scanned images.
    pub fixable: usize,
    /// Distinct vulnerability ids over all scanned images.
    pub vulnerabilities: usize,
    /// Findings ignored by an ignore file or allowlist, summed over scanned images (not in
    /// `findings`).
    #[serde(default)]
    pub ignored: usize,
}

/// Whether one image was scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    /// Trivy finished; the findings may be empty.
    Scanned,
    /// Trivy failed, or no scan result came back for this image.
    Failed,
}

/// One scan target with its outcome and findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageReport {
    /// The platform manifest digest.
    pub digest: String,
    /// The reference that was scanned (`registry/owner/package@sha256:…`).
    pub image: String,
    /// The platform, when the registry said.
    pub platform: Option<Platform>,
    /// The compressed size in bytes.
    pub size: u64,
    /// Every package version and tag that leads to this image.
    pub refs: Vec<TargetRef>,
    /// Whether the scan succeeded.
    pub status: ImageStatus,
    /// How long the scan took, when there is a scan result.
    pub duration_ms: Option<u64>,
    /// The OS Trivy detected, if any.
    pub os: Option<String>,
    /// Findings by severity.
    pub counts: SeverityCounts,
    /// Findings with a fixed version.
    pub fixable: usize,
    /// The findings, sorted by vulnerability id, package, version and path, without duplicates.
    pub findings: Vec<Finding>,
    /// Findings an ignore file or allowlist took out, in the same order, with the entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<IgnoredFinding>,
    /// Why the scan failed.
    pub cause: Option<String>,
}

/// How completely a package was scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageStatus {
    /// Every image of every version was scanned.
    Scanned,
    /// Some images were scanned, some failed or some versions did not resolve.
    Partial,
    /// Nothing was scanned: every image failed, no version resolved, or the versions could
    /// not be listed.
    Failed,
    /// The package had no version left to scan.
    Empty,
}

/// One package with its versions and their images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageReport {
    /// The package name (`products/bfx/samtools`).
    pub name: String,
    /// The linked repository, when there is one.
    pub repository: Option<String>,
    /// The image name without tag or digest (`ghcr.io/acme/products/bfx/samtools`).
    pub image: String,
    /// How completely it was scanned.
    pub status: PackageStatus,
    /// Distinct image digests of this package that were scanned.
    pub images_scanned: usize,
    /// Distinct image digests of this package that failed.
    pub images_failed: usize,
    /// Findings by severity, summed over the package's distinct scanned images.
    pub counts: SeverityCounts,
    /// Findings with a fixed version, summed likewise.
    pub fixable: usize,
    /// Findings ignored by an ignore file or allowlist, summed likewise.
    #[serde(default)]
    pub ignored: usize,
    /// Its versions, tagged ones first sorted by their first tag, then untagged by digest.
    pub versions: Vec<VersionReport>,
    /// Why its versions could not be listed, when discovery failed for the whole package.
    pub cause: Option<String>,
}

impl PackageReport {
    /// The digests of this package's images that were scanned successfully, sorted.
    pub fn scanned_digests(&self) -> Vec<&str> {
        let mut digests: Vec<&str> = self
            .versions
            .iter()
            .flat_map(|v| &v.images)
            .filter(|i| i.status == ImageStatus::Scanned)
            .map(|i| i.digest.as_str())
            .collect();
        digests.sort_unstable();
        digests.dedup();
        digests
    }
}

/// How completely a package version was scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Every platform image was scanned.
    Scanned,
    /// Some platform images failed.
    Partial,
    /// Every platform image failed.
    Failed,
    /// The registry could not resolve the version to any image.
    Unresolved,
}

/// One package version: a digest (maybe an index), its tags and its platform images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionReport {
    /// The version's digest, as the Packages API named it.
    pub digest: String,
    /// Its tags, sorted; empty for an untagged version.
    pub tags: Vec<String>,
    /// How completely it was scanned.
    pub status: VersionStatus,
    /// One entry per platform image, sorted by platform then digest; empty when unresolved.
    pub images: Vec<VersionImage>,
    /// Why the version could not be resolved.
    pub cause: Option<String>,
}

/// One platform image of a version, with the counts of its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionImage {
    /// The platform manifest digest: the key into [`Report::images`].
    pub digest: String,
    /// The platform, when the registry said.
    pub platform: Option<Platform>,
    /// Whether the image was scanned.
    pub status: ImageStatus,
    /// How long its scan took.
    pub duration_ms: Option<u64>,
    /// The image's findings by severity.
    pub counts: SeverityCounts,
    /// The image's findings with a fixed version.
    pub fixable: usize,
}

/// Something that kept an image from being scanned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Failure {
    /// The registry could not resolve a package version to images; an empty `version_digest`
    /// means discovery could not list the package's versions at all.
    Resolve {
        package: String,
        version_digest: String,
        tags: Vec<String>,
        cause: String,
    },
    /// Trivy could not scan an image (or returned no result for it).
    Scan {
        digest: String,
        image: String,
        platform: Option<Platform>,
        refs: Vec<TargetRef>,
        cause: String,
    },
}

impl Failure {
    /// Why it failed.
    pub fn cause(&self) -> &str {
        match self {
            Failure::Resolve { cause, .. } | Failure::Scan { cause, .. } => cause,
        }
    }
}

impl Report {
    /// The scan target with this digest.
    pub fn image(&self, digest: &str) -> Option<&ImageReport> {
        self.images
            .binary_search_by(|i| i.digest.as_str().cmp(digest))
            .ok()
            .map(|index| &self.images[index])
    }

    /// True when any version was unresolved or any image failed.
    pub fn has_failures(&self) -> bool {
        !self.failures.is_empty()
    }
}

/// The report as pretty-printed JSON (`results.json`), ending with a newline.
pub fn results_json(report: &Report) -> String {
    // Serialising plain structs of strings and numbers cannot fail; keep a readable fallback
    // rather than a panic in case a future field changes that.
    match serde_json::to_string_pretty(report) {
        Ok(mut json) => {
            json.push('\n');
            json
        }
        Err(error) => {
            let error = serde_json::Value::String(error.to_string());
            format!("{{\"schema_version\": {SCHEMA_VERSION}, \"error\": {error}}}\n")
        }
    }
}
