//! `dragnet scan --sbom`: a CycloneDX SBOM of every scanned image, from Trivy.
//!
//! One file per unique image digest (`sbom/<hex digest>.cdx.json`), as Trivy wrote it, and
//! `sbom/index.json` saying which packages and tags lead to each file, or why an SBOM is
//! missing. A failed SBOM is reported like a failed scan: the others are still written.

use std::path::Path;

use futures::StreamExt;
use serde::Serialize;

use super::Failure;
use crate::output::write_atomic;
use crate::report::{ImageStatus, Report};
use crate::trivy::Trivy;

/// One line of `sbom/index.json`.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    digest: &'a str,
    image: &'a str,
    /// `package:tag` for every tag leading to the image (`package@<version digest>` untagged).
    refs: Vec<String>,
    /// The file, relative to `sbom/`, when it was written.
    file: Option<String>,
    /// Why it was not, when it was not.
    error: Option<String>,
}

/// Writes the SBOMs of the report's scanned images under `dir/sbom`; returns whether all of
/// them were written.
pub(super) async fn write_sboms(
    trivy: &Trivy,
    report: &Report,
    dir: &Path,
    concurrency: usize,
) -> Result<bool, Failure> {
    let sbom_dir = dir.join("sbom");
    let scanned: Vec<_> = report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Scanned)
        .collect();
    tracing::info!("writing the SBOMs of {} images", scanned.len());
    let outcomes: Vec<_> = futures::stream::iter(scanned.iter())
        .map(|image| async move { (image, trivy.sbom(&image.image).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;

    let mut entries = Vec::new();
    let mut all = true;
    for (image, outcome) in outcomes {
        let refs = image
            .refs
            .iter()
            .flat_map(|r| {
                if r.tags.is_empty() {
                    vec![format!("{}@{}", r.package, r.version_digest)]
                } else {
                    r.tags
                        .iter()
                        .map(|t| format!("{}:{t}", r.package))
                        .collect()
                }
            })
            .collect();
        let hex = image
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&image.digest);
        let (file, error) = match outcome {
            Ok(bytes) => {
                let name = format!("{hex}.cdx.json");
                write_atomic(&sbom_dir.join(&name), &bytes)?;
                (Some(name), None)
            }
            Err(error) => {
                tracing::warn!("no SBOM for {}: {error}", image.image);
                all = false;
                (None, Some(error.to_string()))
            }
        };
        entries.push(Entry {
            digest: &image.digest,
            image: &image.image,
            refs,
            file,
            error,
        });
    }
    entries.sort_by(|a, b| a.digest.cmp(b.digest));
    write_atomic(
        &sbom_dir.join("index.json"),
        serde_json::to_string_pretty(&entries)?.as_bytes(),
    )?;
    Ok(all)
}
