//! SARIF 2.1.0 for GitHub code scanning: one run per package, category `dragnet/<package>`.
//!
//! Rules are vulnerability ids rated with Trivy's severity (never the CVSS score); a result is
//! one vulnerable installed package across all of the package's images, fingerprinted without
//! tags or digests so alerts survive retagging. A package none of whose images was scanned gets
//! no run at all, since an empty run would close its open alerts (see [`build`]). Files are cut
//! to GitHub's limits in [`pack`], which says what it had to leave out.

mod location;
mod model;
pub mod pack;
mod text;

#[cfg(test)]
#[path = "../../tests/support/sarif_validate.rs"]
mod sarif_validate;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest as _, Sha256};

use crate::finding::{Finding, Severity};
use crate::report::{ImageStatus, PackageReport, PackageStatus, Report, single_line};

pub use location::{LocationTemplate, TemplateError};
pub use model::{
    ArtifactLocation, AutomationDetails, Level, Location, Message, MultiformatMessage,
    PhysicalLocation, Region, ReportingConfiguration, ReportingDescriptor, RuleProperties, Run,
    SARIF_VERSION, SCHEMA_URI, SarifLog, SarifResult, Tool, ToolComponent,
};
pub use pack::{Limits, Omission, OmissionReason};

/// The run property naming the package a run belongs to.
pub const PACKAGE_PROPERTY: &str = "dragnet/package";
/// The run property naming the repository the package is linked to, when it is.
pub const REPOSITORY_PROPERTY: &str = "dragnet/repository";

/// The `partialFingerprints` key dragnet writes. Its value is the hex SHA-256 of the package
/// name, vulnerability id, installed package name, installed version and package path, each
/// followed by a NUL byte. Changing what is hashed needs a new key (`dragnet/v2`).
pub const FINGERPRINT_KEY: &str = "dragnet/v1";

/// GitHub keeps at most this many results per run; beyond it the least severe are dropped.
pub const MAX_RESULTS_PER_RUN: usize = pack::MAX_RESULTS_PER_RUN;

/// Where to learn about Trivy, which found the vulnerabilities.
const TRIVY_URI: &str = "https://github.com/aquasecurity/trivy";

/// What the SARIF says about dragnet itself and how it is split into files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SarifOptions {
    /// dragnet's version, written as the driver's `version` and `semanticVersion`.
    pub tool_version: String,
    /// Runs per file; GitHub accepts at most 20.
    pub max_runs_per_file: usize,
    /// dragnet's home page, written as the driver's `informationUri`. The Multitool warns when
    /// it is missing; GitHub does not need it.
    pub information_uri: Option<String>,
    /// Where alerts point (`--location-template`); `containers/<package>` when `None`.
    pub location: Option<LocationTemplate>,
}

impl Default for SarifOptions {
    /// This build's version and repository (from `Cargo.toml`), and 20 runs per file.
    fn default() -> Self {
        let repository = env!("CARGO_PKG_REPOSITORY");
        SarifOptions {
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            max_runs_per_file: 20,
            information_uri: (!repository.is_empty()).then(|| repository.to_string()),
            location: None,
        }
    }
}

/// The code scanning category of a package's analysis (`dragnet/products/bfx/samtools`).
///
/// A run's `automationDetails.id` is this with a trailing `/` (see [`automation_id`]): GitHub
/// takes everything before the last `/` as the category, so a name with slashes stays whole.
pub fn category(package: &str) -> String {
    format!("dragnet/{package}")
}

/// The `automationDetails.id` of a package's run: its [`category`] and a trailing `/`.
pub fn automation_id(package: &str) -> String {
    format!("{}/", category(package))
}

/// The package a category (as GitHub lists it, with or without the trailing `/`) belongs to,
/// or `None` for a category dragnet did not write. Used to find analyses of deleted packages.
pub fn package_of_category(category: &str) -> Option<&str> {
    let package = category.strip_prefix("dragnet/")?;
    let package = package.strip_suffix('/').unwrap_or(package);
    (!package.is_empty()).then_some(package)
}

/// The location every result of a package points at: `containers/<package>`, a relative path
/// that stays the same from run to run. Segments that are empty, `.` or `..` are dropped and
/// any character outside `A-Za-z0-9._-` becomes `_`, so no name can climb out of the
/// repository or form an absolute or invalid URI.
pub fn artifact_uri(package: &str) -> String {
    format!("containers/{}", location::safe_path(package))
}

/// The [`FINGERPRINT_KEY`] value of a finding in a package: stable while the same installed
/// package stays vulnerable, whatever tags or digests carry it.
pub fn fingerprint(package: &str, finding: &Finding) -> String {
    let mut hasher = Sha256::new();
    for part in [
        package,
        &finding.vulnerability_id,
        &finding.package_name,
        &finding.installed_version,
        finding.package_path.as_deref().unwrap_or(""),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

/// The `security-severity` that makes GitHub show Trivy's rating: GitHub shows 9.0 and above
/// as critical, 7.0–8.9 high, 4.0–6.9 medium and 0.1–3.9 low.
///
/// UNKNOWN (no data source rated it) maps to `1.0`: shown as low, below every rated LOW (2.0),
/// so that it neither fails a "high or higher" gate on no evidence nor disappears; its tags
/// and message still say UNKNOWN.
pub fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Unknown => "1.0",
    }
}

/// The SARIF level of a severity: `error` for CRITICAL and HIGH, `warning` for MEDIUM, `note`
/// for LOW and UNKNOWN.
pub fn level(severity: Severity) -> Level {
    match severity {
        Severity::Critical | Severity::High => Level::Error,
        Severity::Medium => Level::Warning,
        Severity::Low | Severity::Unknown => Level::Note,
    }
}

/// The SARIF files for a report, and what had to be left out of them.
#[derive(Debug, Clone, PartialEq)]
pub struct SarifFiles {
    /// SARIF logs within GitHub's limits, in package order.
    pub logs: Vec<serde_json::Value>,
    /// Runs that lost results to GitHub's limits (the least severe go first).
    pub omissions: Vec<Omission>,
}

/// Builds the SARIF files for a report: one run per package, at most
/// `options.max_runs_per_file` runs and [`pack::MAX_GZIPPED_BYTES`] per file, never two runs
/// of one category in a file, at most [`MAX_RESULTS_PER_RUN`] results per run.
///
/// Which packages get a run:
/// - a package with at least one image scanned gets a run, even with no results, so that an
///   image that was fixed closes its alerts;
/// - a package none of whose images was scanned (every scan failed, nothing resolved, or no
///   version at all) gets no run: an empty run would close real alerts because of a transient
///   failure. Its previous analysis stays as it was;
/// - a partly scanned package gets a run with what was scanned. Alerts only its failed images
///   carry close until they are scanned again (then reopen, as fingerprints are stable);
///   withholding the run instead would let one permanently broken old version (a deleted
///   blob) freeze the package's alerts for good.
///
/// Every file lists, in its `properties`, the categories of every package the report covers
/// (all but those with no version at all), so that the upload can tell a category that is
/// gone (and must be closed) from one whose scan failed this time (and must be kept).
///
/// Output is deterministic: runs sorted by package, rules by id, results by rule, package,
/// version and path; the same report gives byte-identical JSON.
pub fn build(report: &Report, options: &SarifOptions) -> SarifFiles {
    let runs: Vec<serde_json::Value> = report
        .packages
        .iter()
        .filter_map(|package| package_run(report, package, options))
        .filter_map(|run| match serde_json::to_value(&run) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(%error, "cannot serialise a SARIF run");
                None
            }
        })
        .collect();
    let limits = Limits {
        max_runs_per_file: options.max_runs_per_file,
        ..Limits::default()
    };
    let packed = pack::pack(runs, &limits, &covered_categories(report));
    SarifFiles {
        logs: packed.logs,
        omissions: packed.omissions,
    }
}

/// The summary section naming what was left out of the SARIF to fit GitHub's limits; empty
/// when nothing was.
pub fn omissions_markdown(omissions: &[Omission]) -> String {
    if omissions.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "### Left out of the SARIF

GitHub keeps at most 25,000 results per run and 10 MB \
         per upload; these runs keep their most severe results (all of them are in \
         `results.json`):\n\n",
    );
    for omission in omissions {
        out.push_str("- ⚠️ ");
        out.push_str(&crate::report::escape_inline(&omission.to_string(), 600));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// The categories a report speaks for: every package but those without any version.
pub fn covered_categories(report: &Report) -> BTreeSet<String> {
    report
        .packages
        .iter()
        .filter(|p| p.status != PackageStatus::Empty)
        .map(|p| category(&p.name))
        .collect()
}

/// A SARIF file's content: pretty-printed JSON ending with a newline, byte-identical for equal
/// logs (every map is ordered).
pub fn sarif_json(log: &serde_json::Value) -> String {
    // A JSON value always serialises; the fallback keeps the function total all the same.
    match serde_json::to_string_pretty(log) {
        Ok(mut json) => {
            json.push('\n');
            json
        }
        Err(error) => {
            tracing::error!(%error, "cannot serialise SARIF");
            String::from("{}\n")
        }
    }
}

/// One vulnerable installed package, across the package's images that have it.
struct Hit<'a> {
    /// The finding as the first image (by digest) reported it.
    finding: &'a Finding,
    /// The highest severity any image reported for it.
    severity: Severity,
    /// Every fixed version reported.
    fixed: BTreeSet<&'a str>,
    /// The images (digests) that have it.
    digests: BTreeSet<&'a str>,
}

/// How an image of the package is reached: its tags and the untagged versions that lead to it.
#[derive(Default)]
struct Labels<'a> {
    tags: BTreeSet<&'a str>,
    untagged: BTreeSet<&'a str>,
}

fn package_run(report: &Report, package: &PackageReport, options: &SarifOptions) -> Option<Run> {
    let digests = package.scanned_digests();
    if digests.is_empty() {
        tracing::debug!(package = %package.name, "no image scanned: no SARIF run, alerts kept");
        return None;
    }

    // Which tags lead to each scanned image of this package (not of other packages sharing it).
    let mut labels: BTreeMap<&str, Labels> = BTreeMap::new();
    for version in &package.versions {
        for image in version
            .images
            .iter()
            .filter(|i| i.status == ImageStatus::Scanned)
        {
            let entry = labels.entry(image.digest.as_str()).or_default();
            if version.tags.is_empty() {
                entry.untagged.insert(version.digest.as_str());
            } else {
                entry.tags.extend(version.tags.iter().map(String::as_str));
            }
        }
    }

    // Fold every image's findings into one hit per vulnerable installed package.
    let mut hits: BTreeMap<(&str, &str, &str, &str), Hit> = BTreeMap::new();
    for digest in &digests {
        let Some(image) = report.image(digest) else {
            continue;
        };
        for finding in &image.findings {
            let key = crate::report::finding_key(finding);
            let hit = hits.entry(key).or_insert_with(|| Hit {
                finding,
                severity: finding.severity,
                fixed: BTreeSet::new(),
                digests: BTreeSet::new(),
            });
            hit.severity = hit.severity.max(finding.severity);
            hit.digests.insert(image.digest.as_str());
            if let Some(fixed) = finding.fixed_version.as_deref().filter(|v| !v.is_empty()) {
                hit.fixed.insert(fixed);
            }
        }
    }
    let hits: Vec<Hit> = hits.into_values().collect();

    // One rule per vulnerability id and severity, so that the severity GitHub shows for every
    // alert is the one Trivy gave it: the most severe group of an id keeps the bare id, a less
    // severe one is `<id>/<severity>`. Rules in id order, most severe first; results follow.
    let mut by_rule: BTreeMap<(&str, std::cmp::Reverse<Severity>), Vec<&Hit>> = BTreeMap::new();
    for hit in &hits {
        by_rule
            .entry((
                hit.finding.vulnerability_id.as_str(),
                std::cmp::Reverse(hit.severity),
            ))
            .or_default()
            .push(hit);
    }
    let context = text::Context {
        image: &package.image,
        labels: &labels,
    };
    let uri = match &options.location {
        Some(template) => template.render(&package.name, &report.owner),
        None => artifact_uri(&package.name),
    };
    let mut rules = Vec::with_capacity(by_rule.len());
    let mut results = Vec::with_capacity(hits.len());
    let mut previous_id = None;
    for (index, ((id, std::cmp::Reverse(severity)), rule_hits)) in by_rule.iter().enumerate() {
        let rule_id = if previous_id == Some(*id) {
            format!("{id}/{}", severity.as_str().to_ascii_lowercase())
        } else {
            id.to_string()
        };
        previous_id = Some(*id);
        rules.push(rule(&rule_id, id, *severity, rule_hits, &context));
        for hit in rule_hits {
            results.push(SarifResult {
                rule_id: rule_id.clone(),
                rule_index: index,
                level: level(hit.severity),
                message: Message {
                    text: text::result_message(hit, &context),
                },
                locations: vec![Location {
                    physical_location: PhysicalLocation {
                        artifact_location: ArtifactLocation { uri: uri.clone() },
                        region: Region { start_line: 1 },
                    },
                }],
                partial_fingerprints: BTreeMap::from([(
                    FINGERPRINT_KEY.to_string(),
                    fingerprint(&package.name, hit.finding),
                )]),
            });
        }
    }

    let mut properties = BTreeMap::new();
    properties.insert(
        PACKAGE_PROPERTY.to_string(),
        serde_json::Value::from(package.name.clone()),
    );
    if let Some(repository) = &package.repository {
        properties.insert(
            REPOSITORY_PROPERTY.to_string(),
            serde_json::Value::from(repository.clone()),
        );
    }
    Some(Run {
        tool: Tool {
            driver: driver(options, rules),
            extensions: vec![trivy(report)],
        },
        automation_details: AutomationDetails {
            id: automation_id(&package.name),
        },
        results,
        properties,
    })
}

/// The rule `rule_id` for the vulnerability `id` at one severity.
fn rule(
    rule_id: &str,
    id: &str,
    severity: Severity,
    hits: &[&Hit],
    context: &text::Context,
) -> ReportingDescriptor {
    let first = hits[0].finding;
    let title = first
        .title
        .as_deref()
        .map(|t| single_line(t, 200))
        .filter(|t| !t.is_empty());
    let description = first
        .description
        .as_deref()
        .map(|d| single_line(d, 2000))
        .filter(|d| !d.is_empty());
    let name = match first.class.as_str() {
        "os-pkgs" => "OsPackageVulnerability",
        "lang-pkgs" => "LanguagePackageVulnerability",
        _ => "PackageVulnerability",
    };

    let mut tags = vec!["vulnerability".to_string(), "security".to_string()];
    tags.push(severity.as_str().to_string());
    let cwes: BTreeSet<String> = hits
        .iter()
        .flat_map(|h| &h.finding.cwe_ids)
        .filter_map(|c| cwe_tag(c))
        .collect();
    tags.extend(cwes);

    let references = text::references(hits);
    ReportingDescriptor {
        id: rule_id.to_string(),
        name: name.to_string(),
        short_description: Message {
            text: title.clone().unwrap_or_else(|| id.to_string()),
        },
        full_description: Message {
            text: description.or(title).unwrap_or_else(|| id.to_string()),
        },
        help_uri: references.first().cloned(),
        help: text::rule_help(id, severity, hits, &references, context),
        default_configuration: ReportingConfiguration {
            level: level(severity),
        },
        properties: RuleProperties {
            security_severity: security_severity(severity).to_string(),
            precision: "very-high".to_string(),
            tags,
        },
    }
}

/// `CWE-787` as GitHub's tag for it, `external/cwe/cwe-787`; `None` for anything else.
fn cwe_tag(cwe: &str) -> Option<String> {
    let number = cwe.trim().to_ascii_uppercase();
    let number = number.strip_prefix("CWE-")?;
    let valid =
        !number.is_empty() && number.len() <= 6 && number.bytes().all(|b| b.is_ascii_digit());
    valid.then(|| format!("external/cwe/cwe-{number}"))
}

fn driver(options: &SarifOptions, rules: Vec<ReportingDescriptor>) -> ToolComponent {
    ToolComponent {
        name: "dragnet".to_string(),
        version: Some(options.tool_version.clone()),
        semantic_version: Some(options.tool_version.clone()),
        information_uri: options.information_uri.clone(),
        rules: Some(rules),
        properties: BTreeMap::new(),
    }
}

/// Trivy as an extension of the driver: it found what dragnet reports.
fn trivy(report: &Report) -> ToolComponent {
    let mut properties = BTreeMap::new();
    if let Some(updated_at) = &report.run.db_updated_at {
        properties.insert(
            "dbUpdatedAt".to_string(),
            serde_json::Value::from(updated_at.clone()),
        );
    }
    ToolComponent {
        name: "Trivy".to_string(),
        version: Some(report.run.trivy_version.clone()),
        semantic_version: None,
        information_uri: Some(TRIVY_URI.to_string()),
        rules: None,
        properties,
    }
}
