//! `podium benchmark`: benchmark each backbone's champion once. Shows what is done, restored
//! and still to run, measures the rest under claims (safe with concurrent workers), and prints
//! the results — podium's, and apart from them the runs the pipeline measured itself.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use podium_project::{
    BenchmarkRequest, BenchmarkSummary, Benchmarks, Event, InFlight, LEASE_ENV, MatchedBy, Outcome,
    PlanStatus, Project, StoreAccess,
};

use crate::GlobalArgs;
use crate::output::{self, Format};

/// Options shared by `podium benchmark` and `podium run`.
#[derive(Debug, Clone, Args)]
pub struct BenchmarkArgs {
    /// Backbones to benchmark (repeatable); default: every backbone of the HPO config of record.
    #[arg(long = "backbone", value_name = "B")]
    pub backbones: Vec<String>,
    /// Measure again even when a result exists (like run.mode: force_new).
    #[arg(long)]
    pub force: bool,
    /// Show what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// HPO config the benchmark key's eval fingerprint (champions without the tag) and a
    /// benchmark `run.mode: null` come from [default: the experiment's hpo_config].
    #[arg(long, value_name = "FILE")]
    pub hpo_config: Option<PathBuf>,
    /// Claim lease in seconds: a worker that dies is replaced after this long.
    #[arg(long, value_name = "SECONDS", env = LEASE_ENV)]
    pub lease_seconds: Option<f64>,
}

impl BenchmarkArgs {
    /// What the flags ask the library for.
    pub fn request(&self) -> BenchmarkRequest {
        BenchmarkRequest {
            backbones: self.backbones.clone(),
            force: self.force,
            hpo_config: self.hpo_config.clone(),
            lease_seconds: self.lease_seconds,
        }
    }
}

/// Runs `podium benchmark`; exit 1 when any champion could not be selected or benchmarked.
pub fn run(global: &GlobalArgs, args: BenchmarkArgs) -> anyhow::Result<ExitCode> {
    // Benchmark runs go into the store of the HPO runs they measure: it must exist.
    let project = global.open_project(StoreAccess::Existing)?;
    let Some((summary, _)) = benchmark_step(global, &args, &project)? else {
        return Ok(ExitCode::SUCCESS);
    };
    match global.format {
        Format::Json => output::print_json(&summary)?,
        Format::Table => {
            print_results(&summary);
            println!("{}", summary.pipeline_line());
            println!("{}", summary.counts_line());
        }
    }
    Ok(exit_code(&summary))
}

pub(crate) fn exit_code(summary: &BenchmarkSummary) -> ExitCode {
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Plans and (unless `--dry-run`, which prints the plan and returns `None`) benchmarks the
/// selected champions, with a progress bar and a Ctrl-C handler; the benchmarks stay for
/// ranking.
pub(crate) fn benchmark_step(
    global: &GlobalArgs,
    args: &BenchmarkArgs,
    project: &Project,
) -> anyhow::Result<Option<(BenchmarkSummary, Benchmarks)>> {
    let resolved = project.resolve_backbones(&args.backbones)?;
    if let Some(note) = resolved.note() {
        output::eprint_line(&note);
    }
    let request = BenchmarkRequest {
        backbones: resolved.names,
        ..args.request()
    };
    let mut benchmarks = project.plan_benchmarks(&request)?;
    if args.dry_run {
        print_plan(global.format, &benchmarks, true)?;
        return Ok(None);
    }
    if global.format == Format::Table {
        print_plan(global.format, &benchmarks, false)?;
    }
    install_interrupt_handler(benchmarks.in_flight());
    let progress = progress_bar(global, benchmarks.remaining());
    let summary = benchmarks.run(&|event| match event {
        Event::Measuring(target) => progress.set_message(format!("measuring {}", target.backbone)),
        Event::Waiting { target, owner, .. } => progress.set_message(format!(
            "{}: waiting for worker {}",
            target.backbone,
            owner.unwrap_or("(starting)")
        )),
        Event::Settled(outcome) => {
            if outcome.outcome != Outcome::Skipped {
                progress.inc(1);
            }
        }
    });
    progress.finish_and_clear();
    Ok(Some((summary?, benchmarks)))
}

/// Ctrl-C, SIGTERM (what `timeout`, Docker, Kubernetes and Slurm send) and SIGHUP mark
/// in-flight benchmark runs KILLED and release claims, then exit 130.
fn install_interrupt_handler(in_flight: InFlight) {
    let installed = ctrlc::set_handler(move || {
        let killed = in_flight.interrupt_all();
        eprintln!(
            "interrupted (Ctrl-C or SIGTERM): {killed} benchmark run(s) marked KILLED, claims released"
        );
        std::process::exit(130);
    });
    if let Err(err) = installed {
        tracing::warn!("cannot install the Ctrl-C handler: {err}");
    }
}

fn progress_bar(global: &GlobalArgs, length: usize) -> ProgressBar {
    if length == 0 || global.quiet > 0 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// The plan; the selection errors follow the table on a dry run (else the results end with
/// them).
fn print_plan(format: Format, benchmarks: &Benchmarks, dry_run: bool) -> anyhow::Result<()> {
    match format {
        Format::Json => output::print_json(&benchmarks.dry_run_report()),
        Format::Table => {
            let mut table = output::table(["backbone", "champion run", "status", "why"]);
            for planned in &benchmarks.plan {
                let (status, why) = match &planned.status {
                    PlanStatus::Done(run) => (
                        "done (skip)",
                        format!("FINISHED run {}", output::short_id(run.id())),
                    ),
                    PlanStatus::RestoreCache(run) => (
                        "restore cache",
                        format!("from FINISHED run {}", output::short_id(run.id())),
                    ),
                    PlanStatus::RestoreMlflow(_) => {
                        ("restore MLflow", "from the disk cache".to_string())
                    }
                    PlanStatus::ToRun(reason) => ("to run", reason.clone()),
                };
                table.add_row(vec![
                    planned.target.backbone.clone(),
                    output::short_id(&planned.target.champion.run_id),
                    status.to_string(),
                    why,
                ]);
            }
            for backbone in benchmarks.selection.errors.keys() {
                table.add_row(vec![
                    backbone.clone(),
                    "-".to_string(),
                    "no champion".to_string(),
                    "see the error below".to_string(),
                ]);
            }
            println!("{table}");
            if dry_run {
                for (backbone, err) in &benchmarks.selection.errors {
                    output::print_wrapped(&format!(
                        "error ({backbone}): champion selection: {err}"
                    ));
                }
            }
            if benchmarks.remaining() == 0 {
                println!("nothing to measure: every champion is already benchmarked");
            }
            Ok(())
        }
    }
}

fn metric_cell(metrics: &BTreeMap<String, f64>, name: &str) -> String {
    metrics
        .get(name)
        .map_or_else(|| "-".to_string(), |value| format!("{value:.3}"))
}

pub(crate) fn print_results(summary: &BenchmarkSummary) {
    let mut table = output::table([
        "backbone",
        "outcome",
        "mean ms",
        "p50 ms",
        "p95 ms",
        "seq/s",
        "benchmark run",
    ]);
    for outcome in &summary.outcomes {
        let label = match outcome.outcome {
            Outcome::Benchmarked => "benchmarked",
            Outcome::Skipped => "skipped",
            Outcome::RestoredCache => "restored (cache)",
            Outcome::RestoredMlflow => "restored (MLflow)",
            Outcome::Failed => "FAILED",
        };
        table.add_row(vec![
            outcome.backbone.clone(),
            label.to_string(),
            metric_cell(&outcome.metrics, "latency_batch_1_ms"),
            metric_cell(&outcome.metrics, "latency_batch_1_p50_ms"),
            metric_cell(&outcome.metrics, "latency_batch_1_p95_ms"),
            metric_cell(&outcome.metrics, "throughput_batch_1_seq_per_s"),
            outcome
                .benchmark_run_id
                .as_deref()
                .map_or_else(|| "-".to_string(), output::short_id),
        ]);
    }
    println!("{table}");
    output::print_wrapped("at batch size 1: latency in ms, throughput in sequences per second");
    if !summary.pipeline_results.is_empty() {
        let mut pipeline =
            output::table(["backbone", "pipeline run", "found by", "mean ms", "p95 ms"]);
        for result in &summary.pipeline_results {
            pipeline.add_row(vec![
                result.backbone.clone(),
                output::short_id(&result.run_id),
                match result.matched_by {
                    MatchedBy::BenchmarkKey => "benchmark key",
                    MatchedBy::StudyTrialHash => "study + trial hash",
                }
                .to_string(),
                metric_cell(&result.metrics, "latency_batch_1_ms"),
                metric_cell(&result.metrics, "latency_batch_1_p95_ms"),
            ]);
        }
        println!("measured by the pipeline (PyTorch; shown apart, never ranked):");
        println!("{pipeline}");
    }
    for (backbone, message) in &summary.failed {
        output::print_wrapped(&format!("error ({backbone}): {message}"));
    }
}
