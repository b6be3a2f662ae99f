//! `dragnet merge`: the shards' scan runs folded back into one report over the whole plan.
//!
//! Each `scan --plan --shard` job leaves `scan-run.json` (its raw results); merge joins them with
//! the plan and writes results.json, summary.md and SARIF exactly as one unsharded run would
//! (timings aside), so `dragnet upload` sends every package's findings once. Ignoring and SARIF
//! locations apply when a report is built, so merge takes the same flags for them as scan.

use std::path::{Path, PathBuf};

use super::plan::LoadedPlan;
use super::{Failure, MergeArgs};
use crate::exit::Exit;
use crate::ignore::IgnoreList;
use crate::output::write_atomic;
use crate::report::{ImageStatus, Report};
use crate::scan::ScanRun;
use crate::shard::{FORMAT_VERSION, ShardRun};

/// The file a run from a plan leaves in its output directory for `dragnet merge`.
pub(super) const SHARD_RUN_FILE: &str = "scan-run.json";

pub(super) async fn run(args: MergeArgs) -> Result<Exit, Failure> {
    let today = time::OffsetDateTime::now_utc().date();
    let ignore =
        IgnoreList::load(&args.ignorefiles, &args.allowlists, today).map_err(Failure::usage)?;
    let file = super::plan::read(&args.plan)?;
    let runs = args
        .runs
        .iter()
        .map(|path| read_run(path))
        .collect::<Result<Vec<ShardRun>, Failure>>()?;
    let merged = crate::shard::merge(&file, &runs).map_err(Failure::usage)?;

    // What the merged report will show as failed or mixed, said up front.
    for spec in &merged.missing {
        let images = file
            .shards
            .iter()
            .find(|s| s.shard == *spec)
            .map_or(0, |s| s.digests.len());
        tracing::warn!(
            "shard {spec}: no scan run given; its {images} images are reported as not scanned"
        );
    }
    for spec in &merged.repeated {
        tracing::warn!("shard {spec} was given more than once; a successful scan wins");
    }
    for skew in &merged.version_skew {
        tracing::warn!("{skew}; the report names the first shard's versions");
    }
    tracing::info!(
        "merged {} scan runs: {} results for {} planned images",
        runs.len(),
        merged.run.results.len(),
        file.plan.targets.len()
    );

    let report = Report::build_ignoring(&file.plan, &merged.run, &ignore);
    let sarif_options = crate::sarif::SarifOptions {
        location: args.location_template.clone(),
        ..crate::sarif::SarifOptions::default()
    };
    super::scan::publish_with(&args.output_dir, &report, &sarif_options)?;
    let worst = report
        .images
        .iter()
        .filter(|image| image.status == ImageStatus::Scanned)
        .flat_map(|image| image.findings.iter().map(|f| f.severity))
        .max();
    Ok(super::scan::exit_code(
        report.has_failures(),
        worst,
        args.fail_on,
    ))
}

/// Writes `scan-run.json` for a run made from a plan.
pub(super) fn write_shard_run(
    dir: &Path,
    loaded: &LoadedPlan,
    run: &ScanRun,
) -> Result<(), Failure> {
    let shard_run = ShardRun {
        format_version: FORMAT_VERSION,
        plan_id: loaded.file.id.clone(),
        shard: loaded.shard,
        run: run.clone(),
    };
    let mut json = serde_json::to_string_pretty(&shard_run)?;
    json.push('\n');
    write_atomic(&dir.join(SHARD_RUN_FILE), json.as_bytes())?;
    Ok(())
}

/// Reads one shard's scan run from its output directory or the file itself.
fn read_run(path: &Path) -> Result<ShardRun, Failure> {
    let file: PathBuf = if path.is_dir() {
        path.join(SHARD_RUN_FILE)
    } else {
        path.to_path_buf()
    };
    let hint = "hint: pass the output directory of a `dragnet scan --plan` run";
    let text = std::fs::read_to_string(&file).map_err(|e| {
        Failure::usage(anyhow::anyhow!(
            "cannot read the scan run {}: {e}; {hint}",
            file.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Failure::usage(anyhow::anyhow!(
            "{} is not a dragnet scan run: {e}; {hint}",
            file.display()
        ))
    })
}
