//! `podium config check` through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

/// A copy of the repository's config directory that a test may break.
fn config_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo_config(), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
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

#[test]
fn repository_configs_pass() {
    let output = check(&repo_config(), true);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(output.status.success(), "{report:#}");
    assert_eq!(report["ok"], true);
    let files: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().replace('\\', "/"))
        .collect();
    for expected in [
        "experiment.yaml",
        "benchmark.yaml",
        "tags.yaml",
        "hpo/smoke.yaml",
        "hpo/prod.yaml",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(expected)),
            "{expected} not checked: {files:?}"
        );
    }
}

#[test]
fn invalid_run_mode_names_file_key_and_valid_values() {
    for file in ["benchmark.yaml", "hpo/prod.yaml"] {
        let dir = config_copy();
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let broken = text.replacen("\n  mode: ", "\n  mode: sometimes # was: ", 1);
        assert_ne!(broken, text);
        std::fs::write(&path, broken).unwrap();

        let output = check(dir.path(), false);
        assert_eq!(output.status.code(), Some(1), "{file}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        for needle in [
            name,
            "run.mode",
            "sometimes",
            "reuse_if_exists",
            "force_new",
            "resume_if_incomplete",
        ] {
            assert!(
                stderr.contains(needle),
                "{needle} missing from stderr:\n{stderr}"
            );
        }
        assert!(stdout.contains("ERROR"), "{stdout}");
    }
}

#[test]
fn broken_experiment_and_missing_files_fail() {
    let dir = config_copy();
    std::fs::write(
        dir.path().join("experiment.yaml"),
        "name: x\nbackbones: [a]\ncolour: red\n",
    )
    .unwrap();
    let output = check(dir.path(), true);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let failed: Vec<&Value> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert!(failed[0]["detail"].as_str().unwrap().contains("colour"));

    std::fs::remove_file(dir.path().join("experiment.yaml")).unwrap();
    assert_eq!(check(dir.path(), false).status.code(), Some(1));
    assert_eq!(
        check(&dir.path().join("missing"), false).status.code(),
        Some(1)
    );
}

#[test]
fn selection_and_benchmark_configs_are_checked_with_their_loaders() {
    let dir = config_copy();
    let selection = dir.path().join("best_model_selection.yaml");
    let text = std::fs::read_to_string(&selection).unwrap();
    std::fs::write(
        &selection,
        text.replace("checkpoint_source: refit", "checkpoint_source: best"),
    )
    .unwrap();
    let benchmark = dir.path().join("benchmark.yaml");
    let text = std::fs::read_to_string(&benchmark).unwrap();
    std::fs::write(
        &benchmark,
        text.replace("input: synthetic", "input: webcam"),
    )
    .unwrap();

    let output = check(dir.path(), false);
    assert_eq!(output.status.code(), Some(1));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        all.contains("best_model_selection.yaml")
            && all.contains("champion_selection.checkpoint_source"),
        "{all}"
    );
    assert!(
        all.contains("benchmark.yaml") && all.contains("webcam"),
        "{all}"
    );
}
