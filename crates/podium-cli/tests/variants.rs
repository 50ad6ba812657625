//! `podium variants` end to end, through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BACKBONE: &str = "distilbert-base-uncased";
const SPEC: &str = "0123456789abcdef0123456789abcdef";
const EXEC: &str = "fedcba9876543210fedcba9876543210";

fn podium(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
    command
        .args(args)
        .arg("--root")
        .arg(root)
        .env("PODIUM_ENVIRONMENT", "local")
        .env_remove("PODIUM_LOG");
    command
}

fn run_ok(root: &Path, args: &[&str]) -> String {
    let output = podium(root, args).output().unwrap();
    assert_success(&output);
    String::from_utf8(output.stdout).unwrap()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "podium failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn json(root: &Path, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["--format", "json"]);
    serde_json::from_str(&run_ok(root, &args)).unwrap()
}

fn hpo_dir(root: &Path) -> PathBuf {
    root.join("outputs/hpo/local/distilbert")
}

const NEXT_HPO: [&str; 6] = [
    "variants",
    "next",
    "--process",
    "hpo",
    "--backbone",
    BACKBONE,
];

#[test]
fn next_hpo_follows_the_acceptance_criteria() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(run_ok(root.path(), &NEXT_HPO).trim(), "hpo_distilbert");

    std::fs::create_dir_all(hpo_dir(root.path()).join("hpo_distilbert")).unwrap();
    assert_eq!(run_ok(root.path(), &NEXT_HPO).trim(), "hpo_distilbert_v2");

    for decoy in ["hpo_distilbert_vX", "hpo_distilbert_v2_v3"] {
        std::fs::create_dir_all(hpo_dir(root.path()).join(decoy)).unwrap();
    }
    assert_eq!(run_ok(root.path(), &NEXT_HPO).trim(), "hpo_distilbert_v2");

    let report = json(root.path(), &NEXT_HPO);
    assert_eq!(report["variant"], 2);
    assert_eq!(report["name"], "hpo_distilbert_v2");
    assert_eq!(report["base"], "hpo_distilbert");
    assert_eq!(report["environment"], "local");
    assert_eq!(report["model"], "distilbert");
    assert_eq!(report["allocated"], false);
    assert_eq!(
        PathBuf::from(report["path"].as_str().unwrap()),
        hpo_dir(root.path()).join("hpo_distilbert_v2")
    );
    assert!(
        !hpo_dir(root.path()).join("hpo_distilbert_v2").exists(),
        "next must not create"
    );
}

#[test]
fn list_shows_only_real_variants() {
    let root = tempfile::tempdir().unwrap();
    for name in [
        "hpo_distilbert",
        "hpo_distilbert_v3",
        "hpo_distilbert_vX",
        "hpo_distilbert_v2_v3",
    ] {
        std::fs::create_dir_all(hpo_dir(root.path()).join(name)).unwrap();
    }
    let args = [
        "variants",
        "list",
        "--process",
        "hpo",
        "--backbone",
        BACKBONE,
    ];
    let report = json(root.path(), &args);
    let names: Vec<&str> = report["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hpo_distilbert", "hpo_distilbert_v3"]);
    assert_eq!(report["variants"][1]["variant"], 3);

    let table = run_ok(root.path(), &args);
    assert!(
        table.contains("hpo_distilbert_v3") && !table.contains("_vX"),
        "{table}"
    );
}

#[test]
fn hpo_config_template_names_the_studies() {
    let root = tempfile::tempdir().unwrap();
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hpo/smoke.yaml");
    let mut args = NEXT_HPO.to_vec();
    args.extend(["--hpo-config", smoke.to_str().unwrap()]);
    assert_eq!(run_ok(root.path(), &args).trim(), "hpo_distilbert_smoke");

    let bad = root.path().join("bad.yaml");
    std::fs::write(&bad, "checkpoint:\n  study_name: \"{model}\"\n").unwrap();
    let mut args = NEXT_HPO.to_vec();
    args.extend(["--hpo-config", bad.to_str().unwrap()]);
    let output = podium(root.path(), &args).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("checkpoint.study_name"),
        "{stderr}"
    );
}

#[test]
fn environment_override_picks_the_folder() {
    let root = tempfile::tempdir().unwrap();
    let report: Value = {
        let output = podium(root.path(), &NEXT_HPO)
            .args(["--format", "json"])
            .env("PODIUM_ENVIRONMENT", "kaggle")
            .output()
            .unwrap();
        assert_success(&output);
        serde_json::from_slice(&output.stdout).unwrap()
    };
    assert_eq!(report["environment"], "kaggle");
    assert!(
        report["path"]
            .as_str()
            .unwrap()
            .contains("outputs/hpo/kaggle/distilbert")
    );
}

#[test]
fn concurrent_allocating_processes_get_distinct_variants() {
    const PROCESSES: u32 = 8;
    let root = tempfile::tempdir().unwrap();
    let mut args = NEXT_HPO.to_vec();
    args.extend(["--allocate", "--format", "json"]);
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            podium(root.path(), &args)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut variants: Vec<u32> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert_success(&output);
            let report: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(report["allocated"], true);
            assert!(Path::new(report["path"].as_str().unwrap()).is_dir());
            u32::try_from(report["variant"].as_u64().unwrap()).unwrap()
        })
        .collect();
    variants.sort_unstable();
    assert_eq!(variants, (1..=PROCESSES).collect::<Vec<_>>());
}

#[test]
fn final_training_uses_index_and_folders() {
    let root = tempfile::tempdir().unwrap();
    let base = [
        "--process",
        "final_training",
        "--backbone",
        BACKBONE,
        "--spec-fp",
        SPEC,
        "--exec-fp",
        EXEC,
    ];
    let with = |verb: &'static str, extra: &[&'static str]| {
        let mut args = vec!["variants", verb];
        args.extend(base);
        args.extend(extra);
        args
    };
    assert_eq!(run_ok(root.path(), &with("next", &[])).trim(), "v1");
    let allocated = json(root.path(), &with("next", &["--allocate"]));
    assert_eq!(allocated["variant"], 1);
    let folder = root
        .path()
        .join("outputs/final_training/local/distilbert/spec-01234567_exec-fedcba98/v1");
    assert_eq!(PathBuf::from(allocated["path"].as_str().unwrap()), folder);
    assert!(folder.is_dir());

    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(root.path().join("outputs/cache/final_training_index.json"))
            .unwrap(),
    )
    .unwrap();
    let entry = &index["entries"][0];
    assert_eq!(entry["spec_fp"], SPEC);
    assert_eq!(entry["exec_fp"], EXEC);
    assert_eq!(entry["environment"], "local");
    assert_eq!(entry["model"], "distilbert");
    assert_eq!(entry["variant"], 1);

    // A folder the index does not know still counts (folder-scan fallback).
    std::fs::create_dir_all(folder.with_file_name("v4")).unwrap();
    assert_eq!(run_ok(root.path(), &with("next", &[])).trim(), "v5");
    let listed = json(root.path(), &with("list", &[]));
    let rows: Vec<(u64, bool)> = listed["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["variant"].as_u64().unwrap(),
                v["in_index"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [(1, true), (4, false)]);
}

#[test]
fn misuse_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 3] = [
        &[
            "variants",
            "next",
            "--process",
            "final_training",
            "--backbone",
            BACKBONE,
        ],
        &[
            "variants",
            "next",
            "--process",
            "hpo",
            "--backbone",
            BACKBONE,
            "--spec-fp",
            SPEC,
        ],
        &[
            "variants",
            "next",
            "--process",
            "final_training",
            "--backbone",
            BACKBONE,
            "--spec-fp",
            "xyz",
            "--exec-fp",
            EXEC,
        ],
    ];
    for args in cases {
        let output = podium(root.path(), args).output().unwrap();
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(!output.stderr.is_empty());
    }
}
