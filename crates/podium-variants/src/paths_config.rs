//! `config/paths.yaml`, as the pipeline writes it: where `outputs/` is (`base.outputs`, and
//! per platform `env_overrides.{colab,kaggle,azureml}.base.outputs`), the folder names of each
//! process (`outputs:`) and the v2 folder patterns (`patterns:`); and
//! `config/artifact_acquisition.yaml`, whose `search_roots` name the outputs folders the
//! pipeline keeps local copies of checkpoints in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use crate::config_keys::{KeySchema, mapping_keys};
use crate::environment::Environment;
use crate::error::VariantsError;
use crate::experiment::{kind, read_yaml};
use crate::layout::{OutputLayout, check_component};

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

/// The top-level mapping of a config file; `None` when the file is missing or empty (the
/// defaults apply), an error naming the file when it is anything but a mapping.
fn read_mapping(path: &Path) -> Result<Option<Value>, VariantsError> {
    if !path.exists() {
        return Ok(None);
    }
    match read_yaml(path)? {
        Value::Null => Ok(None),
        doc @ Value::Mapping(_) => Ok(Some(doc)),
        other => Err(config_error(
            path,
            "",
            format!("expected a mapping, found {}", kind(&other)),
        )),
    }
}

fn config_error(path: &Path, key: &str, message: String) -> VariantsError {
    VariantsError::Config {
        file: path.to_path_buf(),
        key: key.to_string(),
        message,
    }
}

impl PathsConfig {
    /// Loads `paths.yaml`; a missing file gives the defaults. Errors name the file and key.
    pub fn load(path: &Path) -> Result<Self, VariantsError> {
        let Some(doc) = read_mapping(path)? else {
            return Ok(Self::default());
        };
        let invalid = |key: &str, message: String| config_error(path, key, message);
        let mut config = Self {
            ignored_keys: TOP_KEYS.check(
                path,
                "",
                mapping_keys(&doc).iter().map(String::as_str),
            )?,
            ..Self::default()
        };
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
                    return Err(invalid(
                        key,
                        format!("expected a mapping, found {}", kind(other)),
                    ));
                }
            }
            Ok(out)
        };
        config.output_names = strings("outputs")?;
        config.patterns = strings("patterns")?;
        let base_outputs = |base: Option<&Value>,
                            prefix: &str|
         -> Result<Option<String>, VariantsError> {
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
                Some(other) => Err(invalid(
                    prefix,
                    format!("expected a mapping, found {}", kind(other)),
                )),
            }
        };
        if let Some(base) = doc.get("base") {
            config.ignored_keys.extend(BASE_KEYS.check(
                path,
                "base",
                mapping_keys(base).iter().map(String::as_str),
            )?);
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

    /// The output layout of project `root` on `environment`: its outputs folder is
    /// [`PathsConfig::outputs_root`]. Depends only on the root, so applying it to a layout that
    /// already went through it changes nothing.
    pub fn layout(&self, root: &Path, environment: &Environment) -> OutputLayout {
        OutputLayout::with_outputs_dir(root, self.outputs_root(root, environment.as_str()))
    }

    /// The folder name of an output category (`outputs.<category>`, else the category itself,
    /// as the pipeline resolves it).
    pub fn output_name<'a>(&'a self, category: &'a str) -> &'a str {
        self.output_names
            .get(category)
            .map(String::as_str)
            .unwrap_or(category)
    }
}

const ACQUISITION_KEYS: KeySchema<'static> = KeySchema {
    used: &["search_roots"],
    ignored: &[
        "priority",
        "artifact_kinds",
        "local",
        "drive",
        "mlflow",
        "output_base_dir",
    ],
};

/// The search roots the pipeline uses when its config does not name any.
pub const DEFAULT_SEARCH_ROOTS: [&str; 2] = ["artifacts", "best_model_selection"];

/// The parsed `artifact_acquisition.yaml`: which outputs folders hold the pipeline's local
/// copies of checkpoints (`outputs/{root}/{env}/{model}/checkpoint_…`), in search order. The
/// pipeline's source priorities and its Drive settings are accepted and not used: podium
/// always looks on local disk first and downloads from the tracking store last, and has no
/// Drive source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquisitionConfig {
    /// `search_roots`: output categories, each one folder name (resolved through
    /// `paths.yaml`'s `outputs:` names).
    pub search_roots: Vec<String>,
    /// Keys the pipeline defines that podium does not read.
    pub ignored_keys: Vec<String>,
}

impl Default for AcquisitionConfig {
    fn default() -> Self {
        Self {
            search_roots: DEFAULT_SEARCH_ROOTS.iter().map(|r| r.to_string()).collect(),
            ignored_keys: Vec::new(),
        }
    }
}

impl AcquisitionConfig {
    /// The file name inside the config folder.
    pub const FILE: &'static str = "artifact_acquisition.yaml";

    /// Loads `artifact_acquisition.yaml`; a missing file, or one without `search_roots`, gives
    /// the pipeline's defaults. Errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self, VariantsError> {
        let Some(doc) = read_mapping(path)? else {
            return Ok(Self::default());
        };
        let invalid = |key: &str, message: String| config_error(path, key, message);
        let mut config = Self {
            ignored_keys: ACQUISITION_KEYS.check(
                path,
                "",
                mapping_keys(&doc).iter().map(String::as_str),
            )?,
            ..Self::default()
        };
        match doc.get("search_roots") {
            None | Some(Value::Null) => {}
            Some(Value::Sequence(roots)) => {
                config.search_roots = roots
                    .iter()
                    .enumerate()
                    .map(|(index, root)| {
                        let key = format!("search_roots[{index}]");
                        match root {
                            Value::String(name) => {
                                check_component("search root", name).map_err(|err| {
                                    invalid(&key, format!("expected one folder name: {err}"))
                                })?;
                                Ok(name.clone())
                            }
                            other => Err(invalid(
                                &key,
                                format!("expected a folder name, found {}", kind(other)),
                            )),
                        }
                    })
                    .collect::<Result<_, _>>()?;
            }
            Some(other) => {
                return Err(invalid(
                    "search_roots",
                    format!("expected a list of folder names, found {}", kind(other)),
                ));
            }
        }
        Ok(config)
    }

    /// The search roots as folders under `layout`'s outputs folder, in order.
    pub fn search_root_dirs(&self, paths: &PathsConfig, layout: &OutputLayout) -> Vec<PathBuf> {
        let outputs = layout.outputs_dir();
        self.search_roots
            .iter()
            .map(|root| outputs.join(paths.output_name(root)))
            .collect()
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
        assert_eq!(
            config.outputs_root(Path::new("/r"), "local"),
            Path::new("/r/out")
        );
        assert_eq!(
            config.outputs_root(Path::new("/r"), "colab"),
            Path::new("/content/out")
        );
        assert_eq!(config.output_names["hpo"], "hpo");
        assert_eq!(config.ignored_keys, ["schema_version", "base.config"]);
        std::fs::write(&path, "base:\n  outptus: x\n").unwrap();
        let message = PathsConfig::load(&path).unwrap_err().to_string();
        assert!(message.contains("base.outptus"), "{message}");
    }

    #[test]
    fn layout_follows_the_platform_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paths.yaml");
        std::fs::write(
            &path,
            "base:\n  outputs: out\nenv_overrides:\n  colab:\n    base:\n      outputs: /content/o\noutputs:\n  artifacts: local_copies\n",
        )
        .unwrap();
        let paths = PathsConfig::load(&path).unwrap();
        let root = Path::new("/r");
        let local = paths.layout(root, &Environment::Local);
        assert_eq!(local.outputs_dir(), Path::new("/r/out"));
        assert_eq!(local.root(), root);
        let colab = paths.layout(root, &Environment::Colab);
        assert_eq!(colab.outputs_dir(), Path::new("/content/o"));
        assert_eq!(
            colab.checkpoint_cache_dir("run1").unwrap(),
            Path::new("/content/o/cache/checkpoints/run1")
        );
        // Applying it again to the resulting layout's root changes nothing.
        assert_eq!(paths.layout(colab.root(), &Environment::Colab), colab);
        assert_eq!(
            AcquisitionConfig::default().search_root_dirs(&paths, &local),
            [
                Path::new("/r/out/local_copies"),
                Path::new("/r/out/best_model_selection")
            ]
        );
    }

    #[test]
    fn acquisition_config_is_validated_with_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(AcquisitionConfig::FILE);
        assert_eq!(
            AcquisitionConfig::load(&path).unwrap(),
            AcquisitionConfig::default()
        );
        std::fs::write(
            &path,
            "search_roots: [\"best_model_selection\"]\npriority: [local, mlflow]\nmlflow:\n  enabled: true\n",
        )
        .unwrap();
        let config = AcquisitionConfig::load(&path).unwrap();
        assert_eq!(config.search_roots, ["best_model_selection"]);
        assert_eq!(config.ignored_keys, ["priority", "mlflow"]);
        for (text, key) in [
            ("search_root: [a]\n", "`search_root`"),
            ("search_roots: artifacts\n", "`search_roots`"),
            ("search_roots: [a, 3]\n", "`search_roots[1]`"),
            ("search_roots: [a, \"../x\"]\n", "`search_roots[1]`"),
            ("search_roots: [\"\"]\n", "`search_roots[0]`"),
        ] {
            std::fs::write(&path, text).unwrap();
            let message = AcquisitionConfig::load(&path).unwrap_err().to_string();
            assert!(message.contains(key), "{text}: {message}");
            assert!(
                message.contains(AcquisitionConfig::FILE),
                "{text}: {message}"
            );
        }
    }
}
