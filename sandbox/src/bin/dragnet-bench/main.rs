//! `dragnet-bench`: measures dragnet against the hand-made ways of scanning an organization, in
//! one run on one machine, over a synthetic organization in the sandbox.
//!
//! Phases: (a) a `trivy image` per tag with a fresh cache each, as a matrix of trivy-action jobs
//! runs; (b) a `trivy image` per tag, one after another, sharing one cache; (b2) a `trivy image`
//! per unique digest, one per core, sharing only the DB; (c) dragnet's first
//! run; (d) its rerun with nothing changed; (e) its run after one new tag; (f) `dragnet discover`
//! and `dragnet plan` over 10,000 package versions, for memory. `bench/run` builds and runs it;
//! see docs/benchmarks.md.

mod measure;
mod report;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde::Serialize;

use dragnet_sandbox::synthetic::scale::{SCALE_PATTERN, ScaleOrg};
use dragnet_sandbox::synthetic::{OWNER, OrgSpec, PATTERN, REGISTRY_USER, SyntheticOrg};
use measure::{LogMark, OwnUsage, Stopwatch, Traffic, run_measured, traffic};

/// Measure dragnet against per-tag Trivy runs over a synthetic organization.
#[derive(Debug, Parser)]
struct Args {
    /// The dragnet binary to measure (a release build).
    #[arg(long)]
    dragnet: PathBuf,

    /// The trivy binary (the real executable, not a wrapper script).
    #[arg(long)]
    trivy: PathBuf,

    /// Where registries, caches and outputs go; emptied first.
    #[arg(long)]
    work_dir: PathBuf,

    /// Where the padded Trivy DB is built and cached.
    #[arg(long)]
    cache_dir: PathBuf,

    /// A 3-package organization with small images, for developing the benchmark.
    #[arg(long)]
    tiny: bool,

    /// Generated advisories added to the fixture DB (170,000 make it 54 MB gzipped).
    #[arg(long, default_value_t = 170_000)]
    db_padding: u32,

    /// How many matrix jobs run at once in (a); defaults to the number of cores.
    #[arg(long)]
    matrix_jobs: Option<usize>,

    /// Run (a) on every Nth tag only and extrapolate; 1 runs every tag.
    #[arg(long, default_value_t = 1)]
    matrix_sample: usize,

    /// Packages and versions of the memory phase (f).
    #[arg(long, default_value_t = 200)]
    scale_packages: usize,
    #[arg(long, default_value_t = 50)]
    scale_versions: usize,

    /// Skip phases, by id (e.g. `--skip a,b2,f`).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,

    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Replace the results section of this Markdown file (docs/benchmarks.md).
    #[arg(long)]
    doc: Option<PathBuf>,
}

/// One phase's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// `a` ... `f2`.
    pub id: String,
    /// What ran.
    pub name: String,
    /// Wall seconds.
    pub wall_seconds: f64,
    /// CPU seconds of every process the phase ran (Trivy, dragnet), user plus system.
    pub cpu_seconds: f64,
    /// dragnet's own usage, for dragnet phases.
    pub dragnet: Option<OwnUsage>,
    /// What the image registry served.
    pub registry: Traffic,
    /// What the DB registry served.
    pub db_registry: Traffic,
    /// GitHub REST API requests.
    pub api_calls: u64,
    /// Registry token requests (the emulator's `/token`).
    pub token_requests: u64,
    /// Trivy scans run (processes for a and b; digests Trivy fetched for dragnet).
    pub scans: u64,
    /// Scans or runs that failed.
    pub failures: u64,
    /// The first failure's message, if any.
    pub first_failure: Option<String>,
    /// For a sampled (a): the factor the measured figures were multiplied by.
    pub extrapolated_from: Option<f64>,
    /// The unique layer, config and manifest bytes of the organization when the phase ran.
    pub unique_bytes: u64,
    /// Findings the phase's scans reported, where it counts them (h).
    pub findings: u64,
    /// A remark shown under the table.
    pub note: Option<String>,
}

/// Everything one benchmark run found.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub machine: report::Machine,
    pub org: OrgFacts,
    pub phases: Vec<Phase>,
}

/// The organization measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OrgFacts {
    pub packages: usize,
    pub tags: usize,
    pub versions: usize,
    pub platform_images: usize,
    pub unique_layers: usize,
    pub unique_layer_bytes: u64,
    pub unique_bytes: u64,
    pub largest_image_bytes: u64,
    pub db_gzip_bytes: u64,
    pub db_padding: u32,
    pub scale_versions: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    for tool in [&args.dragnet, &args.trivy] {
        if !tool.is_file() {
            bail!(
                "{} does not exist: build it or pass its path",
                tool.display()
            );
        }
    }
    if args.work_dir.exists() {
        std::fs::remove_dir_all(&args.work_dir)
            .with_context(|| format!("emptying {}", args.work_dir.display()))?;
    }
    std::fs::create_dir_all(&args.work_dir)?;
    let work = args.work_dir.canonicalize()?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let machine = report::Machine::describe(&args.trivy);
    eprintln!(
        "machine: {} × {}, load {}",
        machine.cores, machine.cpu, machine.load_before
    );

    // The organization.
    let spec = if args.tiny {
        OrgSpec::tiny()
    } else {
        OrgSpec::full()
    };
    let started = std::time::Instant::now();
    let mut org = SyntheticOrg::start(spec.clone(), &work, &args.cache_dir, args.db_padding)
        .await
        .context("building the synthetic organization")?;
    let mut facts = org_facts(&org, &spec, args.db_padding);
    eprintln!(
        "organization: {} packages, {} tags, {} unique layers ({:.0} MB), DB {:.1} MB gzipped; \
         pushed in {:.0}s",
        facts.packages,
        facts.tags,
        facts.unique_layers,
        facts.unique_layer_bytes as f64 / 1e6,
        facts.db_gzip_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let env = Env {
        work: work.clone(),
        dragnet: args.dragnet.clone(),
        trivy: args.trivy.clone(),
        api_url: org.emulator.url(),
        token: org.token().to_owned(),
        registry: org.registry.host(),
        db_repository: org.db_repository(),
    };
    let tags: Vec<String> = org
        .versions
        .iter()
        .flat_map(|v| {
            v.tags
                .iter()
                .map(|t| format!("{}/{}:{t}", env.registry, v.repository))
        })
        .collect();
    let runs = |id: &str| !args.skip.iter().any(|s| s == id);
    let mut phases = Vec::new();

    // (a) and (b): Trivy per tag.
    if runs("a") {
        let jobs = args.matrix_jobs.unwrap_or(cores);
        let sample: Vec<String> = tags
            .iter()
            .step_by(args.matrix_sample.max(1))
            .cloned()
            .collect();
        let name = format!("(a) trivy-action matrix: {jobs} jobs at a time, fresh cache per tag");
        let mut phase = measure_phase(&org, "a", &name, || {
            trivy_each(&env, &sample, jobs, TrivyCache::FreshPerTag)
        })
        .await?;
        if sample.len() < tags.len() {
            extrapolate(&mut phase, tags.len() as f64 / sample.len() as f64);
        }
        phases.push(report_phase(phase));
    }
    if runs("b") {
        let name = "(b) careful script: trivy image per tag, one shared cache";
        let phase = measure_phase(&org, "b", name, || {
            trivy_each(&env, &tags, 1, TrivyCache::Shared)
        })
        .await?;
        phases.push(report_phase(phase));
    }

    // (b2): the script a careful engineer writes next, deduplicating digests and running one
    // Trivy per core. Trivy's on-disk layer cache is a BoltDB file that one process locks for
    // its whole run, so parallel processes share only the (read-only) DB and keep layers in
    // memory.
    if runs("b2") {
        let digests: Vec<String> = org
            .versions
            .iter()
            .flat_map(|v| {
                v.platforms
                    .iter()
                    .map(|d| format!("{}/{}@{d}", env.registry, v.repository))
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let name = format!(
            "(b2) deduplicating script: trivy image per unique digest, {cores} at a time, one DB"
        );
        let phase = measure_phase(&org, "b2", &name, || {
            trivy_each(&env, &digests, cores, TrivyCache::SharedDbOnly)
        })
        .await?;
        phases.push(report_phase(phase));
    }

    // (c), (d), (e): dragnet.
    let cache = work.join("dragnet-cache");
    let dragnet_scan = |id: &str| dragnet_scan(&env, id, &env.trivy, &cache);
    if runs("c") {
        let name = "(c) dragnet, first run";
        let phase = measure_phase(&org, "c", name, || dragnet_scan("c")).await?;
        phases.push(report_phase(phase));
    }
    if runs("d") {
        let name = "(d) dragnet, rerun, nothing changed";
        let phase = measure_phase(&org, "d", name, || dragnet_scan("d")).await?;
        phases.push(report_phase(phase));
    }
    if runs("e") {
        let new = org.push_new_version(0, "9.9.9").await?;
        eprintln!("pushed {}:9.9.9 as {}", new.package, new.digest);
        facts.versions += 1;
        let name = "(e) dragnet after one new tag";
        let phase = measure_phase(&org, "e", name, || dragnet_scan("e")).await?;
        phases.push(report_phase(phase));
    }

    // (g) and (h): a newer DB; rescanning every image, or the SBOMs stored from the last scan.
    if runs("g") {
        let updated_at = org.push_newer_db().await?;
        eprintln!("pushed a newer DB (UpdatedAt {updated_at})");
        // As when the DB's NextUpdate has passed: Trivy then downloads the newer one.
        let _ = std::fs::remove_file(cache.join("trivy/db/metadata.json"));
        let name = "(g) dragnet after a DB update: every image rescanned";
        let phase = measure_phase(&org, "g", name, || dragnet_scan("g")).await?;
        phases.push(report_phase(phase));
    }
    if runs("g") && runs("h") {
        let trivy_cache = cache.join("trivy");
        let (images, findings) = scanned_images(&work.join("dragnet-out-g"))?;
        eprintln!(
            "writing the SBOMs of {} images (not timed) ...",
            images.len()
        );
        let sboms = tokio::task::block_in_place(|| write_sboms(&env, &trivy_cache, &images))?;
        let name =
            format!("(h) the same rescan from stored SBOMs (`trivy sbom`), {cores} at a time");
        let mut phase = measure_phase(&org, "h", &name, || {
            sbom_scans(&env, &trivy_cache, &sboms, cores)
        })
        .await?;
        phase.note = Some(format!(
            "{} CRITICAL/HIGH findings from the SBOMs, {findings} from the image rescan (g)",
            phase.findings
        ));
        phases.push(report_phase(phase));
    }
    drop(org);

    // (f): memory over 10,000 versions.
    if runs("f") {
        let started = std::time::Instant::now();
        let scale = ScaleOrg::start(args.scale_packages, args.scale_versions, &work).await?;
        facts.scale_versions = scale.versions;
        eprintln!(
            "scale organization: {} versions pushed in {:.0}s",
            scale.versions,
            started.elapsed().as_secs_f64()
        );
        let scale_env = Env {
            api_url: scale.emulator.url(),
            token: scale.token().to_owned(),
            registry: scale.registry.host(),
            ..env.clone()
        };
        for (id, command) in [("f1", "discover"), ("f2", "plan")] {
            let name = format!("(f) dragnet {command}, {} versions", scale.versions);
            let phase =
                measure_scale_phase(&scale, id, &name, || dragnet_wide(&scale_env, command))
                    .await?;
            phases.push(report_phase(phase));
        }
    }

    let mut machine = machine;
    machine.load_after = report::load_average();
    let results = Results {
        machine,
        org: facts,
        phases,
    };
    let markdown = report::markdown(&results);
    println!("{markdown}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)? + "\n")?;
    }
    if let Some(path) = &args.doc {
        report::update_doc(path, &markdown)?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}

/// What every phase's commands need.
#[derive(Debug, Clone)]
struct Env {
    work: PathBuf,
    dragnet: PathBuf,
    trivy: PathBuf,
    api_url: String,
    token: String,
    registry: String,
    db_repository: String,
}

impl Env {
    fn log(&self, id: &str) -> PathBuf {
        self.work.join(format!("phase-{id}.log"))
    }
}

/// What a phase's commands report back: scans run, failures, own usage.
#[derive(Debug, Default)]
struct Ran {
    scans: u64,
    failures: u64,
    first_failure: Option<String>,
    dragnet: Option<OwnUsage>,
    /// Findings counted in the scans' output, where the phase reads it.
    found: u64,
}

/// Runs `work` on a blocking thread, measuring wall, CPU and what the services saw.
async fn measure_phase(
    org: &SyntheticOrg,
    id: &str,
    name: &str,
    work: impl FnOnce() -> anyhow::Result<Ran> + Send,
) -> anyhow::Result<Phase> {
    eprintln!("{name} ...");
    let registry = LogMark::now(&org.registry.access_log_path());
    let db_registry = LogMark::now(&org.db_registry.access_log_path());
    let requests = org.emulator.requests().len();
    let stopwatch = Stopwatch::start();
    let ran = tokio::task::block_in_place(work)?;
    let (wall, cpu) = stopwatch.stop();
    // The registry logs a request as it finishes it: every child has exited by now.
    let registry = traffic(&registry.lines_since()?, &org.bytes.layers);
    let db_registry = traffic(&db_registry.lines_since()?, &Default::default());
    let calls = &org.emulator.requests()[requests..];
    let token_requests = calls.iter().filter(|r| r.path == "/token").count() as u64;
    let scans = if ran.dragnet.is_some() {
        registry.trivy_digests
    } else {
        ran.scans
    };
    Ok(Phase {
        id: id.to_owned(),
        name: name.to_owned(),
        wall_seconds: wall,
        cpu_seconds: cpu,
        dragnet: ran.dragnet,
        registry,
        db_registry,
        api_calls: calls.len() as u64 - token_requests,
        token_requests,
        scans,
        failures: ran.failures,
        first_failure: ran.first_failure,
        extrapolated_from: None,
        unique_bytes: org.bytes.total(),
        findings: ran.found,
        note: None,
    })
}

/// [`measure_phase`] for the wide organization (no DB registry).
async fn measure_scale_phase(
    scale: &ScaleOrg,
    id: &str,
    name: &str,
    work: impl FnOnce() -> anyhow::Result<Ran> + Send,
) -> anyhow::Result<Phase> {
    eprintln!("{name} ...");
    let registry = LogMark::now(&scale.registry.access_log_path());
    let requests = scale.emulator.requests().len();
    let stopwatch = Stopwatch::start();
    let ran = tokio::task::block_in_place(work)?;
    let (wall, cpu) = stopwatch.stop();
    let registry = traffic(&registry.lines_since()?, &Default::default());
    let calls = &scale.emulator.requests()[requests..];
    let token_requests = calls.iter().filter(|r| r.path == "/token").count() as u64;
    Ok(Phase {
        id: id.to_owned(),
        name: name.to_owned(),
        wall_seconds: wall,
        cpu_seconds: cpu,
        dragnet: ran.dragnet,
        registry,
        api_calls: calls.len() as u64 - token_requests,
        token_requests,
        failures: ran.failures,
        first_failure: ran.first_failure,
        ..Phase::default()
    })
}

fn report_phase(phase: Phase) -> Phase {
    eprintln!(
        "  {:.1}s wall, {:.1}s CPU, {:.1} MB served, {} scans, {} failures{}",
        phase.wall_seconds,
        phase.cpu_seconds,
        phase.registry.bytes as f64 / 1e6,
        phase.scans,
        phase.failures,
        phase
            .first_failure
            .as_deref()
            .map(|f| format!(" (first: {f})"))
            .unwrap_or_default()
    );
    phase
}

/// Scales a sampled phase's totals up to every tag.
fn extrapolate(phase: &mut Phase, factor: f64) {
    let scale = |value: u64| (value as f64 * factor).round() as u64;
    phase.wall_seconds *= factor;
    phase.cpu_seconds *= factor;
    for traffic in [&mut phase.registry, &mut phase.db_registry] {
        traffic.requests = scale(traffic.requests);
        traffic.bytes = scale(traffic.bytes);
        traffic.layer_bytes = scale(traffic.layer_bytes);
        traffic.layer_fetches = scale(traffic.layer_fetches);
        traffic.other_blob_bytes = scale(traffic.other_blob_bytes);
        traffic.manifest_bytes = scale(traffic.manifest_bytes);
        traffic.manifest_fetches = scale(traffic.manifest_fetches);
    }
    phase.api_calls = scale(phase.api_calls);
    phase.token_requests = scale(phase.token_requests);
    phase.scans = scale(phase.scans);
    phase.extrapolated_from = Some(factor);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrivyCache {
    /// A new cache directory for every tag, as every matrix job starts with.
    FreshPerTag,
    /// One cache directory for all.
    Shared,
    /// One DB, downloaded first; every scan keeps its layers in memory (`--cache-backend
    /// memory`), since parallel processes cannot share Trivy's on-disk layer cache.
    SharedDbOnly,
}

/// `trivy image` for every reference (a tag, or a digest for (b2)), `jobs` at a time.
fn trivy_each(env: &Env, refs: &[String], jobs: usize, cache: TrivyCache) -> anyhow::Result<Ran> {
    let next = AtomicUsize::new(0);
    let ran = Mutex::new(Ran::default());
    let log = env.log(match cache {
        TrivyCache::FreshPerTag => "a",
        TrivyCache::Shared => "b",
        TrivyCache::SharedDbOnly => "b2",
    });
    let shared_db = env.work.join("dedup-script-cache");
    if cache == TrivyCache::SharedDbOnly {
        // No image: the flag in the image's place makes this the DB download alone.
        let mut download = trivy_command(env, &shared_db, "--download-db-only");
        let output = download.output()?;
        if !output.status.success() {
            bail!("downloading the DB failed: {}", last_line(&output.stderr));
        }
    }
    std::thread::scope(|scope| {
        for job in 0..jobs.max(1) {
            let (next, ran, log, shared_db) = (&next, &ran, &log, &shared_db);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(reference) = refs.get(index) else {
                        break;
                    };
                    let cache_dir = match cache {
                        TrivyCache::FreshPerTag => env.work.join(format!("matrix-cache-{job}")),
                        TrivyCache::Shared => env.work.join("script-cache"),
                        TrivyCache::SharedDbOnly => shared_db.clone(),
                    };
                    if cache == TrivyCache::FreshPerTag {
                        let _ = std::fs::remove_dir_all(&cache_dir);
                    }
                    let mut command = trivy_command(env, &cache_dir, reference);
                    if cache == TrivyCache::SharedDbOnly {
                        command.args(["--skip-db-update", "--cache-backend=memory"]);
                    }
                    let output = command.output();
                    let mut ran = ran.lock().unwrap_or_else(|p| p.into_inner());
                    ran.scans += 1;
                    let failure = match output {
                        Ok(output) if output.status.success() => None,
                        Ok(output) => Some(format!(
                            "{reference}: {}: {}",
                            output.status,
                            last_line(&output.stderr)
                        )),
                        Err(error) => Some(format!("{reference}: {error}")),
                    };
                    if let Some(failure) = failure {
                        let _ = append(log, &failure);
                        ran.failures += 1;
                        ran.first_failure.get_or_insert(failure);
                    }
                }
            });
        }
    });
    if cache == TrivyCache::FreshPerTag {
        for job in 0..jobs.max(1) {
            let _ = std::fs::remove_dir_all(env.work.join(format!("matrix-cache-{job}")));
        }
    }
    Ok(ran.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// The command a workflow step runs for one tag: the flags that matter set as dragnet sets
/// them (vulnerabilities only, CRITICAL and HIGH, JSON, no network beyond the registries).
fn trivy_command(env: &Env, cache_dir: &Path, reference: &str) -> Command {
    let mut command = Command::new(&env.trivy);
    command
        .args([
            "image",
            "--format=json",
            "--quiet",
            "--no-progress",
            "--scanners=vuln",
            "--image-src=remote",
            "--severity=CRITICAL,HIGH",
            "--skip-version-check",
            "--disable-telemetry",
            "--timeout=10m",
        ])
        .arg(format!("--cache-dir={}", cache_dir.display()))
        .arg(format!("--db-repository={}", env.db_repository))
        .arg(reference);
    clean_env(&mut command);
    command
        .env("TRIVY_USERNAME", REGISTRY_USER)
        .env("TRIVY_PASSWORD", &env.token);
    command
}

/// `dragnet scan` over the synthetic organization with `trivy` and the cache `cache`, which
/// (c), (d) and (e) share.
fn dragnet_scan(env: &Env, id: &str, trivy: &Path, cache: &Path) -> anyhow::Result<Ran> {
    let out = env.work.join(format!("dragnet-out-{id}"));
    let mut command = dragnet_command(env);
    command
        .args(["scan", "--owner", OWNER, "--pattern", PATTERN, "--registry"])
        .arg(&env.registry)
        .arg("--db-repository")
        .arg(&env.db_repository)
        .arg("--output-dir")
        .arg(&out)
        .arg("--cache-dir")
        .arg(cache)
        .arg("--trivy")
        .arg(trivy);
    let (status, usage) = run_measured(command, &env.log(id))?;
    let mut ran = Ran {
        dragnet: Some(usage),
        ..Ran::default()
    };
    if !status.success() {
        ran.failures += 1;
        ran.first_failure = Some(format!("dragnet exited with {status}"));
    }
    let results = std::fs::read_to_string(out.join("results.json"))
        .with_context(|| format!("reading {}/results.json", out.display()))?;
    let report: serde_json::Value = serde_json::from_str(&results)?;
    let failed = report["totals"]["images_failed"].as_u64().unwrap_or(0);
    if failed > 0 {
        ran.failures = failed;
        ran.first_failure = report["failures"][0]["cause"]
            .as_str()
            .or_else(|| {
                report["images"]
                    .as_array()
                    .and_then(|images| images.iter().find_map(|i| i["cause"].as_str()))
            })
            .map(str::to_owned)
            .or(ran.first_failure);
    }
    Ok(ran)
}

/// The images a dragnet run scanned (the references Trivy was given), and its findings.
fn scanned_images(out: &Path) -> anyhow::Result<(Vec<String>, u64)> {
    let path = out.join("results.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text)?;
    let images = report["images"].as_array().cloned().unwrap_or_default();
    let findings = images
        .iter()
        .map(|i| i["findings"].as_array().map_or(0, Vec::len) as u64)
        .sum();
    let refs = images
        .iter()
        .filter_map(|i| i["image"].as_str().map(str::to_owned))
        .collect();
    Ok((refs, findings))
}

/// Trivy's flags shared by the SBOM steps: the cached DB, no network but the registry.
const SBOM_FLAGS: [&str; 9] = [
    "--quiet",
    "--no-progress",
    "--skip-db-update",
    "--skip-java-db-update",
    "--config=",
    "--ignorefile=",
    "--skip-version-check",
    "--disable-telemetry",
    "--timeout=10m",
];

/// Writes each image's CycloneDX SBOM, one after another over dragnet's Trivy cache (whose
/// layers are all there): what a run would have stored beside each result.
fn write_sboms(env: &Env, trivy_cache: &Path, images: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let dir = env.work.join("sboms");
    std::fs::create_dir_all(&dir)?;
    let mut paths = Vec::new();
    for (n, image) in images.iter().enumerate() {
        let mut command = Command::new(&env.trivy);
        command
            .args([
                "image",
                "--format=cyclonedx",
                "--scanners=vuln",
                "--image-src=remote",
            ])
            .args(SBOM_FLAGS)
            .arg(format!("--cache-dir={}", trivy_cache.display()))
            .arg("--")
            .arg(image);
        clean_env(&mut command);
        command
            .env("TRIVY_USERNAME", REGISTRY_USER)
            .env("TRIVY_PASSWORD", &env.token);
        let output = command.output().context("running trivy for an SBOM")?;
        if !output.status.success() {
            bail!("the SBOM of {image} failed: {}", last_line(&output.stderr));
        }
        let path = dir.join(format!("{n:04}.cdx.json"));
        std::fs::write(&path, &output.stdout)?;
        paths.push(path);
    }
    Ok(paths)
}

/// `trivy sbom` over every stored SBOM, `jobs` at a time, each with an in-memory cache (an SBOM
/// has no layers to cache, and the on-disk cache would lock the others out).
fn sbom_scans(
    env: &Env,
    trivy_cache: &Path,
    sboms: &[PathBuf],
    jobs: usize,
) -> anyhow::Result<Ran> {
    let next = AtomicUsize::new(0);
    let ran = Mutex::new(Ran::default());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            let (next, ran) = (&next, &ran);
            scope.spawn(move || {
                while let Some(sbom) = sboms.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let mut command = Command::new(&env.trivy);
                    command
                        .args(["sbom", "--format=json", "--scanners=vuln"])
                        .args(["--severity=CRITICAL,HIGH", "--cache-backend=memory"])
                        .args(SBOM_FLAGS)
                        .arg(format!("--cache-dir={}", trivy_cache.display()))
                        .arg(sbom);
                    clean_env(&mut command);
                    let output = command.output();
                    let mut ran = ran.lock().unwrap_or_else(|p| p.into_inner());
                    ran.scans += 1;
                    match output {
                        Ok(output) if output.status.success() => {
                            ran.found += count_findings(&output.stdout);
                        }
                        Ok(output) => {
                            ran.failures += 1;
                            let failure =
                                format!("{}: {}", sbom.display(), last_line(&output.stderr));
                            ran.first_failure.get_or_insert(failure);
                        }
                        Err(error) => {
                            ran.failures += 1;
                            ran.first_failure.get_or_insert(error.to_string());
                        }
                    }
                }
            });
        }
    });
    Ok(ran.into_inner().unwrap_or_else(|p| p.into_inner()))
}

/// The vulnerabilities in a Trivy JSON report.
fn count_findings(json: &[u8]) -> u64 {
    let report: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
    report["Results"].as_array().map_or(0, |results| {
        results
            .iter()
            .map(|r| r["Vulnerabilities"].as_array().map_or(0, Vec::len))
            .sum::<usize>()
    }) as u64
}

/// `dragnet discover` or `dragnet plan` over the wide organization.
fn dragnet_wide(env: &Env, subcommand: &str) -> anyhow::Result<Ran> {
    let mut command = dragnet_command(env);
    command
        .args([subcommand, "--owner", OWNER, "--pattern", SCALE_PATTERN])
        .arg("--registry")
        .arg(&env.registry);
    match subcommand {
        "discover" => {
            command.args(["--format", "json"]);
        }
        _ => {
            command.arg("--output").arg(env.work.join("wide-plan.json"));
        }
    }
    let (status, usage) = run_measured(command, &env.log(subcommand))?;
    Ok(Ran {
        failures: u64::from(!status.success()),
        first_failure: (!status.success()).then(|| format!("dragnet exited with {status}")),
        dragnet: Some(usage),
        ..Ran::default()
    })
}

/// dragnet with the sandbox's GitHub and registry credentials, and nothing inherited that
/// would change what it does.
fn dragnet_command(env: &Env) -> Command {
    let mut command = Command::new(&env.dragnet);
    clean_env(&mut command);
    // `DRAGNET_BENCH_VERBOSE=1` logs dragnet's story (with timestamps) into each phase's log,
    // for profiling; the figures are measured without it.
    let verbose = std::env::var_os("DRAGNET_BENCH_VERBOSE").is_some_and(|v| v == "1");
    command
        .arg(if verbose { "-v" } else { "--quiet" })
        .env("GITHUB_API_URL", &env.api_url)
        .env("GITHUB_TOKEN", &env.token)
        .env("DRAGNET_REGISTRY_USERNAME", REGISTRY_USER)
        .env("DRAGNET_REGISTRY_PASSWORD", &env.token);
    command
}

fn clean_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if ["GITHUB_", "DRAGNET_", "TRIVY_", "RUST_LOG"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            command.env_remove(name.as_ref());
        }
    }
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}")
}

fn org_facts(org: &SyntheticOrg, spec: &OrgSpec, db_padding: u32) -> OrgFacts {
    let largest = org
        .versions
        .iter()
        .flat_map(|v| &v.platforms)
        .filter_map(|digest| org.bytes.images.get(digest).copied())
        .max()
        .unwrap_or(0);
    OrgFacts {
        packages: spec.packages,
        tags: org.versions.iter().map(|v| v.tags.len()).sum(),
        versions: org.versions.len(),
        platform_images: org.versions.iter().map(|v| v.platforms.len()).sum(),
        unique_layers: org.bytes.layers.len(),
        unique_layer_bytes: org.bytes.layers.values().sum(),
        unique_bytes: org.bytes.total(),
        largest_image_bytes: largest,
        db_gzip_bytes: org.db_layer_bytes,
        db_padding,
        scale_versions: 0,
    }
}
