//! `dragnet discover` against the emulator: globs, encoding, output, tokens as people have
//! them, owners, version filters, multi-platform pushes, ETags, and an organization of 2,000
//! packages.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::time::Duration;

use dragnet_sandbox::github::{Emulator, Fault, OwnerKind, PackageSpec, TokenKind, VersionSpec};
use dragnet_sandbox::sandbox::RegistryModeChoice;
use dragnet_sandbox::scale::{self, OrgShape};

use crate::support::*;

/// `dragnet discover --owner OWNER --format json EXTRA...`.
fn discover(world: &World, extra: &[&str]) -> tokio::process::Command {
    let owner = world.sandbox.owner().to_string();
    let registry = world.sandbox.registry_host();
    let mut args = vec![
        "discover",
        "--owner",
        &owner,
        "--registry",
        &registry,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    world.dragnet(&args)
}

/// The JSON rows a `--format json` run printed.
fn rows(output: &std::process::Output) -> Vec<serde_json::Value> {
    serde_json::from_slice(&output.stdout).expect("discover printed JSON rows")
}

/// (package, tags joined by commas) of each row, sorted.
fn tagged(rows: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let tags: Vec<&str> = r["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            (r["package"].as_str().unwrap().to_string(), tags.join(","))
        })
        .collect();
    out.sort();
    out
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_the_matching_tagged_versions_as_json() {
    let world = World::start(RegistryModeChoice::Open).await;
    let owner = world.sandbox.owner().to_string();
    let registry = world.sandbox.registry_host();
    let output = run(&mut world.dragnet(&[
        "discover",
        "--owner",
        &owner,
        "--pattern",
        PATTERN,
        "--registry",
        &registry,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(output.status.code(), Some(0));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();

    let listed: BTreeSet<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let tags: Vec<&str> = r["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            (
                r["package"].as_str().unwrap().into(),
                r["digest"].as_str().unwrap().into(),
                tags.join(","),
            )
        })
        .collect();
    let pushed: BTreeSet<(String, String, String)> = world
        .sandbox
        .pushed()
        .iter()
        .filter(|v| matches_pattern(&v.package) && !v.tags.is_empty())
        .map(|v| (v.package.clone(), v.digest.clone(), v.tags.join(",")))
        .collect();
    assert_eq!(listed, pushed);
    assert!(
        !listed
            .iter()
            .any(|(p, _, _)| p == "products/bfx/sub/deeper")
    );

    let bwa = rows
        .iter()
        .find(|r| r["package"] == "products/bfx/bwa")
        .unwrap();
    let digest = bwa["digest"].as_str().unwrap();
    assert_eq!(
        bwa["repository"], "bfx-org/bwa",
        "the linked repository is recorded"
    );
    assert_eq!(
        bwa["image"],
        format!(
            "{registry}/{}/products/bfx/bwa@{digest}",
            owner.to_lowercase()
        )
    );

    // The slash-named package went out encoded exactly once.
    let paths: Vec<String> = world
        .sandbox
        .emulator
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.contains("/packages/container/products%2Fbfx%2Fbwa/versions"))
    );
    assert!(
        !paths.iter().any(|p| p.contains("%25")),
        "double encoding: {paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn untagged_versions_are_kept_only_when_asked() {
    let world = World::start(RegistryModeChoice::Open).await;
    let owner = world.sandbox.owner().to_string();
    let args = [
        "discover",
        "--owner",
        &owner,
        "--pattern",
        "products/bfx/samtools",
        "--format",
        "json",
    ];
    let tagged: Vec<serde_json::Value> =
        serde_json::from_slice(&run(&mut world.dragnet(&args)).await.stdout).unwrap();
    let mut with_untagged = args.to_vec();
    with_untagged.push("--include-untagged");
    let all: Vec<serde_json::Value> =
        serde_json::from_slice(&run(&mut world.dragnet(&with_untagged)).await.stdout).unwrap();

    assert!(
        tagged
            .iter()
            .all(|r| !r["tags"].as_array().unwrap().is_empty())
    );
    let untagged: Vec<_> = all
        .iter()
        .filter(|r| r["tags"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(
        untagged.len(),
        1,
        "the fixture has one untagged samtools version"
    );
    assert_eq!(all.len(), tagged.len() + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_actions_token_is_told_how_to_name_packages() {
    let world = World::start(RegistryModeChoice::Open).await;
    let owner = world.sandbox.owner().to_string();
    let output = run(world
        .dragnet(&["discover", "--owner", &owner, "--owner-type", "org"])
        .env("GITHUB_TOKEN", world.sandbox.actions_token()))
    .await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Invalid argument"), "{stderr}");
    for way_out in [
        "--package NAME",
        "--packages-file",
        "Manage Actions access",
        "read:packages",
    ] {
        assert!(
            stderr.contains(way_out),
            "the hint names {way_out}: {stderr}"
        );
    }
    assert!(!stderr.contains(world.sandbox.actions_token()));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_usage_error_naming_it() {
    let world = World::start(RegistryModeChoice::Open).await;
    let owner = world.sandbox.owner().to_string();
    let output =
        run(&mut world.dragnet(&["discover", "--owner", &owner, "--pattern", "products/[bfx"]))
            .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid --pattern `products/[bfx`"),
        "{stderr}"
    );

    let output =
        run(&mut world.dragnet(&["scan", "--owner", &owner, "--scan-timeout", "soon"])).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--scan-timeout"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_actions_token_reads_packages_named_on_the_command_line_or_in_a_file() {
    let world = World::start(RegistryModeChoice::Open).await;
    let file = world.path("packages.txt");
    std::fs::write(&file, "# the aligners\nproducts/bfx/bwa  # public\n\n").unwrap();
    let file = file.display().to_string();
    let output = run(discover(
        &world,
        &[
            "--package",
            "products/bfx/samtools",
            "--packages-file",
            &file,
        ],
    )
    .env("GITHUB_TOKEN", world.sandbox.actions_token()))
    .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let rows = rows(&output);
    assert_eq!(
        tagged(&rows),
        [
            ("products/bfx/bwa".into(), "0.7.17,latest".into()),
            ("products/bfx/samtools".into(), "1.17".into()),
            ("products/bfx/samtools".into(), "1.18,latest".into()),
        ]
    );
    // The linked repository comes from reading the package by name.
    assert!(rows.iter().all(|r| r["repository"].as_str().is_some()));
    let listed = world
        .sandbox
        .emulator
        .requests()
        .into_iter()
        .any(|r| r.path == format!("/orgs/{}/packages", world.sandbox.owner()));
    assert!(!listed, "named packages are read by name, never listed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_the_actions_token_may_not_read_names_the_missing_access() {
    // Token mode: the registry refuses the Actions token too, so nothing can stand in.
    let world = World::start(RegistryModeChoice::Token).await;
    let output = run(discover(&world, &["--package", "products/bfx/pyflow"])
        .env("GITHUB_TOKEN", world.sandbox.actions_token()))
    .await;

    assert_eq!(
        output.status.code(),
        Some(3),
        "a package failed, the run went on"
    );
    let stderr = stderr(&output);
    assert!(stderr.contains("404 Not Found"), "{stderr}");
    assert!(stderr.contains("\"Manage Actions access\""), "{stderr}");
    assert!(stderr.contains("read:packages"), "{stderr}");
    assert!(
        stderr.contains("the registry's tag list could not stand in"),
        "{stderr}"
    );
    assert!(!stderr.contains(world.sandbox.actions_token()));
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_the_api_refuses_come_from_the_registry_tag_list() {
    let world = World::start(RegistryModeChoice::Open).await;
    let owner = world.sandbox.owner().to_string();
    let versions = format!("/orgs/{owner}/packages/container/products%2Fbfx%2Fsamtools/versions");
    world
        .sandbox
        .emulator
        .fail_next(&versions, 1, Fault::status(403));

    let output = run(&mut discover(
        &world,
        &["--pattern", "products/bfx/samtools"],
    ))
    .await;

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("read 3 tags from the registry's tag list instead"),
        "{}",
        stderr(&output)
    );
    let listed: BTreeSet<(String, String)> = rows(&output)
        .iter()
        .map(|r| {
            let tags: Vec<&str> = r["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            (r["digest"].as_str().unwrap().to_string(), tags.join(","))
        })
        .collect();
    let pushed: BTreeSet<(String, String)> = world
        .sandbox
        .pushed()
        .iter()
        .filter(|v| v.package == "products/bfx/samtools" && !v.tags.is_empty())
        .map(|v| {
            let mut tags = v.tags.clone();
            tags.sort();
            (v.digest.clone(), tags.join(","))
        })
        .collect();
    assert_eq!(listed, pushed, "every tag, resolved to the digest pushed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_a_missing_scope_and_an_unknown_owner_are_named() {
    let world = World::start(RegistryModeChoice::Open).await;
    let owner = world.sandbox.owner().to_string();

    let output =
        run(discover(&world, &["--owner-type", "org"]).env("GITHUB_TOKEN", "ghp_wrong")).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("401 Unauthorized"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("the token is missing or invalid"),
        "{}",
        stderr(&output)
    );

    world
        .sandbox
        .emulator
        .fail_next(&format!("/orgs/{owner}/packages"), 1, Fault::status(403));
    let output = run(&mut discover(&world, &["--owner-type", "org"])).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the token lacks the read:packages scope"),
        "{}",
        stderr(&output)
    );

    let output =
        run(&mut world.dragnet(&["discover", "--owner", "nosuch", "--owner-type", "org"])).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no organization named `nosuch` is visible to this token"),
        "{}",
        stderr(&output)
    );
    let output = run(&mut world.dragnet(&["discover", "--owner", "nosuch"])).await;
    assert!(
        stderr(&output).contains("no GitHub account is named `nosuch`"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_owner_is_detected_or_taken_as_told() {
    let world = World::start(RegistryModeChoice::Open).await;
    let emulator = &world.sandbox.emulator;
    emulator.add_owner("alice", OwnerKind::User);
    emulator.add_package(
        "alice",
        PackageSpec::new("tools/x").repository("alice/tools"),
    );
    let digest = scale::digest(1, 1);
    emulator.add_version("alice", "tools/x", VersionSpec::new(&digest, &["2.0"]));

    for extra in [&[][..], &["--owner-type", "user"][..]] {
        let before = emulator.requests().len();
        let mut args = vec!["discover", "--owner", "alice", "--format", "json"];
        args.extend_from_slice(extra);
        let output = run(&mut world.dragnet(&args)).await;

        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let rows = rows(&output);
        assert_eq!(tagged(&rows), [("tools/x".into(), "2.0".into())]);
        assert_eq!(rows[0]["repository"], "alice/tools");
        let paths: Vec<String> = emulator.requests()[before..]
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert!(
            paths.contains(&"/users/alice/packages".to_string()),
            "{paths:?}"
        );
        assert_eq!(
            paths.contains(&"/users/alice".to_string()),
            extra.is_empty(),
            "asked GitHub only when not told: {paths:?}"
        );
    }
}

/// RFC 3339 for `days` days ago.
fn days_ago(days: f64) -> String {
    let at = time::OffsetDateTime::now_utc() - Duration::from_secs_f64(days * 86_400.0);
    at.replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// `products/bfx/many`, known to the API only: releases, pull-request builds, a nightly, an
/// untagged build and a cosign signature.
fn add_many_versions(emulator: &Emulator, owner: &str) {
    let name = "products/bfx/many";
    emulator.add_package(owner, PackageSpec::new(name));
    let version = |n: usize, tags: &[&str], days: f64| VersionSpec {
        updated_at: Some(days_ago(days)),
        created_at: Some(days_ago(days)),
        ..VersionSpec::new(&scale::digest(7, n), tags)
    };
    let signature = format!("sha256-{}.sig", &scale::digest(7, 4)["sha256:".len()..]);
    emulator.add_versions(
        owner,
        name,
        vec![
            version(0, &["1.0"], 20.0),
            version(1, &["1.1"], 15.0),
            version(2, &["1.2"], 10.0),
            version(3, &["1.3"], 5.0),
            version(4, &["1.4"], 1.0),
            version(5, &["pr-7"], 2.0),
            version(6, &["pr-8", "1.5-rc"], 1.0),
            version(7, &["nightly"], 0.5),
            version(8, &[], 1.0),
            version(9, &[&signature], 1.0),
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn version_filters_keep_what_was_asked_and_count_what_they_removed() {
    let world = World::start(RegistryModeChoice::Open).await;
    add_many_versions(&world.sandbox.emulator, world.sandbox.owner());
    let pattern = ["--pattern", "products/bfx/many"];

    // By default: every tagged version, and never the signature.
    let output = run(&mut discover(&world, &pattern)).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let tags: Vec<String> = tagged(&rows(&output)).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        tags,
        [
            "1.0",
            "1.1",
            "1.2",
            "1.3",
            "1.4",
            "nightly",
            "pr-7",
            "pr-8,1.5-rc"
        ]
    );
    assert!(
        stderr(&output).contains(
            "kept 8 of 10 versions in 1 packages (left out: signatures and \
                                  attestations 1, untagged 1)"
        ),
        "{}",
        stderr(&output)
    );

    let mut args = pattern.to_vec();
    args.extend([
        "--tags",
        r"^\d",
        "--exclude",
        "pr-*",
        "--exclude",
        "*-rc",
        "--updated-within",
        "12d",
        "--latest",
        "2",
    ]);
    let output = run(&mut discover(&world, &args)).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let tags: Vec<String> = tagged(&rows(&output)).into_iter().map(|(_, t)| t).collect();
    assert_eq!(tags, ["1.3", "1.4"]);
    assert!(
        stderr(&output).contains(
            "kept 2 of 10 versions in 1 packages (left out: signatures and attestations 1, \
             untagged 1, --exclude 2, --tags 1, --updated-within 2, --latest 1)"
        ),
        "{}",
        stderr(&output)
    );

    let output = run(&mut discover(&world, &["--tags", "(unclosed"])).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("invalid --tags `(unclosed`"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_over_an_unchanged_org_costs_no_rate_limit() {
    let world = World::start(RegistryModeChoice::Open).await;
    let emulator = &world.sandbox.emulator;
    let first = run(&mut discover(&world, &[])).await;
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let used_before = core_used(&world).await;

    let before = emulator.requests().len();
    let second = run(&mut discover(&world, &[])).await;
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(
        second.stdout, first.stdout,
        "the same inventory, from the cache"
    );

    let rerun = &emulator.requests()[before..];
    assert!(!rerun.is_empty());
    for request in rerun {
        assert!(
            request.path == "/rate_limit" || (request.conditional && request.status == 304),
            "every call of the rerun is a revalidation answered 304: {request:?}"
        );
    }
    assert_eq!(
        core_used(&world).await,
        used_before,
        "the rerun cost nothing"
    );

    // The cache never holds the token.
    let token = world.sandbox.token();
    let entries = files_under(&world.path("cache").join("github/etags"));
    assert!(!entries.is_empty());
    for entry in entries {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&entry).unwrap())
            .read_to_end(&mut text)
            .unwrap();
        assert!(!String::from_utf8_lossy(&text).contains(token));
    }
}

/// The core requests the sandbox's PAT has used in this window (`GET /rate_limit` is free).
async fn core_used(world: &World) -> u64 {
    let answer: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/rate_limit", world.sandbox.api_url()))
        .bearer_auth(world.sandbox.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["resources"]["core"]["used"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn untagged_platforms_of_a_multi_platform_image_are_not_orphans() {
    let world = World::start(RegistryModeChoice::Open).await;
    let owner = world.sandbox.owner().to_string();
    let registry = world.sandbox.registry_host();
    let plan_file = world.path("plan.json");
    let output = run(&mut world.dragnet(&[
        "plan",
        "--owner",
        &owner,
        "--pattern",
        "products/bfx/multiarch",
        "--pattern",
        "products/bfx/samtools",
        "--include-untagged",
        "--registry",
        &registry,
        "--output",
        &plan_file.display().to_string(),
    ]))
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    let plan = &file["plan"];
    assert_eq!(plan["selection"]["platform_children"], 2, "{plan:#}");

    // Each platform of the index is one target, reached through the index's tags only.
    let multiarch = world
        .sandbox
        .pushed()
        .iter()
        .find(|v| v.package == "products/bfx/multiarch")
        .unwrap();
    for platform in &multiarch.platforms {
        let target = plan["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["digest"] == platform.digest.as_str())
            .expect("each platform is a target");
        let refs = target["refs"].as_array().unwrap();
        assert_eq!(refs.len(), 1, "{refs:?}");
        assert_eq!(refs[0]["version_digest"], multiarch.digest.as_str());
        assert_eq!(refs[0]["tags"], serde_json::json!(["3.0", "latest"]));
    }

    // samtools's untagged build is a true orphan, and is scanned as one.
    let orphan = world
        .sandbox
        .pushed()
        .iter()
        .find(|v| v.package == "products/bfx/samtools" && v.tags.is_empty())
        .unwrap();
    let target = plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["digest"] == orphan.digest.as_str())
        .expect("the orphan is a target");
    assert_eq!(target["refs"][0]["tags"], serde_json::json!([]));
}

/// The fields of a `--format json` row the scale test looks at.
#[derive(serde::Deserialize)]
struct ScaleRow {
    package: String,
    repository: Option<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn discovers_an_org_of_2000_packages_with_the_fewest_calls_in_bounded_memory() {
    let emulator = Emulator::start().await.unwrap();
    let shape = OrgShape::LARGE;
    scale::populate(&emulator, "big-org", shape);
    let token = "ghp_scaletestscaletestscaletestscaletest";
    emulator.add_token(token, TokenKind::Pat);
    let dir = tempfile::tempdir().unwrap();

    let measure = |out: &str| scale::MeasuredCommand {
        program: env!("CARGO_BIN_EXE_dragnet").into(),
        args: ["discover", "--owner", "big-org", "--format", "json"]
            .map(String::from)
            .to_vec(),
        envs: vec![
            ("GITHUB_API_URL".into(), emulator.url()),
            ("GITHUB_TOKEN".into(), token.into()),
            (
                "DRAGNET_CACHE_DIR".into(),
                dir.path().join("cache").display().to_string(),
            ),
        ],
        stdout: std::fs::File::create(dir.path().join(out)).unwrap(),
        stderr: std::fs::File::create(dir.path().join(format!("{out}.log"))).unwrap(),
    };

    let first = measure("first.json");
    let measured = tokio::task::spawn_blocking(move || scale::run_measured(first))
        .await
        .unwrap()
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("first.json.log")).unwrap();
    assert_eq!(measured.code, Some(0), "{log}");

    let first = std::fs::File::open(dir.path().join("first.json")).unwrap();
    let rows: Vec<ScaleRow> = serde_json::from_reader(std::io::BufReader::new(first)).unwrap();
    assert_eq!(rows.len(), shape.total_versions());
    assert_eq!(rows[0].package, scale::package_name(0));
    assert!(
        rows.iter().all(|r| r.repository.is_some()),
        "every linked repository is recorded"
    );
    let requests = emulator.requests();
    let lists = requests
        .iter()
        .filter(|r| r.path == "/orgs/big-org/packages" || r.path.ends_with("/versions"))
        .count();
    assert_eq!(
        lists,
        shape.minimum_list_calls(),
        "pages of 100, nothing more"
    );
    assert!(
        requests
            .iter()
            .all(|r| r.query.is_empty() || r.query.contains("per_page=100")),
        "every list asks for pages of 100"
    );
    assert!(
        measured.max_rss < 64 * 1024 * 1024,
        "peak RSS {} MiB",
        measured.max_rss >> 20
    );
    assert!(
        measured.elapsed < Duration::from_secs(60),
        "took {:?}",
        measured.elapsed
    );

    // Again, unchanged: every list call is a free revalidation.
    let before = requests.len();
    let second = measure("second.json");
    let measured = tokio::task::spawn_blocking(move || scale::run_measured(second))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(measured.code, Some(0));
    let rerun = &emulator.requests()[before..];
    assert!(
        rerun
            .iter()
            .all(|r| r.path == "/rate_limit" || r.status == 304),
        "the rerun spent nothing"
    );
}
