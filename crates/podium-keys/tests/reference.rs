//! Every key of the repository's configs: insta snapshots (so an accidental change shows up in
//! review) and equality with the Python reference (scripts/keys-reference.py: the pipeline's
//! definitions with json.dumps + hashlib, reading the same YAML files with yaml.safe_load).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use podium_keys::{
    PyValue, StudyConfigs, StudyIdentity, StudyKeySchema, benchmark_fingerprint, benchmark_key,
    config_hash, load_path, study_family_key, trial_key, trial_key_hash,
};
use serde_json::{Value, json};

const HARNESS_VERSION: u32 = 1;
const RUN_ID: &str = "0123456789abcdef0123456789abcdef";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(name: &str) -> PathBuf {
    root().join("config").join(name)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Everything podium computes for one (hpo file, model, params file, code version).
fn rust_keys(hpo_file: &str, model: &str, params: &Path, code_version: Option<&str>) -> Value {
    let data = load_path(&config("data.yaml")).unwrap();
    let hpo = load_path(&config(hpo_file)).unwrap();
    let train = load_path(&config("train.yaml")).unwrap();
    let eval = load_path(&config("eval.yaml")).unwrap();
    let benchmark = load_path(&config("benchmark.yaml")).unwrap();
    let params = load_path(params).unwrap();
    let configs = StudyConfigs {
        data: &data,
        hpo: &hpo,
        train: &train,
        eval: &eval,
        model,
        benchmark: Some(&benchmark),
        code_version,
    };
    let v2 = StudyIdentity::compute(&configs, StudyKeySchema::V2).unwrap();
    let v1 = StudyIdentity::compute(&configs, StudyKeySchema::V1).unwrap();
    let family_key =
        study_family_key(&configs, &v2.data_fingerprint, &v2.eval_fingerprint).unwrap();
    let bench_fp = benchmark_fingerprint(&benchmark, HARNESS_VERSION).unwrap();
    let trial = trial_key(&v2.study_key_hash, &params).unwrap();
    let hash_of = |value: &PyValue| config_hash(value).unwrap();
    json!({
        "data_fingerprint": v2.data_fingerprint,
        "eval_fingerprint": v2.eval_fingerprint,
        "study_key": v2.study_key,
        "study_key_hash": v2.study_key_hash,
        "study_family_key": family_key,
        "study_family_hash": v2.study_family_hash,
        "study_key_v1": v1.study_key,
        "study_key_v1_hash": v1.study_key_hash,
        "config_hashes": {
            "data": hash_of(&data),
            "hpo": hash_of(&hpo),
            "train": hash_of(&train),
            "eval": hash_of(&eval),
            "benchmark": hash_of(&benchmark),
        },
        "bench_fp": bench_fp,
        "benchmark_key": benchmark_key(RUN_ID, &v2.data_fingerprint, &v2.eval_fingerprint, &bench_fp),
        "trial_key": trial,
        "trial_key_hash": trial_key_hash(&trial),
    })
}

fn python_keys(hpo_file: &str, model: &str, params: &Path, code_version: Option<&str>) -> Value {
    let mut command = Command::new(podium_testkit::python());
    command
        .arg(root().join("scripts/keys-reference.py"))
        .arg("--data")
        .arg(config("data.yaml"))
        .arg("--hpo")
        .arg(config(hpo_file))
        .arg("--train")
        .arg(config("train.yaml"))
        .arg("--eval")
        .arg(config("eval.yaml"))
        .arg("--benchmark")
        .arg(config("benchmark.yaml"))
        .args(["--model", model, "--run-id", RUN_ID])
        .arg("--harness-version")
        .arg(HARNESS_VERSION.to_string())
        .arg("--params")
        .arg(params);
    if let Some(version) = code_version {
        command.args(["--code-version", version]);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "keys-reference.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

const CASES: &[(&str, &str, &str, Option<&str>)] = &[
    ("prod", "distilbert", "params.json", None),
    ("smoke", "distilroberta", "params.yaml", None),
    ("prod", " DeBERTa-v3 ", "params.yaml", Some("abc123")),
];

#[test]
fn keys_of_the_repository_configs_are_snapshotted() {
    for (hpo, model, params, code_version) in CASES {
        let keys = rust_keys(
            &format!("hpo/{hpo}.yaml"),
            model,
            &fixture(params),
            *code_version,
        );
        let name = format!(
            "{hpo}-{}-{}{}",
            model.trim().to_lowercase(),
            params.replace('.', "-"),
            code_version.map(|v| format!("-{v}")).unwrap_or_default()
        );
        insta::assert_json_snapshot!(name, keys);
    }
}

#[test]
fn keys_of_the_repository_configs_equal_the_python_reference() {
    for (hpo, model, params, code_version) in CASES {
        let hpo_file = format!("hpo/{hpo}.yaml");
        let ours = rust_keys(&hpo_file, model, &fixture(params), *code_version);
        let theirs = python_keys(&hpo_file, model, &fixture(params), *code_version);
        assert_eq!(ours, theirs, "{hpo} {model} {params}");
    }
}

/// `str(content_hash)` for non-string hashes, falsy hashes falling back to manifest_hash or the
/// semantic payload, empty files: all against the reference's compute_data_fingerprint.
#[test]
fn data_fingerprints_of_unusual_configs_equal_the_python_reference() {
    let bodies = [
        "content_hash: 12\n",
        "content_hash: 1.0e-5\n",
        "content_hash: [a, 1, 2.5, null, true, -0.0]\n",
        "content_hash: {b: 1, a: 'it''s', c: \"say \\\"hi\\\"\"}\n",
        "content_hash: 0\nmanifest_hash: yes\n",
        "content_hash: ''\nname: x\n",
        "",
        "name: Résumé\nsplit_seed: 1:30\nlabel_mapping: {2: b, 10: a}\n",
    ];
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            let path = dir.path().join(format!("data{index}.yaml"));
            std::fs::write(&path, body).unwrap();
            path
        })
        .collect();
    let script = root().join("scripts/keys-reference.py");
    let code = "import importlib.util, sys, yaml\n\
                spec = importlib.util.spec_from_file_location('reference', sys.argv[1])\n\
                reference = importlib.util.module_from_spec(spec)\n\
                spec.loader.exec_module(reference)\n\
                for path in sys.argv[2:]:\n\
                \x20   print(reference.compute_data_fingerprint(yaml.safe_load(open(path, encoding='utf-8'))))\n";
    let mut args = vec![script.to_str().unwrap()];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    let python = podium_testkit::run_python(code, &args);
    let theirs: Vec<&str> = python.lines().collect();
    let ours: Vec<String> = files
        .iter()
        .map(|path| podium_keys::data_fingerprint(&load_path(path).unwrap()).unwrap())
        .collect();
    assert_eq!(ours, theirs);
}
