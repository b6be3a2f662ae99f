//! Discovery: an owner's container packages and their versions, through the Packages API.
//!
//! Package names are matched against `--pattern` globs whose `*` does not cross `/`, and
//! versions against the [`VersionFilter`]. Tokens that cannot list (the Actions `GITHUB_TOKEN`)
//! name packages instead; where even a package's versions are refused, the registry's own tag
//! list stands in. A package that cannot be read is recorded as a failure and discovery goes on;
//! only a failure to list the owner's packages, or a rate-limit budget too short to finish,
//! stops the run, and that one before it has spent anything.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use super::rate_limit::{Verdict, clock_time, in_words, judge};
use super::{GitHubClient, GitHubError, encode_segment};
use crate::filter::{Selection, VersionFilter};
use crate::inventory::{Inventory, Package, PackageFailure, Version, VersionSource};
use crate::registry::{RegistryClient, RegistryError};

/// Whether an owner is an organization or a user: their packages live under different paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OwnerKind {
    #[value(name = "org")]
    Organization,
    User,
}

impl OwnerKind {
    fn path_prefix(self) -> &'static str {
        match self {
            OwnerKind::Organization => "orgs",
            OwnerKind::User => "users",
        }
    }
}

/// What to discover.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// The organization or user login.
    pub owner: String,
    /// The owner's kind; asked of GitHub when not given.
    pub owner_kind: Option<OwnerKind>,
    /// Globs over package names; empty keeps every package.
    pub patterns: Vec<String>,
    /// Exact package names to read instead of listing the owner's packages (the way out for
    /// tokens that cannot list, such as the Actions `GITHUB_TOKEN`).
    pub packages: Vec<String>,
    /// Which versions of each package to keep.
    pub filter: VersionFilter,
    /// The registry the packages are pulled from (`ghcr.io`).
    pub registry: String,
    /// How many packages to read at once.
    pub concurrency: usize,
    /// The longest wait for a rate-limit reset dragnet accepts; a listing that would need a
    /// longer one stops before it starts.
    pub max_wait: Duration,
}

/// A `--pattern` that is not a valid glob.
#[derive(Debug, thiserror::Error)]
#[error("invalid --pattern `{pattern}`: {detail}")]
pub struct PatternError {
    pattern: String,
    detail: String,
}

/// Compiles package-name globs; `*` and `?` never match `/`.
pub fn compile_patterns(patterns: &[String]) -> Result<Option<GlobSet>, PatternError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| PatternError {
                pattern: pattern.clone(),
                detail: e.kind().to_string(),
            })?;
        set.add(glob);
    }
    set.build().map(Some).map_err(|e| PatternError {
        pattern: patterns.join(" "),
        detail: e.to_string(),
    })
}

#[derive(Debug, Deserialize)]
struct ApiUser {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct ApiPackage {
    name: String,
    #[serde(default)]
    repository: Option<ApiRepository>,
}

#[derive(Debug, Deserialize)]
struct ApiRepository {
    full_name: String,
}

#[derive(Debug, Deserialize)]
struct ApiVersion {
    id: u64,
    name: String,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    metadata: Option<ApiMetadata>,
}

#[derive(Debug, Deserialize)]
struct ApiMetadata {
    #[serde(default)]
    container: Option<ApiContainer>,
}

#[derive(Debug, Deserialize)]
struct ApiContainer {
    #[serde(default)]
    tags: Vec<String>,
}

impl GitHubClient {
    /// Asks GitHub whether `owner` is an organization or a user.
    pub async fn owner_kind(&self, owner: &str) -> Result<OwnerKind, GitHubError> {
        let what = format!("looking up owner `{owner}`");
        let url = self.url(&format!("users/{}", encode_segment(owner)))?;
        let (user, _): (ApiUser, _) = self.get_page(&what, url).await.map_err(|e| {
            with_hint(e, |status| match status {
                StatusCode::NOT_FOUND => Some(format!("no GitHub account is named `{owner}`")),
                _ => None,
            })
        })?;
        Ok(if user.kind == "Organization" {
            OwnerKind::Organization
        } else {
            OwnerKind::User
        })
    }

    /// Every container package of an owner.
    async fn list_packages(
        &self,
        owner: &str,
        kind: OwnerKind,
    ) -> Result<Vec<ApiPackage>, GitHubError> {
        let what = format!("listing the container packages of `{owner}`");
        let mut url = self.url(&format!(
            "{}/{}/packages",
            kind.path_prefix(),
            encode_segment(owner)
        ))?;
        url.query_pairs_mut()
            .append_pair("package_type", "container")
            .append_pair("per_page", "100");
        self.get_all(&what, url).await.map_err(|e| {
            with_hint(e, |status| match (status, kind) {
                (StatusCode::BAD_REQUEST, OwnerKind::Organization) => Some(
                    "the Actions GITHUB_TOKEN cannot list an organization's packages: name them \
                     with --package (their versions can be read by exact name), or use a \
                     classic personal access token with read:packages"
                        .into(),
                ),
                (StatusCode::UNAUTHORIZED, _) => Some(TOKEN_HINT.into()),
                (StatusCode::FORBIDDEN, _) => {
                    Some("the token needs the read:packages scope".into())
                }
                (StatusCode::NOT_FOUND, _) => Some(format!(
                    "no {} named `{owner}` is visible to this token; check --owner and \
                     --owner-type",
                    if kind == OwnerKind::Organization {
                        "organization"
                    } else {
                        "user"
                    }
                )),
                _ => None,
            })
        })
    }

    /// One package, by exact name.
    async fn package(
        &self,
        owner: &str,
        kind: OwnerKind,
        name: &str,
    ) -> Result<ApiPackage, GitHubError> {
        let what = format!("reading package `{name}` of `{owner}`");
        let url = self.url(&format!(
            "{}/{}/packages/container/{}",
            kind.path_prefix(),
            encode_segment(owner),
            encode_segment(name)
        ))?;
        let (package, _) = self
            .get_page(&what, url)
            .await
            .map_err(|e| package_hint(e, name))?;
        Ok(package)
    }

    /// Every version of one package.
    async fn list_versions(
        &self,
        owner: &str,
        kind: OwnerKind,
        name: &str,
    ) -> Result<Vec<ApiVersion>, GitHubError> {
        let what = format!("listing the versions of `{name}`");
        let mut url = self.url(&format!(
            "{}/{}/packages/container/{}/versions",
            kind.path_prefix(),
            encode_segment(owner),
            encode_segment(name)
        ))?;
        url.query_pairs_mut().append_pair("per_page", "100");
        self.get_all(&what, url)
            .await
            .map_err(|e| package_hint(e, name))
    }
}

const TOKEN_HINT: &str =
    "the token is missing or invalid: set GITHUB_TOKEN (or --token) to a token with read:packages";

fn package_hint(error: GitHubError, name: &str) -> GitHubError {
    with_hint(error, |status| match status {
        StatusCode::UNAUTHORIZED => Some(TOKEN_HINT.into()),
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Some(format!(
            "the package `{name}` does not exist or this token cannot read it: a PAT needs \
             read:packages; the Actions GITHUB_TOKEN needs the package's \"Manage Actions \
             access\" to grant this repository"
        )),
        _ => None,
    })
}

/// Adds a hint to a status error when `hint` has one for its status.
fn with_hint(error: GitHubError, hint: impl FnOnce(StatusCode) -> Option<String>) -> GitHubError {
    match error {
        GitHubError::Status {
            what,
            status,
            message,
            hint: None,
        } => {
            let hint = hint(status);
            GitHubError::Status {
                what,
                status,
                message,
                hint,
            }
        }
        other => other,
    }
}

/// Discovers the owner's matching packages and their versions.
pub async fn discover(
    client: &GitHubClient,
    options: &DiscoverOptions,
) -> Result<Inventory, DiscoverError> {
    let patterns = compile_patterns(&options.patterns)?;
    let owner = options.owner.as_str();
    let kind = match options.owner_kind {
        Some(kind) => kind,
        None => client.owner_kind(owner).await?,
    };
    tracing::debug!(?kind, "owner `{owner}`");

    // The packages: listed, or named by the user.
    let listed: Vec<(String, Option<String>)> = if options.packages.is_empty() {
        client
            .list_packages(owner, kind)
            .await?
            .into_iter()
            .map(|p| (p.name, p.repository.map(|r| r.full_name)))
            .collect()
    } else {
        options
            .packages
            .iter()
            .map(|name| (name.clone(), None))
            .collect()
    };
    let total = listed.len();
    let mut selected: Vec<(String, Option<String>)> = listed
        .into_iter()
        .filter(|(name, _)| patterns.as_ref().is_none_or(|set| set.is_match(name)))
        .collect();
    selected.sort();
    selected.dedup();
    tracing::info!(
        "found {total} container packages of {owner}; {} match{}",
        selected.len(),
        if options.patterns.is_empty() {
            String::new()
        } else {
            format!(" {}", options.patterns.join(" "))
        }
    );

    // Their versions, a few packages at a time.
    let named = !options.packages.is_empty();
    let results: Vec<(String, Result<Package, GitHubError>)> =
        futures::stream::iter(selected.into_iter().map(|(name, repository)| async move {
            let package =
                read_package(client, owner, kind, &name, repository, named, options).await;
            (name, package)
        }))
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;

    let mut packages = Vec::new();
    let mut failures = Vec::new();
    for (name, result) in results {
        match result {
            Ok(package) => packages.push(package),
            Err(error) => {
                tracing::warn!("{error}");
                failures.push(PackageFailure {
                    package: name,
                    cause: error.to_string(),
                });
            }
        }
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    failures.sort_by(|a, b| a.package.cmp(&b.package));
    let versions: usize = packages.iter().map(|p| p.versions.len()).sum();
    tracing::info!(
        "discovered {versions} versions in {} packages",
        packages.len()
    );

    Ok(Inventory {
        owner: owner.to_string(),
        registry: options.registry.clone(),
        packages,
        failures,
        selection: Default::default(),
    })
}

async fn read_package(
    client: &GitHubClient,
    owner: &str,
    kind: OwnerKind,
    name: &str,
    mut repository: Option<String>,
    named: bool,
    options: &DiscoverOptions,
) -> Result<Package, GitHubError> {
    // A package named by the user was not listed, so its linked repository is not known yet.
    if named {
        repository = client
            .package(owner, kind, name)
            .await?
            .repository
            .map(|r| r.full_name);
    }
    let versions = client.list_versions(owner, kind, name).await?;
    let all = versions.len();
    let versions: Vec<Version> = versions
        .into_iter()
        .map(|v| Version {
            id: v.id,
            digest: v.name,
            tags: v
                .metadata
                .and_then(|m| m.container)
                .map(|c| c.tags)
                .unwrap_or_default(),
            updated_at: v.updated_at,
        })
        .filter(|v| options.include_untagged || !v.tags.is_empty())
        .collect();
    tracing::debug!("{name}: {all} versions, {} kept", versions.len());
    Ok(Package {
        name: name.to_string(),
        repository,
        versions,
        source: Default::default(),
    })
}

/// Discovery could not even start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_does_not_cross_a_slash() {
        let set = compile_patterns(&["products/bfx/*".into()])
            .unwrap()
            .unwrap();
        assert!(set.is_match("products/bfx/bwa"));
        assert!(!set.is_match("products/bfx/sub/deeper"));
        assert!(!set.is_match("products/other/bwa"));
        let deep = compile_patterns(&["products/**".into()]).unwrap().unwrap();
        assert!(deep.is_match("products/bfx/sub/deeper"));
    }

    #[test]
    fn an_invalid_glob_names_the_pattern() {
        let error = compile_patterns(&["products/[bfx".into()])
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("invalid --pattern `products/[bfx`"),
            "{error}"
        );
    }
}
