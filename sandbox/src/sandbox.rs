//! The whole sandbox in one value: the GitHub API emulator, the image registry (open, basic or
//! token auth) holding the fixture world's images, and an open registry serving the Trivy DB.
//!
//! `Sandbox::start` pushes every fixture image first and registers the package versions with the
//! digests actually pushed, so the emulator and the registry always agree. Each integration test
//! starts its own sandbox: startup is a few registry launches and pushes of small images.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::fixture::{self, FixturePackage, ImageShape, ImageSpec};
use crate::github::{Emulator, OwnerKind, PackageSpec, TokenKind, VersionSpec, Visibility};
use crate::oci::{self, Image, Platform, PushAuth, RegistryClient};
use crate::registry::{RegistryMode, RegistryServer};
use crate::token::TokenIssuer;

/// The repository whose Actions token [`Sandbox::actions_token`] is, and where SARIF goes.
pub const PIPELINES_REPOSITORY: &str = "bfx-org/pipelines";

/// The commit the demo reports SARIF for (`GITHUB_SHA`).
pub const COMMIT_SHA: &str = "5d1c0b4f9e8a7d6c5b4a39281706f5e4d3c2b1a0";

/// The ref the demo reports SARIF for (`GITHUB_REF`).
pub const GIT_REF: &str = "refs/heads/main";

/// Where the Trivy DB lives in the DB registry, and its tag (the DB schema version).
const DB_REPOSITORY: &str = "aquasecurity/trivy-db";
const DB_TAG: &str = "2";

/// The `service` registry tokens are issued for (their `aud`), and their issuer.
const TOKEN_SERVICE: &str = "dragnet-sandbox";
const TOKEN_ISSUER: &str = "dragnet-sandbox-token-issuer";

/// The user name of the basic-auth registry, and the user name ghcr.io ignores in token mode.
const BASIC_USER: &str = "dragnet";
const TOKEN_USER: &str = "x-access-token";

/// Overrides where the Trivy DB build is cached between sandboxes.
pub const CACHE_ENV: &str = "DRAGNET_SANDBOX_CACHE";

/// Which auth the image registry runs with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistryModeChoice {
    /// Anyone may pull.
    Open,
    /// HTTP basic auth with a generated user and password.
    Basic,
    /// ghcr.io-style bearer tokens from the emulator's `/token`.
    #[default]
    Token,
}

/// How to start a [`Sandbox`].
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// The image registry's auth; token by default, as on ghcr.io.
    pub registry_mode: RegistryModeChoice,
    /// Where the registries keep config, storage and logs.
    pub work_dir: PathBuf,
}

impl SandboxOptions {
    /// Token mode, keeping everything under `work_dir`.
    pub fn new(work_dir: impl Into<PathBuf>) -> SandboxOptions {
        SandboxOptions {
            registry_mode: RegistryModeChoice::default(),
            work_dir: work_dir.into(),
        }
    }
}

/// One platform manifest of a pushed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedPlatform {
    /// The platform manifest's digest.
    pub digest: String,
    /// Its OS and architecture.
    pub platform: Platform,
}

/// What was pushed for one fixture version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedVersion {
    /// The GitHub package name (`products/bfx/samtools`).
    pub package: String,
    /// The registry repository (`bfx-org/products/bfx/samtools`).
    pub repository: String,
    /// The tags pushed; empty for an untagged version (pushed by digest).
    pub tags: Vec<String>,
    /// The version's digest: the manifest's, or the index's for a multi-platform image.
    pub digest: String,
    /// The platform manifests: the image itself for a single image, else the index's children.
    pub platforms: Vec<PushedPlatform>,
    /// For a `MissingBlob` version, the layer digest deleted from the registry.
    pub missing_blob: Option<String>,
}

/// A running sandbox. Dropping it stops the emulator and both registries.
pub struct Sandbox {
    /// The GitHub API emulator.
    pub emulator: Emulator,
    /// Where the fixture images live, in the chosen auth mode.
    pub registry: RegistryServer,
    /// An open registry serving the Trivy DB, as a public mirror would.
    pub db_registry: RegistryServer,
    owner: String,
    token: String,
    actions_token: String,
    registry_password: Option<String>,
    pushed: Vec<PushedVersion>,
    _temp_dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Sandbox {
    // Tokens and passwords stay out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("api_url", &self.api_url())
            .field("registry", &self.registry)
            .field("db_registry", &self.db_registry)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts everything, pushes the fixture world and the Trivy DB, and registers the packages.
    pub async fn start(opts: SandboxOptions) -> anyhow::Result<Sandbox> {
        let started = Instant::now();
        let work_dir = opts.work_dir;
        let world = fixture::world();

        // The emulator first: token mode sends registry clients to its /token.
        let emulator = Emulator::start()
            .await
            .context("starting the GitHub API emulator")?;
        let token = random_token("ghp_");
        let actions_token = random_token("ghs_");
        emulator.add_owner(&world.owner, OwnerKind::Organization);
        emulator.add_token(&token, TokenKind::Pat);
        emulator.add_token(
            &actions_token,
            TokenKind::Actions {
                repository: PIPELINES_REPOSITORY.to_owned(),
            },
        );
        emulator.add_repository(PIPELINES_REPOSITORY);

        // The image registry in the chosen mode, and the client that fills it.
        let (mode, auth, registry_password) = match opts.registry_mode {
            RegistryModeChoice::Open => (RegistryMode::Open, PushAuth::Anonymous, None),
            RegistryModeChoice::Basic => {
                let password = random_token("");
                let mode = RegistryMode::Basic {
                    user: BASIC_USER.to_owned(),
                    password: password.clone(),
                };
                let auth = PushAuth::Basic {
                    user: BASIC_USER.to_owned(),
                    password: password.clone(),
                };
                (mode, auth, Some(password))
            }
            RegistryModeChoice::Token => {
                let issuer = Arc::new(TokenIssuer::new(TOKEN_ISSUER, TOKEN_SERVICE)?);
                emulator.set_registry_tokens(issuer.clone());
                let realm = token_realm(&emulator.url());
                (
                    RegistryMode::token(&realm, &issuer),
                    PushAuth::Issuer(issuer),
                    None,
                )
            }
        };
        let registry_dir = work_dir.join("registry");
        let db_registry_dir = work_dir.join("db-registry");
        let (registry, db_registry) = tokio::try_join!(
            async {
                let started = RegistryServer::start(mode, &registry_dir).await;
                started.context("starting the image registry")
            },
            async {
                let started = RegistryServer::start(RegistryMode::Open, &db_registry_dir).await;
                started.context("starting the Trivy DB registry")
            },
        )?;
        tracing::debug!(elapsed = ?started.elapsed(), "registries up");

        // The Trivy DB, built once and cached across sandboxes, is pushed while images are.
        let db_url = db_registry.url();
        let db_push = tokio::spawn(async move {
            let cache = cache_dir();
            let db = tokio::task::spawn_blocking(move || fixture::build_trivy_db(&cache))
                .await
                .context("the Trivy DB build panicked")?
                .context("building the Trivy DB")?;
            let artifact = oci::trivy_db_artifact(db.layer_tar_gz)?;
            RegistryClient::new(&db_url, PushAuth::Anonymous)?
                .push_image(DB_REPOSITORY, &artifact, &[DB_TAG.to_owned()])
                .await
                .context("pushing the Trivy DB")
        });

        // Images, one task per package (each is its own repository, so they never race), then
        // the emulator's view of them with the digests the registry holds. The registry's
        // filesystem driver syncs every file it writes: pushing in parallel hides that latency.
        let client = Arc::new(RegistryClient::new(&registry.url(), auth)?);
        let owner_path = world.owner.to_ascii_lowercase();
        let mut pushes = tokio::task::JoinSet::new();
        for (position, package) in world.packages.iter().cloned().enumerate() {
            let client = client.clone();
            let repository = format!("{owner_path}/{}", package.name.to_ascii_lowercase());
            pushes.spawn(async move {
                let versions = push_package(&client, &repository, &package).await;
                (position, versions)
            });
        }
        let mut per_package = vec![Vec::new(); world.packages.len()];
        while let Some(joined) = pushes.join_next().await {
            let (position, versions) = joined.context("a push task panicked")?;
            per_package[position] = versions?;
        }
        let mut pushed = Vec::new();
        for (package, versions) in world.packages.iter().zip(per_package) {
            register_package(&emulator, &world.owner, package, &versions);
            pushed.extend(versions);
        }
        tracing::debug!(elapsed = ?started.elapsed(), versions = pushed.len(), "images pushed");

        db_push.await.context("the Trivy DB push panicked")??;
        tracing::debug!(elapsed = ?started.elapsed(), "sandbox ready");

        Ok(Sandbox {
            emulator,
            registry,
            db_registry,
            owner: world.owner,
            token,
            actions_token,
            registry_password,
            pushed,
            _temp_dir: None,
        })
    }

    /// Starts a sandbox in `registry_mode` under a temporary folder removed on drop.
    pub async fn start_temporary(registry_mode: RegistryModeChoice) -> anyhow::Result<Sandbox> {
        let temp_dir = tempfile::Builder::new()
            .prefix("dragnet-sandbox-")
            .tempdir()
            .context("creating a temporary sandbox folder")?;
        let opts = SandboxOptions {
            registry_mode,
            work_dir: temp_dir.path().to_path_buf(),
        };
        let mut sandbox = Sandbox::start(opts).await?;
        sandbox._temp_dir = Some(temp_dir);
        Ok(sandbox)
    }

    /// The organization owning the packages (`bfx-org`).
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// A classic PAT registered in the emulator (`read:packages`, may upload SARIF).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// An Actions `GITHUB_TOKEN` of [`PIPELINES_REPOSITORY`].
    pub fn actions_token(&self) -> &str {
        &self.actions_token
    }

    /// The emulator's base URL (`GITHUB_API_URL`).
    pub fn api_url(&self) -> String {
        self.emulator.url()
    }

    /// The image registry, `127.0.0.1:PORT`.
    pub fn registry_host(&self) -> String {
        self.registry.host()
    }

    /// The Trivy DB reference for `--db-repository`: `127.0.0.1:PORT/aquasecurity/trivy-db:2`.
    pub fn db_repository(&self) -> String {
        format!("{}/{DB_REPOSITORY}:{DB_TAG}", self.db_registry.host())
    }

    /// Registry credentials: the user and password in basic mode, `("x-access-token", PAT)` in
    /// token mode (as for ghcr.io), none for an open registry.
    pub fn registry_credentials(&self) -> Option<(String, String)> {
        match self.registry.mode() {
            RegistryMode::Open => None,
            RegistryMode::Basic { user, .. } => Some((
                user.clone(),
                self.registry_password.clone().unwrap_or_default(),
            )),
            RegistryMode::Token { .. } => Some((TOKEN_USER.to_owned(), self.token.clone())),
        }
    }

    /// The digest pushed for `package` under `tag`.
    pub fn digest_of(&self, package: &str, tag: &str) -> Option<String> {
        self.pushed
            .iter()
            .find(|version| version.package == package && version.tags.iter().any(|t| t == tag))
            .map(|version| version.digest.clone())
    }

    /// Everything pushed, one entry per fixture version, in fixture order.
    pub fn pushed(&self) -> &[PushedVersion] {
        &self.pushed
    }

    /// The working folder of the image registry (config, storage, `access.log`).
    pub fn registry_dir(&self) -> &Path {
        self.registry.dir()
    }
}

/// Pushes every version of `package` and, for `MissingBlob` versions, deletes one layer.
async fn push_package(
    client: &RegistryClient,
    repository: &str,
    package: &FixturePackage,
) -> anyhow::Result<Vec<PushedVersion>> {
    let mut pushed = Vec::new();
    // Oldest first, so that a tag shared by two versions ends where the newest put it.
    for version in package.versions.iter().rev() {
        let record = |digest: &str, platforms| PushedVersion {
            package: package.name.clone(),
            repository: repository.to_owned(),
            tags: version.tags.clone(),
            digest: digest.to_owned(),
            platforms,
            missing_blob: None,
        };
        let entry = match &version.shape {
            ImageShape::Single(spec) => {
                let image = image_from_spec(spec)?;
                client.push_image(repository, &image, &version.tags).await?;
                record(image.digest(), vec![platform_of(&image)])
            }
            ImageShape::Index(specs) => {
                let images = specs
                    .iter()
                    .map(image_from_spec)
                    .collect::<anyhow::Result<_>>()?;
                let index = oci::build_index(images)?;
                client.push_index(repository, &index, &version.tags).await?;
                record(
                    index.digest(),
                    index.images.iter().map(platform_of).collect(),
                )
            }
            ImageShape::MissingBlob(spec) => {
                let image = image_from_spec(spec)?;
                client.push_image(repository, &image, &version.tags).await?;
                // The fixture makes all its layers unique; the top one goes.
                let layer = image
                    .layers
                    .last()
                    .context("a MissingBlob image has no layer")?;
                client.delete_blob(repository, &layer.digest).await?;
                PushedVersion {
                    missing_blob: Some(layer.digest.clone()),
                    ..record(image.digest(), vec![platform_of(&image)])
                }
            }
        };
        tracing::trace!(repository, digest = %entry.digest, tags = ?entry.tags, "pushed");
        pushed.push(entry);
    }
    pushed.reverse();
    Ok(pushed)
}

/// Tells the emulator about `package` and the versions pushed for it. For a multi-platform
/// version, the platform manifests come first as untagged versions, as a push to GHCR makes them.
fn register_package(
    emulator: &Emulator,
    owner: &str,
    package: &FixturePackage,
    pushed: &[PushedVersion],
) {
    let visibility = if package.public {
        Visibility::Public
    } else {
        Visibility::Private
    };
    let mut spec = PackageSpec::new(&package.name).visibility(visibility);
    if let Some(repository) = &package.repository {
        spec = spec.repository(repository);
    }
    emulator.add_package(owner, spec);

    // Oldest first: the emulator dates each version a minute after the previous one.
    for version in pushed.iter().rev() {
        if version.platforms.iter().any(|p| p.digest != version.digest) {
            for platform in &version.platforms {
                emulator.add_version(
                    owner,
                    &package.name,
                    VersionSpec::new(&platform.digest, &[]),
                );
            }
        }
        let tags: Vec<&str> = version.tags.iter().map(String::as_str).collect();
        emulator.add_version(
            owner,
            &package.name,
            VersionSpec::new(&version.digest, &tags),
        );
    }
}

/// The emulator's `/token` as the registry's realm, named `localhost` rather than 127.0.0.1:
/// go-containerregistry (inside Trivy) refuses a realm whose host is a loopback or private IP
/// literal unless it equals the registry's own host:port, but lets a host name through.
fn token_realm(emulator_url: &str) -> String {
    let host_port = emulator_url.trim_start_matches("http://");
    let port = host_port
        .rsplit_once(':')
        .map_or(host_port, |(_, port)| port);
    format!("http://localhost:{port}/token")
}

/// Builds the OCI image for a fixture image spec.
fn image_from_spec(spec: &ImageSpec) -> anyhow::Result<Image> {
    let layers = spec
        .layers
        .iter()
        .map(|layer| {
            oci::build_layer(layer.files.iter().map(|file| oci::LayerEntry {
                path: &file.path,
                contents: &file.contents,
                mode: file.mode,
            }))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if layers.is_empty() {
        bail!(
            "fixture image for {}/{} has no layers",
            spec.os,
            spec.architecture
        );
    }
    oci::build_image(&layers, &Platform::new(&spec.os, &spec.architecture))
}

fn platform_of(image: &Image) -> PushedPlatform {
    PushedPlatform {
        digest: image.digest().to_owned(),
        platform: image
            .platform
            .clone()
            .unwrap_or_else(|| Platform::new("linux", "amd64")),
    }
}

/// Where the Trivy DB build is cached: `$DRAGNET_SANDBOX_CACHE`, else `sandbox-cache` in the
/// Cargo target folder.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(CACHE_ENV) {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."))
                .join("target")
        });
    target.join("sandbox-cache")
}

/// A random token-shaped string (`ghp_` and 36 alphanumerics, as GitHub's look).
fn random_token(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let suffix: String = (0..36)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_names_the_emulator_by_host_name() {
        assert_eq!(
            token_realm("http://127.0.0.1:4321"),
            "http://localhost:4321/token"
        );
    }

    #[test]
    fn random_tokens_look_like_github_tokens() {
        let token = random_token("ghp_");
        assert_eq!(token.len(), 40);
        assert!(token.starts_with("ghp_"));
        assert_ne!(token, random_token("ghp_"));
    }
}
