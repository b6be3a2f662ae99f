//! SIGINT and SIGTERM in the middle of `dragnet scan`: the running Trivy children are stopped
//! (with their process groups), the images scanned before the signal are written with exactly
//! their findings, the others are recorded as failed "interrupted", nothing is uploaded, no
//! half-written or temporary file is left, and the exit code is 130 (SIGINT) or 143 (SIGTERM).

use std::time::Duration;

use dragnet::report::ImageStatus;
use dragnet_sandbox::sandbox::{COMMIT_SHA, PIPELINES_REPOSITORY, RegistryModeChoice};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

/// A running dragnet whose stderr is read line by line.
struct Running {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
    seen: Vec<String>,
}

impl Running {
    fn start(mut command: tokio::process::Command) -> Running {
        let mut child = command
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("starting dragnet");
        let stderr = child.stderr.take().unwrap();
        Running {
            child,
            lines: BufReader::new(stderr).lines(),
            seen: Vec::new(),
        }
    }

    /// Reads stderr until `count` lines satisfy `wanted` (two minutes at most).
    async fn wait_for(&mut self, count: usize, wanted: impl Fn(&str) -> bool) {
        let reading = async {
            while self.seen.iter().filter(|l| wanted(l)).count() < count {
                match self.lines.next_line().await.unwrap() {
                    Some(line) => self.seen.push(line),
                    None => panic!("dragnet ended early:\n{}", self.seen.join("\n")),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(120), reading)
            .await
            .unwrap_or_else(|_| panic!("waited in vain:\n{}", self.seen.join("\n")));
    }

    /// Sends `signal` to dragnet and waits (a minute at most) for its exit code.
    async fn signal_and_wait(mut self, signal: i32) -> (Option<i32>, String) {
        let pid = self.child.id().unwrap() as i32;
        // SAFETY: kill has no memory-safety preconditions; `pid` is our unreaped child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let finishing = async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.seen.push(line);
            }
            self.child.wait().await.unwrap()
        };
        let status = tokio::time::timeout(Duration::from_secs(60), finishing)
            .await
            .expect("dragnet did not stop within a minute of the signal");
        let stderr = self.seen.join("\n");
        eprintln!("--- dragnet stderr ---\n{stderr}");
        (status.code(), stderr)
    }
}

/// The files in `dir` (recursively) that are not dragnet's named outputs: temporaries.
fn stray_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            let known = [
                "results.json",
                "summary.md",
                "report.html",
                "uploads.json",
                "scan-run.json",
            ];
            !(known.contains(&name.as_ref())
                || (name.starts_with("dragnet-") && name.ends_with(".sarif")))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_mid_scan_stops_trivy_and_writes_what_finished() {
    let world = World::start(RegistryModeChoice::Open).await;
    let hung: Vec<String> = [
        ("products/bfx/samtools", "1.17"),
        ("products/bfx/bwa", "0.7.17"),
    ]
    .iter()
    .map(|(package, tag)| world.sandbox.digest_of(package, tag).unwrap())
    .collect();
    let faults: Vec<(&str, Misbehaviour)> = hung
        .iter()
        .map(|d| (d.as_str(), Misbehaviour::Hang))
        .collect();
    let trivy = world.misbehaving_trivy("hanging-trivy", &faults);
    let mut command = world.scan_via(
        "out",
        &world.sandbox.api_url(),
        &world.sandbox.registry_host(),
        &trivy,
        &["--concurrency", "16", "--upload"],
    );
    command
        .env("GITHUB_REPOSITORY", PIPELINES_REPOSITORY)
        .env("GITHUB_SHA", COMMIT_SHA)
        .env("GITHUB_REF", "refs/heads/main");

    // Wait until every image but the hung ones has a result, then press Ctrl-C.
    let mut running = Running::start(command);
    let planned = 9;
    running
        .wait_for(planned - hung.len(), |line| line.contains(" scanned "))
        .await;
    let (code, stderr) = running.signal_and_wait(libc::SIGINT).await;
    assert_eq!(code, Some(130), "SIGINT exits 130");
    assert!(stderr.contains("received SIGINT"), "{stderr}");

    // The images scanned before the signal are reported with exactly their findings.
    let out = world.path("out");
    let report = read_report(&out);
    assert_eq!(report.images.len(), planned);
    for image in &report.images {
        if hung.contains(&image.digest) {
            assert_eq!(image.status, ImageStatus::Failed);
            let cause = image.cause.clone().unwrap_or_default();
            assert!(cause.starts_with("interrupted"), "{cause}");
            assert!(cause.contains("SIGINT"), "{cause}");
        }
    }
    let scanned: Vec<_> = report
        .images
        .iter()
        .filter(|i| i.status == ImageStatus::Scanned)
        .collect();
    assert_eq!(
        scanned.len(),
        planned - hung.len() - 1,
        "all but the hung and broken"
    );
    let mut only_scanned = report.clone();
    only_scanned
        .images
        .retain(|i| i.status == ImageStatus::Scanned);
    let expected: std::collections::BTreeSet<Row> = expected_rows(&["CRITICAL", "HIGH"])
        .into_iter()
        .filter(|row| {
            scanned.iter().any(|i| {
                i.refs
                    .iter()
                    .any(|r| r.package == row.0 && r.tags.contains(&row.1))
            })
        })
        .collect();
    assert_eq!(reported_rows(&only_scanned), expected);

    // The summary says so; the SARIF is whole; nothing was uploaded; no temporaries remain.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("interrupted"), "{summary}");
    for file in files_under(&out.join("sarif")) {
        assert_valid_sarif(&file);
    }
    assert!(
        world.sandbox.emulator.uploads().is_empty(),
        "nothing uploaded"
    );
    assert!(!out.join("uploads.json").exists());
    assert_eq!(stray_files(&out), Vec::<std::path::PathBuf>::new());

    // The hung Trivy children were killed with their process groups.
    assert_eq!(world.surviving_hung_trivies(), Vec::<i32>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_the_db_download_writes_nothing_and_exits_143() {
    let world = World::start(RegistryModeChoice::Open).await;
    let trivy = world.misbehaving_trivy(
        "stuck-db-trivy",
        &[("download-db-only", Misbehaviour::Hang)],
    );
    let mut running = Running::start(world.scan_via(
        "out",
        &world.sandbox.api_url(),
        &world.sandbox.registry_host(),
        &trivy,
        &[],
    ));
    running
        .wait_for(1, |line| line.contains("downloading the vulnerability DB"))
        .await;
    // The hung child writes its pid first: wait for it, so the signal lands while it runs.
    let pids = world.path("hung-trivy.pids");
    tokio::time::timeout(Duration::from_secs(60), async {
        while std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the DB download never started");

    let (code, stderr) = running.signal_and_wait(libc::SIGTERM).await;
    assert_eq!(code, Some(143), "SIGTERM exits 143");
    assert!(
        stderr.contains("interrupted by SIGTERM before any image was scanned"),
        "{stderr}"
    );
    assert!(
        files_under(&world.path("out")).is_empty(),
        "nothing written"
    );
    assert_eq!(world.surviving_hung_trivies(), Vec::<i32>::new());
}
