//! A downloaded checkpoint archive that is not a usable checkpoint: whatever happens, nothing
//! of it outlives the benchmark that fetched it — no cache entry every later benchmark would
//! fail on again, no scratch folder the size of a checkpoint (items 2 and 3 of issue 26).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use podium_bench::orchestrate::{BenchmarkSettings, BenchmarkTarget, Outcome};
use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::{RunStatus, SqliteStore, TrackingStore};

/// A `.tar.gz` of a checkpoint folder whose config.json the runtime refuses (no model type),
/// with a weights file so that it looks complete.
fn broken_checkpoint_archive(path: &Path) {
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut builder = tar::Builder::new(gz);
    for (name, data) in [
        (
            "best_trial_checkpoint/config.json",
            &br#"{"hidden_size": 8}"#[..],
        ),
        ("best_trial_checkpoint/model.safetensors", &[0u8; 64][..]),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap();
}

#[test]
fn a_downloaded_checkpoint_that_fails_to_load_is_not_kept_nor_its_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TrackingStore> =
        Arc::new(SqliteStore::open(&dir.path().join("mlflow.db")).unwrap());
    let registry = TagRegistry::defaults();
    let experiment = store.create_experiment("t-hpo-bert").unwrap();
    let study = podium_keys::sha256_hex("study");
    let trial = podium_keys::sha256_hex("trial");
    let tags: BTreeMap<String, String> = [
        (Tag::Stage, stage::HPO_REFIT.to_string()),
        (Tag::Model, "bert".to_string()),
        (Tag::StudyKeyHash, study.clone()),
        (Tag::TrialKeyHash, trial.clone()),
    ]
    .into_iter()
    .map(|(tag, value)| (registry.get(tag).to_string(), value))
    .collect();
    let refit = store
        .create_run(&experiment, "refit", 1_000, &tags)
        .unwrap();
    store
        .update_run(&refit.run_id, RunStatus::Finished, Some(2_000))
        .unwrap();
    // The pipeline's refit artifact, in the store's local artifact root.
    let artifacts = Path::new(&refit.artifact_uri).to_path_buf();
    std::fs::create_dir_all(&artifacts).unwrap();
    broken_checkpoint_archive(&artifacts.join("best_trial_checkpoint.tar.gz"));

    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("hpo")).unwrap();
    std::fs::write(config.join("benchmark.yaml"), support::FAST_BENCHMARK).unwrap();
    std::fs::write(
        config.join("hpo/prod.yaml"),
        "run:\n  mode: reuse_if_exists\n",
    )
    .unwrap();
    std::fs::create_dir_all(config.join("data")).unwrap();
    std::fs::write(config.join("data/tiny.yaml"), "name: tiny\nversion: v1\n").unwrap();
    let settings = BenchmarkSettings::load(
        &config,
        &config.join("data/tiny.yaml"),
        &config.join("hpo/prod.yaml"),
        false,
    )
    .unwrap();
    // No checkpoint path: only the refit's archive artifact has it.
    let champion = support::champion_of(&refit, study, trial, None);
    let target = BenchmarkTarget::from_champion("bert-base-cased", champion, &settings);
    let project = support::Project {
        dir,
        targets: vec![target],
        settings,
    };

    // What a process killed mid-extraction left: a scratch folder the size of a checkpoint.
    let cache = project
        .root()
        .join("outputs/cache/checkpoints")
        .join(&refit.run_id);
    let dead = cache.join(".podium-archive-dead");
    std::fs::create_dir_all(dead.join("extracted/best_trial_checkpoint")).unwrap();
    std::fs::write(dead.join(".owner.lock"), b"").unwrap();
    std::fs::write(
        dead.join("extracted/best_trial_checkpoint/model.safetensors"),
        vec![7u8; 1 << 20],
    )
    .unwrap();

    for attempt in 0..2 {
        let orchestrator = project.orchestrator(store.clone(), "w1", Duration::from_secs(30));
        let outcomes = project.sweep(&orchestrator);
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].outcome, Outcome::Failed, "{:?}", outcomes[0]);
        let error = outcomes[0].error.clone().unwrap_or_default();
        assert!(error.contains("config.json"), "attempt {attempt}: {error}");
        let left: Vec<String> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            left.is_empty(),
            "attempt {attempt}: left in the checkpoint cache: {left:?}"
        );
    }
}
