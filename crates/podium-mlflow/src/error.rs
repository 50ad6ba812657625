//! The error type of podium-mlflow.

/// Everything that can go wrong talking to a tracking store. Each variant says where.
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// A tracking URI podium cannot use.
    #[error("unsupported tracking URI {uri:?}: {reason}")]
    UnsupportedUri {
        /// The URI (credentials removed).
        uri: String,
        /// Why, and what is supported.
        reason: String,
    },
    /// A create hit an existing unique name.
    #[error("{what} {name:?} already exists in {store}")]
    AlreadyExists {
        /// What kind of object (`experiment`, …).
        what: &'static str,
        /// Its name.
        name: String,
        /// The store.
        store: String,
    },
    /// A run, experiment or artifact that does not exist.
    #[error("{what} {id:?} not found in {store}")]
    NotFound {
        /// What kind of object.
        what: &'static str,
        /// Its id or name.
        id: String,
        /// The store.
        store: String,
    },
    /// The SQLite database could not be used.
    #[error("SQLite store {path}: {message}")]
    Sqlite {
        /// The database file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The server answered with an error.
    #[error("MLflow server {url} answered {status} to {endpoint}: {message}")]
    Http {
        /// Base URL.
        url: String,
        /// The endpoint called.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// MLflow's error message or the body.
        message: String,
    },
    /// The server could not be reached (after retries).
    #[error("cannot reach MLflow server {url} ({endpoint}) after {attempts} attempts: {message}")]
    Unreachable {
        /// Base URL.
        url: String,
        /// The endpoint called.
        endpoint: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        message: String,
    },
    /// A response podium could not interpret.
    #[error("unexpected response from {store} ({context}): {message}")]
    Protocol {
        /// The store.
        store: String,
        /// What was being read.
        context: String,
        /// What was wrong.
        message: String,
    },
    /// A filter or query that cannot be expressed.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// An artifact problem (unsafe path, size mismatch, unsupported scheme…).
    #[error("artifact {path:?} of run {run_id}: {message}")]
    Artifact {
        /// The run.
        run_id: String,
        /// The artifact path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Local file-system I/O.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}
