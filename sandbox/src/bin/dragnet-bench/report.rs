//! The benchmark's report: the machine it ran on, a table per phase, and each target of issue 6
//! checked against the figures, written as Markdown into docs/benchmarks.md between markers.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use super::{Phase, Results};

/// The markers around the generated section of docs/benchmarks.md.
const START: &str = "<!-- bench:results:start -->";
const END: &str = "<!-- bench:results:end -->";

/// What the numbers were measured on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub trivy: String,
    pub dragnet_commit: String,
    pub date: String,
    pub load_before: String,
    pub load_after: String,
}

impl Machine {
    /// Reads /proc, `trivy --version` and git.
    pub fn describe(trivy: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let run = |program: &Path, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_else(|| "unknown".into())
        };
        let trivy_version = run(trivy, &["--version"])
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("Version: ")
            .to_owned();
        let commit = run(Path::new("git"), &["rev-parse", "--short", "HEAD"]);
        let dirty = !run(Path::new("git"), &["status", "--porcelain"]).is_empty();
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            memory_gib: memory_kib / (1024.0 * 1024.0),
            kernel: run(Path::new("uname"), &["-r"]),
            trivy: trivy_version,
            dragnet_commit: if dirty {
                format!("{commit} (with uncommitted changes)")
            } else {
                commit
            },
            date: run(Path::new("date"), &["-u", "+%Y-%m-%d %H:%M UTC"]),
            load_before: load_average(),
            load_after: String::new(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// One target: what it asks, what was measured, whether it holds.
struct Target {
    what: &'static str,
    measured: String,
    met: Option<bool>,
}

fn targets(results: &Results) -> Vec<Target> {
    let phase = |id: &str| results.phases.iter().find(|p| p.id == id);
    let ratio = |slow: Option<&Phase>, fast: Option<&Phase>| match (slow, fast) {
        (Some(slow), Some(fast)) if fast.wall_seconds > 0.0 => {
            Some(slow.wall_seconds / fast.wall_seconds)
        }
        _ => None,
    };
    let (a, b, c, d, e) = (phase("a"), phase("b"), phase("c"), phase("d"), phase("e"));
    let mut list = Vec::new();
    let mut speedup = |what, value: Option<f64>, at_least: f64| {
        list.push(Target {
            what,
            measured: value.map_or("not run".into(), |v| format!("{v:.1}×")),
            met: value.map(|v| v >= at_least),
        });
    };
    speedup("(c) at least 5× faster than (a)", ratio(a, c), 5.0);
    speedup("(c) at least 3× faster than (b)", ratio(b, c), 3.0);
    speedup("(d) at least 20× faster than (c)", ratio(c, d), 20.0);
    // References, not targets: what deduplicating and one Trivy per core give on their own.
    let b2 = phase("b2");
    for (what, value) in [
        ("(b2), the deduplicating script, against (b)", ratio(b, b2)),
        ("(c) against (b2), the deduplicating script", ratio(b2, c)),
    ] {
        list.push(Target {
            what,
            measured: value.map_or("not run".into(), |v| format!("{v:.1}×")),
            met: None,
        });
    }

    if let Some(c) = c {
        let unique = c.unique_bytes;
        let excess = c.registry.bytes as f64 / unique.max(1) as f64 - 1.0;
        list.push(Target {
            what: "(c) bytes served within 5% of the unique layers, configs and manifests",
            measured: format!(
                "{} MB served for {} MB unique ({:+.1}%); {} layer fetches of {} layers",
                mb(c.registry.bytes),
                mb(unique),
                excess * 100.0,
                c.registry.layer_fetches,
                results.org.unique_layers
            ),
            met: Some(excess.abs() <= 0.05),
        });
        if let Some(usage) = &c.dragnet {
            let share = usage.cpu_seconds / c.cpu_seconds.max(f64::EPSILON);
            list.push(Target {
                what: "dragnet's own CPU at most 5% of the run's total, in (c)",
                measured: format!(
                    "{:.2}s of {:.1}s ({:.1}%)",
                    usage.cpu_seconds,
                    c.cpu_seconds,
                    share * 100.0
                ),
                met: Some(share <= 0.05),
            });
        }
        list.push(Target {
            what: "(c) scans every image without failure",
            measured: format!("{} failed", c.failures),
            met: Some(c.failures == 0),
        });
    }
    if let Some(d) = d {
        list.push(Target {
            what: "(d) fetches no layer blob",
            measured: format!(
                "{} layer fetches, {} scans",
                d.registry.layer_fetches, d.scans
            ),
            met: Some(d.registry.layer_fetches == 0),
        });
    }
    if let Some(e) = e {
        list.push(Target {
            what: "(e) scans only the new digest",
            measured: format!(
                "{} image(s) scanned; {} layer fetch(es), {} MB served",
                e.scans,
                e.registry.layer_fetches,
                mb(e.registry.bytes)
            ),
            met: Some(e.scans == 1),
        });
    }
    for id in ["f1", "f2"] {
        if let Some(f) = phase(id)
            && let Some(usage) = &f.dragnet
        {
            list.push(Target {
                what: if id == "f1" {
                    "peak memory at most 64 MiB at 10,000 versions: `discover`"
                } else {
                    "peak memory at most 64 MiB at 10,000 versions: `plan` (discover + resolve)"
                },
                measured: format!(
                    "{:.1} MiB over {} versions",
                    usage.peak_rss_kib as f64 / 1024.0,
                    results.org.scale_versions
                ),
                met: Some(usage.peak_rss_kib <= 64 * 1024 && f.failures == 0),
            });
        }
    }
    if let (Some(g), Some(h)) = (phase("g"), phase("h")) {
        // The image rescan's own cost: the update run less what a run costs with nothing to
        // scan (d).
        let rescan = g.wall_seconds - d.map_or(0.0, |d| d.wall_seconds);
        list.push(Target {
            what: "after a DB update: rescanning stored SBOMs (h) vs rescanning the images (g − d)",
            measured: format!(
                "{:.1}s and {:.1}s CPU from SBOMs; {:.1}s and {:.1}s CPU for the images ({} layer \
                 fetches)",
                h.wall_seconds,
                h.cpu_seconds,
                rescan,
                g.cpu_seconds - d.map_or(0.0, |d| d.cpu_seconds),
                g.registry.layer_fetches
            ),
            met: None,
        });
    }
    let scan_peak = results
        .phases
        .iter()
        .filter(|p| ["c", "d", "e", "g"].contains(&p.id.as_str()))
        .filter_map(|p| p.dragnet.as_ref())
        .map(|u| u.peak_rss_kib)
        .max();
    if let Some(peak) = scan_peak {
        list.push(Target {
            what: "peak memory of `dragnet scan` (c–e, g), for reference",
            measured: format!("{:.1} MiB", peak as f64 / 1024.0),
            met: None,
        });
    }
    list
}

/// The results as the Markdown section of docs/benchmarks.md.
pub fn markdown(results: &Results) -> String {
    let m = &results.machine;
    let o = &results.org;
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "Last run: {}, dragnet {}, Trivy {}.  ",
        m.date, m.dragnet_commit, m.trivy
    ));
    line(format!(
        "Machine: {} cores ({}), {:.0} GiB, Linux {}; load average {} before, {} after \
         (other developers' builds and tests may have shared the machine).",
        m.cores, m.cpu, m.memory_gib, m.kernel, m.load_before, m.load_after
    ));
    line(String::new());
    line(format!(
        "Organization: {} packages, {} tags on {} digests ({} platform images), {} unique \
         layers of {} MB, largest image {} MB; {} MB unique bytes in all. Trivy DB: the fixture \
         plus {} generated advisories, {} MB gzipped. Memory phase: {} versions.",
        o.packages,
        o.tags,
        o.versions,
        o.platform_images,
        o.unique_layers,
        mb(o.unique_layer_bytes),
        mb(o.largest_image_bytes),
        mb(o.unique_bytes),
        o.db_padding,
        mb(o.db_gzip_bytes),
        o.scale_versions
    ));
    line(String::new());
    line(
        "| phase | wall s | CPU s | dragnet CPU s | dragnet peak MiB | registry MB served | \
         layer fetches (unique) | DB MB served | API calls | token requests | scans | failures |"
            .into(),
    );
    line("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|".into());
    for p in &results.phases {
        let (own_cpu, own_peak) = p.dragnet.as_ref().map_or(("–".into(), "–".into()), |u| {
            (
                format!("{:.2}", u.cpu_seconds),
                format!("{:.1}", u.peak_rss_kib as f64 / 1024.0),
            )
        });
        let name = match p.extrapolated_from {
            Some(factor) => format!("{} (sampled, ×{factor:.1})", p.name),
            None => p.name.clone(),
        };
        line(format!(
            "| {name} | {:.1} | {:.1} | {own_cpu} | {own_peak} | {} | {} ({}) | {} | {} | {} | {} | {} |",
            p.wall_seconds,
            p.cpu_seconds,
            mb(p.registry.bytes),
            p.registry.layer_fetches,
            p.registry.unique_layers,
            mb(p.db_registry.bytes),
            p.api_calls,
            p.token_requests,
            p.scans,
            p.failures,
        ));
    }
    let notes: Vec<String> = results
        .phases
        .iter()
        .filter_map(|p| Some(format!("{}: {}", p.id, p.note.as_ref()?)))
        .collect();
    if !notes.is_empty() {
        line(String::new());
        for note in notes {
            line(format!("- {note}"));
        }
    }
    let failures: Vec<String> = results
        .phases
        .iter()
        .filter_map(|p| Some(format!("{}: {}", p.id, p.first_failure.as_ref()?)))
        .collect();
    if !failures.is_empty() {
        line(String::new());
        line("First failure of each phase that had one:".into());
        line(String::new());
        for failure in failures {
            line(format!("- `{failure}`"));
        }
    }
    line(String::new());
    line("| target | measured | met |".into());
    line("|---|---|---|".into());
    for t in targets(results) {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        line(format!("| {} | {} | {met} |", t.what, t.measured));
    }
    out
}

/// Replaces the text between the result markers of `path` with `section`.
pub fn update_doc(path: &Path, section: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        anyhow::bail!(
            "{} has no `{START}` … `{END}` markers to put the results between",
            path.display()
        );
    };
    let updated = format!("{}{START}\n{section}{}", &text[..start], &text[end..]);
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}
