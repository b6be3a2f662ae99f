//! (being written)

mod report;

pub use report::{ReportError, SCHEMA_VERSION, ScanReport, parse_report};
