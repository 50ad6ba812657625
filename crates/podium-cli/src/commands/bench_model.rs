//! `podium bench-model CHECKPOINT_DIR`: time one checkpoint directory with podium-runtime, no
//! MLflow involved (`--execution` picks the fast CPU path or the candle-transformers reference
//! path; the report says which ran). Settings come from `benchmark.yaml` in the config directory when it
//! exists (else the built-in defaults); every flag overrides its key.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use podium_project::bench_model::{
    BenchModel, BenchModelRequest, BenchmarkReport, Execution, ProfileSummary, Stage, StageTime,
};

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

impl BenchModelArgs {
    /// What the flags ask the library for.
    fn request(&self, global: &GlobalArgs) -> BenchModelRequest {
        BenchModelRequest {
            checkpoint_dir: self.checkpoint_dir.clone(),
            config_dir: global.config_dir.clone(),
            root: global.root.clone(),
            batch_sizes: self.batch_sizes.clone(),
            max_length: self.max_length,
            warmup: self.warmup,
            iterations: self.iterations,
            min_duration_s: self.min_duration_s,
            threads: self.threads,
            test_data: self.test_data.clone(),
            device: self.device.clone(),
            execution: self.execution,
            profile: self.profile,
            progress: global.quiet == 0 && global.format == Format::Table,
        }
    }
}

/// Runs `podium bench-model`.
pub fn run(global: &GlobalArgs, args: BenchModelArgs) -> anyhow::Result<ExitCode> {
    let bench = BenchModel::load(&args.request(global))?;
    let info = bench.info();
    if info.bare_encoder && global.format == Format::Table && global.quiet == 0 {
        output::eprint_line(&format!(
            "note: {} has no classifier weights; timing the bare {} encoder",
            args.checkpoint_dir.display(),
            info.model_type
        ));
    }
    let report = bench.run()?;
    match global.format {
        Format::Json => output::print_json(&report)?,
        Format::Table => {
            print_table(&report.report);
            if let Some(profile) = &report.profile {
                print_profile(profile);
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

fn print_table(report: &BenchmarkReport) {
    let model = &report.model;
    let head = if model.bare_encoder {
        "bare encoder (no classifier)".to_string()
    } else {
        format!("{} labels", model.num_labels)
    };
    output::print_wrapped(&format!(
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
        output::print_wrapped(&format!("warning: {warning}"));
    }
}

/// One row per stage, one column per batch size: ms per pass and share of the pass.
fn print_profile(profiles: &[ProfileSummary]) {
    let stages: BTreeSet<Stage> = profiles
        .iter()
        .flat_map(|batch| batch.stages.iter().map(|time| time.stage))
        .collect();
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
            profiles
                .iter()
                .map(|batch| cell(batch.stages.iter().find(|time| time.stage == stage))),
        );
        table.add_row(row);
    }
    let mut total = vec!["total".to_string(), String::new()];
    total.extend(profiles.iter().map(|batch| {
        format!(
            "{:.3} ({:.1}% gemm)",
            batch.total_ms_per_pass,
            100.0 * batch.matmul_ms_per_pass / batch.total_ms_per_pass.max(f64::MIN_POSITIVE)
        )
    }));
    table.add_row(total);
    let passes = profiles.first().map(|batch| batch.passes).unwrap_or(0);
    println!("profile ({passes} passes per batch size, separate from the timed ones):");
    println!("{table}");
}
