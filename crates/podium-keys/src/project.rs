//! One loader from a config folder to the inputs of every key: the experiment file picks the
//! data, train, HPO (of record) and benchmark files; each is read with the PyYAML-compatible
//! loader, so the CLI, selection, benchmarking and any Rust service linking podium-keys hash
//! the same bytes the pipeline hashes.
//!
//! ```no_run
//! use podium_keys::ProjectConfigs;
//! # fn main() -> Result<(), podium_keys::KeysError> {
//! let project = ProjectConfigs::load("config".as_ref(), None)?;
//! for backbone in &project.backbones {
//!     let keys = project.study_keys(backbone)?;
//!     println!("{backbone}: {}", keys.study_key_hash);
//! }
//! # Ok(()) }
//! ```

use std::path::Path;

use podium_variants::{ExperimentConfig, ExperimentFiles, KeySchema};

use crate::error::KeysError;
use crate::keys::{StudyConfigs, StudyKeys, config_hash};
use crate::load::load_path;
use crate::value::PyValue;

/// Top-level keys of a data config: those the keys read, and the pipeline's others.
pub const DATA_KEYS: KeySchema<'static> = KeySchema {
    used: &[
        "name",
        "version",
        "local_path",
        "schema",
        "split_seed",
        "label_mapping",
        "content_hash",
        "manifest_hash",
    ],
    ignored: &["description", "seed", "splitting"],
};

/// Top-level keys of a train config.
pub const TRAIN_KEYS: KeySchema<'static> = KeySchema {
    used: &["eval", "max_steps", "num_epochs", "seed_policy"],
    ignored: &[
        "training",
        "logging",
        "distributed",
        "epochs",
        "hpo_epochs",
        "random_seed",
        "postprocess",
    ],
};

/// Top-level keys of an HPO config.
pub const HPO_KEYS: KeySchema<'static> = KeySchema {
    used: &[
        "search_space",
        "objective",
        "sampling",
        "k_fold",
        "early_termination",
        "checkpoint",
        "run",
        "evaluation",
        "study_name",
    ],
    ignored: &["selection", "mlflow", "refit", "cleanup"],
};

/// Checks the top-level keys of a loaded config against `schema`: the ignored keys found, or an
/// error naming the file and the unknown key. An empty file is a config without keys; any
/// other document that is not a mapping (a string, a list) is an error naming the file.
pub fn check_top_level_keys(
    value: &PyValue,
    schema: &KeySchema<'_>,
    file: &Path,
) -> Result<Vec<String>, KeysError> {
    let entries = match value {
        PyValue::Dict(entries) => entries,
        PyValue::None => return Ok(Vec::new()),
        other => {
            return Err(KeysError::Config {
                file: Some(file.to_path_buf()),
                key: String::new(),
                message: format!(
                    "expected a mapping of settings, found {}",
                    other.type_name()
                ),
            });
        }
    };
    let mut names = Vec::with_capacity(entries.len());
    for (key, _) in entries {
        match key.as_str() {
            Some(name) => names.push(name),
            None => {
                return Err(KeysError::Config {
                    file: Some(file.to_path_buf()),
                    key: key.py_str().unwrap_or_default(),
                    message: "top-level keys must be strings".into(),
                });
            }
        }
    }
    schema.check(file, "", names).map_err(variants_error)
}

/// Every config a key needs, loaded once for one experiment.
#[derive(Debug, Clone)]
pub struct ProjectConfigs {
    /// Where the files are.
    pub files: ExperimentFiles,
    /// The backbones, as written in the HPO config of record.
    pub backbones: Vec<String>,
    /// The data config.
    pub data: PyValue,
    /// The HPO config of record.
    pub hpo: PyValue,
    /// The train config (whole file).
    pub train: PyValue,
    /// The benchmark config, when its file exists.
    pub benchmark: Option<PyValue>,
    /// Keys of the experiment, data, train and HPO files that the pipeline defines and podium
    /// does not read, each as `file: key`.
    pub ignored_keys: Vec<String>,
}

fn variants_error(err: podium_variants::VariantsError) -> KeysError {
    match err {
        podium_variants::VariantsError::Config { file, key, message } => KeysError::Config {
            file: Some(file),
            key,
            message,
        },
        other => KeysError::Config {
            file: None,
            key: String::new(),
            message: other.to_string(),
        },
    }
}

impl ProjectConfigs {
    /// Loads the experiment of `config_dir` named `experiment` (file stem or
    /// `experiment_name`; the only one when `None`) and every file it names.
    pub fn load(config_dir: &Path, experiment: Option<&str>) -> Result<Self, KeysError> {
        let files = ExperimentFiles::discover(config_dir, experiment).map_err(variants_error)?;
        Self::from_files(files)
    }

    /// Loads the files an already resolved experiment names.
    pub fn from_files(files: ExperimentFiles) -> Result<Self, KeysError> {
        let backbones = files.backbones().map_err(variants_error)?;
        let data = load_path(&files.data)?;
        let hpo = load_path(&files.hpo)?;
        let train = load_path(&files.train)?;
        let benchmark = if files.benchmark.exists() {
            Some(load_path(&files.benchmark)?)
        } else {
            None
        };
        let mut ignored_keys: Vec<String> = files
            .ignored_keys
            .iter()
            .map(|key| format!("{}: {key}", files.experiment_file.display()))
            .collect();
        for (value, schema, file) in [
            (&data, &DATA_KEYS, &files.data),
            (&train, &TRAIN_KEYS, &files.train),
            (&hpo, &HPO_KEYS, &files.hpo),
        ] {
            ignored_keys.extend(
                check_top_level_keys(value, schema, file)?
                    .into_iter()
                    .map(|key| format!("{}: {key}", file.display())),
            );
        }
        Ok(ProjectConfigs {
            files,
            backbones,
            data,
            hpo,
            train,
            benchmark,
            ignored_keys,
        })
    }

    /// The experiment's names (MLflow experiments, backbones).
    pub fn experiment(&self) -> ExperimentConfig {
        ExperimentConfig::named(&self.files.experiment_name, self.backbones.clone())
    }

    /// The key inputs for one backbone (as written in the search space); the eval config is
    /// derived, as the pipeline derives it.
    pub fn study_configs<'a>(&'a self, backbone: &'a str) -> StudyConfigs<'a> {
        StudyConfigs {
            data: &self.data,
            hpo: &self.hpo,
            train: &self.train,
            eval: None,
            model: backbone,
            benchmark: self.benchmark.as_ref(),
            code_version: None,
        }
    }

    /// Every study key of one backbone; errors name the config file involved.
    pub fn study_keys(&self, backbone: &str) -> Result<StudyKeys, KeysError> {
        StudyKeys::compute(&self.study_configs(backbone)).map_err(|err| self.attribute(err))
    }

    /// The config hash of the benchmark config (`{}`'s hash when there is none).
    pub fn benchmark_config_hash(&self) -> Result<String, KeysError> {
        config_hash(self.benchmark.as_ref().unwrap_or(&PyValue::empty_dict()))
            .map_err(|err| err.in_file(&self.files.benchmark))
    }

    /// Names the file a key error comes from, by the config the failing key reads.
    fn attribute(&self, err: KeysError) -> KeysError {
        let KeysError::Config {
            file: None,
            ref key,
            ..
        } = err
        else {
            return err;
        };
        let root = key.split('.').next().unwrap_or_default();
        let file = match root {
            "data" => &self.files.data,
            "hpo" | "hyperparameters" => &self.files.hpo,
            "train" | "eval" => &self.files.train,
            "benchmark" => &self.files.benchmark,
            _ => return err,
        };
        err.in_file(file)
    }
}
