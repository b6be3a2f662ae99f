//! `dragnet plan`: discover and resolve once, cut the unique images into shards of about equal
//! work, write the plan, and print the matrix for a job per shard (`scan --plan --shard`).
//!
//! The plan file carries everything the shard jobs need, so they neither list packages nor
//! resolve tags again, and `merge` can tell which images each shard owed.

use std::path::Path;

use super::{Failure, PlanArgs};
use crate::exit::Exit;
use crate::output::write_atomic;
use crate::plan::Plan;
use crate::registry::Credentials;
use crate::shard::{PlanFile, ShardSpec};

/// A plan read for `scan --plan`, cut down to the shard asked for.
pub(super) struct LoadedPlan {
    /// The whole plan file.
    pub file: PlanFile,
    /// The shard to scan, or none for the whole plan.
    pub shard: Option<ShardSpec>,
    /// The targets to scan and the packages they belong to.
    pub plan: Plan,
}

pub(super) async fn run(args: PlanArgs) -> Result<Exit, Failure> {
    let http = args.github.http(16)?;
    let github = args.github.client(&http)?;
    let password = args
        .registry_password
        .clone()
        .or_else(|| args.github.token.clone());
    let credentials = password.map(|password| Credentials {
        username: args.registry_username.clone(),
        password,
    });
    let plan =
        super::scan::discover_and_plan(&github, &http, &args.select, &args.platforms, credentials)
            .await?;

    let file = PlanFile::new(plan, usize::from(args.shards));
    for shard in &file.shards {
        tracing::info!(
            "shard {}: {} images, {:.1} MiB expected work",
            shard.shard,
            shard.digests.len(),
            shard.work as f64 / (1024.0 * 1024.0)
        );
    }
    let mut json = serde_json::to_string_pretty(&file)?;
    json.push('\n');
    write_atomic(&args.output, json.as_bytes())?;
    tracing::info!(
        "wrote {} ({} images in {} shards)",
        args.output.display(),
        file.plan.targets.len(),
        file.shards.len()
    );

    let matrix = file.matrix().to_string();
    println!("{matrix}");
    super::actions::set_outputs(&[
        ("matrix", matrix),
        ("shards", file.shards.len().to_string()),
        ("images", file.plan.targets.len().to_string()),
        ("plan", args.output.display().to_string()),
    ])?;
    Ok(Exit::Success)
}

/// Reads a plan file; a missing or malformed one is a usage error naming the file.
pub(super) fn read(path: &Path) -> Result<PlanFile, Failure> {
    let hint = "hint: pass the plan.json that `dragnet plan` wrote";
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(anyhow::anyhow!(
            "cannot read the plan {}: {e}; {hint}",
            path.display()
        ))
    })?;
    let file: PlanFile = serde_json::from_str(&text).map_err(|e| {
        Failure::usage(anyhow::anyhow!(
            "{} is not a dragnet plan: {e}; {hint}",
            path.display()
        ))
    })?;
    file.check_version().map_err(Failure::usage)?;
    Ok(file)
}

/// Reads a plan file and keeps the targets of one shard (or all of them).
pub(super) fn load(path: &Path, shard: Option<ShardSpec>) -> Result<LoadedPlan, Failure> {
    let file = read(path)?;
    let plan = match shard {
        Some(spec) => file.shard_plan(spec).map_err(Failure::usage)?,
        None => file.plan.clone(),
    };
    match shard {
        Some(spec) => tracing::info!(
            "shard {spec} of {}: {} of {} images",
            path.display(),
            plan.targets.len(),
            file.plan.targets.len()
        ),
        None => tracing::info!(
            "the whole plan {}: {} images",
            path.display(),
            plan.targets.len()
        ),
    }
    Ok(LoadedPlan { file, shard, plan })
}
