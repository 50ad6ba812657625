//! `podium demo`: podium end to end on a generated project, in seconds and with nothing to set up.
//!
//! The first run has podium-fixtures write the demo project (configs, a realistic sweep in an
//! `mlflow.db`, a tiny random checkpoint for every refit), then runs exactly what `podium run`
//! runs against it, then its benchmark step once more, which finds every champion benchmarked
//! and measures nothing (`benchmarked 0, skipped 3`). A later demo keeps everything and measures
//! nothing either.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use podium_fixtures::demo::{self, DEMO_EXPERIMENT_NAME, StudySummary};
use podium_project::{BenchmarkRequest, StoreAccess};

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
    // Narration goes where it does not mix with a JSON document on stdout, wrapped to the
    // output width like everything else shown. It holds paths the user chose (`--dir`):
    // `paragraph` escapes them like any other text from outside, one line per line; tables and
    // detail lists are escaped cell by cell already and printed as the lines they have.
    let show = |text: String| match global.format {
        Format::Table => println!("{text}"),
        Format::Json => eprintln!("{text}"),
    };
    let say = |text: &str| show(output::paragraph(text));
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
            show(studies_table(studies).to_string());
            show("what each study shows:".to_string());
            show(stories(studies).to_string());
        }
        None => say(&format!(
            "Keeping the demo store {} (delete it to start over)",
            paths.db.display()
        )),
    }
    say("");
    show(output::command_text(&format!(
        "$ podium run --root {} --config-dir {} --tracking-uri {}",
        paths.root.display(),
        paths.config_dir.display(),
        paths.tracking_uri()
    )));
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
    if code == ExitCode::SUCCESS
        && let Some(counts) = second_pass(&demo_global)?
    {
        say("");
        say(
            "Once more, as any later `podium run` would go: every champion is benchmarked already, so nothing is measured",
        );
        show(output::command_text(&format!(
            "$ podium run --root {} --config-dir {} --tracking-uri {} --no-report",
            paths.root.display(),
            paths.config_dir.display(),
            paths.tracking_uri()
        )));
        show(counts);
    }
    say("");
    say("Browse the sweep, the benchmark runs and their tags with MLflow's UI:");
    show(output::command_text(&format!(
        "  mlflow ui --backend-store-uri {}",
        paths.tracking_uri()
    )));
    if let Some(report) = report {
        say(&format!("The decision, as one page: {}", report.display()));
    }
    Ok(code)
}

/// `podium run`'s benchmark step once more, when the first pass left nothing to measure: every
/// champion is found benchmarked and skipped. Returns its counts line; `None` when something
/// would still be measured (only a first pass with an interrupt handler measures).
fn second_pass(global: &GlobalArgs) -> anyhow::Result<Option<String>> {
    let project = global.open_project(StoreAccess::Existing)?;
    let mut benchmarks = project.plan_benchmarks(&BenchmarkRequest::default())?;
    if benchmarks.remaining() > 0 {
        return Ok(None);
    }
    let summary = benchmarks.run(&|_| {})?;
    Ok(Some(summary.counts_line()))
}

fn studies_table(studies: &[StudySummary]) -> output::Table {
    // The study key is left to `podium select` and MLflow; what each study shows is a sentence,
    // listed under the table.
    let mut table = output::table(["backbone", "study", "schema", "trials"]);
    for study in studies {
        table.add_row([
            study.backbone.as_str(),
            study.study.as_str(),
            study.schema_version.as_str(),
            study.trials.as_str(),
        ]);
    }
    table
}

fn stories(studies: &[StudySummary]) -> output::Details {
    let mut stories = output::Details::indented(2);
    for study in studies {
        stories.add(&study.study, &study.story);
    }
    stories
}
