//! Measuring one checkpoint directory with the timing harness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::BenchError;
use crate::harness::{self, BenchmarkConfig, InputSpec};
use crate::inputs;
use crate::runtime::{self, Model, TOKENIZER_FILE};

/// What one measurement produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// `latency_batch_{b}_ms`, percentiles, `cv`, throughput, `threads`, …
    pub metrics: BTreeMap<String, f64>,
    /// Compute threads used.
    pub threads: usize,
    /// Warnings of the harness (noisy series).
    pub warnings: Vec<String>,
}

/// Measures a checkpoint directory. The orchestrator only needs this seam; the real one is
/// [`CheckpointMeasurer`].
pub trait Measurer: Send + Sync + std::fmt::Debug {
    /// Loads and times the checkpoint in `dir`.
    fn measure(&self, dir: &Path) -> Result<Measurement, BenchError>;
}

/// Loads the checkpoint with the candle runtime and times it with the settings of
/// `config/benchmark.yaml`.
#[derive(Debug, Clone)]
pub struct CheckpointMeasurer {
    config: BenchmarkConfig,
    /// Directory a relative `test_data_path` is resolved against (the project root).
    root: PathBuf,
}

impl CheckpointMeasurer {
    /// A measurer for `config`; relative test-data paths are taken from `root`.
    pub fn new(config: BenchmarkConfig, root: impl Into<PathBuf>) -> Self {
        Self {
            config,
            root: root.into(),
        }
    }
}

impl Measurer for CheckpointMeasurer {
    fn measure(&self, dir: &Path) -> Result<Measurement, BenchError> {
        let device = runtime::parse_device(&self.config.device)?;
        let model = Model::load(dir, &device)?;
        let mut settings = self.config.harness_settings();
        // The orchestrator draws one bar over all champions; a second one would fight it.
        settings.progress = false;
        let max_length = self.config.max_length;
        let model_config = model.config().clone();
        let report = match &self.config.input {
            InputSpec::Synthetic => {
                harness::run(&model, &settings, max_length, "synthetic", None, &|batch| {
                    inputs::synthetic_batch(&model_config, batch, max_length, inputs::DEFAULT_SEED)
                })?
            }
            InputSpec::TestData { path } => {
                let path = if path.is_relative() {
                    self.root.join(path)
                } else {
                    path.clone()
                };
                let records = inputs::load_records(&path)?;
                let tokenizer_file = dir.join(TOKENIZER_FILE);
                let tokenizer = inputs::load_tokenizer(&tokenizer_file)?;
                let data = inputs::tokenize(
                    &tokenizer,
                    &tokenizer_file,
                    &records,
                    max_length,
                    model_config.pad_token_id,
                )?;
                harness::run(
                    &model,
                    &settings,
                    max_length,
                    "test_data",
                    Some(data.stats.clone()),
                    &|batch| data.batch(batch),
                )?
            }
        };
        Ok(Measurement {
            metrics: report.metrics(),
            threads: report.threads,
            warnings: report.warnings,
        })
    }
}
