//! The ETag cache: GitHub's answers to GETs, kept under `CACHE/github/etags/` so that a rerun
//! asks with `If-None-Match` and an unchanged answer costs a `304`, which GitHub does not count
//! against the rate limit.
//!
//! An entry is named by a SHA-256 of the URL and of the token (answers differ by token), so the
//! token itself is never written. Entries are gzipped; a missing, unreadable or foreign entry is
//! a miss, never an error, so the folder is safe to delete at any time.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::secret::Secret;

/// Bumped when the entry format changes, so that old entries are misses.
const FORMAT: u32 = 1;
/// The largest entry read back, uncompressed (a page of 100 versions is ~100 KiB).
const MAX_ENTRY: u64 = 32 * 1024 * 1024;

/// A folder of cached GitHub answers.
#[derive(Debug, Clone)]
pub struct EtagCache {
    dir: PathBuf,
}

/// One cached answer: the validator, the body, and where the list continued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedAnswer {
    /// The `ETag` GitHub sent.
    pub etag: String,
    /// The `rel="next"` URL of a list page, if there was one.
    pub next: Option<String>,
    /// The answer's body.
    pub body: Vec<u8>,
}

/// The first line of an entry; the body follows it.
#[derive(Serialize, Deserialize)]
struct Header {
    format: u32,
    key: String,
    etag: String,
    next: Option<String>,
}

impl EtagCache {
    /// A cache in `dir` (usually `CACHE/github/etags`); created on the first write.
    pub fn new(dir: impl Into<PathBuf>) -> EtagCache {
        EtagCache { dir: dir.into() }
    }

    /// The cache under a `--cache-dir`: `CACHE/github/etags`.
    pub fn under(cache_dir: &Path) -> EtagCache {
        EtagCache::new(cache_dir.join("github").join("etags"))
    }

    /// The key of a GET of `url` with `token`: neither can be read back from it.
    pub fn key(url: &str, token: Option<&Secret>) -> String {
        let mut hash = Sha256::new();
        hash.update(b"dragnet-etag\0");
        hash.update(url.as_bytes());
        hash.update(b"\0");
        if let Some(token) = token {
            hash.update(Sha256::digest(token.expose().as_bytes()));
        }
        hex::encode(hash.finalize())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.gz"))
    }

    /// Whether an entry exists for `key` (it may still turn out unreadable).
    pub fn contains(&self, key: &str) -> bool {
        self.path(key).is_file()
    }

    /// The cached answer for `key`, if a readable one exists.
    pub fn get(&self, key: &str) -> Option<CachedAnswer> {
        let file = std::fs::File::open(self.path(key)).ok()?;
        let mut text = Vec::new();
        let read = GzDecoder::new(file)
            .take(MAX_ENTRY + 1)
            .read_to_end(&mut text);
        if read.is_err() || text.len() as u64 > MAX_ENTRY {
            tracing::debug!("etag cache: entry {key} is unreadable; ignoring it");
            return None;
        }
        let newline = text.iter().position(|b| *b == b'\n')?;
        let header: Header = serde_json::from_slice(&text[..newline]).ok()?;
        if header.format != FORMAT || header.key != key {
            return None;
        }
        text.drain(..=newline);
        Some(CachedAnswer {
            etag: header.etag,
            next: header.next,
            body: text,
        })
    }

    /// Stores an answer. A failure to write only costs the next run a full answer, so it is
    /// logged, not returned.
    pub fn put(&self, key: &str, answer: &CachedAnswer) {
        if let Err(error) = self.try_put(key, answer) {
            tracing::debug!(
                "etag cache: could not write to {}: {error}",
                self.dir.display()
            );
        }
    }

    fn try_put(&self, key: &str, answer: &CachedAnswer) -> std::io::Result<()> {
        let header = Header {
            format: FORMAT,
            key: key.to_string(),
            etag: answer.etag.clone(),
            next: answer.next.clone(),
        };
        std::fs::create_dir_all(&self.dir)?;
        // A temporary file renamed into place: a concurrent reader sees the old entry or the
        // new one. No fsync: a torn entry after a crash is only a miss.
        let mut file = tempfile::NamedTempFile::new_in(&self.dir)?;
        {
            let mut gz = GzEncoder::new(file.as_file_mut(), Compression::fast());
            serde_json::to_writer(&mut gz, &header)?;
            gz.write_all(b"\n")?;
            gz.write_all(&answer.body)?;
            gz.finish()?;
        }
        file.persist(self.path(key)).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_an_answer_and_never_writes_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EtagCache::under(dir.path());
        let token = Secret::new("ghp_supersecret");
        let key = EtagCache::key("https://api.github.com/orgs/a/packages", Some(&token));
        assert!(cache.get(&key).is_none());

        let answer = CachedAnswer {
            etag: "W/\"abc\"".into(),
            next: Some("https://api.github.com/orgs/a/packages?page=2".into()),
            body: b"[{\"name\":\"x\"}]".to_vec(),
        };
        cache.put(&key, &answer);
        assert_eq!(cache.get(&key), Some(answer));

        for entry in std::fs::read_dir(dir.path().join("github/etags")).unwrap() {
            let path = entry.unwrap().path();
            let mut text = Vec::new();
            GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_end(&mut text)
                .unwrap();
            let text = String::from_utf8_lossy(&text);
            assert!(!text.contains("supersecret"), "{text}");
            assert!(!path.display().to_string().contains("supersecret"));
        }
    }

    #[test]
    fn keys_differ_by_url_and_by_token() {
        let a = Secret::new("a");
        let b = Secret::new("b");
        let url = "https://api.github.com/users/x";
        assert_ne!(EtagCache::key(url, Some(&a)), EtagCache::key(url, Some(&b)));
        assert_ne!(EtagCache::key(url, Some(&a)), EtagCache::key(url, None));
        assert_ne!(
            EtagCache::key(url, None),
            EtagCache::key("https://api.github.com/users/y", None)
        );
    }

    #[test]
    fn a_damaged_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = EtagCache::new(dir.path());
        let key = EtagCache::key("u", None);
        std::fs::write(dir.path().join(format!("{key}.gz")), b"not gzip").unwrap();
        assert!(cache.get(&key).is_none());
    }
}
