//! The discovery benchmark: an organization of 2,000 packages with 50 versions each in the
//! GitHub API emulator, and the real `dragnet discover` run against it twice (cold, then with
//! its ETag cache). Reports the API calls the emulator counted, wall time and dragnet's peak
//! RSS, the figures `docs/discovery.md` quotes.
//!
//! ```text
//! cargo run --release -p dragnet-sandbox --bin discover_bench -- \
//!     --dragnet target/release/dragnet
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use dragnet_sandbox::github::{Emulator, TokenKind};
use dragnet_sandbox::scale::{self, Measured, MeasuredCommand, OrgShape};

/// Measure `dragnet discover` over a large emulated organization.
#[derive(Debug, Parser)]
struct Args {
    /// The dragnet binary to measure (build it with --release first).
    #[arg(long, default_value = "target/release/dragnet")]
    dragnet: PathBuf,

    /// How many packages the organization has.
    #[arg(long, default_value_t = OrgShape::LARGE.packages)]
    packages: usize,

    /// How many versions each package has.
    #[arg(long, default_value_t = OrgShape::LARGE.versions)]
    versions: usize,
}

/// What one run cost, as the emulator and the kernel counted it.
struct Figures {
    measured: Measured,
    calls: usize,
    counted: usize,
    not_modified: usize,
    lists: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let shape = OrgShape {
        packages: args.packages,
        versions: args.versions,
    };
    anyhow::ensure!(
        args.dragnet.is_file(),
        "{} does not exist: build it with `cargo build --release`",
        args.dragnet.display()
    );

    let emulator = Emulator::start().await?;
    let started = Instant::now();
    scale::populate(&emulator, "big-org", shape);
    let token = "ghp_benchmarkbenchmarkbenchmarkbenchmark";
    emulator.add_token(token, TokenKind::Pat);
    println!(
        "organization: {} packages x {} versions = {} versions (built in {:.1?})",
        shape.packages,
        shape.versions,
        shape.total_versions(),
        started.elapsed()
    );
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into())
    );

    let dir = tempfile::tempdir()?;
    let mut rows = 0;
    for run in ["cold", "rerun"] {
        let figures = measure(&emulator, &args.dragnet, token, dir.path(), run).await?;
        if run == "cold" {
            let out = std::fs::File::open(dir.path().join("cold.json"))?;
            let parsed: Vec<serde_json::Value> =
                serde_json::from_reader(std::io::BufReader::new(out))?;
            rows = parsed.len();
        }
        println!(
            "{run:>5}: {:.2}s wall, peak RSS {:.1} MiB, {} API calls ({} list pages, {} counted \
             against the rate limit, {} answered 304)",
            figures.measured.elapsed.as_secs_f64(),
            figures.measured.max_rss as f64 / (1024.0 * 1024.0),
            figures.calls,
            figures.lists,
            figures.counted,
            figures.not_modified,
        );
    }
    println!(
        "rows printed: {rows}; minimum list calls for this shape: {}",
        shape.minimum_list_calls()
    );
    Ok(())
}

/// Runs `dragnet discover` once and reads the emulator's request log for what it cost.
async fn measure(
    emulator: &Emulator,
    dragnet: &std::path::Path,
    token: &str,
    dir: &std::path::Path,
    run: &str,
) -> anyhow::Result<Figures> {
    let before = emulator.requests().len();
    let command = MeasuredCommand {
        program: dragnet.to_path_buf(),
        args: ["discover", "--owner", "big-org", "--format", "json"]
            .map(String::from)
            .to_vec(),
        envs: vec![
            ("GITHUB_API_URL".into(), emulator.url()),
            ("GITHUB_TOKEN".into(), token.into()),
            (
                "DRAGNET_CACHE_DIR".into(),
                dir.join("cache").display().to_string(),
            ),
        ],
        stdout: std::fs::File::create(dir.join(format!("{run}.json")))?,
        stderr: std::fs::File::create(dir.join(format!("{run}.log")))?,
    };
    let measured = tokio::task::spawn_blocking(move || scale::run_measured(command))
        .await
        .context("the measuring thread panicked")??;
    if measured.code != Some(0) {
        let log = std::fs::read_to_string(dir.join(format!("{run}.log"))).unwrap_or_default();
        anyhow::bail!("dragnet discover failed ({:?}):\n{log}", measured.code);
    }

    let requests = emulator.requests();
    let requests = &requests[before..];
    Ok(Figures {
        measured,
        calls: requests.len(),
        // `GET /rate_limit` and 304 answers cost nothing, as on GitHub.
        counted: requests
            .iter()
            .filter(|r| r.path != "/rate_limit" && r.status != 304)
            .count(),
        not_modified: requests.iter().filter(|r| r.status == 304).count(),
        lists: requests
            .iter()
            .filter(|r| r.path == "/orgs/big-org/packages" || r.path.ends_with("/versions"))
            .count(),
    })
}
