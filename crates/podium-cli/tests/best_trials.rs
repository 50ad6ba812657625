//! `podium best-trials` through the real binary, on Optuna studies written by Python `optuna`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// A pipeline-style config folder: `experiment/proj.yaml` naming `hpo/prod.yaml`, whose
/// `search_space.backbone.values` are the backbones.
fn write_config(dir: &Path, backbones: &[&str]) {
    std::fs::create_dir_all(dir.join("experiment")).unwrap();
    std::fs::create_dir_all(dir.join("hpo")).unwrap();
    std::fs::write(
        dir.join("experiment/proj.yaml"),
        "experiment_name: proj\ndata_config: data/d.yaml\ntrain_config: train.yaml\nhpo_config: hpo/prod.yaml\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/d.yaml"), "name: d\n").unwrap();
    std::fs::write(dir.join("train.yaml"), "training: {}\n").unwrap();
    let values = backbones
        .iter()
        .map(|b| format!("\"{b}\""))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        dir.join("hpo/prod.yaml"),
        format!("search_space:\n  backbone:\n    type: choice\n    values: [{values}]\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("best_model_selection.yaml"),
        "objective:\n  metric: macro-f1\n  direction: maximize\n",
    )
    .unwrap();
}

fn best_trials_in(root: &Path, config: &Path, format: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .current_dir(root)
        .arg("best-trials")
        .arg("--root")
        .arg(root)
        .arg("--config-dir")
        .arg(config)
        .args(["--format", format])
        .args(extra)
        .env("PODIUM_ENVIRONMENT", "local")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("PODIUM_LOG")
        .output()
        .unwrap()
}

fn best_trials(root: &Path, config: &Path, extra: &[&str]) -> Output {
    best_trials_in(root, config, "json", extra)
}

/// The table format's stdout; the command must succeed.
fn best_trials_table(root: &Path, config: &Path, extra: &[&str]) -> String {
    let output = best_trials_in(root, config, "table", extra);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn only_study_files_name_optunas_best_trials_with_source_study() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    let model_dir = root.join("outputs/hpo/local/distilbert");
    let output = Command::new(podium_testkit::python())
        .arg(podium_testkit::workspace_root().join("scripts/best-trials-make-studies.py"))
        .arg(&model_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let optuna = podium_champion::optuna_study::parse_python_json(
        &String::from_utf8(output.stdout).unwrap(),
    )
    .unwrap();
    let config = dir.path().join("config");
    write_config(&config, &["distilbert-base-uncased"]);

    // Default tracking URI (sqlite:///mlflow.db in the working directory) does not exist.
    let output = best_trials(&root, &config, &["--scope", "per_variant"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !root.join("mlflow.db").exists(),
        "reading created mlflow.db"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let per_variant = &report["best_trials"]["distilbert-base-uncased"];
    for (folder, expected) in optuna.as_object().unwrap() {
        let trial = &per_variant[folder];
        assert_eq!(trial["source"], "study", "{folder}");
        assert_eq!(trial["trial_number"], expected["number"], "{folder}");
        assert_eq!(trial["value"], expected["value"], "{folder}");
        assert_eq!(trial["params"], expected["params"], "{folder}");
        assert_eq!(trial["study"], folder.as_str());
        assert_eq!(trial["keyed_by"], "study_folder");
    }
    assert_eq!(report["errors"], serde_json::json!({}));

    // Overall, with an explicit sqlite URI that does not exist either.
    let uri = format!("sqlite:///{}", root.join("absent.db").display());
    let output = best_trials(&root, &config, &["--tracking-uri", &uri]);
    assert!(output.status.success());
    assert!(!root.join("absent.db").exists());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let best = &report["best_trials"]["distilbert-base-uncased"];
    assert_eq!(best["source"], "study");
    assert_eq!(best["study"], "hpo_distilbert_v3");
    assert_eq!(best["value"], "Infinity");
    assert_eq!(best["trial_number"], optuna["hpo_distilbert_v3"]["number"]);

    // A backbone with no source at all: named under errors, exit 1, the others still answered.
    write_config(&config, &["distilbert-base-uncased", "deberta-v3-small"]);
    let output = best_trials(&root, &config, &[]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["best_trials"]["distilbert-base-uncased"]["source"],
        "study"
    );
    let error = report["errors"]["deberta-v3-small"].as_str().unwrap();
    assert!(error.contains("no best trial"), "{error}");

    // --backbone narrows the set; the table format names the source.
    let table = best_trials_table(&root, &config, &["--backbone", "distilbert-base-uncased"]);
    assert!(
        table.contains("study") && table.contains("hpo_distilbert_v3"),
        "{table}"
    );
    // Per variant, the table says what told the studies apart.
    let table = best_trials_table(
        &root,
        &config,
        &[
            "--backbone",
            "distilbert-base-uncased",
            "--scope",
            "per_variant",
        ],
    );
    assert!(
        table.contains("studies told apart by: study folders"),
        "{table}"
    );
}

#[test]
fn the_disk_fallback_reads_the_pipelines_trial_folders_and_skips_only_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    let study = root.join("outputs/hpo/local/distilbert/study-aaaaaaaa");
    let trial = |hash: &str, number: u64, metrics: &str| {
        let trial_dir = study.join(format!("trial-{hash}"));
        std::fs::create_dir_all(&trial_dir).unwrap();
        std::fs::write(
            trial_dir.join("trial_meta.json"),
            format!(
                r#"{{"study_key_hash": "{s}", "trial_key_hash": "{hash}{hash}", "trial_number": {number}, "study_name": "study-aaaaaaaa", "run_id": null}}"#,
                s = "a".repeat(64)
            ),
        )
        .unwrap();
        std::fs::write(trial_dir.join("metrics.json"), metrics).unwrap();
    };
    trial("11111111", 0, r#"{"macro-f1": 0.71}"#);
    trial("22222222", 1, r#"{"macro-f1": 0.83}"#);
    // An unreadable sibling (not JSON) must not hide the valid ones.
    trial("33333333", 2, "{not json");
    let config = dir.path().join("config");
    write_config(&config, &["distilbert-base-uncased"]);
    let output = best_trials(&root, &config, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let best = &report["best_trials"]["distilbert-base-uncased"];
    assert_eq!(best["source"], "disk", "{report:#}");
    assert_eq!(best["value"], 0.83);
    assert_eq!(best["trial_number"], 1);
    assert_eq!(best["study"], "study-aaaaaaaa");
    let warnings = report.to_string();
    assert!(
        warnings.contains("trial-33333333"),
        "the skipped file is named: {warnings}"
    );
}
