//! Scale-out end to end: `plan --shards 3`, three `scan --plan --shard i/3` jobs and `merge` give
//! the same findings, SARIF and summary as one unsharded `scan`, and no digest is scanned twice.

use std::collections::BTreeSet;
use std::path::Path;

use dragnet::finding::Severity;
use dragnet::report::Failure;
use dragnet::scan::{Outcome, ScanOptions, ScanResult, ScanRun};
use dragnet::shard::{FORMAT_VERSION, PlanFile, ShardRun};
use dragnet_sandbox::sandbox::RegistryModeChoice;

use crate::support::*;

/// Trivy scan calls (not DB downloads) as the digests they scanned.
fn scanned_digests(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|argv| argv.starts_with("image ") && !argv.contains("--download-db-only"))
        .map(|argv| argv.rsplit('@').next().unwrap().to_string())
        .collect()
}

/// `results.json` without what differs between any two runs: start times and durations.
fn without_timings(dir: &Path) -> serde_json::Value {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                map.remove("duration_ms");
                map.remove("started_at");
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    strip(&mut value);
    value
}

/// `summary.md` with its timings blanked: table cells such as `850 ms` or `1.2 s`, and the
/// footer's start time and duration.
fn summary_without_timings(dir: &Path) -> String {
    let is_time = |cell: &str| {
        let cell = cell.trim();
        cell.starts_with(|c: char| c.is_ascii_digit())
            && (cell.ends_with(" ms") || cell.ends_with(" s") || cell.ends_with(" min"))
    };
    std::fs::read_to_string(dir.join("summary.md"))
        .unwrap()
        .lines()
        .map(|line| match line.split_once(" · started ") {
            Some((before, _)) => format!("{before} · started <time>"),
            None if line.starts_with('|') => line
                .split('|')
                .map(|cell| if is_time(cell) { " <time> " } else { cell })
                .collect::<Vec<_>>()
                .join("|"),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sarif_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(&dir.join("sarif"))
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_merged_shards_equal_one_unsharded_run() {
    let world = World::start(RegistryModeChoice::Token).await;
    let owner = world.sandbox.owner().to_string();
    let registry = world.sandbox.registry_host();
    let db = world.sandbox.db_repository();
    let trivy = world.recording_trivy().display().to_string();

    // One unsharded run, the reference.
    let single = run(&mut world.scan("single", &[])).await;
    assert_eq!(single.status.code(), Some(3), "the broken image fails");
    let single_calls = world.trivy_calls().len();

    // The plan, with its matrix on stdout and in $GITHUB_OUTPUT.
    let plan = world.path("plan.json");
    let plan_arg = plan.display().to_string();
    let github_output = world.path("github-output");
    let planned = run(world
        .dragnet(&[
            "plan",
            "--owner",
            &owner,
            "--pattern",
            PATTERN,
            "--registry",
            &registry,
            "--shards",
            "3",
            "--output",
            &plan_arg,
        ])
        .env("GITHUB_OUTPUT", &github_output))
    .await;
    assert_eq!(planned.status.code(), Some(0));
    let matrix: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    assert_eq!(matrix, serde_json::json!({"shard": ["1/3", "2/3", "3/3"]}));
    let outputs = std::fs::read_to_string(&github_output).unwrap();
    assert!(
        outputs.contains(&format!("\n{matrix}\n")) && outputs.starts_with("matrix<<"),
        "{outputs}"
    );

    // Three shard jobs, each on its own runner (its own cache), then the merge.
    let mut shard_dirs = Vec::new();
    for index in 1..=3 {
        let spec = format!("{index}/3");
        let out = world.path(&format!("shard-{index}"));
        let out_arg = out.display().to_string();
        let output = run(world
            .dragnet(&[
                "scan",
                "--plan",
                &plan_arg,
                "--shard",
                &spec,
                "--output-dir",
                &out_arg,
                "--trivy",
                &trivy,
                "--db-repository",
                &db,
            ])
            .env("DRAGNET_CACHE_DIR", world.path(&format!("cache-{index}"))))
        .await;
        assert!(
            matches!(output.status.code(), Some(0 | 3)),
            "shard {spec}: {:?}",
            output.status
        );
        assert!(out.join("scan-run.json").is_file());
        shard_dirs.push(out_arg);
    }
    let merged_dir = world.path("merged");
    let mut args = vec!["merge", "--plan", &plan_arg, "--output-dir"];
    let merged_arg = merged_dir.display().to_string();
    args.push(&merged_arg);
    args.extend(shard_dirs.iter().map(String::as_str));
    let merged = run(&mut world.dragnet(&args)).await;
    assert_eq!(
        merged.status.code(),
        Some(3),
        "the broken image still fails"
    );

    // The same findings, fanned out to the same tags, as the fixture says.
    let single_dir = world.path("single");
    let reference = read_report(&single_dir);
    let report = read_report(&merged_dir);
    assert_eq!(reported_rows(&report), reported_rows(&reference));
    assert_eq!(reported_rows(&report), expected_rows(&["CRITICAL", "HIGH"]));
    assert_eq!(report.totals, reference.totals);
    assert_eq!(without_timings(&merged_dir), without_timings(&single_dir));

    // Byte-identical SARIF, and the same summary but for its timings.
    let sarif = sarif_files(&merged_dir);
    assert!(!sarif.is_empty());
    assert_eq!(sarif, sarif_files(&single_dir));
    for (name, _) in &sarif {
        assert_valid_sarif(&merged_dir.join("sarif").join(name));
    }
    assert_eq!(
        summary_without_timings(&merged_dir),
        summary_without_timings(&single_dir)
    );

    // Across the shards every planned digest was scanned once, and none twice.
    let shard_scans = scanned_digests(&world.trivy_calls()[single_calls..]);
    let unique: BTreeSet<&String> = shard_scans.iter().collect();
    assert_eq!(
        unique.len(),
        shard_scans.len(),
        "a digest was scanned twice: {shard_scans:#?}"
    );
    let planned: BTreeSet<&String> = reference.images.iter().map(|i| &i.digest).collect();
    assert_eq!(unique, planned);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_shard_is_reported_not_dropped() {
    // A plan of four images cut in two, and the scan run of shard 1 only.
    let dir = tempfile::tempdir().unwrap();
    let targets: Vec<serde_json::Value> = (1..=4)
        .map(|n| {
            serde_json::json!({
                "digest": format!("sha256:{n}"),
                "image": format!("ghcr.io/acme/tool@sha256:{n}"),
                "platform": null,
                "size": n * 100_000_000,
                "refs": [{"package": "tool", "version_digest": format!("sha256:{n}"),
                          "tags": [format!("{n}.0")]}],
            })
        })
        .collect();
    let plan: dragnet::plan::Plan = serde_json::from_value(serde_json::json!({
        "owner": "acme", "registry": "ghcr.io",
        "packages": [{"name": "tool", "repository": null}],
        "targets": targets, "unresolved": [],
    }))
    .unwrap();
    let file = PlanFile::new(plan, 2);
    std::fs::write(
        dir.path().join("plan.json"),
        serde_json::to_string(&file).unwrap(),
    )
    .unwrap();
    let first = &file.shards[0];
    let run_of_first = ShardRun {
        format_version: FORMAT_VERSION,
        plan_id: file.id.clone(),
        shard: Some(first.shard),
        run: ScanRun {
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: 1,
            trivy_version: "0.76.0".into(),
            db_updated_at: None,
            options: ScanOptions {
                severities: vec![Severity::Critical, Severity::High],
                ignore_unfixed: false,
            },
            results: first
                .digests
                .iter()
                .map(|digest| ScanResult {
                    digest: digest.clone(),
                    image: format!("ghcr.io/acme/tool@{digest}"),
                    duration_ms: 1,
                    outcome: Outcome::Scanned {
                        os: None,
                        findings: Vec::new(),
                    },
                })
                .collect(),
        },
    };
    let shard_dir = dir.path().join("shard-1");
    std::fs::create_dir_all(&shard_dir).unwrap();
    std::fs::write(
        shard_dir.join("scan-run.json"),
        serde_json::to_string(&run_of_first).unwrap(),
    )
    .unwrap();

    let merged_dir = dir.path().join("merged");
    let output = run(tokio::process::Command::new(env!("CARGO_BIN_EXE_dragnet"))
        .arg("merge")
        .arg("--plan")
        .arg(dir.path().join("plan.json"))
        .arg("--output-dir")
        .arg(&merged_dir)
        .arg(&shard_dir)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT"))
    .await;
    assert_eq!(
        output.status.code(),
        Some(3),
        "the missing shard is a partial failure"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("shard 2/2: no scan run given"), "{stderr}");

    // The second shard's images are in the report as not scanned, with the reason.
    let report = read_report(&merged_dir);
    let missing: BTreeSet<&String> = file.shards[1].digests.iter().collect();
    let failed: BTreeSet<&String> = report
        .failures
        .iter()
        .filter_map(|f| match f {
            Failure::Scan { digest, cause, .. } => {
                assert!(cause.contains("not merged"), "{cause}");
                Some(digest)
            }
            Failure::Resolve { .. } => None,
        })
        .collect();
    assert_eq!(failed, missing);
    assert_eq!(report.totals.images_scanned, first.digests.len());

    // A scan run of another plan is refused before anything is written.
    let other = PlanFile::new(file.plan.clone(), 1);
    std::fs::write(
        dir.path().join("other.json"),
        serde_json::to_string(&other).unwrap(),
    )
    .unwrap();
    let output = run(tokio::process::Command::new(env!("CARGO_BIN_EXE_dragnet"))
        .arg("merge")
        .arg("--plan")
        .arg(dir.path().join("other.json"))
        .arg("--output-dir")
        .arg(dir.path().join("other"))
        .arg(&shard_dir))
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another plan"), "{stderr}");
    assert!(!dir.path().join("other").exists());
}
