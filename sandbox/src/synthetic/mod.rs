//! A synthetic organization for the benchmark: dozens of packages with several versions each,
//! built from shared base layers, a few 100 MB images and one multi-platform image, pushed to a
//! token-mode registry and registered in the GitHub emulator.
//!
//! Everything is deterministic: the same [`OrgSpec`] gives the same digests. Each distinct layer
//! is built once and images are built one version at a time, so pushing hundreds of MB never
//! holds more than the shared layers and one image in memory. Kept apart from [`crate::sandbox`]
//! (whose world is the test fixture) because the benchmark needs the bytes it pushed, to compare
//! them with what the registry served.

pub mod content;
pub mod scale;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::github::{Emulator, OwnerKind, PackageSpec, TokenKind, VersionSpec, Visibility};
use crate::oci::{self, Image, Layer, Platform, PushAuth, RegistryClient};
use crate::registry::{RegistryMode, RegistryServer};
use crate::token::TokenIssuer;
use content::{FixtureLayers, bulk_layer};

/// The owner of the synthetic packages.
pub const OWNER: &str = "bench-org";

/// The glob that selects every synthetic package.
pub const PATTERN: &str = "products/bench/*";

/// The user name sent with the PAT to the registry, as for ghcr.io.
pub const REGISTRY_USER: &str = "x-access-token";

const MIB: usize = 1 << 20;

/// The shape of the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSpec {
    /// How many packages (`products/bench/pkg-00` ...).
    pub packages: usize,
    /// Versions (digests) per package; each carries two tags.
    pub versions: usize,
    /// How many packages carry a big data layer of [`OrgSpec::big_layer_bytes`].
    pub big_packages: usize,
    /// The size of a big package's data layer, shared by its versions.
    pub big_layer_bytes: usize,
    /// The runtime layer every Debian image shares.
    pub runtime_bytes: usize,
    /// Each package's dependency layer, shared by its versions (scaled 1x to 3x by package).
    pub deps_bytes: usize,
    /// Each version's own application layer (scaled 1x to 3x by package).
    pub app_bytes: usize,
    /// Whether package 1 is a multi-platform image (linux/amd64 and linux/arm64).
    pub multi_platform: bool,
}

impl OrgSpec {
    /// The issue's organization: 30 packages of 8 tags, 3 of them over 100 MB, one
    /// multi-platform.
    pub fn full() -> OrgSpec {
        OrgSpec {
            packages: 30,
            versions: 4,
            big_packages: 3,
            big_layer_bytes: 100 * MIB,
            runtime_bytes: 12 * MIB,
            deps_bytes: 2 * MIB,
            app_bytes: MIB,
            multi_platform: true,
        }
    }

    /// A few small packages with every kind of image, for developing the benchmark.
    pub fn tiny() -> OrgSpec {
        OrgSpec {
            packages: 3,
            versions: 1,
            big_packages: 1,
            big_layer_bytes: 4 * MIB,
            runtime_bytes: MIB,
            deps_bytes: MIB / 4,
            app_bytes: MIB / 8,
            multi_platform: true,
        }
    }

    /// What package `index` is made of.
    pub fn kind(&self, index: usize) -> PackageKind {
        if self.multi_platform && index == 1 {
            return PackageKind::MultiPlatform;
        }
        if index % 6 == 5 {
            return PackageKind::Alpine;
        }
        let big_before = (0..index)
            .filter(|&i| !(self.multi_platform && i == 1) && i % 6 != 5)
            .count();
        if big_before < self.big_packages {
            PackageKind::Big
        } else {
            PackageKind::Debian
        }
    }

    /// The GitHub package name of package `index`.
    pub fn package_name(index: usize) -> String {
        format!("products/bench/pkg-{index:02}")
    }

    /// The tags of version `version` (0 is the oldest): `N.0.0` and `N.0`.
    pub fn tags(version: usize) -> Vec<String> {
        let n = version + 1;
        vec![format!("{n}.0.0"), format!("{n}.0")]
    }
}

/// What one package's images are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageKind {
    /// Debian base, shared runtime, the package's dependencies, a package DB layer, the app.
    Debian,
    /// A Debian package with a big data layer under its app.
    Big,
    /// Alpine base and OpenSSL, dependencies, the app.
    Alpine,
    /// An index over an amd64 and an arm64 Alpine image.
    MultiPlatform,
}

/// One version pushed: its digest, tags and platform manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedVersion {
    /// The GitHub package name.
    pub package: String,
    /// The registry repository (`bench-org/products/bench/pkg-00`).
    pub repository: String,
    /// The version's digest (the index's for a multi-platform image).
    pub digest: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// The platform manifests' digests (the image's own for a single image).
    pub platforms: Vec<String>,
}

/// Every distinct byte pushed, by digest: what a scanner that fetches each thing once reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushedBytes {
    /// Layer blobs by digest.
    pub layers: BTreeMap<String, u64>,
    /// Config blobs by digest.
    pub configs: BTreeMap<String, u64>,
    /// Manifests and indexes by digest.
    pub manifests: BTreeMap<String, u64>,
    /// Each platform image's compressed size (config and layers), by manifest digest.
    pub images: BTreeMap<String, u64>,
}

impl PushedBytes {
    /// The sum of every unique layer, config and manifest (not double-counting `images`).
    pub fn total(&self) -> u64 {
        [&self.layers, &self.configs, &self.manifests]
            .iter()
            .flat_map(|map| map.values())
            .sum()
    }

    fn add_image(&mut self, image: &Image) {
        for layer in &image.layers {
            self.layers
                .insert(layer.digest.clone(), layer.bytes.len() as u64);
        }
        self.configs
            .insert(image.config.digest.clone(), image.config.bytes.len() as u64);
        self.manifests.insert(
            image.manifest.digest.clone(),
            image.manifest.bytes.len() as u64,
        );
        let size =
            image.config.bytes.len() + image.layers.iter().map(|l| l.bytes.len()).sum::<usize>();
        self.images
            .insert(image.manifest.digest.clone(), size as u64);
    }
}

/// The running synthetic organization: emulator, image registry (token mode, as ghcr.io) and
/// an open registry serving the Trivy DB.
pub struct SyntheticOrg {
    /// The GitHub API emulator.
    pub emulator: Emulator,
    /// The image registry.
    pub registry: RegistryServer,
    /// The registry serving the Trivy DB.
    pub db_registry: RegistryServer,
    /// The DB's compressed size (its artifact layer).
    pub db_layer_bytes: u64,
    /// The DB's `trivy.db` and `metadata.json`, for [`SyntheticOrg::push_newer_db`].
    db_files: (PathBuf, PathBuf),
    /// Every version pushed, in push order.
    pub versions: Vec<PushedVersion>,
    /// The unique bytes of the versions pushed.
    pub bytes: PushedBytes,
    spec: OrgSpec,
    token: String,
    client: RegistryClient,
    layers: SharedLayers,
}

/// The layers images share, built once.
struct SharedLayers {
    fixture: FixtureLayers,
    runtime: Layer,
}

impl SyntheticOrg {
    /// Starts the services under `work_dir`, pushes the DB (with `db_padding` generated
    /// advisories, cached under `cache_dir`) and every package of `spec`.
    pub async fn start(
        spec: OrgSpec,
        work_dir: &Path,
        cache_dir: &Path,
        db_padding: u32,
    ) -> anyhow::Result<SyntheticOrg> {
        let emulator = Emulator::start().await.context("starting the emulator")?;
        let token = format!("ghp_bench{:031}", std::process::id());
        emulator.add_owner(OWNER, OwnerKind::Organization);
        emulator.add_token(&token, TokenKind::Pat);

        let issuer = Arc::new(TokenIssuer::new("dragnet-bench-issuer", "dragnet-bench")?);
        emulator.set_registry_tokens(issuer.clone());
        let realm = token_realm(&emulator.url());
        let registry = RegistryServer::start(
            RegistryMode::token(&realm, &issuer),
            &work_dir.join("registry"),
        )
        .await
        .context("starting the image registry")?;
        let db_registry = RegistryServer::start(RegistryMode::Open, &work_dir.join("db-registry"))
            .await
            .context("starting the DB registry")?;

        // The DB, built once per padding and cached.
        let cache = cache_dir.to_path_buf();
        let db = tokio::task::spawn_blocking(move || {
            crate::fixture::build_padded_trivy_db(&cache, db_padding)
        })
        .await
        .context("the DB build panicked")??;
        let db_layer_bytes = db.layer_tar_gz.len() as u64;
        let db_files = (db.db_path.clone(), db.metadata_path.clone());
        let artifact = oci::trivy_db_artifact(db.layer_tar_gz)?;
        RegistryClient::new(&db_registry.url(), PushAuth::Anonymous)?
            .push_image(DB_REPOSITORY, &artifact, &[DB_TAG.to_owned()])
            .await
            .context("pushing the Trivy DB")?;

        let layers = tokio::task::spawn_blocking({
            let runtime_bytes = spec.runtime_bytes;
            move || -> anyhow::Result<SharedLayers> {
                Ok(SharedLayers {
                    fixture: FixtureLayers::from_fixture()?,
                    runtime: bulk_layer("usr/lib/bench-runtime", 1, runtime_bytes)?,
                })
            }
        })
        .await
        .context("building shared layers panicked")??;

        let client = RegistryClient::new(&registry.url(), PushAuth::Issuer(issuer))?;
        let mut org = SyntheticOrg {
            emulator,
            registry,
            db_registry,
            db_layer_bytes,
            db_files,
            versions: Vec::new(),
            bytes: PushedBytes::default(),
            spec: spec.clone(),
            token,
            client,
            layers,
        };
        for index in 0..spec.packages {
            org.push_package(index).await?;
        }
        Ok(org)
    }

    /// The PAT that lists packages and pulls images.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The Trivy DB reference for `--db-repository`.
    pub fn db_repository(&self) -> String {
        format!("{}/{DB_REPOSITORY}:{DB_TAG}", self.db_registry.host())
    }

    /// The registry repository of package `name`.
    pub fn repository(name: &str) -> String {
        format!("{OWNER}/{name}")
    }

    /// Pushes one more version of package `index` carrying only `tag`, as a release would, and
    /// registers it; returns it.
    pub async fn push_new_version(
        &mut self,
        index: usize,
        tag: &str,
    ) -> anyhow::Result<PushedVersion> {
        // A version index no other version of the package has, so the app layer is new.
        let name = OrgSpec::package_name(index);
        let version = self.versions.iter().filter(|v| v.package == name).count();
        let pushed = self
            .push_version(index, version, vec![tag.to_owned()], None)
            .await?;
        Ok(pushed)
    }

    /// Pushes the DB again as a newer build, its `UpdatedAt` one day later, as Trivy's publisher
    /// does every few hours; returns the new `UpdatedAt`. Same advisories, so same findings.
    pub async fn push_newer_db(&self) -> anyhow::Result<String> {
        let (db_path, metadata_path) = self.db_files.clone();
        let (layer, updated_at) = tokio::task::spawn_blocking(move || {
            let metadata = std::fs::read(&metadata_path)
                .with_context(|| format!("reading {}", metadata_path.display()))?;
            let mut metadata: serde_json::Value = serde_json::from_slice(&metadata)?;
            let updated_at = "2026-01-06T00:00:00Z";
            metadata["UpdatedAt"] = updated_at.into();
            metadata["DownloadedAt"] = updated_at.into();
            let db = std::fs::read(&db_path)
                .with_context(|| format!("reading {}", db_path.display()))?;
            let layer = db_layer(&db, &serde_json::to_vec(&metadata)?)?;
            anyhow::Ok((layer, updated_at.to_owned()))
        })
        .await
        .context("building the newer DB panicked")??;
        let artifact = oci::trivy_db_artifact(layer)?;
        RegistryClient::new(&self.db_registry.url(), PushAuth::Anonymous)?
            .push_image(DB_REPOSITORY, &artifact, &[DB_TAG.to_owned()])
            .await
            .context("pushing the newer Trivy DB")?;
        Ok(updated_at)
    }

    async fn push_package(&mut self, index: usize) -> anyhow::Result<()> {
        let name = OrgSpec::package_name(index);
        self.emulator.add_package(
            OWNER,
            PackageSpec::new(&name).visibility(Visibility::Private),
        );

        let package_layers = self.package_layers(index).await?;
        for version in 0..self.spec.versions {
            self.push_version(
                index,
                version,
                OrgSpec::tags(version),
                Some(&package_layers),
            )
            .await?;
        }
        Ok(())
    }

    /// Builds, pushes and registers version `version` of package `index`.
    async fn push_version(
        &mut self,
        index: usize,
        version: usize,
        tags: Vec<String>,
        package_layers: Option<&PackageLayers>,
    ) -> anyhow::Result<PushedVersion> {
        let rebuilt;
        let package_layers = match package_layers {
            Some(layers) => layers,
            None => {
                rebuilt = self.package_layers(index).await?;
                &rebuilt
            }
        };
        let name = OrgSpec::package_name(index);
        let repository = Self::repository(&name);
        let scale = 1 + index % 3;
        let app_bytes = self.spec.app_bytes * scale;
        let app = |arch: u64| {
            let seed = 1_000_000 + (index as u64) * 1000 + (version as u64) * 10 + arch;
            build_blocking(move || bulk_layer("opt/bench-app", seed, app_bytes))
        };
        let shared = &self.layers;
        let fixture = &shared.fixture;

        let (digest, platforms) = match self.spec.kind(index) {
            kind @ (PackageKind::Debian | PackageKind::Big) => {
                let mut layers = vec![
                    fixture.debian_base.clone(),
                    shared.runtime.clone(),
                    package_layers.deps.clone(),
                ];
                if kind == PackageKind::Big
                    && let Some(big) = &package_layers.big
                {
                    layers.push(big.clone());
                }
                let tops = &fixture.debian_tops;
                layers.push(tops[(index + version) % tops.len()].clone());
                layers.push(app(0).await?);
                let image = oci::build_image(&layers, &Platform::new("linux", "amd64"))?;
                self.client.push_image(&repository, &image, &tags).await?;
                self.bytes.add_image(&image);
                (image.digest().to_owned(), vec![image.digest().to_owned()])
            }
            PackageKind::Alpine => {
                let mut layers = fixture.alpine_amd64.clone();
                layers.push(package_layers.deps.clone());
                layers.push(app(0).await?);
                let image = oci::build_image(&layers, &Platform::new("linux", "amd64"))?;
                self.client.push_image(&repository, &image, &tags).await?;
                self.bytes.add_image(&image);
                (image.digest().to_owned(), vec![image.digest().to_owned()])
            }
            PackageKind::MultiPlatform => {
                let mut images = Vec::new();
                for (arch, base) in [
                    ("amd64", &fixture.alpine_amd64),
                    ("arm64", &fixture.alpine_arm64),
                ] {
                    let mut layers = base.clone();
                    layers.push(app(if arch == "amd64" { 0 } else { 1 }).await?);
                    images.push(oci::build_image(&layers, &Platform::new("linux", arch))?);
                }
                let index_image = oci::build_index(images)?;
                self.client
                    .push_index(&repository, &index_image, &tags)
                    .await?;
                for image in &index_image.images {
                    self.bytes.add_image(image);
                }
                self.bytes.manifests.insert(
                    index_image.index.digest.clone(),
                    index_image.index.bytes.len() as u64,
                );
                let children = index_image
                    .images
                    .iter()
                    .map(|image| image.digest().to_owned())
                    .collect();
                (index_image.digest().to_owned(), children)
            }
        };

        // As a push to GHCR does: the platform manifests appear as untagged versions first.
        if platforms.iter().any(|p| *p != digest) {
            for platform in &platforms {
                self.emulator
                    .add_version(OWNER, &name, VersionSpec::new(platform, &[]));
            }
        }
        let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
        self.emulator
            .add_version(OWNER, &name, VersionSpec::new(&digest, &tag_refs));
        let pushed = PushedVersion {
            package: name,
            repository,
            digest,
            tags,
            platforms,
        };
        tracing::debug!(digest = %pushed.digest, tags = ?pushed.tags, "pushed {}", pushed.package);
        self.versions.push(pushed.clone());
        Ok(pushed)
    }

    /// The layers package `index`'s versions share: its dependencies and, if big, its data.
    async fn package_layers(&self, index: usize) -> anyhow::Result<PackageLayers> {
        let scale = 1 + index % 3;
        let bytes = self.spec.deps_bytes * scale;
        let seed = 1000 + index as u64;
        let deps = build_blocking(move || bulk_layer("usr/lib/bench-deps", seed, bytes)).await?;
        let big = match self.spec.kind(index) {
            PackageKind::Big => {
                let bytes = self.spec.big_layer_bytes;
                let seed = 2000 + index as u64;
                Some(build_blocking(move || bulk_layer("opt/bench-data", seed, bytes)).await?)
            }
            _ => None,
        };
        Ok(PackageLayers { deps, big })
    }
}

/// Layers one package's versions share.
struct PackageLayers {
    deps: Layer,
    big: Option<Layer>,
}

/// Where the Trivy DB lives in the DB registry, and its tag (the DB schema version).
const DB_REPOSITORY: &str = "aquasecurity/trivy-db";
const DB_TAG: &str = "2";

/// The DB artifact's layer: a gzipped tar of `trivy.db` and `metadata.json`.
fn db_layer(db: &[u8], metadata: &[u8]) -> anyhow::Result<Vec<u8>> {
    use std::io::Write as _;
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    let mut tar = tar::Builder::new(gzip);
    for (name, contents) in [("trivy.db", db), ("metadata.json", metadata)] {
        let mut header = tar::Header::new_ustar();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, contents)?;
    }
    let mut gzip = tar.into_inner()?;
    gzip.flush()?;
    Ok(gzip.finish()?)
}

/// Runs a CPU-heavy layer build off the async threads.
async fn build_blocking(
    build: impl FnOnce() -> anyhow::Result<Layer> + Send + 'static,
) -> anyhow::Result<Layer> {
    tokio::task::spawn_blocking(build)
        .await
        .context("a layer build panicked")?
}

/// The emulator's `/token` named by host name: Trivy's registry client refuses a realm that is
/// a loopback IP literal other than the registry's own (see `crate::sandbox`).
fn token_realm(emulator_url: &str) -> String {
    let host_port = emulator_url.trim_start_matches("http://");
    let port = host_port
        .rsplit_once(':')
        .map_or(host_port, |(_, port)| port);
    format!("http://localhost:{port}/token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_org_meets_the_issue_minimum() {
        let spec = OrgSpec::full();
        assert!(spec.packages >= 30);
        assert_eq!(spec.versions * 2, 8, "8 tags, two per digest");
        let kinds: Vec<PackageKind> = (0..spec.packages).map(|i| spec.kind(i)).collect();
        assert_eq!(kinds.iter().filter(|k| **k == PackageKind::Big).count(), 3);
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == PackageKind::MultiPlatform)
                .count(),
            1
        );
        assert!(kinds.contains(&PackageKind::Alpine));
        assert!(spec.big_layer_bytes >= 100 * MIB);
    }

    #[test]
    fn tags_come_two_per_version() {
        assert_eq!(OrgSpec::tags(0), ["1.0.0", "1.0"]);
        assert_eq!(OrgSpec::tags(3), ["4.0.0", "4.0"]);
    }
}
