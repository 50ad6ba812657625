//! `podium config check`: load every config file with the loaders the commands use, and say
//! which are broken — and which keys are the pipeline's that podium ignores — before a long run
//! trips over them.

use std::process::ExitCode;

use clap::Subcommand;
use podium_project::config_check::check_config_dir;

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate every config file of --config-dir (the pipeline's layout) with the
    /// loaders the commands use; list the ignored keys; exit 1 on any error.
    Check,
}

/// Runs `podium config`.
pub fn run(global: &GlobalArgs, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check => check(global),
    }
}

fn check(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let report = check_config_dir(&global.config_dir, global.experiment.as_deref())?;
    let files = &report.files;
    match global.format {
        Format::Json => output::print_json(&report)?,
        Format::Table => {
            let mut table = output::table(["File", "Status", "Detail", "Ignored keys"]);
            for verdict in files {
                table.add_row([
                    verdict.file.display().to_string(),
                    if verdict.ok { "OK" } else { "ERROR" }.to_string(),
                    verdict.detail.clone(),
                    verdict.ignored_keys.join(", "),
                ]);
            }
            println!("{table}");
        }
    }
    for verdict in files.iter().filter(|verdict| !verdict.ok) {
        let file = verdict.file.display().to_string();
        if verdict.detail.contains(&file) {
            tracing::error!("{}", verdict.detail);
        } else {
            tracing::error!("{file}: {}", verdict.detail);
        }
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
