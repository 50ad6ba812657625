//! `podium best-trials`: the best trial of each backbone from MLflow, else the Optuna study
//! files, else the trial metrics on disk, naming the source that answered.

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use podium_project::{BestTrial, BestTrialsReport, SelectionScope, StoreAccess};

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
        Format::Table => print_table(&report, scope),
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The best trials (a study column when the sources name studies, a variant column when per variant, a trial column when some source
/// numbers them), then their parameters beside each backbone (and study).
fn print_table(report: &BestTrialsReport, scope: SelectionScope) {
    let trials: Vec<(&String, &BestTrial)> = report
        .best_trials
        .iter()
        .flat_map(|(backbone, best)| best.trials().into_iter().map(move |(_, t)| (backbone, t)))
        .collect();
    let per_study = scope == SelectionScope::PerVariant;
    let studies = trials.iter().any(|(_, trial)| !trial.study.is_empty());
    let variants = trials.iter().any(|(_, trial)| trial.variant.is_some());
    let numbers = trials.iter().any(|(_, trial)| trial.trial_number.is_some());
    let mut header = vec!["backbone"];
    header.extend(studies.then_some("study"));
    header.extend(variants.then_some("variant"));
    header.extend(["source", "value"]);
    header.extend(numbers.then_some("trial"));
    header.push("run id");
    let mut table = output::table(header);
    let mut params = output::Details::indented(2);
    for (backbone, trial) in &trials {
        let mut row = vec![backbone.to_string()];
        row.extend(studies.then(|| trial.study.clone()));
        row.extend(variants.then(|| trial.variant.clone().unwrap_or_default()));
        row.extend([
            trial.source.as_str().to_string(),
            output::decimal(trial.value, 4),
        ]);
        row.extend(numbers.then(|| {
            trial
                .trial_number
                .map(|n| n.to_string())
                .unwrap_or_default()
        }));
        row.push(
            trial
                .run_id
                .as_deref()
                .map_or_else(|| "-".to_string(), output::short_id),
        );
        table.add_row(row);
        let label = if per_study {
            format!("{backbone} {}", trial.study)
        } else {
            backbone.to_string()
        };
        params.add(&label, &params_text(trial));
    }
    println!("{table}");
    if !trials.is_empty() {
        println!("parameters:");
        println!("{params}");
    }
    if per_study {
        let keyed_by: std::collections::BTreeSet<_> =
            trials.iter().map(|(_, trial)| trial.keyed_by).collect();
        for kind in keyed_by {
            output::print_wrapped(&format!("studies told apart by: {}", kind.describe()));
        }
    }
    for (backbone, warnings) in &report.warnings {
        if report.best_trials.contains_key(backbone) {
            for warning in warnings {
                output::print_wrapped(&format!("warning ({backbone}): {warning}"));
            }
        }
    }
    for message in report.errors.values() {
        output::print_wrapped(&format!("error: {message}"));
    }
}

fn params_text(trial: &BestTrial) -> String {
    if trial.params.is_empty() {
        return "(none recorded)".to_string();
    }
    trial
        .params
        .iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(text) => format!("{name}={text}"),
            other => format!("{name}={other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
