//! `podium bench-model CHECKPOINT_DIR`: time one checkpoint directory with podium-runtime, no
//! MLflow involved (`--execution` picks the fast CPU path or the candle-transformers reference
//! path; the report says which ran). Settings come from `benchmark.yaml` in the config directory when it
//! exists (else the built-in defaults); every flag overrides its key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use podium_bench::bench_config::BenchmarkConfig;
use podium_bench::harness::{self, BenchmarkReport, InputSpec};
use podium_bench::runtime::{self, Execution, Model, Stage, StageTime};
use serde::Serialize;

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium bench-model` arguments.
#[derive(Debug, Args)]
pub struct BenchModelArgs {
    /// Checkpoint directory (config.json, model.safetensors or pytorch_model.bin, tokenizer.json).
    pub checkpoint_dir: PathBuf,
    /// Batch sizes, comma-separated (benchmark.yaml: batch_sizes).
    #[arg(long, value_delimiter = ',', value_name = "B,B,…")]
    pub batch_sizes: Option<Vec<usize>>,
    /// Tokens per sequence (benchmark.yaml: max_length).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Untimed passes before each batch size (benchmark.yaml: warmup).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Minimum timed passes per batch size (benchmark.yaml: iterations).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Minimum timed seconds per batch size (benchmark.yaml: min_duration_s).
    #[arg(long, value_name = "S")]
    pub min_duration_s: Option<f64>,
    /// Compute threads (benchmark.yaml: threads; default: physical cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Test data (JSONL/JSON records with `text` or `tokens`) instead of synthetic ids.
    #[arg(long, value_name = "PATH")]
    pub test_data: Option<PathBuf>,
    /// cpu or cuda:N (benchmark.yaml: device).
    #[arg(long)]
    pub device: Option<String>,
    /// Execution path: auto (the fast CPU path on the CPU, the reference path elsewhere), cpu
    /// (the fast CPU path), or portable (the reference path on candle-transformers' models).
    #[arg(long, default_value = "auto", value_parser = parse_execution)]
    pub execution: Execution,
    /// Also profile each batch size stage by stage (GEMMs vs the kernels between them), in
    /// separate passes after the timed ones.
    #[arg(long)]
    pub profile: bool,
}

#[derive(Debug, Serialize)]
struct JsonOutput<'a> {
    #[serde(flatten)]
    report: &'a BenchmarkReport,
    metrics: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<Vec<JsonProfile>>,
}

#[derive(Debug, Serialize)]
struct JsonProfile {
    batch_size: usize,
    passes: usize,
    total_ms_per_pass: f64,
    matmul_ms_per_pass: f64,
    stages: Vec<StageTime>,
}

/// Runs `podium bench-model`.
pub fn run(global: &GlobalArgs, args: BenchModelArgs) -> anyhow::Result<ExitCode> {
    let config_file = global.config_dir.join(BenchmarkConfig::FILE);
    let mut config = if config_file.is_file() {
        BenchmarkConfig::from_file(&config_file)?
    } else {
        BenchmarkConfig::default()
    };
    apply_overrides(&mut config, &args)
        .with_context(|| format!("resolving --test-data {:?}", args.test_data))?;
    // The options go through the bounds benchmark.yaml's values went through.
    let from_options = Path::new("<options>");
    let file = if args.sets_a_knob() {
        from_options
    } else {
        config_file.as_path()
    };
    config.validate(file, &|key| args.source_of(key))?;
    let mut settings = config.harness_settings();
    settings.progress = global.quiet == 0 && global.format == Format::Table;
    let device = runtime::parse_device(&config.device)?;
    let model = Model::load_with(&args.checkpoint_dir, &device, args.execution)
        .with_context(|| format!("loading {}", args.checkpoint_dir.display()))?;
    if model.info().bare_encoder && global.format == Format::Table && global.quiet == 0 {
        output::eprint_line(&format!(
            "note: {} has no classifier weights; timing the bare {} encoder",
            args.checkpoint_dir.display(),
            model.info().model_type
        ));
    }
    // Paths in benchmark.yaml are written from the project root; a --test-data path was
    // typed from here, and apply_overrides made it absolute.
    let source = config
        .input
        .prepare(&model, &global.root, config.max_length)?;
    let report = harness::run(&model, &settings, &source)?;
    let profiles = if args.profile {
        Some(harness::profile(&model, &settings, &source)?)
    } else {
        None
    };
    match global.format {
        Format::Json => output::print_json(&JsonOutput {
            report: &report,
            metrics: report.metrics(),
            profile: profiles.as_ref().map(|profiles| {
                profiles
                    .iter()
                    .map(|batch| JsonProfile {
                        batch_size: batch.batch_size,
                        passes: batch.profile.passes(),
                        total_ms_per_pass: batch.profile.total_ms_per_pass(),
                        matmul_ms_per_pass: batch.profile.matmul_ms_per_pass(),
                        stages: batch.profile.stages(),
                    })
                    .collect()
            }),
        })?,
        Format::Table => {
            print_table(&report);
            if let Some(profiles) = &profiles {
                print_profile(profiles);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_execution(text: &str) -> Result<Execution, String> {
    text.parse::<Execution>().map_err(|_| {
        format!(
            "expected one of {}, found {text:?}",
            Execution::NAMES.join(", ")
        )
    })
}

impl BenchModelArgs {
    /// The option setting the benchmark knob `key` (its name under `benchmarking:`), or the key
    /// in benchmark.yaml when no option sets it: where a refused value came from.
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

    /// Whether an option sets any bounded knob.
    fn sets_a_knob(&self) -> bool {
        self.batch_sizes.is_some()
            || self.max_length.is_some()
            || self.warmup.is_some()
            || self.iterations.is_some()
            || self.min_duration_s.is_some()
            || self.threads.is_some()
    }
}

fn apply_overrides(config: &mut BenchmarkConfig, args: &BenchModelArgs) -> std::io::Result<()> {
    if let Some(batch_sizes) = &args.batch_sizes {
        config.batch_sizes = batch_sizes.clone();
    }
    if let Some(max_length) = args.max_length {
        config.max_length = max_length;
    }
    if let Some(warmup) = args.warmup {
        config.warmup = warmup;
    }
    if let Some(iterations) = args.iterations {
        config.iterations = iterations;
    }
    if let Some(min_duration_s) = args.min_duration_s {
        config.min_duration_s = min_duration_s;
    }
    if let Some(threads) = args.threads {
        config.threads = Some(threads);
    }
    if let Some(path) = &args.test_data {
        config.input = InputSpec::TestData {
            path: std::path::absolute(path)?,
        };
    }
    if let Some(device) = &args.device {
        config.device = device.clone();
    }
    Ok(())
}

fn print_table(report: &BenchmarkReport) {
    let model = &report.model;
    let head = if model.bare_encoder {
        "bare encoder (no classifier)".to_string()
    } else {
        format!("{} labels", model.num_labels)
    };
    output::print_line(&format!(
        "{} · {} · {} layers × {} hidden · {} · {} path on {} · {} threads · {} input, length {}",
        model.checkpoint_dir.display(),
        model.model_type,
        model.num_layers,
        model.hidden_size,
        head,
        match model.execution {
            Execution::Portable => "reference (candle-transformers)",
            _ => "fast CPU",
        },
        model.device,
        report.threads,
        report.input,
        report.max_length
    ));
    if let Some(tokenization) = &report.tokenization {
        println!(
            "tokenisation: {} records in {:.2} ms ({:.3} ms/record, {} truncated)",
            tokenization.records,
            tokenization.total_ms,
            tokenization.per_record_ms,
            tokenization.truncated
        );
    }
    let mut table = output::table([
        "batch", "p50 ms", "p90 ms", "p95 ms", "p99 ms", "mean ms", "std ms", "cv", "seq/s",
        "passes",
    ]);
    for stats in &report.results {
        table.add_row([
            stats.batch_size.to_string(),
            format!("{:.3}", stats.p50_ms),
            format!("{:.3}", stats.p90_ms),
            format!("{:.3}", stats.p95_ms),
            format!("{:.3}", stats.p99_ms),
            format!("{:.3}", stats.mean_ms),
            format!("{:.3}", stats.std_ms),
            format!(
                "{:.1}%{}",
                stats.cv * 100.0,
                if stats.is_noisy() { " !" } else { "" }
            ),
            format!("{:.1}", stats.throughput_seq_per_s),
            stats.samples.to_string(),
        ]);
    }
    println!("{table}");
    for warning in &report.warnings {
        output::print_line(&format!("warning: {warning}"));
    }
}

/// One row per stage, one column per batch size: ms per pass and share of the pass.
fn print_profile(profiles: &[harness::BatchProfile]) {
    let summaries: Vec<Vec<StageTime>> = profiles.iter().map(|b| b.profile.stages()).collect();
    let stages: BTreeSet<Stage> = summaries.iter().flatten().map(|time| time.stage).collect();
    let mut header = vec!["stage".to_string(), "kind".to_string()];
    header.extend(
        profiles
            .iter()
            .map(|batch| format!("batch {} ms (share)", batch.batch_size)),
    );
    let mut table = output::table(header);
    let cell = |time: Option<&StageTime>| match time {
        Some(time) => format!("{:.3} ({:.1}%)", time.ms_per_pass, time.share * 100.0),
        None => "-".to_string(),
    };
    for stage in stages {
        let mut row = vec![
            stage.name().to_string(),
            if stage.is_matmul() { "gemm" } else { "kernel" }.to_string(),
        ];
        row.extend(
            summaries
                .iter()
                .map(|summary| cell(summary.iter().find(|time| time.stage == stage))),
        );
        table.add_row(row);
    }
    let mut total = vec!["total".to_string(), String::new()];
    total.extend(profiles.iter().map(|batch| {
        format!(
            "{:.3} ({:.1}% gemm)",
            batch.profile.total_ms_per_pass(),
            100.0 * batch.profile.matmul_ms_per_pass()
                / batch.profile.total_ms_per_pass().max(f64::MIN_POSITIVE)
        )
    }));
    table.add_row(total);
    let passes = profiles.first().map(|b| b.profile.passes()).unwrap_or(0);
    println!("profile ({passes} passes per batch size, separate from the timed ones):");
    println!("{table}");
}
