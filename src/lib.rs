//! dragnet scans every published version of an organization's container images with Trivy and
//! reports the findings to GitHub code scanning.
//!
//! The library is a pipeline of stages with plain, serialisable data between them:
//! [`github`] discovers an [`inventory::Inventory`], [`registry`] resolves it into a
//! [`plan::Plan`] of unique manifest digests, [`trivy`] scans each target into
//! [`scan::ScanResult`]s, [`report`] and [`sarif`] turn those into files, and
//! [`github::code_scanning`] uploads the SARIF. The `dragnet` binary is a thin shell over
//! [`cli`].

pub mod cli;
pub mod exit;
pub mod filter;
pub mod finding;
pub mod github;
pub mod http;
pub mod ignore;
pub mod inventory;
pub mod output;
pub mod plan;
pub mod registry;
pub mod report;
pub mod result_cache;
pub mod route;
pub mod sarif;
pub mod scan;
pub mod secret;
pub mod shard;
pub mod trivy;
