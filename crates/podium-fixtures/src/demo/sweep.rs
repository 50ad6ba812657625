//! The demo's HPO history: a realistic sweep for three backbones written into an `mlflow.db`
//! with MLflow's own schema, tagged exactly as the Python pipeline (and podium's tag builder)
//! tags runs, plus a tiny random checkpoint for every refit.
//!
//! Everything is deterministic: trial parameters come from a seeded generator, timestamps are
//! fixed, and run ids come from the store's generator seeded before writing, so two demos on two
//! machines hold the same runs with the same ids (and so the same benchmark keys).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use podium_keys::{
    PipelineRunRole, PipelineRunTags, PyValue, StudyConfigs, StudyIdentity, StudyKeySchema, Tag,
    TagRegistry, load_path, trial_key, trial_key_hash,
};
use podium_mlflow::{MetricPoint, MlflowError, RunStatus, SqliteBatch, SqliteStore, TrackingStore};
use podium_variants::{
    Environment, ExperimentConfig, OutputLayout, Process, StudyNaming, pipeline_study_folder,
    pipeline_trial_folder, variant_name,
};
use serde::Serialize;

use super::DemoPaths;
use super::configs::{DEMO_HPO_CONFIG, DEMO_NARROW_HPO_CONFIG};
use super::sample::sample_params;
use crate::error::{Context, FixturesError};
use crate::random_checkpoint::RandomCheckpoint;

/// Seed of everything random in the demo.
pub const DEMO_SEED: u64 = 20_250_101;

/// 2025-01-01T10:00:00Z: the demo's sweeps start here, one day apart.
const BASE_TIME_MS: i64 = 1_735_725_600_000;
const DAY_MS: i64 = 86_400_000;
const TRIAL_MS: i64 = 12 * 60_000;
const EPOCHS: i64 = 3;

/// The objective metric the demo's trials log (`objective.metric` of the selection config).
const METRIC: &str = "macro-f1";

/// How a demo trial ended.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// FINISHED with this final metric (NaN: training diverged).
    Finished(f64),
    /// FAILED before logging a metric.
    Failed,
}

use Outcome::{Failed, Finished};

/// One study of the demo history.
#[derive(Debug)]
struct StudySpec {
    backbone: &'static str,
    variant: u32,
    hpo_config: &'static str,
    schema: StudyKeySchema,
    trials: &'static [Outcome],
    /// Refit the best trial and save its checkpoint.
    refit: bool,
    /// What this study shows about selection.
    story: &'static str,
}

const STUDIES: &[StudySpec] = &[
    StudySpec {
        backbone: "distilbert-base-uncased",
        variant: 1,
        hpo_config: DEMO_HPO_CONFIG,
        schema: StudyKeySchema::V1,
        trials: &[Finished(0.884), Finished(0.879), Finished(0.891)],
        refit: false,
        story: "legacy v1 study key: never mixed with v2 groups (prefer_schema_version 2.0)",
    },
    StudySpec {
        backbone: "distilbert-base-uncased",
        variant: 2,
        hpo_config: DEMO_HPO_CONFIG,
        schema: StudyKeySchema::V2,
        trials: &[
            Finished(0.861),
            Finished(f64::NAN),
            Finished(0.874),
            Finished(0.869),
            Finished(0.858),
        ],
        refit: true,
        story: "v2 group with a NaN trial (not counted); champion group",
    },
    StudySpec {
        backbone: "distilroberta-base",
        variant: 1,
        hpo_config: DEMO_HPO_CONFIG,
        schema: StudyKeySchema::V2,
        trials: &[
            Finished(0.848),
            Finished(0.866),
            Finished(0.871),
            Finished(0.855),
        ],
        refit: true,
        story: "v2 group; champion group",
    },
    StudySpec {
        backbone: "distilroberta-base",
        variant: 1,
        hpo_config: DEMO_NARROW_HPO_CONFIG,
        schema: StudyKeySchema::V2,
        trials: &[Finished(0.897), Finished(0.612)],
        refit: false,
        story: "2 trials < min_trials_per_group: dropped despite its lucky 0.897",
    },
    StudySpec {
        backbone: "deberta-v3-small",
        variant: 1,
        hpo_config: DEMO_HPO_CONFIG,
        schema: StudyKeySchema::V2,
        trials: &[
            Finished(0.881),
            Finished(0.877),
            Failed,
            Finished(0.869),
            Finished(0.884),
            Finished(0.872),
        ],
        refit: true,
        story: "v2 group with a FAILED trial (not a candidate); champion group",
    },
];

/// What the demo history holds, for the summary table.
#[derive(Debug, Clone, Serialize)]
pub struct StudySummary {
    /// Full backbone name.
    pub backbone: String,
    /// Study folder (`hpo_distilbert_v2`).
    pub study: String,
    /// Study key schema version.
    pub schema_version: String,
    /// First 12 hex digits of the study key hash.
    pub study_key_hash: String,
    /// Trials: finished with a finite metric, NaN, failed.
    pub trials: String,
    /// The refit's checkpoint, if the study has a refit.
    pub checkpoint: Option<PathBuf>,
    /// What the study shows.
    pub story: String,
}

/// The configs a study key is computed from, loaded the way the Python pipeline loads them.
struct LoadedConfigs {
    data: PyValue,
    train: PyValue,
    benchmark: PyValue,
    hpo: BTreeMap<&'static str, PyValue>,
}

impl LoadedConfigs {
    fn load(config_dir: &Path) -> Result<Self, FixturesError> {
        let load = |name: &str| {
            let path = config_dir.join(name);
            load_path(&path).context(|| format!("loading {}", path.display()))
        };
        let mut hpo = BTreeMap::new();
        for name in [DEMO_HPO_CONFIG, DEMO_NARROW_HPO_CONFIG] {
            hpo.insert(name, load(name)?);
        }
        let files = podium_variants::ExperimentFiles::discover(config_dir, None)?;
        let load_file =
            |path: &Path| load_path(path).context(|| format!("loading {}", path.display()));
        Ok(Self {
            data: load_file(&files.data)?,
            train: load_file(&files.train)?,
            benchmark: load_file(&files.benchmark)?,
            hpo,
        })
    }
}

/// Writes the demo history: `paths.db` (built under a temporary name and renamed into place,
/// so an interrupted demo never leaves a half-written store that a rerun would keep) and the
/// refit checkpoints under `paths.root/outputs`.
pub fn generate(
    paths: &DemoPaths,
    environment: &Environment,
) -> Result<Vec<StudySummary>, FixturesError> {
    let configs = LoadedConfigs::load(&paths.config_dir)?;
    let experiment = ExperimentConfig::from_config_dir(&paths.config_dir, None)?;
    let tags = TagRegistry::load(&paths.config_dir.join("tags.yaml"))?;
    let layout = OutputLayout::new(&paths.root);
    let labels = entity_labels(&configs.data);

    let plans = STUDIES
        .iter()
        .enumerate()
        .map(|(index, spec)| StudyPlan::new(index, spec, &configs, paths, &layout, environment))
        .collect::<Result<Vec<_>, FixturesError>>()?;
    for plan in &plans {
        if let Some(refit) = &plan.refit {
            RandomCheckpoint::tiny_for(plan.spec.backbone, refit.seed)
                .with_labels(labels.clone())
                .write(&refit.checkpoint)
                .context(|| {
                    format!(
                        "writing the refit checkpoint {}",
                        refit.checkpoint.display()
                    )
                })?;
        }
    }

    let partial = paths.root.join("mlflow.db.partial");
    if partial.exists() {
        std::fs::remove_file(&partial).map_err(|source| FixturesError::Io {
            action: "remove the leftover",
            path: partial.clone(),
            source,
        })?;
    }
    let store = SqliteStore::open(&partial)?;
    let mut experiment_ids = BTreeMap::new();
    for spec in STUDIES {
        if !experiment_ids.contains_key(spec.backbone) {
            let name = experiment.hpo_experiment_name(spec.backbone);
            experiment_ids.insert(spec.backbone, store.create_experiment(&name)?);
        }
    }
    // Run ids come from fastrand's thread-local generator; seeding it makes them reproducible.
    fastrand::seed(DEMO_SEED);
    store.write_batch(|batch| {
        plans
            .iter()
            .try_for_each(|plan| plan.write(batch, &experiment_ids[plan.spec.backbone], &tags))
    })?;
    drop(store);
    std::fs::rename(&partial, &paths.db).map_err(|source| FixturesError::Io {
        action: "rename into place the demo store",
        path: partial.clone(),
        source,
    })?;
    Ok(plans.iter().map(StudyPlan::summary).collect())
}

/// IOB2 labels of the data config's entity types (`O`, `B-SKILL`, `I-SKILL`, …).
fn entity_labels(data: &PyValue) -> Vec<String> {
    let mut labels = vec!["O".to_string()];
    if let Some(PyValue::List(types)) = data.get("schema").and_then(|s| s.get("entity_types")) {
        for entity in types.iter().filter_map(PyValue::as_str) {
            labels.push(format!("B-{entity}"));
            labels.push(format!("I-{entity}"));
        }
    }
    labels
}

/// One planned trial.
#[derive(Debug)]
struct TrialPlan {
    number: usize,
    trial_key_hash: String,
    /// None: the trial failed before logging a metric.
    metric: Option<f64>,
    /// (name, value as Python's `str`, which is how MLflow stores params).
    params: Vec<(String, String)>,
    start: i64,
}

/// The refit of a study's best trial.
#[derive(Debug)]
struct RefitPlan {
    /// Index into the study's trials.
    trial: usize,
    checkpoint: PathBuf,
    seed: u64,
}

/// Everything about one study that does not depend on run ids, computed before writing.
#[derive(Debug)]
struct StudyPlan {
    spec: &'static StudySpec,
    study: StudyIdentity,
    folder: String,
    /// The environment the sweep "ran" in (`local`, `colab`, …), as the pipeline tags it.
    environment: String,
    start: i64,
    trials: Vec<TrialPlan>,
    refit: Option<RefitPlan>,
}

impl StudyPlan {
    fn new(
        index: usize,
        spec: &'static StudySpec,
        configs: &LoadedConfigs,
        paths: &DemoPaths,
        layout: &OutputLayout,
        environment: &Environment,
    ) -> Result<Self, FixturesError> {
        let hpo = &configs.hpo[spec.hpo_config];
        let study_configs = StudyConfigs {
            data: &configs.data,
            hpo,
            train: &configs.train,
            eval: None,
            model: spec.backbone,
            benchmark: Some(&configs.benchmark),
            code_version: None,
        };
        let study = StudyIdentity::compute(&study_configs, spec.schema)?;
        let naming = StudyNaming::from_hpo_config(&paths.config_dir.join(spec.hpo_config))?;
        let folder = variant_name(&naming.base_name(spec.backbone)?, spec.variant);
        let start = BASE_TIME_MS + DAY_MS * index as i64;
        let search_space = hpo.get("search_space").cloned().unwrap_or(PyValue::None);
        let mut rng = fastrand::Rng::with_seed(DEMO_SEED.wrapping_add(index as u64 * 7919));
        let mut trials = Vec::new();
        for (number, outcome) in spec.trials.iter().enumerate() {
            let params = sample_params(&search_space, &mut rng)
                .context(|| format!("sampling trial {number} of {folder}"))?;
            let trial_key_hash = trial_key_hash(&trial_key(
                &study.study_key_hash,
                &PyValue::Dict(params.clone()),
            )?);
            let params = params
                .iter()
                .map(|(name, value)| Ok((name.py_str()?, value.py_str()?)))
                .collect::<Result<_, podium_keys::KeysError>>()?;
            trials.push(TrialPlan {
                number,
                trial_key_hash,
                metric: match outcome {
                    Finished(value) => Some(*value),
                    Failed => None,
                },
                params,
                start: start + TRIAL_MS * number as i64,
            });
        }
        let refit = if spec.refit {
            let best = trials
                .iter()
                .enumerate()
                .filter_map(|(at, trial)| trial.metric.filter(|m| m.is_finite()).map(|m| (at, m)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(at, _)| at)
                .ok_or_else(|| FixturesError::DemoConfig {
                    what: folder.clone(),
                    message: "no finite trial to refit".into(),
                })?;
            let checkpoint = layout
                .process_dir(Process::Hpo, environment, spec.backbone)?
                .join(&folder)
                .join(pipeline_study_folder(&study.study_key_hash))
                .join(pipeline_trial_folder(&trials[best].trial_key_hash))
                .join("refit")
                .join("checkpoint");
            Some(RefitPlan {
                trial: best,
                checkpoint,
                seed: DEMO_SEED.wrapping_add(index as u64),
            })
        } else {
            None
        };
        Ok(Self {
            spec,
            study,
            folder,
            environment: environment.as_str().to_string(),
            start,
            trials,
            refit,
        })
    }

    fn end(&self) -> i64 {
        self.start + TRIAL_MS * self.trials.len() as i64
    }

    fn tags(&self, registry: &TagRegistry, role: PipelineRunRole<'_>) -> BTreeMap<String, String> {
        let mut tags = PipelineRunTags {
            backbone: self.spec.backbone,
            study: &self.study,
            role,
            // The pipeline's sweep says "true" once its best checkpoint is saved (selection
            // reads a trial's availability from its sweep), and a refit once it logged its own.
            artifact_available: true,
            environment: &self.environment,
            project: None,
        }
        .build(registry);
        // A trial without a schema-version tag reads as "2.0" (the pipeline's trials carry
        // none): a legacy study's trials say "1.0" explicitly, as legacy stores do.
        if self.study.schema_version != "2.0" {
            tags.insert(
                registry.get(Tag::StudyKeySchemaVersion).to_string(),
                self.study.schema_version.clone(),
            );
        }
        tags
    }

    /// Logs the sweep, its trials and its refit.
    fn write(
        &self,
        batch: &SqliteBatch<'_>,
        experiment_id: &str,
        registry: &TagRegistry,
    ) -> Result<(), MlflowError> {
        // MLflow's own client tags (not the pipeline's registry): what `mlflow.start_run` adds.
        let create = |name: &str, start: i64, mut tags: BTreeMap<String, String>| {
            tags.insert("mlflow.user".into(), "podium-demo".into());
            tags.insert("mlflow.source.type".into(), "LOCAL".into());
            batch
                .create_run(experiment_id, name, start, &tags)
                .map(|run| run.run_id)
        };
        let sweep = create(
            &self.folder,
            self.start,
            self.tags(registry, PipelineRunRole::Sweep),
        )?;
        let mut trial_runs = Vec::new();
        for trial in &self.trials {
            let tags = self.tags(
                registry,
                PipelineRunRole::Trial {
                    trial_number: trial.number as u64,
                    sweep_run_id: &sweep,
                    // The pipeline sets it on cross-validated trials; the demo's refits (and
                    // their checkpoint folders) are found through it.
                    trial_key_hash: Some(&trial.trial_key_hash),
                },
            );
            let run_id = create(&format!("trial_{}", trial.number), trial.start, tags)?;
            log_training(
                batch,
                &run_id,
                trial.start,
                &trial.params,
                trial.metric,
                trial.number,
            )?;
            let status = if trial.metric.is_some() {
                RunStatus::Finished
            } else {
                RunStatus::Failed
            };
            batch.update_run(&run_id, status, Some(trial.start + TRIAL_MS - 1))?;
            trial_runs.push(run_id);
        }
        if let Some(refit) = &self.refit {
            let trial = &self.trials[refit.trial];
            let tags = self.tags(
                registry,
                PipelineRunRole::Refit {
                    trial_key_hash: &trial.trial_key_hash,
                    of_trial_run_id: &trial_runs[refit.trial],
                    sweep_run_id: &sweep,
                },
            );
            let start = self.end();
            let run_id = create(&format!("refit_trial_{}", trial.number), start, tags)?;
            let metric = trial.metric.map(|value| value + 0.004);
            log_training(batch, &run_id, start, &trial.params, metric, trial.number)?;
            batch.update_run(&run_id, RunStatus::Finished, Some(start + TRIAL_MS))?;
        }
        let n_trials = self.trials.len().to_string();
        batch.log_batch(
            &sweep,
            &[],
            &[
                ("hpo_config", self.spec.hpo_config),
                ("n_trials", &n_trials),
            ],
            &[],
        )?;
        batch.update_run(&sweep, RunStatus::Finished, Some(self.end() + 2 * TRIAL_MS))
    }

    fn summary(&self) -> StudySummary {
        let nan = self
            .trials
            .iter()
            .filter(|t| t.metric.is_some_and(f64::is_nan))
            .count();
        let failed = self.trials.iter().filter(|t| t.metric.is_none()).count();
        let finite = self.trials.len() - nan - failed;
        StudySummary {
            backbone: self.spec.backbone.to_string(),
            study: self.folder.clone(),
            schema_version: self.study.schema_version.clone(),
            study_key_hash: self.study.study_key_hash[..12].to_string(),
            trials: format!("{finite} finished, {nan} NaN, {failed} failed"),
            checkpoint: self.refit.as_ref().map(|refit| refit.checkpoint.clone()),
            story: self.spec.story.to_string(),
        }
    }
}

/// Params and a per-epoch metric history ending at `metric` (None: the run failed in its first
/// epoch and logged no metric).
fn log_training(
    batch: &SqliteBatch<'_>,
    run_id: &str,
    start: i64,
    params: &[(String, String)],
    metric: Option<f64>,
    number: usize,
) -> Result<(), MlflowError> {
    let number = number.to_string();
    let mut param_refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    param_refs.push(("trial_number", &number));
    let mut points = Vec::new();
    if let Some(final_value) = metric {
        for epoch in 0..EPOCHS {
            let remaining = (EPOCHS - 1 - epoch) as f64;
            let timestamp = start + (epoch + 1) * TRIAL_MS / (EPOCHS + 1);
            points.push(MetricPoint {
                key: METRIC,
                value: final_value - 0.03 * remaining,
                timestamp,
                step: epoch,
            });
            points.push(MetricPoint {
                key: "eval_loss",
                value: 0.2 + 0.1 * remaining,
                timestamp,
                step: epoch,
            });
        }
    }
    batch.log_batch(run_id, &points, &param_refs, &[])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn generate_in(dir: &Path) -> DemoPaths {
        let paths = DemoPaths::new(dir).unwrap();
        crate::demo::configs::write_demo_configs(&paths.config_dir).unwrap();
        generate(&paths, &Environment::Local).unwrap();
        paths
    }

    /// Every run of the demo store, as text, with the demo directory replaced by `<root>`.
    fn dump(paths: &DemoPaths) -> Vec<String> {
        let store = SqliteStore::open(&paths.db).unwrap();
        let experiment = ExperimentConfig::from_config_dir(&paths.config_dir, None).unwrap();
        let ids: Vec<String> = experiment
            .backbones
            .iter()
            .map(|backbone| {
                store
                    .get_experiment_by_name(&experiment.hpo_experiment_name(backbone))
                    .unwrap()
                    .unwrap()
                    .experiment_id
            })
            .collect();
        let runs = podium_mlflow::search_all(
            &store,
            &ids,
            &podium_mlflow::Filter::new(),
            podium_mlflow::ViewType::All,
        )
        .unwrap();
        let root = paths.root.display().to_string();
        let mut lines: Vec<String> = runs
            .iter()
            .map(|run| {
                format!(
                    "{} {} {} {:?} {:?} {:?} {:?}",
                    run.info.run_id,
                    run.info.run_name,
                    run.info.status,
                    run.info.start_time,
                    run.tags,
                    run.params,
                    run.metrics
                )
                .replace(&root, "<root>")
            })
            .collect();
        lines.sort();
        lines
    }

    #[test]
    fn generation_is_deterministic() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (first, second) = (generate_in(a.path()), generate_in(b.path()));
        let runs = dump(&first);
        assert_eq!(runs.len(), 5 + 20 + 3, "sweeps + trials + refits");
        assert_eq!(runs, dump(&second));
        let checkpoint = |paths: &DemoPaths| {
            let dirs: Vec<PathBuf> = generate_plans_checkpoints(paths);
            dirs.iter()
                .map(|dir| std::fs::read(dir.join("model.safetensors")).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(checkpoint(&first), checkpoint(&second));
    }

    /// The refit checkpoint directories the demo wrote, in study order.
    fn generate_plans_checkpoints(paths: &DemoPaths) -> Vec<PathBuf> {
        let configs = LoadedConfigs::load(&paths.config_dir).unwrap();
        let layout = OutputLayout::new(&paths.root);
        let dirs: Vec<PathBuf> = STUDIES
            .iter()
            .enumerate()
            .filter_map(|(index, spec)| {
                StudyPlan::new(index, spec, &configs, paths, &layout, &Environment::Local)
                    .unwrap()
                    .refit
                    .map(|refit| refit.checkpoint)
            })
            .collect();
        assert_eq!(dirs.len(), 3);
        dirs
    }

    #[test]
    fn selection_on_the_demo_picks_the_documented_champions() {
        let dir = tempfile::tempdir().unwrap();
        let paths = generate_in(dir.path());
        let store = SqliteStore::open(&paths.db).unwrap();
        let experiment = ExperimentConfig::from_config_dir(&paths.config_dir, None).unwrap();
        let config = podium_champion::SelectionConfig::load(
            &paths.config_dir.join("best_model_selection.yaml"),
        )
        .unwrap();
        let tags = TagRegistry::load(&paths.config_dir.join("tags.yaml")).unwrap();
        let layout = OutputLayout::new(&paths.root);
        let selector = podium_champion::Selector {
            store: &store,
            config: &config,
            tags: &tags,
            layout: &layout,
            environment: &Environment::Local,
        };
        let results = selector.select_many(&experiment.backbones, &experiment);
        assert!(results.errors.is_empty(), "{:?}", results.errors);
        let run_name = |run_id: &str| store.get_run(run_id).unwrap().info.run_name;
        // (backbone, champion trial, its metric, stable score, group statuses)
        let expected = [
            ("distilbert-base-uncased", "trial_2", 0.874, 0.869),
            ("distilroberta-base", "trial_2", 0.871, 0.866),
            ("deberta-v3-small", "trial_4", 0.884, 0.881),
        ];
        for (backbone, trial, metric, stable) in expected {
            let report = &results.champions[backbone];
            let champion = &report.champion;
            assert_eq!(run_name(&champion.trial_run_id), trial, "{backbone}");
            assert_eq!(champion.metric, metric, "{backbone}");
            assert!((champion.stable_score - stable).abs() < 1e-12, "{backbone}");
            assert_eq!(champion.schema_version, "2.0", "{backbone}");
            let refit = champion.refit_run_id.as_deref().unwrap();
            assert_eq!(run_name(refit), format!("refit_{trial}"), "{backbone}");
            // Found the way the pipeline's checkpoints are: by the output layout.
            let local = champion.checkpoint.local.as_ref().unwrap();
            assert_eq!(
                local.source,
                podium_champion::checkpoint::CheckpointSource::OutputLayout,
                "{backbone}"
            );
            assert!(local.path.join("config.json").is_file(), "{backbone}");
        }
        let statuses = |backbone: &str| -> Vec<podium_champion::selection::GroupStatus> {
            results.champions[backbone]
                .groups
                .iter()
                .map(|g| g.status)
                .collect()
        };
        use podium_champion::selection::GroupStatus::*;
        assert_eq!(statuses("distilbert-base-uncased"), [Winner, SchemaNotUsed]);
        assert_eq!(statuses("distilroberta-base"), [Winner, BelowMinTrials]);
        assert_eq!(statuses("deberta-v3-small"), [Winner]);
        let distilbert = &results.champions["distilbert-base-uncased"];
        assert_eq!(distilbert.groups[0].non_finite_metric, 1, "the NaN trial");
    }

    #[test]
    fn labels_are_iob2_of_the_entity_types() {
        let data = podium_keys::load_yaml_str("schema: {entity_types: [SKILL, NAME]}\n").unwrap();
        assert_eq!(
            entity_labels(&data),
            ["O", "B-SKILL", "I-SKILL", "B-NAME", "I-NAME"]
        );
    }
}
