//! `podium best-trials`: the best trial of each backbone from MLflow, else the Optuna study
//! files, else the trial metrics on disk, naming the source that answered.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use podium_champion::best_trial::{BestTrial, SelectionScope};
use podium_project::{BestTrialsReport, StoreAccess};

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `--scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// One best trial per backbone.
    Overall,
    /// One best trial per HPO variant, that is per study: study key hash / study folder and
    /// Optuna study name (code.variant is only a label).
    #[value(name = "per_variant", alias = "per-variant")]
    PerVariant,
}

/// `podium best-trials` arguments.
#[derive(Debug, Args)]
pub struct BestTrialsArgs {
    /// Backbones to look at (repeatable); default: every backbone of the HPO config of record.
    #[arg(long = "backbone", value_name = "B")]
    pub backbones: Vec<String>,
    /// One best trial per backbone, or one per variant.
    #[arg(long, value_enum, default_value_t = ScopeArg::Overall)]
    pub scope: ScopeArg,
}

/// Runs `podium best-trials`; exit 1 when some backbone has no answer.
pub fn run(global: &GlobalArgs, args: BestTrialsArgs) -> anyhow::Result<ExitCode> {
    // A store that is not there means "no MLflow runs": the study files and the metrics on
    // disk still answer, and nothing is created.
    let project = global.open_project(StoreAccess::IfExists)?;
    let scope = match args.scope {
        ScopeArg::Overall => SelectionScope::Overall,
        ScopeArg::PerVariant => SelectionScope::PerVariant,
    };
    let retrieved = project.best_trials(&args.backbones, scope)?;
    let report = BestTrialsReport::from(&retrieved);

    match global.format {
        Format::Json => output::print_json(&report).context("writing JSON")?,
        Format::Table => {
            let mut table = output::table([
                "backbone", "study", "variant", "source", "value", "trial", "run id", "params",
            ]);
            let mut keyed_by = std::collections::BTreeSet::new();
            for (backbone, best) in &report.best_trials {
                for (_, trial) in best.trials() {
                    table.add_row(row(backbone, trial));
                    keyed_by.insert(trial.keyed_by);
                }
            }
            println!("{table}");
            if scope == SelectionScope::PerVariant {
                for kind in keyed_by {
                    output::print_line(&format!("studies told apart by: {}", kind.describe()));
                }
            }
            for (backbone, warnings) in &report.warnings {
                if report.best_trials.contains_key(backbone) {
                    for warning in warnings {
                        output::print_line(&format!("warning ({backbone}): {warning}"));
                    }
                }
            }
            for message in report.errors.values() {
                output::print_line(&format!("error: {message}"));
            }
        }
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn row(backbone: &str, trial: &BestTrial) -> Vec<String> {
    let params = trial
        .params
        .iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(text) => format!("{name}={text}"),
            other => format!("{name}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        backbone.to_string(),
        trial.study.clone(),
        trial.variant.clone().unwrap_or_default(),
        trial.source.as_str().to_string(),
        trial.value.to_string(),
        trial
            .trial_number
            .map(|n| n.to_string())
            .unwrap_or_default(),
        trial.run_id.clone().unwrap_or_default(),
        params,
    ]
}
