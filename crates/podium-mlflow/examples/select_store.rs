//! The store side of `podium select` on a large MLflow SQLite file: each backbone's candidate
//! search (the FINISHED stage-`hpo` runs of the backbone's experiment, the query that finds the
//! pipeline's trials, every page, projected to what selection reads), all backbones at once on
//! threads as selection runs them, repeated.
//!
//! ```text
//! cargo run --release -p podium-mlflow --example select_store -- DB [--repeat N] [--sequential]
//! ```
//!
//! `DB` is a store made by `scripts/gen-selection-store.py` (experiments
//! `podium-ner-hpo-{backbone}`). Prints, per repetition, the wall time, the runs found and the
//! store/parsing split of [`podium_mlflow::timing`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Instant;

use podium_keys::{Tag, TagRegistry};
use podium_mlflow::{Filter, RunFields, RunStatus, SqliteStore, TrackingStore, ViewType, timing};

const BACKBONES: [&str; 3] = ["distilbert", "distilroberta", "deberta"];
const METRIC: &str = "macro-f1";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let db = PathBuf::from(args.first().expect("usage: select_store DB [--repeat N]"));
    let repeat = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map_or(3, |v| v.parse().expect("a number"));
    let sequential = args.iter().any(|a| a == "--sequential");
    let tags = TagRegistry::default();
    // What selection asks for: its registry tags, the parent link and the objective metric.
    let fields = RunFields::none()
        .with_tags(
            [
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
            ]
            .iter()
            .map(|tag| tags.get(*tag))
            .chain(["mlflow.parentRunId"]),
        )
        .with_metrics([METRIC]);
    timing::enable();
    let store = SqliteStore::open(&db).unwrap();
    let search = |backbone: &str| {
        let experiment = store
            .get_experiment_by_name(&format!("podium-ner-hpo-{backbone}"))
            .unwrap()
            .expect("a store made by gen-selection-store.py");
        let filter = Filter::new()
            .tag_eq(tags.get(Tag::Stage), podium_keys::stage::HPO)
            .status(RunStatus::Finished);
        podium_mlflow::search_all_fields(
            &store,
            &[experiment.experiment_id],
            &filter,
            ViewType::ActiveOnly,
            &fields,
        )
        .unwrap()
        .len()
    };
    for round in 1..=repeat {
        let before = timing::snapshot();
        let started = Instant::now();
        let found: usize = if sequential {
            BACKBONES.iter().map(|backbone| search(backbone)).sum()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = BACKBONES
                    .iter()
                    .map(|backbone| scope.spawn(|| search(backbone)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            })
        };
        let wall = started.elapsed();
        let spent = timing::snapshot().since(&before);
        println!(
            "round {round}: {:.3} s wall, {found} runs, store {:.3} s, parsing {:.3} s (thread time), {} entries",
            wall.as_secs_f64(),
            spent.store.as_secs_f64(),
            spent.parsing.as_secs_f64(),
            spent.rows
        );
    }
}
