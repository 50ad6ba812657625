//! `config/paths.yaml`, as the pipeline writes it: where `outputs/` is (`base.outputs`, and
//! per platform `env_overrides.{colab,kaggle,azureml}.base.outputs`), the folder names of each
//! process (`outputs:`) and the v2 folder patterns (`patterns:`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::config_keys::{KeySchema, mapping_keys};
use crate::error::VariantsError;
use crate::experiment::{kind, read_yaml};

const TOP_KEYS: KeySchema<'static> = KeySchema {
    used: &["base", "env_overrides", "outputs", "patterns"],
    ignored: &[
        "schema_version",
        "project",
        "cache",
        "files",
        "cache_strategy_defaults",
        "cache_strategies",
        "repository_root",
        "drive",
        "normalize_paths",
    ],
};

const BASE_KEYS: KeySchema<'static> = KeySchema {
    used: &["outputs"],
    ignored: &["notebooks", "config", "src", "tests", "mlruns"],
};

/// The parsed `paths.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathsConfig {
    /// `base.outputs` (default `outputs`), relative to the project root unless absolute.
    pub outputs: String,
    /// `env_overrides.<environment>.base.outputs`.
    pub env_outputs: BTreeMap<String, String>,
    /// `outputs.<process>`: the folder name of each process (`hpo`, `benchmarking`, …).
    pub output_names: BTreeMap<String, String>,
    /// `patterns.<name>`: the folder patterns (`hpo_v2`, `benchmarking_v2`, …).
    pub patterns: BTreeMap<String, String>,
    /// Keys the pipeline defines that podium does not read (dotted).
    pub ignored_keys: Vec<String>,
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            outputs: "outputs".into(),
            env_outputs: BTreeMap::new(),
            output_names: BTreeMap::new(),
            patterns: BTreeMap::new(),
            ignored_keys: Vec::new(),
        }
    }
}

impl PathsConfig {
    /// Loads `paths.yaml`; a missing file gives the defaults. Errors name the file and key.
    pub fn load(path: &Path) -> Result<Self, VariantsError> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let doc = read_yaml(path)?;
        let invalid = |key: &str, message: String| VariantsError::Config {
            file: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let mut config = Self::default();
        match &doc {
            Value::Null => return Ok(config),
            Value::Mapping(_) => {}
            other => return Err(invalid("", format!("expected a mapping, found {}", kind(other)))),
        }
        config.ignored_keys =
            TOP_KEYS.check(path, "", mapping_keys(&doc).iter().map(String::as_str))?;
        let strings = |key: &str| -> Result<BTreeMap<String, String>, VariantsError> {
            let mut out = BTreeMap::new();
            match doc.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Mapping(entries)) => {
                    for (name, value) in entries {
                        let name = name.as_str().unwrap_or_default().to_string();
                        match value {
                            Value::String(text) => {
                                out.insert(name, text.clone());
                            }
                            other => {
                                return Err(invalid(
                                    &format!("{key}.{name}"),
                                    format!("expected a string, found {}", kind(other)),
                                ));
                            }
                        }
                    }
                }
                Some(other) => {
                    return Err(invalid(key, format!("expected a mapping, found {}", kind(other))));
                }
            }
            Ok(out)
        };
        config.output_names = strings("outputs")?;
        config.patterns = strings("patterns")?;
        let base_outputs = |base: Option<&Value>, prefix: &str| -> Result<Option<String>, VariantsError> {
            match base {
                None | Some(Value::Null) => Ok(None),
                Some(base @ Value::Mapping(_)) => match base.get("outputs") {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(text.clone())),
                    Some(other) => Err(invalid(
                        &format!("{prefix}.outputs"),
                        format!("expected a non-empty path, found {}", kind(other)),
                    )),
                },
                Some(other) => Err(invalid(prefix, format!("expected a mapping, found {}", kind(other)))),
            }
        };
        if let Some(base) = doc.get("base") {
            config
                .ignored_keys
                .extend(BASE_KEYS.check(path, "base", mapping_keys(base).iter().map(String::as_str))?);
            if let Some(outputs) = base_outputs(Some(base), "base")? {
                config.outputs = outputs;
            }
        }
        match doc.get("env_overrides") {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(envs)) => {
                for (env, entry) in envs {
                    let env = env.as_str().unwrap_or_default().to_string();
                    let prefix = format!("env_overrides.{env}.base");
                    if let Some(outputs) = base_outputs(entry.get("base"), &prefix)? {
                        config.env_outputs.insert(env, outputs);
                    }
                }
            }
            Some(other) => {
                return Err(invalid(
                    "env_overrides",
                    format!("expected a mapping, found {}", kind(other)),
                ));
            }
        }
        Ok(config)
    }

    /// The outputs folder for an environment (`local`, `colab`, `kaggle`, `azureml`): its
    /// override, else `base.outputs`; relative paths are under `root`.
    pub fn outputs_root(&self, root: &Path, environment: &str) -> PathBuf {
        let outputs = self.env_outputs.get(environment).unwrap_or(&self.outputs);
        let path = Path::new(outputs);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            root.join(path)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn outputs_root_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paths.yaml");
        std::fs::write(
            &path,
            "schema_version: 2\nbase:\n  outputs: out\n  config: config\nenv_overrides:\n  colab:\n    base:\n      outputs: /content/out\noutputs:\n  hpo: hpo\npatterns:\n  hpo_v2: \"{storage_env}/{model}\"\n",
        )
        .unwrap();
        let config = PathsConfig::load(&path).unwrap();
        assert_eq!(config.outputs_root(Path::new("/r"), "local"), Path::new("/r/out"));
        assert_eq!(config.outputs_root(Path::new("/r"), "colab"), Path::new("/content/out"));
        assert_eq!(config.output_names["hpo"], "hpo");
        assert_eq!(config.ignored_keys, ["schema_version", "base.config"]);
        std::fs::write(&path, "base:\n  outptus: x\n").unwrap();
        let message = PathsConfig::load(&path).unwrap_err().to_string();
        assert!(message.contains("base.outptus"), "{message}");
    }
}
