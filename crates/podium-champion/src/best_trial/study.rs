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

/// The best trial of one study folder's `study.db`.
#[derive(Debug, Clone)]
pub(super) struct StudyCandidate {
    pub(super) trial: BestTrial,
    pub(super) direction: Direction,
}

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

pub(super) fn select_studies(
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

pub(super) fn select_trials(
    trials: Vec<BestTrial>,
    direction: Direction,
    scope: SelectionScope,
) -> Answer {
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
