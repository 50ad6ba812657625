//! Best-trial retrieval with source fallbacks: per backbone, the best trial from the
//! first source that has one — MLflow, then the Optuna `study.db` files in the study folders, then
//! `trial_*/metrics.json` on disk — saying which source answered and warning when MLflow and the
//! study disagree.
//!
//! `per_variant` gives one answer per **study** (a variant is a study): MLflow trials by their
//! `code.study_key_hash` — the pipeline's `study-{s8}` folder — and the Optuna study name their
//! sweep logged (its `study_name` param); study files by folder and Optuna study name (one
//! `study.db` may hold several studies); trial metrics by folder. The `code.variant` tag is only a
//! label (the pipeline tags every sweep of a backbone `1`), except for runs with no study key
//! hash, which the plans' legacy `{base}_vN` layout identified by it. Each answer says what keyed
//! it ([`StudyKeyedBy`]), and MLflow's best is compared with the best of the same study's
//! `study.db` only.
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
    Environment, ExperimentConfig, OutputLayout, PIPELINE_STUDY_PREFIX, Process, StudyDir,
    backbone_short_name, parse_variant, pipeline_study_folder,
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
use study::{folder_name, select_studies, select_trials, study_candidates};
pub use study::{study_folders, study_trials_of_file};

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

/// Whether to return one best trial per backbone or one per HPO variant (study).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectionScope {
    /// The best trial across every study (default).
    #[default]
    Overall,
    /// The best trial of each study (see [`StudyKeyedBy`]).
    PerVariant,
}

/// What identifies the study a best trial belongs to: the key of a `per_variant` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StudyKeyedBy {
    /// An MLflow trial's study key hash (`code.study_key_hash`: the pipeline's `study-{s8}`
    /// folder), with the Optuna study name its sweep logged (`study_name` param) when it did.
    StudyKeyHash,
    /// A study folder (`study-{s8}`, or a legacy `{base}_vN`), with the Optuna study name inside
    /// its `study.db` (none for trial metrics).
    StudyFolder,
    /// An MLflow trial without a study key hash: its `code.variant` tag (the plans' legacy
    /// layout named study folders by it).
    VariantTag,
    /// An MLflow trial with neither.
    Untagged,
}

impl StudyKeyedBy {
    /// `study_key_hash`, `study_folder`, `variant_tag` or `untagged`.
    pub fn as_str(self) -> &'static str {
        match self {
            StudyKeyedBy::StudyKeyHash => "study_key_hash",
            StudyKeyedBy::StudyFolder => "study_folder",
            StudyKeyedBy::VariantTag => "variant_tag",
            StudyKeyedBy::Untagged => "untagged",
        }
    }

    /// One line saying how the studies of this kind are told apart.
    pub fn describe(self) -> &'static str {
        match self {
            StudyKeyedBy::StudyKeyHash => {
                "MLflow trials by study key hash (study-{s8}) and, where their sweep logged one, the Optuna study name"
            }
            StudyKeyedBy::StudyFolder => {
                "study folders, and the Optuna studies inside each study.db"
            }
            StudyKeyedBy::VariantTag => {
                "MLflow trials without a study key hash by their variant tag (the legacy layout)"
            }
            StudyKeyedBy::Untagged => "MLflow trials with neither a study key hash nor a variant",
        }
    }
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
    /// The study it belongs to, as a label: `study-{s8}` or the study folder, then
    /// `/{study name}` when the Optuna study name is known and differs from the folder; for
    /// MLflow trials without a study key hash, `code.variant={tag}` (or `untagged`). The key of a
    /// `per_variant` answer.
    pub study: String,
    /// What identifies that study.
    pub keyed_by: StudyKeyedBy,
    /// The study key hash, when the source is MLflow and the run carries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_key_hash: Option<String>,
    /// The run's `code.variant` tag (MLflow), a label only: the pipeline tags every sweep of a
    /// backbone `1`.
    pub variant: Option<String>,
    /// The MLflow run, when the source is MLflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The Optuna trial number, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_number: Option<i64>,
    /// The Optuna study name: of the study in `study.db`, or the one an MLflow trial's sweep
    /// logged (its `study_name` param).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_name: Option<String>,
    /// The study folder, when the source is a study or disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_folder: Option<PathBuf>,
}

impl BestTrial {
    /// The study this trial belongs to (what a `per_variant` answer is keyed by), before it is
    /// labelled.
    pub(super) fn study_ref(&self) -> StudyRef {
        let id = match self.keyed_by {
            StudyKeyedBy::StudyKeyHash => self.study_key_hash.clone(),
            StudyKeyedBy::StudyFolder => self.study_folder.as_deref().map(folder_name),
            StudyKeyedBy::VariantTag => self.variant.clone(),
            StudyKeyedBy::Untagged => None,
        };
        StudyRef {
            keyed_by: self.keyed_by,
            id: id.unwrap_or_default(),
            name: self.study_name.clone(),
        }
    }
}

/// A study's identity within one source: what keys it, the full study key hash / folder name /
/// variant tag, and the Optuna study name when known.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct StudyRef {
    keyed_by: StudyKeyedBy,
    id: String,
    name: Option<String>,
}

/// Labels each trial's study ([`BestTrial::study`]). `study-{s8}` names a study key hash unless
/// two hashes of the same source share those 8 characters; then the full hash does.
fn label_studies<'a>(trials: impl IntoIterator<Item = &'a mut BestTrial>, tags: &TagRegistry) {
    let trials: Vec<&mut BestTrial> = trials.into_iter().collect();
    let mut hashes_by_prefix: BTreeMap<String, std::collections::BTreeSet<String>> =
        BTreeMap::new();
    for trial in &trials {
        if let (StudyKeyedBy::StudyKeyHash, Some(hash)) = (trial.keyed_by, &trial.study_key_hash) {
            hashes_by_prefix
                .entry(pipeline_study_folder(hash))
                .or_default()
                .insert(hash.clone());
        }
    }
    for trial in trials {
        let study = trial.study_ref();
        let base = match study.keyed_by {
            StudyKeyedBy::StudyKeyHash => {
                let folder = pipeline_study_folder(&study.id);
                let shared = hashes_by_prefix
                    .get(&folder)
                    .is_some_and(|hashes| hashes.len() > 1);
                if shared {
                    format!("{PIPELINE_STUDY_PREFIX}{}", study.id)
                } else {
                    folder
                }
            }
            StudyKeyedBy::StudyFolder => study.id.clone(),
            StudyKeyedBy::VariantTag => format!("{}={}", tags.get(Tag::Variant), study.id),
            StudyKeyedBy::Untagged => UNTAGGED_VARIANT.to_string(),
        };
        trial.study = match &study.name {
            Some(name) if *name != base => format!("{base}/{name}"),
            _ => base,
        };
    }
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
            Ok((runs, sweep_names, outcome)) => {
                attempts.push(SourceAttempt {
                    source: TrialSource::Mlflow,
                    outcome,
                });
                (!runs.is_empty()).then_some((runs, sweep_names))
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
                "{} study(ies) with a COMPLETE trial in {} study folder(s)",
                study.len(),
                folders.len()
            )
        },
    });

    if let Some((runs, sweep_names)) = mlflow {
        let answer = select_runs(&runs, &sweep_names, context);
        if !study.is_empty() {
            let per_study = select_studies(
                &study,
                context.objective.direction,
                SelectionScope::PerVariant,
                context.tags,
            );
            for message in disagreements(&answer, &per_study) {
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
        let answer = select_studies(
            &study,
            context.objective.direction,
            context.scope,
            context.tags,
        );
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
        let answer = select_trials(
            disk,
            context.objective.direction,
            context.scope,
            context.tags,
        );
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

/// MLflow's best trial of each answer compared with the best trial of the same study's
/// `study.db` (`per_study`: one per folder and Optuna study). A trial whose study matches no
/// study file, or several (MLflow does not say which study of a shared `study.db`), is not
/// compared.
fn disagreements(mlflow: &Answer, per_study: &Answer) -> Vec<String> {
    let mut messages = Vec::new();
    for (key, m) in mlflow {
        let matching: Vec<&BestTrial> = per_study.values().filter(|s| same_study(m, s)).collect();
        let s = match matching.as_slice() {
            [] => continue,
            [one] => *one,
            several => {
                tracing::info!(
                    "MLflow's best trial of {} is not compared with a study file: {} studies match it",
                    m.study,
                    several.len()
                );
                continue;
            }
        };
        if let Some(reason) = trial_difference(m, s) {
            let scope_label = if key.is_empty() {
                String::new()
            } else {
                format!(" of study {}", m.study)
            };
            messages.push(format!(
                "MLflow and the Optuna study disagree on the best trial{scope_label}: MLflow run {} = {} vs study {:?} trial {} in {} = {} ({reason}); using MLflow",
                m.run_id.as_deref().unwrap_or("?"),
                m.value,
                s.study_name.as_deref().unwrap_or("?"),
                s.trial_number.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                s.study,
                s.value,
            ));
        }
    }
    messages
}

/// Whether an MLflow trial and a study file's trial belong to the same study: a pipeline
/// `study-{s8}` folder matches the study key hash; a legacy `{base}_vN` folder matches the
/// `code.variant` tag ([`variant_matches`]); and the Optuna study names agree where both are
/// known.
fn same_study(mlflow: &BestTrial, study: &BestTrial) -> bool {
    let Some(folder) = study.study_folder.as_deref().map(folder_name) else {
        return false;
    };
    if let (Some(a), Some(b)) = (&mlflow.study_name, &study.study_name)
        && a != b
    {
        return false;
    }
    if folder.starts_with(PIPELINE_STUDY_PREFIX) {
        mlflow
            .study_key_hash
            .as_deref()
            .is_some_and(|hash| folder == pipeline_study_folder(hash))
    } else {
        mlflow
            .variant
            .as_deref()
            .is_some_and(|variant| variant_matches(variant, &folder))
    }
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
    if let (Some(a), Some(b)) = (mlflow.trial_number, study.trial_number)
        && a != b
    {
        return Some(format!("trial numbers differ: {a} vs {b}"));
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

    fn trial(keyed_by: StudyKeyedBy) -> BestTrial {
        BestTrial {
            source: TrialSource::Mlflow,
            value: 0.5,
            params: BTreeMap::new(),
            study: String::new(),
            keyed_by,
            study_key_hash: None,
            variant: None,
            run_id: None,
            trial_number: None,
            study_name: None,
            study_folder: None,
        }
    }

    fn mlflow_trial(hash: Option<&str>, variant: Option<&str>, name: Option<&str>) -> BestTrial {
        let keyed_by = match (hash, variant) {
            (Some(_), _) => StudyKeyedBy::StudyKeyHash,
            (None, Some(_)) => StudyKeyedBy::VariantTag,
            (None, None) => StudyKeyedBy::Untagged,
        };
        BestTrial {
            study_key_hash: hash.map(str::to_string),
            variant: variant.map(str::to_string),
            study_name: name.map(str::to_string),
            ..trial(keyed_by)
        }
    }

    fn folder_trial(folder: &str, name: Option<&str>) -> BestTrial {
        BestTrial {
            source: TrialSource::Study,
            study_folder: Some(PathBuf::from("/outputs/hpo/local/distilbert").join(folder)),
            study_name: name.map(str::to_string),
            ..trial(StudyKeyedBy::StudyFolder)
        }
    }

    #[test]
    fn studies_are_labelled_by_folder_and_name() {
        let a = "abcdef01".to_string() + &"1".repeat(56);
        let b = "abcdef01".to_string() + &"2".repeat(56);
        let c = "12345678".to_string() + &"3".repeat(56);
        let mut trials = vec![
            mlflow_trial(Some(&a), Some("1"), Some("hpo_x_v3")),
            mlflow_trial(Some(&b), Some("1"), None),
            mlflow_trial(Some(&c), Some("1"), Some("hpo_x_v4")),
            mlflow_trial(None, Some("2"), None),
            mlflow_trial(None, None, None),
            folder_trial("study-12345678", Some("hpo_x_v4")),
            folder_trial("hpo_x_v2", Some("hpo_x_v2")),
            folder_trial("hpo_x_v2", Some("other")),
            folder_trial("study-12345678", None),
        ];
        label_studies(trials.iter_mut(), &TagRegistry::defaults());
        let labels: Vec<&str> = trials.iter().map(|t| t.study.as_str()).collect();
        assert_eq!(
            labels,
            [
                // Two hashes share their first 8 characters: the full hash tells them apart.
                format!("study-{a}/hpo_x_v3").as_str(),
                format!("study-{b}").as_str(),
                "study-12345678/hpo_x_v4",
                "code.variant=2",
                "untagged",
                "study-12345678/hpo_x_v4",
                "hpo_x_v2",
                "hpo_x_v2/other",
                "study-12345678",
            ]
        );
    }

    #[test]
    fn mlflow_trials_match_the_study_files_of_their_own_study() {
        let hash = "12345678".to_string() + &"0".repeat(56);
        let named = mlflow_trial(Some(&hash), Some("1"), Some("hpo_x_v4"));
        let unnamed = mlflow_trial(Some(&hash), Some("1"), None);
        assert!(same_study(
            &named,
            &folder_trial("study-12345678", Some("hpo_x_v4"))
        ));
        assert!(!same_study(
            &named,
            &folder_trial("study-12345678", Some("hpo_x_v3"))
        ));
        assert!(same_study(
            &unnamed,
            &folder_trial("study-12345678", Some("hpo_x_v3"))
        ));
        assert!(!same_study(
            &named,
            &folder_trial("study-87654321", Some("hpo_x_v4"))
        ));
        // The variant tag never names a pipeline folder: every sweep is variant 1 there.
        let legacy = mlflow_trial(None, Some("1"), None);
        assert!(!same_study(&legacy, &folder_trial("study-12345678", None)));
        assert!(same_study(&legacy, &folder_trial("hpo_x", Some("hpo_x"))));
        assert!(!same_study(
            &legacy,
            &folder_trial("hpo_x_v2", Some("hpo_x_v2"))
        ));
        assert!(same_study(&named, &folder_trial("hpo_x", None)));
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
