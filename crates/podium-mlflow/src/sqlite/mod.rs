//! The SQLite store: reads and writes MLflow's own SQLAlchemy schema, so runs logged by Python
//! `mlflow` with default settings are read with no server, and what podium writes shows up in
//! `mlflow ui` and `mlflow.search_runs`.
//!
//! MLflow's semantics kept here: NaN metrics are stored as value 0 with `is_nan = 1`, ±inf as
//! ±1.7976931348623157e308; `latest_metrics` holds the max by (step, timestamp, value); params are
//! immutable; page tokens are base64 of `{"offset": N}` like MLflow's. A search is two SQL
//! statements per page (the matching runs, then their tags, params and latest metrics together),
//! never one per run.
//!
//! # Writing beside Python mlflow
//!
//! MLflow 3.17.2 opens SQLite with the default rollback journal (no WAL) and
//! `PRAGMA busy_timeout = 20000`; podium keeps that journal mode (switching a file to WAL is
//! persistent and changes it for every MLflow client) and waits up to
//! [`DEFAULT_BUSY_TIMEOUT`]. What holds when podium and Python processes write one file at once
//! (`tests/sqlite_concurrency.rs` runs MlflowClient and two podium threads against each other):
//!
//! - Guaranteed: every podium write is one `BEGIN IMMEDIATE` transaction, so it never fails
//!   halfway for lock reasons and never deadlocks: it waits for the write lock up front.
//!   Writes of one store take turns, and after each one the store leaves the database unlocked
//!   for as long as it held it (at most [`MAX_WRITE_PAUSE`]), so a Python writer waiting on its
//!   busy timeout is not starved by a podium loop writing as fast as it can. Every write of
//!   both sides is in the file afterwards.
//! - Not guaranteed: a single podium transaction longer than MLflow's 20 s busy timeout (a huge
//!   [`SqliteStore::write_batch`]) or a podium read holding the file that long makes a
//!   concurrent Python write fail with "database is locked"; so does a Python transaction that
//!   reads, then writes while podium holds the write lock (SQLite refuses that upgrade at once
//!   instead of waiting). Several podium processes each pause on their own, so together they can
//!   still keep the lock busy most of the time.

#[cfg(test)]
mod query_plan;
mod search;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rusqlite::types::Value;
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use crate::artifacts::{self, ArtifactLocation};
use crate::error::MlflowError;
use crate::model::{
    Experiment, INFINITY_SENTINEL, KeySelection, MetricPoint, MlflowFloat, Run, RunFields, RunInfo,
    RunStatus, RunsPage, ViewType,
};
use crate::request::SearchRequest;
use crate::store::TrackingStore;

/// The schema MLflow 3.17.2 creates, dumped by `scripts/dump-mlflow-schema.py`.
pub const SCHEMA_SQL: &str = include_str!("../../schema/mlflow-3.17.2.sql");

/// The alembic revision of [`SCHEMA_SQL`]: the only one podium writes to.
pub const SCHEMA_REVISION: &str = "dc11669786a5";

/// How long a statement waits for another process's lock before failing.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest pause between two write transactions of one store (see `SqliteStore::write`):
/// longer than the 100 ms between two polls of a waiting MLflow process, short enough that a
/// long bulk transaction does not stall the next write.
pub const MAX_WRITE_PAUSE: Duration = Duration::from_millis(250);

/// Settings of every connection, chosen for selection's searches (see docs/PERFORMANCE.md):
///
/// - `cache_size`: 8 MiB of page cache per connection. A search reads each page of its runs'
///   tags once or twice, so more cache barely cuts the reads, while each concurrent
///   search's connection would hold its own copy.
/// - `mmap_size = 0`: no memory-mapped reads. Every connection maps the file on its own, so
///   concurrent searches count the same pages once per connection in the resident set.
/// - `temp_store = MEMORY`: ORDER BY sorts and `IN (…)` lists stay in memory instead of
///   spilling to temporary files, so a search writes nothing anywhere.
const READ_PRAGMAS: &str =
    "PRAGMA cache_size = -8192; PRAGMA mmap_size = 0; PRAGMA temp_store = MEMORY;";

/// The tag MLflow mirrors into `runs.name`.
const RUN_NAME_TAG: &str = "mlflow.runName";

/// A store on an MLflow SQLite database file. `Sync`: threads share small pools of connections
/// (read-only ones for reads, read-write ones opened only when something is written).
///
/// ```
/// use std::collections::BTreeMap;
/// use podium_mlflow::{search_all, Filter, RunStatus, TrackingStore, ViewType};
/// use podium_mlflow::sqlite::SqliteStore;
///
/// let dir = tempfile::tempdir()?;
/// let store = SqliteStore::open(&dir.path().join("mlflow.db"))?;
/// let experiment = store.create_experiment("sweep")?;
/// let tags = BTreeMap::from([("code.backbone".to_string(), "distilbert".to_string())]);
/// let run = store.create_run(&experiment, "trial-0", 1_000, &tags)?;
/// store.update_run(&run.run_id, RunStatus::Finished, Some(2_000))?;
/// let filter = Filter::new().tag_eq("code.backbone", "distilbert").status(RunStatus::Finished);
/// let runs = search_all(&store, &[experiment], &filter, ViewType::ActiveOnly)?;
/// assert_eq!(runs.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    display: String,
    /// Read-only connections for searches and lookups (a command that only reads never opens
    /// the file for writing, so it cannot take a write lock or write a journal).
    readers: Mutex<Vec<Connection>>,
    /// Read-write connections, opened on the first write.
    writers: Mutex<Vec<Connection>>,
    revision: String,
    has_workspace: bool,
    default_artifact_root: String,
    busy_timeout: Duration,
    /// Serialises this store's write transactions and holds the earliest instant the next one
    /// may start (see [`SqliteStore::write`]).
    write_turn: Mutex<Instant>,
    /// The thread inside a write transaction, to refuse a nested write instead of hanging.
    writing_thread: Mutex<Option<std::thread::ThreadId>>,
}

/// Clears `SqliteStore::writing_thread` when a write ends, however it ends.
struct ReleaseWriter<'a>(&'a Mutex<Option<std::thread::ThreadId>>);

impl Drop for ReleaseWriter<'_> {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Runs per statement of run data when a search is streamed ([`TrackingStore::search_runs_each`]):
/// large enough that the data statement's fixed cost vanishes, small enough that a chunk's runs
/// are a few hundred KiB.
const STREAM_CHUNK: usize = 1024;

/// One search page's split between SQLite stepping and building runs from its rows, kept only
/// while [`crate::timing`] records (two clock reads per row, none otherwise).
#[derive(Debug)]
struct PageTimes {
    mark: Option<Instant>,
    stepping: Duration,
    parsing: Duration,
    rows: usize,
}

impl PageTimes {
    fn new() -> Self {
        Self {
            mark: None,
            stepping: Duration::ZERO,
            parsing: Duration::ZERO,
            rows: 0,
        }
    }

    /// Starts the clock (when recording).
    fn start(&mut self) {
        if crate::timing::is_enabled() {
            self.mark = Some(Instant::now());
        }
    }

    /// The time since the last mark was SQLite's.
    fn stepped(&mut self) {
        if let Some(mark) = self.mark.as_mut() {
            let now = Instant::now();
            self.stepping += now - *mark;
            *mark = now;
        }
    }

    /// The time since the last mark went into building runs.
    fn parsed(&mut self) {
        if let Some(mark) = self.mark.as_mut() {
            let now = Instant::now();
            self.parsing += now - *mark;
            *mark = now;
        }
    }

    fn record(&self, runs: usize) {
        if self.mark.is_some() {
            crate::timing::record_page(self.stepping, self.parsing, runs, self.rows);
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A fresh 32-hex run id, like MLflow's `uuid.uuid4().hex`.
fn new_run_id() -> String {
    let mut bits = fastrand::u128(..);
    // Version 4, variant 1, as uuid4.
    bits = (bits & !(0xF << 76)) | (0x4 << 76);
    bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    format!("{bits:032x}")
}

/// Metric value and `is_nan` as MLflow's SQL store writes them.
fn sanitize_metric(value: f64) -> (f64, bool) {
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

fn read_metric(value: f64, is_nan: bool) -> f64 {
    if is_nan {
        f64::NAN
    } else {
        MlflowFloat::from_stored(value)
    }
}

fn stages(view: ViewType) -> &'static [&'static str] {
    match view {
        ViewType::ActiveOnly => &["active"],
        ViewType::DeletedOnly => &["deleted"],
        ViewType::All => &["active", "deleted"],
    }
}

/// MLflow's page token: base64 of `{"offset": N}`.
fn encode_page_token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

fn decode_page_token(token: &str) -> Result<usize, MlflowError> {
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

impl SqliteStore {
    /// Opens (creating it with MLflow 3.17.2's schema and the default experiment when the file
    /// is missing or empty) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, MlflowError> {
        Self::open_with_busy_timeout(path, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`SqliteStore::open`] with a chosen busy timeout.
    pub fn open_with_busy_timeout(
        path: &Path,
        busy_timeout: Duration,
    ) -> Result<Self, MlflowError> {
        let display = path.display().to_string();
        let sql_error = |message: String| MlflowError::Sqlite {
            path: display.clone(),
            message,
        };
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            && !parent.is_dir()
        {
            return Err(sql_error(format!(
                "directory {} does not exist",
                parent.display()
            )));
        }
        let absolute = std::path::absolute(path).map_err(|source| MlflowError::Io {
            context: format!("resolving {display}"),
            source,
        })?;
        // An existing database is opened read-only first: opening a store must not lock or
        // write the file; only a missing or empty one is created (in a write transaction).
        let existing = path.metadata().is_ok_and(|meta| meta.len() > 0);
        let mut writers = Vec::new();
        let mut reader = None;
        if existing {
            let connection = connect(path, busy_timeout, Access::ReadOnly)
                .map_err(|err| sql_error(err.to_string()))?;
            if has_tables(&connection).map_err(|err| sql_error(err.to_string()))? {
                reader = Some(connection);
            }
        }
        let connection = match reader {
            Some(connection) => connection,
            None => {
                let mut writer = connect(path, busy_timeout, Access::ReadWrite)
                    .map_err(|err| sql_error(err.to_string()))?;
                let created = initialize_if_empty(&mut writer, &absolute)
                    .map_err(|err| sql_error(format!("creating the MLflow schema: {err}")))?;
                if created {
                    tracing::info!(
                        "created MLflow {SCHEMA_REVISION} database {}",
                        path.display()
                    );
                }
                writers.push(writer);
                connect(path, busy_timeout, Access::ReadOnly)
                    .map_err(|err| sql_error(err.to_string()))?
            }
        };
        let revision: Option<String> = connection
            .query_row("SELECT version_num FROM alembic_version", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|err| {
                sql_error(format!(
                    "not an MLflow tracking database (no alembic_version: {err})"
                ))
            })?;
        let revision = revision.ok_or_else(|| {
            sql_error("not an MLflow tracking database (alembic_version is empty)".to_string())
        })?;
        let has_workspace = connection
            .prepare("SELECT 1 FROM pragma_table_info('experiments') WHERE name = 'workspace'")
            .and_then(|mut statement| statement.exists([]))
            .map_err(|err| sql_error(err.to_string()))?;
        let default_location: Option<String> = connection
            .query_row(
                "SELECT artifact_location FROM experiments WHERE experiment_id = 0",
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(|err| sql_error(err.to_string()))?
            .flatten();
        let default_artifact_root = default_location
            .as_deref()
            .and_then(|location| location.strip_suffix("/0"))
            .map(str::to_string)
            .unwrap_or_else(|| default_artifact_root_for(&absolute));
        Ok(Self {
            path: path.to_path_buf(),
            display,
            readers: Mutex::new(vec![connection]),
            writers: Mutex::new(writers),
            revision,
            has_workspace,
            default_artifact_root,
            busy_timeout,
            write_turn: Mutex::new(Instant::now()),
            writing_thread: Mutex::new(None),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The alembic revision of the database.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// True when podium writes to this database (its revision is [`SCHEMA_REVISION`]).
    pub fn is_writable(&self) -> bool {
        self.revision == SCHEMA_REVISION
    }

    fn sql_error(&self, context: &str, err: impl std::fmt::Display) -> MlflowError {
        MlflowError::Sqlite {
            path: self.display.clone(),
            message: format!("{context}: {err}"),
        }
    }

    /// Runs `work` on a pooled connection of the given access. The pool's lock is held only to
    /// take and return a connection, never while SQLite works: concurrent searches (one per
    /// backbone) each step their own connection.
    fn with_connection<T>(
        &self,
        access: Access,
        work: impl FnOnce(&mut Connection) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        let pool = match access {
            Access::ReadOnly => &self.readers,
            Access::ReadWrite => &self.writers,
        };
        let pooled = pool
            .lock()
            .map_err(|_| self.sql_error("connection pool", "poisoned by a panic"))?
            .pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => connect(&self.path, self.busy_timeout, access)
                .map_err(|err| self.sql_error("opening", err))?,
        };
        let result = work(&mut connection);
        if let Ok(mut pool) = pool.lock() {
            pool.push(connection);
        }
        result
    }

    /// Runs `work` in a deferred read transaction (one consistent snapshot).
    fn read<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        self.with_connection(Access::ReadOnly, |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(|err| self.sql_error("starting a read", err))?;
            let result = work(&transaction)?;
            transaction
                .finish()
                .map_err(|err| self.sql_error("ending a read", err))?;
            Ok(result)
        })
    }

    /// Runs `work` in an immediate write transaction, committed when it succeeds.
    ///
    /// SQLite has no fair lock: a process waiting for it (MLflow's SQLAlchemy engine polls
    /// every 100 ms once it has waited a while) only gets it if it happens to be free when it
    /// looks. So after each write transaction this store leaves the database unlocked for as
    /// long as the transaction held it (at most [`MAX_WRITE_PAUSE`]) before its next one:
    /// podium holds the write lock at most half of the time, and another writer's poll finds
    /// it free with even odds however fast podium writes.
    fn write<T>(
        &self,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        if !self.is_writable() {
            return Err(MlflowError::ReadOnly {
                path: self.display.clone(),
                reason: format!(
                    "its alembic revision is {} but podium writes only MLflow 3.17.2's {SCHEMA_REVISION}; \
                     upgrade it with `mlflow db upgrade sqlite:///{}` or use an MLflow server",
                    self.revision, self.display
                ),
            });
        }
        // A write from inside `write_batch`'s closure would wait for the batch forever: refuse
        // it instead.
        let this_thread = std::thread::current().id();
        let writer = || {
            self.writing_thread
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if *writer() == Some(this_thread) {
            return Err(self.sql_error(
                "nested write",
                "a write through the store inside its own write transaction (write_batch) \
                 would wait for itself; write through the batch passed to the closure",
            ));
        }
        let mut next_write = self
            .write_turn
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *writer() = Some(this_thread);
        let _release = ReleaseWriter(&self.writing_thread);
        let wait = next_write.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        self.with_connection(Access::ReadWrite, |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|err| self.sql_error("starting a write", err))?;
            let locked_at = Instant::now();
            let outcome = match work(&transaction) {
                Ok(value) => transaction
                    .commit()
                    .map(|()| value)
                    .map_err(|err| self.sql_error("committing", err)),
                Err(err) => {
                    drop(transaction); // rolls back
                    Err(err)
                }
            };
            let held = locked_at.elapsed();
            *next_write = Instant::now() + held.min(MAX_WRITE_PAUSE);
            outcome
        })
    }

    fn experiment_id_number(&self, experiment_id: &str) -> Result<i64, MlflowError> {
        experiment_id
            .trim()
            .parse()
            .map_err(|_| self.not_found("experiment", experiment_id))
    }

    fn not_found(&self, what: &'static str, id: &str) -> MlflowError {
        MlflowError::NotFound {
            what,
            id: id.to_string(),
            store: self.display.clone(),
        }
    }

    fn invalid_state(&self, what: &'static str, id: &str, message: &str) -> MlflowError {
        MlflowError::InvalidState {
            what,
            id: id.to_string(),
            store: self.display.clone(),
            message: message.to_string(),
        }
    }

    fn load_experiment(
        &self,
        transaction: &Transaction<'_>,
        condition: &str,
        value: &dyn rusqlite::ToSql,
    ) -> Result<Option<Experiment>, MlflowError> {
        let workspace = if self.has_workspace && condition.starts_with("name") {
            " AND workspace = 'default'"
        } else {
            ""
        };
        let sql = format!(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage FROM experiments \
             WHERE {condition}{workspace}"
        );
        let row = transaction
            .query_row(&sql, [value], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()
            .map_err(|err| self.sql_error("reading experiments", err))?;
        let Some((id, name, artifact_location, lifecycle_stage)) = row else {
            return Ok(None);
        };
        let mut statement = transaction
            .prepare_cached("SELECT key, value FROM experiment_tags WHERE experiment_id = ?")
            .map_err(|err| self.sql_error("reading experiment tags", err))?;
        let tags = statement
            .query_map([id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
            })
            .and_then(|rows| {
                rows.map(|row| row.map(|(key, value)| (key, value.unwrap_or_default())))
                    .collect::<Result<BTreeMap<_, _>, _>>()
            })
            .map_err(|err| self.sql_error("reading experiment tags", err))?;
        Ok(Some(Experiment {
            experiment_id: id.to_string(),
            name,
            artifact_location: artifact_location.unwrap_or_default(),
            lifecycle_stage: lifecycle_stage.unwrap_or_else(|| "active".to_string()),
            tags,
        }))
    }

    /// The experiment row, or NotFound.
    fn require_experiment(
        &self,
        transaction: &Transaction<'_>,
        experiment_id: &str,
    ) -> Result<Experiment, MlflowError> {
        let id = self.experiment_id_number(experiment_id)?;
        self.load_experiment(transaction, "experiment_id = ?", &id)?
            .ok_or_else(|| self.not_found("experiment", experiment_id))
    }

    /// Fails unless the run exists and is active (MLflow refuses writes to deleted runs).
    fn require_active_run(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
    ) -> Result<(), MlflowError> {
        let stage: Option<Option<String>> = transaction
            .query_row(
                "SELECT lifecycle_stage FROM runs WHERE run_uuid = ?",
                [run_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|err| self.sql_error("reading runs", err))?;
        match stage {
            None => Err(self.not_found("run", run_id)),
            Some(Some(stage)) if stage != "active" => Err(self.invalid_state(
                "run",
                run_id,
                "the run is deleted; MLflow refuses to change it",
            )),
            Some(_) => Ok(()),
        }
    }

    /// Tags, params and latest metrics of the given runs, in one statement; only the keys
    /// `fields` selects are read (a kind selecting nothing is not queried at all).
    fn load_run_data(
        &self,
        transaction: &Transaction<'_>,
        runs: Vec<RunInfo>,
        fields: &RunFields,
        times: &mut PageTimes,
    ) -> Result<Vec<Run>, MlflowError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(&runs.iter().map(|run| &run.run_id).collect::<Vec<_>>())
            .map_err(|err| self.sql_error("encoding run ids", err))?;
        let mut index: HashMap<String, usize> = HashMap::with_capacity(runs.len());
        let mut out: Vec<Run> = runs
            .into_iter()
            .enumerate()
            .map(|(position, info)| {
                index.insert(info.run_id.clone(), position);
                Run {
                    info,
                    tags: BTreeMap::new(),
                    params: BTreeMap::new(),
                    metrics: BTreeMap::new(),
                }
            })
            .collect();
        let Some((sql, values)) =
            run_data_query(ids, fields).map_err(|err| self.sql_error("encoding keys", err))?
        else {
            return Ok(out);
        };
        // Building the runs' skeletons was parsing.
        times.parsed();
        let mut statement = transaction
            .prepare_cached(&sql)
            .map_err(|err| self.sql_error("preparing the run data query", err))?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(values))
            .map_err(|err| self.sql_error("reading run data", err))?;
        while let Some(row) = rows
            .next()
            .map_err(|err| self.sql_error("reading run data", err))?
        {
            times.stepped();
            // The run id is only looked up, so it is borrowed from SQLite's row, not copied.
            let position = match row.get_ref(1) {
                Ok(rusqlite::types::ValueRef::Text(id)) => std::str::from_utf8(id)
                    .ok()
                    .and_then(|id| index.get(id).copied()),
                Ok(_) => None,
                Err(err) => return Err(self.sql_error("reading run data", err)),
            };
            let Some(position) = position else {
                continue;
            };
            let read = |row: &rusqlite::Row<'_>| -> rusqlite::Result<_> {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<f64>>(4)?,
                    row.get::<_, Option<bool>>(5)?,
                ))
            };
            let (kind, key, text, number, is_nan) =
                read(row).map_err(|err| self.sql_error("reading run data", err))?;
            let run = &mut out[position];
            match kind {
                0 => {
                    run.tags.insert(key, text.unwrap_or_default());
                }
                1 => {
                    run.params.insert(key, text.unwrap_or_default());
                }
                _ => {
                    let value = read_metric(number.unwrap_or(0.0), is_nan.unwrap_or(false));
                    run.metrics.insert(key, value);
                }
            }
            times.rows += 1;
            times.parsed();
        }
        times.stepped();
        Ok(out)
    }

    fn search_page(
        &self,
        transaction: &Transaction<'_>,
        request: &SearchRequest,
        offset: usize,
    ) -> Result<RunsPage, MlflowError> {
        let max_results = request.max_results;
        let Some((sql, values)) = runs_query(request, Some(max_results), offset)? else {
            return Ok(RunsPage::default());
        };
        let mut times = PageTimes::new();
        times.start();
        let mut statement = transaction
            .prepare(&sql)
            .map_err(|err| self.sql_error("preparing the search", err))?;
        let mut infos = statement
            .query_map(rusqlite::params_from_iter(values), run_info_from_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|err| self.sql_error("searching runs", err))?;
        // The run rows are few and small: their decoding counts as the statement's time.
        times.stepped();
        let next_page_token = (infos.len() > max_results).then(|| {
            infos.truncate(max_results);
            encode_page_token(offset + max_results)
        });
        let runs = self.load_run_data(transaction, infos, &request.fields, &mut times)?;
        times.record(runs.len());
        Ok(RunsPage {
            runs,
            next_page_token,
        })
    }

    /// Every run of `request` from `offset` on, in one statement stepped while the runs'
    /// data is read [`STREAM_CHUNK`] runs at a time (one snapshot, one filter pass, at most a
    /// chunk of runs held).
    fn stream_runs(
        &self,
        transaction: &Transaction<'_>,
        request: &SearchRequest,
        offset: usize,
        visit: &mut dyn FnMut(Run),
    ) -> Result<usize, MlflowError> {
        let Some((sql, values)) = runs_query(request, None, offset)? else {
            return Ok(0);
        };
        let chunk_size = STREAM_CHUNK.min(request.max_results).max(1);
        let mut times = PageTimes::new();
        times.start();
        let mut statement = transaction
            .prepare(&sql)
            .map_err(|err| self.sql_error("preparing the search", err))?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(values))
            .map_err(|err| self.sql_error("searching runs", err))?;
        let mut chunk = Vec::with_capacity(chunk_size);
        let mut count = 0;
        loop {
            let row = rows
                .next()
                .map_err(|err| self.sql_error("searching runs", err))?;
            let done = row.is_none();
            if let Some(row) = row {
                chunk.push(
                    run_info_from_row(row).map_err(|err| self.sql_error("searching runs", err))?,
                );
            }
            if chunk.len() == chunk_size || (done && !chunk.is_empty()) {
                times.stepped();
                let infos = std::mem::replace(&mut chunk, Vec::with_capacity(chunk_size));
                let runs = self.load_run_data(transaction, infos, &request.fields, &mut times)?;
                times.record(runs.len());
                count += runs.len();
                runs.into_iter().for_each(&mut *visit);
                times = PageTimes::new();
                times.start();
            }
            if done {
                return Ok(count);
            }
        }
    }

    fn create_run_in(
        &self,
        transaction: &Transaction<'_>,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        let experiment = self.require_experiment(transaction, experiment_id)?;
        if !experiment.is_active() {
            return Err(self.invalid_state(
                "experiment",
                experiment_id,
                "could not create a run under a non-active experiment",
            ));
        }
        let run_id = new_run_id();
        // As MLflow: the runName tag wins over the argument; a run always has a name.
        let name = tags
            .get(RUN_NAME_TAG)
            .cloned()
            .filter(|name| !name.is_empty())
            .or_else(|| (!run_name.is_empty()).then(|| run_name.to_string()))
            .unwrap_or_else(|| format!("run-{}", &run_id[..8]));
        let user = tags
            .get("mlflow.user")
            .cloned()
            .unwrap_or_else(|| "unknown".to_string());
        let artifact_uri = format!("{}/{run_id}/artifacts", experiment.artifact_location);
        transaction
                .prepare_cached(
                    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, \
                     user_id, status, start_time, end_time, source_version, lifecycle_stage, \
                     artifact_uri, experiment_id, deleted_time) \
                     VALUES (?1, ?2, 'UNKNOWN', '', '', ?3, 'RUNNING', ?4, NULL, '', 'active', ?5, ?6, NULL)",
                )
                .and_then(|mut statement| statement.execute(params![
                        run_id,
                        name,
                        user,
                        start_time_ms,
                        artifact_uri,
                        experiment.experiment_id.parse::<i64>().unwrap_or(-1)
                    ]))
                .map_err(|err| self.sql_error("creating a run", err))?;
        for (key, value) in tags {
            self.insert_tag(transaction, &run_id, key, value)?;
        }
        if !tags.contains_key(RUN_NAME_TAG) {
            self.insert_tag(transaction, &run_id, RUN_NAME_TAG, &name)?;
        }
        Ok(RunInfo {
            run_id,
            experiment_id: experiment.experiment_id,
            run_name: name,
            status: RunStatus::Running,
            start_time: Some(start_time_ms),
            end_time: None,
            artifact_uri,
            lifecycle_stage: "active".to_string(),
        })
    }

    fn update_run_in(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        self.require_active_run(transaction, run_id)?;
        transaction
            .prepare_cached(
                "UPDATE runs SET status = ?1, end_time = COALESCE(?2, end_time) WHERE run_uuid = ?3",
            )
            .and_then(|mut statement| statement.execute(params![status.as_str(), end_time_ms, run_id]))
            .map_err(|err| self.sql_error(&format!("updating run {run_id}"), err))?;
        Ok(())
    }

    fn log_batch_in(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        self.require_active_run(transaction, run_id)?;
        for (key, value) in params {
            self.insert_param(transaction, run_id, key, value)?;
        }
        for point in metrics {
            self.insert_metric(transaction, run_id, point)?;
        }
        for (key, value) in tags {
            self.insert_tag(transaction, run_id, key, value)?;
        }
        Ok(())
    }

    /// Runs `work` in ONE write transaction: for bulk imports (thousands of runs per second
    /// instead of one commit per call). Nothing is written if `work` fails. `work` must write
    /// through the batch only: a write through the store itself from inside `work` is refused
    /// with an error (it would otherwise wait for the batch to end).
    ///
    /// ```
    /// # use std::collections::BTreeMap;
    /// # use podium_mlflow::{sqlite::SqliteStore, RunStatus, TrackingStore};
    /// # let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(&dir.path().join("mlflow.db"))?;
    /// let experiment = store.create_experiment("bulk")?;
    /// store.write_batch(|batch| {
    ///     for trial in 0..100 {
    ///         let run = batch.create_run(&experiment, &format!("t{trial}"), trial, &BTreeMap::new())?;
    ///         batch.update_run(&run.run_id, RunStatus::Finished, Some(trial + 1))?;
    ///     }
    ///     Ok(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_batch<T>(
        &self,
        work: impl FnOnce(&SqliteBatch<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        self.write(|transaction| {
            work(&SqliteBatch {
                store: self,
                transaction,
            })
        })
    }

    fn insert_tag(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        transaction
            .prepare_cached(
                "INSERT INTO tags (key, value, run_uuid) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut statement| statement.execute(params![key, value, run_id]))
            .map_err(|err| self.sql_error(&format!("setting tag {key:?} of run {run_id}"), err))?;
        if key == RUN_NAME_TAG {
            transaction
                .execute(
                    "UPDATE runs SET name = ?1 WHERE run_uuid = ?2",
                    params![value, run_id],
                )
                .map_err(|err| self.sql_error(&format!("renaming run {run_id}"), err))?;
        }
        Ok(())
    }

    fn insert_param(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        let existing: Option<String> = transaction
            .prepare_cached("SELECT value FROM params WHERE run_uuid = ?1 AND key = ?2")
            .and_then(|mut statement| {
                statement
                    .query_row(params![run_id, key], |row| row.get(0))
                    .optional()
            })
            .map_err(|err| self.sql_error(&format!("reading param {key:?}"), err))?;
        match existing {
            Some(existing) if existing == value => Ok(()),
            Some(existing) => Err(MlflowError::ParamConflict {
                run_id: run_id.to_string(),
                key: key.to_string(),
                existing,
                new: value.to_string(),
            }),
            None => transaction
                .prepare_cached("INSERT INTO params (key, value, run_uuid) VALUES (?1, ?2, ?3)")
                .and_then(|mut statement| statement.execute(params![key, value, run_id]))
                .map(drop)
                .map_err(|err| {
                    self.sql_error(&format!("logging param {key:?} of run {run_id}"), err)
                }),
        }
    }

    fn insert_metric(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        point: &MetricPoint<'_>,
    ) -> Result<(), MlflowError> {
        let (value, is_nan) = sanitize_metric(point.value);
        let context = || format!("logging metric {:?} of run {run_id}", point.key);
        transaction
            .prepare_cached(
                "INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, is_nan) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    point.key,
                    value,
                    point.timestamp,
                    run_id,
                    point.step,
                    is_nan
                ])
            })
            .map_err(|err| self.sql_error(&context(), err))?;
        // MLflow's latest value: the max by (step, timestamp, value), compared on stored values.
        transaction
            .prepare_cached(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value, \
                   timestamp = excluded.timestamp, step = excluded.step, is_nan = excluded.is_nan \
                 WHERE (excluded.step, excluded.timestamp, excluded.value) > \
                   (latest_metrics.step, COALESCE(latest_metrics.timestamp, -9223372036854775808), latest_metrics.value)",
            )
            .and_then(|mut statement| {
                statement.execute(params![point.key, value, point.timestamp, point.step, is_nan, run_id])
            })
            .map_err(|err| self.sql_error(&context(), err))?;
        Ok(())
    }
}

/// One write transaction of a [`SqliteStore`], handed out by [`SqliteStore::write_batch`].
#[derive(Debug)]
pub struct SqliteBatch<'a> {
    store: &'a SqliteStore,
    transaction: &'a Transaction<'a>,
}

impl SqliteBatch<'_> {
    /// As [`TrackingStore::create_run`], inside the batch.
    pub fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        self.store.create_run_in(
            self.transaction,
            experiment_id,
            run_name,
            start_time_ms,
            tags,
        )
    }

    /// As [`TrackingStore::update_run`], inside the batch.
    pub fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        self.store
            .update_run_in(self.transaction, run_id, status, end_time_ms)
    }

    /// As [`TrackingStore::set_tag`], inside the batch.
    pub fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        self.store.require_active_run(self.transaction, run_id)?;
        self.store.insert_tag(self.transaction, run_id, key, value)
    }

    /// As [`TrackingStore::log_batch`], inside the batch.
    pub fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        self.store
            .log_batch_in(self.transaction, run_id, metrics, params, tags)
    }
}

/// The statement that finds one page of runs (one extra row tells whether another page
/// follows, as MLflow does), with its parameters; None when no experiment id can match.
/// The statement of the runs of `request` from `offset`: `limit` runs plus one (telling whether
/// another page follows, as MLflow does), or all of them.
fn runs_query(
    request: &SearchRequest,
    limit: Option<usize>,
    offset: usize,
) -> Result<Option<(String, Vec<Value>)>, MlflowError> {
    let SearchRequest {
        experiment_ids,
        filter,
        view,
        order_by,
        ..
    } = request;
    let view = *view;
    let parsed = search::parse_filter(filter)?;
    let order = search::parse_order_by(order_by)?;
    let mut experiments = Vec::with_capacity(experiment_ids.len());
    for id in experiment_ids {
        // A non-numeric id names no experiment in this database.
        if let Ok(number) = id.trim().parse::<i64>() {
            experiments.push(Value::Integer(number));
        }
    }
    if experiments.is_empty() {
        return Ok(None);
    }
    let stage_values = stages(view);
    let mut sql = String::from(
        "SELECT r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, r.end_time, \
         r.artifact_uri, r.lifecycle_stage FROM runs r",
    );
    for join in &order.joins {
        sql.push(' ');
        sql.push_str(join);
    }
    sql.push_str(&format!(
        " WHERE r.experiment_id IN ({}) AND r.lifecycle_stage IN ({})",
        vec!["?"; experiments.len()].join(", "),
        vec!["?"; stage_values.len()].join(", ")
    ));
    for clause in &parsed.clauses {
        sql.push_str(" AND ");
        sql.push_str(clause);
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(&order.terms.join(", "));
    sql.push_str(" LIMIT ? OFFSET ?");
    let mut values: Vec<Value> = order.join_params;
    values.extend(experiments);
    values.extend(
        stage_values
            .iter()
            .map(|stage| Value::Text((*stage).to_string())),
    );
    values.extend(parsed.params);
    // SQLite reads a negative LIMIT as none.
    values.push(Value::Integer(
        limit.map_or(-1, |limit| i64::try_from(limit + 1).unwrap_or(i64::MAX)),
    ));
    values.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    Ok(Some((sql, values)))
}

/// The one statement that reads the tags, params and latest metrics of a page's runs (`ids`:
/// a JSON array of run ids), restricted to the keys `fields` selects; None when it selects
/// nothing at all.
fn run_data_query(
    ids: String,
    fields: &RunFields,
) -> Result<Option<(String, Vec<Value>)>, serde_json::Error> {
    let mut values = vec![Value::Text(ids)];
    let mut selects = Vec::with_capacity(3);
    for (kind, columns, table, selection) in [
        (0, "t.value, NULL, NULL", "tags t", &fields.tags),
        (1, "t.value, NULL, NULL", "params t", &fields.params),
        (
            2,
            "NULL, t.value, t.is_nan",
            "latest_metrics t",
            &fields.metrics,
        ),
    ] {
        let mut select = format!(
            "SELECT {kind}, t.run_uuid, t.key, {columns} FROM {table} \
             WHERE t.run_uuid IN (SELECT id FROM page)"
        );
        match selection {
            KeySelection::All => {}
            KeySelection::Only(keys) if keys.is_empty() => continue,
            KeySelection::Only(keys) => {
                let keys = serde_json::to_string(keys)?;
                values.push(Value::Text(keys));
                // The unary `+` keeps SQLite on the run_uuid index: probing the
                // (key, run_uuid) primary key once per key and run measured twice as slow
                // as reading each run's few rows and filtering them here.
                select.push_str(&format!(
                    " AND +t.key IN (SELECT value FROM json_each(?{}))",
                    values.len()
                ));
            }
        }
        selects.push(select);
    }
    if selects.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "WITH page(id) AS (SELECT value FROM json_each(?1)) {}",
        selects.join(" UNION ALL ")
    );
    Ok(Some((sql, values)))
}

fn run_info_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunInfo> {
    let status_text: Option<String> = row.get(3)?;
    let status = status_text
        .as_deref()
        .and_then(RunStatus::parse)
        .unwrap_or(RunStatus::Running);
    Ok(RunInfo {
        run_id: row.get(0)?,
        experiment_id: row
            .get::<_, Option<i64>>(1)?
            .map(|id| id.to_string())
            .unwrap_or_default(),
        run_name: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
        status,
        start_time: row.get(4)?,
        end_time: row.get(5)?,
        artifact_uri: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
        lifecycle_stage: row
            .get::<_, Option<String>>(7)?
            .unwrap_or_else(|| "active".to_string()),
    })
}

/// How a connection opens the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
}

fn connect(path: &Path, busy_timeout: Duration, access: Access) -> rusqlite::Result<Connection> {
    let mode = match access {
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    };
    let connection = Connection::open_with_flags(
        path,
        mode | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    connection.busy_timeout(busy_timeout)?;
    connection.execute_batch(READ_PRAGMAS)?;
    Ok(connection)
}

/// True when the database has any table (an empty file is a database waiting for its schema).
fn has_tables(connection: &Connection) -> rusqlite::Result<bool> {
    connection.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
        [],
        |row| row.get(0),
    )
}

/// Where artifacts of a new database go: `mlruns` beside it (MLflow uses `./mlruns` of the
/// working directory, which is the same place for the default `sqlite:///mlflow.db`).
fn default_artifact_root_for(absolute_db: &Path) -> String {
    absolute_db
        .parent()
        .map(|dir| dir.join("mlruns"))
        .unwrap_or_else(|| PathBuf::from("mlruns"))
        .display()
        .to_string()
}

/// Creates MLflow's schema and default experiment in an empty database; false when the
/// database already has tables. `BEGIN IMMEDIATE` makes concurrent creators take turns.
fn initialize_if_empty(connection: &mut Connection, absolute: &Path) -> rusqlite::Result<bool> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let objects: i64 = transaction.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
        [],
        |row| row.get(0),
    )?;
    if objects > 0 {
        transaction.finish()?;
        return Ok(false);
    }
    transaction.execute_batch(SCHEMA_SQL)?;
    let now = now_ms();
    let location = format!("{}/0", default_artifact_root_for(absolute));
    transaction.execute(
        "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, \
         creation_time, last_update_time, workspace) VALUES (0, 'Default', ?1, 'active', ?2, ?2, 'default')",
        params![location, now],
    )?;
    transaction.commit()?;
    Ok(true)
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

impl TrackingStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:///{}", self.display)
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, MlflowError> {
        self.read(|transaction| self.load_experiment(transaction, "name = ?", &name))
    }

    fn create_experiment(&self, name: &str) -> Result<String, MlflowError> {
        self.create_experiment_with_tags(name, &[])
    }

    fn create_experiment_with_tags(
        &self,
        name: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, MlflowError> {
        if name.trim().is_empty() {
            return Err(MlflowError::InvalidQuery(
                "an experiment name must not be empty".to_string(),
            ));
        }
        self.write(|transaction| {
            let now = now_ms();
            let inserted = if self.has_workspace {
                transaction.execute(
                    "INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time, workspace) \
                     VALUES (?1, 'active', ?2, ?2, 'default')",
                    params![name, now],
                )
            } else {
                transaction.execute(
                    "INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time) \
                     VALUES (?1, 'active', ?2, ?2)",
                    params![name, now],
                )
            };
            match inserted {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => {
                    return Err(MlflowError::AlreadyExists {
                        what: "experiment",
                        name: name.to_string(),
                        store: self.display.clone(),
                    });
                }
                Err(err) => return Err(self.sql_error(&format!("creating experiment {name:?}"), err)),
            }
            let id = transaction.last_insert_rowid();
            let location = format!("{}/{id}", self.default_artifact_root);
            transaction
                .execute(
                    "UPDATE experiments SET artifact_location = ?1 WHERE experiment_id = ?2",
                    params![location, id],
                )
                .map_err(|err| self.sql_error(&format!("creating experiment {name:?}"), err))?;
            for (key, value) in tags {
                transaction
                    .execute(
                        "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
                        params![key, value, id],
                    )
                    .map_err(|err| {
                        self.sql_error(&format!("tagging new experiment {name:?}"), err)
                    })?;
            }
            Ok(id.to_string())
        })
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, MlflowError> {
        self.read(|transaction| self.require_experiment(transaction, experiment_id))
    }

    fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        self.write(|transaction| {
            let experiment = self.require_experiment(transaction, experiment_id)?;
            if !experiment.is_active() {
                return Err(self.invalid_state(
                    "experiment",
                    experiment_id,
                    "the experiment is deleted; MLflow refuses to tag it",
                ));
            }
            transaction
                .execute(
                    "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
                    params![
                        key,
                        value,
                        experiment.experiment_id.parse::<i64>().unwrap_or(-1)
                    ],
                )
                .map_err(|err| {
                    self.sql_error(&format!("tagging experiment {experiment_id}"), err)
                })?;
            Ok(())
        })
    }

    fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<(), MlflowError> {
        if new_name.trim().is_empty() {
            return Err(MlflowError::InvalidQuery(
                "an experiment name must not be empty".to_string(),
            ));
        }
        self.write(|transaction| {
            let experiment = self.require_experiment(transaction, experiment_id)?;
            if !experiment.is_active() {
                return Err(self.invalid_state(
                    "experiment",
                    experiment_id,
                    "cannot rename a non-active experiment",
                ));
            }
            match transaction.execute(
                "UPDATE experiments SET name = ?1, last_update_time = ?2 WHERE experiment_id = ?3",
                params![
                    new_name,
                    now_ms(),
                    experiment.experiment_id.parse::<i64>().unwrap_or(-1)
                ],
            ) {
                Ok(_) => Ok(()),
                Err(err) if is_unique_violation(&err) => Err(MlflowError::AlreadyExists {
                    what: "experiment",
                    name: new_name.to_string(),
                    store: self.display.clone(),
                }),
                Err(err) => {
                    Err(self.sql_error(&format!("renaming experiment {experiment_id}"), err))
                }
            }
        })
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<(), MlflowError> {
        self.write(|transaction| {
            let experiment = self.require_experiment(transaction, experiment_id)?;
            if !experiment.is_active() {
                return Err(self.not_found("active experiment", experiment_id));
            }
            let id = experiment.experiment_id.parse::<i64>().unwrap_or(-1);
            let now = now_ms();
            transaction
                .execute(
                    "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ?1 \
                     WHERE experiment_id = ?2",
                    params![now, id],
                )
                .and_then(|_| {
                    transaction.execute(
                        "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ?1 \
                         WHERE experiment_id = ?2 AND lifecycle_stage = 'active'",
                        params![now, id],
                    )
                })
                .map_err(|err| {
                    self.sql_error(&format!("deleting experiment {experiment_id}"), err)
                })?;
            Ok(())
        })
    }

    fn search_runs_page(&self, request: &SearchRequest) -> Result<RunsPage, MlflowError> {
        request.check_page_size()?;
        let offset = request.token().map_or(Ok(0), decode_page_token)?;
        self.read(|transaction| self.search_page(transaction, request, offset))
    }

    fn search_runs_each(
        &self,
        request: &SearchRequest,
        visit: &mut dyn FnMut(Run),
    ) -> Result<usize, MlflowError> {
        request.check_page_size()?;
        let offset = request.token().map_or(Ok(0), decode_page_token)?;
        self.read(|transaction| self.stream_runs(transaction, request, offset, visit))
    }

    fn get_run(&self, run_id: &str) -> Result<Run, MlflowError> {
        self.read(|transaction| {
            let info = transaction
                .query_row(
                    "SELECT r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, r.end_time, \
                     r.artifact_uri, r.lifecycle_stage FROM runs r WHERE r.run_uuid = ?",
                    [run_id],
                    run_info_from_row,
                )
                .optional()
                .map_err(|err| self.sql_error(&format!("reading run {run_id}"), err))?
                .ok_or_else(|| self.not_found("run", run_id))?;
            self.load_run_data(transaction, vec![info], &RunFields::all(), &mut PageTimes::new())?
                .pop()
                .ok_or_else(|| self.not_found("run", run_id))
        })
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        self.write(|transaction| {
            self.create_run_in(transaction, experiment_id, run_name, start_time_ms, tags)
        })
    }

    fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        self.write(|transaction| self.update_run_in(transaction, run_id, status, end_time_ms))
    }

    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        self.write(|transaction| {
            self.require_active_run(transaction, run_id)?;
            self.insert_tag(transaction, run_id, key, value)
        })
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        self.write(|transaction| self.log_batch_in(transaction, run_id, metrics, params, tags))
    }

    fn download_artifacts(
        &self,
        run: &RunInfo,
        path: &str,
        dest: &Path,
    ) -> Result<PathBuf, MlflowError> {
        match ArtifactLocation::parse(&run.artifact_uri) {
            ArtifactLocation::Local(root) => artifacts::download_local(run, &root, path, dest),
            ArtifactLocation::Proxy { .. } => Err(artifacts::artifact_error(
                &run.run_id,
                path,
                format!(
                    "artifact URI {:?} is served by an MLflow tracking server; open the store with \
                     that server's http(s):// URI to download it",
                    run.artifact_uri
                ),
            )),
            ArtifactLocation::Unsupported(scheme) => {
                Err(artifacts::unsupported(run, path, &scheme))
            }
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
