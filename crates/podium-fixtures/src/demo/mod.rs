//! The project `podium demo` runs on, generated in seconds with nothing to set up.
//!
//! [`prepare`] writes `DIR/config` (podium's default configs, with a tiny benchmark),
//! `DIR/mlflow.db` (a realistic sweep for three backbones in MLflow's own schema, tagged as the
//! Python pipeline tags its runs) and a tiny random checkpoint for every refit under
//! `DIR/outputs`. What is already there is kept, so a second demo measures nothing new.

pub mod configs;
mod sample;
pub mod sweep;

use std::path::{Path, PathBuf};

use podium_variants::Environment;

pub use configs::{DEMO_EXPERIMENT_NAME, write_demo_configs};
pub use sweep::{DEMO_SEED, StudySummary, generate};

use crate::error::FixturesError;

/// Where the demo writes.
#[derive(Debug, Clone)]
pub struct DemoPaths {
    /// The demo directory (absolute): the project root of the demo.
    pub root: PathBuf,
    /// `root/config`.
    pub config_dir: PathBuf,
    /// `root/mlflow.db`.
    pub db: PathBuf,
}

impl DemoPaths {
    /// The paths under `dir`, made absolute so tags and URIs work from any directory.
    pub fn new(dir: &Path) -> Result<Self, FixturesError> {
        let root = std::path::absolute(dir).map_err(|source| FixturesError::Io {
            action: "resolve the demo directory",
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            config_dir: root.join("config"),
            db: root.join("mlflow.db"),
            root,
        })
    }

    /// `sqlite:///…` of the demo store.
    pub fn tracking_uri(&self) -> String {
        format!("sqlite:///{}", self.db.display())
    }
}

/// What [`prepare`] found and did.
#[derive(Debug, Clone)]
pub struct PreparedDemo {
    /// Where the demo project lives.
    pub paths: DemoPaths,
    /// The configs were written now (false: an earlier demo's were kept).
    pub wrote_configs: bool,
    /// The studies of the store generated now; `None` when an earlier demo's store was kept.
    pub generated: Option<Vec<StudySummary>>,
}

/// Makes `dir` a demo project: the configs unless `dir/config/experiment` exists, the store and
/// checkpoints unless `dir/mlflow.db` exists (the environment the sweep "ran" in is this
/// machine's, as detected for every other command).
pub fn prepare(dir: &Path) -> Result<PreparedDemo, FixturesError> {
    std::fs::create_dir_all(dir).map_err(|source| FixturesError::Io {
        action: "create the demo directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let paths = DemoPaths::new(dir)?;
    let wrote_configs = !paths.config_dir.join("experiment").is_dir();
    if wrote_configs {
        write_demo_configs(&paths.config_dir)?;
    }
    let generated = if paths.db.is_file() {
        None
    } else {
        Some(generate(&paths, &Environment::detect()?)?)
    };
    Ok(PreparedDemo {
        paths,
        wrote_configs,
        generated,
    })
}
