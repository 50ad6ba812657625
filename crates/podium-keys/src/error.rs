//! The error type of podium-keys.

use std::path::{Path, PathBuf};

/// Everything that can go wrong computing keys. Each variant names the file or key involved.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A (section, name) the tag registry does not know.
    #[error("unknown tag {section}.{name}: not in the tag registry (see config/tags.yaml)")]
    UnknownTag {
        /// The section.
        section: String,
        /// The name.
        name: String,
    },
    /// A config value that is invalid.
    #[error("{}{}{message}", .file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default(), if .key.is_empty() { String::new() } else { format!("{}: ", .key) })]
    Config {
        /// The file, when known.
        file: Option<PathBuf>,
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value Python's `json.dumps(..., sort_keys=True)` refuses (it raises TypeError or
    /// ValueError there), e.g. a mapping mixing string and number keys.
    #[error("cannot serialise {path} as canonical JSON: {message}")]
    Unserialisable {
        /// Where in the value, as a JSONPath-like `$.a[0].b`.
        path: String,
        /// What Python would complain about.
        message: String,
    },
    /// A YAML text that PyYAML's `safe_load` rejects (syntax, an unknown tag, a timestamp, a
    /// bad merge key, …).
    #[error("{}YAML line {line}, column {column}: {message}", .file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    Yaml {
        /// The file, when known.
        file: Option<PathBuf>,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A JSON text that Python's `json.loads` rejects.
    #[error("{}JSON at byte {offset}: {message}", .file.as_ref().map(|f| format!("{}: ", f.display())).unwrap_or_default())]
    Json {
        /// The file, when known.
        file: Option<PathBuf>,
        /// 0-based byte offset.
        offset: usize,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl KeysError {
    /// Attaches the file a config error came from.
    pub fn in_file(self, path: &Path) -> Self {
        match self {
            KeysError::Config { key, message, .. } => KeysError::Config {
                file: Some(path.to_path_buf()),
                key,
                message,
            },
            KeysError::UnknownTag { section, name } => KeysError::Config {
                file: Some(path.to_path_buf()),
                key: format!("{section}.{name}"),
                message: "unknown tag: not in the tag registry".into(),
            },
            KeysError::Yaml {
                line,
                column,
                message,
                ..
            } => KeysError::Yaml {
                file: Some(path.to_path_buf()),
                line,
                column,
                message,
            },
            KeysError::Json {
                offset, message, ..
            } => KeysError::Json {
                file: Some(path.to_path_buf()),
                offset,
                message,
            },
            other => other,
        }
    }
}
