//! `podium keys`: the Python pipeline's canonical JSON, study/trial/benchmark keys, fingerprints
//! and config hashes for given files, as JSON on stdout (for scripts and cross-checks against
//! the Python side).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use podium_keys::{
    PyValue, Separators, StudyConfigs, StudyIdentity, StudyKeySchema, benchmark_fingerprint,
    benchmark_key, config_hash, data_fingerprint, eval_fingerprint, load_path, py_json, trial_key,
    trial_key_hash,
};
use serde_json::json;

use crate::GlobalArgs;
use crate::output;

/// `podium keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// The canonical JSON text of a YAML/JSON file (Python's json.dumps with sort_keys=True).
    Canonical(CanonicalArgs),
    /// Study key, study key hash, family hash and fingerprints of a sweep's configs.
    Study(StudyArgs),
    /// Trial key and hash of a trial's hyperparameters.
    Trial(TrialArgs),
    /// Benchmark fingerprint and key of a champion run.
    Benchmark(BenchmarkArgs),
    /// The data or eval fingerprint of a config file.
    Fingerprint(FingerprintArgs),
    /// The config hash (16 hex digits) of a YAML/JSON file.
    ConfigHash(ConfigHashArgs),
}

/// `--style` of `podium keys canonical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Style {
    /// separators=(",", ":"), used by every key.
    Compact,
    /// separators=(", ", ": "), used by the data and eval fingerprints.
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

/// `--schema` of `podium keys study`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaArg {
    /// The current study key (bound fingerprints, training budget, no benchmark).
    V2,
    /// The legacy study key (local_path and the benchmark config).
    V1,
}

/// `podium keys study` arguments.
#[derive(Debug, Args)]
pub struct StudyArgs {
    /// data.yaml.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The HPO config (hpo/*.yaml).
    #[arg(long, value_name = "FILE")]
    pub hpo: PathBuf,
    /// train.yaml.
    #[arg(long, value_name = "FILE")]
    pub train: PathBuf,
    /// eval.yaml.
    #[arg(long, value_name = "FILE")]
    pub eval: PathBuf,
    /// The backbone (lower-cased and stripped in the key).
    #[arg(long)]
    pub model: String,
    /// Study key schema.
    #[arg(long, value_enum, default_value_t = SchemaArg::V2)]
    pub schema: SchemaArg,
    /// benchmark.yaml (only the legacy v1 key hashes it).
    #[arg(long, value_name = "FILE")]
    pub benchmark: Option<PathBuf>,
    /// Adds "code_version" to the v2 and family payloads.
    #[arg(long, value_name = "VERSION")]
    pub code_version: Option<String>,
}

/// `podium keys trial` arguments.
#[derive(Debug, Args)]
pub struct TrialArgs {
    /// The study key hash of the trial's study.
    #[arg(long, value_name = "HASH")]
    pub study_key_hash: String,
    /// The trial's hyperparameters: a JSON or YAML file.
    #[arg(long, value_name = "FILE")]
    pub params: PathBuf,
}

/// `podium keys benchmark` arguments.
#[derive(Debug, Args)]
pub struct BenchmarkArgs {
    /// The champion's MLflow run id.
    #[arg(long, value_name = "ID")]
    pub run_id: String,
    /// The champion's data fingerprint.
    #[arg(long, value_name = "HASH")]
    pub data_fp: String,
    /// The champion's eval fingerprint.
    #[arg(long, value_name = "HASH")]
    pub eval_fp: String,
    /// benchmark.yaml (its `run` section is not part of the key).
    #[arg(long, value_name = "FILE")]
    pub benchmark: PathBuf,
}

/// Which fingerprint `podium keys fingerprint` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FingerprintKind {
    /// The data fingerprint of data.yaml.
    Data,
    /// The eval fingerprint of eval.yaml.
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

fn load(path: &Path) -> anyhow::Result<PyValue> {
    load_path(path).with_context(|| format!("loading {}", path.display()))
}

/// Runs `podium keys …`. Output is JSON whatever `--format` says: these are for scripts.
pub fn run(_global: &GlobalArgs, command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Canonical(args) => {
            let value = load(&args.file)?;
            let separators = match args.style {
                Style::Compact => Separators::Compact,
                Style::Default => Separators::Default,
            };
            let text = py_json(&value, separators)
                .with_context(|| format!("canonical JSON of {}", args.file.display()))?;
            println!("{text}");
        }
        KeysCommand::Study(args) => {
            let data = load(&args.data)?;
            let hpo = load(&args.hpo)?;
            let train = load(&args.train)?;
            let eval = load(&args.eval)?;
            let benchmark = args.benchmark.as_deref().map(load).transpose()?;
            let configs = StudyConfigs {
                data: &data,
                hpo: &hpo,
                train: &train,
                eval: &eval,
                model: &args.model,
                benchmark: benchmark.as_ref(),
                code_version: args.code_version.as_deref(),
            };
            let schema = match args.schema {
                SchemaArg::V2 => StudyKeySchema::V2,
                SchemaArg::V1 => StudyKeySchema::V1,
            };
            let study = StudyIdentity::compute(&configs, schema)?;
            output::print_json(&json!({
                "schema_version": study.schema_version,
                "study_key": study.study_key,
                "study_key_hash": study.study_key_hash,
                "study_family_hash": study.study_family_hash,
                "data_fingerprint": study.data_fingerprint,
                "eval_fingerprint": study.eval_fingerprint,
            }))?;
        }
        KeysCommand::Trial(args) => {
            let params = load(&args.params)?;
            let key = trial_key(&args.study_key_hash, &params)?;
            output::print_json(&json!({
                "trial_key_hash": trial_key_hash(&key),
                "trial_key": key,
            }))?;
        }
        KeysCommand::Benchmark(args) => {
            let benchmark = load(&args.benchmark)?;
            let bench_fp = benchmark_fingerprint(&benchmark, podium_bench::HARNESS_VERSION)?;
            output::print_json(&json!({
                "benchmark_key": benchmark_key(&args.run_id, &args.data_fp, &args.eval_fp, &bench_fp),
                "bench_fp": bench_fp,
            }))?;
        }
        KeysCommand::Fingerprint(args) => {
            let value = load(&args.file)?;
            let hash = match args.kind {
                FingerprintKind::Data => data_fingerprint(&value)?,
                FingerprintKind::Eval => eval_fingerprint(&value)?,
            };
            output::print_json(&json!({ "hash": hash }))?;
        }
        KeysCommand::ConfigHash(args) => {
            let value = load(&args.file)?;
            output::print_json(&json!({ "hash": config_hash(&value)? }))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
