//! dragnet's integration tests: the real `dragnet` binary against the sandbox — the GitHub API
//! emulator, Debian's docker-registry holding images with real package databases, the real
//! Trivy, and a vulnerability DB built with the real BoltDB library.

mod actions;
mod discover;
mod faults;
mod fuzz_regressions;
mod hostile;
mod interrupt;
mod rate_limits;
mod report_html;
mod scan;
mod secrets;
mod shard;
mod support;
mod upload;
