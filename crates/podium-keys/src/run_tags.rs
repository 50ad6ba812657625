//! Tag builders for HPO runs.
//!
//! [`PipelineRunTags`] writes the tag sets the Python pipeline writes on sweep, trial and refit
//! runs (stage `hpo` on sweeps and trials, `hpo_refit` on refits, `code.model`, no schema tag
//! on trials, …), so a Rust HPO service tags runs the way the pipeline and podium read them.
//! [`HpoRunTags`] is podium's earlier tag set (stage `hpo_sweep`/`hpo_trial`, `code.backbone`),
//! kept for stores written with it.

use std::collections::BTreeMap;

use crate::keys::StudyIdentity;
use crate::tags::{Tag, TagRegistry, stage};

/// What the run is within its study; the fields each kind requires are in its variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpoRunRole<'a> {
    /// The sweep (parent) run of the study.
    Sweep,
    /// One trial.
    Trial {
        /// The trial's [`crate::trial_key_hash`].
        trial_key_hash: &'a str,
        /// The sweep run the trial belongs to.
        sweep_run_id: &'a str,
    },
    /// The refit (retraining on the full data) of a trial.
    Refit {
        /// The refitted trial's trial key hash.
        trial_key_hash: &'a str,
        /// The run id of the trial that is refitted.
        of_trial_run_id: &'a str,
        /// The sweep run the trial belongs to.
        sweep_run_id: &'a str,
    },
}

impl HpoRunRole<'_> {
    /// The `process.stage` value.
    pub fn stage(&self) -> &'static str {
        match self {
            HpoRunRole::Sweep => stage::HPO_SWEEP,
            HpoRunRole::Trial { .. } => stage::HPO_TRIAL,
            HpoRunRole::Refit { .. } => stage::HPO_REFIT,
        }
    }
}

/// Everything podium tags an HPO run with.
///
/// ```
/// use podium_keys::{HpoRunRole, HpoRunTags, StudyConfigs, StudyIdentity, StudyKeySchema,
///                   Tag, TagRegistry, load_yaml_str};
///
/// let data = load_yaml_str("name: resume-ner\nversion: v1\n")?;
/// let hpo = load_yaml_str("objective: {metric: macro-f1, direction: maximize}\n")?;
/// let train = load_yaml_str("num_epochs: 3\n")?;
/// let eval = load_yaml_str("evaluator_version: '1.0'\n")?;
/// let configs = StudyConfigs { data: &data, hpo: &hpo, train: &train, eval: Some(&eval),
///                              model: "distilbert", benchmark: None, code_version: None };
/// let study = StudyIdentity::compute(&configs, StudyKeySchema::V2)?;
/// let registry = TagRegistry::defaults();
/// let tags = HpoRunTags {
///     backbone: "distilbert",
///     variant: "1",
///     study: &study,
///     role: HpoRunRole::Trial { trial_key_hash: "ab12", sweep_run_id: "parent-run" },
///     artifact_available: false,
///     checkpoint_path: None,
/// }
/// .build(&registry);
/// assert_eq!(tags[registry.get(Tag::Stage)], "hpo_trial");
/// assert_eq!(tags[registry.get(Tag::StudyKeyHash)], study.study_key_hash);
/// assert_eq!(tags[registry.get(Tag::LineageHpoSweepRunId)], "parent-run");
/// # Ok::<(), podium_keys::KeysError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HpoRunTags<'a> {
    /// The backbone the run trains (`process.backbone`).
    pub backbone: &'a str,
    /// The HPO variant label (`process.variant`).
    pub variant: &'a str,
    /// The study's keys and fingerprints.
    pub study: &'a StudyIdentity,
    /// Sweep, trial or refit, with the ids each needs.
    pub role: HpoRunRole<'a>,
    /// Whether the run's checkpoint was saved (`artifact.available`, "true"/"false").
    pub artifact_available: bool,
    /// The local checkpoint directory, when known (`artifact.checkpoint_path`).
    pub checkpoint_path: Option<&'a str>,
}

impl HpoRunTags<'_> {
    /// The full tag set, keyed by the registry's MLflow tag keys.
    ///
    /// Every run gets stage, backbone, variant, study key hash, family hash, schema version,
    /// both fingerprints, objective direction and artifact.available; trials and refits add the
    /// trial key hash and the sweep lineage; refits add `refit.of_trial_run_id`.
    pub fn build(&self, registry: &TagRegistry) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        let mut set = |tag: Tag, value: &str| {
            tags.insert(registry.get(tag).to_string(), value.to_string());
        };
        set(Tag::Stage, self.role.stage());
        set(Tag::Backbone, self.backbone);
        set(Tag::Variant, self.variant);
        set(Tag::StudyKeyHash, &self.study.study_key_hash);
        set(Tag::StudyFamilyHash, &self.study.study_family_hash);
        set(Tag::StudyKeySchemaVersion, &self.study.schema_version);
        set(Tag::DataFingerprint, &self.study.data_fingerprint);
        set(Tag::EvalFingerprint, &self.study.eval_fingerprint);
        set(Tag::ObjectiveDirection, &self.study.objective_direction);
        set(
            Tag::ArtifactAvailable,
            if self.artifact_available {
                "true"
            } else {
                "false"
            },
        );
        if let Some(path) = self.checkpoint_path {
            set(Tag::ArtifactCheckpointPath, path);
        }
        match self.role {
            HpoRunRole::Sweep => {}
            HpoRunRole::Trial {
                trial_key_hash,
                sweep_run_id,
            } => {
                set(Tag::TrialKeyHash, trial_key_hash);
                set(Tag::LineageHpoSweepRunId, sweep_run_id);
            }
            HpoRunRole::Refit {
                trial_key_hash,
                of_trial_run_id,
                sweep_run_id,
            } => {
                set(Tag::TrialKeyHash, trial_key_hash);
                set(Tag::RefitOfTrialRunId, of_trial_run_id);
                set(Tag::LineageHpoSweepRunId, sweep_run_id);
            }
        }
        tags
    }
}

/// What an HPO run is, for [`PipelineRunTags`], with the ids each kind carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PipelineRunRole<'a> {
    /// The sweep (parent) run of one backbone's study.
    Sweep,
    /// One trial, a child of the sweep.
    Trial {
        /// The Optuna trial number.
        trial_number: u64,
        /// The sweep run (`mlflow.parentRunId`).
        sweep_run_id: &'a str,
        /// The trial key hash: the pipeline sets it only on cross-validated trials.
        trial_key_hash: Option<&'a str>,
    },
    /// The refit of the champion trial, a child of the sweep.
    Refit {
        /// The refitted trial's trial key hash.
        trial_key_hash: &'a str,
        /// The refitted trial run.
        of_trial_run_id: &'a str,
        /// The sweep run (`mlflow.parentRunId`, `code.parent_run_id`).
        sweep_run_id: &'a str,
    },
}

/// The tags the pipeline writes on an HPO run (its `build_mlflow_tags` base plus the sweep,
/// trial and refit additions), keyed by the registry's MLflow tag keys.
///
/// ```
/// use podium_keys::{PipelineRunRole, PipelineRunTags, StudyConfigs, StudyIdentity,
///                   StudyKeySchema, Tag, TagRegistry, load_yaml_str};
///
/// let data = load_yaml_str("name: resume-ner\nversion: v1\n")?;
/// let hpo = load_yaml_str("objective: {metric: macro-f1, direction: maximize}\n")?;
/// let train = load_yaml_str("training: {epochs: 3}\n")?;
/// let configs = StudyConfigs { data: &data, hpo: &hpo, train: &train, eval: None,
///                              model: "distilbert-base-uncased", benchmark: None, code_version: None };
/// let study = StudyIdentity::compute(&configs, StudyKeySchema::V2)?;
/// let registry = TagRegistry::defaults();
/// let role = PipelineRunRole::Trial { trial_number: 4, sweep_run_id: "sweep", trial_key_hash: None };
/// let tags = PipelineRunTags { backbone: "distilbert-base-uncased", study: &study, role,
///                              artifact_available: false, environment: "local", project: None }
///     .build(&registry);
/// assert_eq!(tags[registry.get(Tag::Stage)], "hpo");
/// assert_eq!(tags[registry.get(Tag::Model)], "distilbert");
/// assert_eq!(tags[registry.get(Tag::MlflowParentRunId)], "sweep");
/// assert!(!tags.contains_key(registry.get(Tag::StudyKeySchemaVersion)));
/// # Ok::<(), podium_keys::KeysError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PipelineRunTags<'a> {
    /// The backbone as written in the search space (`code.model` of the sweep; trials and
    /// refits carry its short name).
    pub backbone: &'a str,
    /// The study's keys and fingerprints.
    pub study: &'a StudyIdentity,
    /// Sweep, trial or refit.
    pub role: PipelineRunRole<'a>,
    /// Whether the run's checkpoint is logged (`code.artifact.available`, sweep and refit).
    pub artifact_available: bool,
    /// The environment (`local`, `colab`, …): `code.storage_env`, `code.env`,
    /// `code.execution_platform`.
    pub environment: &'a str,
    /// `code.project`, when known.
    pub project: Option<&'a str>,
}

impl PipelineRunTags<'_> {
    /// The full tag set.
    pub fn build(&self, registry: &TagRegistry) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        let mut set = |tag: Tag, value: &str| {
            tags.insert(registry.get(tag).to_string(), value.to_string());
        };
        let short = self.backbone.split('-').next().unwrap_or(self.backbone);
        let available = if self.artifact_available {
            "true"
        } else {
            "false"
        };
        // The base every run kind gets.
        set(Tag::StorageEnv, self.environment);
        set(Tag::Env, self.environment);
        set(Tag::ExecutionPlatform, self.environment);
        if let Some(project) = self.project {
            set(Tag::Project, project);
        }
        set(Tag::GroupingSchemaVersion, "1");
        set(Tag::StudyKeyHash, &self.study.study_key_hash);
        set(Tag::StudyFamilyHash, &self.study.study_family_hash);
        let with_study_identity = |set: &mut dyn FnMut(Tag, &str)| {
            set(Tag::StudyKeySchemaVersion, &self.study.schema_version);
            set(Tag::DataFingerprint, &self.study.data_fingerprint);
            set(Tag::EvalFingerprint, &self.study.eval_fingerprint);
            set(Tag::ObjectiveDirection, &self.study.objective_direction);
        };
        match self.role {
            PipelineRunRole::Sweep => {
                set(Tag::Stage, stage::HPO);
                set(Tag::Model, self.backbone);
                set(Tag::ArtifactAvailable, available);
                with_study_identity(&mut set);
            }
            PipelineRunRole::Trial {
                trial_number,
                sweep_run_id,
                trial_key_hash,
            } => {
                set(Tag::Stage, stage::HPO);
                set(Tag::Model, short);
                set(Tag::MlflowParentRunId, sweep_run_id);
                set(Tag::LegacyTrialNumber, &trial_number.to_string());
                if let Some(hash) = trial_key_hash {
                    set(Tag::TrialKeyHash, hash);
                }
            }
            PipelineRunRole::Refit {
                trial_key_hash,
                of_trial_run_id,
                sweep_run_id,
            } => {
                set(Tag::Stage, stage::HPO_REFIT);
                set(Tag::RunType, "refit");
                set(Tag::Model, short);
                set(Tag::GroupingParentRunId, sweep_run_id);
                set(Tag::MlflowParentRunId, sweep_run_id);
                set(Tag::MlflowRunType, "refit");
                set(Tag::TrialKeyHash, trial_key_hash);
                set(Tag::RefitOfTrialRunId, of_trial_run_id);
                set(Tag::Refit, "true");
                set(Tag::ArtifactAvailable, available);
                with_study_identity(&mut set);
            }
        }
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn study() -> StudyIdentity {
        StudyIdentity {
            schema_version: "2.0".into(),
            study_key: "{}".into(),
            study_key_hash: "s".repeat(64),
            study_family_hash: "f".repeat(64),
            data_fingerprint: "d".repeat(64),
            eval_fingerprint: "e".repeat(64),
            objective_direction: "maximize".into(),
        }
    }

    #[test]
    fn each_role_gets_its_tags() {
        let study = study();
        let registry = TagRegistry::defaults();
        let base = HpoRunTags {
            backbone: "distilbert",
            variant: "2",
            study: &study,
            role: HpoRunRole::Sweep,
            artifact_available: false,
            checkpoint_path: None,
        };
        let sweep = base.build(&registry);
        assert_eq!(sweep["code.stage"], "hpo_sweep");
        assert_eq!(sweep["code.artifact.available"], "false");
        assert!(!sweep.contains_key("code.trial_key_hash"));
        assert_eq!(sweep.len(), 10);

        let refit = HpoRunTags {
            role: HpoRunRole::Refit {
                trial_key_hash: "t",
                of_trial_run_id: "trial-run",
                sweep_run_id: "sweep-run",
            },
            artifact_available: true,
            checkpoint_path: Some("/ckpt"),
            ..base
        }
        .build(&registry);
        assert_eq!(refit["code.stage"], "hpo_refit");
        assert_eq!(refit["code.refit.of_trial_run_id"], "trial-run");
        assert_eq!(refit["code.lineage.hpo_sweep_run_id"], "sweep-run");
        assert_eq!(refit["code.trial_key_hash"], "t");
        assert_eq!(refit["code.artifact.available"], "true");
        assert_eq!(refit["code.artifact.checkpoint_path"], "/ckpt");
        assert_eq!(refit["code.study.key_schema_version"], "2.0");
    }

    #[test]
    fn pipeline_tag_sets_per_role() {
        let study = study();
        let registry = TagRegistry::defaults();
        let base = PipelineRunTags {
            backbone: "distilbert-base-uncased",
            study: &study,
            role: PipelineRunRole::Sweep,
            artifact_available: false,
            environment: "local",
            project: Some("p"),
        };
        let sweep = base.build(&registry);
        assert_eq!(sweep["code.stage"], "hpo");
        assert_eq!(sweep["code.model"], "distilbert-base-uncased");
        assert_eq!(sweep["code.study.key_schema_version"], "2.0");
        assert_eq!(sweep["code.artifact.available"], "false");
        assert_eq!(sweep["code.grouping_schema_version"], "1");
        assert!(!sweep.contains_key("code.backbone") && !sweep.contains_key("mlflow.parentRunId"));

        let trial = PipelineRunTags {
            role: PipelineRunRole::Trial {
                trial_number: 7,
                sweep_run_id: "s",
                trial_key_hash: None,
            },
            ..base
        }
        .build(&registry);
        assert_eq!(trial["code.stage"], "hpo");
        assert_eq!(trial["code.model"], "distilbert");
        assert_eq!(trial["mlflow.parentRunId"], "s");
        assert_eq!(trial["trial_number"], "7");
        for absent in [
            "code.study.key_schema_version",
            "code.trial_key_hash",
            "code.backbone",
        ] {
            assert!(!trial.contains_key(absent), "{absent}");
        }

        let refit = PipelineRunTags {
            role: PipelineRunRole::Refit {
                trial_key_hash: "t",
                of_trial_run_id: "tr",
                sweep_run_id: "s",
            },
            artifact_available: true,
            ..base
        }
        .build(&registry);
        assert_eq!(refit["code.stage"], "hpo_refit");
        assert_eq!(refit["code.run_type"], "refit");
        assert_eq!(refit["code.refit.of_trial_run_id"], "tr");
        assert_eq!(refit["code.parent_run_id"], "s");
        assert_eq!(refit["code.trial_key_hash"], "t");
        assert_eq!(refit["code.artifact.available"], "true");
        assert_eq!(refit["code.fingerprint.data"], study.data_fingerprint);
    }

    #[test]
    fn registry_overrides_are_used() {
        let study = study();
        let registry = TagRegistry::from_yaml_str("process:\n  stage: my.stage\n");
        let registry = match registry {
            Ok(registry) => registry,
            Err(err) => panic!("{err}"),
        };
        let tags = HpoRunTags {
            backbone: "b",
            variant: "1",
            study: &study,
            role: HpoRunRole::Sweep,
            artifact_available: false,
            checkpoint_path: None,
        }
        .build(&registry);
        assert_eq!(tags["my.stage"], "hpo_sweep");
        assert!(!tags.contains_key("code.stage"));
    }
}
