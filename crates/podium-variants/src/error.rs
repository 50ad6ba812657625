//! The error type of podium-variants.

use std::path::PathBuf;

/// Everything that can go wrong with layouts, variants and their configs.
#[derive(Debug, thiserror::Error)]
pub enum VariantsError {
    /// A config file with an invalid value (`key` empty: the whole document).
    #[error("{}: {}{message}", .file.display(), key_part(.key))]
    Config {
        /// The file.
        file: PathBuf,
        /// The key (dotted path) or location.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A file was not read: missing, unreadable, or refused by the bounded reader (not a
    /// regular file, too large, not UTF-8, nested too deep); the message names it.
    #[error(transparent)]
    Read(#[from] podium_io::ReadError),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// A name that must become one folder of the output layout is not usable as one.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What the name is (environment, backbone, study name, run id, …).
        what: String,
        /// The offending value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// A spec or exec fingerprint that is not a hex digest of at least 8 digits.
    #[error("invalid {which} fingerprint {value:?}: expected at least 8 lowercase hex digits")]
    Fingerprint {
        /// `spec` or `exec`.
        which: &'static str,
        /// The offending value.
        value: String,
    },
    /// The final-training index exists but cannot be used.
    #[error("final-training index {}: {message}", .file.display())]
    Index {
        /// The index file.
        file: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Every variant number up to `u32::MAX` is taken.
    #[error("no free variant number left in {}", .dir.display())]
    VariantsExhausted {
        /// The folder holding the variants.
        dir: PathBuf,
    },
    /// A value could not be serialised to JSON.
    #[error("cannot serialise {context} as JSON: {source}")]
    Json {
        /// What was being serialised, naming the destination.
        context: String,
        /// The error.
        source: serde_json::Error,
    },
}

/// `key `k`: ` before a message about key `k`; nothing for the whole document.
fn key_part(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("key `{key}`: ")
    }
}

impl VariantsError {
    /// An [`VariantsError::Io`] whose context names the operation and the path.
    pub(crate) fn io(
        action: &str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> VariantsError {
        let context = format!("cannot {action} {}", path.display());
        move |source| VariantsError::Io { context, source }
    }
}
