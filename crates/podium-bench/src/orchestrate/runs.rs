//! The life of one benchmark run: its tags, name and params, a create that is safe against
//! lost responses, orphans failed, metrics and FINISHED written under the claim, and the disk
//! cache written after.

use std::collections::BTreeMap;
use std::path::PathBuf;

use podium_keys::{Tag, stage};
use podium_mlflow::{Filter, MetricPoint, MlflowError, Run, RunStatus, ViewType, search_all};

use super::{BenchmarkOutcome, BenchmarkTarget, Orchestrator, Outcome};
use crate::HARNESS_VERSION;
use crate::acquire::{acquire_checkpoint_with, discard_cached};
use crate::cache::CachedBenchmark;
use crate::claim::{Claim, now_ms};
use crate::error::BenchError;
use crate::harness::InputSpec;

/// MLflow's limit on a tag value is larger, but error messages this long are noise.
const MAX_ERROR_TAG_CHARS: usize = 4000;

/// The artifact folder of a benchmark run's result file, as the pipeline's benchmark tracker
/// logs it (`log_artifact(benchmark.json, artifact_path="benchmark_results.json")`): the file
/// is `benchmark_results.json/{output.filename}`.
pub const RESULT_ARTIFACT_DIR: &str = "benchmark_results.json";

impl Orchestrator {
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

    pub(super) fn restore_cache(
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

    /// [`Self::create_run`] registered with the interrupt books as it is created (see
    /// `InFlight::create_run`): Ctrl-C or SIGTERM at any instant leaves the run KILLED.
    fn create_registered_run(
        &self,
        target: &BenchmarkTarget,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, BenchError> {
        self.options
            .in_flight
            .create_run(&target.key, || self.create_run(target, tags))
            .unwrap_or_else(|| {
                Err(BenchError::Interrupted {
                    run_id: target.champion.run_id.clone(),
                })
            })
    }

    /// Marks FAILED every RUNNING benchmark run of `key` other than those podium is measuring
    /// right now: called under the key's claim, so their workers' claims are gone (they died,
    /// or lost the response to their `runs/create`).
    pub(super) fn fail_orphans(&self, target: &BenchmarkTarget) {
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

    /// Checks `still_ours` (the claim), logs `record` and marks the run FINISHED only while
    /// `claim` is still this worker's ([`Claim::finish_run`]: on a database store the check and
    /// the write are one transaction), as one step that Ctrl-C cannot split (see
    /// `InFlight::finish`); on failure the run is marked FAILED.
    fn finish_run(
        &self,
        target: &BenchmarkTarget,
        run_id: &str,
        claim: &Claim,
        still_ours: impl FnOnce() -> Result<(), BenchError>,
        record: RunRecord<'_>,
    ) -> Result<(), BenchError> {
        let finish = || -> Result<(), BenchError> {
            still_ours()?;
            self.log_metrics(run_id, record.metrics, record.params, record.extra_tags)
                .map_err(BenchError::mlflow(format!(
                    "{} benchmark run {run_id}",
                    record.doing
                )))?;
            claim.finish_run(run_id, now_ms())
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

    pub(super) fn restore_mlflow(
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
        let run_id = self.create_registered_run(target, &run_tags)?;
        if let Err(err) = claim.record_run(&run_id) {
            tracing::warn!("{err}");
        }
        self.finish_run(
            target,
            &run_id,
            claim,
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
        let written = self.cache.write(&target.location(), &updated)?;
        self.log_result_artifact(target, &run_id, written.as_deref(), &updated);
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

    pub(super) fn measure(
        &self,
        target: &BenchmarkTarget,
        claim: &Claim,
    ) -> Result<BenchmarkOutcome, BenchError> {
        let run_tags = self.run_tags(target);
        let run_id = self.create_registered_run(target, &run_tags)?;
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
            match self.options.measurer.measure(&checkpoint.path) {
                Ok(measurement) => Ok((checkpoint.clone(), measurement)),
                Err(err) => {
                    // A downloaded checkpoint that does not load is not kept as the cache entry
                    // every later benchmark would fail on again.
                    if err.is_checkpoint_fault(&checkpoint.path) {
                        discard_cached(&checkpoint);
                    }
                    Err(BenchError::measuring(
                        &target.champion.run_id,
                        &checkpoint.path,
                    )(err))
                }
            }
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
        let mut extra_tags = vec![
            (
                registry.get(Tag::BenchmarkThreads),
                measurement.threads.to_string(),
            ),
            (
                registry.get(Tag::BenchmarkCheckpointSource),
                checkpoint.source.to_string(),
            ),
            (
                registry.get(Tag::BenchmarkSimd),
                measurement.host.simd.to_string(),
            ),
        ];
        if let Some(model) = &measurement.host.model {
            extra_tags.push((registry.get(Tag::BenchmarkCpuModel), model.clone()));
        }
        // Only the claim holder may finish: a worker whose lease lapsed (paused, partitioned)
        // must not add a second FINISHED run next to the one of the worker that took over.
        self.finish_run(
            target,
            &run_id,
            claim,
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
        let written = match self.cache.write(&target.location(), &entry) {
            Ok(written) => written,
            Err(err) => {
                tracing::warn!("{}: {err}", target.backbone);
                None
            }
        };
        self.log_result_artifact(target, &run_id, written.as_deref(), &entry);
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

impl Orchestrator {
    /// Logs the run's result file as its artifact `benchmark_results.json/{output.filename}`,
    /// as the pipeline does for its own runs (`mlflow.yaml` `tracking.benchmark.log_artifacts`,
    /// on by default): the file just written on disk, else (the pipeline's own file holds the
    /// place there) the same document from a temporary folder. Best effort, after FINISHED:
    /// the result is in MLflow already, a failed upload is a warning.
    fn log_result_artifact(
        &self,
        target: &BenchmarkTarget,
        run_id: &str,
        written: Option<&std::path::Path>,
        entry: &CachedBenchmark,
    ) {
        if !self.options.settings.log_artifacts {
            return;
        }
        let artifact = format!("{RESULT_ARTIFACT_DIR}/{}", self.cache.filename());
        let upload = || -> Result<(), String> {
            let run = self
                .store()
                .get_run(run_id)
                .map_err(|err| err.to_string())?;
            let staging;
            let source = match written {
                Some(path) => path.to_path_buf(),
                None => {
                    staging = tempfile::tempdir().map_err(|err| err.to_string())?;
                    let path = staging.path().join(self.cache.filename());
                    let bytes = self.cache.document(entry).map_err(|err| err.to_string())?;
                    podium_variants::fs::write_atomic(&path, &bytes)
                        .map_err(|err| err.to_string())?;
                    path
                }
            };
            self.store()
                .log_artifact(&run.info, &artifact, &source)
                .map_err(|err| err.to_string())
        };
        if let Err(err) = upload() {
            tracing::warn!(
                "{}: cannot log {artifact} as an artifact of benchmark run {run_id}: {err}",
                target.backbone
            );
        }
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
