//! The one error type of podium-bench: orchestrating benchmarks (acquisition, caching, claims,
//! the run lifecycle), with the model runtime's errors wrapped whole.

use std::path::PathBuf;

/// Everything that can go wrong while orchestrating a benchmark, or (wrapped) in the model
/// runtime. Each variant names the file, key, champion run or claim involved.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A checkpoint archive that was refused or could not be extracted.
    #[error("checkpoint archive {}: {message}", .archive.display())]
    Archive {
        /// The `.tar.gz` file.
        archive: PathBuf,
        /// What was refused or failed.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model runtime failed: loading, feeding, running or timing a checkpoint. Its
    /// message is this error's message, and its causes are this error's causes.
    #[error(transparent)]
    Runtime(#[from] podium_runtime::RuntimeError),
    /// A config value is missing or invalid: config/benchmark.yaml (or an equivalent set of
    /// options), the HPO config's `run.mode`, the benchmark experiment, the claim lease.
    #[error("{file}: {key}: {message}")]
    Config {
        /// The config file (`<options>` for values that did not come from a file, the variable
        /// name for values from the environment).
        file: PathBuf,
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// run.mode of the benchmark config is invalid.
    #[error(transparent)]
    RunMode(#[from] podium_run_mode::RunModeError),
    /// The tracking store failed.
    #[error("{context}: {source}")]
    Mlflow {
        /// What was being done (naming the run, key or experiment).
        context: String,
        /// The store's error (boxed: it is large).
        source: Box<podium_mlflow::MlflowError>,
    },
    /// No checkpoint could be found or downloaded for a champion.
    #[error("no checkpoint for run {run_id}: {message}")]
    CheckpointNotFound {
        /// The run whose checkpoint is used.
        run_id: String,
        /// Every place that was tried and why it did not answer.
        message: String,
    },
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Writing through podium-variants (atomic writes, layout paths) failed.
    #[error("{context}: {source}")]
    Layout {
        /// What was being done.
        context: String,
        /// The error.
        source: Box<podium_variants::VariantsError>,
    },
    /// A claim could not be taken or kept.
    #[error("claim {claim} for benchmark key {key}: {message}")]
    Claim {
        /// The claim experiment's name.
        claim: String,
        /// The benchmark key.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// Computing a key or fingerprint failed.
    #[error("{context}: {source}")]
    Keys {
        /// What was being computed (naming the champion run or the config file).
        context: String,
        /// The error.
        source: Box<podium_keys::KeysError>,
    },
    /// Measuring a champion's checkpoint failed.
    #[error("benchmarking run {run_id} ({}): {source}", .checkpoint.display())]
    Measure {
        /// The champion run.
        run_id: String,
        /// The checkpoint directory.
        checkpoint: PathBuf,
        /// What failed (loading, feeding or timing the checkpoint), whole: its own causes (the
        /// runtime's, candle's) stay reachable through `source()`.
        source: Box<BenchError>,
    },
    /// The user interrupted the benchmark (Ctrl-C).
    #[error("interrupted while benchmarking run {run_id}")]
    Interrupted {
        /// The champion run being benchmarked.
        run_id: String,
    },
}

impl BenchError {
    /// Whether this is the runtime refusing a file of the checkpoint in `dir` (its config.json,
    /// weights or tokenizer missing, unreadable or invalid): the checkpoint itself is broken.
    pub fn is_checkpoint_fault(&self, dir: &std::path::Path) -> bool {
        match self {
            BenchError::Runtime(err) => err.file().is_some_and(|file| file.starts_with(dir)),
            BenchError::Measure { source, .. } => source.is_checkpoint_fault(dir),
            _ => false,
        }
    }

    /// A closure wrapping a store error with context, for `map_err`.
    pub(crate) fn mlflow(
        context: impl Into<String>,
    ) -> impl FnOnce(podium_mlflow::MlflowError) -> BenchError {
        let context = context.into();
        move |source| BenchError::Mlflow {
            context,
            source: Box::new(source),
        }
    }

    /// A closure wrapping an I/O error with context, for `map_err`.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let context = context.into();
        move |source| BenchError::Io { context, source }
    }

    /// A closure wrapping the error of measuring `checkpoint` for champion `run_id`, for
    /// `map_err`.
    pub(crate) fn measuring(
        run_id: &str,
        checkpoint: &std::path::Path,
    ) -> impl FnOnce(BenchError) -> BenchError {
        let (run_id, checkpoint) = (run_id.to_string(), checkpoint.to_path_buf());
        move |source| BenchError::Measure {
            run_id,
            checkpoint,
            source: Box::new(source),
        }
    }

    /// A closure wrapping a layout error with context, for `map_err`.
    pub(crate) fn layout(
        context: impl Into<String>,
    ) -> impl FnOnce(podium_variants::VariantsError) -> BenchError {
        let context = context.into();
        move |source| BenchError::Layout {
            context,
            source: Box::new(source),
        }
    }
}

/// Shorthand result type of the crate.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
