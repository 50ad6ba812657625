//! The commands that read the store without the selection rules: `podium best-trials`,
//! `podium verify-hashes`, `podium runs search`.

use std::collections::BTreeMap;

use podium_champion::best_trial::{
    BestTrials, BestTrialsReport as Retrieved, RetrievalContext, SelectionScope,
    retrieve_best_trials,
};
use podium_champion::{HashReport, verify_hashes};
use podium_mlflow::query::{experiment_by_name, search_all_raw};
use podium_mlflow::{Run, ViewType};
use serde::Serialize;

use crate::error::{ProjectError, Result};
use crate::project::{Project, ProjectOptions};

/// The best trial(s) of each backbone and which source answered, as
/// `podium best-trials --format json` prints it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BestTrialsReport {
    /// The answer per backbone (one trial, or one per variant).
    pub best_trials: BTreeMap<String, BestTrials>,
    /// Backbones no source could answer: one line naming every source and what it lacked.
    pub errors: BTreeMap<String, String>,
    /// Warnings per backbone (only backbones with some).
    pub warnings: BTreeMap<String, Vec<String>>,
}

impl From<&Retrieved> for BestTrialsReport {
    fn from(retrieved: &Retrieved) -> Self {
        let mut warnings = BTreeMap::new();
        for (backbone, found) in &retrieved.found {
            if !found.warnings.is_empty() {
                warnings.insert(backbone.clone(), found.warnings.clone());
            }
        }
        for (backbone, failed) in &retrieved.failed {
            if !failed.warnings.is_empty() {
                warnings.insert(backbone.clone(), failed.warnings.clone());
            }
        }
        BestTrialsReport {
            best_trials: retrieved
                .found
                .iter()
                .map(|(backbone, found)| (backbone.clone(), found.best.clone()))
                .collect(),
            errors: retrieved
                .failed
                .iter()
                .map(|(backbone, failed)| (backbone.clone(), failed.message.clone()))
                .collect(),
            warnings,
        }
    }
}

impl Project {
    /// The best trial(s) of each of `backbones` (empty: every backbone): MLflow when the
    /// project has a store, else the Optuna study files, else the trial metrics on disk.
    /// Fails only when no backbone is configured or requested and none can be discovered.
    pub fn best_trials(&self, backbones: &[String], scope: SelectionScope) -> Result<Retrieved> {
        let backbones = self.backbones(backbones)?;
        let context = RetrievalContext {
            store: self.store().map(AsRef::as_ref),
            experiment: &self.experiment,
            tags: &self.tags,
            objective: &self.selection.objective,
            scope,
            layout: &self.layout,
            environment: &self.environment,
        };
        Ok(retrieve_best_trials(&context, &backbones))
    }
}

/// Every run of an experiment matching an MLflow filter, as `podium runs search --format json`
/// prints it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunsReport {
    /// The runs (every page), MLflow's latest metric values.
    pub runs: Vec<RunRecord>,
}

/// One run of a [`RunsReport`].
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// The run id.
    pub run_id: String,
    /// The run's name (not in the JSON, whose fields are the pipeline's).
    #[serde(skip)]
    pub run_name: String,
    /// RUNNING, FINISHED, FAILED, KILLED or SCHEDULED.
    pub status: String,
    /// Start, ms since the epoch.
    pub start_time: Option<i64>,
    /// End, ms since the epoch.
    pub end_time: Option<i64>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Params.
    pub params: BTreeMap<String, String>,
    /// Latest metric values; non-finite ones spelled as MLflow spells them.
    #[serde(serialize_with = "podium_mlflow::model::metric_map::serialize")]
    pub metrics: BTreeMap<String, f64>,
}

impl From<Run> for RunRecord {
    fn from(run: Run) -> Self {
        RunRecord {
            run_id: run.id().to_string(),
            status: run.info.status.as_str().to_string(),
            start_time: run.info.start_time,
            end_time: run.info.end_time,
            run_name: run.info.run_name,
            tags: run.tags,
            params: run.params,
            metrics: run.metrics,
        }
    }
}

/// A metric value as MLflow spells it: `NaN`, `Infinity` and `-Infinity` for the non-finite
/// ones, Rust's shortest round-trip form otherwise.
pub fn metric_text(value: f64) -> String {
    podium_mlflow::model::MlflowFloat::non_finite_str(value)
        .map_or_else(|| value.to_string(), str::to_string)
}

impl ProjectOptions {
    /// Checks that the trial and refit runs of the HPO experiment `experiment` (only those
    /// of one sweep with `parent_run_id`) carry their sweep's v2 study_key_hash and schema
    /// version and that refits point at matching trials. Needs only `tags.yaml` and a store.
    pub fn verify_hashes(
        &self,
        experiment: &str,
        parent_run_id: Option<&str>,
    ) -> Result<HashReport> {
        let tags = self.tags()?;
        let opened = self.existing_store()?;
        Ok(verify_hashes(
            opened.store.as_ref(),
            &tags,
            experiment,
            parent_run_id,
        )?)
    }

    /// Every active run of the experiment named `experiment` matching the MLflow `filter`
    /// (every page). Needs no config, only a store.
    pub fn search_runs(&self, experiment: &str, filter: &str) -> Result<RunsReport> {
        let opened = self.existing_store()?;
        let store = opened.store.as_ref();
        let found = experiment_by_name(store, experiment).map_err(ProjectError::mlflow(
            format!("looking up experiment {experiment:?}"),
        ))?;
        let runs = search_all_raw(
            store,
            std::slice::from_ref(&found.experiment_id),
            filter,
            ViewType::ActiveOnly,
        )
        .map_err(ProjectError::mlflow(format!(
            "searching experiment {experiment:?} in {}",
            podium_mlflow::uri::redact_uri(&store.describe())
        )))?;
        tracing::info!("{} run(s) in {}", runs.len(), store.describe());
        Ok(RunsReport {
            runs: runs.into_iter().map(RunRecord::from).collect(),
        })
    }
}
