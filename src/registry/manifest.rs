//! Manifest documents: media types, telling an index from an image, and the decisions made on
//! an index's children (attestations skipped, `--platform` applied).
//!
//! Parsing uses `oci-spec`'s types, which read Docker's v2 manifests and manifest lists as well
//! as OCI's, since the two formats share their shape. Everything here is pure, so the decisions
//! are tested without a registry; [`super::RegistryClient`] does the fetching.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;
use serde::de::IgnoredAny;
use sha2::{Digest as _, Sha256, Sha512};

use crate::plan::Platform;

use super::reference::shorten;

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list (schema 2).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The `Accept` header for manifest requests: every format dragnet reads.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// The annotation BuildKit puts on the attestation manifests it adds to an index.
const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// A manifest as fetched: an index of platform manifests, or one image.
#[derive(Debug, Clone)]
pub enum Document {
    /// An OCI image index or a Docker manifest list.
    Index(Box<ImageIndex>),
    /// An OCI image manifest or a Docker v2 manifest.
    Image(Box<ImageManifest>),
}

/// Just enough of a manifest to tell which kind it is.
#[derive(Deserialize)]
struct Probe {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    manifests: Option<IgnoredAny>,
    config: Option<IgnoredAny>,
}

/// Parses a manifest body; the body's own `mediaType` decides its kind, then the
/// `Content-Type` header, then its shape (`manifests` or `config`).
pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Document, String> {
    let probe: Probe = serde_json::from_slice(body)
        .map_err(|e| format!("the manifest is not JSON: {}", shorten(&e.to_string(), 200)))?;
    let header_type = content_type.map(|value| value.split(';').next().unwrap_or("").trim());
    let declared = probe.media_type.as_deref().or(header_type);

    let is_index = match declared {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        Some(kind) if kind.starts_with("application/vnd.docker.distribution.manifest.v1") => {
            return Err(format!(
                "it is a Docker schema 1 manifest ({kind}), which dragnet cannot read; push the \
                 image again with a current Docker or BuildKit"
            ));
        }
        _ if probe.manifests.is_some() => true,
        _ if probe.config.is_some() => false,
        other => {
            return Err(format!(
                "its media type `{}` is neither an image index nor an image manifest",
                shorten(other.unwrap_or("(none)"), 120)
            ));
        }
    };

    let unreadable = |e: serde_json::Error| {
        let kind = if is_index {
            "image index"
        } else {
            "image manifest"
        };
        format!("the {kind} is malformed: {}", shorten(&e.to_string(), 200))
    };
    if is_index {
        serde_json::from_slice(body)
            .map(Document::Index)
            .map_err(unreadable)
    } else {
        serde_json::from_slice(body)
            .map(Document::Image)
            .map_err(unreadable)
    }
}

/// Whether a descriptor names a manifest (not an index), judging by its media type.
pub fn names_an_index(descriptor: &Descriptor) -> bool {
    matches!(descriptor.media_type().as_ref(), OCI_INDEX | DOCKER_LIST)
}

/// Whether an index entry is a BuildKit attestation (provenance, SBOM) rather than an image:
/// it carries the `vnd.docker.reference.type: attestation-manifest` annotation, or its
/// platform is `unknown/unknown`.
pub fn is_attestation(descriptor: &Descriptor) -> bool {
    let annotated = descriptor
        .annotations()
        .as_ref()
        .and_then(|annotations| annotations.get(REFERENCE_TYPE))
        .is_some_and(|kind| kind == "attestation-manifest");
    let unknown = descriptor.platform().as_ref().is_some_and(|p| {
        p.os().to_string() == "unknown" && p.architecture().to_string() == "unknown"
    });
    annotated || unknown
}

/// The platform an index entry declares, in dragnet's terms.
pub fn declared_platform(descriptor: &Descriptor) -> Option<Platform> {
    descriptor.platform().as_ref().map(|p| Platform {
        os: p.os().to_string(),
        architecture: p.architecture().to_string(),
        variant: p.variant().clone().filter(|v| !v.is_empty()),
    })
}

/// The fields of an image config that name its platform.
#[derive(Deserialize)]
struct ConfigPlatform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

/// The platform an image config blob declares; `None` when it names no OS and architecture
/// (an artifact's config, say).
pub fn config_platform(body: &[u8]) -> Result<Option<Platform>, String> {
    let config: ConfigPlatform = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the image config is not JSON: {}",
            shorten(&e.to_string(), 200)
        )
    })?;
    let nonempty = |value: Option<String>| value.filter(|v| !v.is_empty());
    Ok(match (nonempty(config.os), nonempty(config.architecture)) {
        (Some(os), Some(architecture)) => Some(Platform {
            os,
            architecture,
            variant: nonempty(config.variant),
        }),
        _ => None,
    })
}

/// Whether `platform` is one the user asked for; everything is wanted without a filter, and an
/// image whose platform is unknown is kept rather than silently dropped.
///
/// A filter without a variant matches every variant; with one, an image without a variant
/// gets the usual default (`v8` for arm64, `v7` for arm), as Docker normalises them.
pub fn is_wanted(filter: &[Platform], platform: Option<&Platform>) -> bool {
    let Some(platform) = platform else {
        return true;
    };
    filter.is_empty()
        || filter.iter().any(|wanted| {
            wanted.os == platform.os
                && wanted.architecture == platform.architecture
                && wanted
                    .variant
                    .as_ref()
                    .is_none_or(|variant| Some(variant.as_str()) == variant_or_default(platform))
        })
}

fn variant_or_default(platform: &Platform) -> Option<&str> {
    match (platform.variant.as_deref(), platform.architecture.as_str()) {
        (Some(variant), _) => Some(variant),
        (None, "arm64") => Some("v8"),
        (None, "arm") => Some("v7"),
        (None, _) => None,
    }
}

/// The compressed bytes an image's config and layers take: what a scan will pull.
pub fn image_size(manifest: &ImageManifest) -> u64 {
    manifest
        .layers()
        .iter()
        .fold(manifest.config().size(), |total, layer| {
            total.saturating_add(layer.size())
        })
}

/// The digest of `body` computed with the algorithm `expected` names (`sha256` or `sha512`).
pub fn digest_like(expected: &str, body: &[u8]) -> String {
    if expected.starts_with("sha512:") {
        format!("sha512:{}", hex::encode(Sha512::digest(body)))
    } else {
        format!("sha256:{}", hex::encode(Sha256::digest(body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    const LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    fn platform(text: &str) -> Platform {
        let mut parts = text.split('/');
        Platform {
            os: parts.next().unwrap().into(),
            architecture: parts.next().unwrap().into(),
            variant: parts.next().map(str::to_string),
        }
    }

    fn bytes(value: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&value).unwrap()
    }

    fn docker_manifest() -> serde_json::Value {
        json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": CONFIG, "size": 100, "digest": A},
            "layers": [
                {"mediaType": LAYER, "size": 1000, "digest": B},
                {"mediaType": LAYER, "size": 20, "digest": B}
            ]
        })
    }

    #[test]
    fn reads_a_docker_v2_manifest_and_sums_its_size() {
        let Document::Image(manifest) = parse(&bytes(docker_manifest()), None).unwrap() else {
            panic!("expected an image manifest");
        };
        assert_eq!(image_size(&manifest), 1120);
    }

    #[test]
    fn reads_a_docker_manifest_list_as_an_index() {
        let list = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_LIST,
            "manifests": [{
                "mediaType": DOCKER_MANIFEST, "size": 500, "digest": A,
                "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}
            }]
        });
        let Document::Index(index) = parse(&bytes(list), None).unwrap() else {
            panic!("expected an index");
        };
        assert_eq!(
            declared_platform(&index.manifests()[0]),
            Some(platform("linux/arm/v7"))
        );
    }

    #[test]
    fn falls_back_to_content_type_then_shape() {
        let mut manifest = docker_manifest();
        manifest.as_object_mut().unwrap().remove("mediaType");
        let body = bytes(manifest);
        let by_header = parse(
            &body,
            Some("application/vnd.oci.image.manifest.v1+json; x=y"),
        );
        assert!(matches!(by_header, Ok(Document::Image(_))));
        assert!(matches!(
            parse(&body, Some("application/json")),
            Ok(Document::Image(_))
        ));

        let index = bytes(json!({"schemaVersion": 2, "manifests": []}));
        assert!(matches!(parse(&index, None), Ok(Document::Index(_))));
    }

    #[test]
    fn refuses_schema_1_and_unknown_documents() {
        let v1 = bytes(json!({"schemaVersion": 1, "fsLayers": []}));
        let error = parse(
            &v1,
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        )
        .unwrap_err();
        assert!(error.contains("schema 1"), "{error}");

        let artifact = bytes(json!({"mediaType": "application/vnd.oci.artifact.manifest.v1+json"}));
        let error = parse(&artifact, None).unwrap_err();
        assert!(
            error.contains("`application/vnd.oci.artifact.manifest.v1+json`"),
            "{error}"
        );

        assert!(
            parse(b"<html>", None)
                .unwrap_err()
                .starts_with("the manifest is not JSON")
        );
    }

    #[test]
    fn a_manifest_with_a_bad_layer_digest_is_malformed() {
        let mut manifest = docker_manifest();
        manifest["layers"][0]["digest"] = json!("sha256:../../etc");
        let error = parse(&bytes(manifest), None).unwrap_err();
        assert!(
            error.starts_with("the image manifest is malformed"),
            "{error}"
        );
    }

    #[test]
    fn recognises_buildkit_attestations() {
        let entry = |value: serde_json::Value| serde_json::from_value::<Descriptor>(value).unwrap();
        let annotated = entry(json!({
            "mediaType": OCI_MANIFEST, "size": 1, "digest": A,
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"}
        }));
        let unknown = entry(json!({
            "mediaType": OCI_MANIFEST, "size": 1, "digest": A,
            "platform": {"os": "unknown", "architecture": "unknown"}
        }));
        let image = entry(json!({
            "mediaType": OCI_MANIFEST, "size": 1, "digest": A,
            "platform": {"os": "linux", "architecture": "amd64"}
        }));
        assert!(is_attestation(&annotated));
        assert!(is_attestation(&unknown));
        assert!(!is_attestation(&image));
    }

    #[test]
    fn platform_filter_matches_os_architecture_and_variant() {
        let filter = [
            platform("linux/amd64"),
            platform("linux/arm64/v8"),
            platform("linux/arm/v6"),
        ];
        assert!(is_wanted(&filter, Some(&platform("linux/amd64"))));
        assert!(
            is_wanted(&filter, Some(&platform("linux/arm64"))),
            "arm64 defaults to v8"
        );
        assert!(!is_wanted(&filter, Some(&platform("linux/arm/v7"))));
        assert!(
            !is_wanted(&filter, Some(&platform("linux/arm"))),
            "arm defaults to v7"
        );
        assert!(!is_wanted(&filter, Some(&platform("windows/amd64"))));
        assert!(is_wanted(&filter, None), "an unknown platform is kept");
        assert!(is_wanted(&[], Some(&platform("linux/s390x"))));
        assert!(is_wanted(
            &[platform("linux/arm")],
            Some(&platform("linux/arm/v5"))
        ));
    }

    #[test]
    fn reads_the_platform_from_an_image_config() {
        let config = br#"{"architecture":"arm64","os":"linux","variant":"v8","rootfs":{}}"#;
        assert_eq!(
            config_platform(config),
            Ok(Some(platform("linux/arm64/v8")))
        );
        assert_eq!(
            config_platform(br#"{"os":"","architecture":"amd64"}"#),
            Ok(None)
        );
        assert_eq!(config_platform(b"{}"), Ok(None));
        assert!(config_platform(b"[").is_err());
    }

    #[test]
    fn digests_use_the_expected_algorithm() {
        assert_eq!(
            digest_like(A, b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(digest_like("sha512:00", b"").starts_with("sha512:cf83e1357eefb8bd"));
    }
}
