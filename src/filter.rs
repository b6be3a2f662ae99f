//! Choosing which versions of a package to scan: the filters a user needs when a package has
//! thousands of versions, applied in a fixed order, with a count of what each one removed.
//!
//! Tag filters work tag by tag: a version stays while one of its tags survives, and only the
//! surviving tags are reported. Cosign's `sha256-<hex>.sig`/`.att`/`.sbom` tags name signatures
//! and attestations, not images, and are always dropped. By default every tagged version is kept.

use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::Regex;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::inventory::Version;

/// An invalid `--tags` or `--exclude` value.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// `--tags` is not a regular expression.
    #[error("invalid --tags `{pattern}`: {detail}")]
    Regex { pattern: String, detail: String },
    /// `--exclude` is not a glob.
    #[error("invalid --exclude `{pattern}`: {detail}")]
    Glob { pattern: String, detail: String },
    /// `--latest 0` would keep nothing.
    #[error("--latest must be at least 1; leave it out to keep every version")]
    ZeroLatest,
}

/// The version filters, as given on the command line.
#[derive(Debug, Clone)]
pub struct VersionFilter {
    /// Keep only tags matching this regex (`--tags`); unanchored, as regexes are.
    tags: Option<Regex>,
    /// Drop tags matching any of these globs (`--exclude`).
    exclude: Option<GlobSet>,
    /// Keep the newest N tagged versions of each package (`--latest`).
    latest: Option<usize>,
    /// Keep versions updated within this long before `now` (`--updated-within`).
    updated_within: Option<Duration>,
    /// Keep versions that have no tag (`--include-untagged`).
    include_untagged: bool,
    /// The time `--updated-within` counts back from.
    now: OffsetDateTime,
}

impl Default for VersionFilter {
    fn default() -> Self {
        VersionFilter {
            tags: None,
            exclude: None,
            latest: None,
            updated_within: None,
            include_untagged: false,
            now: OffsetDateTime::now_utc(),
        }
    }
}

/// What selection left out, counted by reason, in versions.
///
/// Filled by discovery (the filters) and by planning (`platform_children`), carried by the
/// plan and the report so that the summary can say what a run did not scan, and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Versions the API (or the registry's tag list) named.
    #[serde(default)]
    pub listed: usize,
    /// Cosign signature, attestation and SBOM versions (`sha256-<hex>.sig` and the like).
    #[serde(default)]
    pub signatures: usize,
    /// Untagged versions left out (no `--include-untagged`).
    #[serde(default)]
    pub untagged: usize,
    /// Versions whose every tag matched `--exclude`.
    #[serde(default)]
    pub excluded: usize,
    /// Versions with no tag matching `--tags`.
    #[serde(default)]
    pub unmatched: usize,
    /// Versions not updated within `--updated-within`.
    #[serde(default)]
    pub stale: usize,
    /// Tagged versions older than the newest `--latest` N.
    #[serde(default)]
    pub beyond_latest: usize,
    /// Untagged versions that are platform (or attestation) manifests of a tagged multi-platform
    /// image: scanned through that image, not as orphans.
    #[serde(default)]
    pub platform_children: usize,
}

impl Selection {
    /// Whether nothing was counted at all (a report built without discovery's numbers).
    pub fn is_empty(&self) -> bool {
        *self == Selection::default()
    }

    /// Adds another package's counts.
    pub fn add(&mut self, other: &Selection) {
        self.listed += other.listed;
        self.signatures += other.signatures;
        self.untagged += other.untagged;
        self.excluded += other.excluded;
        self.unmatched += other.unmatched;
        self.stale += other.stale;
        self.beyond_latest += other.beyond_latest;
        self.platform_children += other.platform_children;
    }

    /// Each non-zero reason with its count, in the order the filters run, for logs and the
    /// summary: `[("untagged", 12), ("--latest", 800)]`.
    pub fn reasons(&self) -> Vec<(&'static str, usize)> {
        [
            ("signatures and attestations", self.signatures),
            ("untagged", self.untagged),
            ("--exclude", self.excluded),
            ("--tags", self.unmatched),
            ("--updated-within", self.stale),
            ("--latest", self.beyond_latest),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .collect()
    }
}

/// Whether a tag names a cosign signature, attestation or SBOM (`sha256-<64 hex>.sig`) rather
/// than an image.
pub fn is_cosign_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else {
        return false;
    };
    let Some((hex, suffix)) = rest.split_once('.') else {
        return false;
    };
    hex.len() == 64
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && matches!(suffix, "sig" | "att" | "sbom")
}

impl VersionFilter {
    /// Builds the filters; `None` and empty values leave their filter off.
    pub fn new(
        tags: Option<&str>,
        exclude: &[String],
        latest: Option<usize>,
        updated_within: Option<Duration>,
        include_untagged: bool,
    ) -> Result<VersionFilter, FilterError> {
        let tags = tags
            .map(|pattern| {
                Regex::new(pattern).map_err(|e| FilterError::Regex {
                    pattern: pattern.to_string(),
                    detail: first_line(&e.to_string()),
                })
            })
            .transpose()?;
        let exclude = if exclude.is_empty() {
            None
        } else {
            let mut set = GlobSetBuilder::new();
            for pattern in exclude {
                let glob = Glob::new(pattern).map_err(|e| FilterError::Glob {
                    pattern: pattern.clone(),
                    detail: e.kind().to_string(),
                })?;
                set.add(glob);
            }
            Some(set.build().map_err(|e| FilterError::Glob {
                pattern: exclude.join(" "),
                detail: e.to_string(),
            })?)
        };
        if latest == Some(0) {
            return Err(FilterError::ZeroLatest);
        }
        Ok(VersionFilter {
            tags,
            exclude,
            latest,
            updated_within,
            include_untagged,
            now: OffsetDateTime::now_utc(),
        })
    }

    /// The same filters counting `--updated-within` back from `now` (for tests).
    pub fn at(mut self, now: OffsetDateTime) -> VersionFilter {
        self.now = now;
        self
    }

    /// Whether untagged versions are kept.
    pub fn includes_untagged(&self) -> bool {
        self.include_untagged
    }

    /// Whether a filter needs the versions' times (`--latest`, `--updated-within`).
    pub fn needs_times(&self) -> bool {
        self.latest.is_some() || self.updated_within.is_some()
    }

    /// Whether a tag survives the tag filters (cosign tags, `--exclude`, `--tags`).
    pub fn keeps_tag(&self, tag: &str) -> bool {
        self.tag_verdict(tag) == TagVerdict::Kept
    }

    fn tag_verdict(&self, tag: &str) -> TagVerdict {
        if is_cosign_tag(tag) {
            TagVerdict::Signature
        } else if self.exclude.as_ref().is_some_and(|set| set.is_match(tag)) {
            TagVerdict::Excluded
        } else if self.tags.as_ref().is_some_and(|re| !re.is_match(tag)) {
            TagVerdict::Unmatched
        } else {
            TagVerdict::Kept
        }
    }

    /// Applies the tag filters to a bare tag list (the registry's, which has no versions or
    /// times), counting each tag as a version.
    pub fn apply_to_tags(&self, tags: Vec<String>) -> (Vec<String>, Selection) {
        let mut counts = Selection {
            listed: tags.len(),
            ..Selection::default()
        };
        let mut kept = Vec::with_capacity(tags.len());
        for tag in tags {
            match self.tag_verdict(&tag) {
                TagVerdict::Kept => kept.push(tag),
                TagVerdict::Signature => counts.signatures += 1,
                TagVerdict::Excluded => counts.excluded += 1,
                TagVerdict::Unmatched => counts.unmatched += 1,
            }
        }
        (kept, counts)
    }

    /// Filters one package's versions (newest first, as the API lists them) and counts what
    /// each filter removed.
    pub fn apply(&self, versions: Vec<Version>) -> (Vec<Version>, Selection) {
        let mut counts = Selection {
            listed: versions.len(),
            ..Selection::default()
        };

        // Tag filters, tag by tag. A version that loses every tag is charged to `--tags` if a
        // tag failed it, else to `--exclude`, else to the signatures.
        let mut kept = Vec::with_capacity(versions.len());
        for mut version in versions {
            if version.tags.is_empty() {
                if self.include_untagged {
                    kept.push(version);
                } else {
                    counts.untagged += 1;
                }
                continue;
            }
            let verdicts: Vec<TagVerdict> =
                version.tags.iter().map(|t| self.tag_verdict(t)).collect();
            if verdicts.contains(&TagVerdict::Kept) {
                let mut verdict = verdicts.iter();
                version
                    .tags
                    .retain(|_| verdict.next() == Some(&TagVerdict::Kept));
                kept.push(version);
            } else if verdicts.contains(&TagVerdict::Unmatched) {
                counts.unmatched += 1;
            } else if verdicts.contains(&TagVerdict::Excluded) {
                counts.excluded += 1;
            } else {
                counts.signatures += 1;
            }
        }

        // Time: a version whose time is unknown is kept, since nothing says it is stale.
        if let Some(within) = self.updated_within {
            let since = self.now - within;
            let before = kept.len();
            kept.retain(|v| updated_at(v).is_none_or(|at| at >= since));
            counts.stale = before - kept.len();
        }

        // The newest N tagged versions: by update time, the API's order breaking ties.
        if let Some(latest) = self.latest {
            let mut tagged: Vec<(usize, Option<OffsetDateTime>)> = kept
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.tags.is_empty())
                .map(|(i, v)| (i, updated_at(v)))
                .collect();
            tagged.sort_by(|(ia, a), (ib, b)| b.cmp(a).then(ia.cmp(ib)));
            let mut drop = vec![false; kept.len()];
            for (index, _) in tagged.iter().skip(latest) {
                drop[*index] = true;
            }
            counts.beyond_latest = drop.iter().filter(|d| **d).count();
            let mut flags = drop.into_iter();
            kept.retain(|_| !flags.next().unwrap_or(false));
        }
        (kept, counts)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagVerdict {
    Kept,
    Signature,
    Excluded,
    Unmatched,
}

fn updated_at(version: &Version) -> Option<OffsetDateTime> {
    version
        .updated_at
        .as_deref()
        .and_then(|text| OffsetDateTime::parse(text, &Rfc3339).ok())
}

/// The regex crate's errors span several lines with a caret diagram; the last line says what
/// is wrong.
fn first_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|line| !line.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const SIG: &str = "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig";

    fn version(id: u64, tags: &[&str], updated_at: &str) -> Version {
        Version {
            id,
            digest: format!("sha256:{id:064x}"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            updated_at: Some(updated_at.to_string()),
        }
    }

    fn tags_of(versions: &[Version]) -> Vec<String> {
        versions.iter().map(|v| v.tags.join(",")).collect()
    }

    fn filter(tags: Option<&str>, exclude: &[&str], latest: Option<usize>) -> VersionFilter {
        let exclude: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        VersionFilter::new(tags, &exclude, latest, None, false).unwrap()
    }

    #[test]
    fn by_default_keeps_every_tagged_version_and_drops_untagged_and_signatures() {
        let versions = vec![
            version(4, &[SIG], "2024-01-04T00:00:00Z"),
            version(3, &["2.0", "latest"], "2024-01-03T00:00:00Z"),
            version(2, &[], "2024-01-02T00:00:00Z"),
            version(1, &["1.0"], "2024-01-01T00:00:00Z"),
        ];
        let (kept, counts) = VersionFilter::default().apply(versions);
        assert_eq!(tags_of(&kept), ["2.0,latest", "1.0"]);
        assert_eq!(counts.listed, 4);
        assert_eq!(counts.signatures, 1);
        assert_eq!(counts.untagged, 1);
        assert_eq!(
            counts.reasons(),
            [("signatures and attestations", 1), ("untagged", 1)]
        );
    }

    #[test]
    fn tag_filters_work_tag_by_tag() {
        let versions = vec![
            version(3, &["pr-12", "2.0"], "2024-01-03T00:00:00Z"),
            version(2, &["pr-11"], "2024-01-02T00:00:00Z"),
            version(1, &["nightly"], "2024-01-01T00:00:00Z"),
        ];
        let (kept, counts) = filter(Some(r"^\d+\.\d+$|^pr-"), &["pr-*"], None).apply(versions);
        assert_eq!(tags_of(&kept), ["2.0"], "the excluded tag is not reported");
        assert_eq!((counts.excluded, counts.unmatched), (1, 1));
    }

    #[test]
    fn latest_keeps_the_newest_tagged_versions_by_time() {
        // Listed out of time order: the times decide, not the listing.
        let versions = vec![
            version(1, &["1.0"], "2024-01-01T00:00:00Z"),
            version(3, &["3.0"], "2024-03-01T00:00:00Z"),
            version(2, &["2.0"], "2024-02-01T00:00:00Z"),
        ];
        let (kept, counts) = filter(None, &[], Some(2)).apply(versions);
        assert_eq!(tags_of(&kept), ["3.0", "2.0"]);
        assert_eq!(counts.beyond_latest, 1);
    }

    #[test]
    fn updated_within_counts_back_from_now_and_keeps_unknown_times() {
        let mut unknown = version(9, &["unknown"], "");
        unknown.updated_at = None;
        let versions = vec![
            version(2, &["new"], "2024-06-09T00:00:00Z"),
            version(1, &["old"], "2024-01-01T00:00:00Z"),
            unknown,
        ];
        let filter = VersionFilter::new(
            None,
            &[],
            None,
            Some(Duration::from_secs(7 * 86_400)),
            false,
        )
        .unwrap()
        .at(datetime!(2024-06-10 00:00 UTC));
        let (kept, counts) = filter.apply(versions);
        assert_eq!(tags_of(&kept), ["new", "unknown"]);
        assert_eq!(counts.stale, 1);
    }

    #[test]
    fn untagged_versions_stay_when_asked_and_do_not_count_for_latest() {
        let versions = vec![
            version(3, &[], "2024-01-03T00:00:00Z"),
            version(2, &["2.0"], "2024-01-02T00:00:00Z"),
            version(1, &["1.0"], "2024-01-01T00:00:00Z"),
        ];
        let filter = VersionFilter::new(None, &[], Some(1), None, true).unwrap();
        let (kept, counts) = filter.apply(versions);
        assert_eq!(tags_of(&kept), ["", "2.0"]);
        assert_eq!((counts.untagged, counts.beyond_latest), (0, 1));
    }

    #[test]
    fn a_bare_tag_list_is_filtered_tag_by_tag() {
        let tags = ["1.0", "pr-3", "nightly", SIG].map(String::from).to_vec();
        let (kept, counts) = filter(Some(r"^\d|^pr-"), &["pr-*"], None).apply_to_tags(tags);
        assert_eq!(kept, ["1.0"]);
        assert_eq!(
            (
                counts.listed,
                counts.excluded,
                counts.unmatched,
                counts.signatures
            ),
            (4, 1, 1, 1)
        );
    }

    #[test]
    fn recognises_cosign_tags_only_in_their_exact_shape() {
        assert!(is_cosign_tag(SIG));
        assert!(is_cosign_tag(&SIG.replace(".sig", ".att")));
        assert!(is_cosign_tag(&SIG.replace(".sig", ".sbom")));
        assert!(!is_cosign_tag("sha256-abc.sig"));
        assert!(!is_cosign_tag(&SIG.replace(".sig", ".tar")));
        assert!(!is_cosign_tag("1.0.sig"));
    }

    #[test]
    fn invalid_values_name_the_flag() {
        let error = VersionFilter::new(Some("(unclosed"), &[], None, None, false).unwrap_err();
        assert!(
            error.to_string().starts_with("invalid --tags `(unclosed`"),
            "{error}"
        );
        let error = VersionFilter::new(None, &["[x".into()], None, None, false).unwrap_err();
        assert!(
            error.to_string().starts_with("invalid --exclude `[x`"),
            "{error}"
        );
        let error = VersionFilter::new(None, &[], Some(0), None, false).unwrap_err();
        assert!(error.to_string().contains("--latest"), "{error}");
    }
}
