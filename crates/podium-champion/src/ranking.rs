//! Composite ranking of champions after benchmarking: a weighted sum of the objective metric
//! and batch-1 latency, each min-max normalised across the champions. Pure: the benchmark crate
//! feeds it the champions' metrics and podium's benchmark runs of each key.
//!
//! A key may have several runs (force_new, re-measures): `latency_aggregation` says how their
//! `latency_batch_1_ms` (the per-run **mean**, the pipeline's meaning) become one number —
//! the latest run's, the median or the mean over the runs — exactly as the pipeline aggregates
//! its own runs. Only podium's runs by the current harness are passed in: a PyTorch latency the
//! pipeline measured is never ranked against them.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use podium_mlflow::Direction;
use serde::{Deserialize, Serialize};

use crate::config::{LATENCY_METRIC, SelectionConfig};
use crate::selection::countable_metric;

/// How several benchmark runs of one key become one latency (`benchmark.latency_aggregation`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencyAggregation {
    /// The run with the latest start time (the pipeline's default).
    #[default]
    Latest,
    /// The median over the runs (mean of the middle two for an even count).
    Median,
    /// The mean over the runs.
    Mean,
}

impl LatencyAggregation {
    /// Every value, in the order the docs list them.
    pub const ALL: [LatencyAggregation; 3] = [Self::Latest, Self::Median, Self::Mean];

    /// `latest`, `median` or `mean`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Latest => "latest",
            Self::Median => "median",
            Self::Mean => "mean",
        }
    }

    /// Parses `latest`, `median` or `mean`; anything else is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|value| value.as_str() == text)
    }
}

impl std::fmt::Display for LatencyAggregation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LatencyAggregation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::parse(text).ok_or_else(|| format!("{text:?}: expected latest, median or mean"))
    }
}

/// One recorded benchmark of a champion's key (a FINISHED run, or the disk result).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkSample {
    /// The benchmark run.
    pub run_id: String,
    /// Its start time, Unix milliseconds (orders `latest`).
    pub start_time: i64,
    /// Its metrics (`latency_batch_1_ms`, …).
    pub metrics: BTreeMap<String, f64>,
}

/// One champion with its benchmark results.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingInput {
    /// The backbone.
    pub backbone: String,
    /// The champion's objective metric.
    pub metric: f64,
    /// Podium's benchmark runs of the champion's key, any order.
    pub benchmarks: Vec<BenchmarkSample>,
}

/// A ranked champion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedChampion {
    /// 1 = best.
    pub rank: usize,
    /// The backbone.
    pub backbone: String,
    /// Weighted sum of the normalised scores, in [0, 1] when the weights are normalised.
    pub composite_score: f64,
    /// The objective metric.
    pub metric: f64,
    /// The metric min-max normalised across the champions (1 = best).
    pub metric_score: f64,
    /// `latency_batch_1_ms` (each run's mean latency) aggregated over the key's runs.
    pub latency_ms: f64,
    /// Latency min-max normalised and inverted (1 = fastest).
    pub latency_score: f64,
    /// How the runs were aggregated.
    pub latency_aggregation: LatencyAggregation,
    /// How many runs the latency aggregates.
    pub latency_runs: usize,
    /// The run standing for the result: the latest, or the one closest to the aggregate.
    pub benchmark_run_id: String,
}

/// A champion that could not be ranked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unranked {
    /// The backbone.
    pub backbone: String,
    /// Why (the missing or non-finite metrics).
    pub reason: String,
}

/// The composite ranking.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranking {
    /// The weight applied to the metric score (after normalisation).
    pub f1_weight: f64,
    /// The weight applied to the latency score (after normalisation).
    pub latency_weight: f64,
    /// Whose latencies these are: always podium's harness (never the pipeline's PyTorch runs).
    pub harness: &'static str,
    /// The statistic each run's `latency_batch_1_ms` is: the mean of its timed passes.
    pub latency_statistic: &'static str,
    /// How several runs of one key were aggregated.
    pub latency_aggregation: LatencyAggregation,
    /// Ranked champions, best first (ties → backbone name).
    pub ranked: Vec<RankedChampion>,
    /// Champions without the required benchmark metrics, by backbone name.
    pub unranked: Vec<Unranked>,
}

/// The aggregated latency of `runs` and the run standing for it (see [`LatencyAggregation`]);
/// only runs with a finite `latency_batch_1_ms` count. The standing run: the latest (start
/// time, then run id) for `latest`, else the one closest to the aggregate (ties → the earlier
/// run). `None` when no run has the latency.
pub fn aggregate_latency(
    runs: &[BenchmarkSample],
    aggregation: LatencyAggregation,
) -> Option<(f64, &BenchmarkSample)> {
    let mut usable: Vec<(&BenchmarkSample, f64)> = runs
        .iter()
        .filter_map(|run| {
            let latency = *run.metrics.get(LATENCY_METRIC)?;
            countable_metric(latency).then_some((run, latency))
        })
        .collect();
    usable.sort_by(|(a, _), (b, _)| {
        a.start_time
            .cmp(&b.start_time)
            .then_with(|| a.run_id.cmp(&b.run_id))
    });
    let (latest, latest_latency) = *usable.last()?;
    let target = match aggregation {
        LatencyAggregation::Latest => return Some((latest_latency, latest)),
        LatencyAggregation::Mean => {
            usable.iter().map(|(_, latency)| latency).sum::<f64>() / usable.len() as f64
        }
        LatencyAggregation::Median => {
            let mut sorted: Vec<f64> = usable.iter().map(|(_, latency)| *latency).collect();
            sorted.sort_by(f64::total_cmp);
            let middle = sorted.len() / 2;
            if sorted.len() % 2 == 1 {
                sorted[middle]
            } else {
                (sorted[middle - 1] + sorted[middle]) / 2.0
            }
        }
    };
    let standing = usable
        .iter()
        .min_by(|(_, a), (_, b)| (a - target).abs().total_cmp(&(b - target).abs()))
        .map(|(run, _)| *run)?;
    Some((target, standing))
}

/// Ranks champions by `scoring` weights, requiring `benchmark.required_metrics` (and always
/// `latency_batch_1_ms`, the latency the score uses) on the run standing for each champion's
/// result. The metric is normalised in the objective's direction; latency (aggregated over the
/// key's runs per `aggregation`) is inverted (lower is better). With one champion, or when all
/// values are equal, a normalised score is 1.0.
///
/// ```
/// use std::collections::BTreeMap;
/// use podium_champion::config::SelectionConfig;
/// use podium_champion::ranking::{rank_champions, BenchmarkSample, LatencyAggregation, RankingInput};
///
/// let sample = |run: &str, start: i64, ms: f64| BenchmarkSample {
///     run_id: run.into(),
///     start_time: start,
///     metrics: BTreeMap::from([("latency_batch_1_ms".to_string(), ms)]),
/// };
/// let input = |backbone: &str, f1: f64, benchmarks: Vec<BenchmarkSample>| RankingInput {
///     backbone: backbone.into(),
///     metric: f1,
///     benchmarks,
/// };
/// let inputs = [
///     input("deberta", 0.90, vec![sample("d1", 1, 30.0)]),
///     input("distilbert", 0.86, vec![sample("b1", 1, 14.0), sample("b2", 2, 10.0)]),
///     input("bert", 0.88, vec![]),
/// ];
/// let ranking = rank_champions(&inputs, &SelectionConfig::default(), LatencyAggregation::Latest);
/// // deberta: best metric (1.0), slowest (0.0) → 0.7·1 + 0.3·0 = 0.7; distilbert → 0.3.
/// assert_eq!(ranking.ranked[0].backbone, "deberta");
/// assert!((ranking.ranked[0].composite_score - 0.7).abs() < 1e-12);
/// assert_eq!(ranking.ranked[1].latency_ms, 10.0);
/// assert_eq!(ranking.unranked[0].backbone, "bert");
/// let mean = rank_champions(&inputs, &SelectionConfig::default(), LatencyAggregation::Mean);
/// assert_eq!(mean.ranked[1].latency_ms, 12.0);
/// ```
pub fn rank_champions(
    inputs: &[RankingInput],
    config: &SelectionConfig,
    aggregation: LatencyAggregation,
) -> Ranking {
    let scoring = &config.scoring;
    let (f1_weight, latency_weight) = {
        let sum = scoring.f1_weight + scoring.latency_weight;
        if scoring.normalize_weights && sum > 0.0 {
            (scoring.f1_weight / sum, scoring.latency_weight / sum)
        } else {
            (scoring.f1_weight, scoring.latency_weight)
        }
    };
    let mut required: Vec<&str> = config
        .benchmark
        .required_metrics
        .iter()
        .map(String::as_str)
        .collect();
    if !required.contains(&LATENCY_METRIC) {
        required.push(LATENCY_METRIC);
    }

    let mut unranked = Vec::new();
    let mut usable: Vec<(&RankingInput, f64, &BenchmarkSample, usize)> = Vec::new();
    for input in inputs {
        let mut problems: Vec<String> = Vec::new();
        if !countable_metric(input.metric) {
            problems.push(format!("objective metric is {}", input.metric));
        }
        let aggregated = aggregate_latency(&input.benchmarks, aggregation);
        // What the standing run lacks; with no usable latency, what the latest run lacks.
        let checked = aggregated.map(|(_, run)| run).or_else(|| {
            input.benchmarks.iter().max_by(|a, b| {
                a.start_time
                    .cmp(&b.start_time)
                    .then_with(|| a.run_id.cmp(&b.run_id))
            })
        });
        let empty = BTreeMap::new();
        let metrics = checked.map_or(&empty, |run| &run.metrics);
        for name in &required {
            match metrics.get(*name) {
                None => problems.push(format!("missing {name}")),
                Some(value) if !countable_metric(*value) => {
                    problems.push(format!("{name} is {value}"));
                }
                Some(_) => {}
            }
        }
        let runs = input
            .benchmarks
            .iter()
            .filter(|run| {
                run.metrics
                    .get(LATENCY_METRIC)
                    .copied()
                    .is_some_and(countable_metric)
            })
            .count();
        match aggregated {
            Some((latency, run)) if problems.is_empty() => usable.push((input, latency, run, runs)),
            _ => unranked.push(Unranked {
                backbone: input.backbone.clone(),
                reason: problems.join("; "),
            }),
        }
    }
    unranked.sort_by(|a, b| a.backbone.cmp(&b.backbone));

    let metric_range = min_max(usable.iter().map(|(input, ..)| input.metric));
    let latency_range = min_max(usable.iter().map(|(_, latency, ..)| *latency));
    let higher_metric_is_better = config.objective.direction == Direction::Maximize;
    let mut ranked: Vec<RankedChampion> = usable
        .iter()
        .map(|(input, latency, run, runs)| {
            let metric_score = normalised(input.metric, metric_range, higher_metric_is_better);
            let latency_score = normalised(*latency, latency_range, false);
            RankedChampion {
                rank: 0,
                backbone: input.backbone.clone(),
                composite_score: f1_weight * metric_score + latency_weight * latency_score,
                metric: input.metric,
                metric_score,
                latency_ms: *latency,
                latency_score,
                latency_aggregation: aggregation,
                latency_runs: *runs,
                benchmark_run_id: run.run_id.clone(),
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.composite_score
            .partial_cmp(&a.composite_score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.backbone.cmp(&b.backbone))
    });
    for (index, champion) in ranked.iter_mut().enumerate() {
        champion.rank = index + 1;
    }
    Ranking {
        f1_weight,
        latency_weight,
        harness: "podium",
        latency_statistic: "mean",
        latency_aggregation: aggregation,
        ranked,
        unranked,
    }
}

/// `(min, max - min)` of `values`, or `None` when there is at most one distinct value.
fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), value| {
        (min.min(value), max.max(value))
    });
    let span = max - min;
    (span > 0.0 && span.is_finite()).then_some((min, span))
}

/// `value` min-max normalised to [0, 1], 1 = best; 1.0 when all values are equal.
fn normalised(value: f64, range: Option<(f64, f64)>, higher_is_better: bool) -> f64 {
    match range {
        None => 1.0,
        Some((min, span)) => {
            let score = (value - min) / span;
            if higher_is_better { score } else { 1.0 - score }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(backbone: &str, metric: f64, latency: Option<f64>) -> RankingInput {
        RankingInput {
            backbone: backbone.to_string(),
            metric,
            benchmarks: latency
                .map(|ms| {
                    vec![BenchmarkSample {
                        run_id: format!("{backbone}-run"),
                        start_time: 1,
                        metrics: BTreeMap::from([(LATENCY_METRIC.to_string(), ms)]),
                    }]
                })
                .unwrap_or_default(),
        }
    }

    fn rank(inputs: &[RankingInput], config: &SelectionConfig) -> Ranking {
        rank_champions(inputs, config, LatencyAggregation::Latest)
    }

    #[test]
    fn weights_are_normalised_when_asked() {
        let mut config = SelectionConfig::default();
        config.scoring.f1_weight = 1.0;
        config.scoring.latency_weight = 3.0;
        let ranking = rank(
            &[input("a", 0.9, Some(20.0)), input("b", 0.8, Some(10.0))],
            &config,
        );
        assert_eq!((ranking.f1_weight, ranking.latency_weight), (0.25, 0.75));
        assert_eq!(ranking.ranked[0].backbone, "b");
        assert_eq!(ranking.ranked[0].composite_score, 0.75);
        config.scoring.normalize_weights = false;
        let ranking = rank(
            &[input("a", 0.9, Some(20.0)), input("b", 0.8, Some(10.0))],
            &config,
        );
        assert_eq!(ranking.ranked[0].composite_score, 3.0);
    }

    #[test]
    fn one_champion_or_equal_values_score_one() {
        let config = SelectionConfig::default();
        let ranking = rank(&[input("solo", 0.5, Some(7.0))], &config);
        assert_eq!(ranking.ranked[0].metric_score, 1.0);
        assert_eq!(ranking.ranked[0].latency_score, 1.0);
        assert!((ranking.ranked[0].composite_score - 1.0).abs() < 1e-12);
        // Equal everything: ties go to the backbone name.
        let ranking = rank(
            &[
                input("zeta", 0.5, Some(7.0)),
                input("alpha", 0.5, Some(7.0)),
            ],
            &config,
        );
        let order: Vec<(&str, usize)> = ranking
            .ranked
            .iter()
            .map(|r| (r.backbone.as_str(), r.rank))
            .collect();
        assert_eq!(order, vec![("alpha", 1), ("zeta", 2)]);
    }

    #[test]
    fn missing_or_non_finite_benchmarks_are_unranked_with_reason() {
        let mut config = SelectionConfig::default();
        config
            .benchmark
            .required_metrics
            .push("throughput_batch_8_seq_per_s".into());
        let mut complete = input("ok", 0.9, Some(5.0));
        complete.benchmarks[0]
            .metrics
            .insert("throughput_batch_8_seq_per_s".into(), 100.0);
        let ranking = rank(
            &[
                complete,
                input("none", 0.9, None),
                input("nan", 0.9, Some(f64::NAN)),
            ],
            &config,
        );
        assert_eq!(ranking.ranked.len(), 1);
        let reasons: Vec<(&str, &str)> = ranking
            .unranked
            .iter()
            .map(|u| (u.backbone.as_str(), u.reason.as_str()))
            .collect();
        assert_eq!(reasons[0].0, "nan");
        assert!(
            reasons[0].1.contains("latency_batch_1_ms is NaN"),
            "{reasons:?}"
        );
        assert_eq!(reasons[1].0, "none");
        assert!(
            reasons[1].1.contains("missing latency_batch_1_ms")
                && reasons[1]
                    .1
                    .contains("missing throughput_batch_8_seq_per_s"),
            "{reasons:?}"
        );
    }

    #[test]
    fn minimize_objective_inverts_the_metric_score() {
        let mut config = SelectionConfig::default();
        config.objective.direction = Direction::Minimize;
        config.scoring.latency_weight = 0.0;
        let ranking = rank(
            &[
                input("high-loss", 0.9, Some(5.0)),
                input("low-loss", 0.1, Some(5.0)),
            ],
            &config,
        );
        assert_eq!(ranking.ranked[0].backbone, "low-loss");
        assert_eq!(ranking.ranked[0].metric_score, 1.0);
        assert_eq!(ranking.ranked[1].metric_score, 0.0);
    }
}
