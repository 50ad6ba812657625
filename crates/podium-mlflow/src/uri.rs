//! Tracking URI resolution, as MLflow does it: explicit URI, else `MLFLOW_TRACKING_URI`, else
//! `sqlite:///mlflow.db`.

use std::path::PathBuf;

use crate::error::MlflowError;
use crate::postgres::{PostgresStore, is_postgres_uri};
use crate::rest::{RestConfig, RestStore};
use crate::sqlite::SqliteStore;
use crate::store::{OpenMode, TrackingStore};

/// MLflow ≥ 3.7's default tracking URI.
pub const DEFAULT_TRACKING_URI: &str = "sqlite:///mlflow.db";

/// Environment variable MLflow reads the tracking URI from.
pub const TRACKING_URI_ENV: &str = "MLFLOW_TRACKING_URI";

/// Where a tracking URI points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackingTarget {
    /// An MLflow server (`http://…` or `https://…`), base URL without trailing slash.
    Rest(String),
    /// An MLflow SQLite database file.
    Sqlite(PathBuf),
    /// An MLflow PostgreSQL database (`postgresql://…` or `postgresql+<driver>://…`): the URI
    /// as given, password included (never print it; [`redact_uri`] for messages).
    Postgres(String),
}

/// The URI to use: `explicit`, else `MLFLOW_TRACKING_URI` from `env`, else the default.
/// Empty values count as unset, as in MLflow.
pub fn resolve_tracking_uri(
    explicit: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    explicit
        .filter(|uri| !uri.trim().is_empty())
        .map(str::to_string)
        .or_else(|| env(TRACKING_URI_ENV).filter(|uri| !uri.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_TRACKING_URI.to_string())
}

/// Classifies a tracking URI.
///
/// ```
/// use podium_mlflow::uri::{parse_tracking_uri, TrackingTarget};
/// assert_eq!(
///     parse_tracking_uri("sqlite:////data/mlflow.db").unwrap(),
///     TrackingTarget::Sqlite("/data/mlflow.db".into())
/// );
/// assert_eq!(
///     parse_tracking_uri("http://127.0.0.1:5000/").unwrap(),
///     TrackingTarget::Rest("http://127.0.0.1:5000".into())
/// );
/// assert_eq!(
///     parse_tracking_uri("postgresql+psycopg2://me@db:5432/mlflow").unwrap(),
///     TrackingTarget::Postgres("postgresql+psycopg2://me@db:5432/mlflow".into())
/// );
/// assert!(parse_tracking_uri("databricks").is_err());
/// ```
pub fn parse_tracking_uri(uri: &str) -> Result<TrackingTarget, MlflowError> {
    let trimmed = uri.trim();
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(TrackingTarget::Rest(
            trimmed.trim_end_matches('/').to_string(),
        ));
    }
    if let Some(rest) = trimmed.strip_prefix("sqlite://") {
        // SQLAlchemy: sqlite:///relative.db, sqlite:////absolute.db; options after '?'.
        let path = rest.split('?').next().unwrap_or_default();
        let Some(path) = path.strip_prefix('/') else {
            return Err(unsupported(
                trimmed,
                "a SQLite URI needs a file path: sqlite:///relative.db or sqlite:////absolute.db",
            ));
        };
        if path.is_empty() || path == ":memory:" {
            return Err(unsupported(
                trimmed,
                "an in-memory SQLite database cannot be shared; give a file path",
            ));
        }
        return Ok(TrackingTarget::Sqlite(PathBuf::from(path)));
    }
    if is_postgres_uri(trimmed) {
        return Ok(TrackingTarget::Postgres(trimmed.to_string()));
    }
    let scheme = trimmed.split(':').next().unwrap_or_default();
    let reason = match scheme {
        "databricks" | "databricks-uc" | "uc" => "Databricks workspaces are not supported",
        "file" | "" => "MLflow's file store is not supported (it is deprecated in MLflow 3)",
        "postgres" => {
            "MLflow (SQLAlchemy) spells PostgreSQL URIs postgresql://; write that (podium reads \
             them as MLflow does)"
        }
        "mysql" | "mssql" => {
            "only SQLite and PostgreSQL databases are read directly; run `mlflow server` on this \
             database and use its http:// URI"
        }
        _ => "not an MLflow tracking URI podium understands",
    };
    Err(unsupported(
        trimmed,
        &format!(
            "{reason}; supported: http(s)://host[:port], sqlite:///path/to/mlflow.db, \
             postgresql://user@host:port/database"
        ),
    ))
}

fn unsupported(uri: &str, reason: &str) -> MlflowError {
    MlflowError::UnsupportedUri {
        uri: redact_uri(uri),
        reason: reason.to_string(),
    }
}

/// `uri` with any `user:password@` removed, and the value of any `password=` query key
/// masked (libpq reads a password there too), for messages.
pub fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_string(),
    };
    let rest = match rest.split_once('?') {
        Some((before, query)) => {
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{before}?{}", masked.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}")
}

/// Opens the store the URI names (explicit, else `MLFLOW_TRACKING_URI`, else
/// `sqlite:///mlflow.db`), reading REST settings from the process environment.
pub fn open_store(uri: Option<&str>) -> Result<Box<dyn TrackingStore>, MlflowError> {
    open_store_with_env(uri, &|name| std::env::var(name).ok())
}

/// [`open_store`] with an explicit environment lookup (for tests and embedding): a SQLite
/// database is created when missing ([`OpenMode::Create`]).
pub fn open_store_with_env(
    uri: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Box<dyn TrackingStore>, MlflowError> {
    open_store_in_mode(uri, env, OpenMode::Create)
}

/// Opens the store the URI names under `mode`: with [`OpenMode::Existing`] a database-backed
/// store must already be an MLflow database and opening it changes nothing (commands that
/// read). REST settings and `PODIUM_SQLITE_BUSY_TIMEOUT` come from `env`.
pub fn open_store_in_mode(
    uri: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    mode: OpenMode,
) -> Result<Box<dyn TrackingStore>, MlflowError> {
    let uri = resolve_tracking_uri(uri, env);
    match parse_tracking_uri(&uri)? {
        TrackingTarget::Rest(base_url) => {
            let config = RestConfig::from_env(env)?;
            Ok(Box::new(RestStore::new(&base_url, config)?))
        }
        TrackingTarget::Sqlite(path) => {
            let busy_timeout = crate::sqlite::busy_timeout_from_env(env)?;
            Ok(Box::new(SqliteStore::open_with(&path, mode, busy_timeout)?))
        }
        TrackingTarget::Postgres(uri) => Ok(Box::new(PostgresStore::open_with_env(&uri, env)?)),
    }
}

/// Like [`open_store`] but the store must exist ([`OpenMode::Existing`]): for read-only
/// commands, where creating an empty database would only hide a wrong path, and where opening
/// must never write.
pub fn open_existing_store(uri: Option<&str>) -> Result<Box<dyn TrackingStore>, MlflowError> {
    let env = |name: &str| std::env::var(name).ok();
    open_store_in_mode(uri, &env, OpenMode::Existing)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn flag_beats_env_beats_default() {
        let env = |name: &str| (name == TRACKING_URI_ENV).then(|| "http://env:5000".to_string());
        let none = |_: &str| None;
        assert_eq!(
            resolve_tracking_uri(Some("sqlite:///a.db"), &env),
            "sqlite:///a.db"
        );
        assert_eq!(resolve_tracking_uri(None, &env), "http://env:5000");
        assert_eq!(resolve_tracking_uri(Some(""), &env), "http://env:5000");
        assert_eq!(resolve_tracking_uri(None, &none), DEFAULT_TRACKING_URI);
    }

    #[test]
    fn sqlite_paths_follow_sqlalchemy() {
        assert_eq!(
            parse_tracking_uri("sqlite:///mlflow.db").unwrap(),
            TrackingTarget::Sqlite("mlflow.db".into())
        );
        assert_eq!(
            parse_tracking_uri("sqlite:////tmp/x/mlflow.db?timeout=5").unwrap(),
            TrackingTarget::Sqlite("/tmp/x/mlflow.db".into())
        );
        assert!(parse_tracking_uri("sqlite://").is_err());
        assert!(parse_tracking_uri("sqlite:///:memory:").is_err());
    }

    #[test]
    fn other_schemes_are_clear_errors() {
        for uri in [
            "databricks",
            "file:///tmp/mlruns",
            "postgres://u:secret@db/mlflow",
            "mysql://u:secret@db/mlflow",
            "./mlruns",
        ] {
            let err = parse_tracking_uri(uri).unwrap_err().to_string();
            assert!(err.contains("supported"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact_uri("https://me:pw@host:1/x"), "https://***@host:1/x");
        assert_eq!(redact_uri("http://host/a@b"), "http://host/a@b");
        assert_eq!(
            redact_uri("postgresql+psycopg2://me:pw@db:5432/ml?sslmode=require&password=pw2"),
            "postgresql+psycopg2://***@db:5432/ml?sslmode=require&password=***"
        );
        assert_eq!(
            redact_uri("postgresql://me:pw@db?x=1"),
            "postgresql://***@db?x=1"
        );
    }
}
