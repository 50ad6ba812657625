//! Hash-consistency verification of an HPO experiment: every trial and refit run carries the same
//! v2 `study_key_hash` (and key schema version) as its sweep parent, and every refit names, through
//! `code.refit.of_trial_run_id`, a trial run with the same `trial_key_hash`.
//!
//! The sweep parent of a run is its `code.lineage.hpo_sweep_run_id` tag, else MLflow's own
//! `mlflow.parentRunId`. Runs are read the way selection reads them: a sweep is stage
//! `hpo_sweep`, or the pipeline's stage `hpo` without a parent; a trial is stage `hpo_trial`, or
//! `hpo` with a parent; a refit is stage `hpo_refit`; CV fold runs (no stage) are not checked. A
//! run without a schema-version tag has schema "2.0" (the pipeline tags only sweeps and refits).
//! Problems name the runs involved and come out in a deterministic order.

use std::collections::{BTreeMap, BTreeSet};

use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::{
    Filter, MlflowError, Run, RunFields, TrackingStore, ViewType, search_all_fields,
};
use serde::Serialize;

use crate::error::ChampionError;
use crate::selection::PARENT_RUN_ID_TAG;

/// Every registry tag verification reads (besides [`PARENT_RUN_ID_TAG`]); its search fetches
/// only these.
pub const VERIFY_TAGS: [Tag; 6] = [
    Tag::Stage,
    Tag::StudyKeyHash,
    Tag::StudyKeySchemaVersion,
    Tag::TrialKeyHash,
    Tag::RefitOfTrialRunId,
    Tag::LineageHpoSweepRunId,
];

/// The schema version of v2 study keys, and of a run without the version tag.
pub const V2_SCHEMA_VERSION: &str = "2.0";

/// What an HPO run is, by its stage tag and parent link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// The sweep (parent) run of a study.
    Sweep,
    /// One trial.
    Trial,
    /// The refit of a trial.
    Refit,
}

/// The kind of an HPO run (see the module docs); `None` for runs verification does not check.
pub fn run_kind(run: &Run, tags: &TagRegistry) -> Option<RunKind> {
    let has_parent = run.tag(PARENT_RUN_ID_TAG).is_some();
    match run.tag(tags.get(Tag::Stage))? {
        stage::HPO_SWEEP => Some(RunKind::Sweep),
        stage::HPO_TRIAL => Some(RunKind::Trial),
        stage::HPO_REFIT => Some(RunKind::Refit),
        stage::HPO if has_parent => Some(RunKind::Trial),
        stage::HPO => Some(RunKind::Sweep),
        _ => None,
    }
}

/// What is inconsistent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A sweep run without a study_key_hash tag.
    SweepMissingStudyKeyHash,
    /// A sweep run whose key schema version is not 2.0.
    SweepNotV2,
    /// The run given as parent is not tagged as a sweep.
    ParentNotSweep,
    /// A trial or refit without any link to its sweep.
    MissingParentLink,
    /// The lineage tag and mlflow.parentRunId name different parents.
    ParentLinksDisagree,
    /// The linked parent run does not exist.
    ParentNotFound,
    /// A trial or refit without a study_key_hash tag.
    MissingStudyKeyHash,
    /// A trial or refit whose study_key_hash differs from its sweep's.
    StudyKeyHashMismatch,
    /// A trial or refit whose key schema version differs from its sweep's.
    SchemaVersionMismatch,
    /// A refit without `code.refit.of_trial_run_id`.
    RefitMissingTrialLink,
    /// The trial a refit names does not exist.
    RefitTrialNotFound,
    /// The run a refit names is not an hpo_trial run.
    RefitTrialNotATrial,
    /// A refit or its trial without a trial_key_hash tag.
    MissingTrialKeyHash,
    /// A refit whose trial_key_hash differs from its trial's.
    TrialKeyHashMismatch,
}

impl ProblemKind {
    /// The snake_case name (as in JSON output).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::SweepMissingStudyKeyHash => "sweep_missing_study_key_hash",
            ProblemKind::SweepNotV2 => "sweep_not_v2",
            ProblemKind::ParentNotSweep => "parent_not_sweep",
            ProblemKind::MissingParentLink => "missing_parent_link",
            ProblemKind::ParentLinksDisagree => "parent_links_disagree",
            ProblemKind::ParentNotFound => "parent_not_found",
            ProblemKind::MissingStudyKeyHash => "missing_study_key_hash",
            ProblemKind::StudyKeyHashMismatch => "study_key_hash_mismatch",
            ProblemKind::SchemaVersionMismatch => "schema_version_mismatch",
            ProblemKind::RefitMissingTrialLink => "refit_missing_trial_link",
            ProblemKind::RefitTrialNotFound => "refit_trial_not_found",
            ProblemKind::RefitTrialNotATrial => "refit_trial_not_a_trial",
            ProblemKind::MissingTrialKeyHash => "missing_trial_key_hash",
            ProblemKind::TrialKeyHashMismatch => "trial_key_hash_mismatch",
        }
    }
}

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct HashProblem {
    /// What kind.
    pub kind: ProblemKind,
    /// The run with the problem.
    pub run_id: String,
    /// The other run involved (sweep parent or linked trial), when there is one.
    pub related_run_id: Option<String>,
    /// A sentence with the values involved.
    pub message: String,
}

/// The verification result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashReport {
    /// The experiment checked.
    pub experiment: String,
    /// Its id.
    pub experiment_id: String,
    /// The sweep given with `--parent-run-id`, if any.
    pub parent_run_id: Option<String>,
    /// Sweep runs checked.
    pub sweeps: usize,
    /// Trial runs checked.
    pub trials: usize,
    /// Refit runs checked.
    pub refits: usize,
    /// Every problem, sorted by kind then run id.
    pub problems: Vec<HashProblem>,
}

impl HashReport {
    /// True when nothing is inconsistent.
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Looks up runs of the experiment, then the store (a parent may live in another experiment).
struct Runs<'a> {
    store: &'a dyn TrackingStore,
    local: BTreeMap<String, Run>,
    fetched: BTreeMap<String, Option<Run>>,
}

impl Runs<'_> {
    fn get(&mut self, run_id: &str) -> Result<Option<Run>, ChampionError> {
        if let Some(run) = self.local.get(run_id) {
            return Ok(Some(run.clone()));
        }
        if let Some(cached) = self.fetched.get(run_id) {
            return Ok(cached.clone());
        }
        let run = match self.store.get_run(run_id) {
            Ok(run) => Some(run),
            Err(MlflowError::NotFound { .. }) => None,
            Err(source) => {
                return Err(ChampionError::MlflowQuery {
                    context: format!("run {run_id} in {}", self.store.describe()),
                    source: Box::new(source),
                });
            }
        };
        self.fetched.insert(run_id.to_string(), run.clone());
        Ok(run)
    }
}

/// Verifies the hash consistency of `experiment_name`'s runs; with `parent_run_id`, only that
/// sweep and the trials/refits linked to it. A missing experiment or parent run is an error.
pub fn verify_hashes(
    store: &dyn TrackingStore,
    tags: &TagRegistry,
    experiment_name: &str,
    parent_run_id: Option<&str>,
) -> Result<HashReport, ChampionError> {
    let experiment = store
        .get_experiment_by_name(experiment_name)
        .map_err(|source| ChampionError::MlflowQuery {
            context: format!("experiment {experiment_name:?}"),
            source: Box::new(source),
        })?
        .ok_or_else(|| ChampionError::MlflowQuery {
            context: format!("verify-hashes of {experiment_name:?}"),
            source: Box::new(MlflowError::NotFound {
                what: "experiment",
                id: experiment_name.to_string(),
                store: store.describe(),
            }),
        })?;
    // Only the lineage tags are read: an experiment of a large sweep is mostly metrics and
    // params that verification never looks at.
    let lineage_tags = RunFields::none()
        .with_tags(VERIFY_TAGS.iter().map(|tag| tags.get(*tag)))
        .with_tags([PARENT_RUN_ID_TAG]);
    let all = search_all_fields(
        store,
        std::slice::from_ref(&experiment.experiment_id),
        &Filter::new(),
        ViewType::ActiveOnly,
        &lineage_tags,
    )
    .map_err(|source| ChampionError::MlflowQuery {
        context: format!("runs of experiment {experiment_name:?}"),
        source: Box::new(source),
    })?;
    let stage_of = |run: &Run| run.tag(tags.get(Tag::Stage)).map(str::to_string);
    let kind_of = |run: &Run| run_kind(run, tags);
    let mut runs = Runs {
        store,
        local: all
            .into_iter()
            .map(|run| (run.id().to_string(), run))
            .collect(),
        fetched: BTreeMap::new(),
    };
    let mut problems = BTreeSet::new();

    let sweep_ids: Vec<String> = match parent_run_id {
        Some(id) => {
            let parent = runs.get(id)?.ok_or_else(|| ChampionError::MlflowQuery {
                context: "--parent-run-id".into(),
                source: Box::new(MlflowError::NotFound {
                    what: "run",
                    id: id.to_string(),
                    store: store.describe(),
                }),
            })?;
            if kind_of(&parent) != Some(RunKind::Sweep) {
                problems.insert(HashProblem {
                    kind: ProblemKind::ParentNotSweep,
                    run_id: id.to_string(),
                    related_run_id: None,
                    message: format!(
                        "run {id} is tagged {}={:?}, not a sweep ({} or {} without a parent)",
                        tags.get(Tag::Stage),
                        stage_of(&parent),
                        stage::HPO_SWEEP,
                        stage::HPO
                    ),
                });
            }
            vec![id.to_string()]
        }
        None => runs
            .local
            .values()
            .filter(|run| kind_of(run) == Some(RunKind::Sweep))
            .map(|run| run.id().to_string())
            .collect(),
    };
    for sweep_id in &sweep_ids {
        if let Some(sweep) = runs.get(sweep_id)? {
            check_sweep(&sweep, tags, &mut problems);
        }
    }

    let children: Vec<Run> = runs
        .local
        .values()
        .filter(|run| matches!(kind_of(run), Some(RunKind::Trial | RunKind::Refit)))
        .cloned()
        .collect();
    let (mut trials, mut refits) = (0, 0);
    for child in &children {
        let is_refit = kind_of(child) == Some(RunKind::Refit);
        let (parent_link, link_problems) = parent_link(child, tags);
        if let Some(wanted) = parent_run_id {
            // Only runs linked to the given sweep, directly or (refits) through their trial.
            let through_trial = is_refit
                && child
                    .tag(tags.get(Tag::RefitOfTrialRunId))
                    .and_then(|trial_id| runs.local.get(trial_id))
                    .and_then(|trial| parent_of(trial, tags))
                    .is_some_and(|id| id == wanted);
            if parent_link.as_deref() != Some(wanted) && !through_trial {
                continue;
            }
        }
        problems.extend(link_problems);
        if is_refit {
            refits += 1;
        } else {
            trials += 1;
        }
        check_against_parent(
            child,
            parent_link.as_deref(),
            &mut runs,
            tags,
            &mut problems,
        )?;
        if is_refit {
            check_refit(child, &mut runs, tags, &mut problems)?;
        }
    }
    let problems: Vec<HashProblem> = problems.into_iter().collect();
    for problem in &problems {
        tracing::warn!(kind = problem.kind.as_str(), run_id = %problem.run_id, "{}", problem.message);
    }
    Ok(HashReport {
        experiment: experiment_name.to_string(),
        experiment_id: experiment.experiment_id,
        parent_run_id: parent_run_id.map(str::to_string),
        sweeps: sweep_ids.len(),
        trials,
        refits,
        problems,
    })
}

fn schema_version<'a>(run: &'a Run, tags: &TagRegistry) -> &'a str {
    run.tag(tags.get(Tag::StudyKeySchemaVersion))
        .unwrap_or(V2_SCHEMA_VERSION)
}

fn check_sweep(sweep: &Run, tags: &TagRegistry, problems: &mut BTreeSet<HashProblem>) {
    let id = sweep.id().to_string();
    if sweep.tag(tags.get(Tag::StudyKeyHash)).is_none() {
        problems.insert(HashProblem {
            kind: ProblemKind::SweepMissingStudyKeyHash,
            run_id: id.clone(),
            related_run_id: None,
            message: format!("sweep {id} has no {} tag", tags.get(Tag::StudyKeyHash)),
        });
    }
    let version = schema_version(sweep, tags);
    if version != V2_SCHEMA_VERSION {
        problems.insert(HashProblem {
            kind: ProblemKind::SweepNotV2,
            run_id: id.clone(),
            related_run_id: None,
            message: format!(
                "sweep {id} has {}={version:?}, expected {V2_SCHEMA_VERSION:?}",
                tags.get(Tag::StudyKeySchemaVersion)
            ),
        });
    }
}

/// The sweep a run links to: the lineage tag, else `mlflow.parentRunId`.
fn parent_of<'a>(run: &'a Run, tags: &TagRegistry) -> Option<&'a str> {
    run.tag(tags.get(Tag::LineageHpoSweepRunId))
        .or_else(|| run.tag(PARENT_RUN_ID_TAG))
}

/// The run's sweep link and the problems with it (reported only for runs in scope).
fn parent_link(run: &Run, tags: &TagRegistry) -> (Option<String>, Vec<HashProblem>) {
    let mut problems = Vec::new();
    let lineage = run.tag(tags.get(Tag::LineageHpoSweepRunId));
    let nested = run.tag(PARENT_RUN_ID_TAG);
    if let (Some(lineage), Some(nested)) = (lineage, nested)
        && lineage != nested
    {
        problems.push(HashProblem {
            kind: ProblemKind::ParentLinksDisagree,
            run_id: run.id().to_string(),
            related_run_id: Some(lineage.to_string()),
            message: format!(
                "run {} has {}={lineage} but {PARENT_RUN_ID_TAG}={nested}",
                run.id(),
                tags.get(Tag::LineageHpoSweepRunId)
            ),
        });
    }
    let parent = parent_of(run, tags).map(str::to_string);
    if parent.is_none() {
        problems.push(HashProblem {
            kind: ProblemKind::MissingParentLink,
            run_id: run.id().to_string(),
            related_run_id: None,
            message: format!(
                "run {} has neither {} nor {PARENT_RUN_ID_TAG}",
                run.id(),
                tags.get(Tag::LineageHpoSweepRunId)
            ),
        });
    }
    (parent, problems)
}

fn check_against_parent(
    run: &Run,
    parent_id: Option<&str>,
    runs: &mut Runs<'_>,
    tags: &TagRegistry,
    problems: &mut BTreeSet<HashProblem>,
) -> Result<(), ChampionError> {
    let id = run.id().to_string();
    let study_tag = tags.get(Tag::StudyKeyHash);
    let own_hash = run.tag(study_tag);
    if own_hash.is_none() {
        problems.insert(HashProblem {
            kind: ProblemKind::MissingStudyKeyHash,
            run_id: id.clone(),
            related_run_id: parent_id.map(str::to_string),
            message: format!("run {id} has no {study_tag} tag"),
        });
    }
    let Some(parent_id) = parent_id else {
        return Ok(());
    };
    let Some(parent) = runs.get(parent_id)? else {
        problems.insert(HashProblem {
            kind: ProblemKind::ParentNotFound,
            run_id: id.clone(),
            related_run_id: Some(parent_id.to_string()),
            message: format!("run {id} links to sweep {parent_id}, which does not exist"),
        });
        return Ok(());
    };
    if let (Some(own), Some(parent_hash)) = (own_hash, parent.tag(study_tag))
        && own != parent_hash
    {
        problems.insert(HashProblem {
            kind: ProblemKind::StudyKeyHashMismatch,
            run_id: id.clone(),
            related_run_id: Some(parent_id.to_string()),
            message: format!(
                "run {id} has {study_tag}={own} but its sweep {parent_id} has {parent_hash}"
            ),
        });
    }
    let (own_version, parent_version) = (schema_version(run, tags), schema_version(&parent, tags));
    if own_version != parent_version {
        problems.insert(HashProblem {
            kind: ProblemKind::SchemaVersionMismatch,
            run_id: id.clone(),
            related_run_id: Some(parent_id.to_string()),
            message: format!(
                "run {id} has {}={own_version:?} but its sweep {parent_id} has {parent_version:?}",
                tags.get(Tag::StudyKeySchemaVersion)
            ),
        });
    }
    Ok(())
}

fn check_refit(
    refit: &Run,
    runs: &mut Runs<'_>,
    tags: &TagRegistry,
    problems: &mut BTreeSet<HashProblem>,
) -> Result<(), ChampionError> {
    let id = refit.id().to_string();
    let link_tag = tags.get(Tag::RefitOfTrialRunId);
    let Some(trial_id) = refit.tag(link_tag) else {
        problems.insert(HashProblem {
            kind: ProblemKind::RefitMissingTrialLink,
            run_id: id.clone(),
            related_run_id: None,
            message: format!("refit {id} has no {link_tag} tag"),
        });
        return Ok(());
    };
    let Some(trial) = runs.get(trial_id)? else {
        problems.insert(HashProblem {
            kind: ProblemKind::RefitTrialNotFound,
            run_id: id.clone(),
            related_run_id: Some(trial_id.to_string()),
            message: format!("refit {id} has {link_tag}={trial_id}, which does not exist"),
        });
        return Ok(());
    };
    let trial_stage = trial.tag(tags.get(Tag::Stage));
    if run_kind(&trial, tags) != Some(RunKind::Trial) {
        problems.insert(HashProblem {
            kind: ProblemKind::RefitTrialNotATrial,
            run_id: id.clone(),
            related_run_id: Some(trial_id.to_string()),
            message: format!(
                "refit {id} has {link_tag}={trial_id}, whose {} is {trial_stage:?}, not a trial \
                 ({:?}, or {:?} with a parent)",
                tags.get(Tag::Stage),
                stage::HPO_TRIAL,
                stage::HPO
            ),
        });
    }
    let hash_tag = tags.get(Tag::TrialKeyHash);
    match (refit.tag(hash_tag), trial.tag(hash_tag)) {
        (Some(own), Some(trial_hash)) if own != trial_hash => {
            problems.insert(HashProblem {
                kind: ProblemKind::TrialKeyHashMismatch,
                run_id: id.clone(),
                related_run_id: Some(trial_id.to_string()),
                message: format!(
                    "refit {id} has {hash_tag}={own} but its trial {trial_id} has {trial_hash}"
                ),
            });
        }
        (Some(_), Some(_)) => {}
        // The pipeline's trials without cross-validation carry no trial_key_hash.
        (Some(_), None) => {}
        (None, _) => {
            let missing_on = &id;
            problems.insert(HashProblem {
                kind: ProblemKind::MissingTrialKeyHash,
                run_id: id.clone(),
                related_run_id: Some(trial_id.to_string()),
                message: format!(
                    "run {missing_on} has no {hash_tag} tag (refit {id}, trial {trial_id})"
                ),
            });
        }
    }
    Ok(())
}
