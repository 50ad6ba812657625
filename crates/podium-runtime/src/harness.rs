//! The timing harness: warmup, timed forward passes and latency statistics (the settings come
//! from `config/benchmark.yaml` in podium-bench, or from the caller).
//!
//! Each forward pass is timed on its own (the clock stops after the output is materialised).
//! Per batch size the harness runs at least `iterations` passes AND for at least
//! `min_duration_s` seconds of timed work. Percentiles use linear interpolation between closest
//! ranks (numpy's default `linear` method): for sorted samples `x[0..n]` the q-th percentile is
//! at rank `(n-1)·q/100`, interpolated between its two neighbours. `std` is the population
//! standard deviation (numpy's default `ddof=0`), `cv = std / mean`, and throughput is
//! `batch_size / mean` in sequences per second.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::{Result, RuntimeError};
use crate::inputs::{BatchSource, TokenizationStats};
use crate::runtime::{EncodedBatch, ForwardProfile, Model, ModelInfo};

/// A coefficient of variation at or above this is reported as a noisy measurement.
pub const NOISY_CV: f64 = 0.10;

/// How to time one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HarnessSettings {
    /// One latency series per batch size.
    pub batch_sizes: Vec<usize>,
    /// Untimed passes before each series.
    pub warmup: usize,
    /// Minimum timed passes per series.
    pub iterations: usize,
    /// Minimum timed seconds per series.
    pub min_duration_s: f64,
    /// Compute threads; `None` = physical cores (see [`default_threads`]).
    pub threads: Option<usize>,
    /// Draw a progress bar (only ever on a terminal).
    pub progress: bool,
}

impl Default for HarnessSettings {
    fn default() -> Self {
        HarnessSettings {
            batch_sizes: vec![1, 8, 32],
            warmup: 10,
            iterations: 100,
            min_duration_s: 1.0,
            threads: None,
            progress: true,
        }
    }
}

/// The thread count used when none is set: `RAYON_NUM_THREADS` if set, else the number of
/// physical cores (candle's own rule, so its GEMMs and our kernels agree).
pub fn default_threads() -> usize {
    candle_core::utils::get_num_threads()
}

/// The pipeline's overall throughput metric: the largest batch size's sequences per second.
pub const THROUGHPUT_METRIC: &str = "throughput_samples_per_sec";

/// Latency statistics of one batch size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyStats {
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// Timed passes.
    pub samples: usize,
    /// Median latency (ms).
    pub p50_ms: f64,
    /// 90th percentile (ms).
    pub p90_ms: f64,
    /// 95th percentile (ms).
    pub p95_ms: f64,
    /// 99th percentile (ms).
    pub p99_ms: f64,
    /// Mean (ms).
    pub mean_ms: f64,
    /// Population standard deviation (ms).
    pub std_ms: f64,
    /// std / mean.
    pub cv: f64,
    /// batch_size / mean, in sequences per second.
    pub throughput_seq_per_s: f64,
}

impl LatencyStats {
    /// Statistics of `samples_ms` (any order; at least one sample).
    pub fn from_samples(batch_size: usize, samples_ms: &[f64]) -> LatencyStats {
        let mut sorted = samples_ms.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        let mean = sorted.iter().sum::<f64>() / n;
        let variance = sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let std = variance.sqrt();
        LatencyStats {
            batch_size,
            samples: sorted.len(),
            p50_ms: percentile(&sorted, 50.0),
            p90_ms: percentile(&sorted, 90.0),
            p95_ms: percentile(&sorted, 95.0),
            p99_ms: percentile(&sorted, 99.0),
            mean_ms: mean,
            std_ms: std,
            cv: if mean > 0.0 { std / mean } else { 0.0 },
            throughput_seq_per_s: if mean > 0.0 {
                batch_size as f64 * 1e3 / mean
            } else {
                0.0
            },
        }
    }

    /// The metrics of this batch size under the pipeline's names and meanings —
    /// `latency_batch_{b}_ms` is the **mean**, `_p50_ms`, `_p95_ms`, `_p99_ms` beside it — plus
    /// podium's own statistics under names the pipeline does not use (`_p90_ms`, `_std_ms`,
    /// `_cv`, `throughput_batch_{b}_seq_per_s`).
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let b = self.batch_size;
        BTreeMap::from([
            (format!("latency_batch_{b}_ms"), self.mean_ms),
            (format!("latency_batch_{b}_p50_ms"), self.p50_ms),
            (format!("latency_batch_{b}_p90_ms"), self.p90_ms),
            (format!("latency_batch_{b}_p95_ms"), self.p95_ms),
            (format!("latency_batch_{b}_p99_ms"), self.p99_ms),
            (format!("latency_batch_{b}_std_ms"), self.std_ms),
            (format!("latency_batch_{b}_cv"), self.cv),
            (
                format!("throughput_batch_{b}_seq_per_s"),
                self.throughput_seq_per_s,
            ),
        ])
    }

    /// Whether the series is too noisy to trust (cv ≥ [`NOISY_CV`]).
    pub fn is_noisy(&self) -> bool {
        self.cv >= NOISY_CV
    }
}

/// The q-th percentile (0–100) of ascending `sorted` samples, linear interpolation between
/// closest ranks (numpy's default). NaN for no samples.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let rank = (n - 1) as f64 * q.clamp(0.0, 100.0) / 100.0;
            let lower = rank.floor() as usize;
            let upper = (lower + 1).min(n - 1);
            let fraction = rank - lower as f64;
            sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
        }
    }
}

/// Everything one benchmark of one checkpoint measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkReport {
    /// The model.
    pub model: ModelInfo,
    /// Compute threads used.
    pub threads: usize,
    /// Sequence length of every input.
    pub max_length: usize,
    /// `synthetic` or `test_data`.
    pub input: String,
    /// Tokenisation timing (test data only).
    pub tokenization: Option<TokenizationStats>,
    /// Warmup passes per batch size.
    pub warmup: usize,
    /// One entry per batch size, in the order requested.
    pub results: Vec<LatencyStats>,
    /// Human-readable warnings (noisy series).
    pub warnings: Vec<String>,
}

impl BenchmarkReport {
    /// All metrics of all batch sizes, `throughput_samples_per_sec` (the largest batch size's
    /// throughput, as the pipeline reports it), `threads` and the tokenisation time when known.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut metrics: BTreeMap<String, f64> = self
            .results
            .iter()
            .flat_map(LatencyStats::metrics)
            .collect();
        if let Some(largest) = self.results.iter().max_by_key(|stats| stats.batch_size) {
            metrics.insert(THROUGHPUT_METRIC.into(), largest.throughput_seq_per_s);
        }
        metrics.insert("threads".into(), self.threads as f64);
        if let Some(tokenization) = &self.tokenization {
            metrics.insert("tokenization_ms".into(), tokenization.total_ms);
        }
        metrics
    }
}

/// Times `model` on batches of `source` for every batch size of `settings`.
///
/// Runs inside a dedicated rayon pool of the requested thread count: the CPU runtime splits
/// its GEMMs and kernels over exactly that pool.
pub fn run(
    model: &Model,
    settings: &HarnessSettings,
    source: &BatchSource,
) -> Result<BenchmarkReport> {
    validate_settings(settings)?;
    check_fits(model, settings, source)?;
    let (pool, threads) = compute_pool(settings)?;
    let progress = progress_bar(settings);
    let mut results = Vec::with_capacity(settings.batch_sizes.len());
    let mut warnings = Vec::new();
    for &batch_size in &settings.batch_sizes {
        let batch = source.batch(batch_size);
        progress.set_message(format!("batch {batch_size}"));
        progress.set_position(0);
        let samples = pool.install(|| time_series(model, &batch, settings, &progress))?;
        let stats = LatencyStats::from_samples(batch_size, &samples);
        if stats.is_noisy() {
            let warning = format!(
                "batch {batch_size}: latency cv {:.1}% ≥ {:.0}%: the measurement is noisy (other load on the machine?)",
                stats.cv * 100.0,
                NOISY_CV * 100.0
            );
            tracing::warn!("{warning}");
            warnings.push(warning);
        }
        tracing::info!(
            batch_size,
            p50_ms = stats.p50_ms,
            samples = stats.samples,
            "timed"
        );
        results.push(stats);
    }
    progress.finish_and_clear();
    Ok(BenchmarkReport {
        model: model.info().clone(),
        threads,
        max_length: source.max_length(),
        input: source.label().to_string(),
        tokenization: source.tokenization().cloned(),
        warmup: settings.warmup,
        results,
        warnings,
    })
}

/// Where one batch size's forward pass spends its time.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchProfile {
    /// Sequences per forward pass.
    pub batch_size: usize,
    /// Stage times summed over the profiled passes.
    pub profile: ForwardProfile,
}

/// Profiles `model` stage by stage ([`Stage`](crate::runtime::Stage)) for every batch size of
/// `settings`: `warmup` unprofiled passes, then `iterations` profiled ones, in the same thread
/// pool as [`run`]. Separate from the timed passes, so latency figures never carry the cost
/// of reading the clock between stages.
pub fn profile(
    model: &Model,
    settings: &HarnessSettings,
    source: &BatchSource,
) -> Result<Vec<BatchProfile>> {
    validate_settings(settings)?;
    check_fits(model, settings, source)?;
    let (pool, _) = compute_pool(settings)?;
    settings
        .batch_sizes
        .iter()
        .map(|&batch_size| {
            let batch = source.batch(batch_size);
            pool.install(|| {
                for _ in 0..settings.warmup {
                    model.forward(&batch)?;
                }
                let mut profile = ForwardProfile::default();
                for _ in 0..settings.iterations {
                    model.forward_profiled(&batch, &mut profile)?;
                }
                Ok(BatchProfile {
                    batch_size,
                    profile,
                })
            })
        })
        .collect()
}

/// Every batch size at the source's length must fit the model and the memory, checked before
/// the first pass so an impossible request fails at once instead of part-way through.
fn check_fits(model: &Model, settings: &HarnessSettings, source: &BatchSource) -> Result<()> {
    settings
        .batch_sizes
        .iter()
        .try_for_each(|&batch_size| model.check_fits(batch_size, source.max_length()))
}

/// The most compute threads a setting may ask for: four per hardware thread (oversubscribing
/// further only measures the scheduler).
pub fn max_threads() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .saturating_mul(4)
}

fn compute_pool(settings: &HarnessSettings) -> Result<(rayon::ThreadPool, usize)> {
    let threads = settings.threads.unwrap_or_else(default_threads);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|index| format!("podium-compute-{index}"))
        .build()
        .map_err(|err| RuntimeError::ThreadPool {
            threads,
            message: err.to_string(),
        })?;
    Ok((pool, threads))
}

fn validate_settings(settings: &HarnessSettings) -> Result<()> {
    let invalid = |key: &str, message: &str| RuntimeError::Config {
        file: PathBuf::from("<options>"),
        key: key.into(),
        message: message.into(),
    };
    if settings.batch_sizes.is_empty() || settings.batch_sizes.contains(&0) {
        return Err(invalid(
            "batch_sizes",
            "must be a non-empty list of positive integers",
        ));
    }
    if settings.iterations == 0 {
        return Err(invalid("iterations", "must be at least 1"));
    }
    // Any number of seconds a timer can hold: the bounds of a benchmark config are its
    // caller's (podium-bench's); this only keeps the timing loop itself from panicking.
    if Duration::try_from_secs_f64(settings.min_duration_s).is_err() {
        return Err(invalid(
            "min_duration_s",
            &format!(
                "must be a number of seconds ≥ 0 that a timer can hold; found {}",
                settings.min_duration_s
            ),
        ));
    }
    if let Some(threads) = settings.threads {
        let max = max_threads();
        if threads == 0 || threads > max {
            return Err(invalid(
                "threads",
                &format!(
                    "must be 1 ..= {max} (4 × the {} hardware threads here), or null for physical cores; found {threads}",
                    max / 4
                ),
            ));
        }
    }
    Ok(())
}

fn progress_bar(settings: &HarnessSettings) -> ProgressBar {
    // indicatif already draws nothing when stderr is not a terminal; checking here as well
    // keeps logs and CI output free of bar frames whatever indicatif decides.
    if !settings.progress || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(
        Some((settings.warmup + settings.iterations) as u64),
        ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} passes") {
        bar.set_style(style);
    }
    bar
}

fn time_series(
    model: &Model,
    batch: &EncodedBatch,
    settings: &HarnessSettings,
    progress: &ProgressBar,
) -> Result<Vec<f64>> {
    for _ in 0..settings.warmup {
        model.forward(batch)?;
        progress.inc(1);
    }
    let min_duration = Duration::from_secs_f64(settings.min_duration_s);
    let mut samples = Vec::with_capacity(settings.iterations);
    let mut timed = Duration::ZERO;
    while samples.len() < settings.iterations || timed < min_duration {
        let started = Instant::now();
        let output = model.forward(batch)?;
        // On an asynchronous device the clock must wait for the result itself.
        let _ = output.device().synchronize();
        let elapsed = started.elapsed();
        drop(output);
        timed += elapsed;
        samples.push(elapsed.as_secs_f64() * 1e3);
        progress.inc(1);
    }
    Ok(samples)
}

/// Where inputs come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputSpec {
    /// Random ids of `max_length`.
    Synthetic,
    /// Records of this JSON/JSONL file.
    TestData {
        /// The file.
        path: PathBuf,
    },
}

impl InputSpec {
    /// The batches this input names for `model`; a relative test-data path is taken from
    /// `root` (the project root, against which `config/benchmark.yaml` paths are written).
    ///
    /// `max_length` is checked against the model's positions first.
    pub fn prepare(&self, model: &Model, root: &Path, max_length: usize) -> Result<BatchSource> {
        model.check_length(max_length)?;
        match self {
            InputSpec::Synthetic => Ok(BatchSource::synthetic(model.config(), max_length)),
            InputSpec::TestData { path } => BatchSource::test_data(
                model.config(),
                &model.info().checkpoint_dir,
                &root.join(path),
                max_length,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn percentiles_match_numpy_linear_interpolation() {
        // numpy.percentile([1, 2, 3, 4], [50, 90, 95, 99]) = [2.5, 3.7, 3.85, 3.97]
        let sorted = [1.0, 2.0, 3.0, 4.0];
        for (q, expected) in [
            (50.0, 2.5),
            (90.0, 3.7),
            (95.0, 3.85),
            (99.0, 3.97),
            (0.0, 1.0),
            (100.0, 4.0),
        ] {
            assert!((percentile(&sorted, q) - expected).abs() < 1e-12, "q={q}");
        }
        // numpy.percentile(range(1, 101), [50, 90, 95, 99]) = [50.5, 90.1, 95.05, 99.01]
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        for (q, expected) in [(50.0, 50.5), (90.0, 90.1), (95.0, 95.05), (99.0, 99.01)] {
            assert!((percentile(&hundred, q) - expected).abs() < 1e-9, "q={q}");
        }
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn stats_of_known_samples() {
        // numpy: mean 5.0, std (ddof=0) 2.0 for [2, 4, 4, 4, 5, 5, 7, 9]
        let stats = LatencyStats::from_samples(8, &[9.0, 2.0, 4.0, 4.0, 5.0, 5.0, 7.0, 4.0]);
        assert_eq!(stats.samples, 8);
        assert!((stats.mean_ms - 5.0).abs() < 1e-12);
        assert!((stats.std_ms - 2.0).abs() < 1e-12);
        assert!((stats.cv - 0.4).abs() < 1e-12);
        assert!((stats.p50_ms - 4.5).abs() < 1e-12);
        // numpy.percentile([2,4,4,4,5,5,7,9], 90) = 7.6
        assert!((stats.p90_ms - 7.6).abs() < 1e-12);
        assert!((stats.throughput_seq_per_s - 1600.0).abs() < 1e-9);
        assert!(stats.is_noisy());
        let metrics = stats.metrics();
        // The pipeline's meaning: the bare name is the mean, the median is `_p50_ms`.
        assert_eq!(metrics["latency_batch_8_ms"], stats.mean_ms);
        assert_eq!(metrics["latency_batch_8_p50_ms"], stats.p50_ms);
        for key in [
            "latency_batch_8_p90_ms",
            "latency_batch_8_p95_ms",
            "latency_batch_8_p99_ms",
            "latency_batch_8_std_ms",
            "latency_batch_8_cv",
            "throughput_batch_8_seq_per_s",
        ] {
            assert!(metrics.contains_key(key), "{key}");
        }
        assert_eq!(metrics.len(), 8);
    }

    #[test]
    fn steady_samples_are_not_noisy() {
        let stats = LatencyStats::from_samples(1, &[10.0, 10.1, 9.9, 10.0]);
        assert!(!stats.is_noisy());
    }
}
