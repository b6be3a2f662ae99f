//! A wide, shallow organization for measuring dragnet's memory: thousands of package versions,
//! each a real manifest in the registry, all sharing one tiny config and layer per package.
//!
//! Each version's manifest differs only by an annotation, so it has its own digest while
//! pushing it costs a single PUT: 10,000 versions push in well under a minute.

use std::sync::Arc;

use anyhow::Context as _;

use crate::github::{Emulator, OwnerKind, PackageSpec, TokenKind, VersionSpec, Visibility};
use crate::oci::{self, Blob, Descriptor, PushAuth, RegistryClient};
use crate::registry::{RegistryMode, RegistryServer};
use crate::token::TokenIssuer;

use super::{OWNER, token_realm};

/// How many packages push at once.
const PUSH_TASKS: usize = 8;

/// A running organization of `packages × versions` tiny images.
pub struct ScaleOrg {
    /// The GitHub API emulator.
    pub emulator: Emulator,
    /// The image registry (token mode).
    pub registry: RegistryServer,
    /// How many versions were registered.
    pub versions: usize,
    token: String,
}

impl ScaleOrg {
    /// Starts the services under `work_dir` and pushes `packages` packages of `versions`
    /// versions each (`products/wide/pkg-NNN`, tags `v1` ...).
    pub async fn start(
        packages: usize,
        versions: usize,
        work_dir: &std::path::Path,
    ) -> anyhow::Result<ScaleOrg> {
        let emulator = Emulator::start().await.context("starting the emulator")?;
        let token = format!("ghp_scale{:031}", std::process::id());
        emulator.add_owner(OWNER, OwnerKind::Organization);
        emulator.add_token(&token, TokenKind::Pat);
        let issuer = Arc::new(TokenIssuer::new("dragnet-bench-issuer", "dragnet-bench")?);
        emulator.set_registry_tokens(issuer.clone());
        let realm = token_realm(&emulator.url());
        let registry = RegistryServer::start(
            RegistryMode::token(&realm, &issuer),
            &work_dir.join("scale-registry"),
        )
        .await
        .context("starting the scale registry")?;
        let client = Arc::new(RegistryClient::new(
            &registry.url(),
            PushAuth::Issuer(issuer),
        )?);

        let mut tasks = tokio::task::JoinSet::new();
        let mut digests: Vec<Vec<String>> = vec![Vec::new(); packages];
        for package in 0..packages {
            if tasks.len() >= PUSH_TASKS
                && let Some(joined) = tasks.join_next().await
            {
                let (index, pushed) = joined.context("a push task panicked")?;
                digests[index] = pushed?;
            }
            let client = client.clone();
            tasks.spawn(async move { (package, push_package(&client, package, versions).await) });
        }
        while let Some(joined) = tasks.join_next().await {
            let (index, pushed) = joined.context("a push task panicked")?;
            digests[index] = pushed?;
        }

        for (package, digests) in digests.iter().enumerate() {
            let name = package_name(package);
            emulator.add_package(
                OWNER,
                PackageSpec::new(&name).visibility(Visibility::Private),
            );
            for (version, digest) in digests.iter().enumerate() {
                let tag = format!("v{}", version + 1);
                emulator.add_version(OWNER, &name, VersionSpec::new(digest, &[tag.as_str()]));
            }
        }
        Ok(ScaleOrg {
            emulator,
            registry,
            versions: packages * versions,
            token,
        })
    }

    /// The PAT that lists packages and pulls images.
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// The glob that selects every package of a [`ScaleOrg`].
pub const SCALE_PATTERN: &str = "products/wide/*";

fn package_name(index: usize) -> String {
    format!("products/wide/pkg-{index:03}")
}

/// Pushes one package's config, layer and `versions` manifests; returns their digests, oldest
/// first.
async fn push_package(
    client: &RegistryClient,
    package: usize,
    versions: usize,
) -> anyhow::Result<Vec<String>> {
    let repository = format!("{OWNER}/{}", package_name(package));
    let layer = oci::build_layer([oci::LayerEntry {
        path: "etc/wide-release",
        contents: format!("package {package}\n").as_bytes(),
        mode: 0o644,
    }])?;
    let image = oci::build_image(
        std::slice::from_ref(&layer),
        &oci::Platform::new("linux", "amd64"),
    )?;
    client.push_blob(&repository, &image.config).await?;
    client.push_blob(&repository, &layer.blob).await?;

    let mut digests = Vec::with_capacity(versions);
    for version in 0..versions {
        let manifest = manifest_with_annotation(&image.config, &layer.blob, version)?;
        let tag = format!("v{}", version + 1);
        client.push_manifest(&repository, &tag, &manifest).await?;
        digests.push(manifest.digest);
    }
    Ok(digests)
}

/// An OCI manifest naming `config` and `layer`, told apart by a version annotation.
fn manifest_with_annotation(config: &Blob, layer: &Blob, version: usize) -> anyhow::Result<Blob> {
    let descriptor = |blob: &Blob| -> Descriptor { blob.descriptor() };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": oci::OCI_MANIFEST,
        "config": descriptor(config),
        "layers": [descriptor(layer)],
        "annotations": {"org.opencontainers.image.version": format!("{}", version + 1)},
    });
    let bytes = serde_json::to_vec(&manifest).context("serialising a manifest")?;
    Ok(Blob::new(oci::OCI_MANIFEST, bytes))
}
