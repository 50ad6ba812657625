//! `podium keys`: the Python pipeline's canonical JSON, study/trial/benchmark keys, fingerprints
//! and config hashes, as JSON on stdout (for scripts and cross-checks against the pipeline).
//! The JSON field names are API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use podium_project::keys::{self, Separators, StudyFiles, StudyKeysReport};

use crate::GlobalArgs;
use crate::output;

/// `podium keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The canonical JSON text of a YAML/JSON file (Python's json.dumps with sort_keys=True).
    Canonical(CanonicalArgs),
    /// Study keys, hashes and fingerprints: of given files, or of an experiment's backbone.
    Study(StudyArgs),
    /// Trial key and hash of a trial's hyperparameters (normalised as the pipeline does).
    Trial(TrialArgs),
    /// Config hash of a benchmark config and the benchmark key of a champion run.
    Benchmark(BenchmarkArgs),
    /// The data or eval fingerprint of a config file.
    Fingerprint(FingerprintArgs),
    /// The config hash (16 hex digits) of a YAML/JSON file.
    ConfigHash(ConfigHashArgs),
}

/// `--style` of `podium keys canonical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Style {
    /// separators=(",", ":"), used by every key and fingerprint.
    Compact,
    /// separators=(", ", ": "), used by the config hash.
    Default,
}

/// `podium keys canonical` arguments.
#[derive(Debug, Args)]
pub struct CanonicalArgs {
    /// Separator style.
    #[arg(long, value_enum, default_value_t = Style::Compact)]
    pub style: Style,
    /// A YAML or JSON file (`.json` is read with json.loads rules, anything else with
    /// yaml.safe_load rules unless the whole text is JSON).
    pub file: PathBuf,
}

/// `podium keys study` arguments: either the files (`--data --hpo --train --model`) or an
/// experiment of `--config-dir` (`--backbone`, with the global `--experiment`).
#[derive(Debug, Args)]
pub struct StudyArgs {
    /// The data config.
    #[arg(long, value_name = "FILE", requires_all = ["hpo", "train", "model"], conflicts_with = "backbone")]
    pub data: Option<PathBuf>,
    /// The HPO config.
    #[arg(long, value_name = "FILE", requires = "data")]
    pub hpo: Option<PathBuf>,
    /// The train config (whole file).
    #[arg(long, value_name = "FILE", requires = "data")]
    pub train: Option<PathBuf>,
    /// The backbone as written in the search space (lower-cased and stripped in the keys).
    #[arg(long, requires = "data")]
    pub model: Option<String>,
    /// The benchmark config (read by the "v1" and family keys).
    #[arg(long, value_name = "FILE", requires = "data")]
    pub benchmark: Option<PathBuf>,
    /// An explicit eval config; without it the eval config is derived from train and HPO, as
    /// the pipeline derives it.
    #[arg(long, value_name = "FILE", requires = "data")]
    pub eval: Option<PathBuf>,
    /// With the experiment of --config-dir: the backbone (as written in its HPO config).
    #[arg(long)]
    pub backbone: Option<String>,
    /// Adds "code_version" to the v2 payload.
    #[arg(long, value_name = "VERSION")]
    pub code_version: Option<String>,
}

/// `podium keys trial` arguments.
#[derive(Debug, Args)]
pub struct TrialArgs {
    /// The study key hash of the trial's study.
    #[arg(long, value_name = "HASH")]
    pub study_key_hash: String,
    /// The trial's hyperparameters: a JSON or YAML mapping.
    #[arg(long, value_name = "FILE")]
    pub params: PathBuf,
}

/// `podium keys benchmark` arguments.
#[derive(Debug, Args)]
pub struct BenchmarkArgs {
    /// The champion's MLflow run id (its refit run, else the trial).
    #[arg(long, value_name = "ID")]
    pub run_id: String,
    /// The champion's data fingerprint.
    #[arg(long, value_name = "HASH")]
    pub data_fp: String,
    /// The champion's eval fingerprint.
    #[arg(long, value_name = "HASH")]
    pub eval_fp: String,
    /// The benchmark config (hashed whole).
    #[arg(long, value_name = "FILE")]
    pub benchmark: PathBuf,
}

/// Which fingerprint `podium keys fingerprint` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FingerprintKind {
    /// The data fingerprint of a data config.
    Data,
    /// The eval fingerprint of an eval config.
    Eval,
}

/// `podium keys fingerprint` arguments.
#[derive(Debug, Args)]
pub struct FingerprintArgs {
    /// data or eval.
    #[arg(value_enum)]
    pub kind: FingerprintKind,
    /// The config file.
    pub file: PathBuf,
}

/// `podium keys config-hash` arguments.
#[derive(Debug, Args)]
pub struct ConfigHashArgs {
    /// A YAML or JSON file.
    pub file: PathBuf,
}

fn study(global: &GlobalArgs, args: StudyArgs) -> anyhow::Result<StudyKeysReport> {
    if let Some(data) = args.data {
        let (Some(hpo), Some(train), Some(model)) = (args.hpo, args.train, args.model) else {
            bail!("--data needs --hpo, --train and --model");
        };
        return Ok(keys::study_keys_of_files(&StudyFiles {
            data,
            hpo,
            train,
            model,
            eval: args.eval,
            benchmark: args.benchmark,
            code_version: args.code_version,
        })?);
    }
    let Some(backbone) = &args.backbone else {
        bail!(
            "give the files (--data, --hpo, --train, --model) or a backbone of the experiment in --config-dir (--backbone)"
        );
    };
    let keys = global
        .project_options()
        .study_keys(backbone, args.code_version.as_deref())?;
    Ok(StudyKeysReport::from(&keys))
}

/// Runs `podium keys …`. Output is JSON whatever `--format` says: these are for scripts.
pub fn run(global: &GlobalArgs, command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Canonical(args) => {
            let separators = match args.style {
                Style::Compact => Separators::Compact,
                Style::Default => Separators::Default,
            };
            println!("{}", keys::canonical_json(&args.file, separators)?);
        }
        KeysCommand::Study(args) => output::print_json(&study(global, args)?)?,
        KeysCommand::Trial(args) => {
            output::print_json(&keys::trial_keys(&args.study_key_hash, &args.params)?)?;
        }
        KeysCommand::Benchmark(args) => output::print_json(&keys::benchmark_key(
            &args.run_id,
            &args.data_fp,
            &args.eval_fp,
            &args.benchmark,
        )?)?,
        KeysCommand::Fingerprint(args) => {
            let kind = match args.kind {
                FingerprintKind::Data => keys::FingerprintKind::Data,
                FingerprintKind::Eval => keys::FingerprintKind::Eval,
            };
            output::print_json(&keys::fingerprint(kind, &args.file)?)?;
        }
        KeysCommand::ConfigHash(args) => output::print_json(&keys::config_hash_of(&args.file)?)?,
    }
    Ok(ExitCode::SUCCESS)
}
