//! Checkpoint acquisition for a champion, first hit wins: (1) the `artifact.checkpoint_path`
//! tag, (2) `checkpoint/` under a local artifact_uri, (3) the Python pipeline's
//! `study-{hash8}/trial-{hash8}` layout — steps shared with champion selection via
//! [`podium_champion::checkpoint`] — else (4) the run's checkpoint artifact, downloaded through
//! the tracking store (artifact proxy or local artifact root) into
//! `outputs/cache/checkpoints/{run_id}/checkpoint` and reused next time: a refit run's
//! `best_trial_checkpoint.tar.gz` archive (a final training's `checkpoint.tar.gz`), extracted
//! safely ([`crate::archive`]) into a temp dir that is renamed into place, else a plain
//! `checkpoint/` directory.
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
use std::path::{Path, PathBuf};

use podium_champion::checkpoint::{
    self, CHECKPOINT_DIR_ARTIFACT, CheckpointSource, checkpoint_artifact_paths, is_checkpoint_dir,
};
use podium_keys::TagRegistry;
use podium_mlflow::{Run, TrackingStore};
use podium_variants::{Environment, OutputLayout};
use serde::Serialize;

use crate::archive::{self, ExtractLimits};
use crate::error::BenchError;

/// The artifact sub-path holding a run's checkpoint as a directory.
pub const CHECKPOINT_ARTIFACT: &str = CHECKPOINT_DIR_ARTIFACT;

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
    let mut failures = Vec::new();
    for artifact in checkpoint_artifact_paths(run, tags) {
        let attempt = if artifact.ends_with(".tar.gz") {
            download_archive(store, run, artifact, &cache_dir, &cached)
        } else {
            download_directory(store, run, artifact, &cache_dir)
        };
        match attempt {
            Ok(path) => {
                return Ok(AcquiredCheckpoint {
                    path,
                    source: AcquisitionSource::Download,
                });
            }
            // Another worker (a different benchmark key of the same run) finished the same
            // download first: its atomic rename won, and its copy is as good as ours.
            Err(_) if is_checkpoint_dir(&cached) => {
                return Ok(AcquiredCheckpoint {
                    path: cached,
                    source: AcquisitionSource::DownloadCache,
                });
            }
            Err(err) => failures.push(format!("{artifact}: {err}")),
        }
    }
    Err(BenchError::CheckpointNotFound {
        run_id: run_id.to_string(),
        message: format!(
            "not found locally (the {} tag, {CHECKPOINT_ARTIFACT}/ under artifact_uri {}, \
             outputs/hpo/{}/…/study-…/trial-…) and no checkpoint artifact could be downloaded \
             ({})",
            tags.get(podium_keys::Tag::ArtifactCheckpointPath),
            run.info.artifact_uri,
            environment.as_str(),
            failures.join("; ")
        ),
    })
}

/// Downloads a plain checkpoint directory artifact into `cache_dir/<artifact>`.
fn download_directory(
    store: &dyn TrackingStore,
    run: &Run,
    artifact: &str,
    cache_dir: &Path,
) -> Result<PathBuf, BenchError> {
    let path = store
        .download_artifacts(&run.info, artifact, cache_dir)
        .map_err(BenchError::mlflow(format!(
            "downloading {artifact}/ of run {}",
            run.id()
        )))?;
    if is_checkpoint_dir(&path) {
        Ok(path)
    } else {
        Err(BenchError::CheckpointNotFound {
            run_id: run.id().to_string(),
            message: format!(
                "the downloaded {artifact}/ artifact ({}) has no config.json and weights file ({})",
                path.display(),
                checkpoint::WEIGHT_FILES.join(" or ")
            ),
        })
    }
}

/// Downloads a checkpoint archive artifact (a `.tar.gz` file, or the folder MLflow makes of
/// `log_artifact(file, artifact_path="<name>.tar.gz")` holding one) and extracts it safely into
/// `cached` (`cache_dir/checkpoint`) through temp dirs inside `cache_dir`.
fn download_archive(
    store: &dyn TrackingStore,
    run: &Run,
    artifact: &str,
    cache_dir: &Path,
    cached: &Path,
) -> Result<PathBuf, BenchError> {
    let run_id = run.id();
    let scratch = tempfile::Builder::new()
        .prefix(".podium-archive-")
        .tempdir_in(cache_dir)
        .map_err(BenchError::io(format!(
            "creating a temp dir in {}",
            cache_dir.display()
        )))?;
    let downloaded = store
        .download_artifacts(&run.info, artifact, scratch.path())
        .map_err(BenchError::mlflow(format!(
            "downloading {artifact} of run {run_id}"
        )))?;
    let archive_file = if downloaded.is_file() {
        downloaded
    } else {
        let mut archives: Vec<PathBuf> = std::fs::read_dir(&downloaded)
            .map_err(BenchError::io(format!("listing {}", downloaded.display())))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.is_file()
                    && path
                        .file_name()
                        .is_some_and(|name| name.to_string_lossy().ends_with(".tar.gz"))
            })
            .collect();
        archives.sort();
        match archives.len() {
            1 => archives.remove(0),
            count => {
                return Err(BenchError::CheckpointNotFound {
                    run_id: run_id.to_string(),
                    message: format!(
                        "the {artifact} artifact holds {count} .tar.gz files, expected one"
                    ),
                });
            }
        }
    };
    let extracted = scratch.path().join("extracted");
    archive::extract_tar_gz(&archive_file, &extracted, &ExtractLimits::default())?;
    let root = archive::checkpoint_root(&extracted)
        .filter(|root| is_checkpoint_dir(root))
        .ok_or_else(|| BenchError::CheckpointNotFound {
            run_id: run_id.to_string(),
            message: format!(
                "the {artifact} archive holds no directory with config.json and a weights file \
                 ({})",
                checkpoint::WEIGHT_FILES.join(" or ")
            ),
        })?;
    std::fs::rename(&root, cached).map_err(BenchError::io(format!(
        "moving the extracted checkpoint to {}",
        cached.display()
    )))?;
    Ok(cached.to_path_buf())
}
