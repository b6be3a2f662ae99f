//! `report.html` in a real browser: a scan of the sandbox writes the page, Debian's headless
//! Chromium opens it (driven by `tests/browser/report.mjs` through playwright-core), and what
//! a person would see — the overview, one image's vulnerabilities, the filters and sorting —
//! is checked against `results.json`. The screenshot is kept for the docs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dragnet::finding::Severity;
use dragnet::report::{ImageStatus, Report};
use dragnet_sandbox::sandbox::RegistryModeChoice;
use serde_json::Value;

use crate::support::*;

/// The image the test drills into, and the vulnerability it filters on (regreSSHion).
const PACKAGE: &str = "products/bfx/samtools";
const TAG: &str = "1.17";
const CVE: &str = "CVE-2024-6387";

/// Runs the browser script on `page`; returns what it saw.
async fn look_at(page: &Path, screenshot: &Path) -> Value {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "{} is missing: run scripts/install-deps (Debian's chromium)",
        chromium.display()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("tools/node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run scripts/install-deps (npm ci in tools/)"
    );
    let output = tokio::process::Command::new(which("node"))
        .arg(root.join("tests/browser/report.mjs"))
        .args([page, screenshot])
        .args([PACKAGE, TAG, CVE])
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output()
        .await
        .expect("running node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser script failed:\n{stderr}"
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The worst severity of a package's scanned images, as the page names it.
fn worst(report: &Report, package: &str) -> String {
    let package = report.packages.iter().find(|p| p.name == package).unwrap();
    Severity::ALL
        .into_iter()
        .find(|s| package.counts.get(*s) > 0)
        .map_or("CLEAN", Severity::as_str)
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_report_works_in_a_real_browser() {
    let world = World::start(RegistryModeChoice::Open).await;
    let output = run(&mut world.scan("out", &["--severity", "CRITICAL,HIGH,MEDIUM,LOW"])).await;
    assert_eq!(output.status.code(), Some(3), "the broken image fails");
    let out = world.path("out");
    let report = read_report(&out);
    let page = out.join("report.html");
    let screenshot = world.path("report.png");

    let seen = look_at(&page, &screenshot).await;

    // Nothing but the page itself was requested, and the script ran without an error.
    let page_url = format!("file://{}", page.display());
    assert_eq!(strings(&seen["requests"]), [page_url], "no network");
    assert_eq!(seen["errors"], Value::Array(vec![]), "no script error");

    // The overview: who, when, with what; every package, coloured by its worst severity.
    assert_eq!(
        seen["title"],
        format!("dragnet · {} on {}", report.owner, report.registry)
    );
    let meta = seen["meta"].as_str().unwrap();
    assert!(meta.contains(&report.run.started_at), "{meta}");
    assert!(
        meta.contains(&format!("Trivy {}", report.run.trivy_version)),
        "{meta}"
    );
    assert!(
        meta.contains(report.run.db_updated_at.as_deref().unwrap()),
        "the DB date: {meta}"
    );
    assert_eq!(
        seen["cards"]["Critical"], report.totals.findings.critical,
        "{:#}",
        seen["cards"]
    );
    assert_eq!(seen["cards"]["Images failed"], report.totals.images_failed);
    let shown: Vec<&str> = seen["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let names: Vec<&str> = report.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(shown, names);
    for package in seen["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        if name != "products/bfx/broken" {
            assert_eq!(package["worst"], worst(&report, name), "{name}");
        }
    }
    let broken = seen["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "products/bfx/broken")
        .unwrap();
    assert!(
        broken["chips"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["colour"] == "FAILED"),
        "{broken:#}"
    );
    // What failed, and why.
    let failures = strings(&seen["failures"]);
    assert_eq!(failures.len(), report.failures.len());
    assert!(
        failures
            .iter()
            .any(|f| f.contains(report.failures[0].cause())),
        "{failures:#?}"
    );

    // The drill-down: samtools:1.17 (amd64) lists exactly its image's vulnerabilities.
    let digest = world
        .sandbox
        .pushed()
        .iter()
        .find(|v| v.package == PACKAGE && v.tags.iter().any(|t| t == TAG))
        .map(|v| v.platforms[0].digest.clone())
        .unwrap();
    let image = report.image(&digest).unwrap();
    assert_eq!(image.status, ImageStatus::Scanned);
    assert!(
        seen["hash"].as_str().unwrap().contains("image=sha256"),
        "{}",
        seen["hash"]
    );
    assert!(
        seen["detailTitle"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{PACKAGE}:{TAG}")),
        "{}",
        seen["detailTitle"]
    );
    let rows = seen["rows"].as_array().unwrap();
    let on_page: BTreeSet<(String, String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["severity"].as_str().unwrap().to_string(),
                r["package"].as_str().unwrap().to_string(),
                r["installed"].as_str().unwrap().to_string(),
                r["fixed"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String, String, String)> = image
        .findings
        .iter()
        .map(|f| {
            (
                f.vulnerability_id.clone(),
                f.severity.to_string(),
                f.package_name.clone(),
                f.installed_version.clone(),
                f.fixed_version
                    .clone()
                    .unwrap_or_else(|| "no fix yet".into()),
            )
        })
        .collect();
    assert_eq!(on_page, expected);
    assert!(expected.len() >= 2, "a drill-down worth sorting");
    // Most severe first, each with a link to its advisory.
    let ranks: Vec<usize> = rows
        .iter()
        .map(|r| {
            let severity: Severity = r["severity"].as_str().unwrap().parse().unwrap();
            severity as usize
        })
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");
    let regresshion = rows.iter().find(|r| r["id"] == CVE).unwrap();
    assert!(
        regresshion["link"]
            .as_str()
            .unwrap()
            .starts_with("https://"),
        "{regresshion}"
    );

    // Sorting by a column, both ways.
    let by_package = strings(&seen["byPackage"]);
    let mut sorted = by_package.clone();
    sorted.sort_by_key(|p| p.to_lowercase());
    assert_eq!(by_package, sorted);
    let mut descending = strings(&seen["byPackageDescending"]);
    descending.reverse();
    assert_eq!(
        descending
            .iter()
            .map(|p| p.to_lowercase())
            .collect::<Vec<_>>(),
        sorted.iter().map(|p| p.to_lowercase()).collect::<Vec<_>>()
    );

    // Filtering: the drill-down by id and by severity, the overview by a vulnerability.
    let filtered = seen["filtered"].as_array().unwrap();
    assert_eq!(filtered.len(), 1);
    assert_eq!(filtered[0]["id"], CVE);
    assert_eq!(
        seen["filteredCount"],
        format!("showing 1 of {}", image.findings.len())
    );
    let critical = image
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .count();
    assert_eq!(seen["criticalOnly"].as_array().unwrap().len(), critical);
    let with_cve: Vec<String> = report
        .packages
        .iter()
        .filter(|p| {
            p.scanned_digests().iter().any(|d| {
                report
                    .image(d)
                    .is_some_and(|i| i.findings.iter().any(|f| f.vulnerability_id == CVE))
            })
        })
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(strings(&seen["packagesWithCve"]), with_cve);
    assert!(!with_cve.is_empty());
    let critical_packages: Vec<String> = report
        .packages
        .iter()
        .filter(|p| p.counts.critical > 0)
        .map(|p| p.name.clone())
        .collect();
    assert_eq!(strings(&seen["packagesCritical"]), critical_packages);

    // The screenshot, kept in the target folder; DRAGNET_UPDATE_DOCS=1 refreshes the docs' copy.
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let kept = root.join("target/screenshots/report.png");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    std::fs::write(&kept, &png).unwrap();
    if std::env::var_os("DRAGNET_UPDATE_DOCS").is_some() {
        std::fs::write(root.join("docs/report.png"), &png).unwrap();
    }
}
