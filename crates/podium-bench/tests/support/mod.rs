//! Benchmark workers on a real `mlflow server` for the lost-response and storm tests: tiny
//! random checkpoints behind HPO trial runs, configs with the smallest harness settings, and
//! orchestrators that reach the server through whatever URL they are given (a chaos proxy).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use podium_bench::claim::{CLAIM_PREFIX, Claims};
use podium_bench::orchestrate::{
    BenchmarkOutcome, BenchmarkSettings, BenchmarkTarget, CheckpointMeasurer, InFlight,
    Orchestrator, OrchestratorOptions,
};
use podium_champion::selection::{Champion, CheckpointLocation};
use podium_fixtures::random_checkpoint::RandomCheckpoint;
use podium_keys::{Tag, TagRegistry};
use podium_mlflow::rest::{RestConfig, RestStore};
use podium_mlflow::{Filter, MetricPoint, Run, RunStatus, TrackingStore, ViewType, search_all};
use podium_variants::{Environment, OutputLayout};

/// The benchmark experiment of these projects.
pub const BENCHMARK_EXPERIMENT: &str = "t-benchmark";

/// The smallest harness settings: a benchmark of a tiny checkpoint takes milliseconds.
pub const FAST_BENCHMARK: &str = concat!(
    "run:\n  mode: null\nbenchmarking:\n  batch_sizes: [1]\n  max_length: 8\n",
    "  warmup_iterations: 1\n  iterations: 1\n  min_duration_s: 0\n  device: cpu\n",
    "  threads: 1\n  input: synthetic\n",
);

/// Backbones with distinct short names.
pub const BACKBONES: [&str; 4] = [
    "bert-base-cased",
    "distilbert-base-uncased",
    "roberta-base",
    "electra-small",
];

/// A project: configs and outputs in `dir`, champions on a tracking server.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub targets: Vec<BenchmarkTarget>,
    pub settings: BenchmarkSettings,
}

/// A REST store on `url` that retries often and quickly: a storm of faults must not exhaust
/// the retries, and a test must not sleep through urllib3's backoff.
pub fn fast_store(url: &str) -> Arc<dyn TrackingStore> {
    let config = RestConfig {
        max_retries: 14,
        backoff_factor: 0.01,
        backoff_jitter: 0.02,
        backoff_max: Duration::from_millis(200),
        timeout: Duration::from_secs(60),
        ..RestConfig::default()
    };
    Arc::new(RestStore::new(url, config).unwrap())
}

/// Writes the configs, one tiny checkpoint and one FINISHED trial run per backbone (through
/// `store`, directly on the server), and returns the project with its benchmark targets.
pub fn project(store: &dyn TrackingStore, backbones: &[&str]) -> Project {
    let backbones: Vec<String> = backbones.iter().map(|b| b.to_string()).collect();
    project_of(store, &backbones)
}

/// [`project`] with `count` champions, the backbones of [`BACKBONES`] in turn.
pub fn project_n(store: &dyn TrackingStore, count: usize) -> Project {
    let backbones: Vec<String> = (0..count)
        .map(|i| BACKBONES[i % BACKBONES.len()].to_string())
        .collect();
    project_of(store, &backbones)
}

fn project_of(store: &dyn TrackingStore, backbones: &[String]) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("hpo")).unwrap();
    std::fs::write(config.join("benchmark.yaml"), FAST_BENCHMARK).unwrap();
    std::fs::create_dir_all(config.join("data")).unwrap();
    std::fs::write(config.join("data/tiny.yaml"), "name: tiny\nversion: v1\n").unwrap();
    std::fs::write(
        config.join("hpo/prod.yaml"),
        "run:\n  mode: reuse_if_exists\nobjective:\n  metric: macro-f1\n",
    )
    .unwrap();
    let settings = BenchmarkSettings::load(
        &config,
        &config.join("data/tiny.yaml"),
        &config.join("hpo/prod.yaml"),
        false,
    )
    .unwrap();
    let tags = TagRegistry::defaults();
    let mut targets = Vec::new();
    for (index, backbone) in backbones.iter().enumerate() {
        let short = backbone.split('-').next().unwrap();
        let checkpoint = dir
            .path()
            .join("checkpoints")
            .join(format!("{index}-{short}"));
        RandomCheckpoint::tiny_for(backbone, index as u64)
            .write(&checkpoint)
            .unwrap();
        let experiment = store
            .create_experiment(&format!("t-hpo-{index}-{backbone}"))
            .unwrap();
        let study = podium_keys::sha256_hex(&format!("study-{index}-{short}"));
        let trial = podium_keys::sha256_hex(&format!("trial-{index}-{short}"));
        let run_tags: BTreeMap<String, String> = [
            (Tag::Backbone, short.to_string()),
            (Tag::Model, short.to_string()),
            (Tag::StudyKeyHash, study.clone()),
            (Tag::TrialKeyHash, trial.clone()),
            (Tag::ArtifactAvailable, "true".to_string()),
            (
                Tag::ArtifactCheckpointPath,
                checkpoint.display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(tag, value)| (tags.get(tag).to_string(), value))
        .collect();
        let run = store
            .create_run(&experiment, "trial-0", 1_000, &run_tags)
            .unwrap();
        let point = MetricPoint {
            key: "macro-f1",
            value: 0.8,
            timestamp: 2_000,
            step: 0,
        };
        store.log_batch(&run.run_id, &[point], &[], &[]).unwrap();
        store
            .update_run(&run.run_id, RunStatus::Finished, Some(3_000))
            .unwrap();
        let champion = champion_of(&run, study, trial, Some(checkpoint.display().to_string()));
        targets.push(BenchmarkTarget::from_champion(
            backbone, champion, &settings,
        ));
    }
    Project {
        dir,
        targets,
        settings,
    }
}

/// The champion of run `run` (its own trial, no refit) with these key hashes, its checkpoint
/// at the path `checkpoint_tag` names, else to be found or downloaded.
pub fn champion_of(
    run: &podium_mlflow::RunInfo,
    study: String,
    trial: String,
    checkpoint_tag: Option<String>,
) -> Champion {
    Champion {
        run_id: run.run_id.clone(),
        trial_run_id: run.run_id.clone(),
        refit_run_id: None,
        refit_matched_by: None,
        sweep_run_id: None,
        trial_key_hash: Some(trial),
        study_key_hash: study,
        metric: 0.8,
        stable_score: 0.8,
        schema_version: "2.0".into(),
        counted_trials: 1,
        data_fingerprint: None,
        eval_fingerprint: None,
        checkpoint: CheckpointLocation {
            run_id: run.run_id.clone(),
            artifact_uri: run.artifact_uri.clone(),
            checkpoint_path_tag: checkpoint_tag,
            local: None,
        },
    }
}

impl Project {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A worker on `store` named `worker`, with leases of `lease`.
    pub fn orchestrator(
        &self,
        store: Arc<dyn TrackingStore>,
        worker: &str,
        lease: Duration,
    ) -> Orchestrator {
        let in_flight = InFlight::new(store.clone(), &TagRegistry::defaults());
        self.orchestrator_in(store, worker, lease, in_flight)
    }

    /// [`Project::orchestrator`] keeping its books in `in_flight` (which a test interrupts).
    pub fn orchestrator_in(
        &self,
        store: Arc<dyn TrackingStore>,
        worker: &str,
        lease: Duration,
        in_flight: InFlight,
    ) -> Orchestrator {
        let tags = TagRegistry::defaults();
        Orchestrator::new(OrchestratorOptions {
            store: store.clone(),
            tags: tags.clone(),
            layout: OutputLayout::new(self.root()),
            environment: Environment::Local,
            benchmark_experiment: BENCHMARK_EXPERIMENT.into(),
            settings: self.settings.clone(),
            claims: Claims::new(store.clone(), worker.into(), lease, &tags),
            in_flight,
            measurer: Box::new(CheckpointMeasurer::new(
                self.settings.config.clone(),
                self.root(),
            )),
            poll_interval: Duration::from_millis(100),
        })
    }

    /// Plans and settles every target with one worker; the plan is retried on errors (a storm
    /// may exhaust even many retries of one search).
    pub fn sweep(&self, orchestrator: &Orchestrator) -> Vec<BenchmarkOutcome> {
        let mut last = None;
        for _ in 0..5 {
            match orchestrator.plan(self.targets.clone()) {
                Ok(plan) => return orchestrator.run(plan, &|_| {}),
                Err(err) => last = Some(err),
            }
        }
        panic!("planning failed five times: {last:?}");
    }

    pub fn keys(&self) -> Vec<String> {
        self.targets
            .iter()
            .map(|target| target.key.clone())
            .collect()
    }
}

/// Every benchmark run (any status) of the benchmark experiment, read through `store`.
pub fn benchmark_runs(store: &dyn TrackingStore) -> Vec<Run> {
    let Some(experiment) = store.get_experiment_by_name(BENCHMARK_EXPERIMENT).unwrap() else {
        return Vec::new();
    };
    search_all(
        store,
        &[experiment.experiment_id],
        &Filter::new(),
        ViewType::ActiveOnly,
    )
    .unwrap()
}

/// `(FINISHED, RUNNING)` benchmark runs per key.
pub fn runs_per_key(store: &dyn TrackingStore) -> BTreeMap<String, (usize, usize)> {
    let key_tag = TagRegistry::defaults().get(Tag::BenchmarkKey).to_string();
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for run in benchmark_runs(store) {
        let entry = counts
            .entry(run.tag(&key_tag).unwrap_or("<no key>").to_string())
            .or_default();
        match run.info.status {
            RunStatus::Finished => entry.0 += 1,
            RunStatus::Running => entry.1 += 1,
            _ => {}
        }
    }
    counts
}

/// Claim experiments on the server at `url`, read with Python mlflow: `(active, deleted)`
/// names.
pub fn claim_experiments(url: &str) -> (Vec<String>, Vec<String>) {
    let out = podium_testkit::run_python(
        r#"
import json, sys
from mlflow.tracking import MlflowClient
from mlflow.entities import ViewType
client = MlflowClient(tracking_uri=sys.argv[1])
found = {"active": [], "deleted": []}
for e in client.search_experiments(view_type=ViewType.ALL, max_results=50000):
    if e.name.startswith(sys.argv[2]):
        found[e.lifecycle_stage].append(e.name)
print(json.dumps(found))
"#,
        &[url, CLAIM_PREFIX],
    );
    let found: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let names = |stage: &str| -> Vec<String> {
        let mut names: Vec<String> = found[stage]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    (names("active"), names("deleted"))
}

/// The project's disk results.
pub fn result_files(root: &Path) -> Vec<PathBuf> {
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
    walk(&root.join("outputs/benchmarking"), &mut files);
    files
}
