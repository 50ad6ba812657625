//! `podium`: champion selection and idempotent benchmarking for Optuna + MLflow sweeps.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod commands;
mod exit;
mod layout;
mod output;

use output::Format;

/// Which trial is the champion of each backbone, and how fast is its checkpoint?
#[derive(Debug, Parser)]
#[command(name = "podium", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand understands.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Directory holding the YAML configs, laid out as the pipeline's config/ folder
    /// (`experiment/<name>.yaml`, benchmark.yaml, best_model_selection.yaml, tags.yaml, …).
    #[arg(long, global = true, default_value = "config")]
    pub config_dir: PathBuf,
    /// The experiment to use: the stem of `config/experiment/<name>.yaml` or its experiment_name
    /// (default: the only one).
    #[arg(long, global = true, env = "PODIUM_EXPERIMENT")]
    pub experiment: Option<String>,
    /// Project root; outputs live under ROOT/outputs.
    #[arg(long, global = true, default_value = ".")]
    pub root: PathBuf,
    /// MLflow tracking URI (else MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).
    #[arg(long, global = true)]
    pub tracking_uri: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Tables with whole run ids (else their first 12 characters) and as wide as their content
    /// (else fitted to COLUMNS, the terminal, or 100 columns, wrapping between words).
    #[arg(long, global = true)]
    pub wide: bool,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q errors only, -qq nothing).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,
}

impl GlobalArgs {
    /// Where the project is, as the flags say.
    pub fn project_options(&self) -> podium_project::ProjectOptions {
        podium_project::ProjectOptions::new(&self.config_dir, &self.root)
            .experiment(self.experiment.clone())
            .tracking_uri(self.tracking_uri.clone())
    }

    /// The project of the flags, its store opened under the rule of `access`.
    pub fn open_project(
        &self,
        access: podium_project::StoreAccess,
    ) -> anyhow::Result<podium_project::Project> {
        Ok(self.project_options().open(access)?)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HPO and final-training variants: list them, or compute the next one.
    #[command(subcommand)]
    Variants(commands::variants::VariantsCommand),
    /// Config files: check that every one loads and validates.
    #[command(subcommand)]
    Config(commands::config::ConfigCommand),
    /// The best trial of each backbone: MLflow, else Optuna study.db, else trial metrics on disk.
    BestTrials(commands::best_trials::BestTrialsArgs),
    /// Check that trial/refit runs carry their sweep's v2 study_key_hash and matching links.
    VerifyHashes(commands::verify_hashes::VerifyHashesArgs),
    /// MLflow runs as podium sees them: search an experiment (every page).
    #[command(subcommand)]
    Runs(commands::runs::RunsCommand),
    /// Each backbone's champion trial: study groups, stable scores, refit run, and why runs lost.
    Select(commands::select::SelectArgs),
    /// Python-compatible keys: canonical JSON, study/trial/benchmark keys, fingerprints, hashes.
    #[command(subcommand)]
    Keys(commands::keys::KeysCommand),
    /// Time one checkpoint directory with the candle runtime (no MLflow): latency per batch size.
    BenchModel(commands::bench_model::BenchModelArgs),
    /// Benchmark each backbone's champion once (skips, restores, claims for concurrent workers).
    Benchmark(commands::benchmark::BenchmarkArgs),
    /// Composite ranking of the champions from their benchmark results.
    Rank(commands::rank::RankArgs),
    /// The main job: select champions, benchmark those not yet benchmarked, rank them.
    Run(commands::run::RunArgs),
    /// The decision as one self-contained HTML page (recommendation, Pareto front, groups).
    Report(commands::report::ReportArgs),
    /// Try podium end to end: a generated sweep of three backbones, then `podium run` on it.
    Demo(commands::demo::DemoArgs),
}

fn init_logging(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (q, _) if q >= 2 => "off",
        (1, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PODIUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Log messages carry store and config text (run names, server errors): they go through
    // the same escaping as everything else shown, so no colour codes of podium's own either.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| output::EscapingWriter(std::io::stderr()))
        .with_ansi(false)
        .with_target(false)
        .init();
}

fn main() -> ExitCode {
    exit::quiet_on_broken_pipe();
    let cli = Cli::parse();
    init_logging(&cli.global);
    layout::init(cli.global.wide);
    let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(cli))) {
        Ok(Ok(code)) => exit::refine(code),
        Ok(Err(err)) => exit::report(&err),
        Err(payload) => match exit::print_failure(payload.as_ref()) {
            Some(message) => return exit::output_failed(message),
            None => std::panic::resume_unwind(payload),
        },
    };
    // What is still buffered must reach stdout too, or the command failed.
    if let Err(err) = std::io::Write::flush(&mut std::io::stdout()) {
        return exit::output_failed(&format!("failed printing to stdout: {err}"));
    }
    code
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Variants(command) => commands::variants::run(&cli.global, command),
        Command::Config(command) => commands::config::run(&cli.global, command),
        Command::BestTrials(args) => commands::best_trials::run(&cli.global, args),
        Command::VerifyHashes(args) => commands::verify_hashes::run(&cli.global, args),
        Command::Runs(command) => commands::runs::run(&cli.global, command),
        Command::Select(args) => commands::select::run(&cli.global, args),
        Command::Keys(command) => commands::keys::run(&cli.global, command),
        Command::BenchModel(args) => commands::bench_model::run(&cli.global, args),
        Command::Benchmark(args) => commands::benchmark::run(&cli.global, args),
        Command::Rank(args) => commands::rank::run(&cli.global, args),
        Command::Run(args) => commands::run::run(&cli.global, args),
        Command::Report(args) => commands::report::run(&cli.global, args),
        Command::Demo(args) => commands::demo::run(&cli.global, args),
    }
}
