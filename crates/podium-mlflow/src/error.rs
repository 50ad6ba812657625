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
    /// The PostgreSQL database could not be used.
    #[error("PostgreSQL store {database}: {message}")]
    Postgres {
        /// The database, as a URI without its password.
        database: String,
        /// What failed.
        message: String,
    },
    /// The server answered with an error.
    #[error("MLflow server {url} answered {status} {code} to {endpoint}: {message}")]
    Http {
        /// Base URL.
        url: String,
        /// The endpoint called.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// MLflow's `error_code` (e.g. `INVALID_PARAMETER_VALUE`), empty when the body had none.
        code: String,
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
    /// An operation MLflow refuses in the object's current state (e.g. renaming a deleted
    /// experiment, logging to a deleted run).
    #[error("{what} {id:?} in {store}: {message}")]
    InvalidState {
        /// What kind of object.
        what: &'static str,
        /// Its id.
        id: String,
        /// The store.
        store: String,
        /// What is wrong.
        message: String,
    },
    /// A setting (environment variable or option) with a value podium cannot use.
    #[error("invalid setting {name}={value:?}: {message}")]
    Config {
        /// The variable or option.
        name: String,
        /// Its value (never a secret).
        value: String,
        /// What is expected.
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
    /// A write refused because the database schema is not the one podium writes.
    #[error("{store} is read-only for podium: {reason}")]
    ReadOnly {
        /// The store: "SQLite store /path/mlflow.db" or "PostgreSQL store postgresql://…".
        store: String,
        /// Why (e.g. the alembic revision found and the one expected).
        reason: String,
    },
    /// MLflow params are immutable: a second value for a key is refused.
    #[error("param {key:?} of run {run_id} is already {existing:?}; cannot change it to {new:?}")]
    ParamConflict {
        /// The run.
        run_id: String,
        /// The param key.
        key: String,
        /// The value already logged.
        existing: String,
        /// The value refused.
        new: String,
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
