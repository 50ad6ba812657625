//! What can go wrong selecting a champion, retrieving best trials or verifying hashes; every
//! variant names the file, key, backbone or run.

use std::path::PathBuf;

use podium_mlflow::MlflowError;

use crate::selection::DropCounts;

/// Errors of champion selection, its config, the composite ranking, best-trial retrieval and
/// hash verification.
#[derive(Debug, thiserror::Error)]
pub enum ChampionError {
    /// A value in `best_model_selection.yaml` podium cannot use.
    #[error("{}: key `{key}`: {message}", .file.display())]
    Config {
        /// The file.
        file: PathBuf,
        /// The dotted key (`champion_selection.artifact_check_source`).
        key: String,
        /// What is wrong and what is valid.
        message: String,
    },
    /// A config file, study folder or `metrics.json` that cannot be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The backbone's HPO experiment does not exist in the store.
    #[error("{backbone}: HPO experiment `{experiment}` not found in {store}")]
    ExperimentNotFound {
        /// The backbone.
        backbone: String,
        /// The experiment name looked up.
        experiment: String,
        /// Where it was looked up.
        store: String,
    },
    /// A tracking-store query of a backbone's selection failed.
    #[error("{backbone}: {context}: {source}")]
    Mlflow {
        /// The backbone being selected.
        backbone: String,
        /// What was being read.
        context: String,
        /// The store's error (boxed: it is large).
        source: Box<MlflowError>,
    },
    /// No FINISHED trial run of the backbone exists under any of the stage queries.
    #[error(
        "{backbone}: no FINISHED trial runs in experiment `{experiment}` (looked for stage \
         hpo_trial, then hpo, each with backbone tag `{model}` and without)"
    )]
    NoCandidates {
        /// The backbone.
        backbone: String,
        /// The short backbone name the runs were filtered by.
        model: String,
        /// The experiment searched.
        experiment: String,
    },
    /// Candidates exist but no study group can compete; `reason` says why.
    #[error("{backbone}: no champion: {reason} (dropped runs: {dropped})")]
    NoEligibleGroup {
        /// The backbone.
        backbone: String,
        /// Why no group qualifies, in words a user can act on.
        reason: String,
        /// How many candidate runs were dropped, per reason.
        dropped: DropCounts,
    },
    /// The champion trial has no refit run.
    #[error(
        "{backbone}: champion trial run {trial_run_id} has no hpo_refit run (looked for stage \
         hpo_refit with trial_key_hash {trial_key_hash}, then {link_tag}={trial_run_id}); \
         refusing to fall back to the trial's own checkpoint"
    )]
    RefitMissing {
        /// The backbone.
        backbone: String,
        /// The champion trial's run id.
        trial_run_id: String,
        /// The link tag key searched.
        link_tag: String,
        /// The trial's trial key hash (`<none>` when the trial has none).
        trial_key_hash: String,
    },
    /// A tracking-store query of best-trial retrieval or hash verification failed.
    #[error("{context}: {source}")]
    MlflowQuery {
        /// What was being read (experiment, run id).
        context: String,
        /// The store's error (boxed: it is large).
        source: Box<MlflowError>,
    },
    /// An Optuna storage file that cannot be read as Optuna's RDB schema.
    #[error("Optuna storage {}: {message}", .path.display())]
    OptunaStorage {
        /// The `study.db` file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A `trial_*/metrics.json` that cannot be used.
    #[error("trial metrics {}: {message}", .path.display())]
    TrialMetrics {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}
