//! `podium verify-hashes`: checks that an HPO experiment's trial and refit runs carry their
//! sweep's v2 study_key_hash and schema version, and that refits point at matching trials.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use podium_champion::verify::verify_hashes;
use podium_keys::TagRegistry;
use podium_mlflow::uri::{TrackingTarget, parse_tracking_uri, redact_uri, resolve_tracking_uri};

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
    let tags = TagRegistry::load(&global.config_dir.join("tags.yaml"))?;
    let uri = resolve_tracking_uri(global.tracking_uri.as_deref(), &|name| {
        std::env::var(name).ok()
    });
    // Opening a missing SQLite file would create an empty database: refuse instead.
    if let TrackingTarget::Sqlite(path) = parse_tracking_uri(&uri)?
        && !path.is_file()
    {
        bail!(
            "tracking store {} does not exist (no file {})",
            redact_uri(&uri),
            path.display()
        );
    }
    let store = podium_mlflow::uri::open_store(Some(&uri))
        .with_context(|| format!("opening tracking store {}", redact_uri(&uri)))?;
    let report = verify_hashes(
        store.as_ref(),
        &tags,
        &args.experiment,
        args.parent_run_id.as_deref(),
    )?;
    match global.format {
        Format::Json => output::print_json(&report)?,
        Format::Table => {
            println!(
                "experiment {:?} ({}){}: {} sweep(s), {} trial(s), {} refit(s) checked, {} problem(s)",
                report.experiment,
                report.experiment_id,
                report
                    .parent_run_id
                    .as_deref()
                    .map(|id| format!(", sweep {id}"))
                    .unwrap_or_default(),
                report.sweeps,
                report.trials,
                report.refits,
                report.problems.len()
            );
            if !report.problems.is_empty() {
                let mut table = output::table(["problem", "run id", "related run", "detail"]);
                for problem in &report.problems {
                    table.add_row(vec![
                        problem.kind.as_str().to_string(),
                        problem.run_id.clone(),
                        problem.related_run_id.clone().unwrap_or_default(),
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
