//! Local checkpoint resolution: the on-disk steps of checkpoint acquisition, shared by
//! the disk artifact check of champion selection and by the benchmark's acquisition (which adds
//! step (4), the download).
//!
//! This is the only I/O podium-champion does on its own: metadata checks (`stat`, directory
//! listings) under a filesystem root. It never reads checkpoint contents.
//!
//! A directory counts as a checkpoint only when it holds a `config.json` and a weights file
//! (`model.safetensors` or `pytorch_model.bin`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::Run;
use podium_mlflow::artifacts::ArtifactLocation;
use podium_variants::{Environment, OutputLayout, Process};
use serde::Serialize;

/// Weight files a checkpoint directory may hold (either one suffices).
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// The artifact a pipeline refit run logs its checkpoint as: a folder holding one `.tar.gz`
/// whose members sit under `best_trial_checkpoint/`.
pub const REFIT_CHECKPOINT_ARCHIVE: &str = "best_trial_checkpoint.tar.gz";

/// The artifact a pipeline final-training run logs its checkpoint as (same shape).
pub const FINAL_TRAINING_CHECKPOINT_ARCHIVE: &str = "checkpoint.tar.gz";

/// A checkpoint logged as a plain directory (podium's own runs, older stores).
pub const CHECKPOINT_DIR_ARTIFACT: &str = "checkpoint";

/// The artifact paths a run's checkpoint may be under, most likely first: a refit's
/// `best_trial_checkpoint.tar.gz`, a final training's `checkpoint.tar.gz`, then `checkpoint/`.
pub fn checkpoint_artifact_paths(run: &Run, tags: &TagRegistry) -> Vec<&'static str> {
    match run.tag(tags.get(Tag::Stage)) {
        Some(stage::HPO_REFIT) => vec![REFIT_CHECKPOINT_ARCHIVE, CHECKPOINT_DIR_ARTIFACT],
        Some(stage::FINAL_TRAINING) => {
            vec![FINAL_TRAINING_CHECKPOINT_ARCHIVE, CHECKPOINT_DIR_ARTIFACT]
        }
        _ => vec![CHECKPOINT_DIR_ARTIFACT],
    }
}

/// The `{model}` folder of a run's outputs: its backbone tag, else the pipeline's `code.model`
/// tag, shortened to the text before the first `-`.
pub fn model_folder<'a>(run: &'a Run, tags: &TagRegistry) -> &'a str {
    let model = run
        .tag(tags.get(Tag::Backbone))
        .or_else(|| run.tag(tags.get(Tag::Model)))
        .unwrap_or_default();
    podium_variants::backbone_short_name(model)
}

/// How deep below `outputs/hpo/{env}/{model}` study folders are looked for.
const MAX_SCAN_DEPTH: usize = 8;

/// Which acquisition step found a local checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointSource {
    /// (1) the directory named by the `artifact.checkpoint_path` tag.
    CheckpointPathTag,
    /// (2) `checkpoint/` under the run's local artifact root.
    LocalArtifactUri,
    /// (3) the Python pipeline's layout `outputs/hpo/{env}/{model}/**/study-…/trial-…/…`.
    OutputLayout,
}

impl fmt::Display for CheckpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckpointSource::CheckpointPathTag => "checkpoint_path_tag",
            CheckpointSource::LocalArtifactUri => "local_artifact_uri",
            CheckpointSource::OutputLayout => "output_layout",
        })
    }
}

/// A checkpoint directory found on this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalCheckpoint {
    /// The directory.
    pub path: PathBuf,
    /// The step that found it.
    pub source: CheckpointSource,
}

/// True when `dir` holds a `config.json` and a weights file.
pub fn is_checkpoint_dir(dir: &Path) -> bool {
    dir.join("config.json").is_file() && WEIGHT_FILES.iter().any(|file| dir.join(file).is_file())
}

/// Resolves one run's checkpoint locally (steps 1–3, first hit wins). A run tagged with stage
/// `hpo_refit` resolves to `…/refit/checkpoint` in step 3, any other run to `…/checkpoint`; the
/// `{model}` folder comes from the run's backbone tag.
///
/// ```
/// use std::collections::BTreeMap;
/// use podium_champion::checkpoint::{resolve_local, CheckpointSource};
/// use podium_keys::TagRegistry;
/// use podium_mlflow::{Run, RunInfo, RunStatus};
/// use podium_variants::{Environment, OutputLayout};
///
/// let root = tempfile::tempdir()?;
/// let dir = root.path().join("outputs/hpo/local/distilbert/hpo_distilbert/study-aaaaaaaa/trial-bbbbbbbb/checkpoint");
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("config.json"), "{}")?;
/// std::fs::write(dir.join("model.safetensors"), "")?;
///
/// let tags = TagRegistry::defaults();
/// let run = Run {
///     info: RunInfo { run_id: "r1".into(), experiment_id: "1".into(), run_name: "t".into(),
///         status: RunStatus::Finished, start_time: Some(1), end_time: Some(2),
///         artifact_uri: "mlflow-artifacts:/1/r1/artifacts".into(), lifecycle_stage: "active".into() },
///     tags: BTreeMap::from([
///         ("code.backbone".to_string(), "distilbert".to_string()),
///         ("code.study_key_hash".to_string(), "a".repeat(64)),
///         ("code.trial_key_hash".to_string(), "b".repeat(64)),
///     ]),
///     params: BTreeMap::new(),
///     metrics: BTreeMap::new(),
/// };
/// let found = resolve_local(&run, &tags, &OutputLayout::new(root.path()), &Environment::Local).unwrap();
/// assert_eq!(found.path, dir);
/// assert_eq!(found.source, CheckpointSource::OutputLayout);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn resolve_local(
    run: &Run,
    tags: &TagRegistry,
    layout: &OutputLayout,
    environment: &Environment,
) -> Option<LocalCheckpoint> {
    LocalCheckpoints::scan(layout, environment, model_folder(run, tags)).resolve(run, tags)
}

/// The study/trial folders of one backbone's HPO outputs, scanned once so that many runs can be
/// resolved without walking the tree again (the disk artifact check resolves every candidate).
#[derive(Debug, Clone, Default)]
pub struct LocalCheckpoints {
    root: PathBuf,
    /// (study folder name, trial folder name) → trial folders, sorted (deterministic choice).
    trial_dirs: BTreeMap<(String, String), Vec<PathBuf>>,
}

impl LocalCheckpoints {
    /// Scans `outputs/hpo/{environment}/{model}` for `study-*/trial-*` folders. A missing tree,
    /// an unusable model name or unreadable folders simply contribute nothing.
    pub fn scan(layout: &OutputLayout, environment: &Environment, model: &str) -> Self {
        let mut found = Self {
            root: layout.root().to_path_buf(),
            trial_dirs: BTreeMap::new(),
        };
        if let Ok(model_dir) = layout.process_dir(Process::Hpo, environment, model) {
            found.walk(&model_dir, 0);
        }
        for dirs in found.trial_dirs.values_mut() {
            dirs.sort();
        }
        found
    }

    fn walk(&mut self, dir: &Path, depth: usize) {
        if depth > MAX_SCAN_DEPTH {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("study-") {
                self.add_study(&path, &name);
            } else if !name.starts_with("trial") && name != "checkpoint" {
                self.walk(&path, depth + 1);
            }
        }
    }

    fn add_study(&mut self, study_dir: &Path, study_name: &str) {
        let Ok(entries) = std::fs::read_dir(study_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("trial-") && entry.path().is_dir() {
                self.trial_dirs
                    .entry((study_name.to_string(), name))
                    .or_default()
                    .push(entry.path());
            }
        }
    }

    /// Resolves a run's checkpoint on disk (see [`resolve_local`]).
    pub fn resolve(&self, run: &Run, tags: &TagRegistry) -> Option<LocalCheckpoint> {
        let found = |path: PathBuf, source| {
            is_checkpoint_dir(&path).then_some(LocalCheckpoint { path, source })
        };
        let from_tag = run
            .tag(tags.get(Tag::ArtifactCheckpointPath))
            .filter(|path| !path.trim().is_empty())
            .and_then(|path| {
                let path = Path::new(path);
                let path = if path.is_relative() {
                    self.root.join(path)
                } else {
                    path.to_path_buf()
                };
                found(path, CheckpointSource::CheckpointPathTag)
            });
        if from_tag.is_some() {
            return from_tag;
        }
        if let ArtifactLocation::Local(artifact_root) =
            ArtifactLocation::parse(&run.info.artifact_uri)
            && let Some(hit) = found(
                artifact_root.join("checkpoint"),
                CheckpointSource::LocalArtifactUri,
            )
        {
            return Some(hit);
        }
        let study = prefix8(run.tag(tags.get(Tag::StudyKeyHash))?)?;
        let trial = prefix8(run.tag(tags.get(Tag::TrialKeyHash))?)?;
        let is_refit = run.tag(tags.get(Tag::Stage)) == Some(stage::HPO_REFIT);
        self.trial_dirs
            .get(&(format!("study-{study}"), format!("trial-{trial}")))?
            .iter()
            .find_map(|trial_dir| {
                let path = if is_refit {
                    trial_dir.join("refit").join("checkpoint")
                } else {
                    trial_dir.join("checkpoint")
                };
                found(path, CheckpointSource::OutputLayout)
            })
    }
}

/// The first 8 characters of a hash tag; `None` when shorter (it cannot name a folder).
fn prefix8(hash: &str) -> Option<&str> {
    hash.get(..8).filter(|prefix| prefix.len() == 8)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::collections::BTreeMap;

    use podium_mlflow::{RunInfo, RunStatus};

    use super::*;

    fn run(tags: &[(&str, &str)], artifact_uri: &str) -> Run {
        Run {
            info: RunInfo {
                run_id: "r".into(),
                experiment_id: "1".into(),
                run_name: "r".into(),
                status: RunStatus::Finished,
                start_time: Some(1),
                end_time: Some(2),
                artifact_uri: artifact_uri.into(),
                lifecycle_stage: "active".into(),
            },
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
        }
    }

    fn make_checkpoint(dir: &Path, weights: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.json"), "{}").unwrap();
        std::fs::write(dir.join(weights), "w").unwrap();
    }

    #[test]
    fn steps_in_order_and_validity() {
        let root = tempfile::tempdir().unwrap();
        let layout = OutputLayout::new(root.path());
        let tags = TagRegistry::defaults();
        let study = "1234567890abcdef".repeat(4);
        let trial = "fedcba0987654321".repeat(4);
        let trial_dir = root
            .path()
            .join("outputs/hpo/local/deberta/hpo_deberta_v2/nested/study-12345678/trial-fedcba09");
        make_checkpoint(&trial_dir.join("refit/checkpoint"), "pytorch_model.bin");
        // A trial checkpoint without weights does not count.
        std::fs::create_dir_all(trial_dir.join("checkpoint")).unwrap();
        std::fs::write(trial_dir.join("checkpoint/config.json"), "{}").unwrap();

        let base = [
            ("code.backbone", "deberta"),
            ("code.study_key_hash", study.as_str()),
            ("code.trial_key_hash", trial.as_str()),
        ];
        let trial_run = run(&base, "mlflow-artifacts:/1/r/artifacts");
        assert_eq!(
            resolve_local(&trial_run, &tags, &layout, &Environment::Local),
            None
        );

        let mut refit_tags = base.to_vec();
        refit_tags.push(("code.stage", "hpo_refit"));
        let refit = run(&refit_tags, "mlflow-artifacts:/1/r/artifacts");
        let hit = resolve_local(&refit, &tags, &layout, &Environment::Local).unwrap();
        assert_eq!(hit.source, CheckpointSource::OutputLayout);
        assert_eq!(hit.path, trial_dir.join("refit/checkpoint"));
        // Another environment's outputs are not looked at.
        assert_eq!(
            resolve_local(&refit, &tags, &layout, &Environment::Colab),
            None
        );

        // (2) a local artifact root wins over the layout.
        let artifacts = root.path().join("mlruns/1/r/artifacts");
        make_checkpoint(&artifacts.join("checkpoint"), "model.safetensors");
        let uri = format!("file://{}", artifacts.display());
        let refit = run(&refit_tags, &uri);
        let hit = resolve_local(&refit, &tags, &layout, &Environment::Local).unwrap();
        assert_eq!(hit.source, CheckpointSource::LocalArtifactUri);

        // (1) the tag path wins over everything, relative paths against the root.
        make_checkpoint(&root.path().join("ckpt"), "model.safetensors");
        refit_tags.push(("code.artifact.checkpoint_path", "ckpt"));
        let refit = run(&refit_tags, &uri);
        let hit = resolve_local(&refit, &tags, &layout, &Environment::Local).unwrap();
        assert_eq!(hit.source, CheckpointSource::CheckpointPathTag);
        assert_eq!(hit.path, root.path().join("ckpt"));
    }
}
