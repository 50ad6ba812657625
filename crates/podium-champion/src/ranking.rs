//! Composite ranking of champions after benchmarking (DESIGN §5): a weighted sum of the
//! objective metric and batch-1 latency, each min-max normalised across the champions.
//! Pure: the benchmark crate feeds it the champions' metrics.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use podium_mlflow::Direction;
use serde::Serialize;

use crate::config::{LATENCY_METRIC, SelectionConfig};
use crate::selection::countable_metric;

/// One champion with its benchmark results.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingInput {
    /// The backbone.
    pub backbone: String,
    /// The champion's objective metric.
    pub metric: f64,
    /// The benchmark's metrics (`latency_batch_1_ms`, …).
    pub benchmark_metrics: BTreeMap<String, f64>,
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
    /// `latency_batch_1_ms`.
    pub latency_ms: f64,
    /// Latency min-max normalised and inverted (1 = fastest).
    pub latency_score: f64,
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
    /// Ranked champions, best first (ties → backbone name).
    pub ranked: Vec<RankedChampion>,
    /// Champions without the required benchmark metrics, by backbone name.
    pub unranked: Vec<Unranked>,
}

/// Ranks champions by `scoring` weights, requiring `benchmark.required_metrics` (and always
/// `latency_batch_1_ms`, the latency the score uses). The metric is normalised in the
/// objective's direction; latency is inverted (lower is better). With one champion, or when
/// all values are equal, a normalised score is 1.0.
///
/// ```
/// use std::collections::BTreeMap;
/// use podium_champion::config::SelectionConfig;
/// use podium_champion::ranking::{rank_champions, RankingInput};
///
/// let input = |backbone: &str, f1: f64, latency: Option<f64>| RankingInput {
///     backbone: backbone.into(),
///     metric: f1,
///     benchmark_metrics: latency
///         .map(|ms| BTreeMap::from([("latency_batch_1_ms".to_string(), ms)]))
///         .unwrap_or_default(),
/// };
/// let ranking = rank_champions(
///     &[input("deberta", 0.90, Some(30.0)), input("distilbert", 0.86, Some(10.0)), input("bert", 0.88, None)],
///     &SelectionConfig::default(),
/// );
/// // deberta: best metric (1.0), slowest (0.0) → 0.7·1 + 0.3·0 = 0.7; distilbert → 0.3.
/// assert_eq!(ranking.ranked[0].backbone, "deberta");
/// assert!((ranking.ranked[0].composite_score - 0.7).abs() < 1e-12);
/// assert_eq!(ranking.unranked[0].backbone, "bert");
/// ```
pub fn rank_champions(inputs: &[RankingInput], config: &SelectionConfig) -> Ranking {
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
    let mut usable: Vec<(&RankingInput, f64)> = Vec::new();
    for input in inputs {
        let mut problems: Vec<String> = Vec::new();
        if !countable_metric(input.metric) {
            problems.push(format!("objective metric is {}", input.metric));
        }
        for name in &required {
            match input.benchmark_metrics.get(*name) {
                None => problems.push(format!("missing {name}")),
                Some(value) if !countable_metric(*value) => {
                    problems.push(format!("{name} is {value}"));
                }
                Some(_) => {}
            }
        }
        match input.benchmark_metrics.get(LATENCY_METRIC) {
            Some(latency) if problems.is_empty() => usable.push((input, *latency)),
            _ => unranked.push(Unranked {
                backbone: input.backbone.clone(),
                reason: problems.join("; "),
            }),
        }
    }
    unranked.sort_by(|a, b| a.backbone.cmp(&b.backbone));

    let metric_range = min_max(usable.iter().map(|(input, _)| input.metric));
    let latency_range = min_max(usable.iter().map(|(_, latency)| *latency));
    let higher_metric_is_better = config.objective.direction == Direction::Maximize;
    let mut ranked: Vec<RankedChampion> = usable
        .iter()
        .map(|(input, latency)| {
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
            benchmark_metrics: latency
                .map(|ms| BTreeMap::from([(LATENCY_METRIC.to_string(), ms)]))
                .unwrap_or_default(),
        }
    }

    #[test]
    fn weights_are_normalised_when_asked() {
        let mut config = SelectionConfig::default();
        config.scoring.f1_weight = 1.0;
        config.scoring.latency_weight = 3.0;
        let ranking = rank_champions(
            &[input("a", 0.9, Some(20.0)), input("b", 0.8, Some(10.0))],
            &config,
        );
        assert_eq!((ranking.f1_weight, ranking.latency_weight), (0.25, 0.75));
        assert_eq!(ranking.ranked[0].backbone, "b");
        assert_eq!(ranking.ranked[0].composite_score, 0.75);
        config.scoring.normalize_weights = false;
        let ranking = rank_champions(
            &[input("a", 0.9, Some(20.0)), input("b", 0.8, Some(10.0))],
            &config,
        );
        assert_eq!(ranking.ranked[0].composite_score, 3.0);
    }

    #[test]
    fn one_champion_or_equal_values_score_one() {
        let config = SelectionConfig::default();
        let ranking = rank_champions(&[input("solo", 0.5, Some(7.0))], &config);
        assert_eq!(ranking.ranked[0].metric_score, 1.0);
        assert_eq!(ranking.ranked[0].latency_score, 1.0);
        assert!((ranking.ranked[0].composite_score - 1.0).abs() < 1e-12);
        // Equal everything: ties go to the backbone name.
        let ranking = rank_champions(
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
        complete
            .benchmark_metrics
            .insert("throughput_batch_8_seq_per_s".into(), 100.0);
        let ranking = rank_champions(
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
        let ranking = rank_champions(
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
