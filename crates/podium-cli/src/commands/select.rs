//! `podium select`: each backbone's champion trial, with the reasons runs lost.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use podium_champion::config::SELECTION_CONFIG_FILE;
use podium_champion::selection::GroupStatus;
use podium_champion::{ChampionReport, SelectionConfig, SelectionResults, Selector};
use podium_keys::TagRegistry;
use podium_mlflow::uri::{TrackingTarget, parse_tracking_uri, redact_uri, resolve_tracking_uri};
use podium_variants::{Environment, ExperimentConfig, OutputLayout};
use serde::Serialize;

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium select` arguments.
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Backbones to select (repeatable); default: every backbone of the HPO config of record.
    #[arg(long = "backbone", value_name = "B")]
    pub backbones: Vec<String>,
    /// Print to stderr where each backbone's time went: waiting on the store, parsing its
    /// answers, and the selection rules. Backbones are then selected one after another.
    #[arg(long)]
    pub profile: bool,
}

#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    champions: BTreeMap<&'a str, &'a ChampionReport>,
    errors: BTreeMap<&'a str, String>,
}

/// Runs `podium select`; exit 1 when some backbone has no champion.
pub fn run(global: &GlobalArgs, args: SelectArgs) -> anyhow::Result<ExitCode> {
    let experiments =
        ExperimentConfig::from_config_dir(&global.config_dir, global.experiment.as_deref())?;
    let tags = TagRegistry::load(&global.config_dir.join("tags.yaml"))?;
    let config = SelectionConfig::load(&global.config_dir.join(SELECTION_CONFIG_FILE))?;
    let environment = Environment::detect()?;
    let layout = OutputLayout::new(&global.root);

    let uri = resolve_tracking_uri(global.tracking_uri.as_deref(), &|name| {
        std::env::var(name).ok()
    });
    // Selecting reads; it must not create an empty database where the user mistyped a path.
    if let TrackingTarget::Sqlite(path) = parse_tracking_uri(&uri)?
        && !path.is_file()
    {
        anyhow::bail!(
            "tracking store {} does not exist ({} is not a file)",
            redact_uri(&uri),
            path.display()
        );
    }
    let store = podium_mlflow::uri::open_store(Some(&uri))
        .with_context(|| format!("opening tracking store {}", redact_uri(&uri)))?;

    let backbones = experiments.backbones_or(&args.backbones).to_vec();
    let selector = Selector {
        store: store.as_ref(),
        config: &config,
        tags: &tags,
        layout: &layout,
        environment: &environment,
    };
    let results = if args.profile {
        select_profiled(&selector, &backbones, &experiments)
    } else {
        selector.select_many(&backbones, &experiments)
    };

    match global.format {
        Format::Json => output::print_json(&JsonReport {
            champions: results
                .champions
                .iter()
                .map(|(backbone, report)| (backbone.as_str(), report))
                .collect(),
            errors: results
                .errors
                .iter()
                .map(|(backbone, err)| (backbone.as_str(), err.to_string()))
                .collect(),
        })
        .context("writing JSON")?,
        Format::Table => {
            let mut table = output::table([
                "backbone",
                "champion trial run",
                "refit run",
                "metric",
                "stable score",
                "schema",
                "groups (eligible/considered)",
                "dropped runs",
            ]);
            for (backbone, report) in &results.champions {
                table.add_row(row(backbone, report));
            }
            println!("{table}");
            if let Some(report) = results.champions.values().next() {
                let meta = &report.metadata;
                println!(
                    "{} ({}), median of best {}, min {} trials per group, artifact check: {}, \
                     checkpoint from: {}",
                    meta.metric,
                    meta.direction,
                    meta.top_k_for_stable_score,
                    meta.min_trials_per_group,
                    if meta.require_artifact_available {
                        meta.artifact_check_source.to_string()
                    } else {
                        "off".to_string()
                    },
                    meta.checkpoint_source,
                );
            }
            for (backbone, err) in &results.errors {
                println!("error ({backbone}): {err}");
            }
        }
    }
    Ok(if results.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `select_many`, one backbone at a time so that each one's store and parsing time is its own,
/// with a timing table on stderr. The rules' time is what remains of the backbone's wall time.
fn select_profiled(
    selector: &Selector<'_>,
    backbones: &[String],
    experiments: &ExperimentConfig,
) -> SelectionResults {
    podium_mlflow::timing::enable();
    let seconds = |duration: std::time::Duration| format!("{:.3}", duration.as_secs_f64());
    let mut results = SelectionResults::default();
    let mut table = output::table([
        "backbone",
        "wall s",
        "store s",
        "parsing s",
        "rules s",
        "pages",
        "runs",
        "entries",
    ]);
    let mut unique: Vec<&String> = backbones.iter().collect();
    unique.sort();
    unique.dedup();
    for backbone in unique {
        let before = podium_mlflow::timing::snapshot();
        let started = std::time::Instant::now();
        let answer = selector.select(backbone, &experiments.hpo_experiment_name(backbone));
        let wall = started.elapsed();
        let spent = podium_mlflow::timing::snapshot().since(&before);
        table.add_row(vec![
            backbone.clone(),
            seconds(wall),
            seconds(spent.store),
            seconds(spent.parsing),
            seconds(wall.saturating_sub(spent.store + spent.parsing)),
            spent.pages.to_string(),
            spent.runs.to_string(),
            spent.rows.to_string(),
        ]);
        match answer {
            Ok(report) => {
                results.champions.insert(backbone.clone(), report);
            }
            Err(err) => {
                tracing::warn!("{err}");
                results.errors.insert(backbone.clone(), err);
            }
        }
    }
    eprintln!("{table}");
    results
}

fn row(backbone: &str, report: &ChampionReport) -> Vec<String> {
    let champion = &report.champion;
    let considered = report
        .groups
        .iter()
        .filter(|group| group.status != GroupStatus::SchemaNotUsed)
        .count();
    let eligible = report
        .groups
        .iter()
        .filter(|group| group.rank.is_some())
        .count();
    vec![
        backbone.to_string(),
        champion.trial_run_id.clone(),
        champion
            .refit_run_id
            .clone()
            .unwrap_or_else(|| "-".to_string()),
        champion.metric.to_string(),
        champion.stable_score.to_string(),
        report.metadata.schema_version_used.clone(),
        format!("{eligible}/{considered}"),
        report.dropped.to_string(),
    ]
}
