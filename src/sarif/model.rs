//! The subset of SARIF 2.1.0 that dragnet writes, as hand-written serde types.
//!
//! `serde-sarif` is generated from the schema, lags behind it and is not kept up; the handful
//! of objects GitHub code scanning reads are easier to keep right by hand. Field names follow
//! the specification (camelCase); optional fields are left out when empty, so that the output
//! stays small and byte-stable.

use std::collections::BTreeMap;

use serde::Serialize;

/// The `$schema` every log names.
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The SARIF version every log declares.
pub const SARIF_VERSION: &str = "2.1.0";

/// A SARIF file: one upload's worth of runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SarifLog {
    #[serde(rename = "$schema")]
    pub schema: String,
    pub version: String,
    pub runs: Vec<Run>,
}

/// One analysis: in dragnet, one package.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub tool: Tool,
    /// `category/run-id`; GitHub keys the analysis on the category.
    pub automation_details: AutomationDetails,
    pub results: Vec<SarifResult>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tool {
    pub driver: ToolComponent,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<ToolComponent>,
}

/// The tool (dragnet) or an extension of it (Trivy).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolComponent {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub information_uri: Option<String>,
    /// Always written, even empty, for the driver: GitHub requires the array (Multitool GH1018).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<ReportingDescriptor>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutomationDetails {
    pub id: String,
}

/// A rule: in dragnet, one vulnerability id.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportingDescriptor {
    pub id: String,
    pub name: String,
    pub short_description: Message,
    pub full_description: Message,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help_uri: Option<String>,
    pub help: MultiformatMessage,
    pub default_configuration: ReportingConfiguration,
    pub properties: RuleProperties,
}

/// Plain text only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub text: String,
}

/// Text and Markdown; GitHub shows the Markdown when present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MultiformatMessage {
    pub text: String,
    pub markdown: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportingConfiguration {
    pub level: Level,
}

/// The rule properties GitHub reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleProperties {
    /// A number from 0.1 to 10.0 as a string; decides the severity GitHub shows.
    #[serde(rename = "security-severity")]
    pub security_severity: String,
    pub precision: String,
    pub tags: Vec<String>,
}

/// A result's or rule's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Note,
}

/// One alert: a vulnerability in one installed package of the package's images.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifResult {
    pub rule_id: String,
    pub rule_index: usize,
    pub level: Level,
    pub message: Message,
    pub locations: Vec<Location>,
    pub partial_fingerprints: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    pub physical_location: PhysicalLocation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalLocation {
    pub artifact_location: ArtifactLocation,
    pub region: Region,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactLocation {
    /// A relative path, stable for a package.
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    pub start_line: u32,
}
