//! `podium run`: the main job — select each backbone's champion, benchmark the ones not yet
//! benchmarked, rank them. Ends with `benchmarked N, skipped M, restored K, failed F`.

use std::process::ExitCode;

use clap::Args;
use podium_project::{RunReport, StoreAccess};

use crate::GlobalArgs;
use crate::commands::benchmark::{BenchmarkArgs, benchmark_step, exit_code, print_results};
use crate::commands::rank::{AggregationArgs, print_ranking};
use crate::output::{self, Format};

/// `podium run` arguments (those of `podium benchmark`).
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub benchmark: BenchmarkArgs,
    #[command(flatten)]
    pub aggregation: AggregationArgs,
}

/// Runs `podium run`; exit 1 when any backbone failed selection or benchmarking.
pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    // Benchmark runs go into the store of the HPO runs they measure: it must exist.
    let project = global.open_project(StoreAccess::Existing)?;
    let Some((summary, benchmarks)) = benchmark_step(global, &args.benchmark, &project)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let ranking = benchmarks.ranking(&project, args.aggregation.latency_aggregation)?;
    let code = exit_code(&summary);
    match global.format {
        Format::Json => output::print_json(&RunReport {
            counts: summary.counts(),
            summary,
            ranking,
        })?,
        Format::Table => {
            print_results(&summary);
            print_ranking(&ranking);
            println!("{}", summary.pipeline_line());
            println!("{}", summary.counts_line());
        }
    }
    Ok(code)
}
