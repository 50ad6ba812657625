//! `podium keys`: the pipeline's keys, fingerprints and hashes of config files named by path
//! (no project needed), each as one call returning what `podium keys … ` prints. The study keys
//! of an experiment's backbone are [`ProjectOptions::study_keys`](crate::ProjectOptions::study_keys).
//!
//! The reports' fields are the JSON field names of `podium keys` (API for scripts), declared in
//! the order JSON prints them.

use std::path::{Path, PathBuf};

use podium_keys::{
    KeysError, PyValue, StudyConfigs, StudyKeys, load_path, normalize_hyperparameters, py_json,
};
use serde::Serialize;

pub use podium_keys::Separators;

use crate::error::{ProjectError, Result};

/// Every key of a study, as `podium keys study` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StudyKeysReport {
    /// The data fingerprint.
    pub data_fingerprint: String,
    /// The eval fingerprint of the (derived) eval config.
    pub eval_fingerprint: String,
    /// sha256 of the family key.
    pub study_family_hash: String,
    /// The family key JSON.
    pub study_family_key: String,
    /// The v2 study key JSON.
    pub study_key: String,
    /// sha256 of the v2 study key.
    pub study_key_hash: String,
    /// The "v1" study key JSON.
    pub v1_study_key: String,
    /// sha256 of the "v1" study key.
    pub v1_study_key_hash: String,
}

impl From<&StudyKeys> for StudyKeysReport {
    fn from(keys: &StudyKeys) -> Self {
        StudyKeysReport {
            data_fingerprint: keys.data_fingerprint.clone(),
            eval_fingerprint: keys.eval_fingerprint.clone(),
            study_family_hash: keys.study_family_hash.clone(),
            study_family_key: keys.study_family_key.clone(),
            study_key: keys.study_key.clone(),
            study_key_hash: keys.study_key_hash.clone(),
            v1_study_key: keys.v1_study_key.clone(),
            v1_study_key_hash: keys.v1_study_key_hash.clone(),
        }
    }
}

/// The files of one study, for [`study_keys_of_files`].
#[derive(Debug, Clone, Default)]
pub struct StudyFiles {
    /// The data config.
    pub data: PathBuf,
    /// The HPO config.
    pub hpo: PathBuf,
    /// The train config (whole file).
    pub train: PathBuf,
    /// The backbone as written in the search space.
    pub model: String,
    /// An explicit eval config; `None`: derived from train and HPO, as the pipeline does.
    pub eval: Option<PathBuf>,
    /// The benchmark config (read by the "v1" and family keys).
    pub benchmark: Option<PathBuf>,
    /// Added to the v2 payload as `code_version` when given.
    pub code_version: Option<String>,
}

/// The study keys of the given files.
pub fn study_keys_of_files(files: &StudyFiles) -> Result<StudyKeysReport> {
    let data = load(&files.data)?;
    let hpo = load(&files.hpo)?;
    let train = load(&files.train)?;
    let eval = files.eval.as_deref().map(load).transpose()?;
    let benchmark = files.benchmark.as_deref().map(load).transpose()?;
    let configs = StudyConfigs {
        data: &data,
        hpo: &hpo,
        train: &train,
        eval: eval.as_ref(),
        model: &files.model,
        benchmark: benchmark.as_ref(),
        code_version: files.code_version.as_deref(),
    };
    let keys = StudyKeys::compute(&configs).map_err(keys_error("computing the study keys"))?;
    Ok(StudyKeysReport::from(&keys))
}

/// The canonical JSON text of a YAML/JSON file (Python's `json.dumps(…, sort_keys=True)` with
/// `separators`).
pub fn canonical_json(file: &Path, separators: Separators) -> Result<String> {
    py_json(&load(file)?, separators)
        .map_err(keys_error(format!("canonical JSON of {}", file.display())))
}

/// A trial's key, as `podium keys trial` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrialKeysReport {
    /// The hyperparameters as the trial key holds them (normalised as the pipeline does).
    pub hyperparameters: serde_json::Value,
    /// The trial key JSON.
    pub trial_key: String,
    /// Its sha256.
    pub trial_key_hash: String,
}

/// The trial key and hash of the hyperparameters in `params_file` (a JSON or YAML mapping) in
/// the study `study_key_hash`.
pub fn trial_keys(study_key_hash: &str, params_file: &Path) -> Result<TrialKeysReport> {
    let params = load(params_file)?;
    let shown = params_file.display();
    let normalized = normalize_hyperparameters(&params)
        .map_err(keys_error(format!("hyperparameters of {shown}")))?;
    let trial_key = podium_keys::trial_key(study_key_hash, &params)
        .map_err(keys_error(format!("trial key of {shown}")))?;
    let text = py_json(&normalized, Separators::Compact)
        .map_err(keys_error(format!("hyperparameters of {shown}")))?;
    let hyperparameters = serde_json::from_str(&text).map_err(|err| {
        ProjectError::Invalid(format!(
            "re-reading the normalised hyperparameters of {shown}: {err}"
        ))
    })?;
    Ok(TrialKeysReport {
        hyperparameters,
        trial_key_hash: podium_keys::trial_key_hash(&trial_key),
        trial_key,
    })
}

/// A benchmark key, as `podium keys benchmark` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BenchmarkKeyReport {
    /// `{run_id}:{data_fp}:{eval_fp}:{config_hash}`.
    pub benchmark_key: String,
    /// The config hash of the benchmark config (16 hex digits).
    pub config_hash: String,
}

/// The benchmark key of a champion run (`run_id`, its data and eval fingerprints) under the
/// benchmark config `benchmark_file` (hashed whole).
pub fn benchmark_key(
    run_id: &str,
    data_fingerprint: &str,
    eval_fingerprint: &str,
    benchmark_file: &Path,
) -> Result<BenchmarkKeyReport> {
    let config_hash = config_hash_of(benchmark_file)?.config_hash;
    Ok(BenchmarkKeyReport {
        benchmark_key: podium_keys::benchmark_key(
            run_id,
            data_fingerprint,
            eval_fingerprint,
            &config_hash,
        ),
        config_hash,
    })
}

/// A config hash, as `podium keys config-hash` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigHashReport {
    /// 16 hex digits of the sha256 of the file's canonical JSON (default separators).
    pub config_hash: String,
}

/// The config hash of a YAML/JSON file.
pub fn config_hash_of(file: &Path) -> Result<ConfigHashReport> {
    let config_hash = podium_keys::config_hash(&load(file)?)
        .map_err(keys_error(format!("config hash of {}", file.display())))?;
    Ok(ConfigHashReport { config_hash })
}

/// Which fingerprint [`fingerprint`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FingerprintKind {
    /// The data fingerprint of a data config.
    Data,
    /// The eval fingerprint of an eval config.
    Eval,
}

/// A fingerprint, as `podium keys fingerprint` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FingerprintReport {
    /// The fingerprint.
    pub hash: String,
}

/// The data or eval fingerprint of a config file.
pub fn fingerprint(kind: FingerprintKind, file: &Path) -> Result<FingerprintReport> {
    let value = load(file)?;
    let hash = match kind {
        FingerprintKind::Data => podium_keys::data_fingerprint(&value),
        FingerprintKind::Eval => podium_keys::eval_fingerprint(&value),
    }
    .map_err(keys_error(format!("fingerprint of {}", file.display())))?;
    Ok(FingerprintReport { hash })
}

fn load(path: &Path) -> Result<PyValue> {
    load_path(path).map_err(keys_error(format!("loading {}", path.display())))
}

fn keys_error(context: impl Into<String>) -> impl FnOnce(KeysError) -> ProjectError {
    let context = context.into();
    move |source| ProjectError::KeyInput {
        context,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_report_prints_the_fields_scripts_read_in_sorted_order() {
        let dir = tempfile::tempdir().unwrap();
        let params = dir.path().join("params.yaml");
        std::fs::write(&params, "learning_rate: 2.0e-5\nbatch_size: 8\n").unwrap();
        let trial = serde_json::to_string(&trial_keys("abc", &params).unwrap()).unwrap();
        assert!(
            trial.starts_with(r#"{"hyperparameters":{"batch_size":8,"learning_rate":0.00002}"#),
            "{trial}"
        );
        assert!(trial.contains(r#","trial_key":"{"#), "{trial}");

        let config = dir.path().join("benchmark.yaml");
        std::fs::write(&config, "batch_sizes: [1]\n").unwrap();
        let key = benchmark_key("run", "d", "e", &config).unwrap();
        let hash = config_hash_of(&config).unwrap().config_hash;
        assert_eq!(key.benchmark_key, format!("run:d:e:{hash}"));
        assert_eq!(key.config_hash, hash);

        let missing = dir.path().join("missing.yaml");
        let err = fingerprint(FingerprintKind::Data, &missing).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("loading {}", missing.display())),
            "{err}"
        );
    }
}
