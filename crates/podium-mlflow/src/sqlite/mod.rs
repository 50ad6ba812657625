//! The SQLite store: reads and writes MLflow's own SQLAlchemy schema, so runs logged by Python
//! `mlflow` with default settings are read with no server, and what podium writes shows up in
//! `mlflow ui` and `mlflow.search_runs`.
//!
//! MLflow's semantics kept here (in the crate's `sql` module, shared with the PostgreSQL store): NaN
//! metrics are stored as value 0 with `is_nan = 1`, ±inf as ±1.7976931348623157e308;
//! `latest_metrics` holds the max by (step, timestamp, value); params are immutable; page tokens
//! are base64 of `{"offset": N}` like MLflow's. A search is two SQL statements per page (the
//! matching runs, then their tags, params and latest metrics together), never one per run.
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

mod conn;
#[cfg(test)]
mod query_plan;
mod store;
mod write;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior, params};

use crate::error::MlflowError;
use crate::model::{MetricPoint, RunInfo, RunStatus};
use crate::sql::{Schema, now_ms};
use crate::store::OpenMode;

use self::conn::SqliteConn;
pub use self::write::SqliteBatch;

/// The schema MLflow 3.17.2 creates, dumped by `scripts/dump-mlflow-schema.py`.
pub const SCHEMA_SQL: &str = include_str!("../../schema/mlflow-3.17.2.sql");

/// The alembic revision of [`SCHEMA_SQL`]: the only one podium writes to.
pub use crate::sql::SCHEMA_REVISION;

/// How long a statement waits for another process's lock before failing
/// (`PODIUM_SQLITE_BUSY_TIMEOUT`): longer than MLflow's own 20 s, so podium's writers queue
/// behind a busy Python writer instead of failing.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The environment variable setting the busy timeout, in seconds.
pub const BUSY_TIMEOUT_ENV: &str = "PODIUM_SQLITE_BUSY_TIMEOUT_SECONDS";

/// How long a wait for another process's lock goes on before it is logged (once per wait).
pub const LOCK_WAIT_WARNING: Duration = Duration::from_secs(1);

/// The busy timeout `PODIUM_SQLITE_BUSY_TIMEOUT` sets (seconds, fractions allowed, at most a
/// week), else [`DEFAULT_BUSY_TIMEOUT`].
pub fn busy_timeout_from_env(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Duration, MlflowError> {
    match env(BUSY_TIMEOUT_ENV).filter(|value| !value.trim().is_empty()) {
        None => Ok(DEFAULT_BUSY_TIMEOUT),
        Some(value) => {
            let seconds = crate::rest::parse_non_negative(BUSY_TIMEOUT_ENV, &value)?;
            crate::rest::bounded_seconds(BUSY_TIMEOUT_ENV, &value, seconds)
        }
    }
}

/// The wait for another process's lock of the connection this thread is using: which
/// database (for the message), how long it may last, and when it began. SQLite's busy handler
/// is a plain function, so the store puts this here around each use of a connection.
struct LockWait {
    display: String,
    timeout: Duration,
    started: Instant,
    warned: bool,
}

thread_local! {
    static LOCK_WAIT: RefCell<Option<LockWait>> = const { RefCell::new(None) };
}

/// Sets this thread's [`LockWait`] while alive, and puts back the one it replaced (a store call
/// inside another one) when dropped.
struct WaitingOn(Option<LockWait>);

impl WaitingOn {
    fn database(display: &str, timeout: Duration) -> WaitingOn {
        let previous = LOCK_WAIT.with(|cell| {
            cell.borrow_mut().replace(LockWait {
                display: display.to_string(),
                timeout,
                started: Instant::now(),
                warned: false,
            })
        });
        WaitingOn(previous)
    }
}

impl Drop for WaitingOn {
    fn drop(&mut self) {
        let previous = self.0.take();
        LOCK_WAIT.with(|cell| *cell.borrow_mut() = previous);
    }
}

/// SQLite's busy handler: called while another connection holds a lock this one needs, with the
/// number of calls so far for this lock. Sleeps a little and says to try again until the
/// store's busy timeout has passed; after [`LOCK_WAIT_WARNING`] it says, once, what it waits
/// on, so a command never sits silent on a locked database.
fn on_busy(attempt: i32) -> bool {
    LOCK_WAIT.with(|cell| {
        let mut slot = cell.borrow_mut();
        let Some(wait) = slot.as_mut() else {
            // Not inside a store call (cannot happen): wait as SQLite's default handler would.
            std::thread::sleep(Duration::from_millis(50));
            return attempt < 1200;
        };
        if attempt == 0 {
            wait.started = Instant::now();
            wait.warned = false;
        }
        let waited = wait.started.elapsed();
        if waited >= wait.timeout {
            return false;
        }
        if !wait.warned && waited >= LOCK_WAIT_WARNING {
            wait.warned = true;
            tracing::warn!(
                "{}: another process holds a lock on the database (an open write transaction \
                 or BEGIN EXCLUSIVE); waiting up to {:.0} s more ({BUSY_TIMEOUT_ENV})",
                wait.display,
                (wait.timeout - waited).as_secs_f64()
            );
        }
        let pause = Duration::from_millis(match attempt {
            0..=4 => 1 << attempt,
            _ => 25,
        });
        std::thread::sleep(pause.min(wait.timeout - waited));
        true
    })
}

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
    /// What the schema code needs: dialect, revision, workspace column, artifact root.
    schema: Schema,
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

impl SqliteStore {
    /// Opens (creating it with MLflow 3.17.2's schema and the default experiment when the file
    /// is missing or empty) the database at `path`: [`OpenMode::Create`].
    pub fn open(path: &Path) -> Result<Self, MlflowError> {
        Self::open_with(path, OpenMode::Create, DEFAULT_BUSY_TIMEOUT)
    }

    /// Opens the MLflow database at `path` without ever creating or changing it
    /// ([`OpenMode::Existing`]): a missing or empty file, or one that is not an MLflow
    /// database, is an error naming it.
    pub fn open_existing(path: &Path) -> Result<Self, MlflowError> {
        Self::open_with(path, OpenMode::Existing, DEFAULT_BUSY_TIMEOUT)
    }

    /// [`SqliteStore::open`] with a chosen busy timeout.
    pub fn open_with_busy_timeout(
        path: &Path,
        busy_timeout: Duration,
    ) -> Result<Self, MlflowError> {
        Self::open_with(path, OpenMode::Create, busy_timeout)
    }

    /// Opens the database at `path` under `mode`, waiting up to `busy_timeout` for another
    /// process's lock at each step (saying so after [`LOCK_WAIT_WARNING`]).
    pub fn open_with(
        path: &Path,
        mode: OpenMode,
        busy_timeout: Duration,
    ) -> Result<Self, MlflowError> {
        let display = path.display().to_string();
        let sql_error = |message: String| MlflowError::Sqlite {
            path: display.clone(),
            message: with_lock_hint(message, busy_timeout),
        };
        let _waiting = WaitingOn::database(&display, busy_timeout);
        if mode == OpenMode::Existing {
            let not_mlflow = |what: &str| {
                sql_error(format!(
                    "{what}: not an MLflow tracking database (a command that reads never creates \
                     one; check the path, or create the database with `mlflow server \
                     --backend-store-uri sqlite:///{display}`)"
                ))
            };
            match path.metadata() {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    return Err(MlflowError::NotFound {
                        what: "SQLite tracking database",
                        id: display.clone(),
                        store: format!("sqlite:///{display}"),
                    });
                }
                Err(source) => {
                    return Err(MlflowError::Io {
                        context: format!("reading {display}"),
                        source,
                    });
                }
                Ok(meta) if !meta.is_file() => return Err(not_mlflow("not a regular file")),
                Ok(meta) if meta.len() == 0 => return Err(not_mlflow("an empty file")),
                Ok(_) => {}
            }
        }
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
            let connection =
                connect(path, Access::ReadOnly).map_err(|err| sql_error(err.to_string()))?;
            if has_tables(&connection).map_err(|err| sql_error(err.to_string()))? {
                reader = Some(connection);
            }
        }
        let connection = match reader {
            Some(connection) => connection,
            None if mode == OpenMode::Existing => {
                return Err(sql_error(
                    "a database without tables: not an MLflow tracking database (a command \
                     that reads never creates one)"
                        .to_string(),
                ));
            }
            None => {
                let mut writer =
                    connect(path, Access::ReadWrite).map_err(|err| sql_error(err.to_string()))?;
                let created = initialize_if_empty(&mut writer, &absolute)
                    .map_err(|err| sql_error(format!("creating the MLflow schema: {err}")))?;
                if created {
                    tracing::info!(
                        "created MLflow {SCHEMA_REVISION} database {}",
                        path.display()
                    );
                }
                writers.push(writer);
                connect(path, Access::ReadOnly).map_err(|err| sql_error(err.to_string()))?
            }
        };
        let schema = Schema::inspect(
            &mut SqliteConn(&connection),
            display.clone(),
            || default_artifact_root_for(&absolute),
            "",
        )?;
        Ok(Self {
            path: path.to_path_buf(),
            display,
            readers: Mutex::new(vec![connection]),
            writers: Mutex::new(writers),
            schema,
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
        &self.schema.revision
    }

    /// True when podium writes to this database (its revision is [`SCHEMA_REVISION`]).
    pub fn is_writable(&self) -> bool {
        self.schema.is_writable()
    }

    fn sql_error(&self, context: &str, err: impl std::fmt::Display) -> MlflowError {
        MlflowError::Sqlite {
            path: self.display.clone(),
            message: with_lock_hint(format!("{context}: {err}"), self.busy_timeout),
        }
    }

    /// The busy timeout in use.
    pub fn busy_timeout(&self) -> Duration {
        self.busy_timeout
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
        let _waiting = WaitingOn::database(&self.display, self.busy_timeout);
        let mut connection = match pooled {
            Some(connection) => connection,
            None => connect(&self.path, access).map_err(|err| self.sql_error("opening", err))?,
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
        self.schema
            .require_writable(&format!("mlflow db upgrade sqlite:///{}", self.display))?;
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
}

/// How a connection opens the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    ReadWrite,
}

fn connect(path: &Path, access: Access) -> rusqlite::Result<Connection> {
    let mode = match access {
        Access::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Access::ReadWrite => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    };
    let connection = Connection::open_with_flags(
        path,
        mode | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    // The busy timeout is the store's, waited out by `on_busy` through this thread's LockWait.
    connection.busy_handler(Some(on_busy))?;
    connection.execute_batch(READ_PRAGMAS)?;
    Ok(connection)
}

/// `message` with, when it is SQLite's "database is locked", what that means here.
fn with_lock_hint(message: String, busy_timeout: Duration) -> String {
    if message.contains("database is locked") {
        format!(
            "{message} (another process held the database's lock for longer than the busy \
             timeout of {:.0} s; {BUSY_TIMEOUT_ENV} raises it)",
            busy_timeout.as_secs_f64()
        )
    } else {
        message
    }
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
