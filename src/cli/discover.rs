//! `dragnet discover`: the inventory as a table or JSON on stdout.
//!
//! Rows are written as they are produced, never collected, so that an organization with a
//! hundred thousand versions is printed in the memory its inventory already takes.

use std::io::Write;

use serde::Serialize;

use super::{DiscoverArgs, Failure, Format};
use crate::exit::Exit;
use crate::github::discover::discover;
use crate::inventory::Inventory;
use crate::registry::{Credentials, RegistryClient, RegistryConfig};

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
    let github = args
        .github
        .client(&http)?
        .with_etag_cache(args.select.etag_cache()?);
    // The registry's tag list stands in for packages whose versions the API refuses.
    let password = args
        .registry_password
        .clone()
        .or_else(|| args.github.token.clone());
    let registry = RegistryClient::new(
        RegistryConfig {
            host: args.select.registry.clone(),
            credentials: password.map(|password| Credentials {
                username: args.registry_username.clone(),
                password,
            }),
            platforms: Vec::new(),
        },
        http.clone(),
    );
    let inventory = discover(&github, Some(&registry), &args.select.options(8)?).await?;

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match args.format {
        Format::Json => {
            use serde::Serializer as _;
            let mut json = serde_json::Serializer::pretty(&mut out);
            json.collect_seq(rows(&inventory))?;
            writeln!(out)?;
        }
        Format::Table => write_table(&mut out, &inventory)?,
    }
    out.flush()?;
    for failure in &inventory.failures {
        tracing::error!("{}: {}", failure.package, failure.cause);
    }
    Ok(if inventory.failures.is_empty() {
        Exit::Success
    } else {
        Exit::PartialFailure
    })
}

fn rows(inventory: &Inventory) -> impl Iterator<Item = Row<'_>> {
    inventory.packages.iter().flat_map(move |package| {
        package.versions.iter().map(move |version| Row {
            package: &package.name,
            digest: &version.digest,
            tags: &version.tags,
            image: inventory.image_ref(&package.name, &version.digest),
            repository: package.repository.as_deref(),
            updated_at: version.updated_at.as_deref(),
        })
    })
}

fn write_table(out: &mut impl Write, inventory: &Inventory) -> std::io::Result<()> {
    let tags = |row: &Row| {
        if row.tags.is_empty() {
            "(untagged)".to_string()
        } else {
            row.tags.join(",")
        }
    };
    let package_width = rows(inventory)
        .map(|r| r.package.chars().count())
        .chain([7])
        .max()
        .unwrap_or(7);
    let tags_width = rows(inventory)
        .map(|r| tags(&r).chars().count())
        .chain([4])
        .max()
        .unwrap_or(4);
    writeln!(
        out,
        "{:package_width$}  {:tags_width$}  DIGEST",
        "PACKAGE", "TAGS"
    )?;
    for row in rows(inventory) {
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
            clean(&tags(&row)),
            clean(row.digest)
        )?;
    }
    Ok(())
}
