//! `dragnet upload` against the emulator: GitHub's processing verdict reaches the user.

use dragnet_sandbox::sandbox::{COMMIT_SHA, PIPELINES_REPOSITORY, RegistryModeChoice};

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn reports_githubs_processing_errors_and_keeps_going() {
    let world = World::start(RegistryModeChoice::Open).await;
    let dir = world.path("sarif");
    std::fs::create_dir_all(&dir).unwrap();
    // A run whose result has no location: GitHub accepts the upload, then fails processing.
    let broken = serde_json::json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dragnet", "rules": []}},
            "automationDetails": {"id": "dragnet/x/"},
            "results": [{"ruleId": "CVE-1", "message": {"text": "m"}}]
        }]
    });
    let fine = serde_json::json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "dragnet", "rules": []}},
            "automationDetails": {"id": "dragnet/y/"},
            "results": []
        }]
    });
    std::fs::write(dir.join("a.sarif"), broken.to_string()).unwrap();
    std::fs::write(dir.join("b.sarif"), fine.to_string()).unwrap();

    let output = run(world
        .dragnet(&["upload", dir.to_str().unwrap(), "--poll-interval", "10ms"])
        .env("GITHUB_REPOSITORY", PIPELINES_REPOSITORY)
        .env("GITHUB_SHA", COMMIT_SHA)
        .env("GITHUB_REF", "refs/heads/main"))
    .await;
    assert_eq!(output.status.code(), Some(3), "one upload failed");
    let receipts: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0]["file"], "a.sarif");
    assert_eq!(receipts[0]["processing_status"], "failed");
    assert!(!receipts[0]["errors"].as_array().unwrap().is_empty());
    assert_eq!(receipts[1]["processing_status"], "complete");

    let uploads = world.sandbox.emulator.uploads();
    assert_eq!(uploads.len(), 2);
    assert!(
        uploads
            .iter()
            .all(|u| u.git_ref == "refs/heads/main" && u.commit_sha == COMMIT_SHA)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_target_is_a_usage_error_before_anything_is_sent() {
    let world = World::start(RegistryModeChoice::Open).await;
    let file = world.path("x.sarif");
    std::fs::write(&file, "{}").unwrap();
    let output = run(&mut world.dragnet(&["upload", file.to_str().unwrap(), "--sha", "abc"])).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--repository") && stderr.contains("GITHUB_REPOSITORY"),
        "{stderr}"
    );
    assert!(world.sandbox.emulator.uploads().is_empty());
}
