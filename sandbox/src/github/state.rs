//! The emulator's whole world: accounts, packages, tokens, repositories, uploads, analyses, rate
//! buckets, armed faults and the request log, behind one mutex. Nothing here does I/O, so the
//! lock is only ever held for a few lines and never across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{
    Analysis, Fault, OwnerKind, PackageSpec, RecordedRequest, SarifUpload, TokenKind, VersionSpec,
    Visibility,
};
use crate::token::TokenIssuer;

/// The length of a rate-limit window, as on GitHub.
const WINDOW_SECS: u64 = 3600;

/// Locks the state, recovering it if a panicking test thread poisoned the mutex: the state is
/// plain data and stays consistent between statements.
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Seconds since the Unix epoch.
pub(crate) fn epoch_now() -> u64 {
    OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

/// Formats a time the way GitHub does: `2024-01-01T00:00:00Z`, whole seconds, UTC.
pub(crate) fn github_time(time: OffsetDateTime) -> String {
    let utc = time
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(time);
    utc.format(&Rfc3339).unwrap_or_default()
}

/// An account.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub login: String,
    pub id: u64,
    pub kind: OwnerKind,
}

/// A container package.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    pub id: u64,
    /// The owner's key in [`State::owners`] (the login lowercased).
    pub owner: String,
    pub name: String,
    pub visibility: Visibility,
    pub repository: Option<String>,
    pub actions_access: Vec<String>,
    /// Versions in creation order; answers sort them newest first.
    pub versions: Vec<Version>,
    pub created_at: OffsetDateTime,
}

impl Package {
    /// Versions newest first, as GitHub lists them.
    pub fn versions_newest_first(&self) -> Vec<&Version> {
        let mut versions: Vec<&Version> = self.versions.iter().collect();
        versions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        versions
    }

    /// The latest change to the package or any version.
    pub fn updated_at(&self) -> OffsetDateTime {
        self.versions
            .iter()
            .map(|v| v.updated_at)
            .max()
            .unwrap_or(self.created_at)
    }
}

/// A package version.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub id: u64,
    pub digest: String,
    pub tags: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A repository, known because it was added or because a package links to it.
#[derive(Debug, Clone)]
pub(crate) struct Repository {
    pub id: u64,
    pub full_name: String,
    /// Whether code scanning is enabled (only for [`super::Emulator::add_repository`]).
    pub code_scanning: bool,
}

/// One run of an uploaded SARIF file, summarised for its analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunSummary {
    pub tool_name: String,
    pub tool_version: Option<String>,
    pub tool_guid: Option<String>,
    pub category: String,
    pub results_count: usize,
    pub rules_count: usize,
}

/// An accepted upload and where it is in processing.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub view: SarifUpload,
    /// The lowercased repository key.
    pub repo_key: String,
    /// What processing will conclude, decided when the upload arrived.
    pub outcome: Result<Vec<RunSummary>, Vec<String>>,
    /// How many times its status was read.
    pub reads: u32,
    pub processed: bool,
}

/// An analysis made from one run of a processed upload.
#[derive(Debug, Clone)]
pub(crate) struct AnalysisRecord {
    pub id: u64,
    pub repo_key: String,
    pub repository: String,
    pub sarif_id: String,
    pub git_ref: String,
    pub commit_sha: String,
    pub run: RunSummary,
    pub created_at: OffsetDateTime,
}

/// Who is calling, resolved from the `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    Anonymous,
    Token { token: String, kind: TokenKind },
}

/// Which counter a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Core,
    CodeScanningUpload,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Core => "core",
            Resource::CodeScanningUpload => "code_scanning_upload",
        }
    }
}

/// Whose allowance a request uses: Actions tokens share one per repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum BucketKey {
    Anonymous,
    Token(String),
    Repository(String),
}

impl BucketKey {
    pub fn of(caller: &Caller) -> BucketKey {
        match caller {
            Caller::Anonymous => BucketKey::Anonymous,
            Caller::Token {
                kind: TokenKind::Actions { repository },
                ..
            } => BucketKey::Repository(repository.to_lowercase()),
            Caller::Token { token, .. } => BucketKey::Token(token.clone()),
        }
    }

    /// The hourly limit of `resource` for this caller.
    pub fn limit(&self, resource: Resource) -> u64 {
        match (self, resource) {
            (BucketKey::Anonymous, Resource::Core) => 60,
            (BucketKey::Anonymous, Resource::CodeScanningUpload) => 0,
            (BucketKey::Token(_), Resource::Core) => 5000,
            (BucketKey::Repository(_), Resource::Core) => 1000,
            (_, Resource::CodeScanningUpload) => 1000,
        }
    }
}

/// One rate-limit reading, as the headers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateReading {
    pub limit: u64,
    pub used: u64,
    pub reset: u64,
    pub resource: Resource,
}

impl RateReading {
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }
}

/// A fault waiting for matching requests.
#[derive(Debug, Clone)]
pub(crate) struct ArmedFault {
    pub prefix: String,
    pub remaining: usize,
    pub fault: Fault,
}

/// Everything the emulator knows.
pub(crate) struct State {
    pub base_url: String,
    pub owners: BTreeMap<String, Owner>,
    pub packages: Vec<Package>,
    /// Where each package is in `packages`, by (lowercased owner, name): lookups stay constant
    /// time for organizations of thousands of packages.
    package_index: HashMap<(String, String), usize>,
    pub tokens: HashMap<String, TokenKind>,
    pub repositories: BTreeMap<String, Repository>,
    pub uploads: Vec<Upload>,
    pub analyses: Vec<AnalysisRecord>,
    pub requests: Vec<RecordedRequest>,
    pub faults: Vec<ArmedFault>,
    pub registry_tokens: Option<Arc<TokenIssuer>>,
    pub pending_polls: u32,
    buckets: HashMap<(BucketKey, &'static str), u64>,
    window_reset: u64,
    next_owner_id: u64,
    next_repository_id: u64,
    next_package_id: u64,
    next_version_id: u64,
    next_analysis_id: u64,
    next_upload: u64,
    /// Counts default timestamps handed out, so that each is a minute after the last.
    clock: i64,
}

impl State {
    pub fn new(base_url: &str) -> State {
        State {
            base_url: base_url.to_string(),
            owners: BTreeMap::new(),
            packages: Vec::new(),
            package_index: HashMap::new(),
            tokens: HashMap::new(),
            repositories: BTreeMap::new(),
            uploads: Vec::new(),
            analyses: Vec::new(),
            requests: Vec::new(),
            faults: Vec::new(),
            registry_tokens: None,
            pending_polls: 1,
            buckets: HashMap::new(),
            window_reset: epoch_now() + WINDOW_SECS,
            next_owner_id: 1001,
            next_repository_id: 500_001,
            next_package_id: 20_001,
            next_version_id: 3_000_001,
            next_analysis_id: 1,
            next_upload: 1,
            clock: 0,
        }
    }

    /// The next default timestamp: 2024-01-01T00:00:00Z plus one minute per call.
    fn tick(&mut self) -> OffsetDateTime {
        self.clock += 1;
        datetime!(2024-01-01 00:00 UTC) + Duration::minutes(self.clock)
    }

    pub fn add_owner(&mut self, login: &str, kind: OwnerKind) {
        let key = login.to_lowercase();
        if let Some(owner) = self.owners.get_mut(&key) {
            owner.kind = kind;
            return;
        }
        let id = self.next_owner_id;
        self.next_owner_id += 1;
        self.owners.insert(
            key,
            Owner {
                login: login.to_string(),
                id,
                kind,
            },
        );
    }

    pub fn owner(&self, login: &str) -> Option<&Owner> {
        self.owners.get(&login.to_lowercase())
    }

    /// Registers a repository; `code_scanning` only ever turns on.
    pub fn add_repository(&mut self, full_name: &str, code_scanning: bool) {
        let key = full_name.to_lowercase();
        if let Some(repository) = self.repositories.get_mut(&key) {
            repository.code_scanning |= code_scanning;
            return;
        }
        if let Some((owner, _)) = full_name.split_once('/')
            && self.owner(owner).is_none()
        {
            self.add_owner(owner, OwnerKind::Organization);
        }
        let id = self.next_repository_id;
        self.next_repository_id += 1;
        let repository = Repository {
            id,
            full_name: full_name.to_string(),
            code_scanning,
        };
        self.repositories.insert(key, repository);
    }

    pub fn repository(&self, full_name: &str) -> Option<&Repository> {
        self.repositories.get(&full_name.to_lowercase())
    }

    pub fn add_package(&mut self, owner: &str, spec: PackageSpec) {
        if self.owner(owner).is_none() {
            self.add_owner(owner, OwnerKind::Organization);
        }
        if let Some(repository) = &spec.repository {
            self.add_repository(repository, false);
        }
        let owner = owner.to_lowercase();
        let created_at = self.tick();
        let id = self.next_package_id;
        self.next_package_id += 1;
        self.package_index
            .insert((owner.clone(), spec.name.clone()), self.packages.len());
        self.packages.push(Package {
            id,
            owner,
            name: spec.name,
            visibility: spec.visibility,
            repository: spec.repository,
            actions_access: spec.actions_access,
            versions: Vec::new(),
            created_at,
        });
    }

    pub fn package(&self, owner: &str, name: &str) -> Option<&Package> {
        let index = self
            .package_index
            .get(&(owner.to_lowercase(), name.to_string()))?;
        self.packages.get(*index)
    }

    /// The packages of `owner`, sorted by name.
    pub fn packages_of(&self, owner: &str) -> Vec<&Package> {
        let owner = owner.to_lowercase();
        let mut packages: Vec<&Package> =
            self.packages.iter().filter(|p| p.owner == owner).collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        packages
    }

    pub fn add_version(&mut self, owner: &str, package: &str, spec: VersionSpec) {
        let created_at = match &spec.created_at {
            Some(text) => parse_time(text, "created_at"),
            None => self.tick(),
        };
        let updated_at = match &spec.updated_at {
            Some(text) => parse_time(text, "updated_at"),
            None => created_at,
        };
        let id = self.next_version_id;
        self.next_version_id += 1;

        let index = self
            .package_index
            .get(&(owner.to_lowercase(), package.to_string()))
            .copied();
        let Some(target) = index.and_then(|index| self.packages.get_mut(index)) else {
            panic!("add_version: no package {owner}/{package}; call add_package first");
        };
        // A tag names one digest: pushing it again moves it off older versions.
        for version in &mut target.versions {
            version.tags.retain(|tag| !spec.tags.contains(tag));
        }
        target.versions.push(Version {
            id,
            digest: spec.digest,
            tags: spec.tags,
            created_at,
            updated_at,
        });
    }

    /// Whether `kind` may read `package` by exact name.
    pub fn can_read(kind: &TokenKind, package: &Package) -> bool {
        match kind {
            TokenKind::Pat | TokenKind::UserPat { .. } => true,
            TokenKind::Actions { repository } => {
                let granted = |name: &String| name.eq_ignore_ascii_case(repository);
                package.visibility == Visibility::Public
                    || package.repository.as_ref().is_some_and(granted)
                    || package.actions_access.iter().any(granted)
            }
        }
    }

    pub fn arm_fault(&mut self, prefix: &str, count: usize, fault: Fault) {
        if count > 0 {
            self.faults.push(ArmedFault {
                prefix: prefix.to_string(),
                remaining: count,
                fault,
            });
        }
    }

    /// Takes one use of the first armed fault matching the request, if any.
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let index = self.faults.iter().position(|armed| {
            path.starts_with(&armed.prefix)
                && armed
                    .fault
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        let armed = &mut self.faults[index];
        armed.remaining -= 1;
        let fault = armed.fault.clone();
        if armed.remaining == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }

    /// Starts a new window once the old one has passed.
    fn roll_window(&mut self) {
        let now = epoch_now();
        if now >= self.window_reset {
            self.buckets.clear();
            self.window_reset = now + WINDOW_SECS;
        }
    }

    /// The current reading of `key`'s allowance for `resource`.
    pub fn rate(&mut self, key: &BucketKey, resource: Resource) -> RateReading {
        self.roll_window();
        let used = self
            .buckets
            .get(&(key.clone(), resource.name()))
            .copied()
            .unwrap_or(0);
        RateReading {
            limit: key.limit(resource),
            used,
            reset: self.window_reset,
            resource,
        }
    }

    /// Counts one request against `key`'s allowance for `resource`.
    pub fn spend(&mut self, key: &BucketKey, resource: Resource) -> RateReading {
        self.roll_window();
        *self
            .buckets
            .entry((key.clone(), resource.name()))
            .or_insert(0) += 1;
        self.rate(key, resource)
    }

    pub fn set_remaining(&mut self, token: &str, remaining: u64) {
        let key = match self.tokens.get(token) {
            Some(kind) => BucketKey::of(&Caller::Token {
                token: token.to_string(),
                kind: kind.clone(),
            }),
            None => BucketKey::Token(token.to_string()),
        };
        self.roll_window();
        let used = key.limit(Resource::Core).saturating_sub(remaining);
        self.buckets.insert((key, Resource::Core.name()), used);
    }

    /// A new upload id: uuid-shaped, deterministic per emulator.
    pub fn next_upload_id(&mut self) -> String {
        let n = self.next_upload;
        self.next_upload += 1;
        let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(format!("sarif-{n}")));
        format!(
            "{}-{}-4{}-a{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[17..20],
            &hex[20..32]
        )
    }

    /// Marks an upload processed and, if it succeeded, creates one analysis per run.
    pub fn process_upload(&mut self, index: usize) {
        let upload = &mut self.uploads[index];
        if upload.processed {
            return;
        }
        upload.processed = true;
        let runs = match &upload.outcome {
            Ok(runs) => {
                upload.view.processing_status = "complete".to_string();
                runs.clone()
            }
            Err(errors) => {
                upload.view.processing_status = "failed".to_string();
                upload.view.errors = errors.clone();
                return;
            }
        };
        let (repo_key, view) = (upload.repo_key.clone(), upload.view.clone());
        let created_at = OffsetDateTime::now_utc();
        for run in runs {
            let id = self.next_analysis_id;
            self.next_analysis_id += 1;
            self.analyses.push(AnalysisRecord {
                id,
                repo_key: repo_key.clone(),
                repository: view.repository.clone(),
                sarif_id: view.id.clone(),
                git_ref: view.git_ref.clone(),
                commit_sha: view.commit_sha.clone(),
                run,
                created_at,
            });
        }
    }

    pub fn process_all_uploads(&mut self) {
        for index in 0..self.uploads.len() {
            self.process_upload(index);
        }
    }

    pub fn upload_views(&self) -> Vec<SarifUpload> {
        self.uploads
            .iter()
            .map(|upload| upload.view.clone())
            .collect()
    }

    pub fn analysis_views(&self) -> Vec<Analysis> {
        self.analyses
            .iter()
            .map(|record| Analysis {
                id: record.id,
                repository: record.repository.clone(),
                sarif_id: record.sarif_id.clone(),
                git_ref: record.git_ref.clone(),
                commit_sha: record.commit_sha.clone(),
                category: record.run.category.clone(),
                tool_name: record.run.tool_name.clone(),
                results_count: record.run.results_count,
                rules_count: record.run.rules_count,
            })
            .collect()
    }
}

/// Parses a setup timestamp; a bad one is a mistake in the test, reported loudly.
fn parse_time(text: &str, field: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339)
        .unwrap_or_else(|error| panic!("add_version: {field} {text:?} is not RFC 3339: {error}"))
}
