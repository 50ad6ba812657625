//! `podium benchmark`: benchmark each backbone's champion once. Shows what is done, restored
//! and still to run, measures the rest under claims (safe with concurrent workers), and prints
//! the results — podium's, and apart from them the runs the pipeline measured itself.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use podium_bench::claim::{self, Claims};
use podium_bench::orchestrate::{
    BenchmarkOutcome, BenchmarkSettings, BenchmarkTarget, CheckpointMeasurer, Event, InFlight,
    Orchestrator, OrchestratorOptions, Outcome, PipelineResult, PlanStatus, PlannedBenchmark,
};
use podium_champion::config::SELECTION_CONFIG_FILE;
use podium_champion::{SelectionConfig, SelectionResults, Selector};
use podium_keys::TagRegistry;
use podium_mlflow::TrackingStore;
use podium_mlflow::uri::{redact_uri, resolve_tracking_uri};
use podium_variants::{Environment, ExperimentConfig, OutputLayout};
use serde::Serialize;

use crate::GlobalArgs;
use crate::output::{self, Format};

/// Options shared by `podium benchmark` and `podium run`.
#[derive(Debug, Clone, Args)]
pub struct BenchmarkArgs {
    /// Backbones to benchmark (repeatable); default: every backbone of the HPO config of record.
    #[arg(long = "backbone", value_name = "B")]
    pub backbones: Vec<String>,
    /// Measure again even when a result exists (like run.mode: force_new).
    #[arg(long)]
    pub force: bool,
    /// Show what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// HPO config whose run.mode a benchmark `run.mode: null` inherits
    /// [default: CONFIG_DIR/hpo/prod.yaml].
    #[arg(long, value_name = "FILE")]
    pub hpo_config: Option<PathBuf>,
    /// Claim lease in seconds: a worker that dies is replaced after this long.
    #[arg(long, value_name = "SECONDS", env = claim::LEASE_ENV)]
    pub lease_seconds: Option<f64>,
}

/// The configs and store every orchestration command needs.
pub(crate) struct Session {
    pub store: Arc<dyn TrackingStore>,
    pub experiments: ExperimentConfig,
    pub tags: TagRegistry,
    pub selection: SelectionConfig,
    pub environment: Environment,
    pub layout: OutputLayout,
}

impl Session {
    pub fn open(global: &GlobalArgs) -> anyhow::Result<Session> {
        let experiments =
            ExperimentConfig::from_config_dir(&global.config_dir, global.experiment.as_deref())?;
        let tags = TagRegistry::load(&global.config_dir.join("tags.yaml"))?;
        let selection = SelectionConfig::load(&global.config_dir.join(SELECTION_CONFIG_FILE))?;
        let environment = Environment::detect()?;
        let layout = OutputLayout::new(&global.root);
        let uri = resolve_tracking_uri(global.tracking_uri.as_deref(), &|name| {
            std::env::var(name).ok()
        });
        let store: Arc<dyn TrackingStore> = Arc::from(
            podium_mlflow::open_store(Some(&uri))
                .with_context(|| format!("opening tracking store {}", redact_uri(&uri)))?,
        );
        Ok(Session {
            store,
            experiments,
            tags,
            selection,
            environment,
            layout,
        })
    }

    /// Every requested backbone's champion.
    pub fn select(&self, backbones: &[String]) -> SelectionResults {
        Selector {
            store: self.store.as_ref(),
            config: &self.selection,
            tags: &self.tags,
            layout: &self.layout,
            environment: &self.environment,
        }
        .select_many(self.experiments.backbones_or(backbones), &self.experiments)
    }

    pub fn settings(
        &self,
        global: &GlobalArgs,
        args: &BenchmarkArgs,
    ) -> anyhow::Result<BenchmarkSettings> {
        let hpo_config = args
            .hpo_config
            .clone()
            .unwrap_or_else(|| global.config_dir.join("hpo").join("prod.yaml"));
        Ok(BenchmarkSettings::load(
            &global.config_dir,
            &hpo_config,
            args.force,
        )?)
    }

    pub fn orchestrator(
        &self,
        global: &GlobalArgs,
        settings: BenchmarkSettings,
        lease_seconds: Option<f64>,
        in_flight: InFlight,
    ) -> anyhow::Result<Orchestrator> {
        let lease = match lease_seconds {
            Some(seconds) => claim::parse_lease(&seconds.to_string()).with_context(|| {
                format!(
                    "--lease-seconds (or {}) {seconds}: expected a number of seconds in (0, {}]",
                    claim::LEASE_ENV,
                    claim::MAX_LEASE.as_secs()
                )
            })?,
            None => claim::DEFAULT_LEASE,
        };
        let measurer = CheckpointMeasurer::new(settings.config.clone(), &global.root);
        Ok(Orchestrator::new(OrchestratorOptions {
            store: self.store.clone(),
            tags: self.tags.clone(),
            layout: self.layout.clone(),
            environment: self.environment.clone(),
            benchmark_experiment: self.experiments.benchmark_experiment_name(),
            settings,
            claims: Claims::new(self.store.clone(), claim::worker_id(), lease, &self.tags),
            in_flight,
            measurer: Box::new(measurer),
            poll_interval: (lease / 10).clamp(Duration::from_millis(200), Duration::from_secs(5)),
        }))
    }
}

/// What `podium benchmark` (and the benchmark step of `podium run`) did.
#[derive(Debug, Default, Serialize)]
pub(crate) struct BenchmarkSummary {
    pub benchmarked: Vec<String>,
    pub skipped: Vec<String>,
    pub restored: Vec<String>,
    pub failed: BTreeMap<String, String>,
    #[serde(serialize_with = "serialize_results")]
    pub results: BTreeMap<String, BTreeMap<String, f64>>,
    /// FINISHED runs the pipeline measured for these champions: not podium's results.
    pub pipeline_results: Vec<PipelineResult>,
    #[serde(skip)]
    pub outcomes: Vec<BenchmarkOutcome>,
}

fn serialize_results<S: serde::Serializer>(
    results: &BTreeMap<String, BTreeMap<String, f64>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(results.len()))?;
    for (backbone, metrics) in results {
        map.serialize_entry(backbone, &Metrics(metrics))?;
    }
    map.end()
}

struct Metrics<'a>(&'a BTreeMap<String, f64>);

impl Serialize for Metrics<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        podium_mlflow::model::metric_map::serialize(self.0, serializer)
    }
}

impl BenchmarkSummary {
    /// The line scripts (and the demo) rely on.
    pub fn counts_line(&self) -> String {
        format!(
            "benchmarked {}, skipped {}, restored {}, failed {}",
            self.benchmarked.len(),
            self.skipped.len(),
            self.restored.len(),
            self.failed.len()
        )
    }

    /// How many of the champions' results the pipeline measured (shown, never counted).
    pub fn pipeline_line(&self) -> String {
        format!(
            "measured by the pipeline: {} (not podium's harness: not counted, not ranked)",
            self.pipeline_results.len()
        )
    }

    fn record(&mut self, outcome: BenchmarkOutcome) {
        let backbone = outcome.backbone.clone();
        match outcome.outcome {
            Outcome::Benchmarked => self.benchmarked.push(backbone.clone()),
            Outcome::Skipped => self.skipped.push(backbone.clone()),
            Outcome::RestoredCache | Outcome::RestoredMlflow => {
                self.restored.push(backbone.clone());
            }
            Outcome::Failed => {
                self.failed.insert(
                    backbone.clone(),
                    outcome
                        .error
                        .clone()
                        .unwrap_or_else(|| "failed".to_string()),
                );
            }
        }
        if outcome.outcome != Outcome::Failed {
            self.results.insert(backbone, outcome.metrics.clone());
        }
        self.outcomes.push(outcome);
    }
}

/// Runs `podium benchmark`; exit 1 when any champion could not be selected or benchmarked.
pub fn run(global: &GlobalArgs, args: BenchmarkArgs) -> anyhow::Result<ExitCode> {
    let session = Session::open(global)?;
    let selection = session.select(&args.backbones);
    let Some(step) = benchmark_step(global, &args, &session, &selection)? else {
        return Ok(ExitCode::SUCCESS);
    };
    match global.format {
        Format::Json => output::print_json(&step.summary)?,
        Format::Table => {
            print_results(&step.summary);
            println!("{}", step.summary.pipeline_line());
            println!("{}", step.summary.counts_line());
        }
    }
    Ok(exit_code(&step.summary))
}

pub(crate) fn exit_code(summary: &BenchmarkSummary) -> ExitCode {
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The benchmark step's results and the champions it covered.
pub(crate) struct BenchmarkStep {
    pub summary: BenchmarkSummary,
    pub targets: Vec<BenchmarkTarget>,
    pub orchestrator: Orchestrator,
}

/// Plans and (unless `--dry-run`, which prints the plan and returns `None`) benchmarks the
/// selected champions. Selection errors count as failures.
pub(crate) fn benchmark_step(
    global: &GlobalArgs,
    args: &BenchmarkArgs,
    session: &Session,
    selection: &SelectionResults,
) -> anyhow::Result<Option<BenchmarkStep>> {
    let settings = session.settings(global, args)?;
    let in_flight = InFlight::new(session.store.clone(), &session.tags);
    let orchestrator =
        session.orchestrator(global, settings, args.lease_seconds, in_flight.clone())?;
    let targets: Vec<BenchmarkTarget> = selection
        .champions
        .values()
        .map(|report| BenchmarkTarget::new(report, orchestrator.settings()))
        .collect();
    let plan = orchestrator.plan(targets.clone())?;
    if args.dry_run {
        print_plan(global.format, &plan, selection)?;
        return Ok(None);
    }
    if global.format == Format::Table {
        print_plan(global.format, &plan, selection)?;
    }
    install_interrupt_handler(in_flight);

    let remaining = plan
        .iter()
        .filter(|planned| !matches!(planned.status, PlanStatus::Done(_)))
        .count();
    let progress = progress_bar(global, remaining);
    let outcomes = orchestrator.run(plan, &|event| match event {
        Event::Measuring(target) => progress.set_message(format!("measuring {}", target.backbone)),
        Event::Waiting { target, owner, .. } => progress.set_message(format!(
            "{}: waiting for worker {}",
            target.backbone,
            owner.unwrap_or("(starting)")
        )),
        Event::Settled(outcome) => {
            if outcome.outcome != Outcome::Skipped {
                progress.inc(1);
            }
        }
    });
    progress.finish_and_clear();

    let mut summary = BenchmarkSummary::default();
    for (backbone, err) in &selection.errors {
        summary
            .failed
            .insert(backbone.clone(), format!("champion selection: {err}"));
    }
    for outcome in outcomes {
        summary.record(outcome);
    }
    summary.pipeline_results = orchestrator
        .pipeline_results(&targets)
        .context("looking up benchmark runs the pipeline measured")?;
    Ok(Some(BenchmarkStep {
        summary,
        targets,
        orchestrator,
    }))
}

/// Ctrl-C, SIGTERM (what `timeout`, Docker, Kubernetes and Slurm send) and SIGHUP mark
/// in-flight benchmark runs KILLED and release claims, then exit 130.
fn install_interrupt_handler(in_flight: InFlight) {
    let installed = ctrlc::set_handler(move || {
        let killed = in_flight.interrupt_all();
        eprintln!(
            "interrupted (Ctrl-C or SIGTERM): {killed} benchmark run(s) marked KILLED, claims released"
        );
        std::process::exit(130);
    });
    if let Err(err) = installed {
        tracing::warn!("cannot install the Ctrl-C handler: {err}");
    }
}

fn progress_bar(global: &GlobalArgs, length: usize) -> ProgressBar {
    if length == 0 || global.quiet > 0 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

#[derive(Serialize)]
struct PlanEntry<'a> {
    status: &'static str,
    key: &'a str,
    champion_run_id: &'a str,
    reason: Option<&'a str>,
}

#[derive(Serialize)]
struct DryRun<'a> {
    dry_run: bool,
    plan: BTreeMap<&'a str, PlanEntry<'a>>,
    failed: BTreeMap<&'a str, String>,
}

fn print_plan(
    format: Format,
    plan: &[PlannedBenchmark],
    selection: &SelectionResults,
) -> anyhow::Result<()> {
    match format {
        Format::Json => output::print_json(&DryRun {
            dry_run: true,
            plan: plan
                .iter()
                .map(|planned| {
                    let reason = match &planned.status {
                        PlanStatus::ToRun(reason) => Some(reason.as_str()),
                        _ => None,
                    };
                    (
                        planned.target.backbone.as_str(),
                        PlanEntry {
                            status: planned.status.label(),
                            key: &planned.target.key,
                            champion_run_id: &planned.target.champion.run_id,
                            reason,
                        },
                    )
                })
                .collect(),
            failed: selection
                .errors
                .iter()
                .map(|(backbone, err)| (backbone.as_str(), err.to_string()))
                .collect(),
        }),
        Format::Table => {
            let mut table = output::table(["backbone", "champion run", "status", "why"]);
            for planned in plan {
                let (status, why) = match &planned.status {
                    PlanStatus::Done(run) => ("done (skip)", format!("FINISHED run {}", run.id())),
                    PlanStatus::RestoreCache(run) => {
                        ("restore cache", format!("from FINISHED run {}", run.id()))
                    }
                    PlanStatus::RestoreMlflow(_) => {
                        ("restore MLflow", "from the disk cache".to_string())
                    }
                    PlanStatus::ToRun(reason) => ("to run", reason.clone()),
                };
                table.add_row(vec![
                    planned.target.backbone.clone(),
                    planned.target.champion.run_id.clone(),
                    status.to_string(),
                    why,
                ]);
            }
            for (backbone, err) in &selection.errors {
                table.add_row(vec![
                    backbone.clone(),
                    "-".to_string(),
                    "no champion".to_string(),
                    err.to_string(),
                ]);
            }
            println!("{table}");
            let to_run = plan
                .iter()
                .filter(|planned| !matches!(planned.status, PlanStatus::Done(_)))
                .count();
            if to_run == 0 {
                println!("nothing to measure: every champion is already benchmarked");
            }
            Ok(())
        }
    }
}

fn metric_cell(metrics: &BTreeMap<String, f64>, name: &str) -> String {
    metrics
        .get(name)
        .map_or_else(|| "-".to_string(), |value| format!("{value:.3}"))
}

pub(crate) fn print_results(summary: &BenchmarkSummary) {
    let mut table = output::table([
        "backbone",
        "outcome",
        "latency b1 ms (mean)",
        "p50 ms",
        "p95 ms",
        "throughput b1 seq/s",
        "benchmark run",
    ]);
    for outcome in &summary.outcomes {
        let label = match outcome.outcome {
            Outcome::Benchmarked => "benchmarked",
            Outcome::Skipped => "skipped",
            Outcome::RestoredCache => "restored (cache)",
            Outcome::RestoredMlflow => "restored (MLflow)",
            Outcome::Failed => "FAILED",
        };
        table.add_row(vec![
            outcome.backbone.clone(),
            label.to_string(),
            metric_cell(&outcome.metrics, "latency_batch_1_ms"),
            metric_cell(&outcome.metrics, "latency_batch_1_p50_ms"),
            metric_cell(&outcome.metrics, "latency_batch_1_p95_ms"),
            metric_cell(&outcome.metrics, "throughput_batch_1_seq_per_s"),
            outcome
                .benchmark_run_id
                .clone()
                .unwrap_or_else(|| "-".to_string()),
        ]);
    }
    println!("{table}");
    if !summary.pipeline_results.is_empty() {
        let mut pipeline = output::table([
            "backbone",
            "pipeline run",
            "found by",
            "latency b1 ms (mean)",
            "p95 ms",
        ]);
        for result in &summary.pipeline_results {
            pipeline.add_row(vec![
                result.backbone.clone(),
                result.run_id.clone(),
                match result.matched_by {
                    podium_bench::orchestrate::MatchedBy::BenchmarkKey => "benchmark key",
                    podium_bench::orchestrate::MatchedBy::StudyTrialHash => "study + trial hash",
                }
                .to_string(),
                metric_cell(&result.metrics, "latency_batch_1_ms"),
                metric_cell(&result.metrics, "latency_batch_1_p95_ms"),
            ]);
        }
        println!("measured by the pipeline (PyTorch; shown apart, never ranked):");
        println!("{pipeline}");
    }
    for (backbone, message) in &summary.failed {
        println!("error ({backbone}): {message}");
    }
}
