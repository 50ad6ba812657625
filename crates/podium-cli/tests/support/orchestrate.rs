//! A project with champions on a tracking store, for the `podium benchmark`/`run` tests: tiny
//! random checkpoints, HPO runs tagged as the Python pipeline tags them, and configs with very
//! small harness settings.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use podium_fixtures::random_checkpoint::RandomCheckpoint;
use podium_keys::{PipelineRunRole, PipelineRunTags, StudyIdentity, Tag, TagRegistry};
use podium_mlflow::{MetricPoint, RunStatus, TrackingStore};

/// Backbones with distinct short names (and a mix of architectures).
pub const BACKBONES: [&str; 6] = [
    "bert-base-cased",
    "distilbert-base-uncased",
    "roberta-base",
    "deberta-v3-small",
    "xlm-roberta-base",
    "electra-small",
];

/// A project directory: configs, outputs, checkpoints, and the tracking URI.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub uri: String,
}

impl Project {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root().join("config")
    }

    /// `outputs/benchmarking/local`: the pipeline's benchmark results tree.
    pub fn cache_dir(&self) -> PathBuf {
        self.root().join("outputs/benchmarking/local")
    }

    /// Every result file under the results tree
    /// (`{model}/study-{s8}/trial-{t8}/bench-{b8}/benchmark.json`).
    pub fn cache_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, files);
                } else if path.extension().is_some_and(|e| e == "json") {
                    files.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.cache_dir(), &mut files);
        files.sort();
        files
    }

    /// `podium ARGS…` in this project, JSON output, environment pinned.
    pub fn podium(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
        command
            .current_dir(self.root())
            .env("PODIUM_ENVIRONMENT", "local")
            .env_remove("MLFLOW_TRACKING_URI")
            .args(["--tracking-uri", &self.uri, "--root"])
            .arg(self.root())
            .arg("--config-dir")
            .arg(self.config_dir())
            .args(args);
        command
    }

    pub fn run_json(&self, args: &[&str]) -> (Output, serde_json::Value) {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let output = self.podium(&all).output().unwrap();
        let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!(
                "podium {args:?} printed no JSON ({err}): stdout {} stderr {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (output, json)
    }

    /// Rewrites one top-level key of config/benchmark.yaml.
    pub fn set_benchmark(&self, text: &str) {
        std::fs::write(self.config_dir().join("benchmark.yaml"), text).unwrap();
    }
}

/// Tiny harness settings: a benchmark takes milliseconds.
pub const FAST_BENCHMARK: &str = concat!(
    "run:\n  mode: null\nbenchmarking:\n  batch_sizes: [1, 2]\n  max_length: 16\n",
    "  warmup_iterations: 1\n  iterations: 3\n  min_duration_s: 0\n  device: cpu\n",
    "  threads: 1\n  input: synthetic\n",
);

fn repo_config(name: &str) -> String {
    std::fs::read_to_string(podium_testkit::workspace_root().join("config").join(name)).unwrap()
}

/// Writes the configs of a project benchmarking `backbones`.
pub fn write_configs(config_dir: &Path, backbones: &[&str]) {
    std::fs::create_dir_all(config_dir.join("hpo")).unwrap();
    std::fs::create_dir_all(config_dir.join("experiment")).unwrap();
    let list: Vec<String> = backbones.iter().map(|b| format!("      - {b}\n")).collect();
    std::fs::write(
        config_dir.join("experiment/t.yaml"),
        "experiment_name: t\ndata_config: data/resume_ner.yaml\ntrain_config: train.yaml\nhpo_config: hpo/prod.yaml\n",
    )
    .unwrap();
    std::fs::write(config_dir.join("benchmark.yaml"), FAST_BENCHMARK).unwrap();
    let selection = repo_config("best_model_selection.yaml")
        .replace("checkpoint_source: refit", "checkpoint_source: trial");
    assert!(selection.contains("checkpoint_source: trial"));
    std::fs::write(config_dir.join("best_model_selection.yaml"), selection).unwrap();
    std::fs::write(config_dir.join("tags.yaml"), repo_config("tags.yaml")).unwrap();
    std::fs::create_dir_all(config_dir.join("data")).unwrap();
    std::fs::write(
        config_dir.join("data/resume_ner.yaml"),
        repo_config("data/resume_ner.yaml"),
    )
    .unwrap();
    std::fs::write(config_dir.join("train.yaml"), repo_config("train.yaml")).unwrap();
    std::fs::write(
        config_dir.join("hpo/prod.yaml"),
        format!(
            "run:\n  mode: reuse_if_exists\nsearch_space:\n  backbone:\n    type: choice\n    values:\n{}",
            list.concat()
        ),
    )
    .unwrap();
}

/// Logs a sweep and three FINISHED trial runs under it per backbone (experiment
/// `t-hpo-{backbone}`), tagged as the pipeline tags them ([`PipelineRunTags`]: stage `hpo`,
/// `code.model`, no schema tag on trials), plus podium's checkpoint-path tag naming a tiny
/// checkpoint under `root/checkpoints/{short}`. Returns the champion run ids (the best trial of
/// each backbone), in `backbones` order.
pub fn populate(store: &dyn TrackingStore, root: &Path, backbones: &[&str]) -> Vec<String> {
    let registry = TagRegistry::defaults();
    let mut champions = Vec::new();
    for (index, backbone) in backbones.iter().enumerate() {
        let short = backbone.split('-').next().unwrap();
        let checkpoint = root.join("checkpoints").join(short);
        RandomCheckpoint::tiny_for(backbone, index as u64)
            .write(&checkpoint)
            .unwrap();
        let experiment = store
            .create_experiment(&format!("t-hpo-{backbone}"))
            .unwrap();
        let study = StudyIdentity {
            schema_version: "2.0".into(),
            study_key: format!("{{\"study\": \"{short}\"}}"),
            study_key_hash: podium_keys::sha256_hex(&format!("study-{short}")),
            study_family_hash: podium_keys::sha256_hex(&format!("family-{short}")),
            data_fingerprint: podium_keys::sha256_hex("data"),
            eval_fingerprint: podium_keys::sha256_hex("eval"),
            objective_direction: "maximize".into(),
        };
        let pipeline_tags = |role: PipelineRunRole<'_>| {
            PipelineRunTags {
                backbone,
                study: &study,
                role,
                artifact_available: true,
                environment: "local",
                project: Some("resume-ner"),
            }
            .build(&registry)
        };
        let sweep = store
            .create_run(
                &experiment,
                "sweep",
                900,
                &pipeline_tags(PipelineRunRole::Sweep),
            )
            .unwrap();
        store
            .update_run(&sweep.run_id, RunStatus::Finished, Some(3_500))
            .unwrap();
        let mut best = (f64::MIN, String::new());
        for (trial, f1) in [0.80, 0.86 - index as f64 * 0.01, 0.83]
            .into_iter()
            .enumerate()
        {
            let trial_key_hash = podium_keys::sha256_hex(&format!("{short}-{trial}"));
            let mut tags = pipeline_tags(PipelineRunRole::Trial {
                trial_number: trial as u64,
                sweep_run_id: &sweep.run_id,
                trial_key_hash: Some(&trial_key_hash),
            });
            tags.insert(
                registry.get(Tag::ArtifactCheckpointPath).to_string(),
                checkpoint.display().to_string(),
            );
            let run = store
                .create_run(
                    &experiment,
                    &format!("trial-{trial}"),
                    1_000 + trial as i64,
                    &tags,
                )
                .unwrap();
            let point = MetricPoint {
                key: "macro-f1",
                value: f1,
                timestamp: 2_000,
                step: 0,
            };
            store.log_batch(&run.run_id, &[point], &[], &[]).unwrap();
            store
                .update_run(&run.run_id, RunStatus::Finished, Some(3_000))
                .unwrap();
            if f1 > best.0 {
                best = (f1, run.run_id.clone());
            }
        }
        champions.push(best.1);
    }
    champions
}

/// A project on a fresh SQLite store with champions for `backbones`.
pub fn sqlite_project(backbones: &[&str]) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let store = podium_mlflow::SqliteStore::open(&db).unwrap();
    populate(&store, dir.path(), backbones);
    write_configs(&dir.path().join("config"), backbones);
    Project {
        uri: format!("sqlite:///{}", db.display()),
        dir,
    }
}

/// FINISHED benchmark runs per benchmark key, read through `uri`.
pub fn finished_benchmarks(uri: &str) -> BTreeMap<String, usize> {
    let store = podium_mlflow::open_store(Some(uri)).unwrap();
    let Some(experiment) = store.get_experiment_by_name("t-benchmark").unwrap() else {
        return BTreeMap::new();
    };
    let filter = podium_mlflow::Filter::new()
        .tag_eq("code.stage", "benchmarking")
        .status(RunStatus::Finished);
    let runs = podium_mlflow::search_all(
        store.as_ref(),
        &[experiment.experiment_id],
        &filter,
        podium_mlflow::ViewType::ActiveOnly,
    )
    .unwrap();
    let mut counts = BTreeMap::new();
    for run in runs {
        *counts
            .entry(run.tag("benchmark_key").unwrap().to_string())
            .or_insert(0) += 1;
    }
    counts
}

/// The pipeline's benchmark existence check (`benchmark_exists_in_mlflow`), restated in Python
/// with the real mlflow client: a FINISHED run with the key in the benchmark experiment, else
/// one with the study and trial key hashes. Prints one JSON object per check.
pub const PIPELINE_EXISTENCE_CHECK: &str = r#"
import json, sys
from mlflow.tracking import MlflowClient
uri, experiment_name = sys.argv[1], sys.argv[2]
checks = json.loads(sys.argv[3])
client = MlflowClient(tracking_uri=uri)
experiment = client.get_experiment_by_name(experiment_name)
out = []
for check in checks:
    runs = client.search_runs(experiment_ids=[experiment.experiment_id],
        filter_string=f"tags.benchmark_key = '{check['key']}'", max_results=10)
    by_key = [r for r in runs if r.info.status == "FINISHED"]
    runs = client.search_runs(experiment_ids=[experiment.experiment_id],
        filter_string=f"tags.code.trial_key_hash = '{check['trial']}' AND tags.code.study_key_hash = '{check['study']}'",
        max_results=10)
    by_hash = [r for r in runs if r.info.status == "FINISHED"]
    run = (by_key or by_hash or [None])[0]
    out.append({
        "by_key": len(by_key), "by_hash": len(by_hash),
        "stage": run.data.tags.get("code.stage") if run else None,
        "model": run.data.tags.get("code.model") if run else None,
        "run_type": run.data.tags.get("mlflow.runType") if run else None,
        "run_name": run.info.run_name if run else None,
        "config_hash": run.data.tags.get("code.benchmark_config_hash") if run else None,
        "metrics": sorted(k for k in (run.data.metrics if run else {})
                          if k.startswith("latency_batch_1") or k == "throughput_samples_per_sec"),
        "params": sorted(k for k in (run.data.params if run else {}) if k.startswith("benchmark_")),
    })
print(json.dumps(out))
"#;

/// Runs [`PIPELINE_EXISTENCE_CHECK`] for `(key, study_key_hash, trial_key_hash)` triples.
pub fn pipeline_existence_check(
    uri: &str,
    checks: &[(String, String, String)],
) -> Vec<serde_json::Value> {
    let checks: Vec<serde_json::Value> = checks
        .iter()
        .map(|(key, study, trial)| serde_json::json!({"key": key, "study": study, "trial": trial}))
        .collect();
    let out = podium_testkit::run_python(
        PIPELINE_EXISTENCE_CHECK,
        &[
            uri,
            "t-benchmark",
            &serde_json::Value::Array(checks).to_string(),
        ],
    );
    serde_json::from_str(out.trim()).unwrap()
}

pub fn names(json: &serde_json::Value, field: &str) -> Vec<String> {
    let mut names: Vec<String> = json[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} missing in {json}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// Copies the folder `from` (files and sub-folders) to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
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
