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
    /// The child's peak resident set size in bytes (`ru_maxrss` of `wait4`).
    pub max_rss: u64,
}

/// Runs `command` to its end and measures it. Blocks: call it from a blocking thread.
pub fn run_measured(mut command: std::process::Command) -> anyhow::Result<Measured> {
    use anyhow::Context as _;

    let started = std::time::Instant::now();
    let child = command.spawn().context("starting the measured program")?;
    let pid = libc::pid_t::try_from(child.id()).context("a pid beyond pid_t")?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; both pointers are valid for writes.
    // `child` is never waited on afterwards, so the pid is reaped exactly once, here.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if reaped != pid {
        anyhow::bail!(
            "waiting for the measured program failed: {}",
            std::io::Error::last_os_error()
        );
    }
    let elapsed = started.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(Measured {
        code,
        elapsed,
        // Linux reports kibibytes.
        max_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
    })
}
