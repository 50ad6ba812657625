//! The output layout `{root}/outputs/{process}/{environment}/{model}/…` and the files inside a
//! study folder.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::error::VariantsError;
use crate::experiment::backbone_short_name;

/// The stage that produced an output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    /// Hyperparameter search: one folder per study variant.
    Hpo,
    /// Training the chosen configuration on all data.
    FinalTraining,
    /// Latency measurements of champions.
    Benchmarking,
}

impl Process {
    /// Every process, in pipeline order.
    pub const ALL: [Process; 3] = [Process::Hpo, Process::FinalTraining, Process::Benchmarking];

    /// The folder name.
    pub fn as_str(self) -> &'static str {
        match self {
            Process::Hpo => "hpo",
            Process::FinalTraining => "final_training",
            Process::Benchmarking => "benchmarking",
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Process {
    type Err = VariantsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Process::ALL
            .into_iter()
            .find(|process| process.as_str() == text)
            .ok_or_else(|| VariantsError::InvalidName {
                what: "process".into(),
                value: text.to_string(),
                reason: "valid values are hpo, final_training, benchmarking".into(),
            })
    }
}

/// Where podium's outputs live under a project root.
///
/// ```
/// use podium_variants::{Environment, OutputLayout, Process};
/// let layout = OutputLayout::new("/project");
/// let dir = layout.process_dir(Process::Hpo, &Environment::Local, "distilbert-base-uncased")?;
/// assert_eq!(dir, std::path::Path::new("/project/outputs/hpo/local/distilbert"));
/// # Ok::<(), podium_variants::VariantsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLayout {
    root: PathBuf,
    outputs: PathBuf,
}

impl OutputLayout {
    /// The layout under a project root (`--root`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let outputs = root.join("outputs");
        Self { root, outputs }
    }

    /// The layout under a project root whose outputs folder is elsewhere (`paths.yaml`'s
    /// `base.outputs` or its per-platform override).
    pub fn with_outputs_dir(root: impl Into<PathBuf>, outputs: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            outputs: outputs.into(),
        }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `{root}/outputs`, unless the layout was made with another outputs folder.
    pub fn outputs_dir(&self) -> PathBuf {
        self.outputs.clone()
    }

    /// `{root}/outputs/{process}/{environment}/{model}`, model being the short backbone name.
    pub fn process_dir(
        &self,
        process: Process,
        environment: &Environment,
        backbone: &str,
    ) -> Result<PathBuf, VariantsError> {
        let model = model_folder(backbone)?;
        Ok(self
            .outputs_dir()
            .join(process.as_str())
            .join(environment.as_str())
            .join(model))
    }

    /// `{root}/outputs/cache`: caches shared by every process.
    pub fn cache_dir(&self) -> PathBuf {
        self.outputs_dir().join("cache")
    }

    /// `{root}/outputs/cache/final_training_index.json`.
    pub fn final_training_index(&self) -> PathBuf {
        self.cache_dir().join("final_training_index.json")
    }

    /// `{root}/outputs/cache/checkpoints/{run_id}`: checkpoints downloaded from the artifact store.
    pub fn checkpoint_cache_dir(&self, run_id: &str) -> Result<PathBuf, VariantsError> {
        check_component("run id", run_id)?;
        Ok(self.cache_dir().join("checkpoints").join(run_id))
    }

    /// `{root}/outputs/benchmarking/{environment}/cache`: the benchmark result cache.
    pub fn benchmark_cache_dir(&self, environment: &Environment) -> PathBuf {
        self.outputs_dir()
            .join(Process::Benchmarking.as_str())
            .join(environment.as_str())
            .join("cache")
    }
}

/// The `{model}` folder of a backbone: its short name, checked to be one folder.
pub fn model_folder(backbone: &str) -> Result<&str, VariantsError> {
    let model = backbone_short_name(backbone.trim());
    check_component("backbone", model)?;
    Ok(model)
}

/// Rejects names that would not stay one folder below their parent.
pub(crate) fn check_component(what: &str, value: &str) -> Result<(), VariantsError> {
    let reason = if value.is_empty() {
        Some("must not be empty")
    } else if value == "." || value == ".." {
        Some("must not be `.` or `..`")
    } else if value.contains(['/', '\\', '\0']) {
        Some("must not contain `/`, `\\` or NUL")
    } else if value.trim() != value {
        Some("must not start or end with whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(VariantsError::InvalidName {
            what: what.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        }),
        None => Ok(()),
    }
}

/// One HPO study folder and the files podium and the Python pipeline keep in it.
///
/// ```
/// use podium_variants::StudyDir;
/// let study = StudyDir::new("outputs/hpo/local/distilbert/hpo_distilbert_v2");
/// assert!(study.trial_metrics(3).ends_with("trial_3/metrics.json"));
/// assert!(study.refit_checkpoint().ends_with("refit/checkpoint"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct StudyDir {
    path: PathBuf,
}

impl StudyDir {
    /// A study folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `study.db`: the Optuna RDB (SQLite) storage of the study.
    pub fn study_db(&self) -> PathBuf {
        self.path.join("study.db")
    }

    /// `trial_{number}`.
    pub fn trial_dir(&self, number: u64) -> PathBuf {
        self.path.join(format!("trial_{number}"))
    }

    /// `trial_{number}/metrics.json`.
    pub fn trial_metrics(&self, number: u64) -> PathBuf {
        self.trial_dir(number).join("metrics.json")
    }

    /// `trial_{number}/checkpoint`.
    pub fn trial_checkpoint(&self, number: u64) -> PathBuf {
        self.trial_dir(number).join("checkpoint")
    }

    /// `refit/checkpoint`: the champion configuration retrained on all data.
    pub fn refit_checkpoint(&self) -> PathBuf {
        self.path.join("refit").join("checkpoint")
    }

    /// Every trial folder of the study with its trial number, by number: the plans' legacy
    /// `trial_{number}` folders and the pipeline's `trial-{trial_key_hash[:8]}` folders, whose
    /// number comes from their `trial_meta.json` (a `trial-…` folder without a readable one is
    /// left out: nothing says which trial it is).
    pub fn trial_folders(&self) -> Result<Vec<(u64, PathBuf)>, VariantsError> {
        let mut folders: Vec<(u64, PathBuf)> = Vec::new();
        for name in subdirectory_names(&self.path)? {
            let dir = self.path.join(&name);
            if let Some(number) = name.strip_prefix("trial_").and_then(parse_canonical) {
                folders.push((number, dir));
            } else if name.starts_with(crate::hpo::PIPELINE_TRIAL_PREFIX)
                && let Some(meta) = TrialMeta::read(&dir)
                && let Some(number) = meta.trial_number
            {
                folders.push((number, dir));
            }
        }
        folders.sort();
        Ok(folders)
    }

    /// The numbers of the `trial_{number}` folders present, ascending. Only canonical decimal
    /// numbers count (`trial_07` and `trial_x` are not trials); a missing study folder has none.
    pub fn trial_numbers(&self) -> Result<Vec<u64>, VariantsError> {
        let mut numbers: Vec<u64> = subdirectory_names(&self.path)?
            .iter()
            .filter_map(|name| name.strip_prefix("trial_").and_then(parse_canonical))
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }
}

/// `trial_meta.json` of a pipeline trial folder `study-{s8}/trial-{t8}/`: which study and trial
/// (full key hashes), the Optuna trial number and study name, and the trial's MLflow run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct TrialMeta {
    /// The study key hash (64 hex characters).
    #[serde(default)]
    pub study_key_hash: Option<String>,
    /// The trial key hash (64 hex characters).
    #[serde(default)]
    pub trial_key_hash: Option<String>,
    /// The Optuna trial number.
    #[serde(default)]
    pub trial_number: Option<u64>,
    /// What the pipeline records as the study name: the study folder's name.
    #[serde(default)]
    pub study_name: Option<String>,
    /// The trial's MLflow run id.
    #[serde(default)]
    pub run_id: Option<String>,
    /// When the folder was made (as the pipeline writes it).
    #[serde(default)]
    pub created_at: Option<String>,
}

/// The most a `trial_meta.json` may hold: a few hundred bytes in practice.
const TRIAL_META_MAX_BYTES: u64 = 1 << 20;

impl TrialMeta {
    /// The file name inside a trial folder.
    pub const FILE: &'static str = "trial_meta.json";

    /// Reads `trial_dir/trial_meta.json`; `None` when it is missing, not a regular file, too
    /// large or not the expected JSON.
    pub fn read(trial_dir: &Path) -> Option<TrialMeta> {
        let path = trial_dir.join(Self::FILE);
        let text = crate::fs::read_regular_text(&path, TRIAL_META_MAX_BYTES).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Parses a canonical decimal number: ASCII digits only, no sign, no leading zero (except `0`).
pub(crate) fn parse_canonical<T: FromStr>(digits: &str) -> Option<T> {
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if canonical { digits.parse().ok() } else { None }
}

/// Names of the directories directly inside `dir` (none when `dir` does not exist). Names that
/// are not UTF-8 cannot be podium's folders and are skipped.
pub(crate) fn subdirectory_names(dir: &Path) -> Result<Vec<String>, VariantsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(VariantsError::io("list", dir)(err)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(VariantsError::io("list", dir))?;
        // Follow symlinks: a study folder linked in from elsewhere is still a study folder.
        let is_dir = std::fs::metadata(entry.path()).is_ok_and(|meta| meta.is_dir());
        if let (true, Ok(name)) = (is_dir, entry.file_name().into_string()) {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_follow_the_design_layout() {
        let layout = OutputLayout::new("/r");
        let env = Environment::Colab;
        assert_eq!(
            layout
                .process_dir(Process::FinalTraining, &env, "deberta-v3-small")
                .unwrap(),
            Path::new("/r/outputs/final_training/colab/deberta")
        );
        assert_eq!(
            layout.final_training_index(),
            Path::new("/r/outputs/cache/final_training_index.json")
        );
        assert_eq!(
            layout.benchmark_cache_dir(&env),
            Path::new("/r/outputs/benchmarking/colab/cache")
        );
        assert_eq!(
            layout.checkpoint_cache_dir("abc123").unwrap(),
            Path::new("/r/outputs/cache/checkpoints/abc123")
        );
        assert!(layout.checkpoint_cache_dir("../x").is_err());
        assert!(
            layout
                .process_dir(Process::Hpo, &env, "../evil-model")
                .is_err()
        );
        assert!(layout.process_dir(Process::Hpo, &env, "-large").is_err());
    }

    #[test]
    fn process_parses_its_folder_names_only() {
        for process in Process::ALL {
            assert_eq!(process.as_str().parse::<Process>().unwrap(), process);
        }
        let message = "training".parse::<Process>().unwrap_err().to_string();
        assert!(message.contains("final_training"), "{message}");
    }

    #[test]
    fn trial_numbers_are_strict() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "trial_0", "trial_10", "trial_2", "trial_07", "trial_x", "trial_", "trials_3",
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("trial_5"), "a file, not a trial").unwrap();
        let study = StudyDir::new(dir.path());
        assert_eq!(study.trial_numbers().unwrap(), vec![0, 2, 10]);
        assert!(
            StudyDir::new(dir.path().join("missing"))
                .trial_numbers()
                .unwrap()
                .is_empty()
        );
        assert_eq!(study.study_db(), dir.path().join("study.db"));
        assert_eq!(
            study.trial_checkpoint(2),
            dir.path().join("trial_2/checkpoint")
        );
    }
}
