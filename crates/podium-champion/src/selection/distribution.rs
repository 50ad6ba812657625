//! The spread of a study group's counted metric values: exact quartiles, and a bounded strip of
//! values a report can draw whatever the group's size. Pure and independent of the order the
//! values came in (they are sorted before anything is computed, the mean included).

use serde::Serialize;

/// The most values a [`MetricDistribution::strip`] holds: a group with more is drawn from this
/// many order statistics, evenly spaced from its minimum to its maximum.
pub const STRIP_POINTS: usize = 64;

/// The counted metric values of one study group, summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDistribution {
    /// Counted values (finite metrics).
    pub count: usize,
    /// The smallest value.
    pub min: f64,
    /// The first quartile (linear interpolation between order statistics, numpy's default).
    pub q1: f64,
    /// The median.
    pub median: f64,
    /// The third quartile.
    pub q3: f64,
    /// The largest value.
    pub max: f64,
    /// The mean.
    pub mean: f64,
    /// Values to draw, ascending: every value when there are at most [`STRIP_POINTS`], else
    /// that many order statistics evenly spaced from the minimum to the maximum.
    pub strip: Vec<f64>,
    /// Whether [`MetricDistribution::strip`] holds every value.
    pub strip_complete: bool,
}

impl MetricDistribution {
    /// The distribution of `values` (finite numbers, any order); `None` when there are none.
    ///
    /// ```
    /// use podium_champion::selection::MetricDistribution;
    ///
    /// let spread = MetricDistribution::of(vec![9.0, 5.0, 7.0, 6.0]).unwrap();
    /// assert_eq!((spread.min, spread.median, spread.max), (5.0, 6.5, 9.0));
    /// assert_eq!((spread.q1, spread.q3), (5.75, 7.5));
    /// assert_eq!(spread.strip, [5.0, 6.0, 7.0, 9.0]);
    /// assert!(spread.strip_complete);
    /// ```
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let count = values.len();
        let strip_complete = count <= STRIP_POINTS;
        let strip = if strip_complete {
            values.clone()
        } else {
            (0..STRIP_POINTS)
                .map(|index| {
                    let position = index * (count - 1) / (STRIP_POINTS - 1);
                    values[position]
                })
                .collect()
        };
        // Summed in sorted order: the same bits whatever order the store returned runs in.
        let mean = values.iter().map(|value| value / count as f64).sum();
        Some(MetricDistribution {
            count,
            min: values[0],
            q1: quantile(&values, 0.25),
            median: quantile(&values, 0.5),
            q3: quantile(&values, 0.75),
            max: values[count - 1],
            mean,
            strip,
            strip_complete,
        })
    }
}

/// The `q` quantile of ascending `sorted` (non-empty), interpolating linearly between the two
/// nearest order statistics.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    if below == above || fraction == 0.0 {
        sorted[below]
    } else {
        sorted[below] + (sorted[above] - sorted[below]) * fraction
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn quartiles_interpolate_and_the_order_does_not_matter() {
        let values: Vec<f64> = (1..=9).map(f64::from).collect();
        let spread = MetricDistribution::of(values.clone()).unwrap();
        assert_eq!((spread.q1, spread.median, spread.q3), (3.0, 5.0, 7.0));
        assert_eq!(spread.mean, 5.0);
        let mut reversed = values;
        reversed.reverse();
        assert_eq!(MetricDistribution::of(reversed).unwrap(), spread);
        assert!(MetricDistribution::of(Vec::new()).is_none());
        let one = MetricDistribution::of(vec![0.25]).unwrap();
        assert_eq!(
            (one.min, one.q1, one.median, one.q3, one.max),
            (0.25, 0.25, 0.25, 0.25, 0.25)
        );
    }

    #[test]
    fn a_large_group_is_drawn_from_a_bounded_strip_with_both_ends() {
        let values: Vec<f64> = (0..100_000).map(|i| f64::from(i) / 100_000.0).collect();
        let mut shuffled = values.clone();
        shuffled.rotate_left(12_345);
        let spread = MetricDistribution::of(shuffled).unwrap();
        assert_eq!(spread.count, 100_000);
        assert_eq!(spread.strip.len(), STRIP_POINTS);
        assert!(!spread.strip_complete);
        assert_eq!(spread.strip.first(), Some(&0.0));
        assert_eq!(spread.strip.last(), Some(&0.99999));
        assert!(spread.strip.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(spread, MetricDistribution::of(values).unwrap());
    }
}
