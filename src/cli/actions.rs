//! GitHub Actions' side channels: step outputs appended to `$GITHUB_OUTPUT`, and annotations as
//! workflow commands on stdout. Both stay silent outside a workflow (no `GITHUB_OUTPUT`, no
//! `GITHUB_ACTIONS=true`), so a run by hand prints only its own story.
//!
//! Text from the API or Trivy is escaped as the workflow-commands documentation asks (`%`, CR and
//! LF in data; also `:` and `,` in properties), so no package name can start a command of its own.

use std::path::Path;

use crate::output::{WriteError, append};
use crate::report::{Failure, Report};

/// GitHub shows at most ten annotations of each kind per step; more are dropped silently.
const MAX_ANNOTATIONS: usize = 10;

/// Whether dragnet runs inside a GitHub Actions job.
pub(super) fn in_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Appends step outputs to `$GITHUB_OUTPUT` when it is set; does nothing otherwise.
///
/// Every value is written in the multi-line form (`name<<DELIMITER`), with a delimiter the value
/// does not contain, so a value can never end early or set another output.
pub(super) fn set_outputs(outputs: &[(&str, String)]) -> Result<(), WriteError> {
    let Some(file) = std::env::var_os("GITHUB_OUTPUT").filter(|f| !f.is_empty()) else {
        return Ok(());
    };
    append(Path::new(&file), format_outputs(outputs).as_bytes())
}

fn format_outputs(outputs: &[(&str, String)]) -> String {
    let mut text = String::new();
    for (name, value) in outputs {
        let mut delimiter = format!("dragnet_{:016x}", fastrand::u64(..));
        while value.contains(&delimiter) {
            delimiter = format!("dragnet_{:016x}", fastrand::u64(..));
        }
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    text
}

/// The outputs of a run that wrote `report` into `output_dir`: counts per severity, the images
/// that failed, and where the files are.
pub(super) fn report_outputs(report: &Report, output_dir: &Path) -> Vec<(&'static str, String)> {
    let totals = &report.totals;
    let failed: Vec<&str> = report
        .failures
        .iter()
        .filter_map(|f| match f {
            Failure::Scan { image, .. } => Some(image.as_str()),
            Failure::Resolve { .. } => None,
        })
        .collect();
    let failed = serde_json::to_string(&failed).unwrap_or_else(|_| "[]".into());
    // Absolute, so that a later step with another working directory finds them too.
    let dir = std::path::absolute(output_dir).unwrap_or_else(|_| output_dir.to_path_buf());
    let path = |name: &str| dir.join(name).display().to_string();
    vec![
        ("critical", totals.findings.critical.to_string()),
        ("high", totals.findings.high.to_string()),
        ("medium", totals.findings.medium.to_string()),
        ("low", totals.findings.low.to_string()),
        ("unknown", totals.findings.unknown.to_string()),
        ("fixable", totals.fixable.to_string()),
        ("images", totals.images.to_string()),
        ("images-scanned", totals.images_scanned.to_string()),
        ("images-failed", totals.images_failed.to_string()),
        (
            "versions-unresolved",
            totals.versions_unresolved.to_string(),
        ),
        ("failed-images", failed),
        ("results", path("results.json")),
        ("summary", path("summary.md")),
        ("sarif-dir", path("sarif")),
    ]
}

/// Prints the report's annotations when running inside a workflow: an error for every image
/// that could not be scanned or version that could not be resolved, a warning for every package
/// with findings.
pub(super) fn annotate(report: &Report) {
    if in_actions() {
        for line in annotations(report) {
            println!("{line}");
        }
    }
}

/// The annotation workflow commands for a report, at most [`MAX_ANNOTATIONS`] of each kind
/// (the last of which says how many more there are).
pub(super) fn annotations(report: &Report) -> Vec<String> {
    let errors: Vec<(String, String)> = report.failures.iter().map(failure_annotation).collect();
    let warnings: Vec<(String, String)> = report
        .packages
        .iter()
        .filter(|p| p.counts.total() > 0)
        .map(|p| {
            let counts: Vec<String> = crate::finding::Severity::ALL
                .iter()
                .filter(|s| p.counts.get(**s) > 0)
                .map(|s| format!("{} {s}", p.counts.get(*s)))
                .collect();
            let title = format!("dragnet: {}", p.name);
            let message = format!(
                "{} in {} image(s) of {} ({} fixable); see the job summary",
                counts.join(", "),
                p.images_scanned,
                p.image,
                p.fixable
            );
            (title, message)
        })
        .collect();

    let mut lines = Vec::new();
    for (kind, list) in [("error", errors), ("warning", warnings)] {
        let shown = if list.len() > MAX_ANNOTATIONS {
            MAX_ANNOTATIONS - 1
        } else {
            list.len()
        };
        for (title, message) in &list[..shown] {
            lines.push(command(kind, title, message));
        }
        if shown < list.len() {
            let more = format!(
                "{} more; results.json and the job summary list them all",
                list.len() - shown
            );
            lines.push(command(kind, "dragnet", &more));
        }
    }
    lines
}

fn failure_annotation(failure: &Failure) -> (String, String) {
    match failure {
        Failure::Scan {
            image,
            platform,
            refs,
            cause,
            ..
        } => {
            let names: Vec<String> = refs
                .iter()
                .map(|r| match r.tags.is_empty() {
                    true => r.package.clone(),
                    false => format!("{}:{}", r.package, r.tags.join(",")),
                })
                .collect();
            let platform = platform
                .as_ref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default();
            let title = format!("dragnet: image not scanned: {}", names.join(" "));
            let message = format!("{image}{platform} could not be scanned: {cause}");
            (title, message)
        }
        Failure::Resolve {
            package,
            version_digest,
            cause,
            ..
        } if version_digest.is_empty() => {
            let title = format!("dragnet: package not listed: {package}");
            (
                title,
                format!("the versions of {package} could not be listed: {cause}"),
            )
        }
        Failure::Resolve {
            package,
            version_digest,
            tags,
            cause,
        } => {
            let title = format!("dragnet: version not resolved: {package}");
            let tags = match tags.is_empty() {
                true => "untagged".to_string(),
                false => tags.join(","),
            };
            let message =
                format!("{package}@{version_digest} ({tags}) could not be resolved: {cause}");
            (title, message)
        }
    }
}

/// One workflow command: `::KIND title=TITLE::MESSAGE`.
pub(super) fn command(kind: &str, title: &str, message: &str) -> String {
    format!(
        "::{kind} title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

/// Escapes a workflow command's message.
pub(super) fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
pub(super) fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    fn report() -> Report {
        Report::build(&fixtures::plan(), &fixtures::run())
    }

    #[test]
    fn annotates_failures_as_errors_and_findings_as_warnings() {
        let lines = annotations(&report());
        let errors: Vec<&String> = lines.iter().filter(|l| l.starts_with("::error ")).collect();
        assert_eq!(errors.len(), 2, "{lines:#?}");
        assert!(
            errors.iter().any(|l| l
                .starts_with("::error title=dragnet%3A image not scanned%3A broken%3Av1::")
                && l.ends_with("could not be scanned: pulling image: blob unknown to registry")),
            "{errors:#?}"
        );
        assert!(
            errors.iter().any(|l| l
                .starts_with("::error title=dragnet%3A version not resolved%3A broken::")
                && l.contains("(old) could not be resolved: manifest unknown")),
            "{errors:#?}"
        );
        let warnings: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("::warning "))
            .collect();
        assert!(
            warnings
                .iter()
                .any(|l| l
                    .starts_with("::warning title=dragnet%3A app::2 CRITICAL, 1 HIGH, 1 MEDIUM")),
            "{warnings:#?}"
        );
        assert!(
            !warnings.iter().any(|l| l.contains("%3A clean::")),
            "clean has no findings"
        );
    }

    #[test]
    fn caps_annotations_at_what_github_shows() {
        let mut report = report();
        let failure = report.failures[0].clone();
        report.failures = vec![failure; 12];
        let errors: Vec<String> = annotations(&report)
            .into_iter()
            .filter(|l| l.starts_with("::error "))
            .collect();
        assert_eq!(errors.len(), MAX_ANNOTATIONS);
        assert!(errors[9].contains("3 more; results.json"), "{}", errors[9]);
    }

    #[test]
    fn outputs_count_findings_and_name_failed_images() {
        let report = report();
        let outputs: std::collections::BTreeMap<&str, String> =
            report_outputs(&report, Path::new("/out"))
                .into_iter()
                .collect();
        assert_eq!(
            outputs["critical"],
            report.totals.findings.critical.to_string()
        );
        assert_eq!(outputs["images-failed"], "1");
        assert_eq!(
            outputs["failed-images"],
            format!("[\"ghcr.io/acme/broken@{}\"]", fixtures::digest(0x04))
        );
        assert_eq!(outputs["sarif-dir"], "/out/sarif");
    }

    #[test]
    fn escapes_what_could_end_a_command() {
        assert_eq!(
            escape_data("50% done\r\n::error::x"),
            "50%25 done%0D%0A::error::x"
        );
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        assert_eq!(
            command("error", "dragnet: x", "line one\nline two"),
            "::error title=dragnet%3A x::line one%0Aline two"
        );
    }

    #[test]
    fn outputs_use_a_delimiter_the_value_does_not_hold() {
        let text = format_outputs(&[
            ("critical", "2".into()),
            ("failed-images", "[\"a\"]\nfake=1".into()),
        ]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 7, "{text}");
        let (name, delimiter) = lines[0].split_once("<<").unwrap();
        assert_eq!(name, "critical");
        assert_eq!(lines[1], "2");
        assert_eq!(lines[2], delimiter);
        assert!(lines[3].starts_with("failed-images<<"));
        assert_eq!(&lines[4..6], ["[\"a\"]", "fake=1"]);
    }
}
