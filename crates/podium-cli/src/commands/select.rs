//! `podium select`: each backbone's champion trial, with the reasons runs lost.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use podium_project::{ChampionReport, GroupCounts, SelectReport, SelectionTiming, StoreAccess};

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

/// Runs `podium select`; exit 1 when some backbone has no champion.
pub fn run(global: &GlobalArgs, args: SelectArgs) -> anyhow::Result<ExitCode> {
    let project = global.open_project(StoreAccess::Existing)?;
    let backbones = project.resolve_backbones(&args.backbones)?;
    if let Some(note) = backbones.note() {
        // stderr keeps `--format json` on stdout a document.
        output::eprint_line(&note);
    }
    let backbones = backbones.names;
    let results = if args.profile {
        let (results, timings) = project.select_profiled(&backbones)?;
        eprintln!("{}", profile_table(&timings));
        results
    } else {
        project.select(&backbones)?
    };
    let report = SelectReport::from(&results);

    match global.format {
        Format::Json => output::print_json(&report).context("writing JSON")?,
        Format::Table => {
            let mut table = output::table([
                "backbone",
                "champion trial",
                "refit run",
                "metric",
                "stable score",
                "schema",
                "eligible groups",
            ]);
            let mut dropped = output::Details::indented(2);
            for (backbone, champion) in &report.champions {
                table.add_row(row(backbone, champion));
                dropped.add(backbone, &champion.dropped.to_string());
            }
            if !table.is_empty() {
                println!("{table}");
                println!("runs left out, by reason:");
                println!("{dropped}");
            }
            if let Some(champion) = report.champions.values().next() {
                let meta = &champion.metadata;
                output::print_wrapped(&format!(
                    "{} ({}); stable score: median of the best {}; a group needs at least {} trial(s); \
                     artifact check: {}; checkpoint from: {}",
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
                ));
            }
            for (backbone, err) in &report.errors {
                output::print_wrapped(&format!("error ({backbone}): {err}"));
            }
        }
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Where each backbone's time went, for stderr.
fn profile_table(timings: &[SelectionTiming]) -> output::Table {
    let seconds = |duration: std::time::Duration| format!("{:.3}", duration.as_secs_f64());
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
    for timing in timings {
        table.add_row(vec![
            timing.backbone.clone(),
            seconds(timing.wall),
            seconds(timing.store),
            seconds(timing.parsing),
            seconds(timing.rules),
            timing.pages.to_string(),
            timing.runs.to_string(),
            timing.rows.to_string(),
        ]);
    }
    table
}

fn row(backbone: &str, report: &ChampionReport) -> Vec<String> {
    let champion = &report.champion;
    let GroupCounts {
        eligible,
        considered,
    } = GroupCounts::of(report);
    vec![
        backbone.to_string(),
        output::short_id(&champion.trial_run_id),
        champion
            .refit_run_id
            .as_deref()
            .map_or_else(|| "-".to_string(), output::short_id),
        format!("{:.4}", champion.metric),
        format!("{:.4}", champion.stable_score),
        report.metadata.schema_version_used.clone(),
        format!("{eligible} of {considered}"),
    ]
}
