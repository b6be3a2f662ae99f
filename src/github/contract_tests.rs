//! Contract tests of the GitHub client against a wiremock server, where a scripted sequence of
//! answers says it best: conditional requests from the ETag cache, and a rate-limit budget
//! checked before a listing.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::etag::EtagCache;
use super::*;
use crate::http::{Pause, PauseFuture};

/// Retries in these tests must not sleep.
struct NoPause;

impl Pause for NoPause {
    fn pause(&self, _duration: Duration) -> PauseFuture {
        Box::pin(async {})
    }
}

fn client(server: &MockServer, cache: &std::path::Path) -> GitHubClient {
    let http = HttpClient::new(4).unwrap().with_pause(Arc::new(NoPause));
    GitHubClient::new(&server.uri(), Some(Secret::new("ghp_test")), http)
        .unwrap()
        .with_etag_cache(EtagCache::under(cache))
}

/// Two pages of packages, each with its ETag; a request naming the ETag is answered 304.
async fn serve_two_pages(server: &MockServer) {
    let page = |n: &str, names: &[&str], etag: &str| {
        let body: Vec<_> = names.iter().map(|name| json!({"name": name})).collect();
        let mut answer = ResponseTemplate::new(200)
            .set_body_json(body)
            .insert_header("etag", etag);
        if n == "1" {
            let next = format!("{}/orgs/acme/packages?page=2", server.uri());
            answer = answer.insert_header("link", format!("<{next}>; rel=\"next\"").as_str());
        }
        answer
    };
    for (n, names, etag) in [
        ("1", &["a", "b"][..], "W/\"one\""),
        ("2", &["c"], "W/\"two\""),
    ] {
        let matcher = || {
            let mock = Mock::given(method("GET")).and(path("/orgs/acme/packages"));
            if n == "2" {
                mock.and(query_param("page", "2"))
            } else {
                mock.and(query_param("per_page", "100"))
            }
        };
        matcher()
            .and(header("if-none-match", etag))
            .respond_with(ResponseTemplate::new(304).insert_header("etag", etag))
            .with_priority(1)
            .mount(server)
            .await;
        matcher()
            .respond_with(page(n, names, etag))
            .with_priority(2)
            .mount(server)
            .await;
    }
}

async fn names(client: &GitHubClient, server: &MockServer) -> Vec<String> {
    let url = Url::parse(&format!("{}/orgs/acme/packages?per_page=100", server.uri())).unwrap();
    let items: Vec<serde_json::Value> = client.get_all("listing", url).await.unwrap();
    items
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_rerun_revalidates_every_page_and_reads_304s_from_the_cache() {
    let server = MockServer::start().await;
    serve_two_pages(&server).await;
    let cache = tempfile::tempdir().unwrap();

    let first = client(&server, cache.path());
    assert_eq!(names(&first, &server).await, ["a", "b", "c"]);
    assert_eq!(first.calls().not_modified(), 0);

    let second = client(&server, cache.path());
    assert_eq!(names(&second, &server).await, ["a", "b", "c"]);
    assert_eq!(second.calls().gets(), 2);
    assert_eq!(second.calls().not_modified(), 2, "both pages answered 304");
    let conditional = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.headers.contains_key("if-none-match"))
        .count();
    assert_eq!(conditional, 2);
}

#[tokio::test]
async fn a_changed_page_replaces_its_cached_answer() {
    let server = MockServer::start().await;
    let cache = tempfile::tempdir().unwrap();
    let url = Url::parse(&format!("{}/users/acme", server.uri())).unwrap();
    Mock::given(method("GET"))
        .and(path("/users/acme"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"type": "User"}))
                .insert_header("etag", "\"old\""),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/acme"))
        .and(header_exists("if-none-match"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"type": "Organization"}))
                .insert_header("etag", "\"new\""),
        )
        .mount(&server)
        .await;

    let client = client(&server, cache.path());
    let (first, _): (serde_json::Value, _) = client.get_page("user", url.clone()).await.unwrap();
    let (second, _): (serde_json::Value, _) = client.get_page("user", url.clone()).await.unwrap();

    assert_eq!(
        (first["type"].as_str(), second["type"].as_str()),
        (Some("User"), Some("Organization"))
    );
    let key = EtagCache::key(url.as_str(), client.token.as_ref());
    let cached = EtagCache::under(cache.path()).get(&key).unwrap();
    assert_eq!(cached.etag, "\"new\"");
}

#[tokio::test]
async fn an_error_answer_is_never_cached() {
    let server = MockServer::start().await;
    let cache = tempfile::tempdir().unwrap();
    Mock::given(method("GET"))
        .and(path("/users/acme"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"message": "Not Found"}))
                .insert_header("etag", "\"x\""),
        )
        .mount(&server)
        .await;

    let client = client(&server, cache.path());
    let url = Url::parse(&format!("{}/users/acme", server.uri())).unwrap();
    let error = client
        .get_page::<serde_json::Value>("user", url.clone())
        .await
        .unwrap_err();

    assert_eq!(error.status(), Some(StatusCode::NOT_FOUND));
    assert!(!client.has_cached(&url));
}

/// Records waits instead of sleeping.
#[derive(Default)]
struct RecordedPause(std::sync::Mutex<Vec<Duration>>);

impl Pause for RecordedPause {
    fn pause(&self, duration: Duration) -> PauseFuture {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

fn epoch_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An org of two packages whose budget has one call left, resetting `reset_in` from now;
/// package `a`'s versions are first refused for the spent budget.
async fn short_budget_org(server: &MockServer, reset_in: u64) {
    let reset = epoch_now() + reset_in;
    Mock::given(method("GET"))
        .and(path("/orgs/acme/packages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"name": "a", "version_count": 150},
            {"name": "b", "version_count": 1},
        ])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/rate_limit"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "resources": {"core": {"limit": 5000, "remaining": 1, "reset": reset, "used": 4999}}
        })))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme/packages/container/a/versions"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "API rate limit exceeded"}))
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str()),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    let version =
        json!([{"id": 1, "name": "sha256:1", "metadata": {"container": {"tags": ["1.0"]}}}]);
    for name in ["a", "b"] {
        Mock::given(method("GET"))
            .and(path(format!(
                "/orgs/acme/packages/container/{name}/versions"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(version.clone()))
            .with_priority(2)
            .mount(server)
            .await;
    }
}

fn options() -> discover::DiscoverOptions {
    discover::DiscoverOptions {
        owner: "acme".into(),
        owner_kind: Some(discover::OwnerKind::Organization),
        patterns: Vec::new(),
        packages: Vec::new(),
        filter: crate::filter::VersionFilter::default(),
        registry: "ghcr.io".into(),
        concurrency: 2,
    }
}

#[tokio::test]
async fn a_short_budget_that_resets_soon_is_paced_through_the_clock() {
    let server = MockServer::start().await;
    short_budget_org(&server, 120).await;
    let pause = Arc::new(RecordedPause::default());
    let http = HttpClient::new(4).unwrap().with_pause(pause.clone());
    let client = GitHubClient::new(&server.uri(), Some(Secret::new("t")), http).unwrap();

    let inventory = discover::discover(&client, None, &options()).await.unwrap();

    assert_eq!(inventory.packages.len(), 2);
    let waits = pause.0.lock().unwrap().clone();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert!(
        waits[0] >= Duration::from_secs(110) && waits[0] <= Duration::from_secs(125),
        "waited until the reset: {waits:?}"
    );
}

#[tokio::test]
async fn a_short_budget_that_resets_too_late_stops_before_any_version_is_listed() {
    let server = MockServer::start().await;
    short_budget_org(&server, 3600).await;
    let http = HttpClient::new(4).unwrap().with_pause(Arc::new(NoPause));
    let client = GitHubClient::new(&server.uri(), Some(Secret::new("t")), http).unwrap();

    let error = discover::discover(&client, None, &options())
        .await
        .unwrap_err()
        .to_string();

    assert!(
        error.starts_with(
            "reading 2 packages needs about 3 GitHub API calls; the token has 1 of 5000 left"
        ),
        "{error}"
    );
    assert!(
        error.contains("longer than --max-retry-wait (15 min)"),
        "{error}"
    );
    let listed_versions = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .any(|r| r.url.path().ends_with("/versions"));
    assert!(!listed_versions);
}
