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
    /// The CPU that measured (its model and SIMD level: the report's provenance).
    pub host: podium_runtime::host::HostInfo,
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
            host: podium_runtime::host::HostInfo::detect(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_failed_measurement_keeps_the_runtime_error_as_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = dir.path().join("best_trial_checkpoint");
        std::fs::create_dir(&checkpoint).unwrap();
        std::fs::write(checkpoint.join("config.json"), "{ not json").unwrap();
        let measurer = CheckpointMeasurer::new(BenchmarkConfig::default(), dir.path());

        let error = measurer
            .measure(&checkpoint)
            .map_err(BenchError::measuring("run-7", &checkpoint))
            .unwrap_err();

        let BenchError::Measure {
            run_id,
            checkpoint: measured,
            source,
        } = &error
        else {
            panic!("not a measurement error: {error:?}");
        };
        assert_eq!((run_id.as_str(), measured), ("run-7", &checkpoint));
        assert!(
            matches!(
                source.as_ref(),
                BenchError::Runtime(podium_runtime::RuntimeError::Json { file, .. })
                    if file.ends_with("config.json")
            ),
            "the runtime's own error is kept whole: {source:?}"
        );
        // The chain a reporter walks: the measurement, then the runtime's error naming the file.
        let chain: Vec<String> =
            std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect();
        assert_eq!(chain.len(), 2, "{chain:?}");
        assert!(
            chain[0].starts_with("benchmarking run run-7 ("),
            "{chain:?}"
        );
        assert!(chain[1].contains("config.json: invalid JSON"), "{chain:?}");
    }
}
