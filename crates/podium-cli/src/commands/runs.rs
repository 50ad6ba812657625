//! `podium runs search`: the runs of an experiment as podium sees them (every page, MLflow's
//! latest metric values, non-finite values spelled as MLflow spells them).

use std::process::ExitCode;

use clap::{Args, Subcommand};
use podium_project::{RunRecord, metric_text};

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium runs …`.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Every run of an experiment matching an MLflow filter (all pages).
    Search(SearchArgs),
}

/// `podium runs search` arguments.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The experiment's name.
    #[arg(long, value_name = "NAME")]
    pub experiment: String,
    /// MLflow filter string, e.g. "tags.`code.backbone` = 'distilbert' AND attributes.status = 'FINISHED'".
    #[arg(long, value_name = "FILTER", default_value = "")]
    pub filter: String,
}

/// Runs `podium runs …`.
pub fn run(global: &GlobalArgs, command: RunsCommand) -> anyhow::Result<ExitCode> {
    match command {
        RunsCommand::Search(args) => search(global, &args),
    }
}

fn search(global: &GlobalArgs, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let report = global
        .project_options()
        .search_runs(&args.experiment, &args.filter)?;
    match global.format {
        Format::Json => output::print_json(&report)?,
        Format::Table => print_table(&report.runs),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(runs: &[RunRecord]) {
    let mut table = output::table(["run_id", "name", "status", "start_time", "metrics"]);
    for run in runs {
        let metrics = run
            .metrics
            .iter()
            .map(|(key, value)| format!("{key}={}", metric_text(*value)))
            .collect::<Vec<_>>()
            .join(" ");
        table.add_row([
            output::short_id(&run.run_id),
            run.run_name.clone(),
            run.status.clone(),
            run.start_time
                .map_or_else(String::new, |time| time.to_string()),
            metrics,
        ]);
    }
    println!("{table}");
    println!("{} run(s)", runs.len());
}
