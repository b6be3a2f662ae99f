//! Uploading to code scanning against the emulator: GitHub's verdict reaches the user, files
//! stay within GitHub's limits, alerts of packages no longer scanned close (and nobody else's),
//! fingerprints hold still, each package's findings land in its own repository, and a dry run
//! sends nothing. Every SARIF written here, and every one the emulator received, validates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dragnet_sandbox::github::{Fault, head_sha};
use dragnet_sandbox::sandbox::{COMMIT_SHA, PIPELINES_REPOSITORY, RegistryModeChoice};
use serde_json::{Value, json};

use crate::support::*;

/// `dragnet scan` over `pattern` (instead of the suite's), as [`World::scan`] runs it.
fn scan_matching(
    world: &World,
    output: &str,
    pattern: &str,
    extra: &[&str],
) -> tokio::process::Command {
    let owner = world.sandbox.owner().to_string();
    let registry = world.sandbox.registry_host();
    let db = world.sandbox.db_repository();
    let out = world.path(output).display().to_string();
    let trivy = world.recording_trivy().display().to_string();
    let mut args = vec![
        "scan",
        "--owner",
        &owner,
        "--pattern",
        pattern,
        "--registry",
        &registry,
        "--db-repository",
        &db,
        "--output-dir",
        &out,
        "--trivy",
        &trivy,
        "--poll-interval",
        "10ms",
    ];
    args.extend_from_slice(extra);
    let mut command = world.dragnet(&args);
    command
        .env("GITHUB_REPOSITORY", PIPELINES_REPOSITORY)
        .env("GITHUB_SHA", COMMIT_SHA)
        .env("GITHUB_REF", "refs/heads/main");
    command
}

/// `dragnet upload ARGS` aimed at the pipelines repository.
fn upload(world: &World, args: &[&str]) -> tokio::process::Command {
    let mut all = vec!["upload", "--poll-interval", "10ms"];
    all.extend_from_slice(args);
    let mut command = world.dragnet(&all);
    command
        .env("GITHUB_REPOSITORY", PIPELINES_REPOSITORY)
        .env("GITHUB_SHA", COMMIT_SHA)
        .env("GITHUB_REF", "refs/heads/main");
    command
}

/// A valid SARIF log with one run per (tool, category, repository, results).
fn sarif(runs: &[(&str, &str, Option<&str>, usize)]) -> Value {
    let runs: Vec<Value> = runs
        .iter()
        .map(|(tool, category, repository, results)| {
            let package = category.strip_prefix("dragnet/").unwrap_or(category);
            let mut properties = json!({ "dragnet/package": package });
            if let Some(repository) = repository {
                properties["dragnet/repository"] = json!(repository);
            }
            let rules: Vec<Value> = (0..*results)
                .map(|i| {
                    json!({
                        "id": format!("CVE-2024-{i:04}"),
                        "shortDescription": { "text": "A flaw." },
                        "fullDescription": { "text": "A flaw in a package." },
                        "help": { "text": "Upgrade.", "markdown": "Upgrade." },
                        "properties": { "security-severity": "8.0", "tags": ["security", "HIGH"] }
                    })
                })
                .collect();
            let results: Vec<Value> = (0..*results)
                .map(|i| {
                    json!({
                        "ruleId": format!("CVE-2024-{i:04}"),
                        "ruleIndex": i,
                        "level": "error",
                        "message": { "text": format!("pkg {i} is affected.") },
                        "locations": [{ "physicalLocation": {
                            "artifactLocation": { "uri": format!("containers/{package}") },
                            "region": { "startLine": 1 }
                        }}],
                        "partialFingerprints": { "dragnet/v1": format!("{i:064x}") }
                    })
                })
                .collect();
            json!({
                "tool": { "driver": {
                    "name": tool,
                    "version": "1.0.0",
                    "semanticVersion": "1.0.0",
                    "informationUri": "https://example.com/tool",
                    "rules": rules
                }},
                "automationDetails": { "id": format!("{category}/") },
                "results": results,
                "properties": properties
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": runs
    })
}

/// Writes a SARIF log and checks it with both validators.
fn write_sarif(path: &Path, log: &Value) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(log).unwrap()).unwrap();
    assert_valid_sarif(path);
    path.to_path_buf()
}

/// Checks every SARIF document the emulator received from `first` on with both validators.
fn validate_uploads(world: &World, first: usize) {
    let dir = world.path("received");
    std::fs::create_dir_all(&dir).unwrap();
    for (index, upload) in world
        .sandbox
        .emulator
        .uploads()
        .iter()
        .enumerate()
        .skip(first)
    {
        let path = dir.join(format!("upload-{index}.sarif"));
        std::fs::write(&path, serde_json::to_string_pretty(&upload.sarif).unwrap()).unwrap();
        assert_valid_sarif(&path);
    }
}

/// The runs of every upload from `first` on, by category.
fn uploaded_runs(world: &World, first: usize) -> BTreeMap<String, Value> {
    let mut runs = BTreeMap::new();
    for upload in world.sandbox.emulator.uploads().iter().skip(first) {
        assert_eq!(upload.processing_status, "complete", "{:?}", upload.errors);
        for run in upload.sarif["runs"].as_array().unwrap() {
            let id = run["automationDetails"]["id"].as_str().unwrap();
            runs.insert(id.trim_end_matches('/').to_string(), run.clone());
        }
    }
    runs
}

/// Each category's results as (rule, fingerprint, location).
fn fingerprints(
    runs: &BTreeMap<String, Value>,
) -> BTreeMap<String, BTreeSet<(String, String, String)>> {
    runs.iter()
        .map(|(category, run)| {
            let results = run["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["ruleId"].as_str().unwrap().to_string(),
                        r["partialFingerprints"]["dragnet/v1"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    )
                })
                .collect();
            (category.clone(), results)
        })
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn closes_the_alerts_of_a_package_no_longer_scanned_and_leaves_other_tools_alone() {
    let world = World::start(RegistryModeChoice::Open).await;
    let bwa = "dragnet/products/bfx/bwa";

    // Another tool's analysis in the same repository, which dragnet must never touch.
    let trivy = write_sarif(
        &world.path("seed/trivy.sarif"),
        &sarif(&[("Trivy", "trivy/products/bfx/bwa", None, 2)]),
    );
    let output = run(&mut upload(&world, &[trivy.to_str().unwrap()])).await;
    assert_eq!(output.status.code(), Some(0));
    let seeded = world.sandbox.emulator.uploads().len();

    // First run: every package of the pattern.
    let output = run(&mut scan_matching(&world, "first", PATTERN, &["--upload"])).await;
    assert_eq!(output.status.code(), Some(3), "the broken image fails");
    let first = uploaded_runs(&world, seeded);
    assert!(
        first[bwa]["results"].as_array().unwrap().len() > 1,
        "bwa has alerts"
    );
    let after_first = world.sandbox.emulator.uploads().len();

    // A run with no changes gives the same results, fingerprints and locations.
    let output = run(&mut scan_matching(&world, "second", PATTERN, &["--upload"])).await;
    assert_eq!(output.status.code(), Some(3));
    let second = uploaded_runs(&world, after_first);
    assert_eq!(fingerprints(&first), fingerprints(&second));
    let after_second = world.sandbox.emulator.uploads().len();

    // bwa (and broken) fall out of the pattern, as a deleted package would. A dry run says
    // what would be closed, and sends nothing.
    let without_bwa = "products/bfx/[!b]*";
    let output = run(&mut scan_matching(
        &world,
        "dry",
        without_bwa,
        &["--dry-run"],
    ))
    .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        world.sandbox.emulator.uploads().len(),
        after_second,
        "a dry run sends nothing"
    );
    let planned = read_json(&world.path("dry/uploads.json"));
    assert_eq!(planned["dry_run"], true);
    let closing: Vec<&str> = planned["closed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["category"].as_str().unwrap())
        .collect();
    assert_eq!(closing, [bwa]);
    assert_eq!(planned["uploads"][0]["processing_status"], "dry run");
    assert_eq!(planned["uploads"][0]["closes"], json!([bwa]));
    let summary = std::fs::read_to_string(world.path("dry/summary.md")).unwrap();
    assert!(summary.contains("dry run: nothing sent"), "{summary}");

    // The real run uploads an empty dragnet run for bwa's category: its alerts close.
    let output = run(&mut scan_matching(
        &world,
        "third",
        without_bwa,
        &["--upload"],
    ))
    .await;
    assert_eq!(output.status.code(), Some(0));
    let third = uploaded_runs(&world, after_second);
    let closed = &third[bwa];
    assert_eq!(closed["results"], json!([]));
    assert_eq!(closed["tool"]["driver"]["name"], "dragnet");
    assert_eq!(closed["tool"]["driver"]["rules"], json!([]));
    assert!(!third.keys().any(|c| c.starts_with("trivy/")));
    let analyses = world.sandbox.emulator.analyses();
    let newest_bwa = analyses.iter().rev().find(|a| a.category == bwa).unwrap();
    assert_eq!(
        (newest_bwa.tool_name.as_str(), newest_bwa.results_count),
        ("dragnet", 0)
    );
    let trivys: Vec<_> = analyses.iter().filter(|a| a.tool_name == "Trivy").collect();
    assert_eq!(trivys.len(), 1, "the other tool's analysis is untouched");
    assert_eq!(trivys[0].results_count, 2);
    let summary = std::fs::read_to_string(world.path("third/summary.md")).unwrap();
    assert!(
        summary.contains("Closed, as no package produces them any more"),
        "{summary}"
    );

    // Once closed, a later run does not send the empty run again.
    let after_third = world.sandbox.emulator.uploads().len();
    let output = run(&mut scan_matching(
        &world,
        "fourth",
        without_bwa,
        &["--upload"],
    ))
    .await;
    assert_eq!(output.status.code(), Some(0));
    assert!(!uploaded_runs(&world, after_third).contains_key(bwa));

    for dir in ["first", "second", "third", "fourth"] {
        for file in files_under(&world.path(dir).join("sarif")) {
            assert_valid_sarif(&file);
        }
    }
    validate_uploads(&world, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn route_linked_sends_each_package_to_its_own_repository_and_names_what_cannot_go() {
    let world = World::start(RegistryModeChoice::Open).await;
    // samtools' and pyflow's repositories have code scanning; bwa's and the others' do not.
    world.sandbox.emulator.add_repository("bfx-org/samtools");
    world.sandbox.emulator.add_repository("bfx-org/pyflow");

    let output = run(&mut scan_matching(&world, "out", PATTERN, &[])).await;
    assert_eq!(output.status.code(), Some(3));
    let lonely = write_sarif(
        &world.path("extra/lonely.sarif"),
        &sarif(&[("dragnet", "dragnet/products/bfx/lonely", None, 1)]),
    );
    let sarif_dir = world.path("out/sarif");
    let mut command = world.dragnet(&[
        "upload",
        "--route",
        "linked",
        "--poll-interval",
        "10ms",
        sarif_dir.to_str().unwrap(),
        lonely.to_str().unwrap(),
    ]);
    let output = run(&mut command).await;
    assert_eq!(output.status.code(), Some(3), "some repositories refuse");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();

    // Each upload went to the package's repository, on the head of its default branch.
    let uploads = world.sandbox.emulator.uploads();
    let mut by_repository: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for upload in &uploads {
        assert_eq!(upload.processing_status, "complete", "{:?}", upload.errors);
        assert_eq!(upload.commit_sha, head_sha(&upload.repository));
        assert_eq!(upload.git_ref, "refs/heads/main");
        for run in upload.sarif["runs"].as_array().unwrap() {
            by_repository
                .entry(upload.repository.clone())
                .or_default()
                .insert(run["automationDetails"]["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        by_repository,
        BTreeMap::from([
            (
                "bfx-org/pyflow".to_string(),
                BTreeSet::from(["dragnet/products/bfx/pyflow/".to_string()])
            ),
            (
                "bfx-org/samtools".to_string(),
                BTreeSet::from(["dragnet/products/bfx/samtools/".to_string()])
            ),
        ])
    );

    // What could not go is listed with the reason.
    let skipped = summary["skipped"].as_array().unwrap();
    let reason = |category: &str| {
        skipped
            .iter()
            .find(|s| s["category"].as_str().unwrap().contains(category))
            .map(|s| s["reason"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{category} not listed: {skipped:#?}"))
    };
    assert!(reason("dragnet/products/bfx/bwa").contains("cannot use code scanning in bfx-org/bwa"));
    assert!(reason("dragnet/products/bfx/lonely").contains("not linked to a repository"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not uploaded: dragnet/products/bfx/lonely"),
        "{stderr}"
    );
    validate_uploads(&world, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_githubs_processing_errors_and_keeps_going() {
    let world = World::start(RegistryModeChoice::Open).await;
    world.sandbox.emulator.add_repository("bfx-org/a");
    world.sandbox.emulator.add_repository("bfx-org/b");
    let dir = world.path("sarif");
    write_sarif(
        &dir.join("a.sarif"),
        &sarif(&[("dragnet", "dragnet/a", Some("bfx-org/a"), 1)]),
    );
    write_sarif(
        &dir.join("b.sarif"),
        &sarif(&[("dragnet", "dragnet/b", Some("bfx-org/b"), 1)]),
    );
    // GitHub accepts bfx-org/a's upload, then fails to process it.
    let failed = Fault {
        status: 200,
        headers: Vec::new(),
        body: Some(json!({
            "processing_status": "failed",
            "analyses_url": null,
            "errors": ["Unable to process the SARIF: an internal error occurred"]
        })),
        method: Some("GET".into()),
    };
    world
        .sandbox
        .emulator
        .fail_next("/repos/bfx-org/a/code-scanning/sarifs/", 1, failed);

    let output = run(&mut upload(
        &world,
        &["--route", "linked", dir.to_str().unwrap()],
    ))
    .await;
    assert_eq!(output.status.code(), Some(3), "one upload failed");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let uploads = summary["uploads"].as_array().unwrap();
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[0]["repository"], "bfx-org/a");
    assert_eq!(uploads[0]["files"], json!(["a.sarif"]));
    assert_eq!(uploads[0]["processing_status"], "failed");
    assert!(
        uploads[0]["errors"][0]
            .as_str()
            .unwrap()
            .contains("Unable to process")
    );
    assert_eq!(uploads[1]["repository"], "bfx-org/b");
    assert_eq!(uploads[1]["processing_status"], "complete");
    assert_eq!(world.sandbox.emulator.uploads().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn splits_runs_into_files_github_accepts() {
    let world = World::start(RegistryModeChoice::Open).await;
    let dir = world.path("sarif");
    // 45 packages in three files of 15 runs: GitHub takes at most 20 runs a file.
    for file in 0..3 {
        let categories: Vec<String> = (0..15)
            .map(|i| format!("dragnet/bulk/p{:02}", file * 15 + i))
            .collect();
        let runs: Vec<(&str, &str, Option<&str>, usize)> = categories
            .iter()
            .map(|c| ("dragnet", c.as_str(), None, 1))
            .collect();
        write_sarif(&dir.join(format!("dragnet-{file:03}.sarif")), &sarif(&runs));
    }

    let output = run(&mut upload(&world, &[dir.to_str().unwrap()])).await;
    assert_eq!(output.status.code(), Some(0));
    let uploads = world.sandbox.emulator.uploads();
    let sizes: Vec<usize> = uploads
        .iter()
        .map(|u| u.sarif["runs"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [20, 20, 5]);
    let mut all = BTreeSet::new();
    for upload in &uploads {
        assert_eq!(upload.processing_status, "complete", "{:?}", upload.errors);
        assert!(upload.gzipped_bytes < 10_000_000);
        for run in upload.sarif["runs"].as_array().unwrap() {
            assert!(
                all.insert(run["automationDetails"]["id"].to_string()),
                "a category twice"
            );
        }
    }
    assert_eq!(all.len(), 45);
    validate_uploads(&world, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_thousand_findings_upload_without_loss_beyond_the_cap() {
    let world = World::start(RegistryModeChoice::Open).await;

    // One package, one image, 30,000 findings: 2,000 CRITICAL, 8,000 HIGH, 10,000 MEDIUM,
    // 10,000 LOW, each its own vulnerability.
    let digest = format!("sha256:{}", "ab".repeat(32));
    let severity = |i: usize| match i {
        0..2_000 => "CRITICAL",
        2_000..10_000 => "HIGH",
        10_000..20_000 => "MEDIUM",
        _ => "LOW",
    };
    let findings: Vec<Value> = (0..30_000)
        .map(|i| {
            json!({
                "vulnerability_id": format!("CVE-2099-{i:05}"),
                "package_name": format!("lib{}", i % 300),
                "installed_version": "1.0",
                "fixed_version": if i % 2 == 0 { json!("1.1") } else { Value::Null },
                "severity": severity(i),
                "status": "fixed",
                "package_path": null,
                "class": "os-pkgs",
                "package_type": "debian",
                "title": "A flaw",
                "description": null,
                "cvss_score": null,
                "cwe_ids": ["CWE-787"],
                "primary_url": format!("https://avd.aquasec.com/nvd/cve-2099-{i:05}"),
                "references": []
            })
        })
        .collect();
    let plan: dragnet::plan::Plan = serde_json::from_value(json!({
        "owner": "bfx-org",
        "registry": "ghcr.io",
        "packages": [{ "name": "products/bfx/huge", "repository": null }],
        "targets": [{
            "digest": digest,
            "image": format!("ghcr.io/bfx-org/products/bfx/huge@{digest}"),
            "platform": { "os": "linux", "architecture": "amd64" },
            "size": 1,
            "refs": [{ "package": "products/bfx/huge", "version_digest": digest, "tags": ["1.0"] }]
        }],
        "unresolved": []
    }))
    .unwrap();
    let scan: dragnet::scan::ScanRun = serde_json::from_value(json!({
        "started_at": "2024-05-01T06:00:00Z",
        "duration_ms": 1,
        "trivy_version": "0.76.0",
        "db_updated_at": "2024-05-01T00:00:00Z",
        "options": { "severities": ["CRITICAL", "HIGH", "MEDIUM", "LOW"], "ignore_unfixed": false },
        "results": [{
            "digest": digest, "image": "", "duration_ms": 1,
            "status": "scanned", "os": "debian 12", "findings": findings
        }]
    }))
    .unwrap();
    let report = dragnet::report::Report::build(&plan, &scan);
    assert_eq!(report.totals.findings.total(), 30_000);

    // The builder keeps the 25,000 most severe and says what it left out.
    let files = dragnet::sarif::build(&report, &dragnet::sarif::SarifOptions::default());
    assert_eq!(files.omissions.len(), 1);
    let omission = &files.omissions[0];
    assert_eq!((omission.results, omission.kept), (30_000, 25_000));
    assert_eq!(omission.dropped.low, 5_000);
    assert_eq!(
        omission.dropped.total(),
        5_000,
        "nothing above LOW is dropped"
    );
    let markdown = dragnet::sarif::omissions_markdown(&files.omissions);
    assert!(
        markdown.contains("kept the 25000 most severe of 30000 results, left out 5000 (5000 LOW)"),
        "{markdown}"
    );
    let dir = world.path("sarif");
    for (index, log) in files.logs.iter().enumerate() {
        write_sarif(&dir.join(format!("dragnet-{index:03}.sarif")), log);
    }

    // Uploaded whole: one run of 25,000 results, every CRITICAL, HIGH and MEDIUM among them.
    let output = run(&mut upload(&world, &[dir.to_str().unwrap()])).await;
    assert_eq!(output.status.code(), Some(0));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        summary["omitted"][0]["kept"], 25_000,
        "the upload says so too"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("left out 5000 (5000 LOW)"), "{stderr}");
    let uploads = world.sandbox.emulator.uploads();
    assert_eq!(uploads.len(), 1);
    assert_eq!(
        uploads[0].processing_status, "complete",
        "{:?}",
        uploads[0].errors
    );
    let run = &uploads[0].sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let mut kept: BTreeMap<String, usize> = BTreeMap::new();
    for result in run["results"].as_array().unwrap() {
        let rule = &rules[result["ruleIndex"].as_u64().unwrap() as usize];
        assert_eq!(rule["id"], result["ruleId"]);
        let tags = rule["properties"]["tags"].as_array().unwrap();
        *kept
            .entry(tags[2].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        kept,
        BTreeMap::from([
            ("CRITICAL".to_string(), 2_000),
            ("HIGH".to_string(), 8_000),
            ("MEDIUM".to_string(), 10_000),
            ("LOW".to_string(), 5_000),
        ])
    );
    assert_eq!(
        run["properties"]["dragnet/omitted"]["dropped"]["low"],
        5_000
    );
    let analyses = world.sandbox.emulator.analyses();
    assert_eq!(analyses[0].results_count, 25_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_target_is_a_usage_error_before_anything_is_sent() {
    let world = World::start(RegistryModeChoice::Open).await;
    let file = write_sarif(
        &world.path("x.sarif"),
        &sarif(&[("dragnet", "dragnet/x", None, 0)]),
    );
    let output = run(&mut world.dragnet(&["upload", file.to_str().unwrap(), "--sha", "abc"])).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--repository") && stderr.contains("GITHUB_REPOSITORY"),
        "{stderr}"
    );
    assert!(world.sandbox.emulator.uploads().is_empty());
}
