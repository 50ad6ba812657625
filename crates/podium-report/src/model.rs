//! The report's data model: everything the page shows, built from the reports the commands
//! already compute — the champions of `podium select`, the benchmark results and the ranking of
//! `podium rank` — and nothing recomputed from raw runs. Serialisable (the insta snapshots are
//! of this model, not of the page).

use std::collections::{BTreeMap, BTreeSet};

use podium_bench::orchestrate::{BenchmarkTarget, MatchedBy, PipelineResult, RecordedBenchmark};
use podium_champion::ChampionReport;
use podium_champion::ranking::{RankedChampion, Ranking};
use podium_champion::selection::{GroupStatus, GroupSummary, MetricDistribution};
use podium_keys::{Tag, TagRegistry};
use podium_mlflow::Direction;
use podium_mlflow::uri::{TrackingTarget, parse_tracking_uri, redact_uri};
use serde::Serialize;

use crate::pareto::{AxisScale, TradeOff, dominated_by, latency_axis};
use crate::text::{short_id, visible};

/// The benchmark settings in force, for the provenance section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkSettingsView {
    /// The config hash in every benchmark key (first 16 hex of the whole `benchmark.yaml`).
    pub config_hash: String,
    /// sha256 of the compact `benchmark.yaml` (the `bench-{b8}` folders, run names).
    pub benchmark_config_hash: String,
    /// Batch sizes timed.
    pub batch_sizes: Vec<usize>,
    /// Tokens per input.
    pub max_length: usize,
    /// The device setting.
    pub device: String,
    /// The harness version a result needs to count (podium's own).
    pub harness_version: u32,
}

/// What a report is built from: the answers of selection, benchmarking and ranking, as
/// podium-project computes them for `podium run` / `podium rank`.
#[derive(Debug, Clone, Copy)]
pub struct ReportInputs<'a> {
    /// The experiment name (`experiment_name` of `experiment/<name>.yaml`).
    pub experiment: &'a str,
    /// The benchmark experiment (`{experiment}-benchmark`).
    pub benchmark_experiment: &'a str,
    /// The objective metric.
    pub metric: &'a str,
    /// Its direction.
    pub direction: Direction,
    /// Every backbone's champion (selection).
    pub champions: &'a BTreeMap<String, ChampionReport>,
    /// Backbones without a champion: why.
    pub selection_errors: &'a BTreeMap<String, String>,
    /// One benchmark target per champion (keys).
    pub targets: &'a [BenchmarkTarget],
    /// Each target's recorded results (podium's runs of its key, else the disk result), in
    /// target order: what ranking read.
    pub recorded: &'a [Vec<RecordedBenchmark>],
    /// The composite ranking of those results.
    pub ranking: &'a Ranking,
    /// Runs the pipeline measured for these champions (shown apart, never ranked).
    pub pipeline_results: &'a [PipelineResult],
    /// The tag registry (to read the runs' harness, threads and CPU tags).
    pub tags: &'a TagRegistry,
    /// The benchmark settings in force.
    pub benchmark: &'a BenchmarkSettingsView,
    /// The tracking URI (credentials are removed here).
    pub tracking_uri: &'a str,
    /// Experiment ids by name (HPO and benchmark experiments), for links to MLflow's UI.
    pub experiment_ids: &'a BTreeMap<String, String>,
    /// When the report is made (UTC, RFC 3339): the caller's clock.
    pub generated_at: &'a str,
    /// The podium version making it.
    pub podium_version: &'a str,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportData {
    /// The experiment.
    pub experiment: String,
    /// The objective metric and its direction.
    pub metric: String,
    /// `maximize` or `minimize`.
    pub direction: String,
    /// What to deploy, and why; `None` when no champion could be ranked.
    pub recommendation: Option<Recommendation>,
    /// Every ranked champion, best first: the scatter's points.
    pub champions: Vec<ChampionPoint>,
    /// How the scatter's latency axis is drawn.
    pub latency_axis: AxisScale,
    /// Champions without the benchmark results ranking needs.
    pub unranked: Vec<Unranked>,
    /// Per backbone: its study groups and why runs lost.
    pub backbones: Vec<BackboneGroups>,
    /// Backbones without a champion, and why.
    pub selection_errors: Vec<Unranked>,
    /// Results the pipeline measured itself (PyTorch): listed apart, never ranked.
    pub pipeline_results: Vec<PipelineRow>,
    /// Where the numbers come from.
    pub provenance: Provenance,
}

/// The recommendation: the composite rank-1 champion, and how far the runner-up is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// The backbone to deploy.
    pub backbone: String,
    /// Its objective metric.
    pub metric: f64,
    /// Its batch-1 latency (the ranking's: mean of the timed passes, aggregated over runs).
    pub latency_ms: f64,
    /// Composite score.
    pub composite_score: f64,
    /// Normalised metric score (1 = best of the champions).
    pub metric_score: f64,
    /// Normalised latency score (1 = fastest).
    pub latency_score: f64,
    /// Weight of the metric score (after normalisation).
    pub f1_weight: f64,
    /// Weight of the latency score.
    pub latency_weight: f64,
    /// How a key's runs became one latency.
    pub latency_aggregation: String,
    /// Whether it is on the Pareto front.
    pub on_front: bool,
    /// The runner-up, when there is one.
    pub runner_up: Option<RunnerUp>,
}

/// The second-ranked champion, relative to the recommendation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerUp {
    /// Its backbone.
    pub backbone: String,
    /// Its composite score.
    pub composite_score: f64,
    /// Recommendation's composite minus the runner-up's (≥ 0).
    pub composite_gap: f64,
    /// Runner-up's metric minus the recommendation's.
    pub metric_delta: f64,
    /// Runner-up's latency minus the recommendation's, in ms.
    pub latency_delta_ms: f64,
}

/// A run, with its link in MLflow's UI when the store is a server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRef {
    /// The full run id, made visible ([`visible`]).
    pub id: String,
    /// Its first 12 characters.
    pub short: String,
    /// `{server}/#/experiments/{experiment_id}/runs/{run_id}`; `None` for a SQLite store or an
    /// unknown experiment.
    pub url: Option<String>,
}

/// One ranked champion: a point of the scatter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChampionPoint {
    /// Composite rank, 1 = best.
    pub rank: usize,
    /// The backbone.
    pub backbone: String,
    /// Objective metric of the champion trial.
    pub metric: f64,
    /// Batch-1 latency as ranked (mean of the timed passes, aggregated over the key's runs).
    pub latency_ms: f64,
    /// Batch-1 median latency of the run standing for the result.
    pub p50_ms: Option<f64>,
    /// Batch-1 95th percentile of that run.
    pub p95_ms: Option<f64>,
    /// Composite score.
    pub composite_score: f64,
    /// Normalised metric score.
    pub metric_score: f64,
    /// Normalised latency score.
    pub latency_score: f64,
    /// On the Pareto front (no other champion is as good and as fast, and better on one).
    pub on_front: bool,
    /// The champions that dominate it (empty on the front).
    pub dominated_by: Vec<String>,
    /// The champion trial.
    pub trial: RunRef,
    /// Its refit run, whose checkpoint was measured.
    pub refit: Option<RunRef>,
    /// The benchmark run standing for the result.
    pub benchmark_run: RunRef,
    /// How many of podium's runs the latency aggregates.
    pub latency_runs: usize,
    /// The benchmark key.
    pub benchmark_key: String,
    /// The champion's study key hash.
    pub study_key_hash: String,
    /// Latency and throughput per batch size (of the run standing for the result).
    pub batches: Vec<BatchRow>,
    /// Where and how it was measured (the run's tags).
    pub measured_on: MeasuredOn,
}

/// One batch size of a benchmark run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRow {
    /// Sequences per forward pass.
    pub batch_size: u64,
    /// Mean latency (the pipeline's `latency_batch_{b}_ms`).
    pub mean_ms: Option<f64>,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 95th percentile.
    pub p95_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Sequences per second.
    pub throughput_seq_per_s: Option<f64>,
}

/// The measuring machine and harness, as the benchmark run's tags record them (`None`: not
/// recorded, e.g. by an older podium).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeasuredOn {
    /// Harness name: always podium's (the pipeline's runs are never ranked).
    pub harness: String,
    /// `benchmark.harness_version`.
    pub harness_version: Option<String>,
    /// `benchmark.podium_version`.
    pub podium_version: Option<String>,
    /// `benchmark.cpu_model`.
    pub cpu_model: Option<String>,
    /// `benchmark.simd`.
    pub simd: Option<String>,
    /// `benchmark.threads`.
    pub threads: Option<String>,
    /// `benchmark.environment`.
    pub environment: Option<String>,
    /// `mlflow` (a FINISHED run) or `disk` (the result file only).
    pub source: String,
}

/// A champion or backbone that is not ranked, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unranked {
    /// The backbone.
    pub backbone: String,
    /// Why.
    pub reason: String,
}

/// One backbone's selection: its groups and the runs that lost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackboneGroups {
    /// The backbone.
    pub backbone: String,
    /// The HPO experiment searched.
    pub experiment: String,
    /// The champion trial.
    pub champion_trial: RunRef,
    /// Its metric.
    pub champion_metric: f64,
    /// K of the stable score.
    pub top_k: usize,
    /// Counted trials a group needs.
    pub min_trials: usize,
    /// Candidate runs the store returned.
    pub candidates: usize,
    /// The groups shown: the winner, then the other eligible ones by rank (at most
    /// [`MAX_ELIGIBLE_SHOWN`] in all), then at most [`MAX_DROPPED_SHOWN`] dropped ones.
    pub groups: Vec<GroupView>,
    /// The groups left out of [`BackboneGroups::groups`], counted.
    pub not_shown: GroupsNotShown,
    /// Runs that lost, per reason (non-zero only, in rule order).
    pub dropped: Vec<DropReason>,
}

/// Eligible groups a backbone's section shows at most (the winner first): a store of thousands
/// of studies still gives a page people read, and a small one.
pub const MAX_ELIGIBLE_SHOWN: usize = 10;

/// Dropped groups a backbone's section shows at most.
pub const MAX_DROPPED_SHOWN: usize = 4;

/// The groups a backbone's section leaves out, counted (`podium select --format json` lists
/// every one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroupsNotShown {
    /// Eligible groups left out (ranked below the ones shown).
    pub eligible: usize,
    /// Dropped groups left out.
    pub dropped: usize,
    /// Candidate runs in the groups left out.
    pub runs: usize,
}

/// One study group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupView {
    /// Its study key hash.
    pub study_key_hash: String,
    /// Its first 8 characters (the pipeline's `study-{s8}` folders).
    pub short_hash: String,
    /// "2.0" or "1.0".
    pub schema_version: String,
    /// What happened to it.
    pub status: GroupStatus,
    /// Why it did not compete (dropped groups only).
    pub reason: Option<String>,
    /// 1 = winner (eligible groups only).
    pub rank: Option<usize>,
    /// Candidate runs.
    pub runs: usize,
    /// Trials with a finite metric.
    pub counted_trials: usize,
    /// Best metric.
    pub best_metric: Option<f64>,
    /// Median of the best K (eligible groups only).
    pub stable_score: Option<f64>,
    /// The spread of its trials' metrics (bounded).
    pub distribution: Option<MetricDistribution>,
}

/// A count of runs dropped for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DropReason {
    /// The reason, as `podium select` names it.
    pub reason: String,
    /// Runs.
    pub count: usize,
}

/// A result the pipeline measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineRow {
    /// The champion's backbone.
    pub backbone: String,
    /// The pipeline's run.
    pub run: RunRef,
    /// How it was found (`benchmark key` or `study + trial hash`).
    pub matched_by: String,
    /// Its batch-1 mean latency.
    pub latency_ms: Option<f64>,
    /// Its batch-1 p95.
    pub p95_ms: Option<f64>,
}

/// Where the numbers come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// The podium version that made the report.
    pub podium_version: String,
    /// The timing harness: podium's.
    pub harness: String,
    /// The harness version a result counts under.
    pub harness_version: u32,
    /// Distinct CPU models of the results shown.
    pub cpu_models: Vec<String>,
    /// Distinct SIMD levels.
    pub simd_levels: Vec<String>,
    /// Distinct thread counts.
    pub threads: Vec<String>,
    /// The benchmark settings.
    pub benchmark: BenchmarkSettingsView,
    /// The benchmark experiment.
    pub benchmark_experiment: String,
    /// Per champion: backbone, study key hash, benchmark key.
    pub keys: Vec<KeyRow>,
    /// The tracking URI, credentials removed.
    pub tracking_uri: String,
    /// Whether run ids link to MLflow's UI.
    pub links: bool,
    /// When the report was made.
    pub generated_at: String,
    /// How ranking aggregated a key's runs, and which statistic its latency is.
    pub latency_aggregation: String,
    /// `mean` (of each run's timed passes).
    pub latency_statistic: String,
}

/// A champion's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRow {
    /// The backbone.
    pub backbone: String,
    /// Its study key hash.
    pub study_key_hash: String,
    /// Its benchmark key.
    pub benchmark_key: String,
}

/// Links to runs in MLflow's UI: the server's base URL (credentials removed), when the store
/// is a server.
struct Links<'a> {
    base: Option<String>,
    experiment_ids: &'a BTreeMap<String, String>,
}

impl Links<'_> {
    fn run(&self, run_id: &str, experiment_id: Option<&str>) -> RunRef {
        let url = match (&self.base, experiment_id) {
            (Some(base), Some(experiment)) => Some(format!(
                "{base}/#/experiments/{}/runs/{}",
                url_segment(experiment),
                url_segment(run_id)
            )),
            _ => None,
        };
        RunRef {
            id: visible(run_id).into_owned(),
            short: visible(&short_id(run_id)).into_owned(),
            url,
        }
    }

    fn run_in(&self, run_id: &str, experiment_name: &str) -> RunRef {
        self.run(
            run_id,
            self.experiment_ids.get(experiment_name).map(String::as_str),
        )
    }
}

/// `text` percent-encoded for one URL path segment (an id from the store).
fn url_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The base URL of MLflow's UI for a tracking URI: a server's URL without credentials, query
/// or fragment; `None` for anything else (a SQLite file has no UI of its own).
///
/// ```
/// use podium_report::model::ui_base;
/// assert_eq!(ui_base("https://me:secret@mlflow.example.com/"), Some("https://mlflow.example.com".into()));
/// assert_eq!(ui_base("http://127.0.0.1:5000/prefix"), Some("http://127.0.0.1:5000/prefix".into()));
/// assert_eq!(ui_base("sqlite:///mlflow.db"), None);
/// ```
pub fn ui_base(tracking_uri: &str) -> Option<String> {
    let TrackingTarget::Rest(base) = parse_tracking_uri(tracking_uri).ok()? else {
        return None;
    };
    let (scheme, rest) = base.split_once("://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    Some(format!("{scheme}://{host}{}", path.trim_end_matches('/')))
}

impl ReportData {
    /// The report of `inputs`.
    pub fn build(inputs: &ReportInputs<'_>) -> ReportData {
        let links = Links {
            base: ui_base(inputs.tracking_uri),
            experiment_ids: inputs.experiment_ids,
        };
        let champions = champion_points(inputs, &links);
        let latency_axis = latency_axis(
            &champions
                .iter()
                .map(|point| point.latency_ms)
                .collect::<Vec<_>>(),
        );
        let recommendation = recommendation(inputs.ranking, &champions);
        let backbones = inputs
            .champions
            .values()
            .map(|report| backbone_groups(report, &links))
            .collect();
        let pipeline_results = inputs
            .pipeline_results
            .iter()
            .map(|result| PipelineRow {
                backbone: visible(&result.backbone).into_owned(),
                run: links.run_in(&result.run_id, inputs.benchmark_experiment),
                matched_by: match result.matched_by {
                    MatchedBy::BenchmarkKey => "benchmark key",
                    MatchedBy::StudyTrialHash => "study + trial hash",
                }
                .to_string(),
                latency_ms: result.metrics.get("latency_batch_1_ms").copied(),
                p95_ms: result.metrics.get("latency_batch_1_p95_ms").copied(),
            })
            .collect();
        let provenance = provenance(inputs, &champions, links.base.is_some());
        ReportData {
            experiment: visible(inputs.experiment).into_owned(),
            metric: visible(inputs.metric).into_owned(),
            direction: inputs.direction.to_string(),
            recommendation,
            champions,
            latency_axis,
            unranked: inputs
                .ranking
                .unranked
                .iter()
                .map(|unranked| Unranked {
                    backbone: visible(&unranked.backbone).into_owned(),
                    reason: visible(&unranked.reason).into_owned(),
                })
                .collect(),
            backbones,
            selection_errors: inputs
                .selection_errors
                .iter()
                .map(|(backbone, reason)| Unranked {
                    backbone: visible(backbone).into_owned(),
                    reason: visible(reason).into_owned(),
                })
                .collect(),
            pipeline_results,
            provenance,
        }
    }
}

/// The ranked champions with their front membership, in rank order.
fn champion_points(inputs: &ReportInputs<'_>, links: &Links<'_>) -> Vec<ChampionPoint> {
    let mut points: Vec<ChampionPoint> = inputs
        .ranking
        .ranked
        .iter()
        .map(|ranked| champion_point(inputs, ranked, links))
        .collect();
    let trade_offs: Vec<TradeOff> = points
        .iter()
        .map(|point| TradeOff {
            metric: point.metric,
            latency_ms: point.latency_ms,
        })
        .collect();
    let dominated = dominated_by(&trade_offs, inputs.direction);
    let names: Vec<String> = points.iter().map(|point| point.backbone.clone()).collect();
    for (point, by) in points.iter_mut().zip(dominated) {
        point.on_front = by.is_empty();
        point.dominated_by = by.into_iter().map(|index| names[index].clone()).collect();
    }
    points
}

fn champion_point(
    inputs: &ReportInputs<'_>,
    ranked: &RankedChampion,
    links: &Links<'_>,
) -> ChampionPoint {
    let target_index = inputs
        .targets
        .iter()
        .position(|target| target.backbone == ranked.backbone);
    let target = target_index.map(|index| &inputs.targets[index]);
    let standing = target_index
        .and_then(|index| inputs.recorded.get(index))
        .and_then(|recorded| {
            recorded
                .iter()
                .find(|result| result.sample.run_id == ranked.benchmark_run_id)
        });
    let empty = BTreeMap::new();
    let metrics = standing.map_or(&empty, |result| &result.sample.metrics);
    let hpo_experiment = inputs
        .champions
        .get(&ranked.backbone)
        .map(|report| report.experiment.as_str())
        .unwrap_or_default();
    let (trial, refit) = match target {
        Some(target) => (
            links.run_in(&target.champion.trial_run_id, hpo_experiment),
            target
                .champion
                .refit_run_id
                .as_deref()
                .map(|refit| links.run_in(refit, hpo_experiment)),
        ),
        None => (links.run(&ranked.backbone, None), None),
    };
    let tag = |tag: Tag| -> Option<String> {
        standing
            .and_then(|result| result.tags.get(inputs.tags.get(tag)))
            .map(|value| visible(value).into_owned())
    };
    ChampionPoint {
        rank: ranked.rank,
        backbone: visible(&ranked.backbone).into_owned(),
        metric: ranked.metric,
        latency_ms: ranked.latency_ms,
        p50_ms: metrics.get("latency_batch_1_p50_ms").copied(),
        p95_ms: metrics.get("latency_batch_1_p95_ms").copied(),
        composite_score: ranked.composite_score,
        metric_score: ranked.metric_score,
        latency_score: ranked.latency_score,
        on_front: true,
        dominated_by: Vec::new(),
        trial,
        refit,
        benchmark_run: links.run(
            &ranked.benchmark_run_id,
            standing.and_then(|result| result.experiment_id.as_deref()),
        ),
        latency_runs: ranked.latency_runs,
        benchmark_key: target
            .map(|target| visible(&target.key).into_owned())
            .unwrap_or_default(),
        study_key_hash: target
            .map(|target| visible(&target.champion.study_key_hash).into_owned())
            .unwrap_or_default(),
        batches: batch_rows(metrics),
        measured_on: MeasuredOn {
            harness: inputs.ranking.harness.to_string(),
            harness_version: tag(Tag::BenchmarkHarnessVersion),
            podium_version: tag(Tag::BenchmarkPodiumVersion),
            cpu_model: tag(Tag::BenchmarkCpuModel),
            simd: tag(Tag::BenchmarkSimd),
            threads: tag(Tag::BenchmarkThreads),
            environment: tag(Tag::BenchmarkEnvironment),
            source: match standing.map(|result| result.experiment_id.is_some()) {
                Some(true) => "mlflow",
                Some(false) => "disk",
                None => "unknown",
            }
            .to_string(),
        },
    }
}

/// Latency and throughput per batch size, from a run's metrics (`latency_batch_{b}_ms`,
/// `_p50_ms`, `_p95_ms`, `_p99_ms`, `throughput_batch_{b}_seq_per_s`), by batch size.
fn batch_rows(metrics: &BTreeMap<String, f64>) -> Vec<BatchRow> {
    let mut sizes: BTreeSet<u64> = BTreeSet::new();
    for name in metrics.keys() {
        let Some(rest) = name.strip_prefix("latency_batch_") else {
            continue;
        };
        if let Some(size) = rest
            .split('_')
            .next()
            .and_then(|size| size.parse::<u64>().ok())
        {
            sizes.insert(size);
        }
    }
    sizes
        .into_iter()
        .map(|size| {
            let get = |suffix: &str| {
                metrics
                    .get(&format!("latency_batch_{size}_{suffix}"))
                    .copied()
            };
            BatchRow {
                batch_size: size,
                mean_ms: get("ms"),
                p50_ms: get("p50_ms"),
                p95_ms: get("p95_ms"),
                p99_ms: get("p99_ms"),
                throughput_seq_per_s: metrics
                    .get(&format!("throughput_batch_{size}_seq_per_s"))
                    .copied(),
            }
        })
        .collect()
}

fn recommendation(ranking: &Ranking, points: &[ChampionPoint]) -> Option<Recommendation> {
    let best = points.first()?;
    let runner_up = points.get(1).map(|second| RunnerUp {
        backbone: second.backbone.clone(),
        composite_score: second.composite_score,
        composite_gap: best.composite_score - second.composite_score,
        metric_delta: second.metric - best.metric,
        latency_delta_ms: second.latency_ms - best.latency_ms,
    });
    Some(Recommendation {
        backbone: best.backbone.clone(),
        metric: best.metric,
        latency_ms: best.latency_ms,
        composite_score: best.composite_score,
        metric_score: best.metric_score,
        latency_score: best.latency_score,
        f1_weight: ranking.f1_weight,
        latency_weight: ranking.latency_weight,
        latency_aggregation: ranking.latency_aggregation.to_string(),
        on_front: best.on_front,
        runner_up,
    })
}

fn backbone_groups(report: &ChampionReport, links: &Links<'_>) -> BackboneGroups {
    let rules = &report.metadata;
    // Selection lists the winner, the other eligible groups by rank, then the dropped ones.
    let (eligible, dropped): (Vec<&GroupSummary>, Vec<&GroupSummary>) =
        report.groups.iter().partition(|group| group.rank.is_some());
    let mut not_shown = GroupsNotShown::default();
    for group in eligible.iter().skip(MAX_ELIGIBLE_SHOWN) {
        not_shown.eligible += 1;
        not_shown.runs += group.runs;
    }
    for group in dropped.iter().skip(MAX_DROPPED_SHOWN) {
        not_shown.dropped += 1;
        not_shown.runs += group.runs;
    }
    let shown: Vec<&GroupSummary> = eligible
        .iter()
        .take(MAX_ELIGIBLE_SHOWN)
        .chain(dropped.iter().take(MAX_DROPPED_SHOWN))
        .copied()
        .collect();
    BackboneGroups {
        backbone: visible(&report.backbone).into_owned(),
        experiment: visible(&report.experiment).into_owned(),
        champion_trial: links.run_in(&report.champion.trial_run_id, &report.experiment),
        champion_metric: report.champion.metric,
        top_k: rules.top_k_for_stable_score,
        min_trials: rules.min_trials_per_group,
        candidates: rules.candidates,
        groups: shown
            .iter()
            .map(|group| {
                group_view(
                    group,
                    rules.min_trials_per_group,
                    &rules.schema_version_used,
                )
            })
            .collect(),
        not_shown,
        dropped: report
            .dropped
            .reasons()
            .iter()
            .filter(|(_, count)| *count > 0)
            .map(|(reason, count)| DropReason {
                reason: (*reason).to_string(),
                count: *count,
            })
            .collect(),
    }
}

fn group_view(group: &GroupSummary, min_trials: usize, schema_used: &str) -> GroupView {
    let reason = match group.status {
        GroupStatus::Winner | GroupStatus::Eligible => None,
        GroupStatus::BelowMinTrials => Some(format!(
            "{} counted trial(s), fewer than min_trials_per_group {min_trials}",
            group.counted_trials
        )),
        GroupStatus::SchemaNotUsed => Some(format!(
            "schema {} groups are not selected (schema {} is used)",
            visible(&group.schema_version),
            visible(schema_used)
        )),
    };
    GroupView {
        study_key_hash: visible(&group.study_key_hash).into_owned(),
        short_hash: visible(&group.study_key_hash.chars().take(8).collect::<String>()).into_owned(),
        schema_version: visible(&group.schema_version).into_owned(),
        status: group.status,
        reason,
        rank: group.rank,
        runs: group.runs,
        counted_trials: group.counted_trials,
        best_metric: group.best_metric,
        stable_score: group.stable_score,
        distribution: group.distribution.clone(),
    }
}

fn provenance(inputs: &ReportInputs<'_>, champions: &[ChampionPoint], links: bool) -> Provenance {
    let distinct = |pick: &dyn Fn(&MeasuredOn) -> Option<String>| -> Vec<String> {
        champions
            .iter()
            .filter_map(|point| pick(&point.measured_on))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    Provenance {
        podium_version: inputs.podium_version.to_string(),
        harness: inputs.ranking.harness.to_string(),
        harness_version: inputs.benchmark.harness_version,
        cpu_models: distinct(&|on| on.cpu_model.clone()),
        simd_levels: distinct(&|on| on.simd.clone()),
        threads: distinct(&|on| on.threads.clone()),
        benchmark: inputs.benchmark.clone(),
        benchmark_experiment: visible(inputs.benchmark_experiment).into_owned(),
        keys: inputs
            .targets
            .iter()
            .map(|target| KeyRow {
                backbone: visible(&target.backbone).into_owned(),
                study_key_hash: visible(&target.champion.study_key_hash).into_owned(),
                benchmark_key: visible(&target.key).into_owned(),
            })
            .collect(),
        tracking_uri: visible(&redact_uri(inputs.tracking_uri)).into_owned(),
        links,
        generated_at: inputs.generated_at.to_string(),
        latency_aggregation: inputs.ranking.latency_aggregation.to_string(),
        latency_statistic: inputs.ranking.latency_statistic.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_the_page() {
        assert_eq!(
            ui_base("https://alice:s3cret@mlflow.example.com:8443/ml/?token=x#y"),
            Some("https://mlflow.example.com:8443/ml".to_string())
        );
        assert_eq!(ui_base("databricks"), None);
        assert_eq!(
            redact_uri("http://alice:s3cret@host:5000"),
            "http://***@host:5000"
        );
    }

    #[test]
    fn ids_are_encoded_in_links() {
        let ids = BTreeMap::from([("exp".to_string(), "7".to_string())]);
        let links = Links {
            base: Some("http://h:5000".into()),
            experiment_ids: &ids,
        };
        let run = links.run_in("\"><script>", "exp");
        assert_eq!(
            run.url.as_deref(),
            Some("http://h:5000/#/experiments/7/runs/%22%3E%3Cscript%3E")
        );
        assert_eq!(links.run_in("abc", "unknown").url, None);
    }

    #[test]
    fn batch_rows_come_from_the_metric_names() {
        let metrics = BTreeMap::from([
            ("latency_batch_8_ms".to_string(), 4.0),
            ("latency_batch_1_ms".to_string(), 1.0),
            ("latency_batch_1_p95_ms".to_string(), 1.5),
            ("throughput_batch_8_seq_per_s".to_string(), 2000.0),
            ("throughput_samples_per_sec".to_string(), 2000.0),
            ("latency_batch_x_ms".to_string(), 9.0),
        ]);
        let rows = batch_rows(&metrics);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].batch_size, rows[0].p95_ms), (1, Some(1.5)));
        assert_eq!(rows[1].throughput_seq_per_s, Some(2000.0));
        assert_eq!(rows[1].p50_ms, None);
    }
}
