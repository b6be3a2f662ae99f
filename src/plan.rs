//! The plan stage: every unique platform manifest digest becomes one scan target.
//!
//! Tags, versions and even packages often share a digest; scanning by digest means each image
//! is pulled and scanned once, and its findings are fanned back out to every tag that points at
//! it. [`build`] is pure so that it can be tested without a registry and rerun from saved data.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::filter::Selection;
use crate::inventory::{Inventory, Version};

/// The work a scan will do, with everything the report needs to name what it covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The owner the inventory came from.
    pub owner: String,
    /// The registry host the targets are pulled from.
    pub registry: String,
    /// Every package discovery kept, even one with no version left to scan.
    pub packages: Vec<PlannedPackage>,
    /// One target per unique platform manifest digest: each package's largest first, largest
    /// first, then the others, largest first (see [`build`]).
    pub targets: Vec<ScanTarget>,
    /// Versions the registry could not resolve, with the reason.
    pub unresolved: Vec<ResolveFailure>,
    /// What discovery's filters left out, and the untagged versions recognised as platforms of
    /// a tagged multi-platform image.
    #[serde(default)]
    pub selection: Selection,
}

/// A package as the plan knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPackage {
    /// The package name (`products/bfx/samtools`).
    pub name: String,
    /// The linked repository (`owner/repo`), when there is one.
    pub repository: Option<String>,
}

/// One image to scan: a platform manifest, named by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanTarget {
    /// The platform manifest's digest (`sha256:…`).
    pub digest: String,
    /// A pullable reference by digest (`ghcr.io/acme/products/bfx/x@sha256:…`).
    pub image: String,
    /// The platform, when the registry said (from the index or the image config).
    pub platform: Option<Platform>,
    /// The compressed size of the config and layers in bytes: the work the scan will do.
    pub size: u64,
    /// Every package version and tag that leads to this manifest.
    pub refs: Vec<TargetRef>,
}

/// One way of reaching a target: a package version (maybe an index) and its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRef {
    /// The package name.
    pub package: String,
    /// The digest of the package version (the index's digest for a multi-platform image).
    pub version_digest: String,
    /// The version's tags.
    pub tags: Vec<String>,
}

/// An OS and architecture (`linux/amd64`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// A package version that could not become a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveFailure {
    pub package: String,
    pub version_digest: String,
    pub tags: Vec<String>,
    /// What went wrong, in words a user can act on.
    pub cause: String,
}

/// A platform manifest the registry listed for a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformManifest {
    pub digest: String,
    pub platform: Option<Platform>,
    pub size: u64,
}

/// What the registry said about one package version.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub package: String,
    pub version: Version,
    /// The platform manifests to scan, or why there are none.
    pub manifests: Result<Vec<PlatformManifest>, String>,
    /// For an untagged version, the digest of the tagged index in the same package that lists
    /// it: it is scanned as that image's platform, not as an orphan.
    pub platform_of: Option<String>,
}

/// Folds resolved versions into a deduplicated plan.
///
/// A digest reached from several packages is pulled from the first package that names it; its
/// refs list them all. Targets are ordered largest first so that the slowest scans start early,
/// except that every package's largest image comes before any package's second: two scans
/// running at once are then rarely of one package, and the layers a package's images share are
/// fetched once, by the first, into the shared cache before the others start.
pub fn build(inventory: &Inventory, resolutions: Vec<Resolution>) -> Plan {
    let mut targets: BTreeMap<String, ScanTarget> = BTreeMap::new();
    // A package whose versions could not be listed is reported like an unresolvable version.
    let mut unresolved: Vec<ResolveFailure> = inventory
        .failures
        .iter()
        .map(|f| ResolveFailure {
            package: f.package.clone(),
            version_digest: String::new(),
            tags: Vec::new(),
            cause: f.cause.clone(),
        })
        .collect();

    let mut selection = inventory.selection;
    for resolution in resolutions {
        if let Some(index) = &resolution.platform_of {
            tracing::debug!(
                "{}@{}: a platform of {index}, scanned through it",
                resolution.package,
                resolution.version.digest
            );
            selection.platform_children += 1;
            continue;
        }
        let manifests = match resolution.manifests {
            Ok(manifests) => manifests,
            Err(cause) => {
                unresolved.push(ResolveFailure {
                    package: resolution.package,
                    version_digest: resolution.version.digest,
                    tags: resolution.version.tags,
                    cause,
                });
                continue;
            }
        };
        for manifest in manifests {
            let target = targets
                .entry(manifest.digest.clone())
                .or_insert_with(|| ScanTarget {
                    image: inventory.image_ref(&resolution.package, &manifest.digest),
                    digest: manifest.digest.clone(),
                    platform: manifest.platform.clone(),
                    size: manifest.size,
                    refs: Vec::new(),
                });
            let reference = TargetRef {
                package: resolution.package.clone(),
                version_digest: resolution.version.digest.clone(),
                tags: resolution.version.tags.clone(),
            };
            if !target.refs.contains(&reference) {
                target.refs.push(reference);
            }
        }
    }

    let mut targets: Vec<ScanTarget> = targets.into_values().collect();
    targets.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.digest.cmp(&b.digest)));
    let mut seen = BTreeSet::new();
    let mut ranked: Vec<(bool, ScanTarget)> = targets
        .into_iter()
        .map(|t| {
            let package = t.refs.first().map(|r| r.package.clone());
            (!seen.insert(package), t)
        })
        .collect();
    // Stable: each group stays largest first.
    ranked.sort_by_key(|(later, _)| *later);
    let targets: Vec<ScanTarget> = ranked.into_iter().map(|(_, t)| t).collect();
    Plan {
        owner: inventory.owner.clone(),
        registry: inventory.registry.clone(),
        packages: inventory
            .packages
            .iter()
            .map(|p| PlannedPackage {
                name: p.name.clone(),
                repository: p.repository.clone(),
            })
            .collect(),
        targets,
        unresolved,
        selection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Package;

    fn version(digest: &str, tags: &[&str]) -> Version {
        Version {
            id: 1,
            digest: digest.to_string(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            updated_at: None,
        }
    }

    fn manifest(digest: &str, size: u64) -> PlatformManifest {
        PlatformManifest {
            digest: digest.to_string(),
            platform: None,
            size,
        }
    }

    fn inventory() -> Inventory {
        let package = |name: &str| Package {
            name: name.to_string(),
            repository: None,
            versions: vec![],
            source: Default::default(),
        };
        Inventory {
            owner: "Acme".into(),
            registry: "ghcr.io".into(),
            packages: vec![package("a"), package("b")],
            failures: vec![],
            selection: Selection::default(),
        }
    }

    #[test]
    fn dedupes_tags_and_packages_sharing_a_digest() {
        let resolutions = vec![
            Resolution {
                package: "a".into(),
                version: version("sha256:1", &["1.0", "latest"]),
                manifests: Ok(vec![manifest("sha256:1", 10)]),
                platform_of: None,
            },
            Resolution {
                package: "b".into(),
                version: version("sha256:1", &["stable"]),
                manifests: Ok(vec![manifest("sha256:1", 10)]),
                platform_of: None,
            },
            Resolution {
                package: "b".into(),
                version: version("sha256:idx", &["multi"]),
                manifests: Ok(vec![manifest("sha256:2", 50), manifest("sha256:1", 10)]),
                platform_of: None,
            },
        ];
        let plan = build(&inventory(), resolutions);

        assert_eq!(plan.targets.len(), 2);
        assert_eq!(plan.targets[0].digest, "sha256:2", "largest first");
        let shared = &plan.targets[1];
        assert_eq!(shared.image, "ghcr.io/acme/a@sha256:1");
        let reached: Vec<_> = shared
            .refs
            .iter()
            .map(|r| (r.package.as_str(), r.tags.join(",")))
            .collect();
        assert_eq!(
            reached,
            [
                ("a", "1.0,latest".into()),
                ("b", "stable".into()),
                ("b", "multi".into())
            ]
        );
    }

    #[test]
    fn keeps_unresolvable_versions_with_their_cause() {
        let resolutions = vec![Resolution {
            package: "a".into(),
            version: version("sha256:gone", &["old"]),
            manifests: Err("manifest unknown".into()),
            platform_of: None,
        }];
        let plan = build(&inventory(), resolutions);
        assert!(plan.targets.is_empty());
        assert_eq!(plan.unresolved[0].tags, ["old"]);
        assert_eq!(plan.unresolved[0].cause, "manifest unknown");
    }

    #[test]
    fn each_packages_largest_image_comes_before_any_second_image() {
        let resolution = |package: &str, digest: &str, size| Resolution {
            package: package.into(),
            version: version(digest, &["t"]),
            manifests: Ok(vec![manifest(digest, size)]),
            platform_of: None,
        };
        let resolutions = vec![
            resolution("a", "sha256:a1", 100),
            resolution("a", "sha256:a2", 90),
            resolution("a", "sha256:a3", 80),
            resolution("b", "sha256:b1", 50),
            resolution("b", "sha256:b2", 40),
        ];
        let plan = build(&inventory(), resolutions);
        let order: Vec<&str> = plan.targets.iter().map(|t| t.digest.as_str()).collect();
        assert_eq!(
            order,
            [
                "sha256:a1",
                "sha256:b1",
                "sha256:a2",
                "sha256:a3",
                "sha256:b2"
            ]
        );
    }
}
