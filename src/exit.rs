//! dragnet's exit codes: few, documented, and stable for scripts and workflows.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success: every image was scanned (findings alone do not fail a run) |
//! | 1 | error: the run could not do its job (discovery failed, no output written, …) |
//! | 2 | usage: invalid arguments or input |
//! | 3 | partial failure: some images or uploads failed; the others were scanned and reported |
//! | 4 | findings at or above `--fail-on` were found (and nothing failed) |

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Error = 1,
    Usage = 2,
    PartialFailure = 3,
    Findings = 4,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}
