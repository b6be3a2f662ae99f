//! The words in dragnet's SARIF: result messages (the alert text) and rule help.
//!
//! Everything from outside (titles, descriptions, package names, tags, URLs) is cut to one
//! bounded line; Markdown goes through the report's escaping, and a URL is kept only when it
//! parses as http(s), so a hostile advisory or tag cannot inject links, HTML or layout.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{Hit, Labels};
use crate::finding::Severity;
use crate::report::{escape_inline, short_digest, single_line};

/// Tags named in a message or help line before "and N more".
const MAX_TAGS_NAMED: usize = 10;
/// Untagged versions named likewise.
const MAX_UNTAGGED_NAMED: usize = 3;
/// References listed in a rule's help.
const MAX_REFERENCES: usize = 10;
/// Installed packages listed in a rule's help.
const MAX_HELP_ROWS: usize = 50;
/// Longest package name, version or tag written, in characters.
const NAME_CHARS: usize = 200;
/// Longest description written, in characters.
const DESCRIPTION_CHARS: usize = 2000;

/// What every text of one run needs to know about its package.
pub(super) struct Context<'a> {
    /// The image name (`ghcr.io/acme/app`).
    pub image: &'a str,
    /// How each scanned image of the package is reached.
    pub labels: &'a BTreeMap<&'a str, Labels<'a>>,
}

/// The alert text: which installed package, in which image and tags, which vulnerability, and
/// the fix.
pub(super) fn result_message(hit: &Hit, context: &Context) -> String {
    let finding = hit.finding;
    let mut text = installed(hit);
    let _ = write!(
        text,
        " in {} ({}) is affected by {} ({}); {}",
        single_line(context.image, NAME_CHARS),
        reached_by(hit, context),
        single_line(&finding.vulnerability_id, NAME_CHARS),
        hit.severity,
        match fixed(hit) {
            Some(fixed) => format!("fixed in {fixed}."),
            None => "no fix available.".to_string(),
        }
    );
    text
}

/// `libssl3 3.0.11-1` or `django 4.2.0 (usr/lib/…/METADATA)`, as plain text.
fn installed(hit: &Hit) -> String {
    let finding = hit.finding;
    let mut text = format!(
        "{} {}",
        single_line(&finding.package_name, NAME_CHARS),
        single_line(&finding.installed_version, NAME_CHARS)
    );
    if let Some(path) = finding.package_path.as_deref().filter(|p| !p.is_empty()) {
        let _ = write!(text, " ({})", single_line(path, NAME_CHARS));
    }
    text
}

fn fixed(hit: &Hit) -> Option<String> {
    let fixed: Vec<String> = hit
        .fixed
        .iter()
        .map(|v| single_line(v, NAME_CHARS))
        .collect();
    (!fixed.is_empty()).then(|| fixed.join(", "))
}

/// The tags (and untagged versions) that lead to the images having this hit, as plain text:
/// `tags 1.0, latest; untagged sha256:0123456789ab`.
fn reached_by(hit: &Hit, context: &Context) -> String {
    let mut tags = BTreeSet::new();
    let mut untagged = BTreeSet::new();
    for digest in &hit.digests {
        if let Some(labels) = context.labels.get(digest) {
            tags.extend(labels.tags.iter().copied());
            untagged.extend(labels.untagged.iter().copied());
        }
    }

    let mut parts = Vec::new();
    if !tags.is_empty() {
        let names: Vec<String> = tags.iter().map(|t| single_line(t, NAME_CHARS)).collect();
        let noun = if names.len() == 1 { "tag" } else { "tags" };
        parts.push(format!("{noun} {}", first_of(&names, MAX_TAGS_NAMED)));
    }
    if !untagged.is_empty() {
        let digests: Vec<String> = untagged
            .iter()
            .map(|d| match short_digest(d) {
                Some(short) => format!("sha256:{short}"),
                None => single_line(d, 80),
            })
            .collect();
        parts.push(format!(
            "untagged {}",
            first_of(&digests, MAX_UNTAGGED_NAMED)
        ));
    }
    parts.join("; ")
}

/// The first `max` items joined with commas, then `and N more`.
fn first_of(items: &[String], max: usize) -> String {
    let mut text = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        let _ = write!(text, " and {} more", items.len() - max);
    }
    text
}

/// The rule's references: the primary URL first, then every other reference, only http(s)
/// URLs that parse, without repeats, at most [`MAX_REFERENCES`].
pub(super) fn references(hits: &[&Hit]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut urls = Vec::new();
    let candidates = hits.iter().flat_map(|h| {
        h.finding
            .primary_url
            .iter()
            .chain(h.finding.references.iter())
    });
    for candidate in candidates {
        if urls.len() == MAX_REFERENCES {
            break;
        }
        if let Some(url) = web_url(candidate)
            && seen.insert(url.clone())
        {
            urls.push(url);
        }
    }
    urls
}

/// The URL in normalised form, when it is an http(s) URL with a host and no character that
/// could end a Markdown autolink.
fn web_url(text: &str) -> Option<String> {
    let url = url::Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    let url = url.to_string();
    let safe = url
        .chars()
        .all(|c| c.is_ascii_graphic() && !"<>\"`".contains(c));
    safe.then_some(url)
}

/// The rule's help, as plain text and as Markdown: what is vulnerable, where, the upgrade to
/// make, and the references.
pub(super) fn rule_help(
    id: &str,
    severity: Severity,
    hits: &[&Hit],
    references: &[String],
    context: &Context,
) -> super::MultiformatMessage {
    let first = hits[0].finding;
    let title = first.title.as_deref().unwrap_or("");
    let description = first.description.as_deref().unwrap_or("");
    let shown = &hits[..hits.len().min(MAX_HELP_ROWS)];
    let left = hits.len() - shown.len();

    // Plain text.
    let mut text = format!("{} ({severity})", single_line(id, NAME_CHARS));
    if !title.is_empty() {
        let _ = write!(text, ": {}", single_line(title, NAME_CHARS));
    }
    text.push('\n');
    if !description.is_empty() {
        let _ = write!(text, "\n{}\n", single_line(description, DESCRIPTION_CHARS));
    }
    let _ = write!(
        text,
        "\nAffected in {}:\n",
        single_line(context.image, NAME_CHARS)
    );
    for hit in shown {
        let _ = writeln!(
            text,
            "- {} ({}): {}; {}",
            installed(hit),
            hit.severity,
            reached_by(hit, context),
            upgrade(hit)
        );
    }
    if left > 0 {
        let _ = writeln!(text, "- and {left} more installed packages");
    }
    if !references.is_empty() {
        text.push_str("\nReferences:\n");
        for url in references {
            let _ = writeln!(text, "- {url}");
        }
    }

    // Markdown.
    let mut markdown = format!("**{}** ({severity})", escape_inline(id, NAME_CHARS));
    if !title.is_empty() {
        let _ = write!(markdown, ": {}", escape_inline(title, NAME_CHARS));
    }
    markdown.push_str("\n\n");
    if !description.is_empty() {
        let _ = write!(
            markdown,
            "{}\n\n",
            escape_inline(description, DESCRIPTION_CHARS)
        );
    }
    let _ = write!(
        markdown,
        "Affected in {}:\n\n| Package | Installed | Fixed | Severity | Images |\n\
         |---|---|---|---|---|\n",
        escape_inline(context.image, NAME_CHARS)
    );
    for hit in shown {
        let finding = hit.finding;
        let mut package = escape_inline(&finding.package_name, NAME_CHARS);
        if let Some(path) = finding.package_path.as_deref().filter(|p| !p.is_empty()) {
            let _ = write!(package, " ({})", escape_inline(path, NAME_CHARS));
        }
        let _ = writeln!(
            markdown,
            "| {package} | {} | {} | {} | {} |",
            escape_inline(&finding.installed_version, NAME_CHARS),
            fixed(hit).map_or("no fix available".to_string(), |f| escape_inline(
                &f, NAME_CHARS
            )),
            hit.severity,
            escape_inline(&reached_by(hit, context), 2 * NAME_CHARS),
        );
    }
    if left > 0 {
        let _ = writeln!(markdown, "\nAnd {left} more installed packages.");
    }
    markdown.push_str("\n**Upgrade**\n\n");
    for hit in shown {
        let _ = writeln!(
            markdown,
            "- {}",
            escape_inline(&upgrade_line(hit), 3 * NAME_CHARS)
        );
    }
    if !references.is_empty() {
        markdown.push_str("\n**References**\n\n");
        for url in references {
            let _ = writeln!(markdown, "- <{url}>");
        }
    }
    super::MultiformatMessage { text, markdown }
}

/// The upgrade to make for one installed package, as plain text.
fn upgrade(hit: &Hit) -> String {
    match fixed(hit) {
        Some(fixed) => format!("upgrade to {fixed} and rebuild the image"),
        None => "no fixed version yet".to_string(),
    }
}

fn upgrade_line(hit: &Hit) -> String {
    format!("{}: {}", installed(hit), upgrade(hit))
}
