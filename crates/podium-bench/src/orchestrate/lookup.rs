//! Reading what the tracking store holds: the benchmark experiment, podium's and the
//! pipeline's FINISHED runs of a key, and the plan built from them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use podium_champion::ranking::BenchmarkSample;
use podium_keys::Tag;
use podium_mlflow::{Filter, MlflowError, Run, RunStatus, TrackingStore, ViewType, search_all};

use super::{
    BenchmarkTarget, MatchedBy, Orchestrator, PipelineResult, PlanStatus, PlannedBenchmark,
    status_of,
};
use crate::HARNESS_VERSION;
use crate::cache::CacheLookup;
use crate::error::BenchError;

impl Orchestrator {
    /// The benchmark experiment's id; with `create`, creates it when missing.
    pub(super) fn experiment_id(&self, create: bool) -> Result<Option<String>, BenchError> {
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
    pub(super) fn finished_runs(&self, filter: Filter, what: &str) -> Result<Vec<Run>, BenchError> {
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
    pub(super) fn harness_of<'r>(&self, run: &'r Run) -> Option<&'r str> {
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

    pub(super) fn status(&self, target: &BenchmarkTarget) -> Result<PlanStatus, BenchError> {
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
        Ok(self
            .recorded(targets)?
            .into_iter()
            .map(|recorded| recorded.into_iter().map(|result| result.sample).collect())
            .collect())
    }

    /// [`Orchestrator::results`] with each result's tags (threads, CPU, harness…) and where it
    /// was read: what a report shows beside the numbers ranking uses.
    pub fn recorded(
        &self,
        targets: &[BenchmarkTarget],
    ) -> Result<Vec<Vec<RecordedBenchmark>>, BenchError> {
        targets
            .iter()
            .map(|target| {
                let runs = self.podium_runs(&target.key)?;
                if !runs.is_empty() {
                    return Ok(runs
                        .into_iter()
                        .map(|run| RecordedBenchmark {
                            sample: BenchmarkSample {
                                run_id: run.id().to_string(),
                                start_time: run.info.start_time.unwrap_or(0),
                                metrics: run.metrics,
                            },
                            tags: run.tags,
                            experiment_id: Some(run.info.experiment_id),
                        })
                        .collect());
                }
                Ok(match self.cache.read(&target.location(), &target.key) {
                    CacheLookup::Hit(entry) => vec![RecordedBenchmark {
                        sample: BenchmarkSample {
                            run_id: entry.benchmark_run_id,
                            start_time: entry.created_ms,
                            metrics: entry.metrics,
                        },
                        tags: entry.tags,
                        experiment_id: None,
                    }],
                    CacheLookup::Missing
                    | CacheLookup::Invalid(_)
                    | CacheLookup::PipelineOwned(_) => Vec::new(),
                })
            })
            .collect()
    }
}

/// One recorded benchmark result of a target: the sample ranking reads, with the run's tags.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedBenchmark {
    /// Run id, start time and metrics.
    pub sample: BenchmarkSample,
    /// The run's tags (from the disk result's copy when MLflow has no run).
    pub tags: BTreeMap<String, String>,
    /// The benchmark experiment holding the run; `None` for a result read from disk.
    pub experiment_id: Option<String>,
}
