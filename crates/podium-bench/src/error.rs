//! The one error type of podium-bench: loading, feeding, running and timing a model, and
//! orchestrating benchmarks (acquisition, caching, claims, the run lifecycle).

use std::path::PathBuf;

/// Everything that can go wrong while loading, feeding, running or timing a model, or
/// orchestrating its benchmark. Each variant names the file, key, champion run or claim involved.
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
    /// A file (of a generated checkpoint) could not be written.
    #[error("cannot write {file}: {message}")]
    Write {
        /// The file or directory.
        file: PathBuf,
        /// What failed.
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
    /// A required file of the checkpoint directory is missing.
    #[error("{file} is missing{hint}")]
    MissingFile {
        /// The file (or the candidates joined with " or ").
        file: PathBuf,
        /// Why it is needed, prefixed with ": " (may be empty).
        hint: String,
    },
    /// A JSON file (config.json, test data) is not valid JSON or has the wrong structure.
    #[error("{file}: invalid JSON: {message}")]
    Json {
        /// The file.
        file: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// config.json is readable but describes something podium cannot run.
    #[error("{file}: {key}: {message}")]
    ModelConfig {
        /// config.json.
        file: PathBuf,
        /// The offending key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// `model_type` names an architecture the runtime does not implement.
    #[error("{file}: unsupported model_type {model_type:?}; supported: {supported}")]
    UnsupportedModelType {
        /// config.json.
        file: PathBuf,
        /// The value found.
        model_type: String,
        /// The supported values, comma-separated.
        supported: String,
    },
    /// The weights file could not be decoded.
    #[error("{file}: cannot decode weights: {message}")]
    Weights {
        /// The weights file.
        file: PathBuf,
        /// What candle said.
        message: String,
    },
    /// A tensor the architecture needs is absent from the weights file.
    #[error("{file}: tensor {name} is missing")]
    MissingTensor {
        /// The weights file.
        file: PathBuf,
        /// The tensor name tried (with the first prefix candidate).
        name: String,
    },
    /// A tensor has a shape that does not fit config.json.
    #[error("{file}: tensor {name} has shape {actual:?}, expected {expected:?}")]
    TensorShape {
        /// The weights file.
        file: PathBuf,
        /// The tensor name.
        name: String,
        /// Shape required by config.json.
        expected: Vec<usize>,
        /// Shape found.
        actual: Vec<usize>,
    },
    /// tokenizer.json could not be loaded or used.
    #[error("{file}: tokenizer: {message}")]
    Tokenizer {
        /// tokenizer.json.
        file: PathBuf,
        /// What the tokenizers crate said.
        message: String,
    },
    /// A test-data record has neither `text` nor `tokens`, or the file holds no records.
    #[error("{file}: {message}")]
    TestData {
        /// The test data file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The inputs do not fit the model (ids out of vocabulary, sequence too long, empty batch).
    #[error("invalid input: {0}")]
    Input(String),
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
    /// The requested device cannot be used.
    #[error("device {device}: {message}")]
    Device {
        /// The device string (`cpu`, `cuda:0`).
        device: String,
        /// Why it cannot be used.
        message: String,
    },
    /// The compute thread pool could not be built.
    #[error("cannot start {threads} compute threads: {message}")]
    ThreadPool {
        /// Requested thread count.
        threads: usize,
        /// What rayon said.
        message: String,
    },
    /// A tensor operation failed while running the model.
    #[error("model {model_type} forward pass failed: {message}")]
    Forward {
        /// The architecture.
        model_type: String,
        /// What failed.
        message: String,
    },
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

impl BenchError {
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
