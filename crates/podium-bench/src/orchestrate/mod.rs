//! Idempotent benchmarking of champions: each champion's benchmark key
//! (`{champion_run_id}:{data_fp}:{eval_fp}:{config_hash(benchmark.yaml)}`, the pipeline's) is
//! measured once, recorded in the benchmark experiment (MLflow) as a run the pipeline's own
//! tools read, and on disk where the pipeline puts results ([`crate::cache`]); either side is
//! restored from the other without measuring again. Concurrent workers on one tracking store
//! coordinate through [`crate::claim`].
//!
//! Done for podium means a FINISHED run with the key **and** podium's harness tag at the
//! current [`HARNESS_VERSION`] (or the disk result holding both). Runs the pipeline measured
//! (found by the key, or by study + trial key hash, without podium's harness tag) are reported
//! as the pipeline's ([`Orchestrator::pipeline_results`]), never counted as done and never
//! ranked against podium's latencies.
//!
//! The order of writes is what makes crashes harmless: the MLflow run is created RUNNING,
//! gets its metrics, and is marked FINISHED only while this worker still holds the key's claim;
//! the disk cache is written (atomically) only after that. A crash at any point leaves either
//! nothing, a RUNNING/FAILED run (ignored: only FINISHED runs count), or a FINISHED run without
//! a cache file (restored from MLflow on the next call) — never a cache file without a result.
//!
//! ```
//! use podium_bench::orchestrate::{PlanStatus, status_of};
//! use podium_bench::cache::CacheLookup;
//! // Nothing in MLflow and nothing on disk: measure. (The full flow needs a store and a
//! // checkpoint; see crates/podium-bench/tests/orchestrate.rs.)
//! assert!(matches!(status_of(None, &CacheLookup::Missing, false, 0), PlanStatus::ToRun(_)));
//! ```

pub mod interrupt;
pub mod measure;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podium_champion::ChampionReport;
use podium_champion::ranking::BenchmarkSample;
use podium_champion::selection::Champion;
use podium_keys::{PyValue, Separators, Tag, TagRegistry, stage};
use podium_mlflow::{
    Filter, MetricPoint, MlflowError, Run, RunStatus, TrackingStore, ViewType, search_all,
};
use podium_run_mode::RunMode;
use podium_variants::{Environment, OutputLayout, backbone_short_name};
use serde::Serialize;

use crate::HARNESS_VERSION;
use crate::acquire::{AcquiredCheckpoint, AcquisitionSettings, acquire_checkpoint_with};
use crate::bench_config::BenchmarkConfig;
use crate::cache::{
    BenchmarkCache, CacheLookup, CachedBenchmark, DEFAULT_FILENAME, ResultLocation,
};
use crate::claim::{Claim, ClaimOutcome, Claims, now_ms};
use crate::error::BenchError;
use crate::harness::InputSpec;

pub use interrupt::InFlight;
pub use measure::{CheckpointMeasurer, Measurement, Measurer};

/// MLflow's limit on a tag value is larger, but error messages this long are noise.
const MAX_ERROR_TAG_CHARS: usize = 4000;

/// The benchmark settings in force: the typed config for the harness, its hashes for the key,
/// the run tags and the disk layout, the run mode, and the fingerprints used when a champion
/// run has no tags for them.
#[derive(Debug, Clone)]
pub struct BenchmarkSettings {
    /// `config/benchmark.yaml`, validated.
    pub config: BenchmarkConfig,
    /// `podium_keys::config_hash` of the whole benchmark.yaml: the key's last part.
    pub config_hash: String,
    /// sha256 of the compact dump of the whole benchmark.yaml (the pipeline's
    /// `benchmark_config_hash`): the `code.benchmark_config_hash` tag, `bench-{b8}` folder and
    /// run name.
    pub benchmark_config_hash: String,
    /// `output.filename` (default `benchmark.json`).
    pub output_filename: String,
    /// `run.mode` after inheriting the HPO config's mode.
    pub run_mode: RunMode,
    /// Re-measure even when a result exists (`force_new`, or `--force`).
    pub force: bool,
    /// Data fingerprint of `config/data.yaml`, for champions without the tag.
    pub default_data_fingerprint: String,
    /// Eval fingerprint of `config/eval.yaml`, for champions without the tag.
    pub default_eval_fingerprint: String,
    /// Where checkpoints are looked for (`paths.yaml`, `artifact_acquisition.yaml`).
    pub acquisition: AcquisitionSettings,
}

impl BenchmarkSettings {
    /// Reads `benchmark.yaml`, `data.yaml` and `eval.yaml` from `config_dir`, and the HPO
    /// config's `run.mode` from `hpo_config` when the benchmark's own mode is null. A missing
    /// data.yaml/eval.yaml counts as an empty config (the fingerprints always have a value).
    pub fn load(config_dir: &Path, hpo_config: &Path, force: bool) -> Result<Self, BenchError> {
        let benchmark_file = config_dir.join(BenchmarkConfig::FILE);
        let config =
            BenchmarkConfig::from_file(&benchmark_file).map_err(|err| BenchError::Config {
                file: benchmark_file.clone(),
                key: "<document>".into(),
                message: err.to_string(),
            })?;
        let hashing_view =
            podium_keys::load_path(&benchmark_file).map_err(|source| BenchError::Keys {
                context: format!("loading {} for the benchmark key", benchmark_file.display()),
                source: Box::new(source),
            })?;
        let hpo_mode = if config.run_mode.is_some() {
            RunMode::default()
        } else {
            RunMode::from_config_file(hpo_config)
                .map_err(|err| BenchError::Config {
                    file: hpo_config.to_path_buf(),
                    key: "run.mode".into(),
                    message: err.to_string(),
                })?
                .unwrap_or_default()
        };
        let optional = |name: &str| -> Result<PyValue, BenchError> {
            let path = config_dir.join(name);
            if !path.exists() {
                tracing::warn!(
                    "{} not found: fingerprinting it as an empty config",
                    path.display()
                );
                return Ok(PyValue::None);
            }
            podium_keys::load_path(&path).map_err(|source| BenchError::Keys {
                context: format!("loading {}", path.display()),
                source: Box::new(source),
            })
        };
        let data = optional("data.yaml")?;
        let eval = optional("eval.yaml")?;
        let keys_error = |what: &str| {
            let context = format!(
                "computing the {what} fingerprint from {}",
                config_dir.display()
            );
            move |source| BenchError::Keys {
                context,
                source: Box::new(source),
            }
        };
        let output_filename = hashing_view
            .get("output")
            .and_then(|output| output.get("filename"))
            .and_then(PyValue::as_str)
            .unwrap_or(DEFAULT_FILENAME)
            .to_string();
        Ok(Self {
            config_hash: podium_keys::config_hash(&hashing_view)
                .map_err(keys_error("benchmark config hash"))?,
            benchmark_config_hash: podium_keys::sha256_hex(
                &podium_keys::py_json(&hashing_view, Separators::Compact)
                    .map_err(keys_error("benchmark config hash"))?,
            ),
            output_filename,
            run_mode: RunMode::inherit(config.run_mode, hpo_mode),
            force: force || RunMode::inherit(config.run_mode, hpo_mode) == RunMode::ForceNew,
            default_data_fingerprint: podium_keys::data_fingerprint(&data)
                .map_err(keys_error("data"))?,
            default_eval_fingerprint: podium_keys::eval_fingerprint(&eval)
                .map_err(keys_error("eval"))?,
            acquisition: AcquisitionSettings::load(config_dir)?,
            config,
        })
    }
}

/// One champion to benchmark, with its key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkTarget {
    /// The backbone as configured (full name).
    pub backbone: String,
    /// The short backbone name runs are tagged with.
    pub model: String,
    /// The champion.
    pub champion: Champion,
    /// The benchmark key.
    pub key: String,
    /// Data fingerprint in the key (the run's tag, else config/data.yaml's).
    pub data_fingerprint: String,
    /// Eval fingerprint in the key (the run's tag, else config/eval.yaml's).
    pub eval_fingerprint: String,
}

impl BenchmarkTarget {
    /// The target of a selected champion under `settings`.
    pub fn new(report: &ChampionReport, settings: &BenchmarkSettings) -> Self {
        Self::from_champion(&report.backbone, report.champion.clone(), settings)
    }

    /// The target of a champion of `backbone`.
    pub fn from_champion(backbone: &str, champion: Champion, settings: &BenchmarkSettings) -> Self {
        let data_fingerprint = champion
            .data_fingerprint
            .clone()
            .filter(|fp| !fp.trim().is_empty())
            .unwrap_or_else(|| settings.default_data_fingerprint.clone());
        let eval_fingerprint = champion
            .eval_fingerprint
            .clone()
            .filter(|fp| !fp.trim().is_empty())
            .unwrap_or_else(|| settings.default_eval_fingerprint.clone());
        let key = podium_keys::benchmark_key(
            &champion.run_id,
            &data_fingerprint,
            &eval_fingerprint,
            &settings.config_hash,
        );
        Self {
            backbone: backbone.to_string(),
            model: backbone_short_name(backbone.trim()).to_string(),
            champion,
            key,
            data_fingerprint,
            eval_fingerprint,
        }
    }

    /// Where the target's result lives on disk.
    pub fn location(&self) -> ResultLocation {
        ResultLocation {
            model: self.model.clone(),
            study_key_hash: self.champion.study_key_hash.clone(),
            trial_key_hash: self.champion.trial_key_hash.clone(),
        }
    }
}

/// What a lookup decided for one target.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanStatus {
    /// MLflow and the disk cache both hold the result.
    Done(Box<Run>),
    /// MLflow holds the result; the disk cache is missing or invalid and will be rewritten.
    RestoreCache(Box<Run>),
    /// Only the disk cache holds the result; MLflow will get a FINISHED run from it.
    RestoreMlflow(Box<CachedBenchmark>),
    /// Nothing usable: measure (the reason says why).
    ToRun(String),
}

impl PlanStatus {
    /// `done`, `restore_cache`, `restore_mlflow` or `to_run`.
    pub fn label(&self) -> &'static str {
        match self {
            PlanStatus::Done(_) => "done",
            PlanStatus::RestoreCache(_) => "restore_cache",
            PlanStatus::RestoreMlflow(_) => "restore_mlflow",
            PlanStatus::ToRun(_) => "to_run",
        }
    }
}

/// The decision for one key from what MLflow (`finished`: its latest FINISHED run) and the disk
/// cache hold. With `force`, only a run started at or after `session_start_ms` (measured by a
/// concurrent forced worker during this invocation) counts as done.
pub fn status_of(
    finished: Option<Run>,
    cache: &CacheLookup,
    force: bool,
    session_start_ms: i64,
) -> PlanStatus {
    if force {
        return match finished {
            Some(run) if run.info.start_time.unwrap_or(i64::MIN) >= session_start_ms => {
                PlanStatus::Done(Box::new(run))
            }
            _ => PlanStatus::ToRun("force_new: measuring again".into()),
        };
    }
    match (finished, cache) {
        // The pipeline's own file holds the place: MLflow alone holds podium's result.
        (Some(run), CacheLookup::Hit(_) | CacheLookup::PipelineOwned(_)) => {
            PlanStatus::Done(Box::new(run))
        }
        (Some(run), _) => PlanStatus::RestoreCache(Box::new(run)),
        (None, CacheLookup::Hit(entry)) => PlanStatus::RestoreMlflow(Box::new(entry.clone())),
        (None, CacheLookup::Missing) => PlanStatus::ToRun("not benchmarked yet".into()),
        (None, CacheLookup::Invalid(reason)) => {
            PlanStatus::ToRun(format!("not in MLflow; cache unusable ({reason})"))
        }
        (None, CacheLookup::PipelineOwned(path)) => PlanStatus::ToRun(format!(
            "not in MLflow; {} is the pipeline's result, not podium's",
            path.display()
        )),
    }
}

/// One target with its decision.
#[derive(Debug, Clone)]
pub struct PlannedBenchmark {
    /// The target.
    pub target: BenchmarkTarget,
    /// What will happen.
    pub status: PlanStatus,
}

/// How one target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Already benchmarked (MLflow and disk agree, or another worker just did it).
    Skipped,
    /// The disk cache was rewritten from the FINISHED MLflow run.
    RestoredCache,
    /// A FINISHED MLflow run was recreated from the disk cache.
    RestoredMlflow,
    /// Measured now.
    Benchmarked,
    /// Failed (see the error).
    Failed,
}

impl Outcome {
    /// True for both restore directions.
    pub fn is_restored(self) -> bool {
        matches!(self, Outcome::RestoredCache | Outcome::RestoredMlflow)
    }
}

/// The result for one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkOutcome {
    /// The backbone.
    pub backbone: String,
    /// The benchmark key.
    pub key: String,
    /// The run whose checkpoint is measured.
    pub champion_run_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// The FINISHED benchmark run holding the result (or the FAILED one).
    pub benchmark_run_id: Option<String>,
    /// The benchmark metrics (empty on failure).
    #[serde(with = "podium_mlflow::model::metric_map")]
    pub metrics: BTreeMap<String, f64>,
    /// Where the checkpoint came from, when measured now.
    pub checkpoint: Option<AcquiredCheckpoint>,
    /// The error, on failure.
    pub error: Option<String>,
}

/// How a pipeline-measured run was found for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Its `benchmark_key` tag is the target's key.
    BenchmarkKey,
    /// Its study and trial key hashes are the champion's (the pipeline's fallback lookup).
    StudyTrialHash,
}

/// A FINISHED benchmark run the pipeline measured (no podium harness tag) for a champion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineResult {
    /// The champion's backbone.
    pub backbone: String,
    /// The pipeline's benchmark run.
    pub run_id: String,
    /// Its run name.
    pub run_name: String,
    /// Its `benchmark_key` tag, when set.
    pub benchmark_key: Option<String>,
    /// How it was found.
    pub matched_by: MatchedBy,
    /// Start time, Unix milliseconds.
    pub start_time: Option<i64>,
    /// Its metrics, under the pipeline's names and meanings.
    #[serde(with = "podium_mlflow::model::metric_map")]
    pub metrics: BTreeMap<String, f64>,
}

impl PipelineResult {
    fn of(target: &BenchmarkTarget, run: &Run, matched_by: MatchedBy, tags: &TagRegistry) -> Self {
        Self {
            backbone: target.backbone.clone(),
            run_id: run.id().to_string(),
            run_name: run.info.run_name.clone(),
            benchmark_key: run.tag(tags.get(Tag::BenchmarkKey)).map(str::to_string),
            matched_by,
            start_time: run.info.start_time,
            metrics: run.metrics.clone(),
        }
    }
}

/// Progress notifications for a caller drawing a bar or logging.
#[derive(Debug)]
pub enum Event<'a> {
    /// Measuring starts for a target.
    Measuring(&'a BenchmarkTarget),
    /// Another worker holds the target's claim; waiting for it.
    Waiting {
        /// The target.
        target: &'a BenchmarkTarget,
        /// The other worker, when known.
        owner: Option<&'a str>,
        /// When its lease expires (Unix ms), when known.
        expires_ms: Option<i64>,
    },
    /// A target is settled.
    Settled(&'a BenchmarkOutcome),
}

/// Everything the orchestrator works with.
#[derive(Debug)]
pub struct OrchestratorOptions {
    /// The tracking store (HPO runs and the benchmark experiment).
    pub store: Arc<dyn TrackingStore>,
    /// Tag keys.
    pub tags: TagRegistry,
    /// The project's output layout.
    pub layout: OutputLayout,
    /// The environment (cache folder, tags).
    pub environment: Environment,
    /// Name of the benchmark experiment (created when missing).
    pub benchmark_experiment: String,
    /// Benchmark settings.
    pub settings: BenchmarkSettings,
    /// This worker's claims.
    pub claims: Claims,
    /// The books of in-flight runs and claims (shared with a Ctrl-C handler).
    pub in_flight: InFlight,
    /// How checkpoints are measured.
    pub measurer: Box<dyn Measurer>,
    /// How long to wait between checks of a key another worker is measuring.
    pub poll_interval: Duration,
}

/// Plans and runs benchmarks (see the module docs).
#[derive(Debug)]
pub struct Orchestrator {
    options: OrchestratorOptions,
    cache: BenchmarkCache,
    experiment_id: Mutex<Option<String>>,
    session_start_ms: i64,
    /// The holder last reported per key a worker waits on.
    waits_logged: Mutex<BTreeMap<String, String>>,
}

impl Orchestrator {
    /// An orchestrator; nothing is read or written yet.
    pub fn new(options: OrchestratorOptions) -> Self {
        // `outputs/benchmarking/{env}`: the parent of the layout's `cache/` folder.
        let cache_dir = options.layout.benchmark_cache_dir(&options.environment);
        let results_dir = cache_dir
            .parent()
            .map_or(cache_dir.clone(), Path::to_path_buf);
        let cache = BenchmarkCache::new(
            results_dir,
            &options.settings.benchmark_config_hash,
            &options.settings.output_filename,
        )
        .with_device(&options.settings.config.device);
        Self {
            options,
            cache,
            experiment_id: Mutex::new(None),
            session_start_ms: now_ms(),
            waits_logged: Mutex::new(BTreeMap::new()),
        }
    }

    /// The disk cache in use.
    pub fn cache(&self) -> &BenchmarkCache {
        &self.cache
    }

    /// The settings in use.
    pub fn settings(&self) -> &BenchmarkSettings {
        &self.options.settings
    }

    fn store(&self) -> &dyn TrackingStore {
        self.options.store.as_ref()
    }

    /// The benchmark experiment's id; with `create`, creates it when missing.
    fn experiment_id(&self, create: bool) -> Result<Option<String>, BenchError> {
        let mut known = self
            .experiment_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(id) = known.as_ref() {
            return Ok(Some(id.clone()));
        }
        let name = &self.options.benchmark_experiment;
        let read = |store: &dyn TrackingStore| {
            store
                .get_experiment_by_name(name)
                .map_err(BenchError::mlflow(format!(
                    "looking up benchmark experiment {name}"
                )))
        };
        let mut found = read(self.store())?;
        if found.is_none() && create {
            match self.store().create_experiment(name) {
                Ok(id) => {
                    *known = Some(id.clone());
                    return Ok(Some(id));
                }
                // A concurrent worker created it first.
                Err(MlflowError::AlreadyExists { .. }) => found = read(self.store())?,
                Err(source) => {
                    return Err(BenchError::Mlflow {
                        context: format!("creating benchmark experiment {name}"),
                        source: Box::new(source),
                    });
                }
            }
        }
        match found {
            Some(experiment) if !experiment.is_active() => Err(BenchError::Config {
                file: PathBuf::from("experiment.yaml"),
                key: "benchmark_experiment".into(),
                message: format!(
                    "experiment {name} (id {}) is deleted; restore it or choose another name",
                    experiment.experiment_id
                ),
            }),
            Some(experiment) => {
                *known = Some(experiment.experiment_id.clone());
                Ok(Some(experiment.experiment_id))
            }
            None => Ok(None),
        }
    }

    /// FINISHED runs of the benchmark experiment matching `filter`.
    fn finished_runs(&self, filter: Filter, what: &str) -> Result<Vec<Run>, BenchError> {
        let Some(experiment_id) = self.experiment_id(false)? else {
            return Ok(Vec::new());
        };
        search_all(
            self.store(),
            &[experiment_id],
            &filter.status(RunStatus::Finished),
            ViewType::ActiveOnly,
        )
        .map_err(BenchError::mlflow(format!(
            "searching FINISHED benchmark runs of {what}"
        )))
    }

    /// The harness version a run was measured by, when podium measured it.
    fn harness_of<'r>(&self, run: &'r Run) -> Option<&'r str> {
        run.tag(self.options.tags.get(Tag::BenchmarkHarnessVersion))
    }

    /// Podium's FINISHED runs of `key` by the current harness, oldest first (start time, then
    /// run id): the runs ranking aggregates. One search.
    pub fn podium_runs(&self, key: &str) -> Result<Vec<Run>, BenchError> {
        let filter = Filter::new().tag_eq(self.options.tags.get(Tag::BenchmarkKey), key);
        let current = HARNESS_VERSION.to_string();
        let mut runs: Vec<Run> = self
            .finished_runs(filter, &format!("key {key}"))?
            .into_iter()
            .filter(|run| self.harness_of(run) == Some(current.as_str()))
            .collect();
        runs.sort_by(|a, b| {
            a.info
                .start_time
                .cmp(&b.info.start_time)
                .then_with(|| a.id().cmp(b.id()))
        });
        Ok(runs)
    }

    /// The latest FINISHED run of `key` that podium measured with the current harness, if any.
    pub fn finished_run(&self, key: &str) -> Result<Option<Run>, BenchError> {
        Ok(self.podium_runs(key)?.pop())
    }

    /// The FINISHED runs the pipeline measured for `target` — by its key, or by its study and
    /// trial key hashes (the pipeline's fallback) — i.e. those without podium's harness tag,
    /// sorted by start time then run id. Shown as the pipeline's results; never podium's.
    pub fn pipeline_runs(
        &self,
        target: &BenchmarkTarget,
    ) -> Result<Vec<PipelineResult>, BenchError> {
        let tags = &self.options.tags;
        let mut found: BTreeMap<String, PipelineResult> = BTreeMap::new();
        let by_key = Filter::new().tag_eq(tags.get(Tag::BenchmarkKey), &target.key);
        for run in self.finished_runs(by_key, &format!("key {}", target.key))? {
            if self.harness_of(&run).is_none() {
                found.insert(
                    run.id().to_string(),
                    PipelineResult::of(target, &run, MatchedBy::BenchmarkKey, tags),
                );
            }
        }
        if let Some(trial_key_hash) = &target.champion.trial_key_hash {
            let by_hashes = Filter::new()
                .tag_eq(tags.get(Tag::StudyKeyHash), &target.champion.study_key_hash)
                .tag_eq(tags.get(Tag::TrialKeyHash), trial_key_hash);
            let what = format!(
                "study {} trial {trial_key_hash}",
                target.champion.study_key_hash
            );
            for run in self.finished_runs(by_hashes, &what)? {
                if self.harness_of(&run).is_none() && !found.contains_key(run.id()) {
                    found.insert(
                        run.id().to_string(),
                        PipelineResult::of(target, &run, MatchedBy::StudyTrialHash, tags),
                    );
                }
            }
        }
        let mut results: Vec<PipelineResult> = found.into_values().collect();
        results.sort_by(|a, b| {
            a.start_time
                .cmp(&b.start_time)
                .then_with(|| a.run_id.cmp(&b.run_id))
        });
        Ok(results)
    }

    /// The pipeline-measured results of every target, in target order.
    pub fn pipeline_results(
        &self,
        targets: &[BenchmarkTarget],
    ) -> Result<Vec<PipelineResult>, BenchError> {
        let mut all = Vec::new();
        for target in targets {
            all.extend(self.pipeline_runs(target)?);
        }
        Ok(all)
    }

    fn status(&self, target: &BenchmarkTarget) -> Result<PlanStatus, BenchError> {
        let finished = self.finished_run(&target.key)?;
        let cache = self.cache.read(&target.location(), &target.key);
        Ok(status_of(
            finished,
            &cache,
            self.options.settings.force,
            self.session_start_ms,
        ))
    }

    /// Decides, for each target, whether it is done, needs a restore, or must be measured:
    /// one MLflow search and one file read per target, no model load, no writes.
    pub fn plan(&self, targets: Vec<BenchmarkTarget>) -> Result<Vec<PlannedBenchmark>, BenchError> {
        targets
            .into_iter()
            .map(|target| {
                let status = self.status(&target)?;
                Ok(PlannedBenchmark { target, status })
            })
            .collect()
    }

    /// The recorded results of each target, for ranking: podium's FINISHED runs of its key by
    /// the current harness (oldest first), else the disk result as one sample; empty when
    /// neither has one.
    pub fn results(
        &self,
        targets: &[BenchmarkTarget],
    ) -> Result<Vec<Vec<BenchmarkSample>>, BenchError> {
        targets
            .iter()
            .map(|target| {
                let runs = self.podium_runs(&target.key)?;
                if !runs.is_empty() {
                    return Ok(runs
                        .into_iter()
                        .map(|run| BenchmarkSample {
                            run_id: run.id().to_string(),
                            start_time: run.info.start_time.unwrap_or(0),
                            metrics: run.metrics,
                        })
                        .collect());
                }
                Ok(match self.cache.read(&target.location(), &target.key) {
                    CacheLookup::Hit(entry) => vec![BenchmarkSample {
                        run_id: entry.benchmark_run_id,
                        start_time: entry.created_ms,
                        metrics: entry.metrics,
                    }],
                    CacheLookup::Missing
                    | CacheLookup::Invalid(_)
                    | CacheLookup::PipelineOwned(_) => Vec::new(),
                })
            })
            .collect()
    }

    /// Settles every planned target: skips, restores, or measures under a claim, waiting for
    /// keys other workers hold. One target's failure does not stop the others. Outcomes come
    /// back in plan order.
    pub fn run(
        &self,
        plan: Vec<PlannedBenchmark>,
        on_event: &dyn Fn(Event<'_>),
    ) -> Vec<BenchmarkOutcome> {
        let mut outcomes: Vec<Option<BenchmarkOutcome>> = vec![None; plan.len()];
        let mut pending: VecDeque<(usize, PlannedBenchmark)> =
            plan.into_iter().enumerate().collect();
        let mut waits_in_a_row = 0usize;
        while let Some((index, planned)) = pending.pop_front() {
            let target = &planned.target;
            if self.options.in_flight.is_interrupted() {
                let error = BenchError::Interrupted {
                    run_id: target.champion.run_id.clone(),
                };
                let outcome = self.failed(target, None, &error);
                on_event(Event::Settled(&outcome));
                outcomes[index] = Some(outcome);
                continue;
            }
            match self.settle(&planned, on_event) {
                Ok(Some(outcome)) => {
                    waits_in_a_row = 0;
                    on_event(Event::Settled(&outcome));
                    outcomes[index] = Some(outcome);
                }
                Ok(None) => {
                    waits_in_a_row += 1;
                    if waits_in_a_row > pending.len() {
                        // Every remaining key is held by someone else: let them work.
                        std::thread::sleep(self.options.poll_interval);
                        waits_in_a_row = 0;
                    }
                    let status = match self.status(target) {
                        Ok(status) => status,
                        Err(err) => {
                            let outcome = self.failed(target, None, &err);
                            on_event(Event::Settled(&outcome));
                            outcomes[index] = Some(outcome);
                            continue;
                        }
                    };
                    pending.push_back((
                        index,
                        PlannedBenchmark {
                            target: planned.target,
                            status,
                        },
                    ));
                }
                Err(err) => {
                    waits_in_a_row = 0;
                    tracing::error!("{}: {err}", target.backbone);
                    let outcome = self.failed(target, None, &err);
                    on_event(Event::Settled(&outcome));
                    outcomes[index] = Some(outcome);
                }
            }
        }
        outcomes.into_iter().flatten().collect()
    }

    /// `Ok(None)`: another worker holds the key; try again later.
    fn settle(
        &self,
        planned: &PlannedBenchmark,
        on_event: &dyn Fn(Event<'_>),
    ) -> Result<Option<BenchmarkOutcome>, BenchError> {
        let target = &planned.target;
        match &planned.status {
            PlanStatus::Done(run) => {
                return Ok(Some(self.outcome_from_run(target, Outcome::Skipped, run)));
            }
            PlanStatus::RestoreCache(run) => return self.restore_cache(target, run).map(Some),
            PlanStatus::RestoreMlflow(_) | PlanStatus::ToRun(_) => {}
        }
        let claim = match self.options.claims.try_claim(&target.key)? {
            ClaimOutcome::Won(claim) => claim,
            ClaimOutcome::Held { owner, expires_ms } => {
                self.log_wait(target, owner.as_deref(), expires_ms);
                on_event(Event::Waiting {
                    target,
                    owner: owner.as_deref(),
                    expires_ms,
                });
                return Ok(None);
            }
        };
        self.options.in_flight.add_claim(&claim);
        let result = self.under_claim(target, &claim, on_event);
        if !self.options.in_flight.is_interrupted() {
            self.options.in_flight.remove(&target.key);
            if let Err(err) = claim.release() {
                tracing::warn!("{err}");
            }
        }
        result.map(Some)
    }

    /// Says at info level who holds `target`'s claim and until when — once per holder, not on
    /// every poll.
    fn log_wait(&self, target: &BenchmarkTarget, owner: Option<&str>, expires_ms: Option<i64>) {
        let holder = owner.unwrap_or("a worker that has not tagged its claim yet");
        let mut waits = self
            .waits_logged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if waits.get(&target.key).map(String::as_str) == Some(holder) {
            return;
        }
        waits.insert(target.key.clone(), holder.to_string());
        let until = match expires_ms {
            Some(expires) => format!(
                "its lease ends in {:.1} s unless renewed",
                (expires - now_ms()) as f64 / 1000.0
            ),
            None => format!(
                "no lease yet; taken over after {:.0} s",
                self.options.claims.lease().as_secs_f64()
            ),
        };
        tracing::info!(
            "{}: waiting for worker {holder}, which holds the claim of key {} ({until})",
            target.backbone,
            target.key
        );
    }

    fn under_claim(
        &self,
        target: &BenchmarkTarget,
        claim: &Claim,
        on_event: &dyn Fn(Event<'_>),
    ) -> Result<BenchmarkOutcome, BenchError> {
        // Re-check: another worker may have finished this key between our lookup and our claim.
        match self.status(target)? {
            PlanStatus::Done(run) => Ok(self.outcome_from_run(target, Outcome::Skipped, &run)),
            PlanStatus::RestoreCache(run) => self.restore_cache(target, &run),
            PlanStatus::RestoreMlflow(entry) => {
                self.fail_orphans(target);
                self.restore_mlflow(target, &entry, claim)
            }
            PlanStatus::ToRun(reason) => {
                self.fail_orphans(target);
                tracing::info!("{}: measuring ({reason})", target.backbone);
                on_event(Event::Measuring(target));
                self.measure(target, claim)
            }
        }
    }

    fn outcome_from_run(
        &self,
        target: &BenchmarkTarget,
        outcome: Outcome,
        run: &Run,
    ) -> BenchmarkOutcome {
        BenchmarkOutcome {
            backbone: target.backbone.clone(),
            key: target.key.clone(),
            champion_run_id: target.champion.run_id.clone(),
            outcome,
            benchmark_run_id: Some(run.id().to_string()),
            metrics: run.metrics.clone(),
            checkpoint: None,
            error: None,
        }
    }

    fn failed(
        &self,
        target: &BenchmarkTarget,
        benchmark_run_id: Option<String>,
        error: &BenchError,
    ) -> BenchmarkOutcome {
        BenchmarkOutcome {
            backbone: target.backbone.clone(),
            key: target.key.clone(),
            champion_run_id: target.champion.run_id.clone(),
            outcome: Outcome::Failed,
            benchmark_run_id,
            metrics: BTreeMap::new(),
            checkpoint: None,
            error: Some(error.to_string()),
        }
    }

    fn cache_entry(
        &self,
        target: &BenchmarkTarget,
        run_id: &str,
        metrics: &BTreeMap<String, f64>,
        tags: &BTreeMap<String, String>,
        created_ms: i64,
    ) -> CachedBenchmark {
        CachedBenchmark {
            benchmark_key: target.key.clone(),
            harness_version: HARNESS_VERSION,
            backbone: target.backbone.clone(),
            champion_run_id: target.champion.run_id.clone(),
            benchmark_run_id: run_id.to_string(),
            metrics: metrics.clone(),
            // MLflow's own system tags (mlflow.user, mlflow.runName…) are recreated by MLflow.
            tags: tags
                .iter()
                .filter(|(key, _)| !key.starts_with("mlflow."))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            created_ms,
        }
    }

    fn restore_cache(
        &self,
        target: &BenchmarkTarget,
        run: &Run,
    ) -> Result<BenchmarkOutcome, BenchError> {
        let created = run
            .info
            .end_time
            .or(run.info.start_time)
            .unwrap_or_else(now_ms);
        let written = self.cache.write(
            &target.location(),
            &self.cache_entry(target, run.id(), &run.metrics, &run.tags, created),
        )?;
        if let Some(path) = written {
            tracing::info!(
                "{}: restored {} from FINISHED run {}",
                target.backbone,
                path.display(),
                run.id()
            );
        }
        Ok(self.outcome_from_run(target, Outcome::RestoredCache, run))
    }

    /// The tags of a new benchmark run of `target`: those the pipeline's benchmark tracker
    /// writes (stage, model, grouping hashes, benchmark config hash, lineage, run type, key,
    /// source) and podium's own `code.benchmark.*` tags.
    fn run_tags(&self, target: &BenchmarkTarget) -> BTreeMap<String, String> {
        let registry = &self.options.tags;
        let champion = &target.champion;
        let settings = &self.options.settings;
        let mut run_tags: BTreeMap<String, String> = [
            (Tag::BenchmarkKey, target.key.clone()),
            (Tag::Stage, stage::BENCHMARKING.to_string()),
            (Tag::Model, target.model.clone()),
            (Tag::StudyKeyHash, champion.study_key_hash.clone()),
            // The pipeline sets it whenever a grouping hash is present (always, here).
            (Tag::GroupingSchemaVersion, "1".to_string()),
            (
                Tag::LegacyBenchmarkConfigHash,
                settings.benchmark_config_hash.clone(),
            ),
            (Tag::LineageHpoTrialRunId, champion.trial_run_id.clone()),
            (Tag::MlflowRunType, "benchmark".to_string()),
            (Tag::BenchmarkSource, "hpo_trial".to_string()),
            (Tag::BenchmarkedModel, target.backbone.clone()),
            (Tag::DataFingerprint, target.data_fingerprint.clone()),
            (Tag::EvalFingerprint, target.eval_fingerprint.clone()),
            (Tag::BenchmarkChampionRunId, champion.run_id.clone()),
            (Tag::BenchmarkTrialRunId, champion.trial_run_id.clone()),
            (
                Tag::BenchmarkEnvironment,
                self.options.environment.as_str().to_string(),
            ),
            (
                Tag::BenchmarkPodiumVersion,
                env!("CARGO_PKG_VERSION").to_string(),
            ),
            (Tag::BenchmarkHarnessVersion, HARNESS_VERSION.to_string()),
            (
                Tag::BenchmarkWorker,
                self.options.claims.owner().to_string(),
            ),
        ]
        .into_iter()
        .map(|(tag, value)| (registry.get(tag).to_string(), value))
        .collect();
        let optional = [
            (Tag::TrialKeyHash, champion.trial_key_hash.as_ref()),
            (Tag::LineageHpoSweepRunId, champion.sweep_run_id.as_ref()),
            (Tag::LineageHpoRefitRunId, champion.refit_run_id.as_ref()),
            (Tag::BenchmarkRefitRunId, champion.refit_run_id.as_ref()),
        ];
        for (tag, value) in optional {
            if let Some(value) = value {
                run_tags.insert(registry.get(tag).to_string(), value.clone());
            }
        }
        run_tags
    }

    /// The run name the pipeline gives a benchmark run:
    /// `{env}_{model}_benchmark_study-{s8}_trial-{t8}_bench-{b8}` (`unknown` for a missing hash).
    fn run_name(&self, target: &BenchmarkTarget) -> String {
        let short = |hash: Option<&str>| -> String {
            match hash {
                Some(hash) if !hash.is_empty() => hash.chars().take(8).collect(),
                _ => "unknown".to_string(),
            }
        };
        format!(
            "{}_{}_benchmark_study-{}_trial-{}_bench-{}",
            self.options.environment.as_str(),
            target.model,
            short(Some(&target.champion.study_key_hash)),
            short(target.champion.trial_key_hash.as_deref()),
            short(Some(&self.options.settings.benchmark_config_hash)),
        )
    }

    /// The params of a measured run: the pipeline's `benchmark_*` params, then podium's own.
    fn params(&self) -> Vec<(&'static str, String)> {
        let config = &self.options.settings.config;
        let (input, test_data) = match &config.input {
            InputSpec::Synthetic => ("synthetic", String::new()),
            InputSpec::TestData { path } => ("test_data", path.display().to_string()),
        };
        let mut params = vec![
            // Python's str() of a list of ints: `[1, 8, 32]`.
            ("benchmark_batch_sizes", format!("{:?}", config.batch_sizes)),
            ("benchmark_iterations", config.iterations.to_string()),
            ("benchmark_warmup_iterations", config.warmup.to_string()),
            ("benchmark_max_length", config.max_length.to_string()),
            ("benchmark_device", config.device.clone()),
            ("min_duration_s", config.min_duration_s.to_string()),
            ("input", input.to_string()),
            (
                "run_mode",
                self.options.settings.run_mode.as_str().to_string(),
            ),
            ("harness_version", HARNESS_VERSION.to_string()),
        ];
        if !test_data.is_empty() {
            params.push(("test_data_path", test_data));
        }
        params
    }

    /// Creates the RUNNING benchmark run of `target`, safely against lost responses: the run
    /// carries a fresh creation token, and when `runs/create` fails (or a retry inside the
    /// store created it twice) the runs carrying the token are looked up — one is kept, any
    /// duplicate is marked FAILED — before the error is believed.
    fn create_run(
        &self,
        target: &BenchmarkTarget,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, BenchError> {
        let experiment_id = self
            .experiment_id(true)?
            .ok_or_else(|| BenchError::Config {
                file: PathBuf::from("experiment.yaml"),
                key: "benchmark_experiment".into(),
                message: format!(
                    "cannot create experiment {}",
                    self.options.benchmark_experiment
                ),
            })?;
        let token_tag = self.options.tags.get(Tag::BenchmarkCreationToken);
        let token = format!("{}:{:016x}", self.options.claims.owner(), fastrand::u64(..));
        let mut tags = tags.clone();
        tags.insert(token_tag.to_string(), token.clone());
        let created =
            self.store()
                .create_run(&experiment_id, &self.run_name(target), now_ms(), &tags);
        let filter = Filter::new().tag_eq(token_tag, &token);
        let with_token = search_all(
            self.store(),
            std::slice::from_ref(&experiment_id),
            &filter,
            ViewType::ActiveOnly,
        );
        let mut found: Vec<String> = match &with_token {
            Ok(runs) => runs.iter().map(|run| run.id().to_string()).collect(),
            Err(err) => {
                tracing::warn!("cannot look up benchmark runs by creation token {token}: {err}");
                Vec::new()
            }
        };
        found.sort();
        let kept = match (&created, found.first()) {
            (Ok(run), _) => run.run_id.clone(),
            (Err(err), Some(existing)) => {
                tracing::warn!(
                    "{}: creating the benchmark run failed ({err}), but run {existing} with \
                     this worker's creation token exists: using it",
                    target.backbone
                );
                existing.clone()
            }
            (Err(_), None) => {
                return created
                    .map(|run| run.run_id)
                    .map_err(BenchError::mlflow(format!(
                        "creating the benchmark run of {} (key {})",
                        target.backbone, target.key
                    )));
            }
        };
        for duplicate in found.iter().filter(|id| **id != kept) {
            tracing::warn!(
                "{}: run {duplicate} is a second create of run {kept} (a lost response was \
                 retried): marking it FAILED",
                target.backbone
            );
            self.mark_failed_with(
                duplicate,
                &format!("duplicate create of benchmark run {kept} after a lost response"),
            );
        }
        Ok(kept)
    }

    /// Marks FAILED every RUNNING benchmark run of `key` other than those podium is measuring
    /// right now: called under the key's claim, so their workers' claims are gone (they died,
    /// or lost the response to their `runs/create`).
    fn fail_orphans(&self, target: &BenchmarkTarget) {
        let Ok(Some(experiment_id)) = self.experiment_id(false) else {
            return;
        };
        let filter = Filter::new()
            .tag_eq(self.options.tags.get(Tag::BenchmarkKey), &target.key)
            .status(RunStatus::Running);
        let runs = match search_all(
            self.store(),
            &[experiment_id],
            &filter,
            ViewType::ActiveOnly,
        ) {
            Ok(runs) => runs,
            Err(err) => {
                tracing::warn!(
                    "{}: cannot look for orphaned RUNNING runs: {err}",
                    target.backbone
                );
                return;
            }
        };
        for run in runs.iter().filter(|run| self.harness_of(run).is_some()) {
            tracing::warn!(
                "{}: RUNNING benchmark run {} has no live claim behind it: marking it FAILED",
                target.backbone,
                run.id()
            );
            self.mark_failed_with(
                run.id(),
                "orphaned: the worker that created it no longer holds the key's claim",
            );
        }
    }

    fn log_metrics(
        &self,
        run_id: &str,
        metrics: &BTreeMap<String, f64>,
        params: &[(&str, String)],
        extra_tags: &[(&str, String)],
    ) -> Result<(), MlflowError> {
        let timestamp = now_ms();
        let points: Vec<MetricPoint<'_>> = metrics
            .iter()
            .map(|(key, value)| MetricPoint {
                key,
                value: *value,
                timestamp,
                step: 0,
            })
            .collect();
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let extra_tags: Vec<(&str, &str)> =
            extra_tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.store()
            .log_batch(run_id, &points, &params, &extra_tags)
    }

    /// Ends a run FAILED with the error as a tag (best effort: the error itself is reported).
    fn mark_failed(&self, run_id: &str, error: &BenchError) {
        self.mark_failed_with(run_id, &error.to_string());
    }

    /// Ends a run FAILED with `reason` as its error tag (best effort).
    fn mark_failed_with(&self, run_id: &str, reason: &str) {
        let message: String = reason.chars().take(MAX_ERROR_TAG_CHARS).collect();
        let result = self
            .store()
            .set_tag(run_id, self.options.tags.get(Tag::BenchmarkError), &message)
            .and_then(|()| {
                self.store()
                    .update_run(run_id, RunStatus::Failed, Some(now_ms()))
            });
        if let Err(err) = result {
            tracing::warn!("cannot mark benchmark run {run_id} FAILED: {err}");
        }
    }

    /// Checks `still_ours` (the claim), logs `record` and marks the run FINISHED, as one step
    /// that Ctrl-C cannot split (see `InFlight::finish`); on failure the run is marked FAILED.
    fn finish_run(
        &self,
        target: &BenchmarkTarget,
        run_id: &str,
        still_ours: impl FnOnce() -> Result<(), BenchError>,
        record: RunRecord<'_>,
    ) -> Result<(), BenchError> {
        let finish = || -> Result<(), BenchError> {
            still_ours()?;
            self.log_metrics(run_id, record.metrics, record.params, record.extra_tags)
                .and_then(|()| {
                    self.store()
                        .update_run(run_id, RunStatus::Finished, Some(now_ms()))
                })
                .map_err(BenchError::mlflow(format!(
                    "{} benchmark run {run_id}",
                    record.doing
                )))
        };
        match self.options.in_flight.finish(&target.key, finish) {
            None => Err(BenchError::Interrupted {
                run_id: target.champion.run_id.clone(),
            }),
            Some(Err(err)) => {
                self.mark_failed(run_id, &err);
                Err(err)
            }
            Some(Ok(())) => Ok(()),
        }
    }

    fn restore_mlflow(
        &self,
        target: &BenchmarkTarget,
        entry: &CachedBenchmark,
        claim: &Claim,
    ) -> Result<BenchmarkOutcome, BenchError> {
        let mut run_tags = entry.tags.clone();
        run_tags.extend(self.run_tags(target));
        run_tags.insert(
            self.options
                .tags
                .get(Tag::BenchmarkRestoredFromCache)
                .to_string(),
            entry.benchmark_run_id.clone(),
        );
        let run_id = self.create_run(target, &run_tags)?;
        self.options.in_flight.set_run(&target.key, &run_id);
        if let Err(err) = claim.record_run(&run_id) {
            tracing::warn!("{err}");
        }
        self.finish_run(
            target,
            &run_id,
            || claim.verify(),
            RunRecord {
                metrics: &entry.metrics,
                params: &[],
                extra_tags: &[],
                doing: "restoring",
            },
        )?;
        // Point the cache at the run that now exists in this store.
        let mut updated = entry.clone();
        updated.benchmark_run_id = run_id.clone();
        self.cache.write(&target.location(), &updated)?;
        tracing::info!(
            "{}: restored FINISHED run {run_id} from the disk cache",
            target.backbone
        );
        Ok(BenchmarkOutcome {
            backbone: target.backbone.clone(),
            key: target.key.clone(),
            champion_run_id: target.champion.run_id.clone(),
            outcome: Outcome::RestoredMlflow,
            benchmark_run_id: Some(run_id),
            metrics: entry.metrics.clone(),
            checkpoint: None,
            error: None,
        })
    }

    fn measure(
        &self,
        target: &BenchmarkTarget,
        claim: &Claim,
    ) -> Result<BenchmarkOutcome, BenchError> {
        let run_tags = self.run_tags(target);
        let run_id = self.create_run(target, &run_tags)?;
        self.options.in_flight.set_run(&target.key, &run_id);
        if let Err(err) = claim.record_run(&run_id) {
            tracing::warn!("{err}");
        }
        let heartbeat = claim.heartbeat();
        let measured = acquire_checkpoint_with(
            self.store(),
            &target.champion.run_id,
            &self.options.tags,
            &self.options.layout,
            &self.options.environment,
            &self.options.settings.acquisition,
        )
        .and_then(|checkpoint| {
            tracing::info!(
                "{}: checkpoint {} (from {})",
                target.backbone,
                checkpoint.path.display(),
                checkpoint.source
            );
            self.options
                .measurer
                .measure(&checkpoint.path)
                .map(|measurement| (checkpoint.clone(), measurement))
                .map_err(|err| BenchError::Measure {
                    run_id: target.champion.run_id.clone(),
                    checkpoint: checkpoint.path.display().to_string(),
                    message: err.to_string(),
                })
        });
        drop(heartbeat);
        let (checkpoint, measurement) = match measured {
            Ok(done) => done,
            Err(err) => {
                self.options
                    .in_flight
                    .finish(&target.key, || self.mark_failed(&run_id, &err));
                return Err(err);
            }
        };
        for warning in &measurement.warnings {
            tracing::warn!("{}: {warning}", target.backbone);
        }
        let registry = &self.options.tags;
        let extra_tags = [
            (
                registry.get(Tag::BenchmarkThreads),
                measurement.threads.to_string(),
            ),
            (
                registry.get(Tag::BenchmarkCheckpointSource),
                checkpoint.source.to_string(),
            ),
        ];
        // Only the claim holder may finish: a worker whose lease lapsed (paused, partitioned)
        // must not add a second FINISHED run next to the one of the worker that took over.
        self.finish_run(
            target,
            &run_id,
            || claim.renew(),
            RunRecord {
                metrics: &measurement.metrics,
                params: &self.params(),
                extra_tags: &extra_tags,
                doing: "finishing",
            },
        )?;
        let mut final_tags = run_tags;
        final_tags.extend(extra_tags.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let entry = self.cache_entry(target, &run_id, &measurement.metrics, &final_tags, now_ms());
        // MLflow already holds the result; a failed cache write is repaired by the next call.
        if let Err(err) = self.cache.write(&target.location(), &entry) {
            tracing::warn!("{}: {err}", target.backbone);
        }
        Ok(BenchmarkOutcome {
            backbone: target.backbone.clone(),
            key: target.key.clone(),
            champion_run_id: target.champion.run_id.clone(),
            outcome: Outcome::Benchmarked,
            benchmark_run_id: Some(run_id),
            metrics: measurement.metrics,
            checkpoint: Some(checkpoint),
            error: None,
        })
    }
}

/// What a finished benchmark run records.
struct RunRecord<'a> {
    metrics: &'a BTreeMap<String, f64>,
    params: &'a [(&'a str, String)],
    extra_tags: &'a [(&'a str, String)],
    /// For errors: "finishing", "restoring".
    doing: &'a str,
}
