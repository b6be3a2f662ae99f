//! `dragnet scan`: every stage in one process — discover, resolve, plan, scan, report, and
//! (with `--upload`) upload.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::interrupt::Stop;
use super::{Failure, ScanArgs};
use crate::exit::Exit;
use crate::finding::Severity;
use crate::github::discover::discover;
use crate::http::HttpClient;
use crate::output::{append, write_atomic};
use crate::registry::{Credentials, RegistryClient, RegistryConfig, resolve};
use crate::report::{Report, results_json, summary_markdown};
use crate::result_cache::ResultCache;
use crate::sarif::SarifOptions;
use crate::scan::{ScanOptions, ScanRun, scan_until};
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
    // `--dry-run` plans the upload without `--upload`: it sends nothing either way.
    let uploading = args.upload || args.target.dry_run;
    let upload_target = if uploading {
        args.target.current_target(args.target.route)?
    } else {
        None
    };
    let cache_dir = cache_dir(args.select.cache_dir.as_deref())?;
    // Ignore files are read first: a mistake in one is a usage error, before any work.
    let today = time::OffsetDateTime::now_utc().date();
    let ignore = crate::ignore::IgnoreList::load(&args.ignorefiles, &args.allowlists, today)
        .map_err(Failure::usage)?;
    let sarif_options = SarifOptions {
        location: args.location_template.clone(),
        ..SarifOptions::default()
    };
    let mut severities = args.severity.clone();
    severities.sort_by(|a, b| b.cmp(a));
    severities.dedup();

    // Discover, resolve and plan; or read the plan that `dragnet plan` wrote.
    // From here on SIGINT and SIGTERM stop the run gracefully (see `interrupt`).
    let interrupt = super::interrupt::Interrupt::listen()?;
    let http = args.github.http(16)?;
    let github = args.github.client(&http)?;
    let password = args
        .registry_password
        .clone()
        .or_else(|| args.github.token.clone());
    let credentials = password.clone().map(|password| Credentials {
        username: args.registry_username.clone(),
        password,
    });
    let loaded = match &args.plan {
        Some(path) => Some(super::plan::load(path, args.shard)?),
        None => None,
    };
    let plan = match &loaded {
        Some(loaded) => loaded.plan.clone(),
        None => {
            let planning =
                discover_and_plan(&github, &http, &args.select, &args.platforms, credentials);
            interrupt
                .until(planning)
                .await
                .map_err(Stop::before_results)??
        }
    };

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
    })
    .with_output_limit(args.trivy_output_limit);
    let started_at = now_rfc3339();
    let started = Instant::now();
    if !plan.targets.is_empty() {
        tracing::info!("downloading the vulnerability DB");
        interrupt
            .until(trivy.download_db())
            .await
            .map_err(Stop::before_results)??;
    }
    // Once, after the download: each Trivy process costs about 0.1 s, a third of a rerun that
    // finds everything cached (see docs/benchmarks.md).
    let trivy_version = trivy.version().await?;
    let options = ScanOptions {
        severities: severities.clone(),
        ignore_unfixed: args.ignore_unfixed,
    };
    let result_cache = match (&trivy_version.db, args.rescan) {
        (Some(db), false) => Some(ResultCache::new(
            &cache_dir.join("results"),
            &trivy_version.version,
            &db.updated_at_rfc3339(),
            &options,
        )),
        _ => None,
    };
    let cache = result_cache.as_ref();
    // Parallel scans share one layer cache only through a server (see `trivy::server`); it is
    // not worth starting when every result is cached.
    let uncached = (plan.targets.iter())
        .filter(|t| cache.is_none_or(|c| c.get(&t.digest).is_none()))
        .count();
    let serving = match uncached {
        0 => None,
        _ => Some(
            interrupt
                .until(trivy.serve())
                .await
                .map_err(Stop::before_results)?,
        ),
    };
    let server = match serving {
        Some(Err(error)) => {
            tracing::warn!("{error}: scanning without a shared layer cache");
            None
        }
        Some(Ok(server)) => Some(server),
        None => None,
    };
    let scanner = match &server {
        Some(server) => trivy.clone().with_server(server),
        None => trivy.clone(),
    };
    let stopped = async { interrupt.wait().await.cause() };
    let results = scan_until(&scanner, &plan.targets, concurrency, cache, stopped).await;
    drop(server);
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

    // Report; a run from a plan also leaves its raw results for `dragnet merge`.
    if let Some(loaded) = &loaded {
        super::merge::write_shard_run(&args.output_dir, loaded, &run)?;
    }
    let report = Report::build_ignoring(&plan, &run, &ignore);
    let sarif_files = publish_with(&args.output_dir, &report, &sarif_options)?;
    let mut failed = report.has_failures();
    if args.sbom && interrupt.received().is_none() {
        failed |= !super::sbom::write_sboms(&trivy, &report, &args.output_dir, concurrency).await?;
    }
    if let Some(stop) = interrupt.received() {
        tracing::warn!(
            "stopped by {}: wrote the results of the images scanned before it; nothing uploaded",
            stop.name()
        );
        return Ok(stop.exit());
    }

    // Upload.
    let mut upload_failed = false;
    if uploading {
        let options = super::upload::UploadOptions::from_args(&args.target);
        let work = super::upload::upload(&github, upload_target.as_ref(), &sarif_files, &options);
        let Ok(summary) = interrupt.until(work).await else {
            let stop = interrupt.received().unwrap_or(Stop::Interrupt);
            tracing::warn!(
                "stopped by {} while uploading; results were written",
                stop.name()
            );
            return Ok(stop.exit());
        };
        let summary = summary?;
        upload_failed = !summary.succeeded();
        super::upload::write_summary(&args.output_dir, &summary)?;
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

/// Resolves the discovered versions' tags to digests and folds them into a plan.
pub(super) async fn discover_and_plan(
    github: &crate::github::GitHubClient,
    http: &HttpClient,
    select: &super::SelectArgs,
    platforms: &[crate::plan::Platform],
    credentials: Option<Credentials>,
) -> Result<crate::plan::Plan, Failure> {
    // Discover; the registry stands in for packages whose versions the API refuses.
    let registry = RegistryClient::new(
        RegistryConfig {
            host: select.registry.clone(),
            credentials,
            platforms: platforms.to_vec(),
        },
        http.clone(),
    )
    .with_resolution_cache(&cache_dir(select.cache_dir.as_deref())?);
    let github = github.clone().with_etag_cache(select.etag_cache()?);
    let inventory = discover(&github, Some(&registry), &select.options(8)?).await?;

    // Resolve and plan.
    let resolutions = resolve(&registry, &inventory, 8).await;
    let plan = crate::plan::build(&inventory, resolutions);
    tracing::info!(
        "planned {} unique images from {} packages ({} versions could not be resolved)",
        plan.targets.len(),
        plan.packages.len(),
        plan.unresolved.len()
    );
    Ok(plan)
}

/// Writes the report's files with these SARIF options (`--location-template`), appends its
/// summary to the job summary, and hands GitHub Actions its annotations and step outputs;
/// returns the SARIF paths. `scan` and `merge` both end here, so their outputs match.
pub(super) fn publish_with(
    dir: &Path,
    report: &Report,
    sarif: &SarifOptions,
) -> Result<Vec<PathBuf>, Failure> {
    let (sarif_files, summary) = write_outputs(dir, report, sarif)?;
    if let Some(step_summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        append(Path::new(&step_summary), summary.as_bytes())?;
    }
    super::actions::annotate(report);
    super::actions::set_outputs(&super::actions::report_outputs(report, dir))?;
    Ok(sarif_files)
}

/// Failures outrank findings: a run that could not see everything says so first.
pub(super) fn exit_code(failed: bool, worst: Option<Severity>, fail_on: Option<Severity>) -> Exit {
    if failed {
        Exit::PartialFailure
    } else if fail_on.is_some_and(|threshold| worst.is_some_and(|worst| worst >= threshold)) {
        Exit::Findings
    } else {
        Exit::Success
    }
}

/// Writes results.json, report.html, the SARIF files and summary.md; returns the SARIF paths
/// and the summary.
fn write_outputs(
    dir: &Path,
    report: &Report,
    options: &SarifOptions,
) -> Result<(Vec<PathBuf>, String), Failure> {
    write_atomic(&dir.join("results.json"), results_json(report).as_bytes())?;
    write_atomic(
        &dir.join("report.html"),
        crate::report::report_html(report).as_bytes(),
    )?;

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
    let sarif = crate::sarif::build(report, options);
    let mut paths = Vec::new();
    for (index, log) in sarif.logs.iter().enumerate() {
        let path = sarif_dir.join(format!("dragnet-{:03}.sarif", index + 1));
        write_atomic(&path, crate::sarif::sarif_json(log).as_bytes())?;
        paths.push(path);
    }
    let mut summary = summary_markdown(report);
    summary.push_str(&crate::sarif::omissions_markdown(&sarif.omissions));
    write_atomic(&dir.join("summary.md"), summary.as_bytes())?;
    tracing::info!("wrote {} and {} SARIF files", dir.display(), paths.len());
    Ok((paths, summary))
}

/// `--cache-dir`, else `$XDG_CACHE_HOME/dragnet`, else `~/.cache/dragnet`.
pub(super) fn cache_dir(given: Option<&Path>) -> Result<PathBuf, Failure> {
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

pub(super) fn now_rfc3339() -> String {
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
