//! The trade-off between quality and speed: which champions are on the Pareto front (no other
//! champion is at least as good on the metric *and* as fast, and better on one of them), and
//! how the latency axis is drawn.

use podium_mlflow::Direction;
use serde::Serialize;

/// A champion as the front sees it: its objective metric and its batch-1 latency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TradeOff {
    /// The objective metric (better is higher or lower, per the direction).
    pub metric: f64,
    /// Latency in milliseconds (lower is better).
    pub latency_ms: f64,
}

/// Whether `a` dominates `b`: at least as good on both, strictly better on one. Two identical
/// points do not dominate each other (both stay on the front).
pub fn dominates(a: TradeOff, b: TradeOff, direction: Direction) -> bool {
    let (metric_at_least, metric_better) = match direction {
        Direction::Maximize => (a.metric >= b.metric, a.metric > b.metric),
        Direction::Minimize => (a.metric <= b.metric, a.metric < b.metric),
    };
    metric_at_least
        && a.latency_ms <= b.latency_ms
        && (metric_better || a.latency_ms < b.latency_ms)
}

/// For each point, the indices of the points that dominate it (empty: on the front).
///
/// ```
/// use podium_mlflow::Direction;
/// use podium_report::pareto::{TradeOff, dominated_by};
///
/// let point = |metric, latency_ms| TradeOff { metric, latency_ms };
/// // Fast and good, slow and better, slow and worse.
/// let points = [point(0.80, 5.0), point(0.90, 20.0), point(0.85, 30.0)];
/// let by = dominated_by(&points, Direction::Maximize);
/// assert!(by[0].is_empty() && by[1].is_empty());
/// assert_eq!(by[2], vec![1]);
/// ```
pub fn dominated_by(points: &[TradeOff], direction: Direction) -> Vec<Vec<usize>> {
    points
        .iter()
        .map(|point| {
            points
                .iter()
                .enumerate()
                .filter(|(_, other)| dominates(**other, *point, direction))
                .map(|(index, _)| index)
                .collect()
        })
        .collect()
}

/// How latency is laid out on the scatter's axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AxisScale {
    /// Evenly spaced milliseconds.
    Linear,
    /// Decades evenly spaced: the slowest champion is more than 10× the fastest.
    Log,
}

/// The latency axis for these latencies: logarithmic when the slowest is more than ten times
/// the fastest (a linear axis would squeeze the fast ones into one corner), else linear.
///
/// ```
/// use podium_report::pareto::{AxisScale, latency_axis};
/// assert_eq!(latency_axis(&[1.0, 10.0]), AxisScale::Linear);
/// assert_eq!(latency_axis(&[1.0, 10.5]), AxisScale::Log);
/// assert_eq!(latency_axis(&[3.0]), AxisScale::Linear);
/// ```
pub fn latency_axis(latencies_ms: &[f64]) -> AxisScale {
    let positive = latencies_ms
        .iter()
        .copied()
        .filter(|value| value.is_finite() && *value > 0.0);
    let (min, max) = positive.fold((f64::INFINITY, 0.0_f64), |(min, max), value| {
        (min.min(value), max.max(value))
    });
    if min.is_finite() && max > 10.0 * min {
        AxisScale::Log
    } else {
        AxisScale::Linear
    }
}

/// The front's points in the order a line through them is drawn: fastest first, then (at
/// equal latency) the better metric first.
pub fn front_order(points: &[TradeOff], on_front: &[bool], direction: Direction) -> Vec<usize> {
    let mut front: Vec<usize> = (0..points.len()).filter(|&i| on_front[i]).collect();
    front.sort_by(|&a, &b| {
        let (a, b) = (points[a], points[b]);
        let metric = match direction {
            Direction::Maximize => b.metric.total_cmp(&a.metric),
            Direction::Minimize => a.metric.total_cmp(&b.metric),
        };
        a.latency_ms.total_cmp(&b.latency_ms).then(metric)
    });
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(metric: f64, latency_ms: f64) -> TradeOff {
        TradeOff { metric, latency_ms }
    }

    fn front(points: &[TradeOff], direction: Direction) -> Vec<bool> {
        dominated_by(points, direction)
            .iter()
            .map(Vec::is_empty)
            .collect()
    }

    #[test]
    fn one_point_is_the_front() {
        assert_eq!(front(&[point(0.5, 3.0)], Direction::Maximize), [true]);
        assert!(front(&[], Direction::Maximize).is_empty());
    }

    #[test]
    fn ties_stay_on_the_front_together() {
        let points = [point(0.9, 10.0), point(0.9, 10.0), point(0.8, 12.0)];
        let by = dominated_by(&points, Direction::Maximize);
        assert!(by[0].is_empty() && by[1].is_empty());
        assert_eq!(by[2], vec![0, 1]);
    }

    #[test]
    fn at_equal_latency_the_better_metric_dominates() {
        let points = [point(0.80, 10.0), point(0.85, 10.0)];
        assert_eq!(front(&points, Direction::Maximize), [false, true]);
        // A loss: lower is better.
        assert_eq!(front(&points, Direction::Minimize), [true, false]);
        // At equal metric, the faster one.
        let same_metric = [point(0.8, 10.0), point(0.8, 9.0)];
        assert_eq!(front(&same_metric, Direction::Maximize), [false, true]);
    }

    #[test]
    fn a_trade_off_keeps_both_ends() {
        let points = [
            point(0.70, 2.0),
            point(0.80, 8.0),
            point(0.75, 9.0),
            point(0.90, 40.0),
        ];
        assert_eq!(
            front(&points, Direction::Maximize),
            [true, true, false, true]
        );
        let on_front = front(&points, Direction::Maximize);
        assert_eq!(
            front_order(&points, &on_front, Direction::Maximize),
            [0, 1, 3]
        );
    }

    #[test]
    fn the_axis_turns_logarithmic_past_ten_times() {
        assert_eq!(latency_axis(&[]), AxisScale::Linear);
        assert_eq!(latency_axis(&[2.0, 19.0]), AxisScale::Linear);
        assert_eq!(latency_axis(&[2.0, 20.0]), AxisScale::Linear);
        assert_eq!(latency_axis(&[2.0, 20.1]), AxisScale::Log);
        assert_eq!(latency_axis(&[0.0, f64::NAN, 1.0, 5.0]), AxisScale::Linear);
    }
}
