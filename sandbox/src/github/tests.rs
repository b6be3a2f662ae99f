//! End-to-end checks of the emulator over real HTTP, written as a client author would check
//! GitHub: pagination, name encoding, token modes, ETags, rate limits, faults, SARIF uploads
//! and the registry token endpoint.

use std::io::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::*;

const PAT: &str = "ghp_test";
const ACTIONS: &str = "ghs_actions";
const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

/// An emulator with organization `Acme`, a PAT, an Actions token of `acme/app`, and packages.
async fn acme() -> Emulator {
    let emulator = Emulator::start().await.unwrap();
    emulator.add_owner("Acme", OwnerKind::Organization);
    emulator.add_owner("alice", OwnerKind::User);
    emulator.add_token(PAT, TokenKind::Pat);
    emulator.add_token(
        ACTIONS,
        TokenKind::Actions {
            repository: "acme/app".to_string(),
        },
    );
    emulator.add_repository("acme/app");
    emulator.add_package(
        "Acme",
        PackageSpec::new("products/bfx/tool").repository("acme/app"),
    );
    emulator.add_package("Acme", PackageSpec::new("internal-only"));
    emulator.add_package(
        "Acme",
        PackageSpec::new("web").visibility(Visibility::Public),
    );
    emulator.add_version(
        "Acme",
        "products/bfx/tool",
        VersionSpec::new(DIGEST_A, &["1.0"]),
    );
    emulator.add_version(
        "Acme",
        "products/bfx/tool",
        VersionSpec::new(DIGEST_B, &["1.1", "latest"]),
    );
    emulator
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn names(&self) -> Vec<String> {
        let items = self.body.as_array().cloned().unwrap_or_default();
        items
            .iter()
            .map(|item| item["name"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// `GET` of a path (or absolute URL) with an optional token.
async fn get(emulator: &Emulator, path: &str, token: Option<&str>) -> Answer {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        emulator.url() + path
    };
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

fn next_link(link: &str) -> Option<String> {
    link.split(", ")
        .find(|part| part.ends_with("rel=\"next\""))
        .and_then(|part| part.split(['<', '>']).nth(1))
        .map(str::to_string)
}

fn gzip_base64(text: &str) -> String {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    STANDARD.encode(encoder.finish().unwrap())
}

fn sarif(runs: Value) -> String {
    json!({ "version": "2.1.0", "runs": runs }).to_string()
}

fn trivy_run(category: &str, results: usize) -> Value {
    let result = json!({
        "ruleId": "CVE-2024-0001",
        "message": { "text": "x" },
        "locations": [{ "physicalLocation": { "artifactLocation": { "uri": "image" } } }],
    });
    json!({
        "tool": {
            "driver": {
                "name": "Trivy",
                "version": "0.76.0",
                "rules": [{ "id": "CVE-2024-0001" }],
            },
        },
        "automationDetails": { "id": format!("{category}/") },
        "results": vec![result; results],
    })
}

async fn upload(emulator: &Emulator, token: &str, repo: &str, body: Value) -> Answer {
    let url = format!("{}/repos/{repo}/code-scanning/sarifs", emulator.url());
    send(
        reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

fn upload_body(sarif_text: &str) -> Value {
    json!({ "commit_sha": SHA, "ref": "refs/heads/main", "sarif": gzip_base64(sarif_text) })
}

#[tokio::test]
async fn lists_org_packages_in_pages_following_link_headers() {
    let emulator = acme().await;
    for i in 0..4 {
        emulator.add_package("acme", PackageSpec::new(&format!("extra-{i}")));
    }

    let first = get(
        &emulator,
        "/orgs/acme/packages?package_type=container&per_page=2",
        Some(PAT),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.names(), vec!["extra-0", "extra-1"]);
    let link = first.header("link");
    assert!(
        link.contains("rel=\"next\"") && link.contains("rel=\"last\""),
        "{link}"
    );
    assert!(
        !link.contains("rel=\"prev\"") && !link.contains("rel=\"first\""),
        "{link}"
    );
    assert!(
        link.starts_with(&format!("<{}/orgs/acme/packages?", emulator.url())),
        "{link}"
    );

    let mut names = first.names();
    let mut next = next_link(link);
    while let Some(url) = next {
        let page = get(&emulator, &url, Some(PAT)).await;
        assert_eq!(page.status, StatusCode::OK);
        names.extend(page.names());
        next = next_link(page.header("link"));
    }
    let expected = [
        "extra-0",
        "extra-1",
        "extra-2",
        "extra-3",
        "internal-only",
        "products/bfx/tool",
        "web",
    ];
    assert_eq!(names, expected);
}

#[tokio::test]
async fn caps_per_page_at_one_hundred() {
    let emulator = acme().await;
    for i in 0..150 {
        emulator.add_package("acme", PackageSpec::new(&format!("p{i:03}")));
    }
    let page = get(
        &emulator,
        "/orgs/acme/packages?package_type=container&per_page=500",
        Some(PAT),
    )
    .await;
    assert_eq!(page.body.as_array().unwrap().len(), 100);
    assert!(
        page.header("link").contains("page=2>; rel=\"last\""),
        "{}",
        page.header("link")
    );
    let default = get(
        &emulator,
        "/orgs/acme/packages?package_type=container",
        Some(PAT),
    )
    .await;
    assert_eq!(default.body.as_array().unwrap().len(), 30);
}

#[tokio::test]
async fn package_json_carries_the_fields_dragnet_reads() {
    let emulator = acme().await;
    let list = get(
        &emulator,
        "/orgs/acme/packages?package_type=container",
        Some(PAT),
    )
    .await;
    let tool = &list.body[1];
    assert_eq!(tool["name"], "products/bfx/tool");
    assert_eq!(tool["version_count"], 2);
    assert_eq!(tool["visibility"], "private");
    assert_eq!(tool["repository"]["full_name"], "acme/app");
    assert_eq!(tool["owner"]["login"], "Acme");
    assert_eq!(tool["owner"]["type"], "Organization");
    let url = format!(
        "{}/orgs/Acme/packages/container/products%2Fbfx%2Ftool",
        emulator.url()
    );
    assert_eq!(tool["url"], url);
    assert!(
        list.body[0].get("repository").is_none(),
        "unlinked packages have no repository"
    );
}

#[tokio::test]
async fn reads_a_slashed_name_only_when_encoded_exactly_once() {
    let emulator = acme().await;
    let base = "/orgs/acme/packages/container";
    let once = get(
        &emulator,
        &format!("{base}/products%2Fbfx%2Ftool"),
        Some(PAT),
    )
    .await;
    assert_eq!(once.status, StatusCode::OK);
    assert_eq!(once.body["name"], "products/bfx/tool");

    let raw = get(&emulator, &format!("{base}/products/bfx/tool"), Some(PAT)).await;
    assert_eq!(raw.status, StatusCode::NOT_FOUND);
    assert_eq!(raw.body["message"], "Not Found");
    let twice = get(
        &emulator,
        &format!("{base}/products%252Fbfx%252Ftool"),
        Some(PAT),
    )
    .await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);
    let versions = get(
        &emulator,
        &format!("{base}/products/bfx/tool/versions"),
        Some(PAT),
    )
    .await;
    assert_eq!(versions.status, StatusCode::NOT_FOUND);

    let paths: Vec<String> = emulator.requests().into_iter().map(|r| r.path).collect();
    assert!(
        paths.contains(&format!("{base}/products%252Fbfx%252Ftool")),
        "{paths:?}"
    );
}

#[tokio::test]
async fn lists_versions_newest_first_with_tags_and_moves_retagged_tags() {
    let emulator = acme().await;
    let path = "/orgs/acme/packages/container/products%2Fbfx%2Ftool/versions";
    let versions = get(&emulator, path, Some(PAT)).await;
    assert_eq!(versions.status, StatusCode::OK);
    assert_eq!(versions.body[0]["name"], DIGEST_B);
    assert_eq!(versions.body[0]["metadata"]["package_type"], "container");
    assert_eq!(
        versions.body[0]["metadata"]["container"]["tags"],
        json!(["1.1", "latest"])
    );
    assert_eq!(versions.body[1]["name"], DIGEST_A);

    let digest_c = format!("sha256:{}", "c".repeat(64));
    emulator.add_version(
        "acme",
        "products/bfx/tool",
        VersionSpec::new(&digest_c, &["latest"]),
    );
    let versions = get(&emulator, path, Some(PAT)).await;
    assert_eq!(
        versions.body[0]["metadata"]["container"]["tags"],
        json!(["latest"])
    );
    assert_eq!(
        versions.body[1]["metadata"]["container"]["tags"],
        json!(["1.1"])
    );

    let id = versions.body[2]["id"].as_u64().unwrap();
    let one = get(&emulator, &format!("{}/{id}", path), Some(PAT)).await;
    assert_eq!(one.body["name"], DIGEST_A);
}

#[tokio::test]
async fn actions_token_cannot_list_org_packages_but_reads_granted_ones_by_name() {
    let emulator = acme().await;
    let list = get(
        &emulator,
        "/orgs/acme/packages?package_type=container",
        Some(ACTIONS),
    )
    .await;
    assert_eq!(list.status, StatusCode::BAD_REQUEST);
    assert_eq!(list.body["message"], "Invalid argument.");

    let base = "/orgs/acme/packages/container";
    let linked = get(
        &emulator,
        &format!("{base}/products%2Fbfx%2Ftool"),
        Some(ACTIONS),
    )
    .await;
    assert_eq!(linked.status, StatusCode::OK);
    let versions = get(
        &emulator,
        &format!("{base}/products%2Fbfx%2Ftool/versions"),
        Some(ACTIONS),
    )
    .await;
    assert_eq!(versions.body.as_array().unwrap().len(), 2);
    let public = get(&emulator, &format!("{base}/web"), Some(ACTIONS)).await;
    assert_eq!(public.status, StatusCode::OK);
    let hidden = get(&emulator, &format!("{base}/internal-only"), Some(ACTIONS)).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(hidden.header("x-ratelimit-limit"), "1000");
}

#[tokio::test]
async fn refuses_missing_and_unknown_tokens() {
    let emulator = acme().await;
    let path = "/orgs/acme/packages?package_type=container";
    let anonymous = get(&emulator, path, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["message"], "Requires authentication");
    let wrong = get(&emulator, path, Some("ghp_wrong")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["message"], "Bad credentials");
    assert!(wrong.body["documentation_url"].is_string());

    let request = reqwest::Client::new()
        .get(emulator.url() + path)
        .header("authorization", format!("token {PAT}"));
    assert_eq!(send(request).await.status, StatusCode::OK);
    let recorded = emulator.requests();
    assert!(!recorded[0].had_authorization && recorded[1].had_authorization);
}

#[tokio::test]
async fn list_requires_a_known_package_type() {
    let emulator = acme().await;
    let missing = get(&emulator, "/orgs/acme/packages", Some(PAT)).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    let npm = get(&emulator, "/orgs/acme/packages?package_type=npm", Some(PAT)).await;
    assert_eq!((npm.status, npm.body.clone()), (StatusCode::OK, json!([])));
    let unknown_org = get(
        &emulator,
        "/orgs/nobody/packages?package_type=container",
        Some(PAT),
    )
    .await;
    assert_eq!(unknown_org.status, StatusCode::NOT_FOUND);
    let user_as_org = get(
        &emulator,
        "/orgs/alice/packages?package_type=container",
        Some(PAT),
    )
    .await;
    assert_eq!(user_as_org.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn serves_user_packages_and_the_tokens_own_user() {
    let emulator = acme().await;
    emulator.add_package("alice", PackageSpec::new("tool"));
    emulator.add_token(
        "ghp_alice",
        TokenKind::UserPat {
            login: "alice".to_string(),
        },
    );

    let theirs = get(
        &emulator,
        "/users/alice/packages?package_type=container",
        Some(PAT),
    )
    .await;
    assert_eq!(theirs.names(), vec!["tool"]);
    assert_eq!(theirs.body[0]["owner"]["type"], "User");
    let mine = get(
        &emulator,
        "/user/packages?package_type=container",
        Some("ghp_alice"),
    )
    .await;
    assert_eq!(mine.names(), vec!["tool"]);
    let one = get(
        &emulator,
        "/user/packages/container/tool",
        Some("ghp_alice"),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK);
    let nobody = get(
        &emulator,
        "/user/packages?package_type=container",
        Some(PAT),
    )
    .await;
    assert_eq!(nobody.body, json!([]));
}

#[tokio::test]
async fn users_endpoint_tells_organizations_from_users() {
    let emulator = acme().await;
    let org = get(&emulator, "/users/acme", None).await;
    assert_eq!(
        (org.body["type"].as_str(), org.body["login"].as_str()),
        (Some("Organization"), Some("Acme"))
    );
    let user = get(&emulator, "/users/alice", Some(PAT)).await;
    assert_eq!(user.body["type"], "User");
    let missing = get(&emulator, "/users/nobody", Some(PAT)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn matching_etag_answers_304_without_spending_the_rate_limit() {
    let emulator = acme().await;
    let path = "/orgs/acme/packages?package_type=container";
    let first = get(&emulator, path, Some(PAT)).await;
    let etag = first.header("etag").to_string();
    assert!(etag.starts_with("W/\""), "{etag}");
    let remaining: u64 = first.header("x-ratelimit-remaining").parse().unwrap();

    let request = reqwest::Client::new()
        .get(emulator.url() + path)
        .bearer_auth(PAT)
        .header("if-none-match", &etag);
    let again = send(request).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.body, Value::Null);
    assert_eq!(again.header("x-ratelimit-remaining"), remaining.to_string());

    emulator.add_package("acme", PackageSpec::new("new"));
    let request = reqwest::Client::new()
        .get(emulator.url() + path)
        .bearer_auth(PAT)
        .header("if-none-match", &etag);
    let changed = send(request).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(
        changed.header("x-ratelimit-remaining"),
        (remaining - 1).to_string()
    );
}

#[tokio::test]
async fn reports_rate_limits_per_token_and_rate_limit_is_free() {
    let emulator = acme().await;
    let first = get(&emulator, "/users/acme", Some(PAT)).await;
    assert_eq!(first.header("x-ratelimit-limit"), "5000");
    assert_eq!(first.header("x-ratelimit-remaining"), "4999");
    assert_eq!(first.header("x-ratelimit-used"), "1");
    assert_eq!(first.header("x-ratelimit-resource"), "core");
    assert!(first.header("x-ratelimit-reset").parse::<u64>().unwrap() > 1_700_000_000);

    let overview = get(&emulator, "/rate_limit", Some(PAT)).await;
    assert_eq!(overview.body["resources"]["core"]["remaining"], 4999);
    assert_eq!(overview.header("x-ratelimit-remaining"), "4999");
    let second = get(&emulator, "/users/acme", Some(PAT)).await;
    assert_eq!(second.header("x-ratelimit-remaining"), "4998");

    emulator.set_rate_limit_remaining(PAT, 0);
    let exhausted = get(&emulator, "/users/acme", Some(PAT)).await;
    assert_eq!(exhausted.status, StatusCode::FORBIDDEN);
    assert_eq!(exhausted.header("x-ratelimit-remaining"), "0");
}

#[tokio::test]
async fn armed_faults_answer_then_clear_and_are_recorded() {
    let emulator = acme().await;
    emulator.fail_next("/orgs/acme/packages", 2, Fault::status(502));
    emulator.fail_next("/users/", 1, Fault::secondary_rate_limit(1));
    let path = "/orgs/acme/packages?package_type=container";

    assert_eq!(
        get(&emulator, path, Some(PAT)).await.status,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        get(&emulator, path, Some(PAT)).await.status,
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(get(&emulator, path, Some(PAT)).await.status, StatusCode::OK);
    let limited = get(&emulator, "/users/acme", Some(PAT)).await;
    assert_eq!(limited.status, StatusCode::FORBIDDEN);
    assert_eq!(limited.header("retry-after"), "1");
    assert!(
        limited.body["message"]
            .as_str()
            .unwrap()
            .contains("secondary rate limit")
    );
    assert!(!limited.header("x-ratelimit-remaining").is_empty());

    emulator.fail_next(
        "/users/",
        1,
        Fault::primary_rate_limit(30).only_method("GET"),
    );
    let primary = get(&emulator, "/users/acme", Some(PAT)).await;
    assert_eq!(primary.header("x-ratelimit-remaining"), "0");

    let faulted: Vec<(u16, bool)> = emulator
        .requests()
        .iter()
        .map(|r| (r.status, r.faulted))
        .collect();
    assert_eq!(
        faulted,
        vec![
            (502, true),
            (502, true),
            (200, false),
            (403, true),
            (403, true)
        ]
    );
}

#[tokio::test]
async fn upload_goes_pending_then_complete_and_lists_analyses_newest_first() {
    let emulator = acme().await;
    let text = sarif(json!([
        trivy_run("dragnet/acme/tool", 3),
        trivy_run("dragnet/acme/web", 0)
    ]));
    let receipt = upload(&emulator, PAT, "acme/app", upload_body(&text)).await;
    assert_eq!(receipt.status, StatusCode::ACCEPTED);
    let id = receipt.body["id"].as_str().unwrap().to_string();
    let status_url = receipt.body["url"].as_str().unwrap().to_string();
    assert!(status_url.ends_with(&format!("/repos/acme/app/code-scanning/sarifs/{id}")));
    assert_eq!(
        receipt.header("x-ratelimit-resource"),
        "code_scanning_upload"
    );

    let uploads = emulator.uploads();
    assert_eq!(
        uploads[0].sarif,
        serde_json::from_str::<Value>(&text).unwrap()
    );
    assert_eq!(
        (
            uploads[0].git_ref.as_str(),
            uploads[0].processing_status.as_str()
        ),
        ("refs/heads/main", "pending")
    );

    let pending = get(&emulator, &status_url, Some(PAT)).await;
    assert_eq!(pending.body["processing_status"], "pending");
    let analyses_path = "/repos/acme/app/code-scanning/analyses";
    assert_eq!(
        get(&emulator, analyses_path, Some(PAT)).await.body,
        json!([])
    );
    let complete = get(&emulator, &status_url, Some(PAT)).await;
    assert_eq!(complete.body["processing_status"], "complete");
    assert!(
        complete.body["analyses_url"]
            .as_str()
            .unwrap()
            .contains(&id)
    );

    let second = sarif(json!([trivy_run("dragnet/acme/tool", 1)]));
    emulator.set_pending_polls(0);
    upload(&emulator, ACTIONS, "acme/app", upload_body(&second)).await;
    let analyses = get(
        &emulator,
        &format!("{analyses_path}?tool_name=Trivy"),
        Some(PAT),
    )
    .await;
    let listed: Vec<(String, u64, bool)> = analyses
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let category = a["category"].as_str().unwrap().to_string();
            (
                category,
                a["results_count"].as_u64().unwrap(),
                a["deletable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            ("dragnet/acme/tool".to_string(), 1, true),
            ("dragnet/acme/web".to_string(), 0, true),
            ("dragnet/acme/tool".to_string(), 3, false),
        ]
    );
    let by_ref = get(
        &emulator,
        &format!("{analyses_path}?ref=main&per_page=1"),
        Some(PAT),
    )
    .await;
    assert_eq!(by_ref.body.as_array().unwrap().len(), 1);
    assert!(by_ref.header("link").contains("rel=\"next\""));
    assert_eq!(emulator.analyses().len(), 3);
}

#[tokio::test]
async fn invalid_sarif_fails_processing_with_errors() {
    let emulator = acme().await;
    let duplicate = sarif(json!([trivy_run("same", 1), trivy_run("same", 1)]));
    let receipt = upload(&emulator, PAT, "acme/app", upload_body(&duplicate)).await;
    let url = receipt.body["url"].as_str().unwrap().to_string();
    get(&emulator, &url, Some(PAT)).await;
    let failed = get(&emulator, &url, Some(PAT)).await;
    assert_eq!(failed.body["processing_status"], "failed");
    assert!(
        failed.body["errors"][0]
            .as_str()
            .unwrap()
            .contains("same tool")
    );

    let receipt = upload(&emulator, PAT, "acme/app", upload_body("{not json")).await;
    assert_eq!(receipt.status, StatusCode::ACCEPTED);
    emulator.process_uploads();
    let uploads = emulator.uploads();
    assert_eq!(uploads[1].processing_status, "failed");
    assert_eq!(uploads[1].sarif, Value::Null);
    assert!(emulator.analyses().is_empty());
}

#[tokio::test]
async fn upload_request_is_validated_like_github() {
    let emulator = acme().await;
    emulator.add_repository("acme/other");
    emulator.add_package("acme", PackageSpec::new("x").repository("acme/no-scanning"));
    let good = upload_body(&sarif(json!([])));

    let mut bad_sha = good.clone();
    bad_sha["commit_sha"] = json!("abc123");
    assert_eq!(
        upload(&emulator, PAT, "acme/app", bad_sha).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let mut bad_ref = good.clone();
    bad_ref["ref"] = json!("main");
    assert_eq!(
        upload(&emulator, PAT, "acme/app", bad_ref).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let mut not_base64 = good.clone();
    not_base64["sarif"] = json!("%%%");
    assert_eq!(
        upload(&emulator, PAT, "acme/app", not_base64).await.status,
        StatusCode::BAD_REQUEST
    );
    let mut not_gzip = good.clone();
    not_gzip["sarif"] = json!(STANDARD.encode("{}"));
    assert_eq!(
        upload(&emulator, PAT, "acme/app", not_gzip).await.status,
        StatusCode::BAD_REQUEST
    );
    let mut too_large = good.clone();
    too_large["sarif"] = json!(STANDARD.encode(vec![0u8; MAX_SARIF_GZIP_BYTES + 1]));
    assert_eq!(
        upload(&emulator, PAT, "acme/app", too_large).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    assert_eq!(
        upload(&emulator, PAT, "acme/nope", good.clone())
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let foreign = upload(&emulator, ACTIONS, "acme/other", good.clone()).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert_eq!(
        foreign.body["message"],
        "Resource not accessible by integration"
    );
    let disabled = upload(&emulator, PAT, "acme/no-scanning", good.clone()).await;
    assert_eq!(disabled.status, StatusCode::FORBIDDEN);
    assert_eq!(
        upload(&emulator, PAT, "acme/other", good).await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(emulator.uploads().len(), 1);
}

/// The claims of a JWT, unverified.
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn registry_token_endpoint_grants_pull_like_ghcr() {
    let emulator = acme().await;
    let path = "/token?service=ghcr&scope=repository:acme/products/bfx/tool:pull";
    assert_eq!(
        get(&emulator, path, None).await.status,
        StatusCode::NOT_FOUND
    );
    let issuer = crate::token::TokenIssuer::new("emulator", "ghcr").unwrap();
    emulator.set_registry_tokens(Arc::new(issuer));

    let basic = |token: &str| {
        reqwest::Client::new()
            .get(emulator.url() + path)
            .basic_auth("anything", Some(token))
    };
    let granted = send(basic(PAT)).await;
    assert_eq!(granted.status, StatusCode::OK);
    assert_eq!(granted.body["expires_in"], 300);
    assert_eq!(granted.body["token"], granted.body["access_token"]);
    let access = &claims(granted.body["token"].as_str().unwrap())["access"];
    assert_eq!(
        access,
        &json!([{ "type": "repository", "name": "acme/products/bfx/tool", "actions": ["pull"] }])
    );

    assert_eq!(
        send(basic("ghp_wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    let anonymous = get(&emulator, path, None).await;
    assert_eq!(
        claims(anonymous.body["token"].as_str().unwrap())["access"],
        json!([])
    );
    let public = get(
        &emulator,
        "/token?service=ghcr&scope=repository:acme/web:pull",
        None,
    )
    .await;
    assert_eq!(
        claims(public.body["token"].as_str().unwrap())["access"][0]["name"],
        "acme/web"
    );
}

#[tokio::test]
async fn inspection_endpoints_serve_json_and_are_not_recorded() {
    let emulator = acme().await;
    upload(&emulator, PAT, "acme/app", upload_body(&sarif(json!([])))).await;
    let uploads = get(&emulator, "/_emulator/uploads", None).await;
    assert_eq!(uploads.body[0]["ref"], "refs/heads/main");
    let requests = get(&emulator, "/_emulator/requests", None).await;
    assert_eq!(requests.body.as_array().unwrap().len(), 1);
    assert_eq!(emulator.requests().len(), 1);
}

#[tokio::test]
async fn stops_serving_when_dropped() {
    let emulator = acme().await;
    let url = emulator.url();
    drop(emulator);
    // The server task is aborted on drop; give the runtime a few turns to cancel it.
    let mut refused = false;
    for _ in 0..100 {
        let client = reqwest::Client::new();
        if client
            .get(format!("{url}/users/acme"))
            .send()
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the emulator still answered after drop");
}

#[test]
fn emulator_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<Emulator>();
}
