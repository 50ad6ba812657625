//! Best-trial candidates from MLflow: the trial runs of a backbone's HPO experiment, and the
//! best per variant (or overall).

use super::*;

pub(super) fn mlflow_candidates(
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

pub(super) fn run_trial(run: &Run, context: &RetrievalContext<'_>) -> Option<BestTrial> {
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
pub(super) fn select_runs(runs: &[Run], context: &RetrievalContext<'_>) -> Answer {
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
pub(super) fn group_best<'a, T: 'a>(
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
