//! Reproducible layer tars: entries sorted by path, every parent directory present, mtime 0,
//! uid/gid 0, then gzip with fixed settings (level 6, no name, mtime 0).
//!
//! The diff ID (sha256 of the uncompressed tar) goes in the image config; the digest of the
//! gzipped bytes names the blob in the manifest.

use std::collections::BTreeMap;
use std::io::Write as _;

use anyhow::{Context as _, bail};

use super::{Blob, OCI_LAYER_GZIP, sha256_digest};

/// Mode given to the parent directories a layer adds by itself.
const DIRECTORY_MODE: u32 = 0o755;

/// One file to put in a layer.
#[derive(Debug, Clone, Copy)]
pub struct LayerEntry<'a> {
    /// A relative path such as `etc/debian_version`; a leading `/` is ignored.
    pub path: &'a str,
    /// The file's bytes.
    pub contents: &'a [u8],
    /// Permission bits, such as `0o644`.
    pub mode: u32,
}

/// A built layer.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The gzipped tar, as pushed.
    pub blob: Blob,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// Size of the uncompressed tar in bytes.
    pub uncompressed_size: u64,
}

enum Node<'a> {
    Directory,
    File { contents: &'a [u8], mode: u32 },
}

/// Builds a layer holding `entries` and their parent directories.
pub fn build_layer<'a>(entries: impl IntoIterator<Item = LayerEntry<'a>>) -> anyhow::Result<Layer> {
    let tar = layer_tar(entries)?;
    let mut gzip = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::new(6));
    gzip.write_all(&tar).context("gzipping a layer")?;
    let gzipped = gzip.finish().context("gzipping a layer")?;

    Ok(Layer {
        blob: Blob::new(OCI_LAYER_GZIP, gzipped),
        diff_id: sha256_digest(&tar),
        uncompressed_size: tar.len() as u64,
    })
}

/// The uncompressed tar of a layer.
pub fn layer_tar<'a>(entries: impl IntoIterator<Item = LayerEntry<'a>>) -> anyhow::Result<Vec<u8>> {
    // Collect into a sorted tree of paths, adding each file's parents.
    let mut nodes: BTreeMap<String, Node<'a>> = BTreeMap::new();
    for entry in entries {
        let path = entry.path.trim_start_matches('/');
        if path.is_empty() || path.ends_with('/') || path.split('/').any(|c| c == ".." || c == ".")
        {
            bail!(
                "layer path {:?} must name a file by a plain relative path",
                entry.path
            );
        }
        for (end, _) in path.match_indices('/') {
            let parent = &path[..end];
            if let Some(Node::File { .. }) = nodes.get(parent) {
                bail!("layer path {path:?} lies under a file");
            }
            nodes.insert(parent.to_owned(), Node::Directory);
        }
        let file = Node::File {
            contents: entry.contents,
            mode: entry.mode,
        };
        if nodes.insert(path.to_owned(), file).is_some() {
            bail!("layer path {path:?} appears twice or is also a directory");
        }
    }

    let mut builder = tar::Builder::new(Vec::new());
    for (path, node) in &nodes {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match node {
            Node::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(DIRECTORY_MODE);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{path}/"), std::io::empty())
                    .with_context(|| format!("adding directory {path} to a layer"))?;
            }
            Node::File { contents, mode } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(contents.len() as u64);
                builder
                    .append_data(&mut header, path, *contents)
                    .with_context(|| format!("adding {path} to a layer"))?;
            }
        }
    }
    builder.into_inner().context("finishing a layer tar")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry<'a>(path: &'a str, contents: &'a [u8]) -> LayerEntry<'a> {
        LayerEntry {
            path,
            contents,
            mode: 0o644,
        }
    }

    fn listing(tar: &[u8]) -> Vec<(String, u32, u64, u64)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let header = entry.header();
                (
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    header.mode().unwrap(),
                    header.mtime().unwrap(),
                    header.uid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn layer_lists_parents_first_in_sorted_order_with_zero_times() {
        let tar = layer_tar([
            entry("usr/lib/python3/site-packages/x.py", b"x"),
            entry("/etc/debian_version", b"12.5\n"),
        ])
        .unwrap();
        let names: Vec<String> = listing(&tar).into_iter().map(|(name, ..)| name).collect();
        assert_eq!(
            names,
            [
                "etc/",
                "etc/debian_version",
                "usr/",
                "usr/lib/",
                "usr/lib/python3/",
                "usr/lib/python3/site-packages/",
                "usr/lib/python3/site-packages/x.py"
            ]
        );
        assert!(
            listing(&tar)
                .iter()
                .all(|(_, _, mtime, uid)| *mtime == 0 && *uid == 0)
        );
        assert_eq!(listing(&tar)[0].1, 0o755);
        assert_eq!(listing(&tar)[1].1, 0o644);
    }

    #[test]
    fn same_files_in_any_order_give_the_same_digests() {
        let a = build_layer([entry("b", b"2"), entry("a/c", b"1")]).unwrap();
        let b = build_layer([entry("a/c", b"1"), entry("b", b"2")]).unwrap();
        assert_eq!(a.blob.digest, b.blob.digest);
        assert_eq!(a.diff_id, b.diff_id);
        assert_ne!(a.blob.digest, a.diff_id);
    }

    #[test]
    fn long_paths_survive() {
        let long = format!("opt/{}/file.txt", "d".repeat(150));
        let tar = layer_tar([entry(&long, b"x")]).unwrap();
        assert!(listing(&tar).iter().any(|(name, ..)| *name == long));
    }

    #[test]
    fn rejects_duplicates_and_files_used_as_directories() {
        assert!(layer_tar([entry("a", b"1"), entry("a", b"2")]).is_err());
        assert!(layer_tar([entry("a", b"1"), entry("a/b", b"2")]).is_err());
        assert!(layer_tar([entry("a/b", b"1"), entry("a", b"2")]).is_err());
        assert!(layer_tar([entry("../x", b"1")]).is_err());
    }
}
