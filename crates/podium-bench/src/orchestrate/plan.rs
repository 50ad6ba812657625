//! What is benchmarked and what a lookup decided: targets and their keys, the plan status of a
//! key from what MLflow and the disk hold, and the outcomes reported.

use std::collections::BTreeMap;

use podium_champion::ChampionReport;
use podium_champion::selection::Champion;
use podium_keys::{Tag, TagRegistry};
use podium_mlflow::Run;
use podium_variants::backbone_short_name;
use serde::Serialize;

use super::BenchmarkSettings;
use crate::acquire::AcquiredCheckpoint;
use crate::cache::{CacheLookup, CachedBenchmark, ResultLocation};

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
    /// Data fingerprint in the key (the run's tag, else the benchmark workflow's, of the
    /// experiment's data config).
    pub data_fingerprint: String,
    /// Eval fingerprint in the key (the run's tag, else the benchmark workflow's, of the HPO
    /// config it is given).
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
    pub(super) fn of(
        target: &BenchmarkTarget,
        run: &Run,
        matched_by: MatchedBy,
        tags: &TagRegistry,
    ) -> Self {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::PathBuf;

    use podium_champion::selection::CheckpointLocation;
    use podium_mlflow::{RunInfo, RunStatus};

    use super::*;

    fn run(start_time: i64) -> Run {
        Run {
            info: RunInfo {
                run_id: format!("r{start_time}"),
                experiment_id: "1".into(),
                run_name: "b".into(),
                status: RunStatus::Finished,
                start_time: Some(start_time),
                end_time: None,
                artifact_uri: String::new(),
                lifecycle_stage: "active".into(),
            },
            tags: BTreeMap::new(),
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
        }
    }

    fn entry() -> CachedBenchmark {
        CachedBenchmark {
            benchmark_key: "k".into(),
            harness_version: crate::HARNESS_VERSION,
            backbone: "bert-base-cased".into(),
            champion_run_id: "c".into(),
            benchmark_run_id: "r".into(),
            metrics: BTreeMap::new(),
            tags: BTreeMap::new(),
            created_ms: 1,
        }
    }

    #[test]
    fn mlflow_and_disk_decide_the_status() {
        let hit = CacheLookup::Hit(entry());
        let status = |finished: Option<Run>, cache: &CacheLookup| {
            status_of(finished, cache, false, 0).label()
        };
        assert_eq!(status(Some(run(5)), &hit), "done");
        assert_eq!(
            status(
                Some(run(5)),
                &CacheLookup::PipelineOwned(PathBuf::from("b.json"))
            ),
            "done"
        );
        assert_eq!(status(Some(run(5)), &CacheLookup::Missing), "restore_cache");
        assert_eq!(
            status(Some(run(5)), &CacheLookup::Invalid("bad".into())),
            "restore_cache"
        );
        assert_eq!(status(None, &hit), "restore_mlflow");
        assert_eq!(status(None, &CacheLookup::Missing), "to_run");
        let PlanStatus::ToRun(reason) =
            status_of(None, &CacheLookup::Invalid("bad json".into()), false, 0)
        else {
            panic!("an invalid cache without a run is measured");
        };
        assert!(reason.contains("bad json"), "{reason}");
    }

    #[test]
    fn force_counts_only_runs_of_this_invocation() {
        let hit = CacheLookup::Hit(entry());
        assert_eq!(status_of(Some(run(99)), &hit, true, 100).label(), "to_run");
        assert_eq!(status_of(Some(run(100)), &hit, true, 100).label(), "done");
        assert_eq!(status_of(None, &hit, true, 100).label(), "to_run");
        assert!(Outcome::RestoredCache.is_restored() && Outcome::RestoredMlflow.is_restored());
        assert!(!Outcome::Benchmarked.is_restored());
    }

    fn settings() -> BenchmarkSettings {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("benchmark.yaml"),
            "run:\n  mode: reuse_if_exists\nbenchmarking:\n  batch_sizes: [1]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("resume.yaml"), "name: d\n").unwrap();
        std::fs::write(
            dir.path().join("hpo.yaml"),
            "objective: {metric: macro-f1}\n",
        )
        .unwrap();
        BenchmarkSettings::load(
            dir.path(),
            &dir.path().join("resume.yaml"),
            &dir.path().join("hpo.yaml"),
            false,
        )
        .unwrap()
    }

    fn champion(data_fingerprint: Option<&str>) -> Champion {
        Champion {
            run_id: "run-1".into(),
            trial_run_id: "trial-1".into(),
            refit_run_id: None,
            refit_matched_by: None,
            sweep_run_id: None,
            trial_key_hash: Some("t".repeat(64)),
            study_key_hash: "s".repeat(64),
            metric: 0.5,
            stable_score: 0.5,
            schema_version: "2.0".into(),
            counted_trials: 1,
            data_fingerprint: data_fingerprint.map(str::to_string),
            eval_fingerprint: None,
            checkpoint: CheckpointLocation {
                run_id: "run-1".into(),
                artifact_uri: String::new(),
                checkpoint_path_tag: None,
                local: None,
            },
        }
    }

    #[test]
    fn a_target_takes_the_champions_fingerprints_else_the_configs() {
        let settings = settings();
        let tagged = BenchmarkTarget::from_champion(
            " bert-base-cased",
            champion(Some("d".repeat(64).as_str())),
            &settings,
        );
        assert_eq!(tagged.data_fingerprint, "d".repeat(64));
        assert_eq!(tagged.eval_fingerprint, settings.default_eval_fingerprint);
        assert_eq!(
            tagged.key,
            podium_keys::benchmark_key(
                "run-1",
                &"d".repeat(64),
                &settings.default_eval_fingerprint,
                &settings.config_hash
            )
        );
        // A blank tag is no fingerprint.
        let blank =
            BenchmarkTarget::from_champion("bert-base-cased", champion(Some(" ")), &settings);
        assert_eq!(blank.data_fingerprint, settings.default_data_fingerprint);
        assert_ne!(blank.key, tagged.key);
        assert_eq!(blank.model, tagged.model);
        let location = blank.location();
        assert_eq!(location.study_key_hash, "s".repeat(64));
        assert_eq!(location.trial_key_hash, Some("t".repeat(64)));
    }
}
