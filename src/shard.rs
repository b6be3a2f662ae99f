//! Scale-out: a plan cut into shards of about equal work, and the files that carry the plan to
//! the shard jobs and their scan runs back to `dragnet merge`.
//!
//! Shards are balanced by expected work, not by count: a target costs its compressed size plus a
//! fixed [`PER_IMAGE_COST`]. They are cut longest-processing-time first (the largest target goes
//! to the least loaded shard, ties to the lowest number), so one plan always gives the same shards.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::plan::{Plan, ScanTarget};
use crate::scan::ScanRun;

/// The layout version of `plan.json` and `scan-run.json`; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// The work a target costs beyond its size, in bytes: starting Trivy, opening the DB, fetching
/// manifests and config. About two seconds of a runner's download time, so that many small
/// images do not all land in one shard.
pub const PER_IMAGE_COST: u64 = 32 * 1024 * 1024;

/// An error in a shard spec, a plan file or a set of scan runs to merge.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// `--shard` was not `I/N` with 1 ≤ I ≤ N.
    #[error("invalid shard `{value}`: expected I/N with 1 <= I <= N, such as 2/3")]
    Spec { value: String },
    /// `--shard I/N` names a different count than the plan was cut into.
    #[error(
        "shard {spec} does not fit the plan, which has {count} shard(s); hint: pass the shard \
         values `dragnet plan` printed in its matrix"
    )]
    CountMismatch { spec: ShardSpec, count: usize },
    /// A file has a layout this build does not read.
    #[error(
        "unsupported {what} format version {found} (this dragnet reads {FORMAT_VERSION}); hint: \
         use the same dragnet version for plan, scan and merge"
    )]
    Version { what: &'static str, found: u32 },
    /// A scan run was made from another plan.
    #[error(
        "scan run of shard {shard} was made from another plan ({found}, expected {expected}); \
         hint: merge the results of one `dragnet plan` run only"
    )]
    ForeignRun {
        shard: String,
        found: String,
        expected: String,
    },
    /// Shards scanned with different options would mix findings of different filters.
    #[error(
        "the scan runs used different options ({first} and {other}); hint: give every shard \
         the same --severity and --ignore-unfixed"
    )]
    OptionsDiffer { first: String, other: String },
    /// Nothing to merge.
    #[error("no scan runs to merge; hint: pass the shards' output directories")]
    NoRuns,
}

/// One share of a plan: shard `index` of `count`, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardSpec {
    /// This shard's number, 1 to `count`.
    pub index: usize,
    /// How many shards the plan was cut into.
    pub count: usize,
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for ShardSpec {
    type Err = ShardError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || ShardError::Spec {
            value: value.to_string(),
        };
        let (index, count) = value.trim().split_once('/').ok_or_else(invalid)?;
        let index: usize = index.trim().parse().map_err(|_| invalid())?;
        let count: usize = count.trim().parse().map_err(|_| invalid())?;
        if index == 0 || index > count {
            return Err(invalid());
        }
        Ok(ShardSpec { index, count })
    }
}

impl Serialize for ShardSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ShardSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

/// The targets one shard scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard this is.
    pub shard: ShardSpec,
    /// The expected work: the sum of [`work`] over its targets.
    pub work: u64,
    /// Its targets' digests, in plan order (largest first).
    pub digests: Vec<String>,
}

/// The expected work of scanning one target.
pub fn work(target: &ScanTarget) -> u64 {
    target.size.saturating_add(PER_IMAGE_COST)
}

/// Cuts the targets into at most `count` shards of about equal work.
///
/// There are never more shards than targets (an empty shard would be a runner doing nothing),
/// and always at least one. Each digest lands in exactly one shard.
pub fn balance(targets: &[ScanTarget], count: usize) -> Vec<Shard> {
    let count = count.clamp(1, targets.len().max(1));
    let mut order: Vec<&ScanTarget> = targets.iter().collect();
    order.sort_by(|a, b| work(b).cmp(&work(a)).then_with(|| a.digest.cmp(&b.digest)));
    order.dedup_by(|later, earlier| later.digest == earlier.digest);

    let mut load = vec![0u64; count];
    let mut assigned: BTreeMap<&str, usize> = BTreeMap::new();
    for target in order {
        // The least loaded shard; `min_by_key` keeps the first of equals, so ties go low.
        let (slot, _) = load
            .iter()
            .enumerate()
            .min_by_key(|(_, load)| **load)
            .unwrap_or((0, &0));
        load[slot] = load[slot].saturating_add(work(target));
        assigned.insert(target.digest.as_str(), slot);
    }

    let mut shards: Vec<Shard> = (0..count)
        .map(|slot| Shard {
            shard: ShardSpec {
                index: slot + 1,
                count,
            },
            work: load[slot],
            digests: Vec::new(),
        })
        .collect();
    let mut seen = BTreeSet::new();
    for target in targets {
        if let Some(slot) = assigned.get(target.digest.as_str())
            && seen.insert(target.digest.as_str())
        {
            shards[*slot].digests.push(target.digest.clone());
        }
    }
    shards
}

/// The content of `plan.json`: the plan and how it is cut into shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFile {
    /// Always [`FORMAT_VERSION`] for files this build writes.
    pub format_version: u32,
    /// A fingerprint of the plan and its shards, echoed by every shard's scan run so that
    /// `merge` never mixes runs of different plans.
    pub id: String,
    /// The plan: every package, target and unresolved version.
    pub plan: Plan,
    /// The shards, numbered from 1.
    pub shards: Vec<Shard>,
}

impl PlanFile {
    /// Cuts `plan` into at most `shards` shards.
    pub fn new(plan: Plan, shards: usize) -> PlanFile {
        let shards = balance(&plan.targets, shards);
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(&plan).unwrap_or_default());
        hasher.update(serde_json::to_vec(&shards).unwrap_or_default());
        let id = format!("sha256:{}", hex::encode(hasher.finalize()));
        PlanFile {
            format_version: FORMAT_VERSION,
            id,
            plan,
            shards,
        }
    }

    /// Checks the layout version of a file just read.
    pub fn check_version(&self) -> Result<(), ShardError> {
        match self.format_version {
            FORMAT_VERSION => Ok(()),
            found => Err(ShardError::Version {
                what: "plan file",
                found,
            }),
        }
    }

    /// The GitHub Actions matrix for `strategy.matrix: ${{ fromJSON(...) }}`:
    /// `{"shard":["1/3","2/3","3/3"]}`.
    pub fn matrix(&self) -> serde_json::Value {
        let shards: Vec<String> = self.shards.iter().map(|s| s.shard.to_string()).collect();
        serde_json::json!({ "shard": shards })
    }

    /// The part of the plan one shard scans: its targets, and the packages they belong to.
    ///
    /// Versions that did not resolve are left to the merged report, so that no shard's report
    /// repeats them.
    pub fn shard_plan(&self, spec: ShardSpec) -> Result<Plan, ShardError> {
        let shard =
            self.shards
                .iter()
                .find(|s| s.shard == spec)
                .ok_or(ShardError::CountMismatch {
                    spec,
                    count: self.shards.len(),
                })?;
        let digests: BTreeSet<&str> = shard.digests.iter().map(String::as_str).collect();
        let targets: Vec<ScanTarget> = self
            .plan
            .targets
            .iter()
            .filter(|t| digests.contains(t.digest.as_str()))
            .cloned()
            .collect();
        let packages: BTreeSet<&str> = targets
            .iter()
            .flat_map(|t| t.refs.iter().map(|r| r.package.as_str()))
            .collect();
        // Cloned whole, so that a field added to the plan travels with it.
        let mut plan = self.plan.clone();
        plan.packages.retain(|p| packages.contains(p.name.as_str()));
        plan.targets = targets;
        plan.unresolved = Vec::new();
        Ok(plan)
    }
}

/// The content of `scan-run.json`: what one `scan --plan` job scanned, for `dragnet merge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRun {
    /// Always [`FORMAT_VERSION`] for files this build writes.
    pub format_version: u32,
    /// The [`PlanFile::id`] of the plan the targets came from.
    pub plan_id: String,
    /// The shard scanned, or none when the whole plan was.
    pub shard: Option<ShardSpec>,
    /// The scan run: one result per target of the shard.
    pub run: ScanRun,
}

impl ShardRun {
    /// How the run is named in messages: `2/3`, or `all` for a whole-plan run.
    pub fn label(&self) -> String {
        self.shard
            .map(|s| s.to_string())
            .unwrap_or_else(|| "all".into())
    }
}

/// Scan runs merged into one, with what the caller should warn about.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// One run holding every shard's results, in plan order.
    pub run: ScanRun,
    /// Shards of the plan no run was given for; their targets have no result.
    pub missing: Vec<ShardSpec>,
    /// Shards given more than once.
    pub repeated: Vec<ShardSpec>,
    /// Different Trivy or DB versions between runs, described; the first run's are kept.
    pub version_skew: Vec<String>,
}

/// Merges the shards' scan runs of one plan into one run.
///
/// The merged run starts when the first shard started and lasts until the last one ended; its
/// results are ordered as the plan's targets. Runs of another plan or with other scan options
/// are refused; missing shards are reported, and their targets left without a result (the
/// report counts them as failed and says why).
pub fn merge(plan: &PlanFile, runs: &[ShardRun]) -> Result<Merged, ShardError> {
    let first = runs.first().ok_or(ShardError::NoRuns)?;
    for run in runs {
        if run.format_version != FORMAT_VERSION {
            return Err(ShardError::Version {
                what: "scan run",
                found: run.format_version,
            });
        }
        if run.plan_id != plan.id {
            return Err(ShardError::ForeignRun {
                shard: run.label(),
                found: run.plan_id.clone(),
                expected: plan.id.clone(),
            });
        }
        if run.run.options != first.run.options {
            return Err(ShardError::OptionsDiffer {
                first: describe_options(&first.run),
                other: describe_options(&run.run),
            });
        }
    }

    // Which shards are covered, and which came twice.
    let whole = runs.iter().any(|r| r.shard.is_none());
    let mut given: BTreeMap<ShardSpec, usize> = BTreeMap::new();
    for spec in runs.iter().filter_map(|r| r.shard) {
        *given.entry(spec).or_default() += 1;
    }
    let missing = if whole {
        Vec::new()
    } else {
        plan.shards
            .iter()
            .map(|s| s.shard)
            .filter(|s| !given.contains_key(s))
            .collect()
    };
    let repeated = given
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();

    let mut version_skew = Vec::new();
    for run in &runs[1..] {
        if run.run.trivy_version != first.run.trivy_version {
            version_skew.push(format!(
                "shard {} ran Trivy {} and shard {} ran {}",
                first.label(),
                first.run.trivy_version,
                run.label(),
                run.run.trivy_version
            ));
        }
        if run.run.db_updated_at != first.run.db_updated_at {
            version_skew.push(format!(
                "shard {} used the DB of {} and shard {} the DB of {}",
                first.label(),
                first.run.db_updated_at.as_deref().unwrap_or("(unknown)"),
                run.label(),
                run.run.db_updated_at.as_deref().unwrap_or("(unknown)")
            ));
        }
    }

    // Every result, in plan order; results for unknown digests go last (the report drops them).
    let position: BTreeMap<&str, usize> = plan
        .plan
        .targets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.digest.as_str(), i))
        .collect();
    let mut results: Vec<_> = runs.iter().flat_map(|r| r.run.results.iter()).collect();
    results.sort_by_key(|r| {
        position
            .get(r.digest.as_str())
            .copied()
            .unwrap_or(usize::MAX)
    });

    let (started_at, duration_ms) = span(runs);
    Ok(Merged {
        run: ScanRun {
            started_at,
            duration_ms,
            trivy_version: first.run.trivy_version.clone(),
            db_updated_at: first.run.db_updated_at.clone(),
            options: first.run.options.clone(),
            results: results.into_iter().cloned().collect(),
        },
        missing,
        repeated,
        version_skew,
    })
}

/// The earliest start and the wall time until the last run ended.
fn span(runs: &[ShardRun]) -> (String, u64) {
    let parsed: Vec<(OffsetDateTime, &ShardRun)> = runs
        .iter()
        .filter_map(|r| {
            OffsetDateTime::parse(&r.run.started_at, &Rfc3339)
                .ok()
                .map(|t| (t, r))
        })
        .collect();
    let Some((start, first)) = parsed.iter().min_by_key(|(t, _)| *t) else {
        // No parseable start: keep the first run's and the longest duration.
        let longest = runs.iter().map(|r| r.run.duration_ms).max().unwrap_or(0);
        return (runs[0].run.started_at.clone(), longest);
    };
    let end = parsed
        .iter()
        .map(|(t, r)| *t + time::Duration::milliseconds(r.run.duration_ms as i64))
        .max()
        .unwrap_or(*start);
    let wall = (end - *start).whole_milliseconds().max(0) as u64;
    (first.run.started_at.clone(), wall)
}

fn describe_options(run: &ScanRun) -> String {
    let severities: Vec<&str> = run.options.severities.iter().map(|s| s.as_str()).collect();
    format!(
        "severity {}{}",
        severities.join(","),
        if run.options.ignore_unfixed {
            ", ignore-unfixed"
        } else {
            ""
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Severity;
    use crate::plan::TargetRef;
    use crate::scan::{Outcome, ScanOptions, ScanResult};

    const MIB: u64 = 1024 * 1024;

    fn target(digest: &str, size: u64) -> ScanTarget {
        ScanTarget {
            digest: digest.to_string(),
            image: format!("ghcr.io/acme/p@{digest}"),
            platform: None,
            size,
            refs: vec![TargetRef {
                package: format!("p{}", digest.len() % 2),
                version_digest: digest.to_string(),
                tags: vec!["1".into()],
            }],
        }
    }

    /// A plan from JSON, so that the test does not depend on every field of [`Plan`].
    fn plan(targets: Vec<ScanTarget>) -> Plan {
        serde_json::from_value(serde_json::json!({
            "owner": "acme",
            "registry": "ghcr.io",
            "packages": [
                {"name": "p0", "repository": null},
                {"name": "p1", "repository": null},
            ],
            "targets": targets,
            "unresolved": [],
        }))
        .unwrap()
    }

    fn run_of(plan: &PlanFile, spec: Option<ShardSpec>, started_at: &str, ms: u64) -> ShardRun {
        let digests: Vec<String> = match spec {
            Some(spec) => plan.shards[spec.index - 1].digests.clone(),
            None => plan.plan.targets.iter().map(|t| t.digest.clone()).collect(),
        };
        ShardRun {
            format_version: FORMAT_VERSION,
            plan_id: plan.id.clone(),
            shard: spec,
            run: ScanRun {
                started_at: started_at.into(),
                duration_ms: ms,
                trivy_version: "0.76.0".into(),
                db_updated_at: Some("2026-01-01T00:00:00Z".into()),
                options: ScanOptions {
                    severities: vec![Severity::Critical, Severity::High],
                    ignore_unfixed: false,
                },
                results: digests
                    .iter()
                    .map(|d| ScanResult {
                        digest: d.clone(),
                        image: format!("ghcr.io/acme/p@{d}"),
                        duration_ms: 1,
                        outcome: Outcome::Scanned {
                            os: None,
                            findings: Vec::new(),
                        },
                    })
                    .collect(),
            },
        }
    }

    fn spec(index: usize, count: usize) -> ShardSpec {
        ShardSpec { index, count }
    }

    #[test]
    fn parses_and_prints_shard_specs() {
        assert_eq!("2/3".parse::<ShardSpec>().unwrap(), spec(2, 3));
        assert_eq!(spec(2, 3).to_string(), "2/3");
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "", "-1/2"] {
            let error = bad.parse::<ShardSpec>().unwrap_err().to_string();
            assert!(error.contains("such as 2/3"), "{bad}: {error}");
        }
    }

    #[test]
    fn balances_by_size_not_by_count() {
        // One huge image and four small ones: the huge one gets a shard to itself.
        let targets = vec![
            target("sha256:huge", 900 * MIB),
            target("sha256:a", 100 * MIB),
            target("sha256:b", 100 * MIB),
            target("sha256:c", 100 * MIB),
            target("sha256:d", 100 * MIB),
        ];
        let shards = balance(&targets, 2);
        assert_eq!(shards[0].digests, ["sha256:huge"]);
        assert_eq!(
            shards[1].digests,
            ["sha256:a", "sha256:b", "sha256:c", "sha256:d"]
        );
        assert_eq!(shards[0].work, 900 * MIB + PER_IMAGE_COST);
        assert_eq!(shards[1].work, 4 * (100 * MIB + PER_IMAGE_COST));
    }

    #[test]
    fn longest_first_fills_the_least_loaded_shard() {
        // LPT on 7, 6, 5, 4, 3 (plus the fixed cost, equal for all) into 2 shards:
        // 7 → A, 6 → B, 5 → B (6 < 7), 4 → A (7 < 11),
        // 3 → A or B at 11 = 11: the lower, A.
        let targets: Vec<ScanTarget> = [7, 6, 5, 4, 3]
            .iter()
            .map(|n| target(&format!("sha256:{n}"), n * 100 * MIB))
            .collect();
        let shards = balance(&targets, 2);
        assert_eq!(shards[0].digests, ["sha256:7", "sha256:4", "sha256:3"]);
        assert_eq!(shards[1].digests, ["sha256:6", "sha256:5"]);
    }

    #[test]
    fn every_digest_lands_in_exactly_one_shard_and_the_cut_is_deterministic() {
        let targets: Vec<ScanTarget> = (0..40u64)
            .map(|n| target(&format!("sha256:{n:02}"), (n * 7919) % 301 * MIB))
            .collect();
        let shards = balance(&targets, 3);
        let mut all: Vec<&String> = shards.iter().flat_map(|s| &s.digests).collect();
        all.sort();
        let mut expected: Vec<&String> = targets.iter().map(|t| &t.digest).collect();
        expected.sort();
        assert_eq!(all, expected);

        // Reversing the input changes nothing.
        let mut reversed = targets.clone();
        reversed.reverse();
        let again = balance(&reversed, 3);
        let sets = |shards: &[Shard]| -> Vec<BTreeSet<String>> {
            shards
                .iter()
                .map(|s| s.digests.iter().cloned().collect())
                .collect()
        };
        assert_eq!(sets(&shards), sets(&again));

        // LPT keeps the heaviest shard within one target's work of the lightest.
        let heaviest = shards.iter().map(|s| s.work).max().unwrap();
        let lightest = shards.iter().map(|s| s.work).min().unwrap();
        let largest = targets.iter().map(work).max().unwrap();
        assert!(heaviest - lightest <= largest);
    }

    #[test]
    fn never_cuts_more_shards_than_targets() {
        let targets = vec![target("sha256:a", MIB), target("sha256:b", MIB)];
        assert_eq!(balance(&targets, 5).len(), 2);
        assert_eq!(balance(&[], 3).len(), 1);
        assert_eq!(balance(&targets, 0).len(), 1);
        let file = PlanFile::new(plan(targets), 5);
        assert_eq!(file.matrix().to_string(), r#"{"shard":["1/2","2/2"]}"#);
    }

    #[test]
    fn a_shard_plan_holds_its_targets_and_their_packages_only() {
        let file = PlanFile::new(
            plan(vec![target("sha256:aa", 9 * MIB), target("sha256:b", MIB)]),
            2,
        );
        let first = file.shard_plan(spec(1, 2)).unwrap();
        assert_eq!(first.targets.len(), 1);
        assert_eq!(first.targets[0].digest, "sha256:aa");
        let names: Vec<&str> = first.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["p1"]);
        let error = file.shard_plan(spec(1, 3)).unwrap_err().to_string();
        assert!(error.contains("has 2 shard(s)"), "{error}");
    }

    #[test]
    fn merges_shards_in_plan_order_over_their_whole_span() {
        let targets: Vec<ScanTarget> = (1..=5u64)
            .map(|n| target(&format!("sha256:{n}"), n * MIB))
            .collect();
        let file = PlanFile::new(plan(targets), 3);
        let runs = vec![
            run_of(&file, Some(spec(3, 3)), "2026-01-01T10:00:05Z", 1_000),
            run_of(&file, Some(spec(1, 3)), "2026-01-01T10:00:01.5Z", 2_000),
            run_of(&file, Some(spec(2, 3)), "2026-01-01T10:00:02.25Z", 9_000),
        ];
        let merged = merge(&file, &runs).unwrap();
        let order: Vec<&str> = merged
            .run
            .results
            .iter()
            .map(|r| r.digest.as_str())
            .collect();
        let plan_order: Vec<&str> = file
            .plan
            .targets
            .iter()
            .map(|t| t.digest.as_str())
            .collect();
        assert_eq!(order, plan_order);
        assert_eq!(merged.run.started_at, "2026-01-01T10:00:01.5Z");
        assert_eq!(merged.run.duration_ms, 9_750);
        assert!(merged.missing.is_empty() && merged.repeated.is_empty());
        assert!(merged.version_skew.is_empty());
    }

    #[test]
    fn reports_missing_and_repeated_shards_and_refuses_foreign_runs() {
        let targets: Vec<ScanTarget> = (1..=4u64)
            .map(|n| target(&format!("sha256:{n}"), n * MIB))
            .collect();
        let file = PlanFile::new(plan(targets.clone()), 3);
        let one = run_of(&file, Some(spec(1, 3)), "2026-01-01T10:00:00Z", 10);
        let merged = merge(&file, &[one.clone(), one.clone()]).unwrap();
        assert_eq!(merged.missing, [spec(2, 3), spec(3, 3)]);
        assert_eq!(merged.repeated, [spec(1, 3)]);

        let other = PlanFile::new(plan(targets[..3].to_vec()), 3);
        let error = merge(&other, std::slice::from_ref(&one))
            .unwrap_err()
            .to_string();
        assert!(error.contains("another plan"), "{error}");

        let mut unfixed = run_of(&file, Some(spec(2, 3)), "2026-01-01T10:00:00Z", 10);
        unfixed.run.options.ignore_unfixed = true;
        let error = merge(&file, &[one, unfixed]).unwrap_err().to_string();
        assert!(error.contains("ignore-unfixed"), "{error}");
        assert!(matches!(merge(&file, &[]), Err(ShardError::NoRuns)));
    }

    #[test]
    fn the_plan_file_round_trips_and_its_id_follows_its_content() {
        let file = PlanFile::new(plan(vec![target("sha256:a", MIB)]), 1);
        let text = serde_json::to_string(&file).unwrap();
        assert!(text.contains(r#""shard":"1/1""#), "{text}");
        let back: PlanFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, file);
        let other = PlanFile::new(plan(vec![target("sha256:b", MIB)]), 1);
        assert_ne!(other.id, file.id);
    }
}
