//! `podium best-trials`: the best trial of each backbone from MLflow, else the Optuna study
//! files, else the trial metrics on disk, naming the source that answered.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use podium_champion::SelectionConfig;
use podium_champion::best_trial::{
    BestTrial, BestTrials, RetrievalContext, SelectionScope, retrieve_best_trials,
};
use podium_keys::TagRegistry;
use podium_mlflow::TrackingStore;
use podium_mlflow::uri::{TrackingTarget, parse_tracking_uri, redact_uri, resolve_tracking_uri};
use podium_variants::{Environment, ExperimentConfig, OutputLayout};
use serde::Serialize;

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `--scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScopeArg {
    /// One best trial per backbone.
    Overall,
    /// One best trial per HPO variant (code.variant tag / study folder).
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

#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    best_trials: BTreeMap<&'a str, &'a BestTrials>,
    errors: BTreeMap<&'a str, &'a str>,
    warnings: BTreeMap<&'a str, &'a [String]>,
}

/// Runs `podium best-trials`; exit 1 when some backbone has no answer.
pub fn run(global: &GlobalArgs, args: BestTrialsArgs) -> anyhow::Result<ExitCode> {
    let experiment =
        ExperimentConfig::from_config_dir(&global.config_dir, global.experiment.as_deref())?;
    let tags = TagRegistry::load(&global.config_dir.join("tags.yaml"))?;
    let objective =
        SelectionConfig::load(&global.config_dir.join("best_model_selection.yaml"))?.objective;
    let environment = Environment::detect()?;
    let layout = OutputLayout::new(&global.root);
    let store = open_existing_store(global.tracking_uri.as_deref());
    let backbones = experiment.backbones_or(&args.backbones).to_vec();
    let context = RetrievalContext {
        store: store.as_deref(),
        experiment: &experiment,
        tags: &tags,
        objective: &objective,
        scope: match args.scope {
            ScopeArg::Overall => SelectionScope::Overall,
            ScopeArg::PerVariant => SelectionScope::PerVariant,
        },
        layout: &layout,
        environment: &environment,
    };
    let report = retrieve_best_trials(&context, &backbones);

    match global.format {
        Format::Json => {
            let mut warnings: BTreeMap<&str, &[String]> = BTreeMap::new();
            for (backbone, found) in &report.found {
                if !found.warnings.is_empty() {
                    warnings.insert(backbone, &found.warnings);
                }
            }
            for (backbone, failed) in &report.failed {
                if !failed.warnings.is_empty() {
                    warnings.insert(backbone, &failed.warnings);
                }
            }
            output::print_json(&JsonReport {
                best_trials: report
                    .found
                    .iter()
                    .map(|(backbone, found)| (backbone.as_str(), &found.best))
                    .collect(),
                errors: report
                    .failed
                    .iter()
                    .map(|(backbone, failed)| (backbone.as_str(), failed.message.as_str()))
                    .collect(),
                warnings,
            })
            .context("writing JSON")?;
        }
        Format::Table => {
            let mut table = output::table([
                "backbone", "variant", "source", "value", "trial", "run id", "params",
            ]);
            for (backbone, found) in &report.found {
                for (_, trial) in found.best.trials() {
                    table.add_row(row(backbone, trial));
                }
            }
            println!("{table}");
            for (backbone, found) in &report.found {
                for warning in &found.warnings {
                    println!("warning ({backbone}): {warning}");
                }
            }
            for failed in report.failed.values() {
                println!("error: {}", failed.message);
            }
        }
    }
    Ok(if report.failed.is_empty() {
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

/// The tracking store, or `None` (with a warning) when it cannot be used. Reading must not
/// create anything: a SQLite URI whose file does not exist means "no MLflow runs", not a new
/// empty database.
fn open_existing_store(explicit: Option<&str>) -> Option<Box<dyn TrackingStore>> {
    let uri = resolve_tracking_uri(explicit, &|name| std::env::var(name).ok());
    match parse_tracking_uri(&uri) {
        Ok(TrackingTarget::Sqlite(path)) if !path.is_file() => {
            tracing::warn!(
                "tracking store {} does not exist; skipping MLflow",
                redact_uri(&uri)
            );
            return None;
        }
        Ok(_) => {}
        Err(err) => {
            tracing::warn!("cannot use tracking URI ({err}); skipping MLflow");
            return None;
        }
    }
    match podium_mlflow::uri::open_store(Some(&uri)) {
        Ok(store) => Some(store),
        Err(err) => {
            tracing::warn!("cannot open tracking store ({err}); skipping MLflow");
            None
        }
    }
}
