//! `dragnet discover`: the inventory as a table or JSON on stdout.

use std::io::Write;

use serde::Serialize;

use super::{DiscoverArgs, Failure, Format};
use crate::exit::Exit;
use crate::github::discover::discover;
use crate::inventory::Inventory;

/// One row of `--format json`.
#[derive(Debug, Serialize)]
struct Row<'a> {
    package: &'a str,
    digest: &'a str,
    tags: &'a [String],
    image: String,
    repository: Option<&'a str>,
    updated_at: Option<&'a str>,
}

pub(super) async fn run(args: DiscoverArgs) -> Result<Exit, Failure> {
    let http = args.github.http(16)?;
    let github = args.github.client(&http)?;
    let inventory = discover(&github, &args.select.options(8)?).await?;

    let rows: Vec<Row> = rows(&inventory);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        Format::Table => write_table(&mut out, &rows)?,
    }
    for failure in &inventory.failures {
        tracing::error!("{}: {}", failure.package, failure.cause);
    }
    Ok(if inventory.failures.is_empty() {
        Exit::Success
    } else {
        Exit::PartialFailure
    })
}

fn rows(inventory: &Inventory) -> Vec<Row<'_>> {
    inventory
        .packages
        .iter()
        .flat_map(|package| {
            package.versions.iter().map(move |version| Row {
                package: &package.name,
                digest: &version.digest,
                tags: &version.tags,
                image: inventory.image_ref(&package.name, &version.digest),
                repository: package.repository.as_deref(),
                updated_at: version.updated_at.as_deref(),
            })
        })
        .collect()
}

fn write_table(out: &mut impl Write, rows: &[Row]) -> std::io::Result<()> {
    let tags = |row: &Row| {
        if row.tags.is_empty() {
            "(untagged)".to_string()
        } else {
            row.tags.join(",")
        }
    };
    let package_width = rows
        .iter()
        .map(|r| r.package.chars().count())
        .chain([7])
        .max()
        .unwrap_or(7);
    let tags_width = rows
        .iter()
        .map(|r| tags(r).chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    writeln!(
        out,
        "{:package_width$}  {:tags_width$}  DIGEST",
        "PACKAGE", "TAGS"
    )?;
    for row in rows {
        // Names come from the API: never let a control character reach the terminal.
        let clean = |s: &str| {
            s.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect::<String>()
        };
        writeln!(
            out,
            "{:package_width$}  {:tags_width$}  {}",
            clean(row.package),
            clean(&tags(row)),
            clean(row.digest)
        )?;
    }
    Ok(())
}
