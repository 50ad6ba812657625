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
type Answer = BTreeMap<String, BestTrial>;

const OVERALL_KEY: &str = "";

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
// MLflow

fn mlflow_candidates(
    context: &RetrievalContext<'_>,
    store: &dyn TrackingStore,
    backbone: &str,
) -> Result<(Vec<Run>, String), ChampionError> {
    let experiment_name = context.experiment.hpo_experiment_name(backbone);
    let experiment = store
        .get_experiment_by_name(&experiment_name)
        .map_err(|source| ChampionError::MlflowQuery {
            context: format!("experiment {experiment_name:?} in {}", store.describe()),
            source: Box::new(source),
        })?;
    let Some(experiment) = experiment.filter(|e| e.lifecycle_stage == "active") else {
        return Ok((
            Vec::new(),
            format!(
                "no active experiment {experiment_name:?} in {}",
                store.describe()
            ),
        ));
    };
    // The same candidates as champion selection: the stage fallback order, trials only (runs
    // with a parent sweep).
    let (runs, _) = crate::selection::search_trial_candidates(
        store,
        std::slice::from_ref(&experiment.experiment_id),
        context.tags,
        backbone_short_name(backbone),
        &RunFields::all(),
    )
    .map_err(|source| ChampionError::MlflowQuery {
        context: format!("runs of experiment {experiment_name:?}"),
        source: Box::new(source),
    })?;
    let runs: Vec<Run> = runs
        .into_iter()
        .filter(|run| run.tag(crate::selection::PARENT_RUN_ID_TAG).is_some())
        .collect();
    let total = runs.len();
    let metric = &context.objective.metric;
    let candidates: Vec<Run> = runs
        .into_iter()
        .filter(|run| run.metric(metric).is_some_and(|value| !value.is_nan()))
        .collect();
    let outcome = format!(
        "{} FINISHED trial run(s) in {experiment_name:?}, {} with a `{}` value",
        total,
        candidates.len(),
        context.objective.metric
    );
    Ok((candidates, outcome))
}

fn run_trial(run: &Run, context: &RetrievalContext<'_>) -> Option<BestTrial> {
    Some(BestTrial {
        source: TrialSource::Mlflow,
        value: run.metric(&context.objective.metric)?,
        params: run
            .params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        variant: run.tag(context.tags.get(Tag::Variant)).map(str::to_string),
        run_id: Some(run.id().to_string()),
        trial_number: None,
        study_name: None,
        study_folder: None,
    })
}

/// The best run per variant (or overall), by podium_mlflow's deterministic [`best_run`].
fn select_runs(runs: &[Run], context: &RetrievalContext<'_>) -> Answer {
    let mut groups: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for run in runs {
        let key = match context.scope {
            SelectionScope::Overall => OVERALL_KEY.to_string(),
            SelectionScope::PerVariant => run
                .tag(context.tags.get(Tag::Variant))
                .unwrap_or(UNTAGGED_VARIANT)
                .to_string(),
        };
        groups.entry(key).or_default().push(run.clone());
    }
    groups
        .into_iter()
        .filter_map(|(key, group)| {
            let best = best_run(
                &group,
                &context.objective.metric,
                context.objective.direction,
            )?;
            Some((key, run_trial(best, context)?))
        })
        .collect()
}

/// The best item per group key (the overall key for [`SelectionScope::Overall`]); `compare`
/// orders best first.
fn group_best<'a, T: 'a>(
    items: impl Iterator<Item = &'a T>,
    scope: SelectionScope,
    variant_of: impl Fn(&T) -> Option<String>,
    compare: impl Fn(&&'a T, &&'a T) -> Ordering,
) -> BTreeMap<String, &'a T> {
    let mut best: BTreeMap<String, &'a T> = BTreeMap::new();
    for item in items {
        let key = match scope {
            SelectionScope::Overall => OVERALL_KEY.to_string(),
            SelectionScope::PerVariant => {
                variant_of(item).unwrap_or_else(|| UNTAGGED_VARIANT.to_string())
            }
        };
        match best.get(&key) {
            Some(current) if compare(current, &item) != Ordering::Greater => {}
            _ => {
                best.insert(key, item);
            }
        }
    }
    best
}

// ---------------------------------------------------------------------------------------------
// Study folders

/// The study folders of a backbone: every directory directly under `model_dir`, sorted by name.
/// A missing `model_dir` has none.
pub fn study_folders(model_dir: &Path) -> Result<Vec<PathBuf>, ChampionError> {
    let entries = match std::fs::read_dir(model_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ChampionError::Io {
                path: model_dir.to_path_buf(),
                source,
            });
        }
    };
    let mut folders = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ChampionError::Io {
            path: model_dir.to_path_buf(),
            source,
        })?;
        if entry.path().is_dir() {
            folders.push(entry.path());
        }
    }
    folders.sort();
    Ok(folders)
}

fn folder_name(folder: &Path) -> String {
    folder
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The best trial of one study folder's `study.db`.
#[derive(Debug, Clone)]
struct StudyCandidate {
    trial: BestTrial,
    direction: Direction,
}

fn study_candidates(
    folders: &[PathBuf],
    objective: &Objective,
    warn: &mut dyn FnMut(String),
) -> Vec<StudyCandidate> {
    let mut candidates = Vec::new();
    for folder in folders {
        let path = StudyDir::new(folder).study_db();
        if !path.is_file() {
            continue;
        }
        match best_of_study_file(&path, warn) {
            Ok(Some((study, trial))) => {
                if study.direction != objective.direction {
                    warn(format!(
                        "study {:?} in {} is {} but the objective config says {}; the study's direction picks its best trial",
                        study.name,
                        path.display(),
                        study.direction,
                        objective.direction
                    ));
                }
                candidates.push(StudyCandidate {
                    direction: study.direction,
                    trial: BestTrial {
                        source: TrialSource::Study,
                        value: trial.value,
                        params: trial.params.clone(),
                        variant: Some(folder_name(folder)),
                        run_id: None,
                        trial_number: Some(trial.number),
                        study_name: Some(study.name.clone()),
                        study_folder: Some(folder.clone()),
                    },
                });
            }
            Ok(None) => {}
            Err(err) => warn(format!("skipping unreadable study: {err}")),
        }
    }
    candidates
}

/// The study a folder's `study.db` stands for and its best trial. A file holding several studies
/// uses the one named like the folder if there is one, else the best across them.
pub fn best_of_study_file(
    path: &Path,
    warn: &mut dyn FnMut(String),
) -> Result<Option<(OptunaStudy, optuna_study::OptunaTrial)>, ChampionError> {
    let (studies, multi_objective) = optuna_study::read_studies(path)?;
    for name in multi_objective {
        warn(format!(
            "study {name:?} in {} is multi-objective and has no single best trial; skipped",
            path.display()
        ));
    }
    let folder = path.parent().map(folder_name).unwrap_or_default();
    let chosen: Vec<&OptunaStudy> = match studies.iter().find(|s| s.name == folder) {
        Some(named) if studies.len() > 1 => vec![named],
        _ => studies.iter().collect(),
    };
    if chosen.len() > 1 {
        warn(format!(
            "{} holds {} studies and none is named {folder:?}; taking the best across them",
            path.display(),
            chosen.len()
        ));
    }
    let mut best: Option<(&OptunaStudy, &optuna_study::OptunaTrial)> = None;
    for study in chosen {
        let Some(trial) = study.best_trial() else {
            continue;
        };
        best = match best {
            Some((current_study, current))
                if !is_better(study.direction, trial.value, current.value) =>
            {
                Some((current_study, current))
            }
            _ => Some((study, trial)),
        };
    }
    Ok(best.map(|(study, trial)| (study.clone(), trial.clone())))
}

fn select_studies(
    studies: &[StudyCandidate],
    configured: Direction,
    scope: SelectionScope,
) -> Answer {
    // Across folders the studies' shared direction decides; when they differ, the config does.
    let direction = match studies.first() {
        Some(first) if studies.iter().all(|s| s.direction == first.direction) => first.direction,
        _ => configured,
    };
    let trials: Vec<BestTrial> = studies.iter().map(|s| s.trial.clone()).collect();
    select_trials(trials, direction, scope)
}

fn select_trials(trials: Vec<BestTrial>, direction: Direction, scope: SelectionScope) -> Answer {
    let compare = |a: &&BestTrial, b: &&BestTrial| {
        compare_values(direction, a.value, b.value)
            .then_with(|| a.trial_number.cmp(&b.trial_number))
            .then_with(|| a.study_folder.cmp(&b.study_folder))
    };
    group_best(trials.iter(), scope, |t| t.variant.clone(), compare)
        .into_iter()
        .map(|(key, trial)| (key, trial.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Disk

fn disk_candidates(
    folders: &[PathBuf],
    objective: &Objective,
    warn: &mut dyn FnMut(String),
) -> Vec<BestTrial> {
    let mut candidates = Vec::new();
    for folder in folders {
        match trial_metrics(folder, &objective.metric) {
            Ok(found) => {
                for err in found.skipped {
                    warn(format!("skipping trial metrics: {err}"));
                }
                candidates.extend(found.trials.into_iter().map(|(number, value)| BestTrial {
                    source: TrialSource::Disk,
                    value,
                    params: BTreeMap::new(),
                    variant: Some(folder_name(folder)),
                    run_id: None,
                    trial_number: Some(number),
                    study_name: None,
                    study_folder: Some(folder.clone()),
                }));
            }
            Err(err) => warn(format!("skipping trial metrics: {err}")),
        }
    }
    candidates
}

/// The trial metrics of one study folder: what could be read, and why the rest could not.
#[derive(Debug, Default)]
pub struct TrialMetrics {
    /// `(trial number, metric value)` of every trial whose `metrics.json` holds the metric.
    pub trials: Vec<(i64, f64)>,
    /// One error per `metrics.json` that could not be used; its siblings still count.
    pub skipped: Vec<ChampionError>,
}

/// The most a trial's `metrics.json` may hold (they are a few hundred bytes).
const TRIAL_METRICS_MAX_BYTES: u64 = 16 << 20;

/// The metrics of every trial folder in a study folder — the plans' `trial_{number}/` and the
/// pipeline's `trial-{t8}/` (numbered by its `trial_meta.json`) — that hold `metric` as a
/// number in their `metrics.json` (NaN excluded; `Infinity` as Python's json writes it counts).
/// A file that cannot be read or used is reported in `skipped` and never hides the others; only
/// a study folder that cannot be listed is an error.
pub fn trial_metrics(folder: &Path, metric: &str) -> Result<TrialMetrics, ChampionError> {
    let trial_folders =
        StudyDir::new(folder)
            .trial_folders()
            .map_err(|err| ChampionError::TrialMetrics {
                path: folder.to_path_buf(),
                message: err.to_string(),
            })?;
    let mut found = TrialMetrics::default();
    for (number, trial_dir) in trial_folders {
        let path = trial_dir.join("metrics.json");
        match trial_metric(&path, number, metric) {
            Ok(Some(trial)) => found.trials.push(trial),
            Ok(None) => {}
            Err(err) => found.skipped.push(err),
        }
    }
    Ok(found)
}

/// One trial's metric from its `metrics.json`: `None` when the file or the metric is absent or
/// the value is NaN.
fn trial_metric(
    path: &Path,
    number: u64,
    metric: &str,
) -> Result<Option<(i64, f64)>, ChampionError> {
    let invalid = |message: String| ChampionError::TrialMetrics {
        path: path.to_path_buf(),
        message,
    };
    let text = match podium_variants::fs::read_regular_text(path, TRIAL_METRICS_MAX_BYTES) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            ) =>
        {
            return Err(invalid(err.to_string()));
        }
        Err(source) => {
            return Err(ChampionError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let metrics = optuna_study::parse_python_json(&text).map_err(invalid)?;
    let value = match metrics.get(metric) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => match text.as_str() {
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            "NaN" => None,
            _ => {
                return Err(invalid(format!(
                    "`{metric}` is the string {text:?}, not a number"
                )));
            }
        },
        Some(other) => return Err(invalid(format!("`{metric}` is {other}, not a number"))),
    };
    let number = i64::try_from(number)
        .map_err(|_| invalid(format!("trial number {number} is too large")))?;
    Ok(value.filter(|v| !v.is_nan()).map(|value| (number, value)))
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
