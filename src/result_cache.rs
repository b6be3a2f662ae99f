//! Scan results kept between runs, keyed by everything that decides them.
//!
//! An image is named by its digest, so its contents never change; what Trivy reports for it
//! changes only with Trivy's version, the vulnerability DB, and the scan options. A result
//! stored under a key made of all four is therefore exactly what a new scan would say, and a
//! rerun over unchanged images under an unchanged DB scans nothing. Entries live under
//! `--cache-dir`; a missing, unreadable or corrupt entry is a miss, never an error, so the
//! directory is safe to delete at any time.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::finding::Finding;
use crate::scan::ScanOptions;

/// Bumped when the stored shape or the meaning of a finding changes.
const FORMAT: u32 = 1;

/// A result store for one Trivy version, DB and set of options.
#[derive(Debug, Clone)]
pub struct ResultCache {
    dir: PathBuf,
    salt: String,
}

/// What is stored for one digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedScan {
    /// The OS Trivy detected.
    pub os: Option<String>,
    /// The findings, as the scan reported them.
    pub findings: Vec<Finding>,
}

impl ResultCache {
    /// A cache under `dir` for results produced by `trivy_version` with the DB built at
    /// `db_updated_at` and these options.
    pub fn new(
        dir: &Path,
        trivy_version: &str,
        db_updated_at: &str,
        options: &ScanOptions,
    ) -> Self {
        let salt = serde_json::json!({
            "format": FORMAT,
            "trivy": trivy_version,
            "db": db_updated_at,
            "severities": options.severities,
            "ignore_unfixed": options.ignore_unfixed,
        })
        .to_string();
        ResultCache {
            dir: dir.to_path_buf(),
            salt,
        }
    }

    fn path(&self, digest: &str) -> PathBuf {
        let mut hasher = Sha256::new();
        hasher.update(self.salt.as_bytes());
        hasher.update([0]);
        hasher.update(digest.as_bytes());
        self.dir
            .join(format!("{}.json", hex::encode(hasher.finalize())))
    }

    /// The stored result for `digest`, if there is a usable one.
    pub fn get(&self, digest: &str) -> Option<CachedScan> {
        crate::output::read_cache_entry(&self.path(digest))
    }

    /// Stores a successful scan's result; a failure to store is logged and otherwise ignored.
    pub fn put(&self, digest: &str, scan: &CachedScan) {
        crate::output::write_cache_entry(&self.path(digest), scan);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;

    fn options(ignore_unfixed: bool) -> ScanOptions {
        ScanOptions {
            severities: vec![Severity::Critical, Severity::High],
            ignore_unfixed,
        }
    }

    #[test]
    fn a_result_is_found_only_under_the_same_trivy_db_and_options() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResultCache::new(
            dir.path(),
            "0.76.0",
            "2026-01-05T00:00:00Z",
            &options(false),
        );
        let scan = CachedScan {
            os: Some("debian 12.1".into()),
            findings: vec![],
        };
        cache.put("sha256:aa", &scan);

        assert_eq!(cache.get("sha256:aa"), Some(scan));
        assert_eq!(cache.get("sha256:bb"), None, "another digest");
        let newer_db = ResultCache::new(
            dir.path(),
            "0.76.0",
            "2026-01-06T00:00:00Z",
            &options(false),
        );
        assert_eq!(newer_db.get("sha256:aa"), None, "a new DB rescans");
        let other_trivy = ResultCache::new(
            dir.path(),
            "0.77.0",
            "2026-01-05T00:00:00Z",
            &options(false),
        );
        assert_eq!(other_trivy.get("sha256:aa"), None, "a new Trivy rescans");
        let unfixed =
            ResultCache::new(dir.path(), "0.76.0", "2026-01-05T00:00:00Z", &options(true));
        assert_eq!(unfixed.get("sha256:aa"), None, "other options rescan");
    }

    #[test]
    fn a_corrupt_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResultCache::new(dir.path(), "0.76.0", "db", &options(false));
        std::fs::write(cache.path("sha256:aa"), b"{not json").unwrap();
        assert_eq!(cache.get("sha256:aa"), None);
    }
}
