//! `podium demo`: podium end to end on a generated project, in seconds and with nothing to set up.
//!
//! The first run has podium-fixtures write the demo project (configs, a realistic sweep in an
//! `mlflow.db`, a tiny random checkpoint for every refit), then runs exactly what `podium run`
//! runs against it. A second run keeps everything and, since every champion is benchmarked
//! already, measures nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use podium_fixtures::demo::{self, DEMO_EXPERIMENT_NAME, StudySummary};

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory of the demo project (configs, mlflow.db, outputs); kept between runs.
    #[arg(long, default_value = "podium-demo")]
    pub dir: PathBuf,
}

/// Runs `podium demo`: prepares the demo project when needed, then `podium run` on it.
pub fn run(global: &GlobalArgs, args: DemoArgs) -> anyhow::Result<ExitCode> {
    // Narration goes where it does not mix with a JSON document on stdout.
    let say = |text: &str| match global.format {
        Format::Table => println!("{text}"),
        Format::Json => eprintln!("{text}"),
    };
    if global.tracking_uri.is_some() {
        tracing::warn!("podium demo uses its own store; --tracking-uri is ignored");
    }
    let prepared = demo::prepare(&args.dir)?;
    let paths = &prepared.paths;
    if prepared.wrote_configs {
        say(&format!(
            "Wrote the demo configs to {} (podium's defaults, experiment `{DEMO_EXPERIMENT_NAME}`, a tiny benchmark)",
            paths.config_dir.display()
        ));
    } else {
        say(&format!(
            "Using the demo configs in {}",
            paths.config_dir.display()
        ));
    }
    match &prepared.generated {
        Some(studies) => {
            say(&format!(
                "Generated the demo sweep in {} and tiny random checkpoints under {}:",
                paths.db.display(),
                paths.root.join("outputs").display()
            ));
            say(&studies_table(studies).to_string());
        }
        None => say(&format!(
            "Keeping the demo store {} (delete it to start over)",
            paths.db.display()
        )),
    }
    say("");
    say(&format!(
        "$ podium run --root {} --config-dir {} --tracking-uri {}",
        paths.root.display(),
        paths.config_dir.display(),
        paths.tracking_uri()
    ));
    let demo_global = GlobalArgs {
        config_dir: paths.config_dir.clone(),
        root: paths.root.clone(),
        tracking_uri: Some(paths.tracking_uri()),
        experiment: None,
        ..global.clone()
    };
    let every_backbone_once = super::run::RunArgs {
        benchmark: super::benchmark::BenchmarkArgs {
            backbones: Vec::new(),
            force: false,
            dry_run: false,
            hpo_config: None,
            lease_seconds: None,
        },
        aggregation: super::rank::AggregationArgs::default(),
        report: true,
        no_report: false,
    };
    let (code, report) = super::run::run_with_report(&demo_global, every_backbone_once)?;
    say("");
    say("Browse the sweep, the benchmark runs and their tags with MLflow's UI:");
    say(&format!(
        "  mlflow ui --backend-store-uri {}",
        paths.tracking_uri()
    ));
    if let Some(report) = report {
        say(&format!("The decision, as one page: {}", report.display()));
    }
    Ok(code)
}

fn studies_table(studies: &[StudySummary]) -> output::Table {
    let mut table = output::table([
        "backbone",
        "study",
        "schema",
        "study key",
        "trials",
        "shows",
    ]);
    for study in studies {
        table.add_row([
            study.backbone.as_str(),
            study.study.as_str(),
            study.schema_version.as_str(),
            study.study_key_hash.as_str(),
            study.trials.as_str(),
            study.story.as_str(),
        ]);
    }
    table
}
