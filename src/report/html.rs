//! `report.html`: one self-contained page for people without a Security tab (private
//! repositories without GitHub Advanced Security), or who want the whole organisation at once.
//!
//! The page is `report.html` (inline CSS and JavaScript, no fetch, no external resource) with
//! the data embedded as JSON in a `<script type="application/json">` element. The JSON is
//! escaped so that no `<` (hence no `</script>`), `>`, `&` or line separator appears in it
//! raw: a hostile package name, tag or advisory title can neither end the element nor run. The
//! script renders everything with DOM APIs and `textContent`, never `innerHTML` with data, and
//! links only http(s) URLs.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Failure, ImageStatus, Report, SeverityCounts};
use crate::finding::{Finding, Severity};

/// The page around the data: markup, style and script.
const TEMPLATE: &str = include_str!("report.html");
/// Where the data goes in the template.
const DATA_SLOT: &str = "{{DATA}}";

/// The report as one self-contained HTML page.
pub fn report_html(report: &Report) -> String {
    let data = page_data(report);
    let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_string());
    TEMPLATE.replacen(DATA_SLOT, &escape_json_for_html(&json), 1)
}

/// JSON made safe inside a `<script>` element: `<`, `>`, `&` and the two JavaScript line
/// separators written as `\uXXXX` escapes, which `JSON.parse` reads back unchanged.
fn escape_json_for_html(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Everything the page shows, shaped for the script.
#[derive(Debug, Serialize)]
struct PageData<'a> {
    owner: &'a str,
    registry: &'a str,
    started_at: &'a str,
    duration_ms: u64,
    trivy_version: &'a str,
    db_updated_at: Option<&'a str>,
    severities: Vec<&'static str>,
    ignore_unfixed: bool,
    totals: Totals,
    packages: Vec<PagePackage<'a>>,
    /// Scanned and failed images by digest, with their findings.
    images: BTreeMap<&'a str, PageImage<'a>>,
    failures: Vec<PageFailure>,
}

#[derive(Debug, Serialize)]
struct Totals {
    packages: usize,
    tags: usize,
    images: usize,
    images_scanned: usize,
    images_failed: usize,
    versions_unresolved: usize,
    counts: SeverityCounts,
    fixable: usize,
    ignored: usize,
}

#[derive(Debug, Serialize)]
struct PagePackage<'a> {
    name: &'a str,
    repository: Option<&'a str>,
    image: &'a str,
    status: &'static str,
    worst: Option<&'static str>,
    counts: SeverityCounts,
    fixable: usize,
    ignored: usize,
    cause: Option<&'a str>,
    /// One row per tag (or untagged version) and platform image.
    rows: Vec<PageRow<'a>>,
}

#[derive(Debug, Serialize)]
struct PageRow<'a> {
    /// `None` for an untagged version.
    tag: Option<&'a str>,
    /// The version's digest.
    version: &'a str,
    /// The platform image's digest (key into `images`), `None` when unresolved.
    digest: Option<&'a str>,
    platform: Option<String>,
    /// `scanned`, `failed` or `unresolved`.
    status: &'static str,
    worst: Option<&'static str>,
    counts: SeverityCounts,
    fixable: usize,
    cause: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct PageImage<'a> {
    image: &'a str,
    platform: Option<String>,
    os: Option<&'a str>,
    status: &'static str,
    cause: Option<&'a str>,
    findings: Vec<PageFinding<'a>>,
}

#[derive(Debug, Serialize)]
struct PageFinding<'a> {
    id: &'a str,
    package: &'a str,
    installed: &'a str,
    fixed: Option<&'a str>,
    severity: &'static str,
    title: Option<&'a str>,
    path: Option<&'a str>,
    /// An http(s) link to the advisory, when one parses.
    url: Option<String>,
    /// Why it is ignored, for ignored findings.
    ignored: Option<String>,
}

#[derive(Debug, Serialize)]
struct PageFailure {
    stage: &'static str,
    what: String,
    cause: String,
}

fn worst(counts: &SeverityCounts) -> Option<&'static str> {
    Severity::ALL
        .into_iter()
        .find(|s| counts.get(*s) > 0)
        .map(Severity::as_str)
}

/// An advisory link the page may show: http(s) only.
fn web_url(finding: &Finding) -> Option<String> {
    finding
        .primary_url
        .iter()
        .chain(&finding.references)
        .filter_map(|text| url::Url::parse(text.trim()).ok())
        .find(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .map(|url| url.to_string())
}

fn page_finding<'a>(finding: &'a Finding, ignored: Option<String>) -> PageFinding<'a> {
    PageFinding {
        id: &finding.vulnerability_id,
        package: &finding.package_name,
        installed: &finding.installed_version,
        fixed: finding.fixed_version.as_deref().filter(|v| !v.is_empty()),
        severity: finding.severity.as_str(),
        title: finding.title.as_deref(),
        path: finding.package_path.as_deref(),
        url: web_url(finding),
        ignored,
    }
}

fn page_data(report: &Report) -> PageData<'_> {
    let totals = &report.totals;
    let images: BTreeMap<&str, PageImage> = report
        .images
        .iter()
        .map(|image| {
            let mut findings: Vec<PageFinding> = image
                .findings
                .iter()
                .map(|f| page_finding(f, None))
                .collect();
            findings.extend(image.ignored.iter().map(|ignored| {
                let reason = &ignored.ignored_by;
                let why = match &reason.reason {
                    Some(why) => format!("{} ({})", why, reason.source),
                    None => reason.source.clone(),
                };
                page_finding(&ignored.finding, Some(why))
            }));
            let page = PageImage {
                image: &image.image,
                platform: image.platform.as_ref().map(ToString::to_string),
                os: image.os.as_deref(),
                status: match image.status {
                    ImageStatus::Scanned => "scanned",
                    ImageStatus::Failed => "failed",
                },
                cause: image.cause.as_deref(),
                findings,
            };
            (image.digest.as_str(), page)
        })
        .collect();

    let packages = report
        .packages
        .iter()
        .map(|package| {
            let mut rows = Vec::new();
            for version in &package.versions {
                let tags: Vec<Option<&str>> = if version.tags.is_empty() {
                    vec![None]
                } else {
                    version.tags.iter().map(|t| Some(t.as_str())).collect()
                };
                for tag in tags {
                    if version.images.is_empty() {
                        rows.push(PageRow {
                            tag,
                            version: &version.digest,
                            digest: None,
                            platform: None,
                            status: "unresolved",
                            worst: None,
                            counts: SeverityCounts::default(),
                            fixable: 0,
                            cause: version.cause.as_deref(),
                        });
                    }
                    for image in &version.images {
                        let failed = image.status == ImageStatus::Failed;
                        rows.push(PageRow {
                            tag,
                            version: &version.digest,
                            digest: Some(&image.digest),
                            platform: image.platform.as_ref().map(ToString::to_string),
                            status: if failed { "failed" } else { "scanned" },
                            worst: worst(&image.counts),
                            counts: image.counts,
                            fixable: image.fixable,
                            cause: report.image(&image.digest).and_then(|i| i.cause.as_deref()),
                        });
                    }
                }
            }
            PagePackage {
                name: &package.name,
                repository: package.repository.as_deref(),
                image: &package.image,
                status: match package.status {
                    super::PackageStatus::Scanned => "scanned",
                    super::PackageStatus::Partial => "partial",
                    super::PackageStatus::Failed => "failed",
                    super::PackageStatus::Empty => "empty",
                },
                worst: worst(&package.counts),
                counts: package.counts,
                fixable: package.fixable,
                ignored: package.ignored,
                cause: package.cause.as_deref(),
                rows,
            }
        })
        .collect();

    let failures = report
        .failures
        .iter()
        .map(|failure| match failure {
            Failure::Resolve {
                package,
                version_digest,
                tags,
                cause,
            } => PageFailure {
                stage: "resolve",
                what: if version_digest.is_empty() {
                    format!("listing the versions of {package}")
                } else if tags.is_empty() {
                    format!("{package} untagged {version_digest}")
                } else {
                    format!("{package}:{}", tags.join(", "))
                },
                cause: cause.clone(),
            },
            Failure::Scan {
                digest,
                platform,
                refs,
                cause,
                ..
            } => PageFailure {
                stage: "scan",
                what: format!(
                    "{}{} {digest}",
                    refs.iter()
                        .map(|r| format!("{}:{}", r.package, r.tags.join(",")))
                        .collect::<Vec<_>>()
                        .join(" "),
                    platform
                        .as_ref()
                        .map_or(String::new(), |p| format!(" ({p})"))
                ),
                cause: cause.clone(),
            },
        })
        .collect();

    PageData {
        owner: &report.owner,
        registry: &report.registry,
        started_at: &report.run.started_at,
        duration_ms: report.run.duration_ms,
        trivy_version: &report.run.trivy_version,
        db_updated_at: report.run.db_updated_at.as_deref(),
        severities: report
            .run
            .options
            .severities
            .iter()
            .map(|s| s.as_str())
            .collect(),
        ignore_unfixed: report.run.options.ignore_unfixed,
        totals: Totals {
            packages: totals.packages,
            tags: totals.tags,
            images: totals.images,
            images_scanned: totals.images_scanned,
            images_failed: totals.images_failed,
            versions_unresolved: totals.versions_unresolved,
            counts: totals.findings,
            fixable: totals.fixable,
            ignored: totals.ignored,
        },
        packages,
        images,
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn the_page_is_self_contained_and_hostile_text_cannot_leave_the_data() {
        let mut plan = fixtures::plan();
        plan.targets[4].refs[0].tags = vec!["</script><script>alert(1)</script>".into()];
        let mut run = fixtures::run();
        let mut evil = fixtures::finding(
            "CVE-2024-6666",
            "<img src=x onerror=alert(1)>",
            "1",
            Severity::High,
        );
        evil.primary_url = Some("javascript:alert(1)".into());
        evil.references = vec!["https://ok.example/advisory?a=1&b=2".into()];
        run.results[4] = fixtures::scanned(&fixtures::digest(0x05), vec![evil]);
        let html = report_html(&Report::build(&plan, &run));

        // Exactly one closing script tag per script element: the data cannot end its own.
        assert_eq!(html.matches("</script").count(), 2, "data and code");
        assert!(!html.contains("<img src=x"));
        assert!(
            !html.contains("javascript:alert"),
            "only http(s) links survive"
        );
        assert!(html.contains("\\u003c/script\\u003e"));

        // Nothing is fetched: no external script, style, image, font or frame; and no data is
        // ever written as HTML.
        for forbidden in [
            "<link",
            " src=",
            "@import",
            "url(",
            "<iframe",
            "fetch(",
            "XMLHttpRequest",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!TEMPLATE.contains(forbidden), "{forbidden}");
        }
        assert!(
            TEMPLATE.contains("default-src 'none'"),
            "the page forbids itself any fetch"
        );

        // The data reads back as JSON with the hostile text intact.
        let start = html.find("id=\"dragnet-data\">").unwrap() + "id=\"dragnet-data\">".len();
        let end = start + html[start..].find("</script>").unwrap();
        let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(
            data["packages"][2]["rows"][0]["tag"],
            "</script><script>alert(1)</script>"
        );
        let clean = &data["images"][fixtures::digest(0x05)]["findings"][0];
        assert_eq!(clean["url"], "https://ok.example/advisory?a=1&b=2");
    }
}
