//! Local checkpoint resolution: the on-disk steps of checkpoint acquisition, shared by
//! the disk artifact check of champion selection and by the benchmark's acquisition (which adds
//! step (4), the download).
//!
//! This is the only I/O podium-champion does on its own: metadata checks (`stat`, directory
//! listings) under a filesystem root. It never reads checkpoint contents.
//!
//! A directory counts as a checkpoint only when it holds a `config.json` and a weights file
//! (`model.safetensors` or `pytorch_model.bin`).

use std::fmt;
use std::path::{Path, PathBuf};

use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::Run;
use podium_mlflow::artifacts::ArtifactLocation;
use podium_variants::{
    Environment, OutputLayout, PIPELINE_TRIAL_PREFIX, Process, TrialMeta, pipeline_study_folder,
    pipeline_trial_folder,
};
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

/// The metric a CV fold's `metrics.json` is ranked by (else its first numeric entry), as the
/// pipeline picks the fold whose checkpoint stands for a trial.
const FOLD_METRIC: &str = "macro-f1";

/// The most a fold's `metrics.json` may hold before it is ignored.
const FOLD_METRICS_MAX_BYTES: u64 = 1 << 20;

/// Which acquisition step found a local checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointSource {
    /// (1) the directory named by the `artifact.checkpoint_path` tag.
    CheckpointPathTag,
    /// (2) `checkpoint/` under the run's local artifact root.
    LocalArtifactUri,
    /// (3) a local copy the pipeline keeps in a search root of `artifact_acquisition.yaml`
    /// (`outputs/{root}/{env}/{model}/checkpoint_{run_id[:12]}` or `checkpoint_{s8}_{t8}`).
    SearchRoot,
    /// (4) the study tree `outputs/hpo/{env}/{model}/…/study-…/trial-…/`.
    OutputLayout,
}

impl fmt::Display for CheckpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckpointSource::CheckpointPathTag => "checkpoint_path_tag",
            CheckpointSource::LocalArtifactUri => "local_artifact_uri",
            CheckpointSource::SearchRoot => "search_root",
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

/// Resolves one run's checkpoint locally, first hit wins: (1) the checkpoint-path tag,
/// (2) `checkpoint/` under a local artifact root, (3) the pipeline's local copies in the
/// default search roots ([`podium_variants::DEFAULT_SEARCH_ROOTS`]), (4) the study tree, where
/// the trial folder with the run's study and trial key hashes (by its `trial_meta.json`, else
/// by its `study-{s8}/trial-{t8}` names) gives `refit/checkpoint`, else the best
/// `cv/fold{i}/checkpoint`, else `checkpoint`. The `{model}` folder comes from the run's
/// backbone (or model) tag.
///
/// ```
/// use std::collections::BTreeMap;
/// use podium_champion::checkpoint::{resolve_local, CheckpointSource};
/// use podium_keys::TagRegistry;
/// use podium_mlflow::{Run, RunInfo, RunStatus};
/// use podium_variants::{Environment, OutputLayout};
///
/// let root = tempfile::tempdir()?;
/// let dir = root.path().join("outputs/hpo/local/distilbert/study-aaaaaaaa/trial-bbbbbbbb/refit/checkpoint");
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
///         ("code.model".to_string(), "distilbert".to_string()),
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

/// The default search roots of `layout` (`outputs/artifacts`, `outputs/best_model_selection`).
pub fn default_search_root_dirs(layout: &OutputLayout) -> Vec<PathBuf> {
    let outputs = layout.outputs_dir();
    podium_variants::DEFAULT_SEARCH_ROOTS
        .iter()
        .map(|root| outputs.join(root))
        .collect()
}

/// One trial folder of the study tree.
#[derive(Debug, Clone)]
struct TrialFolder {
    path: PathBuf,
    /// The name of the folder holding it (`study-{s8}` in the pipeline's layout).
    study_folder: String,
    /// Its own name (`trial-{t8}`).
    trial_folder: String,
    /// (study key hash, trial key hash) from its `trial_meta.json`, when both are there.
    hashes: Option<(String, String)>,
}

/// The local checkpoint places of one backbone — its search-root folders and the trial folders
/// of its study tree — scanned once so that many runs can be resolved without walking the tree
/// again (the disk artifact check resolves every candidate).
#[derive(Debug, Clone, Default)]
pub struct LocalCheckpoints {
    root: PathBuf,
    /// `{search root}/{env}/{model}`, in search order.
    copy_dirs: Vec<PathBuf>,
    /// Sorted by path (a deterministic choice when several match).
    trials: Vec<TrialFolder>,
}

impl LocalCheckpoints {
    /// Scans `outputs/hpo/{environment}/{model}` with the default search roots (see
    /// [`LocalCheckpoints::scan_with_roots`]).
    pub fn scan(layout: &OutputLayout, environment: &Environment, model: &str) -> Self {
        Self::scan_with_roots(
            layout,
            environment,
            model,
            &default_search_root_dirs(layout),
        )
    }

    /// Scans `outputs/hpo/{environment}/{model}` for trial folders, and notes
    /// `{root}/{environment}/{model}` of each search root. A missing tree, an unusable model
    /// name or unreadable folders simply contribute nothing.
    pub fn scan_with_roots(
        layout: &OutputLayout,
        environment: &Environment,
        model: &str,
        search_roots: &[PathBuf],
    ) -> Self {
        let mut found = Self {
            root: layout.root().to_path_buf(),
            copy_dirs: Vec::new(),
            trials: Vec::new(),
        };
        if let Ok(model) = podium_variants::model_folder(model) {
            found.copy_dirs = search_roots
                .iter()
                .map(|root| root.join(environment.as_str()).join(model))
                .collect();
        }
        if let Ok(model_dir) = layout.process_dir(Process::Hpo, environment, model) {
            found.walk(&model_dir, 0);
        }
        found.trials.sort_by(|a, b| a.path.cmp(&b.path));
        found
    }

    fn walk(&mut self, dir: &Path, depth: usize) {
        if depth > MAX_SCAN_DEPTH {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let folder = dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(PIPELINE_TRIAL_PREFIX) || name.starts_with("trial_") {
                let hashes = TrialMeta::read(&path)
                    .and_then(|meta| Some((meta.study_key_hash?, meta.trial_key_hash?)));
                self.trials.push(TrialFolder {
                    path,
                    study_folder: folder.clone(),
                    trial_folder: name,
                    hashes,
                });
            } else if !matches!(name.as_str(), "checkpoint" | "cv" | "refit") {
                self.walk(&path, depth + 1);
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
        let study = run
            .tag(tags.get(Tag::StudyKeyHash))
            .filter(|h| !h.is_empty());
        let trial = run
            .tag(tags.get(Tag::TrialKeyHash))
            .filter(|h| !h.is_empty());
        // The pipeline's local copies: by run id first, then by the hash prefixes.
        let mut copy_names = vec![format!("checkpoint_{}", head(run.id(), 12))];
        if let (Some(study), Some(trial)) = (study, trial) {
            copy_names.push(format!("checkpoint_{}_{}", head(study, 8), head(trial, 8)));
        }
        // A name from the store that is not one folder cannot name a local copy.
        copy_names.retain(|name| !name.contains(['/', '\\', '\0']));
        for name in &copy_names {
            for dir in &self.copy_dirs {
                if let Some(path) = find_in_copy(&dir.join(name)) {
                    return Some(LocalCheckpoint {
                        path,
                        source: CheckpointSource::SearchRoot,
                    });
                }
            }
        }
        let (study, trial) = (study?, trial?);
        let study_folder = pipeline_study_folder(prefix8(study)?);
        let trial_folder = pipeline_trial_folder(prefix8(trial)?);
        self.trials
            .iter()
            .filter(|folder| match &folder.hashes {
                Some((s, t)) => s == study && t == trial,
                None => folder.study_folder == study_folder && folder.trial_folder == trial_folder,
            })
            .find_map(|folder| {
                trial_checkpoint(&folder.path).map(|path| LocalCheckpoint {
                    path,
                    source: CheckpointSource::OutputLayout,
                })
            })
    }
}

/// The checkpoint of a trial folder: `refit/checkpoint`, else the best CV fold's, else any
/// fold's (in fold order), else `checkpoint`; only complete checkpoints count.
pub fn trial_checkpoint(trial_dir: &Path) -> Option<PathBuf> {
    let refit = trial_dir.join("refit").join("checkpoint");
    if is_checkpoint_dir(&refit) {
        return Some(refit);
    }
    let folds = cv_folds(&trial_dir.join("cv"));
    let mut best: Option<(f64, &PathBuf)> = None;
    for fold in &folds {
        if let Some(score) = fold_score(&fold.join("metrics.json"))
            && best.is_none_or(|(best_score, _)| score > best_score)
        {
            best = Some((score, fold));
        }
    }
    let best = best.map(|(_, fold)| fold.join("checkpoint"));
    best.into_iter()
        .chain(folds.iter().map(|fold| fold.join("checkpoint")))
        .chain([trial_dir.join("checkpoint")])
        .find(|path| is_checkpoint_dir(path))
}

/// The `fold{i}` / `fold_{i}` folders of a `cv/` folder, by fold number.
fn cv_folds(cv_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cv_dir) else {
        return Vec::new();
    };
    let mut folds: Vec<(u64, String, PathBuf)> = entries
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix("fold")?;
            let rest = rest.strip_prefix('_').unwrap_or(rest);
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let number = digits.parse().ok()?;
            Some((number, name, entry.path()))
        })
        .collect();
    folds.sort();
    folds.into_iter().map(|(_, _, path)| path).collect()
}

/// A fold's score from its `metrics.json`: the objective metric's value, else (when that is
/// missing or null) the first numeric entry in file order; `None` when there is neither or the
/// file is unreadable.
fn fold_score(path: &Path) -> Option<f64> {
    let text = podium_variants::fs::read_regular_text(path, FOLD_METRICS_MAX_BYTES).ok()?;
    let FoldMetrics(score) = serde_json::from_str(&text).ok()?;
    score
}

/// The score of a fold's metrics object (see [`fold_score`]); reads entries in file order,
/// which a map type would lose.
struct FoldMetrics(Option<f64>);

impl<'de> serde::Deserialize<'de> for FoldMetrics {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = FoldMetrics;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object of metrics")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FoldMetrics, A::Error> {
                // A boolean counts as a number, as in Python.
                let numeric = |value: &serde_json::Value| match value {
                    serde_json::Value::Number(number) => number.as_f64(),
                    serde_json::Value::Bool(flag) => Some(f64::from(u8::from(*flag))),
                    _ => None,
                };
                let mut objective = None;
                let mut first_numeric = None;
                while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                    if key == FOLD_METRIC {
                        objective = Some(value);
                    } else if first_numeric.is_none() {
                        first_numeric = numeric(&value);
                    }
                }
                Ok(FoldMetrics(match objective {
                    None | Some(serde_json::Value::Null) => first_numeric,
                    Some(value) => numeric(&value),
                }))
            }
        }
        deserializer.deserialize_map(Entries)
    }
}

/// The checkpoint inside one of the pipeline's local copies: the folder itself, its
/// `best_trial_checkpoint/` or `checkpoint/`, or inside a `*.tar.gz` folder (an extracted
/// archive) its `checkpoint/`, `best_trial_checkpoint/` or the folder itself. A bare archive
/// file is not looked into here (the download step extracts archives).
fn find_in_copy(dir: &Path) -> Option<PathBuf> {
    if !dir.is_dir() {
        return None;
    }
    let direct = [
        dir.to_path_buf(),
        dir.join("best_trial_checkpoint"),
        dir.join("checkpoint"),
    ];
    if let Some(hit) = direct.into_iter().find(|path| is_checkpoint_dir(path)) {
        return Some(hit);
    }
    let mut extracted: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_dir()
                && path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().ends_with(".tar.gz"))
        })
        .collect();
    extracted.sort();
    extracted.into_iter().find_map(|folder| {
        [
            folder.join("checkpoint"),
            folder.join("best_trial_checkpoint"),
            folder,
        ]
        .into_iter()
        .find(|path| is_checkpoint_dir(path))
    })
}

/// The first `n` characters of an id or hash (all of it when shorter), as Python slices it.
fn head(text: &str, n: usize) -> &str {
    text.char_indices()
        .nth(n)
        .map_or(text, |(at, _)| &text[..at])
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
        // A trial checkpoint without weights does not count.
        std::fs::create_dir_all(trial_dir.join("checkpoint")).unwrap();
        std::fs::write(trial_dir.join("checkpoint/config.json"), "{}").unwrap();

        let base = [
            ("code.model", "deberta"),
            ("code.study_key_hash", study.as_str()),
            ("code.trial_key_hash", trial.as_str()),
        ];
        let trial_run = run(&base, "mlflow-artifacts:/1/r/artifacts");
        assert_eq!(
            resolve_local(&trial_run, &tags, &layout, &Environment::Local),
            None
        );
        // The refit checkpoint stands for the trial, for the trial run and its refit alike.
        make_checkpoint(&trial_dir.join("refit/checkpoint"), "pytorch_model.bin");
        let hit = resolve_local(&trial_run, &tags, &layout, &Environment::Local).unwrap();
        assert_eq!(hit.path, trial_dir.join("refit/checkpoint"));

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

        // (3) the pipeline's local copy (hash-named) wins over the study tree …
        let copy = root
            .path()
            .join("outputs/best_model_selection/local/deberta/checkpoint_12345678_fedcba09");
        make_checkpoint(&copy.join("best_trial_checkpoint"), "model.safetensors");
        let hit = resolve_local(&refit, &tags, &layout, &Environment::Local).unwrap();
        assert_eq!(hit.source, CheckpointSource::SearchRoot);
        assert_eq!(hit.path, copy.join("best_trial_checkpoint"));
        // … and the run-id-named one, in an earlier search root, over that.
        let by_id = root
            .path()
            .join("outputs/artifacts/local/deberta/checkpoint_r/x.tar.gz/checkpoint");
        make_checkpoint(&by_id, "model.safetensors");
        let hit = resolve_local(&refit, &tags, &layout, &Environment::Local).unwrap();
        assert_eq!(hit.path, by_id);

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

    #[test]
    fn search_roots_follow_the_config_and_never_leave_their_folder() {
        let root = tempfile::tempdir().unwrap();
        let layout = OutputLayout::with_outputs_dir(root.path(), root.path().join("elsewhere"));
        let tags = TagRegistry::defaults();
        let copy = root
            .path()
            .join("elsewhere/copies/colab/bert/checkpoint_abcdefabcdef");
        make_checkpoint(&copy, "model.safetensors");
        let mut refit = run(&[("code.model", "bert-base-cased")], "");
        refit.info.run_id = "abcdefabcdef0123".into();
        let roots = [root.path().join("elsewhere/copies")];
        let index = LocalCheckpoints::scan_with_roots(&layout, &Environment::Colab, "bert", &roots);
        assert_eq!(index.resolve(&refit, &tags).unwrap().path, copy);
        // The default roots do not include `copies`.
        assert_eq!(
            resolve_local(&refit, &tags, &layout, &Environment::Colab),
            None
        );
        // A run id that would climb out of the search root names nothing.
        make_checkpoint(&root.path().join("elsewhere/stolen"), "model.safetensors");
        std::fs::create_dir_all(
            root.path()
                .join("elsewhere/copies/colab/bert/checkpoint_.."),
        )
        .unwrap();
        refit.info.run_id = "../../../stolen".into();
        assert_eq!(index.resolve(&refit, &tags), None);
    }

    #[test]
    fn trial_folders_match_by_their_meta_and_the_best_fold_stands_for_them() {
        let root = tempfile::tempdir().unwrap();
        let layout = OutputLayout::new(root.path());
        let tags = TagRegistry::defaults();
        let study = "a".repeat(64);
        let trial = "b".repeat(64);
        let model_dir = root.path().join("outputs/hpo/local/distilbert");
        // A folder named for the hashes whose meta says it is another trial does not count;
        // a legacy `trial_3` folder whose meta names them does.
        let misnamed = model_dir.join("study-aaaaaaaa/trial-bbbbbbbb");
        make_checkpoint(&misnamed.join("checkpoint"), "model.safetensors");
        std::fs::write(
            misnamed.join("trial_meta.json"),
            format!(
                r#"{{"study_key_hash": "{study}", "trial_key_hash": "{}"}}"#,
                "c".repeat(64)
            ),
        )
        .unwrap();
        let legacy = model_dir.join("hpo_distilbert/trial_3");
        std::fs::create_dir_all(&legacy).unwrap();
        std::fs::write(
            legacy.join("trial_meta.json"),
            format!(
                r#"{{"study_key_hash": "{study}", "trial_key_hash": "{trial}", "trial_number": 3}}"#
            ),
        )
        .unwrap();
        // Folds: fold1 scores best on macro-f1; fold2 has only other metrics, its first one
        // (in file order) lower; fold0 has no checkpoint.
        for (fold, metrics, weights) in [
            ("fold0", r#"{"macro-f1": 0.99}"#, false),
            ("fold1", r#"{"loss": 9.0, "macro-f1": 0.8}"#, true),
            ("fold_2", r#"{"zeta": 0.5, "alpha": 0.95}"#, true),
        ] {
            let dir = legacy.join("cv").join(fold);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("metrics.json"), metrics).unwrap();
            if weights {
                make_checkpoint(&dir.join("checkpoint"), "model.safetensors");
            }
        }
        make_checkpoint(&legacy.join("checkpoint"), "model.safetensors");
        let trial_run = run(
            &[
                ("code.model", "distilbert"),
                ("code.study_key_hash", study.as_str()),
                ("code.trial_key_hash", trial.as_str()),
            ],
            "",
        );
        // The best fold (fold0) has no checkpoint: the folds in order, fold1 first.
        let hit = resolve_local(&trial_run, &tags, &layout, &Environment::Local).unwrap();
        assert_eq!(hit.path, legacy.join("cv/fold1/checkpoint"));
        std::fs::write(legacy.join("cv/fold0/metrics.json"), r#"{"macro-f1": 0.1}"#).unwrap();
        std::fs::write(legacy.join("cv/fold1/metrics.json"), r#"{"macro-f1": 0.4}"#).unwrap();
        let hit = resolve_local(&trial_run, &tags, &layout, &Environment::Local).unwrap();
        assert_eq!(hit.path, legacy.join("cv/fold_2/checkpoint"));
    }
}
