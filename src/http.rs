//! The one HTTP layer under both the GitHub and the registry clients.
//!
//! Retry policy, and why: GitHub and registries fail transiently (5xx, resets, timeouts) and
//! throttle with 429 or 403. A request is retried on 500/502/503/504, on 429, on a 403 that
//! carries `retry-after` or `x-ratelimit-remaining: 0` or whose message says GitHub's secondary
//! rate limit, and on connection errors; never on other 4xx, which are answers. The wait is
//! `retry-after` when given, else until `x-ratelimit-reset`
//! when the budget is spent, else a 60 s floor for throttling (GitHub's advice for secondary
//! limits), else exponential backoff with jitter. Tries are bounded, and a wait longer than
//! [`RetryPolicy::max_wait`] fails at once with the time the limit resets, rather than hanging.
//! Waiting goes through [`Pause`], so tests never sleep for real. Errors never carry a URL's
//! query or a header, so no credential can reach a message.
//!
//! A try ends only when the whole answer has arrived: the body is read inside the try (up to
//! [`BUFFER_LIMIT`]), so an answer cut short or stalled mid-body (see [`HttpTimeouts`]) is a
//! transport error and retried like a reset connection, instead of failing in the caller.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};
use tokio::sync::Semaphore;

/// How many times and how long to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub max_retries: usize,
    /// The first backoff delay.
    pub min_delay: Duration,
    /// The longest backoff delay.
    pub max_delay: Duration,
    /// The longest single wait a server may ask for before dragnet gives up instead.
    pub max_wait: Duration,
    /// The shortest wait after being throttled without a hint.
    pub throttle_floor: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_wait: Duration::from_secs(15 * 60),
            throttle_floor: Duration::from_secs(60),
        }
    }
}

/// How long a connection may take to open, how long any one read of an answer may stall, and
/// how long one try may take in all (a server trickling bytes never stalls a read).
///
/// A try costs at most `total`, so a request costs at most `(max_retries + 1) * total` plus
/// the waits between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// Opening the TCP (and TLS) connection.
    pub connect: Duration,
    /// Each read of the answer: the head, then every chunk of the body.
    pub read: Duration,
    /// One try, from connecting to the last byte of the body.
    pub total: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            connect: Duration::from_secs(15),
            read: Duration::from_secs(60),
            total: Duration::from_secs(5 * 60),
        }
    }
}

/// The largest answer read whole inside a try; a larger one is handed on as a stream, whose
/// failures are the caller's (dragnet reads JSON pages and manifests, far smaller than this).
pub const BUFFER_LIMIT: usize = 64 * 1024 * 1024;

/// A future that waits; boxed so that tests can swap the clock.
pub type PauseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Something that waits for a duration: Tokio's timer, or a test's recorder.
pub trait Pause: Send + Sync {
    /// Waits for `duration`.
    fn pause(&self, duration: Duration) -> PauseFuture;
}

/// Waits on Tokio's timer.
#[derive(Debug, Default)]
pub struct TokioPause;

impl Pause for TokioPause {
    fn pause(&self, duration: Duration) -> PauseFuture {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A failed HTTP exchange, after any retries.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server could not be reached, or the connection broke.
    #[error("{what}: {detail} (gave up after {tries} tries)")]
    Transport {
        what: String,
        detail: String,
        tries: usize,
    },
    /// The server kept answering with a retryable status.
    #[error("{what}: the server answered {status} (gave up after {tries} tries)")]
    Status {
        what: String,
        status: StatusCode,
        tries: usize,
    },
    /// The server asked for a wait longer than dragnet is willing to make.
    #[error(
        "{what}: rate limited for {} more seconds ({reason}); rerun later or use a token \
         with a larger budget",
        wait.as_secs()
    )]
    RateLimited {
        what: String,
        wait: Duration,
        reason: String,
    },
    /// The request could not even be built (a bad URL or header).
    #[error("{what}: invalid request: {detail}")]
    Request { what: String, detail: String },
}

/// An HTTP client with dragnet's retry policy and a cap on concurrent requests.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    policy: RetryPolicy,
    pause: Arc<dyn Pause>,
    permits: Arc<Semaphore>,
}

/// Why one try failed, and how long to wait before the next.
#[derive(Debug)]
enum TryFailure {
    Retry {
        reason: String,
        status: Option<StatusCode>,
        wait: Option<Duration>,
    },
    Fatal(HttpError),
}

impl HttpClient {
    /// A client with the default policy and timeouts, Tokio's clock and at most
    /// `max_concurrent` requests in flight.
    pub fn new(max_concurrent: usize) -> Result<HttpClient, HttpError> {
        HttpClient::with_timeouts(max_concurrent, HttpTimeouts::default())
    }

    /// A client like [`HttpClient::new`] with other timeouts.
    pub fn with_timeouts(
        max_concurrent: usize,
        timeouts: HttpTimeouts,
    ) -> Result<HttpClient, HttpError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("dragnet/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .timeout(timeouts.total)
            .build()
            .map_err(|e| HttpError::Request {
                what: "building the HTTP client".into(),
                detail: e.without_url().to_string(),
            })?;
        Ok(HttpClient {
            client,
            policy: RetryPolicy::default(),
            pause: Arc::new(TokioPause),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        })
    }

    /// Replaces the retry policy.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The retry policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Replaces the clock used between retries (tests use one that does not sleep).
    pub fn with_pause(mut self, pause: Arc<dyn Pause>) -> Self {
        self.pause = pause;
        self
    }

    /// The underlying client, to build requests with.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// Waits on this client's clock, for callers that poll (real time in production, none in
    /// tests).
    pub fn pause(&self, duration: Duration) -> PauseFuture {
        self.pause.pause(duration)
    }

    /// Sends the request that `build` makes, retrying as the policy says.
    ///
    /// Returns the response for any status that is not retried (including 4xx answers, which
    /// the caller interprets). `what` names the operation in logs and errors ("listing
    /// packages of acme").
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.min_delay)
            .with_max_delay(self.policy.max_delay)
            .with_max_times(self.policy.max_retries)
            .with_jitter();
        let pause = self.pause.clone();
        let policy = &self.policy;
        let mut tries = 0usize;
        let attempt = || {
            tries += 1;
            let request = build();
            async move { self.try_once(what, request, policy).await }
        };

        let outcome = attempt
            .retry(backoff)
            .sleep(move |d| pause.pause(d))
            .when(|failure| matches!(failure, TryFailure::Retry { .. }))
            .adjust(|failure, backoff| match failure {
                // The backoff decides whether another try is left; the server decides how long.
                TryFailure::Retry {
                    wait: Some(wait), ..
                } => backoff.map(|d| d.max(*wait)),
                _ => backoff,
            })
            .notify(|failure, wait| {
                if let TryFailure::Retry { reason, .. } = failure {
                    tracing::warn!("{what}: {reason}; retrying in {:.1}s", wait.as_secs_f64());
                }
            })
            .await;

        match outcome {
            Ok(response) => Ok(response),
            Err(TryFailure::Fatal(error)) => Err(error),
            Err(TryFailure::Retry {
                reason,
                status: Some(status),
                ..
            }) => {
                tracing::debug!("{what}: giving up: {reason}");
                Err(HttpError::Status {
                    what: what.to_string(),
                    status,
                    tries: tries.max(1),
                })
            }
            Err(TryFailure::Retry {
                reason,
                status: None,
                ..
            }) => Err(HttpError::Transport {
                what: what.to_string(),
                detail: reason,
                tries: tries.max(1),
            }),
        }
    }

    async fn try_once(
        &self,
        what: &str,
        request: RequestBuilder,
        policy: &RetryPolicy,
    ) -> Result<Response, TryFailure> {
        let request = request.build().map_err(|e| {
            TryFailure::Fatal(HttpError::Request {
                what: what.to_string(),
                detail: e.without_url().to_string(),
            })
        })?;
        let method = request.method().clone();
        let target = format!(
            "{}{}",
            request.url().host_str().unwrap_or_default(),
            request.url().path()
        );

        let _permit = self.permits.acquire().await.map_err(|_| {
            TryFailure::Fatal(HttpError::Request {
                what: what.to_string(),
                detail: "the HTTP client was shut down".into(),
            })
        })?;
        tracing::trace!(%method, %target, "request");
        let response = match self.client.execute(request).await {
            Ok(response) => response,
            Err(error) => {
                return Err(TryFailure::Retry {
                    reason: describe_transport_error(&error),
                    status: None,
                    wait: None,
                });
            }
        };
        let status = response.status();
        tracing::trace!(%method, %target, status = status.as_u16(), "response");

        match classify(status, response.headers(), SystemTime::now(), policy) {
            // GitHub's secondary limit may come as a plain 403 that only its message tells
            // from a refusal: wait at least the floor, as GitHub advises.
            Verdict::Done if status == StatusCode::FORBIDDEN => {
                let transport = |reason| TryFailure::Retry {
                    reason,
                    status: None,
                    wait: None,
                };
                let (response, secondary) =
                    peek_secondary_limit(response).await.map_err(transport)?;
                if !secondary {
                    return Ok(response);
                }
                let reason = format!("{status}: secondary rate limit without retry-after");
                let wait = policy.throttle_floor;
                if wait > policy.max_wait {
                    return Err(TryFailure::Fatal(HttpError::RateLimited {
                        what: what.to_string(),
                        wait,
                        reason,
                    }));
                }
                Err(TryFailure::Retry {
                    reason,
                    status: Some(status),
                    wait: Some(wait),
                })
            }
            Verdict::Done => read_whole(response)
                .await
                .map_err(|reason| TryFailure::Retry {
                    reason,
                    status: None,
                    wait: None,
                }),
            Verdict::Retry { reason, wait } => Err(TryFailure::Retry {
                reason,
                status: Some(status),
                wait,
            }),
            Verdict::TooLong { wait, reason } => Err(TryFailure::Fatal(HttpError::RateLimited {
                what: what.to_string(),
                wait,
                reason,
            })),
        }
    }
}

/// What to do with one answer.
#[derive(Debug, PartialEq)]
enum Verdict {
    Done,
    Retry {
        reason: String,
        wait: Option<Duration>,
    },
    TooLong {
        wait: Duration,
        reason: String,
    },
}

/// Sorts an answer into done, retry (with the wait the server asked for), or give up.
fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    now: SystemTime,
    policy: &RetryPolicy,
) -> Verdict {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
    let remaining = header("x-ratelimit-remaining").and_then(|v| v.parse::<u64>().ok());
    let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok());
    let throttled = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (retry_after.is_some() || remaining == Some(0)));

    if throttled {
        let (wait, reason) = if let Some(seconds) = retry_after {
            (
                Duration::from_secs(seconds),
                format!("{status} with retry-after {seconds}s"),
            )
        } else if let (Some(0), Some(reset)) = (remaining, reset) {
            let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            let wait = Duration::from_secs(reset.saturating_sub(now) + 1);
            (
                wait,
                format!("{status}: rate limit spent until {reset} (epoch seconds)"),
            )
        } else {
            (
                policy.throttle_floor,
                format!("{status}: throttled without a hint"),
            )
        };
        if wait > policy.max_wait {
            return Verdict::TooLong { wait, reason };
        }
        return Verdict::Retry {
            reason,
            wait: Some(wait),
        };
    }

    match status {
        StatusCode::INTERNAL_SERVER_ERROR
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => Verdict::Retry {
            reason: format!("the server answered {status}"),
            wait: retry_after.map(Duration::from_secs),
        },
        _ => Verdict::Done,
    }
}

/// Reads the answer's body within the try and hands back an equivalent response, so that a body
/// cut short or stalled fails the try (and is retried) rather than the caller's read. An answer
/// larger than [`BUFFER_LIMIT`] is handed on as a stream after what was read.
async fn read_whole(mut response: Response) -> Result<Response, String> {
    if response
        .content_length()
        .is_some_and(|length| length > BUFFER_LIMIT as u64)
    {
        return Ok(response);
    }
    let mut parts = http::Response::new(());
    *parts.status_mut() = response.status();
    *parts.version_mut() = response.version();
    *parts.headers_mut() = response.headers().clone();

    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > BUFFER_LIMIT {
                    use futures::StreamExt as _;
                    let read = futures::stream::once(async move { Ok::<_, reqwest::Error>(body) });
                    let more = response
                        .bytes_stream()
                        .map(|chunk| chunk.map(|b| b.to_vec()));
                    let rest = read.chain(more);
                    let (parts, ()) = parts.into_parts();
                    let streamed = reqwest::Body::wrap_stream(rest);
                    return Ok(Response::from(http::Response::from_parts(parts, streamed)));
                }
            }
            Ok(None) => break,
            Err(error) => return Err(describe_transport_error(&error)),
        }
    }
    let (parts, ()) = parts.into_parts();
    Ok(Response::from(http::Response::from_parts(parts, body)))
}

/// Reads a 403's body (a small JSON error) and hands back an equivalent response, with whether
/// the body says GitHub's secondary rate limit was hit.
async fn peek_secondary_limit(response: Response) -> Result<(Response, bool), String> {
    let mut parts = http::Response::new(());
    *parts.status_mut() = response.status();
    *parts.version_mut() = response.version();
    *parts.headers_mut() = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|error| describe_transport_error(&error))?;
    let secondary = is_secondary_limit(&body);
    let (parts, ()) = parts.into_parts();
    Ok((
        Response::from(http::Response::from_parts(parts, body)),
        secondary,
    ))
}

/// Whether an error body is GitHub's secondary rate limit ("You have exceeded a secondary rate
/// limit", formerly "abuse detection mechanism").
fn is_secondary_limit(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_lowercase();
    text.contains("secondary rate limit") || text.contains("abuse detection")
}

/// A transport error in words, without the URL reqwest would print.
fn describe_transport_error(error: &reqwest::Error) -> String {
    use std::error::Error as _;

    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the answer was cut short"
    } else {
        "the connection failed"
    };
    let mut detail = kind.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

/// A jittered pause for callers that poll (upload status): `base` ± 20 %.
pub fn jittered(base: Duration) -> Duration {
    let factor = 0.8 + fastrand::f64() * 0.4;
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use std::sync::Mutex;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn at(epoch: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(epoch)
    }

    #[test]
    fn retry_after_decides_the_wait() {
        let verdict = classify(
            StatusCode::FORBIDDEN,
            &headers(&[("retry-after", "7")]),
            at(0),
            &RetryPolicy::default(),
        );
        assert!(
            matches!(verdict, Verdict::Retry { wait: Some(w), .. } if w == Duration::from_secs(7))
        );
    }

    #[test]
    fn spent_budget_waits_until_reset() {
        let verdict = classify(
            StatusCode::FORBIDDEN,
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1100"),
            ]),
            at(1000),
            &RetryPolicy::default(),
        );
        assert!(
            matches!(verdict, Verdict::Retry { wait: Some(w), .. } if w == Duration::from_secs(101))
        );
    }

    #[test]
    fn a_reset_too_far_away_gives_up_at_once() {
        let verdict = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &headers(&[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "99999"),
            ]),
            at(0),
            &RetryPolicy::default(),
        );
        assert!(matches!(verdict, Verdict::TooLong { .. }), "{verdict:?}");
    }

    #[test]
    fn plain_403_and_404_are_answers_not_retries() {
        let policy = RetryPolicy::default();
        assert_eq!(
            classify(StatusCode::FORBIDDEN, &headers(&[]), at(0), &policy),
            Verdict::Done
        );
        assert_eq!(
            classify(StatusCode::NOT_FOUND, &headers(&[]), at(0), &policy),
            Verdict::Done
        );
        let bad_gateway = classify(StatusCode::BAD_GATEWAY, &headers(&[]), at(0), &policy);
        assert!(matches!(bad_gateway, Verdict::Retry { wait: None, .. }));
    }

    #[tokio::test]
    async fn a_secondary_limit_403_without_retry_after_waits_the_floor() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let server = MockServer::start().await;
        let message = serde_json::json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes \
                        before you try again."
        });
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(403).set_body_json(message))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(403).set_body_json(serde_json::json!({
                "message": "Resource not accessible by integration"
            })))
            .mount(&server)
            .await;

        let pause = Arc::new(RecordedPause::default());
        let client = HttpClient::new(4).unwrap().with_pause(pause.clone());
        let url = server.uri();
        let response = client
            .send("listing packages", || client.inner().get(&url))
            .await
            .unwrap();

        // The second 403 is a refusal: handed back whole, body included, for the caller.
        assert_eq!(response.status(), 403);
        let body = response.text().await.unwrap();
        assert!(body.contains("not accessible by integration"), "{body}");
        let waits = pause.0.lock().unwrap().clone();
        assert_eq!(waits.len(), 1, "{waits:?}");
        assert!(waits[0] >= Duration::from_secs(60), "the floor: {waits:?}");
    }

    /// Records waits instead of sleeping.
    #[derive(Default)]
    struct RecordedPause(Mutex<Vec<Duration>>);

    impl Pause for RecordedPause {
        fn pause(&self, duration: Duration) -> PauseFuture {
            self.0.lock().unwrap().push(duration);
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn retries_a_502_then_succeeds_without_sleeping() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(502))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;

        let pause = Arc::new(RecordedPause::default());
        let client = HttpClient::new(4).unwrap().with_pause(pause.clone());
        let url = server.uri();
        let response = client
            .send("fetching", || client.inner().get(&url))
            .await
            .unwrap();

        assert_eq!(response.status(), 200);
        let waits = pause.0.lock().unwrap().clone();
        assert_eq!(waits.len(), 3, "two 502s and one 429: {waits:?}");
        assert!(
            waits[2] >= Duration::from_secs(3),
            "retry-after honoured: {waits:?}"
        );
    }

    /// A wiremock server answering `body`, behind a fault proxy that misbehaves once per
    /// request key with `kind`, then lets the next try through.
    async fn behind_one_fault(
        kind: dragnet_sandbox::faults::FaultKind,
        body: &str,
    ) -> (wiremock::MockServer, dragnet_sandbox::faults::FaultProxy) {
        use dragnet_sandbox::faults::{FaultPlan, FaultProxy};
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string(body))
            .mount(&server)
            .await;
        let plan = FaultPlan::new(3, 1.0)
            .kinds(&[kind])
            .max_in_a_row(1)
            .stall(Duration::from_secs(10));
        let proxy = FaultProxy::start(&server.address().to_string(), plan)
            .await
            .unwrap();
        (server, proxy)
    }

    #[tokio::test]
    async fn a_body_cut_short_or_stalled_is_retried_like_a_reset() {
        use dragnet_sandbox::faults::FaultKind;

        let body = "x".repeat(10_000);
        for kind in [FaultKind::Truncate, FaultKind::Stall, FaultKind::Reset] {
            let (_server, proxy) = behind_one_fault(kind, &body).await;
            let timeouts = HttpTimeouts {
                connect: Duration::from_secs(2),
                read: Duration::from_millis(300),
                total: Duration::from_secs(5),
            };
            let pause = Arc::new(RecordedPause::default());
            let client = HttpClient::with_timeouts(2, timeouts)
                .unwrap()
                .with_pause(pause.clone());
            let url = format!("{}/page", proxy.url());
            let response = client
                .send("fetching a page", || client.inner().get(&url))
                .await
                .unwrap();

            assert_eq!(response.text().await.unwrap(), body, "{kind:?}");
            assert_eq!(proxy.requests().len(), 2, "{kind:?}: one fault, one retry");
            assert_eq!(pause.0.lock().unwrap().len(), 1, "{kind:?}");
        }
    }

    #[tokio::test]
    async fn gives_up_after_the_bounded_number_of_tries() {
        use wiremock::matchers::method;
        use wiremock::{Mock, MockServer, ResponseTemplate};

        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&server)
            .await;

        let pause = Arc::new(RecordedPause::default());
        let client = HttpClient::new(4).unwrap().with_pause(pause.clone());
        let url = server.uri();
        let error = client
            .send("listing packages", || client.inner().get(&url))
            .await;

        let message = error.unwrap_err().to_string();
        assert_eq!(
            message,
            "listing packages: the server answered 503 Service Unavailable (gave up after 5 tries)"
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 5);
    }
}
