//! Time a token-classification checkpoint directory, with `podium-bench` alone (no MLflow).
//!
//! Loads a Hugging Face checkpoint (`config.json` + `model.safetensors` or `pytorch_model.bin`;
//! bert, distilbert, roberta, xlm-roberta or deberta-v2) into the candle runtime and times it on
//! the config's inputs (synthetic ids unless it names test data): warmup, then at least `iterations` passes and `min_duration_s` seconds per
//! batch size, each pass timed alone; prints p50/p90/p99 latency and throughput.
//!
//! ```sh
//! # A tiny random DistilBERT checkpoint this example writes first:
//! cargo run --release --example bench_checkpoint
//! # Your checkpoint, with the settings of a benchmark config:
//! cargo run --release --example bench_checkpoint -- path/to/checkpoint [config/benchmark.yaml]
//! ```
//!
//! Without a config the settings are small (batch sizes 1 and 8, 32 tokens, 20 iterations,
//! 0.05 s); `podium bench-model` is the full command-line version.

use std::error::Error;
use std::path::{Path, PathBuf};

use podium_bench::bench_config::BenchmarkConfig;
use podium_bench::harness;
use podium_bench::random_checkpoint::RandomCheckpoint;
use podium_bench::runtime::{Model, parse_device};

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
    let config = match args.next() {
        Some(file) => BenchmarkConfig::from_file(file.as_ref())?,
        None => BenchmarkConfig {
            batch_sizes: vec![1, 8],
            max_length: 32,
            warmup: 3,
            iterations: 20,
            min_duration_s: 0.05,
            ..BenchmarkConfig::default()
        },
    };
    let model = Model::load(&checkpoint, &parse_device(&config.device)?)?;
    let model_config = model.config().clone();
    // The config's input: synthetic ids, or its test data (a relative path from here).
    let source = config
        .input
        .prepare(&model, Path::new("."), config.max_length)?;
    let report = harness::run(&model, &config.harness_settings(), &source)?;

    println!(
        "{} ({:?}, {} labels), {} tokens, {} threads",
        checkpoint.display(),
        model_config.architecture,
        model_config.id2label.len(),
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
    Ok(())
}
