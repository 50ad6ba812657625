//! MLflow's SQLAlchemy schema, read and written the same way on every database podium opens
//! directly: an `mlflow.db` ([`crate::sqlite`]) and a PostgreSQL database ([`crate::postgres`]).
//!
//! Everything that is about MLflow's tables lives here once: the filter and `order_by`
//! translation ([`filter`]), the statements of a search and the assembly of its rows into runs
//! ([`runs`]), experiments and claims' primitives ([`experiments`]), writes as MLflow's
//! SQLAlchemy store lays them out, the value encodings (NaN as `is_nan`, ±inf as ±f64::MAX, page
//! tokens as base64 of `{"offset": N}`), and the schema revision podium writes. A database store
//! only supplies a connection ([`SqlConn`]): how parameters are bound, rows read and
//! transactions held. The few spellings that differ between the two SQL dialects follow
//! [`Backend`].

pub(crate) mod experiments;
pub(crate) mod filter;
pub(crate) mod runs;
pub(crate) mod store;

use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::error::MlflowError;
use crate::model::{INFINITY_SENTINEL, MlflowFloat, ViewType};

/// The alembic revision of MLflow 3.17.2's schema: the only one podium writes to.
pub const SCHEMA_REVISION: &str = "dc11669786a5";

/// The tag MLflow mirrors into `runs.name`.
pub(crate) const RUN_NAME_TAG: &str = "mlflow.runName";

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// SQLite (`?` placeholders, integer booleans, no ILIKE).
    Sqlite,
    /// PostgreSQL (`$n` placeholders, numbered by the connection; booleans; `= ANY(array)`).
    Postgres,
}

/// A statement parameter, bound by each connection in its own way.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlValue {
    /// SQL NULL.
    Null,
    /// Text.
    Text(String),
    /// An integer (bound to the column's integer width, or as a double where one is wanted).
    Integer(i64),
    /// A double.
    Real(f64),
    /// A boolean (SQLite: 0 or 1).
    Bool(bool),
    /// A list of texts: a `text[]` on PostgreSQL, a JSON array for `json_each` on SQLite.
    TextList(Vec<String>),
}

/// A failed statement.
#[derive(Debug)]
pub(crate) enum SqlError {
    /// The database refused or failed it.
    Database {
        /// A unique (or primary key) constraint was violated.
        unique_violation: bool,
        /// The database's message.
        message: String,
    },
    /// Reading its rows failed in podium's code (the error says where).
    Mlflow(MlflowError),
}

impl From<MlflowError> for SqlError {
    fn from(err: MlflowError) -> Self {
        SqlError::Mlflow(err)
    }
}

/// One result row; columns by position. Getters convert between the integer widths and tell a
/// wrong type by message.
pub(crate) trait SqlRow {
    /// A text column (borrowed from the row).
    fn text(&self, index: usize) -> Result<Option<&str>, String>;
    /// An integer column.
    fn int(&self, index: usize) -> Result<Option<i64>, String>;
    /// A floating-point column.
    fn real(&self, index: usize) -> Result<Option<f64>, String>;
    /// A boolean column (an integer one on SQLite).
    fn flag(&self, index: usize) -> Result<Option<bool>, String>;

    /// A text array column (PostgreSQL only; SQLite has no arrays).
    fn texts(&self, index: usize) -> Result<Option<Vec<Option<&str>>>, String> {
        Err(format!(
            "column {index}: this database has no array columns"
        ))
    }

    /// A double array column (PostgreSQL only).
    fn reals(&self, index: usize) -> Result<Option<Vec<Option<f64>>>, String> {
        Err(format!(
            "column {index}: this database has no array columns"
        ))
    }

    /// A boolean array column (PostgreSQL only).
    fn flags(&self, index: usize) -> Result<Option<Vec<Option<bool>>>, String> {
        Err(format!(
            "column {index}: this database has no array columns"
        ))
    }
}

/// A connection inside a transaction, as the schema code uses it. Statements are written with
/// `?` placeholders; the connection binds [`SqlValue`]s to them.
pub(crate) trait SqlConn {
    /// The dialect spoken.
    fn backend(&self) -> Backend;

    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, SqlError>;

    /// Runs a query, handing every row to `visit` in order.
    fn query(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        visit: &mut dyn FnMut(&dyn SqlRow) -> Result<(), MlflowError>,
    ) -> Result<(), SqlError>;

    /// Runs a query whose rows are decoded one by one and handed to `each` in chunks of at most
    /// `chunk`; `each` gets the connection back to run other statements between chunks, while
    /// the query stays open (one snapshot, one pass over the query's rows).
    fn query_chunked<T>(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        chunk: usize,
        decode: impl FnMut(&dyn SqlRow) -> Result<T, MlflowError>,
        each: impl FnMut(&mut Self, Vec<T>) -> Result<(), MlflowError>,
    ) -> Result<(), SqlError>
    where
        Self: Sized;
}

/// A database store as the schema code sees it: its dialect, its name for messages, and what
/// [`Schema::inspect`] read from the database when it was opened.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    /// The dialect.
    pub backend: Backend,
    /// The store for messages (a file path, or a PostgreSQL URI without its password).
    pub display: String,
    /// The database's alembic revision.
    pub revision: String,
    /// Whether `experiments` has MLflow 3's `workspace` column.
    pub has_workspace: bool,
    /// Where new experiments put their artifacts: the default experiment's location less
    /// `/0`, as MLflow's store has it.
    pub default_artifact_root: String,
}

impl Schema {
    /// Reads the revision, the workspace column and the default artifact root of an MLflow
    /// database; `fallback_root` when it has no default experiment. A database without
    /// `alembic_version` (or with an empty one) is not an MLflow tracking database: the error
    /// says so, followed by `not_mlflow_hint` (how to make one; may be empty).
    pub(crate) fn inspect(
        conn: &mut impl SqlConn,
        display: String,
        fallback_root: impl FnOnce() -> String,
        not_mlflow_hint: &str,
    ) -> Result<Schema, MlflowError> {
        let backend = conn.backend();
        let mut schema = Schema {
            backend,
            display,
            revision: String::new(),
            has_workspace: false,
            default_artifact_root: String::new(),
        };
        let mut revision = None;
        conn.query("SELECT version_num FROM alembic_version", &[], &mut |row| {
            revision = row
                .text(0)
                .map_err(|e| schema.error("alembic_version", e))?
                .map(str::to_string);
            Ok(())
        })
        .map_err(|err| {
            let message = match err {
                SqlError::Database { message, .. } => message,
                SqlError::Mlflow(err) => err.to_string(),
            };
            schema.error(
                "opening",
                format!(
                    "not an MLflow tracking database (no alembic_version: {message}){not_mlflow_hint}"
                ),
            )
        })?;
        schema.revision = revision.ok_or_else(|| {
            schema.error(
                "opening",
                format!(
                    "not an MLflow tracking database (alembic_version is empty){not_mlflow_hint}"
                ),
            )
        })?;
        let workspace_sql = match backend {
            Backend::Sqlite => {
                "SELECT 1 FROM pragma_table_info('experiments') WHERE name = 'workspace'"
            }
            Backend::Postgres => {
                "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = 'experiments' AND column_name = 'workspace'"
            }
        };
        let mut has_workspace = false;
        conn.query(workspace_sql, &[], &mut |_| {
            has_workspace = true;
            Ok(())
        })
        .map_err(|err| schema.fail("reading the experiments table", err))?;
        let mut default_location = None;
        conn.query(
            "SELECT artifact_location FROM experiments WHERE experiment_id = 0",
            &[],
            &mut |row| {
                default_location = row
                    .text(0)
                    .map_err(|e| schema.error("reading the default experiment", e))?
                    .map(str::to_string);
                Ok(())
            },
        )
        .map_err(|err| schema.fail("reading the default experiment", err))?;
        schema.has_workspace = has_workspace;
        schema.default_artifact_root = default_location
            .as_deref()
            .and_then(|location| location.strip_suffix("/0"))
            .map(str::to_string)
            .unwrap_or_else(fallback_root);
        Ok(schema)
    }

    /// True when podium writes to this database (its revision is [`SCHEMA_REVISION`]).
    pub(crate) fn is_writable(&self) -> bool {
        self.revision == SCHEMA_REVISION
    }

    /// [`MlflowError::ReadOnly`] unless podium writes to this database; `upgrade` is the
    /// command that upgrades it.
    pub(crate) fn require_writable(&self, upgrade: &str) -> Result<(), MlflowError> {
        if self.is_writable() {
            return Ok(());
        }
        Err(MlflowError::ReadOnly {
            store: self.kind_and_name(),
            reason: format!(
                "its alembic revision is {} but podium writes only MLflow 3.17.2's \
                 {SCHEMA_REVISION}; upgrade it with `{upgrade}` or use an MLflow server",
                self.revision
            ),
        })
    }

    /// "SQLite store /path" or "PostgreSQL store postgresql://…".
    pub(crate) fn kind_and_name(&self) -> String {
        match self.backend {
            Backend::Sqlite => format!("SQLite store {}", self.display),
            Backend::Postgres => format!("PostgreSQL store {}", self.display),
        }
    }

    /// This store's error for `context`.
    pub(crate) fn error(&self, context: &str, message: impl std::fmt::Display) -> MlflowError {
        let message = format!("{context}: {message}");
        match self.backend {
            Backend::Sqlite => MlflowError::Sqlite {
                path: self.display.clone(),
                message,
            },
            Backend::Postgres => MlflowError::Postgres {
                database: self.display.clone(),
                message,
            },
        }
    }

    /// A failed statement as this store's error (errors of podium's own code pass through).
    pub(crate) fn fail(&self, context: &str, err: SqlError) -> MlflowError {
        match err {
            SqlError::Database { message, .. } => self.error(context, message),
            SqlError::Mlflow(err) => err,
        }
    }

    /// [`MlflowError::NotFound`] in this store.
    pub(crate) fn not_found(&self, what: &'static str, id: &str) -> MlflowError {
        MlflowError::NotFound {
            what,
            id: id.to_string(),
            store: self.display.clone(),
        }
    }

    /// [`MlflowError::InvalidState`] in this store.
    pub(crate) fn invalid_state(&self, what: &'static str, id: &str, message: &str) -> MlflowError {
        MlflowError::InvalidState {
            what,
            id: id.to_string(),
            store: self.display.clone(),
            message: message.to_string(),
        }
    }

    /// [`MlflowError::AlreadyExists`] for an experiment name in this store.
    pub(crate) fn name_taken(&self, name: &str) -> MlflowError {
        MlflowError::AlreadyExists {
            what: "experiment",
            name: name.to_string(),
            store: self.display.clone(),
        }
    }
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A fresh 32-hex run id, like MLflow's `uuid.uuid4().hex`.
pub(crate) fn new_run_id() -> String {
    let mut bits = fastrand::u128(..);
    // Version 4, variant 1, as uuid4.
    bits = (bits & !(0xF << 76)) | (0x4 << 76);
    bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    format!("{bits:032x}")
}

/// Metric value and `is_nan` as MLflow's SQL store writes them.
pub(crate) fn sanitize_metric(value: f64) -> (f64, bool) {
    if value.is_nan() {
        (0.0, true)
    } else if value == f64::INFINITY {
        (INFINITY_SENTINEL, false)
    } else if value == f64::NEG_INFINITY {
        (-INFINITY_SENTINEL, false)
    } else {
        (value, false)
    }
}

/// The metric value a stored value and `is_nan` stand for.
pub(crate) fn read_metric(value: f64, is_nan: bool) -> f64 {
    if is_nan {
        f64::NAN
    } else {
        MlflowFloat::from_stored(value)
    }
}

/// The lifecycle stages a view reads.
pub(crate) fn stages(view: ViewType) -> &'static [&'static str] {
    match view {
        ViewType::ActiveOnly => &["active"],
        ViewType::DeletedOnly => &["deleted"],
        ViewType::All => &["active", "deleted"],
    }
}

/// MLflow's page token: base64 of `{"offset": N}`.
pub(crate) fn encode_page_token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// The offset of an MLflow page token.
pub(crate) fn decode_page_token(token: &str) -> Result<usize, MlflowError> {
    #[derive(serde::Deserialize)]
    struct Token {
        offset: usize,
    }
    let bad = |why: &str| MlflowError::InvalidQuery(format!("invalid page token {token:?}: {why}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| bad("not base64"))?;
    let parsed: Token = serde_json::from_slice(&bytes).map_err(|_| bad("no offset"))?;
    Ok(parsed.offset)
}

/// One search page's split between the database (statements stepping, rows arriving) and
/// building runs from its rows, kept only while [`crate::timing`] records (two clock reads per
/// row, none otherwise).
#[derive(Debug)]
pub(crate) struct PageTimes {
    mark: Option<Instant>,
    stepping: Duration,
    parsing: Duration,
    rows: usize,
}

impl PageTimes {
    pub(crate) fn new() -> Self {
        Self {
            mark: None,
            stepping: Duration::ZERO,
            parsing: Duration::ZERO,
            rows: 0,
        }
    }

    /// A new page, its clock started (when recording).
    pub(crate) fn started() -> Self {
        let mut times = Self::new();
        if crate::timing::is_enabled() {
            times.mark = Some(Instant::now());
        }
        times
    }

    /// The time since the last mark was the database's.
    pub(crate) fn stepped(&mut self) {
        if let Some(mark) = self.mark.as_mut() {
            let now = Instant::now();
            self.stepping += now - *mark;
            *mark = now;
        }
    }

    /// The time since the last mark went into building runs.
    pub(crate) fn parsed(&mut self) {
        if let Some(mark) = self.mark.as_mut() {
            let now = Instant::now();
            self.parsing += now - *mark;
            *mark = now;
        }
    }

    /// One more tag, param or metric entry read.
    pub(crate) fn count_row(&mut self) {
        self.rows += 1;
    }

    /// Adds the page to [`crate::timing`]'s totals.
    pub(crate) fn record(&self, runs: usize) {
        if self.mark.is_some() {
            crate::timing::record_page(self.stepping, self.parsing, runs, self.rows);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn page_tokens_match_mlflow() {
        // MLflow: base64.b64encode(json.dumps({"offset": 1000}))
        assert_eq!(encode_page_token(1000), "eyJvZmZzZXQiOiAxMDAwfQ==");
        assert_eq!(decode_page_token("eyJvZmZzZXQiOiAxMDAwfQ==").unwrap(), 1000);
        assert!(decode_page_token("%%%").is_err());
    }

    #[test]
    fn metric_sanitising_round_trips() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -2.5] {
            let (stored, is_nan) = sanitize_metric(value);
            assert!(stored.is_finite());
            let back = read_metric(stored, is_nan);
            assert!(back == value || (back.is_nan() && value.is_nan()));
        }
    }

    #[test]
    fn run_ids_look_like_uuid4_hex() {
        let id = new_run_id();
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(&id[12..13], "4");
    }
}
