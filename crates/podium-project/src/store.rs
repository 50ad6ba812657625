//! The one rule for opening a tracking store: a command that reads refuses a `sqlite:///`
//! path whose file does not exist (and creates nothing, not even its folder), and opens an
//! existing one as it is ([`podium_mlflow::OpenMode::Existing`]: an empty or non-MLflow file
//! is an error naming it, never given a schema); only a command that sets up a new store
//! creates the file, and it says so.
//!
//! `podium run` and `podium benchmark` write benchmark runs, but into the store that holds the
//! HPO runs they benchmark: a missing file is a mistyped path there too, so they read
//! [`StoreAccess::Existing`].

use std::sync::Arc;

use podium_mlflow::OpenMode;
use podium_mlflow::TrackingStore;
use podium_mlflow::uri::{
    TrackingTarget, open_store_in_mode, parse_tracking_uri, redact_uri, resolve_tracking_uri,
};

use crate::error::{ProjectError, Result};

/// How a command uses the tracking store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAccess {
    /// The store must exist: a SQLite file that is not there is [`ProjectError::StoreMissing`].
    Existing,
    /// A store that cannot be used means "no MLflow runs": no store, a warning, nothing
    /// created (a SQLite file that is not there, a URI podium does not read; for commands with
    /// other sources to fall back on, like `podium best-trials`).
    IfExists,
    /// A SQLite file that is not there is created (its folder must exist): a new store.
    Create,
}

/// A looked-up environment variable (`|name| std::env::var(name).ok()` for the process's).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The process environment as an [`EnvLookup`].
pub fn process_env() -> EnvLookup {
    Arc::new(|name: &str| std::env::var(name).ok())
}

/// An opened store and the URI it was opened from.
#[derive(Clone)]
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn TrackingStore>,
    /// The resolved tracking URI, credentials removed (for messages).
    pub uri: String,
    /// Whether this call created the SQLite file ([`StoreAccess::Create`] only).
    pub created: bool,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("uri", &self.uri)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Opens the store `uri` names (else `MLFLOW_TRACKING_URI` from `env`, else
/// `sqlite:///mlflow.db`) under the rule of `access`. `None` only for
/// [`StoreAccess::IfExists`].
pub fn open_store(
    uri: Option<&str>,
    access: StoreAccess,
    env: &EnvLookup,
) -> Result<Option<OpenedStore>> {
    match open_under_rule(uri, access, env) {
        Err(err) if access == StoreAccess::IfExists => {
            tracing::warn!("cannot use the tracking store ({err}); skipping MLflow");
            Ok(None)
        }
        answer => answer,
    }
}

/// Whether `cause` (one error of a chain) says the tracking store could not be reached after
/// the configured retries, as opposed to a store that answered with an error.
pub fn is_store_unreachable(cause: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        cause.downcast_ref::<podium_mlflow::MlflowError>(),
        Some(podium_mlflow::MlflowError::Unreachable { .. })
    )
}

/// Whether a request of this process found the tracking server unreachable (after the
/// configured retries), even where a fallback answered instead and no error came back.
pub fn store_unreachable_seen() -> bool {
    podium_mlflow::rest::unreachable_seen()
}

fn open_under_rule(
    uri: Option<&str>,
    access: StoreAccess,
    env: &EnvLookup,
) -> Result<Option<OpenedStore>> {
    let lookup = |name: &str| env(name);
    let resolved = resolve_tracking_uri(uri, &lookup);
    let shown = redact_uri(&resolved);
    let target = parse_tracking_uri(&resolved).map_err(ProjectError::mlflow(format!(
        "opening tracking store {shown}"
    )))?;
    let mut created = false;
    if let TrackingTarget::Sqlite(path) = &target
        && !path.is_file()
    {
        match access {
            StoreAccess::Existing => {
                return Err(ProjectError::StoreMissing {
                    uri: shown,
                    path: path.clone(),
                });
            }
            StoreAccess::IfExists => {
                tracing::warn!("tracking store {shown} does not exist; skipping MLflow");
                return Ok(None);
            }
            StoreAccess::Create => {
                tracing::info!("creating the tracking store {}", path.display());
                created = true;
            }
        }
    }
    // Only a command that sets up a new store may give a database its schema; every other
    // one opens it as it is, and an empty or non-MLflow file is an error naming it.
    let mode = match access {
        StoreAccess::Create => OpenMode::Create,
        StoreAccess::Existing | StoreAccess::IfExists => OpenMode::Existing,
    };
    let store = open_store_in_mode(Some(&resolved), &lookup, mode).map_err(
        ProjectError::mlflow(format!("opening tracking store {shown}")),
    )?;
    Ok(Some(OpenedStore {
        store: Arc::from(store),
        uri: shown,
        created,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn no_env() -> EnvLookup {
        Arc::new(|_: &str| None)
    }

    #[test]
    fn reading_a_missing_sqlite_file_is_refused_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("does").join("not").join("exist.db");
        let uri = format!("sqlite:///{}", db.display());
        let err = open_store(Some(&uri), StoreAccess::Existing, &no_env()).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, ProjectError::StoreMissing { .. }),
            "{message}"
        );
        assert!(message.contains(&db.display().to_string()), "{message}");
        assert!(!dir.path().join("does").exists());

        assert!(
            open_store(Some(&uri), StoreAccess::IfExists, &no_env())
                .unwrap()
                .is_none()
        );
        assert!(!dir.path().join("does").exists());
    }

    #[test]
    fn reading_an_empty_or_foreign_file_is_refused_and_leaves_it_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("mlflow.db");
        std::fs::write(&empty, b"").unwrap();
        let text = dir.path().join("notes.db");
        std::fs::write(&text, b"not a database, just text\n").unwrap();
        for (path, said) in [(&empty, "empty"), (&text, "not a database")] {
            let before = std::fs::read(path).unwrap();
            let uri = format!("sqlite:///{}", path.display());
            for access in [StoreAccess::Existing, StoreAccess::IfExists] {
                match open_store(Some(&uri), access, &no_env()) {
                    Err(err) => {
                        let message = format!("{err:#}");
                        assert!(message.contains(&path.display().to_string()), "{message}");
                        assert!(message.contains(said), "{message}");
                    }
                    Ok(opened) => assert!(opened.is_none(), "{access:?} opened {path:?}"),
                }
                assert_eq!(
                    std::fs::read(path).unwrap(),
                    before,
                    "{access:?} changed {path:?}"
                );
            }
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "a journal or a new file appeared: {names:?}"
        );
    }

    #[test]
    fn only_create_makes_a_new_file_and_says_it_did() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.db");
        let uri = format!("sqlite:///{}", db.display());
        let opened = open_store(Some(&uri), StoreAccess::Create, &no_env())
            .unwrap()
            .unwrap();
        assert!(opened.created);
        assert!(db.is_file());
        let again = open_store(Some(&uri), StoreAccess::Existing, &no_env())
            .unwrap()
            .unwrap();
        assert!(!again.created);
    }

    #[test]
    fn the_environment_given_is_the_one_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("from-env.db");
        let uri = format!("sqlite:///{}", db.display());
        let env: EnvLookup = Arc::new(move |name: &str| {
            (name == podium_mlflow::uri::TRACKING_URI_ENV).then(|| uri.clone())
        });
        let err = open_store(None, StoreAccess::Existing, &env).unwrap_err();
        assert!(err.to_string().contains("from-env.db"), "{err}");
    }
}
