//! Champion selection per backbone, on runs tagged the way the Python pipeline tags them.
//!
//! The rules live in two pure functions over slices of runs — [`choose_trial`] (candidates to
//! champion trial) and [`choose_refit`] (champion trial to refit run) — that do no I/O and do not
//! depend on the order of their input. [`Selector`] is the I/O shell around them: it queries the
//! store (server-side filters, every page, the pipeline's stage fallback order), reads the sweep
//! runs the artifact rule consults, runs the disk artifact check, and assembles the
//! [`ChampionReport`].
//!
//! The rules, as the pipeline's selection applies them:
//! 1. Candidates: FINISHED runs of the HPO experiment from the first non-empty of: stage
//!    `hpo_trial` with the backbone tag, `hpo_trial`, `hpo` with the backbone tag, `hpo`. Only
//!    runs with an `mlflow.parentRunId` (trials, not sweeps) stay.
//! 2. With `require_artifact_available`, a trial's parent sweep decides when it has the artifact
//!    tag ("true" in any case keeps; anything else drops, unless the sweep has no schema-version
//!    tag: legacy, kept); else the trial's own tag by the same rule; no tag anywhere keeps it.
//! 3. A run's schema version is its own tag, else "2.0"; "2.0" runs form v2 groups, any other
//!    value v1 groups. `2.0` and `auto` use v2 groups only, `1.0` v1 groups only, mixed both.
//! 4. Groups with fewer finite metrics than `min_trials_per_group` drop out; the stable score is
//!    the median of the best K. Ties never depend on store order: the group whose newest
//!    candidate started last wins a stable-score tie (then the smaller run id), and among trials
//!    tied on the best metric the earliest-started (then the smaller run id) wins — Optuna's
//!    `best_trial`, the trial the pipeline refits.
//! 5. The refit: runs with the champion's trial_key_hash and stage `hpo_refit` (any status), else
//!    runs whose `refit.of_trial_run_id` names the champion; the latest start wins.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::{
    Direction, Filter, Run, RunFields, RunStatus, TrackingStore, ViewType, search_all_fields,
};
use podium_variants::{Environment, ExperimentConfig, OutputLayout, backbone_short_name};
use serde::Serialize;

use crate::checkpoint::{LocalCheckpoint, LocalCheckpoints, checkpoint_artifact_paths};
use crate::config::{ArtifactCheckSource, CheckpointRun, SchemaPreference, SelectionConfig};
use crate::error::ChampionError;

/// MLflow's own tag holding a nested run's parent (the sweep run of a trial).
pub const PARENT_RUN_ID_TAG: &str = "mlflow.parentRunId";

/// Every registry tag selection reads from the runs it fetches (candidates, refits, the
/// champion): here and in the disk check ([`LocalCheckpoints::resolve`]). Searches return only
/// these, [`PARENT_RUN_ID_TAG`] and the objective metric ([`selection_fields`]), so a new read
/// of a tag must add it here; the tests compare selection on projected and on whole runs.
pub const SELECTION_TAGS: [Tag; 10] = [
    Tag::Stage,
    Tag::StudyKeyHash,
    Tag::StudyKeySchemaVersion,
    Tag::TrialKeyHash,
    Tag::ArtifactAvailable,
    Tag::ArtifactCheckpointPath,
    Tag::RefitOfTrialRunId,
    Tag::LineageHpoSweepRunId,
    Tag::DataFingerprint,
    Tag::EvalFingerprint,
];

/// The projection of selection's searches: what it reads of a run, and nothing else (a large
/// sweep's runs carry far more tags, params and metrics than selection needs).
pub fn selection_fields(config: &SelectionConfig, tags: &TagRegistry) -> RunFields {
    RunFields::none()
        .with_tags(SELECTION_TAGS.iter().map(|tag| tags.get(*tag)))
        .with_tags([PARENT_RUN_ID_TAG])
        .with_metrics([config.objective.metric.as_str()])
}

/// The label of v1 groups: runs whose schema-version tag is anything but "2.0".
pub const LEGACY_SCHEMA_VERSION: &str = "1.0";

/// The stages a trial run may carry, in the order the candidate queries try them: older stores'
/// `hpo_trial` first, then the pipeline's `hpo` (shared with its sweep runs).
pub const TRIAL_STAGES: [&str; 2] = [stage::HPO_TRIAL, stage::HPO];

/// Schema version of v2 study keys, and of runs without a schema-version tag (the pipeline's
/// trial runs carry none).
pub const V2_SCHEMA_VERSION: &str = "2.0";

/// `schema_version_used` when v1 and v2 groups competed together.
pub const MIXED_SCHEMA: &str = "mixed";

/// How many candidate runs were dropped, per reason. Each candidate is counted at most once, at
/// the first rule that drops it, so `total() + counted trials of eligible groups = candidates`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DropCounts {
    /// Step 1: no `mlflow.parentRunId` (a sweep run, not a trial).
    pub not_a_child_run: usize,
    /// Step 2: checkpoint not available (tag not "true", or not found on disk).
    pub artifact_unavailable: usize,
    /// Step 3: no study_key_hash tag.
    pub missing_study_key_hash: usize,
    /// Step 3: in a group of the schema version that was not used.
    pub schema_not_used: usize,
    /// Step 4: the objective metric was never logged.
    pub missing_metric: usize,
    /// Step 4: NaN, ±inf or the ±1.7976931348623157e308 sentinels.
    pub non_finite_metric: usize,
    /// Step 4: a valid trial of a group with fewer than `min_trials_per_group` valid trials.
    pub group_below_min_trials: usize,
}

impl DropCounts {
    /// Every dropped run.
    pub fn total(&self) -> usize {
        self.reasons().iter().map(|(_, count)| count).sum()
    }

    /// (reason, count) for every reason, in rule order.
    pub fn reasons(&self) -> [(&'static str, usize); 7] {
        [
            ("not_a_child_run", self.not_a_child_run),
            ("artifact_unavailable", self.artifact_unavailable),
            ("missing_study_key_hash", self.missing_study_key_hash),
            ("schema_not_used", self.schema_not_used),
            ("missing_metric", self.missing_metric),
            ("non_finite_metric", self.non_finite_metric),
            ("group_below_min_trials", self.group_below_min_trials),
        ]
    }
}

impl fmt::Display for DropCounts {
    /// The non-zero reasons, `reason=count` comma-separated, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .reasons()
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(reason, count)| format!("{reason}={count}"))
            .collect();
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// What happened to a study group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupStatus {
    /// The group the champion comes from.
    Winner,
    /// Competed and lost.
    Eligible,
    /// Fewer valid trials than `min_trials_per_group`.
    BelowMinTrials,
    /// Its schema version was not used (`prefer_schema_version`).
    SchemaNotUsed,
}

/// One study group (runs sharing a study_key_hash and schema version).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// The group's study key hash.
    pub study_key_hash: String,
    /// "1.0" or "2.0".
    pub schema_version: String,
    /// 1 for the winner, 2 for the runner-up, … (eligible groups only).
    pub rank: Option<usize>,
    /// What happened to the group.
    pub status: GroupStatus,
    /// Candidate runs in the group (after the artifact rule).
    pub runs: usize,
    /// Runs with a finite objective metric.
    pub counted_trials: usize,
    /// Runs without the metric.
    pub missing_metric: usize,
    /// Runs with a non-finite metric.
    pub non_finite_metric: usize,
    /// Best finite metric of the group.
    pub best_metric: Option<f64>,
    /// Median of the best K finite metrics (eligible groups only).
    pub stable_score: Option<f64>,
}

/// The rules in force for a selection (step 7's metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SelectionMetadata {
    /// The objective metric.
    pub metric: String,
    /// maximize or minimize.
    pub direction: String,
    /// Minimum valid trials per group.
    pub min_trials_per_group: usize,
    /// K of the stable score (after the clamp).
    pub top_k_for_stable_score: usize,
    /// Whether the checkpoint must be available.
    pub require_artifact_available: bool,
    /// How availability is checked.
    pub artifact_check_source: ArtifactCheckSource,
    /// Which run provides the checkpoint.
    pub checkpoint_source: CheckpointRun,
    /// The configured schema preference.
    pub prefer_schema_version: SchemaPreference,
    /// Whether v1 and v2 groups may compete together.
    pub allow_mixed_schema_groups: bool,
    /// The schema whose groups competed: "2.0", "1.0" or "mixed".
    pub schema_version_used: String,
    /// FINISHED hpo_trial runs the store returned.
    pub candidates: usize,
}

/// The outcome of steps 2–5: the champion trial and why.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialChoice<'a> {
    /// The champion trial run.
    pub trial: &'a Run,
    /// Its objective metric.
    pub metric: f64,
    /// The winning group.
    pub study_key_hash: String,
    /// The winning group's schema version.
    pub schema_version: String,
    /// The winning group's stable score.
    pub stable_score: f64,
    /// Valid trials of the winning group.
    pub counted_trials: usize,
    /// "2.0", "1.0" or "mixed".
    pub schema_version_used: String,
    /// Every group, winner first, then the other eligible groups by rank, then the rest by hash.
    pub groups: Vec<GroupSummary>,
    /// Drops per reason.
    pub dropped: DropCounts,
}

/// How the refit run was linked to the champion trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefitMatch {
    /// Its `refit.of_trial_run_id` tag names the trial run.
    LinkTag,
    /// Stage `hpo_refit` and the trial's trial_key_hash (tried first).
    KeyHashes,
}

/// Where the champion checkpoint lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointLocation {
    /// The run whose checkpoint it is.
    pub run_id: String,
    /// Where the run's checkpoint artifact is: `{artifact_uri}/best_trial_checkpoint.tar.gz` for a
    /// refit run (the archive the pipeline logs), `{artifact_uri}/checkpoint` otherwise.
    pub artifact_uri: String,
    /// The run's `artifact.checkpoint_path` tag, if any.
    pub checkpoint_path_tag: Option<String>,
    /// The directory on this machine, when one of the local steps of acquisition finds one.
    pub local: Option<LocalCheckpoint>,
}

/// The champion of a backbone (step 7).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Champion {
    /// The run whose checkpoint is used (the refit run, or the trial with checkpoint_source=trial).
    pub run_id: String,
    /// The champion trial run.
    pub trial_run_id: String,
    /// The refit run (checkpoint_source=refit).
    pub refit_run_id: Option<String>,
    /// How the refit run was found.
    pub refit_matched_by: Option<RefitMatch>,
    /// The sweep (parent) run: lineage tag, else `mlflow.parentRunId`.
    pub sweep_run_id: Option<String>,
    /// The trial's trial_key_hash.
    pub trial_key_hash: Option<String>,
    /// The winning group's study_key_hash.
    pub study_key_hash: String,
    /// The champion trial's objective metric.
    pub metric: f64,
    /// The winning group's stable score.
    pub stable_score: f64,
    /// The winning group's schema version.
    pub schema_version: String,
    /// Valid trials of the winning group.
    pub counted_trials: usize,
    /// `fingerprint.data` of the trial (else of the refit run).
    pub data_fingerprint: Option<String>,
    /// `fingerprint.eval` of the trial (else of the refit run).
    pub eval_fingerprint: Option<String>,
    /// Where the checkpoint is.
    pub checkpoint: CheckpointLocation,
}

/// One backbone's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChampionReport {
    /// The backbone as asked for.
    pub backbone: String,
    /// The short backbone name the runs are tagged with.
    pub model: String,
    /// The HPO experiment searched.
    pub experiment: String,
    /// The champion.
    pub champion: Champion,
    /// Every group's summary.
    pub groups: Vec<GroupSummary>,
    /// The rules in force.
    pub metadata: SelectionMetadata,
    /// Runs dropped per reason.
    pub dropped: DropCounts,
}

/// Every backbone's answer: champions and errors, by backbone.
#[derive(Debug, Default)]
pub struct SelectionResults {
    /// Backbones with a champion.
    pub champions: BTreeMap<String, ChampionReport>,
    /// Backbones without one, and why.
    pub errors: BTreeMap<String, ChampionError>,
}

/// True when the `artifact.available` tag says "true" (any case).
pub fn artifact_tag_true(run: &Run, tags: &TagRegistry) -> bool {
    run.tag(tags.get(Tag::ArtifactAvailable))
        .is_some_and(|value| value.eq_ignore_ascii_case("true"))
}

/// The tag-based artifact rule for one trial: its parent sweep's `artifact.available` tag
/// decides when present, else the trial's own; "true" (any case) keeps, any other value drops
/// unless the run carrying it has no schema-version tag (a legacy run: kept); no tag on either
/// keeps the trial (its checkpoint may still be on the way).
///
/// ```
/// use std::collections::BTreeMap;
/// use podium_champion::selection::trial_artifact_available;
/// use podium_keys::TagRegistry;
/// use podium_mlflow::{Run, RunInfo, RunStatus};
///
/// let run = |tags: &[(&str, &str)]| Run {
///     info: RunInfo { run_id: "r".into(), experiment_id: "1".into(), run_name: "r".into(),
///         status: RunStatus::Finished, start_time: Some(1), end_time: None,
///         artifact_uri: String::new(), lifecycle_stage: "active".into() },
///     tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
///     params: BTreeMap::new(), metrics: BTreeMap::new(),
/// };
/// let tags = TagRegistry::defaults();
/// let trial = run(&[("code.artifact.available", "true")]);
/// let sweep_false = run(&[("code.artifact.available", "false"), ("code.study.key_schema_version", "2.0")]);
/// let legacy_sweep_false = run(&[("code.artifact.available", "false")]);
/// assert!(!trial_artifact_available(&trial, Some(&sweep_false), &tags)); // the parent decides
/// assert!(trial_artifact_available(&trial, Some(&legacy_sweep_false), &tags));
/// assert!(trial_artifact_available(&run(&[]), None, &tags));
/// ```
pub fn trial_artifact_available(trial: &Run, parent: Option<&Run>, tags: &TagRegistry) -> bool {
    let artifact_key = tags.get(Tag::ArtifactAvailable);
    let decides = |run: &Run| {
        run.tag(artifact_key).map(|value| {
            value.eq_ignore_ascii_case("true")
                || run.tag(tags.get(Tag::StudyKeySchemaVersion)).is_none()
        })
    };
    parent
        .and_then(decides)
        .or_else(|| decides(trial))
        .unwrap_or(true)
}

/// A metric value that can count: present, not NaN, not ±inf and not a ±f64::MAX sentinel.
pub fn countable_metric(value: f64) -> bool {
    value.is_finite() && value.abs() < f64::MAX
}

/// `Less` when `a` is better than `b` in `direction`. Both are finite.
fn better(direction: Direction, a: f64, b: f64) -> Ordering {
    let ordering = match direction {
        Direction::Maximize => b.partial_cmp(&a),
        Direction::Minimize => a.partial_cmp(&b),
    };
    ordering.unwrap_or(Ordering::Equal)
}

/// The median of the best `top_k` values (`values` sorted best first, non-empty).
fn median_of_best(values: &[f64], top_k: usize) -> f64 {
    let k = top_k.min(values.len()).max(1);
    let best = &values[..k];
    if k % 2 == 1 {
        best[k / 2]
    } else {
        // Halving first keeps the mean finite for huge values and exact under negation.
        best[k / 2 - 1] / 2.0 + best[k / 2] / 2.0
    }
}

/// A run's start time for ordering; a run without one counts as the oldest.
fn start_of(run: &Run) -> i64 {
    run.info.start_time.unwrap_or(i64::MIN)
}

/// Trial order within the winning group: best metric, then earlier start time, then smaller
/// run id — the first trial to reach the best value, as Optuna's `best_trial` names it.
fn trial_order(direction: Direction, a: (&Run, f64), b: (&Run, f64)) -> Ordering {
    better(direction, a.1, b.1)
        .then_with(|| start_of(a.0).cmp(&start_of(b.0)))
        .then_with(|| a.0.id().cmp(b.0.id()))
}

/// `Less` when `a` comes first in MLflow's default run order (newest start first, then the
/// smaller run id).
fn newest_first(a: &Run, b: &Run) -> Ordering {
    start_of(b)
        .cmp(&start_of(a))
        .then_with(|| a.id().cmp(b.id()))
}

struct Group<'a> {
    study_key_hash: String,
    schema_version: String,
    runs: usize,
    /// The group's run that comes first in MLflow's default order (its newest candidate).
    newest: &'a Run,
    valid: Vec<(&'a Run, f64)>,
    missing_metric: usize,
    non_finite_metric: usize,
}

impl Group<'_> {
    fn summary(
        &self,
        status: GroupStatus,
        stable_score: Option<f64>,
        direction: Direction,
    ) -> GroupSummary {
        GroupSummary {
            study_key_hash: self.study_key_hash.clone(),
            schema_version: self.schema_version.clone(),
            rank: None,
            status,
            runs: self.runs,
            counted_trials: self.valid.len(),
            missing_metric: self.missing_metric,
            non_finite_metric: self.non_finite_metric,
            best_metric: self
                .valid
                .iter()
                .map(|(_, value)| *value)
                .min_by(|a, b| better(direction, *a, *b)),
            stable_score,
        }
    }
}

/// The schema label of a run: "2.0" when its schema-version tag is "2.0" or missing, else
/// "1.0" (every other value is a v1 study key).
pub fn schema_label(run: &Run, tags: &TagRegistry) -> &'static str {
    match run.tag(tags.get(Tag::StudyKeySchemaVersion)) {
        None | Some(V2_SCHEMA_VERSION) => V2_SCHEMA_VERSION,
        Some(_) => LEGACY_SCHEMA_VERSION,
    }
}

/// Candidates to champion trial (rules 1–4 of the module docs) over the candidate runs (the
/// FINISHED runs of one backbone's stage query). Pure: `artifact_available` is consulted only
/// with `require_artifact_available`, and the answer does not depend on the order of `runs`.
///
/// ```
/// use std::collections::BTreeMap;
/// use podium_champion::config::SelectionConfig;
/// use podium_champion::selection::choose_trial;
/// use podium_keys::TagRegistry;
/// use podium_mlflow::{Run, RunInfo, RunStatus};
///
/// let run = |id: &str, study: &str, f1: f64| Run {
///     info: RunInfo { run_id: id.into(), experiment_id: "1".into(), run_name: id.into(),
///         status: RunStatus::Finished, start_time: Some(1), end_time: Some(2),
///         artifact_uri: String::new(), lifecycle_stage: "active".into() },
///     tags: BTreeMap::from([
///         ("code.study_key_hash".to_string(), study.to_string()),
///         ("mlflow.parentRunId".to_string(), format!("sweep-{study}")),
///     ]),
///     params: BTreeMap::new(),
///     metrics: BTreeMap::from([("macro-f1".to_string(), f1)]),
/// };
/// let runs = vec![
///     run("a1", "A", 0.80), run("a2", "A", 0.81), run("a3", "A", 0.82),
///     run("b1", "B", 0.70), run("b2", "B", 0.79), run("b3", "B", 0.90), // lucky single trial
/// ];
/// let config = SelectionConfig::default();
/// let choice = choose_trial("distilbert", &runs, &config, &TagRegistry::defaults(), &|_| true)?;
/// assert_eq!(choice.study_key_hash, "A"); // median of best 3: 0.81 > 0.79
/// assert_eq!(choice.trial.info.run_id, "a3");
/// assert_eq!(choice.schema_version, "2.0"); // no schema tag: "2.0"
/// # Ok::<(), podium_champion::ChampionError>(())
/// ```
pub fn choose_trial<'a>(
    backbone: &str,
    runs: &'a [Run],
    config: &SelectionConfig,
    tags: &TagRegistry,
    artifact_available: &dyn Fn(&Run) -> bool,
) -> Result<TrialChoice<'a>, ChampionError> {
    let rules = &config.champion_selection;
    let metric = config.objective.metric.as_str();
    let direction = config.objective.direction;
    let mixed = rules.allow_mixed_schema_groups;
    let mut dropped = DropCounts::default();

    // A store paging while runs are added may return a run twice; it must count once.
    let mut seen = BTreeSet::new();
    let unique: Vec<&Run> = runs.iter().filter(|run| seen.insert(run.id())).collect();

    let mut groups: BTreeMap<(String, String), Group<'a>> = BTreeMap::new();
    let mut has_v1 = false;
    let mut has_v2 = false;
    for run in unique {
        // Rule 1: only trials (children of a sweep).
        if run.tag(PARENT_RUN_ID_TAG).is_none() {
            dropped.not_a_child_run += 1;
            continue;
        }
        // Rule 2.
        if rules.require_artifact_available && !artifact_available(run) {
            dropped.artifact_unavailable += 1;
            continue;
        }
        // Rule 3.
        let Some(study_key_hash) = run
            .tag(tags.get(Tag::StudyKeyHash))
            .filter(|hash| !hash.is_empty())
        else {
            dropped.missing_study_key_hash += 1;
            continue;
        };
        let schema_version = schema_label(run, tags);
        has_v1 |= schema_version == LEGACY_SCHEMA_VERSION;
        has_v2 |= schema_version == V2_SCHEMA_VERSION;
        // Mixed: one group per study key hash, whatever the schema of its runs.
        let group_schema = if mixed { "" } else { schema_version };
        let group = groups
            .entry((group_schema.to_string(), study_key_hash.to_string()))
            .or_insert_with(|| Group {
                study_key_hash: study_key_hash.to_string(),
                schema_version: schema_version.to_string(),
                runs: 0,
                newest: run,
                valid: Vec::new(),
                missing_metric: 0,
                non_finite_metric: 0,
            });
        if group.schema_version != schema_version {
            group.schema_version = MIXED_SCHEMA.to_string();
        }
        if newest_first(run, group.newest) == Ordering::Less {
            group.newest = run;
        }
        group.runs += 1;
        // Rule 4's metric rule, counted per group for the summaries.
        match run.metric(metric) {
            None => group.missing_metric += 1,
            Some(value) if !countable_metric(value) => group.non_finite_metric += 1,
            Some(value) => group.valid.push((run, value)),
        }
    }

    let schema_version_used = if mixed {
        if has_v1 && has_v2 {
            tracing::warn!(
                backbone,
                "allow_mixed_schema_groups is on: schema 1.0 and 2.0 runs compete together \
                 (one group per study key hash), although their study keys are not comparable"
            );
        }
        MIXED_SCHEMA
    } else {
        match rules.prefer_schema_version {
            SchemaPreference::V2 | SchemaPreference::Auto => V2_SCHEMA_VERSION,
            SchemaPreference::V1 => LEGACY_SCHEMA_VERSION,
        }
    };
    let schema_used = |group: &Group<'_>| mixed || group.schema_version == schema_version_used;
    if !mixed && has_v1 && has_v2 {
        tracing::info!(
            backbone,
            "schema 1.0 and 2.0 groups found; using only {schema_version_used} groups (never mixing)"
        );
    }

    let mut summaries = Vec::new();
    let mut eligible: Vec<(Group<'a>, f64)> = Vec::new();
    let mut largest_valid = 0;
    let mut used_groups = 0;
    for (_, mut group) in groups {
        if !schema_used(&group) {
            dropped.schema_not_used += group.runs;
            summaries.push(group.summary(GroupStatus::SchemaNotUsed, None, direction));
            continue;
        }
        used_groups += 1;
        dropped.missing_metric += group.missing_metric;
        dropped.non_finite_metric += group.non_finite_metric;
        largest_valid = largest_valid.max(group.valid.len());
        if group.valid.is_empty() || group.valid.len() < rules.min_trials_per_group {
            dropped.group_below_min_trials += group.valid.len();
            summaries.push(group.summary(GroupStatus::BelowMinTrials, None, direction));
            continue;
        }
        group.valid.sort_by(|a, b| trial_order(direction, *a, *b));
        let values: Vec<f64> = group.valid.iter().map(|(_, value)| *value).collect();
        let stable = median_of_best(&values, rules.top_k_for_stable_score);
        eligible.push((group, stable));
    }

    // Rule 4: best stable score, then the group whose newest candidate comes first in MLflow's
    // default order (the group the pipeline's `max()` keeps), then the study key hash.
    eligible.sort_by(|(a, a_score), (b, b_score)| {
        better(direction, *a_score, *b_score)
            .then_with(|| newest_first(a.newest, b.newest))
            .then_with(|| a.study_key_hash.cmp(&b.study_key_hash))
            .then_with(|| a.schema_version.cmp(&b.schema_version))
    });
    let Some((winner, winner_score)) = eligible.first() else {
        let reason = no_group_reason(
            config,
            schema_version_used,
            &summaries,
            used_groups,
            largest_valid,
            &dropped,
        );
        return Err(ChampionError::NoEligibleGroup {
            backbone: backbone.to_string(),
            reason,
            dropped,
        });
    };
    let (trial, metric_value) = winner.valid[0];
    let mut ranked: Vec<GroupSummary> = eligible
        .iter()
        .enumerate()
        .map(|(index, (group, score))| {
            let status = if index == 0 {
                GroupStatus::Winner
            } else {
                GroupStatus::Eligible
            };
            let mut summary = group.summary(status, Some(*score), direction);
            summary.rank = Some(index + 1);
            summary
        })
        .collect();
    summaries.sort_by(|a, b| {
        (a.status, &a.study_key_hash, &a.schema_version).cmp(&(
            b.status,
            &b.study_key_hash,
            &b.schema_version,
        ))
    });
    ranked.extend(summaries);
    Ok(TrialChoice {
        trial,
        metric: metric_value,
        study_key_hash: winner.study_key_hash.clone(),
        schema_version: winner.schema_version.clone(),
        stable_score: *winner_score,
        counted_trials: winner.valid.len(),
        schema_version_used: schema_version_used.to_string(),
        groups: ranked,
        dropped,
    })
}

/// Why no group qualified, in words a user can act on.
fn no_group_reason(
    config: &SelectionConfig,
    schema_version_used: &str,
    summaries: &[GroupSummary],
    used_groups: usize,
    largest_valid: usize,
    dropped: &DropCounts,
) -> String {
    let rules = &config.champion_selection;
    let metric = &config.objective.metric;
    let other_groups: Vec<&GroupSummary> = summaries
        .iter()
        .filter(|group| group.status == GroupStatus::SchemaNotUsed)
        .collect();
    if used_groups == 0 && !other_groups.is_empty() {
        let other = &other_groups[0].schema_version;
        return format!(
            "prefer_schema_version is \"{}\", which selects only schema {schema_version_used} \
             groups, but only schema {other} groups exist ({} groups, {} runs); v1 and v2 groups \
             are never mixed — set prefer_schema_version to \"{other}\" (or \
             allow_mixed_schema_groups: true) to select them",
            rules.prefer_schema_version,
            other_groups.len(),
            dropped.schema_not_used,
        );
    }
    if used_groups == 0 {
        if dropped.artifact_unavailable > 0
            && dropped.total() == dropped.artifact_unavailable + dropped.not_a_child_run
        {
            return format!(
                "no trial run has an available checkpoint (artifact check: {})",
                rules.artifact_check_source
            );
        }
        if dropped.total() == dropped.not_a_child_run {
            return format!(
                "no candidate run has an {PARENT_RUN_ID_TAG} tag (only sweep runs, no trials)"
            );
        }
        return "no trial run has a study_key_hash tag".to_string();
    }
    format!(
        "no schema {schema_version_used} group has at least {} trials with a finite `{metric}` \
         (min_trials_per_group; the largest group has {largest_valid})",
        rules.min_trials_per_group
    )
}

/// The champion trial's refit (rule 5 of the module docs) among `refits`: runs with stage
/// `hpo_refit` and the trial's trial_key_hash (any status), else runs whose
/// `refit.of_trial_run_id` names the trial; the latest start wins, then the smaller run id.
/// Pure and order-independent.
pub fn choose_refit<'a>(
    trial: &Run,
    refits: &'a [Run],
    tags: &TagRegistry,
) -> Option<(&'a Run, RefitMatch)> {
    let latest =
        |candidates: Vec<&'a Run>| candidates.into_iter().min_by(|a, b| newest_first(a, b));
    let trial_key = tags.get(Tag::TrialKeyHash);
    if let Some(trial_hash) = trial.tag(trial_key).filter(|hash| !hash.is_empty()) {
        let same_key: Vec<&Run> = refits
            .iter()
            .filter(|run| run.tag(tags.get(Tag::Stage)) == Some(stage::HPO_REFIT))
            .filter(|run| run.tag(trial_key) == Some(trial_hash))
            .collect();
        if let Some(refit) = latest(same_key) {
            return Some((refit, RefitMatch::KeyHashes));
        }
    }
    let link_tag = tags.get(Tag::RefitOfTrialRunId);
    let linked: Vec<&Run> = refits
        .iter()
        .filter(|run| run.tag(link_tag) == Some(trial.id()))
        .collect();
    latest(linked).map(|refit| (refit, RefitMatch::LinkTag))
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
) -> Result<(Vec<Run>, String), podium_mlflow::MlflowError> {
    for stage_value in TRIAL_STAGES {
        for with_backbone in [true, false] {
            let mut filter = Filter::new().tag_eq(tags.get(Tag::Stage), stage_value);
            if with_backbone {
                filter = filter.tag_eq(tags.get(Tag::Backbone), model);
            }
            let filter = filter.status(RunStatus::Finished);
            let runs =
                search_all_fields(store, experiment_ids, &filter, ViewType::ActiveOnly, fields)?;
            if !runs.is_empty() {
                return Ok((runs, filter.server_side()));
            }
        }
    }
    Ok((Vec::new(), String::new()))
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

        // Rule 1: filtered by the store, every page, the first non-empty stage query wins.
        let fields = selection_fields(self.config, tags);
        let (candidates, candidate_query) =
            search_trial_candidates(self.store, &experiment_ids, tags, &model, &fields).map_err(
                mlflow_error(format!(
                    "searching trial runs in experiment `{experiment_name}`"
                )),
            )?;
        if candidates.is_empty() {
            return Err(ChampionError::NoCandidates {
                backbone: backbone.to_string(),
                model,
                experiment: experiment_name.to_string(),
            });
        }
        tracing::debug!(
            backbone,
            candidates = candidates.len(),
            query = candidate_query.as_str(),
            "candidate trial runs"
        );

        // Rule 2 reads each trial's parent sweep (a handful of runs per backbone).
        let disk_index = (rules.require_artifact_available
            && rules.artifact_check_source == ArtifactCheckSource::Disk)
            .then(|| LocalCheckpoints::scan(self.layout, self.environment, &model));
        let parents = if rules.require_artifact_available && disk_index.is_none() {
            self.parent_runs(&candidates)
        } else {
            BTreeMap::new()
        };
        let available = |run: &Run| match &disk_index {
            Some(index) => index.resolve(run, tags).is_some(),
            None => {
                let parent = run.tag(PARENT_RUN_ID_TAG).and_then(|id| parents.get(id));
                trial_artifact_available(run, parent, tags)
            }
        };
        let choice = choose_trial(backbone, &candidates, self.config, tags, &available)?;
        // Only the champion trial is needed from here on: the other candidates (tens of
        // thousands of runs on a large sweep) are freed before the refit search and the disk
        // scan, while the other backbones' threads may still be loading theirs.
        let trial = choice.trial.clone();
        let TrialChoice {
            metric,
            study_key_hash,
            schema_version,
            stable_score,
            counted_trials,
            schema_version_used,
            groups,
            dropped,
            ..
        } = choice;
        let candidate_count = candidates.len();
        drop(candidates);
        drop(parents);
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

    /// The parent (sweep) runs of `candidates`, by run id. A parent that cannot be read is left
    /// out: the artifact rule then reads the trial's own tag, as the pipeline does.
    fn parent_runs(&self, candidates: &[Run]) -> BTreeMap<String, Run> {
        let parent_ids: BTreeSet<&str> = candidates
            .iter()
            .filter_map(|run| run.tag(PARENT_RUN_ID_TAG))
            .collect();
        let mut parents = BTreeMap::new();
        for parent_id in parent_ids {
            match self.store.get_run(parent_id) {
                Ok(parent) => {
                    parents.insert(parent_id.to_string(), parent);
                }
                Err(err) => {
                    tracing::debug!(parent_id, "cannot read a trial's parent run: {err}");
                }
            }
        }
        parents
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::path::Path;

    use podium_mlflow::RunInfo;

    use super::*;
    use crate::config::SchemaPreference;
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
