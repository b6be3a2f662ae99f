//! `dragnet upload`, and the upload step of `dragnet scan --upload`.
//!
//! The steps: read the SARIF files back, route each run to its repository (`--route`), list
//! each repository's dragnet analyses and add an empty run for every category no longer
//! produced there (so its alerts close), pack the runs into files within GitHub's limits, then
//! send them paced under GitHub's 1,000 uploads an hour and wait until GitHub has processed
//! each. `--dry-run` stops before sending and says what would be sent and closed. Whatever is
//! not uploaded is listed with the reason; one failure does not stop the others.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::Value;

use super::{Failure, TargetArgs, UploadArgs};
use crate::exit::Exit;
use crate::github::code_scanning::{UploadPacer, UploadTarget};
use crate::github::{GitHubClient, GitHubError};
use crate::route::{Input, Route, Skipped, StaleCategory, TOOL_NAME};
use crate::sarif::pack::{self, Limits, Omission};
use crate::sarif::{SarifOptions, automation_id};

/// How uploads are made.
#[derive(Debug, Clone)]
pub(super) struct UploadOptions {
    /// Where each run goes.
    pub route: Route,
    /// Plan only: list what would be sent and closed, send nothing.
    pub dry_run: bool,
    /// Upload empty runs for categories no longer produced.
    pub close_stale: bool,
    /// The pace: at most this many uploads an hour.
    pub uploads_per_hour: u32,
    /// How often to ask whether an upload was processed.
    pub poll_interval: Duration,
    /// How many times to ask.
    pub max_polls: usize,
    /// What the files may hold.
    pub limits: Limits,
}

impl UploadOptions {
    pub(super) fn from_args(args: &TargetArgs) -> UploadOptions {
        UploadOptions {
            route: args.route,
            dry_run: args.dry_run,
            close_stale: !args.keep_stale,
            uploads_per_hour: args.uploads_per_hour,
            poll_interval: args.poll_interval,
            max_polls: args.max_polls,
            limits: Limits::default(),
        }
    }
}

/// What happened to one upload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct UploadReceipt {
    /// The repository it went to.
    pub repository: String,
    /// The commit and ref it was attached to.
    pub commit_sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The input files its runs came from.
    pub files: Vec<String>,
    /// The categories it carried, closing ones included.
    pub categories: Vec<String>,
    /// Results it carried.
    pub results: usize,
    /// Categories it closed with an empty run.
    pub closes: Vec<String>,
    /// GitHub's id for the upload.
    pub sarif_id: Option<String>,
    /// `complete`, `failed`, `pending`, `unknown`, `not sent`, or `dry run`.
    pub processing_status: String,
    /// What went wrong, in GitHub's words and dragnet's hints.
    pub errors: Vec<String>,
}

impl UploadReceipt {
    /// Whether it reached the Security tab (or would, in a dry run).
    pub fn succeeded(&self) -> bool {
        matches!(self.processing_status.as_str(), "complete" | "dry run")
    }
}

/// A category closed (or to be closed) in a repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Closed {
    pub repository: String,
    #[serde(flatten)]
    pub stale: StaleCategory,
}

/// Everything the upload step did: `uploads.json`, and what `dragnet upload` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct UploadSummary {
    /// Whether this was a dry run (nothing sent).
    pub dry_run: bool,
    /// `current` or `linked`.
    pub route: String,
    /// Every upload, in the order sent.
    pub uploads: Vec<UploadReceipt>,
    /// Categories closed with empty runs because no package produces them any more.
    pub closed: Vec<Closed>,
    /// Runs and repositories not uploaded, with the reason.
    pub skipped: Vec<Skipped>,
    /// Results left out to fit GitHub's limits.
    pub omitted: Vec<Omission>,
}

impl UploadSummary {
    /// True when every upload reached GitHub's Security tab and no repository was refused.
    /// Packages without a linked repository only warn: that is configuration, not failure.
    pub fn succeeded(&self) -> bool {
        self.uploads.iter().all(UploadReceipt::succeeded)
            && self.skipped.iter().all(|s| s.repository.is_none())
    }

    /// The summary section in Markdown, for `summary.md` and the job's step summary.
    pub fn markdown(&self) -> String {
        use crate::report::escape_inline;
        let mut out = String::from(if self.dry_run {
            "### Code scanning upload (dry run: nothing sent)\n\n"
        } else {
            "### Code scanning upload\n\n"
        });
        if self.uploads.is_empty() {
            out.push_str("Nothing to upload.\n\n");
        } else {
            out.push_str("| Repository | Ref | Categories | Results | Closes | Status |\n");
            out.push_str("|---|---|--:|--:|--:|---|\n");
            for upload in &self.uploads {
                let status = if upload.succeeded() {
                    format!("✅ {}", upload.processing_status)
                } else {
                    format!(
                        "❌ {}: {}",
                        upload.processing_status,
                        escape_inline(&upload.errors.join("; "), 300)
                    )
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {status} |",
                    escape_inline(&upload.repository, 120),
                    escape_inline(&upload.git_ref, 120),
                    upload.categories.len(),
                    upload.results,
                    upload.closes.len(),
                );
            }
            out.push('\n');
        }
        if !self.closed.is_empty() {
            out.push_str("Closed, as no package produces them any more:\n\n");
            for closed in &self.closed {
                let _ = writeln!(
                    out,
                    "- {} in {} ({} open alerts)",
                    escape_inline(&closed.stale.category, 200),
                    escape_inline(&closed.repository, 120),
                    closed.stale.results
                );
            }
            out.push('\n');
        }
        if !self.skipped.is_empty() {
            out.push_str("Not uploaded:\n\n");
            for skipped in &self.skipped {
                let _ = writeln!(
                    out,
                    "- ⚠️ {}{}: {}",
                    escape_inline(&skipped.category, 200),
                    skipped
                        .repository
                        .as_deref()
                        .map_or(String::new(), |r| format!(
                            " (to {})",
                            escape_inline(r, 120)
                        )),
                    escape_inline(&skipped.reason, 500)
                );
            }
            out.push('\n');
        }
        if !self.omitted.is_empty() {
            out.push_str("Left out to fit GitHub's limits (the least severe first):\n\n");
            for omission in &self.omitted {
                let _ = writeln!(out, "- {}", escape_inline(&omission.to_string(), 500));
            }
            out.push('\n');
        }
        out
    }
}

pub(super) async fn run(args: UploadArgs) -> Result<Exit, Failure> {
    let options = UploadOptions::from_args(&args.target);
    let current = args.target.current_target(options.route)?;
    let files = sarif_files(&args.paths).map_err(Failure::usage)?;
    let http = args.github.http(4)?;
    let github = args.github.client(&http)?;

    let summary = upload(&github, current.as_ref(), &files, &options).await?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if let Some(step_summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        crate::output::append(Path::new(&step_summary), summary.markdown().as_bytes())?;
    }
    Ok(if summary.succeeded() {
        Exit::Success
    } else {
        Exit::PartialFailure
    })
}

/// Writes `uploads.json` beside the other outputs and appends the upload's section to
/// `summary.md` and, in Actions, to the job's step summary.
pub(super) fn write_summary(dir: &Path, summary: &UploadSummary) -> Result<(), Failure> {
    crate::output::write_atomic(
        &dir.join("uploads.json"),
        serde_json::to_string_pretty(summary)?.as_bytes(),
    )?;
    let markdown = summary.markdown();
    crate::output::append(&dir.join("summary.md"), markdown.as_bytes())?;
    if let Some(step_summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        crate::output::append(Path::new(&step_summary), markdown.as_bytes())?;
    }
    Ok(())
}

/// The SARIF files named by the user: files as given, directories' `*.sarif`, sorted.
fn sarif_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "sarif"))
                .collect();
            found.sort();
            if found.is_empty() {
                anyhow::bail!("{} holds no .sarif file", path.display());
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{} does not exist", path.display());
        }
    }
    Ok(files)
}

/// One file to send, planned.
struct Planned {
    target: UploadTarget,
    files: Vec<String>,
    closes: Vec<String>,
    log: Value,
}

/// Reads, routes, plans and (unless a dry run) sends the SARIF in `files`.
pub(super) async fn upload(
    github: &GitHubClient,
    current: Option<&UploadTarget>,
    files: &[PathBuf],
    options: &UploadOptions,
) -> Result<UploadSummary, Failure> {
    let input = Input::read(files).map_err(Failure::usage)?;
    for omission in &input.omitted {
        tracing::warn!("the SARIF already left results out: {omission}");
    }
    let mut summary = UploadSummary {
        dry_run: options.dry_run,
        route: match options.route {
            Route::Current => "current",
            Route::Linked => "linked",
        }
        .to_string(),
        uploads: Vec::new(),
        closed: Vec::new(),
        skipped: Vec::new(),
        omitted: input.omitted.clone(),
    };
    let planned = plan(github, current, input, options, &mut summary).await;

    let mut pacer = UploadPacer::new(options.uploads_per_hour);
    let wait = pacer.planned_wait(planned.len());
    if !options.dry_run && !wait.is_zero() {
        tracing::info!(
            "{} uploads planned: pacing them under {} an hour takes about {}s",
            planned.len(),
            options.uploads_per_hour,
            wait.as_secs()
        );
    }
    let total = planned.len();
    for (index, planned) in planned.into_iter().enumerate() {
        if options.dry_run {
            let receipt = receipt_for(&planned, "dry run");
            tracing::info!(
                "dry run: would upload {} categories ({} results, {} closing) to {} at {}",
                receipt.categories.len(),
                receipt.results,
                receipt.closes.len(),
                receipt.repository,
                receipt.git_ref
            );
            summary.uploads.push(receipt);
            continue;
        }
        let receipts = send(github, &mut pacer, planned, options, &mut summary.omitted).await;
        for receipt in receipts {
            match receipt.succeeded() {
                true => tracing::info!(
                    "uploaded {}/{total} to {}: {} categories, {} results: {}",
                    index + 1,
                    receipt.repository,
                    receipt.categories.len(),
                    receipt.results,
                    receipt.processing_status
                ),
                false => tracing::error!(
                    "upload {}/{total} to {} {}: {}",
                    index + 1,
                    receipt.repository,
                    receipt.processing_status,
                    receipt.errors.join("; ")
                ),
            }
            summary.uploads.push(receipt);
        }
    }
    for skipped in &summary.skipped {
        tracing::warn!("not uploaded: {}: {}", skipped.category, skipped.reason);
    }
    Ok(summary)
}

/// Routes the runs, finds each repository's stale categories and packs its files.
async fn plan(
    github: &GitHubClient,
    current: Option<&UploadTarget>,
    input: Input,
    options: &UploadOptions,
    summary: &mut UploadSummary,
) -> Vec<Planned> {
    let routed = crate::route::route(
        input.runs.clone(),
        options.route,
        current.map(|t| t.repository.as_str()),
    );
    let keep = crate::route::kept_categories(&input, &routed);
    summary.skipped.extend(routed.skipped.iter().cloned());

    let mut planned = Vec::new();
    for (repository, runs) in routed.destinations {
        let categories: Vec<String> = runs.iter().map(|r| r.category.clone()).collect();
        let skip = |reason: String| Skipped {
            category: categories.join(", "),
            repository: Some(repository.clone()),
            reason,
        };

        // The commit and ref: the given ones for the current repository, else the head of
        // the linked repository's default branch (a commit of another repository is refused).
        let target = match current.filter(|t| t.repository.eq_ignore_ascii_case(&repository)) {
            Some(target) => target.clone(),
            None => match github.default_branch_target(&repository).await {
                Ok(target) => target,
                Err(error) => {
                    summary.skipped.push(skip(format!(
                        "cannot find the default branch of {repository}: {error}"
                    )));
                    continue;
                }
            },
        };

        // What dragnet uploaded here before and no longer produces.
        let produced: BTreeSet<String> = categories.iter().cloned().collect();
        let mut stale = Vec::new();
        if options.close_stale {
            match github
                .list_analyses(&repository, TOOL_NAME, &target.git_ref)
                .await
            {
                Ok(analyses) => {
                    stale = crate::route::stale_categories(&analyses, &produced, &keep);
                }
                Err(error) if refused(&error) => {
                    summary.skipped.push(skip(format!(
                        "the token cannot use code scanning in {repository}: {error}"
                    )));
                    continue;
                }
                Err(error) => tracing::warn!(
                    "cannot list the analyses of {repository}, so categories no longer \
                     produced stay open this time: {error}"
                ),
            }
        }
        for category in &stale {
            tracing::info!(
                "{} {} in {repository}: no package produces it any more ({} open alerts)",
                if options.dry_run {
                    "would close"
                } else {
                    "closing"
                },
                category.category,
                category.results
            );
            summary.closed.push(Closed {
                repository: repository.clone(),
                stale: category.clone(),
            });
        }

        // Pack this repository's runs, and the closing ones, into files.
        let closes: BTreeSet<String> = stale.iter().map(|s| s.category.clone()).collect();
        let mut values: Vec<Value> = runs.iter().map(|r| r.run.clone()).collect();
        values.extend(stale.iter().map(|s| empty_run(&s.category)));
        let packed = pack::pack(values, &options.limits, &BTreeSet::new());
        summary.omitted.extend(packed.omissions);
        for log in packed.logs {
            let log_categories: BTreeSet<String> =
                runs_of(&log).iter().map(pack::run_category).collect();
            let files: BTreeSet<String> = runs
                .iter()
                .filter(|r| log_categories.contains(&r.category))
                .map(|r| r.source.clone())
                .collect();
            planned.push(Planned {
                target: target.clone(),
                files: files.into_iter().collect(),
                closes: closes.intersection(&log_categories).cloned().collect(),
                log,
            });
        }
    }
    planned
}

/// Whether GitHub refused the repository itself (no access, no code scanning, not found).
fn refused(error: &GitHubError) -> bool {
    matches!(
        error.status(),
        Some(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
    )
}

/// An empty dragnet run for `category`: uploading it closes the category's alerts.
fn empty_run(category: &str) -> Value {
    let package = crate::sarif::package_of_category(category).unwrap_or(category);
    let options = SarifOptions::default();
    let mut driver = serde_json::json!({
        "name": TOOL_NAME,
        "version": options.tool_version,
        "semanticVersion": options.tool_version,
        "rules": [],
    });
    if let Some(uri) = options.information_uri {
        driver["informationUri"] = uri.into();
    }
    serde_json::json!({
        "tool": { "driver": driver },
        "automationDetails": { "id": automation_id(package) },
        "results": [],
        "properties": {
            crate::sarif::PACKAGE_PROPERTY: package,
            "dragnet/closes": "no package produces this category any more",
        },
    })
}

fn runs_of(log: &Value) -> Vec<Value> {
    log.get("runs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn receipt_for(planned: &Planned, status: &str) -> UploadReceipt {
    let runs = runs_of(&planned.log);
    UploadReceipt {
        repository: planned.target.repository.clone(),
        commit_sha: planned.target.commit_sha.clone(),
        git_ref: planned.target.git_ref.clone(),
        files: planned.files.clone(),
        categories: runs.iter().map(pack::run_category).collect(),
        results: runs.iter().map(pack::result_count).sum(),
        closes: planned.closes.clone(),
        sarif_id: None,
        processing_status: status.to_string(),
        errors: Vec::new(),
    }
}

/// Sends one planned file and waits for GitHub to process it. A `413` splits the file in two
/// (or, for a single run, halves the run's size budget) and sends the parts, so that nothing
/// is lost to GitHub counting the size differently.
async fn send(
    github: &GitHubClient,
    pacer: &mut UploadPacer,
    planned: Planned,
    options: &UploadOptions,
    omitted: &mut Vec<Omission>,
) -> Vec<UploadReceipt> {
    let mut queue = vec![(planned, options.limits.max_gzipped_bytes)];
    let mut receipts = Vec::new();
    while let Some((planned, budget)) = queue.pop() {
        let mut receipt = receipt_for(&planned, "not sent");
        let body = match serde_json::to_vec(&planned.log) {
            Ok(body) => body,
            Err(error) => {
                receipt
                    .errors
                    .push(format!("cannot serialise the SARIF: {error}"));
                receipts.push(receipt);
                continue;
            }
        };
        pacer.before_upload(github).await;
        let name = receipt.files.join(", ");
        let sent = match github
            .upload_sarif(&planned.target, &name, &body, None)
            .await
        {
            Ok(sent) => sent,
            Err(error) if error.status() == Some(StatusCode::PAYLOAD_TOO_LARGE) => {
                tracing::warn!("{error}");
                match split(planned, budget / 2, omitted) {
                    Some(parts) => queue.extend(parts.into_iter().rev().map(|p| (p, budget / 2))),
                    None => {
                        receipt.errors.push(error.to_string());
                        receipts.push(receipt);
                    }
                }
                continue;
            }
            Err(error) => {
                receipt.errors.push(error.to_string());
                receipts.push(receipt);
                continue;
            }
        };
        receipt.sarif_id = Some(sent.id.clone());
        match github
            .wait_for_processing(
                &planned.target,
                &sent.id,
                options.poll_interval,
                options.max_polls,
            )
            .await
        {
            Ok(status) => {
                receipt.processing_status = status.processing_status;
                receipt.errors = status.errors.unwrap_or_default();
                if receipt.processing_status == "pending" {
                    receipt.errors.push(format!(
                        "GitHub had not processed the upload after {} checks; see its status \
                         later with the id {}",
                        options.max_polls, sent.id
                    ));
                }
            }
            Err(error) => {
                receipt.processing_status = "unknown".into();
                receipt.errors.push(error.to_string());
            }
        }
        receipts.push(receipt);
    }
    receipts
}

/// A file GitHub found too large, as two halves; a single run is cut to `budget` instead.
/// `None` when there is nothing left to cut.
fn split(planned: Planned, budget: usize, omitted: &mut Vec<Omission>) -> Option<Vec<Planned>> {
    let mut runs = runs_of(&planned.log);
    if runs.len() > 1 {
        let second = runs.split_off(runs.len() / 2);
        let part = |runs: Vec<Value>| {
            let categories: BTreeSet<String> = runs.iter().map(pack::run_category).collect();
            Planned {
                target: planned.target.clone(),
                files: planned.files.clone(),
                closes: planned
                    .closes
                    .iter()
                    .filter(|c| categories.contains(*c))
                    .cloned()
                    .collect(),
                log: pack::log_of(runs, &BTreeSet::new()),
            }
        };
        return Some(vec![part(runs), part(second)]);
    }
    let mut run = runs.pop()?;
    if pack::result_count(&run) == 0 || budget < 1024 {
        return None;
    }
    let limits = Limits {
        max_gzipped_bytes: budget,
        ..Limits::default()
    };
    omitted.extend(pack::fit_run(&mut run, &limits));
    Some(vec![Planned {
        log: pack::log_of(vec![run], &BTreeSet::new()),
        ..planned
    }])
}

#[cfg(test)]
mod tests;
