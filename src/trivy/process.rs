//! Runs one child process with a deadline and bounded capture of its output.
//!
//! The child leads its own process group, and the whole group is killed (SIGKILL) when the
//! deadline passes or the caller drops the future, so no grandchild of a wrapper script keeps
//! the pipes open; the child is then reaped, so no zombie is left. stdout is refused beyond a
//! limit; stderr keeps its last bytes, where Trivy writes why it failed.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// How much of stderr is kept: its last 64 KiB.
pub(crate) const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// What a child that finished before its deadline left behind.
#[derive(Debug)]
pub(crate) struct Captured {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// The last [`STDERR_TAIL_BYTES`] of stderr.
    pub stderr_tail: Vec<u8>,
}

/// Why a child produced no [`Captured`].
#[derive(Debug)]
pub(crate) enum RunFailure {
    /// The program could not be started.
    Spawn(io::Error),
    /// Reading its pipes or waiting for it failed.
    Io(io::Error),
    /// The deadline passed; the process group was killed and the child reaped.
    TimedOut,
    /// stdout grew past the limit; the process group was killed and the child reaped.
    StdoutTooLarge,
}

/// Runs `command` to completion, killing its process group when `deadline` passes or stdout
/// exceeds `stdout_limit` bytes. stdin is closed; stdout and stderr are captured.
pub(crate) async fn run(
    mut command: Command,
    deadline: Duration,
    stdout_limit: usize,
) -> Result<Captured, RunFailure> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = spawn(&mut command).await?;
    let mut group = ProcessGroup::of(child.id());

    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        // Both pipes were requested above; without them the child is useless.
        group.kill();
        let _ = child.wait().await;
        return Err(RunFailure::Io(io::Error::other(
            "the child's pipes are missing",
        )));
    };

    let finished = tokio::time::timeout(deadline, async {
        tokio::try_join!(
            read_bounded(stdout, stdout_limit),
            read_tail(stderr, STDERR_TAIL_BYTES),
            async { child.wait().await.map_err(RunFailure::Io) },
        )
    })
    .await;

    match finished {
        Ok(Ok((stdout, stderr_tail, status))) => {
            group.disarm();
            Ok(Captured {
                status,
                stdout,
                stderr_tail,
            })
        }
        Ok(Err(failure)) => {
            group.kill();
            let _ = child.wait().await;
            Err(failure)
        }
        Err(_elapsed) => {
            group.kill();
            let _ = child.wait().await;
            Err(RunFailure::TimedOut)
        }
    }
}

/// Starts the child, retrying briefly while its program is "text file busy": a program that
/// was just written (a fresh install) can be briefly held open by another thread's fork.
async fn spawn(command: &mut Command) -> Result<tokio::process::Child, RunFailure> {
    let mut attempt = 0;
    loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(libc::ETXTBSY) && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            result => return result.map_err(RunFailure::Spawn),
        }
    }
}

/// Reads everything, or fails as soon as more than `limit` bytes arrive.
async fn read_bounded(reader: impl AsyncRead + Unpin, limit: usize) -> Result<Vec<u8>, RunFailure> {
    let mut buffer = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut buffer)
        .await
        .map_err(RunFailure::Io)?;
    if buffer.len() > limit {
        return Err(RunFailure::StdoutTooLarge);
    }
    Ok(buffer)
}

/// Reads everything, keeping only the last `keep` bytes.
async fn read_tail(mut reader: impl AsyncRead + Unpin, keep: usize) -> Result<Vec<u8>, RunFailure> {
    let mut tail = Vec::new();
    let mut chunk = vec![0u8; 8 * 1024];
    loop {
        let read = reader.read(&mut chunk).await.map_err(RunFailure::Io)?;
        if read == 0 {
            break;
        }
        tail.extend_from_slice(&chunk[..read]);
        // Trim in batches rather than on every read, so a chatty child costs little.
        if tail.len() > keep * 2 {
            tail.drain(..tail.len() - keep);
        }
    }
    if tail.len() > keep {
        tail.drain(..tail.len() - keep);
    }
    Ok(tail)
}

/// The child's process group, killed when dropped unless the child was reaped normally.
///
/// While the child is unreaped its pid, and so the group id, cannot be reused, which makes the
/// kill safe; after a normal exit the guard is disarmed.
struct ProcessGroup {
    id: Option<libc::pid_t>,
}

impl ProcessGroup {
    fn of(pid: Option<u32>) -> Self {
        ProcessGroup {
            id: pid.and_then(|pid| libc::pid_t::try_from(pid).ok()),
        }
    }

    fn kill(&mut self) {
        if let Some(id) = self.id.take() {
            // SAFETY: killpg has no memory-safety preconditions; `id` is the group this module
            // created for its child (`process_group(0)` makes the child's pid the group id).
            let result = unsafe { libc::killpg(id, libc::SIGKILL) };
            if result != 0 {
                tracing::trace!(group = id, error = %io::Error::last_os_error(), "killpg failed");
            }
        }
    }

    fn disarm(&mut self) {
        self.id = None;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
