//! Builds OCI images byte for byte reproducibly and pushes them through the distribution API.
//!
//! The same `ImageSpec` always yields the same layer tars, configs, manifests and so the same
//! digests, so tests can compare what a registry serves with what was built. Manifests and
//! indexes are written by hand (a few serde structs) rather than through a full OCI crate: the
//! sandbox needs exact control over the bytes, and only a handful of fields.

pub mod image;
pub mod layer;
pub mod push;

use std::collections::BTreeMap;

use sha2::Digest as _;

pub use image::{Image, ImageIndex, build_image, build_index, trivy_db_artifact};
pub use layer::{Layer, LayerEntry, build_layer};
pub use push::{PushAuth, RegistryClient};

/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image index (a multi-platform image).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// A gzipped OCI layer tar.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The config media type of Trivy's vulnerability DB artifact.
pub const TRIVY_DB_CONFIG: &str = "application/vnd.aquasec.trivy.config.v1+json";
/// The layer media type of Trivy's vulnerability DB artifact.
pub const TRIVY_DB_LAYER: &str = "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip";

/// Content addressed by its digest, with the media type a descriptor gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The media type put in descriptors naming this blob.
    pub media_type: String,
    /// The exact bytes stored in the registry.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

impl Blob {
    /// Wraps `bytes`, computing their digest.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_owned(),
            digest: sha256_digest(&bytes),
            bytes,
        }
    }

    /// A descriptor naming this blob.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            platform: None,
            annotations: None,
        }
    }
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The platform an image runs on, as an index entry names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// A platform without variant, such as `Platform::new("linux", "amd64")`.
    pub fn new(os: &str, architecture: &str) -> Platform {
        Platform {
            architecture: architecture.to_owned(),
            os: os.to_owned(),
            variant: None,
        }
    }
}

impl std::fmt::Display for Platform {
    /// `os/arch` or `os/arch/variant`, as `--platform` takes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_sha256_of_the_bytes() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn platform_prints_like_the_platform_flag() {
        assert_eq!(Platform::new("linux", "amd64").to_string(), "linux/amd64");
    }
}
