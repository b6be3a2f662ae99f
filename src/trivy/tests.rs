//! The runner against fake `trivy` programs (small shell scripts) for the faults a real Trivy
//! cannot be made to show on demand: a hang, a crash, garbage or endless output. And against
//! the installed Trivy for what it does without a DB or a registry.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::*;
use crate::secret::Secret;

/// A digest reference like the ones the plan hands to the scanner.
const IMAGE: &str = "127.0.0.1:5000/acme/app\
    @sha256:714e48b3175a853ed3d15d80b1a8c23fecd522414cdd9d7c476549fbbf5eddc6";

/// The smallest report Trivy 0.76 writes for an image with one finding.
const ONE_FINDING: &str = r#"{"SchemaVersion": 2, "ArtifactName": "img",
  "Metadata": {"OS": {"Family": "alpine", "Name": "3.19.1"}},
  "Results": [{"Target": "img (alpine 3.19.1)", "Class": "os-pkgs", "Type": "alpine",
    "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-0727", "PkgName": "libcrypto3",
      "InstalledVersion": "3.1.4-r2", "FixedVersion": "3.1.4-r5", "Severity": "HIGH"}]}]}"#;

/// Writes an executable `trivy` script with `body` into a fresh temp dir.
fn fake_trivy(body: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trivy");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, path)
}

fn trivy_at(program: &Path, cache: &Path) -> Trivy {
    Trivy::new(TrivyConfig {
        program: program.to_path_buf(),
        ..TrivyConfig::new(cache)
    })
}

/// Whether `pid` is gone or only a zombie waiting for its new parent to reap it.
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses: `123 (sleep) Z ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_hanging_trivy_is_killed_at_the_deadline_with_its_children() {
    let (dir, program) = fake_trivy("");
    let pid_file = dir.path().join("sleep.pid");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nsleep 600 &\necho $! > '{}'\nwait\n",
            pid_file.display()
        ),
    )
    .unwrap();
    let trivy = Trivy::new(TrivyConfig {
        program,
        timeout: Duration::from_secs(1),
        ..TrivyConfig::new(dir.path())
    });

    let started = Instant::now();
    let err = trivy.scan(IMAGE).await.unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, TrivyError::TimedOut { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(IMAGE) && message.contains("within 1s"),
        "{message}"
    );
    assert!(message.contains("killed"), "{message}");

    // The script's own child was in the killed process group. Dying takes the kernel a
    // moment after SIGKILL, so this polls for a bounded while instead of racing it.
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !is_dead(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(is_dead(pid), "sleep {pid} outlived the scan");
}

#[tokio::test]
async fn a_crashing_trivy_is_reported_with_its_signal_and_last_words() {
    let (dir, program) = fake_trivy(
        "echo 'panic: runtime error: invalid memory address or nil pointer dereference' >&2\n\
         kill -SEGV $$",
    );
    let err = trivy_at(&program, dir.path())
        .scan(IMAGE)
        .await
        .unwrap_err();

    assert!(matches!(err, TrivyError::Crashed { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(IMAGE), "{message}");
    assert!(message.contains("signal: 11"), "{message}");
    assert!(message.contains("nil pointer dereference"), "{message}");
}

#[tokio::test]
async fn a_failure_dragnet_does_not_recognise_keeps_the_exit_status_and_stderr() {
    let (dir, program) = fake_trivy(
        "printf '2026-01-01T00:00:00Z\\tINFO\\tstarting\\n' >&2\n\
         printf '2026-01-01T00:00:00Z\\tFATAL\\tFatal error\\tsomething unforeseen\\n' >&2\n\
         exit 3",
    );
    let err = trivy_at(&program, dir.path())
        .scan(IMAGE)
        .await
        .unwrap_err();

    assert!(matches!(err, TrivyError::ScanFailed { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(message.ends_with("something unforeseen"), "{message}");
}

#[tokio::test]
async fn garbage_on_stdout_is_refused_with_its_size() {
    let (dir, program) = fake_trivy("printf '<html>502 Bad Gateway</html>'");
    let err = trivy_at(&program, dir.path())
        .scan(IMAGE)
        .await
        .unwrap_err();

    assert!(matches!(err, TrivyError::ReportUnusable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(IMAGE), "{message}");
    assert!(message.contains("not JSON (28 bytes)"), "{message}");
    assert!(
        !message.contains("Bad Gateway"),
        "the output itself is not quoted: {message}"
    );
}

#[tokio::test]
async fn endless_output_is_cut_off_at_the_limit() {
    // `yes` never ends on its own: only the limit (and the kill) stops it.
    let (dir, program) = fake_trivy("yes '{\"SchemaVersion\": 2}'");
    let trivy = trivy_at(&program, dir.path()).with_output_limit(64 * 1024);

    let err = trivy.scan(IMAGE).await.unwrap_err();

    assert!(
        matches!(err, TrivyError::OutputTooLarge { limit: 65536, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("more than 65536 bytes"), "{err}");
}

#[tokio::test]
async fn credentials_reach_trivy_only_through_its_environment() {
    let (dir, program) = fake_trivy("");
    let argv_file = dir.path().join("argv");
    let env_file = dir.path().join("env");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > '{}'\nenv > '{}'\n\
             cat <<'EOF'\n{}\nEOF\n",
            argv_file.display(),
            env_file.display(),
            ONE_FINDING
        ),
    )
    .unwrap();
    let password = "s3cr3t-Pa55-for-the-registry";
    let config = TrivyConfig {
        program,
        credentials: Some(RegistryCredentials {
            username: "dragnet-bot".into(),
            password: Secret::new(password),
        }),
        ..TrivyConfig::new(dir.path())
    };
    let trivy = Trivy::new(config);

    let report = trivy.scan(IMAGE).await.unwrap();

    assert_eq!(report.os.as_deref(), Some("alpine 3.19.1"));
    assert_eq!(report.findings.len(), 1);
    let argv = std::fs::read_to_string(&argv_file).unwrap();
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(!argv.contains(password), "the password is in argv:\n{argv}");
    assert!(
        env.lines()
            .any(|l| l == format!("TRIVY_PASSWORD={password}")),
        "{env}"
    );
    assert!(
        env.lines().any(|l| l == "TRIVY_USERNAME=dragnet-bot"),
        "{env}"
    );
    let args: Vec<&str> = argv.lines().collect();
    assert_eq!(args[..2], ["image", "--format=json"]);
    assert_eq!(args[args.len() - 2..], ["--", IMAGE]);
    assert!(!format!("{trivy:?}").contains(password));
}

#[tokio::test]
async fn a_missing_program_is_named_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("no-such-trivy");
    let err = trivy_at(&program, dir.path())
        .scan(IMAGE)
        .await
        .unwrap_err();

    assert!(matches!(err, TrivyError::ProgramNotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("no-such-trivy") && message.contains("--trivy"),
        "{message}"
    );
}

#[tokio::test]
async fn refuses_image_refs_that_could_be_read_as_flags() {
    let (dir, program) = fake_trivy("echo ran > ran; exit 1");
    let trivy = trivy_at(&program, dir.path());

    for image in ["--config=/tmp/evil.yaml", "-q", "", "reg/app\n--quiet"] {
        let err = trivy.scan(image).await.unwrap_err();
        assert!(
            matches!(err, TrivyError::InvalidImageRef { .. }),
            "{image:?}: {err:?}"
        );
    }
    let err = trivy.scan("-q").await.unwrap_err();
    assert!(err.to_string().contains("starts with `-`"), "{err}");
    assert!(
        !dir.path().join("ran").exists(),
        "trivy must not be started"
    );
}

#[tokio::test]
async fn a_failed_db_download_names_the_repositories() {
    let (dir, program) = fake_trivy(
        "printf '2026-01-01T00:00:00Z\\tFATAL\\tFatal error\\tinit error: DB error: failed to \
         download vulnerability DB: MANIFEST_UNKNOWN: manifest unknown\\n' >&2\nexit 1",
    );
    let config = TrivyConfig {
        program,
        db_repositories: vec!["127.0.0.1:5000/missing/db".into(), "mirror.test/db".into()],
        ..TrivyConfig::new(dir.path())
    };
    let err = Trivy::new(config).download_db().await.unwrap_err();

    let message = err.to_string();
    assert!(
        matches!(err, TrivyError::DbDownloadFailed { .. }),
        "{err:?}"
    );
    assert!(
        message.contains("`127.0.0.1:5000/missing/db`, `mirror.test/db`"),
        "{message}"
    );
    assert!(message.contains("MANIFEST_UNKNOWN"), "{message}");
}

#[test]
fn reads_trivy_version_output_with_and_without_a_db() {
    let with_db = br#"{"Version":"0.76.0","VulnerabilityDB":{"Version":2,
        "NextUpdate":"2026-12-04T16:35:08.589335778Z","UpdatedAt":"2026-12-03T16:35:08.589335778Z",
        "DownloadedAt":"2026-12-03T16:35:08.589335778Z"}}"#;
    let version = parse_version(with_db).unwrap();
    assert_eq!(version.version, "0.76.0");
    let db = version.db.unwrap();
    assert_eq!(db.version, 2);
    assert_eq!(db.updated_at_rfc3339(), "2026-12-03T16:35:08.589335778Z");
    assert!(db.next_update > db.updated_at);

    assert_eq!(parse_version(br#"{"Version":"0.76.0"}"#).unwrap().db, None);
    let err = parse_version(b"Version: 0.76.0\n").unwrap_err();
    assert!(err.to_string().contains("(16 bytes)"), "{err}");
}

#[test]
fn only_the_supported_release_counts_as_supported() {
    assert!(is_supported("0.76.0") && is_supported("0.76.12") && is_supported("0.76"));
    assert!(!is_supported("0.77.0") && !is_supported("0.760.0") && !is_supported("dev"));
}

#[test]
fn scan_options_list_severities_most_severe_first() {
    let config = TrivyConfig {
        severities: vec![Severity::High, Severity::Critical],
        ignore_unfixed: true,
        ..TrivyConfig::new("/cache")
    };
    let options = Trivy::new(config).scan_options();
    assert_eq!(options.severities, [Severity::Critical, Severity::High]);
    assert!(options.ignore_unfixed);
}

// The installed Trivy (`trivy` on PATH, or DRAGNET_TRIVY), on an empty cache.

fn real_trivy(cache: &Path) -> Trivy {
    let program = std::env::var_os("DRAGNET_TRIVY").unwrap_or_else(|| "trivy".into());
    Trivy::new(TrivyConfig {
        program: program.into(),
        ..TrivyConfig::new(cache)
    })
}

#[tokio::test]
async fn real_trivy_reports_its_version_and_no_db_on_an_empty_cache() {
    let cache = tempfile::tempdir().unwrap();
    let version = real_trivy(cache.path()).version().await.unwrap();

    assert!(is_supported(&version.version), "{version:?}");
    assert_eq!(version.db, None);
}

#[tokio::test]
async fn real_trivy_refuses_to_scan_before_the_db_is_downloaded() {
    let cache = tempfile::tempdir().unwrap();
    let err = real_trivy(cache.path()).scan(IMAGE).await.unwrap_err();

    assert!(matches!(err, TrivyError::DbMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&cache.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("download it first"), "{message}");
}
