//! `podium variants` end to end, through the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The backbone of the pipeline-layout test config (`hpo/smoke.yaml`, the HPO config of record,
/// names its studies `hpo_{backbone}_test_v3`).
const BACKBONE: &str = "distilbert";
const SPEC: &str = "0123456789abcdef0123456789abcdef";
const EXEC: &str = "fedcba9876543210fedcba9876543210";

/// The pipeline-layout config folder of podium-keys' tests.
fn pipeline_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../podium-keys/tests/fixtures/pipeline-config")
}

fn podium(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
    command
        .args(args)
        .arg("--root")
        .arg(root)
        .arg("--config-dir")
        .arg(pipeline_config())
        .env("PODIUM_ENVIRONMENT", "local")
        .env_remove("PODIUM_EXPERIMENT")
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

const LIST_HPO: [&str; 6] = [
    "variants",
    "list",
    "--process",
    "hpo",
    "--backbone",
    BACKBONE,
];

/// The study key hash of the test config for [`BACKBONE`], as podium-keys computes it.
fn study_key_hash() -> String {
    podium_keys::ProjectConfigs::load(&pipeline_config(), None)
        .unwrap()
        .study_keys(BACKBONE)
        .unwrap()
        .study_key_hash
}

/// An Optuna study (the real library) named `name` in `folder/study.db`.
fn optuna_study(folder: &Path, name: &str) {
    std::fs::create_dir_all(folder).unwrap();
    podium_testkit::run_python(
        "import sys, optuna\n\
         optuna.logging.set_verbosity(optuna.logging.ERROR)\n\
         optuna.create_study(storage=f'sqlite:///{sys.argv[1]}/study.db', study_name=sys.argv[2])\n",
        &[folder.to_str().unwrap(), name],
    );
}

/// `next --process hpo` reads the experiment's HPO config of record (no --hpo-config), names the
/// study as the pipeline's `create_study_name` does and puts it in the `study-{s8}` folder of the
/// configs' study key hash; `list` shows the pipeline's study folders with the Optuna studies
/// in their `study.db`, and `variants: []`.
#[test]
fn next_hpo_on_the_pipeline_layout_names_the_pipelines_study() {
    let root = tempfile::tempdir().unwrap();
    let hash = study_key_hash();
    let folder = format!("study-{}", &hash[..8]);
    let output = podium(root.path(), &NEXT_HPO).output().unwrap();
    assert_success(&output);
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), folder);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("hpo_distilbert_test_v3"), "{stderr}");

    let report = json(root.path(), &NEXT_HPO);
    assert_eq!(report["layout"], "empty");
    assert_eq!(report["study_name"], "hpo_distilbert_test_v3");
    assert_eq!(report["study_key_hash"], hash.as_str());
    assert_eq!(report["name"], folder.as_str());
    assert_eq!(report["variant"], Value::Null);
    assert_eq!(report["exists"], false);
    assert_eq!(report["studies"], serde_json::json!([]));
    assert_eq!(report["variants"], serde_json::json!([]));
    assert!(
        report["hpo_config"]
            .as_str()
            .unwrap()
            .ends_with("hpo/smoke.yaml"),
        "{report}"
    );
    assert!(!hpo_dir(root.path()).exists(), "next must not create");

    // The pipeline's folders: this study's (its study.db holds the study, and a trial), and
    // an older study's.
    let ours = hpo_dir(root.path()).join(&folder);
    optuna_study(&ours, "hpo_distilbert_test_v3");
    std::fs::create_dir_all(ours.join("trial-0123abcd")).unwrap();
    optuna_study(
        &hpo_dir(root.path()).join("study-00000000"),
        "hpo_distilbert_test_v2",
    );
    let report = json(root.path(), &NEXT_HPO);
    assert_eq!(report["layout"], "pipeline_studies");
    assert_eq!(report["name"], folder.as_str());
    assert_eq!(report["exists"], true);
    assert_eq!(report["holds_study"], true);
    assert_eq!(report["variants"], serde_json::json!([]));
    let listed = json(root.path(), &LIST_HPO);
    assert_eq!(listed["layout"], "pipeline_studies");
    assert_eq!(listed["variants"], serde_json::json!([]));
    let studies: Vec<(String, Value, u64)> = listed["studies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["optuna_studies"].clone(),
                s["trials"].as_u64().unwrap(),
            )
        })
        .collect();
    // By folder name: study-00000000 sorts first.
    let expected = vec![
        (
            "study-00000000".to_string(),
            serde_json::json!(["hpo_distilbert_test_v2"]),
            0,
        ),
        (
            folder.clone(),
            serde_json::json!(["hpo_distilbert_test_v3"]),
            1,
        ),
    ];
    assert_eq!(studies, expected);
    let table = run_ok(root.path(), &LIST_HPO);
    assert!(
        table.contains("the pipeline's study folders") && table.contains("hpo_distilbert_test_v2"),
        "{table}"
    );

    // Allocating the pipeline's folder creates it when missing, the same one for every caller.
    let fresh = tempfile::tempdir().unwrap();
    let mut args = NEXT_HPO.to_vec();
    args.push("--allocate");
    for _ in 0..2 {
        let allocated = json(fresh.path(), &args);
        assert_eq!(allocated["allocated"], true);
        assert_eq!(allocated["name"], folder.as_str());
    }
    assert!(hpo_dir(fresh.path()).join(&folder).is_dir());
}

/// The plans' legacy `{base}`/`{base}_vN` folders stay readable: a folder holding only those
/// gets the next variant, with the base from the HPO config of record.
#[test]
fn next_hpo_in_a_legacy_variant_folder_follows_the_acceptance_criteria() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(hpo_dir(root.path()).join("hpo_distilbert_test_v3")).unwrap();
    assert_eq!(
        run_ok(root.path(), &NEXT_HPO).trim(),
        "hpo_distilbert_test_v3_v2"
    );

    for decoy in ["hpo_distilbert_test_v3_vX", "hpo_distilbert_test_v3_v2_v3"] {
        std::fs::create_dir_all(hpo_dir(root.path()).join(decoy)).unwrap();
    }
    assert_eq!(
        run_ok(root.path(), &NEXT_HPO).trim(),
        "hpo_distilbert_test_v3_v2"
    );

    let report = json(root.path(), &NEXT_HPO);
    assert_eq!(report["layout"], "legacy_variants");
    assert_eq!(report["variant"], 2);
    assert_eq!(report["name"], "hpo_distilbert_test_v3_v2");
    assert_eq!(report["base"], "hpo_distilbert_test_v3");
    assert_eq!(report["environment"], "local");
    assert_eq!(report["model"], "distilbert");
    assert_eq!(report["allocated"], false);
    assert_eq!(report["studies"], serde_json::json!([]));
    assert_eq!(
        PathBuf::from(report["path"].as_str().unwrap()),
        hpo_dir(root.path()).join("hpo_distilbert_test_v3_v2")
    );
    assert!(
        !hpo_dir(root.path())
            .join("hpo_distilbert_test_v3_v2")
            .exists(),
        "next must not create"
    );
}

#[test]
fn list_shows_only_real_variants() {
    let root = tempfile::tempdir().unwrap();
    for name in [
        "hpo_distilbert_test_v3",
        "hpo_distilbert_test_v3_v3",
        "hpo_distilbert_test_v3_vX",
        "hpo_distilbert_test_v3_v2_v3",
    ] {
        std::fs::create_dir_all(hpo_dir(root.path()).join(name)).unwrap();
    }
    let report = json(root.path(), &LIST_HPO);
    let names: Vec<&str> = report["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["hpo_distilbert_test_v3", "hpo_distilbert_test_v3_v3"]
    );
    assert_eq!(report["variants"][1]["variant"], 3);
    assert_eq!(report["layout"], "legacy_variants");

    let table = run_ok(root.path(), &LIST_HPO);
    assert!(
        table.contains("hpo_distilbert_test_v3_v3") && !table.contains("_vX"),
        "{table}"
    );
    assert!(table.contains("legacy variant folders"), "{table}");
}

#[test]
fn hpo_config_template_names_the_studies() {
    let root = tempfile::tempdir().unwrap();
    // The experiment's other HPO config names its studies hpo_{backbone}_prod.
    let prod = pipeline_config().join("hpo/prod.yaml");
    let args = [
        "variants",
        "next",
        "--process",
        "hpo",
        "--backbone",
        "deberta",
        "--hpo-config",
        prod.to_str().unwrap(),
        "--format",
        "json",
    ];
    let report: Value = serde_json::from_str(&run_ok(root.path(), &args)).unwrap();
    assert_eq!(report["study_name"], "hpo_deberta_prod");
    assert_eq!(report["base"], "hpo_deberta_prod");

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

    // A backbone the HPO config does not list is refused, naming the file.
    let mut args = NEXT_HPO.to_vec();
    args[5] = "distilbert-base-uncased";
    let output = podium(root.path(), &args).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("smoke.yaml"), "{stderr}");
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
    // paths.yaml's env_overrides.kaggle.base.outputs, as the pipeline resolves it.
    assert!(
        report["path"]
            .as_str()
            .unwrap()
            .starts_with("/kaggle/working/outputs/hpo/kaggle/distilbert/study-"),
        "{report}"
    );
}

#[test]
fn concurrent_allocating_processes_get_distinct_variants() {
    const PROCESSES: u32 = 8;
    let root = tempfile::tempdir().unwrap();
    // A legacy variant folder: allocation claims the following variants.
    std::fs::create_dir_all(hpo_dir(root.path()).join("hpo_distilbert_test_v3")).unwrap();
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
    assert_eq!(variants, (2..=PROCESSES + 1).collect::<Vec<_>>());
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
