//! Tests of the report: fan-out to tags, counting once per image, failures with causes, the JSON
//! layout, and a summary that hostile names cannot break.

use super::fixtures::{self, digest, failed, linux, reference, scanned, target};
use super::*;
use crate::finding::Severity;

fn report() -> Report {
    Report::build(&fixtures::plan(), &fixtures::run())
}

fn package<'a>(report: &'a Report, name: &str) -> &'a PackageReport {
    report
        .packages
        .iter()
        .find(|p| p.name == name)
        .expect("package in report")
}

#[test]
fn fans_an_index_out_to_each_tag_and_platform() {
    let report = report();
    let app = package(&report, "app");

    let tagged = &app.versions[0];
    assert_eq!(tagged.digest, digest(0x10));
    assert_eq!(tagged.tags, ["1.0", "latest"], "tags sorted by name");
    let platforms: Vec<String> = tagged
        .images
        .iter()
        .map(|i| i.platform.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(tagged.images[0].counts.critical, 1);
    assert_eq!(tagged.images[0].counts.high, 1);
    assert_eq!(tagged.images[1].counts.low, 1);
    assert_eq!(tagged.status, VersionStatus::Scanned);

    let untagged = &app.versions[1];
    assert!(untagged.tags.is_empty(), "untagged versions come last");
    assert_eq!(untagged.images[0].counts.unknown, 1);
}

#[test]
fn counts_a_finding_once_per_image_however_many_tags_and_packages_reach_it() {
    let report = report();
    let app = package(&report, "app");
    // Images 0x01 (3 findings), 0x02 (2) and 0x03 (1); the two tags do not double them.
    assert_eq!(app.counts.total(), 6);
    assert_eq!(app.counts.critical, 2, "libssl3 is in two images");
    assert_eq!(app.fixable, 3);
    assert_eq!(package(&report, "tools/cli").counts.total(), 3);

    // Image 0x01 is reached from two packages but counted once in the totals.
    let totals = &report.totals;
    assert_eq!(totals.findings.total(), 6);
    assert_eq!(totals.findings.critical, 2);
    assert_eq!(totals.findings.unknown, 1);
    assert_eq!(totals.fixable, 3);
    assert_eq!(totals.vulnerabilities, 5);
}

#[test]
fn totals_count_packages_versions_tags_and_images() {
    let totals = report().totals;
    assert_eq!(totals.packages, 4);
    // app: index + untagged; tools/cli: 1; broken: v1 + old; clean: 1.
    assert_eq!(totals.versions, 6);
    // 1.0, latest, shared, v1, old, stable.
    assert_eq!(totals.tags, 6);
    assert_eq!(
        (totals.images, totals.images_scanned, totals.images_failed),
        (5, 4, 1)
    );
    assert_eq!(totals.versions_unresolved, 1);
}

#[test]
fn lists_failures_with_their_causes_and_marks_packages() {
    let report = report();
    assert_eq!(report.failures.len(), 2);
    assert!(
        matches!(&report.failures[0], Failure::Resolve { package, tags, cause, .. }
        if package == "broken" && tags == &["old"] && cause.starts_with("manifest unknown"))
    );
    assert!(
        matches!(&report.failures[1], Failure::Scan { digest: d, refs, cause, .. }
        if *d == digest(0x04) && refs[0].package == "broken" && cause.contains("blob unknown"))
    );

    assert_eq!(package(&report, "broken").status, PackageStatus::Failed);
    assert_eq!(package(&report, "app").status, PackageStatus::Scanned);
    assert_eq!(package(&report, "clean").status, PackageStatus::Scanned);
    assert!(report.has_failures());
}

#[test]
fn marks_a_package_partial_when_some_images_failed() {
    let mut plan = fixtures::plan();
    plan.targets.push(target(
        &digest(0x07),
        None,
        vec![reference("clean", &digest(0x07), &["next"])],
    ));
    let mut run = fixtures::run();
    run.results.push(failed(&digest(0x07), "timeout"));
    let report = Report::build(&plan, &run);
    let clean = package(&report, "clean");
    assert_eq!(clean.status, PackageStatus::Partial);
    assert_eq!((clean.images_scanned, clean.images_failed), (1, 1));
}

#[test]
fn a_target_without_a_result_counts_as_failed_with_a_cause() {
    let mut run = fixtures::run();
    run.results.retain(|r| r.digest != digest(0x05));
    let report = Report::build(&fixtures::plan(), &run);
    let image = report.image(&digest(0x05)).unwrap();
    assert_eq!(image.status, ImageStatus::Failed);
    assert!(image.cause.as_deref().unwrap().contains("no scan result"));
    assert_eq!(package(&report, "clean").status, PackageStatus::Failed);
}

#[test]
fn a_successful_scan_wins_over_a_failed_one_for_the_same_digest() {
    let mut run = fixtures::run();
    run.results.push(failed(&digest(0x01), "retry failed"));
    run.results
        .insert(0, failed(&digest(0x05), "first try failed"));
    let report = Report::build(&fixtures::plan(), &run);
    assert_eq!(
        report.image(&digest(0x01)).unwrap().status,
        ImageStatus::Scanned
    );
    assert_eq!(
        report.image(&digest(0x05)).unwrap().status,
        ImageStatus::Scanned
    );
}

#[test]
fn a_package_whose_versions_could_not_be_listed_is_failed_with_its_cause() {
    let mut plan = fixtures::plan();
    plan.packages.push(fixtures::package("secret"));
    plan.unresolved.push(crate::plan::ResolveFailure {
        package: "secret".into(),
        version_digest: String::new(),
        tags: vec![],
        cause: "listing versions: 404".into(),
    });
    let report = Report::build(&plan, &fixtures::run());
    let secret = package(&report, "secret");
    assert_eq!(secret.status, PackageStatus::Failed);
    assert!(secret.versions.is_empty());
    assert_eq!(secret.cause.as_deref(), Some("listing versions: 404"));
    let summary = summary_markdown(&report);
    assert!(summary.contains("- ❌ listing the versions of **secret**: listing versions: 404"));
}

#[test]
fn dedupes_repeated_findings_within_an_image_keeping_the_highest_severity() {
    let mut run = fixtures::run();
    let repeat = fixtures::finding("CVE-2024-0004", "tar", "1.34", Severity::High);
    run.results[2] = scanned(&digest(0x03), vec![run_finding(&run, 2), repeat]);
    let report = Report::build(&fixtures::plan(), &run);
    let image = report.image(&digest(0x03)).unwrap();
    assert_eq!(image.findings.len(), 1);
    assert_eq!(image.findings[0].severity, Severity::High);
}

fn run_finding(run: &crate::scan::ScanRun, index: usize) -> crate::finding::Finding {
    match &run.results[index].outcome {
        crate::scan::Outcome::Scanned { findings, .. } => findings[0].clone(),
        crate::scan::Outcome::Failed { .. } => panic!("fixture result {index} is a failure"),
    }
}

#[test]
fn builds_the_same_report_whatever_order_the_data_arrived_in() {
    let mut plan = fixtures::plan();
    plan.targets.reverse();
    plan.packages.reverse();
    for target in &mut plan.targets {
        target.refs.reverse();
        for reference in &mut target.refs {
            reference.tags.reverse();
        }
    }
    let mut run = fixtures::run();
    run.results.reverse();
    assert_eq!(Report::build(&plan, &run), report());
}

#[test]
fn results_json_has_a_schema_version_and_reads_back() {
    let json = results_json(&report());
    assert!(
        json.starts_with("{\n  \"schema_version\": 1,"),
        "{}",
        &json[..80]
    );
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report());

    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["totals"]["findings"]["critical"], 2);
    assert_eq!(value["failures"][0]["stage"], "resolve");
    assert_eq!(value["images"][3]["status"], "failed");
    assert_eq!(value["run"]["trivy_version"], "0.76.0");
}

#[test]
fn summary_shows_each_tag_with_its_image_counts() {
    let summary = summary_markdown(&report());
    let short = "0101010101010101"[..12].to_string();
    // Both tags of the index show image 0x01's counts: 1 critical, 1 high, 2 fixable.
    for tag in ["1.0", "latest"] {
        let row = format!("| {tag} | `{short}` | linux/amd64 | 1 | 1 | 2 | ✅ | 12.3 s |");
        assert!(summary.contains(&row), "missing {row}\n{summary}");
    }
    let failed_row = "| v1 | `040404040404` | linux/amd64 | — | — | — | ❌ failed |";
    assert!(summary.contains(failed_row));
    let unresolved_row = "| old | `060606060606` | — | — | — | — | ❌ unresolved | — |";
    assert!(summary.contains(unresolved_row));
    assert!(summary.contains("pulling image: blob unknown to registry"));
    assert!(summary.contains("Trivy 0.76.0 · vulnerability DB updated 2024-05-01T00:00:00Z"));

    // Packages by name.
    let order: Vec<usize> = ["### app", "### broken", "### clean", "### tools/cli"]
        .iter()
        .map(|h| summary.find(h).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

/// The number of `|` in a line that are not escaped with a backslash.
fn cell_separators(line: &str) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => count += 1,
            _ => escaped = false,
        }
    }
    count
}

#[test]
fn hostile_names_tags_and_causes_cannot_break_the_table_or_inject_html() {
    let hostile_tag = "x|<img src=x onerror=alert(1)>`code`\n| injected | row |";
    let hostile_name = "evil</td><script>alert(1)</script>|";
    let mut plan = fixtures::plan();
    plan.packages.push(fixtures::package(hostile_name));
    plan.targets.push(target(
        &digest(0x08),
        linux("amd64"),
        vec![reference(
            hostile_name,
            "not-a-digest`|",
            &[hostile_tag, &"y".repeat(5000)],
        )],
    ));
    let mut run = fixtures::run();
    run.results.push(failed(
        &digest(0x08),
        "bad\n\n## Heading\n<b>bold</b> | cell",
    ));
    let summary = summary_markdown(&Report::build(&plan, &run));

    assert!(!summary.contains('<'), "no raw HTML survives:\n{summary}");
    assert!(
        !summary.contains("\n## Heading"),
        "a cause cannot start a heading"
    );
    assert!(!summary.contains(&"y".repeat(200)), "long tags are cut");
    for line in summary.lines().filter(|l| l.starts_with('|')) {
        let separators = cell_separators(line);
        assert!(
            separators == 9 || separators == 3,
            "{separators} cells in {line:?}"
        );
    }
    assert!(summary.contains("x\\|&lt;img src=x onerror=alert(1)&gt;\\`code\\` \\| injected"));
}

#[test]
fn summary_stays_within_github_step_summary_limit() {
    let mut plan = fixtures::plan();
    let mut run = fixtures::run();
    for n in 0..2000u32 {
        let name = format!("pkg-{n:04}");
        let image = format!("sha256:{:064x}", n + 1000);
        let tags: Vec<String> = (0..30).map(|t| format!("tag-{t}")).collect();
        let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
        plan.packages.push(fixtures::package(&name));
        plan.targets.push(target(
            &image,
            linux("amd64"),
            vec![reference(&name, &image, &tags)],
        ));
        run.results.push(scanned(&image, vec![]));
    }
    let summary = summary_markdown(&Report::build(&plan, &run));
    assert!(summary.len() < 1024 * 1024, "{} bytes", summary.len());
    assert!(summary.contains("more packages not shown"));
    assert!(summary.contains("### Totals") && summary.contains("### Failures"));
}

#[test]
fn summary_snapshot() {
    insta::assert_snapshot!(summary_markdown(&report()));
}

#[test]
fn ignored_findings_leave_the_counts_and_sarif_but_are_kept_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let allowlist = dir.path().join("allowlist.yaml");
    std::fs::write(
        &allowlist,
        "allowlist:\n  - id: CVE-2024-0001\n    reason: libssl is not used for TLS here\n    \
         expires: 2030-01-01\n  - id: CVE-2024-0002\n    reason: old\n    expires: 2020-01-01\n",
    )
    .unwrap();
    let today = time::macros::date!(2024 - 06 - 01);
    let ignore = crate::ignore::IgnoreList::load(&[], &[allowlist], today).unwrap();
    let report = Report::build_ignoring(&fixtures::plan(), &fixtures::run(), &ignore);

    // libssl3's CVE was CRITICAL on both app images: now ignored on both, counted apart.
    let app = package(&report, "app");
    assert_eq!(app.counts.critical, 0);
    assert_eq!(app.ignored, 2);
    assert_eq!(report.totals.findings.critical, 0);
    assert_eq!(report.totals.ignored, 2);
    let image = report.image(&digest(0x01)).unwrap();
    assert_eq!(image.ignored.len(), 1);
    assert_eq!(
        image.ignored[0].ignored_by.reason.as_deref(),
        Some("libssl is not used for TLS here")
    );
    assert!(
        image
            .findings
            .iter()
            .all(|f| f.vulnerability_id != "CVE-2024-0001")
    );
    // The expired entry ignores nothing: zlib's HIGH stays.
    assert_eq!(report.totals.findings.high, 1);
    assert_eq!(report.ignore.entries[0].matched, 2);
    assert_eq!(report.ignore.expired[0].id, "CVE-2024-0002");

    // Out of the SARIF, in the summary, and read back from results.json unchanged.
    let sarif = crate::sarif::build(&report, &crate::sarif::SarifOptions::default());
    let text = crate::sarif::sarif_json(&sarif.logs[0]);
    assert!(!text.contains("CVE-2024-0001"));
    let summary = summary_markdown(&report);
    assert!(
        summary.contains("| Ignored (ignore files, allowlists) | 2 |"),
        "{summary}"
    );
    assert!(
        summary.contains("**CVE-2024-0001** (") && summary.contains("2 findings"),
        "{summary}"
    );
    assert!(summary.contains("⚠️ expired, reported again: **CVE-2024-0002**"));
    let back: Report = serde_json::from_str(&results_json(&report)).unwrap();
    assert_eq!(back, report);
}

#[test]
fn the_summary_says_what_the_filters_left_out_and_why() {
    let mut plan = fixtures::plan();
    plan.selection = crate::filter::Selection {
        listed: 900,
        untagged: 12,
        beyond_latest: 800,
        signatures: 1,
        platform_children: 2,
        ..Default::default()
    };
    let summary = summary_markdown(&Report::build(&plan, &fixtures::run()));

    assert!(
        summary.contains(
            "Left out by the version filters: 1 cosign signature or attestation, 12 untagged \
             versions (`--include-untagged` keeps them) and 800 versions by `--latest`."
        ),
        "{summary}"
    );
    assert!(
        summary.contains(
            "2 untagged versions are platforms of tagged multi-platform images, scanned through \
             them."
        ),
        "{summary}"
    );

    // Nothing left out: nothing said, and results.json keeps its shape.
    let report = report();
    assert!(!summary_markdown(&report).contains("Left out"));
    assert!(!results_json(&report).contains("selection"));
}
