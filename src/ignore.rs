//! Findings ignored on purpose, each with where the decision is written and why.
//!
//! Three forms are read: Trivy's `.trivyignore` (one id a line, `#` comments, optional
//! `exp:YYYY-MM-DD`; the comment above an id is its reason), its YAML form
//! (`.trivyignore.yaml`: `vulnerabilities:` with `id`, `paths`, `purls`, `expired_at`,
//! `statement`), and dragnet's allowlist (YAML, like Harbor's CVE allowlist but with a reason
//! and an expiry date on every entry). An expired entry no longer ignores anything and is
//! reported, so that a risk accepted for a while does not stay accepted silently. Trivy itself
//! is always run with an empty ignore file: ignoring happens here, where it can be counted.
//! YAML is read with `serde-saphyr` (pure Rust, no unsafe, maintained; `serde_yaml` is
//! archived and `serde_yml` deprecated and unsound).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::Date;
use time::macros::format_description;

use crate::finding::Finding;

/// An ignore file or allowlist that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("cannot read the ignore file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid YAML for {what}: {detail}", path.display())]
    Yaml {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("{location}: {problem}")]
    Entry { location: String, problem: String },
}

/// Why a finding is ignored: the entry that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoreReason {
    /// Where the entry is written (`.trivyignore:12`, `allowlist.yaml: entry 3`).
    pub source: String,
    /// The reason given, when there is one (always, for an allowlist).
    pub reason: Option<String>,
    /// The last day the entry applies (`YYYY-MM-DD`), when it has one.
    pub expires: Option<String>,
}

/// One entry: a vulnerability id, optionally narrowed to installed packages or paths.
#[derive(Debug, Clone)]
pub struct IgnoreRule {
    /// The vulnerability id (`CVE-2023-5363`), compared without regard to case.
    pub id: String,
    /// Installed package names it is limited to (from `purls` or an allowlist's
    /// `packages`); empty for any.
    pub packages: Vec<PackageMatch>,
    /// Package paths it is limited to (globs); empty for any.
    pub paths: Vec<globset::GlobMatcher>,
    /// The last day it applies.
    pub expires: Option<Date>,
    /// Where it is written and why.
    pub reason: IgnoreReason,
}

/// An installed package an entry is limited to: a name, and a version when the purl has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageMatch {
    pub name: String,
    pub version: Option<String>,
}

/// Every entry in force, and those that have expired.
#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    rules: Vec<IgnoreRule>,
    expired: Vec<IgnoreRule>,
}

impl IgnoreList {
    /// Reads Trivy ignore files (text, or YAML when named `*.yaml`/`*.yml`) and dragnet
    /// allowlists, keeping the entries in force on `today` and setting the expired aside.
    pub fn load(
        ignorefiles: &[PathBuf],
        allowlists: &[PathBuf],
        today: Date,
    ) -> Result<IgnoreList, IgnoreError> {
        let mut all = Vec::new();
        for path in ignorefiles {
            let text = read(path)?;
            let yaml = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
            if yaml {
                all.extend(parse_trivy_yaml(path, &text)?);
            } else {
                all.extend(parse_trivyignore(path, &text)?);
            }
        }
        for path in allowlists {
            all.extend(parse_allowlist(path, &read(path)?)?);
        }

        let (rules, expired): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|rule| rule.expires.is_none_or(|last| last >= today));
        for rule in &expired {
            tracing::warn!(
                "{}: the entry for {} expired on {}: its findings are reported again; renew \
                 or remove it",
                rule.reason.source,
                rule.id,
                rule.reason.expires.as_deref().unwrap_or("?")
            );
        }
        if !rules.is_empty() {
            tracing::info!("{} ignore entries in force", rules.len());
        }
        Ok(IgnoreList { rules, expired })
    }

    /// True when nothing is ignored and nothing expired.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.expired.is_empty()
    }

    /// The entries in force.
    pub fn rules(&self) -> &[IgnoreRule] {
        &self.rules
    }

    /// The entries that have expired.
    pub fn expired(&self) -> &[IgnoreRule] {
        &self.expired
    }

    /// The first entry in force that ignores `finding`.
    pub fn matching(&self, finding: &Finding) -> Option<&IgnoreRule> {
        self.rules.iter().find(|rule| rule.matches(finding))
    }
}

impl IgnoreRule {
    /// Whether this entry ignores `finding` (expiry aside).
    pub fn matches(&self, finding: &Finding) -> bool {
        if !self.id.eq_ignore_ascii_case(&finding.vulnerability_id) {
            return false;
        }
        let package_ok = self.packages.is_empty()
            || self.packages.iter().any(|p| {
                p.name.eq_ignore_ascii_case(&finding.package_name)
                    && p.version
                        .as_deref()
                        .is_none_or(|v| v == finding.installed_version)
            });
        let path_ok = self.paths.is_empty()
            || finding
                .package_path
                .as_deref()
                .is_some_and(|path| self.paths.iter().any(|glob| glob.is_match(path)));
        package_ok && path_ok
    }
}

impl fmt::Display for IgnoreRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.id, self.reason.source)
    }
}

fn read(path: &Path) -> Result<String, IgnoreError> {
    std::fs::read_to_string(path).map_err(|source| IgnoreError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn file_name(path: &Path) -> String {
    path.display().to_string()
}

/// `YYYY-MM-DD`, or the date part of an RFC 3339 time.
fn parse_date(text: &str) -> Option<Date> {
    let day = text.trim().get(..10)?;
    Date::parse(day, format_description!("[year]-[month]-[day]")).ok()
}

/// A vulnerability id as ids are written: letters, digits, `-`, `_`, `.` and `:`.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

/// Trivy's text form.
fn parse_trivyignore(path: &Path, text: &str) -> Result<Vec<IgnoreRule>, IgnoreError> {
    let mut rules = Vec::new();
    let mut comment: Vec<String> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let location = format!("{}:{}", file_name(path), index + 1);
        let line = line.trim();
        if line.is_empty() {
            comment.clear();
            continue;
        }
        if let Some(text) = line.strip_prefix('#') {
            comment.push(text.trim().to_string());
            continue;
        }
        let (entry, trailing) = match line.split_once(" #") {
            Some((entry, trailing)) => (entry, Some(trailing.trim().to_string())),
            None => (line, None),
        };
        let mut fields = entry.split_whitespace();
        let id = fields.next().unwrap_or_default().to_string();
        if !valid_id(&id) {
            return Err(IgnoreError::Entry {
                location,
                problem: format!(
                    "`{}` is not a vulnerability id; write one id a line (CVE-2023-5363), \
                     optionally followed by exp:YYYY-MM-DD",
                    id.escape_debug()
                ),
            });
        }
        let mut expires = None;
        for field in fields {
            match field.strip_prefix("exp:") {
                Some(date) => {
                    let parsed = parse_date(date).ok_or_else(|| IgnoreError::Entry {
                        location: location.clone(),
                        problem: format!("`{date}` is not a date: write exp:YYYY-MM-DD"),
                    })?;
                    expires = Some((parsed, date.to_string()));
                }
                None => tracing::debug!("{location}: ignoring the unknown field `{field}`"),
            }
        }
        let mut reasons: Vec<String> = comment.drain(..).filter(|c| !c.is_empty()).collect();
        reasons.extend(trailing.filter(|t| !t.is_empty()));
        rules.push(IgnoreRule {
            id,
            packages: Vec::new(),
            paths: Vec::new(),
            expires: expires.as_ref().map(|(date, _)| *date),
            reason: IgnoreReason {
                source: location,
                reason: (!reasons.is_empty()).then(|| reasons.join(" ")),
                expires: expires.map(|(_, text)| text),
            },
        });
    }
    Ok(rules)
}

/// Trivy's YAML form; only `vulnerabilities` concern an image scan.
#[derive(Debug, Deserialize)]
struct TrivyYaml {
    #[serde(default)]
    vulnerabilities: Vec<TrivyYamlEntry>,
}

#[derive(Debug, Deserialize)]
struct TrivyYamlEntry {
    id: String,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    purls: Vec<String>,
    #[serde(default)]
    expired_at: Option<String>,
    #[serde(default)]
    statement: Option<String>,
}

fn parse_trivy_yaml(path: &Path, text: &str) -> Result<Vec<IgnoreRule>, IgnoreError> {
    let parsed: TrivyYaml = if text.trim().is_empty() {
        TrivyYaml {
            vulnerabilities: Vec::new(),
        }
    } else {
        serde_saphyr::from_str(text).map_err(|e| IgnoreError::Yaml {
            path: path.to_path_buf(),
            what: "a Trivy ignore file (vulnerabilities: - id: CVE-…)",
            detail: e.to_string(),
        })?
    };
    parsed
        .vulnerabilities
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let location = format!("{}: vulnerability {}", file_name(path), index + 1);
            let packages = entry
                .purls
                .iter()
                .map(|purl| {
                    package_of_purl(purl).ok_or_else(|| IgnoreError::Entry {
                        location: location.clone(),
                        problem: format!(
                            "`{purl}` is not a package URL such as pkg:deb/debian/libssl3"
                        ),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rule(
                location,
                entry.id,
                packages,
                &entry.paths,
                entry.expired_at,
                entry.statement,
            )
        })
        .collect()
}

/// dragnet's allowlist.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Allowlist {
    #[serde(default)]
    allowlist: Vec<AllowlistEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistEntry {
    id: String,
    reason: Option<String>,
    expires: Option<String>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
}

fn parse_allowlist(path: &Path, text: &str) -> Result<Vec<IgnoreRule>, IgnoreError> {
    let parsed: Allowlist = serde_saphyr::from_str(text).map_err(|e| IgnoreError::Yaml {
        path: path.to_path_buf(),
        what: "an allowlist (allowlist: - id, reason, expires)",
        detail: e.to_string(),
    })?;
    parsed
        .allowlist
        .into_iter()
        .enumerate()
        .map(|(index, entry)| {
            let location = format!("{}: entry {} ({})", file_name(path), index + 1, entry.id);
            let missing = |field: &str, example: &str| IgnoreError::Entry {
                location: location.clone(),
                problem: format!(
                    "every allowlist entry needs `{field}` ({example}): an accepted risk says \
                     why, and until when"
                ),
            };
            let reason = entry
                .reason
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| missing("reason", "reason: not reachable, we never parse X.509"))?;
            let expires = entry
                .expires
                .ok_or_else(|| missing("expires", "expires: 2025-06-30"))?;
            let packages = entry
                .packages
                .into_iter()
                .map(|name| PackageMatch {
                    name,
                    version: None,
                })
                .collect();
            rule(
                location.clone(),
                entry.id,
                packages,
                &entry.paths,
                Some(expires),
                Some(reason),
            )
        })
        .collect()
}

/// Checks and assembles one YAML entry.
fn rule(
    location: String,
    id: String,
    packages: Vec<PackageMatch>,
    paths: &[String],
    expires: Option<String>,
    reason: Option<String>,
) -> Result<IgnoreRule, IgnoreError> {
    let problem = |problem: String| IgnoreError::Entry {
        location: location.clone(),
        problem,
    };
    if !valid_id(id.trim()) {
        return Err(problem(format!(
            "`{}` is not a vulnerability id such as CVE-2023-5363",
            id.escape_debug()
        )));
    }
    let expires = match expires {
        Some(text) => Some((
            parse_date(&text)
                .ok_or_else(|| problem(format!("`{text}` is not a date: write YYYY-MM-DD")))?,
            text.trim().get(..10).unwrap_or_default().to_string(),
        )),
        None => None,
    };
    let paths = paths
        .iter()
        .map(|glob| {
            globset::GlobBuilder::new(glob)
                .literal_separator(true)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| problem(format!("`{glob}` is not a path glob: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(IgnoreRule {
        id: id.trim().to_string(),
        packages,
        paths,
        expires: expires.as_ref().map(|(date, _)| *date),
        reason: IgnoreReason {
            source: location,
            reason: reason
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty()),
            expires: expires.map(|(_, text)| text),
        },
    })
}

/// The package a purl names: `pkg:deb/debian/libssl3@3.0.11-1?arch=amd64` is `libssl3` at
/// `3.0.11-1`.
fn package_of_purl(purl: &str) -> Option<PackageMatch> {
    let rest = purl.trim().strip_prefix("pkg:")?;
    let rest = rest.split(['?', '#']).next()?;
    let (path, version) = match rest.rsplit_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (rest, None),
    };
    let name = path.rsplit('/').next()?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    (!name.is_empty() && path.contains('/')).then(|| PackageMatch {
        name: decode(name),
        version: version.map(decode),
    })
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;
    use crate::finding::Severity;

    fn finding(id: &str, package: &str, version: &str) -> Finding {
        Finding {
            vulnerability_id: id.into(),
            package_name: package.into(),
            installed_version: version.into(),
            fixed_version: None,
            severity: Severity::High,
            status: None,
            package_path: None,
            class: "os-pkgs".into(),
            package_type: "debian".into(),
            title: None,
            description: None,
            cvss_score: None,
            cwe_ids: vec![],
            primary_url: None,
            references: vec![],
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_trivyignore_with_comments_as_reasons_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            ".trivyignore",
            "# Not reachable: we never parse X.509.\nCVE-2023-0001\n\n\
             CVE-2023-0002 exp:2024-01-31\nCVE-2023-0003 exp:2030-01-01 # waiting for Debian\n",
        );
        let list = IgnoreList::load(&[file], &[], date!(2024 - 06 - 01)).unwrap();
        assert_eq!(list.rules().len(), 2);
        assert_eq!(list.expired().len(), 1);
        assert_eq!(list.expired()[0].id, "CVE-2023-0002");
        let first = list.matching(&finding("cve-2023-0001", "x", "1")).unwrap();
        assert_eq!(
            first.reason.reason.as_deref(),
            Some("Not reachable: we never parse X.509.")
        );
        assert!(first.reason.source.ends_with(".trivyignore:2"));
        let third = list.matching(&finding("CVE-2023-0003", "x", "1")).unwrap();
        assert_eq!(third.reason.reason.as_deref(), Some("waiting for Debian"));
        assert_eq!(third.reason.expires.as_deref(), Some("2030-01-01"));
        assert!(
            list.matching(&finding("CVE-2023-0002", "x", "1")).is_none(),
            "expired"
        );

        let bad = write(dir.path(), "bad", "CVE-1 exp:soon\n");
        let error = IgnoreList::load(&[bad], &[], date!(2024 - 06 - 01)).unwrap_err();
        assert!(error.to_string().contains("exp:YYYY-MM-DD"), "{error}");
    }

    #[test]
    fn reads_trivys_yaml_form_with_purls_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            ".trivyignore.yaml",
            "vulnerabilities:\n  - id: CVE-2023-2650\n    purls:\n      - pkg:deb/debian/libssl3@3.0.11-1?arch=amd64\n    \
             statement: Accept the risk\n    expired_at: 2030-09-01\n  - id: CVE-2022-40897\n    \
             paths:\n      - usr/local/lib/python3.11/site-packages/*/METADATA\n\
             misconfigurations:\n  - id: AVD-DS-0002\n",
        );
        let list = IgnoreList::load(&[file], &[], date!(2024 - 06 - 01)).unwrap();
        assert_eq!(list.rules().len(), 2);
        let rule = list
            .matching(&finding("CVE-2023-2650", "libssl3", "3.0.11-1"))
            .unwrap();
        assert_eq!(rule.reason.reason.as_deref(), Some("Accept the risk"));
        assert!(
            list.matching(&finding("CVE-2023-2650", "libssl3", "3.0.13-1"))
                .is_none()
        );
        assert!(
            list.matching(&finding("CVE-2023-2650", "openssl", "3.0.11-1"))
                .is_none()
        );
        let mut python = finding("CVE-2022-40897", "setuptools", "58.1.0");
        assert!(list.matching(&python).is_none(), "no path, no match");
        python.package_path = Some(
            "usr/local/lib/python3.11/site-packages/setuptools-58.1.0.dist-info/METADATA".into(),
        );
        assert!(list.matching(&python).is_some());
    }

    #[test]
    fn allowlist_entries_need_a_reason_and_an_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(
            dir.path(),
            "allowlist.yaml",
            "allowlist:\n  - id: CVE-2024-6387\n    reason: sshd is not running in these images\n    \
             expires: 2030-06-30\n    packages: [openssh-client]\n  - id: CVE-2020-1\n    \
             reason: old\n    expires: 2021-01-01\n",
        );
        let list = IgnoreList::load(&[], &[good], date!(2024 - 06 - 01)).unwrap();
        assert_eq!((list.rules().len(), list.expired().len()), (1, 1));
        let rule = list
            .matching(&finding("CVE-2024-6387", "openssh-client", "1:9.2p1-2"))
            .unwrap();
        assert_eq!(
            rule.reason.reason.as_deref(),
            Some("sshd is not running in these images")
        );
        assert!(rule.reason.source.contains("entry 1 (CVE-2024-6387)"));

        for (text, expected) in [
            (
                "allowlist:\n  - id: CVE-1\n    expires: 2030-01-01\n",
                "needs `reason`",
            ),
            (
                "allowlist:\n  - id: CVE-1\n    reason: x\n",
                "needs `expires`",
            ),
            (
                "allowlist:\n  - id: CVE-1\n    reason: x\n    expires: tomorrow\n",
                "not a date",
            ),
            ("allowlist:\n  - cve: CVE-1\n", "not valid YAML"),
        ] {
            let file = write(dir.path(), "x.yaml", text);
            let error = IgnoreList::load(&[], &[file], date!(2024 - 06 - 01))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
