//! Champion selection, refit resolution, best-trial retrieval and composite ranking.
//!
//! ```
//! use std::collections::BTreeMap;
//! use podium_champion::{select_champion, SelectionConfig};
//! use podium_fixtures::MemoryStore; // any TrackingStore: REST, SQLite, or this test double
//! use podium_keys::TagRegistry;
//! use podium_mlflow::{MetricPoint, RunStatus, TrackingStore};
//! use podium_variants::{Environment, OutputLayout};
//!
//! // Runs tagged as the pipeline tags them: trials are children of their sweep (stage `hpo`,
//! // `code.model`, no schema tag = "2.0"); the refit shares the champion's trial key hash.
//! let store = MemoryStore::new();
//! let experiment = store.experiment("podium-ner-hpo-distilbert-base-uncased");
//! let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
//!     pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
//! };
//! let sweep = store.create_run(&experiment, "sweep", 900, &tags(&[
//!     ("code.stage", "hpo"), ("code.model", "distilbert-base-uncased"),
//!     ("code.study_key_hash", "s1"), ("code.study.key_schema_version", "2.0"),
//!     ("code.artifact.available", "true"),
//! ]))?;
//! let mut trial_ids = Vec::new();
//! for (i, f1) in [0.81, 0.84, 0.79].into_iter().enumerate() {
//!     let trial_key = format!("t{i}");
//!     let run = store.create_run(&experiment, "trial", 1_000 + i as i64, &tags(&[
//!         ("code.stage", "hpo"), ("code.model", "distilbert"), ("code.study_key_hash", "s1"),
//!         ("code.trial_key_hash", &trial_key), ("mlflow.parentRunId", &sweep.run_id),
//!     ]))?;
//!     store.log_batch(&run.run_id, &[MetricPoint { key: "macro-f1", value: f1, timestamp: 0, step: 0 }], &[], &[])?;
//!     store.update_run(&run.run_id, RunStatus::Finished, Some(2_000))?;
//!     trial_ids.push(run.run_id);
//! }
//! let refit = store.create_run(&experiment, "refit", 3_000, &tags(&[
//!     ("code.stage", "hpo_refit"), ("code.model", "distilbert"), ("code.study_key_hash", "s1"),
//!     ("code.trial_key_hash", "t1"), ("code.refit.of_trial_run_id", &trial_ids[1]),
//!     ("mlflow.parentRunId", &sweep.run_id), ("code.artifact.available", "true"),
//! ]))?;
//! store.update_run(&refit.run_id, RunStatus::Finished, Some(4_000))?;
//!
//! let root = tempfile::tempdir()?;
//! let report = select_champion(
//!     "distilbert-base-uncased", &store, "podium-ner-hpo-distilbert-base-uncased",
//!     &SelectionConfig::default(), &TagRegistry::defaults(),
//!     &OutputLayout::new(root.path()), &Environment::Local,
//! )?;
//! assert_eq!(report.champion.trial_run_id, trial_ids[1]);
//! assert_eq!(report.champion.run_id, refit.run_id); // the refit's checkpoint is used
//! assert_eq!(report.champion.stable_score, 0.81);   // median of the best 3
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod best_trial;
pub mod checkpoint;
pub mod config;
pub mod error;
pub mod optuna_study;
pub mod ranking;
pub mod selection;
pub mod verify;

pub use best_trial::{
    BestTrial, BestTrials, BestTrialsReport, RetrievalContext, SelectionScope, StudyKeyedBy,
    TrialSource, retrieve_best_trials,
};
pub use config::SelectionConfig;
pub use error::ChampionError;
pub use ranking::{BenchmarkSample, LatencyAggregation, Ranking, RankingInput, rank_champions};
pub use selection::{ChampionReport, SelectionResults, Selector, select_champion};
pub use verify::{HashProblem, HashReport, verify_hashes};
