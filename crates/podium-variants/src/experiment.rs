//! `config/experiment.yaml`: which backbones podium looks at and how their MLflow experiments
//! are named.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::VariantsError;

/// The short backbone name: the text before the first `-` (`distilbert-base-uncased` →
/// `distilbert`). Also the `{model}` folder of the output layout.
pub fn backbone_short_name(backbone: &str) -> &str {
    backbone.split('-').next().unwrap_or(backbone)
}

/// The parsed `experiment.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Prefix shared by every experiment of the project.
    pub name: String,
    /// Full backbone names (Hugging Face ids).
    pub backbones: Vec<String>,
    /// Template of each backbone's HPO experiment; `{name}` and `{backbone}` (short) substituted.
    #[serde(default = "default_hpo_experiment")]
    pub hpo_experiment: String,
    /// Template of the benchmark experiment; `{name}` substituted.
    #[serde(default = "default_benchmark_experiment")]
    pub benchmark_experiment: String,
}

fn default_hpo_experiment() -> String {
    "{name}-hpo-{backbone}".into()
}

fn default_benchmark_experiment() -> String {
    "{name}-benchmark".into()
}

impl ExperimentConfig {
    /// Loads and validates `experiment.yaml`; errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self, VariantsError> {
        let text = std::fs::read_to_string(path).map_err(|source| VariantsError::Io {
            context: format!("cannot read {}", path.display()),
            source,
        })?;
        let config: ExperimentConfig =
            serde_yaml::from_str(&text).map_err(|err| VariantsError::Config {
                file: path.to_path_buf(),
                key: err
                    .location()
                    .map(|l| format!("line {}", l.line()))
                    .unwrap_or_default(),
                message: err.to_string(),
            })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), VariantsError> {
        let invalid = |key: &str, message: &str| VariantsError::Config {
            file: PathBuf::from(path),
            key: key.to_string(),
            message: message.to_string(),
        };
        if self.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if let Some(empty) = self.backbones.iter().position(|b| b.trim().is_empty()) {
            return Err(invalid(
                &format!("backbones[{empty}]"),
                "backbone names must not be empty",
            ));
        }
        if !self.hpo_experiment.contains("{backbone}") {
            return Err(invalid(
                "hpo_experiment",
                "must contain {backbone} so each backbone has its own experiment",
            ));
        }
        Ok(())
    }

    /// The HPO experiment of a backbone (full or short name).
    pub fn hpo_experiment_name(&self, backbone: &str) -> String {
        self.hpo_experiment
            .replace("{name}", &self.name)
            .replace("{backbone}", backbone_short_name(backbone))
    }

    /// The benchmark experiment.
    pub fn benchmark_experiment_name(&self) -> String {
        self.benchmark_experiment.replace("{name}", &self.name)
    }

    /// The configured backbones, or those given on the command line (validated to be non-empty).
    pub fn backbones_or<'a>(&'a self, requested: &'a [String]) -> &'a [String] {
        if requested.is_empty() {
            &self.backbones
        } else {
            requested
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_follow_templates() {
        let config = ExperimentConfig {
            name: "proj".into(),
            backbones: vec!["distilbert-base-uncased".into()],
            hpo_experiment: default_hpo_experiment(),
            benchmark_experiment: default_benchmark_experiment(),
        };
        assert_eq!(
            config.hpo_experiment_name("distilbert-base-uncased"),
            "proj-hpo-distilbert"
        );
        assert_eq!(config.benchmark_experiment_name(), "proj-benchmark");
        assert_eq!(backbone_short_name("deberta-v3-small"), "deberta");
        assert_eq!(backbone_short_name("bert"), "bert");
    }

    #[test]
    fn repo_config_loads_and_unknown_keys_fail() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/experiment.yaml");
        let config = ExperimentConfig::load(&repo).unwrap();
        assert_eq!(config.backbones.len(), 3);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("experiment.yaml");
        std::fs::write(&path, "name: x\nbackbones: [a]\ncolour: red\n").unwrap();
        let message = ExperimentConfig::load(&path).unwrap_err().to_string();
        assert!(
            message.contains("experiment.yaml") && message.contains("colour"),
            "{message}"
        );
    }
}
