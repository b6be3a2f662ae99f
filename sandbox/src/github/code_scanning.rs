//! Code scanning: SARIF uploads, their processing status and the analyses they create.
//!
//! An upload is validated as GitHub validates the request (422 for a bad field, 400 for a
//! `sarif` that is not base64 of gzip, 413 over the size limit) and answered `202`. What
//! processing will conclude is decided at once, but revealed by a deterministic state machine
//! instead of a timer: the first status read(s) answer `pending`, the next one processes the
//! upload and answers `complete` (one analysis per run) or `failed` with GitHub-like errors.

use std::collections::HashSet;
use std::io::Read as _;

use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse as _, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::read::GzDecoder;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::pagination::{Page, Query};
use super::server::{
    Refusal, Shared, error_response, json_response, not_accessible_by_integration, not_found,
    requires_authentication,
};
use super::state::{self, AnalysisRecord, Caller, RunSummary, State as World, Upload, github_time};
use super::{MAX_SARIF_GZIP_BYTES, SarifUpload, TokenKind};

const UPLOAD_DOCS: &str =
    "https://docs.github.com/rest/code-scanning/code-scanning#upload-an-analysis-as-sarif-data";
const STATUS_DOCS: &str =
    "https://docs.github.com/rest/code-scanning/code-scanning#get-information-about-a-sarif-upload";
const ANALYSES_DOCS: &str = "https://docs.github.com/rest/code-scanning/code-scanning#\
                             list-code-scanning-analyses-for-a-repository";

/// Code scanning's limits on one SARIF file.
const MAX_RUNS: usize = 20;
const MAX_RESULTS_PER_RUN: usize = 25_000;
const MAX_RULES_PER_RUN: usize = 25_000;
const MAX_LOCATIONS_PER_RESULT: usize = 1_000;

/// The fields the upload request may carry (GitHub rejects any other).
const UPLOAD_FIELDS: [&str; 7] = [
    "commit_sha",
    "ref",
    "sarif",
    "checkout_uri",
    "started_at",
    "tool_name",
    "validate",
];

/// The checks every code scanning endpoint makes before looking at the request: a token, a
/// known repository with code scanning enabled, and an Actions token only on its own.
fn admit(world: &World, caller: &Caller, full_name: &str, docs: &str) -> Result<(), Refusal> {
    let kind = match caller {
        Caller::Anonymous => return Err(requires_authentication(docs).into()),
        Caller::Token { kind, .. } => kind,
    };
    let repository = world.repository(full_name).ok_or_else(|| not_found(docs))?;
    if let TokenKind::Actions { repository: own } = kind
        && !own.eq_ignore_ascii_case(full_name)
    {
        return Err(not_accessible_by_integration(docs).into());
    }
    if !repository.code_scanning {
        let message = "Advanced Security must be enabled for this repository to use code scanning.";
        return Err(error_response(StatusCode::FORBIDDEN, message, docs).into());
    }
    Ok(())
}

/// The validated fields of an upload request.
#[derive(Debug)]
struct UploadRequest {
    commit_sha: String,
    git_ref: String,
    sarif: String,
    checkout_uri: Option<String>,
    started_at: Option<String>,
    tool_name: Option<String>,
}

/// Validates the request body as GitHub's schema does, answering its `422` wording.
fn read_request(body: &Value) -> Result<UploadRequest, String> {
    let invalid = |detail: String| format!("Invalid request.\n\n{detail}");
    let Some(fields) = body.as_object() else {
        return Err(invalid(format!("{body} is not an object.")));
    };
    if let Some(extra) = fields
        .keys()
        .find(|key| !UPLOAD_FIELDS.contains(&key.as_str()))
    {
        return Err(invalid(format!("\"{extra}\" is not a permitted key.")));
    }
    for required in ["commit_sha", "ref", "sarif"] {
        if !fields.contains_key(required) {
            return Err(invalid(format!("\"{required}\" wasn't supplied.")));
        }
    }
    let string = |key: &str| -> Result<Option<String>, String> {
        match fields.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(invalid(format!(
                "For 'properties/{key}', {other} is not a string."
            ))),
        }
    };
    if let Some(validate) = fields.get("validate")
        && !validate.is_boolean()
    {
        return Err(invalid(format!(
            "For 'properties/validate', {validate} is not a boolean."
        )));
    }

    let commit_sha = string("commit_sha")?.unwrap_or_default();
    let is_sha = matches!(commit_sha.len(), 40 | 64)
        && commit_sha.bytes().all(|byte| byte.is_ascii_hexdigit());
    if !is_sha {
        let pattern = "/^([0-9a-fA-F]{40}(?:[0-9a-fA-F]{24})?)$/";
        return Err(invalid(format!(
            "For 'properties/commit_sha', {commit_sha:?} does not match {pattern}."
        )));
    }
    let git_ref = string("ref")?.unwrap_or_default();
    if !["refs/heads/", "refs/tags/", "refs/pull/"]
        .iter()
        .any(|p| git_ref.starts_with(p))
    {
        return Err(invalid(format!(
            "For 'properties/ref', {git_ref:?} does not match /^refs/(heads|tags|pull)/.*$/."
        )));
    }
    let started_at = string("started_at")?;
    if let Some(started_at) = &started_at
        && OffsetDateTime::parse(started_at, &Rfc3339).is_err()
    {
        return Err(invalid(format!(
            "For 'properties/started_at', {started_at:?} is not a date-time."
        )));
    }
    Ok(UploadRequest {
        commit_sha,
        git_ref,
        sarif: string("sarif")?.unwrap_or_default(),
        checkout_uri: string("checkout_uri")?,
        started_at,
        tool_name: string("tool_name")?,
    })
}

/// The category of a run: `automationDetails.id` up to its last `/`, or empty.
fn category(run: &Value) -> String {
    let id = run
        .pointer("/automationDetails/id")
        .and_then(Value::as_str)
        .unwrap_or("");
    id.rfind('/')
        .map_or(String::new(), |slash| id[..slash].to_string())
}

/// Decides what processing a SARIF document leads to: one summary per run, or the errors that
/// make code scanning reject the file.
pub(crate) fn examine(sarif: &Value) -> Result<Vec<RunSummary>, Vec<String>> {
    let version = sarif.get("version").and_then(Value::as_str);
    if version != Some("2.1.0") {
        let found = sarif
            .get("version")
            .map_or("none".to_string(), Value::to_string);
        return Err(vec![format!(
            "Invalid SARIF: unsupported version {found}; code scanning accepts only \"2.1.0\"."
        )]);
    }
    let Some(runs) = sarif.get("runs").and_then(Value::as_array) else {
        return Err(vec![
            "Invalid SARIF: the file has no \"runs\" array.".to_string(),
        ]);
    };
    if runs.len() > MAX_RUNS {
        return Err(vec![format!(
            "SARIF file has {} runs; code scanning accepts at most {MAX_RUNS} runs per upload.",
            runs.len()
        )]);
    }

    let mut errors = Vec::new();
    let mut summaries = Vec::new();
    let mut seen: Vec<(String, String, usize)> = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let driver = run.pointer("/tool/driver");
        let Some(tool_name) = driver.and_then(|d| d.get("name")).and_then(Value::as_str) else {
            errors.push(format!(
                "Invalid SARIF: run {index} has no tool.driver.name."
            ));
            continue;
        };
        let category = category(run);
        if let Some((_, _, first)) = seen
            .iter()
            .find(|(t, c, _)| t == tool_name && *c == category)
        {
            errors.push(format!(
                "Runs {first} and {index} have the same tool ({tool_name:?}) and category \
                 ({category:?}); each run in a SARIF file needs a unique tool and category."
            ));
        }
        seen.push((tool_name.to_string(), category.clone(), index));

        let results = run
            .get("results")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        if results.len() > MAX_RESULTS_PER_RUN {
            errors.push(format!(
                "Run {index} has {} results; code scanning accepts at most {MAX_RESULTS_PER_RUN}.",
                results.len()
            ));
        }
        let locations = |result: &Value| {
            result
                .get("locations")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        let unlocated: Vec<usize> = (0..results.len())
            .filter(|&i| locations(&results[i]) == 0)
            .collect();
        if let Some(first) = unlocated.first() {
            errors.push(format!(
                "Run {index}: {} result(s) have no location (the first is result {first}); \
                 every result needs at least one location.",
                unlocated.len()
            ));
        }
        if let Some(crowded) = results
            .iter()
            .position(|r| locations(r) > MAX_LOCATIONS_PER_RESULT)
        {
            errors.push(format!(
                "Run {index}: result {crowded} has more than {MAX_LOCATIONS_PER_RESULT} locations."
            ));
        }
        let rules = driver
            .and_then(|d| d.get("rules"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if rules > MAX_RULES_PER_RUN {
            errors.push(format!(
                "Run {index} has {rules} rules; code scanning accepts at most {MAX_RULES_PER_RUN}."
            ));
        }

        let text = |key: &str| driver.and_then(|d| d.get(key)).and_then(Value::as_str);
        summaries.push(RunSummary {
            tool_name: tool_name.to_string(),
            tool_version: text("semanticVersion")
                .or(text("version"))
                .map(str::to_string),
            tool_guid: text("guid").map(str::to_string),
            category,
            results_count: results.len(),
            rules_count: rules,
        });
    }
    if errors.is_empty() {
        Ok(summaries)
    } else {
        Err(errors)
    }
}

/// Turns the `sarif` field into the document: base64, then gunzip. `Err` carries the status
/// and message GitHub answers.
fn unpack(sarif: &str) -> Result<(Vec<u8>, usize), (StatusCode, String)> {
    let bad = |what: &str| {
        let message = format!(
            "Invalid request.\n\nThe `sarif` field {what}: compress the SARIF with gzip, then \
             encode it with base64."
        );
        (StatusCode::BAD_REQUEST, message)
    };
    let gzipped = STANDARD
        .decode(sarif.trim())
        .map_err(|_| bad("is not valid base64"))?;
    if gzipped.len() > MAX_SARIF_GZIP_BYTES {
        let message = format!(
            "The SARIF upload is {} bytes gzipped; the limit is {MAX_SARIF_GZIP_BYTES} bytes.",
            gzipped.len()
        );
        return Err((StatusCode::PAYLOAD_TOO_LARGE, message));
    }
    let mut text = Vec::new();
    GzDecoder::new(gzipped.as_slice())
        .read_to_end(&mut text)
        .map_err(|_| bad("is not gzip"))?;
    Ok((text, gzipped.len()))
}

/// `POST /repos/{owner}/{repo}/code-scanning/sarifs`.
pub(crate) async fn upload(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((owner, repo)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let full_name = format!("{owner}/{repo}");
    if let Err(response) = admit(&state::lock(&shared), &caller, &full_name, UPLOAD_DOCS) {
        return response.into_response();
    }

    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "Problems parsing JSON",
            UPLOAD_DOCS,
        );
    };
    let request = match read_request(&body) {
        Ok(request) => request,
        Err(message) => {
            return error_response(StatusCode::UNPROCESSABLE_ENTITY, &message, UPLOAD_DOCS);
        }
    };
    let (text, gzipped_bytes) = match unpack(&request.sarif) {
        Ok(unpacked) => unpacked,
        Err((status, message)) => return error_response(status, &message, UPLOAD_DOCS),
    };
    let (sarif, outcome) = match serde_json::from_slice::<Value>(&text) {
        Ok(sarif) => {
            let outcome = examine(&sarif);
            (sarif, outcome)
        }
        Err(error) => (
            Value::Null,
            Err(vec![format!("Invalid SARIF: not valid JSON: {error}")]),
        ),
    };

    let mut world = state::lock(&shared);
    let id = world.next_upload_id();
    let url = format!(
        "{}/repos/{full_name}/code-scanning/sarifs/{id}",
        world.base_url
    );
    world.uploads.push(Upload {
        view: SarifUpload {
            id: id.clone(),
            repository: full_name.clone(),
            commit_sha: request.commit_sha,
            git_ref: request.git_ref,
            sarif,
            processing_status: "pending".to_string(),
            errors: Vec::new(),
            tool_name: request.tool_name,
            checkout_uri: request.checkout_uri,
            started_at: request.started_at,
            gzipped_bytes,
        },
        repo_key: full_name.to_lowercase(),
        outcome,
        reads: 0,
        processed: false,
    });
    if world.pending_polls == 0 {
        let index = world.uploads.len() - 1;
        world.process_upload(index);
    }
    json_response(StatusCode::ACCEPTED, &json!({ "id": id, "url": url }))
}

/// `GET /repos/{owner}/{repo}/code-scanning/sarifs/{id}`: advances the state machine.
pub(crate) async fn status(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
    Path((owner, repo, id)): Path<(String, String, String)>,
) -> Response {
    let full_name = format!("{owner}/{repo}");
    let mut world = state::lock(&shared);
    if let Err(response) = admit(&world, &caller, &full_name, STATUS_DOCS) {
        return response.into_response();
    }
    let repo_key = full_name.to_lowercase();
    let Some(index) = world
        .uploads
        .iter()
        .position(|u| u.view.id == id && u.repo_key == repo_key)
    else {
        return not_found(STATUS_DOCS);
    };

    world.uploads[index].reads += 1;
    if world.uploads[index].reads > world.pending_polls {
        world.process_upload(index);
    }
    let upload = &world.uploads[index];
    let body = match upload.view.processing_status.as_str() {
        "complete" => json!({
            "processing_status": "complete",
            "analyses_url": format!(
                "{}/repos/{full_name}/code-scanning/analyses?sarif_id={id}",
                world.base_url
            ),
        }),
        "failed" => json!({
            "processing_status": "failed",
            "analyses_url": null,
            "errors": upload.view.errors,
        }),
        _ => json!({ "processing_status": "pending", "analyses_url": null }),
    };
    json_response(StatusCode::OK, &body)
}

/// Whether an analysis's ref matches the `ref` filter (`main` means `refs/heads/main`).
fn ref_matches(analysis_ref: &str, wanted: &str) -> bool {
    analysis_ref == wanted || analysis_ref == format!("refs/heads/{wanted}")
}

/// The `code-scanning-analysis` object.
fn analysis_json(base: &str, record: &AnalysisRecord, deletable: bool) -> Value {
    json!({
        "ref": record.git_ref,
        "commit_sha": record.commit_sha,
        "analysis_key": "(default)",
        "environment": "{}",
        "category": record.run.category,
        "error": "",
        "created_at": github_time(record.created_at),
        "results_count": record.run.results_count,
        "rules_count": record.run.rules_count,
        "id": record.id,
        "url": format!(
            "{base}/repos/{}/code-scanning/analyses/{}",
            record.repository, record.id
        ),
        "sarif_id": record.sarif_id,
        "tool": {
            "name": record.run.tool_name,
            "version": record.run.tool_version,
            "guid": record.run.tool_guid,
        },
        "deletable": deletable,
        "warning": "",
    })
}

/// `GET /repos/{owner}/{repo}/code-scanning/analyses`, newest first unless `direction=asc`.
pub(crate) async fn analyses(
    State(shared): State<Shared>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    Path((owner, repo)): Path<(String, String)>,
) -> Response {
    let full_name = format!("{owner}/{repo}");
    let world = state::lock(&shared);
    if let Err(response) = admit(&world, &caller, &full_name, ANALYSES_DOCS) {
        return response.into_response();
    }
    let query = Query::parse(uri.query().unwrap_or(""));
    let repo_key = full_name.to_lowercase();
    let mut records: Vec<&AnalysisRecord> = world
        .analyses
        .iter()
        .filter(|record| record.repo_key == repo_key)
        .collect();

    // Only the newest analysis of each configuration (ref, tool, category) may be deleted.
    let mut configurations = HashSet::new();
    let mut deletable = HashSet::new();
    for record in records.iter().rev() {
        let configuration = (&record.git_ref, &record.run.tool_name, &record.run.category);
        if configurations.insert(configuration) {
            deletable.insert(record.id);
        }
    }

    let tool_name = query.get("tool_name");
    let tool_guid = query.get("tool_guid");
    let wanted_ref = query.get("ref");
    let sarif_id = query.get("sarif_id");
    records.retain(|record| {
        tool_name
            .as_deref()
            .is_none_or(|name| record.run.tool_name == name)
            && tool_guid
                .as_deref()
                .is_none_or(|guid| record.run.tool_guid.as_deref() == Some(guid))
            && wanted_ref
                .as_deref()
                .is_none_or(|wanted| ref_matches(&record.git_ref, wanted))
            && sarif_id.as_deref().is_none_or(|id| record.sarif_id == id)
    });
    if query.get("direction").as_deref() != Some("asc") {
        records.reverse();
    }

    let page = Page::from_query(&query);
    let items: Vec<Value> = page
        .slice(&records)
        .iter()
        .map(|record| analysis_json(&world.base_url, record, deletable.contains(&record.id)))
        .collect();
    let mut response = json_response(StatusCode::OK, &Value::Array(items));
    if let Some(link) = page.link(&world.base_url, uri.path(), &query, records.len())
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        response.headers_mut().insert("link", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tool: &str, id: Option<&str>, results: Value) -> Value {
        let mut run =
            json!({ "tool": { "driver": { "name": tool, "rules": [] } }, "results": results });
        if let Some(id) = id {
            run["automationDetails"] = json!({ "id": id });
        }
        run
    }

    fn located() -> Value {
        json!([{ "message": { "text": "x" }, "locations": [{ "physicalLocation": {} }] }])
    }

    #[test]
    fn category_is_automation_id_up_to_the_last_slash() {
        assert_eq!(
            category(&run("t", Some("trivy/acme/tool/2024"), json!([]))),
            "trivy/acme/tool"
        );
        assert_eq!(
            category(&run("t", Some("trivy/acme/"), json!([]))),
            "trivy/acme"
        );
        assert_eq!(category(&run("t", Some("plain"), json!([]))), "");
        assert_eq!(category(&run("t", None, json!([]))), "");
    }

    #[test]
    fn accepts_runs_with_distinct_categories() {
        let sarif = json!({ "version": "2.1.0", "runs": [
            run("Trivy", Some("a/"), located()),
            run("Trivy", Some("b/"), json!([])),
        ]});
        let runs = examine(&sarif).unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].category.as_str(), runs[0].results_count), ("a", 1));
    }

    #[test]
    fn rejects_two_runs_with_the_same_tool_and_category() {
        let sarif = json!({ "version": "2.1.0", "runs": [
            run("Trivy", Some("a/1"), json!([])),
            run("Trivy", Some("a/2"), json!([])),
        ]});
        let errors = examine(&sarif).unwrap_err();
        assert!(errors[0].contains("same tool"), "{errors:?}");
    }

    #[test]
    fn rejects_wrong_version_missing_runs_too_many_runs_and_unlocated_results() {
        assert!(examine(&json!({ "version": "2.0.0", "runs": [] })).is_err());
        assert!(examine(&json!({ "version": "2.1.0" })).is_err());
        let many: Vec<Value> = (0..21)
            .map(|i| run("T", Some(&format!("c{i}/")), json!([])))
            .collect();
        assert!(examine(&json!({ "version": "2.1.0", "runs": many })).is_err());
        let unlocated = json!([{ "message": { "text": "x" } }]);
        let errors = examine(&json!({ "version": "2.1.0", "runs": [run("T", None, unlocated)] }))
            .unwrap_err();
        assert!(errors[0].contains("no location"), "{errors:?}");
    }

    #[test]
    fn validates_commit_sha_and_ref_like_github() {
        let good = json!({ "commit_sha": "a".repeat(40), "ref": "refs/heads/main", "sarif": "x" });
        assert!(read_request(&good).is_ok());
        let mut short = good.clone();
        short["commit_sha"] = json!("abc");
        assert!(read_request(&short).unwrap_err().contains("commit_sha"));
        let mut bare = good.clone();
        bare["ref"] = json!("main");
        assert!(read_request(&bare).unwrap_err().contains("properties/ref"));
        let mut extra = good.clone();
        extra["category"] = json!("x");
        assert!(
            read_request(&extra)
                .unwrap_err()
                .contains("not a permitted key")
        );
    }
}
