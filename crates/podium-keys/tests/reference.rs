//! Every key of the repository's config folder and of a folder laid out like the pipeline's:
//! insta snapshots (so an accidental change shows up in review) and equality with the Python
//! reference (scripts/keys-reference.py: the pipeline's formulas restated with json.dumps +
//! hashlib, reading the same YAML files with yaml.safe_load).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use podium_keys::{
    ProjectConfigs, benchmark_key, config_hash, load_path, trial_key, trial_key_hash,
};
use serde_json::{Value, json};

const RUN_ID: &str = "0123456789abcdef0123456789abcdef";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Everything podium computes for one (config folder, backbone, params file, code version).
fn rust_keys(
    config_dir: &Path,
    backbone: &str,
    params: &Path,
    code_version: Option<&str>,
) -> Value {
    let project = ProjectConfigs::load(config_dir, None).unwrap();
    let mut configs = project.study_configs(backbone);
    configs.code_version = code_version;
    let keys = podium_keys::StudyKeys::compute(&configs).unwrap();
    let params = load_path(params).unwrap();
    let trial = trial_key(&keys.study_key_hash, &params).unwrap();
    let hash_of = |value: Option<&podium_keys::PyValue>| {
        config_hash(value.unwrap_or(&podium_keys::PyValue::None)).unwrap()
    };
    let bench_hash = hash_of(project.benchmark.as_ref());
    json!({
        "data_fingerprint": keys.data_fingerprint,
        "eval_fingerprint": keys.eval_fingerprint,
        "study_key": keys.study_key,
        "study_key_hash": keys.study_key_hash,
        "study_family_key": keys.study_family_key,
        "study_family_hash": keys.study_family_hash,
        "v1_study_key": keys.v1_study_key,
        "v1_study_key_hash": keys.v1_study_key_hash,
        "config_hashes": {
            "data": hash_of(Some(&project.data)),
            "hpo": hash_of(Some(&project.hpo)),
            "train": hash_of(Some(&project.train)),
            "benchmark": bench_hash,
        },
        "benchmark_key": benchmark_key(RUN_ID, &keys.data_fingerprint, &keys.eval_fingerprint, &bench_hash),
        "trial_key": trial,
        "trial_key_hash": trial_key_hash(&trial),
    })
}

fn python_keys(
    config_dir: &Path,
    backbone: &str,
    params: &Path,
    code_version: Option<&str>,
) -> Value {
    let mut command = Command::new(podium_testkit::python());
    command
        .arg(root().join("scripts/keys-reference.py"))
        .arg("--config-dir")
        .arg(config_dir)
        .args(["--backbone", backbone, "--run-id", RUN_ID])
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

/// (config folder, its name in snapshots, backbone, params file, code version).
fn cases() -> Vec<(
    PathBuf,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
)> {
    vec![
        (
            root().join("config"),
            "repo",
            "distilbert",
            "params.json",
            None,
        ),
        (
            root().join("config"),
            "repo",
            "deberta",
            "params.yaml",
            Some("abc123"),
        ),
        (
            fixture("pipeline-config"),
            "pipeline",
            "distilbert",
            "params.json",
            None,
        ),
        (
            fixture("pipeline-config"),
            "pipeline",
            " DistilBERT ",
            "params.yaml",
            None,
        ),
    ]
}

#[test]
fn keys_of_the_config_folders_are_snapshotted() {
    for (dir, label, backbone, params, code_version) in cases() {
        let keys = rust_keys(&dir, backbone, &fixture(params), code_version);
        let name = format!(
            "{label}-{}-{}{}",
            backbone.trim().to_lowercase(),
            params.replace('.', "-"),
            code_version.map(|v| format!("-{v}")).unwrap_or_default()
        );
        insta::assert_json_snapshot!(name, keys);
    }
}

#[test]
fn keys_of_the_config_folders_equal_the_python_reference() {
    for (dir, label, backbone, params, code_version) in cases() {
        let ours = rust_keys(&dir, backbone, &fixture(params), code_version);
        let theirs = python_keys(&dir, backbone, &fixture(params), code_version);
        assert_eq!(ours, theirs, "{label} {backbone} {params}");
    }
}

/// The fingerprints the pipeline's benchmark workflow keys champions without tags with — data
/// config of the experiment, `derive_eval_config(hpo.get("train", {}), hpo)` over its own
/// `hpo_config` — equal the Python statement of that workflow (`--benchmark-workflow`).
#[test]
fn benchmark_workflow_keys_of_the_config_folders_equal_the_python_reference() {
    for dir in [root().join("config"), fixture("pipeline-config")] {
        let project = ProjectConfigs::load(&dir, None).unwrap();
        let data = podium_keys::data_fingerprint(&project.data).unwrap();
        let hpo = load_path(&project.files.default_hpo).unwrap();
        let eval =
            podium_keys::eval_fingerprint(&podium_keys::benchmark_eval_config(&hpo).unwrap())
                .unwrap();
        let bench = config_hash(&load_path(&dir.join("benchmark.yaml")).unwrap()).unwrap();
        let output = Command::new(podium_testkit::python())
            .arg(root().join("scripts/keys-reference.py"))
            .arg("--config-dir")
            .arg(&dir)
            .args(["--benchmark-workflow", "--run-id", RUN_ID])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let theirs: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(
            json!({
                "data_fingerprint": data,
                "eval_fingerprint": eval,
                "benchmark_key": benchmark_key(RUN_ID, &data, &eval, &bench),
            }),
            theirs,
            "{}",
            dir.display()
        );
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
