//! One `trivy server` for a run's scans, so that parallel scans share one layer cache.
//!
//! Trivy's on-disk layer cache is a BoltDB file that a `trivy image` process locks for its whole
//! run: a second process waits 5 s for it, then fails ("cache may be in use by another
//! process"). Without a server, parallel scans must each keep their layers in memory and fetch
//! every layer again, even the base layers every image shares. A server owns the DB and the
//! cache; `trivy image --server` clients fetch only the layers the cache lacks, analyse them
//! and hand the result to the server, so each layer is fetched once per cache, across the run
//! and across runs. The server listens on 127.0.0.1 only and demands a random token, so no
//! other local process can read or poison the cache; its process group dies with its handle.

use std::ffi::OsString;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tracing::debug;

use super::{Trivy, TrivyError, command};

/// How long the server may take to open the DB and answer `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often readiness is checked.
const READY_POLL: Duration = Duration::from_millis(25);

/// How many ports are tried when the one picked is taken before the server binds it.
const PORT_TRIES: u32 = 3;

/// Where a running server is, as its clients need it.
#[derive(Clone)]
pub(crate) struct ServerAddress {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The token clients send (`TRIVY_TOKEN`); never on a command line.
    pub token: String,
}

impl std::fmt::Debug for ServerAddress {
    // The token stays out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAddress")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A running `trivy server`; dropping it kills the server.
#[derive(Debug)]
pub struct TrivyServer {
    child: tokio::process::Child,
    address: ServerAddress,
}

impl TrivyServer {
    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.address.url
    }

    pub(crate) fn address(&self) -> &ServerAddress {
        &self.address
    }
}

impl Drop for TrivyServer {
    fn drop(&mut self) {
        // The server leads its own process group: kill the group, so that a wrapper script's
        // Trivy dies with the wrapper, then reap at once when we can.
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: killpg only sends a signal; the group is the one the child leads.
            unsafe { libc::killpg(pid, libc::SIGKILL) };
        }
        let _ = self.child.start_kill();
        let _ = self.child.try_wait();
    }
}

impl Trivy {
    /// Starts `trivy server` over the configured cache (whose DB must be downloaded) and waits
    /// until it answers. Scans of a runner made with [`Trivy::with_server`] go through it.
    pub async fn serve(&self) -> Result<TrivyServer, TrivyError> {
        let what = "starting trivy server";
        let io = |error: std::io::Error| TrivyError::Io {
            what: what.to_string(),
            error,
        };
        let token = random_token().map_err(io)?;
        let log_path = self.config.cache_dir.join("server.log");
        let mut last = None;
        for _ in 0..PORT_TRIES {
            let port = free_port().map_err(io)?;
            let args = server_args(self, port);
            let mut command = command::command(&self.config.program, &args, None);
            let log = std::fs::File::create(&log_path).map_err(io)?;
            command
                .env("TRIVY_TOKEN", &token)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .kill_on_drop(true)
                .process_group(0);
            let child = command.spawn().map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => TrivyError::ProgramNotFound {
                    program: self.config.program.clone(),
                },
                _ => TrivyError::Spawn {
                    program: self.config.program.clone(),
                    error,
                },
            })?;
            let mut server = TrivyServer {
                child,
                address: ServerAddress {
                    url: format!("http://127.0.0.1:{port}"),
                    token: token.clone(),
                },
            };
            match wait_until_ready(&mut server, port).await {
                Ok(()) => {
                    debug!(url = server.url(), "trivy server up");
                    return Ok(server);
                }
                Err(detail) => last = Some(detail),
            }
        }
        let detail = last.unwrap_or_default();
        Err(io(std::io::Error::other(format!(
            "{detail}; see {}",
            log_path.display()
        ))))
    }

    /// This runner, sending its image scans to `server`.
    pub fn with_server(mut self, server: &TrivyServer) -> Trivy {
        self.server = Some(server.address().clone());
        self
    }
}

/// `trivy server` on 127.0.0.1:`port` over the configured cache, never updating the DB.
fn server_args(trivy: &Trivy, port: u16) -> Vec<OsString> {
    let mut cache_dir = OsString::from("--cache-dir=");
    cache_dir.push(&trivy.config.cache_dir);
    vec![
        "server".into(),
        format!("--listen=127.0.0.1:{port}").into(),
        cache_dir,
        "--skip-db-update".into(),
        "--quiet".into(),
        "--config=".into(),
    ]
}

/// Waits until `GET /healthz` answers 200, the server exits, or [`READY_TIMEOUT`] passes.
async fn wait_until_ready(server: &mut TrivyServer, port: u16) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if healthy(port).await {
            return Ok(());
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            return Err(format!("trivy server exited with {status}"));
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(format!(
                "trivy server did not answer within {}s",
                READY_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

async fn healthy(port: u16) -> bool {
    let ask = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200"))
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// 32 hex digits from the kernel's random source.
fn random_token() -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trivy::TrivyConfig;

    #[test]
    fn the_server_listens_on_loopback_and_never_updates_the_db() {
        let trivy = Trivy::new(TrivyConfig::new("/cache/trivy"));
        let args: Vec<String> = server_args(&trivy, 4954)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "server",
                "--listen=127.0.0.1:4954",
                "--cache-dir=/cache/trivy",
                "--skip-db-update",
                "--quiet",
                "--config=",
            ]
        );
    }

    #[test]
    fn a_scan_through_the_server_uses_its_cache_instead_of_memory() {
        let config = TrivyConfig::new("/cache/trivy");
        let args: Vec<String> =
            command::scan_args_with(&config, "img", Some("http://127.0.0.1:4954"))
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect();
        assert!(args.contains(&"--server=http://127.0.0.1:4954".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--cache-backend")));
        assert!(
            !args.join(" ").contains("TRIVY_TOKEN"),
            "the token is not an argument"
        );
        assert_eq!(args.last().map(String::as_str), Some("img"));
    }

    #[test]
    fn tokens_are_random_and_stay_out_of_debug_output() {
        let token = random_token().unwrap();
        assert_eq!(token.len(), 32);
        assert_ne!(token, random_token().unwrap());
        let address = ServerAddress {
            url: "http://127.0.0.1:1".into(),
            token: token.clone(),
        };
        assert!(!format!("{address:?}").contains(&token));
    }
}
