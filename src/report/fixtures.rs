//! Hand-built plans and scan runs for the report and SARIF tests: a small org whose images share
//! digests across tags and packages, with a failed scan, an unresolved version and a clean one.
//!
//! Only tests use this; nothing here touches a registry or Trivy.

use crate::finding::{Finding, Severity};
use crate::plan::{Plan, PlannedPackage, Platform, ResolveFailure, ScanTarget, TargetRef};
use crate::scan::{Outcome, ScanOptions, ScanResult, ScanRun};

/// A well-formed digest made of one repeated byte (`sha256:0101…`).
pub fn digest(byte: u8) -> String {
    format!("sha256:{}", format!("{byte:02x}").repeat(32))
}

pub fn linux(architecture: &str) -> Option<Platform> {
    Some(Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: None,
    })
}

/// A finding with the fields the outputs use; the rest left empty.
pub fn finding(id: &str, package: &str, version: &str, severity: Severity) -> Finding {
    Finding {
        vulnerability_id: id.into(),
        package_name: package.into(),
        installed_version: version.into(),
        fixed_version: None,
        severity,
        status: Some("affected".into()),
        package_path: None,
        class: "os-pkgs".into(),
        package_type: "debian".into(),
        title: Some(format!("{package}: a flaw")),
        description: Some(format!("A flaw in {package} lets an attacker do harm.")),
        cvss_score: Some(5.0),
        cwe_ids: vec!["CWE-787".into()],
        primary_url: Some(format!("https://avd.aquasec.com/nvd/{}", id.to_lowercase())),
        references: vec![format!("https://nvd.nist.gov/vuln/detail/{id}")],
    }
}

pub fn fixed(mut finding: Finding, version: &str) -> Finding {
    finding.fixed_version = Some(version.into());
    finding.status = Some("fixed".into());
    finding
}

pub fn reference(package: &str, version_digest: &str, tags: &[&str]) -> TargetRef {
    TargetRef {
        package: package.into(),
        version_digest: version_digest.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

pub fn target(digest: &str, platform: Option<Platform>, refs: Vec<TargetRef>) -> ScanTarget {
    ScanTarget {
        digest: digest.into(),
        image: format!("ghcr.io/acme/{}@{digest}", refs[0].package),
        platform,
        size: 1000,
        refs,
    }
}

pub fn scanned(digest: &str, findings: Vec<Finding>) -> ScanResult {
    ScanResult {
        digest: digest.into(),
        image: String::new(),
        duration_ms: 12_345,
        outcome: Outcome::Scanned {
            os: Some("debian 12.5".into()),
            findings,
        },
    }
}

pub fn failed(digest: &str, cause: &str) -> ScanResult {
    ScanResult {
        digest: digest.into(),
        image: String::new(),
        duration_ms: 800,
        outcome: Outcome::Failed {
            cause: cause.into(),
        },
    }
}

pub fn package(name: &str) -> PlannedPackage {
    PlannedPackage {
        name: name.into(),
        repository: Some(format!("acme/{name}")),
    }
}

/// The org:
/// - `app`: version 0x10 is a two-platform index tagged `1.0` and `latest` (images 0x01 amd64,
///   0x02 arm64); version 0x03 is untagged;
/// - `tools/cli`: tag `shared` points at image 0x01 too;
/// - `broken`: tag `v1` (image 0x04) fails to scan, tag `old` does not resolve;
/// - `clean`: tag `stable` (image 0x05) has no findings.
pub fn plan() -> Plan {
    let index = digest(0x10);
    Plan {
        owner: "Acme".into(),
        registry: "ghcr.io".into(),
        packages: ["app", "broken", "clean", "tools/cli"]
            .map(package)
            .to_vec(),
        targets: vec![
            target(
                &digest(0x01),
                linux("amd64"),
                vec![
                    reference("app", &index, &["latest", "1.0"]),
                    reference("tools/cli", &digest(0x01), &["shared"]),
                ],
            ),
            target(
                &digest(0x02),
                linux("arm64"),
                vec![reference("app", &index, &["latest", "1.0"])],
            ),
            target(
                &digest(0x03),
                linux("amd64"),
                vec![reference("app", &digest(0x03), &[])],
            ),
            target(
                &digest(0x04),
                linux("amd64"),
                vec![reference("broken", &digest(0x04), &["v1"])],
            ),
            target(
                &digest(0x05),
                None,
                vec![reference("clean", &digest(0x05), &["stable"])],
            ),
        ],
        unresolved: vec![ResolveFailure {
            package: "broken".into(),
            version_digest: digest(0x06),
            tags: vec!["old".into()],
            cause: "manifest unknown: the version was deleted from the registry".into(),
        }],
        selection: Default::default(),
    }
}

/// Findings for [`plan`]: libssl3 is CRITICAL on both `app` platforms; zlib HIGH without a fix
/// on amd64; django MEDIUM (a language package) on amd64; curl LOW on arm64; an UNKNOWN one on
/// the untagged image.
pub fn run() -> ScanRun {
    let libssl = fixed(
        finding("CVE-2024-0001", "libssl3", "3.0.11-1", Severity::Critical),
        "3.0.11-2",
    );
    let mut django = fixed(
        finding("GHSA-aaaa-bbbb-cccc", "django", "4.2.0", Severity::Medium),
        "4.2.7",
    );
    django.class = "lang-pkgs".into();
    django.package_type = "python-pkg".into();
    django.package_path =
        Some("usr/lib/python3/site-packages/Django-4.2.0.dist-info/METADATA".into());
    ScanRun {
        started_at: "2024-05-01T06:00:00Z".into(),
        duration_ms: 125_000,
        trivy_version: "0.76.0".into(),
        db_updated_at: Some("2024-05-01T00:00:00Z".into()),
        options: ScanOptions {
            severities: Severity::ALL.to_vec(),
            ignore_unfixed: false,
        },
        results: vec![
            scanned(
                &digest(0x01),
                vec![
                    libssl.clone(),
                    finding("CVE-2024-0002", "zlib1g", "1:1.2.13", Severity::High),
                    django,
                ],
            ),
            scanned(
                &digest(0x02),
                vec![
                    libssl,
                    finding("CVE-2024-0003", "curl", "7.88.1", Severity::Low),
                ],
            ),
            scanned(
                &digest(0x03),
                vec![finding("CVE-2024-0004", "tar", "1.34", Severity::Unknown)],
            ),
            failed(&digest(0x04), "pulling image: blob unknown to registry"),
            scanned(&digest(0x05), vec![]),
        ],
    }
}
