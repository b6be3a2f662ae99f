//! The discovery stage's output: an owner's container packages and their versions, as the
//! GitHub Packages API described them.
//!
//! Nothing here has touched the registry yet: a version's digest may name an image index or a
//! single manifest, and only [`crate::registry`] can tell which.

use serde::{Deserialize, Serialize};

use crate::filter::Selection;

/// Everything discovery found for one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// The owner as given by the user (an organization or a user login).
    pub owner: String,
    /// The registry host the packages live in, such as `ghcr.io` or `127.0.0.1:5000`.
    pub registry: String,
    /// The matching packages, sorted by name.
    pub packages: Vec<Package>,
    /// Packages whose versions could not be listed, with the reason.
    #[serde(default)]
    pub failures: Vec<PackageFailure>,
    /// What the version filters left out, summed over the packages.
    #[serde(default)]
    pub selection: Selection,
}

/// A package discovery could name but not list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFailure {
    pub package: String,
    pub cause: String,
}

/// One container package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// The package name, which may contain slashes (`products/bfx/samtools`).
    pub name: String,
    /// The repository the package is linked to (`owner/repo`), when it is linked.
    pub repository: Option<String>,
    /// The versions kept after filtering, newest first as the API returns them.
    pub versions: Vec<Version>,
    /// Where the versions came from: the Packages API, or the registry's tag list when the API
    /// would not list them.
    #[serde(default, skip_serializing_if = "VersionSource::is_api")]
    pub source: VersionSource,
}

/// Where a package's versions were read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionSource {
    /// The Packages API's version list: ids, digests, tags and times.
    #[default]
    Api,
    /// The registry's `/v2/<name>/tags/list`, each tag resolved to its digest: no ids (0) and
    /// no times.
    RegistryTags,
}

impl VersionSource {
    fn is_api(&self) -> bool {
        *self == VersionSource::Api
    }
}

/// One package version: a manifest digest and the tags that point at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// GitHub's numeric id of the version.
    pub id: u64,
    /// The manifest digest (`sha256:…`), which is the version's `name` in the API.
    pub digest: String,
    /// The tags pointing at this digest; empty for an untagged version.
    pub tags: Vec<String>,
    /// When the version was last updated, as the API said (RFC 3339).
    pub updated_at: Option<String>,
}

impl Inventory {
    /// The registry path of a package: the owner lowercased, as registries require, then the
    /// package name (`acme/products/bfx/samtools`).
    pub fn repository_path(&self, package: &str) -> String {
        format!("{}/{}", self.owner.to_lowercase(), package)
    }

    /// A pullable reference to one version by digest (`ghcr.io/acme/products/bfx/x@sha256:…`).
    pub fn image_ref(&self, package: &str, digest: &str) -> String {
        format!(
            "{}/{}@{}",
            self.registry,
            self.repository_path(package),
            digest
        )
    }
}
