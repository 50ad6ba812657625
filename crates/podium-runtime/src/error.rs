//! The one error type of podium-runtime: loading, feeding, running and timing a model.

use std::path::PathBuf;

/// Everything that can go wrong while loading, feeding, running or timing a model. Each
/// variant names the file, key, tensor or setting involved.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file refused by the bounded reader (podium-io): not a regular file (a FIFO, a device
    /// such as `/dev/zero`), larger than its cap, or not UTF-8 text. The message names it.
    #[error(transparent)]
    Refused(podium_io::ReadError),
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
    /// config.json is readable but describes something the runtime cannot run.
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
    /// The weights file could not be decoded, or the reference model could not be built from it.
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
    /// A timing setting is invalid (`file` is `<options>` for values that did not come from a
    /// file).
    #[error("{file}: {key}: {message}")]
    Config {
        /// Where the value came from.
        file: PathBuf,
        /// The setting.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// One forward pass would need more memory than the machine has available.
    #[error(
        "batch {batch} × length {seq} of {model_type} needs about {needed_mib} MiB for one forward pass ({path} path), more than the {available_mib} MiB available; lower batch_sizes or max_length"
    )]
    OutOfMemory {
        /// The architecture.
        model_type: String,
        /// Execution path (`cpu`, `portable`).
        path: String,
        /// Rows.
        batch: usize,
        /// Tokens per row.
        seq: usize,
        /// Estimated need.
        needed_mib: u64,
        /// What the system reports as available.
        available_mib: u64,
    },
    /// config.json describes a model whose weights alone need more memory than the machine has
    /// available (checked before anything is allocated for it).
    #[error(
        "{}: a {model_type} of {layers} layers × {hidden} hidden (vocabulary {vocab}) needs about {needed_mib} MiB for its weights alone, more than the {available_mib} MiB available",
        .file.display()
    )]
    ModelTooLarge {
        /// config.json.
        file: PathBuf,
        /// The architecture.
        model_type: String,
        /// `num_hidden_layers`.
        layers: usize,
        /// `hidden_size`.
        hidden: usize,
        /// `vocab_size`.
        vocab: usize,
        /// Estimated need.
        needed_mib: u64,
        /// What the system reports as available.
        available_mib: u64,
    },
    /// The requested device or execution path cannot be used.
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
    #[error("model {model_type} forward pass failed ({path} path): {source}")]
    Forward {
        /// The architecture.
        model_type: String,
        /// Execution path (`cpu`, `portable`).
        path: String,
        /// What candle said (boxed: it is large).
        source: Box<candle_core::Error>,
    },
}

impl RuntimeError {
    /// The file the error is about, when it is about one (config.json, the weights,
    /// tokenizer.json, test data): a caller can tell a broken checkpoint from a failed run.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            RuntimeError::Read { file, .. }
            | RuntimeError::MissingFile { file, .. }
            | RuntimeError::Json { file, .. }
            | RuntimeError::ModelConfig { file, .. }
            | RuntimeError::UnsupportedModelType { file, .. }
            | RuntimeError::Weights { file, .. }
            | RuntimeError::MissingTensor { file, .. }
            | RuntimeError::TensorShape { file, .. }
            | RuntimeError::Tokenizer { file, .. }
            | RuntimeError::TestData { file, .. }
            | RuntimeError::ModelTooLarge { file, .. } => Some(file),
            RuntimeError::Refused(err) => Some(err.path()),
            _ => None,
        }
    }
}

/// Shorthand result type of the crate.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
