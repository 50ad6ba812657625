//! The benchmark settings in force: `benchmark.yaml` validated and hashed, with the run mode
//! and the fingerprints of `data.yaml` and `eval.yaml`.

use std::path::Path;

use podium_keys::{PyValue, Separators};
use podium_run_mode::RunMode;

use crate::acquire::AcquisitionSettings;
use crate::bench_config::BenchmarkConfig;
use crate::cache::DEFAULT_FILENAME;
use crate::error::BenchError;

/// The benchmark settings in force: the typed config for the harness, its hashes for the key,
/// the run tags and the disk layout, the run mode, and the fingerprints used when a champion
/// run has no tags for them.
#[derive(Debug, Clone)]
pub struct BenchmarkSettings {
    /// `config/benchmark.yaml`, validated.
    pub config: BenchmarkConfig,
    /// `podium_keys::config_hash` of the whole benchmark.yaml: the key's last part.
    pub config_hash: String,
    /// sha256 of the compact dump of the whole benchmark.yaml (the pipeline's
    /// `benchmark_config_hash`): the `code.benchmark_config_hash` tag, `bench-{b8}` folder and
    /// run name.
    pub benchmark_config_hash: String,
    /// `output.filename` (default `benchmark.json`).
    pub output_filename: String,
    /// `run.mode` after inheriting the HPO config's mode.
    pub run_mode: RunMode,
    /// Re-measure even when a result exists (`force_new`, or `--force`).
    pub force: bool,
    /// Data fingerprint of `config/data.yaml`, for champions without the tag.
    pub default_data_fingerprint: String,
    /// Eval fingerprint of `config/eval.yaml`, for champions without the tag.
    pub default_eval_fingerprint: String,
    /// Where checkpoints are looked for (`paths.yaml`, `artifact_acquisition.yaml`).
    pub acquisition: AcquisitionSettings,
    /// Whether each benchmark run gets its result file as an artifact
    /// (`benchmark_results.json/{output.filename}`, as the pipeline logs it): `mlflow.yaml`'s
    /// `tracking.benchmark.log_artifacts`, true without the file or the key.
    pub log_artifacts: bool,
}

/// The pipeline's MLflow tracking config; podium reads its `tracking.benchmark.log_artifacts`.
pub const TRACKING_CONFIG_FILE: &str = "mlflow.yaml";

/// `tracking.benchmark.log_artifacts` of the pipeline's `mlflow.yaml` at `path` (true when the
/// file or the key is missing, as in the pipeline); a value that is not a boolean is an error
/// naming the file and the key.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("mlflow.yaml");
/// assert!(podium_bench::orchestrate::log_artifacts_setting(&path)?);
/// std::fs::write(&path, "tracking:\n  benchmark:\n    log_artifacts: false\n")?;
/// assert!(!podium_bench::orchestrate::log_artifacts_setting(&path)?);
/// std::fs::write(&path, "tracking:\n  benchmark:\n    log_artifacts: maybe\n")?;
/// assert!(podium_bench::orchestrate::log_artifacts_setting(&path).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn log_artifacts_setting(path: &Path) -> Result<bool, BenchError> {
    const KEY: &str = "tracking.benchmark.log_artifacts";
    if !path.exists() {
        return Ok(true);
    }
    let document = podium_keys::load_path(path).map_err(|source| BenchError::Keys {
        context: format!("loading {}", path.display()),
        source: Box::new(source),
    })?;
    let value = document
        .get("tracking")
        .and_then(|tracking| tracking.get("benchmark"))
        .and_then(|benchmark| benchmark.get("log_artifacts"));
    match value {
        None | Some(PyValue::None) => Ok(true),
        Some(PyValue::Bool(flag)) => Ok(*flag),
        Some(other) => Err(BenchError::Config {
            file: path.to_path_buf(),
            key: KEY.into(),
            message: format!("expected true or false, found {}", other.type_name()),
        }),
    }
}

impl BenchmarkSettings {
    /// Reads `benchmark.yaml`, `data.yaml` and `eval.yaml` from `config_dir`, and the HPO
    /// config's `run.mode` from `hpo_config` when the benchmark's own mode is null. A missing
    /// data.yaml/eval.yaml counts as an empty config (the fingerprints always have a value).
    pub fn load(config_dir: &Path, hpo_config: &Path, force: bool) -> Result<Self, BenchError> {
        let benchmark_file = config_dir.join(BenchmarkConfig::FILE);
        let config =
            BenchmarkConfig::from_file(&benchmark_file).map_err(|err| BenchError::Config {
                file: benchmark_file.clone(),
                key: "<document>".into(),
                message: err.to_string(),
            })?;
        let hashing_view =
            podium_keys::load_path(&benchmark_file).map_err(|source| BenchError::Keys {
                context: format!("loading {} for the benchmark key", benchmark_file.display()),
                source: Box::new(source),
            })?;
        let hpo_mode = if config.run_mode.is_some() {
            RunMode::default()
        } else {
            RunMode::from_config_file(hpo_config)
                .map_err(|err| BenchError::Config {
                    file: hpo_config.to_path_buf(),
                    key: "run.mode".into(),
                    message: err.to_string(),
                })?
                .unwrap_or_default()
        };
        let optional = |name: &str| -> Result<PyValue, BenchError> {
            let path = config_dir.join(name);
            if !path.exists() {
                tracing::warn!(
                    "{} not found: fingerprinting it as an empty config",
                    path.display()
                );
                return Ok(PyValue::None);
            }
            podium_keys::load_path(&path).map_err(|source| BenchError::Keys {
                context: format!("loading {}", path.display()),
                source: Box::new(source),
            })
        };
        let data = optional("data.yaml")?;
        let eval = optional("eval.yaml")?;
        let keys_error = |what: &str| {
            let context = format!(
                "computing the {what} fingerprint from {}",
                config_dir.display()
            );
            move |source| BenchError::Keys {
                context,
                source: Box::new(source),
            }
        };
        let output_filename = hashing_view
            .get("output")
            .and_then(|output| output.get("filename"))
            .and_then(PyValue::as_str)
            .unwrap_or(DEFAULT_FILENAME)
            .to_string();
        Ok(Self {
            config_hash: podium_keys::config_hash(&hashing_view)
                .map_err(keys_error("benchmark config hash"))?,
            benchmark_config_hash: podium_keys::sha256_hex(
                &podium_keys::py_json(&hashing_view, Separators::Compact)
                    .map_err(keys_error("benchmark config hash"))?,
            ),
            output_filename,
            run_mode: RunMode::inherit(config.run_mode, hpo_mode),
            force: force || RunMode::inherit(config.run_mode, hpo_mode) == RunMode::ForceNew,
            default_data_fingerprint: podium_keys::data_fingerprint(&data)
                .map_err(keys_error("data"))?,
            default_eval_fingerprint: podium_keys::eval_fingerprint(&eval)
                .map_err(keys_error("eval"))?,
            acquisition: AcquisitionSettings::load(config_dir)?,
            log_artifacts: log_artifacts_setting(&config_dir.join(TRACKING_CONFIG_FILE))?,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load(benchmark: &str, hpo: Option<&str>, force: bool) -> BenchmarkSettings {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("benchmark.yaml"), benchmark).unwrap();
        let hpo_path = dir.path().join("hpo.yaml");
        if let Some(hpo) = hpo {
            std::fs::write(&hpo_path, hpo).unwrap();
        }
        BenchmarkSettings::load(dir.path(), &hpo_path, force).unwrap()
    }

    #[test]
    fn a_null_mode_inherits_the_hpo_configs_and_force_new_forces() {
        let inherits = "run:\n  mode: null\nbenchmarking:\n  batch_sizes: [1]\n";
        let forced = load(inherits, Some("run:\n  mode: force_new\n"), false);
        assert_eq!(forced.run_mode, RunMode::ForceNew);
        assert!(forced.force);
        let reused = load(inherits, Some("run:\n  mode: reuse_if_exists\n"), false);
        assert_eq!(reused.run_mode, RunMode::ReuseIfExists);
        assert!(!reused.force);
        assert!(load(inherits, Some("run:\n  mode: reuse_if_exists\n"), true).force);
    }

    #[test]
    fn the_hashes_follow_the_whole_file_and_missing_configs_fingerprint_as_empty() {
        let a = load(
            "run:\n  mode: reuse_if_exists\nbenchmarking:\n  batch_sizes: [1]\n",
            None,
            false,
        );
        let b = load(
            "run:\n  mode: reuse_if_exists\nbenchmarking:\n  batch_sizes: [1, 8]\n",
            None,
            false,
        );
        let a_again = load(
            "run:\n  mode: reuse_if_exists\nbenchmarking:\n  batch_sizes: [1]\n",
            None,
            false,
        );
        assert_ne!(a.config_hash, b.config_hash);
        assert_ne!(a.benchmark_config_hash, b.benchmark_config_hash);
        assert_eq!(a.config_hash, a_again.config_hash);
        assert_eq!(a.output_filename, DEFAULT_FILENAME);
        assert_eq!(
            a.default_data_fingerprint,
            podium_keys::data_fingerprint(&PyValue::None).unwrap()
        );
        let named = load(
            "run:\n  mode: reuse_if_exists\nbenchmarking:\n  batch_sizes: [1]\noutput:\n  filename: results.json\n",
            None,
            false,
        );
        assert_eq!(named.output_filename, "results.json");
    }
}
