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

/// A `--packages-file` that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("could not read --packages-file {}: {source}", path.display())]
pub struct PackagesFileError {
    path: std::path::PathBuf,
    source: std::io::Error,
}

/// Reads package names from a file: one a line; blank lines and `#` comments are ignored.
pub fn read_packages_file(path: &Path) -> Result<Vec<String>, PackagesFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| PackagesFileError {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_packages(&text))
}

fn parse_packages(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| line.split_once('#').map_or(line, |(name, _)| name).trim())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
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
    #[serde(default)]
    version_count: Option<u64>,
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
                StatusCode::UNAUTHORIZED => Some(TOKEN_HINT.into()),
                StatusCode::NOT_FOUND => Some(format!(
                    "no GitHub account is named `{owner}`: check --owner"
                )),
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
                (StatusCode::BAD_REQUEST, OwnerKind::Organization) => Some(LISTING_HINT.into()),
                (StatusCode::UNAUTHORIZED, _) => Some(TOKEN_HINT.into()),
                (StatusCode::FORBIDDEN, _) => Some(
                    "the token lacks the read:packages scope: use a classic personal access \
                     token with read:packages, or name the packages with --package"
                        .into(),
                ),
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

    /// The first page of a package's versions.
    fn versions_url(&self, owner: &str, kind: OwnerKind, name: &str) -> Result<Url, GitHubError> {
        let mut url = self.url(&format!(
            "{}/{}/packages/container/{}/versions",
            kind.path_prefix(),
            encode_segment(owner),
            encode_segment(name)
        ))?;
        url.query_pairs_mut().append_pair("per_page", "100");
        Ok(url)
    }

    /// Every version of one package.
    async fn list_versions(
        &self,
        owner: &str,
        kind: OwnerKind,
        name: &str,
    ) -> Result<Vec<ApiVersion>, GitHubError> {
        let what = format!("listing the versions of `{name}`");
        let url = self.versions_url(owner, kind, name)?;
        self.get_all(&what, url)
            .await
            .map_err(|e| package_hint(e, name))
    }
}

const TOKEN_HINT: &str =
    "the token is missing or invalid: set GITHUB_TOKEN (or --token) to a token with read:packages";

const LISTING_HINT: &str = "the Actions GITHUB_TOKEN cannot list an organization's packages. \
     Either name them with --package NAME (repeatable) or --packages-file FILE, each package \
     granting this repository read access under its \"Manage Actions access\" settings; or use a \
     classic personal access token with read:packages";

fn package_hint(error: GitHubError, name: &str) -> GitHubError {
    with_hint(error, |status| match status {
        StatusCode::UNAUTHORIZED => Some(TOKEN_HINT.into()),
        StatusCode::FORBIDDEN => Some(format!(
            "this token may not read package `{name}`: a classic PAT needs read:packages; the \
             Actions GITHUB_TOKEN needs the package's \"Manage Actions access\" to grant this \
             repository"
        )),
        StatusCode::NOT_FOUND => Some(format!(
            "the package `{name}` does not exist or this token cannot see it: check the name; a \
             classic PAT needs read:packages; the Actions GITHUB_TOKEN needs the package's \
             \"Manage Actions access\" to grant this repository"
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

/// A package to read: its name, and what the listing already said about it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Wanted {
    name: String,
    repository: Option<String>,
    /// The version count the listing reported (`None` for a named package).
    version_count: Option<u64>,
}

/// Discovers the owner's matching packages and their versions.
///
/// `registry`, when given, lists the tags of a package whose versions the API refuses (403 or
/// 404), so that a token with registry access but no API access still finds the images.
pub async fn discover(
    client: &GitHubClient,
    registry: Option<&RegistryClient>,
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
    let named = !options.packages.is_empty();
    let listed: Vec<Wanted> = if named {
        options
            .packages
            .iter()
            .map(|name| Wanted {
                name: name.clone(),
                repository: None,
                version_count: None,
            })
            .collect()
    } else {
        client
            .list_packages(owner, kind)
            .await?
            .into_iter()
            .map(|p| Wanted {
                name: p.name,
                repository: p.repository.map(|r| r.full_name),
                version_count: p.version_count,
            })
            .collect()
    };
    let total = listed.len();
    let mut selected: Vec<Wanted> = listed
        .into_iter()
        .filter(|p| patterns.as_ref().is_none_or(|set| set.is_match(&p.name)))
        .collect();
    selected.sort();
    selected.dedup_by(|a, b| a.name == b.name);
    tracing::info!(
        "{} {total} container packages of {owner}; {} match{}",
        if named { "named" } else { "found" },
        selected.len(),
        if options.patterns.is_empty() {
            String::new()
        } else {
            format!(" {}", options.patterns.join(" "))
        }
    );

    // Enough budget to read them all, or a clear word now rather than a failure half-way.
    // The HTTP layer's longest wait is the longest the user accepts.
    let max_wait = client.http().policy().max_wait;
    check_budget(client, owner, kind, &selected, named, max_wait).await?;

    // Their versions, a few packages at a time.
    let results: Vec<(String, Result<ReadPackage, PackageError>)> =
        futures::stream::iter(selected.into_iter().map(|wanted| async move {
            let name = wanted.name.clone();
            let package = read_package(client, registry, owner, kind, wanted, named, options).await;
            (name, package)
        }))
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;

    let mut packages = Vec::new();
    let mut failures = Vec::new();
    let mut selection = Selection::default();
    for (name, result) in results {
        match result {
            Ok((package, counts)) => {
                selection.add(&counts);
                packages.push(package);
            }
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
    let left_out: Vec<String> = selection
        .reasons()
        .iter()
        .map(|(reason, count)| format!("{reason} {count}"))
        .collect();
    tracing::info!(
        "kept {versions} of {} versions in {} packages{}",
        selection.listed,
        packages.len(),
        if left_out.is_empty() {
            String::new()
        } else {
            format!(" (left out: {})", left_out.join(", "))
        }
    );
    let calls = client.calls();
    tracing::info!(
        "made {} GitHub API calls; {} were answered 304 Not Modified from the ETag cache and \
         cost no rate limit",
        calls.gets(),
        calls.not_modified()
    );

    Ok(Inventory {
        owner: owner.to_string(),
        registry: options.registry.clone(),
        packages,
        failures,
        selection,
    })
}

/// Checks the rate-limit budget against the calls reading `packages` needs: warns and goes on
/// when the budget resets within `max_wait`, stops when it does not.
async fn check_budget(
    client: &GitHubClient,
    owner: &str,
    kind: OwnerKind,
    packages: &[Wanted],
    named: bool,
    max_wait: Duration,
) -> Result<(), DiscoverError> {
    // A page per 100 versions (at least one), plus the package itself when it was named; a
    // first page the ETag cache holds will likely be answered 304, which costs nothing.
    let mut needed = 0u64;
    let mut revalidations = 0u64;
    for package in packages {
        let cached = client
            .versions_url(owner, kind, &package.name)
            .is_ok_and(|url| client.has_cached(&url));
        let pages = package.version_count.unwrap_or(1).div_ceil(100).max(1);
        if cached {
            revalidations += pages;
        } else {
            needed += pages;
        }
        if named {
            needed += 1;
        }
    }
    if needed == 0 {
        return Ok(());
    }
    let budget = match client.rate_limit().await {
        Ok(budget) => budget,
        Err(error) => {
            // GitHub Enterprise Server may run without rate limits, and answer 404 here.
            tracing::debug!("could not read the rate limit, going on: {error}");
            return Ok(());
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let story = format!(
        "reading {} packages needs about {needed} GitHub API calls{}; the token has {} of {} \
         left until the budget resets at {}",
        packages.len(),
        if revalidations > 0 {
            format!(" (and {revalidations} revalidations of cached answers, likely free)")
        } else {
            String::new()
        },
        budget.remaining,
        budget.limit,
        clock_time(budget.reset)
    );
    match judge(&budget, needed, now, max_wait) {
        Verdict::Enough => {
            tracing::debug!("{story}");
            Ok(())
        }
        Verdict::Pace { wait } => {
            tracing::warn!(
                "{story}: dragnet will pause when the budget runs out and go on after the \
                 reset; the listing will take about {} longer",
                in_words(wait)
            );
            Ok(())
        }
        Verdict::Short { wait } => Err(DiscoverError::Budget {
            story,
            wait: in_words(wait),
            max_wait: in_words(max_wait),
        }),
    }
}

/// A package read, with what its filters left out.
type ReadPackage = (Package, Selection);

/// Why one package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The API refused, and there was no registry to ask instead.
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    /// The API refused, and so did the registry's tag list.
    #[error("{api}\n  the registry's tag list could not stand in: {registry}")]
    Fallback {
        api: GitHubError,
        registry: RegistryError,
    },
}

async fn read_package(
    client: &GitHubClient,
    registry: Option<&RegistryClient>,
    owner: &str,
    kind: OwnerKind,
    wanted: Wanted,
    named: bool,
    options: &DiscoverOptions,
) -> Result<ReadPackage, PackageError> {
    let name = wanted.name.as_str();
    let mut repository = wanted.repository;

    // A package named by the user was not listed, so its linked repository is not known yet.
    let listed = async {
        if named {
            repository = client
                .package(owner, kind, name)
                .await?
                .repository
                .map(|r| r.full_name);
        }
        client.list_versions(owner, kind, name).await
    };
    let versions = match listed.await {
        Ok(versions) => versions,
        Err(api) => {
            let refused = matches!(
                api.status(),
                Some(StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
            );
            let Some(registry) = registry.filter(|_| refused) else {
                return Err(api.into());
            };
            let path = format!("{}/{name}", owner.to_lowercase());
            return match versions_from_registry(registry, &path, &options.filter, options).await {
                Ok((versions, counts)) => {
                    tracing::warn!(
                        "`{name}`: the API would not list its versions ({}); read {} tags from \
                         the registry's tag list instead",
                        api.status().map_or_else(String::new, |s| s.to_string()),
                        counts.listed
                    );
                    let package = Package {
                        name: name.to_string(),
                        repository,
                        versions,
                        source: VersionSource::RegistryTags,
                    };
                    Ok((package, counts))
                }
                Err(registry) => Err(PackageError::Fallback { api, registry }),
            };
        }
    };

    // An organization may hold a hundred thousand versions: keep each one tight (a parsed
    // one-tag list has room for four).
    let versions: Vec<Version> = versions
        .into_iter()
        .map(|v| {
            let mut tags = v
                .metadata
                .and_then(|m| m.container)
                .map(|c| c.tags)
                .unwrap_or_default();
            tags.shrink_to_fit();
            Version {
                id: v.id,
                digest: v.name,
                tags,
                updated_at: v.updated_at,
            }
        })
        .collect();
    let (mut versions, counts) = options.filter.apply(versions);
    versions.shrink_to_fit();
    tracing::debug!(
        "{name}: {} versions, {} kept",
        counts.listed,
        versions.len()
    );
    let package = Package {
        name: name.to_string(),
        repository,
        versions,
        source: VersionSource::Api,
    };
    Ok((package, counts))
}

/// A package's versions from the registry: its tags, filtered, each resolved to its digest and
/// grouped by digest. There are no ids and no times.
async fn versions_from_registry(
    registry: &RegistryClient,
    repository: &str,
    filter: &VersionFilter,
    options: &DiscoverOptions,
) -> Result<(Vec<Version>, Selection), RegistryError> {
    let tags = registry.tags(repository).await?;
    let (tags, counts) = filter.apply_to_tags(tags);
    if filter.needs_times() {
        tracing::warn!(
            "{repository}: the registry's tag list has no times, so --latest and \
             --updated-within keep all of its {} tags",
            tags.len()
        );
    }

    let digests: Vec<(String, Result<String, RegistryError>)> =
        futures::stream::iter(tags.into_iter().map(|tag| async move {
            let digest = registry.tag_digest(repository, &tag).await;
            (tag, digest)
        }))
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let mut by_digest: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (tag, digest) in digests {
        match digest {
            Ok(digest) => by_digest.entry(digest).or_default().push(tag),
            // Deleted between the list and now: nothing left to scan under that tag.
            Err(RegistryError::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) => tracing::debug!("{repository}: tag {tag} vanished after listing"),
            Err(error) => return Err(error),
        }
    }
    let versions = by_digest
        .into_iter()
        .map(|(digest, mut tags)| {
            tags.sort();
            Version {
                id: 0,
                digest,
                tags,
                updated_at: None,
            }
        })
        .collect();
    Ok((versions, counts))
}

/// Discovery could not even start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    GitHub(#[from] GitHubError),
    /// The rate-limit budget cannot cover the listing within the allowed wait.
    #[error(
        "{story}, {wait} from now, which is longer than --max-retry-wait ({max_wait}); \
         stopping before spending the budget\n  hint: rerun after the reset, pass \
         --max-retry-wait with a longer wait, narrow the run with --pattern or --package, or use \
         a token with a larger budget"
    )]
    Budget {
        story: String,
        wait: String,
        max_wait: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packages_file_ignores_blank_lines_and_comments() {
        let text = "# bioinformatics\nproducts/bfx/samtools\n\n  products/bfx/bwa  # aligner\n";
        assert_eq!(
            parse_packages(text),
            ["products/bfx/samtools", "products/bfx/bwa"]
        );
    }

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
