//! The benchmark settings in force: `benchmark.yaml` validated and hashed, with the run mode
//! and the fingerprints the pipeline's benchmark workflow keys champions with: the data
//! fingerprint of the experiment's data config and the eval fingerprint of
//! `derive_eval_config(hpo.get("train", {}), hpo)` over the HPO config it is given.

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
    /// Data fingerprint of the experiment's data config (the pipeline's benchmark workflow's
    /// `compute_data_fingerprint(data_config)`), for champions without the tag.
    pub default_data_fingerprint: String,
    /// Eval fingerprint of [`podium_keys::benchmark_eval_config`] over the HPO config (the
    /// workflow's `compute_eval_fingerprint(derive_eval_config(hpo.get("train", {}), hpo))`),
    /// for champions without the tag.
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
    /// Reads `benchmark.yaml` from `config_dir`, the data config `data_config` and the HPO
    /// config `hpo_config` the benchmark workflow is given (the experiment's `data_config` and
    /// `hpo_config`): their fingerprints key champions without fingerprint tags, and the HPO
    /// config's `run.mode` is what a benchmark `run.mode: null` inherits. Each file must exist;
    /// errors name the file.
    pub fn load(
        config_dir: &Path,
        data_config: &Path,
        hpo_config: &Path,
        force: bool,
    ) -> Result<Self, BenchError> {
        let benchmark_file = config_dir.join(BenchmarkConfig::FILE);
        let config =
            BenchmarkConfig::from_file(&benchmark_file).map_err(|err| BenchError::Config {
                file: benchmark_file.clone(),
                key: "<document>".into(),
                message: err.to_string(),
            })?;
        // The loader's errors name the file.
        let load = |path: &Path, what: &str| {
            podium_keys::load_path(path).map_err(|source| BenchError::Keys {
                context: format!("the benchmark key's {what}"),
                source: Box::new(source),
            })
        };
        let hashing_view = load(&benchmark_file, "config hash")?;
        let data = load(data_config, "data fingerprint")?;
        let hpo = load(hpo_config, "eval fingerprint")?;
        let hpo_mode = if config.run_mode.is_some() {
            RunMode::default()
        } else {
            podium_variants::run_mode_of(hpo_config)
                .map_err(BenchError::layout(format!(
                    "reading run.mode of {}",
                    hpo_config.display()
                )))?
                .unwrap_or_default()
        };
        let keys_error = |what: &str, file: &Path| {
            let context = format!("computing the {what} of {}", file.display());
            let file = file.to_path_buf();
            move |source: podium_keys::KeysError| BenchError::Keys {
                context,
                source: Box::new(source.in_file(&file)),
            }
        };
        let default_data_fingerprint = podium_keys::data_fingerprint(&data)
            .map_err(keys_error("data fingerprint", data_config))?;
        let default_eval_fingerprint = podium_keys::benchmark_eval_config(&hpo)
            .and_then(|eval| podium_keys::eval_fingerprint(&eval))
            .map_err(keys_error("eval fingerprint", hpo_config))?;
        let output_filename = hashing_view
            .get("output")
            .and_then(|output| output.get("filename"))
            .and_then(PyValue::as_str)
            .unwrap_or(DEFAULT_FILENAME)
            .to_string();
        Ok(Self {
            config_hash: podium_keys::config_hash(&hashing_view)
                .map_err(keys_error("config hash", &benchmark_file))?,
            benchmark_config_hash: podium_keys::sha256_hex(
                &podium_keys::py_json(&hashing_view, Separators::Compact)
                    .map_err(keys_error("benchmark config hash", &benchmark_file))?,
            ),
            output_filename,
            run_mode: RunMode::inherit(config.run_mode, hpo_mode),
            force: force || RunMode::inherit(config.run_mode, hpo_mode) == RunMode::ForceNew,
            default_data_fingerprint,
            default_eval_fingerprint,
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

    const HPO: &str = "objective:\n  metric: macro-f1\n  direction: maximize\n";
    const DATA: &str = "name: resume\nversion: v1\n";

    fn try_load(
        benchmark: &str,
        data: Option<&str>,
        hpo: Option<&str>,
        force: bool,
    ) -> Result<BenchmarkSettings, BenchError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("benchmark.yaml"), benchmark).unwrap();
        let data_path = dir.path().join("data/d.yaml");
        let hpo_path = dir.path().join("hpo/h.yaml");
        for (path, text) in [(&data_path, data), (&hpo_path, hpo)] {
            if let Some(text) = text {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, text).unwrap();
            }
        }
        BenchmarkSettings::load(dir.path(), &data_path, &hpo_path, force)
    }

    fn load(benchmark: &str, hpo: &str, force: bool) -> BenchmarkSettings {
        try_load(benchmark, Some(DATA), Some(hpo), force).unwrap()
    }

    #[test]
    fn a_null_mode_inherits_the_hpo_configs_and_force_new_forces() {
        let inherits = "run:\n  mode: null\nbenchmarking:\n  batch_sizes: [1]\n";
        let forced = load(inherits, "run:\n  mode: force_new\n", false);
        assert_eq!(forced.run_mode, RunMode::ForceNew);
        assert!(forced.force);
        let reused = load(inherits, "run:\n  mode: reuse_if_exists\n", false);
        assert_eq!(reused.run_mode, RunMode::ReuseIfExists);
        assert!(!reused.force);
        assert!(load(inherits, "run:\n  mode: reuse_if_exists\n", true).force);
    }

    #[test]
    fn the_hashes_follow_the_whole_benchmark_file() {
        let a = load(
            "run:\n  mode: reuse_if_exists\nbenchmarking:\n  batch_sizes: [1]\n",
            HPO,
            false,
        );
        let b = load(
            "run:\n  mode: reuse_if_exists\nbenchmarking:\n  batch_sizes: [1, 8]\n",
            HPO,
            false,
        );
        let a_again = load(
            "run:\n  mode: reuse_if_exists\nbenchmarking:\n  batch_sizes: [1]\n",
            HPO,
            false,
        );
        assert_ne!(a.config_hash, b.config_hash);
        assert_ne!(a.benchmark_config_hash, b.benchmark_config_hash);
        assert_eq!(a.config_hash, a_again.config_hash);
        assert_eq!(a.output_filename, DEFAULT_FILENAME);
        let named = load(
            "run:\n  mode: reuse_if_exists\nbenchmarking:\n  batch_sizes: [1]\noutput:\n  filename: results.json\n",
            HPO,
            false,
        );
        assert_eq!(named.output_filename, "results.json");
    }

    #[test]
    fn the_fingerprints_are_the_benchmark_workflows() {
        let benchmark = "run:\n  mode: reuse_if_exists\n";
        let settings = load(benchmark, HPO, false);
        let data = podium_keys::load_yaml_str(DATA).unwrap();
        assert_eq!(
            settings.default_data_fingerprint,
            podium_keys::data_fingerprint(&data).unwrap()
        );
        // derive_eval_config(hpo.get("train", {}), hpo): the objective, here.
        let eval = podium_keys::load_yaml_str(
            "evaluator_version: default\nmetric: {metric: macro-f1, direction: maximize}\n",
        )
        .unwrap();
        assert_eq!(
            settings.default_eval_fingerprint,
            podium_keys::eval_fingerprint(&eval).unwrap()
        );
        // The HPO config's `evaluation` changes it; its search space does not.
        let evaluated = load(benchmark, &format!("{HPO}evaluation: {{x: 1}}\n"), false);
        assert_ne!(
            evaluated.default_eval_fingerprint,
            settings.default_eval_fingerprint
        );
        let searched = load(benchmark, &format!("{HPO}search_space: {{lr: 1}}\n"), false);
        assert_eq!(
            searched.default_eval_fingerprint,
            settings.default_eval_fingerprint
        );
    }

    #[test]
    fn a_missing_data_or_hpo_config_is_an_error_naming_it() {
        let benchmark = "run:\n  mode: reuse_if_exists\n";
        let no_data = try_load(benchmark, None, Some(HPO), false)
            .unwrap_err()
            .to_string();
        assert!(no_data.contains("d.yaml"), "{no_data}");
        let no_hpo = try_load(benchmark, Some(DATA), None, false)
            .unwrap_err()
            .to_string();
        assert!(no_hpo.contains("h.yaml"), "{no_hpo}");
        let not_a_mapping = try_load(benchmark, Some(DATA), Some("[1, 2]\n"), false)
            .unwrap_err()
            .to_string();
        assert!(not_a_mapping.contains("h.yaml"), "{not_a_mapping}");
    }
}
