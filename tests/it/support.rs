//! What every integration test needs: a sandbox, the dragnet command aimed at it, and checks
//! for what a user would look at afterwards.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use dragnet::report::Report;
use dragnet_sandbox::fixture::expected_findings;
use dragnet_sandbox::sandbox::{RegistryModeChoice, Sandbox};

#[path = "../support/sarif_validate.rs"]
mod sarif_validate;
pub use sarif_validate::assert_valid_sarif;

/// The pattern the mission's organization uses.
pub const PATTERN: &str = "products/bfx/*";

/// A started sandbox and a scratch folder for one test.
pub struct World {
    pub sandbox: Sandbox,
    pub dir: tempfile::TempDir,
}

impl World {
    pub async fn start(mode: RegistryModeChoice) -> World {
        let sandbox = Sandbox::start_temporary(mode)
            .await
            .expect("starting the sandbox");
        let dir = tempfile::tempdir().unwrap();
        World { sandbox, dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `dragnet ARGS` with the sandbox's GitHub URL and token, and nothing inherited from a
    /// real Actions run.
    pub fn dragnet(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dragnet"));
        command.args(args);
        for (name, _) in std::env::vars() {
            if name.starts_with("GITHUB_") || name.starts_with("DRAGNET_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command
            .env("GITHUB_API_URL", self.sandbox.api_url())
            .env("GITHUB_TOKEN", self.sandbox.token())
            .env("DRAGNET_CACHE_DIR", self.path("cache"))
            .kill_on_drop(true);
        command
    }

    /// `dragnet scan` over the pattern with everything a sandbox run needs.
    pub fn scan(&self, output: &str, extra: &[&str]) -> tokio::process::Command {
        let api_url = self.sandbox.api_url();
        let registry = self.sandbox.registry_host();
        let trivy = self.recording_trivy();
        self.scan_via(output, &api_url, &registry, &trivy, extra)
    }

    /// [`World::scan`] through another GitHub API URL and registry host (a fault proxy), with
    /// another trivy program (a misbehaving one).
    pub fn scan_via(
        &self,
        output: &str,
        api_url: &str,
        registry: &str,
        trivy: &Path,
        extra: &[&str],
    ) -> tokio::process::Command {
        let owner = self.sandbox.owner().to_string();
        let db = self.sandbox.db_repository();
        let out = self.path(output);
        let mut args: Vec<String> = [
            "scan",
            "--owner",
            &owner,
            "--pattern",
            PATTERN,
            "--registry",
            registry,
            "--db-repository",
            &db,
            "--output-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(out.display().to_string());
        args.push("--trivy".into());
        args.push(trivy.display().to_string());
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = self.dragnet(&args);
        command.env("GITHUB_API_URL", api_url);
        if let Some((user, password)) = self.sandbox.registry_credentials() {
            command
                .env("DRAGNET_REGISTRY_USERNAME", user)
                .env("DRAGNET_REGISTRY_PASSWORD", password);
        }
        command
    }

    /// A wrapper around the real trivy that appends its argv to `trivy-argv.log`, one line a
    /// call, so tests can count scans and check that no secret was passed on the command line.
    pub fn recording_trivy(&self) -> PathBuf {
        let real = which("trivy");
        let wrapper = self.path("trivy");
        if !wrapper.exists() {
            let log = self.path("trivy-argv.log");
            let script = format!(
                "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                real.display()
            );
            std::fs::write(&wrapper, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        wrapper
    }

    /// A trivy that records its argv as [`World::recording_trivy`] does, misbehaves for the
    /// images whose digest is listed, and runs the real trivy for everything else.
    pub fn misbehaving_trivy(&self, name: &str, faults: &[(&str, Misbehaviour)]) -> PathBuf {
        let real = which("trivy");
        let log = self.path("trivy-argv.log");
        let hung = self.path("hung-trivy.pids");
        let mut script = format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n", log.display());
        script.push_str("case \"$*\" in\n");
        for (digest, misbehaviour) in faults {
            let real = real.display();
            let action = match misbehaviour {
                Misbehaviour::Crash => "kill -SEGV $$".to_string(),
                Misbehaviour::Hang => format!("echo $$ >> '{}'; sleep 600", hung.display()),
                Misbehaviour::Garbage => {
                    "printf 'panic: runtime error\\n\\001\\002 not json {'; exit 0".to_string()
                }
                Misbehaviour::Truncated => format!("'{real}' \"$@\" | head -c 200; exit 0"),
                Misbehaviour::Huge(bytes) => format!(
                    "printf '{{\"SchemaVersion\":2,\"Results\":['; head -c {bytes} /dev/zero \
                     | tr '\\0' ' '; exit 0"
                ),
            };
            script.push_str(&format!("  *{digest}*) {action} ;;\n"));
        }
        script.push_str(&format!("esac\nexec '{}' \"$@\"\n", real.display()));
        let path = self.path(name);
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// The process groups of hung fake trivies (see [`Misbehaviour::Hang`]) that still have a
    /// live (not zombie) process, after giving SIGKILL up to five seconds to land: empty once
    /// dragnet killed them all.
    pub fn surviving_hung_trivies(&self) -> Vec<i32> {
        let groups: Vec<i32> = std::fs::read_to_string(self.path("hung-trivy.pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let alive: Vec<i32> = groups
                .iter()
                .copied()
                .filter(|group| live_group_members(*group) > 0)
                .collect();
            if alive.is_empty() || std::time::Instant::now() > deadline {
                return alive;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Every argv Trivy was started with.
    pub fn trivy_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("trivy-argv.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// How many processes of process group `group` are alive and not zombies, from `/proc`.
fn live_group_members(group: i32) -> usize {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its `)`.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, rest)| rest.split_whitespace().collect())
                .unwrap_or_default();
            fields.first().is_some_and(|state| *state != "Z")
                && fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(group)
        })
        .count()
}

/// How a fake trivy misbehaves for one image.
#[derive(Debug, Clone, Copy)]
pub enum Misbehaviour {
    /// Dies of SIGSEGV.
    Crash,
    /// Never finishes (until killed).
    Hang,
    /// Prints something that is not JSON and exits 0.
    Garbage,
    /// Prints the first 200 bytes of the real report and exits 0.
    Truncated,
    /// Prints a report of this many bytes (blank padding) and exits 0.
    Huge(u64),
}

/// The executable `name` on PATH; fails loudly when it is missing.
pub fn which(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("`{name}` is not on PATH: run scripts/install-deps"))
}

/// Runs a command and returns its output, with stderr echoed for failing tests.
pub async fn run(command: &mut tokio::process::Command) -> Output {
    let output = command.output().await.expect("running dragnet");
    eprintln!(
        "--- dragnet stderr ---\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Reads `results.json` from an output folder.
pub fn read_report(dir: &Path) -> Report {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json exists");
    serde_json::from_str(&text).expect("results.json parses as a Report")
}

/// One finding as a user would name it: (package, tag, architecture, CVE, package, installed).
pub type Row = (String, String, String, String, String, String);

/// The findings the report fans out to every tag.
pub fn reported_rows(report: &Report) -> BTreeSet<Row> {
    let mut rows = BTreeSet::new();
    for image in &report.images {
        let arch = image
            .platform
            .as_ref()
            .map(|p| p.architecture.clone())
            .unwrap_or_default();
        for reference in &image.refs {
            for tag in &reference.tags {
                for finding in &image.findings {
                    rows.insert((
                        reference.package.clone(),
                        tag.clone(),
                        arch.clone(),
                        finding.vulnerability_id.clone(),
                        finding.package_name.clone(),
                        finding.installed_version.clone(),
                    ));
                }
            }
        }
    }
    rows
}

/// What the fixture says a scan of `products/bfx/*` at these severities must find.
pub fn expected_rows(severities: &[&str]) -> BTreeSet<Row> {
    expected_findings(severities)
        .into_iter()
        .filter(|f| matches_pattern(&f.package))
        .map(|f| {
            (
                f.package,
                f.tag,
                f.architecture,
                f.vulnerability_id,
                f.package_name,
                f.installed_version,
            )
        })
        .collect()
}

/// `products/bfx/*` with `*` not crossing `/`.
pub fn matches_pattern(package: &str) -> bool {
    package
        .strip_prefix("products/bfx/")
        .is_some_and(|rest| !rest.contains('/'))
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path)
            } else {
                files.push(path)
            }
        }
    }
    files.sort();
    files
}
