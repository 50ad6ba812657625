//! Best-trial candidates from MLflow: the trial runs of a backbone's HPO experiment, and the
//! best per variant (or overall).

use super::*;

/// The Optuna study name a sweep (parent) run logged: the pipeline's `log_sweep_metadata`
/// writes it as the param `study_name`.
pub const SWEEP_STUDY_NAME_PARAM: &str = "study_name";

/// The Optuna study name of each sweep whose trials are candidates, by sweep run id.
pub(super) type SweepStudyNames = BTreeMap<String, String>;

pub(super) fn mlflow_candidates(
    context: &RetrievalContext<'_>,
    store: &dyn TrackingStore,
    backbone: &str,
) -> Result<(Vec<Run>, SweepStudyNames, String), ChampionError> {
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
            SweepStudyNames::new(),
            format!(
                "no active experiment {experiment_name:?} in {}",
                store.describe()
            ),
        ));
    };
    // The same candidates as champion selection: the stage fallback order, trials only (runs
    // with a parent sweep). The pipeline's sweeps share the trials' stage, so most come along.
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
    let mut sweep_names = SweepStudyNames::new();
    let mut trials = Vec::new();
    for run in runs {
        if run.tag(crate::selection::PARENT_RUN_ID_TAG).is_some() {
            trials.push(run);
        } else if let Some(name) = run.params.get(SWEEP_STUDY_NAME_PARAM) {
            sweep_names.insert(run.id().to_string(), name.clone());
        }
    }
    let total = trials.len();
    let metric = &context.objective.metric;
    let candidates: Vec<Run> = trials
        .into_iter()
        .filter(|run| run.metric(metric).is_some_and(|value| !value.is_nan()))
        .collect();
    // Sweeps that did not come with the candidates (another stage, or not FINISHED): one
    // lookup each, only for studies keyed by their hash.
    let missing: std::collections::BTreeSet<&str> = candidates
        .iter()
        .filter(|run| run.tag(context.tags.get(Tag::StudyKeyHash)).is_some())
        .filter_map(|run| run.tag(crate::selection::PARENT_RUN_ID_TAG))
        .filter(|parent| !sweep_names.contains_key(*parent))
        .collect();
    for parent in missing {
        match store.get_run(parent) {
            Ok(sweep) => {
                if let Some(name) = sweep.params.get(SWEEP_STUDY_NAME_PARAM) {
                    sweep_names.insert(parent.to_string(), name.clone());
                }
            }
            Err(err) => tracing::info!(
                "sweep run {parent} of {experiment_name:?}: {err}; its trials are told apart by study key hash alone"
            ),
        }
    }
    let outcome = format!(
        "{} FINISHED trial run(s) in {experiment_name:?}, {} with a `{}` value",
        total,
        candidates.len(),
        context.objective.metric
    );
    Ok((candidates, sweep_names, outcome))
}

pub(super) fn run_trial(
    run: &Run,
    sweep_names: &SweepStudyNames,
    context: &RetrievalContext<'_>,
) -> Option<BestTrial> {
    let tag = |tag: Tag| {
        run.tag(context.tags.get(tag))
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    let study_key_hash = tag(Tag::StudyKeyHash);
    let variant = tag(Tag::Variant);
    let keyed_by = match (&study_key_hash, &variant) {
        (Some(_), _) => StudyKeyedBy::StudyKeyHash,
        (None, Some(_)) => StudyKeyedBy::VariantTag,
        (None, None) => StudyKeyedBy::Untagged,
    };
    let study_name = run
        .tag(crate::selection::PARENT_RUN_ID_TAG)
        .and_then(|parent| sweep_names.get(parent))
        .cloned();
    let trial_number = tag(Tag::HpoTrialNumber)
        .or_else(|| tag(Tag::LegacyTrialNumber))
        .and_then(|number| number.parse::<i64>().ok());
    Some(BestTrial {
        source: TrialSource::Mlflow,
        value: run.metric(&context.objective.metric)?,
        params: run
            .params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
        study: String::new(),
        keyed_by,
        study_key_hash,
        variant,
        run_id: Some(run.id().to_string()),
        trial_number,
        study_name,
        study_folder: None,
    })
}

/// The best run per study (or overall), by podium_mlflow's deterministic [`best_run`].
pub(super) fn select_runs(
    runs: &[Run],
    sweep_names: &SweepStudyNames,
    context: &RetrievalContext<'_>,
) -> Answer {
    let mut groups: BTreeMap<Option<StudyRef>, Vec<Run>> = BTreeMap::new();
    for run in runs {
        let Some(trial) = run_trial(run, sweep_names, context) else {
            continue;
        };
        let key = match context.scope {
            SelectionScope::Overall => None,
            SelectionScope::PerVariant => Some(trial.study_ref()),
        };
        groups.entry(key).or_default().push(run.clone());
    }
    let mut best: Vec<(Option<StudyRef>, BestTrial)> = groups
        .into_iter()
        .filter_map(|(key, group)| {
            let run = best_run(
                &group,
                &context.objective.metric,
                context.objective.direction,
            )?;
            Some((key, run_trial(run, sweep_names, context)?))
        })
        .collect();
    answer(&mut best, context.tags)
}

/// Labels the best trials' studies and keys them: by label per study, or [`OVERALL_KEY`].
pub(super) fn answer(best: &mut [(Option<StudyRef>, BestTrial)], tags: &TagRegistry) -> Answer {
    label_studies(best.iter_mut().map(|(_, trial)| trial), tags);
    best.iter()
        .map(|(key, trial)| {
            let label = match key {
                None => OVERALL_KEY.to_string(),
                Some(_) => trial.study.clone(),
            };
            (label, trial.clone())
        })
        .collect()
}

/// The best item per study (one overall group for [`SelectionScope::Overall`]); `compare`
/// orders best first.
pub(super) fn group_best<'a, T: 'a>(
    items: impl Iterator<Item = &'a T>,
    scope: SelectionScope,
    study_of: impl Fn(&T) -> StudyRef,
    compare: impl Fn(&&'a T, &&'a T) -> Ordering,
) -> BTreeMap<Option<StudyRef>, &'a T> {
    let mut best: BTreeMap<Option<StudyRef>, &'a T> = BTreeMap::new();
    for item in items {
        let key = match scope {
            SelectionScope::Overall => None,
            SelectionScope::PerVariant => Some(study_of(item)),
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
