//! dragnet's exit codes: few, documented, and stable for scripts and workflows.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success: every image was scanned (findings alone do not fail a run) |
//! | 1 | error: the run could not do its job (discovery failed, no output written, …) |
//! | 2 | usage: invalid arguments or input |
//! | 3 | partial failure: some images or uploads failed; the others were scanned and reported |
//! | 4 | findings at or above `--fail-on` were found (and nothing failed) |
//! | 130 | interrupted by SIGINT (Ctrl-C): running scans were stopped, what finished was written |
//! | 143 | stopped by SIGTERM, likewise |
//!
//! 130 and 143 follow the shell's 128 + signal number, so a wrapper sees the same code whether
//! dragnet wrote its partial results first or was killed outright; the targets left unscanned
//! are recorded in results.json as failed with the cause "interrupted".

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Error = 1,
    Usage = 2,
    PartialFailure = 3,
    Findings = 4,
    Interrupted = 130,
    Terminated = 143,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}
