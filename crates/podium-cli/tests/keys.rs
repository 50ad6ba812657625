//! `podium keys …` through the real binary, checked against the Python reference
//! (scripts/keys-reference.py run in the test venv on the same files).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(name: &str) -> String {
    root().join("config").join(name).display().to_string()
}

fn podium(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(["keys"])
        .args(args)
        .output()
        .unwrap()
}

fn json_of(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "podium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The Python reference's keys for the repository configs.
fn python_reference(model: &str, params: &Path) -> Value {
    let output = Command::new(podium_testkit::python())
        .arg(root().join("scripts/keys-reference.py"))
        .args(["--data", &config("data.yaml")])
        .args(["--hpo", &config("hpo/prod.yaml")])
        .args(["--train", &config("train.yaml")])
        .args(["--eval", &config("eval.yaml")])
        .args(["--benchmark", &config("benchmark.yaml")])
        .args(["--model", model, "--run-id", "run-1"])
        .arg("--harness-version")
        .arg(podium_bench::HARNESS_VERSION.to_string())
        .arg("--params")
        .arg(params)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn every_keys_command_equals_the_python_reference() {
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("params.json");
    std::fs::write(
        &params,
        r#"{"learning_rate": 2.5e-05, "batch_size": 32, "dropout": 0.1, "label": "Résumé"}"#,
    )
    .unwrap();
    let reference = python_reference("DistilBERT", &params);

    let study = json_of(&podium(&[
        "study",
        "--data",
        &config("data.yaml"),
        "--hpo",
        &config("hpo/prod.yaml"),
        "--train",
        &config("train.yaml"),
        "--eval",
        &config("eval.yaml"),
        "--model",
        "DistilBERT",
    ]));
    assert_eq!(study["schema_version"], "2.0");
    for field in [
        "study_key",
        "study_key_hash",
        "study_family_hash",
        "data_fingerprint",
        "eval_fingerprint",
    ] {
        assert_eq!(study[field], reference[field], "{field}");
    }

    let v1 = json_of(&podium(&[
        "study",
        "--schema",
        "v1",
        "--data",
        &config("data.yaml"),
        "--hpo",
        &config("hpo/prod.yaml"),
        "--train",
        &config("train.yaml"),
        "--eval",
        &config("eval.yaml"),
        "--benchmark",
        &config("benchmark.yaml"),
        "--model",
        "DistilBERT",
    ]));
    assert_eq!(v1["schema_version"], "1.0");
    assert_eq!(v1["study_key"], reference["study_key_v1"]);
    assert_eq!(v1["study_key_hash"], reference["study_key_v1_hash"]);

    let study_key_hash = study["study_key_hash"].as_str().unwrap();
    let trial = json_of(&podium(&[
        "trial",
        "--study-key-hash",
        study_key_hash,
        "--params",
        params.to_str().unwrap(),
    ]));
    assert_eq!(trial["trial_key"], reference["trial_key"]);
    assert_eq!(trial["trial_key_hash"], reference["trial_key_hash"]);

    let benchmark = json_of(&podium(&[
        "benchmark",
        "--run-id",
        "run-1",
        "--data-fp",
        study["data_fingerprint"].as_str().unwrap(),
        "--eval-fp",
        study["eval_fingerprint"].as_str().unwrap(),
        "--benchmark",
        &config("benchmark.yaml"),
    ]));
    assert_eq!(benchmark["bench_fp"], reference["bench_fp"]);
    assert_eq!(benchmark["benchmark_key"], reference["benchmark_key"]);

    let data_fp = json_of(&podium(&["fingerprint", "data", &config("data.yaml")]));
    assert_eq!(data_fp["hash"], reference["data_fingerprint"]);
    let eval_fp = json_of(&podium(&["fingerprint", "eval", &config("eval.yaml")]));
    assert_eq!(eval_fp["hash"], reference["eval_fingerprint"]);
    for (name, file) in [("hpo", "hpo/prod.yaml"), ("benchmark", "benchmark.yaml")] {
        let hash = json_of(&podium(&["config-hash", &config(file)]));
        assert_eq!(hash["hash"], reference["config_hashes"][name], "{name}");
    }
}

#[test]
fn canonical_prints_python_json_dumps_text() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        "lr: 1e-5\nwd: 1.0e-5\nlabels: {10: B-LOC, 2: I-PER}\nname: Résumé\nflag: yes\n",
    )
    .unwrap();
    let compact = podium(&["canonical", file.to_str().unwrap()]);
    assert!(compact.status.success());
    assert_eq!(
        String::from_utf8(compact.stdout).unwrap(),
        "{\"flag\":true,\"labels\":{\"2\":\"I-PER\",\"10\":\"B-LOC\"},\"lr\":\"1e-5\",\"name\":\"R\\u00e9sum\\u00e9\",\"wd\":1e-05}\n"
    );
    let default = podium(&["canonical", "--style", "default", file.to_str().unwrap()]);
    let text = String::from_utf8(default.stdout).unwrap();
    assert!(
        text.starts_with("{\"flag\": true, \"labels\": {\"2\": \"I-PER\""),
        "{text}"
    );
}

#[test]
fn refusals_exit_non_zero_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = dir.path().join("mixed.yaml");
    std::fs::write(&mixed, "{1: a, b: c}\n").unwrap();
    let output = podium(&["config-hash", mixed.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not supported between"), "{stderr}");

    let dated = dir.path().join("dated.yaml");
    std::fs::write(&dated, "released: 2024-01-15\n").unwrap();
    let output = podium(&["canonical", dated.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("dated.yaml") && stderr.contains("timestamp"),
        "{stderr}"
    );

    let missing = podium(&["fingerprint", "eval", "/nonexistent/eval.yaml"]);
    assert!(!missing.status.success());
}
