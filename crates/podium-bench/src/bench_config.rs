//! `config/benchmark.yaml`, laid out as the pipeline lays it out, validated at load:
//!
//! ```yaml
//! run: {mode: reuse_if_exists}     # null = inherit the HPO config's mode
//! benchmarking:
//!   batch_sizes: [1]               # the pipeline's keys and defaults...
//!   iterations: 10
//!   warmup_iterations: 10
//!   max_length: 512
//!   device: null                   # null = auto (cpu unless built with `cuda`)
//!   test_data: null                # JSON/JSONL records; null = synthetic inputs
//!   min_duration_s: 1.0            # ...and podium's own knobs
//!   threads: null
//!   input: null                    # synthetic | test_data; null = test_data when set
//! output: {filename: benchmark.json}
//! ```
//!
//! Every knob has a bound ([`LIMITS`]) so an absurd value is refused here, naming the file and
//! key, instead of aborting a benchmark half-way. The bounds are checked in one place,
//! [`BenchmarkConfig::validate`], for the values read from the file and for those a command's
//! options put over them (`podium bench-model --iterations …`) alike.

use std::path::{Path, PathBuf};

use podium_run_mode::RunMode;
use serde::Serialize;
use serde_yaml::Value;

use crate::error::{BenchError, Result};
use crate::harness::{HarnessSettings, InputSpec};

/// The bounds of each benchmark knob (inclusive). The model-dependent limits (its
/// `max_position_embeddings`, memory) are checked when the model is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    /// Largest batch size.
    pub max_batch_size: usize,
    /// Most batch sizes in one config.
    pub max_batch_sizes: usize,
    /// Longest sequence (tokens).
    pub max_length: usize,
    /// Most tokens in one batch (batch size × max_length).
    pub max_batch_tokens: usize,
    /// Most timed iterations per batch size.
    pub max_iterations: usize,
    /// Most warmup iterations per batch size.
    pub max_warmup: usize,
    /// Longest minimum timed duration per batch size (seconds).
    pub max_min_duration_s: f64,
    /// Most compute threads.
    pub max_threads: usize,
}

/// The bounds podium enforces.
pub const LIMITS: Limits = Limits {
    max_batch_size: 4096,
    max_batch_sizes: 64,
    max_length: 8192,
    max_batch_tokens: 1 << 20,
    max_iterations: 1_000_000,
    max_warmup: 100_000,
    max_min_duration_s: 3600.0,
    max_threads: 1024,
};

/// `config/benchmark.yaml`, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkConfig {
    /// `run.mode` (None = inherit the HPO config's mode).
    pub run_mode: Option<RunMode>,
    /// `benchmarking.batch_sizes`, in order.
    pub batch_sizes: Vec<usize>,
    /// `benchmarking.max_length`: sequence length.
    pub max_length: usize,
    /// `benchmarking.warmup_iterations`: untimed passes per batch size.
    pub warmup: usize,
    /// `benchmarking.iterations`: minimum timed passes.
    pub iterations: usize,
    /// `benchmarking.min_duration_s` (podium's): minimum timed seconds.
    pub min_duration_s: f64,
    /// `benchmarking.device`: `cpu` or `cuda:N` (null/auto resolved at load).
    pub device: String,
    /// `benchmarking.threads` (podium's): compute threads; None = physical cores.
    pub threads: Option<usize>,
    /// Input source (`benchmarking.input` / `benchmarking.test_data`).
    pub input: InputSpec,
    /// `benchmarking.test_data`, as written.
    pub test_data: Option<PathBuf>,
    /// `output.filename`: the result file name in each benchmark folder.
    pub output_filename: String,
}

impl Default for BenchmarkConfig {
    /// The pipeline's defaults.
    fn default() -> Self {
        BenchmarkConfig {
            run_mode: None,
            batch_sizes: vec![1],
            max_length: 512,
            warmup: 10,
            iterations: 10,
            min_duration_s: 1.0,
            device: "cpu".into(),
            threads: None,
            input: InputSpec::Synthetic,
            test_data: None,
            output_filename: "benchmark.json".into(),
        }
    }
}

const TOP_KEYS: [&str; 3] = ["run", "benchmarking", "output"];
const BENCHMARKING_KEYS: [&str; 10] = [
    "batch_sizes",
    "iterations",
    "warmup_iterations",
    "max_length",
    "device",
    "test_data",
    "metric",
    "min_duration_s",
    "threads",
    "input",
];
/// Keys of podium's earlier flat layout, for a hint.
const FLAT_KEYS: [&str; 9] = [
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

    /// Loads and validates `path`; absent keys take the pipeline's defaults.
    pub fn from_file(path: &Path) -> Result<BenchmarkConfig> {
        let text = podium_variants::fs::read_config_text(path).map_err(|err| match err {
            podium_variants::fs::ReadError::Io { source, .. } => BenchError::Read {
                file: path.to_path_buf(),
                source,
            },
            refused => BenchError::Config {
                file: path.to_path_buf(),
                key: "<document>".into(),
                message: refused.reason(),
            },
        })?;
        Self::from_yaml_str(&text, path)
    }

    /// Parses and validates YAML text (`path` is used in errors; a relative `test_data` path
    /// is kept as written and resolved against the project root when measuring).
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
            if !TOP_KEYS.contains(&name) {
                let hint = if FLAT_KEYS.contains(&name) {
                    " (benchmark settings go under `benchmarking:`)"
                } else {
                    ""
                };
                return Err(invalid(
                    &yaml_key_text(key),
                    format!("unknown key; expected one of {}{hint}", TOP_KEYS.join(", ")),
                ));
            }
        }
        let section = |name: &str, allowed: &[&str]| -> Result<Option<&serde_yaml::Mapping>> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Mapping(section)) => {
                    if let Some(key) = section
                        .keys()
                        .find(|k| !allowed.contains(&k.as_str().unwrap_or_default()))
                    {
                        return Err(invalid(
                            &format!("{name}.{}", yaml_key_text(key)),
                            format!("unknown key; expected one of {}", allowed.join(", ")),
                        ));
                    }
                    Ok(Some(section))
                }
                Some(other) => Err(invalid(
                    name,
                    format!("expected a mapping, found {}", show(other)),
                )),
            }
        };
        section("run", &["mode"])?;
        config.run_mode = RunMode::from_config_value(&doc).map_err(|err| err.in_file(path))?;
        if let Some(output) = section("output", &["filename"])? {
            match output.get("filename") {
                None | Some(Value::Null) => {}
                Some(Value::String(name))
                    if !name.is_empty()
                        && !name.contains(['/', '\\'])
                        && name != "."
                        && name != ".." =>
                {
                    config.output_filename = name.clone();
                }
                Some(other) => {
                    return Err(invalid(
                        "output.filename",
                        format!("expected a plain file name, found {}", show(other)),
                    ));
                }
            }
        }
        let Some(bench) = section("benchmarking", &BENCHMARKING_KEYS)? else {
            return Ok(config);
        };
        let key_of = |name: &str| format!("benchmarking.{name}");
        // The types here; the bounds in `validate`, once everything is read.
        let whole = |name: &str, value: &Value| -> Result<usize> {
            value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| invalid(&key_of(name), out_of_bounds(name, &show(value))))
        };
        if let Some(value) = bench.get("batch_sizes") {
            let Value::Sequence(items) = value else {
                return Err(invalid(
                    &key_of("batch_sizes"),
                    format!("expected a list, found {}", show(value)),
                ));
            };
            if items.len() > LIMITS.max_batch_sizes {
                // Not even read: a list of a million sizes is refused as it is.
                return Err(invalid(
                    &key_of("batch_sizes"),
                    format!(
                        "expected 1 to {} batch sizes, found {}",
                        LIMITS.max_batch_sizes,
                        items.len()
                    ),
                ));
            }
            config.batch_sizes = items
                .iter()
                .map(|item| whole("batch_sizes", item))
                .collect::<Result<_>>()?;
        }
        if let Some(value) = bench.get("max_length") {
            config.max_length = whole("max_length", value)?;
        }
        if let Some(value) = bench.get("warmup_iterations") {
            config.warmup = whole("warmup_iterations", value)?;
        }
        if let Some(value) = bench.get("iterations") {
            config.iterations = whole("iterations", value)?;
        }
        if let Some(value) = bench.get("min_duration_s") {
            config.min_duration_s = value.as_f64().ok_or_else(|| {
                invalid(
                    &key_of("min_duration_s"),
                    out_of_bounds("min_duration_s", &show(value)),
                )
            })?;
        }
        match bench.get("device") {
            None | Some(Value::Null) => {}
            Some(Value::String(device)) => {
                let device = match device.as_str() {
                    "auto" => "cpu".to_string(),
                    "cuda" | "gpu" => "cuda:0".to_string(),
                    other => other.to_string(),
                };
                let valid = device == "cpu"
                    || device
                        .strip_prefix("cuda:")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if !valid {
                    return Err(invalid(
                        &key_of("device"),
                        format!("expected null, auto, cpu, cuda or cuda:N, found {device:?}"),
                    ));
                }
                if device != "cpu" && !cfg!(feature = "cuda") {
                    return Err(invalid(
                        &key_of("device"),
                        format!("{device} needs podium built with the `cuda` cargo feature"),
                    ));
                }
                config.device = device;
            }
            Some(other) => {
                return Err(invalid(
                    &key_of("device"),
                    format!(
                        "expected null, auto, cpu, cuda or cuda:N, found {}",
                        show(other)
                    ),
                ));
            }
        }
        if let Some(value) = bench.get("threads") {
            config.threads = match value {
                Value::Null => None,
                other => Some(whole("threads", other)?),
            };
        }
        config.test_data = match bench.get("test_data") {
            None | Some(Value::Null) => None,
            Some(Value::String(path)) if !path.is_empty() => Some(PathBuf::from(path)),
            Some(other) => {
                return Err(invalid(
                    &key_of("test_data"),
                    format!("expected a path, found {}", show(other)),
                ));
            }
        };
        let input = match bench.get("input") {
            None | Some(Value::Null) => None,
            Some(Value::String(input)) => Some(input.as_str()),
            Some(other) => {
                return Err(invalid(
                    &key_of("input"),
                    format!("expected synthetic or test_data, found {}", show(other)),
                ));
            }
        };
        config.input = match (input, &config.test_data) {
            (None, None) | (Some("synthetic"), _) => InputSpec::Synthetic,
            (None | Some("test_data"), Some(path)) => InputSpec::TestData { path: path.clone() },
            (Some("test_data"), None) => {
                return Err(invalid(
                    &key_of("test_data"),
                    "required when input is test_data".into(),
                ));
            }
            (Some(other), _) => {
                return Err(invalid(
                    &key_of("input"),
                    format!("expected synthetic or test_data, found {other:?}"),
                ));
            }
        };
        config.validate(path, &key_of)?;
        Ok(config)
    }

    /// Checks every knob against [`LIMITS`]: the one check of the benchmark settings, for the
    /// values of `file` and for a command's options put over them. `named(key)` says where the
    /// value of the knob `key` (its name under `benchmarking:`) came from, for the error
    /// (`benchmarking.iterations`, or `--iterations`); `file` is `<options>` for options.
    ///
    /// ```
    /// use std::path::Path;
    /// use podium_bench::bench_config::BenchmarkConfig;
    /// let mut config = BenchmarkConfig::default();
    /// config.min_duration_s = 1e20;
    /// let err = config
    ///     .validate(Path::new("<options>"), &|key| format!("--{}", key.replace('_', "-")))
    ///     .unwrap_err()
    ///     .to_string();
    /// assert!(err.contains("--min-duration-s") && err.contains("0 to 3600"), "{err}");
    /// ```
    pub fn validate(&self, file: &Path, named: &dyn Fn(&str) -> String) -> Result<()> {
        let invalid = |key: &str, message: String| BenchError::Config {
            file: file.to_path_buf(),
            key: named(key),
            message,
        };
        let within = |key: &str, value: usize| -> Result<()> {
            let (min, max) = integer_bounds(key);
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(invalid(key, out_of_bounds(key, &value.to_string())))
            }
        };
        if self.batch_sizes.is_empty() || self.batch_sizes.len() > LIMITS.max_batch_sizes {
            return Err(invalid(
                "batch_sizes",
                format!(
                    "expected 1 to {} batch sizes, found {}",
                    LIMITS.max_batch_sizes,
                    self.batch_sizes.len()
                ),
            ));
        }
        for (index, size) in self.batch_sizes.iter().enumerate() {
            within("batch_sizes", *size)?;
            if self.batch_sizes[..index].contains(size) {
                return Err(invalid(
                    "batch_sizes",
                    format!("batch size {size} is listed twice"),
                ));
            }
        }
        within("max_length", self.max_length)?;
        if let Some(largest) = self.batch_sizes.iter().max()
            && largest * self.max_length > LIMITS.max_batch_tokens
        {
            return Err(invalid(
                "batch_sizes",
                format!(
                    "batch size {largest} × max_length {} = {} tokens in one batch; at most {} are allowed",
                    self.max_length,
                    largest * self.max_length,
                    LIMITS.max_batch_tokens
                ),
            ));
        }
        within("warmup_iterations", self.warmup)?;
        within("iterations", self.iterations)?;
        let seconds = self.min_duration_s;
        if !(seconds.is_finite() && (0.0..=LIMITS.max_min_duration_s).contains(&seconds)) {
            return Err(invalid(
                "min_duration_s",
                out_of_bounds("min_duration_s", &seconds.to_string()),
            ));
        }
        if let Some(threads) = self.threads {
            within("threads", threads)?;
        }
        Ok(())
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

/// The inclusive range of each whole-number knob, by its key under `benchmarking:`.
fn integer_bounds(key: &str) -> (usize, usize) {
    match key {
        "batch_sizes" => (1, LIMITS.max_batch_size),
        "max_length" => (1, LIMITS.max_length),
        "warmup_iterations" => (0, LIMITS.max_warmup),
        "iterations" => (1, LIMITS.max_iterations),
        "threads" => (1, LIMITS.max_threads),
        _ => (0, usize::MAX),
    }
}

/// What a knob must be, having found `found`.
fn out_of_bounds(key: &str, found: &str) -> String {
    if key == "min_duration_s" {
        return format!(
            "expected seconds from 0 to {}, found {found}",
            LIMITS.max_min_duration_s
        );
    }
    let (min, max) = integer_bounds(key);
    format!("expected an integer from {min} to {max}, found {found}")
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
            "run: {mode: force_new}\nbenchmarking:\n  batch_sizes: [1, 4]\n  max_length: 64\n  warmup_iterations: 0\n  iterations: 5\n  min_duration_s: 0.5\n  threads: 2\n  test_data: data/test.jsonl\n  device: null\n  metric: macro-f1\noutput:\n  filename: bench.json\n",
        )
        .unwrap();
        assert_eq!(config.run_mode, Some(RunMode::ForceNew));
        assert_eq!(config.batch_sizes, vec![1, 4]);
        assert_eq!(config.threads, Some(2));
        assert_eq!(config.device, "cpu");
        assert_eq!(config.output_filename, "bench.json");
        assert_eq!(
            config.input,
            InputSpec::TestData {
                path: "data/test.jsonl".into()
            }
        );
        assert_eq!(config.harness_settings().iterations, 5);
        let synthetic = load("benchmarking:\n  test_data: t.jsonl\n  input: synthetic\n").unwrap();
        assert_eq!(synthetic.input, InputSpec::Synthetic);
    }

    #[test]
    fn the_shipped_config_loads() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/benchmark.yaml");
        let config = BenchmarkConfig::from_file(&file).unwrap();
        assert!(!config.batch_sizes.is_empty());
        assert_eq!(config.output_filename, "benchmark.json");
    }

    #[test]
    fn benchmark_config_errors_name_file_and_key() {
        for (yaml, key) in [
            ("batch_sizes: [1]", "batch_sizes"),
            ("benchmarking: {batch_size: [1]}", "benchmarking.batch_size"),
            ("run: {mode: sometimes}", "run.mode"),
            ("run: {moed: force_new}", "run.moed"),
            ("output: {filename: ../x.json}", "output.filename"),
            ("output: {name: x}", "output.name"),
            (
                "benchmarking: {batch_sizes: []}",
                "benchmarking.batch_sizes",
            ),
            (
                "benchmarking: {batch_sizes: [1, 0]}",
                "benchmarking.batch_sizes",
            ),
            (
                "benchmarking: {batch_sizes: [1, -8]}",
                "benchmarking.batch_sizes",
            ),
            (
                "benchmarking: {batch_sizes: [1, 1]}",
                "benchmarking.batch_sizes",
            ),
            ("benchmarking: {device: tpu}", "benchmarking.device"),
            ("benchmarking: {input: test_data}", "benchmarking.test_data"),
            ("benchmarking: {input: live}", "benchmarking.input"),
            ("benchmarking: {threads: 0}", "benchmarking.threads"),
            (
                "benchmarking: {min_duration_s: -1}",
                "benchmarking.min_duration_s",
            ),
            ("benchmarking: 3", "benchmarking"),
        ] {
            let err = load(yaml).unwrap_err().to_string();
            assert!(err.contains("config/benchmark.yaml"), "{yaml}: {err}");
            assert!(err.contains(key), "{yaml}: {err}");
        }
    }

    /// Absurd sizes are refused at load, each naming its key and the bound.
    #[test]
    fn every_knob_is_bounded() {
        for (yaml, key) in [
            ("batch_sizes: [1000000]", "benchmarking.batch_sizes"),
            (
                "batch_sizes: [4096]\n  max_length: 512",
                "benchmarking.batch_sizes",
            ),
            ("max_length: 1000000000", "benchmarking.max_length"),
            ("max_length: 1.0e9", "benchmarking.max_length"),
            ("iterations: 1000000000000", "benchmarking.iterations"),
            ("iterations: 1e12", "benchmarking.iterations"),
            (
                "warmup_iterations: 1000000000",
                "benchmarking.warmup_iterations",
            ),
            ("min_duration_s: 1e308", "benchmarking.min_duration_s"),
            ("min_duration_s: .inf", "benchmarking.min_duration_s"),
            ("min_duration_s: .nan", "benchmarking.min_duration_s"),
            ("threads: 1000000", "benchmarking.threads"),
            ("threads: 18446744073709551616", "benchmarking.threads"),
            (
                &format!(
                    "batch_sizes: [{}]",
                    (1..=65)
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "benchmarking.batch_sizes",
            ),
        ] {
            let err = load(&format!("benchmarking:\n  {yaml}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{yaml}: {err}");
        }
        let at_limits = load(&format!(
            "benchmarking:\n  batch_sizes: [{}]\n  max_length: 256\n  iterations: {}\n  warmup_iterations: {}\n  min_duration_s: {}\n  threads: {}\n",
            LIMITS.max_batch_size, LIMITS.max_iterations, LIMITS.max_warmup, LIMITS.max_min_duration_s, LIMITS.max_threads
        ))
        .unwrap();
        assert_eq!(at_limits.batch_sizes, vec![LIMITS.max_batch_size]);
    }

    /// Random text and random YAML never panic the loader.
    #[test]
    fn random_text_never_panics() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let pieces = [
            "benchmarking:",
            "\n  ",
            "batch_sizes: ",
            "[1, 1e9]",
            "max_length: ",
            "-3",
            "1e308",
            "&a [1, *a]",
            "*a",
            "run: {mode: ",
            "}",
            "{",
            "threads: ",
            "18446744073709551616",
            "output: {filename: ",
            "..",
            "\u{0}",
            "- ",
            ": :",
            "'",
            "\"",
        ];
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..12 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            let _ = load(&text);
        }
    }

    #[test]
    fn cuda_device_needs_the_feature() {
        let result = load("benchmarking: {device: cuda:0}");
        if cfg!(feature = "cuda") {
            assert_eq!(result.unwrap().device, "cuda:0");
        } else {
            let err = result.unwrap_err().to_string();
            assert!(err.contains("`cuda` cargo feature"), "{err}");
        }
    }
}
