//! `podium run`: the main job — select each backbone's champion, benchmark the ones not yet
//! benchmarked, rank them, and write the report page from those results (`--no-report` to
//! skip it). Ends with the page's path, then `benchmarked N, skipped M, restored K, failed F`.

use std::path::PathBuf;
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
    /// Write the report page after ranking (the default): `podium report`'s page, from the
    /// results just ranked.
    #[arg(long, overrides_with = "no_report")]
    pub report: bool,
    /// Do not write the report page.
    #[arg(long, overrides_with = "report")]
    pub no_report: bool,
}

/// Runs `podium run`; exit 1 when any backbone failed selection or benchmarking.
pub fn run(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<ExitCode> {
    Ok(run_with_report(global, args)?.0)
}

/// [`run`], also returning where the report page was written (none with `--no-report` or
/// `--dry-run`).
pub fn run_with_report(
    global: &GlobalArgs,
    args: RunArgs,
) -> anyhow::Result<(ExitCode, Option<PathBuf>)> {
    // Benchmark runs go into the store of the HPO runs they measure: it must exist.
    let project = global.open_project(StoreAccess::Existing)?;
    let Some((summary, benchmarks)) = benchmark_step(global, &args.benchmark, &project)? else {
        return Ok((ExitCode::SUCCESS, None));
    };
    let ranked = benchmarks.ranked(&project, args.aggregation.latency_aggregation)?;
    let mut code = exit_code(&summary);
    let report = if args.no_report {
        None
    } else {
        match benchmarks.write_report(&project, &ranked, &summary.pipeline_results, None, false) {
            Ok(outcome) => Some(outcome),
            Err(err) => {
                output::eprint_line(&format!("error (report): {err}"));
                code = ExitCode::FAILURE;
                None
            }
        }
    };
    let path = report.as_ref().map(|outcome| outcome.path.clone());
    match global.format {
        Format::Json => output::print_json(&RunReport {
            counts: summary.counts(),
            summary,
            ranking: ranked.ranking,
            report,
        })?,
        Format::Table => {
            print_results(&summary);
            print_ranking(&ranked.ranking);
            println!("{}", summary.pipeline_line());
            // The counts line stays the last one: scripts read it there.
            if let Some(outcome) = &report {
                output::print_line(&format!("report: {}", outcome.path.display()));
            }
            println!("{}", summary.counts_line());
        }
    }
    Ok((code, path))
}
