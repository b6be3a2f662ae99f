//! Folds a plan and a scan run into a [`Report`].
//!
//! The plan says which tags lead to which image and the run says what each image holds; this
//! joins them by digest. Everything is sorted here (packages, versions, tags, refs, findings), so
//! that reports built from the same data are identical whatever order the scans finished in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::finding::Finding;
use crate::ignore::IgnoreList;
use crate::plan::{Plan, ScanTarget, TargetRef};
use crate::scan::{Outcome, ScanResult, ScanRun};

use super::{
    Failure, IgnoreEntry, IgnoreSummary, IgnoredFinding, ImageReport, ImageStatus, PackageReport,
    PackageStatus, Report, RunInfo, SCHEMA_VERSION, SeverityCounts, Totals, VersionImage,
    VersionReport, VersionStatus,
};

/// The cause given to a planned image that has no scan result at all.
const NO_RESULT_CAUSE: &str = "no scan result for this image: the scan was interrupted or its \
                               shard's results were not merged; rerun the scan";

impl Report {
    /// Builds the report from the plan and the scan run.
    ///
    /// A target without a result counts as failed. When the run holds several results for one
    /// digest (merged shards, a retry), a successful scan wins over a failure, and the later of
    /// two equal outcomes wins. Results for digests the plan does not know are ignored.
    pub fn build(plan: &Plan, run: &ScanRun) -> Report {
        Report::build_ignoring(plan, run, &IgnoreList::default())
    }

    /// Builds the report as [`Report::build`] does, with the findings `ignore` matches moved
    /// out of each image's findings (and counts) into its `ignored` list.
    pub fn build_ignoring(plan: &Plan, run: &ScanRun, ignore: &IgnoreList) -> Report {
        let results = results_by_digest(run);
        let mut images: Vec<ImageReport> = plan
            .targets
            .iter()
            .map(|target| {
                image_report(target, results.get(target.digest.as_str()).copied(), ignore)
            })
            .collect();
        images.sort_by(|a, b| a.digest.cmp(&b.digest));
        images.dedup_by(|later, earlier| later.digest == earlier.digest);

        let packages = package_reports(plan, &images);
        let failures = failures(plan, &images);
        let totals = totals(&packages, &images);
        let ignore = ignore_summary(ignore, &images);
        Report {
            schema_version: SCHEMA_VERSION,
            owner: plan.owner.clone(),
            registry: plan.registry.clone(),
            run: RunInfo {
                started_at: run.started_at.clone(),
                duration_ms: run.duration_ms,
                trivy_version: run.trivy_version.clone(),
                db_updated_at: run.db_updated_at.clone(),
                options: run.options.clone(),
            },
            totals,
            packages,
            images,
            failures,
            selection: plan.selection,
            ignore,
        }
    }
}

/// The result to trust for each digest.
fn results_by_digest(run: &ScanRun) -> HashMap<&str, &ScanResult> {
    let mut chosen: HashMap<&str, &ScanResult> = HashMap::new();
    for result in &run.results {
        let replace = match chosen.get(result.digest.as_str()) {
            None => true,
            Some(existing) => {
                !(is_scanned(existing) && matches!(result.outcome, Outcome::Failed { .. }))
            }
        };
        if replace {
            chosen.insert(result.digest.as_str(), result);
        }
    }
    chosen
}

fn is_scanned(result: &ScanResult) -> bool {
    matches!(result.outcome, Outcome::Scanned { .. })
}

/// What each ignore entry matched, counted once per scanned image.
fn ignore_summary(ignore: &IgnoreList, images: &[ImageReport]) -> IgnoreSummary {
    let entry = |rule: &crate::ignore::IgnoreRule| IgnoreEntry {
        id: rule.id.clone(),
        reason: rule.reason.clone(),
        matched: images
            .iter()
            .flat_map(|i| &i.ignored)
            .filter(|f| f.ignored_by == rule.reason)
            .count(),
    };
    IgnoreSummary {
        entries: ignore.rules().iter().map(entry).collect(),
        expired: ignore.expired().iter().map(entry).collect(),
    }
}

fn image_report(
    target: &ScanTarget,
    result: Option<&ScanResult>,
    ignore: &IgnoreList,
) -> ImageReport {
    let mut refs: Vec<TargetRef> = target
        .refs
        .iter()
        .map(|r| TargetRef {
            tags: sorted(&r.tags),
            ..r.clone()
        })
        .collect();
    refs.sort_by(|a, b| (&a.package, &a.version_digest).cmp(&(&b.package, &b.version_digest)));
    refs.dedup();

    let (status, os, findings, cause) = match result.map(|r| &r.outcome) {
        Some(Outcome::Scanned { os, findings }) => {
            (ImageStatus::Scanned, os.clone(), normalise(findings), None)
        }
        Some(Outcome::Failed { cause }) => {
            (ImageStatus::Failed, None, Vec::new(), Some(cause.clone()))
        }
        None => (
            ImageStatus::Failed,
            None,
            Vec::new(),
            Some(NO_RESULT_CAUSE.to_string()),
        ),
    };

    // Ignored findings leave the counts and the SARIF, and are kept with their reason.
    let (findings, ignored): (Vec<Finding>, Vec<IgnoredFinding>) = {
        let mut kept = Vec::with_capacity(findings.len());
        let mut ignored = Vec::new();
        for finding in findings {
            match ignore.matching(&finding) {
                Some(rule) => ignored.push(IgnoredFinding {
                    finding,
                    ignored_by: rule.reason.clone(),
                }),
                None => kept.push(finding),
            }
        }
        (kept, ignored)
    };
    ImageReport {
        digest: target.digest.clone(),
        image: target.image.clone(),
        platform: target.platform.clone(),
        size: target.size,
        refs,
        status,
        duration_ms: result.map(|r| r.duration_ms),
        os,
        counts: SeverityCounts::of(&findings),
        fixable: findings.iter().filter(|f| f.is_fixable()).count(),
        findings,
        ignored,
        cause,
    }
}

/// The identity of a finding within one image.
pub(crate) fn finding_key(finding: &Finding) -> (&str, &str, &str, &str) {
    (
        &finding.vulnerability_id,
        &finding.package_name,
        &finding.installed_version,
        finding.package_path.as_deref().unwrap_or(""),
    )
}

/// Sorts findings and drops repeats of one (id, package, version, path), keeping the most
/// severe rating, so that an image never counts one vulnerability of one package twice.
fn normalise(findings: &[Finding]) -> Vec<Finding> {
    let mut findings = findings.to_vec();
    findings.sort_by(|a, b| {
        finding_key(a)
            .cmp(&finding_key(b))
            .then(b.severity.cmp(&a.severity))
    });
    findings.dedup_by(|later, earlier| finding_key(later) == finding_key(earlier));
    findings
}

fn sorted(tags: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = tags.iter().collect();
    set.into_iter().cloned().collect()
}

#[derive(Default)]
struct PackageParts {
    repository: Option<String>,
    versions: BTreeMap<String, VersionParts>,
    causes: Vec<String>,
}

#[derive(Default)]
struct VersionParts {
    tags: BTreeSet<String>,
    digests: BTreeSet<String>,
    causes: Vec<String>,
}

fn package_reports(plan: &Plan, images: &[ImageReport]) -> Vec<PackageReport> {
    // Gather every package the plan names, then what leads to each image and what failed.
    let mut parts: BTreeMap<&str, PackageParts> = BTreeMap::new();
    for package in &plan.packages {
        let entry = parts.entry(package.name.as_str()).or_default();
        if entry.repository.is_none() {
            entry.repository.clone_from(&package.repository);
        }
    }
    for image in images {
        for reference in &image.refs {
            let version = parts
                .entry(reference.package.as_str())
                .or_default()
                .versions
                .entry(reference.version_digest.clone())
                .or_default();
            version.tags.extend(reference.tags.iter().cloned());
            version.digests.insert(image.digest.clone());
        }
    }
    for failure in &plan.unresolved {
        let package = parts.entry(failure.package.as_str()).or_default();
        // No version digest: discovery could not even list the package's versions.
        if failure.version_digest.is_empty() {
            if !package.causes.contains(&failure.cause) {
                package.causes.push(failure.cause.clone());
            }
            continue;
        }
        let version = package
            .versions
            .entry(failure.version_digest.clone())
            .or_default();
        version.tags.extend(failure.tags.iter().cloned());
        if !version.causes.contains(&failure.cause) {
            version.causes.push(failure.cause.clone());
        }
    }

    // Spelled as `Inventory::image_ref` spells the path: the owner lowercased.
    let naming = |name: &str| format!("{}/{}/{}", plan.registry, plan.owner.to_lowercase(), name);
    let by_digest: HashMap<&str, &ImageReport> =
        images.iter().map(|i| (i.digest.as_str(), i)).collect();
    parts
        .into_iter()
        .map(|(name, parts)| package_report(name, parts, naming(name), &by_digest))
        .collect()
}

fn package_report(
    name: &str,
    parts: PackageParts,
    image: String,
    by_digest: &HashMap<&str, &ImageReport>,
) -> PackageReport {
    let mut versions: Vec<VersionReport> = parts
        .versions
        .into_iter()
        .map(|(digest, version)| version_report(digest, version, by_digest))
        .collect();
    versions.sort_by(|a, b| {
        (a.tags.is_empty(), a.tags.first(), &a.digest).cmp(&(
            b.tags.is_empty(),
            b.tags.first(),
            &b.digest,
        ))
    });

    // Count each image of the package once, however many versions or tags lead to it.
    let mut scanned = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for image in versions.iter().flat_map(|v| &v.images) {
        match image.status {
            ImageStatus::Scanned => scanned.insert(image.digest.as_str()),
            ImageStatus::Failed => failed.insert(image.digest.as_str()),
        };
    }
    let mut counts = SeverityCounts::default();
    let mut fixable = 0;
    let mut ignored = 0;
    for digest in &scanned {
        if let Some(image) = by_digest.get(digest) {
            counts.add(&image.counts);
            fixable += image.fixable;
            ignored += image.ignored.len();
        }
    }

    let unresolved = versions
        .iter()
        .any(|v| v.status == VersionStatus::Unresolved);
    let unresolved = unresolved || !parts.causes.is_empty();
    let status = match (scanned.is_empty(), failed.is_empty() && !unresolved) {
        _ if versions.is_empty() && parts.causes.is_empty() => PackageStatus::Empty,
        (false, true) => PackageStatus::Scanned,
        (false, false) => PackageStatus::Partial,
        (true, _) => PackageStatus::Failed,
    };
    PackageReport {
        name: name.to_string(),
        repository: parts.repository,
        image,
        status,
        images_scanned: scanned.len(),
        images_failed: failed.len(),
        counts,
        fixable,
        ignored,
        versions,
        cause: (!parts.causes.is_empty()).then(|| parts.causes.join("; ")),
    }
}

fn version_report(
    digest: String,
    parts: VersionParts,
    by_digest: &HashMap<&str, &ImageReport>,
) -> VersionReport {
    let mut images: Vec<VersionImage> = parts
        .digests
        .iter()
        .filter_map(|d| by_digest.get(d.as_str()))
        .map(|image| VersionImage {
            digest: image.digest.clone(),
            platform: image.platform.clone(),
            status: image.status,
            duration_ms: image.duration_ms,
            counts: image.counts,
            fixable: image.fixable,
        })
        .collect();
    images.sort_by(|a, b| (&a.platform, &a.digest).cmp(&(&b.platform, &b.digest)));

    let scanned = images
        .iter()
        .filter(|i| i.status == ImageStatus::Scanned)
        .count();
    let status = match scanned {
        _ if images.is_empty() => VersionStatus::Unresolved,
        0 => VersionStatus::Failed,
        n if n == images.len() => VersionStatus::Scanned,
        _ => VersionStatus::Partial,
    };
    VersionReport {
        digest,
        tags: parts.tags.into_iter().collect(),
        status,
        images,
        cause: (!parts.causes.is_empty()).then(|| parts.causes.join("; ")),
    }
}

fn failures(plan: &Plan, images: &[ImageReport]) -> Vec<Failure> {
    let mut unresolved: Vec<Failure> = plan
        .unresolved
        .iter()
        .map(|f| Failure::Resolve {
            package: f.package.clone(),
            version_digest: f.version_digest.clone(),
            tags: sorted(&f.tags),
            cause: f.cause.clone(),
        })
        .collect();
    unresolved.sort_by(|a, b| resolve_order(a).cmp(&resolve_order(b)));
    unresolved.dedup();

    let mut scans: Vec<&ImageReport> = images
        .iter()
        .filter(|i| i.status == ImageStatus::Failed)
        .collect();
    scans.sort_by(|a, b| {
        let first = |i: &ImageReport| i.refs.first().map(|r| r.package.clone());
        (first(a), &a.digest).cmp(&(first(b), &b.digest))
    });
    unresolved.extend(scans.into_iter().map(|image| {
        Failure::Scan {
            digest: image.digest.clone(),
            image: image.image.clone(),
            platform: image.platform.clone(),
            refs: image.refs.clone(),
            cause: image
                .cause
                .clone()
                .unwrap_or_else(|| NO_RESULT_CAUSE.to_string()),
        }
    }));
    unresolved
}

fn resolve_order(failure: &Failure) -> (&str, Option<&String>, &str) {
    match failure {
        Failure::Resolve {
            package,
            version_digest,
            tags,
            ..
        } => (package, tags.first(), version_digest),
        Failure::Scan { digest, .. } => ("", None, digest),
    }
}

fn totals(packages: &[PackageReport], images: &[ImageReport]) -> Totals {
    let scanned: Vec<&ImageReport> = images
        .iter()
        .filter(|i| i.status == ImageStatus::Scanned)
        .collect();
    let mut findings = SeverityCounts::default();
    for image in &scanned {
        findings.add(&image.counts);
    }
    let vulnerabilities: BTreeSet<&str> = scanned
        .iter()
        .flat_map(|i| &i.findings)
        .map(|f| f.vulnerability_id.as_str())
        .collect();
    let versions = packages.iter().flat_map(|p| &p.versions);
    Totals {
        packages: packages.len(),
        versions: versions.clone().count(),
        tags: packages
            .iter()
            .map(|p| {
                p.versions
                    .iter()
                    .flat_map(|v| &v.tags)
                    .collect::<BTreeSet<_>>()
                    .len()
            })
            .sum(),
        images: images.len(),
        images_scanned: scanned.len(),
        images_failed: images.len() - scanned.len(),
        versions_unresolved: versions
            .filter(|v| v.status == VersionStatus::Unresolved)
            .count(),
        findings,
        fixable: scanned.iter().map(|i| i.fixable).sum(),
        vulnerabilities: vulnerabilities.len(),
        ignored: scanned.iter().map(|i| i.ignored.len()).sum(),
    }
}
