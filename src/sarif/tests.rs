//! Tests of the SARIF: runs per package, rules and results as GitHub reads them, stable
//! fingerprints and bytes, file splitting, and validation with the schema and the Multitool.

use std::path::PathBuf;

use serde_json::Value;

use super::sarif_validate::assert_valid_sarif;
use super::*;
use crate::finding::Severity;
use crate::report::Report;
use crate::report::fixtures::{self, digest, reference, scanned, target};

fn options() -> SarifOptions {
    SarifOptions {
        tool_version: "0.1.0".into(),
        max_runs_per_file: 20,
        information_uri: Some("https://example.com/dragnet".into()),
        location: None,
    }
}

fn report() -> Report {
    Report::build(&fixtures::plan(), &fixtures::run())
}

/// The logs as JSON values read back from their text, for asserting on what GitHub will read.
fn values(files: &SarifFiles) -> Vec<Value> {
    files
        .logs
        .iter()
        .map(|log| serde_json::from_str(&sarif_json(log)).unwrap())
        .collect()
}

fn run_of<'a>(log: &'a Value, package: &str) -> &'a Value {
    let id = automation_id(package);
    log["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["automationDetails"]["id"] == id)
        .unwrap()
}

fn rule_of<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
}

fn results_of<'a>(run: &'a Value, rule: &str) -> Vec<&'a Value> {
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == rule)
        .collect()
}

/// Writes the log to a temporary file and runs both validators on it.
fn validate(log: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("dragnet.sarif");
    std::fs::write(&path, sarif_json(log)).unwrap();
    assert_valid_sarif(&path);
}

#[test]
fn one_run_per_scanned_package_with_a_stable_category() {
    let logs = values(&build(&report(), &options()));
    assert_eq!(logs.len(), 1);
    let ids: Vec<&str> = logs[0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["automationDetails"]["id"].as_str().unwrap())
        .collect();
    // `broken` had no image scanned: no run, so its previous alerts stay open.
    assert_eq!(
        ids,
        ["dragnet/app/", "dragnet/clean/", "dragnet/tools/cli/"]
    );
    assert_eq!(category("tools/cli"), "dragnet/tools/cli");
    assert_eq!(package_of_category("dragnet/tools/cli/"), Some("tools/cli"));
    assert_eq!(package_of_category("dragnet/tools/cli"), Some("tools/cli"));
    assert_eq!(package_of_category("codeql/python"), None);
}

#[test]
fn a_clean_package_gets_an_empty_run_that_closes_its_alerts() {
    let logs = values(&build(&report(), &options()));
    let clean = run_of(&logs[0], "clean");
    assert_eq!(clean["results"], Value::Array(vec![]));
    assert_eq!(
        clean["tool"]["driver"]["rules"],
        Value::Array(vec![]),
        "GitHub needs the array"
    );
}

#[test]
fn a_package_without_any_scanned_image_gets_no_run() {
    let mut run = fixtures::run();
    run.results.retain(|r| r.digest != digest(0x05));
    let logs = values(&build(&Report::build(&fixtures::plan(), &run), &options()));
    let ids: Vec<&str> = logs[0]["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["automationDetails"]["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&"dragnet/clean/") && !ids.contains(&"dragnet/broken/"),
        "{ids:?}"
    );
}

#[test]
fn dedupes_a_finding_shared_by_tags_and_platforms_into_one_result() {
    let logs = values(&build(&report(), &options()));
    let app = run_of(&logs[0], "app");
    let libssl = results_of(app, "CVE-2024-0001");
    assert_eq!(
        libssl.len(),
        1,
        "two tags × two platforms, one installed package"
    );
    assert_eq!(
        libssl[0]["message"]["text"],
        "libssl3 3.0.11-1 in ghcr.io/acme/app (tags 1.0, latest) is affected by CVE-2024-0001 \
         (CRITICAL); fixed in 3.0.11-2."
    );
    let locations = libssl[0]["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 1);
    assert_eq!(
        locations[0]["physicalLocation"]["artifactLocation"]["uri"],
        "containers/app"
    );
    assert_eq!(locations[0]["physicalLocation"]["region"]["startLine"], 1);

    let tar = results_of(app, "CVE-2024-0004");
    assert_eq!(
        tar[0]["message"]["text"],
        "tar 1.34 in ghcr.io/acme/app (untagged sha256:030303030303) is affected by \
         CVE-2024-0004 (UNKNOWN); no fix available."
    );

    // The shared image also shows in tools/cli's run, with its own tag only.
    let cli = run_of(&logs[0], "tools/cli");
    let text = results_of(cli, "CVE-2024-0001")[0]["message"]["text"]
        .as_str()
        .unwrap();
    assert!(
        text.contains("ghcr.io/acme/tools/cli (tag shared)"),
        "{text}"
    );
}

#[test]
fn rules_carry_trivys_severity_not_the_cvss_score() {
    let logs = values(&build(&report(), &options()));
    let app = run_of(&logs[0], "app");
    let expected = [
        ("CVE-2024-0001", "9.5", "error", "CRITICAL"),
        ("CVE-2024-0002", "8.0", "error", "HIGH"),
        ("GHSA-aaaa-bbbb-cccc", "5.5", "warning", "MEDIUM"),
        ("CVE-2024-0003", "2.0", "note", "LOW"),
        ("CVE-2024-0004", "1.0", "note", "UNKNOWN"),
    ];
    for (id, score, level, severity) in expected {
        let rule = rule_of(app, id);
        assert_eq!(rule["properties"]["security-severity"], score, "{id}");
        assert_eq!(rule["defaultConfiguration"]["level"], level, "{id}");
        assert_eq!(rule["properties"]["precision"], "very-high");
        let tags = rule["properties"]["tags"].as_array().unwrap();
        assert_eq!(
            tags[..3],
            [
                Value::from("vulnerability"),
                "security".into(),
                severity.into()
            ]
        );
        assert!(tags.contains(&"external/cwe/cwe-787".into()));
        assert_eq!(results_of(app, id)[0]["level"], level, "{id}");
    }
    // Every fixture finding has CVSS 5.0, which would be "medium" everywhere.
    assert_eq!(security_severity(Severity::High), "8.0");
}

#[test]
fn rule_has_names_descriptions_help_and_sorted_indices() {
    let logs = values(&build(&report(), &options()));
    let app = run_of(&logs[0], "app");
    let rules = app["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    for result in app["results"].as_array().unwrap() {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
    }

    let django = rule_of(app, "GHSA-aaaa-bbbb-cccc");
    assert_eq!(django["name"], "LanguagePackageVulnerability");
    assert_eq!(django["shortDescription"]["text"], "django: a flaw");
    assert_eq!(
        django["helpUri"],
        "https://avd.aquasec.com/nvd/ghsa-aaaa-bbbb-cccc"
    );
    let markdown = django["help"]["markdown"].as_str().unwrap();
    assert!(
        markdown.contains(
            "| django (usr/lib/python3/site-packages/Django-4.2.0.dist-info/METADATA) | 4.2.0 \
             | 4.2.7 | MEDIUM | tags 1.0, latest |"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains("upgrade to 4.2.7 and rebuild the image"),
        "{markdown}"
    );
    assert!(markdown.contains("- <https://nvd.nist.gov/vuln/detail/GHSA-aaaa-bbbb-cccc>"));
    assert_eq!(
        rule_of(app, "CVE-2024-0001")["name"],
        "OsPackageVulnerability"
    );
    assert!(
        django["help"]["text"]
            .as_str()
            .unwrap()
            .contains("References:")
    );
}

#[test]
fn a_vulnerability_seen_with_two_severities_gets_a_rule_per_severity() {
    // CVE-2024-0003 is LOW for curl on arm64 and, here, HIGH for curl on amd64.
    let mut run = fixtures::run();
    let high = fixtures::finding("CVE-2024-0003", "curl", "7.87.0", Severity::High);
    run.results[0] = scanned(&digest(0x01), vec![high]);
    let logs = values(&build(&Report::build(&fixtures::plan(), &run), &options()));
    let app = run_of(&logs[0], "app");
    let high = rule_of(app, "CVE-2024-0003");
    assert_eq!(high["properties"]["security-severity"], "8.0");
    assert_eq!(high["defaultConfiguration"]["level"], "error");
    let low = rule_of(app, "CVE-2024-0003/low");
    assert_eq!(low["properties"]["security-severity"], "2.0");
    assert_eq!(results_of(app, "CVE-2024-0003").len(), 1);
    assert_eq!(results_of(app, "CVE-2024-0003/low").len(), 1);
}

#[test]
fn github_shows_trivys_severity_for_every_result() {
    let report = report();
    let logs = values(&build(&report, &options()));
    let mut checked = 0;
    for log in &logs {
        for run in log["runs"].as_array().unwrap() {
            let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
            for result in run["results"].as_array().unwrap() {
                let rule = &rules[result["ruleIndex"].as_u64().unwrap() as usize];
                let score: f64 = rule["properties"]["security-severity"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                // The finding the result stands for, by its message's words.
                let message = result["message"]["text"].as_str().unwrap();
                let trivy = Severity::ALL
                    .into_iter()
                    .find(|s| message.contains(&format!("({s})")))
                    .unwrap();
                let shown = match score {
                    s if s >= 9.0 => Severity::Critical,
                    s if s >= 7.0 => Severity::High,
                    s if s >= 4.0 => Severity::Medium,
                    // GitHub has no "unknown": dragnet shows it as low, below every LOW.
                    s if s >= 2.0 => Severity::Low,
                    _ => Severity::Unknown,
                };
                assert_eq!(shown, trivy, "{message}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 8, "five in app, three in tools/cli");
}

#[test]
fn runs_name_their_package_and_linked_repository_and_files_their_categories() {
    let logs = values(&build(&report(), &options()));
    let app = run_of(&logs[0], "app");
    assert_eq!(app["properties"][PACKAGE_PROPERTY], "app");
    assert_eq!(app["properties"][REPOSITORY_PROPERTY], "acme/app");
    // `broken` has no run but is covered: its alerts must not be closed as stale.
    assert_eq!(
        logs[0]["properties"][pack::CATEGORIES_PROPERTY],
        serde_json::json!([
            "dragnet/app",
            "dragnet/broken",
            "dragnet/clean",
            "dragnet/tools/cli"
        ])
    );
}

#[test]
fn a_location_template_points_alerts_at_the_file_that_builds_the_image() {
    let options = SarifOptions {
        location: Some(LocationTemplate::parse("docker/{name}/Dockerfile").unwrap()),
        ..options()
    };
    let logs = values(&build(&report(), &options));
    let cli = run_of(&logs[0], "tools/cli");
    for result in cli["results"].as_array().unwrap() {
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "docker/cli/Dockerfile"
        );
    }
}

#[test]
fn fingerprints_stay_the_same_when_a_tag_is_added_or_an_image_rebuilt() {
    let fingerprints = |report: &Report| -> Vec<(String, String)> {
        let logs = values(&build(report, &options()));
        let app = run_of(&logs[0], "app");
        app["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["partialFingerprints"][FINGERPRINT_KEY].as_str().unwrap();
                (r["ruleId"].as_str().unwrap().to_string(), value.to_string())
            })
            .collect()
    };
    let before = fingerprints(&report());

    // A new tag on the same version, and the same packages in a rebuilt image under a new tag.
    let mut plan = fixtures::plan();
    plan.targets[0].refs[0].tags.push("1.0.1".into());
    plan.targets.retain(|t| t.digest != digest(0x02));
    plan.targets.push(target(
        &digest(0x09),
        fixtures::linux("arm64"),
        vec![reference("app", &digest(0x11), &["2.0"])],
    ));
    let mut run = fixtures::run();
    for result in &mut run.results {
        if result.digest == digest(0x02) {
            result.digest = digest(0x09);
        }
    }
    let after = fingerprints(&Report::build(&plan, &run));

    assert_eq!(before, after);
    assert_eq!(before.len(), 5);
    assert!(before.iter().all(|(_, f)| f.len() == 64), "hex SHA-256");
    let cli = fingerprint(
        "tools/cli",
        &fixtures::finding("CVE-2024-0002", "zlib1g", "1:1.2.13", Severity::High),
    );
    assert!(
        !before.iter().any(|(_, f)| *f == cli),
        "packages do not share fingerprints"
    );
}

#[test]
fn splits_files_at_the_run_limit_without_repeating_a_category() {
    let mut plan = fixtures::plan();
    let mut run = fixtures::run();
    for n in 0..45u32 {
        let name = format!("bulk-{n:02}");
        let image = format!("sha256:{:064x}", n + 100);
        plan.packages.push(fixtures::package(&name));
        plan.targets
            .push(target(&image, None, vec![reference(&name, &image, &["1"])]));
        run.results.push(scanned(&image, vec![]));
    }
    let logs = build(&Report::build(&plan, &run), &options()).logs;
    let runs = |log: &Value| log["runs"].as_array().unwrap().clone();
    let sizes: Vec<usize> = logs.iter().map(|l| runs(l).len()).collect();
    // 45 bulk packages + app, clean, tools/cli = 48 runs.
    assert_eq!(sizes, [20, 20, 8]);
    for log in &logs {
        let mut ids: Vec<String> = runs(log).iter().map(pack::run_category).collect();
        let count = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), count, "no category twice in one file");
    }

    let small = SarifOptions {
        max_runs_per_file: 2,
        ..options()
    };
    assert_eq!(
        build(&report(), &small)
            .logs
            .iter()
            .map(|l| runs(l).len())
            .collect::<Vec<_>>(),
        [2, 1]
    );
}

#[test]
fn two_builds_over_the_same_data_are_byte_identical() {
    let first: Vec<String> = build(&report(), &options())
        .logs
        .iter()
        .map(sarif_json)
        .collect();

    // The same data arriving in another order.
    let mut plan = fixtures::plan();
    plan.targets.reverse();
    plan.packages.reverse();
    let mut run = fixtures::run();
    run.results.reverse();
    for result in &mut run.results {
        if let crate::scan::Outcome::Scanned { findings, .. } = &mut result.outcome {
            findings.reverse();
        }
    }
    let second: Vec<String> = build(&Report::build(&plan, &run), &options())
        .logs
        .iter()
        .map(sarif_json)
        .collect();
    assert_eq!(first, second);
}

#[test]
fn artifact_uris_are_relative_and_path_safe() {
    assert_eq!(
        artifact_uri("products/bfx/samtools"),
        "containers/products/bfx/samtools"
    );
    assert_eq!(artifact_uri("../../etc/passwd"), "containers/etc/passwd");
    assert_eq!(artifact_uri("/abs//./x"), "containers/abs/x");
    assert_eq!(artifact_uri("a\\b"), "containers/a/b");
    assert_eq!(artifact_uri("x y\u{0}%z"), "containers/x_y__z");
    assert_eq!(artifact_uri(".."), "containers/_");
}

#[test]
fn hostile_advisory_text_and_tags_stay_inert() {
    let mut evil = fixtures::finding("CVE-2024-6666", "pkg|x", "1\n2", Severity::High);
    evil.title = Some("<script>alert(1)</script>\n# heading".into());
    evil.description = Some("`code` [link](javascript:alert(1)) | cell".into());
    evil.primary_url = Some("javascript:alert(1)".into());
    evil.references = vec!["https://ok.example/a b<c>".into(), "ftp://x".into()];
    let mut plan = fixtures::plan();
    plan.targets[4].refs[0].tags = vec!["t|<b>".into()];
    let mut run = fixtures::run();
    run.results[4] = scanned(&digest(0x05), vec![evil]);
    let files = build(&Report::build(&plan, &run), &options());
    let values = values(&files);
    let clean = run_of(&values[0], "clean");
    let rule = rule_of(clean, "CVE-2024-6666");
    let markdown = rule["help"]["markdown"].as_str().unwrap();
    assert!(!markdown.contains('<') || markdown.contains("<https://ok.example/a%20b%3Cc%3E>"));
    assert!(!markdown.contains("<script"), "{markdown}");
    assert!(
        markdown.contains("\\[link\\](javascript:alert(1))"),
        "link syntax escaped: {markdown}"
    );
    assert_eq!(rule["helpUri"], "https://ok.example/a%20b%3Cc%3E");
    let message = results_of(clean, "CVE-2024-6666")[0]["message"]["text"]
        .as_str()
        .unwrap();
    assert!(!message.contains('\n'), "{message}");
    validate(&files.logs[0]);
}

#[test]
fn small_sarif_snapshot() {
    // Two packages of the fixture: `tools/cli` (one image, three findings) and `clean`.
    let mut plan = fixtures::plan();
    plan.packages
        .retain(|p| p.name == "tools/cli" || p.name == "clean");
    plan.targets
        .retain(|t| t.digest == digest(0x01) || t.digest == digest(0x05));
    plan.targets[0].refs.retain(|r| r.package == "tools/cli");
    plan.unresolved.clear();
    let logs = build(&Report::build(&plan, &fixtures::run()), &options()).logs;
    assert_eq!(logs.len(), 1);
    validate(&logs[0]);
    insta::assert_snapshot!(sarif_json(&logs[0]));
}

#[test]
fn the_validators_reject_sarif_github_cannot_use() {
    let document = |level: &str| {
        serde_json::json!({
            "$schema": SCHEMA_URI,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {"name": "dragnet"}},
                "results": [{
                    "ruleId": "X",
                    "level": level,
                    "message": {"text": "x."},
                    "locations": [{"physicalLocation": {
                        "artifactLocation": {"uri": "containers/x"},
                        "region": {"startLine": 1}
                    }}]
                }]
            }]
        })
    };
    let dir = tempfile::tempdir().unwrap();

    // Schema-valid, but without the rules array GitHub needs: the Multitool's GH1018.
    let no_rules = dir.path().join("no-rules.sarif");
    std::fs::write(&no_rules, document("error").to_string()).unwrap();
    let problems = super::sarif_validate::multitool_problems(&no_rules);
    assert!(
        problems.iter().any(|p| p.contains("GH1018")),
        "{problems:?}"
    );

    // A level the schema does not know, which the Multitool silently accepts.
    let bad_level = dir.path().join("bad-level.sarif");
    std::fs::write(&bad_level, document("fatal").to_string()).unwrap();
    let problems = super::sarif_validate::schema_problems(&bad_level);
    assert!(problems.iter().any(|p| p.contains("fatal")), "{problems:?}");

    for path in [no_rules, bad_level] {
        let outcome = std::panic::catch_unwind(|| assert_valid_sarif(&path));
        assert!(
            outcome.is_err(),
            "assert_valid_sarif accepted {}",
            path.display()
        );
    }
}
