//! The selection rules as pure functions and one accumulator: no I/O, no dependence on the order
//! of their input (see the parent module's docs for the rules).

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::{Direction, Run};

use super::{
    DropCounts, GroupStatus, GroupSummary, LEGACY_SCHEMA_VERSION, MIXED_SCHEMA, MetricDistribution,
    PARENT_RUN_ID_TAG, RefitMatch, TrialChoice, V2_SCHEMA_VERSION,
};
use crate::config::{SchemaPreference, SelectionConfig};
use crate::error::ChampionError;

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
    available_by_verdicts(
        parent.and_then(|parent| artifact_verdict(parent, tags)),
        trial,
        tags,
    )
}

/// What one run's own `artifact.available` tag says under the rule of
/// [`trial_artifact_available`]: None without the tag, else whether it keeps the trial.
pub fn artifact_verdict(run: &Run, tags: &TagRegistry) -> Option<bool> {
    run.tag(tags.get(Tag::ArtifactAvailable)).map(|value| {
        value.eq_ignore_ascii_case("true")
            || run.tag(tags.get(Tag::StudyKeySchemaVersion)).is_none()
    })
}

/// [`trial_artifact_available`] given the parent's [`artifact_verdict`] (so a caller may keep
/// each sweep's verdict rather than the sweep run).
pub fn available_by_verdicts(parent: Option<bool>, trial: &Run, tags: &TagRegistry) -> bool {
    parent
        .or_else(|| artifact_verdict(trial, tags))
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

/// [`newest_first`] on (start time, run id) pairs.
fn newest_first_key(a: (i64, &str), b: (i64, &str)) -> Ordering {
    b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1))
}

/// A run id as selection remembers it to count each run once: the 128 bits of MLflow's
/// 32-hex-digit ids (16 bytes a run), the text of any other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SeenId {
    Hex(u128),
    Text(String),
}

impl SeenId {
    fn of(id: &str) -> Self {
        match u128::from_str_radix(id, 16) {
            Ok(bits) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                SeenId::Hex(bits)
            }
            _ => SeenId::Text(id.to_string()),
        }
    }
}

/// What selection keeps of a study group while its candidates stream by: counts, the best K
/// metric values, its newest candidate's (start, id), its best trial so far, and each counted
/// metric value (8 bytes a trial, for the group's [`MetricDistribution`]) — never a run beyond
/// its best trial.
#[derive(Debug)]
struct Group<R> {
    study_key_hash: String,
    schema_version: String,
    runs: usize,
    /// Start time and id of the group's run that comes first in MLflow's default order (its
    /// newest candidate).
    newest: (i64, String),
    /// The best trial so far by [`trial_order`], with its metric.
    best: Option<(R, f64)>,
    /// The best `top_k` finite metrics, best first.
    top: Vec<f64>,
    /// Every counted metric value, in arrival order (sorted when summarised).
    values: Vec<f64>,
    counted: usize,
    missing_metric: usize,
    non_finite_metric: usize,
}

impl<R: Borrow<Run>> Group<R> {
    fn summary(&self, status: GroupStatus, stable_score: Option<f64>) -> GroupSummary {
        GroupSummary {
            study_key_hash: self.study_key_hash.clone(),
            schema_version: self.schema_version.clone(),
            rank: None,
            status,
            runs: self.runs,
            counted_trials: self.counted,
            missing_metric: self.missing_metric,
            non_finite_metric: self.non_finite_metric,
            best_metric: self.top.first().copied(),
            stable_score,
            distribution: MetricDistribution::of(self.values.clone()),
        }
    }

    fn newest(&self) -> (i64, &str) {
        (self.newest.0, self.newest.1.as_str())
    }

    /// Counts a valid trial: keeps it when it beats the best so far, and its value among the
    /// best `top_k`.
    fn count(&mut self, run: R, value: f64, direction: Direction, top_k: usize) {
        self.counted += 1;
        self.values.push(value);
        let position = self
            .top
            .partition_point(|kept| better(direction, *kept, value) != Ordering::Greater);
        if position < top_k {
            self.top.insert(position, value);
            self.top.truncate(top_k);
        }
        let beats = match &self.best {
            None => true,
            Some((best, best_value)) => {
                trial_order(
                    direction,
                    (run.borrow(), value),
                    (best.borrow(), *best_value),
                ) == Ordering::Less
            }
        };
        if beats {
            self.best = Some((run, value));
        }
    }
}

/// Rules 1–4 of the module docs applied to candidates one at a time, as a store streams them:
/// [`TrialGroups::add`] each candidate, then [`TrialGroups::finish`]. What it holds is bounded
/// by the groups (a few numbers each and one run, its best trial), 16 bytes per candidate (to
/// count a run the store returns twice only once) and 8 per counted metric (the groups'
/// distributions), not by the candidates' data. `R` is
/// how a run is held: `&Run` over a slice ([`choose_trial`]), `Run` over a stream.
#[derive(Debug)]
pub struct TrialGroups<'c, R> {
    config: &'c SelectionConfig,
    tags: &'c TagRegistry,
    seen: HashSet<SeenId>,
    groups: BTreeMap<(String, String), Group<R>>,
    has_v1: bool,
    has_v2: bool,
    candidates: usize,
    dropped: DropCounts,
}

impl<'c, R: Borrow<Run>> TrialGroups<'c, R> {
    /// No candidates yet.
    pub fn new(config: &'c SelectionConfig, tags: &'c TagRegistry) -> Self {
        Self {
            config,
            tags,
            seen: HashSet::new(),
            groups: BTreeMap::new(),
            has_v1: false,
            has_v2: false,
            candidates: 0,
            dropped: DropCounts::default(),
        }
    }

    /// Candidate runs added so far, each counted once.
    pub fn candidates(&self) -> usize {
        self.candidates
    }

    /// Adds one candidate run. `artifact_available` (rule 2) is asked only with
    /// `require_artifact_available`, and only for trials (runs with a parent).
    pub fn add(&mut self, run: R, artifact_available: &mut dyn FnMut(&Run) -> bool) {
        let rules = &self.config.champion_selection;
        let tags = self.tags;
        let borrowed = run.borrow();
        // A store paging while runs are added may return a run twice; it must count once.
        if !self.seen.insert(SeenId::of(borrowed.id())) {
            return;
        }
        self.candidates += 1;
        // Rule 1: only trials (children of a sweep).
        if borrowed.tag(PARENT_RUN_ID_TAG).is_none() {
            self.dropped.not_a_child_run += 1;
            return;
        }
        // Rule 2.
        if rules.require_artifact_available && !artifact_available(borrowed) {
            self.dropped.artifact_unavailable += 1;
            return;
        }
        // Rule 3.
        let Some(study_key_hash) = borrowed
            .tag(tags.get(Tag::StudyKeyHash))
            .filter(|hash| !hash.is_empty())
        else {
            self.dropped.missing_study_key_hash += 1;
            return;
        };
        let schema_version = schema_label(borrowed, tags);
        self.has_v1 |= schema_version == LEGACY_SCHEMA_VERSION;
        self.has_v2 |= schema_version == V2_SCHEMA_VERSION;
        // Mixed: one group per study key hash, whatever the schema of its runs.
        let group_schema = if rules.allow_mixed_schema_groups {
            ""
        } else {
            schema_version
        };
        let start = start_of(borrowed);
        let group = self
            .groups
            .entry((group_schema.to_string(), study_key_hash.to_string()))
            .or_insert_with(|| Group {
                study_key_hash: study_key_hash.to_string(),
                schema_version: schema_version.to_string(),
                runs: 0,
                newest: (start, borrowed.id().to_string()),
                best: None,
                top: Vec::new(),
                values: Vec::new(),
                counted: 0,
                missing_metric: 0,
                non_finite_metric: 0,
            });
        if group.schema_version != schema_version {
            group.schema_version = MIXED_SCHEMA.to_string();
        }
        if newest_first_key((start, borrowed.id()), group.newest()) == Ordering::Less {
            group.newest = (start, borrowed.id().to_string());
        }
        group.runs += 1;
        // Rule 4's metric rule, counted per group for the summaries.
        match borrowed.metric(&self.config.objective.metric) {
            None => group.missing_metric += 1,
            Some(value) if !countable_metric(value) => group.non_finite_metric += 1,
            Some(value) => group.count(
                run,
                value,
                self.config.objective.direction,
                rules.top_k_for_stable_score.max(1),
            ),
        }
    }

    /// Rule 4 over the groups: the champion trial and every group's summary.
    pub fn finish(self, backbone: &str) -> Result<TrialChoice<R>, ChampionError> {
        let config = self.config;
        let rules = &config.champion_selection;
        let direction = config.objective.direction;
        let mixed = rules.allow_mixed_schema_groups;
        let mut dropped = self.dropped;
        let (has_v1, has_v2) = (self.has_v1, self.has_v2);

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
        if !mixed && has_v1 && has_v2 {
            tracing::info!(
                backbone,
                "schema 1.0 and 2.0 groups found; using only {schema_version_used} groups (never mixing)"
            );
        }

        let mut summaries = Vec::new();
        let mut eligible: Vec<(Group<R>, f64)> = Vec::new();
        let mut largest_valid = 0;
        let mut used_groups = 0;
        for (_, group) in self.groups {
            if !(mixed || group.schema_version == schema_version_used) {
                dropped.schema_not_used += group.runs;
                summaries.push(group.summary(GroupStatus::SchemaNotUsed, None));
                continue;
            }
            used_groups += 1;
            dropped.missing_metric += group.missing_metric;
            dropped.non_finite_metric += group.non_finite_metric;
            largest_valid = largest_valid.max(group.counted);
            if group.counted == 0 || group.counted < rules.min_trials_per_group {
                dropped.group_below_min_trials += group.counted;
                summaries.push(group.summary(GroupStatus::BelowMinTrials, None));
                continue;
            }
            let stable = median_of_best(&group.top, rules.top_k_for_stable_score);
            eligible.push((group, stable));
        }

        // Rule 4: best stable score, then the group whose newest candidate comes first in
        // MLflow's default order (the group the pipeline's `max()` keeps), then the study key
        // hash.
        eligible.sort_by(|(a, a_score), (b, b_score)| {
            better(direction, *a_score, *b_score)
                .then_with(|| newest_first_key(a.newest(), b.newest()))
                .then_with(|| a.study_key_hash.cmp(&b.study_key_hash))
                .then_with(|| a.schema_version.cmp(&b.schema_version))
        });
        if eligible.is_empty() {
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
        }
        let mut ranked: Vec<GroupSummary> = eligible
            .iter()
            .enumerate()
            .map(|(index, (group, score))| {
                let status = if index == 0 {
                    GroupStatus::Winner
                } else {
                    GroupStatus::Eligible
                };
                let mut summary = group.summary(status, Some(*score));
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
        let (winner, winner_score) = eligible.swap_remove(0);
        let counted_trials = winner.counted;
        let Some((trial, metric_value)) = winner.best else {
            // An eligible group has counted trials, so it has a best one.
            return Err(ChampionError::NoEligibleGroup {
                backbone: backbone.to_string(),
                reason: "the winning group has no counted trial".to_string(),
                dropped,
            });
        };
        Ok(TrialChoice {
            trial,
            metric: metric_value,
            study_key_hash: winner.study_key_hash,
            schema_version: winner.schema_version,
            stable_score: winner_score,
            counted_trials,
            schema_version_used: schema_version_used.to_string(),
            groups: ranked,
            dropped,
        })
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
) -> Result<TrialChoice<&'a Run>, ChampionError> {
    let mut groups = TrialGroups::new(config, tags);
    for run in runs {
        groups.add(run, &mut |run| artifact_available(run));
    }
    groups.finish(backbone)
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
