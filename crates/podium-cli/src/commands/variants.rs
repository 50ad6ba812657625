//! `podium variants` (being written; see issue 2).

use std::process::ExitCode;

use clap::Subcommand;

use crate::GlobalArgs;

/// `podium variants …`.
#[derive(Debug, Subcommand)]
pub enum VariantsCommand {
    /// List existing variants.
    List,
}

/// Runs `podium variants`.
pub fn run(_global: &GlobalArgs, _command: VariantsCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("podium variants is not available yet")
}
