//! The exit-code table of docs/USER_GUIDE.md, one case per code, and the two ways output goes
//! wrong: a closed stdout and control characters from the store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Output, Stdio};

use podium_mlflow::{RunStatus, SqliteStore, TrackingStore};

fn podium(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
    command
        .args(args)
        .env_remove("MLFLOW_TRACKING_URI")
        .env("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0");
    command
}

fn run(args: &[&str]) -> Output {
    podium(args).output().unwrap()
}

fn store_with_run(dir: &std::path::Path, run_name: &str) -> String {
    let db = dir.join("mlflow.db");
    let store = SqliteStore::open(&db).unwrap();
    let experiment = store.create_experiment("sweep").unwrap();
    let run = store
        .create_run(&experiment, run_name, 1_000, &BTreeMap::new())
        .unwrap();
    store
        .update_run(&run.run_id, RunStatus::Finished, Some(2_000))
        .unwrap();
    format!("sqlite:///{}", db.display())
}

#[test]
fn each_exit_code_of_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let uri = store_with_run(dir.path(), "t0");

    // 0: done.
    let ok = run(&[
        "runs",
        "search",
        "--experiment",
        "sweep",
        "--tracking-uri",
        &uri,
    ]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");

    // 1: some part failed (a config that does not validate).
    let configs = tempfile::tempdir().unwrap();
    let check = run(&[
        "config",
        "check",
        "--config-dir",
        &configs.path().join("missing").display().to_string(),
    ]);
    assert_eq!(check.status.code(), Some(1), "{check:?}");

    // 2: bad usage, or an error that stops the command (no such experiment).
    assert_eq!(run(&["runs", "search"]).status.code(), Some(2));
    let missing = run(&[
        "runs",
        "search",
        "--experiment",
        "nope",
        "--tracking-uri",
        &uri,
    ]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");

    // 3: the tracking store cannot be reached.
    let port = podium_testkit::free_port();
    let down = format!("http://127.0.0.1:{port}");
    let unreachable = run(&[
        "runs",
        "search",
        "--experiment",
        "sweep",
        "--tracking-uri",
        &down,
    ]);
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot reach MLflow server"), "{stderr}");
}

#[test]
fn absurd_settings_are_clear_errors_not_panics() {
    let output = podium(&[
        "runs",
        "search",
        "--experiment",
        "sweep",
        "--tracking-uri",
        "http://127.0.0.1:9",
    ])
    .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "1e308")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("MLFLOW_HTTP_REQUEST_TIMEOUT"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    // Output far larger than a pipe buffer, so writing must hit the closed pipe.
    let file = dir.path().join("big.json");
    let entries: Vec<String> = (0..20_000).map(|i| format!("\"key{i:06}\": {i}")).collect();
    std::fs::write(&file, format!("{{{}}}", entries.join(", "))).unwrap();
    let mut child = podium(&["keys", "canonical", &file.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
}

#[test]
fn control_characters_from_the_store_are_escaped_in_tables_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let uri = store_with_run(dir.path(), "evil\u{1b}[2J\u{1b}]0;pwned\u{7}");
    let output = run(&[
        "runs",
        "search",
        "--experiment",
        "sweep",
        "--tracking-uri",
        &uri,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains('\u{1b}'), "{stdout:?}");
    assert!(!stdout.contains('\u{7}'), "{stdout:?}");
    assert!(stdout.contains("evil\\x1b[2J"), "{stdout}");

    let output = run(&[
        "runs",
        "search",
        "--experiment",
        "no\u{1b}[2Jsuch",
        "--tracking-uri",
        &uri,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
    assert!(stderr.contains("[2Jsuch"), "{stderr}");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[test]
fn per_backbone_errors_and_log_lines_are_escaped_too() {
    let dir = tempfile::tempdir().unwrap();
    let uri = store_with_run(dir.path(), "t0");
    let config = dir.path().join("config");
    copy_dir(&podium_testkit::workspace_root().join("config"), &config);
    let hpo = config.join("hpo").join("prod.yaml");
    let text = std::fs::read_to_string(&hpo).unwrap().replace(
        r#"values: ["distilbert", "distilroberta", "deberta"]"#,
        r#"values: ["evil\e[2Jbert"]"#,
    );
    assert!(text.contains("evil"), "the HPO config changed shape");
    std::fs::write(&hpo, text).unwrap();
    let config = config.display().to_string();
    // Outputs (`podium run`'s report page) stay in the temporary project.
    let root = dir.path().display().to_string();
    for command in [&["select"][..], &["rank"], &["run"]] {
        let mut args = command.to_vec();
        args.extend([
            "--config-dir",
            &config,
            "--tracking-uri",
            &uri,
            "--root",
            &root,
        ]);
        let output = run(&args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(!stdout.contains('\u{1b}'), "{command:?}: {stdout:?}");
        assert!(!stderr.contains('\u{1b}'), "{command:?}: {stderr:?}");
        assert!(
            format!("{stdout}{stderr}").contains("evil\\x1b[2Jbert"),
            "{command:?}: {stdout}{stderr}"
        );
    }
}
