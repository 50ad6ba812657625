//! The error type of benchmark orchestration: acquisition, caching, claims and the run lifecycle.

use std::path::PathBuf;

/// Everything that can go wrong orchestrating benchmarks. Each variant names the champion run,
/// the benchmark key, the claim or the file involved.
#[derive(Debug, thiserror::Error)]
pub enum OrchestrateError {
    /// The tracking store failed.
    #[error("{context}: {source}")]
    Mlflow {
        /// What was being done (naming the run, key or experiment).
        context: String,
        /// The store's error.
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
    /// A config value orchestration needs is missing or invalid.
    #[error("{}: {key}: {message}", .file.display())]
    Config {
        /// The file.
        file: PathBuf,
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Computing a key or fingerprint failed.
    #[error("{context}: {source}")]
    Keys {
        /// What was being computed (naming the champion run).
        context: String,
        /// The error.
        source: Box<podium_keys::KeysError>,
    },
    /// Measuring a checkpoint failed.
    #[error("benchmarking run {run_id} ({checkpoint}): {message}")]
    Measure {
        /// The champion run.
        run_id: String,
        /// The checkpoint directory.
        checkpoint: String,
        /// The runtime's error.
        message: String,
    },
    /// The user interrupted the benchmark (Ctrl-C).
    #[error("interrupted while benchmarking run {run_id}")]
    Interrupted {
        /// The champion run being benchmarked.
        run_id: String,
    },
}

impl OrchestrateError {
    /// A closure wrapping a store error with context, for `map_err`.
    pub(crate) fn mlflow(
        context: impl Into<String>,
    ) -> impl FnOnce(podium_mlflow::MlflowError) -> OrchestrateError {
        let context = context.into();
        move |source| OrchestrateError::Mlflow {
            context,
            source: Box::new(source),
        }
    }

    /// A closure wrapping an I/O error with context, for `map_err`.
    pub(crate) fn io(
        context: impl Into<String>,
    ) -> impl FnOnce(std::io::Error) -> OrchestrateError {
        let context = context.into();
        move |source| OrchestrateError::Io { context, source }
    }

    /// A closure wrapping a layout error with context, for `map_err`.
    pub(crate) fn layout(
        context: impl Into<String>,
    ) -> impl FnOnce(podium_variants::VariantsError) -> OrchestrateError {
        let context = context.into();
        move |source| OrchestrateError::Layout {
            context,
            source: Box::new(source),
        }
    }
}
