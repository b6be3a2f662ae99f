//! The command line: argument definitions, logging, and the mapping from outcomes to exit codes.
//!
//! Each subcommand lives in its own module and returns an [`Exit`]; errors that stop a command
//! are printed here with their cause chain. Data goes to stdout, the story of the run to stderr.

mod actions;
mod discover;
mod interrupt;
mod merge;
mod plan;
mod sbom;
mod scan;
mod upload;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::exit::Exit;
use crate::finding::Severity;
use crate::github::discover::OwnerKind;
use crate::plan::Platform;
use crate::secret::Secret;

/// Scan every published version of an owner's container images with Trivy and report the
/// findings to GitHub code scanning.
#[derive(Debug, Parser)]
#[command(name = "dragnet", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the owner's container packages and their tagged versions.
    Discover(DiscoverArgs),
    /// Discover, resolve, scan every unique image with Trivy, and write SARIF and a summary.
    Scan(Box<ScanArgs>),
    /// Upload SARIF files to GitHub code scanning and wait until GitHub has processed them.
    Upload(UploadArgs),
    /// Discover and resolve once, and cut the unique images into shards for a job matrix.
    Plan(Box<PlanArgs>),
    /// Combine the shards' scan runs into one results.json, summary and SARIF.
    Merge(MergeArgs),
}

/// How to reach GitHub.
#[derive(Debug, Args)]
struct GitHubArgs {
    /// The GitHub REST API URL.
    #[arg(long, env = "GITHUB_API_URL", default_value = "https://api.github.com")]
    api_url: String,

    /// The GitHub token. Listing an organization's packages needs a classic token with
    /// read:packages; uploading needs security-events: write.
    #[arg(long, env = "GITHUB_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    token: Option<Secret>,

    /// How long opening a connection to GitHub or the registry may take (tests shorten it).
    #[arg(long, env = "DRAGNET_HTTP_CONNECT_TIMEOUT", default_value = "15s",
          value_parser = parse_duration, hide = true)]
    http_connect_timeout: Duration,

    /// How long one read of an HTTP answer may stall before the try fails and is retried.
    #[arg(long, env = "DRAGNET_HTTP_READ_TIMEOUT", default_value = "60s",
          value_parser = parse_duration, hide = true)]
    http_read_timeout: Duration,

    /// The longest dragnet waits for a rate limit to reset or a server's retry-after before it
    /// gives up; a discovery that would need a longer wait stops before it starts.
    #[arg(long, env = "DRAGNET_MAX_RETRY_WAIT", default_value = "15m",
          value_parser = parse_duration)]
    max_retry_wait: Duration,

    /// The first backoff delay between retries of a failed request (tests shorten it).
    #[arg(long, env = "DRAGNET_RETRY_DELAY", default_value = "1s",
          value_parser = parse_duration, hide = true)]
    retry_delay: Duration,
}

/// What to discover.
#[derive(Debug, Args)]
struct SelectArgs {
    /// The organization or user that owns the packages.
    #[arg(long, required = true)]
    owner: Option<String>,

    /// Whether the owner is an organization or a user; asked of GitHub when not given.
    #[arg(long, value_enum)]
    owner_type: Option<OwnerKind>,

    /// Keep packages whose name matches this glob (repeatable); `*` does not cross `/`.
    #[arg(long = "pattern", value_name = "GLOB")]
    patterns: Vec<String>,

    /// Read this package by exact name instead of listing the owner's packages (repeatable);
    /// needed with the Actions GITHUB_TOKEN, which cannot list an organization's packages.
    #[arg(long = "package", value_name = "NAME")]
    packages: Vec<String>,

    /// Read the packages named in this file, one a line (`#` starts a comment), as if each were
    /// given with --package.
    #[arg(long, value_name = "FILE")]
    packages_file: Option<PathBuf>,

    /// Keep only tags matching this regular expression (unanchored: use ^…$ for a whole tag).
    #[arg(long = "tags", value_name = "REGEX")]
    tags: Option<String>,

    /// Leave out tags matching this glob (repeatable), such as 'pr-*'; a version goes when all
    /// its tags do.
    #[arg(long = "exclude", value_name = "GLOB")]
    exclude: Vec<String>,

    /// Keep only the newest N tagged versions of each package.
    #[arg(long, value_name = "N")]
    latest: Option<usize>,

    /// Keep only versions updated within this long (e.g. 30d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    updated_within: Option<Duration>,

    /// Also keep versions that have no tag; those a tagged multi-platform image lists are
    /// scanned as its platforms, the rest as orphans.
    #[arg(long)]
    include_untagged: bool,

    /// Where dragnet and Trivy keep their caches (GitHub ETags, resolved manifests, the
    /// vulnerability DB, image layers, scan results); safe to delete at any time.
    #[arg(long, env = "DRAGNET_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// The container registry the packages live in; loopback addresses are spoken to over
    /// plain HTTP.
    #[arg(long, env = "DRAGNET_REGISTRY", default_value = "ghcr.io")]
    registry: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
struct DiscoverArgs {
    #[command(flatten)]
    github: GitHubArgs,
    #[command(flatten)]
    select: SelectArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// The registry username, for reading tag lists when the API refuses a package's versions.
    #[arg(long, env = "DRAGNET_REGISTRY_USERNAME", default_value = "dragnet")]
    registry_username: String,

    /// The registry password; defaults to the GitHub token.
    #[arg(
        long,
        env = "DRAGNET_REGISTRY_PASSWORD",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    registry_password: Option<Secret>,
}

#[derive(Debug, Args)]
#[command(mut_arg("owner", |owner| owner.required(false).required_unless_present("plan")))]
struct ScanArgs {
    #[command(flatten)]
    github: GitHubArgs,
    #[command(flatten)]
    select: SelectArgs,

    /// Scan only this platform of multi-platform images (repeatable), as os/arch[/variant].
    #[arg(long = "platform", value_name = "OS/ARCH", value_parser = parse_platform)]
    platforms: Vec<Platform>,

    /// The registry username; ghcr.io accepts any name with a token as the password.
    #[arg(long, env = "DRAGNET_REGISTRY_USERNAME", default_value = "dragnet")]
    registry_username: String,

    /// The registry password; defaults to the GitHub token.
    #[arg(
        long,
        env = "DRAGNET_REGISTRY_PASSWORD",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    registry_password: Option<Secret>,

    /// The trivy executable.
    #[arg(long, env = "DRAGNET_TRIVY", default_value = "trivy")]
    trivy: PathBuf,

    /// The most bytes of one Trivy report dragnet reads; a larger one fails that image (tests
    /// lower it to try an enormous report cheaply).
    #[arg(long, default_value_t = crate::trivy::DEFAULT_OUTPUT_LIMIT, hide = true)]
    trivy_output_limit: usize,

    /// How many images to scan at once; defaults to the number of cores.
    #[arg(long)]
    concurrency: Option<usize>,

    /// The longest one image's scan may take before Trivy is stopped (e.g. 90s, 10m).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    scan_timeout: Duration,

    /// The severities to report, comma-separated.
    #[arg(long, default_value = "CRITICAL,HIGH", value_delimiter = ',')]
    severity: Vec<Severity>,

    /// Leave out vulnerabilities that have no fixed version.
    #[arg(long)]
    ignore_unfixed: bool,

    /// Scan every image again instead of reusing results cached for the same digest, Trivy
    /// version, vulnerability DB and options.
    #[arg(long)]
    rescan: bool,

    /// Where Trivy downloads its vulnerability DB from (repeatable, tried in order).
    #[arg(long = "db-repository", value_name = "REPOSITORY")]
    db_repositories: Vec<String>,

    /// Where results.json, summary.md and the SARIF files are written.
    #[arg(long, default_value = "dragnet-results")]
    output_dir: PathBuf,

    /// Exit with code 4 when a finding at or above this severity is found.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,

    /// Upload the SARIF to code scanning after the scan.
    #[arg(long)]
    upload: bool,

    /// Point each package's alerts at this file of the repository, such as
    /// `docker/{name}/Dockerfile` ({package}: products/bfx/samtools, {name}: samtools,
    /// {owner}); default `containers/<package>`.
    #[arg(long, value_name = "TEMPLATE")]
    location_template: Option<crate::sarif::LocationTemplate>,

    /// Ignore the vulnerabilities a Trivy ignore file lists (`.trivyignore`, or its YAML form
    /// `.trivyignore.yaml`); repeatable. Ignored findings stay out of the SARIF and are counted
    /// in the summary.
    #[arg(long = "ignorefile", value_name = "FILE")]
    ignorefiles: Vec<PathBuf>,

    /// Ignore the vulnerabilities an allowlist names, each with a reason and an expiry date
    /// (YAML; see docs/code-scanning.md); repeatable. An expired entry warns and no longer
    /// ignores.
    #[arg(long = "allowlist", value_name = "FILE")]
    allowlists: Vec<PathBuf>,

    /// Also write a CycloneDX SBOM of every scanned image, from Trivy, to sbom/.
    #[arg(long)]
    sbom: bool,

    /// Scan the images of a plan written by `dragnet plan` instead of discovering them; the
    /// discovery options are not used. Writes scan-run.json for `dragnet merge`.
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,

    /// Scan only this share of the plan (I/N, from `dragnet plan`'s matrix). Upload after
    /// `dragnet merge`: a shard's SARIF would replace other shards' findings.
    #[arg(long, value_name = "I/N", requires = "plan", conflicts_with = "upload")]
    shard: Option<crate::shard::ShardSpec>,

    #[command(flatten)]
    target: TargetArgs,
}

/// Where uploads go.
#[derive(Debug, Args)]
struct TargetArgs {
    /// The repository whose Security tab receives the findings (OWNER/REPO).
    #[arg(long, env = "GITHUB_REPOSITORY")]
    repository: Option<String>,

    /// The commit the analysis is attached to.
    #[arg(long, env = "GITHUB_SHA")]
    sha: Option<String>,

    /// The ref the analysis is attached to (refs/heads/main).
    #[arg(long = "ref", env = "GITHUB_REF")]
    git_ref: Option<String>,

    /// How often to ask GitHub whether an upload has been processed.
    #[arg(long, default_value = "5s", value_parser = parse_duration, hide = true)]
    poll_interval: Duration,

    /// How many times to ask before giving up on an upload's processing.
    #[arg(long, default_value_t = 60, hide = true)]
    max_polls: usize,

    /// Where each package's SARIF goes: `current` (the repository above) or `linked` (the
    /// repository each package is linked to, at the head of its default branch; packages
    /// without one are listed, not uploaded).
    #[arg(long, value_enum, default_value_t = crate::route::Route::Current)]
    route: crate::route::Route,

    /// Show what would be uploaded and which stale categories closed, and send nothing.
    #[arg(long)]
    dry_run: bool,

    /// Leave alone the dragnet categories this run no longer produces, instead of closing
    /// their alerts with an empty run (for several dragnet workflows sharing one repository).
    #[arg(long)]
    keep_stale: bool,

    /// Send at most this many SARIF uploads an hour (GitHub accepts 1,000); beyond a first
    /// burst, uploads are spaced evenly.
    #[arg(long, default_value_t = crate::github::code_scanning::UPLOADS_PER_HOUR,
          value_parser = clap::value_parser!(u32).range(1..))]
    uploads_per_hour: u32,
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    github: GitHubArgs,
    #[command(flatten)]
    select: SelectArgs,

    /// Plan only this platform of multi-platform images (repeatable), as os/arch[/variant].
    #[arg(long = "platform", value_name = "OS/ARCH", value_parser = parse_platform)]
    platforms: Vec<Platform>,

    /// The registry username; ghcr.io accepts any name with a token as the password.
    #[arg(long, env = "DRAGNET_REGISTRY_USERNAME", default_value = "dragnet")]
    registry_username: String,

    /// The registry password; defaults to the GitHub token.
    #[arg(
        long,
        env = "DRAGNET_REGISTRY_PASSWORD",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    registry_password: Option<Secret>,

    /// Cut the unique images into at most this many shards of about equal work (by size).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    shards: u16,

    /// Where to write the plan.
    #[arg(long, default_value = "plan.json")]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The plan the shards scanned, as `dragnet plan` wrote it.
    #[arg(long, value_name = "FILE")]
    plan: PathBuf,

    /// Where results.json, summary.md and the SARIF files are written.
    #[arg(long, default_value = "dragnet-results")]
    output_dir: PathBuf,

    /// Exit with code 4 when a finding at or above this severity is found.
    #[arg(long, value_name = "SEVERITY")]
    fail_on: Option<Severity>,

    /// Ignore the vulnerabilities a Trivy ignore file lists, as `scan --ignorefile` does;
    /// repeatable. Ignoring happens here, when the whole run's report is built.
    #[arg(long = "ignorefile", value_name = "FILE")]
    ignorefiles: Vec<PathBuf>,

    /// Ignore the vulnerabilities an allowlist names, as `scan --allowlist` does; repeatable.
    #[arg(long = "allowlist", value_name = "FILE")]
    allowlists: Vec<PathBuf>,

    /// Point each package's alerts at this file of the repository, as `scan
    /// --location-template` does.
    #[arg(long, value_name = "TEMPLATE")]
    location_template: Option<crate::sarif::LocationTemplate>,

    /// The shards' output directories, or their scan-run.json files.
    #[arg(required = true, value_name = "PATH")]
    runs: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct UploadArgs {
    #[command(flatten)]
    github: GitHubArgs,
    #[command(flatten)]
    target: TargetArgs,

    /// SARIF files, or directories whose *.sarif files are uploaded.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

fn parse_secret(value: &str) -> Result<Secret, String> {
    if value.is_empty() {
        return Err("the value is empty".into());
    }
    Ok(Secret::new(value))
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value)
        .map_err(|e| format!("{e}; write a duration such as 90s, 10m or 1h"))?;
    if duration.is_zero() {
        return Err("the duration must be longer than zero".into());
    }
    Ok(duration)
}

fn parse_platform(value: &str) -> Result<Platform, String> {
    let parts: Vec<&str> = value.split('/').collect();
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match parts.as_slice() {
        [os, arch] if valid(os) && valid(arch) => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }),
        [os, arch, variant] if valid(os) && valid(arch) && valid(variant) => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: Some(variant.to_string()),
        }),
        _ => Err("expected OS/ARCH or OS/ARCH/VARIANT, such as linux/amd64".into()),
    }
}

/// Runs dragnet with the process's arguments and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                Exit::Usage.code()
            } else {
                Exit::Success.code()
            };
        }
    };
    init_logging(cli.verbose, cli.quiet);
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        mask_in_actions(&cli.command.secrets());
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: could not start the async runtime: {error}");
            return Exit::Error.code();
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Discover(args) => discover::run(args).await,
            Command::Scan(args) => scan::run(*args).await,
            Command::Upload(args) => upload::run(args).await,
            Command::Plan(args) => plan::run(*args).await,
            Command::Merge(args) => merge::run(args).await,
        }
    });
    match outcome {
        Ok(exit) => exit.code(),
        Err(failure) => {
            eprintln!("error: {}", failure.error);
            for cause in failure.error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            failure.exit.code()
        }
    }
}

/// Tells the Actions runner to mask each secret in the job's log: the runner consumes
/// `::add-mask::VALUE` lines from stdout and never shows them, and from then on prints `***` for
/// the value wherever a step would print it (see GitHub's workflow commands).
fn mask_in_actions(secrets: &[&Secret]) {
    use std::io::Write as _;

    let mut stdout = std::io::stdout().lock();
    for secret in secrets {
        for line in secret.expose().lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(stdout, "::add-mask::{line}");
        }
    }
    let _ = stdout.flush();
}

impl Command {
    /// The credentials this command holds, for masking.
    fn secrets(&self) -> Vec<&Secret> {
        let (github, password) = match self {
            Command::Discover(args) => (&args.github, args.registry_password.as_ref()),
            Command::Scan(args) => (&args.github, args.registry_password.as_ref()),
            Command::Upload(args) => (&args.github, None),
            Command::Plan(args) => (&args.github, args.registry_password.as_ref()),
            Command::Merge(_) => return Vec::new(),
        };
        github.token.iter().chain(password).collect()
    }
}

/// An error that ends a command, with the exit code it maps to.
struct Failure {
    error: anyhow::Error,
    exit: Exit,
}

impl Failure {
    fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            error: error.into(),
            exit: Exit::Usage,
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure {
            error: error.into(),
            exit: Exit::Error,
        }
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;

    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "warn,dragnet=info",
        (false, 1) => "warn,dragnet=debug",
        (false, _) => "info,dragnet=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

impl GitHubArgs {
    /// The HTTP layer shared by the GitHub and registry clients, with the configured timeouts.
    fn http(&self, max_concurrent: usize) -> Result<crate::http::HttpClient, Failure> {
        let timeouts = crate::http::HttpTimeouts {
            connect: self.http_connect_timeout,
            read: self.http_read_timeout,
            ..crate::http::HttpTimeouts::default()
        };
        let policy = crate::http::RetryPolicy {
            min_delay: self.retry_delay,
            max_delay: self.retry_delay.max(Duration::from_secs(30)),
            max_wait: self.max_retry_wait,
            ..crate::http::RetryPolicy::default()
        };
        Ok(crate::http::HttpClient::with_timeouts(max_concurrent, timeouts)?.with_policy(policy))
    }

    fn client(
        &self,
        http: &crate::http::HttpClient,
    ) -> Result<crate::github::GitHubClient, Failure> {
        crate::github::GitHubClient::new(&self.api_url, self.token.clone(), http.clone())
            .map_err(Failure::usage)
    }
}

impl SelectArgs {
    /// The discovery options, with the patterns checked first so a bad glob is a usage error.
    fn options(
        &self,
        concurrency: usize,
    ) -> Result<crate::github::discover::DiscoverOptions, Failure> {
        crate::github::discover::compile_patterns(&self.patterns).map_err(Failure::usage)?;
        let filter = crate::filter::VersionFilter::new(
            self.tags.as_deref(),
            &self.exclude,
            self.latest,
            self.updated_within,
            self.include_untagged,
        )
        .map_err(Failure::usage)?;
        let mut packages = self.packages.clone();
        if let Some(file) = &self.packages_file {
            packages
                .extend(crate::github::discover::read_packages_file(file).map_err(Failure::usage)?);
        }
        Ok(crate::github::discover::DiscoverOptions {
            owner: self
                .owner
                .clone()
                .ok_or_else(|| Failure::usage(anyhow::anyhow!("no owner: pass --owner ORG")))?,
            owner_kind: self.owner_type,
            patterns: self.patterns.clone(),
            packages,
            filter,
            registry: self.registry.clone(),
            concurrency,
        })
    }

    /// The ETag cache under the cache directory.
    fn etag_cache(&self) -> Result<crate::github::etag::EtagCache, Failure> {
        let dir = scan::cache_dir(self.cache_dir.as_deref())?;
        Ok(crate::github::etag::EtagCache::under(&dir))
    }
}

impl TargetArgs {
    /// The target for `--route current` (required), or for `--route linked` (the current
    /// repository's commit and ref when all three are known, used if a package links to it).
    fn current_target(
        &self,
        route: crate::route::Route,
    ) -> Result<Option<crate::github::code_scanning::UploadTarget>, Failure> {
        let complete = self.repository.is_some() && self.sha.is_some() && self.git_ref.is_some();
        match route {
            crate::route::Route::Current => self.upload_target().map(Some),
            crate::route::Route::Linked if complete => self.upload_target().map(Some),
            crate::route::Route::Linked => Ok(None),
        }
    }

    fn upload_target(&self) -> Result<crate::github::code_scanning::UploadTarget, Failure> {
        let missing = |what: &str, flag: &str, var: &str| {
            Failure::usage(anyhow::anyhow!(
                "uploading needs the {what}: pass {flag} or set {var} (GitHub Actions sets it)"
            ))
        };
        let repository = self
            .repository
            .as_deref()
            .ok_or_else(|| missing("repository", "--repository", "GITHUB_REPOSITORY"))?;
        let sha = self
            .sha
            .as_deref()
            .ok_or_else(|| missing("commit", "--sha", "GITHUB_SHA"))?;
        let git_ref = self
            .git_ref
            .as_deref()
            .ok_or_else(|| missing("ref", "--ref", "GITHUB_REF"))?;
        crate::github::code_scanning::UploadTarget::new(repository, sha, git_ref)
            .map_err(Failure::usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_platforms_and_durations() {
        assert_eq!(
            parse_platform("linux/arm64").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            parse_platform("linux/arm/v7").unwrap().variant.as_deref(),
            Some("v7")
        );
        assert!(parse_platform("linux").is_err());
        assert!(parse_platform("linux/../x").is_err());
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").unwrap_err().contains("such as 90s"));
    }
}
