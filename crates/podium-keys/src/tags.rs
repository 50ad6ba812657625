//! The tag registry: (section, name) → MLflow tag key, built-in defaults overridable by
//! `config/tags.yaml`. Every crate that reads or writes a podium tag goes through it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::KeysError;

/// Every tag podium knows, by its (section, name) in `tags.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// process.backbone — the backbone a run trains.
    Backbone,
    /// process.stage — hpo_sweep, hpo_trial, hpo_refit, benchmarking, final_training.
    Stage,
    /// process.variant — the HPO variant (study folder) number.
    Variant,
    /// grouping.study_key_hash.
    StudyKeyHash,
    /// grouping.trial_key_hash.
    TrialKeyHash,
    /// grouping.study_family_hash.
    StudyFamilyHash,
    /// study.key_schema_version — "2.0" or "1.0" (missing means "1.0").
    StudyKeySchemaVersion,
    /// fingerprint.data.
    DataFingerprint,
    /// fingerprint.eval.
    EvalFingerprint,
    /// artifact.available — "true" when the run's checkpoint was saved.
    ArtifactAvailable,
    /// artifact.checkpoint_path — local checkpoint directory.
    ArtifactCheckpointPath,
    /// objective.direction — maximize or minimize.
    ObjectiveDirection,
    /// refit.of_trial_run_id — the trial run a refit retrains.
    RefitOfTrialRunId,
    /// lineage.hpo_sweep_run_id — the sweep (parent) run.
    LineageHpoSweepRunId,
    /// benchmark.key — the benchmark key of a benchmark run.
    BenchmarkKey,
    /// benchmark.champion_run_id — the run whose checkpoint was measured (the refit run, else
    /// the trial).
    BenchmarkChampionRunId,
    /// benchmark.trial_run_id — the champion trial run.
    BenchmarkTrialRunId,
    /// benchmark.refit_run_id — the champion's refit run, when the checkpoint came from a
    /// refit.
    BenchmarkRefitRunId,
    /// benchmark.environment — where the benchmark ran (`local`, `colab`, … or the
    /// `PODIUM_ENVIRONMENT` override).
    BenchmarkEnvironment,
    /// benchmark.podium_version — the podium version that measured.
    BenchmarkPodiumVersion,
    /// benchmark.threads — compute threads used.
    BenchmarkThreads,
    /// benchmark.harness_version — the timing harness version (also inside the benchmark key).
    BenchmarkHarnessVersion,
    /// benchmark.checkpoint_source — which acquisition step provided the checkpoint.
    BenchmarkCheckpointSource,
    /// benchmark.worker — the worker (`host:pid:random`) that measured.
    BenchmarkWorker,
    /// benchmark.error — why a benchmark run FAILED or was KILLED.
    BenchmarkError,
    /// benchmark.restored_from_cache — on runs recreated from the disk cache: the benchmark run
    /// id the cache named.
    BenchmarkRestoredFromCache,

    // ---- Benchmark runs as the pipeline writes and reads them (its tags.yaml sections and
    // ---- names where it has them), plus the creation token that makes run creation retry-safe.
    /// process.model — the short model name the pipeline tags benchmark runs with.
    Model,
    /// grouping.grouping_schema_version — "1" whenever a grouping hash is set.
    GroupingSchemaVersion,
    /// legacy.benchmark_config_hash — sha256 of the compact dump of the whole benchmark config.
    BenchmarkConfigHash,
    /// lineage.hpo_trial_run_id — the champion trial run a benchmark measured.
    LineageHpoTrialRunId,
    /// lineage.hpo_refit_run_id — the refit run whose checkpoint a benchmark measured.
    LineageHpoRefitRunId,
    /// mlflow.run_type — MLflow's run type (`benchmark` on benchmark runs).
    MlflowRunType,
    /// benchmark.source — what was benchmarked (`hpo_trial` for champions).
    BenchmarkSource,
    /// benchmark.benchmarked_model — the backbone as configured.
    BenchmarkedModel,
    /// benchmark.creation_token — a token the creating worker draws before `runs/create`, so a
    /// retry after a lost response finds the run it already created.
    BenchmarkCreationToken,
}

impl Tag {
    /// Every tag, in registry order.
    pub const ALL: [Tag; 35] = [
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
        Tag::Model,
        Tag::GroupingSchemaVersion,
        Tag::BenchmarkConfigHash,
        Tag::LineageHpoTrialRunId,
        Tag::LineageHpoRefitRunId,
        Tag::MlflowRunType,
        Tag::BenchmarkSource,
        Tag::BenchmarkedModel,
        Tag::BenchmarkCreationToken,
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
            Tag::Model => ("process", "model"),
            Tag::GroupingSchemaVersion => ("grouping", "grouping_schema_version"),
            Tag::BenchmarkConfigHash => ("legacy", "benchmark_config_hash"),
            Tag::LineageHpoTrialRunId => ("lineage", "hpo_trial_run_id"),
            Tag::LineageHpoRefitRunId => ("lineage", "hpo_refit_run_id"),
            Tag::MlflowRunType => ("mlflow", "run_type"),
            Tag::BenchmarkSource => ("benchmark", "source"),
            Tag::BenchmarkedModel => ("benchmark", "benchmarked_model"),
            Tag::BenchmarkCreationToken => ("benchmark", "creation_token"),
        }
    }

    /// The built-in MLflow tag key.
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
            Tag::Model => "code.model",
            Tag::GroupingSchemaVersion => "code.grouping_schema_version",
            Tag::BenchmarkConfigHash => "code.benchmark_config_hash",
            Tag::LineageHpoTrialRunId => "code.lineage.hpo_trial_run_id",
            Tag::LineageHpoRefitRunId => "code.lineage.hpo_refit_run_id",
            Tag::MlflowRunType => "mlflow.runType",
            Tag::BenchmarkSource => "benchmark_source",
            Tag::BenchmarkedModel => "benchmarked_model",
            Tag::BenchmarkCreationToken => "code.benchmark.creation_token",
        }
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
    /// The sweep (parent) run of an HPO study.
    pub const HPO_SWEEP: &str = "hpo_sweep";
    /// One HPO trial.
    pub const HPO_TRIAL: &str = "hpo_trial";
    /// The refit (retrain on full data) of a trial.
    pub const HPO_REFIT: &str = "hpo_refit";
    /// A benchmark run (the pipeline's value: its tools find benchmark runs by it).
    pub const BENCHMARK: &str = "benchmarking";
    /// A final training run.
    pub const FINAL_TRAINING: &str = "final_training";
}

/// The resolved registry: each [`Tag`] to the MLflow tag key in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRegistry {
    keys: BTreeMap<Tag, String>,
}

impl Default for TagRegistry {
    fn default() -> Self {
        Self::defaults()
    }
}

impl TagRegistry {
    /// The built-in keys of DESIGN §3.
    pub fn defaults() -> Self {
        Self {
            keys: Tag::ALL
                .into_iter()
                .map(|tag| (tag, tag.default_key().to_string()))
                .collect(),
        }
    }

    /// Loads `tags.yaml` over the defaults. A missing file gives the defaults; an unknown
    /// (section, name) or a non-string value is an error naming the file and the entry.
    pub fn load(path: &Path) -> Result<Self, KeysError> {
        if !path.exists() {
            return Ok(Self::defaults());
        }
        let text = std::fs::read_to_string(path).map_err(|source| KeysError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text).map_err(|err| err.in_file(path))
    }

    /// Parses `tags.yaml` text over the defaults (see [`TagRegistry::load`]).
    pub fn from_yaml_str(text: &str) -> Result<Self, KeysError> {
        let mut registry = Self::defaults();
        let doc: Option<BTreeMap<String, Option<BTreeMap<String, serde_yaml::Value>>>> =
            serde_yaml::from_str(text).map_err(|err| KeysError::Config {
                file: None,
                key: String::new(),
                message: err.to_string(),
            })?;
        for (section, entries) in doc.unwrap_or_default() {
            for (name, value) in entries.unwrap_or_default() {
                let tag = Tag::from_section_name(&section, &name).ok_or_else(|| {
                    KeysError::UnknownTag {
                        section: section.clone(),
                        name: name.clone(),
                    }
                })?;
                let key = match value {
                    serde_yaml::Value::String(key) if !key.trim().is_empty() => key,
                    other => {
                        return Err(KeysError::Config {
                            file: None,
                            key: format!("{section}.{name}"),
                            message: format!("expected a non-empty tag key, found {other:?}"),
                        });
                    }
                };
                registry.keys.insert(tag, key);
            }
        }
        Ok(registry)
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
    fn every_tag_has_a_distinct_section_name_and_key() {
        let pairs: std::collections::BTreeSet<_> =
            Tag::ALL.into_iter().map(Tag::section_name).collect();
        let keys: std::collections::BTreeSet<_> =
            Tag::ALL.into_iter().map(Tag::default_key).collect();
        assert_eq!(pairs.len(), Tag::ALL.len());
        assert_eq!(keys.len(), Tag::ALL.len());
        for tag in Tag::ALL {
            let (section, name) = tag.section_name();
            assert_eq!(Tag::from_section_name(section, name), Some(tag));
        }
    }

    /// The shipped `config/tags.yaml` documents every entry with its built-in default, so a
    /// user reading it sees every key podium writes.
    #[test]
    fn shipped_tags_yaml_lists_every_tag_with_its_default() -> Result<(), KeysError> {
        let text = include_str!("../../../config/tags.yaml");
        assert_eq!(TagRegistry::from_yaml_str(text)?, TagRegistry::defaults());
        let doc: BTreeMap<String, BTreeMap<String, String>> =
            serde_yaml::from_str(text).map_err(|err| KeysError::Config {
                file: None,
                key: String::new(),
                message: err.to_string(),
            })?;
        let listed: Vec<(&str, &str)> = doc
            .iter()
            .flat_map(|(section, entries)| {
                entries
                    .keys()
                    .map(move |name| (section.as_str(), name.as_str()))
            })
            .collect();
        for tag in Tag::ALL {
            assert!(
                listed.contains(&tag.section_name()),
                "config/tags.yaml lacks {:?}",
                tag.section_name()
            );
        }
        assert_eq!(listed.len(), Tag::ALL.len());
        Ok(())
    }
}
