//! `config/benchmark.yaml`: the benchmark settings a project configures, validated at load.

use std::path::{Path, PathBuf};

use podium_run_mode::RunMode;
use serde::Serialize;
use serde_yaml::Value;

use crate::error::{BenchError, Result};
use crate::harness::{HarnessSettings, InputSpec};

/// `config/benchmark.yaml`, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkConfig {
    /// `run.mode` (None = inherit the HPO config's mode).
    pub run_mode: Option<RunMode>,
    /// Batch sizes, in order.
    pub batch_sizes: Vec<usize>,
    /// Sequence length.
    pub max_length: usize,
    /// Warmup passes.
    pub warmup: usize,
    /// Minimum timed passes.
    pub iterations: usize,
    /// Minimum timed seconds.
    pub min_duration_s: f64,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Compute threads; None = physical cores.
    pub threads: Option<usize>,
    /// Input source.
    pub input: InputSpec,
}

impl Default for BenchmarkConfig {
    fn default() -> Self {
        BenchmarkConfig {
            run_mode: None,
            batch_sizes: vec![1, 8, 32],
            max_length: 128,
            warmup: 10,
            iterations: 100,
            min_duration_s: 1.0,
            device: "cpu".into(),
            threads: None,
            input: InputSpec::Synthetic,
        }
    }
}

const BENCHMARK_KEYS: [&str; 10] = [
    "run",
    "batch_sizes",
    "max_length",
    "warmup",
    "iterations",
    "min_duration_s",
    "device",
    "threads",
    "input",
    "test_data_path",
];

impl BenchmarkConfig {
    /// The file name under the config directory.
    pub const FILE: &'static str = "benchmark.yaml";

    /// Loads and validates `path`; absent keys take the defaults of DESIGN §6.
    pub fn from_file(path: &Path) -> Result<BenchmarkConfig> {
        let text = std::fs::read_to_string(path).map_err(|source| BenchError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text, path)
    }

    /// Parses and validates YAML text (`path` is used in errors and to resolve a relative
    /// `test_data_path` is NOT done: paths are kept as written).
    pub fn from_yaml_str(text: &str, path: &Path) -> Result<BenchmarkConfig> {
        let invalid = |key: &str, message: String| BenchError::Config {
            file: path.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let doc: Value = serde_yaml::from_str(text)
            .map_err(|err| invalid("<document>", format!("invalid YAML: {err}")))?;
        let mut config = BenchmarkConfig::default();
        let map = match &doc {
            Value::Null => return Ok(config),
            Value::Mapping(map) => map,
            _ => return Err(invalid("<document>", "expected a mapping".into())),
        };
        for key in map.keys() {
            let name = key.as_str().unwrap_or_default();
            if !BENCHMARK_KEYS.contains(&name) {
                return Err(invalid(
                    &yaml_key_text(key),
                    format!("unknown key; expected one of {}", BENCHMARK_KEYS.join(", ")),
                ));
            }
        }
        if let Some(run) = map.get("run") {
            match run {
                Value::Null => {}
                Value::Mapping(run_map) => {
                    if let Some(key) = run_map.keys().find(|k| k.as_str() != Some("mode")) {
                        return Err(invalid(
                            &format!("run.{}", yaml_key_text(key)),
                            "unknown key; expected mode".into(),
                        ));
                    }
                }
                _ => return Err(invalid("run", "expected a mapping".into())),
            }
        }
        config.run_mode = RunMode::from_config_value(&doc).map_err(|err| err.in_file(path))?;
        let positive = |key: &str, value: &Value| -> Result<usize> {
            value
                .as_u64()
                .filter(|n| *n > 0)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(
                        key,
                        format!("expected a positive integer, found {}", show(value)),
                    )
                })
        };
        let non_negative = |key: &str, value: &Value| -> Result<usize> {
            value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    invalid(
                        key,
                        format!("expected a non-negative integer, found {}", show(value)),
                    )
                })
        };
        if let Some(value) = map.get("batch_sizes") {
            let Value::Sequence(items) = value else {
                return Err(invalid(
                    "batch_sizes",
                    format!("expected a list, found {}", show(value)),
                ));
            };
            if items.is_empty() {
                return Err(invalid("batch_sizes", "must not be empty".into()));
            }
            config.batch_sizes = items
                .iter()
                .map(|item| positive("batch_sizes", item))
                .collect::<Result<_>>()?;
        }
        if let Some(value) = map.get("max_length") {
            config.max_length = positive("max_length", value)?;
        }
        if let Some(value) = map.get("warmup") {
            config.warmup = non_negative("warmup", value)?;
        }
        if let Some(value) = map.get("iterations") {
            config.iterations = positive("iterations", value)?;
        }
        if let Some(value) = map.get("min_duration_s") {
            config.min_duration_s = value
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| {
                    invalid(
                        "min_duration_s",
                        format!("expected a number ≥ 0, found {}", show(value)),
                    )
                })?;
        }
        if let Some(value) = map.get("device") {
            let device = value.as_str().ok_or_else(|| {
                invalid(
                    "device",
                    format!("expected cpu or cuda:N, found {}", show(value)),
                )
            })?;
            let valid = device == "cpu"
                || device
                    .strip_prefix("cuda:")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !valid {
                return Err(invalid(
                    "device",
                    format!("expected cpu or cuda:N, found {device:?}"),
                ));
            }
            if device != "cpu" && !cfg!(feature = "cuda") {
                return Err(invalid(
                    "device",
                    format!("{device} needs podium built with the `cuda` cargo feature"),
                ));
            }
            config.device = device.to_string();
        }
        if let Some(value) = map.get("threads") {
            config.threads = match value {
                Value::Null => None,
                other => Some(positive("threads", other)?),
            };
        }
        let test_data_path = match map.get("test_data_path") {
            None | Some(Value::Null) => None,
            Some(Value::String(path)) => Some(PathBuf::from(path)),
            Some(other) => {
                return Err(invalid(
                    "test_data_path",
                    format!("expected a path, found {}", show(other)),
                ));
            }
        };
        let input = match map.get("input") {
            None | Some(Value::Null) => "synthetic",
            Some(Value::String(input)) => input.as_str(),
            Some(other) => {
                return Err(invalid(
                    "input",
                    format!("expected synthetic or test_data, found {}", show(other)),
                ));
            }
        };
        config.input = match input {
            "synthetic" => InputSpec::Synthetic,
            "test_data" => InputSpec::TestData {
                path: test_data_path.ok_or_else(|| {
                    invalid("test_data_path", "required when input is test_data".into())
                })?,
            },
            other => {
                return Err(invalid(
                    "input",
                    format!("expected synthetic or test_data, found {other:?}"),
                ));
            }
        };
        Ok(config)
    }

    /// The harness settings of this config.
    pub fn harness_settings(&self) -> HarnessSettings {
        HarnessSettings {
            batch_sizes: self.batch_sizes.clone(),
            warmup: self.warmup,
            iterations: self.iterations,
            min_duration_s: self.min_duration_s,
            threads: self.threads,
            progress: true,
        }
    }
}

fn yaml_key_text(key: &Value) -> String {
    key.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| show(key))
}

fn show(value: &Value) -> String {
    serde_yaml::to_string(value)
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn load(yaml: &str) -> Result<BenchmarkConfig> {
        BenchmarkConfig::from_yaml_str(yaml, Path::new("config/benchmark.yaml"))
    }

    #[test]
    fn benchmark_config_defaults_and_values() {
        assert_eq!(load("").unwrap(), BenchmarkConfig::default());
        let config = load(
            "run: {mode: force_new}\nbatch_sizes: [1, 4]\nmax_length: 64\nwarmup: 0\niterations: 5\nmin_duration_s: 0.5\nthreads: 2\ninput: test_data\ntest_data_path: data/test.jsonl\n",
        )
        .unwrap();
        assert_eq!(config.run_mode, Some(RunMode::ForceNew));
        assert_eq!(config.batch_sizes, vec![1, 4]);
        assert_eq!(config.threads, Some(2));
        assert_eq!(
            config.input,
            InputSpec::TestData {
                path: "data/test.jsonl".into()
            }
        );
        assert_eq!(config.harness_settings().iterations, 5);
    }

    #[test]
    fn the_shipped_config_loads() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/benchmark.yaml");
        let config = BenchmarkConfig::from_file(&file).unwrap();
        assert_eq!(config.batch_sizes, vec![1, 8, 32]);
        assert_eq!(config.run_mode, None);
    }

    #[test]
    fn benchmark_config_errors_name_file_and_key() {
        for (yaml, key) in [
            ("batch_size: [1]", "batch_size"),
            ("run: {mode: sometimes}", "run.mode"),
            ("run: {moed: force_new}", "run.moed"),
            ("batch_sizes: []", "batch_sizes"),
            ("batch_sizes: [1, 0]", "batch_sizes"),
            ("batch_sizes: [1, -8]", "batch_sizes"),
            ("device: gpu", "device"),
            ("input: test_data", "test_data_path"),
            ("input: live", "input"),
            ("threads: 0", "threads"),
            ("min_duration_s: -1", "min_duration_s"),
        ] {
            let err = load(yaml).unwrap_err().to_string();
            assert!(err.contains("config/benchmark.yaml"), "{yaml}: {err}");
            assert!(err.contains(key), "{yaml}: {err}");
        }
    }

    #[test]
    fn cuda_device_needs_the_feature() {
        let result = load("device: cuda:0");
        if cfg!(feature = "cuda") {
            assert_eq!(result.unwrap().device, "cuda:0");
        } else {
            let err = result.unwrap_err().to_string();
            assert!(err.contains("`cuda` cargo feature"), "{err}");
        }
    }
}
