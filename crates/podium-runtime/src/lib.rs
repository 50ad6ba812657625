//! Load a Hugging Face token-classification checkpoint and time it, with nothing else attached
//! (no tracking store, no claims, no disk cache).
//!
//! - [`runtime`]: loads a checkpoint directory (config.json, model.safetensors or
//!   pytorch_model.bin, tokenizer.json; bert, distilbert, roberta, xlm-roberta, deberta-v2 with
//!   a token-classification head, or a bare encoder) and runs it on one of two execution paths:
//!   the reference path on candle-transformers' models (any device, CUDA included) or the fast
//!   CPU path (direct GEMMs and fused kernels), which the tests check against the reference;
//! - [`inputs`]: synthetic ids or test data tokenised to `max_length` outside the timed region;
//! - [`harness`]: warmup + timed passes and their statistics (`latency_batch_{b}_ms`, …), and
//!   `--profile`'s stage-by-stage breakdown.
//!
//! Tiny random checkpoints of every architecture, for tests and demos, are podium-fixtures'
//! (they are no part of a runtime).
//!
//! The statistics need no model:
//!
//! ```
//! use podium_runtime::harness::LatencyStats;
//!
//! let stats = LatencyStats::from_samples(8, &[10.0, 12.0, 11.0, 13.0]);
//! assert_eq!(stats.p50_ms, 11.5);
//! assert_eq!(stats.metrics()["latency_batch_8_ms"], 11.5);
//! assert!((stats.throughput_seq_per_s - 8.0 * 1000.0 / 11.5).abs() < 1e-9);
//! ```
//!
//! Timing a checkpoint (`podium bench-model DIR` does the same):
//!
//! ```no_run
//! use podium_runtime::{harness, inputs, runtime};
//!
//! let device = runtime::parse_device("cpu")?;
//! let model = runtime::Model::load_with(
//!     std::path::Path::new("outputs/checkpoint"),
//!     &device,
//!     runtime::Execution::Auto, // the fast CPU path here; the reference path on a GPU
//! )?;
//! let settings = harness::HarnessSettings { batch_sizes: vec![1, 8], ..Default::default() };
//! let source = inputs::BatchSource::synthetic(model.config(), 128);
//! let report = harness::run(&model, &settings, &source)?;
//! println!("{} path: {:?}", report.model.execution, report.metrics());
//! // Where the time goes, stage by stage (GEMMs vs the fused kernels between them):
//! for batch in harness::profile(&model, &settings, &source)? {
//!     for stage in batch.profile.stages() {
//!         println!("{} {:?} {:.3} ms", batch.batch_size, stage.stage, stage.ms_per_pass);
//!     }
//! }
//! # Ok::<(), podium_runtime::RuntimeError>(())
//! ```

pub mod error;
pub mod harness;
pub mod host;
pub mod inputs;
pub mod runtime;

pub use error::{Result, RuntimeError};
