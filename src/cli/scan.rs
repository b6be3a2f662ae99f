//! `dragnet scan`: every stage in one process — discover, resolve, plan, scan, report, and
//! (with `--upload`) upload.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Failure, ScanArgs};
use crate::exit::Exit;
use crate::finding::Severity;
use crate::github::discover::discover;
use crate::http::HttpClient;
use crate::output::{append, write_atomic};
use crate::registry::{Credentials, RegistryClient, RegistryConfig, resolve};
use crate::report::{Report, results_json, summary_markdown};
use crate::sarif::SarifOptions;
use crate::scan::{ScanOptions, ScanRun, scan_all};
use crate::trivy::{RegistryCredentials, Trivy, TrivyConfig};

pub(super) async fn run(args: ScanArgs) -> Result<Exit, Failure> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let concurrency = args.concurrency.unwrap_or(cores);
    if concurrency == 0 {
        return Err(Failure::usage(anyhow::anyhow!(
            "--concurrency must be at least 1"
        )));
    }
    let upload_target = if args.upload {
        Some(args.target.upload_target()?)
    } else {
        None
    };
    let cache_dir = cache_dir(args.cache_dir.as_deref())?;
    let mut severities = args.severity.clone();
    severities.sort_by(|a, b| b.cmp(a));
    severities.dedup();

    // Discover.
    let http = HttpClient::new(16)?;
    let github = args.github.client(&http)?;
    let inventory = discover(&github, &args.select.options(8)?).await?;

    // Resolve and plan.
    let password = args
        .registry_password
        .clone()
        .or_else(|| args.github.token.clone());
    let registry = RegistryClient::new(
        RegistryConfig {
            host: args.select.registry.clone(),
            credentials: password.clone().map(|password| Credentials {
                username: args.registry_username.clone(),
                password,
            }),
            platforms: args.platforms.clone(),
        },
        http.clone(),
    );
    let resolutions = resolve(&registry, &inventory, 8).await;
    let plan = crate::plan::build(&inventory, resolutions);
    tracing::info!(
        "planned {} unique images from {} packages ({} versions could not be resolved)",
        plan.targets.len(),
        plan.packages.len(),
        plan.unresolved.len()
    );

    // Scan: the DB once, then every target.
    let trivy = Trivy::new(TrivyConfig {
        program: args.trivy.clone(),
        cache_dir: cache_dir.join("trivy"),
        db_repositories: args.db_repositories.clone(),
        severities: severities.clone(),
        ignore_unfixed: args.ignore_unfixed,
        timeout: args.scan_timeout,
        credentials: password.map(|password| RegistryCredentials {
            username: args.registry_username.clone(),
            password,
        }),
    });
    let started_at = now_rfc3339();
    let started = Instant::now();
    let mut trivy_version = trivy.version().await?;
    if !plan.targets.is_empty() {
        tracing::info!("downloading the vulnerability DB");
        trivy.download_db().await?;
        trivy_version = trivy.version().await?;
    }
    let results = scan_all(&trivy, &plan.targets, concurrency).await;
    let run = ScanRun {
        started_at: started_at.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        trivy_version: trivy_version.version.clone(),
        db_updated_at: trivy_version.db.as_ref().map(|db| db.updated_at_rfc3339()),
        options: ScanOptions {
            severities,
            ignore_unfixed: args.ignore_unfixed,
        },
        results,
    };

    // Report.
    let report = Report::build(&plan, &run);
    let sarif_files = write_outputs(&args.output_dir, &report)?;
    let summary = summary_markdown(&report);
    if let Some(step_summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        append(Path::new(&step_summary), summary.as_bytes())?;
    }
    let failed = report.has_failures();

    // Upload.
    let mut upload_failed = false;
    if let Some(target) = upload_target {
        let receipts =
            super::upload::upload_all(&github, &target, &sarif_files, &args.target).await;
        upload_failed = !receipts.iter().all(|r| r.succeeded());
        write_atomic(
            &args.output_dir.join("uploads.json"),
            serde_json::to_string_pretty(&receipts)?.as_bytes(),
        )?;
    }

    let worst = run
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            crate::scan::Outcome::Scanned { findings, .. } => {
                findings.iter().map(|f| f.severity).max()
            }
            crate::scan::Outcome::Failed { .. } => None,
        })
        .max();
    Ok(exit_code(failed || upload_failed, worst, args.fail_on))
}

/// Failures outrank findings: a run that could not see everything says so first.
fn exit_code(failed: bool, worst: Option<Severity>, fail_on: Option<Severity>) -> Exit {
    if failed {
        Exit::PartialFailure
    } else if fail_on.is_some_and(|threshold| worst.is_some_and(|worst| worst >= threshold)) {
        Exit::Findings
    } else {
        Exit::Success
    }
}

/// Writes results.json, summary.md and the SARIF files; returns the SARIF paths.
fn write_outputs(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, Failure> {
    write_atomic(&dir.join("results.json"), results_json(report).as_bytes())?;
    write_atomic(&dir.join("summary.md"), summary_markdown(report).as_bytes())?;

    // SARIF from an earlier run in the same directory would be uploaded with these: remove it.
    let sarif_dir = dir.join("sarif");
    if let Ok(entries) = std::fs::read_dir(&sarif_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("dragnet-") && name.ends_with(".sarif") {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    let options = SarifOptions::default();
    let mut paths = Vec::new();
    for (index, log) in crate::sarif::build(report, &options).iter().enumerate() {
        let path = sarif_dir.join(format!("dragnet-{:03}.sarif", index + 1));
        write_atomic(&path, serde_json::to_string_pretty(log)?.as_bytes())?;
        paths.push(path);
    }
    tracing::info!("wrote {} and {} SARIF files", dir.display(), paths.len());
    Ok(paths)
}

/// `--cache-dir`, else `$XDG_CACHE_HOME/dragnet`, else `~/.cache/dragnet`.
fn cache_dir(given: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(dir) = given {
        return Ok(dir.to_path_buf());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .ok_or_else(|| {
            Failure::usage(anyhow::anyhow!(
                "no cache directory: pass --cache-dir or set HOME"
            ))
        })?;
    Ok(base.join("dragnet"))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_outrank_findings_and_findings_need_fail_on() {
        let high = Some(Severity::High);
        assert_eq!(exit_code(false, high, None), Exit::Success);
        assert_eq!(
            exit_code(false, high, Some(Severity::Critical)),
            Exit::Success
        );
        assert_eq!(exit_code(false, high, Some(Severity::High)), Exit::Findings);
        assert_eq!(
            exit_code(true, high, Some(Severity::High)),
            Exit::PartialFailure
        );
        assert_eq!(exit_code(false, None, Some(Severity::Low)), Exit::Success);
    }
}
