//! A fault-injecting HTTP proxy for reliability tests: put it in front of the registry or the
//! GitHub emulator, and a seeded share of requests gets a server error, a throttle with
//! `retry-after`, a reset connection, a stall or a truncated body instead of the real answer.
//!
//! It speaks plain HTTP/1.1, one request per connection (`Connection: close` both ways), so
//! each fault is exact; the schedule ([`FaultPlan`]) is deterministic per request key, and every
//! request is logged with the fault it got, so tests can count tries and bound retries.

mod plan;
mod wire;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub use plan::{FaultKind, FaultPlan};

/// The longest the proxy waits for an upstream answer before answering 504 itself.
const UPSTREAM_DEADLINE: Duration = Duration::from_secs(120);
/// The largest upstream answer the proxy relays.
const MAX_ANSWER: usize = 512 * 1024 * 1024;

/// One request the proxy saw, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// `GET`, `HEAD`, `POST`, …
    pub method: String,
    /// The request target as sent, with its query.
    pub target: String,
    /// How many earlier requests had the same method and target.
    pub nth: u32,
    /// The client's `User-Agent` (`dragnet/…`, or Trivy's Go client).
    pub user_agent: String,
    /// The fault it got, or `None` when it was forwarded intact.
    pub fault: Option<FaultKind>,
}

/// A running proxy. Dropping it stops accepting connections.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    plan: FaultPlan,
    upstream: SocketAddr,
    upstream_base: String,
    proxy_base: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    seen: HashMap<String, u32>,
    log: Vec<ProxiedRequest>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream` (`127.0.0.1:PORT`, or
    /// `http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str, plan: FaultPlan) -> anyhow::Result<FaultProxy> {
        let upstream_host = upstream.trim_start_matches("http://").trim_end_matches('/');
        let upstream_addr: SocketAddr = upstream_host
            .parse()
            .with_context(|| format!("the upstream `{upstream}` is not IP:PORT"))?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            plan,
            upstream: upstream_addr,
            upstream_base: format!("http://{upstream_host}"),
            proxy_base: format!("http://{addr}"),
            state: Mutex::new(State::default()),
        });

        let accepting = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = accepting.clone();
                tokio::spawn(async move {
                    if let Err(error) = serve(stream, &shared).await {
                        tracing::trace!(%error, "fault proxy connection ended");
                    }
                });
            }
        });
        tracing::debug!(%addr, %upstream, "fault proxy listening");
        Ok(FaultProxy { addr, shared, task })
    }

    /// `127.0.0.1:PORT`, for `--registry`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`, for `GITHUB_API_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far, oldest first.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.lock().log.clone()
    }

    /// How many faults of each kind were injected, by [`FaultKind::label`].
    pub fn injected(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for fault in self.lock().log.iter().filter_map(|r| r.fault) {
            *counts.entry(fault.label()).or_default() += 1;
        }
        counts
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .finish_non_exhaustive()
    }
}

/// Serves one connection: one request, then close.
async fn serve(mut client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let Some(request) = wire::read_request(&mut client).await? else {
        return Ok(());
    };

    // Decide, and log before acting, so that a stalled request is already counted.
    let key = format!("{} {}", request.method, request.target);
    let fault = {
        let mut state = shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let nth = {
            let seen = state.seen.entry(key.clone()).or_default();
            let nth = *seen;
            *seen += 1;
            nth
        };
        let fault = shared.plan.decide(&key, nth);
        state.log.push(ProxiedRequest {
            method: request.method.clone(),
            target: request.target.clone(),
            nth,
            user_agent: request.header("user-agent").unwrap_or_default().to_string(),
            fault,
        });
        fault
    };
    if let Some(fault) = fault {
        tracing::debug!(%key, fault = %fault.label(), "injecting a fault");
    }

    match fault {
        None => {
            let answer = forward(&request, shared).await;
            client.write_all(&answer).await?;
            client.shutdown().await
        }
        Some(FaultKind::ServerError(status)) => {
            let answer = canned(status, &[], "{\"message\":\"injected server error\"}");
            client.write_all(&answer).await?;
            client.shutdown().await
        }
        Some(FaultKind::RateLimited(status)) => {
            let retry_after = shared.plan.retry_after_secs.to_string();
            let body = "{\"message\":\"You have exceeded a secondary rate limit (injected)\"}";
            let answer = canned(status, &[("retry-after", &retry_after)], body);
            client.write_all(&answer).await?;
            client.shutdown().await
        }
        Some(FaultKind::Reset) => {
            // SO_LINGER 0 turns the close into a reset.
            client.set_zero_linger()?;
            drop(client);
            Ok(())
        }
        Some(FaultKind::Stall) => {
            // Hold the connection silent; stop early if the client gives up first.
            let mut byte = [0u8; 1];
            let _ = tokio::time::timeout(shared.plan.stall, client.read(&mut byte)).await;
            Ok(())
        }
        Some(FaultKind::Truncate) => {
            let answer = forward(&request, shared).await;
            let cut = match wire::find_head_end(&answer) {
                Some(head_end) if answer.len() > head_end + 4 => {
                    let body = answer.len() - (head_end + 4);
                    head_end + 4 + body / 2
                }
                _ => answer.len() / 2,
            };
            client.write_all(&answer[..cut]).await?;
            client.flush().await?;
            client.set_zero_linger()?;
            Ok(())
        }
    }
}

/// Forwards the request and returns the upstream's answer, rewritten for the client; a 502
/// or 504 of the proxy's own when the upstream fails.
async fn forward(request: &wire::Request, shared: &Shared) -> Vec<u8> {
    let exchange = async {
        let mut upstream = TcpStream::connect(shared.upstream).await?;
        upstream.write_all(&request.to_upstream()).await?;
        let mut answer = Vec::new();
        (&mut upstream)
            .take(MAX_ANSWER as u64)
            .read_to_end(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(UPSTREAM_DEADLINE, exchange).await {
        Ok(Ok(answer)) if !answer.is_empty() => {
            wire::rewrite_response(&answer, &shared.upstream_base, &shared.proxy_base)
        }
        Ok(Ok(_)) => canned(
            502,
            &[],
            "{\"message\":\"the upstream closed without answering\"}",
        ),
        Ok(Err(error)) => {
            tracing::warn!(%error, "fault proxy: the upstream failed");
            canned(502, &[], "{\"message\":\"the upstream failed\"}")
        }
        Err(_) => canned(504, &[], "{\"message\":\"the upstream did not answer\"}"),
    }
}

/// An answer of the proxy's own.
fn canned(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let reason = match status {
        403 => "Forbidden",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-answer upstream: replies `body` to every request.
    async fn upstream(body: &'static str) -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = wire::read_request(&mut stream).await;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\
                         link: <http://{addr}/next>; rel=\"next\"\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        addr
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn forwards_and_points_links_at_itself() {
        let addr = upstream("hello world").await;
        let proxy = FaultProxy::start(&addr.to_string(), FaultPlan::new(1, 0.0))
            .await
            .unwrap();
        let response = client()
            .get(format!("{}/a", proxy.url()))
            .send()
            .await
            .unwrap();
        let link = response.headers()["link"].to_str().unwrap().to_string();
        assert_eq!(link, format!("<{}/next>; rel=\"next\"", proxy.url()));
        assert_eq!(response.text().await.unwrap(), "hello world");
        assert_eq!(proxy.requests().len(), 1);
        assert!(proxy.injected().is_empty());
    }

    #[tokio::test]
    async fn injects_each_kind_of_fault() {
        let addr = upstream("a body long enough to be cut in half").await;
        let kinds = [
            FaultKind::ServerError(503),
            FaultKind::RateLimited(429),
            FaultKind::Reset,
            FaultKind::Stall,
            FaultKind::Truncate,
        ];
        for kind in kinds {
            let plan = FaultPlan::new(1, 1.0)
                .kinds(&[kind])
                .stall(Duration::from_secs(5));
            let proxy = FaultProxy::start(&addr.to_string(), plan).await.unwrap();
            let sent = client().get(format!("{}/a", proxy.url())).send().await;
            match kind {
                FaultKind::ServerError(status) | FaultKind::RateLimited(status) => {
                    let response = sent.unwrap();
                    assert_eq!(response.status().as_u16(), status);
                    if let FaultKind::RateLimited(_) = kind {
                        assert_eq!(response.headers()["retry-after"], "1");
                    }
                }
                FaultKind::Reset => assert!(sent.is_err(), "{sent:?}"),
                FaultKind::Stall => assert!(sent.unwrap_err().is_timeout()),
                FaultKind::Truncate => {
                    let body = sent.unwrap().bytes().await;
                    assert!(
                        body.is_err(),
                        "a truncated body must fail to read: {body:?}"
                    );
                }
            }
            assert_eq!(proxy.injected()[&kind.label()], 1, "{kind:?}");
        }
    }
}
