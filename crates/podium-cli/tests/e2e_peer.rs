//! End to end against the real peers: Python `optuna` + `mlflow` run a tiny HPO sweep against a
//! real `mlflow server` (scripts/e2e_sweep.py, logging like the Python pipeline: Optuna storage in
//! the study folders, nested trial runs, a refit run that uploads its checkpoint through the
//! artifact proxy); then `podium run` selects each champion, downloads its checkpoint through
//! the proxy, benchmarks and ranks — and a second `podium run` skips everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use podium_fixtures::random_checkpoint::RandomCheckpoint;

const BACKBONES: [&str; 2] = ["distilbert-base-uncased", "distilroberta-base"];

/// The repository's configs, with this test's experiment name, two backbones and a tiny
/// benchmark.
fn write_configs(config_dir: &Path) {
    let source = podium_testkit::workspace_root().join("config");
    let backbones = format!(
        "    values: [{}]",
        BACKBONES.map(|b| format!("\"{b}\"")).join(", ")
    );
    for name in [
        "benchmark.yaml",
        "best_model_selection.yaml",
        "data/resume_ner.yaml",
        "experiment/podium_ner.yaml",
        "paths.yaml",
        "tags.yaml",
        "train.yaml",
        "hpo/prod.yaml",
        "hpo/smoke.yaml",
    ] {
        let mut text = std::fs::read_to_string(source.join(name)).unwrap();
        if name == "experiment/podium_ner.yaml" {
            text = text.replace(
                "experiment_name: \"podium-ner\"",
                "experiment_name: \"podium-e2e\"",
            );
        }
        if name == "hpo/prod.yaml" {
            text = text.replace(
                "    values: [\"distilbert\", \"distilroberta\", \"deberta\"]",
                &backbones,
            );
        }
        if name == "benchmark.yaml" {
            for (from, to) in [
                ("  batch_sizes: [1, 8]", "  batch_sizes: [1, 8]"),
                ("  max_length: 128", "  max_length: 32"),
                ("  warmup_iterations: 10", "  warmup_iterations: 2"),
                ("  iterations: 100", "  iterations: 10"),
                ("  min_duration_s: 1.0", "  min_duration_s: 0.02"),
            ] {
                assert!(text.contains(from), "{from} in benchmark.yaml");
                text = text.replace(from, to);
            }
        }
        let target = config_dir.join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
    }
}

fn podium(root: &Path, uri: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .arg("--root")
        .arg(root)
        .arg("--config-dir")
        .arg(root.join("config"))
        .args(["--tracking-uri", uri])
        .args(args)
        .env("PODIUM_ENVIRONMENT", "local")
        .output()
        .expect("run podium")
}

fn success(what: &str, output: &Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn summary_line(stdout: &str) -> &str {
    stdout
        .lines()
        .rfind(|line| line.starts_with("benchmarked "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"))
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn python_sweep_on_a_real_server_is_selected_downloaded_benchmarked_once() {
    let server = podium_testkit::MlflowServer::start().expect("start mlflow server");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("project");
    write_configs(&root.join("config"));
    let checkpoints = work.path().join("checkpoints");
    for (seed, backbone) in BACKBONES.iter().enumerate() {
        let model = backbone.split('-').next().unwrap();
        RandomCheckpoint::tiny_for(backbone, seed as u64)
            .write(&checkpoints.join(model))
            .unwrap();
    }

    let script = podium_testkit::workspace_root().join("scripts/e2e_sweep.py");
    let sweep = Command::new(podium_testkit::python())
        .arg(&script)
        .args(["--tracking-uri", server.url()])
        .arg("--root")
        .arg(&root)
        .arg("--config-dir")
        .arg(root.join("config"))
        .arg("--checkpoint-dir")
        .arg(&checkpoints)
        .arg("--out")
        .arg(work.path().join("sweep.json"))
        .env("PODIUM_ENVIRONMENT", "local")
        .env("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .unwrap();
    success("e2e_sweep.py", &sweep);
    let sweep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("sweep.json")).unwrap()).unwrap();
    for backbone in BACKBONES {
        let model = backbone.split('-').next().unwrap();
        let study_db = root.join(format!("outputs/hpo/local/{model}/hpo_{model}/study.db"));
        assert!(study_db.is_file(), "{} missing", study_db.display());
    }

    // First run: both champions selected, their checkpoints downloaded through the proxy.
    let first = success("podium run", &podium(&root, server.url(), &["run"]));
    assert_eq!(
        summary_line(&first),
        "benchmarked 2, skipped 0, restored 0, failed 0",
        "{first}"
    );
    for backbone in BACKBONES {
        let refit = sweep[backbone]["refit_run_id"].as_str().unwrap();
        assert!(first.contains(backbone), "{first}");
        let downloaded = root.join("outputs/cache/checkpoints").join(refit);
        let files = files_under(&downloaded);
        assert!(
            files.iter().any(|file| file.ends_with("config.json"))
                && files.iter().any(|file| file.ends_with("model.safetensors")),
            "checkpoint of {backbone} not downloaded into {}: {files:?}",
            downloaded.display()
        );
    }

    // The champions are the refits of Optuna's best trials.
    let selected = success(
        "podium select",
        &podium(&root, server.url(), &["select", "--format", "json"]),
    );
    let selected: serde_json::Value = serde_json::from_str(&selected).unwrap();
    for backbone in BACKBONES {
        let champion = &selected["champions"][backbone]["champion"];
        assert_eq!(
            champion["run_id"], sweep[backbone]["refit_run_id"],
            "{selected}"
        );
        assert_eq!(
            champion["trial_run_id"], sweep[backbone]["best_trial_run_id"],
            "{selected}"
        );
        assert_eq!(
            champion["study_key_hash"], sweep[backbone]["study_key_hash"],
            "{selected}"
        );
    }

    // Second run: everything is done already.
    let second = success("podium run", &podium(&root, server.url(), &["run"]));
    assert_eq!(
        summary_line(&second),
        "benchmarked 0, skipped 2, restored 0, failed 0",
        "{second}"
    );
}
