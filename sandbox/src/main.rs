//! `dragnet-sandbox up --dir DIR`: runs the whole sandbox until SIGINT or SIGTERM, for the
//! local demo. Once everything answers it writes `DIR/sandbox.env` (shell `export` lines), by
//! rename so that a script waiting for the file never reads half of it.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dragnet_sandbox::sandbox::{
    COMMIT_SHA, GIT_REF, PIPELINES_REPOSITORY, RegistryModeChoice, Sandbox, SandboxOptions,
};
use tokio::signal::unix::{SignalKind, signal};

/// The local sandbox dragnet's tests and demo run against: a GitHub API emulator, Debian's
/// docker-registry holding test images, and a registry serving a Trivy DB.
#[derive(Parser)]
#[command(name = "dragnet-sandbox", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the sandbox, write DIR/sandbox.env, and run until SIGINT or SIGTERM.
    Up {
        /// Folder for the registries' storage and logs, and for sandbox.env.
        #[arg(long)]
        dir: PathBuf,
        /// How the image registry authenticates clients.
        #[arg(long, value_enum, default_value_t = RegistryModeChoice::Token)]
        registry_mode: RegistryModeChoice,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    match Cli::parse().command {
        Command::Up { dir, registry_mode } => up(&dir, registry_mode).await,
    }
}

async fn up(dir: &Path, registry_mode: RegistryModeChoice) -> anyhow::Result<()> {
    // Listen for signals before starting children, so that an early signal still stops them.
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let env_file = dir.join("sandbox.env");
    // A stale file from an earlier run would tell a waiting script we are ready.
    let _ = std::fs::remove_file(&env_file);

    let started = std::time::Instant::now();
    let options = SandboxOptions {
        registry_mode,
        work_dir: dir.clone(),
    };
    let sandbox = Sandbox::start(options)
        .await
        .context("starting the sandbox")?;
    tracing::info!(url = %sandbox.api_url(), "GitHub API emulator");
    tracing::info!(
        host = %sandbox.registry_host(),
        mode = sandbox.registry.mode().name(),
        log = %sandbox.registry.access_log_path().display(),
        "image registry"
    );
    tracing::info!(repository = %sandbox.db_repository(), "Trivy DB");
    tracing::info!(
        versions = sandbox.pushed().len(),
        owner = sandbox.owner(),
        "images pushed"
    );

    write_env_file(&env_file, &env_lines(&sandbox)).context("writing sandbox.env")?;
    tracing::info!(
        file = %env_file.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "sandbox ready"
    );

    tokio::select! {
        _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
    }
    drop(sandbox);
    let _ = std::fs::remove_file(&env_file);
    Ok(())
}

/// The variables a shell sources to talk to the sandbox.
fn env_lines(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    let mut lines = vec![
        ("DRAGNET_SANDBOX_API_URL", sandbox.api_url()),
        ("GITHUB_API_URL", sandbox.api_url()),
        ("GITHUB_TOKEN", sandbox.token().to_owned()),
        ("DRAGNET_SANDBOX_REGISTRY", sandbox.registry_host()),
        (
            "DRAGNET_SANDBOX_REGISTRY_MODE",
            sandbox.registry.mode().name().to_owned(),
        ),
        ("DRAGNET_SANDBOX_DB_REPOSITORY", sandbox.db_repository()),
        ("DRAGNET_SANDBOX_OWNER", sandbox.owner().to_owned()),
        (
            "DRAGNET_SANDBOX_ACTIONS_TOKEN",
            sandbox.actions_token().to_owned(),
        ),
        ("GITHUB_REPOSITORY", PIPELINES_REPOSITORY.to_owned()),
        ("GITHUB_SHA", COMMIT_SHA.to_owned()),
        ("GITHUB_REF", GIT_REF.to_owned()),
    ];
    if let Some((user, password)) = sandbox.registry_credentials() {
        lines.push(("DRAGNET_SANDBOX_REGISTRY_USERNAME", user));
        lines.push(("DRAGNET_SANDBOX_REGISTRY_PASSWORD", password));
    }
    lines
}

/// Writes `export NAME='value'` lines to a private temporary file, then renames it into place.
fn write_env_file(path: &Path, lines: &[(&str, String)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (name, value) in lines {
        // Single quotes keep the shell from expanding anything; a quote inside is closed,
        // escaped and reopened.
        text += &format!("export {name}='{}'\n", value.replace('\'', r"'\''"));
    }
    let temp = path.with_extension("env.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("creating {}", temp.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", temp.display()))?;
    file.sync_all()
        .with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("renaming into {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_quotes_values_for_the_shell_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.env");
        let lines = [("PLAIN", "a b$c".to_owned()), ("QUOTED", "it's".to_owned())];
        write_env_file(&path, &lines).unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "export PLAIN='a b$c'\nexport QUOTED='it'\\''s'\n");
        let mode = std::os::unix::fs::PermissionsExt::mode(&path.metadata().unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        assert!(!path.with_extension("env.tmp").exists());
    }
}
