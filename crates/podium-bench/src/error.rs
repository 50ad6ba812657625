//! The one error type of podium-bench.

use std::path::PathBuf;

/// Everything that can go wrong while loading, feeding, running or timing a model.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
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
    /// config/benchmark.yaml (or an equivalent set of options) is invalid.
    #[error("{file}: {key}: {message}")]
    Config {
        /// The config file (or `<options>` for values that did not come from a file).
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
}

/// Shorthand result type of the crate.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
