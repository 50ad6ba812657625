//! `podium rank`: the composite ranking of the champions from podium's recorded benchmark
//! results (its runs in the benchmark experiment, aggregated per `latency_aggregation`, else
//! the disk result). Measures nothing; the pipeline's own (PyTorch) runs are never ranked.

use std::process::ExitCode;

use clap::Args;
use podium_project::{LatencyAggregation, Ranking, StoreAccess};

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium rank` arguments.
#[derive(Debug, Args)]
pub struct RankArgs {
    /// Backbones to rank (repeatable); default: every backbone of the HPO config of record.
    #[arg(long = "backbone", value_name = "B")]
    pub backbones: Vec<String>,
    /// HPO config the benchmark key's eval fingerprint (champions without the tag) and a
    /// benchmark `run.mode: null` come from [default: the experiment's hpo_config].
    #[arg(long, value_name = "FILE")]
    pub hpo_config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub aggregation: AggregationArgs,
}

/// How several benchmark runs of one key become one latency.
#[derive(Debug, Clone, Default, Args)]
pub struct AggregationArgs {
    /// latest | median | mean over podium's runs of a key; overrides the selection config's
    /// `benchmark.latency_aggregation` (default latest).
    #[arg(long, value_name = "HOW")]
    pub latency_aggregation: Option<LatencyAggregation>,
}

/// Runs `podium rank`; exit 1 when a backbone has no champion or cannot be ranked.
pub fn run(global: &GlobalArgs, args: RankArgs) -> anyhow::Result<ExitCode> {
    let project = global.open_project(StoreAccess::Existing)?;
    let report = project.ranking(
        &args.backbones,
        args.hpo_config.as_deref(),
        args.aggregation.latency_aggregation,
    )?;
    match global.format {
        Format::Json => output::print_json(&report.ranking)?,
        Format::Table => print_ranking(&report.ranking),
    }
    for (backbone, err) in &report.errors {
        output::eprint_line(&format!("error ({backbone}): {err}"));
    }
    Ok(
        if report.errors.is_empty() && report.ranking.unranked.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// The ranking as a table, what its numbers are, then the unranked champions with their
/// reasons.
pub(crate) fn print_ranking(ranking: &Ranking) {
    let mut table = output::table([
        "rank",
        "backbone",
        "composite",
        "metric",
        "metric score",
        "latency ms",
        "latency score",
        "bench runs",
    ]);
    for ranked in &ranking.ranked {
        table.add_row(vec![
            ranked.rank.to_string(),
            ranked.backbone.clone(),
            format!("{:.4}", ranked.composite_score),
            format!("{:.4}", ranked.metric),
            format!("{:.4}", ranked.metric_score),
            format!("{:.3}", ranked.latency_ms),
            format!("{:.4}", ranked.latency_score),
            ranked.latency_runs.to_string(),
        ]);
    }
    println!("{table}");
    output::print_wrapped(&format!(
        "latency ms: at batch size 1, {} harness, the {} of each run's timed passes, the {} \
         of a key's benchmark runs",
        ranking.harness, ranking.latency_statistic, ranking.latency_aggregation
    ));
    output::print_wrapped(&format!(
        "composite = {:.3} × metric score + {:.3} × latency score (both min-max normalised \
         across the champions, 1 best)",
        ranking.f1_weight, ranking.latency_weight
    ));
    for unranked in &ranking.unranked {
        output::print_wrapped(&format!(
            "unranked ({}): {}",
            unranked.backbone, unranked.reason
        ));
    }
}
