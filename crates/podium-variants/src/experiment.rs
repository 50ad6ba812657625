//! The experiment of a project, as the pipeline lays it out: `config/experiment/<name>.yaml`
//! names the data, train, HPO and benchmark files (paths relative to `config/`); the HPO
//! config of record (`stages.hpo.hpo_config`, else `hpo_config`) lists the backbones under
//! `search_space.backbone.values`. MLflow experiments are named after `experiment_name`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value;

use crate::config_keys::{KeySchema, mapping_keys};
use crate::error::VariantsError;

/// The short backbone name: the text before the first `-` (`distilbert-base-uncased` →
/// `distilbert`). Also the `{model}` folder of the output layout and the `code.model` tag of
/// trial runs.
pub fn backbone_short_name(backbone: &str) -> &str {
    backbone.split('-').next().unwrap_or(backbone)
}

/// The folder of experiment files inside a config folder.
pub const EXPERIMENT_DIR: &str = "experiment";

/// Top-level keys of an experiment file.
const EXPERIMENT_KEYS: KeySchema<'static> = KeySchema {
    used: &[
        "experiment_name",
        "data_config",
        "train_config",
        "hpo_config",
        "benchmark_config",
        "stages",
    ],
    ignored: &["model_config", "env_config", "naming"],
};

/// Stages of an experiment file.
const STAGE_NAMES: KeySchema<'static> = KeySchema {
    used: &["hpo"],
    ignored: &["smoke", "training"],
};

/// Keys of one stage.
const STAGE_KEYS: KeySchema<'static> = KeySchema {
    used: &["hpo_config"],
    ignored: &["aml_experiment", "backbones"],
};

/// Where every config of one experiment lives, resolved from its experiment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExperimentFiles {
    /// The config folder (`config/`).
    pub config_dir: PathBuf,
    /// `config/experiment/<name>.yaml`.
    pub experiment_file: PathBuf,
    /// `experiment_name` (else the file stem): the prefix of every MLflow experiment.
    pub experiment_name: String,
    /// The data config (`data_config`).
    pub data: PathBuf,
    /// The train config (`train_config`).
    pub train: PathBuf,
    /// The HPO config of record: `stages.hpo.hpo_config`, else `hpo_config`.
    pub hpo: PathBuf,
    /// The experiment's own `hpo_config` (its default, which `stages.hpo.hpo_config` overrides
    /// for the sweeps): what the pipeline's `load_all_configs` loads, so the HPO config its
    /// benchmark workflow is given. Often the same file as [`ExperimentFiles::hpo`].
    pub default_hpo: PathBuf,
    /// The benchmark config (`benchmark_config`, default `benchmark.yaml`); it may not exist.
    pub benchmark: PathBuf,
    /// Keys of the experiment file the pipeline defines and podium does not read.
    pub ignored_keys: Vec<String>,
}

impl ExperimentFiles {
    /// The experiment files of a config folder (`experiment/*.yaml`, sorted).
    pub fn list(config_dir: &Path) -> Result<Vec<PathBuf>, VariantsError> {
        let dir = config_dir.join(EXPERIMENT_DIR);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(VariantsError::io("list", &dir)(source)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(VariantsError::io("list", &dir))?.path();
            let yaml = path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml");
            // Whatever is not a folder: a FIFO or a link to a device named like an experiment is
            // read (and refused, naming it) by the bounded reader, not silently skipped.
            if yaml && !path.is_dir() {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Picks the experiment of a config folder: the file whose stem or `experiment_name` is
    /// `experiment`; without a name, the only one. None, several unnamed, or no match is an
    /// error listing what there is.
    pub fn discover(config_dir: &Path, experiment: Option<&str>) -> Result<Self, VariantsError> {
        let files = Self::list(config_dir)?;
        let dir = config_dir.join(EXPERIMENT_DIR);
        let names = || {
            files
                .iter()
                .filter_map(|f| f.file_stem().and_then(|s| s.to_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if files.is_empty() {
            return Err(VariantsError::Config {
                file: dir,
                key: "experiment".into(),
                message: "no experiment file (expected experiment/<name>.yaml naming data_config, train_config and hpo_config)".into(),
            });
        }
        let Some(wanted) = experiment else {
            if let [only] = files.as_slice() {
                return Self::from_file(config_dir, only);
            }
            return Err(VariantsError::Config {
                file: dir,
                key: "experiment".into(),
                message: format!(
                    "several experiments ({}); choose one with --experiment NAME",
                    names()
                ),
            });
        };
        if let Some(file) = files
            .iter()
            .find(|f| f.file_stem().and_then(|s| s.to_str()) == Some(wanted))
        {
            return Self::from_file(config_dir, file);
        }
        for file in &files {
            let loaded = Self::from_file(config_dir, file)?;
            if loaded.experiment_name == wanted {
                return Ok(loaded);
            }
        }
        Err(VariantsError::Config {
            file: dir,
            key: "experiment".into(),
            message: format!(
                "no experiment named {wanted:?} (by file stem or experiment_name); there are: {}",
                names()
            ),
        })
    }

    /// Reads one experiment file of `config_dir`; errors name the file and the key.
    pub fn from_file(config_dir: &Path, file: &Path) -> Result<Self, VariantsError> {
        let doc = read_yaml(file)?;
        let invalid = |key: &str, message: String| VariantsError::Config {
            file: file.to_path_buf(),
            key: key.to_string(),
            message,
        };
        if !matches!(doc, Value::Mapping(_)) {
            return Err(invalid("", "expected a mapping".into()));
        }
        let mut ignored_keys =
            EXPERIMENT_KEYS.check(file, "", mapping_keys(&doc).iter().map(String::as_str))?;
        let string = |key: &str| -> Result<Option<String>, VariantsError> {
            match doc.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(text.clone())),
                Some(other) => Err(invalid(
                    key,
                    format!("expected a non-empty string, found {}", kind(other)),
                )),
            }
        };
        let required = |key: &str| -> Result<String, VariantsError> {
            string(key)?.ok_or_else(|| {
                invalid(
                    key,
                    "missing: the path (relative to the config folder) of the file".into(),
                )
            })
        };
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let experiment_name = string("experiment_name")?.unwrap_or(stem);
        let default_hpo = required("hpo_config")?;
        let mut hpo = default_hpo.clone();
        match doc.get("stages") {
            None | Some(Value::Null) => {}
            Some(stages @ Value::Mapping(_)) => {
                ignored_keys.extend(STAGE_NAMES.check(
                    file,
                    "stages",
                    mapping_keys(stages).iter().map(String::as_str),
                )?);
                for (name, stage) in stages.as_mapping().into_iter().flatten() {
                    let name = name.as_str().unwrap_or_default();
                    let prefix = format!("stages.{name}");
                    match stage {
                        Value::Null => {}
                        Value::Mapping(_) if name == "hpo" => {
                            ignored_keys.extend(STAGE_KEYS.check(
                                file,
                                &prefix,
                                mapping_keys(stage).iter().map(String::as_str),
                            )?);
                            match stage.get("hpo_config") {
                                None | Some(Value::Null) => {}
                                Some(Value::String(path)) if !path.trim().is_empty() => {
                                    hpo = path.clone();
                                }
                                Some(other) => {
                                    return Err(invalid(
                                        "stages.hpo.hpo_config",
                                        format!(
                                            "expected a non-empty string, found {}",
                                            kind(other)
                                        ),
                                    ));
                                }
                            }
                        }
                        Value::Mapping(_) => {}
                        other => {
                            return Err(invalid(
                                &prefix,
                                format!("expected a mapping, found {}", kind(other)),
                            ));
                        }
                    }
                }
            }
            Some(other) => {
                return Err(invalid(
                    "stages",
                    format!("expected a mapping, found {}", kind(other)),
                ));
            }
        }
        let resolve = |relative: String| config_dir.join(relative);
        Ok(ExperimentFiles {
            config_dir: config_dir.to_path_buf(),
            experiment_file: file.to_path_buf(),
            experiment_name,
            data: resolve(required("data_config")?),
            train: resolve(required("train_config")?),
            hpo: resolve(hpo),
            default_hpo: resolve(default_hpo),
            benchmark: resolve(
                string("benchmark_config")?.unwrap_or_else(|| "benchmark.yaml".into()),
            ),
            ignored_keys,
        })
    }

    /// The backbones of the HPO config of record: `search_space.backbone.values`, as written.
    /// Empty when the search space has no backbone; an error when it is malformed.
    pub fn backbones(&self) -> Result<Vec<String>, VariantsError> {
        backbones_of_hpo_config(&self.hpo)
    }

    /// `best_model_selection.yaml` of the config folder.
    pub fn selection_config(&self) -> PathBuf {
        self.config_dir.join("best_model_selection.yaml")
    }

    /// `tags.yaml` of the config folder.
    pub fn tags_config(&self) -> PathBuf {
        self.config_dir.join("tags.yaml")
    }

    /// `paths.yaml` of the config folder.
    pub fn paths_config(&self) -> PathBuf {
        self.config_dir.join("paths.yaml")
    }
}

/// `search_space.backbone.values` of an HPO config file, as written.
pub fn backbones_of_hpo_config(hpo: &Path) -> Result<Vec<String>, VariantsError> {
    let doc = read_yaml(hpo)?;
    let invalid = |key: &str, message: String| VariantsError::Config {
        file: hpo.to_path_buf(),
        key: key.to_string(),
        message,
    };
    if !matches!(doc, Value::Null | Value::Mapping(_)) {
        return Err(invalid(
            "",
            format!("expected a mapping of HPO settings, found {}", kind(&doc)),
        ));
    }
    let values = match doc
        .get("search_space")
        .and_then(|space| space.get("backbone"))
        .and_then(|backbone| backbone.get("values"))
    {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Sequence(values)) => values,
        Some(other) => {
            return Err(invalid(
                "search_space.backbone.values",
                format!("expected a list of backbone names, found {}", kind(other)),
            ));
        }
    };
    values
        .iter()
        .enumerate()
        .map(|(index, value)| match value {
            Value::String(name) if !name.trim().is_empty() => Ok(name.clone()),
            other => Err(invalid(
                &format!("search_space.backbone.values[{index}]"),
                format!("expected a non-empty backbone name, found {}", kind(other)),
            )),
        })
        .collect()
}

/// `run.mode` of a YAML config file (the HPO config whose mode a benchmark inherits, or any
/// stage's): `None` when absent or null, an error naming the file for an invalid value.
pub fn run_mode_of(path: &Path) -> Result<Option<podium_run_mode::RunMode>, VariantsError> {
    podium_run_mode::RunMode::from_config_value(&read_yaml(path)?).map_err(|err| {
        VariantsError::Config {
            file: path.to_path_buf(),
            key: "run.mode".into(),
            message: err.to_string(),
        }
    })
}

/// Reads a YAML config file as a serde_yaml value (for typed, non-hashed reading), through the
/// one bounded config reader ([`crate::fs::read_config_text`]).
pub fn read_yaml(path: &Path) -> Result<Value, VariantsError> {
    let text = crate::fs::read_config_text(path)?;
    let value: Value = serde_yaml::from_str(&text).map_err(|err| VariantsError::Config {
        file: path.to_path_buf(),
        key: err
            .location()
            .map(|l| format!("line {}", l.line()))
            .unwrap_or_default(),
        message: err.to_string(),
    })?;
    Ok(value)
}

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// The names podium derives from an experiment: the backbones it looks at and its MLflow
/// experiments (`{experiment_name}-hpo-{backbone}` with the backbone as written,
/// `{experiment_name}-benchmark`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// `experiment_name`: the prefix shared by every MLflow experiment of the project.
    pub name: String,
    /// The backbones, as written in the HPO config's `search_space.backbone.values`.
    pub backbones: Vec<String>,
    /// Template of each backbone's HPO experiment; `{name}` and `{backbone}` (as given, not
    /// shortened) substituted. The pipeline's is the default.
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
    /// The pipeline's names for an experiment and its backbones.
    pub fn named(experiment_name: &str, backbones: Vec<String>) -> Self {
        ExperimentConfig {
            name: experiment_name.to_string(),
            backbones,
            hpo_experiment: default_hpo_experiment(),
            benchmark_experiment: default_benchmark_experiment(),
        }
    }

    /// The experiment of a config folder ([`ExperimentFiles::discover`]) with its backbones.
    pub fn from_config_dir(
        config_dir: &Path,
        experiment: Option<&str>,
    ) -> Result<Self, VariantsError> {
        Self::from_files(&ExperimentFiles::discover(config_dir, experiment)?)
    }

    /// The names of resolved experiment files.
    pub fn from_files(files: &ExperimentFiles) -> Result<Self, VariantsError> {
        Ok(Self::named(&files.experiment_name, files.backbones()?))
    }

    /// Loads from one experiment file, `<config>/experiment/<name>.yaml`, or from a config
    /// folder (its only experiment).
    pub fn load(path: &Path) -> Result<Self, VariantsError> {
        if path.is_dir() {
            return Self::from_config_dir(path, None);
        }
        let config_dir = path
            .parent()
            .and_then(Path::parent)
            .unwrap_or_else(|| Path::new("."));
        Self::from_files(&ExperimentFiles::from_file(config_dir, path)?)
    }

    /// The HPO experiment of a backbone: `{experiment_name}-hpo-{backbone}`, the backbone as
    /// given (the pipeline does not shorten it).
    pub fn hpo_experiment_name(&self, backbone: &str) -> String {
        self.hpo_experiment
            .replace("{name}", &self.name)
            .replace("{backbone}", backbone)
    }

    /// The benchmark experiment: `{experiment_name}-benchmark`.
    pub fn benchmark_experiment_name(&self) -> String {
        self.benchmark_experiment.replace("{name}", &self.name)
    }

    /// The configured backbones, or those given on the command line.
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

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    const EXPERIMENT: &str = "experiment_name: proj\ndata_config: data/d.yaml\n\
        model_config: model/m.yaml\ntrain_config: train.yaml\nhpo_config: hpo/prod.yaml\n\
        env_config: env/local.yaml\nstages:\n  hpo:\n    aml_experiment: x\n    hpo_config: hpo/smoke.yaml\n\
        naming:\n  include_backbone_in_experiment: true\n";

    #[test]
    fn names_follow_the_pipeline() {
        let config = ExperimentConfig {
            name: "proj".into(),
            backbones: vec!["distilbert".into()],
            hpo_experiment: default_hpo_experiment(),
            benchmark_experiment: default_benchmark_experiment(),
        };
        assert_eq!(
            config.hpo_experiment_name("distilbert-base-uncased"),
            "proj-hpo-distilbert-base-uncased"
        );
        assert_eq!(config.benchmark_experiment_name(), "proj-benchmark");
        assert_eq!(backbone_short_name("deberta-v3-small"), "deberta");
        assert_eq!(backbone_short_name("bert"), "bert");
    }

    #[test]
    fn the_stage_hpo_config_is_of_record_and_gives_the_backbones() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "experiment/base.yaml", EXPERIMENT);
        write(
            dir.path(),
            "hpo/smoke.yaml",
            "search_space:\n  backbone:\n    type: choice\n    values: [distilbert, deberta]\n",
        );
        let files = ExperimentFiles::discover(dir.path(), None).unwrap();
        assert_eq!(files.hpo, dir.path().join("hpo/smoke.yaml"));
        // The experiment's own hpo_config stays known: the benchmark workflow is given it.
        assert_eq!(files.default_hpo, dir.path().join("hpo/prod.yaml"));
        assert_eq!(files.benchmark, dir.path().join("benchmark.yaml"));
        assert_eq!(
            files.ignored_keys,
            [
                "model_config",
                "env_config",
                "naming",
                "stages.hpo.aml_experiment"
            ]
        );
        let config = ExperimentConfig::from_config_dir(dir.path(), Some("proj")).unwrap();
        assert_eq!(config.name, "proj");
        assert_eq!(config.backbones, ["distilbert", "deberta"]);
    }

    #[test]
    fn choosing_among_experiments_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "experiment/a.yaml", EXPERIMENT);
        write(
            dir.path(),
            "experiment/b.yaml",
            &EXPERIMENT.replace("proj", "other"),
        );
        let message = ExperimentFiles::discover(dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("a, b") && message.contains("--experiment"),
            "{message}"
        );
        assert_eq!(
            ExperimentFiles::discover(dir.path(), Some("other"))
                .unwrap()
                .experiment_file,
            dir.path().join("experiment/b.yaml")
        );
        assert!(ExperimentFiles::discover(dir.path(), Some("nope")).is_err());
        write(
            dir.path(),
            "experiment/a.yaml",
            &format!("{EXPERIMENT}colour: red\n"),
        );
        let message = ExperimentFiles::discover(dir.path(), Some("a"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("a.yaml") && message.contains("colour"),
            "{message}"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(ExperimentFiles::discover(empty.path(), None).is_err());
    }
}
