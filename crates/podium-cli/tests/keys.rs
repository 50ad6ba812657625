//! `podium keys …` through the real binary, checked against the Python reference
//! (scripts/keys-reference.py run in the test venv on the same files).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pipeline_config() -> PathBuf {
    root().join("crates/podium-keys/tests/fixtures/pipeline-config")
}

fn fixture_file(name: &str) -> String {
    pipeline_config().join(name).display().to_string()
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

/// The Python reference's keys for a config folder.
fn python_reference(config_dir: &Path, backbone: &str, params: &Path) -> Value {
    let output = Command::new(podium_testkit::python())
        .arg(root().join("scripts/keys-reference.py"))
        .arg("--config-dir")
        .arg(config_dir)
        .args(["--backbone", backbone, "--run-id", "run-1"])
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

const STUDY_FIELDS: [&str; 8] = [
    "data_fingerprint",
    "eval_fingerprint",
    "study_key",
    "study_key_hash",
    "study_family_key",
    "study_family_hash",
    "v1_study_key",
    "v1_study_key_hash",
];

#[test]
fn every_keys_command_equals_the_python_reference() {
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("params.json");
    std::fs::write(
        &params,
        r#"{"learning_rate": 2.3300000000001e-05, "batch_size": 4, "dropout": 0.1234567890123456,
            "weight_decay": -0.0, "backbone": "distilbert", "trial_number": 3, "run_id": "r",
            "optimizer": " AdamW ", "schedule": null, "layers": [1, 2]}"#,
    )
    .unwrap();
    let config_dir = pipeline_config();
    let reference = python_reference(&config_dir, "distilbert", &params);

    // From the experiment folder...
    let from_folder = json_of(&podium(&[
        "study",
        "--backbone",
        "distilbert",
        "--config-dir",
        config_dir.to_str().unwrap(),
        "--format",
        "json",
    ]));
    // ...and from the files, the eval config derived the same way.
    let from_files = json_of(&podium(&[
        "study",
        "--data",
        &fixture_file("data/resume_tiny.yaml"),
        "--hpo",
        &fixture_file("hpo/smoke.yaml"),
        "--train",
        &fixture_file("train.yaml"),
        "--benchmark",
        &fixture_file("benchmark.yaml"),
        "--model",
        "distilbert",
        "--format",
        "json",
    ]));
    for field in STUDY_FIELDS {
        assert_eq!(from_folder[field], reference[field], "{field}");
        assert_eq!(from_files[field], reference[field], "{field}");
    }
    assert_eq!(
        from_folder.as_object().unwrap().len(),
        STUDY_FIELDS.len(),
        "{from_folder:#}"
    );

    let trial = json_of(&podium(&[
        "trial",
        "--study-key-hash",
        reference["study_key_hash"].as_str().unwrap(),
        "--params",
        params.to_str().unwrap(),
        "--format",
        "json",
    ]));
    assert_eq!(trial["trial_key"], reference["trial_key"]);
    assert_eq!(trial["trial_key_hash"], reference["trial_key_hash"]);
    let hyperparameters = trial["hyperparameters"].as_object().unwrap();
    assert!(!hyperparameters.contains_key("backbone") && !hyperparameters.contains_key("run_id"));
    assert_eq!(hyperparameters["optimizer"], "adamw");
    assert_eq!(hyperparameters["layers"], "[1, 2]");
    assert_eq!(hyperparameters["schedule"], "none");

    let benchmark = json_of(&podium(&[
        "benchmark",
        "--run-id",
        "run-1",
        "--data-fp",
        reference["data_fingerprint"].as_str().unwrap(),
        "--eval-fp",
        reference["eval_fingerprint"].as_str().unwrap(),
        "--benchmark",
        &fixture_file("benchmark.yaml"),
        "--format",
        "json",
    ]));
    assert_eq!(benchmark["benchmark_key"], reference["benchmark_key"]);
    assert_eq!(
        benchmark["config_hash"],
        reference["config_hashes"]["benchmark"]
    );

    let data_fp = json_of(&podium(&[
        "fingerprint",
        "data",
        &fixture_file("data/resume_tiny.yaml"),
    ]));
    assert_eq!(data_fp["hash"], reference["data_fingerprint"]);
    for (name, file) in [
        ("hpo", "hpo/smoke.yaml"),
        ("benchmark", "benchmark.yaml"),
        ("train", "train.yaml"),
    ] {
        let hash = json_of(&podium(&[
            "config-hash",
            &fixture_file(file),
            "--format",
            "json",
        ]));
        assert_eq!(
            hash["config_hash"], reference["config_hashes"][name],
            "{name}"
        );
    }
}

#[test]
fn study_needs_files_or_a_backbone() {
    let output = podium(&["study"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--backbone"), "{stderr}");
    let config_dir = pipeline_config();
    let output = podium(&[
        "study",
        "--backbone",
        "bert",
        "--config-dir",
        config_dir.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("search_space.backbone.values"), "{stderr}");
}

/// A few hundred bytes of nested aliases must not expand without bound.
#[test]
fn alias_bombs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.yaml");
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..12 {
        let previous = format!("*a{}", level - 1);
        text.push_str(&format!(
            "a{level}: &a{level} [{}]\n",
            vec![previous; 10].join(", ")
        ));
    }
    std::fs::write(&bomb, &text).unwrap();
    assert!(text.len() < 1000);
    let started = std::time::Instant::now();
    let output = podium(&["canonical", bomb.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bomb.yaml") && stderr.contains("alias"),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// `keys canonical` is linear: 200k keys, which took minutes when every insert and the
/// duplicate check scanned the whole mapping.
#[test]
fn canonical_of_a_huge_mapping_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "big.yaml",
            (0..200_000)
                .map(|i| format!("k{i}: {i}\n"))
                .collect::<String>(),
        ),
        (
            "big.json",
            format!(
                "{{{}}}",
                (0..200_000)
                    .map(|i| format!("\"k{i}\": {i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let started = std::time::Instant::now();
        let output = podium(&["canonical", file.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.stdout.starts_with(b"{\"k0\":0,\"k1\":1,\"k10\":10,"));
        let elapsed = started.elapsed();
        assert!(
            elapsed < std::time::Duration::from_secs(30),
            "{name}: {elapsed:?}"
        );
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

    let missing = podium(&["fingerprint", "eval", "/nonexistent/eval-config.yaml"]);
    assert!(!missing.status.success());
    let fifo_like = podium(&["canonical", "/dev/null/x.yaml"]);
    assert!(!fifo_like.status.success());
    let device = podium(&["canonical", "/dev/zero"]);
    assert!(!device.status.success());
    let stderr = String::from_utf8_lossy(&device.stderr);
    assert!(stderr.contains("not a regular file"), "{stderr}");
    let missing = podium(&["fingerprint", "eval", "/nonexistent/eval-config.yaml"]);
    assert!(!missing.status.success());
}
