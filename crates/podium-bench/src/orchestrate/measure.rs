//! Measuring one checkpoint directory with the timing harness.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::BenchError;
use crate::bench_config::BenchmarkConfig;
use crate::harness;
use crate::runtime::{self, Model};

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
        let source = self
            .config
            .input
            .prepare(&model, &self.root, self.config.max_length)?;
        let report = harness::run(&model, &settings, &source)?;
        Ok(Measurement {
            metrics: report.metrics(),
            threads: report.threads,
            warnings: report.warnings,
        })
    }
}
