//! `podium verify-hashes` through the real binary, on runs logged by Python `mlflow`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const EXPERIMENT: &str = "proj-hpo-distilbert";

fn runs(prefix: &str, study_hash: &str, trial_study_hash: &str) -> Vec<Value> {
    let tags = |stage: &str, hash: &str| {
        json!({
            "code.backbone": "distilbert",
            "code.stage": stage,
            "code.study_key_hash": hash,
            "code.study.key_schema_version": "2.0",
            "code.trial_key_hash": "t".repeat(64),
        })
    };
    vec![
        json!({"name": format!("{prefix}-sweep"), "experiment": EXPERIMENT,
               "tags": tags("hpo_sweep", study_hash)}),
        json!({"name": format!("{prefix}-trial"), "experiment": EXPERIMENT,
               "tags": tags("hpo_trial", trial_study_hash), "parent": format!("{prefix}-sweep")}),
        json!({"name": format!("{prefix}-refit"), "experiment": EXPERIMENT,
               "tags": tags("hpo_refit", study_hash), "parent": format!("{prefix}-sweep"),
               "tag_refs": {"code.refit.of_trial_run_id": format!("{prefix}-trial")}}),
    ]
}

fn verify(db: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .arg("verify-hashes")
        .args(["--experiment", EXPERIMENT])
        .arg("--tracking-uri")
        .arg(format!("sqlite:///{}", db.display()))
        .arg("--config-dir")
        .arg(db.parent().unwrap().join("no-config"))
        .args(extra)
        .env_remove("PODIUM_LOG")
        .output()
        .unwrap()
}

#[test]
fn exit_codes_follow_consistency() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let mut spec = runs("good", &a, &a);
    spec.extend(runs("bad", &b, &a));
    let spec_path = dir.path().join("runs.json");
    std::fs::write(&spec_path, Value::Array(spec).to_string()).unwrap();
    let output = Command::new(podium_testkit::python())
        .arg(podium_testkit::workspace_root().join("scripts/best-trials-log-runs.py"))
        .arg(format!("sqlite:///{}", db.display()))
        .arg(&spec_path)
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ids: BTreeMap<String, String> = serde_json::from_slice(&output.stdout).unwrap();

    let good = verify(
        &db,
        &["--parent-run-id", &ids["good-sweep"], "--format", "json"],
    );
    assert_eq!(
        good.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let report: Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(report["problems"], json!([]));
    assert_eq!(
        (report["trials"].as_u64(), report["refits"].as_u64()),
        (Some(1), Some(1))
    );

    let bad = verify(
        &db,
        &["--parent-run-id", &ids["bad-sweep"], "--format", "json"],
    );
    assert_eq!(bad.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&bad.stdout).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["kind"], "study_key_hash_mismatch");
    assert_eq!(problems[0]["run_id"], ids["bad-trial"].as_str());
    assert_eq!(problems[0]["related_run_id"], ids["bad-sweep"].as_str());

    // Table output names the problem and the run; the whole experiment fails too.
    let table = verify(&db, &[]);
    assert_eq!(table.status.code(), Some(1));
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("study_key_hash_mismatch") && text.contains(&ids["bad-trial"]),
        "{text}"
    );

    // A tracking database that does not exist is an error and is not created.
    let missing = dir.path().join("missing.db");
    let output = verify(&missing, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!missing.exists());
}
