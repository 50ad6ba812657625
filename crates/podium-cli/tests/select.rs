//! `podium select` end to end on stores generated the way the Python pipeline writes them
//! (scripts/gen-pipeline-store.py, real `mlflow`): the answer per backbone must be the one a
//! plain Python statement of the selection rules (podium-champion's tests/peers/selection_rules.py)
//! gives on the same runs, read back from the store by Python `mlflow`; errors exactly where
//! that statement has no answer. Named stores are also snapshotted (run ids replaced by names).
//! One SQLite database holds every store; one real `mlflow server` serves another.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const NAMED: [&str; 6] = [
    "basic",
    "ties",
    "legacy",
    "artifact-false",
    "missing-refit",
    "nan",
];
const RANDOM: [&str; 6] = [
    "random:1", "random:2", "random:3", "random:4", "random:5", "random:6",
];

struct Generated {
    dir: tempfile::TempDir,
    uri: String,
    /// store → manifest (runs by name, experiments by backbone, backbones).
    manifests: BTreeMap<String, Value>,
}

fn python(script: &Path) -> Command {
    let mut command = Command::new(podium_testkit::python());
    command
        .arg(script)
        .env("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        .env("GIT_PYTHON_REFRESH", "quiet");
    command
}

fn generate(uri: &str, dir: &Path, stores: &[&str]) -> BTreeMap<String, Value> {
    let script = podium_testkit::workspace_root().join("scripts/gen-pipeline-store.py");
    let manifest = dir.join("manifest.json");
    let mut command = python(&script);
    command
        .args(["--tracking-uri", uri, "--root"])
        .arg(dir)
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--manifest")
        .arg(&manifest)
        .current_dir(dir);
    if uri.starts_with("sqlite:") {
        command.arg("--artifact-root").arg(dir.join("mlartifacts"));
    }
    for store in stores {
        command.args(["--store", store]);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "generating failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap()
}

/// Every store of this binary's tests, generated once into one SQLite database.
fn sqlite_stores() -> &'static Generated {
    static STORES: OnceLock<Generated> = OnceLock::new();
    STORES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
        let all: Vec<&str> = NAMED.iter().chain(RANDOM.iter()).copied().collect();
        let manifests = generate(&uri, dir.path(), &all);
        Generated {
            dir,
            uri,
            manifests,
        }
    })
}

fn config_dir(root: &Path, store: &str) -> PathBuf {
    root.join("config").join(store.replace(':', "-"))
}

fn podium_select(uri: &str, root: &Path, store: &str) -> Output {
    podium_select_as("json", uri, root, store)
}

fn podium_select_as(format: &str, uri: &str, root: &Path, store: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .args([
            "select",
            "--format",
            format,
            "--tracking-uri",
            uri,
            "--config-dir",
        ])
        .arg(config_dir(root, store))
        .arg("--root")
        .arg(root)
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("COLUMNS")
        .env("PODIUM_ENVIRONMENT", "local")
        .output()
        .unwrap()
}

fn select_json(uri: &str, root: &Path, store: &str) -> Value {
    let output = podium_select(uri, root, store);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "{store}: no JSON ({err}):\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let has_errors = report["errors"].as_object().is_some_and(|e| !e.is_empty());
    assert_eq!(
        output.status.code(),
        Some(if has_errors { 1 } else { 0 }),
        "{store}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

/// The answers of the Python statement of the rules, on the runs Python `mlflow` reads back.
fn restated(uri: &str, manifests: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    let peer = podium_testkit::workspace_root()
        .join("crates/podium-champion/tests/peers/selection_rules.py");
    let code = r#"
import json, runpy, sys
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient
rules = runpy.run_path(sys.argv[1])
client = MlflowClient(tracking_uri=sys.argv[2])
manifests = json.loads(sys.argv[3])
config = {"metric": "macro-f1", "direction": "maximize", "min_trials_per_group": 3,
          "top_k_for_stable_score": 3, "require_artifact_available": True,
          "prefer_schema_version": "auto", "allow_mixed_schema_groups": False,
          "checkpoint_source": "refit"}
out = {}
for store, manifest in manifests.items():
    answers = {}
    for backbone in manifest["backbones"]:
        exp = client.get_experiment_by_name(manifest["experiments"][backbone])
        runs, token = [], None
        while True:
            page = client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL,
                                      max_results=1000, page_token=token)
            runs += page
            token = page.token
            if not token:
                break
        case = {"config": config, "model": backbone.split("-")[0], "runs": [
            {"id": r.info.run_id, "status": r.info.status, "start": r.info.start_time,
             "deleted": r.info.lifecycle_stage == "deleted", "tags": r.data.tags,
             "metrics": r.data.metrics} for r in runs]}
        answers[backbone] = rules["select"](case)
    out[store] = answers
print(json.dumps(out))
"#;
    let output = Command::new(podium_testkit::python())
        .args(["-c", code])
        .arg(&peer)
        .arg(uri)
        .arg(serde_json::to_string(manifests).unwrap())
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// podium's answer in the peer's shape: {trial, refit} or {error: kind}.
fn answer_of(report: &Value, backbone: &str) -> Value {
    if let Some(champion) = report["champions"].get(backbone) {
        let champion = &champion["champion"];
        return serde_json::json!({
            "trial": champion["trial_run_id"],
            "refit": champion["refit_run_id"],
        });
    }
    let error = report["errors"][backbone].as_str().unwrap_or_default();
    let kind = if error.contains("no FINISHED trial runs") {
        "no_candidates"
    } else if error.contains("no champion") {
        "no_group"
    } else if error.contains("has no hpo_refit run") {
        "no_refit"
    } else {
        panic!("{backbone}: unexpected error {error:?}")
    };
    serde_json::json!({ "error": kind })
}

fn compare(generated: &Generated, uri: &str, stores: &[&str]) -> BTreeMap<String, usize> {
    let manifests: BTreeMap<String, Value> = stores
        .iter()
        .map(|s| (s.to_string(), generated.manifests[*s].clone()))
        .collect();
    let expected = restated(uri, &manifests);
    let mut outcomes = BTreeMap::new();
    for store in stores {
        let report = select_json(uri, generated.dir.path(), store);
        for backbone in generated.manifests[*store]["backbones"].as_array().unwrap() {
            let backbone = backbone.as_str().unwrap();
            let mut want = expected[*store][backbone].clone();
            if let Some(object) = want.as_object_mut()
                && object.contains_key("error")
            {
                object.remove("trial");
            }
            let got = answer_of(&report, backbone);
            assert_eq!(got, want, "{store} / {backbone}: {report:#}");
            let kind = want["error"].as_str().unwrap_or("champion").to_string();
            *outcomes.entry(kind).or_default() += 1;
        }
    }
    outcomes
}

/// The JSON output with run ids replaced by their names and the temp dir by `[TMP]`.
fn named(report: &Value, manifest: &Value, tmp: &Path) -> String {
    let mut text = serde_json::to_string_pretty(report).unwrap();
    for (name, id) in manifest["runs"].as_object().unwrap() {
        text = text.replace(id.as_str().unwrap(), &format!("<{name}>"));
    }
    text.replace(&tmp.display().to_string(), "[TMP]")
}

/// The table output with run ids replaced: whole ids (in messages) by their names, the 12
/// characters a table shows by a label of the same width (`<r03>`, so the table keeps its
/// shape), named in a legend after it; the temp dir by `[TMP]`.
fn named_table(text: &str, manifest: &Value, tmp: &Path) -> String {
    let mut text = text.replace(&tmp.display().to_string(), "[TMP]");
    let runs: BTreeMap<&String, &str> = manifest["runs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, id)| (name, id.as_str().unwrap()))
        .collect();
    let mut legend = Vec::new();
    for (index, (name, id)) in runs.into_iter().enumerate() {
        text = text.replace(id, &format!("<{name}>"));
        let label = format!("{:<12}", format!("<r{index:02}>"));
        if text.contains(&id[..12]) {
            text = text.replace(&id[..12], &label);
            legend.push(format!("{} = {name}", label.trim_end()));
        }
    }
    format!("{text}--- run ids\n{}\n", legend.join("\n"))
}

#[test]
fn sqlite_stores_match_the_rules_and_their_snapshots() {
    let generated = sqlite_stores();
    let all: Vec<&str> = NAMED.iter().chain(RANDOM.iter()).copied().collect();
    let outcomes = compare(generated, &generated.uri, &all);
    for kind in ["champion", "no_group", "no_refit"] {
        assert!(outcomes.get(kind).is_some_and(|n| *n > 0), "{outcomes:?}");
    }
    for store in NAMED {
        let report = select_json(&generated.uri, generated.dir.path(), store);
        let text = named(&report, &generated.manifests[store], generated.dir.path());
        insta::assert_snapshot!(format!("select_{}", store.replace('-', "_")), text);
        // What a person reads: the table (100 columns, run ids shortened).
        let output = podium_select_as("table", &generated.uri, generated.dir.path(), store);
        let table = String::from_utf8_lossy(&output.stdout);
        let table = named_table(&table, &generated.manifests[store], generated.dir.path());
        insta::assert_snapshot!(format!("select_table_{}", store.replace('-', "_")), table);
    }
}

#[test]
fn named_stores_give_the_documented_answers() {
    let generated = sqlite_stores();
    let root = generated.dir.path();
    let name_of = |store: &str, id: &Value| -> String {
        generated.manifests[store]["runs"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, v)| *v == id)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| format!("{id}"))
    };
    let champion = |store: &str, backbone: &str| -> (String, String) {
        let report = select_json(&generated.uri, root, store);
        let champion = &report["champions"][backbone]["champion"];
        (
            name_of(store, &champion["trial_run_id"]),
            name_of(store, &champion["refit_run_id"]),
        )
    };
    // A tie on the best metric: the earliest trial, the one Optuna's best_trial names and the
    // pipeline refits (the pipeline itself picks the later tie and finds no refit for it).
    assert_eq!(
        champion("ties", "distilbert"),
        ("distilbert-0-trial-1".into(), "distilbert-0-refit-1".into())
    );
    // A tie on the stable score: the group whose newest trial started last.
    assert_eq!(champion("ties", "deberta").0, "deberta-2-trial-2");
    // The backbone with `-` in its name has its own experiment, named with the name as written.
    assert_eq!(
        champion("basic", "deberta-v3-small"),
        ("deberta-1-trial-1".into(), "deberta-1-refit-1".into())
    );
    // The v2 group competes alone; a backbone with only a legacy group has no answer, saying so.
    let legacy = select_json(&generated.uri, root, "legacy");
    assert_eq!(
        name_of(
            "legacy",
            &legacy["champions"]["distilbert"]["champion"]["trial_run_id"]
        ),
        "distilbert-1-trial-1"
    );
    let error = legacy["errors"]["distilroberta"].as_str().unwrap();
    assert!(
        error.contains("only schema 1.0 groups") && error.contains("prefer_schema_version"),
        "{error}"
    );
    // The sweep's artifact tag "false" drops its trials; a legacy sweep's does not.
    assert_eq!(
        champion("artifact-false", "distilbert").0,
        "distilbert-1-trial-1"
    );
    // One backbone without a refit does not hide the others; a FAILED refit still answers.
    let missing = select_json(&generated.uri, root, "missing-refit");
    assert!(
        missing["errors"]["distilbert"]
            .as_str()
            .unwrap()
            .contains("has no hpo_refit run")
    );
    assert_eq!(champion("missing-refit", "deberta").1, "deberta-1-refit-1");
    let (trial, refit) = champion("missing-refit", "distilroberta");
    assert_eq!(
        (trial.as_str(), refit.as_str()),
        ("distilroberta-2-trial-2", "distilroberta-2-refit-2")
    );
    assert_eq!(
        missing["champions"]["distilroberta"]["champion"]["refit_matched_by"],
        "link_tag"
    );
}

#[test]
fn a_real_server_gives_the_same_answers_as_the_database() {
    let server = podium_testkit::MlflowServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stores = ["missing-refit", "ties", "random:3"];
    let manifests = generate(server.url(), dir.path(), &stores);
    let generated = Generated {
        dir,
        uri: server.url().to_string(),
        manifests,
    };
    let outcomes = compare(&generated, server.url(), &stores);
    assert!(outcomes.contains_key("no_refit"), "{outcomes:?}");
}
