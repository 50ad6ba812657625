//! Idempotent benchmarking of champion checkpoints: benchmark keys, claims, MLflow runs and
//! disk results around the model runtime of [`podium_runtime`].
//!
//! - [`bench_config`]: the validated `config/benchmark.yaml`, which builds the runtime's
//!   [`harness::HarnessSettings`] and [`harness::InputSpec`];
//! - [`acquire`], [`cache`], [`claim`], [`orchestrate`]: finding a champion's checkpoint, the
//!   disk cache, the claims protocol and the benchmark run lifecycle;
//! - [`runtime`], [`inputs`], [`harness`]: re-exported from
//!   podium-runtime (loading and timing a checkpoint needs nothing else, and links nothing
//!   else: depend on podium-runtime directly for that).
//!
//! The statistics need no model:
//!
//! ```
//! use podium_bench::harness::LatencyStats;
//!
//! let stats = LatencyStats::from_samples(8, &[10.0, 12.0, 11.0, 14.0]);
//! assert_eq!(stats.p50_ms, 11.5);
//! // The pipeline's names and meanings: the bare latency is the mean, the median is `_p50_ms`.
//! assert_eq!(stats.metrics()["latency_batch_8_ms"], 11.75);
//! assert_eq!(stats.metrics()["latency_batch_8_p50_ms"], 11.5);
//! assert!((stats.throughput_seq_per_s - 8.0 * 1000.0 / 11.75).abs() < 1e-9);
//! ```

pub mod acquire;
pub mod archive;
pub mod bench_config;
pub mod cache;
pub mod claim;
pub mod error;
pub mod orchestrate;

pub use error::{BenchError, Result};
pub use podium_runtime::{harness, inputs, runtime};

/// Version of the timing harness and runtime. A benchmark run counts as done for podium only
/// when its harness tag (`benchmark.harness_version`) holds this version: a change to how
/// latency is measured or reported makes champions be measured again, and runs without the tag
/// (measured by the Python pipeline with PyTorch) are never podium's results.
///
/// - 1: first release.
/// - 2: the CPU runtime's own GEMM path and AVX-512 kernels (about twice as fast as 1): latencies
///   measured by 1 are not comparable with newer ones, so champions are measured again.
/// - 3: metrics under the pipeline's names and meanings (`latency_batch_{b}_ms` is the mean, the
///   median is `latency_batch_{b}_p50_ms`); version 2 recorded the median under the bare name.
pub const HARNESS_VERSION: u32 = 3;
