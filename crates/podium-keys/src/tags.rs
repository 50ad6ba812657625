//! The tag registry: (section, name) → MLflow tag key. It reads the pipeline's whole
//! `config/tags.yaml` (a scalar `schema_version` and every section) over built-in defaults;
//! podium's own extra keys (`process.variant`, `artifact.checkpoint_path`, the `benchmark` and
//! `report` sections) are built-in defaults the file may override. Every crate that reads or writes a tag
//! goes through it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::KeysError;
use crate::load::{load_yaml_str, read_config_text};
use crate::value::PyValue;

/// Every tag podium knows, by its (section, name) in `tags.yaml`: each entry of the pipeline's
/// registry, plus podium's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// process.backbone — the backbone a run trains.
    Backbone,
    /// process.stage — the pipeline stage: hpo, hpo_refit, benchmarking, final_training.
    Stage,
    /// process.variant — podium's HPO variant (study folder) number; the pipeline's legacy.variant uses the same key.
    Variant,
    /// grouping.study_key_hash — sha256 of the study key.
    StudyKeyHash,
    /// grouping.trial_key_hash — sha256 of the trial key.
    TrialKeyHash,
    /// grouping.study_family_hash — sha256 of the study family key.
    StudyFamilyHash,
    /// study.key_schema_version — "2.0" on v2 sweeps and refits (trials carry none).
    StudyKeySchemaVersion,
    /// fingerprint.data — the data fingerprint.
    DataFingerprint,
    /// fingerprint.eval — the eval fingerprint.
    EvalFingerprint,
    /// artifact.available — "true" once the run's checkpoint is logged.
    ArtifactAvailable,
    /// artifact.checkpoint_path — podium's: the local checkpoint directory.
    ArtifactCheckpointPath,
    /// objective.direction — maximize or minimize.
    ObjectiveDirection,
    /// refit.of_trial_run_id — the trial run a refit retrains.
    RefitOfTrialRunId,
    /// lineage.hpo_sweep_run_id — the sweep (parent) run.
    LineageHpoSweepRunId,
    /// benchmark.key — the benchmark key of a benchmark run.
    BenchmarkKey,
    /// benchmark.champion_run_id — the run whose checkpoint was measured (the refit run, else the trial).
    BenchmarkChampionRunId,
    /// benchmark.trial_run_id — the champion trial run.
    BenchmarkTrialRunId,
    /// benchmark.refit_run_id — the champion's refit run, when the checkpoint came from a refit.
    BenchmarkRefitRunId,
    /// benchmark.environment — where the benchmark ran (`local`, `colab`, … or the `PODIUM_ENVIRONMENT` override).
    BenchmarkEnvironment,
    /// benchmark.podium_version — the podium version that measured.
    BenchmarkPodiumVersion,
    /// benchmark.threads — compute threads used.
    BenchmarkThreads,
    /// benchmark.harness_version — the timing harness version.
    BenchmarkHarnessVersion,
    /// benchmark.checkpoint_source — which acquisition step provided the checkpoint.
    BenchmarkCheckpointSource,
    /// benchmark.worker — the worker (`host:pid:random`) that measured.
    BenchmarkWorker,
    /// benchmark.error — why a benchmark run FAILED or was KILLED.
    BenchmarkError,
    /// benchmark.restored_from_cache — on runs recreated from the disk cache: the benchmark run id the cache named.
    BenchmarkRestoredFromCache,
    /// grouping.parent_run_id — the parent run (refits: the sweep).
    GroupingParentRunId,
    /// grouping.run_key_hash — sha256 of the run key.
    RunKeyHash,
    /// grouping.group_id — the run's group id.
    GroupId,
    /// grouping.grouping_schema_version — the grouping tags' schema version ("1").
    GroupingSchemaVersion,
    /// process.project — the project name.
    Project,
    /// process.model — the model: the backbone as written on sweeps, its short name on trials and refits.
    Model,
    /// process.run_type — the run type (`refit` on refits).
    RunType,
    /// process.env — legacy environment tag.
    Env,
    /// process.storage_env — the storage environment.
    StorageEnv,
    /// process.execution_platform — the execution platform.
    ExecutionPlatform,
    /// process.created_by — who created the run.
    CreatedBy,
    /// training.trained_on_full_data — whether the run trained on the full data.
    TrainedOnFullData,
    /// training.source_training_run — the training run a benchmark measured.
    SourceTrainingRun,
    /// training.refit — "true" on refit runs.
    Refit,
    /// training.refit_has_validation — whether the refit kept a validation split.
    RefitHasValidation,
    /// training.interrupted — "true" on runs that were interrupted.
    Interrupted,
    /// hpo.trial_number — the Optuna trial number.
    HpoTrialNumber,
    /// hpo.best_trial_run_id — on sweeps: the best trial's run.
    BestTrialRunId,
    /// hpo.best_trial_number — on sweeps: the best trial's number.
    BestTrialNumber,
    /// hpo.refit_planned — on sweeps: whether a refit follows.
    RefitPlanned,
    /// lineage.source — where a run's lineage comes from.
    LineageSource,
    /// lineage.hpo_study_key_hash — the HPO study key hash a run descends from.
    LineageHpoStudyKeyHash,
    /// lineage.hpo_trial_key_hash — the HPO trial key hash a run descends from.
    LineageHpoTrialKeyHash,
    /// lineage.hpo_trial_run_id — the HPO trial run a run descends from.
    LineageHpoTrialRunId,
    /// lineage.hpo_refit_run_id — the HPO refit run a run descends from.
    LineageHpoRefitRunId,
    /// lineage.parent_training_run_id — the training run a run descends from.
    LineageParentTrainingRunId,
    /// paths.spec_fp — the final-training spec fingerprint.
    SpecFp,
    /// paths.exec_fp — the final-training exec fingerprint.
    ExecFp,
    /// paths.conv_fp — the conversion fingerprint.
    ConvFp,
    /// paths.output_dir — the run's output folder.
    OutputDir,
    /// paths.refit_protocol_fp — the refit protocol fingerprint.
    RefitProtocolFp,
    /// azureml.run_type — AzureML's run type.
    AzuremlRunType,
    /// azureml.sweep — AzureML's sweep marker.
    AzuremlSweep,
    /// mlflow.run_type — MLflow's run type.
    MlflowRunType,
    /// mlflow.parent_run_id — MLflow's parent run link.
    MlflowParentRunId,
    /// legacy.trial_number — the trial number (not namespaced).
    LegacyTrialNumber,
    /// legacy.trial_id — legacy trial id.
    LegacyTrialId,
    /// legacy.parent_training_id — legacy parent training id.
    LegacyParentTrainingId,
    /// legacy.variant — legacy variant.
    LegacyVariant,
    /// legacy.benchmark_config_hash — the benchmark config hash on benchmark runs.
    LegacyBenchmarkConfigHash,
    /// legacy.run_id_prefix — legacy run id prefix.
    LegacyRunIdPrefix,
    /// benchmark.source — what was benchmarked (`hpo_trial` for champions).
    BenchmarkSource,
    /// benchmark.benchmarked_model — the backbone as configured.
    BenchmarkedModel,
    /// benchmark.creation_token — a token the creating worker draws before `runs/create`, so a
    /// retry after a lost response finds the run it already created.
    BenchmarkCreationToken,
    /// benchmark.cpu_model — the CPU that measured (its model name, as the OS reports it).
    BenchmarkCpuModel,
    /// benchmark.simd — the widest SIMD level the runtime could use there (`AVX-512`, `AVX2`, …).
    BenchmarkSimd,
    /// report.kind — marks podium's decision-report run in a benchmark experiment (never a
    /// benchmark: it carries no benchmark key, hashes or metrics).
    ReportKind,
    /// report.generated_at — when the report run's page was last written (UTC, RFC 3339).
    ReportGeneratedAt,
    /// report.podium_version — the podium version that wrote the report.
    ReportPodiumVersion,
}

impl Tag {
    /// Every tag, in registry order.
    pub const ALL: [Tag; 75] = [
        Tag::Backbone,
        Tag::Stage,
        Tag::Variant,
        Tag::StudyKeyHash,
        Tag::TrialKeyHash,
        Tag::StudyFamilyHash,
        Tag::StudyKeySchemaVersion,
        Tag::DataFingerprint,
        Tag::EvalFingerprint,
        Tag::ArtifactAvailable,
        Tag::ArtifactCheckpointPath,
        Tag::ObjectiveDirection,
        Tag::RefitOfTrialRunId,
        Tag::LineageHpoSweepRunId,
        Tag::BenchmarkKey,
        Tag::BenchmarkChampionRunId,
        Tag::BenchmarkTrialRunId,
        Tag::BenchmarkRefitRunId,
        Tag::BenchmarkEnvironment,
        Tag::BenchmarkPodiumVersion,
        Tag::BenchmarkThreads,
        Tag::BenchmarkHarnessVersion,
        Tag::BenchmarkCheckpointSource,
        Tag::BenchmarkWorker,
        Tag::BenchmarkError,
        Tag::BenchmarkRestoredFromCache,
        Tag::GroupingParentRunId,
        Tag::RunKeyHash,
        Tag::GroupId,
        Tag::GroupingSchemaVersion,
        Tag::Project,
        Tag::Model,
        Tag::RunType,
        Tag::Env,
        Tag::StorageEnv,
        Tag::ExecutionPlatform,
        Tag::CreatedBy,
        Tag::TrainedOnFullData,
        Tag::SourceTrainingRun,
        Tag::Refit,
        Tag::RefitHasValidation,
        Tag::Interrupted,
        Tag::HpoTrialNumber,
        Tag::BestTrialRunId,
        Tag::BestTrialNumber,
        Tag::RefitPlanned,
        Tag::LineageSource,
        Tag::LineageHpoStudyKeyHash,
        Tag::LineageHpoTrialKeyHash,
        Tag::LineageHpoTrialRunId,
        Tag::LineageHpoRefitRunId,
        Tag::LineageParentTrainingRunId,
        Tag::SpecFp,
        Tag::ExecFp,
        Tag::ConvFp,
        Tag::OutputDir,
        Tag::RefitProtocolFp,
        Tag::AzuremlRunType,
        Tag::AzuremlSweep,
        Tag::MlflowRunType,
        Tag::MlflowParentRunId,
        Tag::LegacyTrialNumber,
        Tag::LegacyTrialId,
        Tag::LegacyParentTrainingId,
        Tag::LegacyVariant,
        Tag::LegacyBenchmarkConfigHash,
        Tag::LegacyRunIdPrefix,
        Tag::BenchmarkSource,
        Tag::BenchmarkedModel,
        Tag::BenchmarkCreationToken,
        Tag::BenchmarkCpuModel,
        Tag::BenchmarkSimd,
        Tag::ReportKind,
        Tag::ReportGeneratedAt,
        Tag::ReportPodiumVersion,
    ];

    /// The (section, name) pair of `tags.yaml`.
    pub fn section_name(self) -> (&'static str, &'static str) {
        match self {
            Tag::Backbone => ("process", "backbone"),
            Tag::Stage => ("process", "stage"),
            Tag::Variant => ("process", "variant"),
            Tag::StudyKeyHash => ("grouping", "study_key_hash"),
            Tag::TrialKeyHash => ("grouping", "trial_key_hash"),
            Tag::StudyFamilyHash => ("grouping", "study_family_hash"),
            Tag::StudyKeySchemaVersion => ("study", "key_schema_version"),
            Tag::DataFingerprint => ("fingerprint", "data"),
            Tag::EvalFingerprint => ("fingerprint", "eval"),
            Tag::ArtifactAvailable => ("artifact", "available"),
            Tag::ArtifactCheckpointPath => ("artifact", "checkpoint_path"),
            Tag::ObjectiveDirection => ("objective", "direction"),
            Tag::RefitOfTrialRunId => ("refit", "of_trial_run_id"),
            Tag::LineageHpoSweepRunId => ("lineage", "hpo_sweep_run_id"),
            Tag::BenchmarkKey => ("benchmark", "key"),
            Tag::BenchmarkChampionRunId => ("benchmark", "champion_run_id"),
            Tag::BenchmarkTrialRunId => ("benchmark", "trial_run_id"),
            Tag::BenchmarkRefitRunId => ("benchmark", "refit_run_id"),
            Tag::BenchmarkEnvironment => ("benchmark", "environment"),
            Tag::BenchmarkPodiumVersion => ("benchmark", "podium_version"),
            Tag::BenchmarkThreads => ("benchmark", "threads"),
            Tag::BenchmarkHarnessVersion => ("benchmark", "harness_version"),
            Tag::BenchmarkCheckpointSource => ("benchmark", "checkpoint_source"),
            Tag::BenchmarkWorker => ("benchmark", "worker"),
            Tag::BenchmarkError => ("benchmark", "error"),
            Tag::BenchmarkRestoredFromCache => ("benchmark", "restored_from_cache"),
            Tag::GroupingParentRunId => ("grouping", "parent_run_id"),
            Tag::RunKeyHash => ("grouping", "run_key_hash"),
            Tag::GroupId => ("grouping", "group_id"),
            Tag::GroupingSchemaVersion => ("grouping", "grouping_schema_version"),
            Tag::Project => ("process", "project"),
            Tag::Model => ("process", "model"),
            Tag::RunType => ("process", "run_type"),
            Tag::Env => ("process", "env"),
            Tag::StorageEnv => ("process", "storage_env"),
            Tag::ExecutionPlatform => ("process", "execution_platform"),
            Tag::CreatedBy => ("process", "created_by"),
            Tag::TrainedOnFullData => ("training", "trained_on_full_data"),
            Tag::SourceTrainingRun => ("training", "source_training_run"),
            Tag::Refit => ("training", "refit"),
            Tag::RefitHasValidation => ("training", "refit_has_validation"),
            Tag::Interrupted => ("training", "interrupted"),
            Tag::HpoTrialNumber => ("hpo", "trial_number"),
            Tag::BestTrialRunId => ("hpo", "best_trial_run_id"),
            Tag::BestTrialNumber => ("hpo", "best_trial_number"),
            Tag::RefitPlanned => ("hpo", "refit_planned"),
            Tag::LineageSource => ("lineage", "source"),
            Tag::LineageHpoStudyKeyHash => ("lineage", "hpo_study_key_hash"),
            Tag::LineageHpoTrialKeyHash => ("lineage", "hpo_trial_key_hash"),
            Tag::LineageHpoTrialRunId => ("lineage", "hpo_trial_run_id"),
            Tag::LineageHpoRefitRunId => ("lineage", "hpo_refit_run_id"),
            Tag::LineageParentTrainingRunId => ("lineage", "parent_training_run_id"),
            Tag::SpecFp => ("paths", "spec_fp"),
            Tag::ExecFp => ("paths", "exec_fp"),
            Tag::ConvFp => ("paths", "conv_fp"),
            Tag::OutputDir => ("paths", "output_dir"),
            Tag::RefitProtocolFp => ("paths", "refit_protocol_fp"),
            Tag::AzuremlRunType => ("azureml", "run_type"),
            Tag::AzuremlSweep => ("azureml", "sweep"),
            Tag::MlflowRunType => ("mlflow", "run_type"),
            Tag::MlflowParentRunId => ("mlflow", "parent_run_id"),
            Tag::LegacyTrialNumber => ("legacy", "trial_number"),
            Tag::LegacyTrialId => ("legacy", "trial_id"),
            Tag::LegacyParentTrainingId => ("legacy", "parent_training_id"),
            Tag::LegacyVariant => ("legacy", "variant"),
            Tag::LegacyBenchmarkConfigHash => ("legacy", "benchmark_config_hash"),
            Tag::LegacyRunIdPrefix => ("legacy", "run_id_prefix"),
            Tag::BenchmarkSource => ("benchmark", "source"),
            Tag::BenchmarkedModel => ("benchmark", "benchmarked_model"),
            Tag::BenchmarkCreationToken => ("benchmark", "creation_token"),
            Tag::BenchmarkCpuModel => ("benchmark", "cpu_model"),
            Tag::BenchmarkSimd => ("benchmark", "simd"),
            Tag::ReportKind => ("report", "kind"),
            Tag::ReportGeneratedAt => ("report", "generated_at"),
            Tag::ReportPodiumVersion => ("report", "podium_version"),
        }
    }

    /// The built-in MLflow tag key (the pipeline's, for the entries its registry has).
    pub fn default_key(self) -> &'static str {
        match self {
            Tag::Backbone => "code.backbone",
            Tag::Stage => "code.stage",
            Tag::Variant => "code.variant",
            Tag::StudyKeyHash => "code.study_key_hash",
            Tag::TrialKeyHash => "code.trial_key_hash",
            Tag::StudyFamilyHash => "code.study_family_hash",
            Tag::StudyKeySchemaVersion => "code.study.key_schema_version",
            Tag::DataFingerprint => "code.fingerprint.data",
            Tag::EvalFingerprint => "code.fingerprint.eval",
            Tag::ArtifactAvailable => "code.artifact.available",
            Tag::ArtifactCheckpointPath => "code.artifact.checkpoint_path",
            Tag::ObjectiveDirection => "code.objective.direction",
            Tag::RefitOfTrialRunId => "code.refit.of_trial_run_id",
            Tag::LineageHpoSweepRunId => "code.lineage.hpo_sweep_run_id",
            Tag::BenchmarkKey => "benchmark_key",
            Tag::BenchmarkChampionRunId => "code.benchmark.champion_run_id",
            Tag::BenchmarkTrialRunId => "code.benchmark.trial_run_id",
            Tag::BenchmarkRefitRunId => "code.benchmark.refit_run_id",
            Tag::BenchmarkEnvironment => "code.benchmark.environment",
            Tag::BenchmarkPodiumVersion => "code.benchmark.podium_version",
            Tag::BenchmarkThreads => "code.benchmark.threads",
            Tag::BenchmarkHarnessVersion => "code.benchmark.harness_version",
            Tag::BenchmarkCheckpointSource => "code.benchmark.checkpoint_source",
            Tag::BenchmarkWorker => "code.benchmark.worker",
            Tag::BenchmarkError => "code.benchmark.error",
            Tag::BenchmarkRestoredFromCache => "code.benchmark.restored_from_cache",
            Tag::GroupingParentRunId => "code.parent_run_id",
            Tag::RunKeyHash => "code.run_key_hash",
            Tag::GroupId => "code.group_id",
            Tag::GroupingSchemaVersion => "code.grouping_schema_version",
            Tag::Project => "code.project",
            Tag::Model => "code.model",
            Tag::RunType => "code.run_type",
            Tag::Env => "code.env",
            Tag::StorageEnv => "code.storage_env",
            Tag::ExecutionPlatform => "code.execution_platform",
            Tag::CreatedBy => "code.created_by",
            Tag::TrainedOnFullData => "code.trained_on_full_data",
            Tag::SourceTrainingRun => "source_training_run",
            Tag::Refit => "code.refit",
            Tag::RefitHasValidation => "code.refit_has_validation",
            Tag::Interrupted => "code.interrupted",
            Tag::HpoTrialNumber => "code.hpo.trial_number",
            Tag::BestTrialRunId => "best_trial_run_id",
            Tag::BestTrialNumber => "best_trial_number",
            Tag::RefitPlanned => "code.refit_planned",
            Tag::LineageSource => "code.lineage.source",
            Tag::LineageHpoStudyKeyHash => "code.lineage.hpo_study_key_hash",
            Tag::LineageHpoTrialKeyHash => "code.lineage.hpo_trial_key_hash",
            Tag::LineageHpoTrialRunId => "code.lineage.hpo_trial_run_id",
            Tag::LineageHpoRefitRunId => "code.lineage.hpo_refit_run_id",
            Tag::LineageParentTrainingRunId => "code.lineage.parent_training_run_id",
            Tag::SpecFp => "code.spec_fp",
            Tag::ExecFp => "code.exec_fp",
            Tag::ConvFp => "code.conv_fp",
            Tag::OutputDir => "code.output_dir",
            Tag::RefitProtocolFp => "code.refit_protocol_fp",
            Tag::AzuremlRunType => "azureml.runType",
            Tag::AzuremlSweep => "azureml.sweep",
            Tag::MlflowRunType => "mlflow.runType",
            Tag::MlflowParentRunId => "mlflow.parentRunId",
            Tag::LegacyTrialNumber => "trial_number",
            Tag::LegacyTrialId => "code.trial_id",
            Tag::LegacyParentTrainingId => "code.parent_training_id",
            Tag::LegacyVariant => "code.variant",
            Tag::LegacyBenchmarkConfigHash => "code.benchmark_config_hash",
            Tag::LegacyRunIdPrefix => "code.run_id_prefix",
            Tag::BenchmarkSource => "benchmark_source",
            Tag::BenchmarkedModel => "benchmarked_model",
            Tag::BenchmarkCreationToken => "code.benchmark.creation_token",
            Tag::BenchmarkCpuModel => "code.benchmark.cpu_model",
            Tag::BenchmarkSimd => "code.benchmark.simd",
            Tag::ReportKind => "code.report.kind",
            Tag::ReportGeneratedAt => "code.report.generated_at",
            Tag::ReportPodiumVersion => "code.report.podium_version",
        }
    }

    /// Whether this is one of podium's own tags (not in the pipeline's registry).
    pub fn is_podium_own(self) -> bool {
        matches!(
            self,
            Tag::Variant
                | Tag::ArtifactCheckpointPath
                | Tag::BenchmarkKey
                | Tag::BenchmarkChampionRunId
                | Tag::BenchmarkTrialRunId
                | Tag::BenchmarkRefitRunId
                | Tag::BenchmarkEnvironment
                | Tag::BenchmarkPodiumVersion
                | Tag::BenchmarkThreads
                | Tag::BenchmarkHarnessVersion
                | Tag::BenchmarkCheckpointSource
                | Tag::BenchmarkWorker
                | Tag::BenchmarkError
                | Tag::BenchmarkRestoredFromCache
                | Tag::BenchmarkCpuModel
                | Tag::BenchmarkSimd
                | Tag::ReportKind
                | Tag::ReportGeneratedAt
                | Tag::ReportPodiumVersion
        )
    }

    /// The tag named by (section, name), if podium knows it.
    pub fn from_section_name(section: &str, name: &str) -> Option<Tag> {
        Tag::ALL
            .into_iter()
            .find(|tag| tag.section_name() == (section, name))
    }
}

/// Values of the `process.stage` tag.
pub mod stage {
    /// The pipeline's stage of HPO sweep (parent) runs and of their trial runs.
    pub const HPO: &str = "hpo";
    /// The refit (retrain on full data) of a trial.
    pub const HPO_REFIT: &str = "hpo_refit";
    /// The pipeline's stage of benchmark runs.
    pub const BENCHMARKING: &str = "benchmarking";
    /// A final training run.
    pub const FINAL_TRAINING: &str = "final_training";
    /// Trial runs of older pipeline stores (read, never written by the tag builder).
    pub const HPO_TRIAL: &str = "hpo_trial";
    /// podium's earlier sweep stage (kept until every reader uses [`HPO`]).
    pub const HPO_SWEEP: &str = "hpo_sweep";
}

/// The resolved registry: each [`Tag`] to the MLflow tag key in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRegistry {
    keys: BTreeMap<Tag, String>,
    schema_version: Option<String>,
}

impl Default for TagRegistry {
    fn default() -> Self {
        Self::defaults()
    }
}

impl TagRegistry {
    /// The built-in keys: the pipeline's registry plus podium's own tags.
    pub fn defaults() -> Self {
        Self {
            keys: Tag::ALL
                .into_iter()
                .map(|tag| (tag, tag.default_key().to_string()))
                .collect(),
            schema_version: None,
        }
    }

    /// Loads `tags.yaml` over the defaults. A missing file gives the defaults; an unknown
    /// section or (section, name), a section that is not a mapping or a value that is not a
    /// non-empty string is an error naming the file and the entry.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        if !path.exists() {
            return Ok(Self::defaults());
        }
        let text = read_config_text(path)?;
        Self::from_yaml_str(&text).map_err(|err| err.in_file(path))
    }

    /// Parses `tags.yaml` text (PyYAML rules, as the pipeline reads it) over the defaults (see
    /// [`TagRegistry::load`]).
    pub fn from_yaml_str(text: &str) -> Result<Self, KeysError> {
        let doc = load_yaml_str(text)?;
        Self::from_value(&doc)
    }

    /// Builds the registry from a loaded `tags.yaml`.
    pub fn from_value(doc: &PyValue) -> Result<Self, KeysError> {
        let mut registry = Self::defaults();
        let invalid = |key: String, message: String| KeysError::Config {
            file: None,
            key,
            message,
        };
        let sections = match doc {
            PyValue::None => return Ok(registry),
            PyValue::Dict(entries) => entries,
            other => {
                return Err(invalid(
                    String::new(),
                    format!(
                        "expected a mapping of sections, found {}",
                        other.type_name()
                    ),
                ));
            }
        };
        for (section_key, entries) in sections {
            let section = section_key.as_str().ok_or_else(|| {
                invalid(
                    section_key.py_str().unwrap_or_default(),
                    "section names must be strings".into(),
                )
            })?;
            if section == "schema_version" {
                registry.schema_version = match entries {
                    PyValue::None => None,
                    PyValue::Int(_) | PyValue::Str(_) | PyValue::Float(_) => {
                        Some(entries.py_str()?)
                    }
                    other => {
                        return Err(invalid(
                            section.into(),
                            format!("expected a scalar, found {}", other.type_name()),
                        ));
                    }
                };
                continue;
            }
            let entries = match entries {
                PyValue::None => continue,
                PyValue::Dict(entries) => entries,
                other => {
                    if !Tag::ALL.iter().any(|tag| tag.section_name().0 == section) {
                        return Err(KeysError::UnknownTag {
                            section: section.into(),
                            name: String::new(),
                        });
                    }
                    return Err(invalid(
                        section.into(),
                        format!(
                            "expected a mapping of tag names, found {}",
                            other.type_name()
                        ),
                    ));
                }
            };
            for (name_key, value) in entries {
                let name = name_key.as_str().ok_or_else(|| {
                    invalid(
                        format!("{section}.{}", name_key.py_str().unwrap_or_default()),
                        "tag names must be strings".into(),
                    )
                })?;
                let tag =
                    Tag::from_section_name(section, name).ok_or_else(|| KeysError::UnknownTag {
                        section: section.to_string(),
                        name: name.to_string(),
                    })?;
                let key = match value {
                    PyValue::Str(key) if !key.trim().is_empty() => key.clone(),
                    other => {
                        return Err(invalid(
                            format!("{section}.{name}"),
                            format!(
                                "expected a non-empty tag key string, found {}",
                                other.type_name()
                            ),
                        ));
                    }
                };
                registry.keys.insert(tag, key);
            }
        }
        Ok(registry)
    }

    /// The file's `schema_version`, when it has one.
    pub fn schema_version(&self) -> Option<&str> {
        self.schema_version.as_deref()
    }

    /// The MLflow tag key of a known tag.
    pub fn get(&self, tag: Tag) -> &str {
        self.keys
            .get(&tag)
            .map(String::as_str)
            .unwrap_or_else(|| tag.default_key())
    }

    /// The MLflow tag key for (section, name); unknown pairs are an error naming them.
    pub fn key(&self, section: &str, name: &str) -> Result<&str, KeysError> {
        Tag::from_section_name(section, name)
            .map(|tag| self.get(tag))
            .ok_or_else(|| KeysError::UnknownTag {
                section: section.to_string(),
                name: name.to_string(),
            })
    }

    /// Every (tag, key) pair, in registry order.
    pub fn iter(&self) -> impl Iterator<Item = (Tag, &str)> {
        Tag::ALL.into_iter().map(|tag| (tag, self.get(tag)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_design() -> Result<(), KeysError> {
        let registry = TagRegistry::defaults();
        assert_eq!(registry.key("process", "backbone")?, "code.backbone");
        assert_eq!(registry.key("benchmark", "key")?, "benchmark_key");
        assert_eq!(
            registry.get(Tag::StudyKeySchemaVersion),
            "code.study.key_schema_version"
        );
        Ok(())
    }

    #[test]
    fn unknown_lookup_names_it() {
        let err = TagRegistry::defaults().key("process", "colour").err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("process.colour"), "{message}");
    }

    #[test]
    fn yaml_overrides_and_rejects_unknown_entries() -> Result<(), KeysError> {
        let registry = TagRegistry::from_yaml_str("process:\n  backbone: my.backbone\n")?;
        assert_eq!(registry.get(Tag::Backbone), "my.backbone");
        assert_eq!(registry.get(Tag::Stage), "code.stage");
        assert!(TagRegistry::from_yaml_str("process:\n  colour: x\n").is_err());
        assert!(TagRegistry::from_yaml_str("process:\n  backbone: 3\n").is_err());
        Ok(())
    }

    #[test]
    fn benchmark_run_tags_keep_their_keys_and_can_be_overridden() -> Result<(), KeysError> {
        let registry = TagRegistry::defaults();
        assert_eq!(registry.get(Tag::BenchmarkError), "code.benchmark.error");
        assert_eq!(
            registry.key("benchmark", "restored_from_cache")?,
            "code.benchmark.restored_from_cache"
        );
        let overridden = TagRegistry::from_yaml_str("benchmark:\n  error: my.bench.error\n")?;
        assert_eq!(overridden.get(Tag::BenchmarkError), "my.bench.error");
        assert_eq!(overridden.get(Tag::BenchmarkKey), "benchmark_key");
        assert!(TagRegistry::from_yaml_str("benchmark:\n  colour: x\n").is_err());
        Ok(())
    }

    #[test]
    fn every_tag_has_a_distinct_section_name() {
        let pairs: std::collections::BTreeSet<_> =
            Tag::ALL.into_iter().map(Tag::section_name).collect();
        assert_eq!(pairs.len(), Tag::ALL.len());
        for tag in Tag::ALL {
            let (section, name) = tag.section_name();
            assert_eq!(Tag::from_section_name(section, name), Some(tag));
        }
        // Only podium's process.variant shares a key, with the pipeline's legacy.variant.
        let keys: std::collections::BTreeSet<_> =
            Tag::ALL.into_iter().map(Tag::default_key).collect();
        assert_eq!(keys.len(), Tag::ALL.len() - 1);
    }

    #[test]
    fn scalar_schema_version_and_bad_sections() -> Result<(), KeysError> {
        let registry = TagRegistry::from_yaml_str("schema_version: 1\nmlflow:\n  run_type: x\n")?;
        assert_eq!(registry.schema_version(), Some("1"));
        assert_eq!(registry.get(Tag::MlflowRunType), "x");
        let unknown = TagRegistry::from_yaml_str("colours:\n  red: x\n").err();
        assert!(unknown.is_some_and(|e| e.to_string().contains("colours")));
        assert!(TagRegistry::from_yaml_str("process: 3\n").is_err());
        assert!(TagRegistry::from_yaml_str("- a\n").is_err());
        Ok(())
    }

    /// The shipped `config/tags.yaml` lists every tag with its built-in default, so a user
    /// reading it sees every key podium reads or writes.
    #[test]
    fn shipped_tags_yaml_lists_every_tag_with_its_default() -> Result<(), KeysError> {
        let text = include_str!("../../../config/tags.yaml");
        let registry = TagRegistry::from_yaml_str(text)?;
        assert_eq!(registry.keys, TagRegistry::defaults().keys);
        let doc = load_yaml_str(text)?;
        let mut listed = 0;
        if let PyValue::Dict(sections) = &doc {
            for (section, entries) in sections {
                if let PyValue::Dict(entries) = entries {
                    for (name, _) in entries {
                        let (Some(section), Some(name)) = (section.as_str(), name.as_str()) else {
                            continue;
                        };
                        assert!(Tag::from_section_name(section, name).is_some());
                        listed += 1;
                    }
                }
            }
        }
        assert_eq!(listed, Tag::ALL.len());
        Ok(())
    }
}
