//! The client/server experiment: dragnet's Trivy scans run as clients of one `trivy server`,
//! which holds the vulnerability DB and one layer cache for all of them.
//!
//! Trivy's on-disk layer cache is a BoltDB that a process locks for its whole run, so parallel
//! `trivy image` processes cannot share it (a second one fails after 5 s); Trivy's answer for
//! parallel scanning is its server. This measures what dragnet would gain, without changing
//! dragnet: a wrapper in front of Trivy turns each `trivy image` scan into a client call.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long the server may take to answer `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `trivy server`, killed and reaped on drop.
pub struct TrivyServer {
    child: Child,
    url: String,
}

impl TrivyServer {
    /// Starts `trivy server` on a free loopback port over `cache_dir` (which must already hold
    /// the DB) and waits until it answers.
    pub fn start(trivy: &Path, cache_dir: &Path, log: &Path) -> anyhow::Result<TrivyServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let out = std::fs::File::create(log)?;
        let child = Command::new(trivy)
            .args(["server", "--skip-db-update", "--quiet"])
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg(format!("--cache-dir={}", cache_dir.display()))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting trivy server")?;
        let mut server = TrivyServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while !healthy(port) {
            if let Some(status) = server.child.try_wait()? {
                bail!("trivy server exited with {status}; see {}", log.display());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("trivy server did not answer within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TrivyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /healthz` answers 200.
fn healthy(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

/// Writes `dir/trivy-client`: Trivy with every image scan sent to `server_url` (dropping any
/// `--cache-backend`), everything else (version, DB download) passed through unchanged.
pub fn client_wrapper(dir: &Path, trivy: &Path, server_url: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join("trivy-client");
    let real = trivy.display();
    let script = format!(
        "#!/bin/sh\n\
         # dragnet-bench: Trivy image scans as clients of {server_url}.\n\
         if [ \"$1\" = image ]; then\n\
         \x20 case \" $* \" in *\" --download-db-only \"*) exec '{real}' \"$@\";; esac\n\
         \x20 for a in \"$@\"; do\n\
         \x20   shift\n\
         \x20   case \"$a\" in\n\
         \x20     --cache-backend=*) ;;\n\
         \x20     --) set -- \"$@\" --server={server_url} -- ;;\n\
         \x20     *) set -- \"$@\" \"$a\" ;;\n\
         \x20   esac\n\
         \x20 done\n\
         fi\n\
         exec '{real}' \"$@\"\n"
    );
    std::fs::write(&path, script)?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}
