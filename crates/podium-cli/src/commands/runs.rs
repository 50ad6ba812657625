//! `podium runs search`: the runs of an experiment as podium sees them (every page, MLflow's
//! latest metric values, non-finite values spelled as MLflow spells them).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use podium_mlflow::query::{experiment_by_name, search_all_raw};
use podium_mlflow::uri::{open_existing_store, redact_uri};
use podium_mlflow::{Run, ViewType};
use serde::Serialize;

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

/// One run in `--format json`.
#[derive(Debug, Serialize)]
struct RunJson<'a> {
    run_id: &'a str,
    status: &'a str,
    start_time: Option<i64>,
    end_time: Option<i64>,
    tags: &'a BTreeMap<String, String>,
    params: &'a BTreeMap<String, String>,
    #[serde(serialize_with = "serialize_metrics")]
    metrics: &'a BTreeMap<String, f64>,
}

fn serialize_metrics<S: serde::Serializer>(
    metrics: &&BTreeMap<String, f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    podium_mlflow::model::metric_map::serialize(metrics, serializer)
}

#[derive(Debug, Serialize)]
struct SearchJson<'a> {
    runs: Vec<RunJson<'a>>,
}

/// Runs `podium runs …`.
pub fn run(global: &GlobalArgs, command: RunsCommand) -> anyhow::Result<ExitCode> {
    match command {
        RunsCommand::Search(args) => search(global, &args),
    }
}

fn search(global: &GlobalArgs, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let uri = global.tracking_uri.as_deref();
    let store = open_existing_store(uri).context("opening the tracking store")?;
    let experiment = experiment_by_name(store.as_ref(), &args.experiment)?;
    let runs = search_all_raw(
        store.as_ref(),
        std::slice::from_ref(&experiment.experiment_id),
        &args.filter,
        ViewType::ActiveOnly,
    )
    .with_context(|| {
        format!(
            "searching experiment {:?} in {}",
            args.experiment,
            redact_uri(&store.describe())
        )
    })?;
    tracing::info!("{} run(s) in {}", runs.len(), store.describe());
    match global.format {
        Format::Json => output::print_json(&SearchJson {
            runs: runs.iter().map(run_json).collect(),
        })?,
        Format::Table => print_table(&runs),
    }
    Ok(ExitCode::SUCCESS)
}

fn run_json(run: &Run) -> RunJson<'_> {
    RunJson {
        run_id: run.id(),
        status: run.info.status.as_str(),
        start_time: run.info.start_time,
        end_time: run.info.end_time,
        tags: &run.tags,
        params: &run.params,
        metrics: &run.metrics,
    }
}

fn metric_text(value: f64) -> String {
    podium_mlflow::model::MlflowFloat::non_finite_str(value)
        .map_or_else(|| value.to_string(), str::to_string)
}

fn print_table(runs: &[Run]) {
    let mut table = output::table(["run_id", "name", "status", "start_time", "metrics"]);
    for run in runs {
        let metrics = run
            .metrics
            .iter()
            .map(|(key, value)| format!("{key}={}", metric_text(*value)))
            .collect::<Vec<_>>()
            .join(" ");
        table.add_row([
            run.id().to_string(),
            run.info.run_name.clone(),
            run.info.status.to_string(),
            run.info
                .start_time
                .map_or_else(String::new, |time| time.to_string()),
            metrics,
        ]);
    }
    println!("{table}");
    println!("{} run(s)", runs.len());
}
