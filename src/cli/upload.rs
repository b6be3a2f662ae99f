//! `dragnet upload`, and the upload step of `dragnet scan --upload`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::{Failure, TargetArgs, UploadArgs};
use crate::exit::Exit;
use crate::github::GitHubClient;
use crate::github::code_scanning::UploadTarget;

/// What happened to one SARIF file.
#[derive(Debug, Clone, Serialize)]
pub(super) struct UploadReceipt {
    pub file: String,
    pub repository: String,
    pub sarif_id: Option<String>,
    pub processing_status: String,
    pub errors: Vec<String>,
}

impl UploadReceipt {
    pub fn succeeded(&self) -> bool {
        self.processing_status == "complete"
    }
}

pub(super) async fn run(args: UploadArgs) -> Result<Exit, Failure> {
    let target = args.target.upload_target()?;
    let files = sarif_files(&args.paths).map_err(Failure::usage)?;
    let http = args.github.http(4)?;
    let github = args.github.client(&http)?;

    let receipts = upload_all(&github, &target, &files, &args.target).await;
    println!("{}", serde_json::to_string_pretty(&receipts)?);
    Ok(if receipts.iter().all(UploadReceipt::succeeded) {
        Exit::Success
    } else {
        Exit::PartialFailure
    })
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

/// Uploads each file in turn and waits for GitHub to process it; one failure does not stop the
/// others.
pub(super) async fn upload_all(
    github: &GitHubClient,
    target: &UploadTarget,
    files: &[PathBuf],
    options: &TargetArgs,
) -> Vec<UploadReceipt> {
    let mut receipts = Vec::new();
    for (index, file) in files.iter().enumerate() {
        let receipt = upload_one(
            github,
            target,
            file,
            options.poll_interval,
            options.max_polls,
        )
        .await;
        match receipt.succeeded() {
            true => tracing::info!(
                "uploaded {}/{} {} to {}: {}",
                index + 1,
                files.len(),
                receipt.file,
                target.repository,
                receipt.processing_status
            ),
            false => tracing::error!(
                "upload of {} to {} {}: {}",
                receipt.file,
                target.repository,
                receipt.processing_status,
                receipt.errors.join("; ")
            ),
        }
        receipts.push(receipt);
    }
    receipts
}

async fn upload_one(
    github: &GitHubClient,
    target: &UploadTarget,
    file: &Path,
    interval: Duration,
    max_polls: usize,
) -> UploadReceipt {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut receipt = UploadReceipt {
        file: name.clone(),
        repository: target.repository.clone(),
        sarif_id: None,
        processing_status: "not sent".into(),
        errors: Vec::new(),
    };
    let sarif = match std::fs::read(file) {
        Ok(sarif) => sarif,
        Err(error) => {
            receipt
                .errors
                .push(format!("cannot read {}: {error}", file.display()));
            return receipt;
        }
    };
    let sent = match github.upload_sarif(target, &name, &sarif, None).await {
        Ok(sent) => sent,
        Err(error) => {
            receipt.errors.push(error.to_string());
            return receipt;
        }
    };
    receipt.sarif_id = Some(sent.id.clone());
    match github
        .wait_for_processing(target, &sent.id, interval, max_polls)
        .await
    {
        Ok(status) => {
            receipt.processing_status = status.processing_status;
            receipt.errors = status.errors.unwrap_or_default();
            if receipt.processing_status == "pending" {
                receipt.errors.push(format!(
                    "GitHub had not processed the upload after {max_polls} checks; see its \
                     status later with the id {}",
                    sent.id
                ));
            }
        }
        Err(error) => {
            receipt.processing_status = "unknown".into();
            receipt.errors.push(error.to_string());
        }
    }
    receipt
}
