//! Checkpoint acquisition for a champion, first hit wins: (1) the `artifact.checkpoint_path`
//! tag, (2) `checkpoint/` under a local artifact_uri, (3) the pipeline's local copies in the
//! search roots of `artifact_acquisition.yaml` (`outputs/{root}/{env}/{model}/
//! checkpoint_{run_id[:12]}`, then `checkpoint_{s8}_{t8}`), (4) the study tree
//! `outputs/hpo/{env}/{model}/…/study-{s8}/trial-{t8}/` (`refit/`, else the best `cv/fold{i}`,
//! else the trial's checkpoint) — steps shared with champion selection via
//! [`podium_champion::checkpoint`] — else (5) the run's checkpoint artifact, downloaded through
//! the tracking store (artifact proxy or local artifact root) into
//! `outputs/cache/checkpoints/{run_id}/checkpoint` and reused next time: a refit run's
//! `best_trial_checkpoint.tar.gz` archive (a final training's `checkpoint.tar.gz`), extracted
//! safely ([`crate::archive`]) into a temp dir that is renamed into place, else a plain
//! `checkpoint/` directory. With [`AcquisitionSettings`] from the config folder, `outputs/` is
//! where `paths.yaml` puts it on this platform (`base.outputs` or its `env_overrides`).
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
    self, CHECKPOINT_DIR_ARTIFACT, CheckpointSource, LocalCheckpoints, checkpoint_artifact_paths,
    is_checkpoint_dir,
};
use podium_keys::TagRegistry;
use podium_mlflow::{Run, TrackingStore};
use podium_variants::{AcquisitionConfig, Environment, OutputLayout, PathsConfig};
use serde::Serialize;

use podium_variants::fs::ScratchDir;

use crate::archive::{self, ExtractLimits};
use crate::error::BenchError;

/// The artifact sub-path holding a run's checkpoint as a directory.
pub const CHECKPOINT_ARTIFACT: &str = CHECKPOINT_DIR_ARTIFACT;

/// Prefix of the scratch directories a checkpoint archive is downloaded and extracted in,
/// inside `outputs/cache/checkpoints/<run>/`.
pub const ARCHIVE_SCRATCH_PREFIX: &str = ".podium-archive-";

/// Removes a checkpoint downloaded into the cache (by this call or an earlier one) that failed
/// to load, so the next benchmark downloads it again instead of failing on the same files; a
/// checkpoint found anywhere else is the pipeline's or the user's and is left alone. The
/// directory is renamed aside first, so no reader ever sees half of it.
pub fn discard_cached(checkpoint: &AcquiredCheckpoint) {
    if !matches!(
        checkpoint.source,
        AcquisitionSource::Download | AcquisitionSource::DownloadCache
    ) {
        return;
    }
    let Some(parent) = checkpoint.path.parent() else {
        return;
    };
    let aside = parent.join(format!(
        "{ARCHIVE_SCRATCH_PREFIX}discarded-{:016x}",
        fastrand::u64(..)
    ));
    match std::fs::rename(&checkpoint.path, &aside).and_then(|()| std::fs::remove_dir_all(&aside)) {
        Ok(()) => tracing::warn!(
            "removed the cached checkpoint {} that failed to load; the next benchmark downloads \
             it again",
            checkpoint.path.display()
        ),
        Err(err) => tracing::warn!(
            "cannot remove the cached checkpoint {} that failed to load: {err}",
            checkpoint.path.display()
        ),
    }
}

/// Which step answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AcquisitionSource {
    /// (1) the `artifact.checkpoint_path` tag.
    CheckpointPathTag,
    /// (2) `checkpoint/` under a local artifact_uri.
    LocalArtifactUri,
    /// (3) a local copy in a search root of `artifact_acquisition.yaml`.
    SearchRoot,
    /// (4) the Python pipeline's study tree.
    OutputLayout,
    /// (5) downloaded by an earlier benchmark and reused from the checkpoint cache.
    DownloadCache,
    /// (5) downloaded now through the tracking store.
    Download,
}

impl AcquisitionSource {
    /// The snake_case name used in tags, JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            AcquisitionSource::CheckpointPathTag => "checkpoint_path_tag",
            AcquisitionSource::LocalArtifactUri => "local_artifact_uri",
            AcquisitionSource::SearchRoot => "search_root",
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
            CheckpointSource::SearchRoot => AcquisitionSource::SearchRoot,
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

/// Where acquisition looks, from the config folder: `paths.yaml` (the outputs folder per
/// platform, the folder names of the search roots) and `artifact_acquisition.yaml` (the search
/// roots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcquisitionSettings {
    /// `config/paths.yaml`.
    pub paths: PathsConfig,
    /// `config/artifact_acquisition.yaml`.
    pub acquisition: AcquisitionConfig,
    /// Caps of a downloaded archive's extraction (`PODIUM_MAX_ARCHIVE_RATIO`,
    /// `PODIUM_MIN_FREE_DISK_BYTES`).
    pub extract: ExtractLimits,
}

impl AcquisitionSettings {
    /// Reads both files from `config_dir`; a missing file gives the pipeline's defaults, an
    /// invalid one an error naming the file and key.
    pub fn load(config_dir: &Path) -> Result<Self, BenchError> {
        let paths_file = config_dir.join("paths.yaml");
        let paths = PathsConfig::load(&paths_file).map_err(BenchError::layout(format!(
            "loading {}",
            paths_file.display()
        )))?;
        let acquisition_file = config_dir.join(AcquisitionConfig::FILE);
        let acquisition = AcquisitionConfig::load(&acquisition_file).map_err(
            BenchError::layout(format!("loading {}", acquisition_file.display())),
        )?;
        let extract = ExtractLimits::from_env(&|name| std::env::var(name).ok())?;
        Ok(Self {
            paths,
            acquisition,
            extract,
        })
    }

    /// `layout` with its outputs folder where `paths.yaml` puts it on `environment`.
    pub fn layout(&self, layout: &OutputLayout, environment: &Environment) -> OutputLayout {
        self.paths.layout(layout.root(), environment)
    }
}

/// Finds or downloads the checkpoint of run `run_id` (see the module docs for the order) with
/// the default settings: `outputs/` under the layout's root and the pipeline's default search
/// roots.
pub fn acquire_checkpoint(
    store: &dyn TrackingStore,
    run_id: &str,
    tags: &TagRegistry,
    layout: &OutputLayout,
    environment: &Environment,
) -> Result<AcquiredCheckpoint, BenchError> {
    acquire_checkpoint_with(
        store,
        run_id,
        tags,
        layout,
        environment,
        &AcquisitionSettings::default(),
    )
}

/// [`acquire_checkpoint`] with the settings of a config folder.
pub fn acquire_checkpoint_with(
    store: &dyn TrackingStore,
    run_id: &str,
    tags: &TagRegistry,
    layout: &OutputLayout,
    environment: &Environment,
    settings: &AcquisitionSettings,
) -> Result<AcquiredCheckpoint, BenchError> {
    let run = store
        .get_run(run_id)
        .map_err(BenchError::mlflow(format!("reading champion run {run_id}")))?;
    acquire_for_run_with(store, &run, tags, layout, environment, settings)
}

/// [`acquire_checkpoint`] for a run already read.
pub fn acquire_for_run(
    store: &dyn TrackingStore,
    run: &Run,
    tags: &TagRegistry,
    layout: &OutputLayout,
    environment: &Environment,
) -> Result<AcquiredCheckpoint, BenchError> {
    acquire_for_run_with(
        store,
        run,
        tags,
        layout,
        environment,
        &AcquisitionSettings::default(),
    )
}

/// [`acquire_checkpoint_with`] for a run already read.
pub fn acquire_for_run_with(
    store: &dyn TrackingStore,
    run: &Run,
    tags: &TagRegistry,
    layout: &OutputLayout,
    environment: &Environment,
    settings: &AcquisitionSettings,
) -> Result<AcquiredCheckpoint, BenchError> {
    let layout = &settings.layout(layout, environment);
    let search_roots = settings
        .acquisition
        .search_root_dirs(&settings.paths, layout);
    let local = LocalCheckpoints::scan_with_roots(
        layout,
        environment,
        checkpoint::model_folder(run, tags),
        &search_roots,
    )
    .resolve(run, tags);
    if let Some(local) = local {
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
            download_archive(store, run, artifact, &cache_dir, &cached, &settings.extract)
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
             checkpoint_… copies under {}, {}/hpo/{}/…/study-…/trial-…) and no checkpoint \
             artifact could be downloaded ({})",
            tags.get(podium_keys::Tag::ArtifactCheckpointPath),
            run.info.artifact_uri,
            search_roots
                .iter()
                .map(|root| root.join(environment.as_str()).display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            layout.outputs_dir().display(),
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
    limits: &ExtractLimits,
) -> Result<PathBuf, BenchError> {
    let run_id = run.id();
    // Locked while in use; one left by a process killed mid-extraction (the size of a
    // checkpoint) is removed here by the next download into the same folder.
    let scratch = ScratchDir::new_in(cache_dir, ARCHIVE_SCRATCH_PREFIX)
        .map_err(BenchError::io(format!("preparing {}", cache_dir.display())))?;
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
    archive::extract_tar_gz(&archive_file, &extracted, limits)?;
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
