//! `podium select` end to end: HPO runs logged by Python `mlflow` (sweep, trial and refit runs
//! tagged like the Python pipeline) into an `mlflow.db` and into a real `mlflow server`; the
//! champions must be the ones computed by hand below.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

const STUDY_A: &str = "aaaaaaaa11111111aaaaaaaa11111111aaaaaaaa11111111aaaaaaaa11111111";
const STUDY_B: &str = "bbbbbbbb22222222bbbbbbbb22222222bbbbbbbb22222222bbbbbbbb22222222";
const STUDY_C: &str = "cccccccc33333333cccccccc33333333cccccccc33333333cccccccc33333333";
const STUDY_D: &str = "dddddddd44444444dddddddd44444444dddddddd44444444dddddddd44444444";
const STUDY_E: &str = "eeeeeeee55555555eeeeeeee55555555eeeeeeee55555555eeeeeeee55555555";

/// The store of the acceptance criterion: three backbones, mixed schema versions, NaN and inf
/// metrics, and one backbone (deberta) whose champion has no refit run.
///
/// Expected by hand (objective macro-f1, maximize, min 3 trials, median of best 3, prefer 2.0):
/// - distilbert: group A (v2) counts 0.80, 0.84, 0.82 (NaN dropped) → stable 0.82; group B (v2)
///   0.90, 0.61, 0.60 → 0.61; group C is v1 (no schema tag) and does not compete although it
///   scores 0.97. The FAILED 0.99 trial is no candidate. Champion: db-a-1 (0.84), refit
///   db-refit-a1 linked by tag.
/// - distilroberta: group D counts 0.70, 0.75, 0.72 (Infinity dropped; the "3.0" run dropped)
///   → 0.72. Champion: dr-d-1, refit dr-refit-d1 found by its key hashes (no link tag).
/// - deberta: group E → champion de-e-2 (0.7), which has no refit run → error naming it.
fn spec() -> Value {
    let mut runs = Vec::new();
    let experiment = |short: &str| format!("podium-ner-hpo-{short}");
    let sweep = |name: &str, short: &str| {
        json!({"name": name, "experiment": experiment(short),
               "tags": {"code.backbone": short, "code.stage": "hpo_sweep",
                        "code.study.key_schema_version": "2.0"}})
    };
    fn trial(
        name: &str,
        short: &str,
        sweep: &str,
        study: &str,
        schema: Option<&str>,
        f1: Value,
        status: &str,
    ) -> Value {
        let mut tags = json!({
            "code.backbone": short, "code.stage": "hpo_trial",
            "code.study_key_hash": study, "code.trial_key_hash": format!("trialkey-{name}"),
            "code.fingerprint.data": format!("data-{short}"), "code.fingerprint.eval": "eval-fp",
            "code.artifact.available": "true", "code.objective.direction": "maximize",
        });
        if let Some(schema) = schema {
            tags["code.study.key_schema_version"] = json!(schema);
        }
        json!({"name": name, "experiment": format!("podium-ner-hpo-{short}"), "tags": tags,
               "params": {"learning_rate": "3e-5"}, "metrics": {"macro-f1": f1},
               "status": status, "parent": sweep,
               "tag_refs": {"code.lineage.hpo_sweep_run_id": sweep}})
    }
    fn refit(name: &str, short: &str, of: &str, study: &str, link: bool) -> Value {
        let mut entry = json!({"name": name, "experiment": format!("podium-ner-hpo-{short}"),
            "tags": {"code.backbone": short, "code.stage": "hpo_refit",
                     "code.study_key_hash": study, "code.trial_key_hash": format!("trialkey-{of}"),
                     "code.study.key_schema_version": "2.0", "code.artifact.available": "true"}});
        if link {
            entry["tag_refs"] = json!({"code.refit.of_trial_run_id": of});
        }
        entry
    }
    let v2 = Some("2.0");
    runs.push(sweep("db-sweep", "distilbert"));
    for (name, study, schema, f1, status) in [
        ("db-a-0", STUDY_A, v2, json!(0.80), "FINISHED"),
        ("db-a-1", STUDY_A, v2, json!(0.84), "FINISHED"),
        ("db-a-2", STUDY_A, v2, json!("NaN"), "FINISHED"),
        ("db-a-3", STUDY_A, v2, json!(0.82), "FINISHED"),
        ("db-a-4", STUDY_A, v2, json!(0.99), "FAILED"),
        ("db-b-0", STUDY_B, v2, json!(0.90), "FINISHED"),
        ("db-b-1", STUDY_B, v2, json!(0.61), "FINISHED"),
        ("db-b-2", STUDY_B, v2, json!(0.60), "FINISHED"),
        ("db-c-0", STUDY_C, None, json!(0.95), "FINISHED"),
        ("db-c-1", STUDY_C, None, json!(0.96), "FINISHED"),
        ("db-c-2", STUDY_C, None, json!(0.97), "FINISHED"),
    ] {
        runs.push(trial(
            name,
            "distilbert",
            "db-sweep",
            study,
            schema,
            f1,
            status,
        ));
    }
    runs.push(refit("db-refit-a1", "distilbert", "db-a-1", STUDY_A, true));
    runs.push(refit("db-refit-b0", "distilbert", "db-b-0", STUDY_B, true));
    runs.push(refit("db-refit-c2", "distilbert", "db-c-2", STUDY_C, true));

    runs.push(sweep("dr-sweep", "distilroberta"));
    for (name, schema, f1) in [
        ("dr-d-0", v2, json!(0.70)),
        ("dr-d-1", v2, json!(0.75)),
        ("dr-d-2", v2, json!(0.72)),
        ("dr-d-3", v2, json!("Infinity")),
        ("dr-d-4", Some("3.0"), json!(0.98)),
    ] {
        runs.push(trial(
            name,
            "distilroberta",
            "dr-sweep",
            STUDY_D,
            schema,
            f1,
            "FINISHED",
        ));
    }
    runs.push(refit(
        "dr-refit-d1",
        "distilroberta",
        "dr-d-1",
        STUDY_D,
        false,
    ));

    runs.push(sweep("de-sweep", "deberta"));
    for (name, f1) in [("de-e-0", 0.5), ("de-e-1", 0.6), ("de-e-2", 0.7)] {
        runs.push(trial(
            name,
            "deberta",
            "de-sweep",
            STUDY_E,
            v2,
            json!(f1),
            "FINISHED",
        ));
    }
    // A refit of the runner-up only: must not be used for the champion.
    runs.push(refit("de-refit-e1", "deberta", "de-e-1", STUDY_E, true));
    Value::Array(runs)
}

/// Logs the spec with Python `mlflow` into `uri`; returns name → run id.
fn log_runs(uri: &str, workdir: &Path) -> BTreeMap<String, String> {
    let spec_path = workdir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec()).unwrap()).unwrap();
    let script = podium_testkit::workspace_root().join("scripts/best-trials-log-runs.py");
    let output = Command::new(podium_testkit::python())
        .arg(&script)
        .arg(uri)
        .arg(&spec_path)
        .current_dir(workdir)
        .env("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "logging failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

fn podium_select(uri: &str, root: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(["select", "--tracking-uri", uri, "--config-dir"])
        .arg(repo_config())
        .arg("--root")
        .arg(root)
        .args(extra)
        .env_remove("MLFLOW_TRACKING_URI")
        .env("PODIUM_ENVIRONMENT", "local")
        .output()
        .unwrap()
}

/// The JSON output with run ids replaced by their spec names and the temp dir by `[TMP]`.
fn named(stdout: &[u8], ids: &BTreeMap<String, String>, tmp: &Path) -> String {
    let mut text = String::from_utf8(stdout.to_vec()).unwrap();
    for (name, id) in ids {
        text = text.replace(id, &format!("<{name}>"));
    }
    text.replace(&tmp.display().to_string(), "[TMP]")
}

fn check_expected_answer(report: &Value) {
    let distilbert = &report["champions"]["distilbert-base-uncased"]["champion"];
    assert_eq!(distilbert["trial_run_id"], "<db-a-1>", "{report:#}");
    assert_eq!(distilbert["run_id"], "<db-refit-a1>");
    assert_eq!(distilbert["refit_matched_by"], "link_tag");
    assert_eq!(distilbert["sweep_run_id"], "<db-sweep>");
    assert_eq!(distilbert["metric"], 0.84);
    assert_eq!(distilbert["stable_score"], 0.82);
    assert_eq!(distilbert["study_key_hash"], STUDY_A);
    assert_eq!(distilbert["data_fingerprint"], "data-distilbert");
    let dropped = &report["champions"]["distilbert-base-uncased"]["dropped"];
    assert_eq!(dropped["schema_not_used"], 3);
    assert_eq!(dropped["non_finite_metric"], 1);

    let distilroberta = &report["champions"]["distilroberta-base"]["champion"];
    assert_eq!(distilroberta["trial_run_id"], "<dr-d-1>");
    assert_eq!(distilroberta["run_id"], "<dr-refit-d1>");
    assert_eq!(distilroberta["refit_matched_by"], "key_hashes");
    assert_eq!(distilroberta["stable_score"], 0.72);
    let dropped = &report["champions"]["distilroberta-base"]["dropped"];
    assert_eq!(dropped["non_finite_metric"], 1);
    assert_eq!(dropped["unknown_schema_version"], 1);

    assert_eq!(report["champions"].as_object().unwrap().len(), 2);
    let error = report["errors"]["deberta-v3-small"].as_str().unwrap();
    assert!(
        error.contains("<de-e-2>") && error.contains("no FINISHED hpo_refit run"),
        "{error}"
    );
}

#[test]
fn sqlite_store_logged_by_python_gives_the_hand_computed_champions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let uri = format!("sqlite:///{}", db.display());
    let ids = log_runs(&uri, dir.path());

    let first = podium_select(&uri, dir.path(), &["--format", "json"]);
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = podium_select(&uri, dir.path(), &["--format", "json"]);
    assert_eq!(
        first.stdout, second.stdout,
        "repeated runs must print the same answer"
    );

    let text = named(&first.stdout, &ids, dir.path());
    let report: Value = serde_json::from_str(&text).unwrap();
    check_expected_answer(&report);
    insta::assert_snapshot!("select_sqlite_json", text);

    // One backbone asked for, and it has a champion: success.
    let one = podium_select(&uri, dir.path(), &["--backbone", "distilroberta-base"]);
    assert_eq!(
        one.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let table = named(&one.stdout, &ids, dir.path());
    for needle in [
        "distilroberta-base",
        "<dr-d-1>",
        "<dr-refit-d1>",
        "0.72",
        "2.0",
        "1/1",
        "non_finite_metric=1",
    ] {
        assert!(table.contains(needle), "{needle} missing from\n{table}");
    }
}

#[test]
fn mlflow_server_logged_by_python_gives_the_hand_computed_champions() {
    let server = podium_testkit::MlflowServer::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ids = log_runs(server.url(), work.path());
    let output = podium_select(server.url(), work.path(), &["--format", "json"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&named(&output.stdout, &ids, work.path())).unwrap();
    check_expected_answer(&report);
}

#[test]
fn missing_sqlite_file_is_an_error_not_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("absent.db");
    let output = podium_select(&format!("sqlite:///{}", db.display()), dir.path(), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not exist"));
    assert!(!db.exists());
}
