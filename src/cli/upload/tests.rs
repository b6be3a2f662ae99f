//! Tests of the upload step against the GitHub emulator with a clock that records instead of
//! sleeping: pacing under GitHub's hourly limit, honouring throttling, splitting after a 413.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dragnet_sandbox::github::{Emulator, Fault, TokenKind};
use serde_json::json;

use super::*;
use crate::http::{HttpClient, Pause, PauseFuture};
use crate::secret::Secret;

const REPOSITORY: &str = "acme/pipelines";
const SHA: &str = "5d1c0b4f9e8a7d6c5b4a39281706f5e4d3c2b1a0";

/// A clock that records every wait and returns at once.
#[derive(Default)]
struct RecordedPause(Mutex<Vec<Duration>>);

impl Pause for RecordedPause {
    fn pause(&self, duration: Duration) -> PauseFuture {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

struct Setup {
    emulator: Emulator,
    github: GitHubClient,
    pauses: Arc<RecordedPause>,
    dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let emulator = Emulator::start().await.unwrap();
    emulator.add_token("token", TokenKind::Pat);
    emulator.add_repository(REPOSITORY);
    emulator.set_pending_polls(0);
    let pauses = Arc::new(RecordedPause::default());
    let http = HttpClient::new(4).unwrap().with_pause(pauses.clone());
    let github = GitHubClient::new(&emulator.url(), Some(Secret::new("token")), http).unwrap();
    Setup {
        emulator,
        github,
        pauses,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// A SARIF file with one empty dragnet run per category.
fn write_sarif(setup: &Setup, name: &str, categories: &[String]) -> PathBuf {
    let runs: Vec<Value> = categories
        .iter()
        .map(|c| {
            json!({
                "tool": { "driver": { "name": "dragnet", "rules": [] } },
                "automationDetails": { "id": format!("{c}/") },
                "results": [],
            })
        })
        .collect();
    let path = setup.dir.path().join(name);
    std::fs::write(&path, pack::log_of(runs, &BTreeSet::new()).to_string()).unwrap();
    path
}

fn options(limits: Limits) -> UploadOptions {
    UploadOptions {
        route: Route::Current,
        dry_run: false,
        close_stale: true,
        uploads_per_hour: 1_000,
        poll_interval: Duration::from_millis(10),
        max_polls: 5,
        limits,
    }
}

/// The summary, or the failure's message.
fn done(outcome: Result<UploadSummary, Failure>) -> UploadSummary {
    match outcome {
        Ok(summary) => summary,
        Err(failure) => panic!("the upload failed: {:#}", failure.error),
    }
}

fn target() -> UploadTarget {
    UploadTarget::new(REPOSITORY, SHA, "refs/heads/main").unwrap()
}

#[tokio::test]
async fn spreads_uploads_beyond_the_burst_under_githubs_hourly_limit_and_honours_throttling() {
    let setup = setup().await;
    let categories: Vec<String> = (0..25).map(|i| format!("dragnet/p{i:02}")).collect();
    let file = write_sarif(&setup, "many.sarif", &categories);
    // One secondary rate limit on the way: the HTTP layer waits as told, then sends again.
    setup.emulator.fail_next(
        &format!("/repos/{REPOSITORY}/code-scanning/sarifs"),
        1,
        Fault::too_many_requests(7).only_method("POST"),
    );
    let one_per_file = Limits {
        max_runs_per_file: 1,
        ..Limits::default()
    };

    let summary = done(
        upload(
            &setup.github,
            Some(&target()),
            &[file],
            &options(one_per_file),
        )
        .await,
    );

    assert!(summary.succeeded(), "{:#?}", summary.uploads);
    assert_eq!(summary.uploads.len(), 25);
    assert_eq!(
        setup.emulator.uploads().len(),
        25,
        "nothing lost to the 429"
    );
    let pauses = setup.pauses.0.lock().unwrap().clone();
    let throttled: Vec<&Duration> = pauses.iter().filter(|d| d.as_secs() == 7).collect();
    assert_eq!(throttled.len(), 1, "{pauses:?}");

    // 20 at once, then one every 3600 s / 980 ≈ 3.67 s: never more than 1,000 in an hour.
    let pacer = UploadPacer::new(1_000);
    assert_eq!(pacer.burst(), 20);
    let paced: Vec<&Duration> = pauses
        .iter()
        .filter(|d| d.as_secs_f64() > 3.0 && d.as_secs_f64() <= pacer.interval().as_secs_f64())
        .collect();
    assert_eq!(paced.len(), 5, "{pauses:?}");
    assert!(
        (pacer.interval().as_secs_f64() - 3600.0 / 980.0).abs() < 0.01,
        "{:?}",
        pacer.interval()
    );
}

#[tokio::test]
async fn a_413_splits_the_file_and_sends_both_halves() {
    let setup = setup().await;
    let categories: Vec<String> = (0..4).map(|i| format!("dragnet/p{i}")).collect();
    let file = write_sarif(&setup, "four.sarif", &categories);
    setup.emulator.fail_next(
        &format!("/repos/{REPOSITORY}/code-scanning/sarifs"),
        1,
        Fault::status(413).only_method("POST"),
    );

    let summary = done(
        upload(
            &setup.github,
            Some(&target()),
            &[file],
            &options(Limits::default()),
        )
        .await,
    );

    assert!(summary.succeeded(), "{:#?}", summary.uploads);
    let sent: Vec<usize> = setup
        .emulator
        .uploads()
        .iter()
        .map(|u| u.sarif["runs"].as_array().unwrap().len())
        .collect();
    assert_eq!(sent, [2, 2], "refused once whole, then sent in halves");
}

#[tokio::test]
async fn a_dry_run_lists_analyses_but_sends_nothing() {
    let setup = setup().await;
    let file = write_sarif(&setup, "one.sarif", &["dragnet/app".to_string()]);
    let dry = UploadOptions {
        dry_run: true,
        ..options(Limits::default())
    };
    let summary = done(upload(&setup.github, Some(&target()), &[file], &dry).await);
    assert_eq!(summary.uploads.len(), 1);
    assert_eq!(summary.uploads[0].processing_status, "dry run");
    assert!(setup.emulator.uploads().is_empty());
    let listed = setup
        .emulator
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/code-scanning/analyses") && r.query.contains("tool_name"));
    assert!(listed, "the dry run still looks for stale categories");
}

#[tokio::test]
async fn a_400_is_explained_not_lost() {
    let setup = setup().await;
    let file = write_sarif(&setup, "one.sarif", &["dragnet/app".to_string()]);
    setup.emulator.fail_next(
        &format!("/repos/{REPOSITORY}/code-scanning/sarifs"),
        1,
        Fault::status(400).only_method("POST"),
    );
    let summary = done(
        upload(
            &setup.github,
            Some(&target()),
            &[file],
            &options(Limits::default()),
        )
        .await,
    );
    assert!(!summary.succeeded());
    let receipt = &summary.uploads[0];
    assert_eq!(receipt.processing_status, "not sent");
    assert_eq!(receipt.categories, ["dragnet/app"]);
    let error = receipt.errors.join("\n");
    assert!(
        error.contains("400") && error.contains("could not read the `sarif` field"),
        "{error}"
    );
    assert!(
        summary.markdown().contains("❌ not sent"),
        "{}",
        summary.markdown()
    );
}
