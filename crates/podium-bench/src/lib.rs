//! candle token-classification runtime, timing harness and idempotent benchmarking.
//!
//! - [`runtime`]: loads a Hugging Face checkpoint directory (bert, distilbert, roberta,
//!   xlm-roberta, deberta-v2 with a token-classification head, or a bare encoder) and runs it;
//! - [`inputs`]: synthetic ids or tokenised test data, padded/truncated to `max_length`;
//! - [`harness`]: warmup + timed passes and their statistics (`latency_batch_{b}_ms`, …), and the
//!   validated `config/benchmark.yaml`.
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
//!
//! Timing a checkpoint (`podium bench-model DIR` does the same):
//!
//! ```no_run
//! use podium_bench::{harness, inputs, runtime};
//!
//! let model = runtime::Model::load(std::path::Path::new("outputs/checkpoint"), &runtime::parse_device("cpu")?)?;
//! let settings = harness::HarnessSettings { batch_sizes: vec![1, 8], ..Default::default() };
//! let source = inputs::BatchSource::synthetic(model.config(), 128);
//! let report = harness::run(&model, &settings, &source)?;
//! println!("{:?}", report.metrics());
//! // Where the time goes, stage by stage (GEMMs vs the fused kernels between them):
//! for batch in harness::profile(&model, &settings, &source)? {
//!     for stage in batch.profile.stages() {
//!         println!("{} {:?} {:.3} ms", batch.batch_size, stage.stage, stage.ms_per_pass);
//!     }
//! }
//! # Ok::<(), podium_bench::BenchError>(())
//! ```

pub mod acquire;
pub mod archive;
pub mod bench_config;
pub mod cache;
pub mod claim;
pub mod error;
pub mod harness;
pub mod inputs;
pub mod orchestrate;
pub mod random_checkpoint;
pub mod runtime;

pub use error::{BenchError, Result};

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
