//! `podium verify-hashes`: checks that an HPO experiment's trial and refit runs carry their
//! sweep's v2 study_key_hash and schema version, and that refits point at matching trials.

use std::process::ExitCode;

use clap::Args;

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium verify-hashes` arguments.
#[derive(Debug, Args)]
pub struct VerifyHashesArgs {
    /// The HPO experiment to check.
    #[arg(long, value_name = "NAME")]
    pub experiment: String,
    /// Check only this sweep (parent) run and the runs linked to it.
    #[arg(long, value_name = "ID")]
    pub parent_run_id: Option<String>,
}

/// Runs `podium verify-hashes`; exit 1 when any problem is found.
pub fn run(global: &GlobalArgs, args: VerifyHashesArgs) -> anyhow::Result<ExitCode> {
    let report = global
        .project_options()
        .verify_hashes(&args.experiment, args.parent_run_id.as_deref())?;
    match global.format {
        Format::Json => output::print_json(&report)?,
        Format::Table => {
            output::print_wrapped(&format!(
                "experiment {:?} ({}){}: {} sweep(s), {} trial(s), {} refit(s) checked, {} problem(s)",
                report.experiment,
                report.experiment_id,
                report
                    .parent_run_id
                    .as_deref()
                    .map(|id| format!(", sweep {}", output::short_id(id)))
                    .unwrap_or_default(),
                report.sweeps,
                report.trials,
                report.refits,
                report.problems.len()
            ));
            if !report.problems.is_empty() {
                let mut table = output::table(["problem", "run id", "related run", "detail"]);
                for problem in &report.problems {
                    table.add_row(vec![
                        problem.kind.as_str().to_string(),
                        output::short_id(&problem.run_id),
                        problem
                            .related_run_id
                            .as_deref()
                            .map(output::short_id)
                            .unwrap_or_default(),
                        problem.message.clone(),
                    ]);
                }
                println!("{table}");
            }
        }
    }
    Ok(if report.is_consistent() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
