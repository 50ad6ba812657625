//! `podium config check` through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/orchestrate.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// A copy of the repository's config directory that a test may break.
fn config_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&repo_config(), dir.path());
    dir
}

fn check(config_dir: &Path, json: bool) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
    command
        .args(["config", "check", "--config-dir"])
        .arg(config_dir);
    if json {
        command.args(["--format", "json"]);
    }
    command.output().unwrap()
}

fn pipeline_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../podium-keys/tests/fixtures/pipeline-config")
}

fn report_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
        panic!(
            "{err}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn file_report<'a>(report: &'a Value, suffix: &str) -> &'a Value {
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["file"]
                .as_str()
                .unwrap()
                .replace('\\', "/")
                .ends_with(suffix)
        })
        .unwrap_or_else(|| panic!("no report for {suffix}: {report:#}"))
}

#[test]
fn repository_configs_pass() {
    let output = check(&repo_config(), true);
    let report = report_of(&output);
    assert!(output.status.success(), "{report:#}");
    assert_eq!(report["ok"], true);
    for expected in [
        "experiment/podium_ner.yaml",
        "data/resume_ner.yaml",
        "train.yaml",
        "benchmark.yaml",
        "best_model_selection.yaml",
        "tags.yaml",
        "paths.yaml",
        "hpo/prod.yaml",
        "hpo/smoke.yaml",
        "model/distilbert.yaml",
    ] {
        assert_eq!(file_report(&report, expected)["ok"], true, "{expected}");
    }
}

/// A folder laid out like the pipeline's (every file and section of its reference commit):
/// exit 0, and the pipeline's keys podium does not read are named as ignored.
#[test]
fn a_pipeline_config_folder_passes_and_names_the_ignored_keys() {
    let output = check(&pipeline_config(), true);
    let report = report_of(&output);
    assert!(output.status.success(), "{report:#}");
    let ignored = |suffix: &str| -> Vec<String> {
        file_report(&report, suffix)["ignored_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect()
    };
    let experiment = ignored("experiment/fixture_baseline.yaml");
    for key in [
        "model_config",
        "env_config",
        "naming",
        "stages.smoke",
        "stages.training",
    ] {
        assert!(
            experiment.contains(&key.to_string()),
            "{key}: {experiment:?}"
        );
    }
    assert!(ignored("data/resume_tiny.yaml").contains(&"splitting".to_string()));
    assert!(ignored("train.yaml").contains(&"training".to_string()));
    assert!(ignored("hpo/smoke.yaml").contains(&"cleanup".to_string()));
    assert!(ignored("paths.yaml").contains(&"cache_strategies".to_string()));
    let detail = file_report(&report, "hpo/smoke.yaml")["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("HPO config of record"), "{detail}");
    // The table names them too.
    let table = check(&pipeline_config(), false);
    assert!(table.status.success());
    assert!(String::from_utf8_lossy(&table.stdout).contains("cache_strategies"));
}

/// Edits one file of a copy of the pipeline-layout folder and expects `config check` to fail
/// naming the file and the key.
fn expect_error(file: &str, edit: impl Fn(String) -> String, key: &str) {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&pipeline_config(), dir.path());
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, edit(text)).unwrap();
    let output = check(dir.path(), true);
    let report = report_of(&output);
    assert!(!output.status.success(), "{file}: {report:#}");
    let failed = file_report(&report, file);
    assert_eq!(failed["ok"], false, "{file}: {report:#}");
    let detail = failed["detail"].as_str().unwrap();
    assert!(detail.contains(key), "{file}: {key} not in {detail}");
    assert!(
        detail.contains(file.rsplit('/').next().unwrap()),
        "{file}: {detail}"
    );
}

#[test]
fn unknown_keys_and_wrong_types_name_file_and_key() {
    let experiment = "experiment/fixture_baseline.yaml";
    expect_error(experiment, |t| t + "colour: red\n", "colour");
    expect_error(
        experiment,
        |t| t.replace("  smoke:", "  smoky:"),
        "stages.smoky",
    );
    expect_error(
        experiment,
        |t| t.replace("data_config: \"data/resume_tiny.yaml\"", "data_config: 3"),
        "data_config",
    );
    expect_error("data/resume_tiny.yaml", |t| t + "nmae: x\n", "nmae");
    expect_error("train.yaml", |t| t + "trainig: {}\n", "trainig");
    expect_error("hpo/smoke.yaml", |t| t + "serch_space: {}\n", "serch_space");
    expect_error("hpo/smoke.yaml", |_| "42\n".into(), "expected a mapping");
    expect_error(
        "hpo/smoke.yaml",
        |t| t.replace("values: [\"distilbert\"]", "values: distilbert"),
        "search_space.backbone.values",
    );
    expect_error(
        "benchmark.yaml",
        |t| t.replace("  iterations: 10", "  iteration: 10"),
        "benchmarking.iteration",
    );
    expect_error(
        "benchmark.yaml",
        |t| t.replace("  batch_sizes: [1]", "  batch_sizes: [1000000]"),
        "benchmarking.batch_sizes",
    );
    expect_error(
        "benchmark.yaml",
        |t| t.replace("  max_length: 512", "  max_length: 1000000000"),
        "benchmarking.max_length",
    );
    expect_error(
        "benchmark.yaml",
        |t| t + "batch_sizes: [1]\n",
        "batch_sizes",
    );
    expect_error(
        "best_model_selection.yaml",
        |t| {
            t.replace(
                "latency_aggregation: \"latest\"",
                "latency_aggregation: \"max\"",
            )
        },
        "benchmark.latency_aggregation",
    );
    expect_error(
        "best_model_selection.yaml",
        |t| t.replace("run:\n  mode: force_new", "run:\n  mode: sometimes"),
        "run.mode",
    );
    expect_error("tags.yaml", |t| t + "colours:\n  red: x\n", "colours");
    expect_error(
        "tags.yaml",
        |t| t.replace("  stage: \"code.stage\"", "  stage: 3"),
        "process.stage",
    );
    expect_error("paths.yaml", |t| t + "outptus: {}\n", "outptus");
}

/// Duplicate keys and ints ≥ 2^64: `config check` reads them as the commands (and PyYAML) do.
#[test]
fn check_reads_files_as_the_commands_do() {
    let dir = tempfile::tempdir().unwrap();
    support::copy_dir(&pipeline_config(), dir.path());
    let data = dir.path().join("data/resume_tiny.yaml");
    let text = std::fs::read_to_string(&data).unwrap();
    std::fs::write(
        &data,
        format!("{text}version: v4\nsplit_seed: 18446744073709551616\n"),
    )
    .unwrap();
    let output = check(dir.path(), true);
    assert!(output.status.success(), "{:#}", report_of(&output));
    let keys = Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(["keys", "study", "--backbone", "distilbert", "--config-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    let study: Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert!(
        study["study_key"]
            .as_str()
            .unwrap()
            .contains(r#""split_seed":18446744073709551616,"version":"v4""#)
    );
}

#[test]
fn several_experiments_need_a_name() {
    let dir = config_copy();
    let experiment = dir.path().join("experiment/podium_ner.yaml");
    std::fs::copy(&experiment, dir.path().join("experiment/other.yaml")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(["keys", "study", "--backbone", "distilbert", "--config-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--experiment") && stderr.contains("other"),
        "{stderr}"
    );
    let named = Command::new(env!("CARGO_BIN_EXE_podium"))
        .args([
            "keys",
            "study",
            "--backbone",
            "distilbert",
            "--experiment",
            "other",
            "--config-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        named.status.success(),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
}

#[test]
fn a_folder_without_an_experiment_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("benchmark.yaml"), "").unwrap();
    let output = check(dir.path(), true);
    assert!(!output.status.success());
    let report = report_of(&output);
    assert_eq!(file_report(&report, "experiment")["ok"], false);
}
