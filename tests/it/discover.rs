//! `dragnet discover` against the emulator: globs, encoding, output, and tokens.

use std::collections::BTreeSet;

use dragnet_sandbox::sandbox::RegistryModeChoice;

use crate::support::*;

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
    assert!(
        stderr.contains("--package"),
        "the hint names the way out: {stderr}"
    );
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
