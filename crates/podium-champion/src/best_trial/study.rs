//! Best-trial candidates from the Optuna `study.db` files in the study folders.

use super::*;

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

pub(super) fn folder_name(folder: &Path) -> String {
    folder
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The best trial of one Optuna study of a study folder's `study.db`.
#[derive(Debug, Clone)]
pub(super) struct StudyCandidate {
    pub(super) trial: BestTrial,
    pub(super) direction: Direction,
}

/// One candidate per Optuna study in each folder's `study.db` (its best trial): a `study.db`
/// may hold several studies (the pipeline keeps one per study key hash folder, whatever the
/// study names), and each is a study of its own.
pub(super) fn study_candidates(
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
        let studies = match study_trials_of_file(&path, warn) {
            Ok(studies) => studies,
            Err(err) => {
                warn(format!("skipping unreadable study: {err}"));
                continue;
            }
        };
        for (study, trial) in studies {
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
                    params: trial.params,
                    study: String::new(),
                    keyed_by: StudyKeyedBy::StudyFolder,
                    study_key_hash: None,
                    variant: None,
                    run_id: None,
                    trial_number: Some(trial.number),
                    study_name: Some(study.name),
                    study_folder: Some(folder.clone()),
                },
            });
        }
    }
    candidates
}

/// Every single-objective study of a `study.db` with its best trial (Optuna's
/// `study.best_trial`), in the file's study order; studies without a COMPLETE (feasible) trial
/// are left out, multi-objective ones reported through `warn`.
pub fn study_trials_of_file(
    path: &Path,
    warn: &mut dyn FnMut(String),
) -> Result<Vec<(OptunaStudy, optuna_study::OptunaTrial)>, ChampionError> {
    let (studies, multi_objective) = optuna_study::read_studies(path)?;
    for name in multi_objective {
        warn(format!(
            "study {name:?} in {} is multi-objective and has no single best trial; skipped",
            path.display()
        ));
    }
    Ok(studies
        .into_iter()
        .filter_map(|study| {
            let trial = study.best_trial()?.clone();
            Some((study, trial))
        })
        .collect())
}

pub(super) fn select_studies(
    studies: &[StudyCandidate],
    configured: Direction,
    scope: SelectionScope,
    tags: &TagRegistry,
) -> Answer {
    // Across studies their shared direction decides; when they differ, the config does.
    let direction = match studies.first() {
        Some(first) if studies.iter().all(|s| s.direction == first.direction) => first.direction,
        _ => configured,
    };
    let trials: Vec<BestTrial> = studies.iter().map(|s| s.trial.clone()).collect();
    select_trials(trials, direction, scope, tags)
}

pub(super) fn select_trials(
    trials: Vec<BestTrial>,
    direction: Direction,
    scope: SelectionScope,
    tags: &TagRegistry,
) -> Answer {
    let compare = |a: &&BestTrial, b: &&BestTrial| {
        compare_values(direction, a.value, b.value)
            .then_with(|| a.trial_number.cmp(&b.trial_number))
            .then_with(|| a.study_folder.cmp(&b.study_folder))
            .then_with(|| a.study_name.cmp(&b.study_name))
    };
    let mut best: Vec<(Option<StudyRef>, BestTrial)> =
        group_best(trials.iter(), scope, BestTrial::study_ref, compare)
            .into_iter()
            .map(|(key, trial)| (key, trial.clone()))
            .collect();
    super::mlflow::answer(&mut best, tags)
}
