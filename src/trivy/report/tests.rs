//! Reports shaped like Trivy 0.76's `trivy image --format json` output, written by hand from a
//! real run against a local registry (fields dragnet ignores are kept to prove they are).

use super::*;

/// One Debian image with an OS result (two CVEs) and a Python result (one CVE).
const IMAGE_REPORT: &str = include_str!("../testdata/image-report.json");

fn report_with_vulnerability(vulnerability: &str) -> String {
    format!(
        r#"{{"SchemaVersion": 2, "ArtifactName": "img", "Results": [
            {{"Target": "img (debian 12.5)", "Class": "os-pkgs", "Type": "debian",
              "Vulnerabilities": [{vulnerability}]}}]}}"#
    )
}

#[test]
fn normalises_every_vulnerability_of_every_result() {
    let report = parse_report(IMAGE_REPORT.as_bytes()).unwrap();

    assert_eq!(report.os.as_deref(), Some("debian 12.5"));
    assert!(
        report
            .artifact
            .starts_with("127.0.0.1:5077/acme/app@sha256:714e48b3")
    );
    let ids: Vec<_> = report
        .findings
        .iter()
        .map(|f| f.vulnerability_id.as_str())
        .collect();
    assert_eq!(ids, ["CVE-2023-5363", "CVE-2023-45853", "CVE-2024-27351"]);

    let openssl = &report.findings[0];
    let expected = Finding {
        vulnerability_id: "CVE-2023-5363".into(),
        package_name: "libssl3".into(),
        installed_version: "3.0.11-1~deb12u1".into(),
        fixed_version: Some("3.0.11-1~deb12u2".into()),
        severity: Severity::High,
        status: Some("fixed".into()),
        package_path: None,
        class: "os-pkgs".into(),
        package_type: "debian".into(),
        title: Some("openssl: Incorrect cipher key and IV length processing".into()),
        description: Some("Issue summary: A bug has been identified.".into()),
        cvss_score: Some(9.8),
        cwe_ids: vec!["CWE-325".into(), "CWE-787".into()],
        primary_url: Some("https://avd.aquasec.com/nvd/cve-2023-5363".into()),
        references: vec![
            "https://www.openssl.org/news/secadv/20231024.txt".into(),
            "https://nvd.nist.gov/vuln/detail/CVE-2023-5363".into(),
        ],
    };
    assert_eq!(openssl, &expected);
}

#[test]
fn language_packages_keep_their_class_type_and_path() {
    let report = parse_report(IMAGE_REPORT.as_bytes()).unwrap();
    let django = &report.findings[2];

    assert_eq!(django.class, "lang-pkgs");
    assert_eq!(django.package_type, "python-pkg");
    assert_eq!(
        django.package_path.as_deref(),
        Some("usr/lib/python3/dist-packages/Django-4.2.10.dist-info/METADATA")
    );
    assert_eq!(django.description, None);
    assert!(django.cwe_ids.is_empty() && django.references.is_empty());
}

#[test]
fn keeps_trivys_severity_and_the_highest_cvss_v3_score() {
    let report = parse_report(IMAGE_REPORT.as_bytes()).unwrap();
    let django = &report.findings[2];

    // GHSA rates it HIGH with 5.9 while NVD scores 7.5: the rating stays Trivy's.
    assert_eq!(django.severity, Severity::High);
    assert_eq!(django.cvss_score, Some(7.5));
}

#[test]
fn a_missing_or_empty_fixed_version_means_no_fix() {
    let report = parse_report(IMAGE_REPORT.as_bytes()).unwrap();
    let zlib = &report.findings[1];
    assert_eq!(zlib.fixed_version, None);
    assert_eq!(zlib.status.as_deref(), Some("will_not_fix"));
    assert!(!zlib.is_fixable());

    let json = report_with_vulnerability(
        r#"{"VulnerabilityID": "CVE-1", "PkgName": "p", "InstalledVersion": "1",
            "FixedVersion": "", "Severity": "LOW"}"#,
    );
    let finding = &parse_report(json.as_bytes()).unwrap().findings[0];
    assert_eq!(finding.fixed_version, None);
    assert_eq!(finding.severity, Severity::Low);
}

#[test]
fn an_unknown_or_missing_severity_becomes_unknown() {
    let json = report_with_vulnerability(
        r#"{"VulnerabilityID": "CVE-1", "PkgName": "p", "Severity": "NEGLIGIBLE"},
           {"VulnerabilityID": "CVE-2", "PkgName": "p"}"#,
    );
    let report = parse_report(json.as_bytes()).unwrap();

    let severities: Vec<_> = report.findings.iter().map(|f| f.severity).collect();
    assert_eq!(severities, [Severity::Unknown, Severity::Unknown]);
    assert_eq!(report.findings[1].cvss_score, None);
    assert_eq!(report.findings[1].installed_version, "");
}

#[test]
fn a_report_without_results_or_vulnerabilities_has_no_findings() {
    // A scratch image: no OS, no Results at all.
    let scratch = r#"{"SchemaVersion": 2, "Trivy": {"Version": "0.76.0"},
        "ArtifactName": "reg/x@sha256:00", "ArtifactType": "container_image",
        "Metadata": {"ImageID": "sha256:11", "DiffIDs": []}}"#;
    let report = parse_report(scratch.as_bytes()).unwrap();
    assert_eq!(report.os, None);
    assert!(report.findings.is_empty());

    // A clean Debian image: its result has no Vulnerabilities key, or a null one.
    let clean = r#"{"SchemaVersion": 2, "ArtifactName": "reg/y@sha256:22",
        "Metadata": {"OS": {"Family": "debian", "Name": "12.5"}},
        "Results": [{"Target": "reg/y (debian 12.5)", "Class": "os-pkgs", "Type": "debian"},
                    {"Target": "Python", "Class": "lang-pkgs", "Type": "python-pkg",
                     "Vulnerabilities": null}]}"#;
    let report = parse_report(clean.as_bytes()).unwrap();
    assert_eq!(report.os.as_deref(), Some("debian 12.5"));
    assert!(report.findings.is_empty());
}

#[test]
fn an_os_family_without_a_name_is_still_reported() {
    let json = r#"{"SchemaVersion": 2, "Metadata": {"OS": {"Family": "alpine"}}}"#;
    assert_eq!(
        parse_report(json.as_bytes()).unwrap().os.as_deref(),
        Some("alpine")
    );
}

#[test]
fn rejects_output_that_is_not_json_and_says_how_long_it_was() {
    let err = parse_report(b"<html>502 Bad Gateway</html>").unwrap_err();
    assert!(
        matches!(err, ReportError::NotJson { bytes: 28, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("trivy's output is not JSON (28 bytes)"),
        "{message}"
    );

    let err = parse_report(b"").unwrap_err();
    assert!(err.to_string().contains("(0 bytes)"), "{err}");

    let err = parse_report(br#"{"SchemaVersion": 2, "Results": ["#).unwrap_err();
    assert!(matches!(err, ReportError::NotJson { .. }), "{err:?}");
}

#[test]
fn rejects_another_schema_version() {
    let err = parse_report(br#"{"SchemaVersion": 1, "Results": []}"#).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("schema version 1, expected 2"),
        "{message}"
    );
    assert!(message.contains("hint:"), "{message}");

    let err = parse_report(br#"{"Results": []}"#).unwrap_err();
    assert!(err.to_string().contains("schema version none"), "{err}");

    let err = parse_report(br#"{"SchemaVersion": "2"}"#).unwrap_err();
    assert!(err.to_string().contains(r#"schema version "2""#), "{err}");

    let err = parse_report(b"[1, 2]").unwrap_err();
    assert!(err.to_string().contains("not a JSON object"), "{err}");
}

#[test]
fn rejects_a_known_field_of_the_wrong_shape() {
    let json = r#"{"SchemaVersion": 2, "Results": [{"Vulnerabilities": "none"}]}"#;
    let err = parse_report(json.as_bytes()).unwrap_err();
    assert!(matches!(err, ReportError::Malformed { .. }), "{err:?}");
    assert!(err.to_string().contains("expected shape"), "{err}");

    let missing_id = report_with_vulnerability(r#"{"PkgName": "p"}"#);
    let err = parse_report(missing_id.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("VulnerabilityID"), "{err}");
}
