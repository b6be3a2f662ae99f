//! Writing output files so that a reader never sees half of one.
//!
//! Every file dragnet writes goes to a temporary name in the same directory and is renamed into
//! place, so an interrupted run leaves the old file or the new one, never a torn one. Names come
//! from dragnet, never from the API or registry, so nothing is written outside the output
//! directory.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("could not write {}: {source}", path.display())]
pub struct WriteError {
    path: PathBuf,
    source: std::io::Error,
}

/// Writes `contents` to `path` atomically, creating the parent directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    write_renamed(path, contents, true)
}

/// Stores `value` as a JSON cache entry at `path`, renamed into place without waiting for the
/// disk: a run may write thousands, and [`read_cache_entry`] treats one torn by a crash as
/// missing. A failure is logged and otherwise ignored: a cache that cannot be written misses.
pub fn write_cache_entry<T: serde::Serialize>(path: &Path, value: &T) {
    let stored = serde_json::to_vec(value)
        .map_err(|e| e.to_string())
        .and_then(|bytes| write_renamed(path, &bytes, false).map_err(|e| e.to_string()));
    if let Err(error) = stored {
        tracing::debug!(
            "could not write the cache entry {}: {error}",
            path.display()
        );
    }
}

/// The cache entry at `path`; `None` when it is missing, unreadable or corrupt.
pub fn read_cache_entry<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes)
        .map_err(|error| {
            tracing::debug!(
                "ignoring the unreadable cache entry {}: {error}",
                path.display()
            );
        })
        .ok()
}

fn write_renamed(path: &Path, contents: &[u8], sync: bool) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    file.write_all(contents).map_err(fail)?;
    if sync {
        file.as_file().sync_all().map_err(fail)?;
    }
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// Appends `contents` to `path` (for `$GITHUB_STEP_SUMMARY`, which the runner owns).
pub fn append(path: &Path, contents: &[u8]) -> Result<(), WriteError> {
    let fail = |source| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(fail)?;
    file.write_all(contents).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_file_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/results.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }
}
