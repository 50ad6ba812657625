//! Properties of the pure selection core: order independence, direction symmetry, monotonicity,
//! and that unusable metrics never win.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod selection_support;

use podium_champion::config::{CheckpointRun, SchemaPreference, SelectionConfig};
use podium_champion::selection::{GroupStatus, choose_trial, countable_metric};
use podium_keys::TagRegistry;
use podium_mlflow::{Direction, Run};
use proptest::prelude::*;
use selection_support::{METRIC, RunExt, trial};

/// A metric drawn so that ties, bad values and missing metrics are common.
#[derive(Debug, Clone, Copy)]
enum Value {
    Finite(f64),
    Nan,
    Inf,
    NegInf,
    Sentinel,
    Missing,
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0u8..8).prop_map(|n| Value::Finite(f64::from(n) / 8.0)),
        2 => (-1.0e3f64..1.0e3).prop_map(Value::Finite),
        1 => Just(Value::Nan),
        1 => Just(Value::Inf),
        1 => Just(Value::NegInf),
        1 => Just(Value::Sentinel),
        1 => Just(Value::Missing),
    ]
}

/// (group index, schema, metric, start time) per run.
fn spec() -> impl Strategy<Value = Vec<(u8, Option<&'static str>, Value, i64)>> {
    prop::collection::vec(
        (
            0u8..4,
            prop_oneof![4 => Just(Some("2.0")), 1 => Just(Some("1.0")), 1 => Just(None)],
            value(),
            0i64..4,
        ),
        1..24,
    )
}

fn build(spec: &[(u8, Option<&'static str>, Value, i64)], negate: bool) -> Vec<Run> {
    spec.iter()
        .enumerate()
        .map(|(i, (group, schema, value, start))| {
            let sign = if negate { -1.0 } else { 1.0 };
            let metric = match value {
                Value::Finite(x) => Some(sign * x),
                Value::Nan => Some(f64::NAN),
                Value::Inf => Some(sign * f64::INFINITY),
                Value::NegInf => Some(-sign * f64::INFINITY),
                Value::Sentinel => Some(sign * f64::MAX),
                Value::Missing => None,
            };
            let mut run =
                trial(&format!("r{i:02}"), &format!("study-{group}"), 0.0).started(*start);
            match metric {
                Some(x) => {
                    run.metrics.insert(METRIC.to_string(), x);
                }
                None => run = run.metric_removed(),
            }
            match schema {
                Some(version) => run.tag_set("code.study.key_schema_version", version),
                None => run.tag_removed("code.study.key_schema_version"),
            }
        })
        .collect()
}

fn config(direction: Direction, min_trials: usize, auto: bool) -> SelectionConfig {
    let mut config = SelectionConfig::default();
    config.objective.direction = direction;
    config.champion_selection.checkpoint_source = CheckpointRun::Trial;
    config.champion_selection.min_trials_per_group = min_trials;
    config.champion_selection.top_k_for_stable_score = min_trials;
    if auto {
        config.champion_selection.prefer_schema_version = SchemaPreference::Auto;
    }
    config
}

/// The outcome as comparable text: the champion, its group, score and the group table, or the
/// error message.
fn outcome(runs: &[Run], config: &SelectionConfig) -> String {
    match choose_trial(
        "distilbert",
        runs,
        config,
        &TagRegistry::defaults(),
        &|_| true,
    ) {
        Ok(choice) => format!(
            "{} {} {} {:?} {:?}",
            choice.trial.id(),
            choice.study_key_hash,
            choice.stable_score,
            choice.groups,
            choice.dropped
        ),
        Err(err) => format!("error: {err}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn shuffling_runs_never_changes_the_answer(
        (spec, order) in spec().prop_flat_map(|spec| {
            let indices: Vec<usize> = (0..spec.len()).collect();
            (Just(spec), Just(indices).prop_shuffle())
        }),
        min_trials in 1usize..4,
        maximize in any::<bool>(),
        auto in any::<bool>(),
    ) {
        let direction = if maximize { Direction::Maximize } else { Direction::Minimize };
        let config = config(direction, min_trials, auto);
        let mut original = build(&spec, false);
        let shuffled: Vec<Run> = order.iter().map(|i| original[*i].clone()).collect();
        prop_assert_eq!(outcome(&original, &config), outcome(&shuffled, &config));
        original.reverse();
        prop_assert_eq!(outcome(&original, &config), outcome(&shuffled, &config));
    }

    #[test]
    fn flipping_direction_and_negating_metrics_gives_the_same_champion(
        spec in spec(),
        min_trials in 1usize..4,
    ) {
        let up_runs = build(&spec, false);
        let up = choose_trial("b", &up_runs, &config(Direction::Maximize, min_trials, false), &TagRegistry::defaults(), &|_| true);
        let down_runs = build(&spec, true);
        let down = choose_trial("b", &down_runs, &config(Direction::Minimize, min_trials, false), &TagRegistry::defaults(), &|_| true);
        match (up, down) {
            (Ok(up), Ok(down)) => {
                prop_assert_eq!(up.trial.id(), down.trial.id());
                prop_assert_eq!(up.study_key_hash, down.study_key_hash);
                prop_assert_eq!(up.stable_score, -down.stable_score);
                prop_assert_eq!(up.dropped, down.dropped);
            }
            (Err(up), Err(down)) => prop_assert_eq!(up.to_string(), down.to_string()),
            (up, down) => prop_assert!(false, "{:?} vs {:?}", up.map(|c| c.trial.id().to_string()), down.map(|c| c.trial.id().to_string())),
        }
    }

    #[test]
    fn a_worse_run_never_makes_a_losing_group_win(
        spec in spec(),
        min_trials in 1usize..4,
        maximize in any::<bool>(),
        loser_pick in any::<prop::sample::Index>(),
    ) {
        let direction = if maximize { Direction::Maximize } else { Direction::Minimize };
        let config = config(direction, min_trials, false);
        let mut runs = build(&spec, false);
        let tags = TagRegistry::defaults();
        let Ok(before) = choose_trial("b", &runs, &config, &tags, &|_| true) else {
            return Ok(());
        };
        let eligible: Vec<_> = before.groups.iter()
            .filter(|g| g.status == GroupStatus::Eligible || g.status == GroupStatus::Winner)
            .collect();
        let scores: std::collections::BTreeSet<String> =
            eligible.iter().map(|g| format!("{:?}", g.stable_score)).collect();
        prop_assume!(scores.len() == eligible.len());
        let losers: Vec<_> = eligible.iter().filter(|g| g.status == GroupStatus::Eligible).collect();
        prop_assume!(!losers.is_empty());
        let loser = losers[loser_pick.index(losers.len())];
        let (winner_hash, loser_hash) = (before.study_key_hash.clone(), loser.study_key_hash.clone());
        let worst = runs.iter()
            .filter(|r| r.tag("code.study_key_hash") == Some(loser_hash.as_str()))
            .filter_map(|r| r.metric(METRIC).filter(|x| countable_metric(*x)))
            .fold(None, |acc: Option<f64>, x| Some(match (acc, maximize) {
                (None, _) => x,
                (Some(a), true) => a.min(x),
                (Some(a), false) => a.max(x),
            }))
            .unwrap();
        let worse = if maximize { worst - 1.0 } else { worst + 1.0 };
        let schema = loser.schema_version.clone();
        runs.push(trial("added", &loser_hash, worse).tag_set("code.study.key_schema_version", &schema));
        let after = choose_trial("b", &runs, &config, &tags, &|_| true).unwrap();
        prop_assert_eq!(after.study_key_hash, winner_hash);
    }

    #[test]
    fn nan_inf_and_missing_metrics_never_win(
        spec in spec(),
        min_trials in 1usize..4,
        maximize in any::<bool>(),
    ) {
        let direction = if maximize { Direction::Maximize } else { Direction::Minimize };
        let runs = build(&spec, false);
        if let Ok(choice) = choose_trial("b", &runs, &config(direction, min_trials, true), &TagRegistry::defaults(), &|_| true) {
            let logged = choice.trial.metric(METRIC).unwrap();
            prop_assert!(countable_metric(logged) && logged == choice.metric);
            prop_assert!(countable_metric(choice.stable_score));
            for group in &choice.groups {
                if let Some(score) = group.stable_score {
                    prop_assert!(countable_metric(score));
                }
                prop_assert!(group.counted_trials + group.missing_metric + group.non_finite_metric == group.runs);
            }
        }
    }
}
