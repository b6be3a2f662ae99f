//! Image configs, manifests and indexes built from layers, plus Trivy's DB artifact.
//!
//! Every document carries its own `mediaType`, which distribution 2.8 uses to tell an OCI
//! manifest from an index, and is serialised from structs with a fixed field order so that the
//! same input always yields the same digest.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::{
    Blob, Descriptor, Layer, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, Platform, TRIVY_DB_CONFIG,
    TRIVY_DB_LAYER,
};

/// The creation time written in configs: fixed, so that digests never change.
const CREATED: &str = "1970-01-01T00:00:00Z";

/// The annotation Trivy reads to name the file it downloads from an artifact's layer.
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// One image (or artifact): config, layers and the manifest naming them.
#[derive(Debug, Clone)]
pub struct Image {
    /// The platform the config declares; `None` for artifacts.
    pub platform: Option<Platform>,
    /// The config blob.
    pub config: Blob,
    /// The layer blobs, bottom first.
    pub layers: Vec<Blob>,
    /// The manifest, media type [`OCI_MANIFEST`].
    pub manifest: Blob,
}

impl Image {
    /// The manifest digest, which names the image.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }
}

/// A multi-platform image: an index naming one manifest per platform.
#[derive(Debug, Clone)]
pub struct ImageIndex {
    /// The platform images, in index order.
    pub images: Vec<Image>,
    /// The index, media type [`OCI_INDEX`].
    pub index: Blob,
}

impl ImageIndex {
    /// The index digest, which names the multi-platform image.
    pub fn digest(&self) -> &str {
        &self.index.digest
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    schema_version: u32,
    media_type: &'static str,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    schema_version: u32,
    media_type: &'static str,
    manifests: Vec<Descriptor>,
}

#[derive(serde::Serialize)]
struct Config<'a> {
    created: &'static str,
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: ExecConfig,
    rootfs: RootFs,
    history: Vec<History>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExecConfig {
    env: Vec<&'static str>,
}

#[derive(serde::Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<String>,
}

#[derive(serde::Serialize)]
struct History {
    created: &'static str,
    created_by: String,
}

/// Builds the config and manifest of an image made of `layers` for `platform`.
pub fn build_image(layers: &[Layer], platform: &Platform) -> anyhow::Result<Image> {
    let config = Config {
        created: CREATED,
        architecture: &platform.architecture,
        os: &platform.os,
        variant: platform.variant.as_deref(),
        config: ExecConfig {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|layer| layer.diff_id.clone()).collect(),
        },
        history: (1..=layers.len())
            .map(|n| History {
                created: CREATED,
                created_by: format!("dragnet-sandbox layer {n}"),
            })
            .collect(),
    };
    let config = Blob::new(OCI_CONFIG, to_json(&config)?);
    let layers: Vec<Blob> = layers.iter().map(|layer| layer.blob.clone()).collect();
    let manifest = manifest_blob(&config, layers.iter().map(Blob::descriptor).collect())?;
    Ok(Image {
        platform: Some(platform.clone()),
        config,
        layers,
        manifest,
    })
}

/// Builds an index over `images`, each entry carrying its image's platform.
pub fn build_index(images: Vec<Image>) -> anyhow::Result<ImageIndex> {
    let manifests = images
        .iter()
        .map(|image| Descriptor {
            platform: image.platform.clone(),
            ..image.manifest.descriptor()
        })
        .collect();
    let index = Index {
        schema_version: 2,
        media_type: OCI_INDEX,
        manifests,
    };
    Ok(ImageIndex {
        index: Blob::new(OCI_INDEX, to_json(&index)?),
        images,
    })
}

/// Trivy's vulnerability DB as the OCI artifact `trivy --db-repository` downloads: config `{}`
/// of the Trivy config type and one layer, the gzipped tar of `trivy.db` and `metadata.json`.
pub fn trivy_db_artifact(layer_tar_gz: Vec<u8>) -> anyhow::Result<Image> {
    let config = Blob::new(TRIVY_DB_CONFIG, b"{}".to_vec());
    let layer = Blob::new(TRIVY_DB_LAYER, layer_tar_gz);
    let descriptor = Descriptor {
        annotations: Some(BTreeMap::from([(
            TITLE_ANNOTATION.to_owned(),
            "db.tar.gz".to_owned(),
        )])),
        ..layer.descriptor()
    };
    let manifest = manifest_blob(&config, vec![descriptor])?;
    Ok(Image {
        platform: None,
        config,
        layers: vec![layer],
        manifest,
    })
}

fn manifest_blob(config: &Blob, layers: Vec<Descriptor>) -> anyhow::Result<Blob> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: OCI_MANIFEST,
        config: config.descriptor(),
        layers,
    };
    Ok(Blob::new(OCI_MANIFEST, to_json(&manifest)?))
}

fn to_json(value: &impl serde::Serialize) -> anyhow::Result<Vec<u8>> {
    serde_json::to_vec(value).context("serialising an OCI document")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{LayerEntry, build_layer};

    fn layer(contents: &[u8]) -> Layer {
        build_layer([LayerEntry {
            path: "etc/file",
            contents,
            mode: 0o644,
        }])
        .unwrap()
    }

    fn json(blob: &Blob) -> serde_json::Value {
        serde_json::from_slice(&blob.bytes).unwrap()
    }

    #[test]
    fn config_lists_diff_ids_and_platform() {
        let layers = [layer(b"1"), layer(b"2")];
        let image = build_image(&layers, &Platform::new("linux", "arm64")).unwrap();

        let config = json(&image.config);
        assert_eq!(config["architecture"], "arm64");
        assert_eq!(config["os"], "linux");
        assert_eq!(config["rootfs"]["diff_ids"][1], layers[1].diff_id.as_str());
        assert_eq!(config["history"].as_array().unwrap().len(), 2);

        let manifest = json(&image.manifest);
        assert_eq!(manifest["mediaType"], OCI_MANIFEST);
        assert_eq!(manifest["config"]["digest"], image.config.digest.as_str());
        assert_eq!(
            manifest["layers"][0]["digest"],
            layers[0].blob.digest.as_str()
        );
        assert_eq!(manifest["layers"][0]["size"], layers[0].blob.bytes.len());
    }

    #[test]
    fn index_names_each_platform_manifest() {
        let amd = build_image(&[layer(b"a")], &Platform::new("linux", "amd64")).unwrap();
        let arm = build_image(&[layer(b"b")], &Platform::new("linux", "arm64")).unwrap();
        let index = build_index(vec![amd.clone(), arm.clone()]).unwrap();

        let value = json(&index.index);
        assert_eq!(value["mediaType"], OCI_INDEX);
        assert_eq!(value["manifests"][0]["digest"], amd.digest());
        assert_eq!(value["manifests"][1]["platform"]["architecture"], "arm64");
        assert_eq!(value["manifests"][1]["mediaType"], OCI_MANIFEST);
    }

    #[test]
    fn same_spec_gives_the_same_digest() {
        let platform = Platform::new("linux", "amd64");
        let a = build_image(&[layer(b"x")], &platform).unwrap();
        let b = build_image(&[layer(b"x")], &platform).unwrap();
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn trivy_db_artifact_uses_trivy_media_types() {
        let artifact = trivy_db_artifact(b"not really gzip".to_vec()).unwrap();
        assert_eq!(artifact.config.bytes, b"{}");
        let manifest = json(&artifact.manifest);
        assert_eq!(manifest["config"]["mediaType"], TRIVY_DB_CONFIG);
        assert_eq!(manifest["layers"][0]["mediaType"], TRIVY_DB_LAYER);
        assert_eq!(
            manifest["layers"][0]["annotations"][TITLE_ANNOTATION],
            "db.tar.gz"
        );
    }
}
