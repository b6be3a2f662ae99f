//! Rate limits and faults as GitHub answers them, against `dragnet discover`: `retry-after`,
//! a spent budget with its reset, secondary-limit 403s with and without a hint, 429, 502, and a
//! budget too short to finish. Every retry is logged with its reason.
//!
//! Backoff starts at 10 ms here (`DRAGNET_RETRY_DELAY`); the only real waits are the one second
//! a `retry-after: 1` asks for and the one second past a reset that has just passed.

use std::time::{Duration, Instant};

use dragnet_sandbox::github::Fault;
use dragnet_sandbox::sandbox::RegistryModeChoice;

use crate::support::*;

/// `dragnet discover` of one package, with a short backoff.
fn discover(world: &World, extra: &[&str]) -> tokio::process::Command {
    let owner = world.sandbox.owner().to_string();
    let mut args = vec![
        "discover",
        "--owner",
        &owner,
        "--owner-type",
        "org",
        "--pattern",
        "products/bfx/bwa",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let mut command = world.dragnet(&args);
    command.env("DRAGNET_RETRY_DELAY", "10ms");
    command
}

fn list_path(world: &World) -> String {
    format!("/orgs/{}/packages", world.sandbox.owner())
}

fn versions_path(world: &World) -> String {
    format!(
        "{}/container/products%2Fbfx%2Fbwa/versions",
        list_path(world)
    )
}

/// The statuses answered for requests to `path`, in order.
fn statuses(world: &World, path: &str) -> Vec<u16> {
    world
        .sandbox
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| r.status)
        .collect()
}

/// Runs discover and checks it found bwa's one version after the faults.
async fn discovers_bwa(world: &World, extra: &[&str]) -> String {
    let output = run(&mut discover(world, extra)).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["package"], "products/bfx/bwa");
    stderr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secondary_limit_with_retry_after_waits_as_asked() {
    let world = World::start(RegistryModeChoice::Open).await;
    let path = list_path(&world);
    world
        .sandbox
        .emulator
        .fail_next(&path, 1, Fault::secondary_rate_limit(1));

    let started = Instant::now();
    let stderr = discovers_bwa(&world, &[]).await;

    assert!(
        stderr.contains("403 Forbidden with retry-after 1s; retrying in 1."),
        "{stderr}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(statuses(&world, &path), [403, 200]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spent_budget_waits_for_its_reset() {
    let world = World::start(RegistryModeChoice::Open).await;
    let path = versions_path(&world);
    // The reset is now: one second past it, the budget is back.
    world
        .sandbox
        .emulator
        .fail_next(&path, 1, Fault::primary_rate_limit(0));

    let stderr = discovers_bwa(&world, &[]).await;

    assert!(
        stderr.contains("403 Forbidden: rate limit spent until"),
        "{stderr}"
    );
    assert_eq!(statuses(&world, &path), [403, 200]);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_requests_and_bad_gateways_are_retried_with_their_reasons() {
    let world = World::start(RegistryModeChoice::Open).await;
    let list = list_path(&world);
    let versions = versions_path(&world);
    let emulator = &world.sandbox.emulator;
    emulator.fail_next(&list, 1, Fault::too_many_requests(0));
    emulator.fail_next(&versions, 2, Fault::status(502));

    let stderr = discovers_bwa(&world, &[]).await;

    assert!(
        stderr.contains("429 Too Many Requests with retry-after 0s; retrying"),
        "{stderr}"
    );
    assert_eq!(
        stderr
            .matches("the server answered 502 Bad Gateway; retrying")
            .count(),
        2,
        "{stderr}"
    );
    assert_eq!(statuses(&world, &list), [429, 200]);
    assert_eq!(statuses(&world, &versions), [502, 502, 200]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_keeps_failing_is_given_up_on_after_bounded_tries() {
    let world = World::start(RegistryModeChoice::Open).await;
    let path = versions_path(&world);
    world
        .sandbox
        .emulator
        .fail_next(&path, 50, Fault::status(502));

    let output = run(&mut discover(&world, &[])).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "the package failed: {stderr}"
    );
    assert!(stderr.contains("(gave up after 5 tries)"), "{stderr}");
    assert_eq!(statuses(&world, &path).len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secondary_limit_without_retry_after_is_recognised_by_its_message() {
    let world = World::start(RegistryModeChoice::Open).await;
    let path = list_path(&world);
    let mut fault = Fault::secondary_rate_limit(1);
    fault.headers.clear();
    world.sandbox.emulator.fail_next(&path, 1, fault);

    // GitHub asks for at least a minute here; a run that may wait only 30 s stops at once.
    let started = Instant::now();
    let output = run(&mut discover(&world, &["--max-retry-wait", "30s"])).await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "rate limited for 60 more seconds (403 Forbidden: secondary rate limit without \
             retry-after)"
        ),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it did not wait"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_too_short_to_finish_stops_before_listing_versions() {
    let world = World::start(RegistryModeChoice::Open).await;
    let token = world.sandbox.token().to_string();
    world.sandbox.emulator.set_rate_limit_remaining(&token, 3);
    let owner = world.sandbox.owner().to_string();

    let output = run(world
        .dragnet(&[
            "discover",
            "--owner",
            &owner,
            "--owner-type",
            "org",
            "--pattern",
            PATTERN,
        ])
        .env("DRAGNET_RETRY_DELAY", "10ms"))
    .await;

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // The listing cost one call; seven packages need seven more, the window resets in an hour.
    assert!(
        stderr.contains(
            "reading 7 packages needs about 7 GitHub API calls; the token has 2 of 5000 left \
             until the budget resets at"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("which is longer than --max-retry-wait (15 min)"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: rerun after the reset"), "{stderr}");
    let versions_listed = world
        .sandbox
        .emulator
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/versions"));
    assert!(!versions_listed, "nothing was spent past the check");
}
