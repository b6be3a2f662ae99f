//! Contract tests of the registry client against a wiremock registry: the three ways of
//! signing in, index expansion, and the errors a user reads.
//!
//! Each test serves real manifest and config bytes, so digests are verified as in production.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::*;
use crate::http::{Pause, PauseFuture};
use crate::inventory::{Package, Version};

const BASIC_USER_S3CRET: &str = "Basic dXNlcjpzM2NyZXQ=";

/// Retries in these tests must not sleep.
struct NoPause;

impl Pause for NoPause {
    fn pause(&self, _duration: Duration) -> PauseFuture {
        Box::pin(async {})
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn platform(text: &str) -> Platform {
    let mut parts = text.split('/');
    Platform {
        os: parts.next().unwrap().into(),
        architecture: parts.next().unwrap().into(),
        variant: parts.next().map(str::to_string),
    }
}

fn client(server: &MockServer, login: Option<(&str, &str)>, platforms: &[&str]) -> RegistryClient {
    let config = RegistryConfig {
        host: server.address().to_string(),
        credentials: login.map(|(username, password)| Credentials {
            username: username.into(),
            password: Secret::new(password),
        }),
        platforms: platforms.iter().map(|p| platform(p)).collect(),
    };
    let http = HttpClient::new(8).unwrap().with_pause(Arc::new(NoPause));
    RegistryClient::new(config, http)
}

/// A served document: its bytes and digest.
struct Blob {
    bytes: Vec<u8>,
    digest: String,
}

impl Blob {
    fn json(value: Value) -> Blob {
        let bytes = serde_json::to_vec(&value).unwrap();
        Blob {
            digest: sha256(&bytes),
            bytes,
        }
    }
}

/// An image: its config blob and its manifest, whose layers sum to `layer_sizes`.
struct Image {
    config: Blob,
    manifest: Blob,
}

fn image(os: &str, architecture: &str, layer_sizes: &[u64], media_type: &str) -> Image {
    let config = Blob::json(json!({"os": os, "architecture": architecture, "rootfs": {}}));
    let layers: Vec<Value> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, size)| {
            json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "size": size,
                "digest": sha256(format!("layer {os} {architecture} {i}").as_bytes()),
            })
        })
        .collect();
    let manifest = Blob::json(json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": config.bytes.len(),
            "digest": config.digest,
        },
        "layers": layers,
    }));
    Image { config, manifest }
}

/// Serves `blob` at `/v2/<repository>/<kind>/<digest>` to any request.
async fn serve(server: &MockServer, repository: &str, kind: &str, blob: &Blob, media_type: &str) {
    Mock::given(method("GET"))
        .and(path(format!("/v2/{repository}/{kind}/{}", blob.digest)))
        .respond_with(ResponseTemplate::new(200).set_body_raw(blob.bytes.clone(), media_type))
        .mount(server)
        .await;
}

async fn serve_image(server: &MockServer, repository: &str, image: &Image) {
    serve(
        server,
        repository,
        "manifests",
        &image.manifest,
        manifest::OCI_MANIFEST,
    )
    .await;
    serve(
        server,
        repository,
        "blobs",
        &image.config,
        "application/octet-stream",
    )
    .await;
}

/// The distribution spec's JSON error body.
fn registry_error(code: &str, message: &str) -> Value {
    json!({"errors": [{"code": code, "message": message, "detail": {}}]})
}

fn authorization(request: &Request) -> Option<String> {
    request
        .headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string())
}

async fn requests_to(server: &MockServer, prefix: &str) -> Vec<Request> {
    let requests = server.received_requests().await.unwrap();
    requests
        .into_iter()
        .filter(|r| r.url.path().starts_with(prefix))
        .collect()
}

#[tokio::test]
async fn anonymous_single_manifest_gets_its_platform_from_the_config() {
    let server = MockServer::start().await;
    let image = image("linux", "amd64", &[1000, 234], manifest::DOCKER_MANIFEST);
    serve_image(&server, "acme/x", &image).await;

    let found = client(&server, None, &[])
        .platform_manifests("acme/x", &image.manifest.digest)
        .await
        .unwrap();

    let size = image.config.bytes.len() as u64 + 1234;
    assert_eq!(
        found,
        [PlatformManifest {
            digest: image.manifest.digest.clone(),
            platform: Some(platform("linux/amd64")),
            size,
        }]
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "the manifest and its config");
    assert!(requests.iter().all(|r| authorization(r).is_none()));
    let accept = requests[0].headers.get("accept").unwrap().to_str().unwrap();
    for media_type in [
        manifest::OCI_INDEX,
        manifest::OCI_MANIFEST,
        manifest::DOCKER_LIST,
        manifest::DOCKER_MANIFEST,
    ] {
        assert!(
            accept.contains(media_type),
            "accept lacks {media_type}: {accept}"
        );
    }
}

#[tokio::test]
async fn answers_a_basic_challenge_and_then_sends_basic_up_front() {
    let server = MockServer::start().await;
    let image = image("linux", "arm64", &[10], manifest::OCI_MANIFEST);
    for (kind, blob) in [("manifests", &image.manifest), ("blobs", &image.config)] {
        Mock::given(method("GET"))
            .and(path(format!("/v2/acme/x/{kind}/{}", blob.digest)))
            .and(header("authorization", BASIC_USER_S3CRET))
            .respond_with(ResponseTemplate::new(200).set_body_raw(blob.bytes.clone(), "x/y"))
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", r#"Basic realm="Registry""#),
        )
        .with_priority(10)
        .mount(&server)
        .await;

    let found = client(&server, Some(("user", "s3cret")), &[])
        .platform_manifests("acme/x", &image.manifest.digest)
        .await
        .unwrap();

    assert_eq!(found[0].platform, Some(platform("linux/arm64")));
    let sent: Vec<_> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(authorization)
        .collect();
    assert_eq!(
        sent,
        [
            None,
            Some(BASIC_USER_S3CRET.into()),
            Some(BASIC_USER_S3CRET.into())
        ],
        "one challenge, then Basic on every request"
    );
}

/// A registry that wants `Bearer <token>` and points at `/token` on the same server.
async fn bearer_registry(server: &MockServer, token: &str, image: &Image) {
    for (kind, blob) in [("manifests", &image.manifest), ("blobs", &image.config)] {
        Mock::given(method("GET"))
            .and(path(format!("/v2/acme/products/x/{kind}/{}", blob.digest)))
            .and(header("authorization", format!("Bearer {token}").as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_raw(blob.bytes.clone(), "x/y"))
            .with_priority(1)
            .mount(server)
            .await;
    }
    let challenge = format!(
        r#"Bearer realm="{}/token",service="registry.test",scope="{}""#,
        server.uri(),
        "repository:acme/products/x:pull"
    );
    Mock::given(method("GET"))
        .and(|request: &Request| request.url.path().starts_with("/v2/"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header("www-authenticate", challenge.as_str())
                .set_body_json(registry_error("UNAUTHORIZED", "authentication required")),
        )
        .with_priority(10)
        .mount(server)
        .await;
}

#[tokio::test]
async fn exchanges_a_bearer_challenge_for_a_token_once() {
    let server = MockServer::start().await;
    let image = image("linux", "amd64", &[5], manifest::OCI_MANIFEST);
    bearer_registry(&server, "tok-1", &image).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "registry.test"))
        .and(query_param("scope", "repository:acme/products/x:pull"))
        .and(header("authorization", BASIC_USER_S3CRET))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "tok-1"})))
        .expect(1)
        .mount(&server)
        .await;

    let found = client(&server, Some(("user", "s3cret")), &[])
        .platform_manifests("acme/products/x", &image.manifest.digest)
        .await
        .unwrap();

    assert_eq!(found.len(), 1);
    let registry = requests_to(&server, "/v2/").await;
    let sent: Vec<_> = registry.iter().map(authorization).collect();
    assert_eq!(
        sent,
        [
            None,
            Some("Bearer tok-1".into()),
            Some("Bearer tok-1".into())
        ],
        "the cached token is reused for the config blob"
    );
}

#[tokio::test]
async fn anonymous_bearer_exchange_sends_no_credentials_and_reads_access_token() {
    let server = MockServer::start().await;
    let image = image("linux", "amd64", &[5], manifest::OCI_MANIFEST);
    bearer_registry(&server, "anon", &image).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "anon"})))
        .mount(&server)
        .await;

    client(&server, None, &[])
        .platform_manifests("acme/products/x", &image.manifest.digest)
        .await
        .unwrap();

    let token_requests = requests_to(&server, "/token").await;
    assert_eq!(token_requests.len(), 1);
    assert_eq!(authorization(&token_requests[0]), None);
}

#[tokio::test]
async fn fetches_a_new_token_when_the_cached_one_is_refused() {
    let server = MockServer::start().await;
    let first = image("linux", "amd64", &[5], manifest::OCI_MANIFEST);
    let second = image("linux", "arm64", &[7], manifest::OCI_MANIFEST);

    let first_digest = first.manifest.digest.clone();

    // The registry accepts tok-1 for two requests (the first image), then only tok-2.
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer tok-1"))
        .and(|request: &Request| request.url.path().starts_with("/v2/"))
        .respond_with(move |request: &Request| {
            let blobs = [&first.manifest, &first.config];
            let blob = blobs
                .iter()
                .find(|b| request.url.path().ends_with(&b.digest))
                .unwrap();
            ResponseTemplate::new(200).set_body_raw(blob.bytes.clone(), "x/y")
        })
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    bearer_registry(&server, "tok-2", &second).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "tok-1"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "tok-2"})))
        .mount(&server)
        .await;

    let client = client(&server, Some(("user", "s3cret")), &[]);
    client
        .platform_manifests("acme/products/x", &first_digest)
        .await
        .unwrap();
    let found = client
        .platform_manifests("acme/products/x", &second.manifest.digest)
        .await
        .unwrap();

    assert_eq!(found[0].platform, Some(platform("linux/arm64")));
    assert_eq!(
        requests_to(&server, "/token").await.len(),
        2,
        "one refresh after the 401"
    );
    let sent: Vec<_> = requests_to(&server, "/v2/")
        .await
        .iter()
        .map(authorization)
        .collect();
    assert_eq!(
        sent,
        [
            None,
            Some("Bearer tok-1".into()),
            Some("Bearer tok-1".into()),
            Some("Bearer tok-1".into()),
            Some("Bearer tok-2".into()),
            Some("Bearer tok-2".into()),
        ]
    );
}

#[tokio::test]
async fn concurrent_requests_share_one_token_exchange() {
    let server = MockServer::start().await;
    let image = image("linux", "amd64", &[5], manifest::OCI_MANIFEST);
    bearer_registry(&server, "tok-1", &image).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "tok-1"})))
        .mount(&server)
        .await;

    let client = client(&server, None, &[]);
    let lookups =
        (0..8).map(|_| client.platform_manifests("acme/products/x", &image.manifest.digest));
    for found in futures::future::join_all(lookups).await {
        assert_eq!(found.unwrap().len(), 1);
    }
    assert_eq!(requests_to(&server, "/token").await.len(), 1);
}

#[tokio::test]
async fn a_refused_token_reports_the_registry_error_and_a_hint_without_secrets() {
    let server = MockServer::start().await;
    let image = image("linux", "amd64", &[5], manifest::OCI_MANIFEST);
    bearer_registry(&server, "never-issued", &image).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "tok-secret"})))
        .mount(&server)
        .await;

    let error = client(&server, Some(("user", "s3cret")), &[])
        .platform_manifests("acme/products/x", &image.manifest.digest)
        .await
        .unwrap_err()
        .to_string();

    assert_eq!(
        error,
        format!(
            "fetching manifest {} of acme/products/x: the registry answered 401 Unauthorized \
             (UNAUTHORIZED: authentication required); the token was refused, or it lacks \
             `read:packages` or access to this package",
            image.manifest.digest
        )
    );
    assert!(!error.contains("s3cret") && !error.contains("tok-secret"));
}

#[tokio::test]
async fn a_refused_token_exchange_names_the_realm_without_its_query() {
    let server = MockServer::start().await;
    let image = image("linux", "amd64", &[5], manifest::OCI_MANIFEST);
    bearer_registry(&server, "tok", &image).await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(403).set_body_json(registry_error(
            "DENIED",
            "requested access to the resource is denied",
        )))
        .mount(&server)
        .await;

    let error = client(&server, None, &[])
        .platform_manifests("acme/products/x", &image.manifest.digest)
        .await
        .unwrap_err()
        .to_string();

    assert_eq!(
        error,
        format!(
            "getting a registry token for acme/products/x from {}/token: the registry answered \
             403 Forbidden (DENIED: requested access to the resource is denied); the package \
             may be private: give dragnet a token with `read:packages`",
            server.uri()
        )
    );
}

/// An OCI index of the two images plus a BuildKit attestation manifest.
fn index_of(amd64: &Image, arm64: &Image, attestation: &Blob) -> Blob {
    let entry = |image: &Image, platform: Value| {
        json!({
            "mediaType": manifest::OCI_MANIFEST,
            "size": image.manifest.bytes.len(),
            "digest": image.manifest.digest,
            "platform": platform,
        })
    };
    Blob::json(json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": [
            entry(amd64, json!({"os": "linux", "architecture": "amd64"})),
            entry(arm64, json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
            {
                "mediaType": manifest::OCI_MANIFEST,
                "size": attestation.bytes.len(),
                "digest": attestation.digest,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {
                    "vnd.docker.reference.type": "attestation-manifest",
                    "vnd.docker.reference.digest": amd64.manifest.digest,
                },
            },
        ],
    }))
}

#[tokio::test]
async fn expands_an_index_into_its_platforms_and_skips_attestations() {
    let server = MockServer::start().await;
    let amd64 = image("linux", "amd64", &[100, 200], manifest::OCI_MANIFEST);
    let arm64 = image("linux", "arm64", &[300], manifest::OCI_MANIFEST);
    let attestation = Blob::json(json!({"attestation": true}));
    let index = index_of(&amd64, &arm64, &attestation);
    serve(&server, "acme/x", "manifests", &index, manifest::OCI_INDEX).await;
    for image in [&amd64, &arm64] {
        serve(
            &server,
            "acme/x",
            "manifests",
            &image.manifest,
            manifest::OCI_MANIFEST,
        )
        .await;
    }

    let found = client(&server, None, &[])
        .platform_manifests("acme/x", &index.digest)
        .await
        .unwrap();

    let config_size = amd64.config.bytes.len() as u64;
    assert_eq!(
        found,
        [
            PlatformManifest {
                digest: amd64.manifest.digest.clone(),
                platform: Some(platform("linux/amd64")),
                size: config_size + 300,
            },
            PlatformManifest {
                digest: arm64.manifest.digest.clone(),
                platform: Some(platform("linux/arm64/v8")),
                size: arm64.config.bytes.len() as u64 + 300,
            },
        ]
    );
    let fetched: Vec<String> = requests_to(&server, "/v2/")
        .await
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert!(
        !fetched.iter().any(|p| p.ends_with(&attestation.digest)),
        "{fetched:?}"
    );
    assert!(
        !fetched.iter().any(|p| p.contains("/blobs/")),
        "the index gave the platforms"
    );
}

#[tokio::test]
async fn keeps_only_the_requested_platforms() {
    let server = MockServer::start().await;
    let amd64 = image("linux", "amd64", &[100], manifest::OCI_MANIFEST);
    let arm64 = image("linux", "arm64", &[300], manifest::OCI_MANIFEST);
    let attestation = Blob::json(json!({"attestation": true}));
    let index = index_of(&amd64, &arm64, &attestation);
    serve(&server, "acme/x", "manifests", &index, manifest::OCI_INDEX).await;
    serve(
        &server,
        "acme/x",
        "manifests",
        &arm64.manifest,
        manifest::OCI_MANIFEST,
    )
    .await;

    let client = client(&server, None, &["linux/arm64"]);
    let found = client
        .platform_manifests("acme/x", &index.digest)
        .await
        .unwrap();

    let digests: Vec<_> = found.iter().map(|m| m.digest.as_str()).collect();
    assert_eq!(digests, [arm64.manifest.digest.as_str()]);
    let fetched = requests_to(&server, "/v2/").await;
    assert!(
        !fetched
            .iter()
            .any(|r| r.url.path().ends_with(&amd64.manifest.digest))
    );
}

#[tokio::test]
async fn a_single_image_of_another_platform_is_skipped() {
    let server = MockServer::start().await;
    let image = image("linux", "s390x", &[1], manifest::OCI_MANIFEST);
    serve_image(&server, "acme/x", &image).await;

    let client = client(&server, None, &["linux/amd64"]);
    let found = client
        .platform_manifests("acme/x", &image.manifest.digest)
        .await
        .unwrap();
    assert_eq!(found, []);
}

#[tokio::test]
async fn a_docker_manifest_list_without_platforms_reads_each_config() {
    let server = MockServer::start().await;
    let amd64 = image("linux", "amd64", &[1], manifest::DOCKER_MANIFEST);
    let list = Blob::json(json!({
        "schemaVersion": 2,
        "mediaType": manifest::DOCKER_LIST,
        "manifests": [{
            "mediaType": manifest::DOCKER_MANIFEST,
            "size": amd64.manifest.bytes.len(),
            "digest": amd64.manifest.digest,
        }],
    }));
    serve(&server, "acme/x", "manifests", &list, manifest::DOCKER_LIST).await;
    serve_image(&server, "acme/x", &amd64).await;

    let found = client(&server, None, &[])
        .platform_manifests("acme/x", &list.digest)
        .await
        .unwrap();
    assert_eq!(found[0].platform, Some(platform("linux/amd64")));
}

#[tokio::test]
async fn a_missing_manifest_names_repository_digest_and_hint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(registry_error("MANIFEST_UNKNOWN", "manifest unknown")),
        )
        .mount(&server)
        .await;
    let digest = sha256(b"gone");

    let error = client(&server, None, &[])
        .platform_manifests("acme/products/bfx/x", &digest)
        .await
        .unwrap_err();

    assert_eq!(
        error.to_string(),
        format!(
            "fetching manifest {digest} of acme/products/bfx/x: the registry answered 404 Not \
             Found (MANIFEST_UNKNOWN: manifest unknown); the version may have been deleted"
        )
    );
}

#[tokio::test]
async fn content_that_does_not_match_its_digest_is_refused() {
    let server = MockServer::start().await;
    let asked = sha256(b"what was asked for");
    let served = json!({"schemaVersion": 2, "manifests": []});
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&served))
        .mount(&server)
        .await;

    let error = client(&server, None, &[])
        .platform_manifests("acme/x", &asked)
        .await
        .unwrap_err();

    let actual = sha256(&serde_json::to_vec(&served).unwrap());
    assert!(
        matches!(&error, RegistryError::DigestMismatch { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&asked) && message.contains(&actual),
        "{message}"
    );
}

#[tokio::test]
async fn an_index_inside_an_index_is_reported() {
    let server = MockServer::start().await;
    let inner =
        Blob::json(json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": []}));
    let outer = Blob::json(json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_INDEX,
        "manifests": [{
            "mediaType": manifest::OCI_MANIFEST, // lies: the child is an index
            "size": inner.bytes.len(),
            "digest": inner.digest,
            "platform": {"os": "linux", "architecture": "amd64"},
        }],
    }));
    serve(&server, "acme/x", "manifests", &outer, manifest::OCI_INDEX).await;
    serve(&server, "acme/x", "manifests", &inner, manifest::OCI_INDEX).await;

    let error = client(&server, None, &[])
        .platform_manifests("acme/x", &outer.digest)
        .await;

    assert!(
        matches!(&error, Err(RegistryError::NestedIndex { child, .. }) if *child == inner.digest),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_oversized_manifest_is_not_read() {
    let server = MockServer::start().await;
    let huge = vec![b' '; (DOCUMENT_LIMIT + 1) as usize];
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(huge, manifest::OCI_MANIFEST))
        .mount(&server)
        .await;

    let digest = sha256(b"x");
    let error = client(&server, None, &[])
        .platform_manifests("acme/x", &digest)
        .await;
    assert!(
        matches!(error, Err(RegistryError::TooLarge { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn invalid_names_are_rejected_before_any_request() {
    let server = MockServer::start().await;
    let client = client(&server, None, &[]);
    let good_digest = sha256(b"x");

    for repository in ["acme/../x", "acme/%2e%2e/x", "Acme/x", "acme/x?a=b"] {
        let error = client
            .platform_manifests(repository, &good_digest)
            .await
            .unwrap_err();
        assert!(
            matches!(error, RegistryError::InvalidRepository { .. }),
            "{repository}"
        );
    }
    for digest in ["latest", "sha256:../../x", "sha256:ABC"] {
        let error = client
            .platform_manifests("acme/x", digest)
            .await
            .unwrap_err();
        assert!(
            matches!(error, RegistryError::InvalidDigest { .. }),
            "{digest}"
        );
    }
    let error = client
        .platform_manifests("acme/../x", &good_digest)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("repository `acme/../x` is not a valid registry path")
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 0);
}

#[tokio::test]
async fn refuses_to_send_credentials_to_a_plain_http_realm_elsewhere() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "www-authenticate",
            r#"Bearer realm="http://auth.example.com/token",service="s""#,
        ))
        .mount(&server)
        .await;

    let error = client(&server, Some(("user", "s3cret")), &[])
        .platform_manifests("acme/x", &sha256(b"x"))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("will not send credentials unencrypted"),
        "{error}"
    );
}

#[tokio::test]
async fn resolve_keeps_going_past_failures_and_orders_the_result() {
    let server = MockServer::start().await;
    let good = image("linux", "amd64", &[10], manifest::OCI_MANIFEST);
    serve_image(&server, "acme/b", &good).await;
    serve_image(&server, "acme/a", &good).await;
    let missing = sha256(b"deleted");
    let version = |digest: &str| Version {
        id: 1,
        digest: digest.to_string(),
        tags: vec!["1.0".into()],
        updated_at: None,
    };
    let inventory = Inventory {
        owner: "Acme".into(),
        registry: server.address().to_string(),
        packages: vec![
            Package {
                name: "b".into(),
                repository: None,
                versions: vec![version(&good.manifest.digest)],
                source: Default::default(),
            },
            Package {
                name: "a".into(),
                repository: None,
                versions: vec![version(&missing), version(&good.manifest.digest)],
                source: Default::default(),
            },
        ],
        failures: vec![],
        selection: Default::default(),
    };

    let resolutions = resolve(&client(&server, None, &[]), &inventory, 2).await;

    let order: Vec<_> = resolutions
        .iter()
        .map(|r| (r.package.as_str(), r.version.digest.as_str()))
        .collect();
    let mut expected = vec![
        ("a", missing.as_str()),
        ("a", good.manifest.digest.as_str()),
        ("b", good.manifest.digest.as_str()),
    ];
    expected.sort();
    assert_eq!(order, expected);
    let failure = resolutions
        .iter()
        .find(|r| r.version.digest == missing)
        .unwrap();
    let cause = failure.manifests.as_ref().unwrap_err();
    assert!(
        cause.contains("of acme/a: the registry answered 404"),
        "{cause}"
    );
    assert_eq!(
        resolutions.iter().filter(|r| r.manifests.is_ok()).count(),
        2
    );
}

#[tokio::test]
async fn untagged_platforms_and_attestations_of_a_tagged_index_are_not_orphans() {
    let server = MockServer::start().await;
    let amd64 = image("linux", "amd64", &[100], manifest::OCI_MANIFEST);
    let arm64 = image("linux", "arm64", &[300], manifest::OCI_MANIFEST);
    let attestation = Blob::json(json!({"attestation": true}));
    let index = index_of(&amd64, &arm64, &attestation);
    let orphan = image("linux", "amd64", &[50], manifest::OCI_MANIFEST);
    serve(&server, "acme/x", "manifests", &index, manifest::OCI_INDEX).await;
    for image in [&amd64, &arm64, &orphan] {
        serve_image(&server, "acme/x", image).await;
    }
    let version = |digest: &str, tags: &[&str]| Version {
        id: 1,
        digest: digest.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        updated_at: None,
    };
    // As GHCR lists a multi-platform push: the index tagged, its manifests untagged.
    let inventory = Inventory {
        owner: "Acme".into(),
        registry: server.address().to_string(),
        packages: vec![Package {
            name: "x".into(),
            repository: None,
            versions: vec![
                version(&index.digest, &["1.0"]),
                version(&amd64.manifest.digest, &[]),
                version(&arm64.manifest.digest, &[]),
                version(&attestation.digest, &[]),
                version(&orphan.manifest.digest, &[]),
            ],
            source: Default::default(),
        }],
        failures: vec![],
        selection: Default::default(),
    };

    // Only amd64 is asked for: the arm64 manifest is still the index's, not an orphan.
    let resolutions = resolve(&client(&server, None, &["linux/amd64"]), &inventory, 2).await;

    let children: BTreeSet<&str> = resolutions
        .iter()
        .filter(|r| r.platform_of.as_deref() == Some(index.digest.as_str()))
        .map(|r| r.version.digest.as_str())
        .collect();
    let expected: BTreeSet<&str> = [&amd64.manifest, &arm64.manifest, &attestation]
        .map(|b| b.digest.as_str())
        .into();
    assert_eq!(children, expected);
    let fetched: Vec<String> = requests_to(&server, "/v2/")
        .await
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    for skipped in [&arm64.manifest.digest, &attestation.digest] {
        assert!(
            !fetched.iter().any(|p| p.ends_with(skipped.as_str())),
            "no request for a recognised child: {fetched:?}"
        );
    }

    let plan = crate::plan::build(&inventory, resolutions);
    assert_eq!(plan.selection.platform_children, 3);
    let targets: BTreeSet<&str> = plan.targets.iter().map(|t| t.digest.as_str()).collect();
    let expected: BTreeSet<&str> = [&amd64.manifest.digest, &orphan.manifest.digest]
        .map(String::as_str)
        .into();
    assert_eq!(targets, expected, "the platform, and the true orphan");
    let platform = plan
        .targets
        .iter()
        .find(|t| t.digest == amd64.manifest.digest)
        .unwrap();
    assert_eq!(platform.refs.len(), 1, "reached through the index only");
    assert_eq!(platform.refs[0].tags, ["1.0"]);
}

#[tokio::test]
async fn lists_tags_across_link_pages_leaving_out_invalid_ones() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/x/tags/list"))
        .and(query_param("last", "latest"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"name": "acme/x", "tags": ["2.0", "bad/tag"]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/x/tags/list"))
        .and(query_param("n", "1000"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"name": "acme/x", "tags": ["1.0", "latest"]}))
                .insert_header(
                    "link",
                    "</v2/acme/x/tags/list?last=latest&n=1000>; rel=\"next\"",
                ),
        )
        .mount(&server)
        .await;

    let tags = client(&server, None, &[]).tags("acme/x").await.unwrap();

    assert_eq!(tags, ["1.0", "latest", "2.0"]);
}

#[tokio::test]
async fn refuses_a_tag_list_link_that_leaves_the_repository() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/x/tags/list"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"tags": ["1.0"]}))
                .insert_header(
                    "link",
                    "<https://elsewhere.example/v2/acme/x/tags/list?last=1.0>; rel=\"next\"",
                ),
        )
        .mount(&server)
        .await;

    let error = client(&server, None, &[])
        .tags("acme/x")
        .await
        .unwrap_err()
        .to_string();

    assert!(error.contains("refusing to follow it"), "{error}");
}

#[tokio::test]
async fn a_tag_resolves_by_the_digest_header_or_by_hashing_its_manifest() {
    let server = MockServer::start().await;
    let image = image("linux", "amd64", &[10], manifest::OCI_MANIFEST);
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/x/manifests/1.0"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("docker-content-digest", &image.manifest.digest),
        )
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/x/manifests/2.0"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/acme/x/manifests/2.0"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(image.manifest.bytes.clone(), manifest::OCI_MANIFEST),
        )
        .mount(&server)
        .await;
    let client = client(&server, None, &[]);

    assert_eq!(
        client.tag_digest("acme/x", "1.0").await.unwrap(),
        image.manifest.digest
    );
    assert_eq!(
        client.tag_digest("acme/x", "2.0").await.unwrap(),
        image.manifest.digest
    );
    let error = client.tag_digest("acme/x", "../x").await.unwrap_err();
    assert!(error.to_string().contains("must start with"), "{error}");
}
