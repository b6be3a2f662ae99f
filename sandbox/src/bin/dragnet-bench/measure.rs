//! What the benchmark measures about processes and registries: CPU from `getrusage`, dragnet's
//! own CPU and peak memory from `/proc`, and the bytes a registry served from its access log.
//!
//! dragnet's own figures are read from `/proc/PID` while it runs (VmHWM, a high-water mark, so
//! any read after the peak sees it) and once more after it exits but before it is reaped
//! (`waitid(WNOWAIT)`): the zombie's `stat` still holds its own CPU time and, separately, that of
//! the Trivy children it waited for.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

/// How often a running child's `/proc/PID/status` is read for its high-water mark.
const POLL: Duration = Duration::from_millis(5);

/// User plus system CPU time of this process's reaped children, in seconds.
pub fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to an rusage, and RUSAGE_CHILDREN is a valid `who`.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// What one measured child (dragnet) used by itself.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OwnUsage {
    /// Its own user plus system CPU, without its children, in seconds.
    pub cpu_seconds: f64,
    /// CPU of the children it waited for (Trivy), in seconds.
    pub children_cpu_seconds: f64,
    /// Its peak resident memory (VmHWM) in KiB.
    pub peak_rss_kib: u64,
}

/// Runs `command` to completion, measuring its own CPU and peak memory; its stdout and stderr
/// go to `log` (appended).
pub fn run_measured(mut command: Command, log: &Path) -> anyhow::Result<(ExitStatus, OwnUsage)> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    command.stdout(out.try_clone()?).stderr(out);
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let pid = child.id();
    let status_path = PathBuf::from(format!("/proc/{pid}/status"));
    let mut usage = OwnUsage::default();

    loop {
        // SAFETY: zeroed siginfo is valid input; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our child; WNOWAIT leaves it a zombie so /proc/PID stays readable.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc != 0 {
            anyhow::bail!("waitid failed: {}", std::io::Error::last_os_error());
        }
        // SAFETY: si_pid is set (non-zero) once waitid found an exited child.
        if unsafe { info.si_pid() } != 0 {
            break;
        }
        if let Some(hwm) = read_vm_hwm(&status_path) {
            usage.peak_rss_kib = usage.peak_rss_kib.max(hwm);
        }
        std::thread::sleep(POLL);
    }

    // The zombie's stat: fields 14-17 are utime, stime, cutime, cstime in clock ticks.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    if let Some((_, rest)) = stat.rsplit_once(')') {
        let fields: Vec<f64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        // `rest` starts at field 3 (state), so field N is at index N - 3.
        let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0) / ticks;
        usage.cpu_seconds = field(14) + field(15);
        usage.children_cpu_seconds = field(16) + field(17);
    }
    let status = child.wait().context("reaping the child")?;
    Ok((status, usage))
}

fn read_vm_hwm(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A position in an access log, to read what was logged after it.
#[derive(Debug, Clone)]
pub struct LogMark {
    path: PathBuf,
    offset: u64,
}

impl LogMark {
    /// The current end of `path`.
    pub fn now(path: &Path) -> LogMark {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        LogMark {
            path: path.to_path_buf(),
            offset,
        }
    }

    /// Every line logged since the mark.
    pub fn lines_since(&self) -> anyhow::Result<Vec<String>> {
        let mut file = std::fs::File::open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.offset))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(text.lines().map(str::to_owned).collect())
    }
}

/// One access-log line: `IP - - [time] "METHOD PATH PROTO" STATUS SIZE "referer" "agent"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request path.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// Bytes of body sent.
    pub size: u64,
    /// The user agent.
    pub agent: String,
}

/// Parses one combined-format line; `None` for anything else.
pub fn parse_access(line: &str) -> Option<Access> {
    let parts: Vec<&str> = line.split('"').collect();
    if parts.len() < 6 {
        return None;
    }
    let mut request = parts[1].split_whitespace();
    let method = request.next()?.to_owned();
    let path = request.next()?.to_owned();
    let mut numbers = parts[2].split_whitespace();
    let status = numbers.next()?.parse().ok()?;
    let size = numbers.next()?.parse().unwrap_or(0);
    Some(Access {
        method,
        path,
        status,
        size,
        agent: parts[5].to_owned(),
    })
}

/// What a registry served during a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Traffic {
    /// Requests of any kind.
    pub requests: u64,
    /// Bytes of every response body (HEAD responses carry none).
    pub bytes: u64,
    /// Bytes of layer blobs.
    pub layer_bytes: u64,
    /// Layer blob downloads.
    pub layer_fetches: u64,
    /// Distinct layers downloaded.
    pub unique_layers: u64,
    /// Bytes of other blobs (image configs, the DB artifact's config).
    pub other_blob_bytes: u64,
    /// Bytes of manifests and indexes.
    pub manifest_bytes: u64,
    /// Manifest downloads.
    pub manifest_fetches: u64,
    /// Distinct manifest digests Trivy fetched: the images it scanned.
    pub trivy_digests: u64,
}

/// Tallies `lines` of an access log; `layers` are the digests that count as layers.
pub fn traffic(lines: &[String], layers: &BTreeMap<String, u64>) -> Traffic {
    let mut traffic = Traffic::default();
    let mut unique = BTreeSet::new();
    let mut trivy_digests = BTreeSet::new();
    for access in lines.iter().filter_map(|l| parse_access(l)) {
        traffic.requests += 1;
        if access.method != "GET" {
            continue;
        }
        traffic.bytes += access.size;
        let tail = access.path.rsplit('/').next().unwrap_or_default();
        if access.path.contains("/blobs/") {
            if access.status == 200 && layers.contains_key(tail) {
                traffic.layer_bytes += access.size;
                traffic.layer_fetches += 1;
                unique.insert(tail.to_owned());
            } else {
                traffic.other_blob_bytes += access.size;
            }
        } else if access.path.contains("/manifests/") {
            traffic.manifest_bytes += access.size;
            traffic.manifest_fetches += 1;
            if access.agent.starts_with("trivy/") && tail.starts_with("sha256:") {
                trivy_digests.insert(tail.to_owned());
            }
        }
    }
    traffic.unique_layers = unique.len() as u64;
    traffic.trivy_digests = trivy_digests.len() as u64;
    traffic
}

/// A stopwatch for one phase: wall time and the CPU of the children reaped meanwhile.
pub struct Stopwatch {
    started: Instant,
    cpu: f64,
}

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Stopwatch {
        Stopwatch {
            started: Instant::now(),
            cpu: children_cpu_seconds(),
        }
    }

    /// Wall seconds and children's CPU seconds since the start.
    pub fn stop(&self) -> (f64, f64) {
        (
            self.started.elapsed().as_secs_f64(),
            children_cpu_seconds() - self.cpu,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_combined_log_line() {
        let line = "127.0.0.1 - - [03/Dec/2026:17:07:54 +0000] \"GET /v2/a/b/blobs/sha256:ab \
                    HTTP/1.1\" 200 505 \"\" \"trivy/0.76.0\"";
        let access = parse_access(line).unwrap();
        assert_eq!(access.method, "GET");
        assert_eq!(access.path, "/v2/a/b/blobs/sha256:ab");
        assert_eq!((access.status, access.size), (200, 505));
        assert_eq!(access.agent, "trivy/0.76.0");
    }

    #[test]
    fn counts_layers_once_per_digest_and_ignores_heads() {
        let layers = BTreeMap::from([("sha256:aa".to_owned(), 10)]);
        let line = |method: &str, path: &str, size: u64, agent: &str| {
            format!("1 - - [t] \"{method} {path} HTTP/1.1\" 200 {size} \"\" \"{agent}\"")
        };
        let lines = vec![
            line("GET", "/v2/r/blobs/sha256:aa", 10, "trivy/0.76.0"),
            line("GET", "/v2/s/blobs/sha256:aa", 10, "trivy/0.76.0"),
            line("HEAD", "/v2/r/blobs/sha256:aa", 10, "dragnet"),
            line("GET", "/v2/r/blobs/sha256:cc", 3, "dragnet"),
            line("GET", "/v2/r/manifests/sha256:dd", 2, "trivy/0.76.0"),
            line("GET", "/v2/r/manifests/1.0", 2, "dragnet"),
        ];
        let t = traffic(&lines, &layers);
        assert_eq!(t.requests, 6);
        assert_eq!(t.bytes, 27);
        assert_eq!(
            (t.layer_bytes, t.layer_fetches, t.unique_layers),
            (20, 2, 1)
        );
        assert_eq!(t.other_blob_bytes, 3);
        assert_eq!(
            (t.manifest_bytes, t.manifest_fetches, t.trivy_digests),
            (4, 2, 1)
        );
    }
}
