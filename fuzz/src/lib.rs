//! The properties dragnet's fuzz targets check, one function per target: never a panic, and
//! what comes out is well formed. The cargo-fuzz binaries (nightly) call these, and the stable
//! integration test `tests/it/fuzz_regressions.rs` compiles this same file (by `#[path]`) and
//! runs it over the committed corpora and a seeded generator, so stable CI keeps every
//! regression input and nightly adds coverage-guided search on top.

use dragnet::github::discover::compile_patterns;
use dragnet::github::link::next_url;
use dragnet::plan::Plan;
use dragnet::registry::auth::parse_challenges;
use dragnet::report::{Report, results_json, summary_markdown};
use dragnet::sarif::{SarifOptions, build, sarif_json};
use dragnet::scan::ScanRun;
use dragnet::trivy::parse_report;
use serde_json::{Value, json};

/// GitHub keeps at most this many results per run; dragnet must never write more.
const MAX_RESULTS_PER_RUN: usize = 25_000;

/// Trivy's JSON → findings → report → SARIF, results.json and the summary: whatever Trivy
/// printed, dragnet either rejects it with an error or writes SARIF whose every result has a
/// location, a rule with a valid `security-severity`, and a fingerprint, and a summary with no
/// control character but newlines.
pub fn trivy_to_sarif(data: &[u8]) {
    let Ok(scan) = parse_report(data) else {
        return;
    };
    let digest = format!("sha256:{}", "ab".repeat(32));
    let plan: Plan = serde_json::from_value(json!({
        "owner": "acme",
        "registry": "ghcr.io",
        "packages": [{ "name": "products/bfx/tool", "repository": null }],
        "targets": [{
            "digest": digest,
            "image": format!("ghcr.io/acme/products/bfx/tool@{digest}"),
            "platform": { "os": "linux", "architecture": "amd64" },
            "size": 1000,
            "refs": [{ "package": "products/bfx/tool", "version_digest": digest,
                       "tags": ["1.0", "latest"] }],
        }],
        "unresolved": [],
    }))
    .expect("the fuzz harness's plan matches dragnet's Plan");
    let run: ScanRun = serde_json::from_value(json!({
        "started_at": "2026-01-01T00:00:00Z",
        "duration_ms": 1,
        "trivy_version": "0.76.0",
        "db_updated_at": null,
        "options": { "severities": ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"],
                     "ignore_unfixed": false },
        "results": [{
            "digest": digest,
            "image": "ghcr.io/acme/products/bfx/tool",
            "duration_ms": 1,
            "status": "scanned",
            "os": scan.os,
            "findings": scan.findings,
        }],
    }))
    .expect("the fuzz harness's scan run matches dragnet's ScanRun");

    let report = Report::build(&plan, &run);
    let _ = results_json(&report);
    let summary = summary_markdown(&report);
    let stray = summary.chars().find(|c| c.is_control() && *c != '\n');
    assert_eq!(stray, None, "a control character reached summary.md");
    for log in build(&report, &SarifOptions::default()).logs {
        let text = sarif_json(&log);
        let reread: Value = serde_json::from_str(&text).expect("SARIF is JSON");
        assert_eq!(reread, log, "SARIF survives a round trip");
        for run in reread["runs"].as_array().into_iter().flatten() {
            check_run(run);
        }
    }
}

/// One SARIF run: results within GitHub's limit, each located, fingerprinted and ruled.
fn check_run(run: &Value) {
    let rules = run["tool"]["driver"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for rule in &rules {
        let severity = rule["properties"]["security-severity"]
            .as_str()
            .expect("every rule has a security-severity");
        let score: f64 = severity.parse().expect("security-severity is a number");
        assert!((0.1..=10.0).contains(&score), "security-severity {score}");
    }
    let results = run["results"].as_array().cloned().unwrap_or_default();
    assert!(
        results.len() <= MAX_RESULTS_PER_RUN,
        "{} results",
        results.len()
    );
    for result in &results {
        let locations = result["locations"].as_array().map_or(0, Vec::len);
        assert!(locations >= 1, "a result without a location: {result}");
        assert!(
            result["partialFingerprints"].is_object(),
            "no fingerprint: {result}"
        );
        let id = result["ruleId"].as_str().expect("a ruleId");
        assert!(
            rules.iter().any(|r| r["id"] == id),
            "rule {id} is not declared"
        );
    }
}

/// The `Link` header: never a panic, and a `next` URL is always text from the header.
pub fn link_header(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(url) = next_url(header) {
        assert!(header.contains(&url), "{url:?} is not in {header:?}");
    }
}

/// `WWW-Authenticate`: never a panic; schemes and parameter names come back lowercased, and
/// every challenge has either parameters, a token68, or neither — never both.
pub fn www_authenticate(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(challenges) = parse_challenges(header) else {
        return;
    };
    for challenge in challenges {
        assert!(!challenge.scheme.is_empty());
        assert_eq!(challenge.scheme, challenge.scheme.to_ascii_lowercase());
        for (name, _) in &challenge.params {
            assert_eq!(name, &name.to_ascii_lowercase());
            assert!(challenge.param(&name.to_ascii_uppercase()).is_some());
        }
        assert!(challenge.params.is_empty() || challenge.token68.is_none());
    }
}

/// `--pattern` globs: the input is patterns and candidate names, one a line, split by the first
/// NUL. Never a panic; an invalid glob is an error naming it; and a pattern with no `/` (and no
/// `**`) never matches a name with a `/`, since `*`, `?` and classes never cross it.
pub fn patterns(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (globs, names) = text
        .split_once('\0')
        .unwrap_or((&text, "products/bfx/tool"));
    let globs: Vec<String> = globs.lines().take(16).map(str::to_string).collect();
    let set = match compile_patterns(&globs) {
        Ok(Some(set)) => set,
        Ok(None) => return,
        Err(error) => {
            assert!(
                error.to_string().starts_with("invalid --pattern `"),
                "{error}"
            );
            return;
        }
    };
    let flat = globs.iter().all(|g| !g.contains('/') && !g.contains("**"));
    for name in names.lines().take(64) {
        let matched = set.is_match(name);
        if flat && name.contains('/') {
            assert!(!matched, "{globs:?} matched {name:?} across a `/`");
        }
    }
}
