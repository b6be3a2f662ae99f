//! Checks a SARIF file with two real validators: the SARIF 2.1.0 JSON schema (via the
//! `jsonschema` crate) and Microsoft's SARIF Multitool with its GitHub rules.
//!
//! Shared by unit tests (`src/sarif`, through `#[path]`) and integration tests (`mod`-include
//! this file). Both tools come from the environment and a missing one fails the test loudly:
//! `SARIF_MULTITOOL` (the `Sarif.Multitool` executable) and `SARIF_SCHEMA` (the schema JSON,
//! by default the copy shipped beside the Multitool).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Panics, naming every problem, unless `path` is valid against the SARIF 2.1.0 schema and the
/// Multitool (`--rule-kind "Gh;Sarif"`) reports neither errors nor warnings.
pub fn assert_valid_sarif(path: &Path) {
    let mut problems = schema_problems(path);
    problems.extend(multitool_problems(path));
    if !problems.is_empty() {
        panic!(
            "{} is not valid SARIF for GitHub:\n  {}",
            path.display(),
            problems.join("\n  ")
        );
    }
}

/// Where a validator lives, from an environment variable; panics with a hint when unset or
/// missing.
fn tool_path(variable: &str, what: &str) -> PathBuf {
    let Some(value) = std::env::var_os(variable) else {
        panic!(
            "{variable} is not set: point it at {what} (the CI script sets it; locally see \
             @microsoft/sarif-multitool-linux in npm)"
        );
    };
    let path = PathBuf::from(value);
    assert!(
        path.is_file(),
        "{variable}={} does not name a file: point it at {what}",
        path.display()
    );
    path
}

/// The SARIF schema: `SARIF_SCHEMA`, else the `sarif-2.1.0.json` the Multitool's npm package
/// ships beside `SARIF_MULTITOOL`.
fn schema_path() -> PathBuf {
    if std::env::var_os("SARIF_SCHEMA").is_none()
        && let Some(multitool) = std::env::var_os("SARIF_MULTITOOL")
    {
        let beside = Path::new(&multitool).with_file_name("sarif-2.1.0.json");
        if beside.is_file() {
            return beside;
        }
    }
    tool_path(
        "SARIF_SCHEMA",
        "the SARIF 2.1.0 JSON schema (sarif-2.1.0.json)",
    )
}

/// Errors from validating against the SARIF JSON schema (see [`schema_path`]).
pub fn schema_problems(path: &Path) -> Vec<String> {
    let schema_path = schema_path();
    let schema = read_json(&schema_path);
    let instance = read_json(path);
    let validator = match jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
    {
        Ok(validator) => validator,
        Err(error) => panic!(
            "the schema {} does not compile: {error}",
            schema_path.display()
        ),
    };
    validator
        .iter_errors(&instance)
        .map(|error| format!("schema: {} at {}", error, error.instance_path()))
        .collect()
}

/// Errors and warnings the Multitool named by `SARIF_MULTITOOL` reports.
pub fn multitool_problems(path: &Path) -> Vec<String> {
    let multitool = tool_path(
        "SARIF_MULTITOOL",
        "the Sarif.Multitool executable (chmod +x it: npm skips it)",
    );
    let scratch = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(error) => panic!("cannot create a temporary directory: {error}"),
    };
    let log_path = scratch.path().join("validation.sarif");
    let output = Command::new(&multitool)
        .arg("validate")
        .arg(path)
        // Every rule but SARIF2006, which fetches every helpUri (see multitool.xml).
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/multitool.xml"))
        .args([
            "--rule-kind",
            "Gh;Sarif",
            // The default skips files over 10,000 KB; a 25,000-result run is larger.
            "--max-file-size-in-kb",
            "1048576",
            "--log",
            "ForceOverwrite",
            "--output",
        ])
        .arg(&log_path)
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {}: {error} (is it executable?)",
                multitool.display()
            )
        });
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !log_path.is_file() {
        panic!(
            "the Multitool wrote no log (exit {}):\n{console}",
            output.status
        );
    }

    let log = read_json(&log_path);
    let mut problems = Vec::new();
    for run in log["runs"].as_array().into_iter().flatten() {
        let rules = &run["tool"]["driver"]["rules"];
        for result in run["results"].as_array().into_iter().flatten() {
            // SARIF's default level is "warning".
            let level = result["level"].as_str().unwrap_or("warning");
            if level == "error" || level == "warning" {
                problems.push(format!("multitool {level}: {}", describe(result, rules)));
            }
        }
        for invocation in run["invocations"].as_array().into_iter().flatten() {
            for key in [
                "toolExecutionNotifications",
                "toolConfigurationNotifications",
            ] {
                for note in invocation[key].as_array().into_iter().flatten() {
                    if note["level"].as_str() == Some("error") {
                        problems.push(format!("multitool could not run: {}", note["message"]));
                    }
                }
            }
        }
    }
    if !output.status.success() && problems.is_empty() {
        problems.push(format!(
            "multitool exited with {}:\n{console}",
            output.status
        ));
    }
    problems
}

/// A Multitool result in words: its rule, its message with the arguments filled in, and where.
fn describe(result: &serde_json::Value, rules: &serde_json::Value) -> String {
    let rule_id = result["ruleId"].as_str().unwrap_or("?");
    let message_id = result["message"]["id"].as_str().unwrap_or("");
    let arguments: Vec<String> = result["message"]["arguments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
        .collect();
    let template = rules
        .as_array()
        .into_iter()
        .flatten()
        .find(|rule| rule["id"].as_str() == Some(rule_id))
        .and_then(|rule| rule["messageStrings"][message_id]["text"].as_str());
    let mut text = match (result["message"]["text"].as_str(), template) {
        (Some(text), _) => text.to_string(),
        (None, Some(template)) => template.to_string(),
        (None, None) => format!("{message_id} {arguments:?}"),
    };
    for (index, argument) in arguments.iter().enumerate() {
        text = text.replace(&format!("{{{index}}}"), argument);
    }
    let region = &result["locations"][0]["physicalLocation"]["region"];
    format!(
        "{rule_id} (line {}, column {}): {text}",
        region["startLine"], region["startColumn"]
    )
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}
