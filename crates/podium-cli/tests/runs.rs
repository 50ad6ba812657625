//! `podium runs search` on a real MLflow SQLite database written by podium's store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

use podium_mlflow::{MetricPoint, RunStatus, SqliteStore, TrackingStore};

fn podium(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(args)
        .env_remove("MLFLOW_TRACKING_URI")
        .output()
        .unwrap()
}

#[test]
fn search_prints_every_run_with_mlflow_spellings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let store = SqliteStore::open(&db).unwrap();
    let experiment = store.create_experiment("sweep").unwrap();
    let mut wanted = Vec::new();
    for (i, backbone) in ["distil", "distil", "roberta"].iter().enumerate() {
        let tags = BTreeMap::from([("code.backbone".to_string(), backbone.to_string())]);
        let run = store
            .create_run(&experiment, &format!("t{i}"), 1_000 + i as i64, &tags)
            .unwrap();
        let value = [f64::NAN, f64::INFINITY, 0.5][i];
        store
            .log_batch(
                &run.run_id,
                &[MetricPoint {
                    key: "f1",
                    value,
                    timestamp: 1,
                    step: 0,
                }],
                &[("lr", "0.1")],
                &[],
            )
            .unwrap();
        store
            .update_run(&run.run_id, RunStatus::Finished, Some(2_000))
            .unwrap();
        if *backbone == "distil" {
            wanted.push(run.run_id);
        }
    }
    let uri = format!("sqlite:///{}", db.display());
    let output = podium(&[
        "--tracking-uri",
        &uri,
        "--format",
        "json",
        "runs",
        "search",
        "--experiment",
        "sweep",
        "--filter",
        "tags.`code.backbone` = 'distil' AND attributes.status = 'FINISHED'",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let mut ids: Vec<&str> = runs.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    wanted.sort();
    assert_eq!(ids, wanted);
    let metrics: Vec<&serde_json::Value> = runs.iter().map(|r| &r["metrics"]["f1"]).collect();
    assert!(metrics.contains(&&serde_json::json!("NaN")), "{metrics:?}");
    assert!(
        metrics.contains(&&serde_json::json!("Infinity")),
        "{metrics:?}"
    );
    let first = &runs[0];
    for key in ["status", "start_time", "end_time", "tags", "params"] {
        assert!(first.get(key).is_some(), "missing {key}");
    }
    assert_eq!(first["status"], "FINISHED");
    assert_eq!(first["params"]["lr"], "0.1");

    // The table for humans.
    let table = podium(&[
        "--tracking-uri",
        &uri,
        "runs",
        "search",
        "--experiment",
        "sweep",
    ]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("3 run(s)"), "{text}");
    assert!(text.contains("f1=NaN"), "{text}");

    // Errors: unknown experiment, bad filter, missing database.
    let missing = podium(&[
        "--tracking-uri",
        &uri,
        "runs",
        "search",
        "--experiment",
        "nope",
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));
    let bad = podium(&[
        "--tracking-uri",
        &uri,
        "runs",
        "search",
        "--experiment",
        "sweep",
        "--filter",
        "tags.a = 'x' OR tags.b = 'y'",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("OR"));
    let absent = format!("sqlite:///{}", dir.path().join("absent.db").display());
    let absent_run = podium(&[
        "--tracking-uri",
        &absent,
        "runs",
        "search",
        "--experiment",
        "x",
    ]);
    assert!(!absent_run.status.success());
    assert!(!dir.path().join("absent.db").exists());
}
