//! Checks that the GitHub emulator answers in the shapes GitHub publishes: every JSON body the
//! emulator serves is validated against the response schema of its operation in the OpenAPI
//! description from npm `@octokit/openapi` (directory named by `OCTOKIT_OPENAPI_DIR`).
//!
//! The description is OpenAPI 3.0, so schemas are converted to JSON Schema 2020-12 first:
//! `nullable: true` becomes a union with `null`, and `#/components/schemas/X` refs point into a
//! `$defs` holding just the components the schema reaches.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::LazyLock;

use base64::Engine as _;
use dragnet_sandbox::github::{
    Emulator, OwnerKind, PackageSpec, TokenKind, VersionSpec, Visibility,
};
use serde_json::{Map, Value, json};

const PAT: &str = "ghp_openapi";
const ACTIONS: &str = "ghs_openapi";

/// GitHub's OpenAPI description of api.github.com, read once for all tests.
static SPEC: LazyLock<Value> = LazyLock::new(load_spec);

fn load_spec() -> Value {
    let dir = std::env::var_os("OCTOKIT_OPENAPI_DIR").unwrap_or_else(|| {
        panic!(
            "OCTOKIT_OPENAPI_DIR is not set: point it at the @octokit/openapi npm package \
             (the directory holding generated/api.github.com.json), e.g. \
             OCTOKIT_OPENAPI_DIR=node_modules/@octokit/openapi"
        )
    });
    let dir = PathBuf::from(dir);
    let candidates = [
        dir.join("generated/api.github.com.json"),
        dir.join("api.github.com.json"),
    ];
    let Some(path) = candidates.iter().find(|path| path.is_file()) else {
        panic!(
            "OCTOKIT_OPENAPI_DIR={} holds no generated/api.github.com.json: install \
             @octokit/openapi there or fix the variable",
            dir.display()
        );
    };
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("parsing {}: {error}", path.display()))
}

/// Follows a local `$ref` (`#/components/...`) in the description.
fn resolve(value: &Value) -> &Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            SPEC.pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"))
        }
        None => value,
    }
}

/// The JSON schema of an operation's response, as OpenAPI 3.0.
fn openapi_schema(path: &str, method: &str, status: u16) -> Value {
    let operation = SPEC["paths"][path]
        .get(method)
        .unwrap_or_else(|| panic!("the description has no {method} {path}"));
    let response = operation["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{method} {path} documents no {status} response"));
    resolve(response)
        .pointer("/content/application~1json/schema")
        .unwrap_or_else(|| panic!("{method} {path} {status} has no JSON schema"))
        .clone()
}

/// The component names a schema refers to.
fn references(schema: &Value, found: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                found.push(name.to_string());
            }
            map.values().for_each(|value| references(value, found));
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

/// Converts one OpenAPI 3.0 schema object into JSON Schema 2020-12.
fn convert(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "example" | "examples" | "discriminator" | "xml" | "externalDocs" | "nullable" => {
                continue;
            }
            key if key.starts_with("x-") => continue,
            "$ref" => {
                let name = value
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches("#/components/schemas/");
                json!(format!("#/$defs/{name}"))
            }
            "properties" | "patternProperties" => Value::Object(
                value
                    .as_object()
                    .map(|props| props.iter().map(|(k, v)| (k.clone(), convert(v))).collect())
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" => convert(value),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .map_or(Vec::new(), |v| v.iter().map(convert).collect()),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }

    if map.get("nullable") != Some(&Value::Bool(true)) {
        return Value::Object(out);
    }
    // `nullable: true`: let `null` through the type and any enum, or wrap a typeless schema.
    if let Some(Value::Array(values)) = out.get_mut("enum") {
        values.push(Value::Null);
    }
    match out.get("type").cloned() {
        Some(Value::String(kind)) => {
            out.insert("type".into(), json!([kind, "null"]));
            Value::Object(out)
        }
        _ => json!({ "anyOf": [Value::Object(out), { "type": "null" }] }),
    }
}

/// A JSON Schema 2020-12 document for an operation's response, with its components as `$defs`.
fn json_schema(path: &str, method: &str, status: u16) -> Value {
    let root = openapi_schema(path, method, status);
    let components = &SPEC["components"]["schemas"];
    let mut pending = Vec::new();
    references(&root, &mut pending);
    let mut reached = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if reached.insert(name.clone()) {
            references(&components[&name], &mut pending);
        }
    }
    let defs: Map<String, Value> = reached
        .into_iter()
        .map(|name| (name.clone(), convert(&components[&name])))
        .collect();
    let mut schema = convert(&root);
    if let Value::Object(map) = &mut schema {
        map.insert("$defs".into(), Value::Object(defs));
    } else {
        schema = json!({ "allOf": [schema], "$defs": defs });
    }
    schema
}

/// The ways `body` breaks the documented response of `method path` for `status`.
fn schema_errors(path: &str, method: &str, status: u16, body: &Value) -> Vec<String> {
    let schema = json_schema(path, method, status);
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|error| {
            panic!("schema of {method} {path} {status} does not compile: {error}")
        });
    validator
        .iter_errors(body)
        .map(|error| format!("  at {}: {error}", error.instance_path()))
        .collect()
}

/// Asserts that `body` matches the documented response of `method path` for `status`.
fn assert_documented(path: &str, method: &str, status: u16, body: &Value) {
    let errors = schema_errors(path, method, status, body);
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: the emulator's answer breaks GitHub's schema:\n{}\n\
         body: {body:#}",
        errors.join("\n")
    );
}

/// An emulator populated with every kind of object the tests fetch.
async fn emulator() -> Emulator {
    let emulator = Emulator::start().await.expect("the emulator starts");
    emulator.add_owner("Acme", OwnerKind::Organization);
    emulator.add_owner("alice", OwnerKind::User);
    emulator.add_token(
        PAT,
        TokenKind::UserPat {
            login: "alice".to_string(),
        },
    );
    emulator.add_token(
        ACTIONS,
        TokenKind::Actions {
            repository: "acme/app".to_string(),
        },
    );
    emulator.add_repository("acme/app");
    emulator.add_package(
        "acme",
        PackageSpec::new("products/bfx/tool").repository("acme/app"),
    );
    emulator.add_package(
        "acme",
        PackageSpec::new("web").visibility(Visibility::Public),
    );
    emulator.add_package(
        "alice",
        PackageSpec::new("scratch").repository("alice/dots"),
    );
    let digest = format!("sha256:{}", "a".repeat(64));
    emulator.add_version(
        "acme",
        "products/bfx/tool",
        VersionSpec::new(&digest, &["1.0", "latest"]),
    );
    emulator.add_version(
        "acme",
        "products/bfx/tool",
        VersionSpec::new(&digest.replace('a', "b"), &[]),
    );
    emulator.add_version("alice", "scratch", VersionSpec::new(&digest, &["dev"]));
    emulator
}

async fn get(emulator: &Emulator, path: &str, token: Option<&str>) -> (u16, Value) {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        emulator.url() + path
    };
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the emulator answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("the answer is JSON"))
}

/// Fetches `path` and checks the answer against the operation `spec_path`.
async fn check(emulator: &Emulator, spec_path: &str, path: &str, token: Option<&str>, status: u16) {
    let (answered, body) = get(emulator, path, token).await;
    assert_eq!(answered, status, "GET {path}: {body}");
    assert_documented(spec_path, "get", status, &body);
}

fn gzip_base64(text: &str) -> String {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("gzip in memory");
    base64::engine::general_purpose::STANDARD.encode(encoder.finish().expect("gzip in memory"))
}

async fn upload(emulator: &Emulator, repo: &str, token: &str, sarif: &Value) -> (u16, Value) {
    let body = json!({
        "commit_sha": "0123456789abcdef0123456789abcdef01234567",
        "ref": "refs/heads/main",
        "sarif": gzip_base64(&sarif.to_string()),
    });
    let url = format!("{}/repos/{repo}/code-scanning/sarifs", emulator.url());
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await;
    let response = response.expect("the emulator answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("the answer is JSON"))
}

#[tokio::test]
async fn package_answers_match_the_package_schemas() {
    let emulator = emulator().await;
    let tool = "products%2Fbfx%2Ftool";
    let query = "?package_type=container";

    check(
        &emulator,
        "/orgs/{org}/packages",
        &format!("/orgs/acme/packages{query}"),
        Some(PAT),
        200,
    )
    .await;
    let users = "/users/{username}/packages";
    check(
        &emulator,
        users,
        &format!("/users/alice/packages{query}"),
        Some(PAT),
        200,
    )
    .await;
    check(
        &emulator,
        "/user/packages",
        &format!("/user/packages{query}"),
        Some(PAT),
        200,
    )
    .await;

    let one = "/orgs/{org}/packages/{package_type}/{package_name}";
    check(
        &emulator,
        one,
        &format!("/orgs/acme/packages/container/{tool}"),
        Some(PAT),
        200,
    )
    .await;
    let one = "/users/{username}/packages/{package_type}/{package_name}";
    check(
        &emulator,
        one,
        "/users/alice/packages/container/scratch",
        Some(PAT),
        200,
    )
    .await;
    let one = "/user/packages/{package_type}/{package_name}";
    check(
        &emulator,
        one,
        "/user/packages/container/scratch",
        Some(PAT),
        200,
    )
    .await;

    let versions = "/orgs/{org}/packages/{package_type}/{package_name}/versions";
    let path = format!("/orgs/acme/packages/container/{tool}/versions");
    check(&emulator, versions, &path, Some(PAT), 200).await;
    check(&emulator, versions, &path, Some(ACTIONS), 200).await;
    let versions = "/users/{username}/packages/{package_type}/{package_name}/versions";
    check(
        &emulator,
        versions,
        "/users/alice/packages/container/scratch/versions",
        Some(PAT),
        200,
    )
    .await;
    let versions = "/user/packages/{package_type}/{package_name}/versions";
    check(
        &emulator,
        versions,
        "/user/packages/container/scratch/versions",
        Some(PAT),
        200,
    )
    .await;

    let (_, listed) = get(&emulator, &path, Some(PAT)).await;
    let id = listed[0]["id"].as_u64().expect("versions have numeric ids");
    let version =
        "/orgs/{org}/packages/{package_type}/{package_name}/versions/{package_version_id}";
    check(&emulator, version, &format!("{path}/{id}"), Some(PAT), 200).await;
}

#[tokio::test]
async fn package_errors_match_the_documented_error_schemas() {
    let emulator = emulator().await;
    let list = "/orgs/{org}/packages";
    check(
        &emulator,
        list,
        "/orgs/acme/packages?package_type=container",
        None,
        401,
    )
    .await;
    let versions = "/orgs/{org}/packages/{package_type}/{package_name}/versions";
    check(
        &emulator,
        versions,
        "/orgs/acme/packages/container/nope/versions",
        Some(PAT),
        404,
    )
    .await;
    check(
        &emulator,
        versions,
        "/orgs/acme/packages/container/web/versions",
        None,
        401,
    )
    .await;
}

#[tokio::test]
async fn user_answers_match_the_user_schemas() {
    let emulator = emulator().await;
    check(&emulator, "/users/{username}", "/users/acme", None, 200).await;
    check(
        &emulator,
        "/users/{username}",
        "/users/alice",
        Some(PAT),
        200,
    )
    .await;
    check(
        &emulator,
        "/users/{username}",
        "/users/nobody",
        Some(PAT),
        404,
    )
    .await;
}

#[tokio::test]
async fn rate_limit_answer_matches_the_overview_schema() {
    let emulator = emulator().await;
    check(&emulator, "/rate_limit", "/rate_limit", Some(PAT), 200).await;
    check(&emulator, "/rate_limit", "/rate_limit", None, 200).await;
}

#[tokio::test]
async fn code_scanning_answers_match_the_code_scanning_schemas() {
    let emulator = emulator().await;
    emulator.add_repository("acme/other");
    let run = |category: &str| {
        json!({
            "tool": { "driver": { "name": "Trivy", "version": "0.76.0", "rules": [] } },
            "automationDetails": { "id": format!("{category}/") },
            "results": [{
                "ruleId": "CVE-1",
                "message": { "text": "x" },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": "a" } } }],
            }],
        })
    };
    let good =
        json!({ "version": "2.1.0", "runs": [run("dragnet/acme/tool"), run("dragnet/acme/web")] });
    let bad = json!({ "version": "2.1.0", "runs": [run("same"), run("same")] });

    let sarifs = "/repos/{owner}/{repo}/code-scanning/sarifs";
    let (status, receipt) = upload(&emulator, "acme/app", PAT, &good).await;
    assert_eq!(status, 202, "{receipt}");
    assert_documented(sarifs, "post", 202, &receipt);
    let (status, forbidden) = upload(&emulator, "acme/other", ACTIONS, &good).await;
    assert_eq!(status, 403, "{forbidden}");
    assert_documented(sarifs, "post", 403, &forbidden);
    let (status, missing) = upload(&emulator, "acme/none", PAT, &good).await;
    assert_eq!(status, 404, "{missing}");
    assert_documented(sarifs, "post", 404, &missing);

    let status_op = "/repos/{owner}/{repo}/code-scanning/sarifs/{sarif_id}";
    let url = receipt["url"].as_str().expect("the receipt has a url");
    check(&emulator, status_op, url, Some(PAT), 200).await;
    check(&emulator, status_op, url, Some(PAT), 200).await;
    let (_, failed) = upload(&emulator, "acme/app", PAT, &bad).await;
    let failed_url = failed["url"].as_str().expect("the receipt has a url");
    check(&emulator, status_op, failed_url, Some(PAT), 200).await;
    let (_, answer) = get(&emulator, failed_url, Some(PAT)).await;
    assert_eq!(answer["processing_status"], "failed");
    assert_documented(status_op, "get", 200, &answer);

    let analyses = "/repos/{owner}/{repo}/code-scanning/analyses";
    let path = "/repos/acme/app/code-scanning/analyses?tool_name=Trivy";
    let (_, listed) = get(&emulator, path, Some(PAT)).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    check(&emulator, analyses, path, Some(PAT), 200).await;
    check(
        &emulator,
        analyses,
        "/repos/acme/none/code-scanning/analyses",
        Some(PAT),
        404,
    )
    .await;
    check(
        &emulator,
        analyses,
        "/repos/acme/other/code-scanning/analyses",
        Some(ACTIONS),
        403,
    )
    .await;
}

#[test]
fn nullable_becomes_a_type_union_and_refs_point_into_defs() {
    let converted = convert(&json!({
        "type": "object",
        "properties": {
            "a": { "type": "string", "nullable": true, "example": "x" },
            "b": { "$ref": "#/components/schemas/thing" },
            "c": { "allOf": [{ "$ref": "#/components/schemas/thing" }], "nullable": true },
        },
    }));
    assert_eq!(
        converted["properties"]["a"],
        json!({ "type": ["string", "null"] })
    );
    assert_eq!(
        converted["properties"]["b"],
        json!({ "$ref": "#/$defs/thing" })
    );
    assert_eq!(
        converted["properties"]["c"]["anyOf"][1],
        json!({ "type": "null" })
    );
}

#[tokio::test]
async fn checker_rejects_answers_that_break_the_schema() {
    let emulator = emulator().await;
    let one = "/orgs/{org}/packages/{package_type}/{package_name}";
    let (_, mut package) = get(&emulator, "/orgs/acme/packages/container/web", Some(PAT)).await;
    assert!(schema_errors(one, "get", 200, &package).is_empty());
    package["created_at"] = json!("yesterday");
    package["visibility"] = json!("secret");
    package
        .as_object_mut()
        .expect("a package is an object")
        .remove("version_count");
    assert_eq!(
        schema_errors(one, "get", 200, &package).len(),
        3,
        "{package}"
    );

    let (_, mut user) = get(&emulator, "/users/alice", Some(PAT)).await;
    user["unexpected"] = json!(1);
    assert!(!schema_errors("/users/{username}", "get", 200, &user).is_empty());
}
