//! Debian's real `docker-registry` in each auth mode: right credentials pass, wrong ones get the
//! challenge a client follows, pushed images pull back byte for byte, and Trivy downloads the
//! sandbox's vulnerability DB.

use std::sync::Arc;
use std::time::Instant;

use dragnet_sandbox::oci;
use dragnet_sandbox::registry::{RegistryMode, RegistryServer};
use dragnet_sandbox::sandbox::{RegistryModeChoice, Sandbox};
use dragnet_sandbox::token::{Access, TokenIssuer};

async fn get(url: &str, auth: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut request = client.get(url);
    if let Some(value) = auth {
        request = request.header("Authorization", value);
    }
    request.send().await.expect("the registry answers")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[tokio::test]
async fn open_registry_answers_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let registry = RegistryServer::start(RegistryMode::Open, dir.path())
        .await
        .unwrap();

    assert_eq!(
        get(&format!("{}/v2/", registry.url()), None).await.status(),
        200
    );
    assert!(registry.access_log_path().exists());
}

#[tokio::test]
async fn basic_registry_accepts_only_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let mode = RegistryMode::Basic {
        user: "ci".into(),
        password: "s3cret".into(),
    };
    let registry = RegistryServer::start(mode, dir.path()).await.unwrap();
    let url = format!("{}/v2/", registry.url());

    assert_eq!(get(&url, Some(&basic("ci", "s3cret"))).await.status(), 200);
    assert_eq!(get(&url, Some(&basic("ci", "wrong"))).await.status(), 401);
    let anonymous = get(&url, None).await;
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
}

#[tokio::test]
async fn token_registry_accepts_issued_tokens_and_challenges_others() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Arc::new(TokenIssuer::new("sandbox-issuer", "sandbox-service").unwrap());
    let mode = RegistryMode::token("http://127.0.0.1:9/token", &issuer);
    let registry = RegistryServer::start(mode, dir.path()).await.unwrap();
    let tags = format!("{}/v2/bfx-org/tool/tags/list", registry.url());

    // A pull token for the repository gets through auth (404: nothing pushed yet).
    let token = issuer
        .issue("alice", vec![Access::repository("bfx-org/tool", &["pull"])])
        .unwrap();
    let granted = get(&tags, Some(&format!("Bearer {token}"))).await;
    assert_eq!(granted.status(), 404, "{}", granted.text().await.unwrap());

    // Anonymous: 401 and the challenge naming realm, service and scope.
    let anonymous = get(&tags, None).await;
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        challenge,
        "Bearer realm=\"http://127.0.0.1:9/token\",service=\"sandbox-service\",\
         scope=\"repository:bfx-org/tool:pull\""
    );

    // A token for another repository, and one signed by a key the registry does not trust.
    let other = issuer
        .issue(
            "alice",
            vec![Access::repository("bfx-org/other", &["pull"])],
        )
        .unwrap();
    assert_eq!(
        get(&tags, Some(&format!("Bearer {other}"))).await.status(),
        401
    );
    let stranger = TokenIssuer::new("sandbox-issuer", "sandbox-service").unwrap();
    let forged = stranger
        .issue(
            "mallory",
            vec![Access::repository("bfx-org/tool", &["pull"])],
        )
        .unwrap();
    assert_eq!(
        get(&tags, Some(&format!("Bearer {forged}"))).await.status(),
        401
    );
    assert_eq!(get(&tags, Some("Bearer not-a-jwt")).await.status(), 401);
}

fn sample_image(name: &str, arch: &str) -> oci::Image {
    let base = oci::build_layer([oci::LayerEntry {
        path: "etc/debian_version",
        contents: b"12.5\n",
        mode: 0o644,
    }])
    .unwrap();
    let own = oci::build_layer([oci::LayerEntry {
        path: &format!("opt/{name}/{arch}.txt"),
        contents: name.as_bytes(),
        mode: 0o755,
    }])
    .unwrap();
    oci::build_image(&[base, own], &oci::Platform::new("linux", arch)).unwrap()
}

#[tokio::test]
async fn pushed_images_pull_back_byte_identical_and_deleted_blobs_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Arc::new(TokenIssuer::new("sandbox-issuer", "sandbox-service").unwrap());
    let mode = RegistryMode::token("http://127.0.0.1:9/token", &issuer);
    let registry = RegistryServer::start(mode, dir.path()).await.unwrap();
    let client = oci::RegistryClient::new(&registry.url(), oci::PushAuth::Issuer(issuer)).unwrap();

    // A single-platform image under two tags, and a two-platform index.
    let single = sample_image("single", "amd64");
    let tags = vec!["1.0".to_owned(), "latest".to_owned()];
    client
        .push_image("bfx-org/single", &single, &tags)
        .await
        .unwrap();
    let index = oci::build_index(vec![
        sample_image("multi", "amd64"),
        sample_image("multi", "arm64"),
    ])
    .unwrap();
    client
        .push_index("bfx-org/multi", &index, &["2.0".to_owned()])
        .await
        .unwrap();

    let (content_type, bytes) = client
        .pull_manifest("bfx-org/single", "latest")
        .await
        .unwrap();
    assert_eq!(content_type, oci::OCI_MANIFEST);
    assert_eq!(bytes, single.manifest.bytes);
    let (content_type, bytes) = client.pull_manifest("bfx-org/multi", "2.0").await.unwrap();
    assert_eq!(content_type, oci::OCI_INDEX);
    assert_eq!(bytes, index.index.bytes);
    for image in &index.images {
        let (_, bytes) = client
            .pull_manifest("bfx-org/multi", image.digest())
            .await
            .unwrap();
        assert_eq!(bytes, image.manifest.bytes);
    }
    for blob in std::iter::once(&single.config).chain(&single.layers) {
        let pulled = client
            .pull_blob("bfx-org/single", &blob.digest)
            .await
            .unwrap();
        assert_eq!(pulled.as_deref(), Some(blob.bytes.as_slice()));
    }

    // Pushing again skips the blobs already there and changes nothing.
    client
        .push_image("bfx-org/single", &single, &tags)
        .await
        .unwrap();

    // Deleting a layer leaves the manifest naming a blob the registry no longer serves.
    let gone = &single.layers[1].digest;
    client.delete_blob("bfx-org/single", gone).await.unwrap();
    assert!(client.pull_manifest("bfx-org/single", "1.0").await.is_ok());
    assert_eq!(
        client.pull_blob("bfx-org/single", gone).await.unwrap(),
        None
    );
    assert!(!client.blob_exists("bfx-org/single", gone).await.unwrap());
}

/// Asks the emulator's `/token` for a pull token, as Trivy or docker would.
async fn emulator_token(
    sandbox: &Sandbox,
    repository: &str,
    login: Option<(&str, &str)>,
) -> reqwest::Response {
    let url = format!("{}/token", sandbox.api_url());
    let scope = format!("repository:{repository}:pull");
    let mut request = reqwest::Client::new()
        .get(url)
        .query(&[("service", "dragnet-sandbox"), ("scope", scope.as_str())]);
    if let Some((user, password)) = login {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.unwrap()
}

async fn bearer_from(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    format!("Bearer {}", body["token"].as_str().unwrap())
}

#[tokio::test]
async fn token_sandbox_serves_every_pushed_version_with_emulator_tokens() {
    let started = Instant::now();
    let sandbox = Sandbox::start_temporary(RegistryModeChoice::Token)
        .await
        .unwrap();
    eprintln!("Sandbox::start (token mode) took {:?}", started.elapsed());
    let (user, password) = sandbox.registry_credentials().unwrap();
    assert_eq!(user, "x-access-token");
    assert_eq!(password, sandbox.token());
    let registry = sandbox.registry.url();

    assert!(!sandbox.pushed().is_empty());
    assert!(
        sandbox
            .pushed()
            .iter()
            .any(|version| version.platforms.len() > 1)
    );
    assert!(
        sandbox
            .pushed()
            .iter()
            .any(|version| version.missing_blob.is_some())
    );
    for version in sandbox.pushed() {
        let response = emulator_token(&sandbox, &version.repository, Some((&user, &password)));
        let bearer = bearer_from(response.await).await;

        // The manifest the registry serves hashes to the digest the sandbox reports.
        for reference in std::iter::once(&version.digest).chain(&version.tags) {
            let url = format!("{registry}/v2/{}/manifests/{reference}", version.repository);
            let response = reqwest::Client::new()
                .get(url)
                .header("Authorization", &bearer)
                .header(
                    "Accept",
                    format!("{}, {}", oci::OCI_MANIFEST, oci::OCI_INDEX),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{}:{reference}", version.repository);
            let bytes = response.bytes().await.unwrap();
            assert_eq!(oci::sha256_digest(&bytes), version.digest);
        }
        if let Some(tag) = version.tags.first() {
            assert_eq!(
                sandbox.digest_of(&version.package, tag),
                Some(version.digest.clone())
            );
        }

        // The missing blob answers 404 while its manifest is there.
        if let Some(blob) = &version.missing_blob {
            let url = format!("{registry}/v2/{}/blobs/{blob}", version.repository);
            let status = get(&url, Some(&bearer)).await.status();
            assert_eq!(status, 404);
        }
    }

    // No token, or a token for nothing: the ghcr.io-style challenge.
    let version = &sandbox.pushed()[0];
    let url = format!(
        "{registry}/v2/{}/manifests/{}",
        version.repository, version.digest
    );
    let anonymous = get(&url, None).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer realm=\"{}/token\",service=\"dragnet-sandbox\",\
             scope=\"repository:{}:pull\"",
            sandbox.api_url().replace("127.0.0.1", "localhost"),
            version.repository
        )
    );
    assert_eq!(get(&url, Some("Bearer e30.e30.e30")).await.status(), 401);

    // The token endpoint refuses a token the emulator does not know.
    let refused = emulator_token(&sandbox, &version.repository, Some(("x", "ghp_wrong"))).await;
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn basic_sandbox_accepts_its_credentials_only() {
    let sandbox = Sandbox::start_temporary(RegistryModeChoice::Basic)
        .await
        .unwrap();
    let (user, password) = sandbox.registry_credentials().unwrap();
    let version = &sandbox.pushed()[0];
    let url = format!(
        "{}/v2/{}/manifests/{}",
        sandbox.registry.url(),
        version.repository,
        version.digest
    );
    let accept = format!("{}, {}", oci::OCI_MANIFEST, oci::OCI_INDEX);
    let fetch = |auth: Option<String>| {
        let mut request = reqwest::Client::new().get(&url).header("Accept", &accept);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request.send()
    };

    assert_eq!(
        fetch(Some(basic(&user, &password))).await.unwrap().status(),
        200
    );
    assert_eq!(
        fetch(Some(basic(&user, "wrong"))).await.unwrap().status(),
        401
    );
    assert_eq!(fetch(None).await.unwrap().status(), 401);
}

#[tokio::test]
async fn open_sandbox_serves_anyone() {
    let sandbox = Sandbox::start_temporary(RegistryModeChoice::Open)
        .await
        .unwrap();
    assert_eq!(sandbox.registry_credentials(), None);
    let version = &sandbox.pushed()[0];
    let url = format!(
        "{}/v2/{}/manifests/{}",
        sandbox.registry.url(),
        version.repository,
        version.digest
    );
    let response = reqwest::Client::new()
        .get(url)
        .header(
            "Accept",
            format!("{}, {}", oci::OCI_MANIFEST, oci::OCI_INDEX),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn trivy_downloads_the_db_and_pulls_through_the_token_realm() {
    let sandbox = Sandbox::start_temporary(RegistryModeChoice::Token)
        .await
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let trivy = std::env::var_os("DRAGNET_TRIVY").unwrap_or_else(|| "trivy".into());

    // The DB, from the open DB registry.
    let output = tokio::process::Command::new(&trivy)
        .args(["image", "--download-db-only", "--quiet", "--db-repository"])
        .arg(sandbox.db_repository())
        .arg("--cache-dir")
        .arg(cache.path())
        .output()
        .await
        .expect("trivy is on PATH (or named by DRAGNET_TRIVY)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(cache.path().join("db/trivy.db").is_file());
    let metadata = std::fs::read_to_string(cache.path().join("db/metadata.json")).unwrap();
    let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap();
    assert_eq!(metadata["Version"], 2);
    let log = std::fs::read_to_string(sandbox.db_registry.access_log_path()).unwrap();
    assert!(
        log.contains("GET /v2/aquasecurity/trivy-db/blobs/sha256:"),
        "{log}"
    );

    // An image from the token registry: Trivy follows the challenge to the emulator's /token
    // with the PAT as password, as it would against ghcr.io.
    let version = sandbox
        .pushed()
        .iter()
        .find(|version| version.missing_blob.is_none() && version.platforms.len() == 1)
        .expect("the fixture has a single-platform image");
    let (user, password) = sandbox.registry_credentials().unwrap();
    let image = format!(
        "{}/{}@{}",
        sandbox.registry_host(),
        version.repository,
        version.digest
    );
    let output = tokio::process::Command::new(&trivy)
        .args([
            "image",
            "--quiet",
            "--skip-db-update",
            "--skip-java-db-update",
        ])
        .args([
            "--scanners",
            "vuln",
            "--image-src",
            "remote",
            "--format",
            "json",
        ])
        .arg("--cache-dir")
        .arg(cache.path())
        .arg(&image)
        .env("TRIVY_USERNAME", user)
        .env("TRIVY_PASSWORD", password)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ArtifactName"], image.as_str());
    let requests = sandbox.emulator.requests();
    assert!(
        requests
            .iter()
            .any(|request| request.path == "/token" && request.status == 200)
    );
}

#[test]
fn sandbox_binary_writes_its_env_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("sandbox.env");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dragnet-sandbox"))
        .args(["up", "--registry-mode", "open", "--dir"])
        .arg(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // The file appears only once everything is ready; poll for it, bounded.
    let mut tries = 0;
    while !env_file.exists() {
        tries += 1;
        assert!(tries < 600, "sandbox.env never appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "dragnet-sandbox exited early"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&env_file).unwrap();
    for name in [
        "DRAGNET_SANDBOX_API_URL",
        "GITHUB_API_URL",
        "GITHUB_TOKEN",
        "DRAGNET_SANDBOX_REGISTRY",
        "DRAGNET_SANDBOX_DB_REPOSITORY",
        "DRAGNET_SANDBOX_OWNER",
        "GITHUB_REPOSITORY",
        "GITHUB_SHA",
        "GITHUB_REF",
    ] {
        assert!(
            text.contains(&format!("export {name}='")),
            "{name} missing from {text}"
        );
    }
    assert!(text.contains("export GITHUB_REPOSITORY='bfx-org/pipelines'"));
    assert!(text.contains("export DRAGNET_SANDBOX_OWNER='bfx-org'"));

    // SIGTERM stops it cleanly and takes the env file away.
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with our own child's pid and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success());
    assert!(!env_file.exists());
}
