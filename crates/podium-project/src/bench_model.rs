//! `podium bench-model CHECKPOINT_DIR`: time one checkpoint directory with podium-runtime, no
//! MLflow involved. Settings come from `benchmark.yaml` in the config folder when it exists
//! (else the built-in defaults); every override of the request replaces its key.
//!
//! Two steps, so that a caller can say what it is about to time before the (long) measurement:
//! [`BenchModel::load`] validates the settings and loads the checkpoint, [`BenchModel::run`]
//! times it (and profiles it when asked) and returns the [`BenchModelReport`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use podium_bench::BenchError;
use podium_bench::bench_config::BenchmarkConfig;
use podium_bench::harness::{self, HarnessSettings, InputSpec};
use podium_bench::runtime::{self, Model};
use serde::Serialize;

pub use podium_bench::harness::{BenchmarkReport, LatencyStats};
pub use podium_bench::inputs::TokenizationStats;
pub use podium_bench::runtime::{Execution, ModelInfo, Stage, StageTime};

use crate::error::{ProjectError, Result};

/// What to time, and how: `None` keeps the `benchmark.yaml` key (or its default).
#[derive(Debug, Clone, Default)]
pub struct BenchModelRequest {
    /// Checkpoint directory (config.json, model.safetensors or pytorch_model.bin,
    /// tokenizer.json).
    pub checkpoint_dir: PathBuf,
    /// The config folder whose `benchmark.yaml` gives the settings, when it has one.
    pub config_dir: PathBuf,
    /// The project root: `benchmark.yaml`'s test-data path is relative to it.
    pub root: PathBuf,
    /// `batch_sizes`.
    pub batch_sizes: Option<Vec<usize>>,
    /// `max_length`.
    pub max_length: Option<usize>,
    /// `warmup`.
    pub warmup: Option<usize>,
    /// `iterations`.
    pub iterations: Option<usize>,
    /// `min_duration_s`.
    pub min_duration_s: Option<f64>,
    /// `threads`.
    pub threads: Option<usize>,
    /// Test data (relative to the current directory) instead of the configured input.
    pub test_data: Option<PathBuf>,
    /// `device` (`cpu`, `cuda:N`).
    pub device: Option<String>,
    /// The execution path.
    pub execution: Execution,
    /// Also profile each batch size stage by stage, in separate passes after the timed ones.
    pub profile: bool,
    /// Draw the harness's progress bar on stderr.
    pub progress: bool,
}

/// A checkpoint loaded and its settings resolved, ready to be timed.
#[derive(Debug)]
pub struct BenchModel {
    model: Model,
    config: BenchmarkConfig,
    settings: HarnessSettings,
    root: PathBuf,
    profile: bool,
}

/// Where one batch size's forward pass spends its time (`--profile`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileSummary {
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// Profiled passes.
    pub passes: usize,
    /// Milliseconds per pass, every stage.
    pub total_ms_per_pass: f64,
    /// Milliseconds per pass in matrix multiplies.
    pub matmul_ms_per_pass: f64,
    /// Each stage's time and share.
    pub stages: Vec<StageTime>,
}

/// What `podium bench-model` reports (its JSON: the harness report's fields, its metrics as
/// the pipeline names them, and the profile when asked for).
#[derive(Debug, Clone, Serialize)]
pub struct BenchModelReport {
    /// The harness's report.
    #[serde(flatten)]
    pub report: BenchmarkReport,
    /// The metrics a benchmark run would log.
    pub metrics: BTreeMap<String, f64>,
    /// Per batch size, where the time goes (`profile` requested).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<ProfileSummary>>,
}

impl BenchModel {
    /// Resolves the settings (`benchmark.yaml`, then the request's overrides) and loads the
    /// checkpoint on the configured device.
    pub fn load(request: &BenchModelRequest) -> Result<BenchModel> {
        let config_file = request.config_dir.join(BenchmarkConfig::FILE);
        let mut config = if config_file.is_file() {
            BenchmarkConfig::from_file(&config_file)
                .map_err(ProjectError::bench("loading the benchmark settings"))?
        } else {
            BenchmarkConfig::default()
        };
        apply_overrides(&mut config, request)?;
        // The overrides go through the bounds benchmark.yaml's values went through, and a
        // refused value is named by where it came from.
        let from_overrides = Path::new("<options>");
        let file = if request.sets_a_knob() {
            from_overrides
        } else {
            config_file.as_path()
        };
        config
            .validate(file, &|key| request.source_of(key))
            .map_err(ProjectError::bench("checking the benchmark settings"))?;
        let mut settings = config.harness_settings();
        settings.progress = request.progress;
        let device = runtime::parse_device(&config.device)
            .map_err(runtime_error("choosing the benchmark device"))?;
        let dir = &request.checkpoint_dir;
        let model = Model::load_with(dir, &device, request.execution)
            .map_err(runtime_error(format!("loading {}", dir.display())))?;
        Ok(BenchModel {
            model,
            config,
            settings,
            root: request.root.clone(),
            profile: request.profile,
        })
    }

    /// The loaded checkpoint: architecture, head, device and execution path.
    pub fn info(&self) -> &ModelInfo {
        self.model.info()
    }

    /// Times the checkpoint at every batch size, then profiles it when asked.
    pub fn run(&self) -> Result<BenchModelReport> {
        let timing = format!("timing {}", self.model.info().checkpoint_dir.display());
        // Paths in benchmark.yaml are written from the project root; a test-data override was
        // made absolute when the request was applied.
        let source = self
            .config
            .input
            .prepare(&self.model, &self.root, self.config.max_length)
            .map_err(runtime_error(&timing))?;
        let report =
            harness::run(&self.model, &self.settings, &source).map_err(runtime_error(&timing))?;
        let profile = if self.profile {
            let profiles = harness::profile(&self.model, &self.settings, &source)
                .map_err(runtime_error(&timing))?;
            Some(
                profiles
                    .iter()
                    .map(|batch| ProfileSummary {
                        batch_size: batch.batch_size,
                        passes: batch.profile.passes(),
                        total_ms_per_pass: batch.profile.total_ms_per_pass(),
                        matmul_ms_per_pass: batch.profile.matmul_ms_per_pass(),
                        stages: batch.profile.stages(),
                    })
                    .collect(),
            )
        } else {
            None
        };
        Ok(BenchModelReport {
            metrics: report.metrics(),
            report,
            profile,
        })
    }
}

impl BenchModelRequest {
    /// The option (as `podium bench-model` spells it) that sets the benchmark knob `key` (its
    /// name under `benchmarking:`), or the key in benchmark.yaml when no override sets it:
    /// where a refused value came from.
    fn source_of(&self, key: &str) -> String {
        let option = match key {
            "batch_sizes" => self.batch_sizes.is_some().then_some("--batch-sizes"),
            "max_length" => self.max_length.is_some().then_some("--max-length"),
            "warmup_iterations" => self.warmup.is_some().then_some("--warmup"),
            "iterations" => self.iterations.is_some().then_some("--iterations"),
            "min_duration_s" => self.min_duration_s.is_some().then_some("--min-duration-s"),
            "threads" => self.threads.is_some().then_some("--threads"),
            _ => None,
        };
        option.map_or_else(|| format!("benchmarking.{key}"), str::to_string)
    }

    /// Whether an override sets any bounded knob.
    fn sets_a_knob(&self) -> bool {
        self.batch_sizes.is_some()
            || self.max_length.is_some()
            || self.warmup.is_some()
            || self.iterations.is_some()
            || self.min_duration_s.is_some()
            || self.threads.is_some()
    }
}

fn apply_overrides(config: &mut BenchmarkConfig, request: &BenchModelRequest) -> Result<()> {
    if let Some(batch_sizes) = &request.batch_sizes {
        config.batch_sizes = batch_sizes.clone();
    }
    if let Some(max_length) = request.max_length {
        config.max_length = max_length;
    }
    if let Some(warmup) = request.warmup {
        config.warmup = warmup;
    }
    if let Some(iterations) = request.iterations {
        config.iterations = iterations;
    }
    if let Some(min_duration_s) = request.min_duration_s {
        config.min_duration_s = min_duration_s;
    }
    if let Some(threads) = request.threads {
        config.threads = Some(threads);
    }
    if let Some(path) = &request.test_data {
        config.input = InputSpec::TestData {
            path: absolute(path)?,
        };
    }
    if let Some(device) = &request.device {
        config.device = device.clone();
    }
    Ok(())
}

/// Wraps a runtime error (loading, feeding, timing a checkpoint) with what was being done.
fn runtime_error<E: Into<BenchError>>(
    context: impl Into<String>,
) -> impl FnOnce(E) -> ProjectError {
    let wrap = ProjectError::bench(context);
    move |err| wrap(err.into())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|err| {
        ProjectError::Invalid(format!("resolving --test-data {}: {err}", path.display()))
    })
}
