//! Launches Debian's `docker-registry` (CNCF distribution 2.8) on 127.0.0.1 in one of three auth
//! modes: open, htpasswd basic auth, or ghcr.io-style bearer tokens.
//!
//! Each server gets its own folder (config, storage, logs), a free port, and is ready once
//! `GET /v2/` answers. The child dies with its `RegistryServer` and, through `PR_SET_PDEATHSIG`,
//! with the process that started it, so a crashed test leaves no registry behind.

mod process;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::token::TokenIssuer;

/// The binary started unless `DRAGNET_SANDBOX_REGISTRY_BIN` names another.
pub const DEFAULT_REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Environment variable that overrides [`DEFAULT_REGISTRY_BIN`].
pub const REGISTRY_BIN_ENV: &str = "DRAGNET_SANDBOX_REGISTRY_BIN";

/// How many times `GET /v2/` is tried before giving up, and the pause between tries: about
/// five seconds in all, while a healthy registry answers within a few tries.
const READY_TRIES: u32 = 250;
const READY_PAUSE: Duration = Duration::from_millis(20);

/// How many ports are tried when the one picked is taken before the registry binds it.
const PORT_TRIES: u32 = 3;

/// How the registry authenticates its clients.
#[derive(Clone)]
pub enum RegistryMode {
    /// Anyone may pull and push.
    Open,
    /// HTTP basic auth against an htpasswd file holding one bcrypt-hashed user.
    Basic { user: String, password: String },
    /// Bearer tokens as ghcr.io uses them: clients fetch a JWT from `realm` and present it.
    Token {
        /// Where the `WWW-Authenticate` challenge sends clients (the emulator's `/token`).
        realm: String,
        /// The `service` named in the challenge and expected as the token's `aud`.
        service: String,
        /// The `iss` every token must carry.
        issuer: String,
        /// The certificate that signs tokens, PEM.
        root_cert_pem: String,
    },
}

impl RegistryMode {
    /// Token mode trusting `issuer`, sending clients to `realm` for tokens.
    pub fn token(realm: &str, issuer: &TokenIssuer) -> RegistryMode {
        RegistryMode::Token {
            realm: realm.to_owned(),
            service: issuer.service().to_owned(),
            issuer: issuer.issuer().to_owned(),
            root_cert_pem: issuer.root_cert_pem(),
        }
    }

    /// A short name for logs: `open`, `basic` or `token`.
    pub fn name(&self) -> &'static str {
        match self {
            RegistryMode::Open => "open",
            RegistryMode::Basic { .. } => "basic",
            RegistryMode::Token { .. } => "token",
        }
    }
}

impl std::fmt::Debug for RegistryMode {
    // The password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryMode::Open => f.write_str("Open"),
            RegistryMode::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            RegistryMode::Token {
                realm,
                service,
                issuer,
                ..
            } => f
                .debug_struct("Token")
                .field("realm", realm)
                .field("service", service)
                .field("issuer", issuer)
                .finish_non_exhaustive(),
        }
    }
}

/// A running `docker-registry`, stopped when dropped.
#[derive(Debug)]
pub struct RegistryServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    mode: RegistryMode,
}

impl RegistryServer {
    /// Starts a registry keeping its config, storage and logs under `dir` (created if missing),
    /// and returns once it answers `GET /v2/`.
    pub async fn start(mode: RegistryMode, dir: &Path) -> anyhow::Result<RegistryServer> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        let bin = std::env::var_os(REGISTRY_BIN_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_REGISTRY_BIN));
        write_auth_files(&mode, &dir)?;

        let mut last_error = None;
        for _ in 0..PORT_TRIES {
            let port = free_port()?;
            let mut server = RegistryServer {
                child: None,
                port,
                dir: dir.clone(),
                mode: mode.clone(),
            };
            fs::write(server.config_path(), server.config_yaml())
                .with_context(|| format!("writing {}", server.config_path().display()))?;
            server.child = Some(server.spawn(&bin)?);

            match server.wait_until_ready().await {
                Ok(()) => {
                    tracing::debug!(url = %server.url(), mode = server.mode.name(), "registry up");
                    return Ok(server);
                }
                Err(error) => {
                    last_error = Some(error);
                    server.stop();
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("registry never started")))
    }

    /// `127.0.0.1:PORT`, the form image references use.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`, the base of the distribution API.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The port the registry listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The auth mode the registry runs in.
    pub fn mode(&self) -> &RegistryMode {
        &self.mode
    }

    /// The folder holding this registry's config, storage and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the registry's storage driver keeps blobs and manifests.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.join("storage")
    }

    /// The access log, one Apache combined-format line per request (with bytes served).
    pub fn access_log_path(&self) -> PathBuf {
        self.dir.join("access.log")
    }

    /// The registry's own log (startup, errors, one line per response).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("registry.log")
    }

    /// Stops the registry now; dropping it does the same.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("config.yml")
    }

    /// The registry's YAML config. Strings are written as JSON strings, which YAML reads as
    /// double-quoted scalars, so paths with odd characters survive.
    fn config_yaml(&self) -> String {
        let q = |value: &str| serde_json::Value::from(value).to_string();
        let path = |name: &str| q(&self.dir.join(name).to_string_lossy());
        let mut yaml = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
             \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: {addr}\n",
            storage = path("storage"),
            addr = q(&self.host()),
        );
        match &self.mode {
            RegistryMode::Open => {}
            RegistryMode::Basic { .. } => {
                yaml += &format!(
                    "auth:\n  htpasswd:\n    realm: {realm}\n    path: {path}\n",
                    realm = q("dragnet-sandbox"),
                    path = path("htpasswd"),
                );
            }
            RegistryMode::Token {
                realm,
                service,
                issuer,
                ..
            } => {
                yaml += &format!(
                    "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    \
                     issuer: {issuer}\n    rootcertbundle: {bundle}\n",
                    realm = q(realm),
                    service = q(service),
                    issuer = q(issuer),
                    bundle = path("token-root.pem"),
                );
            }
        }
        yaml
    }

    fn spawn(&self, bin: &Path) -> anyhow::Result<Child> {
        let open_log = |path: PathBuf| {
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))
        };
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg(self.config_path())
            .current_dir(&self.dir)
            // The upload-state secret goes through the environment, never a file or argv.
            .env(
                "REGISTRY_HTTP_SECRET",
                hex::encode(rand::random::<[u8; 16]>()),
            )
            .stdin(Stdio::null())
            // distribution writes its access log to stdout and its own log to stderr.
            .stdout(open_log(self.access_log_path())?)
            .stderr(open_log(self.log_path())?);
        process::spawn_tied_to_this_process(command)
            .with_context(|| format!("starting {}; set {REGISTRY_BIN_ENV}", bin.display()))
    }

    /// Polls `GET /v2/` until it answers (200 open, 401 with auth), or fails early when the
    /// child exits, quoting the end of its log.
    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building an HTTP client")?;
        let probe = format!("{}/v2/", self.url());
        for _ in 0..READY_TRIES {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("checking the registry child")?
            {
                bail!(
                    "docker-registry exited ({status}) before answering on {}: {}",
                    self.host(),
                    log_tail(&self.log_path())
                );
            }
            if let Ok(response) = client.get(&probe).send().await {
                let status = response.status().as_u16();
                if status == 200 || status == 401 {
                    return Ok(());
                }
            }
            tokio::time::sleep(READY_PAUSE).await;
        }
        bail!(
            "docker-registry did not answer GET /v2/ on {} within {} tries: {}",
            self.host(),
            READY_TRIES,
            log_tail(&self.log_path())
        )
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes the htpasswd file or the token root certificate the mode needs.
fn write_auth_files(mode: &RegistryMode, dir: &Path) -> anyhow::Result<()> {
    match mode {
        RegistryMode::Open => Ok(()),
        RegistryMode::Basic { user, password } => {
            // The lowest cost bcrypt allows: the hash guards a throwaway password, and the
            // registry checks it on every request.
            let hash = bcrypt::hash(password, 4).context("hashing the registry password")?;
            let path = dir.join("htpasswd");
            fs::write(&path, format!("{user}:{hash}\n"))
                .with_context(|| format!("writing {}", path.display()))
        }
        RegistryMode::Token { root_cert_pem, .. } => {
            let path = dir.join("token-root.pem");
            fs::write(&path, root_cert_pem).with_context(|| format!("writing {}", path.display()))
        }
    }
}

/// A port nobody listens on right now. Another process may take it before the registry binds
/// it; `start` then tries another.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener
        .local_addr()
        .context("reading a bound port")?
        .port())
}

/// The last few lines of a log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    if tail.is_empty() {
        format!("{} is empty", path.display())
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(mode: RegistryMode) -> RegistryServer {
        RegistryServer {
            child: None,
            port: 5000,
            dir: PathBuf::from("/tmp/reg dir"),
            mode,
        }
    }

    #[test]
    fn open_config_enables_deletes_and_access_logs() {
        let yaml = server(RegistryMode::Open).config_yaml();
        assert!(yaml.contains("rootdirectory: \"/tmp/reg dir/storage\""));
        assert!(yaml.contains("delete:\n    enabled: true"));
        assert!(yaml.contains("accesslog:\n    disabled: false"));
        assert!(yaml.contains("addr: \"127.0.0.1:5000\""));
        assert!(!yaml.contains("auth:"));
    }

    #[test]
    fn token_config_names_realm_service_issuer_and_bundle() {
        let yaml = server(RegistryMode::Token {
            realm: "http://127.0.0.1:9/token".into(),
            service: "svc".into(),
            issuer: "iss".into(),
            root_cert_pem: String::new(),
        })
        .config_yaml();
        assert!(yaml.contains("realm: \"http://127.0.0.1:9/token\""));
        assert!(yaml.contains("service: \"svc\""));
        assert!(yaml.contains("issuer: \"iss\""));
        assert!(yaml.contains("rootcertbundle: \"/tmp/reg dir/token-root.pem\""));
    }

    #[test]
    fn debug_output_hides_the_password() {
        let mode = RegistryMode::Basic {
            user: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{mode:?}").contains("hunter2"));
        assert!(!format!("{:?}", server(mode)).contains("hunter2"));
    }
}
