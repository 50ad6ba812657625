//! Champion selection per backbone, on runs tagged the way the Python pipeline tags them.
//!
//! The rules (`rules.rs`) do no I/O and do not depend on the order of their input:
//! [`TrialGroups`] takes candidates one at a time and keeps per study group only what the report
//! needs (counts, the best K values, the best trial), [`choose_trial`] runs it over a slice, and
//! [`choose_refit`] picks the champion trial's refit run. [`Selector`] (`selector.rs`) is the I/O
//! shell around them: it streams each backbone's candidates from the store (server-side filters,
//! every page, the pipeline's stage fallback order) into [`TrialGroups`], so memory follows the
//! number of groups rather than of runs, reads the sweep runs the artifact rule consults, runs
//! the disk artifact check, and assembles the [`ChampionReport`].
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

mod distribution;
mod rules;
mod selector;
mod sweeps;

use std::collections::BTreeMap;
use std::fmt;

use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::RunFields;
use serde::Serialize;

use crate::checkpoint::LocalCheckpoint;
use crate::config::{ArtifactCheckSource, CheckpointRun, SchemaPreference, SelectionConfig};
use crate::error::ChampionError;

pub use distribution::{MetricDistribution, STRIP_POINTS};
pub use rules::{
    TrialGroups, artifact_tag_true, artifact_verdict, available_by_verdicts, choose_refit,
    choose_trial, countable_metric, schema_label, trial_artifact_available,
};
pub use selector::{
    CANDIDATE_PAGE_SIZE, Selector, search_trial_candidates, select_champion,
    stream_trial_candidates,
};
pub use sweeps::MAX_WAITING_TRIALS;

/// MLflow's own tag holding a nested run's parent (the sweep run of a trial).
pub const PARENT_RUN_ID_TAG: &str = "mlflow.parentRunId";

/// Every registry tag selection reads from the runs it fetches (candidates, refits, the
/// champion): here and in the disk check ([`LocalCheckpoints::resolve`](crate::checkpoint::LocalCheckpoints::resolve)). Searches return only
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
    /// The spread of the counted metrics (quartiles and a bounded strip of values); `None`
    /// when the group counted none.
    pub distribution: Option<MetricDistribution>,
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

/// The outcome of rules 1–4: the champion trial and why. `R` is how the trial is held: `&Run`
/// from [`choose_trial`] over a slice, `Run` from [`TrialGroups`] over a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialChoice<R> {
    /// The champion trial run.
    pub trial: R,
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
