//! Best-trial retrieval with source fallbacks: per backbone, the best trial from the
//! first source that has one — MLflow, then the Optuna `study.db` files in the study folders, then
//! `trial_*/metrics.json` on disk — saying which source answered and warning when MLflow and the
//! study disagree.
//!
//! Values are compared the way Optuna compares them: `-inf < finite < +inf`, and NaN never counts.
//! Ties are broken deterministically: MLflow runs by earlier start time, then smaller run id; study
//! and disk trials by smaller trial number (Optuna's own rule), then study folder name.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::config::Objective;
use podium_keys::{Tag, TagRegistry};
pub use podium_mlflow::Direction;
use podium_mlflow::{Run, RunFields, TrackingStore, best_run};
use podium_variants::{
    Environment, ExperimentConfig, OutputLayout, Process, StudyDir, backbone_short_name,
    parse_variant,
};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::error::ChampionError;
use crate::optuna_study::{self, OptunaStudy};

mod disk;
mod mlflow;
mod study;

use disk::disk_candidates;
pub use disk::{TrialMetrics, trial_metrics};
use mlflow::{group_best, mlflow_candidates, select_runs};
pub use study::{best_of_study_file, study_folders};
use study::{folder_name, select_studies, select_trials, study_candidates};

/// The variant label of MLflow runs without a variant tag.
pub const UNTAGGED_VARIANT: &str = "untagged";

/// `Less` when `a` is better than `b` in `direction` (for sorting best first). NaN is worse than
/// anything; ±inf order naturally, as in Optuna.
pub fn compare_values(direction: Direction, a: f64, b: f64) -> Ordering {
    if is_better(direction, a, b) {
        Ordering::Less
    } else if is_better(direction, b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// True when `candidate` is strictly better than `incumbent` (NaN is never better, and anything
/// beats NaN).
pub fn is_better(direction: Direction, candidate: f64, incumbent: f64) -> bool {
    if candidate.is_nan() {
        return false;
    }
    if incumbent.is_nan() {
        return true;
    }
    match direction {
        Direction::Maximize => candidate > incumbent,
        Direction::Minimize => candidate < incumbent,
    }
}

/// Whether to return one best trial per backbone or one per HPO variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionScope {
    /// The best trial across every variant (default).
    #[default]
    Overall,
    /// The best trial of each variant (`code.variant` tag, or study folder).
    PerVariant,
}

/// Which source answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialSource {
    /// FINISHED `hpo_trial` runs in the backbone's HPO experiment.
    Mlflow,
    /// Optuna `study.db` files in the study folders.
    Study,
    /// `trial_*/metrics.json` files in the study folders.
    Disk,
}

impl TrialSource {
    /// `mlflow`, `study` or `disk`.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialSource::Mlflow => "mlflow",
            TrialSource::Study => "study",
            TrialSource::Disk => "disk",
        }
    }
}

/// One best trial.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BestTrial {
    /// The source it came from.
    pub source: TrialSource,
    /// Its objective value (non-finite values serialize as `"Infinity"`/`"-Infinity"`).
    #[serde(serialize_with = "serialize_value")]
    pub value: f64,
    /// Hyperparameters: Optuna's external values from a study, MLflow's strings from a run, empty
    /// from disk (metrics files hold no parameters).
    pub params: BTreeMap<String, Value>,
    /// The variant: the run's `code.variant` tag, or the study folder name.
    pub variant: Option<String>,
    /// The MLflow run, when the source is MLflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The Optuna trial number, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_number: Option<i64>,
    /// The Optuna study name, when the source is a study.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_name: Option<String>,
    /// The study folder, when the source is a study or disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_folder: Option<PathBuf>,
}

fn serialize_value<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    podium_mlflow::model::MlflowFloat(*value).serialize(serializer)
}

/// The answer for one backbone: one trial (overall) or one per variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BestTrials {
    /// [`SelectionScope::Overall`].
    Overall(BestTrial),
    /// [`SelectionScope::PerVariant`], by variant label.
    PerVariant(BTreeMap<String, BestTrial>),
}

impl BestTrials {
    /// Every trial of the answer, with its variant label (`None` for overall).
    pub fn trials(&self) -> Vec<(Option<&str>, &BestTrial)> {
        match self {
            BestTrials::Overall(trial) => vec![(None, trial)],
            BestTrials::PerVariant(map) => map
                .iter()
                .map(|(variant, trial)| (Some(variant.as_str()), trial))
                .collect(),
        }
    }
}

/// What one source said for one backbone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceAttempt {
    /// The source.
    pub source: TrialSource,
    /// What it found (or why it could not answer).
    pub outcome: String,
}

/// The retrieval result of one backbone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackboneBestTrials {
    /// The backbone as requested.
    pub backbone: String,
    /// The source that answered.
    pub source: TrialSource,
    /// The best trial(s).
    pub best: BestTrials,
    /// Warnings (unreachable store, disagreeing sources, unreadable files).
    pub warnings: Vec<String>,
    /// What each consulted source said, in order.
    pub attempts: Vec<SourceAttempt>,
}

/// The answer for a backbone without any best trial: why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackboneFailure {
    /// One line naming every source and what it lacked.
    pub message: String,
    /// Warnings met on the way.
    pub warnings: Vec<String>,
    /// What each source said.
    pub attempts: Vec<SourceAttempt>,
}

/// The result for every requested backbone.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BestTrialsReport {
    /// Backbones with an answer.
    pub found: BTreeMap<String, BackboneBestTrials>,
    /// Backbones no source could answer.
    pub failed: BTreeMap<String, BackboneFailure>,
}

/// Where and how to look.
#[derive(Debug, Clone, Copy)]
pub struct RetrievalContext<'a> {
    /// The tracking store; `None` skips MLflow (e.g. no database exists yet).
    pub store: Option<&'a dyn TrackingStore>,
    /// Names the backbones' HPO experiments.
    pub experiment: &'a ExperimentConfig,
    /// Tag keys.
    pub tags: &'a TagRegistry,
    /// Metric and direction (the study's own direction wins for study files).
    pub objective: &'a Objective,
    /// Overall or per variant.
    pub scope: SelectionScope,
    /// The output layout under `--root`; study folders are read from
    /// `{root}/outputs/hpo/{environment}/{model}/`.
    pub layout: &'a OutputLayout,
    /// The `{environment}` folder.
    pub environment: &'a Environment,
}

/// Retrieves the best trial(s) of each backbone (see the module docs). The answer never depends
/// on the order a store or directory listing returns things.
pub fn retrieve_best_trials(
    context: &RetrievalContext<'_>,
    backbones: &[String],
) -> BestTrialsReport {
    let mut report = BestTrialsReport::default();
    for backbone in backbones {
        match retrieve_backbone(context, backbone) {
            Ok(found) => {
                report.found.insert(backbone.clone(), found);
            }
            Err(failure) => {
                tracing::error!(backbone = %backbone, "{}", failure.message);
                report.failed.insert(backbone.clone(), failure);
            }
        }
    }
    report
}

/// One source's candidates: the best trial per variant label (overall uses one label).
pub(super) type Answer = BTreeMap<String, BestTrial>;

pub(super) const OVERALL_KEY: &str = "";

fn retrieve_backbone(
    context: &RetrievalContext<'_>,
    backbone: &str,
) -> Result<BackboneBestTrials, BackboneFailure> {
    let mut warnings = Vec::new();
    let mut attempts = Vec::new();
    let warn = |warnings: &mut Vec<String>, message: String| {
        tracing::warn!(backbone = %backbone, "{message}");
        warnings.push(message);
    };

    let mlflow = match context.store {
        None => {
            attempts.push(SourceAttempt {
                source: TrialSource::Mlflow,
                outcome: "no tracking store".into(),
            });
            None
        }
        Some(store) => match mlflow_candidates(context, store, backbone) {
            Ok((runs, outcome)) => {
                attempts.push(SourceAttempt {
                    source: TrialSource::Mlflow,
                    outcome,
                });
                Some(runs).filter(|runs: &Vec<Run>| !runs.is_empty())
            }
            Err(err) => {
                warn(
                    &mut warnings,
                    format!("MLflow unavailable ({err}); falling back to study files"),
                );
                attempts.push(SourceAttempt {
                    source: TrialSource::Mlflow,
                    outcome: format!("error: {err}"),
                });
                None
            }
        },
    };

    let model_dir = context
        .layout
        .process_dir(Process::Hpo, context.environment, backbone)
        .map_err(|err| err.to_string());
    let folders = match model_dir
        .as_deref()
        .map_err(Clone::clone)
        .and_then(|dir| study_folders(dir).map_err(|err| err.to_string()))
    {
        Ok(folders) => folders,
        Err(err) => {
            warn(&mut warnings, err);
            Vec::new()
        }
    };
    let model_dir_label = model_dir
        .as_ref()
        .map(|dir| dir.display().to_string())
        .unwrap_or_else(Clone::clone);

    let study = study_candidates(&folders, context.objective, &mut |message| {
        warn(&mut warnings, message)
    });
    attempts.push(SourceAttempt {
        source: TrialSource::Study,
        outcome: if folders.is_empty() {
            format!("no study folders under {model_dir_label}")
        } else {
            format!(
                "{} study with a COMPLETE trial in {} study folder(s)",
                study.len(),
                folders.len()
            )
        },
    });

    if let Some(runs) = mlflow {
        let answer = select_runs(&runs, context);
        if !study.is_empty() {
            let study_answer = select_studies(&study, context.objective.direction, context.scope);
            for message in disagreements(&answer, &study_answer, context.scope) {
                warn(&mut warnings, message);
            }
        }
        return Ok(finish(
            backbone,
            TrialSource::Mlflow,
            answer,
            context.scope,
            warnings,
            attempts,
        ));
    }
    if !study.is_empty() {
        let answer = select_studies(&study, context.objective.direction, context.scope);
        return Ok(finish(
            backbone,
            TrialSource::Study,
            answer,
            context.scope,
            warnings,
            attempts,
        ));
    }

    let disk = disk_candidates(&folders, context.objective, &mut |message| {
        warn(&mut warnings, message)
    });
    attempts.push(SourceAttempt {
        source: TrialSource::Disk,
        outcome: format!(
            "{} trial metrics file(s) with a `{}` value",
            disk.len(),
            context.objective.metric
        ),
    });
    if !disk.is_empty() {
        let answer = select_trials(disk, context.objective.direction, context.scope);
        return Ok(finish(
            backbone,
            TrialSource::Disk,
            answer,
            context.scope,
            warnings,
            attempts,
        ));
    }

    let message = format!(
        "no best trial for {backbone}: {}",
        attempts
            .iter()
            .map(|attempt| format!("{}: {}", attempt.source.as_str(), attempt.outcome))
            .collect::<Vec<_>>()
            .join("; ")
    );
    Err(BackboneFailure {
        message,
        warnings,
        attempts,
    })
}

fn finish(
    backbone: &str,
    source: TrialSource,
    mut answer: Answer,
    scope: SelectionScope,
    warnings: Vec<String>,
    attempts: Vec<SourceAttempt>,
) -> BackboneBestTrials {
    let best = match scope {
        SelectionScope::PerVariant => BestTrials::PerVariant(answer),
        SelectionScope::Overall => match answer.remove(OVERALL_KEY) {
            Some(trial) => BestTrials::Overall(trial),
            // select_* always fill the overall key from a non-empty candidate list.
            None => BestTrials::PerVariant(answer),
        },
    };
    BackboneBestTrials {
        backbone: backbone.to_string(),
        source,
        best,
        warnings,
        attempts,
    }
}

// ---------------------------------------------------------------------------------------------
// Disagreement between MLflow and the study

fn disagreements(mlflow: &Answer, study: &Answer, scope: SelectionScope) -> Vec<String> {
    let mut messages = Vec::new();
    let pairs: Vec<(&str, &BestTrial, &BestTrial)> = match scope {
        SelectionScope::Overall => match (mlflow.get(OVERALL_KEY), study.get(OVERALL_KEY)) {
            (Some(m), Some(s)) => vec![(OVERALL_KEY, m, s)],
            _ => Vec::new(),
        },
        SelectionScope::PerVariant => mlflow
            .iter()
            .filter_map(|(variant, m)| {
                study
                    .iter()
                    .find(|(folder, _)| variant_matches(variant, folder))
                    .map(|(_, s)| (variant.as_str(), m, s))
            })
            .collect(),
    };
    for (variant, m, s) in pairs {
        if let Some(reason) = trial_difference(m, s) {
            let scope_label = if variant.is_empty() {
                String::new()
            } else {
                format!(" (variant {variant})")
            };
            messages.push(format!(
                "MLflow and the Optuna study disagree on the best trial{scope_label}: MLflow run {} = {} vs study {:?} trial {} = {} ({reason}); using MLflow",
                m.run_id.as_deref().unwrap_or("?"),
                m.value,
                s.study_name.as_deref().unwrap_or("?"),
                s.trial_number.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                s.value,
            ));
        }
    }
    messages
}

/// Whether an MLflow variant label names a study folder: the same text, the folder's `_v{N}`
/// suffix, or `1` for a folder without a suffix (variant 1 is the bare base name).
pub fn variant_matches(label: &str, folder: &str) -> bool {
    if label == folder {
        return true;
    }
    let Ok(wanted) = label.parse::<u32>() else {
        return false;
    };
    let base = folder.rsplit_once("_v").map_or(folder, |(base, _)| base);
    parse_variant(base, folder).or_else(|| parse_variant(folder, folder)) == Some(wanted)
}

/// Why two best trials are not the same trial, if they are not: the value, or a parameter both
/// hold with different values (MLflow logs params as Python `str()` of the value).
fn trial_difference(mlflow: &BestTrial, study: &BestTrial) -> Option<String> {
    if mlflow.value != study.value {
        return Some("values differ".into());
    }
    for (name, study_value) in &study.params {
        let Some(Value::String(logged)) = mlflow.params.get(name) else {
            continue;
        };
        if !python_str_matches(logged, study_value) {
            return Some(format!("param {name}: {logged} vs {study_value}"));
        }
    }
    None
}

/// Whether `logged` is what Python's `str()` made of `value` (numbers compared by value, so
/// `1e-05` and `0.00001` match).
fn python_str_matches(logged: &str, value: &Value) -> bool {
    match value {
        Value::String(text) => text == logged,
        Value::Null => logged == "None",
        Value::Bool(true) => logged == "True",
        Value::Bool(false) => logged == "False",
        Value::Number(number) => match (number.as_f64(), logged.trim().parse::<f64>()) {
            (Some(a), Ok(b)) => a == b,
            _ => false,
        },
        other => *other == Value::String(logged.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_orders_with_nan_last() {
        assert!(is_better(Direction::Maximize, 1.0, 0.5));
        assert!(is_better(Direction::Minimize, 0.5, 1.0));
        assert!(is_better(Direction::Maximize, f64::NEG_INFINITY, f64::NAN));
        assert!(!is_better(Direction::Minimize, f64::NAN, 1.0));
        assert_eq!(
            compare_values(Direction::Minimize, f64::NEG_INFINITY, 0.0),
            Ordering::Less
        );
    }

    #[test]
    fn variant_labels_match_folders() {
        assert!(variant_matches("2", "hpo_distilbert_v2"));
        assert!(variant_matches("1", "hpo_distilbert"));
        assert!(variant_matches("hpo_x", "hpo_x"));
        assert!(!variant_matches("3", "hpo_distilbert_v2"));
        assert!(!variant_matches("2", "hpo_distilbert"));
    }

    #[test]
    fn python_str_of_params() {
        assert!(python_str_matches("1e-05", &Value::from(0.00001)));
        assert!(python_str_matches("16", &Value::from(16)));
        assert!(python_str_matches("True", &Value::Bool(true)));
        assert!(python_str_matches("None", &Value::Null));
        assert!(!python_str_matches("32", &Value::from(16)));
    }
}
