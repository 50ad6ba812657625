//! Idempotent benchmarking of champions: each champion's benchmark key
//! (`{champion_run_id}:{data_fp}:{eval_fp}:{config_hash(benchmark.yaml)}`, the pipeline's) is
//! measured once, recorded in the benchmark experiment (MLflow) as a run the pipeline's own
//! tools read, and on disk where the pipeline puts results ([`crate::cache`]); either side is
//! restored from the other without measuring again. Concurrent workers on one tracking store
//! coordinate through [`crate::claim`].
//!
//! Done for podium means a FINISHED run with the key **and** podium's harness tag at the
//! current [`HARNESS_VERSION`](crate::HARNESS_VERSION) (or the disk result holding both). Runs the pipeline measured
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
mod lookup;
pub mod measure;
mod plan;
mod runs;
mod settings;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use podium_keys::TagRegistry;
use podium_mlflow::{Run, TrackingStore};
use podium_variants::{Environment, OutputLayout};

use crate::cache::BenchmarkCache;
use crate::claim::{Claim, ClaimOutcome, Claims, now_ms};
use crate::error::BenchError;

pub use interrupt::InFlight;
pub use lookup::RecordedBenchmark;
pub use measure::{CheckpointMeasurer, Measurement, Measurer};
pub use plan::{
    BenchmarkOutcome, BenchmarkTarget, MatchedBy, Outcome, PipelineResult, PlanStatus,
    PlannedBenchmark, status_of,
};
pub use runs::RESULT_ARTIFACT_DIR;
pub use settings::{BenchmarkSettings, TRACKING_CONFIG_FILE, log_artifacts_setting};

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

    /// Settles every planned target: skips, restores, or measures under a claim, waiting for
    /// keys other workers hold. One target's failure does not stop the others. Outcomes come
    /// back in plan order.
    pub fn run(
        &self,
        plan: Vec<PlannedBenchmark>,
        on_event: &dyn Fn(Event<'_>),
    ) -> Vec<BenchmarkOutcome> {
        let mut outcomes: Vec<Option<BenchmarkOutcome>> = vec![None; plan.len()];
        // `true`: the status needs a claim, and was decided earlier (by the plan, or when the
        // key was found held); it is looked up again right before the claim attempt.
        let mut pending: VecDeque<(usize, PlannedBenchmark, bool)> = plan
            .into_iter()
            .enumerate()
            .map(|(index, planned)| (index, planned, true))
            .collect();
        let mut waits_in_a_row = 0usize;
        while let Some((index, mut planned, stale)) = pending.pop_front() {
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
            let needs_claim = matches!(
                planned.status,
                PlanStatus::ToRun(_) | PlanStatus::RestoreMlflow(_)
            );
            if stale && needs_claim {
                // A key another worker finished since it was planned or found held is skipped
                // without claiming it: each claim won leaves a tombstone experiment behind.
                match self.status(target) {
                    Ok(status) => planned.status = status,
                    Err(err) => {
                        let outcome = self.failed(target, None, &err);
                        on_event(Event::Settled(&outcome));
                        outcomes[index] = Some(outcome);
                        continue;
                    }
                }
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
                    pending.push_back((index, planned, true));
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
                // A worker killed between its FINISHED write and its release leaves a claim no
                // one would claim again: bury it once its lease has expired.
                if let Err(err) = self.options.claims.bury_if_expired(&target.key) {
                    tracing::warn!("{}: {err}", target.backbone);
                }
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
}
