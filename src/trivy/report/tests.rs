//! Reports shaped like Trivy 0.76's `trivy image --format json` output, written by hand from a
//! real run against a local registry (fields dragnet ignores are kept to prove they are).

use super::*;

/// One Debian image with an OS result (two CVEs) and a Python result (one CVE).
const IMAGE_REPORT: &str = r#"{
  "SchemaVersion": 2,
  "Trivy": { "Version": "0.76.0" },
  "ReportID": "01a23cc3-1156-7271-964c-12a56a816ea5",
  "CreatedAt": "2026-12-03T16:35:46.646160999Z",
  "ArtifactID": "sha256:af5460bac073ce76f48cd12ed5810522d8f65fdcf8e51a14f9ce3d87b3bfbc36",
  "ArtifactName": "127.0.0.1:5077/acme/app@sha256:714e48b3175a853ed3d15d80b1a8c23fecd522414cdd9d7c476549fbbf5eddc6",
  "ArtifactType": "container_image",
  "Metadata": {
    "Size": 30720,
    "OS": { "Family": "debian", "Name": "12.5" },
    "ImageID": "sha256:f3bbc3f23f47ace5994f714e32172cfcdc9ded5219db02df375dd840c7a3af5e",
    "DiffIDs": ["sha256:f8c18252d9951301c6ee1c1bf909b37f69f9c851aa54c6a9f944d12cd23020a5"],
    "RepoDigests": ["127.0.0.1:5077/acme/app@sha256:714e48b3175a853ed3d15d80b1a8c23fecd522414cdd9d7c476549fbbf5eddc6"],
    "ImageConfig": { "architecture": "amd64", "created": "0001-01-01T00:00:00Z", "os": "linux",
      "rootfs": { "type": "layers", "diff_ids": ["sha256:f8c18252d9951301c6ee1c1bf909b37f69f9c851aa54c6a9f944d12cd23020a5"] },
      "config": {} },
    "Layers": [{ "Size": 30720,
      "Digest": "sha256:d55c97320183126207af509648bcc4f61c8cc502dd86742322e8183a92098d20",
      "DiffID": "sha256:f8c18252d9951301c6ee1c1bf909b37f69f9c851aa54c6a9f944d12cd23020a5" }]
  },
  "Results": [
    {
      "Target": "127.0.0.1:5077/acme/app@sha256:714e48b3175a853ed3d15d80b1a8c23fecd522414cdd9d7c476549fbbf5eddc6 (debian 12.5)",
      "Class": "os-pkgs",
      "Type": "debian",
      "Vulnerabilities": [
        {
          "VulnerabilityID": "CVE-2023-5363",
          "PkgID": "libssl3@3.0.11-1~deb12u1",
          "PkgName": "libssl3",
          "PkgIdentifier": {
            "PURL": "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64\u0026distro=debian-12.5",
            "UID": "6fe4c27830993301"
          },
          "InstalledVersion": "3.0.11-1~deb12u1",
          "FixedVersion": "3.0.11-1~deb12u2",
          "Status": "fixed",
          "Layer": {
            "Digest": "sha256:d55c97320183126207af509648bcc4f61c8cc502dd86742322e8183a92098d20",
            "DiffID": "sha256:f8c18252d9951301c6ee1c1bf909b37f69f9c851aa54c6a9f944d12cd23020a5"
          },
          "SeveritySource": "debian",
          "PrimaryURL": "https://avd.aquasec.com/nvd/cve-2023-5363",
          "DataSource": {
            "ID": "debian",
            "Name": "Debian Security Tracker",
            "URL": "https://salsa.debian.org/security-tracker-team/security-tracker"
          },
          "Fingerprint": "sha256:6ac83f2a680f17a92a0b225f3192171a1bcfc4b9c4288b4471cfe156e9a3a498",
          "Title": "openssl: Incorrect cipher key and IV length processing",
          "Description": "Issue summary: A bug has been identified.",
          "Severity": "HIGH",
          "CweIDs": ["CWE-325", "CWE-787"],
          "VendorSeverity": { "debian": 3, "nvd": 4, "redhat": 3 },
          "CVSS": {
            "nvd": { "V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "V3Score": 9.8 },
            "redhat": { "V3Vector": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", "V3Score": 7.5 }
          },
          "References": [
            "https://www.openssl.org/news/secadv/20231024.txt",
            "https://nvd.nist.gov/vuln/detail/CVE-2023-5363"
          ],
          "PublishedDate": "2023-10-25T18:17:43.613Z",
          "LastModifiedDate": "2024-02-01T17:15:08.607Z"
        },
        {
          "VulnerabilityID": "CVE-2023-45853",
          "PkgID": "zlib1g@1:1.2.13.dfsg-1",
          "PkgName": "zlib1g",
          "PkgIdentifier": {
            "PURL": "pkg:deb/debian/zlib1g@1.2.13.dfsg-1?arch=amd64\u0026distro=debian-12.5\u0026epoch=1",
            "UID": "629b7942602ac20c"
          },
          "InstalledVersion": "1:1.2.13.dfsg-1",
          "Status": "will_not_fix",
          "SeveritySource": "nvd",
          "PrimaryURL": "https://avd.aquasec.com/nvd/cve-2023-45853",
          "DataSource": {
            "ID": "debian",
            "Name": "Debian Security Tracker",
            "URL": "https://salsa.debian.org/security-tracker-team/security-tracker"
          },
          "Title": "zlib: integer overflow in MiniZip",
          "Description": "MiniZip in zlib through 1.3 has an integer overflow.",
          "Severity": "CRITICAL",
          "CweIDs": ["CWE-190"],
          "VendorSeverity": { "nvd": 4 },
          "CVSS": {
            "nvd": { "V3Vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "V3Score": 9.8 }
          },
          "References": ["https://github.com/madler/zlib/pull/843"]
        }
      ]
    },
    {
      "Target": "Python",
      "Class": "lang-pkgs",
      "Type": "python-pkg",
      "Vulnerabilities": [
        {
          "VulnerabilityID": "CVE-2024-27351",
          "PkgName": "Django",
          "PkgPath": "usr/lib/python3/dist-packages/Django-4.2.10.dist-info/METADATA",
          "PkgIdentifier": { "PURL": "pkg:pypi/django@4.2.10", "UID": "3669651f04f81d90" },
          "InstalledVersion": "4.2.10",
          "FixedVersion": "4.2.11",
          "Status": "fixed",
          "SeveritySource": "ghsa",
          "PrimaryURL": "https://avd.aquasec.com/nvd/cve-2024-27351",
          "DataSource": {
            "ID": "ghsa",
            "Name": "GitHub Security Advisory pip",
            "URL": "https://github.com/advisories?query=type%3Areviewed+ecosystem%3Apip"
          },
          "Title": "django: Potential regular expression denial-of-service",
          "Severity": "HIGH",
          "VendorSeverity": { "ghsa": 3, "nvd": 2 },
          "CVSS": { "ghsa": { "V3Score": 5.9 }, "nvd": { "V3Score": 7.5 } }
        }
      ]
    }
  ]
}"#;

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
