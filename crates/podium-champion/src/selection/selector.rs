//! [`Selector`]: the I/O shell around the rules — the store's searches, the sweep runs the
//! artifact rule reads, the disk check and the report.

use std::collections::BTreeSet;

use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::{
    Filter, MlflowError, Run, RunFields, RunStatus, SearchRequest, TrackingStore, ViewType,
    search_all_fields, search_each,
};
use podium_variants::{Environment, ExperimentConfig, OutputLayout, backbone_short_name};

use super::rules::{
    TrialGroups, artifact_tag_true, artifact_verdict, available_by_verdicts, choose_refit,
};
use super::sweeps::SweepVerdicts;
use super::{
    Champion, ChampionReport, CheckpointLocation, PARENT_RUN_ID_TAG, SelectionMetadata,
    SelectionResults, TRIAL_STAGES, TrialChoice, selection_fields,
};
use crate::checkpoint::{LocalCheckpoints, checkpoint_artifact_paths};
use crate::config::{ArtifactCheckSource, CheckpointRun, SelectionConfig};
use crate::error::ChampionError;

/// Runs per page of the candidate searches: what selection holds of a backbone's candidates at
/// once (about 1 KiB per projected run). Over REST a page is a round trip, so pages stay large
/// enough that the server's time per run dominates; SQLite streams one statement regardless.
pub const CANDIDATE_PAGE_SIZE: usize = 10_000;

/// The candidate queries of rule 1 in the order they are tried: stage `hpo_trial` with the
/// backbone tag `model`, `hpo_trial`, `hpo` with the backbone tag, `hpo`; FINISHED runs.
fn candidate_filters(tags: &TagRegistry, model: &str) -> Vec<Filter> {
    let mut filters = Vec::with_capacity(TRIAL_STAGES.len() * 2);
    for stage_value in TRIAL_STAGES {
        for with_backbone in [true, false] {
            let mut filter = Filter::new().tag_eq(tags.get(Tag::Stage), stage_value);
            if with_backbone {
                filter = filter.tag_eq(tags.get(Tag::Backbone), model);
            }
            filters.push(filter.status(RunStatus::Finished));
        }
    }
    filters
}

/// The FINISHED, active runs of the first non-empty trial query (rule 1 of the module docs):
/// stage `hpo_trial` with the backbone tag `model`, `hpo_trial`, `hpo` with the backbone tag,
/// `hpo` — each filtered by the store, every page read. Returns the runs (sweeps included: the
/// caller keeps those with a parent) and the filter that found them (empty when none did).
pub fn search_trial_candidates(
    store: &dyn TrackingStore,
    experiment_ids: &[String],
    tags: &TagRegistry,
    model: &str,
    fields: &RunFields,
) -> Result<(Vec<Run>, String), MlflowError> {
    let mut runs = Vec::new();
    let (_, query) =
        stream_trial_candidates(store, experiment_ids, tags, model, fields, &mut |run| {
            runs.push(run)
        })?;
    Ok((runs, query))
}

/// [`search_trial_candidates`] handing each run to `visit` as the store returns it, pages of
/// [`CANDIDATE_PAGE_SIZE`]: returns how many runs were visited and the filter that found them.
pub fn stream_trial_candidates(
    store: &dyn TrackingStore,
    experiment_ids: &[String],
    tags: &TagRegistry,
    model: &str,
    fields: &RunFields,
    visit: &mut dyn FnMut(Run),
) -> Result<(usize, String), MlflowError> {
    let request = SearchRequest::new(experiment_ids.iter().cloned())
        .view(ViewType::ActiveOnly)
        .max_results(CANDIDATE_PAGE_SIZE)
        .fields(fields.clone());
    for filter in candidate_filters(tags, model) {
        // A query that finds nothing visits nothing, so the first non-empty one is the answer.
        let count = search_each(store, &request, &filter, visit)?;
        if count > 0 {
            return Ok((count, filter.server_side()));
        }
    }
    Ok((0, String::new()))
}

/// Champion selection against a tracking store and a filesystem root.
#[derive(Debug, Clone, Copy)]
pub struct Selector<'a> {
    /// The tracking store.
    pub store: &'a dyn TrackingStore,
    /// The selection rules.
    pub config: &'a SelectionConfig,
    /// Tag keys.
    pub tags: &'a TagRegistry,
    /// The project root whose `outputs/` the disk checks look at.
    pub layout: &'a OutputLayout,
    /// The `{environment}` folder of the disk checks.
    pub environment: &'a Environment,
}

/// Selects one backbone's champion (candidates, groups, stable scores, champion, refit); see [`Selector::select`].
pub fn select_champion(
    backbone: &str,
    store: &dyn TrackingStore,
    experiment_name: &str,
    config: &SelectionConfig,
    tags: &TagRegistry,
    layout: &OutputLayout,
    environment: &Environment,
) -> Result<ChampionReport, ChampionError> {
    Selector {
        store,
        config,
        tags,
        layout,
        environment,
    }
    .select(backbone, experiment_name)
}

impl Selector<'_> {
    /// Every backbone's champion, their HPO experiments named by `experiments`. Backbones are
    /// selected concurrently; one backbone's failure is recorded and the others still answer.
    pub fn select_many(
        &self,
        backbones: &[String],
        experiments: &ExperimentConfig,
    ) -> SelectionResults {
        let answers: Vec<(String, Result<ChampionReport, ChampionError>)> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = backbones
                    .iter()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .map(|backbone| {
                        let experiment = experiments.hpo_experiment_name(backbone);
                        let handle = scope.spawn(move || self.select(backbone, &experiment));
                        (backbone.clone(), handle)
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|(backbone, handle)| {
                        let answer = handle.join().unwrap_or_else(|_| {
                            Err(ChampionError::Mlflow {
                                backbone: backbone.clone(),
                                context: "selection thread panicked".to_string(),
                                source: Box::new(podium_mlflow::MlflowError::InvalidQuery(
                                    "a selection thread panicked".to_string(),
                                )),
                            })
                        });
                        (backbone, answer)
                    })
                    .collect()
            });
        let mut results = SelectionResults::default();
        for (backbone, answer) in answers {
            match answer {
                Ok(report) => {
                    results.champions.insert(backbone, report);
                }
                Err(err) => {
                    tracing::warn!("{err}");
                    results.errors.insert(backbone, err);
                }
            }
        }
        results
    }

    /// One backbone's champion from the runs of `experiment_name`.
    pub fn select(
        &self,
        backbone: &str,
        experiment_name: &str,
    ) -> Result<ChampionReport, ChampionError> {
        let tags = self.tags;
        let rules = &self.config.champion_selection;
        let model = backbone_short_name(backbone.trim()).to_string();
        let mlflow_error = |context: String| {
            move |source| ChampionError::Mlflow {
                backbone: backbone.to_string(),
                context,
                source: Box::new(source),
            }
        };
        let experiment = self
            .store
            .get_experiment_by_name(experiment_name)
            .map_err(mlflow_error(format!(
                "looking up experiment `{experiment_name}`"
            )))?
            .ok_or_else(|| ChampionError::ExperimentNotFound {
                backbone: backbone.to_string(),
                experiment: experiment_name.to_string(),
                store: self.store.describe(),
            })?;
        let experiment_ids = [experiment.experiment_id.clone()];

        // Rules 1-4, as the candidates stream from the store: the first non-empty stage query
        // wins, and each candidate is reduced to its group's summary as it arrives.
        let fields = selection_fields(self.config, tags);
        let disk_index = (rules.require_artifact_available
            && rules.artifact_check_source == ArtifactCheckSource::Disk)
            .then(|| LocalCheckpoints::scan(self.layout, self.environment, &model));
        // Rule 2 by tags reads each trial's parent sweep: from the stream when the sweep streams
        // past with the candidates, else once from the store (see `sweeps`).
        let by_sweep_tags = rules.require_artifact_available && disk_index.is_none();
        let on_disk = |run: &Run| {
            disk_index
                .as_ref()
                .is_none_or(|index| index.resolve(run, tags).is_some())
        };
        let mut groups = TrialGroups::new(self.config, tags);
        let mut add = |run: Run, parent: Option<bool>| {
            groups.add(run, &mut |trial| {
                if by_sweep_tags {
                    available_by_verdicts(parent, trial, tags)
                } else {
                    on_disk(trial)
                }
            });
        };
        let mut sweeps = SweepVerdicts::new(tags, |parent_id: &str| self.parent_verdict(parent_id));
        let (candidate_count, candidate_query) = stream_trial_candidates(
            self.store,
            &experiment_ids,
            tags,
            &model,
            &fields,
            &mut |run| {
                if by_sweep_tags {
                    sweeps.visit(run, &mut add);
                } else {
                    add(run, None);
                }
            },
        )
        .map_err(mlflow_error(format!(
            "searching trial runs in experiment `{experiment_name}`"
        )))?;
        let sweep_lookups = sweeps.finish(&mut add);
        if candidate_count == 0 {
            return Err(ChampionError::NoCandidates {
                backbone: backbone.to_string(),
                model,
                experiment: experiment_name.to_string(),
            });
        }
        tracing::debug!(
            backbone,
            candidates = candidate_count,
            sweep_lookups,
            query = candidate_query.as_str(),
            "candidate trial runs"
        );
        let TrialChoice {
            trial,
            metric,
            study_key_hash,
            schema_version,
            stable_score,
            counted_trials,
            schema_version_used,
            groups,
            dropped,
        } = groups.finish(backbone)?;
        let trial = &trial;

        // Rule 5.
        let (checkpoint_run, refit) = match rules.checkpoint_source {
            CheckpointRun::Trial => (trial.clone(), None),
            CheckpointRun::Refit => {
                let refits = self.refit_candidates(backbone, &experiment_ids, trial)?;
                let Some((refit, matched_by)) = choose_refit(trial, &refits, tags) else {
                    return Err(ChampionError::RefitMissing {
                        backbone: backbone.to_string(),
                        trial_run_id: trial.id().to_string(),
                        link_tag: tags.get(Tag::RefitOfTrialRunId).to_string(),
                        trial_key_hash: trial
                            .tag(tags.get(Tag::TrialKeyHash))
                            .unwrap_or("<none>")
                            .to_string(),
                    });
                };
                // The pipeline takes a FAILED or still-RUNNING refit too (an upload that
                // failed, a crash): so does podium, but it says so.
                if refit.info.status != RunStatus::Finished || !artifact_tag_true(refit, tags) {
                    tracing::warn!(
                        backbone,
                        refit_run_id = refit.id(),
                        status = refit.info.status.as_str(),
                        artifact_available = refit.tag(tags.get(Tag::ArtifactAvailable)),
                        "the champion's refit run is not FINISHED with its artifact tag \"true\"; \
                         its checkpoint may be missing"
                    );
                }
                let refit = refit.clone();
                (refit.clone(), Some((refit, matched_by)))
            }
        };

        // The report.
        let local = match &disk_index {
            Some(index) => index.resolve(&checkpoint_run, tags),
            None => LocalCheckpoints::scan(self.layout, self.environment, &model)
                .resolve(&checkpoint_run, tags),
        };
        let from_trial_or_refit = |tag: Tag| {
            trial
                .tag(tags.get(tag))
                .or_else(|| refit.as_ref().and_then(|(run, _)| run.tag(tags.get(tag))))
                .map(str::to_string)
        };
        let champion = Champion {
            run_id: checkpoint_run.id().to_string(),
            trial_run_id: trial.id().to_string(),
            refit_run_id: refit.as_ref().map(|(run, _)| run.id().to_string()),
            refit_matched_by: refit.as_ref().map(|(_, matched_by)| *matched_by),
            sweep_run_id: trial
                .tag(tags.get(Tag::LineageHpoSweepRunId))
                .or_else(|| trial.tag(PARENT_RUN_ID_TAG))
                .map(str::to_string),
            trial_key_hash: trial.tag(tags.get(Tag::TrialKeyHash)).map(str::to_string),
            study_key_hash,
            metric,
            stable_score,
            schema_version,
            counted_trials,
            data_fingerprint: from_trial_or_refit(Tag::DataFingerprint),
            eval_fingerprint: from_trial_or_refit(Tag::EvalFingerprint),
            checkpoint: CheckpointLocation {
                run_id: checkpoint_run.id().to_string(),
                artifact_uri: format!(
                    "{}/{}",
                    checkpoint_run.info.artifact_uri.trim_end_matches('/'),
                    checkpoint_artifact_paths(&checkpoint_run, tags)[0]
                ),
                checkpoint_path_tag: checkpoint_run
                    .tag(tags.get(Tag::ArtifactCheckpointPath))
                    .map(str::to_string),
                local,
            },
        };
        let metadata = SelectionMetadata {
            metric: self.config.objective.metric.clone(),
            direction: self.config.objective.direction.to_string(),
            min_trials_per_group: rules.min_trials_per_group,
            top_k_for_stable_score: rules.top_k_for_stable_score,
            require_artifact_available: rules.require_artifact_available,
            artifact_check_source: rules.artifact_check_source,
            checkpoint_source: rules.checkpoint_source,
            prefer_schema_version: rules.prefer_schema_version,
            allow_mixed_schema_groups: rules.allow_mixed_schema_groups,
            schema_version_used,
            candidates: candidate_count,
        };
        Ok(ChampionReport {
            backbone: backbone.to_string(),
            model,
            experiment: experiment_name.to_string(),
            champion,
            groups,
            metadata,
            dropped,
        })
    }

    /// Runs that may be `trial`'s refit (see [`choose_refit`]): stage `hpo_refit` with its
    /// trial_key_hash, else (only when none is) the runs linked to it by tag. Any status.
    fn refit_candidates(
        &self,
        backbone: &str,
        experiment_ids: &[String],
        trial: &Run,
    ) -> Result<Vec<Run>, ChampionError> {
        let tags = self.tags;
        let fields = selection_fields(self.config, tags);
        let search = |filter: Filter, what: &str| {
            search_all_fields(
                self.store,
                experiment_ids,
                &filter,
                ViewType::ActiveOnly,
                &fields,
            )
            .map_err(|source| ChampionError::Mlflow {
                backbone: backbone.to_string(),
                context: format!("searching refit runs of trial run {} {what}", trial.id()),
                source: Box::new(source),
            })
        };
        if let Some(trial_key) = trial
            .tag(tags.get(Tag::TrialKeyHash))
            .filter(|hash| !hash.is_empty())
        {
            let same_key = search(
                Filter::new()
                    .tag_eq(tags.get(Tag::TrialKeyHash), trial_key)
                    .tag_eq(tags.get(Tag::Stage), stage::HPO_REFIT),
                "by trial_key_hash",
            )?;
            if !same_key.is_empty() {
                return Ok(same_key);
            }
        }
        search(
            Filter::new().tag_eq(tags.get(Tag::RefitOfTrialRunId), trial.id()),
            "by link tag",
        )
    }

    /// The [`artifact_verdict`] of a trial's parent (sweep) run; None when it cannot be read:
    /// the artifact rule then reads the trial's own tag, as the pipeline does.
    fn parent_verdict(&self, parent_id: &str) -> Option<bool> {
        match self.store.get_run(parent_id) {
            Ok(parent) => artifact_verdict(&parent, self.tags),
            Err(err) => {
                tracing::debug!(parent_id, "cannot read a trial's parent run: {err}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::{BTreeMap, HashMap};
    use std::path::Path;

    use podium_mlflow::{Direction, RunInfo};

    use super::*;
    use crate::config::SchemaPreference;
    use crate::selection::{LEGACY_SCHEMA_VERSION, V2_SCHEMA_VERSION};
    use podium_fixtures::MemoryStore;

    const EXPERIMENT: &str = "podium-ner-hpo-distilbert";

    fn make_checkpoint(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        std::fs::write(dir.join("model.safetensors"), "weights").unwrap();
    }

    /// A run carrying every registry tag (so a read of any of them shows in the report),
    /// params and extra metrics; `overrides` set the tags that matter to the rules.
    fn run(
        id: &str,
        start: i64,
        metrics: &[(&str, f64)],
        overrides: &[(Tag, &str)],
        tags: &TagRegistry,
    ) -> Run {
        let mut all_tags: BTreeMap<String, String> = Tag::ALL
            .iter()
            .map(|tag| {
                (
                    tags.get(*tag).to_string(),
                    format!("{}-of-{id}", tags.get(*tag)),
                )
            })
            .collect();
        for (tag, value) in overrides {
            all_tags.insert(tags.get(*tag).to_string(), (*value).to_string());
        }
        all_tags.insert(PARENT_RUN_ID_TAG.to_string(), "sweep-parent".to_string());
        all_tags.insert("mlflow.runName".to_string(), id.to_string());
        Run {
            info: RunInfo {
                run_id: id.to_string(),
                experiment_id: "0".to_string(),
                run_name: id.to_string(),
                status: RunStatus::Finished,
                start_time: Some(start),
                end_time: Some(start + 10),
                artifact_uri: format!("mlflow-artifacts:/0/{id}/artifacts"),
                lifecycle_stage: "active".to_string(),
            },
            tags: all_tags,
            params: BTreeMap::from([
                ("learning_rate".to_string(), format!("lr-{id}")),
                ("batch_size".to_string(), "16".to_string()),
            ]),
            metrics: metrics
                .iter()
                .map(|(key, value)| ((*key).to_string(), *value))
                .chain([("eval_loss".to_string(), 0.5), ("epoch".to_string(), 3.0)])
                .collect(),
        }
    }

    /// Trials in two v2 groups and a v1 group, with the cases every rule drops, and a refit for
    /// each trial: linked by tag for most, found by key hashes for the rest. Checkpoints exist
    /// on disk (via the checkpoint path tag) for some runs only.
    fn sweep(root: &Path, tags: &TagRegistry) -> Vec<Run> {
        let trials: [(&str, &str, &str, Option<f64>, &str); 12] = [
            ("a0", "study-a", "2.0", Some(0.81), "true"),
            ("a1", "study-a", "2.0", Some(0.85), "false"),
            ("a2", "study-a", "2.0", Some(0.83), "TRUE"),
            ("a3", "study-a", "2.0", Some(f64::NAN), "true"),
            ("b0", "study-b", "2.0", Some(0.90), "true"),
            ("b1", "study-b", "2.0", Some(0.70), "true"),
            ("b2", "study-b", "2.0", None, "true"),
            ("b3", "study-b", "2.0", Some(0.72), "true"),
            ("l0", "legacy", "1.0", Some(0.95), "true"),
            ("l1", "legacy", "1.0", Some(0.60), "true"),
            ("l2", "legacy", "1.0", Some(0.61), "false"),
            ("x0", "study-x", "3.0", Some(0.99), "true"),
        ];
        let mut runs = Vec::new();
        for (index, (id, study, schema, f1, available)) in trials.into_iter().enumerate() {
            let trial_key = format!("trial-key-{id}");
            let checkpoint = root.join("checkpoints").join(id);
            if available != "false" && index % 3 != 1 {
                make_checkpoint(&checkpoint);
            }
            let metrics: Vec<(&str, f64)> =
                f1.map(|value| ("macro-f1", value)).into_iter().collect();
            let checkpoint_path = checkpoint.to_string_lossy().into_owned();
            let mut overrides = vec![
                (Tag::Backbone, "distilbert"),
                (Tag::Stage, stage::HPO_TRIAL),
                (Tag::StudyKeyHash, study),
                (Tag::TrialKeyHash, trial_key.as_str()),
                (Tag::ArtifactAvailable, available),
                (Tag::ArtifactCheckpointPath, checkpoint_path.as_str()),
            ];
            if schema != LEGACY_SCHEMA_VERSION || index % 2 == 0 {
                overrides.push((Tag::StudyKeySchemaVersion, schema));
            }
            let mut trial = run(id, 1_000 + index as i64, &metrics, &overrides, tags);
            if index % 2 == 0 {
                trial.tags.remove(tags.get(Tag::LineageHpoSweepRunId));
            }
            runs.push(trial);

            let refit_id = format!("refit-{id}");
            let refit_checkpoint = root.join("checkpoints").join(&refit_id);
            if index % 4 != 3 {
                make_checkpoint(&refit_checkpoint);
            }
            let refit_checkpoint_path = refit_checkpoint.to_string_lossy().into_owned();
            let link = if index % 2 == 0 { id } else { "another-trial" };
            let refit_available = if index % 5 == 2 { "false" } else { "true" };
            let overrides = [
                (Tag::Backbone, "distilbert"),
                (Tag::Stage, stage::HPO_REFIT),
                (Tag::StudyKeyHash, study),
                (Tag::TrialKeyHash, trial_key.as_str()),
                (Tag::RefitOfTrialRunId, link),
                (Tag::ArtifactAvailable, refit_available),
                (Tag::ArtifactCheckpointPath, refit_checkpoint_path.as_str()),
            ];
            runs.push(run(&refit_id, 5_000 + index as i64, &[], &overrides, tags));
        }
        // A trial without a study key hash.
        let mut orphan = run(
            "o0",
            900,
            &[("macro-f1", 0.99)],
            &[
                (Tag::Backbone, "distilbert"),
                (Tag::Stage, stage::HPO_TRIAL),
            ],
            tags,
        );
        orphan.tags.remove(tags.get(Tag::StudyKeyHash));
        runs.push(orphan);
        runs
    }

    fn configs() -> Vec<SelectionConfig> {
        let mut configs = Vec::new();
        for checkpoint_source in [CheckpointRun::Refit, CheckpointRun::Trial] {
            for source in [ArtifactCheckSource::Tag, ArtifactCheckSource::Disk] {
                for schema in [SchemaPreference::Auto, SchemaPreference::V1] {
                    for direction in [Direction::Maximize, Direction::Minimize] {
                        let mut config = SelectionConfig::default();
                        config.objective.direction = direction;
                        config.champion_selection.checkpoint_source = checkpoint_source;
                        config.champion_selection.artifact_check_source = source;
                        config.champion_selection.prefer_schema_version = schema;
                        config.champion_selection.min_trials_per_group = 2;
                        config.champion_selection.top_k_for_stable_score = 2;
                        configs.push(config);
                    }
                }
            }
        }
        configs
    }

    fn select(
        store: &MemoryStore,
        config: &SelectionConfig,
        tags: &TagRegistry,
        root: &Path,
    ) -> Result<ChampionReport, String> {
        let layout = OutputLayout::new(root);
        Selector {
            store,
            config,
            tags,
            layout: &layout,
            environment: &Environment::Local,
        }
        .select("distilbert-base-uncased", EXPERIMENT)
        .map_err(|err| err.to_string())
    }

    fn store_of(runs: &[Run], store: MemoryStore) -> MemoryStore {
        let id = store.experiment(EXPERIMENT);
        for run in runs {
            let mut run = run.clone();
            run.info.experiment_id = id.clone();
            store.insert(run);
        }
        store
    }

    #[test]
    fn projected_searches_select_what_whole_runs_select() {
        let root = tempfile::tempdir().unwrap();
        let tags = TagRegistry::defaults();
        let runs = sweep(root.path(), &tags);
        let projected = store_of(&runs, MemoryStore::new());
        let whole = store_of(&runs, MemoryStore::new().ignoring_projections());
        let mut champions = 0;
        for config in configs() {
            let from_projected = select(&projected, &config, &tags, root.path());
            let from_whole = select(&whole, &config, &tags, root.path());
            assert_eq!(from_projected, from_whole, "{config:?}");
            champions += usize::from(from_whole.is_ok());
        }
        // Most configurations must find a champion, or the comparison proves little.
        assert!(champions >= 10, "{champions} champions");
    }

    #[test]
    fn streamed_owned_runs_choose_what_a_slice_chooses() {
        let root = tempfile::tempdir().unwrap();
        let tags = TagRegistry::defaults();
        let runs = sweep(root.path(), &tags);
        let available = |run: &Run| artifact_tag_true(run, &tags);
        let mut champions = 0;
        for config in configs() {
            let from_slice =
                crate::selection::choose_trial("distilbert", &runs, &config, &tags, &available);
            // Newest first and every run twice, as a store paging during writes may send them.
            let mut groups = TrialGroups::new(&config, &tags);
            for run in runs.iter().rev().chain(runs.iter()) {
                groups.add(run.clone(), &mut |run| available(run));
            }
            assert_eq!(groups.candidates(), runs.len());
            let streamed = groups.finish("distilbert");
            // `&Run` and `Run` print alike.
            assert_eq!(
                format!("{streamed:?}"),
                format!("{from_slice:?}"),
                "{config:?}"
            );
            champions += usize::from(streamed.is_ok());
        }
        assert!(champions >= 10, "{champions} champions");
    }

    /// Sweeps as the pipeline logs them: stage and backbone of their trials, no parent, started
    /// before their trials. Sweep `i` says "false" for every third `i`; sweep 4 is still RUNNING
    /// and sweep 5 was deleted, so neither streams with the candidates.
    fn streamed_sweeps(tags: &TagRegistry) -> Vec<Run> {
        let mut runs = Vec::new();
        for sweep in 0..6 {
            let sweep_id = format!("sweep-{sweep}");
            let available = if sweep % 3 == 0 { "false" } else { "true" };
            let mut sweep_run = run(
                &sweep_id,
                sweep * 100,
                &[],
                &[
                    (Tag::Backbone, "distilbert"),
                    (Tag::Stage, stage::HPO),
                    (Tag::StudyKeySchemaVersion, V2_SCHEMA_VERSION),
                    (Tag::ArtifactAvailable, available),
                ],
                tags,
            );
            sweep_run.tags.remove(PARENT_RUN_ID_TAG);
            if sweep == 4 {
                sweep_run.info.status = RunStatus::Running;
            }
            if sweep == 5 {
                sweep_run.info.lifecycle_stage = "deleted".to_string();
            }
            runs.push(sweep_run);
            for trial in 0..4 {
                let id = format!("trial-{sweep}-{trial}");
                let study = format!("study-{}", sweep % 2);
                // Trials' own tags say the opposite of their sweep: the sweep must decide.
                let own = if available == "true" { "false" } else { "true" };
                let mut trial_run = run(
                    &id,
                    sweep * 100 + trial + 1,
                    &[("macro-f1", 0.5 + 0.01 * (sweep * 4 + trial) as f64)],
                    &[
                        (Tag::Backbone, "distilbert"),
                        (Tag::Stage, stage::HPO),
                        (Tag::StudyKeyHash, study.as_str()),
                        (Tag::StudyKeySchemaVersion, V2_SCHEMA_VERSION),
                        (Tag::ArtifactAvailable, own),
                    ],
                    tags,
                );
                trial_run
                    .tags
                    .insert(PARENT_RUN_ID_TAG.to_string(), sweep_id.clone());
                runs.push(trial_run);
            }
        }
        runs
    }

    #[test]
    fn sweeps_streamed_with_the_candidates_are_not_read_again() {
        let root = tempfile::tempdir().unwrap();
        let tags = TagRegistry::defaults();
        let runs = streamed_sweeps(&tags);
        let mut config = SelectionConfig::default();
        config.champion_selection.checkpoint_source = CheckpointRun::Trial;
        config.champion_selection.require_artifact_available = true;
        config.champion_selection.artifact_check_source = ArtifactCheckSource::Tag;
        config.champion_selection.min_trials_per_group = 2;
        for page_size in [1, 3, 50] {
            let store = store_of(&runs, MemoryStore::with_page_size(page_size));
            let report = select(&store, &config, &tags, root.path()).unwrap();
            // Only the RUNNING and the deleted sweep are read one by one.
            assert_eq!(store.run_lookups(), 2, "pages of {page_size}");
            // The rule applied trial by trial with each parent read directly.
            let by_id: HashMap<&str, &Run> = runs.iter().map(|run| (run.id(), run)).collect();
            let available = |trial: &Run| {
                let parent = trial.tag(PARENT_RUN_ID_TAG).and_then(|id| by_id.get(id));
                crate::selection::trial_artifact_available(trial, parent.copied(), &tags)
            };
            let candidates: Vec<Run> = runs
                .iter()
                .filter(|run| {
                    run.info.status == RunStatus::Finished && run.info.lifecycle_stage == "active"
                })
                .cloned()
                .collect();
            let expected = crate::selection::choose_trial(
                "distilbert",
                &candidates,
                &config,
                &tags,
                &available,
            )
            .unwrap();
            assert_eq!(report.champion.trial_run_id, expected.trial.id());
            assert_eq!(report.groups, expected.groups);
            assert_eq!(report.dropped, expected.dropped);
            // Sweeps 0 and 3 say "false": their eight trials drop.
            assert_eq!(report.dropped.artifact_unavailable, 8);
        }
    }

    #[test]
    fn selection_asks_only_for_what_it_reads() {
        let root = tempfile::tempdir().unwrap();
        let tags = TagRegistry::defaults();
        let store = store_of(&sweep(root.path(), &tags), MemoryStore::new());
        let config = SelectionConfig::default();
        let report = select(&store, &config, &tags, root.path()).unwrap();
        assert!(report.champion.refit_run_id.is_some());
        let fields = selection_fields(&config, &tags);
        let asked = store.projections();
        assert!(!asked.is_empty());
        assert!(asked.iter().all(|projection| *projection == fields));
        assert!(fields.params.is_none());
        assert_eq!(
            fields.metrics,
            podium_mlflow::KeySelection::only(["macro-f1"])
        );
        assert!(fields.tags.contains(PARENT_RUN_ID_TAG));
        assert!(!fields.tags.contains(tags.get(Tag::Variant)));
        assert!(!fields.tags.contains(tags.get(Tag::BenchmarkKey)));
    }
}
