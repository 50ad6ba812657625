//! The error type of podium-variants.

use std::path::PathBuf;

/// Everything that can go wrong with layouts, variants and their configs.
#[derive(Debug, thiserror::Error)]
pub enum VariantsError {
    /// A config file with an invalid value.
    #[error("{}: key `{key}`: {message}", .file.display())]
    Config {
        /// The file.
        file: PathBuf,
        /// The key (dotted path) or location.
        key: String,
        /// What is wrong.
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
}
