//! Resolutions kept between runs, so that a rerun asks the registry nothing it already knows.
//!
//! A manifest named by its digest never changes: what the registry says about a version's
//! digest (the platform manifests to scan, their platforms and sizes, and what an index lists)
//! is the same on every run, for the same registry, repository and `--platform` choice. Only
//! successful resolutions are stored, so a version that failed is asked about again. Entries live
//! under `--cache-dir`; a missing or corrupt entry is a miss, never an error, and the directory is
//! safe to delete at any time.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ResolvedVersion;
use crate::plan::Platform;

/// Bumped when the stored shape or the way a resolution is made changes.
const FORMAT: u32 = 1;

/// A store of resolutions made against one registry with one platform choice.
#[derive(Debug, Clone)]
pub struct ResolutionCache {
    dir: PathBuf,
    salt: String,
}

impl ResolutionCache {
    /// A cache in `cache_dir/resolutions` for the registry `host`, keeping `platforms` (empty:
    /// every platform).
    pub fn under(cache_dir: &Path, host: &str, platforms: &[Platform]) -> Self {
        let salt = serde_json::json!({
            "format": FORMAT,
            "host": host,
            "platforms": platforms,
        })
        .to_string();
        ResolutionCache {
            dir: cache_dir.join("resolutions"),
            salt,
        }
    }

    fn path(&self, repository: &str, digest: &str) -> PathBuf {
        let mut hasher = Sha256::new();
        for part in [self.salt.as_str(), repository, digest] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        self.dir
            .join(format!("{}.json", hex::encode(hasher.finalize())))
    }

    /// The stored resolution of `digest` in `repository`, if there is a usable one.
    pub fn get(&self, repository: &str, digest: &str) -> Option<ResolvedVersion> {
        crate::output::read_cache_entry(&self.path(repository, digest))
    }

    /// Stores a resolution; a failure to store is logged and otherwise ignored.
    pub fn put(&self, repository: &str, digest: &str, resolved: &ResolvedVersion) {
        crate::output::write_cache_entry(&self.path(repository, digest), resolved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::PlatformManifest;

    const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

    fn amd64() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    fn resolved() -> ResolvedVersion {
        ResolvedVersion {
            manifests: vec![PlatformManifest {
                digest: DIGEST.into(),
                platform: Some(amd64()),
                size: 1234,
            }],
            children: vec![DIGEST.into()],
        }
    }

    #[test]
    fn a_resolution_is_found_only_for_the_same_registry_repository_and_platforms() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResolutionCache::under(dir.path(), "ghcr.io", &[]);
        assert_eq!(cache.get("acme/tool", DIGEST), None);
        cache.put("acme/tool", DIGEST, &resolved());
        assert_eq!(cache.get("acme/tool", DIGEST), Some(resolved()));

        assert_eq!(cache.get("acme/other", DIGEST), None, "another repository");
        let elsewhere = ResolutionCache::under(dir.path(), "127.0.0.1:5000", &[]);
        assert_eq!(elsewhere.get("acme/tool", DIGEST), None, "another registry");
        let filtered = ResolutionCache::under(dir.path(), "ghcr.io", &[amd64()]);
        assert_eq!(
            filtered.get("acme/tool", DIGEST),
            None,
            "another --platform"
        );
    }

    #[test]
    fn a_corrupt_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResolutionCache::under(dir.path(), "ghcr.io", &[]);
        cache.put("acme/tool", DIGEST, &resolved());
        let path = cache.path("acme/tool", DIGEST);
        std::fs::write(&path, b"{\"manifests\": [tru").unwrap();
        assert_eq!(cache.get("acme/tool", DIGEST), None);
    }
}
