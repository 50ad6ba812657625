//! Pick each backbone's champion from an `mlflow.db`, with `podium-mlflow` + `podium-champion`.
//!
//! Reads MLflow's own SQLite schema directly (no server, no Python) and applies podium's
//! selection rules (`best_model_selection.yaml`): study groups by study_key_hash, the
//! min-trials guardrail, the median-of-top-k stable score, the refit run that holds the
//! checkpoint. Prints every backbone's champion and why its group won.
//!
//! ```sh
//! # A store this example creates: one backbone, two HPO studies, their refits.
//! cargo run --example champion_from_db
//! # The demo's store (`cargo run -p podium-cli -- demo` first), or your own:
//! cargo run --example champion_from_db -- podium-demo/mlflow.db [CONFIG_DIR]
//! ```
//!
//! CONFIG_DIR defaults to the `config/` beside the database when there is one (the demo's),
//! else the repository's `config/`.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use podium_champion::{SelectionConfig, Selector};
use podium_keys::{
    PipelineRunRole, PipelineRunTags, StudyConfigs, StudyIdentity, StudyKeySchema, TagRegistry,
    load_json_str, load_path, trial_key, trial_key_hash,
};
use podium_mlflow::{MetricPoint, RunStatus, SqliteStore, TrackingStore};
use podium_variants::{Environment, ExperimentConfig, OutputLayout};

/// The backbone of the store this example creates.
const EXAMPLE_BACKBONE: &str = "distilbert";

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let repo_config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let scratch = tempfile::tempdir()?;
    // The store created here holds one backbone; a given store is asked for every backbone of
    // its experiment.
    let (db, only_backbone) = match args.next() {
        Some(db) => (PathBuf::from(db), None),
        None => {
            let db = scratch.path().join("mlflow.db");
            write_example_sweep(&db, &repo_config)?;
            println!(
                "created {} with two studies of {EXAMPLE_BACKBONE}",
                db.display()
            );
            (db, Some(EXAMPLE_BACKBONE.to_string()))
        }
    };
    let root = db.parent().unwrap_or(Path::new(".")).to_path_buf();
    let config_dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let beside = root.join("config");
        if beside.join("experiment").is_dir() {
            beside
        } else {
            repo_config.clone()
        }
    });

    // Read as it is: an empty or non-MLflow file is an error, never given a schema.
    let store = SqliteStore::open_existing(&db)?;
    let experiments = ExperimentConfig::from_config_dir(&config_dir, None)?;
    let config = SelectionConfig::load(&config_dir.join("best_model_selection.yaml"))?;
    let tags = TagRegistry::load(&config_dir.join("tags.yaml"))?;
    let layout = OutputLayout::new(&root);
    let environment = Environment::detect()?;
    let selector = Selector {
        store: &store,
        config: &config,
        tags: &tags,
        layout: &layout,
        environment: &environment,
    };
    let backbones = only_backbone.map_or_else(|| experiments.backbones.clone(), |b| vec![b]);
    let results = selector.select_many(&backbones, &experiments);

    for (backbone, report) in &results.champions {
        let champion = &report.champion;
        println!("\n{backbone} (experiment {})", report.experiment);
        println!(
            "  champion trial {}  {} = {:.4}",
            champion.trial_run_id, report.metadata.metric, champion.metric
        );
        println!(
            "  checkpoint run {} (refit: {})",
            champion.run_id,
            champion.refit_run_id.as_deref().unwrap_or("-")
        );
        println!(
            "  group {} (schema {}): stable score {:.4} over {} trials",
            &champion.study_key_hash[..12.min(champion.study_key_hash.len())],
            champion.schema_version,
            champion.stable_score,
            champion.counted_trials
        );
        for group in &report.groups {
            println!(
                "    group {:12}  schema {}  {:?}  trials {}  stable score {}",
                &group.study_key_hash[..12.min(group.study_key_hash.len())],
                group.schema_version,
                group.status,
                group.counted_trials,
                group
                    .stable_score
                    .map_or_else(|| "-".to_string(), |score| format!("{score:.4}"))
            );
        }
    }
    for (backbone, error) in &results.errors {
        println!("\n{backbone}: no champion: {error}");
    }
    if results.errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{} backbone(s) without a champion", results.errors.len()).into())
    }
}

/// Logs two studies of distilbert (the prod and the smoke search space) with their refits,
/// tagged as the pipeline tags them (podium-keys' `PipelineRunTags`) from the repository's configs.
fn write_example_sweep(db: &Path, config_dir: &Path) -> Result<(), Box<dyn Error>> {
    let experiments = ExperimentConfig::from_config_dir(config_dir, None)?;
    let registry = TagRegistry::load(&config_dir.join("tags.yaml"))?;
    let backbone = EXAMPLE_BACKBONE;
    let files = podium_variants::ExperimentFiles::discover(config_dir, None)?;
    let (data, train) = (load_path(&files.data)?, load_path(&files.train)?);
    let store = SqliteStore::open(db)?;
    let experiment = store.create_experiment(&experiments.hpo_experiment_name(backbone))?;
    let studies = [
        ("hpo/prod.yaml", [0.861, 0.874, 0.869, 0.858]),
        ("hpo/smoke.yaml", [0.849, 0.855, 0.851, 0.842]),
    ];
    let mut time = 1_735_725_600_000_i64;
    for (hpo_file, metrics) in studies {
        let hpo = load_path(&config_dir.join(hpo_file))?;
        let configs = StudyConfigs {
            data: &data,
            hpo: &hpo,
            train: &train,
            eval: None,
            model: backbone,
            benchmark: None,
            code_version: None,
        };
        let study = StudyIdentity::compute(&configs, StudyKeySchema::V2)?;
        let tags_for = |role: PipelineRunRole<'_>| -> BTreeMap<String, String> {
            PipelineRunTags {
                backbone,
                study: &study,
                role,
                // The sweep's tag decides for its trials: the study's checkpoints were logged.
                artifact_available: true,
                environment: "local",
                project: None,
            }
            .build(&registry)
        };
        let sweep = store.create_run(
            &experiment,
            "sweep",
            time,
            &tags_for(PipelineRunRole::Sweep),
        )?;
        let mut best: Option<(f64, String, String)> = None;
        for (number, metric) in metrics.into_iter().enumerate() {
            time += 1_000;
            let params = load_json_str(&format!(
                r#"{{"learning_rate": {}e-05, "batch_size": 16}}"#,
                number + 1
            ))?;
            let trial_hash = trial_key_hash(&trial_key(&study.study_key_hash, &params)?);
            let tags = tags_for(PipelineRunRole::Trial {
                trial_number: number as u64,
                sweep_run_id: &sweep.run_id,
                trial_key_hash: Some(&trial_hash),
            });
            let run = store.create_run(&experiment, &format!("trial_{number}"), time, &tags)?;
            let point = MetricPoint {
                key: "macro-f1",
                value: metric,
                timestamp: time,
                step: 0,
            };
            store.log_batch(&run.run_id, &[point], &[], &[])?;
            store.update_run(&run.run_id, RunStatus::Finished, Some(time + 500))?;
            if best.as_ref().is_none_or(|(value, _, _)| metric > *value) {
                best = Some((metric, run.run_id, trial_hash));
            }
        }
        if let Some((_, trial_run, trial_hash)) = best {
            time += 1_000;
            let tags = tags_for(PipelineRunRole::Refit {
                trial_key_hash: &trial_hash,
                of_trial_run_id: &trial_run,
                sweep_run_id: &sweep.run_id,
            });
            let refit = store.create_run(&experiment, "refit", time, &tags)?;
            store.update_run(&refit.run_id, RunStatus::Finished, Some(time + 500))?;
        }
        store.update_run(&sweep.run_id, RunStatus::Finished, Some(time + 1_000))?;
    }
    Ok(())
}
