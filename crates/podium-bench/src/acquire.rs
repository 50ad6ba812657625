//! Checkpoint acquisition for a champion, DESIGN §6, first hit wins: (1) the
//! `artifact.checkpoint_path` tag, (2) `checkpoint/` under a local artifact_uri, (3) the Python
//! pipeline's `study-{hash8}/trial-{hash8}` layout — steps shared with champion selection via
//! [`podium_champion::checkpoint`] — else (4) `checkpoint/` downloaded through the tracking
//! store into `outputs/cache/checkpoints/{run_id}/checkpoint`, atomically, and reused next time.
//!
//! ```
//! use std::collections::BTreeMap;
//! use podium_bench::acquire::{acquire_checkpoint, AcquisitionSource};
//! use podium_keys::TagRegistry;
//! use podium_mlflow::{SqliteStore, TrackingStore};
//! use podium_variants::{Environment, OutputLayout};
//!
//! let root = tempfile::tempdir()?;
//! let store = SqliteStore::open(&root.path().join("mlflow.db"))?;
//! let experiment = store.create_experiment("hpo")?;
//! let checkpoint = root.path().join("somewhere/checkpoint");
//! std::fs::create_dir_all(&checkpoint)?;
//! std::fs::write(checkpoint.join("config.json"), "{}")?;
//! std::fs::write(checkpoint.join("model.safetensors"), "")?;
//! let tags = BTreeMap::from([(
//!     "code.artifact.checkpoint_path".to_string(),
//!     checkpoint.display().to_string(),
//! )]);
//! let run = store.create_run(&experiment, "refit", 1, &tags)?;
//!
//! let found = acquire_checkpoint(
//!     &store, &run.run_id, &TagRegistry::defaults(),
//!     &OutputLayout::new(root.path()), &Environment::Local,
//! )?;
//! assert_eq!(found.path, checkpoint);
//! assert_eq!(found.source, AcquisitionSource::CheckpointPathTag);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::PathBuf;

use podium_champion::checkpoint::{self, CheckpointSource, is_checkpoint_dir};
use podium_keys::TagRegistry;
use podium_mlflow::{Run, TrackingStore};
use podium_variants::{Environment, OutputLayout};
use serde::Serialize;

use crate::error::BenchError;

/// The artifact sub-path holding a run's checkpoint.
pub const CHECKPOINT_ARTIFACT: &str = "checkpoint";

/// Which step answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AcquisitionSource {
    /// (1) the `artifact.checkpoint_path` tag.
    CheckpointPathTag,
    /// (2) `checkpoint/` under a local artifact_uri.
    LocalArtifactUri,
    /// (3) the Python pipeline's output layout.
    OutputLayout,
    /// (4) downloaded by an earlier benchmark and reused from the checkpoint cache.
    DownloadCache,
    /// (4) downloaded now through the tracking store.
    Download,
}

impl AcquisitionSource {
    /// The snake_case name used in tags, JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            AcquisitionSource::CheckpointPathTag => "checkpoint_path_tag",
            AcquisitionSource::LocalArtifactUri => "local_artifact_uri",
            AcquisitionSource::OutputLayout => "output_layout",
            AcquisitionSource::DownloadCache => "download_cache",
            AcquisitionSource::Download => "download",
        }
    }
}

impl fmt::Display for AcquisitionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<CheckpointSource> for AcquisitionSource {
    fn from(source: CheckpointSource) -> Self {
        match source {
            CheckpointSource::CheckpointPathTag => AcquisitionSource::CheckpointPathTag,
            CheckpointSource::LocalArtifactUri => AcquisitionSource::LocalArtifactUri,
            CheckpointSource::OutputLayout => AcquisitionSource::OutputLayout,
        }
    }
}

/// A checkpoint directory ready to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcquiredCheckpoint {
    /// The directory (holds config.json and a weights file).
    pub path: PathBuf,
    /// Which step found it.
    pub source: AcquisitionSource,
}

/// Finds or downloads the checkpoint of run `run_id` (see the module docs for the order).
pub fn acquire_checkpoint(
    store: &dyn TrackingStore,
    run_id: &str,
    tags: &TagRegistry,
    layout: &OutputLayout,
    environment: &Environment,
) -> Result<AcquiredCheckpoint, BenchError> {
    let run = store
        .get_run(run_id)
        .map_err(BenchError::mlflow(format!("reading champion run {run_id}")))?;
    acquire_for_run(store, &run, tags, layout, environment)
}

/// [`acquire_checkpoint`] for a run already read.
pub fn acquire_for_run(
    store: &dyn TrackingStore,
    run: &Run,
    tags: &TagRegistry,
    layout: &OutputLayout,
    environment: &Environment,
) -> Result<AcquiredCheckpoint, BenchError> {
    if let Some(local) = checkpoint::resolve_local(run, tags, layout, environment) {
        return Ok(AcquiredCheckpoint {
            path: local.path,
            source: local.source.into(),
        });
    }
    let run_id = run.id();
    let cache_dir = layout
        .checkpoint_cache_dir(run_id)
        .map_err(BenchError::layout(format!(
            "checkpoint cache of run {run_id}"
        )))?;
    let cached = cache_dir.join(CHECKPOINT_ARTIFACT);
    if is_checkpoint_dir(&cached) {
        return Ok(AcquiredCheckpoint {
            path: cached,
            source: AcquisitionSource::DownloadCache,
        });
    }
    std::fs::create_dir_all(&cache_dir)
        .map_err(BenchError::io(format!("creating {}", cache_dir.display())))?;
    let downloaded = store.download_artifacts(&run.info, CHECKPOINT_ARTIFACT, &cache_dir);
    match downloaded {
        Ok(path) if is_checkpoint_dir(&path) => Ok(AcquiredCheckpoint {
            path,
            source: AcquisitionSource::Download,
        }),
        Ok(path) => Err(BenchError::CheckpointNotFound {
            run_id: run_id.to_string(),
            message: format!(
                "the downloaded {CHECKPOINT_ARTIFACT}/ artifact ({}) has no config.json and \
                 weights file ({})",
                path.display(),
                checkpoint::WEIGHT_FILES.join(" or ")
            ),
        }),
        // Another worker (a different benchmark key of the same run) finished the same
        // download first: its atomic rename won, and its copy is as good as ours.
        Err(_) if is_checkpoint_dir(&cached) => Ok(AcquiredCheckpoint {
            path: cached,
            source: AcquisitionSource::DownloadCache,
        }),
        Err(err) => Err(BenchError::CheckpointNotFound {
            run_id: run_id.to_string(),
            message: format!(
                "not found locally (the {} tag, {CHECKPOINT_ARTIFACT}/ under artifact_uri {}, \
                 outputs/hpo/{}/…/study-…/trial-…) and the download from the tracking store \
                 failed: {err}",
                tags.get(podium_keys::Tag::ArtifactCheckpointPath),
                run.info.artifact_uri,
                environment.as_str()
            ),
        }),
    }
}
