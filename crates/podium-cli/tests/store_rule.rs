//! One rule for a missing SQLite store: every command that reads it (and `run`/`benchmark`/
//! `rank`, which write benchmark runs into the store of the HPO runs) fails with an error that
//! names the file, and creates neither the file nor its folder.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn podium(cwd: &Path, args: &[&str]) -> Output {
    let config = podium_testkit::workspace_root().join("config");
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .current_dir(cwd)
        .arg("--config-dir")
        .arg(&config)
        .args(["--root", "."])
        .args(args)
        .env_remove("MLFLOW_TRACKING_URI")
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        .output()
        .unwrap()
}

/// Every command that needs the store, with the arguments it needs besides.
const READERS: [&[&str]; 9] = [
    &["select"],
    &["select", "--profile"],
    &["verify-hashes", "--experiment", "podium-ner-hpo-distilbert"],
    &[
        "runs",
        "search",
        "--experiment",
        "podium-ner-hpo-distilbert",
    ],
    &["benchmark"],
    &["benchmark", "--dry-run"],
    &["rank"],
    &["run"],
    &["run", "--format", "json"],
];

fn assert_refused(output: &Output, path: &str, command: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{command:?}: {stderr}");
    assert!(
        stderr.contains("does not exist") && stderr.contains(path),
        "{command:?}: {stderr}"
    );
    assert!(output.stdout.is_empty(), "{command:?}: {:?}", output.stdout);
}

#[test]
fn a_mistyped_sqlite_path_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    for command in READERS {
        let mut args = command.to_vec();
        args.extend(["--tracking-uri", "sqlite:///does/not/exist.db"]);
        let output = podium(dir.path(), &args);
        assert_refused(&output, "does/not/exist.db", command);
        assert!(
            !dir.path().join("does").exists(),
            "{command:?} created does/"
        );
    }
    // An absolute path whose folder exists: the file is not created either.
    let db = dir.path().join("absent.db");
    let uri = format!("sqlite:///{}", db.display());
    for command in READERS {
        let mut args = command.to_vec();
        args.extend(["--tracking-uri", uri.as_str()]);
        let output = podium(dir.path(), &args);
        assert_refused(&output, &db.display().to_string(), command);
        assert!(!db.exists(), "{command:?} created {}", db.display());
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_default_store_is_not_created_by_reading_either() {
    let dir = tempfile::tempdir().unwrap();
    for command in READERS {
        let output = podium(dir.path(), command);
        assert_refused(&output, "mlflow.db", command);
        assert!(!dir.path().join("mlflow.db").exists(), "{command:?}");
    }
}

#[test]
fn best_trials_without_a_store_falls_back_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = podium(
        dir.path(),
        &[
            "best-trials",
            "--format",
            "json",
            "--tracking-uri",
            "sqlite:///does/not/exist.db",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    // No study files or metrics in this empty root either: every backbone is an error, named.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("skipping MLflow"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["errors"].as_object().unwrap().len(), 3, "{report}");
    assert!(!dir.path().join("does").exists());
}
