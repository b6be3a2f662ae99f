//! The run summary in GitHub-flavoured Markdown (`summary.md`, also appended to the job's step
//! summary): a headline, a table per package and tag, totals, failures, and the tools used.
//!
//! Every string that came from outside goes through [`escape_inline`]. GitHub refuses a step
//! summary over 1 MiB, so the package tables share a byte budget and are cut with a pointer to
//! `results.json`; the headline, totals, failures and footer are always kept.

use std::fmt::Write as _;

use super::{
    Failure, ImageStatus, PackageReport, PackageStatus, Report, VersionStatus, escape_inline,
    short_digest,
};
use crate::plan::{Platform, TargetRef};

/// The whole summary stays under this many bytes (GitHub's limit is 1 MiB).
const SUMMARY_BUDGET: usize = 900 * 1024;
/// Rows shown per package before the table is cut.
const MAX_ROWS_PER_PACKAGE: usize = 200;
/// Failures listed before the list is cut.
const MAX_FAILURES: usize = 200;
/// Tags named per failure before "and N more".
const MAX_TAGS_NAMED: usize = 10;
/// Longest name, tag or platform shown, in characters.
const NAME_CHARS: usize = 120;
/// Longest cause shown, in characters.
const CAUSE_CHARS: usize = 500;

/// Renders the summary. The output is deterministic: packages and tags appear sorted by name.
pub fn summary_markdown(report: &Report) -> String {
    let head = headline(report);
    let mut tail = totals_section(report);
    tail.push_str(&failures_section(report));
    tail.push_str(&ignore_section(report));
    tail.push_str(&footer(report));

    let budget = SUMMARY_BUDGET.saturating_sub(head.len() + tail.len());
    let mut out = head;
    out.push_str(&package_sections(report, budget));
    out.push_str(&tail);
    out
}

fn headline(report: &Report) -> String {
    let totals = &report.totals;
    let failed = totals.images_failed + totals.versions_unresolved;
    let mut out = format!(
        "## dragnet scan of {} on {}\n\n",
        escape_inline(&report.owner, NAME_CHARS),
        escape_inline(&report.registry, NAME_CHARS)
    );
    let _ = write!(
        out,
        "**{}** ({}) in **{}**: **{}** scanned, **{} failed**",
        plural(totals.tags, "tag", "tags"),
        plural(totals.versions, "version", "versions"),
        plural(totals.packages, "package", "packages"),
        plural(totals.images_scanned, "unique image", "unique images"),
        failed,
    );
    if failed > 0 {
        let _ = write!(
            out,
            " ({}, {})",
            plural(totals.images_failed, "image", "images"),
            plural(
                totals.versions_unresolved,
                "unresolved version",
                "unresolved versions"
            )
        );
    }
    let _ = write!(
        out,
        ".\n\n**{} critical** and **{} high** vulnerabilities ({} fixable, counted once per \
         image).\n\n",
        totals.findings.critical, totals.findings.high, totals.fixable
    );
    out
}

/// One table row: a tag (or untagged version) on one platform image.
struct Row {
    tag: Option<String>,
    platform: Option<Platform>,
    digest: String,
    cells: String,
}

fn package_sections(report: &Report, budget: usize) -> String {
    let mut out = String::new();
    for (shown, package) in report.packages.iter().enumerate() {
        let section = package_section(package);
        if out.len() + section.len() > budget {
            let left = report.packages.len() - shown;
            let _ = write!(
                out,
                "… {} not shown to keep this summary within GitHub's size limit: see \
                 `results.json`.\n\n",
                plural(left, "more package", "more packages")
            );
            break;
        }
        out.push_str(&section);
    }
    out
}

fn package_section(package: &PackageReport) -> String {
    let mut out = format!("### {}\n\n", escape_inline(&package.name, NAME_CHARS));
    let status = match package.status {
        PackageStatus::Scanned => "✅ scanned",
        PackageStatus::Partial => "⚠️ partly scanned",
        PackageStatus::Failed => "❌ failed",
        PackageStatus::Empty => "no version to scan",
    };
    let _ = write!(
        out,
        "{status} · {} · {} critical, {} high, {} fixable",
        plural(package.images_scanned, "image scanned", "images scanned"),
        package.counts.critical,
        package.counts.high,
        package.fixable
    );
    if let Some(repository) = &package.repository {
        let _ = write!(
            out,
            " · repository {}",
            escape_inline(repository, NAME_CHARS)
        );
    }
    out.push_str("\n\n");
    if let Some(cause) = &package.cause {
        let _ = write!(
            out,
            "Its versions could not be listed: {}\n\n",
            escape_inline(cause, CAUSE_CHARS)
        );
    }
    if package.versions.is_empty() {
        return out;
    }

    let mut rows = rows(package);
    rows.sort_by(|a, b| {
        (a.tag.is_none(), &a.tag, &a.platform, &a.digest).cmp(&(
            b.tag.is_none(),
            &b.tag,
            &b.platform,
            &b.digest,
        ))
    });
    out.push_str("| Tag | Digest | Platform | Critical | High | Fixable | Status | Duration |\n");
    out.push_str("|---|---|---|--:|--:|--:|---|--:|\n");
    for row in rows.iter().take(MAX_ROWS_PER_PACKAGE) {
        let tag = match &row.tag {
            Some(tag) => escape_inline(tag, NAME_CHARS),
            None => "*untagged*".to_string(),
        };
        let platform = row.platform.as_ref().map_or("—".to_string(), |p| {
            escape_inline(&p.to_string(), NAME_CHARS)
        });
        let _ = writeln!(
            out,
            "| {tag} | {} | {platform} | {} |",
            digest_cell(&row.digest),
            row.cells
        );
    }
    if rows.len() > MAX_ROWS_PER_PACKAGE {
        let _ = writeln!(
            out,
            "\n… {} not shown: see `results.json`.",
            plural(rows.len() - MAX_ROWS_PER_PACKAGE, "more row", "more rows")
        );
    }
    out.push('\n');
    out
}

fn rows(package: &PackageReport) -> Vec<Row> {
    let mut rows = Vec::new();
    for version in &package.versions {
        let tags: Vec<Option<String>> = if version.tags.is_empty() {
            vec![None]
        } else {
            version.tags.iter().cloned().map(Some).collect()
        };
        for tag in tags {
            if version.status == VersionStatus::Unresolved {
                rows.push(Row {
                    tag: tag.clone(),
                    platform: None,
                    digest: version.digest.clone(),
                    cells: "— | — | — | ❌ unresolved | —".to_string(),
                });
            }
            for image in &version.images {
                let cells = match image.status {
                    ImageStatus::Scanned => format!(
                        "{} | {} | {} | ✅ | {}",
                        image.counts.critical,
                        image.counts.high,
                        image.fixable,
                        duration(image.duration_ms)
                    ),
                    ImageStatus::Failed => {
                        format!("— | — | — | ❌ failed | {}", duration(image.duration_ms))
                    }
                };
                rows.push(Row {
                    tag: tag.clone(),
                    platform: image.platform.clone(),
                    digest: image.digest.clone(),
                    cells,
                });
            }
        }
    }
    rows
}

fn totals_section(report: &Report) -> String {
    let totals = &report.totals;
    let findings = &totals.findings;
    let lines = [
        ("Packages", totals.packages),
        ("Versions", totals.versions),
        ("Tags", totals.tags),
        ("Unique images", totals.images),
        ("Images scanned", totals.images_scanned),
        ("Images failed", totals.images_failed),
        ("Versions unresolved", totals.versions_unresolved),
        ("Critical", findings.critical),
        ("High", findings.high),
        ("Medium", findings.medium),
        ("Low", findings.low),
        ("Unknown", findings.unknown),
        ("Fixable", totals.fixable),
        ("Unique vulnerability ids", totals.vulnerabilities),
        ("Ignored (ignore files, allowlists)", totals.ignored),
    ];
    let mut out = String::from("### Totals\n\n| | Count |\n|---|--:|\n");
    for (label, count) in lines {
        let _ = writeln!(out, "| {label} | {count} |");
    }
    out.push_str("\nFindings count once per image, however many tags point at it.\n\n");
    out.push_str(&selection_line(&report.selection));
    out
}

/// What the version filters left out, and why: a run that scans less than everything says so.
fn selection_line(selection: &crate::filter::Selection) -> String {
    let mut parts: Vec<String> = selection
        .reasons()
        .into_iter()
        .map(|(reason, count)| match reason {
            "untagged" => format!(
                "{} (`--include-untagged` keeps them)",
                plural(count, "untagged version", "untagged versions")
            ),
            "signatures and attestations" => plural(
                count,
                "cosign signature or attestation",
                "cosign signatures or attestations",
            ),
            flag => format!("{} by `{flag}`", plural(count, "version", "versions")),
        })
        .collect();
    let mut out = String::new();
    if !parts.is_empty() {
        let last = parts.pop().unwrap_or_default();
        let listed = if parts.is_empty() {
            last
        } else {
            format!("{} and {last}", parts.join(", "))
        };
        let _ = writeln!(out, "Left out by the version filters: {listed}.\n");
    }
    if selection.platform_children > 0 {
        let _ = writeln!(
            out,
            "{} platforms of tagged multi-platform images, scanned through them.\n",
            plural(
                selection.platform_children,
                "untagged version is one of the",
                "untagged versions are"
            )
        );
    }
    out
}

fn failures_section(report: &Report) -> String {
    let mut out = String::from("### Failures\n\n");
    if report.failures.is_empty() {
        out.push_str("None.\n\n");
        return out;
    }
    for failure in report.failures.iter().take(MAX_FAILURES) {
        let line = match failure {
            Failure::Resolve {
                package,
                version_digest,
                cause,
                ..
            } if version_digest.is_empty() => {
                format!(
                    "- ❌ listing the versions of **{}**: {}",
                    escape_inline(package, NAME_CHARS),
                    escape_inline(cause, CAUSE_CHARS)
                )
            }
            Failure::Resolve {
                package,
                version_digest,
                tags,
                cause,
            } => format!(
                "- ❌ resolving **{}** version {} ({}): {}",
                escape_inline(package, NAME_CHARS),
                digest_cell(version_digest),
                tag_list(tags),
                escape_inline(cause, CAUSE_CHARS)
            ),
            Failure::Scan {
                digest,
                platform,
                refs,
                cause,
                ..
            } => format!(
                "- ❌ scanning {}{} of {}: {}",
                digest_cell(digest),
                platform.as_ref().map_or(String::new(), |p| {
                    format!(" ({})", escape_inline(&p.to_string(), NAME_CHARS))
                }),
                ref_list(refs),
                escape_inline(cause, CAUSE_CHARS)
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    if report.failures.len() > MAX_FAILURES {
        let _ = writeln!(
            out,
            "- … {}: see `results.json`.",
            plural(
                report.failures.len() - MAX_FAILURES,
                "more failure",
                "more failures"
            )
        );
    }
    out.push('\n');
    out
}

/// What the ignore files and allowlists took out, entry by entry, and the entries that expired.
fn ignore_section(report: &Report) -> String {
    let ignore = &report.ignore;
    if ignore.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "### Ignored

",
    );
    let line = |entry: &super::IgnoreEntry| {
        format!(
            "**{}** ({}){}{}",
            escape_inline(&entry.id, NAME_CHARS),
            escape_inline(&entry.reason.source, NAME_CHARS),
            entry
                .reason
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!(
                    ": {}",
                    escape_inline(r, CAUSE_CHARS)
                )),
            entry
                .reason
                .expires
                .as_deref()
                .map_or(String::new(), |d| format!(
                    " · until {}",
                    escape_inline(d, 16)
                )),
        )
    };
    let matched: Vec<&super::IgnoreEntry> =
        ignore.entries.iter().filter(|e| e.matched > 0).collect();
    if matched.is_empty() {
        out.push_str(
            "No finding matched an ignore entry.
",
        );
    }
    for entry in matched.iter().take(MAX_FAILURES) {
        let _ = writeln!(
            out,
            "- {} · {}",
            line(entry),
            plural(entry.matched, "finding", "findings")
        );
    }
    for entry in ignore.expired.iter().take(MAX_FAILURES) {
        let _ = writeln!(out, "- ⚠️ expired, reported again: {}", line(entry));
    }
    out.push('\n');
    out
}

fn footer(report: &Report) -> String {
    let run = &report.run;
    let severities: Vec<&str> = run.options.severities.iter().map(|s| s.as_str()).collect();
    let db = run
        .db_updated_at
        .as_deref()
        .map_or("unknown".to_string(), |d| escape_inline(d, 64));
    format!(
        "---\n\nTrivy {} · vulnerability DB updated {db} · severities {} · {} · started {} · \
         scanning took {}\n",
        escape_inline(&run.trivy_version, 64),
        if severities.is_empty() {
            "all".to_string()
        } else {
            severities.join(", ")
        },
        if run.options.ignore_unfixed {
            "unfixed ignored"
        } else {
            "unfixed included"
        },
        escape_inline(&run.started_at, 64),
        duration(Some(run.duration_ms)),
    )
}

/// A digest as a short code span when well formed, else as escaped text.
fn digest_cell(digest: &str) -> String {
    match short_digest(digest) {
        Some(short) => format!("`{short}`"),
        None => escape_inline(digest, 80),
    }
}

fn tag_list(tags: &[String]) -> String {
    if tags.is_empty() {
        return "untagged".to_string();
    }
    let mut named: Vec<String> = tags
        .iter()
        .take(MAX_TAGS_NAMED)
        .map(|t| escape_inline(t, NAME_CHARS))
        .collect();
    if tags.len() > MAX_TAGS_NAMED {
        named.push(format!("and {} more", tags.len() - MAX_TAGS_NAMED));
    }
    format!(
        "{} {}",
        if tags.len() == 1 { "tag" } else { "tags" },
        named.join(", ")
    )
}

fn ref_list(refs: &[TargetRef]) -> String {
    let named: Vec<String> = refs
        .iter()
        .map(|r| {
            format!(
                "**{}** ({})",
                escape_inline(&r.package, NAME_CHARS),
                tag_list(&r.tags)
            )
        })
        .collect();
    if named.is_empty() {
        "no package".to_string()
    } else {
        named.join(", ")
    }
}

/// A duration for people: `850 ms`, `12.3 s`, `2 min 05 s`, `1 h 02 min`; `—` when unknown.
fn duration(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return "—".to_string();
    };
    let seconds = ms / 1000;
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{}.{} s", seconds, (ms % 1000) / 100),
        60_000..3_600_000 => format!("{} min {:02} s", seconds / 60, seconds % 60),
        _ => format!("{} h {:02} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
