//! `dragnet scan` end to end: which CVEs in which packages of which images and tags, each
//! unique digest scanned once, the broken image reported with its cause, SARIF that validates,
//! and what the GitHub emulator received.

use std::collections::{BTreeMap, BTreeSet};

use dragnet::report::{Failure, ImageStatus};
use dragnet_sandbox::sandbox::{COMMIT_SHA, PIPELINES_REPOSITORY, RegistryModeChoice};

use crate::support::*;

/// The unique platform manifest digests a scan of the pattern must cover (tagged versions only).
fn expected_digests(world: &World) -> BTreeSet<String> {
    world
        .sandbox
        .pushed()
        .iter()
        .filter(|v| matches_pattern(&v.package) && !v.tags.is_empty())
        .flat_map(|v| v.platforms.iter().map(|p| p.digest.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_finds_exactly_the_fixture_cves_and_uploads_them() {
    let world = World::start(RegistryModeChoice::Token).await;
    let output = run(world
        .scan("out", &["--upload", "--poll-interval", "50ms"])
        .env("GITHUB_REPOSITORY", PIPELINES_REPOSITORY)
        .env("GITHUB_SHA", COMMIT_SHA)
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_STEP_SUMMARY", world.path("step-summary.md")))
    .await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "the broken image makes it a partial failure"
    );
    let out = world.path("out");
    let report = read_report(&out);

    // Exactly the fixture's CRITICAL and HIGH findings, fanned out to every tag.
    let expected = expected_rows(&["CRITICAL", "HIGH"]);
    let reported = reported_rows(&report);
    let missing: Vec<_> = expected.difference(&reported).collect();
    let extra: Vec<_> = reported.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );
    assert!(
        reported.contains(&(
            "products/bfx/samtools".into(),
            "1.17".into(),
            "amd64".into(),
            "CVE-2024-6387".into(),
            "openssh-client".into(),
            "1:9.2p1-2".into()
        )),
        "regreSSHion in samtools:1.17"
    );

    // Each unique digest scanned once, and only those.
    let digests = expected_digests(&world);
    let scanned: Vec<String> = world
        .trivy_calls()
        .iter()
        .filter(|argv| argv.starts_with("image ") && !argv.contains("--download-db-only"))
        .map(|argv| argv.rsplit('@').next().unwrap().to_string())
        .collect();
    let unique: BTreeSet<String> = scanned.iter().cloned().collect();
    assert_eq!(
        scanned.len(),
        unique.len(),
        "a digest was scanned twice: {scanned:#?}"
    );
    assert_eq!(unique, digests);
    let report_digests: BTreeSet<String> = report.images.iter().map(|i| i.digest.clone()).collect();
    assert_eq!(report_digests, digests);

    // The broken image failed with its cause; every other image was scanned.
    let broken = world
        .sandbox
        .digest_of("products/bfx/broken", "1.0")
        .unwrap();
    let failures: Vec<&Failure> = report.failures.iter().collect();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    match failures[0] {
        Failure::Scan {
            digest,
            cause,
            refs,
            ..
        } => {
            assert_eq!(digest, &broken);
            assert_eq!(refs[0].package, "products/bfx/broken");
            let cause = cause.to_lowercase();
            assert!(
                cause.contains("blob"),
                "the cause names the missing blob: {cause}"
            );
        }
        other => panic!("expected a scan failure, got {other:?}"),
    }
    for image in report.images.iter().filter(|i| i.digest != broken) {
        assert_eq!(
            image.status,
            ImageStatus::Scanned,
            "{}: {:?}",
            image.image,
            image.cause
        );
    }
    assert_eq!(report.totals.images_failed, 1);
    assert_eq!(report.totals.images_scanned, digests.len() - 1);

    // SARIF that validates, with GitHub's severity equal to Trivy's.
    let sarif_files: Vec<_> = files_under(&out.join("sarif"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sarif"))
        .collect();
    assert!(!sarif_files.is_empty());
    for file in &sarif_files {
        assert_valid_sarif(file);
    }

    // The emulator holds completed uploads, one stable category per package with a scanned image.
    let uploads = world.sandbox.emulator.uploads();
    assert_eq!(uploads.len(), sarif_files.len());
    let mut categories = BTreeMap::new();
    for upload in &uploads {
        assert_eq!(upload.processing_status, "complete", "{:?}", upload.errors);
        assert_eq!(upload.repository, PIPELINES_REPOSITORY);
        assert_eq!(upload.commit_sha, COMMIT_SHA);
        for run in upload.sarif["runs"].as_array().unwrap() {
            let id = run["automationDetails"]["id"].as_str().unwrap().to_string();
            let results = run["results"].as_array().unwrap().len();
            assert!(
                categories.insert(id, (run.clone(), results)).is_none(),
                "a category twice"
            );
        }
    }
    let packages: BTreeSet<String> = world
        .sandbox
        .pushed()
        .iter()
        .filter(|v| matches_pattern(&v.package) && v.package != "products/bfx/broken")
        .map(|v| format!("dragnet/{}/", v.package))
        .collect();
    assert_eq!(
        categories.keys().cloned().collect::<BTreeSet<_>>(),
        packages
    );
    assert_eq!(
        categories["dragnet/products/bfx/clean/"].1, 0,
        "a clean image still uploads a run"
    );

    // GitHub shows CRITICAL for zlib's CVE and HIGH for regreSSHion, as Trivy rated them.
    let (samtools, _) = &categories["dragnet/products/bfx/samtools/"];
    let severity_of = |id: &str| -> f64 {
        let rules = samtools["tool"]["driver"]["rules"].as_array().unwrap();
        let rule = rules
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("rule {id}"));
        rule["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(severity_of("CVE-2023-45853") >= 9.0);
    assert!((7.0..9.0).contains(&severity_of("CVE-2024-6387")));

    // The summary names packages, tags and the failure.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for needle in [
        "products/bfx/samtools",
        "1.17",
        "products/bfx/broken",
        "blob",
    ] {
        assert!(
            summary.contains(needle),
            "summary.md lacks {needle}:\n{summary}"
        );
    }
    assert!(
        !summary.contains("products/bfx/sub/deeper"),
        "`*` does not cross `/`"
    );
    let step_summary = std::fs::read_to_string(world.path("step-summary.md")).unwrap();
    assert_eq!(
        step_summary, summary,
        "the summary is appended to $GITHUB_STEP_SUMMARY"
    );

    // The token reached no file, no log line and no Trivy command line.
    let token = world.sandbox.token();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains(token));
    for call in world.trivy_calls() {
        assert!(!call.contains(token), "token in trivy argv: {call}");
    }
    for file in files_under(&out) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(token),
            "token in {}",
            file.display()
        );
    }
}

/// The digests Trivy was asked to scan so far, in order.
fn image_scans(world: &World) -> Vec<String> {
    world
        .trivy_calls()
        .iter()
        .filter(|argv| argv.starts_with("image ") && argv.contains("@sha256:"))
        .map(|argv| argv.rsplit('@').next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_writes_identical_sarif_and_fingerprints() {
    let world = World::start(RegistryModeChoice::Open).await;
    let access_log = world.sandbox.registry.access_log_path();
    let dragnet_requests = || {
        let log = std::fs::read_to_string(&access_log).unwrap_or_default();
        log.lines().filter(|l| l.contains("\"dragnet/")).count()
    };
    let first = run(&mut world.scan("first", &[])).await;
    let scans_before = image_scans(&world);
    let requests_before = dragnet_requests();
    let second = run(&mut world.scan("second", &[])).await;
    assert_eq!(first.status.code(), Some(3));
    assert_eq!(second.status.code(), Some(3));

    // Every version resolved in the first run: the rerun asks the registry nothing itself.
    assert!(
        requests_before > 0,
        "the first run resolved through the registry"
    );
    assert_eq!(
        dragnet_requests(),
        requests_before,
        "the rerun fetched manifests it had resolved before"
    );

    // Unchanged images under an unchanged DB come from the result cache: only the broken image,
    // whose failure is never cached, is scanned again.
    let rescanned: Vec<String> = image_scans(&world)[scans_before.len()..].to_vec();
    let broken = world
        .sandbox
        .digest_of("products/bfx/broken", "1.0")
        .unwrap();
    assert_eq!(rescanned, [broken], "the rerun scanned {rescanned:?}");

    // --rescan ignores the cache.
    let forced = run(&mut world.scan("forced", &["--rescan"])).await;
    assert_eq!(forced.status.code(), Some(3));
    assert_eq!(
        image_scans(&world).len() - scans_before.len() - 1,
        scans_before.len()
    );

    let read_all = |name: &str| -> Vec<(String, String)> {
        files_under(&world.path(name).join("sarif"))
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect()
    };
    let (first, second) = (read_all("first"), read_all("second"));
    assert!(!first.is_empty());
    assert_eq!(
        first, second,
        "SARIF differs between two runs over unchanged images"
    );
    assert!(first[0].1.contains("partialFingerprints"));
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_registry_all_severities_use_trivys_rating_not_cvss() {
    let world = World::start(RegistryModeChoice::Basic).await;
    let output =
        run(&mut world.scan("out", &["--severity", "CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN"])).await;
    assert_eq!(output.status.code(), Some(3));
    let out = world.path("out");
    let report = read_report(&out);

    let expected = expected_rows(&[]);
    let reported = reported_rows(&report);
    let missing: Vec<_> = expected.difference(&reported).collect();
    let extra: Vec<_> = reported.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );

    // NVD scores CVE-2019-1010022 9.8, Debian rates it low: Trivy says LOW, and so must GitHub.
    let finding = report
        .images
        .iter()
        .flat_map(|i| &i.findings)
        .find(|f| f.vulnerability_id == "CVE-2019-1010022")
        .expect("the glibc finding");
    assert_eq!(finding.severity, dragnet::finding::Severity::Low);
    let sarif = std::fs::read_to_string(out.join("sarif/dragnet-001.sarif")).unwrap();
    let sarif: serde_json::Value = serde_json::from_str(&sarif).unwrap();
    let rule = sarif["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|run| run["tool"]["driver"]["rules"].as_array().unwrap())
        .find(|r| r["id"] == "CVE-2019-1010022")
        .expect("a rule for CVE-2019-1010022");
    let score: f64 = rule["properties"]["security-severity"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(score < 4.0, "GitHub would show {score} instead of low");
    for file in files_under(&out.join("sarif")) {
        assert_valid_sarif(&file);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_filter_keeps_one_architecture() {
    let world = World::start(RegistryModeChoice::Open).await;
    let output = run(&mut world.scan("out", &["--platform", "linux/arm64"])).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "every fixture image but one is amd64 only"
    );
    let report = read_report(&world.path("out"));

    let scanned: Vec<_> = report
        .images
        .iter()
        .map(|i| (&i.refs[0].package, &i.platform))
        .collect();
    assert_eq!(report.images.len(), 1, "{scanned:?}");
    assert_eq!(report.images[0].refs[0].package, "products/bfx/multiarch");
    assert_eq!(
        report.images[0].platform.as_ref().unwrap().architecture,
        "arm64"
    );
    assert_eq!(
        world
            .trivy_calls()
            .iter()
            .filter(|c| c.contains("@sha256:"))
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ignore_unfixed_drops_findings_without_a_fix() {
    let world = World::start(RegistryModeChoice::Open).await;
    let output = run(&mut world.scan("out", &["--ignore-unfixed"])).await;
    assert_eq!(output.status.code(), Some(3));
    let report = read_report(&world.path("out"));

    let expected: std::collections::BTreeSet<Row> =
        dragnet_sandbox::fixture::expected_findings(&["CRITICAL", "HIGH"])
            .into_iter()
            .filter(|f| matches_pattern(&f.package) && f.fixed_version.is_some())
            .map(|f| {
                (
                    f.package,
                    f.tag,
                    f.architecture,
                    f.vulnerability_id,
                    f.package_name,
                    f.installed_version,
                )
            })
            .collect();
    assert!(!expected.is_empty());
    assert_eq!(reported_rows(&report), expected);
    let findings: Vec<_> = report.images.iter().flat_map(|i| &i.findings).collect();
    assert!(
        !findings
            .iter()
            .any(|f| f.vulnerability_id == "CVE-2023-45853"),
        "zlib has no fix"
    );
}
