//! Trivy's command lines and environment, built in one place.
//!
//! Valued flags are written `--flag=value`, so no configured value can be read as a flag, and
//! the image comes last, after `--`. `--config=` and `--ignorefile=` keep a `trivy.yaml` or
//! `.trivyignore` in the working directory from changing findings; `--skip-version-check
//! --disable-telemetry` keep Trivy from calling home from an organisation's CI. Go's collector
//! is tuned for short-lived scans (see [`go_runtime_tuning`]).

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use super::{RegistryCredentials, TrivyConfig};
use crate::finding::Severity;

/// The arguments of `trivy image` scanning `image` (checked by the caller), without a server.
#[cfg(test)]
pub(crate) fn scan_args(config: &TrivyConfig, image: &str) -> Vec<OsString> {
    scan_args_with(config, image, None)
}

/// [`scan_args`], as a client of the `trivy server` at `server` (`http://127.0.0.1:PORT`) when
/// one is given: the server's shared layer cache replaces the per-process one in memory.
pub(crate) fn scan_args_with(
    config: &TrivyConfig,
    image: &str,
    server: Option<&str>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "image",
        "--format=json",
        "--quiet",
        "--no-progress",
        "--scanners=vuln",
        "--image-src=remote",
    ]
    .map(OsString::from)
    .into();
    args.push(format!("--severity={}", severity_list(&config.severities)).into());
    if config.ignore_unfixed {
        args.push("--ignore-unfixed".into());
    }
    args.extend(["--skip-db-update", "--skip-java-db-update"].map(OsString::from));
    args.push(valued("--cache-dir=", &config.cache_dir));
    // Trivy's layer cache on disk is one BoltDB that each process holds locked for its whole
    // scan; a second process waits 5 s for it, then fails ("cache may be in use by another
    // process"), so concurrent scans of slow images failed each other. The DB itself is read
    // from --cache-dir either way; dragnet already scans each digest once.
    match server {
        Some(url) => args.push(format!("--server={url}").into()),
        None => args.push("--cache-backend=memory".into()),
    }
    args.push(format!("--timeout={}", go_duration(config.timeout)).into());
    args.push("--list-all-pkgs=false".into());
    args.extend(isolation_flags());
    args.push("--".into());
    args.push(image.into());
    args
}

/// The arguments of `trivy image --format=cyclonedx` for `image`: the SBOM of its packages
/// (no vulnerabilities, which the scan reports), from the registry, with the cached DB.
pub(crate) fn sbom_args(config: &TrivyConfig, image: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "image",
        "--format=cyclonedx",
        "--quiet",
        "--no-progress",
        "--image-src=remote",
        "--skip-db-update",
        "--skip-java-db-update",
    ]
    .map(OsString::from)
    .into();
    args.push(valued("--cache-dir=", &config.cache_dir));
    args.push(format!("--timeout={}", go_duration(config.timeout)).into());
    args.extend(isolation_flags());
    args.push("--".into());
    args.push(image.into());
    args
}

/// The arguments of `trivy image --download-db-only` from the configured repositories.
pub(crate) fn download_db_args(config: &TrivyConfig) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["image", "--download-db-only", "--quiet", "--no-progress"]
        .map(OsString::from)
        .into();
    args.push(valued("--cache-dir=", &config.cache_dir));
    args.push(format!("--timeout={}", go_duration(config.timeout)).into());
    for repository in &config.db_repositories {
        args.push(format!("--db-repository={repository}").into());
    }
    args.extend(isolation_flags());
    args
}

/// The arguments of `trivy version`, with the DB metadata of the configured cache.
pub(crate) fn version_args(config: &TrivyConfig) -> Vec<OsString> {
    vec![
        "version".into(),
        "--format=json".into(),
        valued("--cache-dir=", &config.cache_dir),
        "--config=".into(),
    ]
}

/// Flags that keep Trivy's behaviour independent of the working directory and offline.
fn isolation_flags() -> [OsString; 4] {
    [
        "--config=",
        "--ignorefile=",
        "--skip-version-check",
        "--disable-telemetry",
    ]
    .map(OsString::from)
}

/// The command for `program` with `args` and a deliberate environment: the parent's, without
/// anything that configures Trivy or holds dragnet's own credentials, plus the registry
/// credentials when given.
pub(crate) fn command(
    program: &Path,
    args: &[OsString],
    credentials: Option<&RegistryCredentials>,
) -> Command {
    let mut command = Command::new(program);
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if is_withheld(&name) {
            command.env_remove(&name);
        }
    }
    if let Some(credentials) = credentials {
        command.env("TRIVY_USERNAME", &credentials.username);
        command.env("TRIVY_PASSWORD", credentials.password.expose());
    }
    let tuning = go_runtime_tuning(|name| std::env::var_os(name), physical_memory());
    command.envs(tuning);
    command
}

/// How often Go's garbage collector runs in Trivy, unless the user tuned Go's runtime.
const GOGC: &str = "400";

/// Go's runtime settings for Trivy's processes, unless `lookup` (the environment) already has
/// either.
///
/// Go collects garbage each time the heap doubles (`GOGC=100`). A scan lives about a second and
/// allocates freely, so collection is a fifth of its CPU: with `GOGC=400`, dragnet's first run
/// over the benchmark organization took 17–20% less CPU and wall time (docs/benchmarks.md).
/// The heap may then grow to five times what is live, so `GOMEMLIMIT`, a soft limit at a
/// quarter of the machine's memory, makes the collector work harder near it: never an
/// out-of-memory kill, at worst the old pace.
fn go_runtime_tuning(
    lookup: impl Fn(&str) -> Option<OsString>,
    physical_memory: Option<u64>,
) -> Vec<(&'static str, String)> {
    if lookup("GOGC").is_some() || lookup("GOMEMLIMIT").is_some() {
        return Vec::new();
    }
    let mut tuning = vec![("GOGC", GOGC.to_string())];
    if let Some(bytes) = physical_memory {
        let limit_mib = (bytes / 4 / (1024 * 1024)).max(256);
        tuning.push(("GOMEMLIMIT", format!("{limit_mib}MiB")));
    }
    tuning
}

/// The machine's physical memory in bytes, where the system says.
fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf reads a system constant; it has no preconditions.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let pages = u64::try_from(pages).ok()?;
    let page_size = u64::try_from(page_size).ok()?;
    pages.checked_mul(page_size).filter(|&bytes| bytes > 0)
}

/// Whether a variable of dragnet's environment is kept from Trivy.
///
/// `TRIVY_*` is Trivy's configuration (every flag has one, and `TRIVY_SEVERITY=LOW` or
/// `TRIVY_IGNOREFILE` would silently change the findings): dragnet owns that configuration.
/// `DRAGNET_*`, `GITHUB_TOKEN` and `GH_TOKEN` are dragnet's own settings and credentials,
/// which Trivy has no use for. Everything else (`PATH`, `HOME`, proxies, `SSL_CERT_FILE`,
/// `DOCKER_CONFIG`, `TMPDIR`) is kept: Trivy and any wrapper around it need those.
pub(crate) fn is_withheld(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let upper = name.to_ascii_uppercase();
    upper.starts_with("TRIVY_")
        || upper.starts_with("DRAGNET_")
        || upper == "GITHUB_TOKEN"
        || upper == "GH_TOKEN"
}

/// `CRITICAL,HIGH`: the configured severities, most severe first, each once; all when empty.
pub(crate) fn severity_list(severities: &[Severity]) -> String {
    let chosen: Vec<&str> = Severity::ALL
        .iter()
        .filter(|s| severities.is_empty() || severities.contains(s))
        .map(|s| s.as_str())
        .collect();
    chosen.join(",")
}

/// A duration as Go's `time.ParseDuration` reads it, shortest form first: `10m`, `90s`,
/// `1500ms`. Also how durations appear in error messages.
pub(crate) fn go_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    if duration.subsec_nanos() != 0 || secs == 0 {
        let millis = duration.as_millis().max(1);
        return format!("{millis}ms");
    }
    if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn valued(flag: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(flag);
    arg.push(path.as_os_str());
    arg
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::secret::Secret;

    #[test]
    fn trivy_collects_garbage_less_often_unless_the_user_tuned_go() {
        let gib = 1024 * 1024 * 1024;
        let untouched = go_runtime_tuning(|_| None, Some(8 * gib));
        assert_eq!(
            untouched,
            vec![("GOGC", "400".into()), ("GOMEMLIMIT", "2048MiB".into())]
        );
        let small = go_runtime_tuning(|_| None, Some(gib / 2));
        assert_eq!(small[1], ("GOMEMLIMIT", "256MiB".into()), "a floor");
        assert_eq!(
            go_runtime_tuning(|_| None, None),
            vec![("GOGC", "400".into())]
        );
        for tuned in ["GOGC", "GOMEMLIMIT"] {
            let lookup = |name: &str| (name == tuned).then(|| OsString::from("50"));
            assert!(
                go_runtime_tuning(lookup, Some(8 * gib)).is_empty(),
                "{tuned}"
            );
        }
    }

    fn config() -> TrivyConfig {
        TrivyConfig {
            program: PathBuf::from("trivy"),
            cache_dir: PathBuf::from("/cache/trivy"),
            db_repositories: vec![],
            severities: vec![Severity::High, Severity::Critical],
            ignore_unfixed: false,
            timeout: Duration::from_secs(600),
            credentials: None,
        }
    }

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn scan_command_line_is_fixed_and_ends_with_the_image() {
        let args = strings(&scan_args(&config(), "ghcr.io/acme/app@sha256:abc"));
        assert_eq!(
            args.join(" "),
            "image --format=json --quiet --no-progress --scanners=vuln --image-src=remote \
             --severity=CRITICAL,HIGH --skip-db-update --skip-java-db-update \
             --cache-dir=/cache/trivy --cache-backend=memory --timeout=10m \
             --list-all-pkgs=false --config= \
             --ignorefile= --skip-version-check --disable-telemetry -- \
             ghcr.io/acme/app@sha256:abc"
        );
    }

    #[test]
    fn ignore_unfixed_adds_its_flag() {
        let config = TrivyConfig {
            ignore_unfixed: true,
            ..config()
        };
        let args = strings(&scan_args(&config, "img"));
        assert!(args.contains(&"--ignore-unfixed".to_string()), "{args:?}");
    }

    #[test]
    fn download_passes_each_db_repository_in_order() {
        let config = TrivyConfig {
            db_repositories: vec![
                "127.0.0.1:5000/trivy-db".into(),
                "ghcr.io/x/trivy-db:2".into(),
            ],
            ..config()
        };
        assert_eq!(
            strings(&download_db_args(&config)).join(" "),
            "image --download-db-only --quiet --no-progress --cache-dir=/cache/trivy \
             --timeout=10m --db-repository=127.0.0.1:5000/trivy-db \
             --db-repository=ghcr.io/x/trivy-db:2 --config= --ignorefile= \
             --skip-version-check --disable-telemetry"
        );
    }

    #[test]
    fn version_reads_the_configured_cache() {
        assert_eq!(
            strings(&version_args(&config())).join(" "),
            "version --format=json --cache-dir=/cache/trivy --config="
        );
    }

    #[test]
    fn severities_are_listed_most_severe_first_once_and_all_when_empty() {
        use Severity::*;
        assert_eq!(severity_list(&[Low, Critical, Low]), "CRITICAL,LOW");
        assert_eq!(severity_list(&[]), "CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN");
    }

    #[test]
    fn durations_are_written_as_go_reads_them() {
        assert_eq!(go_duration(Duration::from_secs(600)), "10m");
        assert_eq!(go_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(go_duration(Duration::from_secs(90)), "90s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(go_duration(Duration::ZERO), "1ms");
    }

    #[test]
    fn trivy_settings_and_dragnet_credentials_are_withheld_from_the_child() {
        for name in [
            "TRIVY_SEVERITY",
            "trivy_password",
            "DRAGNET_REGISTRY_PASSWORD",
        ] {
            assert!(is_withheld(OsStr::new(name)), "{name}");
        }
        for name in ["GITHUB_TOKEN", "GH_TOKEN"] {
            assert!(is_withheld(OsStr::new(name)), "{name}");
        }
        for name in [
            "PATH",
            "HOME",
            "HTTPS_PROXY",
            "SSL_CERT_FILE",
            "DOCKER_CONFIG",
            "TRIVYX",
        ] {
            assert!(!is_withheld(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn credentials_go_to_the_environment_not_the_arguments() {
        let credentials = RegistryCredentials {
            username: "bot".into(),
            password: Secret::new("pa55-w0rd"),
        };
        let args = scan_args(&config(), "img");
        let command = command(Path::new("trivy"), &args, Some(&credentials));
        let std = command.as_std();

        let envs: Vec<(String, Option<String>)> = std
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into(),
                    v.map(|v| v.to_string_lossy().into()),
                )
            })
            .collect();
        assert!(envs.contains(&("TRIVY_PASSWORD".into(), Some("pa55-w0rd".into()))));
        assert!(envs.contains(&("TRIVY_USERNAME".into(), Some("bot".into()))));
        assert!(
            std.get_args()
                .all(|a| !a.to_string_lossy().contains("pa55"))
        );
    }
}
