//! The PostgreSQL store: MLflow's production database read and written directly, as MLflow's
//! own client does with a `postgresql://` tracking URI (its SQLAlchemy store) — no server in
//! between. The schema code is the SQLite store's (the crate's `sql` module); this module holds the
//! connections: URI and libpq environment ([`PostgresSettings`]), TLS through rustls
//! (rustls, with libpq's `sslmode` checks), a small pool, and transactions.
//!
//! - Reads are `READ ONLY` transactions at `REPEATABLE READ`: one snapshot per call, and a
//!   reading command can never change the database. A streamed search is one statement read
//!   through a portal, a chunk of runs at a time, each chunk's data read between two fetches.
//! - Writes are one transaction per call (`READ COMMITTED`), refused unless the database is at
//!   MLflow 3.17.2's alembic revision. Experiment names are unique by constraint, so the claims'
//!   create-with-tags is atomic; [`TrackingStore::update_run_if`](crate::TrackingStore::update_run_if) locks the claim experiment's
//!   row, so a takeover's rename and an owner's FINISHED write cannot interleave.
//! - The schema itself is MLflow's to create: a database without it is refused with the command
//!   that creates it.
//!
//! ```no_run
//! use podium_mlflow::{TrackingStore, postgres::PostgresStore};
//!
//! let store = PostgresStore::open("postgresql://mlflow@db.example:5432/mlflow?sslmode=require")?;
//! for experiment in store.experiments_with_prefix("resume_ner-hpo-")? {
//!     println!("{} {}", experiment.experiment_id, experiment.name);
//! }
//! # Ok::<(), podium_mlflow::MlflowError>(())
//! ```

mod config;
mod conn;
#[cfg(test)]
mod query_plan;
mod store;
mod tls;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use postgres::{Client, IsolationLevel, NoTls, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::MlflowError;
use crate::sql::Schema;

pub use self::config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_PORT, PgHost, PostgresSettings, RootCerts, SslMode,
    is_postgres_uri,
};
use self::conn::{PgConn, describe};

/// One pooled connection with its prepared statements.
struct Connection {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// A store on an MLflow PostgreSQL database. `Sync`: threads share a small pool of
/// connections (one per concurrent call, kept for the next).
pub struct PostgresStore {
    settings: PostgresSettings,
    display: String,
    tls: Option<MakeRustlsConnect>,
    pool: Mutex<Vec<Connection>>,
    schema: Schema,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.display)
            .field("revision", &self.schema.revision)
            .finish_non_exhaustive()
    }
}

/// How a transaction is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// How long a connection stays silent before TCP keepalives probe the server.
const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

impl PostgresStore {
    /// Opens the database a `postgresql://` (or `postgresql+<driver>://`) URI names, reading
    /// libpq's variables from the process environment.
    pub fn open(uri: &str) -> Result<Self, MlflowError> {
        Self::open_with_env(uri, &|name| std::env::var(name).ok())
    }

    /// [`PostgresStore::open`] with an explicit environment lookup.
    pub fn open_with_env(
        uri: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, MlflowError> {
        Self::with_settings(PostgresSettings::from_uri(uri, env)?)
    }

    /// Connects with resolved settings and reads the schema's revision (any revision is read;
    /// only MLflow 3.17.2's is written).
    pub fn with_settings(settings: PostgresSettings) -> Result<Self, MlflowError> {
        let display = settings.display();
        let tls = tls::client_config(&settings)?.map(MakeRustlsConnect::new);
        let mut store = PostgresStore {
            schema: Schema {
                backend: crate::sql::Backend::Postgres,
                display: display.clone(),
                revision: String::new(),
                has_workspace: false,
                default_artifact_root: String::new(),
            },
            settings,
            display,
            tls,
            pool: Mutex::new(Vec::new()),
        };
        let mut connection = store.connect()?;
        let inspected = {
            let Connection { client, statements } = &mut connection;
            let transaction =
                begin(client, Access::Read).map_err(|err| store.error("opening", &err))?;
            Schema::inspect(
                &mut PgConn {
                    transaction,
                    statements,
                },
                store.display.clone(),
                default_artifact_root,
                "; MLflow creates its tables on first use: start `mlflow server \
                 --backend-store-uri <this URI>` once, or open it with \
                 `mlflow.MlflowClient(\"<this URI>\")`",
            )
        };
        store.schema = inspected?;
        store.give_back(connection);
        tracing::debug!(
            "opened {} (alembic revision {})",
            store.display,
            store.schema.revision
        );
        Ok(store)
    }

    /// The settings connected with (the password is in them: do not print them whole).
    pub fn settings(&self) -> &PostgresSettings {
        &self.settings
    }

    /// The alembic revision of the database.
    pub fn revision(&self) -> &str {
        &self.schema.revision
    }

    /// True when podium writes to this database (its revision is MLflow 3.17.2's).
    pub fn is_writable(&self) -> bool {
        self.schema.is_writable()
    }

    fn error(&self, context: &str, err: &postgres::Error) -> MlflowError {
        self.schema.error(context, describe(err))
    }

    /// A new connection.
    fn connect(&self) -> Result<Connection, MlflowError> {
        let settings = &self.settings;
        let mut config = postgres::Config::new();
        match &settings.host {
            PgHost::Tcp(host) => config.host(host),
            PgHost::Socket(dir) => config.host_path(dir),
        };
        config
            .port(settings.port)
            .user(&settings.user)
            .dbname(&settings.dbname)
            .application_name(&settings.application_name)
            .connect_timeout(settings.connect_timeout)
            .keepalives(true)
            .ssl_mode(match settings.sslmode {
                SslMode::Disable => postgres::config::SslMode::Disable,
                SslMode::Allow | SslMode::Prefer => postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    postgres::config::SslMode::Require
                }
            });
        if let Some(password) = &settings.password {
            config.password(password);
        }
        // Every wait is bounded: statements and lock waits by the session's settings, a
        // silent peer by TCP keepalives probing after a minute idle (libpq's default waits
        // two hours).
        config
            .options(&settings.session_options())
            .keepalives_idle(KEEPALIVE_IDLE);
        let client = match &self.tls {
            Some(tls) => config.connect(tls.clone()),
            None => config.connect(NoTls),
        }
        .map_err(|err| self.error("connecting", &err))?;
        // podium's statements are short lookups and index-driven scans: compiling them (JIT,
        // on by default since PostgreSQL 12 for statements the planner costs above 100,000,
        // which a 100k-run search is) costs more than it saves. Session-only; a server without
        // the setting keeps its default.
        let mut client = client;
        if let Err(err) = client.batch_execute("SET jit = off") {
            tracing::debug!("{}: SET jit = off: {}", self.display, describe(&err));
        }
        Ok(Connection {
            client,
            statements: HashMap::new(),
        })
    }

    /// A pooled connection that is still open, else a new one.
    fn take(&self) -> Result<Connection, MlflowError> {
        loop {
            let pooled = self
                .pool
                .lock()
                .map_err(|_| self.schema.error("connection pool", "poisoned by a panic"))?
                .pop();
            match pooled {
                Some(connection) if connection.client.is_closed() => continue,
                Some(connection) => return Ok(connection),
                None => return self.connect(),
            }
        }
    }

    fn give_back(&self, connection: Connection) {
        if connection.client.is_closed() {
            return;
        }
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(connection);
        }
    }

    /// Runs `work` in one transaction of the given access on a pooled connection, committed
    /// when it succeeds (a read is only ended). A pooled connection the server has closed
    /// since (a restart, an idle timeout) is replaced once, before anything ran on it.
    fn transaction<T>(
        &self,
        access: Access,
        work: impl FnOnce(&mut PgConn<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        if access == Access::Write {
            self.schema
                .require_writable(&format!("mlflow db upgrade {}", self.display))?;
        }
        let mut work = Some(work);
        for attempt in 0..2 {
            let mut connection = if attempt == 0 {
                self.take()?
            } else {
                self.connect()?
            };
            let outcome = {
                let Connection { client, statements } = &mut connection;
                let transaction = match begin(client, access) {
                    Ok(transaction) => transaction,
                    // The server closed a pooled connection since it was last used (a restart,
                    // an idle timeout): nothing ran on it, so a fresh connection may try again.
                    Err(err) if attempt == 0 && is_connection_lost(&err) => {
                        tracing::debug!("{}: reconnecting ({})", self.display, describe(&err));
                        continue;
                    }
                    Err(err) => return Err(self.error("starting a transaction", &err)),
                };
                let Some(work) = work.take() else {
                    break;
                };
                let mut conn = PgConn {
                    transaction,
                    statements,
                };
                match work(&mut conn) {
                    Ok(value) => conn
                        .transaction
                        .commit()
                        .map(|()| value)
                        .map_err(|err| self.error("committing", &err)),
                    Err(err) => {
                        drop(conn); // rolls back
                        Err(err)
                    }
                }
            };
            self.give_back(connection);
            return outcome;
        }
        Err(self
            .schema
            .error("starting a transaction", "no connection could be used"))
    }
}

/// True when `err` ended the connection rather than refused a statement: an I/O error, a
/// closed connection, or a FATAL message (the server terminating the session, shutting down).
fn is_connection_lost(err: &postgres::Error) -> bool {
    match err.as_db_error() {
        None => true,
        Some(db) => matches!(db.severity(), "FATAL" | "PANIC"),
    }
}

/// A transaction of the given access: reads `READ ONLY` at `REPEATABLE READ` (one snapshot),
/// writes at the server's default (`READ COMMITTED`).
fn begin(
    client: &mut Client,
    access: Access,
) -> Result<postgres::Transaction<'_>, postgres::Error> {
    match access {
        Access::Read => client
            .build_transaction()
            .read_only(true)
            .isolation_level(IsolationLevel::RepeatableRead)
            .start(),
        Access::Write => client.transaction(),
    }
}

/// Where MLflow puts the artifacts of a database store's experiments when it has no default
/// experiment to copy the location from: `./mlruns` of the working directory, made absolute.
fn default_artifact_root() -> String {
    std::env::current_dir()
        .map(|dir| dir.join("mlruns"))
        .unwrap_or_else(|_| PathBuf::from("mlruns"))
        .display()
        .to_string()
}
