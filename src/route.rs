//! The upload plan: which repository each SARIF run goes to, and which categories a
//! repository no longer gets and must see closed.
//!
//! Runs are read back from the SARIF files (so `dragnet upload` works on files written by an
//! earlier `dragnet scan`, in another job), routed to the current repository or to the one
//! each package is linked to, and re-packed per repository within GitHub's limits. A category
//! is stale in a repository when dragnet uploaded it there before and this scan neither
//! produces it for that repository nor speaks for it otherwise (a package whose scan failed
//! this time keeps its alerts). Nothing here talks to GitHub: the caller lists the analyses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::github::code_scanning::Analysis;
use crate::sarif::pack::{self, CATEGORIES_PROPERTY, OMITTED_PROPERTY, Omission};
use crate::sarif::{PACKAGE_PROPERTY, REPOSITORY_PROPERTY};

/// The tool name dragnet's runs carry; only its analyses are ever closed.
pub const TOOL_NAME: &str = "dragnet";

/// Where each package's SARIF goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Route {
    /// Every run to the repository given by `--repository` / `GITHUB_REPOSITORY`.
    #[default]
    Current,
    /// Each package's run to the repository the package is linked to; packages without one
    /// are not uploaded.
    Linked,
}

/// A SARIF file that cannot be uploaded as it is.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not JSON: {source}; pass SARIF files written by `dragnet scan`", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "{} is not SARIF 2.1.0 (no `runs` array or another `version`); pass SARIF files \
         written by `dragnet scan`",
        path.display()
    )]
    NotSarif { path: PathBuf },
}

/// One run read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRun {
    /// The file it came from (its name).
    pub source: String,
    /// The run itself.
    pub run: Value,
    /// Its category (`dragnet/products/bfx/samtools`).
    pub category: String,
    /// Its tool (`dragnet`).
    pub tool: String,
    /// The package it reports on, for dragnet runs.
    pub package: Option<String>,
    /// The repository the package is linked to, when it is.
    pub repository: Option<String>,
}

/// Every run of the input files, and the categories the producing scans speak for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Input {
    /// The runs, in file order.
    pub runs: Vec<InputRun>,
    /// Categories declared covered by the files (including packages whose scan failed, which
    /// have no run), plus every run's own category.
    pub covered: BTreeSet<String>,
    /// Results the files' runs say were left out when they were built.
    pub omitted: Vec<Omission>,
}

impl Input {
    /// Reads SARIF files.
    pub fn read(files: &[PathBuf]) -> Result<Input, InputError> {
        let mut input = Input::default();
        for path in files {
            let text = std::fs::read(path).map_err(|source| InputError::Read {
                path: path.clone(),
                source,
            })?;
            let log: Value = serde_json::from_slice(&text).map_err(|source| InputError::Json {
                path: path.clone(),
                source,
            })?;
            input.add(&name_of(path), log, path)?;
        }
        Ok(input)
    }

    /// Adds the runs of one parsed log.
    fn add(&mut self, source: &str, log: Value, path: &Path) -> Result<(), InputError> {
        let not_sarif = || InputError::NotSarif {
            path: path.to_path_buf(),
        };
        if log.get("version").and_then(Value::as_str) != Some("2.1.0") {
            return Err(not_sarif());
        }
        let declared = log
            .pointer(&format!(
                "/properties/{}",
                CATEGORIES_PROPERTY.replace('/', "~1")
            ))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string);
        self.covered.extend(declared);
        let Some(Value::Array(runs)) = log.get("runs").cloned() else {
            return Err(not_sarif());
        };
        for run in runs {
            let text = |key: &str| {
                run.pointer(&format!("/properties/{}", key.replace('/', "~1")))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let category = pack::run_category(&run);
            self.covered.insert(category.clone());
            let omitted = run
                .pointer(&format!(
                    "/properties/{}",
                    OMITTED_PROPERTY.replace('/', "~1")
                ))
                .and_then(|v| serde_json::from_value::<Omission>(v.clone()).ok());
            self.omitted.extend(omitted);
            self.runs.push(InputRun {
                source: source.to_string(),
                category,
                tool: pack::run_tool(&run),
                package: text(PACKAGE_PROPERTY),
                repository: text(REPOSITORY_PROPERTY),
                run,
            });
        }
        Ok(())
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A run, package or repository left out of the upload, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The category (or, for a repository, every category bound for it).
    pub category: String,
    /// The repository it was bound for, when known.
    pub repository: Option<String>,
    /// Why it was not uploaded, in words a user can act on.
    pub reason: String,
}

/// The runs bound for each repository, and those that have none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routed {
    /// Runs per destination repository (`owner/repo`), in input order.
    pub destinations: BTreeMap<String, Vec<InputRun>>,
    /// Runs that go nowhere.
    pub skipped: Vec<Skipped>,
}

/// Sends each run to its repository: all to `current` for [`Route::Current`]; to the
/// package's linked repository for [`Route::Linked`], where a run without one is skipped.
pub fn route(runs: Vec<InputRun>, route: Route, current: Option<&str>) -> Routed {
    let mut routed = Routed::default();
    for run in runs {
        let destination = match route {
            Route::Current => current.map(str::to_string),
            Route::Linked => run.repository.clone(),
        };
        match destination {
            Some(repository) => routed.destinations.entry(repository).or_default().push(run),
            None => {
                let reason = match (route, &run.package) {
                    (Route::Linked, Some(package)) => format!(
                        "the package {package} is not linked to a repository: link it in the \
                         package's settings (or with `org.opencontainers.image.source`), or \
                         upload with --route current"
                    ),
                    (Route::Linked, None) => "not a dragnet run, so it names no linked \
                                              repository: upload it with --route current"
                        .to_string(),
                    (Route::Current, _) => "no repository to upload to: pass --repository \
                                            or set GITHUB_REPOSITORY"
                        .to_string(),
                };
                routed.skipped.push(Skipped {
                    category: run.category.clone(),
                    repository: None,
                    reason,
                });
            }
        }
    }
    routed
}

/// A dragnet category a repository has open analyses for, which this upload no longer
/// produces there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleCategory {
    /// The category (`dragnet/products/bfx/old`).
    pub category: String,
    /// Results in its newest analysis: the alerts an empty run will close.
    pub results: u64,
    /// When that analysis was made.
    pub created_at: String,
}

/// The categories to close in one repository: dragnet's (tool `dragnet`, category under
/// `dragnet/`) whose newest analysis still has results, that are not `produced` for this
/// repository and not in `keep` (categories the scans speak for that have no run anywhere:
/// packages whose scan failed, or that could not be routed). Another tool's analyses are
/// never touched. Sorted by category.
pub fn stale_categories(
    analyses: &[Analysis],
    produced: &BTreeSet<String>,
    keep: &BTreeSet<String>,
) -> Vec<StaleCategory> {
    // The newest analysis of each category; GitHub lists newest first, but do not rely on it.
    let mut newest: BTreeMap<&str, &Analysis> = BTreeMap::new();
    for analysis in analyses {
        let ours = analysis.tool.name.as_deref() == Some(TOOL_NAME)
            && crate::sarif::package_of_category(&analysis.category).is_some();
        if !ours {
            continue;
        }
        let category = analysis.category.trim_end_matches('/');
        let entry = newest.entry(category).or_insert(analysis);
        if (&analysis.created_at, analysis.id) > (&entry.created_at, entry.id) {
            *entry = analysis;
        }
    }
    newest
        .into_iter()
        .filter(|(category, analysis)| {
            analysis.results_count > 0 && !produced.contains(*category) && !keep.contains(*category)
        })
        .map(|(category, analysis)| StaleCategory {
            category: category.to_string(),
            results: analysis.results_count,
            created_at: analysis.created_at.clone(),
        })
        .collect()
}

/// The categories to keep everywhere: covered by the scans but produced for no repository.
pub fn kept_categories(input: &Input, routed: &Routed) -> BTreeSet<String> {
    let produced: BTreeSet<&String> = routed
        .destinations
        .values()
        .flatten()
        .map(|r| &r.category)
        .collect();
    input
        .covered
        .iter()
        .filter(|c| !produced.contains(c))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::code_scanning::AnalysisTool;

    fn input_run(category: &str, repository: Option<&str>) -> InputRun {
        InputRun {
            source: "dragnet-001.sarif".into(),
            run: serde_json::json!({}),
            category: category.into(),
            tool: TOOL_NAME.into(),
            package: crate::sarif::package_of_category(category).map(str::to_string),
            repository: repository.map(str::to_string),
        }
    }

    fn analysis(id: u64, tool: &str, category: &str, results: u64) -> Analysis {
        Analysis {
            id,
            git_ref: "refs/heads/main".into(),
            category: category.into(),
            created_at: format!("2024-05-0{id}T00:00:00Z"),
            results_count: results,
            tool: AnalysisTool {
                name: Some(tool.into()),
            },
        }
    }

    #[test]
    fn linked_routing_sends_each_package_to_its_repository_and_names_the_unlinked() {
        let runs = vec![
            input_run("dragnet/a", Some("acme/a")),
            input_run("dragnet/b", None),
            input_run("dragnet/c", Some("acme/a")),
        ];
        let routed = route(runs.clone(), Route::Linked, Some("acme/ci"));
        assert_eq!(routed.destinations.len(), 1);
        assert_eq!(routed.destinations["acme/a"].len(), 2);
        assert_eq!(routed.skipped.len(), 1);
        assert_eq!(routed.skipped[0].category, "dragnet/b");
        assert!(routed.skipped[0].reason.contains("not linked"));

        let routed = route(runs, Route::Current, Some("acme/ci"));
        assert_eq!(routed.destinations["acme/ci"].len(), 3);
        assert!(routed.skipped.is_empty());
    }

    #[test]
    fn stale_are_dragnets_open_categories_no_longer_produced_or_kept() {
        let analyses = [
            analysis(3, TOOL_NAME, "dragnet/gone", 4),
            analysis(2, TOOL_NAME, "dragnet/gone", 0),
            analysis(3, TOOL_NAME, "dragnet/closed", 0),
            analysis(1, TOOL_NAME, "dragnet/closed", 9),
            analysis(3, TOOL_NAME, "dragnet/alive", 2),
            analysis(3, TOOL_NAME, "dragnet/failed", 2),
            analysis(3, "Trivy", "dragnet/trivys", 5),
            analysis(3, TOOL_NAME, "codeql/other", 5),
        ];
        let produced = BTreeSet::from(["dragnet/alive".to_string()]);
        let keep = BTreeSet::from(["dragnet/failed".to_string()]);
        let stale = stale_categories(&analyses, &produced, &keep);
        let names: Vec<&str> = stale.iter().map(|s| s.category.as_str()).collect();
        assert_eq!(names, ["dragnet/gone"], "{stale:?}");
        assert_eq!(stale[0].results, 4);
    }
}
