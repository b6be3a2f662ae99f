//! A large organization for scale tests and the discovery benchmark: thousands of packages
//! with dozens of versions each, held by the GitHub API emulator alone (no images are pushed,
//! since discovery never touches the registry).
//!
//! Digests and tags are derived from the package and version numbers, so two runs build the
//! very same organization and a test can predict every row.

use sha2::{Digest as _, Sha256};

use crate::github::{Emulator, OwnerKind, PackageSpec, VersionSpec};

/// The shape of a generated organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgShape {
    /// How many container packages.
    pub packages: usize,
    /// How many versions each package has, every one tagged.
    pub versions: usize,
}

impl OrgShape {
    /// The shape the issue sets for discovery at scale: 2,000 packages of 50 versions.
    pub const LARGE: OrgShape = OrgShape {
        packages: 2000,
        versions: 50,
    };

    /// Every version of the organization.
    pub fn total_versions(&self) -> usize {
        self.packages * self.versions
    }

    /// The list calls a client paging by 100 must make: the package pages, then each package's
    /// version pages.
    pub fn minimum_list_calls(&self) -> usize {
        self.packages.div_ceil(100).max(1) + self.packages * self.versions.div_ceil(100).max(1)
    }
}

/// The name of package `index` (`svc/p0042`).
pub fn package_name(index: usize) -> String {
    format!("svc/p{index:04}")
}

/// The digest of version `version` of package `package`.
pub fn digest(package: usize, version: usize) -> String {
    let hash = Sha256::digest(format!("scale {package} {version}"));
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Registers organization `owner` with `shape` in the emulator. Each package is linked to the
/// repository `owner/p0042`; version `v` of each package is tagged `1.<v>`.
pub fn populate(emulator: &Emulator, owner: &str, shape: OrgShape) {
    emulator.add_owner(owner, OwnerKind::Organization);
    for package in 0..shape.packages {
        let name = package_name(package);
        let repository = format!("{owner}/p{package:04}");
        emulator.add_package(owner, PackageSpec::new(&name).repository(&repository));
        let versions = (0..shape.versions)
            .map(|version| VersionSpec::new(&digest(package, version), &[&format!("1.{version}")]))
            .collect();
        emulator.add_versions(owner, &name, versions);
    }
}

/// What one measured run of a program cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    /// The exit code, or `None` when a signal ended it.
    pub code: Option<i32>,
    /// Wall time from start to exit.
    pub elapsed: std::time::Duration,
    /// The program's peak resident set size in bytes.
    pub max_rss: u64,
}

/// A program to measure: what to run, with which environment, and where its output goes.
#[derive(Debug)]
pub struct MeasuredCommand {
    pub program: std::path::PathBuf,
    pub args: Vec<String>,
    /// The whole environment: nothing else is inherited.
    pub envs: Vec<(String, String)>,
    pub stdout: std::fs::File,
    pub stderr: std::fs::File,
}

/// Starts the program from a small Python process and reports its `RUSAGE_CHILDREN` peak.
///
/// Linux carries a process's peak RSS across `fork` and `exec`: a child started straight from
/// a test or benchmark process that holds a large emulated organization would report that
/// process's size, not its own. A fresh, small parent reports only the program's.
const MEASURE: &str = r#"
import json, resource, subprocess, sys, time
started = time.monotonic()
code = subprocess.call(sys.argv[2:])
elapsed = time.monotonic() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "elapsed": elapsed, "max_rss_kib": peak}, out)
"#;

/// Runs `command` to its end and measures it. Blocks: call it from a blocking thread.
pub fn run_measured(command: MeasuredCommand) -> anyhow::Result<Measured> {
    use anyhow::Context as _;

    let report = tempfile::NamedTempFile::new().context("creating the measurement report")?;
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(MEASURE)
        .arg(report.path())
        .arg(&command.program)
        .args(&command.args)
        .env_clear()
        .envs(command.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(command.stdout)
        .stderr(command.stderr)
        .status()
        .context("starting python3 to measure the program (scripts/install-deps installs it)")?;
    anyhow::ensure!(status.success(), "the measuring python3 failed: {status}");

    #[derive(serde::Deserialize)]
    struct Report {
        code: i32,
        elapsed: f64,
        max_rss_kib: u64,
    }
    let report: Report =
        serde_json::from_reader(report.as_file()).context("reading the measurement report")?;
    Ok(Measured {
        // Python reports death by signal N as -N.
        code: (report.code >= 0).then_some(report.code),
        elapsed: std::time::Duration::from_secs_f64(report.elapsed.max(0.0)),
        max_rss: report.max_rss_kib * 1024,
    })
}
