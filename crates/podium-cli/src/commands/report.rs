//! `podium report`: the decision as one self-contained HTML page — the recommendation, metric
//! vs latency with the Pareto front, every backbone's study groups, latency per batch size and
//! where every number comes from — built from the same results as `podium rank` (measures
//! nothing). `--log-to-mlflow` also logs it to the benchmark experiment's report run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use podium_project::{ReportOutcome, ReportRequest, StoreAccess};

use crate::GlobalArgs;
use crate::commands::rank::AggregationArgs;
use crate::output::{self, Format};

/// `podium report` arguments.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where to write the page (default: `OUTPUTS/report/<experiment>-report.html`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also log the page as the artifact of the benchmark experiment's report run (created
    /// once, its page replaced on later reports; never counted as a benchmark).
    #[arg(long)]
    pub log_to_mlflow: bool,
    /// Backbones to report on (repeatable); default: every backbone of the HPO config of record.
    #[arg(long = "backbone", value_name = "B")]
    pub backbones: Vec<String>,
    /// HPO config the benchmark workflow is given: the eval fingerprint of champions without
    /// fingerprint tags, and the run.mode a benchmark `run.mode: null` inherits
    /// [default: the experiment's hpo_config].
    #[arg(long, value_name = "FILE")]
    pub hpo_config: Option<PathBuf>,
    #[command(flatten)]
    pub aggregation: AggregationArgs,
}

/// Runs `podium report`; exit 1 when a backbone has no champion or a champion is not ranked
/// (the page is written all the same, saying why).
pub fn run(global: &GlobalArgs, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let project = global.open_project(StoreAccess::Existing)?;
    let outcome = project.report(&ReportRequest {
        backbones: args.backbones,
        hpo_config: args.hpo_config,
        aggregation: args.aggregation.latency_aggregation,
        out: args.out,
        log_to_mlflow: args.log_to_mlflow,
    })?;
    match global.format {
        Format::Json => output::print_json(&outcome)?,
        Format::Table => print_outcome(&outcome),
    }
    Ok(if outcome.errors.is_empty() && outcome.unranked == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a report run says: the recommendation, the MLflow run, then the page's path last.
pub(crate) fn print_outcome(outcome: &ReportOutcome) {
    match &outcome.recommended {
        Some(backbone) => output::print_line(&format!(
            "recommended: {backbone} (composite rank 1 of {} ranked champion(s))",
            outcome.ranked
        )),
        None => println!("no champion is ranked yet: the report says why"),
    }
    for (backbone, err) in &outcome.errors {
        output::print_wrapped(&format!("no champion ({backbone}): {err}"));
    }
    if let Some(run) = &outcome.mlflow {
        output::print_wrapped(&format!(
            "{} report run {} (artifact {})",
            if run.created {
                "logged to new"
            } else {
                "replaced the page of"
            },
            run.run_id,
            run.artifact_path
        ));
        if let Some(url) = &run.url {
            output::print_line(&format!("  {url}"));
        }
    }
    output::print_line(&format!(
        "report: {} ({} KB)",
        outcome.path.display(),
        outcome.bytes.div_ceil(1024)
    ));
}
