//! The token never leaks: after a token-mode scan with `--upload` at `RUST_LOG=trace`, in which
//! the GitHub token is also the registry password, it appears in no output stream, no file of
//! the output, cache or step-summary, and no Trivy command line. In GitHub Actions dragnet asks
//! the runner to mask it before printing anything else.

use std::path::Path;

use dragnet_sandbox::sandbox::{COMMIT_SHA, PIPELINES_REPOSITORY, RegistryModeChoice};

use crate::support::*;

/// The files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|file| {
            let bytes = std::fs::read(file).unwrap_or_default();
            bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        })
        .map(|file| file.display().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_nowhere_after_a_traced_upload_run() {
    let world = World::start(RegistryModeChoice::Token).await;
    let token = world.sandbox.token().to_string();
    let (_, registry_password) = world.sandbox.registry_credentials().unwrap();
    assert_eq!(
        registry_password, token,
        "the token is also the registry password"
    );

    let output = run(world
        .scan("out", &["--upload", "--poll-interval", "50ms", "-vv"])
        .env("RUST_LOG", "trace")
        .env("GITHUB_REPOSITORY", PIPELINES_REPOSITORY)
        .env("GITHUB_SHA", COMMIT_SHA)
        .env("GITHUB_REF", "refs/heads/main")
        .env("GITHUB_STEP_SUMMARY", world.path("step-summary.md"))
        .env("GITHUB_OUTPUT", world.path("github-output.txt")))
    .await;
    assert_eq!(output.status.code(), Some(3), "the broken image only");
    assert!(
        !world.sandbox.emulator.uploads().is_empty(),
        "the upload ran"
    );

    // The run was traced (the log is long and names requests), and no line holds the token.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.lines().count() > 100,
        "RUST_LOG=trace was not in effect"
    );
    assert!(stderr.to_lowercase().contains("trace"), "no trace lines");
    let leaks: Vec<&str> = stderr.lines().filter(|l| l.contains(&token)).collect();
    assert!(leaks.is_empty(), "the token in stderr: {leaks:#?}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(&token));

    // No file: outputs (results, summary, SARIF, receipts), caches, the step summary.
    for dir in [world.path("out"), world.path("cache")] {
        assert!(dir.exists(), "{} was not written", dir.display());
        assert_eq!(files_containing(&dir, &token), Vec::<String>::new());
    }
    for file in ["step-summary.md", "github-output.txt"] {
        let text = std::fs::read_to_string(world.path(file)).unwrap_or_default();
        assert!(!text.contains(&token), "the token in {file}");
    }

    // No Trivy command line (the wrapper logged every argv).
    let calls = world.trivy_calls();
    assert!(calls.len() > 3, "trivy ran: {calls:?}");
    for call in calls {
        assert!(!call.contains(&token), "the token in trivy's argv: {call}");
    }

    // Nor any error message GitHub's emulator recorded the token in: it records only whether
    // an Authorization header came, and the requests did carry one.
    let requests = world.sandbox.emulator.requests();
    assert!(requests.iter().any(|r| r.had_authorization));
}

#[tokio::test]
async fn in_actions_the_token_and_password_are_masked_before_anything_else() {
    let token = "ghp_MaskMe0123456789abcdefghijklmnopqrstu";
    let password = "registry-password-0123456789";
    let run_with = |actions: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dragnet"));
        command
            // An invalid glob ends the run before any request: masking comes before that.
            .args(["scan", "--owner", "acme", "--pattern", "products/[bfx"])
            .env("GITHUB_ACTIONS", actions)
            .env("GITHUB_TOKEN", token)
            .env("DRAGNET_REGISTRY_PASSWORD", password)
            .env("GITHUB_API_URL", "http://127.0.0.1:9")
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        command
    };

    let output = run_with("true").output().await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        format!("::add-mask::{token}\n::add-mask::{password}\n"),
        "exactly one mask line per secret, first"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains(token) && !stderr.contains(password),
        "{stderr}"
    );

    // Outside Actions nothing is printed.
    let output = run_with("false").output().await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}
