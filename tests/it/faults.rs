//! dragnet under faults: fault proxies in front of the GitHub emulator and the registry answer a
//! seeded quarter of requests with 500/502/503, 429/403 with `retry-after`, resets, stalls and
//! truncated bodies; and a Trivy that crashes, hangs or prints garbage for chosen images.
//! Every healthy image must still be scanned with exactly its findings, or be named as failed
//! with a cause that names the fault; retries stay bounded and the run ends in time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use dragnet::report::{Failure, ImageStatus, Report};
use dragnet_sandbox::faults::{FaultPlan, FaultProxy, ProxiedRequest};
use dragnet_sandbox::sandbox::RegistryModeChoice;

use crate::support::*;

/// The seed of the fault schedule: the same faults hit the same requests on every run.
/// `DRAGNET_FAULT_SEED` overrides it, to explore other schedules by hand.
const SEED: u64 = 20_26;
/// The share of requests that get a fault.
const RATE: f64 = 0.25;
/// dragnet's per-read HTTP timeout in these tests, shorter than the proxy's stalls.
const READ_TIMEOUT: &str = "2s";
/// How long a stall holds a connection: longer than dragnet's read timeout.
const STALL: Duration = Duration::from_secs(4);
/// The bound docs/reliability.md states for this sandbox run under faults.
const RUN_BOUND: Duration = Duration::from_secs(240);
/// dragnet's tries per request: the first and four retries (`RetryPolicy::default`).
const MAX_TRIES: usize = 5;

/// Words that name an injected fault in a cause, as dragnet or Trivy words them.
const FAULT_WORDS: &[&str] = &[
    "500",
    "502",
    "503",
    "429",
    "403",
    "internal server error",
    "bad gateway",
    "service unavailable",
    "too many requests",
    "rate limit",
    "reset",
    "eof",
    "cut short",
    "timed out",
    "timeout",
    "deadline",
    "connection",
    "broken pipe",
    "closed",
];

fn names_a_fault(cause: &str) -> bool {
    let cause = cause.to_lowercase();
    FAULT_WORDS.iter().any(|word| cause.contains(word))
}

/// The version digest (the index's, for a multi-platform image) each image digest belongs to.
fn version_of(world: &World) -> BTreeMap<String, String> {
    world
        .sandbox
        .pushed()
        .iter()
        .flat_map(|v| {
            v.platforms
                .iter()
                .map(|p| (p.digest.clone(), v.digest.clone()))
        })
        .collect()
}

/// Per image digest, the fixture's findings as rows (package, tag, arch, CVE, pkg, version).
fn expected_by_digest(world: &World, severities: &[&str]) -> BTreeMap<String, BTreeSet<Row>> {
    let expected = expected_rows(severities);
    let mut by_digest: BTreeMap<String, BTreeSet<Row>> = BTreeMap::new();
    for version in world.sandbox.pushed() {
        if !matches_pattern(&version.package) || version.tags.is_empty() {
            continue;
        }
        for platform in &version.platforms {
            let rows = expected
                .iter()
                .filter(|row| {
                    row.0 == version.package
                        && version.tags.contains(&row.1)
                        && row.2 == platform.platform.architecture
                })
                .cloned();
            by_digest
                .entry(platform.digest.clone())
                .or_default()
                .extend(rows);
        }
    }
    by_digest
}

/// The rows the report holds for one image.
fn rows_of(report: &Report, digest: &str) -> BTreeSet<Row> {
    let mut only = report.clone();
    only.images.retain(|image| image.digest == digest);
    reported_rows(&only)
}

/// dragnet's own requests through a proxy (not Trivy's), grouped by method and target.
fn dragnet_tries(requests: &[ProxiedRequest]) -> BTreeMap<String, Vec<bool>> {
    let mut tries: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for request in requests
        .iter()
        .filter(|r| r.user_agent.starts_with("dragnet/"))
    {
        tries
            .entry(format!("{} {}", request.method, request.target))
            .or_default()
            .push(request.fault.is_some());
    }
    tries
}

#[tokio::test(flavor = "multi_thread")]
async fn under_a_quarter_of_faulty_requests_every_image_is_scanned_or_named() {
    let world = World::start(RegistryModeChoice::Open).await;
    let seed = std::env::var("DRAGNET_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let plan = FaultPlan::new(seed, RATE).stall(STALL);
    let api = FaultProxy::start(&world.sandbox.api_url(), plan.clone())
        .await
        .unwrap();
    let registry = FaultProxy::start(&world.sandbox.registry_host(), plan)
        .await
        .unwrap();
    let trivy = world.recording_trivy();

    let started = Instant::now();
    let output = run(world
        .scan_via(
            "out",
            &api.url(),
            &registry.host(),
            &trivy,
            &["--scan-timeout", "60s"],
        )
        .env("DRAGNET_HTTP_READ_TIMEOUT", READ_TIMEOUT))
    .await;
    let elapsed = started.elapsed();
    let from_trivy: Vec<ProxiedRequest> = registry
        .requests()
        .into_iter()
        .filter(|r| !r.user_agent.starts_with("dragnet/"))
        .collect();
    eprintln!(
        "faults (seed {seed}): {elapsed:?}; API {:?} of {} requests; registry {:?} of {} \
         requests, {} of them Trivy's ({} faulted)",
        api.injected(),
        api.requests().len(),
        registry.injected(),
        registry.requests().len(),
        from_trivy.len(),
        from_trivy.iter().filter(|r| r.fault.is_some()).count(),
    );

    // The faults really happened, at about the planned rate, of every kind.
    let all: Vec<ProxiedRequest> = [api.requests(), registry.requests()].concat();
    let faulted = all.iter().filter(|r| r.fault.is_some()).count();
    assert!(
        faulted * 100 >= all.len() * 15,
        "only {faulted} of {} requests faulted",
        all.len()
    );
    let mut kinds: BTreeSet<String> = api.injected().into_keys().collect();
    kinds.extend(registry.injected().into_keys());
    assert!(kinds.len() >= 6, "too few kinds of fault: {kinds:?}");

    // A partial failure (the broken image at least), within the documented bound.
    assert_eq!(output.status.code(), Some(3), "a partial failure");
    assert!(elapsed < RUN_BOUND, "the run took {elapsed:?}");
    let report = read_report(&world.path("out"));
    for failure in &report.failures {
        eprintln!("failed: {}", failure.cause());
    }

    // Every image: scanned with exactly its findings, or failed with a cause naming the fault.
    let expected = expected_by_digest(&world, &["CRITICAL", "HIGH"]);
    let broken = world
        .sandbox
        .digest_of("products/bfx/broken", "1.0")
        .unwrap();
    let versions = version_of(&world);
    let mut scanned = 0;
    for (digest, rows) in &expected {
        let image = report.images.iter().find(|i| &i.digest == digest);
        let unresolved = report.failures.iter().find(|f| match f {
            Failure::Resolve { version_digest, .. } => {
                version_digest == digest || Some(version_digest) == versions.get(digest)
            }
            _ => false,
        });
        match (image, unresolved) {
            (Some(image), _) if image.status == ImageStatus::Scanned => {
                assert_ne!(digest, &broken, "the broken image cannot scan");
                assert_eq!(&rows_of(&report, digest), rows, "{}", image.image);
                scanned += 1;
            }
            (Some(image), _) => {
                let cause = image.cause.clone().unwrap_or_default();
                if digest == &broken {
                    assert!(cause.to_lowercase().contains("blob"), "{cause}");
                } else {
                    assert!(names_a_fault(&cause), "{}: {cause}", image.image);
                }
            }
            (None, Some(failure)) => {
                assert!(names_a_fault(failure.cause()), "{}", failure.cause());
            }
            (None, None) => panic!("{digest} is neither scanned nor named: {report:#?}"),
        }
    }
    assert!(
        scanned * 2 >= expected.len(),
        "most images must survive a quarter of faulty requests: {scanned} of {}",
        expected.len()
    );

    // Retries are bounded: at most MAX_TRIES tries per answer dragnet got, never more than
    // MAX_TRIES faults in a row for one request.
    for (key, tries) in dragnet_tries(&all) {
        let answers = tries.iter().filter(|faulted| !**faulted).count();
        assert!(
            tries.len() <= MAX_TRIES * answers.max(1),
            "{key}: {} tries for {answers} answers",
            tries.len()
        );
        let longest = tries
            .split(|faulted| !*faulted)
            .map(<[bool]>::len)
            .max()
            .unwrap_or(0);
        assert!(longest <= MAX_TRIES, "{key}: {longest} faults in a row");
    }

    // A scan is tried at most three times (two retries of a transient failure).
    let mut scans: BTreeMap<String, usize> = BTreeMap::new();
    for call in world.trivy_calls() {
        if call.starts_with("image ") && !call.contains("--download-db-only") {
            let digest = call.rsplit('@').next().unwrap_or_default().to_string();
            *scans.entry(digest).or_default() += 1;
        }
    }
    eprintln!(
        "trivy runs per image: {:?}",
        scans.values().collect::<Vec<_>>()
    );
    assert!(scans.values().all(|runs| *runs <= 3), "{scans:?}");

    // No image failed for a reason of dragnet's own making (concurrent Trivy processes once
    // failed each other on Trivy's cache lock while the registry was slow).
    for failure in &report.failures {
        assert!(
            !failure.cause().contains("in use by another process"),
            "{}",
            failure.cause()
        );
    }

    // Each failure is named in the summary too.
    let summary = std::fs::read_to_string(world.path("out/summary.md")).unwrap();
    assert!(summary.contains("products/bfx/broken"), "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trivy_that_crashes_hangs_or_prints_garbage_fails_only_those_images() {
    let world = World::start(RegistryModeChoice::Open).await;
    let samtools = world
        .sandbox
        .digest_of("products/bfx/samtools", "1.17")
        .unwrap();
    let bwa = world
        .sandbox
        .digest_of("products/bfx/bwa", "0.7.17")
        .unwrap();
    let clean = world
        .sandbox
        .digest_of("products/bfx/clean", "1.0")
        .unwrap();
    let trivy = world.misbehaving_trivy(
        "bad-trivy",
        &[
            (&samtools, Misbehaviour::Crash),
            (&bwa, Misbehaviour::Hang),
            (&clean, Misbehaviour::Garbage),
        ],
    );

    let started = Instant::now();
    let output = run(&mut world.scan_via(
        "out",
        &world.sandbox.api_url(),
        &world.sandbox.registry_host(),
        &trivy,
        &["--scan-timeout", "3s"],
    ))
    .await;
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(3));
    assert!(
        elapsed < Duration::from_secs(90),
        "the hang was not cut short: {elapsed:?}"
    );
    let report = read_report(&world.path("out"));

    let cause_of = |digest: &str| -> String {
        let image = report.images.iter().find(|i| i.digest == digest).unwrap();
        assert_eq!(image.status, ImageStatus::Failed, "{}", image.image);
        image.cause.clone().unwrap_or_default().to_lowercase()
    };
    let crash = cause_of(&samtools);
    assert!(
        crash.contains("crashed") && crash.contains("signal"),
        "{crash}"
    );
    let hang = cause_of(&bwa);
    assert!(
        hang.contains("did not finish") && hang.contains("killed"),
        "{hang}"
    );
    let garbage = cause_of(&clean);
    assert!(garbage.contains("not json"), "{garbage}");

    // Every other image was scanned with exactly its findings (the broken one aside).
    let broken = world
        .sandbox
        .digest_of("products/bfx/broken", "1.0")
        .unwrap();
    let expected = expected_by_digest(&world, &["CRITICAL", "HIGH"]);
    for (digest, rows) in &expected {
        if [&samtools, &bwa, &clean, &broken].contains(&digest) {
            continue;
        }
        let image = report.images.iter().find(|i| &i.digest == digest).unwrap();
        assert_eq!(image.status, ImageStatus::Scanned, "{:?}", image.cause);
        assert_eq!(&rows_of(&report, digest), rows, "{}", image.image);
    }

    // The hung Trivy was killed with its whole process group (its `sleep 600` too).
    assert_eq!(world.surviving_hung_trivies(), Vec::<i32>::new());
}
