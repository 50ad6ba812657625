//! What can go wrong opening a project or answering one of its questions; each variant keeps
//! the lower crate's error as its source, so a caller can still tell an unreachable server
//! from a bad config.

use std::path::PathBuf;

/// Errors of podium-project.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// A reading command was pointed at a SQLite file that is not there. Opening it would
    /// create an empty database and hide the mistyped path, so nothing is created.
    #[error(
        "tracking store {uri} does not exist: no file {} (podium creates a SQLite store only \
         where a command writes a new one; check --tracking-uri / MLFLOW_TRACKING_URI)",
        .path.display()
    )]
    StoreMissing {
        /// The tracking URI, credentials removed.
        uri: String,
        /// The file it names.
        path: PathBuf,
    },
    /// The tracking store could not be opened or answered an error.
    #[error("{context}: {source}")]
    Mlflow {
        /// What was being done (`opening tracking store sqlite:///…`).
        context: String,
        /// The store's error.
        #[source]
        source: Box<podium_mlflow::MlflowError>,
    },
    /// An experiment or path config that does not load.
    #[error(transparent)]
    Variants(#[from] podium_variants::VariantsError),
    /// A key config or the tag registry that does not load.
    #[error(transparent)]
    Keys(#[from] podium_keys::KeysError),
    /// A key, fingerprint or canonical JSON of a file named by the caller that cannot be
    /// computed (`podium keys`).
    #[error("{context}: {source}")]
    KeyInput {
        /// What was being done, naming the file (`loading config/train.yaml`).
        context: String,
        /// The error.
        #[source]
        source: Box<podium_keys::KeysError>,
    },
    /// Selection rules, selection or hash verification.
    #[error(transparent)]
    Champion(#[from] podium_champion::ChampionError),
    /// Benchmark settings, claims, planning or benchmark results.
    #[error("{context}: {source}")]
    Bench {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: Box<podium_bench::BenchError>,
    },
    /// A folder that cannot be listed.
    #[error("cannot list {}: {source}", .path.display())]
    Io {
        /// The folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A setting given by the caller that podium cannot use.
    #[error("{0}")]
    Invalid(String),
}

impl ProjectError {
    pub(crate) fn mlflow(
        context: impl Into<String>,
    ) -> impl FnOnce(podium_mlflow::MlflowError) -> Self {
        let context = context.into();
        move |source| ProjectError::Mlflow {
            context,
            source: Box::new(source),
        }
    }

    pub(crate) fn bench(
        context: impl Into<String>,
    ) -> impl FnOnce(podium_bench::BenchError) -> Self {
        let context = context.into();
        move |source| ProjectError::Bench {
            context,
            source: Box::new(source),
        }
    }
}

/// podium-project's result type.
pub type Result<T, E = ProjectError> = std::result::Result<T, E>;
