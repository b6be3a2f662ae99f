//! Hostile input: package names and tags that try path traversal, shell metacharacters,
//! control characters, very long or non-ASCII names; API answers with missing fields, wrong
//! types or huge arrays; Trivy reports that are truncated or enormous; invalid globs, durations
//! and severities. Each is a clear error or a skip with a reason: no panic, nothing written
//! outside the output directory, nothing run through a shell.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dragnet::report::ImageStatus;
use dragnet_sandbox::github::{PackageSpec, VersionSpec};
use dragnet_sandbox::sandbox::RegistryModeChoice;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

/// Package names (under `products/bfx/` unless they try to leave it) that try to escape.
fn hostile_names() -> Vec<String> {
    vec![
        "products/bfx/..".into(),
        "products/bfx/%2e%2e".into(),
        "products/bfx/..%2f..%2fetc".into(),
        "../../../../tmp/dragnet-escape".into(),
        "products/bfx/$(touch dragnet-pwned)".into(),
        "products/bfx/`touch dragnet-pwned`".into(),
        "products/bfx/a;touch dragnet-pwned".into(),
        "products/bfx/-rf".into(),
        "products/bfx/line\nbreak\r\u{1b}[31mred\u{0}".into(),
        format!("products/bfx/{}", "x".repeat(2_000)),
        "products/bfx/ñandú-日本語-\u{202e}txt.exe".into(),
    ]
}

/// Tags that try the same.
const HOSTILE_TAGS: &[&str] = &[
    "../../etc/passwd",
    "%2e%2e%2f",
    "$(touch dragnet-pwned)",
    "a|b`c`*d*",
    "<script>alert(1)</script>",
    "\u{1b}]8;;http://evil\u{7}click\u{1b}]8;;\u{7}",
    "tab\there",
];

/// Every path under `root`, relative, with directories marked by a trailing `/`.
fn listing(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                found.insert(format!("{relative}/"));
                stack.push(path);
            } else {
                found.insert(relative);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_names_and_tags_are_skipped_with_a_reason_and_nothing_escapes() {
    let world = World::start(RegistryModeChoice::Open).await;
    let owner = world.sandbox.owner().to_string();
    let missing = format!("sha256:{}", "0".repeat(64));
    for (index, name) in hostile_names().iter().enumerate() {
        world
            .sandbox
            .emulator
            .add_package(&owner, PackageSpec::new(name));
        let tag = HOSTILE_TAGS[index % HOSTILE_TAGS.len()];
        world
            .sandbox
            .emulator
            .add_version(&owner, name, VersionSpec::new(&missing, &[tag]));
    }
    // A real package gets a version with hostile tags and a digest that tries to escape.
    let evil_digest = "sha256:../../../../etc/passwd";
    world.sandbox.emulator.add_version(
        &owner,
        "products/bfx/bwa",
        VersionSpec::new(evil_digest, HOSTILE_TAGS),
    );

    // dragnet runs in a scratch root; its output and cache go below it.
    let root = world.path("root");
    std::fs::create_dir_all(&root).unwrap();
    let before = listing(&root);
    let trivy = world.recording_trivy();
    let output = run(world
        .scan_via(
            "root/out",
            &world.sandbox.api_url(),
            &world.sandbox.registry_host(),
            &trivy,
            &["--pattern", "**"],
        )
        .current_dir(&root)
        .env("DRAGNET_CACHE_DIR", root.join("cache")))
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);

    // No panic; a partial failure; the healthy images are still scanned.
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report = read_report(&world.path("root/out"));
    let samtools = world
        .sandbox
        .digest_of("products/bfx/samtools", "1.17")
        .unwrap();
    assert_eq!(
        report.image(&samtools).unwrap().status,
        ImageStatus::Scanned
    );

    // Every hostile version is a failure with a reason, none reached Trivy.
    for name in hostile_names() {
        let failure = report
            .failures
            .iter()
            .find(|f| {
                matches!(f, dragnet::report::Failure::Resolve { package, .. } if *package == name)
            })
            .unwrap_or_else(|| panic!("no failure for {name:?}: {:#?}", report.failures));
        assert!(!failure.cause().is_empty());
    }
    let evil = report.failures.iter().find(|f| {
        matches!(f, dragnet::report::Failure::Resolve { version_digest, .. }
                 if version_digest == evil_digest)
    });
    assert!(
        evil.is_some_and(|f| f.cause().contains("not a valid digest")),
        "{:#?}",
        report.failures
    );
    for call in world.trivy_calls() {
        for needle in ["..", "%2e", "$(", "`", ";", "-rf", "\u{1b}", "<script"] {
            assert!(
                !call.contains(needle),
                "a hostile name reached trivy: {call}"
            );
        }
    }

    // Nothing was written outside the output and cache folders, nothing ran through a shell.
    let after = listing(&root);
    let new: Vec<&String> = after.difference(&before).collect();
    let outside: Vec<&&String> = new
        .iter()
        .filter(|p| !p.starts_with("out/") && !p.starts_with("cache/"))
        .collect();
    assert!(
        outside.is_empty(),
        "written outside the output dir: {outside:?}"
    );
    assert!(!Path::new("/tmp/dragnet-escape").exists());
    for dir in [
        root.clone(),
        world.dir.path().to_path_buf(),
        PathBuf::from("."),
    ] {
        assert!(
            !dir.join("dragnet-pwned").exists(),
            "a shell ran in {dir:?}"
        );
    }
    let sarif_names: Vec<String> = files_under(&world.path("root/out/sarif"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        sarif_names
            .iter()
            .all(|n| n.starts_with("dragnet-") && n.ends_with(".sarif"))
    );

    // The summary shows the names escaped: no raw control characters, HTML or pipes.
    let summary = std::fs::read_to_string(world.path("root/out/summary.md")).unwrap();
    assert!(
        !summary.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached summary.md"
    );
    assert!(!summary.contains("<script>"), "{summary}");
    assert!(!summary.contains("a|b"), "a raw pipe breaks the table");
    assert!(
        !summary.contains('\u{202e}'),
        "a bidi override reached summary.md"
    );
    for file in files_under(&world.path("root/out/sarif")) {
        assert_valid_sarif(&file);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_or_enormous_trivy_report_fails_only_that_image() {
    let world = World::start(RegistryModeChoice::Open).await;
    let samtools = world
        .sandbox
        .digest_of("products/bfx/samtools", "1.17")
        .unwrap();
    let pyflow = world
        .sandbox
        .digest_of("products/bfx/pyflow", "2.2")
        .unwrap();
    let trivy = world.misbehaving_trivy(
        "lying-trivy",
        &[
            (&samtools, Misbehaviour::Truncated),
            (&pyflow, Misbehaviour::Huge(4 * 1024 * 1024)),
        ],
    );
    let output = run(&mut world.scan_via(
        "out",
        &world.sandbox.api_url(),
        &world.sandbox.registry_host(),
        &trivy,
        &["--trivy-output-limit", "1048576"],
    ))
    .await;
    assert_eq!(output.status.code(), Some(3));
    let report = read_report(&world.path("out"));

    let cause_of = |digest: &str| {
        let image = report.image(digest).unwrap();
        assert_eq!(image.status, ImageStatus::Failed);
        image.cause.clone().unwrap()
    };
    let truncated = cause_of(&samtools);
    assert!(truncated.contains("unusable"), "{truncated}");
    let huge = cause_of(&pyflow);
    assert!(huge.contains("more than 1048576 bytes"), "{huge}");

    // The other version of each package was still scanned.
    let samtools_new = world
        .sandbox
        .digest_of("products/bfx/samtools", "1.18")
        .unwrap();
    assert_eq!(
        report.image(&samtools_new).unwrap().status,
        ImageStatus::Scanned
    );
}

/// `dragnet ARGS` with no sandbox: for arguments refused before any request.
async fn dragnet_alone(args: &[&str]) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dragnet"));
    command
        .args(args)
        .env_remove("GITHUB_TOKEN")
        .env_remove("RUST_LOG")
        .env("GITHUB_API_URL", "http://127.0.0.1:9")
        .kill_on_drop(true);
    let output = command.output().await.unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn invalid_globs_durations_and_severities_are_usage_errors_naming_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--pattern", "products/[bfx"], "products/[bfx"),
        (&["--pattern", "{a,b"], "{a,b"),
        (&["--scan-timeout", "soon"], "soon"),
        (&["--scan-timeout", "0s"], "0s"),
        (&["--scan-timeout", "-5m"], "-5"),
        (&["--severity", "CRITICAL,EXTREME"], "EXTREME"),
        (&["--fail-on", "sometimes"], "sometimes"),
        (&["--platform", "linux/../x"], "linux/../x"),
        (&["--concurrency", "0"], "--concurrency"),
        (&["--concurrency", "-1"], "-1"),
    ];
    for (extra, named) in cases {
        let mut args = vec!["scan", "--owner", "acme", "--output-dir", out];
        args.extend_from_slice(extra);
        let (code, stderr) = dragnet_alone(&args).await;
        assert_eq!(code, Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(named), "{extra:?} is not named: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(!Path::new(out).exists(), "a usage error writes nothing");
}

/// A GitHub API that answers `body` for the owner's package list.
async fn api_answering(list: serde_json::Value) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/orgs/acme/packages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list))
        .mount(&server)
        .await;
    server
}

/// `dragnet discover` against `server`.
async fn discover(server: &MockServer) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dragnet"));
    command
        .args(["discover", "--owner", "acme", "--owner-type", "org"])
        .args(["--pattern", "products/bfx/*", "--format", "json"])
        .env("GITHUB_API_URL", server.uri())
        .env("GITHUB_TOKEN", "ghp_not_a_real_token_0000000000000000000")
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    let output = command.output().await.unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn malformed_api_answers_are_errors_not_panics() {
    // Missing fields and wrong types in the package list: a clear error, exit 1.
    for list in [
        serde_json::json!([{ "nam": "products/bfx/x" }]),
        serde_json::json!([{ "name": 42 }]),
        serde_json::json!({ "message": "not a list" }),
        serde_json::json!("a string"),
    ] {
        let server = api_answering(list.clone()).await;
        let (code, stderr) = discover(&server).await;
        assert_eq!(code, Some(1), "{list}: {stderr}");
        assert!(
            stderr.contains("unexpected answer from GitHub"),
            "{list}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }

    // A huge list (200,000 packages, none matching) is read and filtered, not choked on.
    let huge: Vec<serde_json::Value> = (0..200_000)
        .map(|i| serde_json::json!({ "name": format!("other/p{i}") }))
        .collect();
    let server = api_answering(serde_json::Value::Array(huge)).await;
    let (code, stderr) = discover(&server).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("found 200000 container packages"),
        "{stderr}"
    );

    // A version list with wrong types fails that package only, with its name.
    let server = api_answering(serde_json::json!([{ "name": "products/bfx/x" }])).await;
    Mock::given(method("GET"))
        .and(path(
            "/orgs/acme/packages/container/products%2Fbfx%2Fx/versions",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!([{ "id": "seven", "name": ["sha256:0"] }])),
        )
        .mount(&server)
        .await;
    let (code, stderr) = discover(&server).await;
    assert!(matches!(code, Some(1 | 3)), "{stderr}");
    assert!(stderr.contains("products/bfx/x"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
