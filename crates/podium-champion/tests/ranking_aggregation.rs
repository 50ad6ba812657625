//! Ranking over several benchmark runs per key with each `latency_aggregation`, pinned with
//! insta; and a property test: the order the store returns runs in never changes a ranking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use podium_champion::config::SelectionConfig;
use podium_champion::ranking::{
    BenchmarkSample, LatencyAggregation, RankingInput, aggregate_latency, rank_champions,
};
use proptest::prelude::*;

fn sample(run_id: &str, start_time: i64, latency_ms: f64) -> BenchmarkSample {
    BenchmarkSample {
        run_id: run_id.to_string(),
        start_time,
        metrics: BTreeMap::from([
            ("latency_batch_1_ms".to_string(), latency_ms),
            ("latency_batch_1_p50_ms".to_string(), latency_ms - 0.5),
        ]),
    }
}

/// Three champions, several podium runs each: the latest run, the median and the mean differ,
/// so each aggregation ranks them differently.
fn champions() -> Vec<RankingInput> {
    vec![
        RankingInput {
            backbone: "bert-base-cased".into(),
            metric: 0.88,
            // latest 30, median 12, mean 18
            benchmarks: vec![
                sample("bert-1", 100, 12.0),
                sample("bert-2", 200, 12.0),
                sample("bert-3", 300, 30.0),
            ],
        },
        RankingInput {
            backbone: "distilbert-base-uncased".into(),
            metric: 0.86,
            // latest 8, median 16, mean 18
            benchmarks: vec![
                sample("distil-3", 300, 8.0),
                sample("distil-1", 100, 30.0),
                sample("distil-2", 200, 16.0),
            ],
        },
        RankingInput {
            backbone: "roberta-base".into(),
            metric: 0.87,
            // latest 20, median (even count) 15, mean 15
            benchmarks: vec![
                sample("roberta-1", 100, 10.0),
                sample("roberta-2", 200, 20.0),
            ],
        },
        RankingInput {
            backbone: "electra-small".into(),
            metric: 0.80,
            benchmarks: vec![],
        },
    ]
}

#[test]
fn ranking_with_each_latency_aggregation() {
    let config = SelectionConfig::default();
    for aggregation in LatencyAggregation::ALL {
        let ranking = rank_champions(&champions(), &config, aggregation);
        insta::assert_json_snapshot!(format!("ranking_{aggregation}"), ranking);
    }
}

#[test]
fn aggregates_follow_the_pipelines_definitions() {
    let runs = champions()[2].benchmarks.clone();
    let (latest, run) = aggregate_latency(&runs, LatencyAggregation::Latest).unwrap();
    assert_eq!((latest, run.run_id.as_str()), (20.0, "roberta-2"));
    // Python's statistics.median of an even count: the mean of the middle two.
    let (median, run) = aggregate_latency(&runs, LatencyAggregation::Median).unwrap();
    assert_eq!((median, run.run_id.as_str()), (15.0, "roberta-1"));
    let (mean, _) = aggregate_latency(&runs, LatencyAggregation::Mean).unwrap();
    assert_eq!(mean, 15.0);
    // Runs without a finite latency do not count.
    let mut with_nan = runs.clone();
    with_nan.push(sample("roberta-3", 400, f64::NAN));
    assert_eq!(
        aggregate_latency(&with_nan, LatencyAggregation::Latest)
            .unwrap()
            .0,
        20.0
    );
    assert!(aggregate_latency(&[], LatencyAggregation::Mean).is_none());
}

/// A permutation of `items` drawn from `seed` (splitmix64 sort keys).
fn shuffle<T>(items: &mut Vec<T>, seed: u64) {
    let mut keyed: Vec<(u64, T)> = items
        .drain(..)
        .enumerate()
        .map(|(index, item)| {
            let mut z = seed.wrapping_add((index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31), item)
        })
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    items.extend(keyed.into_iter().map(|(_, item)| item));
}

proptest! {
    #[test]
    fn the_order_runs_come_in_never_changes_the_ranking(
        seed in any::<u64>(),
        aggregation in prop::sample::select(LatencyAggregation::ALL.to_vec()),
    ) {
        let config = SelectionConfig::default();
        let expected = rank_champions(&champions(), &config, aggregation);
        let mut shuffled = champions();
        shuffle(&mut shuffled, seed);
        for (index, champion) in shuffled.iter_mut().enumerate() {
            shuffle(&mut champion.benchmarks, seed ^ index as u64);
        }
        prop_assert_eq!(rank_champions(&shuffled, &config, aggregation), expected);
    }
}
