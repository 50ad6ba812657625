//! Time a token-classification checkpoint directory with `podium-runtime` alone: no other
//! podium crate, no MLflow client, no SQLite (the example's own stand-in checkpoint, when none
//! is given, comes from podium-fixtures, a dev-dependency).
//!
//! Loads a Hugging Face checkpoint (`config.json` + `model.safetensors` or `pytorch_model.bin`;
//! bert, distilbert, roberta, xlm-roberta or deberta-v2) and times it on synthetic ids on both
//! execution paths: the fast CPU path and the reference path on candle-transformers' models.
//! Warmup, then at least `iterations` passes and `min_duration_s` seconds per batch size, each
//! pass timed alone; prints p50/p90/p99 latency and throughput.
//!
//! ```sh
//! # A tiny random DistilBERT checkpoint this example writes first:
//! cargo run --release --example bench_checkpoint
//! # Your checkpoint, at a sequence length of your choice:
//! cargo run --release --example bench_checkpoint -- path/to/checkpoint 128
//! ```
//!
//! The settings are small (batch sizes 1 and 8, 32 tokens unless given, 20 iterations, 0.05 s);
//! `podium bench-model` is the full command-line version.

use std::error::Error;
use std::path::PathBuf;

use podium_fixtures::random_checkpoint::RandomCheckpoint;
use podium_runtime::harness::{self, HarnessSettings};
use podium_runtime::inputs::BatchSource;
use podium_runtime::runtime::{Execution, Model, parse_device};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let scratch = tempfile::tempdir()?;
    let checkpoint = match args.next() {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = scratch.path().join("checkpoint");
            RandomCheckpoint::tiny_for("distilbert-base-uncased", 1).write(&dir)?;
            println!(
                "wrote a tiny random DistilBERT checkpoint to {}",
                dir.display()
            );
            dir
        }
    };
    let max_length: usize = match args.next() {
        Some(text) => text.parse()?,
        None => 32,
    };
    let settings = HarnessSettings {
        batch_sizes: vec![1, 8],
        warmup: 3,
        iterations: 20,
        min_duration_s: 0.05,
        threads: None,
        progress: false,
    };
    let device = parse_device("cpu")?;
    for execution in [Execution::Cpu, Execution::Portable] {
        let model = Model::load_with(&checkpoint, &device, execution)?;
        let source = BatchSource::synthetic(model.config(), max_length);
        let report = harness::run(&model, &settings, &source)?;
        println!(
            "{} ({:?}, {} labels), {} path, {} tokens, {} threads",
            checkpoint.display(),
            model.config().architecture,
            model.info().num_labels,
            report.model.execution,
            report.max_length,
            report.threads
        );
        println!("batch   p50 ms   p90 ms   p99 ms     cv   seq/s   passes");
        for stats in &report.results {
            println!(
                "{:>5} {:>8.3} {:>8.3} {:>8.3} {:>6.3} {:>7.0} {:>8}",
                stats.batch_size,
                stats.p50_ms,
                stats.p90_ms,
                stats.p99_ms,
                stats.cv,
                stats.throughput_seq_per_s,
                stats.samples
            );
        }
        for warning in &report.warnings {
            println!("warning: {warning}");
        }
    }
    Ok(())
}
