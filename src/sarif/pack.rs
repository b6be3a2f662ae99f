//! Fitting SARIF runs into what code scanning accepts, and packing them into files.
//!
//! GitHub takes at most 20 runs per file, one run per tool and category in a file, 25,000
//! results per run and 10 MB of gzip per upload; anything beyond is refused or silently cut.
//! So dragnet cuts first, and says so: a run with too many results, or too big to fit, keeps
//! its most severe results and records what it left out ([`Omission`], also written into the
//! run's `properties` as `dragnet/omitted`). Runs are handled as JSON values, so the same code
//! serves runs dragnet just built and runs read back from files at upload time.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::Write as _;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{SARIF_VERSION, SCHEMA_URI};
use crate::finding::Severity;
use crate::report::SeverityCounts;

/// GitHub refuses a file with more runs than this.
pub const MAX_RUNS_PER_FILE: usize = 20;
/// GitHub keeps at most this many results per run.
pub const MAX_RESULTS_PER_RUN: usize = 25_000;
/// The gzipped size dragnet packs files to. GitHub's limit is "10 MB"; dragnet stays a tenth
/// below 10,000,000 bytes so that no reading of "MB" and no re-encoding can push it over.
pub const MAX_GZIPPED_BYTES: usize = 9_000_000;

/// The run property naming what a run left out.
pub const OMITTED_PROPERTY: &str = "dragnet/omitted";
/// The file property listing every category the producing scan speaks for.
pub const CATEGORIES_PROPERTY: &str = "dragnet/categories";

/// What one file and one run may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Runs per file (GitHub: 20).
    pub max_runs_per_file: usize,
    /// Results per run (GitHub keeps 25,000).
    pub max_results_per_run: usize,
    /// Gzipped bytes per file.
    pub max_gzipped_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_runs_per_file: MAX_RUNS_PER_FILE,
            max_results_per_run: MAX_RESULTS_PER_RUN,
            max_gzipped_bytes: MAX_GZIPPED_BYTES,
        }
    }
}

/// Why results were left out of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OmissionReason {
    /// More results than GitHub keeps in one run.
    ResultLimit,
    /// The run alone would not fit in one upload.
    SizeLimit,
}

/// Results left out of one run, the least severe first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Omission {
    /// The run's category (`dragnet/products/bfx/samtools`).
    pub category: String,
    /// Results the run had before the cut.
    pub results: usize,
    /// Results kept: the most severe.
    pub kept: usize,
    /// What was left out, by severity.
    pub dropped: SeverityCounts,
    /// The limit that forced the cut.
    pub reason: OmissionReason,
}

impl fmt::Display for Omission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dropped: Vec<String> = Severity::ALL
            .iter()
            .filter(|s| self.dropped.get(**s) > 0)
            .map(|s| format!("{} {s}", self.dropped.get(*s)))
            .collect();
        let why = match self.reason {
            OmissionReason::ResultLimit => {
                format!("GitHub keeps at most {MAX_RESULTS_PER_RUN} results per run")
            }
            OmissionReason::SizeLimit => {
                format!("the run would not fit in one upload ({MAX_GZIPPED_BYTES} bytes gzipped)")
            }
        };
        write!(
            f,
            "{}: kept the {} most severe of {} results, left out {} ({}): {why}",
            if self.category.is_empty() {
                "(no category)"
            } else {
                &self.category
            },
            self.kept,
            self.results,
            self.results - self.kept,
            dropped.join(", ")
        )
    }
}

/// Files ready to write or upload, and what was cut to make them fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    /// SARIF logs, each within the limits.
    pub logs: Vec<Value>,
    /// Every run that lost results.
    pub omissions: Vec<Omission>,
}

/// The category of a run as GitHub reads it: `automationDetails.id` up to its last `/`, or
/// empty.
pub fn run_category(run: &Value) -> String {
    let id = run
        .pointer("/automationDetails/id")
        .and_then(Value::as_str)
        .unwrap_or("");
    id.rfind('/')
        .map_or(String::new(), |at| id[..at].to_string())
}

/// The run's tool (`tool.driver.name`), or empty.
pub fn run_tool(run: &Value) -> String {
    run.pointer("/tool/driver/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// How many results a run has.
pub fn result_count(run: &Value) -> usize {
    run.get("results")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// The gzipped size of some bytes, as the upload will send them.
pub fn gzipped_len(bytes: &[u8]) -> usize {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().map_or(usize::MAX, |gz| gz.len())
}

fn gzipped_json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |bytes| gzipped_len(&bytes))
}

/// Cuts a run to the limits: at most `max_results_per_run` results and small enough to fit in
/// one file alone, keeping the most severe results (ties: the earlier). Rules no kept result
/// uses are dropped, and the cut is recorded in the run's properties. `None` when nothing was
/// cut.
pub fn fit_run(run: &mut Value, limits: &Limits) -> Option<Omission> {
    fit_measured(run, limits).0
}

/// [`fit_run`], also returning the run's gzipped size, measured on the way.
fn fit_measured(run: &mut Value, limits: &Limits) -> (Option<Omission>, usize) {
    let total = result_count(run);
    let severities = result_severities(run);
    let mut keep = total.min(limits.max_results_per_run);
    let mut reason = (keep < total).then_some(OmissionReason::ResultLimit);

    // Shrink by the measured ratio until it fits; a few rounds at most.
    let budget = limits.max_gzipped_bytes;
    let mut candidate = cut(run, &severities, keep);
    let mut size = gzipped_json_len(&candidate);
    while size > budget && keep > 0 {
        let ratio = budget as f64 / size as f64;
        let next = ((keep as f64) * ratio * 0.95).floor() as usize;
        keep = next.min(keep - 1);
        reason = Some(OmissionReason::SizeLimit);
        candidate = cut(run, &severities, keep);
        size = gzipped_json_len(&candidate);
    }
    let Some(reason) = reason else {
        return (None, size);
    };

    let mut dropped = SeverityCounts::default();
    let kept_set = most_severe(&severities, keep);
    for (index, severity) in severities.iter().enumerate() {
        if !kept_set.contains(&index) {
            dropped.count(*severity);
        }
    }
    let mut omission = Omission {
        category: run_category(run),
        results: total,
        kept: keep,
        dropped,
        reason,
    };

    // A run cut before (by the builder, or an earlier pack) keeps its first count.
    if let Some(earlier) = run
        .pointer(&format!(
            "/properties/{}",
            OMITTED_PROPERTY.replace('/', "~1")
        ))
        .and_then(|v| serde_json::from_value::<Omission>(v.clone()).ok())
    {
        omission.results = earlier.results;
        omission.dropped.add(&earlier.dropped);
    }
    *run = candidate;
    if let Some(properties) = properties_of(run) {
        properties.insert(OMITTED_PROPERTY.to_string(), json!(omission));
    }
    tracing::warn!("left results out of the SARIF: {omission}");
    (Some(omission), size)
}

/// The indices of the `keep` most severe results (ties: the earlier).
fn most_severe(severities: &[Severity], keep: usize) -> BTreeSet<usize> {
    let mut order: Vec<usize> = (0..severities.len()).collect();
    order.sort_by(|a, b| severities[*b].cmp(&severities[*a]).then(a.cmp(b)));
    order.into_iter().take(keep).collect()
}

/// A copy of the run with only the `keep` most severe results, in their original order, and
/// only the rules they use, re-indexed.
fn cut(run: &Value, severities: &[Severity], keep: usize) -> Value {
    if keep >= severities.len() {
        return run.clone();
    }
    let kept = most_severe(severities, keep);
    let mut run = run.clone();
    let results: Vec<Value> = run
        .get_mut("results")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter(|(index, _)| kept.contains(index))
        .map(|(_, result)| result)
        .collect();

    // Keep the rules still referenced, in their order, and point results at the new places.
    let rules: Vec<Value> = run
        .pointer("/tool/driver/rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let used: BTreeSet<usize> = results
        .iter()
        .filter_map(|r| rule_position(r, &rules))
        .collect();
    let renumber: HashMap<usize, usize> = used
        .iter()
        .enumerate()
        .map(|(new, old)| (*old, new))
        .collect();
    let mut results = results;
    for result in &mut results {
        let old = rule_position(result, &rules);
        if let (Some(old), Some(object)) = (old, result.as_object_mut())
            && object.contains_key("ruleIndex")
            && let Some(new) = renumber.get(&old)
        {
            object.insert("ruleIndex".into(), json!(new));
        }
    }
    if let Some(slot) = run.pointer_mut("/tool/driver/rules") {
        *slot = Value::Array(used.iter().map(|i| rules[*i].clone()).collect());
    }
    if let Some(slot) = run.get_mut("results") {
        *slot = Value::Array(results);
    }
    run
}

/// Where a result's rule is in the driver's rules: by `ruleIndex` when it names the same id,
/// else by `ruleId`.
fn rule_position(result: &Value, rules: &[Value]) -> Option<usize> {
    let id = result.get("ruleId").and_then(Value::as_str);
    if let Some(index) = result.get("ruleIndex").and_then(Value::as_u64) {
        let index = index as usize;
        if let Some(rule) = rules.get(index)
            && (id.is_none() || rule.get("id").and_then(Value::as_str) == id)
        {
            return Some(index);
        }
    }
    let id = id?;
    rules
        .iter()
        .position(|rule| rule.get("id").and_then(Value::as_str) == Some(id))
}

/// Each result's severity: its rule's severity tag (dragnet writes Trivy's rating there),
/// else the rule's `security-severity` read as GitHub reads it, else the level.
fn result_severities(run: &Value) -> Vec<Severity> {
    let rules: Vec<Value> = run
        .pointer("/tool/driver/rules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rule_severity: Vec<Option<Severity>> = rules.iter().map(rule_severity).collect();
    run.get("results")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|result| {
            rule_position(result, &rules)
                .and_then(|i| rule_severity[i])
                .unwrap_or_else(|| level_severity(result.get("level").and_then(Value::as_str)))
        })
        .collect()
}

fn rule_severity(rule: &Value) -> Option<Severity> {
    let properties = rule.get("properties")?;
    let tagged = properties
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|tag| Severity::ALL.into_iter().find(|s| s.as_str() == tag));
    if tagged.is_some() {
        return tagged;
    }
    let score: f64 = properties
        .get("security-severity")
        .and_then(Value::as_str)?
        .trim()
        .parse()
        .ok()?;
    Some(match score {
        s if s >= 9.0 => Severity::Critical,
        s if s >= 7.0 => Severity::High,
        s if s >= 4.0 => Severity::Medium,
        s if s > 0.0 => Severity::Low,
        _ => Severity::Unknown,
    })
}

fn level_severity(level: Option<&str>) -> Severity {
    match level.unwrap_or("warning") {
        "error" => Severity::High,
        "warning" => Severity::Medium,
        _ => Severity::Low,
    }
}

fn properties_of(run: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    let object = run.as_object_mut()?;
    object
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
}

/// Fits every run (see [`fit_run`]) and packs the runs, in order, into as few files as the
/// limits allow: a new file starts when the current one is full (runs or gzipped size) or
/// already holds a run of the same tool and category. Each file lists `covered` (the
/// categories the producing scan speaks for) in its properties, when given.
pub fn pack(runs: Vec<Value>, limits: &Limits, covered: &BTreeSet<String>) -> Packed {
    let mut omissions = Vec::new();
    let mut sized = Vec::with_capacity(runs.len());
    for mut run in runs {
        let (omission, size) = fit_measured(&mut run, limits);
        omissions.extend(omission);
        sized.push((run, size));
    }

    let per_file = limits.max_runs_per_file.max(1);
    let mut groups: Vec<(Vec<Value>, usize)> = Vec::new();
    let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
    for (run, size) in sized {
        let key = (run_tool(&run), run_category(&run));
        let start_new = match groups.last() {
            None => true,
            Some((group, bytes)) => {
                group.len() >= per_file
                    || bytes + size > limits.max_gzipped_bytes
                    || keys.contains(&key)
            }
        };
        if start_new {
            groups.push((Vec::new(), 0));
            keys.clear();
        }
        keys.insert(key);
        if let Some((group, bytes)) = groups.last_mut() {
            group.push(run);
            *bytes += size;
        }
    }

    // One stream compresses about as well as the runs apart; near the limit, measure the
    // whole file all the same.
    let mut logs = Vec::new();
    for (group, bytes) in groups {
        if bytes < limits.max_gzipped_bytes / 10 * 8 {
            logs.push(log_of(group, covered));
        } else {
            split_until_fits(group, limits, covered, &mut logs);
        }
    }
    Packed { logs, omissions }
}

fn split_until_fits(
    runs: Vec<Value>,
    limits: &Limits,
    covered: &BTreeSet<String>,
    out: &mut Vec<Value>,
) {
    let log = log_of(runs, covered);
    let fits = gzipped_json_len(&log) <= limits.max_gzipped_bytes;
    let mut runs = match log {
        Value::Object(mut object) if !fits => match object.remove("runs") {
            Some(Value::Array(runs)) if runs.len() > 1 => runs,
            Some(runs) => {
                object.insert("runs".into(), runs);
                out.push(Value::Object(object));
                return;
            }
            None => return,
        },
        log => {
            out.push(log);
            return;
        }
    };
    let second = runs.split_off(runs.len() / 2);
    split_until_fits(runs, limits, covered, out);
    split_until_fits(second, limits, covered, out);
}

/// A SARIF log holding `runs`.
pub fn log_of(runs: Vec<Value>, covered: &BTreeSet<String>) -> Value {
    let mut log = json!({
        "$schema": SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": runs,
    });
    if !covered.is_empty()
        && let Some(object) = log.as_object_mut()
    {
        object.insert("properties".into(), json!({ CATEGORIES_PROPERTY: covered }));
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of `results` results over rules of the given severities, in turn.
    fn run(category: &str, severities: &[Severity], results: usize, text: usize) -> Value {
        let rules: Vec<Value> = severities
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "id": format!("R{i}"),
                    "properties": { "tags": ["security", s.as_str()] }
                })
            })
            .collect();
        let results: Vec<Value> = (0..results)
            .map(|i| {
                let rule = i % severities.len();
                json!({
                    "ruleId": format!("R{rule}"),
                    "ruleIndex": rule,
                    // Text that does not compress away: every result differs.
                    "message": { "text": format!("{i:08x}{}", pseudo_random(i, text)) },
                    "locations": [],
                })
            })
            .collect();
        json!({
            "tool": { "driver": { "name": "dragnet", "rules": rules } },
            "automationDetails": { "id": format!("{category}/") },
            "results": results,
        })
    }

    fn pseudo_random(seed: usize, len: usize) -> String {
        let mut state = (seed as u64).wrapping_mul(6364136223846793005) ^ 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'a' + ((state >> 33) % 26) as u8)
            })
            .collect()
    }

    #[test]
    fn keeps_the_most_severe_results_up_to_the_limit_and_says_what_it_left_out() {
        let severities = [Severity::Low, Severity::Critical, Severity::Medium];
        let mut value = run("dragnet/app", &severities, 30, 0);
        let limits = Limits {
            max_results_per_run: 12,
            ..Limits::default()
        };
        let omission = fit_run(&mut value, &limits).unwrap();
        assert_eq!((omission.results, omission.kept), (30, 12));
        assert_eq!(omission.reason, OmissionReason::ResultLimit);
        assert_eq!(omission.dropped.low, 10);
        assert_eq!(omission.dropped.medium, 8);
        assert_eq!(omission.dropped.critical, 0);
        assert_eq!(result_count(&value), 12);

        // Every CRITICAL (10) and the first two MEDIUM stay; LOW's rule is gone.
        let rules = value["tool"]["driver"]["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["R1", "R2"]);
        for result in value["results"].as_array().unwrap() {
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], result["ruleId"]);
        }
        assert_eq!(
            value["properties"][OMITTED_PROPERTY]["kept"], 12,
            "the run says so itself"
        );
        let text = omission.to_string();
        assert!(
            text.contains("kept the 12 most severe of 30 results, left out 18 (8 MEDIUM, 10 LOW)"),
            "{text}"
        );
    }

    #[test]
    fn a_run_too_big_for_one_upload_sheds_its_least_severe_results_until_it_fits() {
        let severities = [Severity::High, Severity::Low];
        let mut value = run("dragnet/big", &severities, 2_000, 400);
        let limits = Limits {
            max_gzipped_bytes: 400_000,
            ..Limits::default()
        };
        assert!(gzipped_json_len(&value) > 400_000);
        let omission = fit_run(&mut value, &limits).unwrap();
        assert_eq!(omission.reason, OmissionReason::SizeLimit);
        assert!(gzipped_json_len(&value) <= 400_000);
        assert!(omission.kept > 0 && omission.kept < 2_000);
        assert_eq!(omission.dropped.high, 0, "HIGH stays while LOW can go");
        assert_eq!(omission.dropped.low, 2_000 - omission.kept);
    }

    #[test]
    fn packs_by_run_count_size_and_category() {
        let small = |c: &str| run(c, &[Severity::High], 1, 0);
        let mut runs: Vec<Value> = (0..45)
            .map(|i| small(&format!("dragnet/p{i:02}")))
            .collect();
        // A category repeated: it must go to another file.
        runs.insert(3, small("dragnet/p00"));
        let packed = pack(runs, &Limits::default(), &BTreeSet::new());
        let sizes: Vec<usize> = packed
            .logs
            .iter()
            .map(|l| l["runs"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [3, 20, 20, 3]);
        for log in &packed.logs {
            let categories: BTreeSet<String> = log["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(run_category)
                .collect();
            assert_eq!(categories.len(), log["runs"].as_array().unwrap().len());
        }

        // Five runs of ~60 kB gzipped each, 150 kB per file: two per file.
        let big: Vec<Value> = (0..5)
            .map(|i| run(&format!("dragnet/b{i}"), &[Severity::High], 150, 400))
            .collect();
        let one = gzipped_json_len(&big[0]);
        let limits = Limits {
            max_gzipped_bytes: one * 5 / 2,
            ..Limits::default()
        };
        let covered = BTreeSet::from(["dragnet/b0".to_string()]);
        let packed = pack(big, &limits, &covered);
        assert!(packed.omissions.is_empty());
        assert_eq!(packed.logs.len(), 3);
        for log in &packed.logs {
            assert!(gzipped_json_len(log) <= limits.max_gzipped_bytes);
            assert_eq!(
                log["properties"][CATEGORIES_PROPERTY],
                json!(["dragnet/b0"])
            );
        }
    }
}
