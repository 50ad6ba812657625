//! `podium run`: the main job — select each backbone's champion, benchmark the ones not yet
//! benchmarked, rank them. Ends with `benchmarked N, skipped M, restored K, failed F`.

use std::process::ExitCode;

use clap::Args;
use podium_champion::Ranking;
use serde::Serialize;

use crate::GlobalArgs;
use crate::commands::benchmark::{
    BenchmarkArgs, BenchmarkSummary, Session, benchmark_step, exit_code, print_results,
};
use crate::commands::rank::{AggregationArgs, print_ranking, ranking};
use crate::output::{self, Format};

/// `podium run` arguments (those of `podium benchmark`).
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub benchmark: BenchmarkArgs,
    #[command(flatten)]
    pub aggregation: AggregationArgs,
}

#[derive(Serialize)]
struct Counts {
    benchmarked: usize,
    skipped: usize,
    restored: usize,
    failed: usize,
}

#[derive(Serialize)]
struct RunReport<'a> {
    #[serde(flatten)]
    summary: &'a BenchmarkSummary,
    counts: Counts,
    ranking: &'a Ranking,
}

/// Runs `podium run`; exit 1 when any backbone failed selection or benchmarking.
pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    let session = Session::open(global)?;
    let selection = session.select(&args.benchmark.backbones);
    let Some(step) = benchmark_step(global, &args.benchmark, &session, &selection)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let ranking = ranking(
        &session,
        &step.orchestrator,
        &step.targets,
        args.aggregation
            .resolve(session.selection.benchmark.latency_aggregation),
    )?;
    let summary = &step.summary;
    match global.format {
        Format::Json => output::print_json(&RunReport {
            summary,
            counts: Counts {
                benchmarked: summary.benchmarked.len(),
                skipped: summary.skipped.len(),
                restored: summary.restored.len(),
                failed: summary.failed.len(),
            },
            ranking: &ranking,
        })?,
        Format::Table => {
            print_results(summary);
            print_ranking(&ranking);
            println!("{}", summary.pipeline_line());
            println!("{}", summary.counts_line());
        }
    }
    Ok(exit_code(summary))
}
