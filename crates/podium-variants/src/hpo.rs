//! HPO study names and study folders.
//!
//! The pipeline names its Optuna studies as its `create_study_name` does
//! ([`StudyNaming::study_name`]: the HPO config's `checkpoint.study_name`, else its top-level
//! `study_name`, with `{backbone}` replaced by the backbone as written) and keeps each study in a
//! `study-{study_key_hash[:8]}` folder ([`pipeline_studies`]). The plans' legacy layout, still
//! readable, has variant folders `{base}` (variant 1) and `{base}_v{N}`, `{base}` from the same
//! template with the short backbone name. Scanning is strict: only an exact `{base}` or
//! `{base}_v<digits>` counts, so `hpo_x_v2_v3` (a variant of `hpo_x_v2`) and `hpo_x_vX` are not
//! variants of `hpo_x`.

use std::path::{Path, PathBuf};

use podium_run_mode::{Decision, Existing, RunMode, decide};
use serde::Serialize;

use crate::environment::Environment;
use crate::error::VariantsError;
use crate::experiment::backbone_short_name;
use crate::layout::{
    OutputLayout, Process, StudyDir, check_component, parse_canonical, subdirectory_names,
};

/// The placeholder a study-name template substitutes with the short backbone name.
pub const BACKBONE_PLACEHOLDER: &str = "{backbone}";

/// The template used when the HPO config names no study.
pub const DEFAULT_STUDY_TEMPLATE: &str = "hpo_{backbone}";

/// The HPO config keys holding the study-name template, in the order the pipeline looks them
/// up (`checkpoint_config.get("study_name") or hpo_config.get("study_name")`).
pub const STUDY_NAME_KEYS: [&str; 2] = ["checkpoint.study_name", "study_name"];

/// What the pipeline appends to `hpo_{backbone}` when the HPO config names no study and
/// checkpointing is off: the sweep's run id, a new study per sweep.
pub const RUN_ID_PLACEHOLDER: &str = "{run_id}";

/// How an HPO config names its studies.
///
/// ```
/// use podium_variants::StudyNaming;
/// let naming = StudyNaming::default();
/// assert_eq!(naming.base_name("distilbert-base-uncased")?, "hpo_distilbert");
/// let smoke = StudyNaming::from_template("hpo_{backbone}_smoke")?;
/// assert_eq!(smoke.base_name("deberta-v3-small")?, "hpo_deberta_smoke");
/// // The pipeline's Optuna study name keeps the backbone as written.
/// assert_eq!(smoke.study_name("deberta-v3-small"), "hpo_deberta-v3-small_smoke");
/// # Ok::<(), podium_variants::VariantsError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudyNaming {
    template: String,
    /// No template and checkpointing off: the pipeline names each sweep's study
    /// `hpo_{backbone}_{run_id}`.
    per_run: bool,
}

impl Default for StudyNaming {
    fn default() -> Self {
        Self {
            template: DEFAULT_STUDY_TEMPLATE.to_string(),
            per_run: false,
        }
    }
}

impl StudyNaming {
    /// A template; `{backbone}` is the only placeholder and the result must be one folder name.
    pub fn from_template(template: &str) -> Result<Self, VariantsError> {
        check_template(template).map_err(|reason| VariantsError::InvalidName {
            what: "study name template".into(),
            value: template.to_string(),
            reason,
        })?;
        Ok(Self {
            template: template.to_string(),
            per_run: false,
        })
    }

    /// Reads the template from an HPO config file: `checkpoint.study_name`, else the top-level
    /// `study_name`, else the default `hpo_{backbone}` (also for an explicit `null` or an empty
    /// string, as Python's `or` reads them).
    pub fn from_hpo_config(path: &Path) -> Result<Self, VariantsError> {
        let doc = crate::experiment::read_yaml(path)?;
        Self::from_hpo_config_value(&doc, path)
    }

    /// Like [`StudyNaming::from_hpo_config`] for an already-parsed document; `path` names it in
    /// errors.
    pub fn from_hpo_config_value(
        doc: &serde_yaml::Value,
        path: &Path,
    ) -> Result<Self, VariantsError> {
        for key in STUDY_NAME_KEYS {
            let value = key.split('.').try_fold(doc, |node, part| node.get(part));
            match value {
                None | Some(serde_yaml::Value::Null) => continue,
                Some(serde_yaml::Value::String(template)) if template.is_empty() => continue,
                Some(serde_yaml::Value::String(template)) => {
                    return check_template(template)
                        .map(|()| Self {
                            template: template.clone(),
                            per_run: false,
                        })
                        .map_err(|reason| VariantsError::Config {
                            file: path.to_path_buf(),
                            key: key.to_string(),
                            message: format!("study name template {template:?} {reason}"),
                        });
                }
                Some(other) => {
                    return Err(VariantsError::Config {
                        file: path.to_path_buf(),
                        key: key.to_string(),
                        message: format!("expected a string or null, found {other:?}"),
                    });
                }
            }
        }
        // No template: `hpo_{backbone}` while checkpointing is on (so a study can resume),
        // else a name per sweep.
        let checkpointing = doc
            .get("checkpoint")
            .and_then(|checkpoint| checkpoint.get("enabled"))
            .is_some_and(yaml_truthy);
        Ok(Self {
            per_run: !checkpointing,
            ..Self::default()
        })
    }

    /// The template.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The Optuna study name the pipeline gives a sweep of `backbone` (as written in the search
    /// space, not shortened): the template with `{backbone}` replaced; with no template and
    /// checkpointing off, `hpo_{backbone}_{run_id}`, where the sweep's MLflow run id takes the
    /// place of [`RUN_ID_PLACEHOLDER`].
    pub fn study_name(&self, backbone: &str) -> String {
        let name = self.template.replace(BACKBONE_PLACEHOLDER, backbone);
        if self.per_run {
            format!("{name}_{RUN_ID_PLACEHOLDER}")
        } else {
            name
        }
    }

    /// The base study name of a backbone (full or short name).
    pub fn base_name(&self, backbone: &str) -> Result<String, VariantsError> {
        let short = backbone_short_name(backbone.trim());
        check_component("backbone", short)?;
        let base = self.template.replace(BACKBONE_PLACEHOLDER, short);
        check_component("study name", &base)?;
        Ok(base)
    }
}

/// Python's truthiness of a YAML scalar the pipeline tests with `if value:`.
fn yaml_truthy(value: &serde_yaml::Value) -> bool {
    match value {
        serde_yaml::Value::Null => false,
        serde_yaml::Value::Bool(flag) => *flag,
        serde_yaml::Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        serde_yaml::Value::String(text) => !text.is_empty(),
        serde_yaml::Value::Sequence(items) => !items.is_empty(),
        serde_yaml::Value::Mapping(entries) => !entries.is_empty(),
        serde_yaml::Value::Tagged(tagged) => yaml_truthy(&tagged.value),
    }
}

fn check_template(template: &str) -> Result<(), String> {
    let rest = template.replace(BACKBONE_PLACEHOLDER, "");
    if rest.contains(['{', '}']) {
        return Err(format!(
            "may use only the {BACKBONE_PLACEHOLDER} placeholder"
        ));
    }
    // The substituted name must be a folder; checking with a stand-in backbone catches `/`, `..`.
    check_component(
        "study name",
        &template.replace(BACKBONE_PLACEHOLDER, "backbone"),
    )
    .map_err(|err| match err {
        VariantsError::InvalidName { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// The folder name of a variant: `{base}` for 1, `{base}_v{N}` otherwise.
pub fn variant_name(base: &str, variant: u32) -> String {
    if variant == 1 {
        base.to_string()
    } else {
        format!("{base}_v{variant}")
    }
}

/// The variant a folder name is, if it is one of `base`: exact `{base}` → 1, `{base}_v{N}` → N
/// for a canonical decimal N ≥ 1; anything else → `None`.
///
/// ```
/// use podium_variants::parse_variant;
/// assert_eq!(parse_variant("hpo_x", "hpo_x"), Some(1));
/// assert_eq!(parse_variant("hpo_x", "hpo_x_v3"), Some(3));
/// assert_eq!(parse_variant("hpo_x", "hpo_x_v2_v3"), None);
/// assert_eq!(parse_variant("hpo_x", "hpo_x_vX"), None);
/// ```
pub fn parse_variant(base: &str, folder: &str) -> Option<u32> {
    if folder == base {
        return Some(1);
    }
    let digits = folder.strip_prefix(base)?.strip_prefix("_v")?;
    parse_canonical::<u32>(digits).filter(|&variant| variant >= 1)
}

/// The next variant number after `existing`: max + 1, or 1 when there is none.
pub fn next_variant(existing: impl IntoIterator<Item = u32>) -> Option<u32> {
    match existing.into_iter().max() {
        None => Some(1),
        Some(max) => max.checked_add(1),
    }
}

/// The prefix of the pipeline's study folders.
pub const PIPELINE_STUDY_PREFIX: &str = "study-";

/// The pipeline's study folder of a study key hash: `study-{study_key_hash[:8]}` (the whole
/// hash when it is shorter).
///
/// ```
/// assert_eq!(podium_variants::pipeline_study_folder("53a0a82e4bae95"), "study-53a0a82e");
/// ```
pub fn pipeline_study_folder(study_key_hash: &str) -> String {
    let s8 = study_key_hash.get(..8).unwrap_or(study_key_hash);
    format!("{PIPELINE_STUDY_PREFIX}{s8}")
}

/// The prefix of the pipeline's trial folders (inside a study folder).
pub const PIPELINE_TRIAL_PREFIX: &str = "trial-";

/// The pipeline's trial folder of a trial key hash: `trial-{trial_key_hash[:8]}` (the whole
/// hash when it is shorter).
///
/// ```
/// assert_eq!(podium_variants::pipeline_trial_folder("0123456789abcdef"), "trial-01234567");
/// ```
pub fn pipeline_trial_folder(trial_key_hash: &str) -> String {
    let t8 = trial_key_hash.get(..8).unwrap_or(trial_key_hash);
    format!("{PIPELINE_TRIAL_PREFIX}{t8}")
}

/// One of the pipeline's study folders, `study-{study_key_hash[:8]}/` (it keeps `study.db` and
/// one `trial-{trial_key_hash[:8]}/` folder per trial, each with a `trial_meta.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineStudy {
    /// The folder name (`study-…`).
    pub name: String,
    /// The folder.
    pub path: PathBuf,
    /// The `study_name` the trials' `trial_meta.json` record (the smallest when they disagree),
    /// if any does. The pipeline writes the study folder's name there, not the Optuna study
    /// name, which only the folder's `study.db` holds.
    pub study_name: Option<String>,
    /// The full study key hash, from the trials' `trial_meta.json`.
    pub study_key_hash: Option<String>,
    /// The `trial-…` folders.
    pub trials: usize,
    /// Whether the folder holds the study's Optuna storage (`study.db`).
    pub has_study_db: bool,
}

/// The pipeline's `study-*` folders directly inside `model_dir` (`outputs/hpo/{env}/{model}`),
/// by name; none when the folder does not exist.
pub fn pipeline_studies(model_dir: &Path) -> Result<Vec<PipelineStudy>, VariantsError> {
    let mut studies = Vec::new();
    for name in subdirectory_names(model_dir)? {
        if !name.starts_with(PIPELINE_STUDY_PREFIX) {
            continue;
        }
        let path = model_dir.join(&name);
        let trial_dirs: Vec<String> = subdirectory_names(&path)?
            .into_iter()
            .filter(|trial| trial.starts_with(PIPELINE_TRIAL_PREFIX))
            .collect();
        let metas: Vec<crate::layout::TrialMeta> = trial_dirs
            .iter()
            .filter_map(|trial| crate::layout::TrialMeta::read(&path.join(trial)))
            .collect();
        studies.push(PipelineStudy {
            study_name: metas.iter().filter_map(|m| m.study_name.clone()).min(),
            study_key_hash: metas.iter().filter_map(|m| m.study_key_hash.clone()).min(),
            trials: trial_dirs.len(),
            has_study_db: StudyDir::new(&path).study_db().is_file(),
            name,
            path,
        });
    }
    studies.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(studies)
}

/// One study folder variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HpoVariant {
    /// The variant number (1 for the bare `{base}` folder).
    pub variant: u32,
    /// The folder name.
    pub name: String,
    /// The folder.
    pub path: PathBuf,
}

impl HpoVariant {
    /// The study folder, with its file helpers.
    pub fn study(&self) -> StudyDir {
        StudyDir::new(&self.path)
    }
}

/// The study-folder variants of one base name inside one `{root}/outputs/hpo/{env}/{model}`.
///
/// ```
/// use podium_variants::{Environment, HpoStudies, OutputLayout, StudyNaming};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = tempfile::tempdir()?;
/// let studies = HpoStudies::locate(
///     &OutputLayout::new(root.path()),
///     &Environment::Local,
///     "distilbert-base-uncased",
///     &StudyNaming::default(),
/// )?;
/// assert_eq!(studies.next()?.name, "hpo_distilbert");
/// let first = studies.allocate()?; // creates the folder
/// assert!(first.path.is_dir());
/// assert_eq!(studies.next()?.name, "hpo_distilbert_v2");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpoStudies {
    dir: PathBuf,
    base: String,
}

impl HpoStudies {
    /// The variants of `base` inside `dir`.
    pub fn new(dir: impl Into<PathBuf>, base: &str) -> Result<Self, VariantsError> {
        check_component("study name", base)?;
        Ok(Self {
            dir: dir.into(),
            base: base.to_string(),
        })
    }

    /// The study variants of a backbone under a layout and environment.
    pub fn locate(
        layout: &OutputLayout,
        environment: &Environment,
        backbone: &str,
        naming: &StudyNaming,
    ) -> Result<Self, VariantsError> {
        let dir = layout.process_dir(Process::Hpo, environment, backbone)?;
        Self::new(dir, &naming.base_name(backbone)?)
    }

    /// The folder holding the study folders.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The base study name.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The folder a variant has (whether or not it exists).
    pub fn variant(&self, variant: u32) -> HpoVariant {
        let name = variant_name(&self.base, variant);
        HpoVariant {
            variant,
            path: self.dir.join(&name),
            name,
        }
    }

    /// The existing variants, by variant number then name (`{base}` and `{base}_v1` are both
    /// variant 1).
    pub fn list(&self) -> Result<Vec<HpoVariant>, VariantsError> {
        let mut found: Vec<HpoVariant> = subdirectory_names(&self.dir)?
            .into_iter()
            .filter_map(|name| {
                parse_variant(&self.base, &name).map(|variant| HpoVariant {
                    variant,
                    path: self.dir.join(&name),
                    name,
                })
            })
            .collect();
        found.sort_by(|a, b| (a.variant, &a.name).cmp(&(b.variant, &b.name)));
        Ok(found)
    }

    /// The highest existing variant (for variant 1, the bare `{base}` folder wins over
    /// `{base}_v1`), or `None` when there is none.
    pub fn latest(&self) -> Result<Option<HpoVariant>, VariantsError> {
        Ok(self
            .list()?
            .into_iter()
            .max_by(|a, b| a.variant.cmp(&b.variant).then_with(|| b.name.cmp(&a.name))))
    }

    /// Applies the run-mode decision ([`podium_run_mode::decide`]) to the latest study: Reuse
    /// and Resume return it, CreateNew allocates the next variant. `state` tells whether a study folder holds a
    /// finished study (the caller knows how: Optuna's `study.db`, MLflow, …).
    pub fn choose(
        &self,
        mode: RunMode,
        state: impl FnOnce(&HpoVariant) -> Result<Existing, VariantsError>,
    ) -> Result<(Decision, HpoVariant), VariantsError> {
        let latest = self.latest()?;
        let existing = match &latest {
            Some(study) => state(study)?,
            None => Existing::Nothing,
        };
        match (decide(mode, existing), latest) {
            (decision @ (Decision::Reuse | Decision::Resume), Some(study)) => Ok((decision, study)),
            (_, _) => Ok((Decision::CreateNew, self.allocate()?)),
        }
    }

    /// The variant a new study would get now (nothing is created; see [`HpoStudies::allocate`]).
    pub fn next(&self) -> Result<HpoVariant, VariantsError> {
        let existing = self.list()?.into_iter().map(|found| found.variant);
        next_variant(existing)
            .map(|variant| self.variant(variant))
            .ok_or_else(|| VariantsError::VariantsExhausted {
                dir: self.dir.clone(),
            })
    }

    /// Claims the next variant by creating its folder. Directory creation is atomic, so
    /// concurrent allocators (threads or processes) never get the same variant: the loser of a
    /// race sees `AlreadyExists` and moves on to the following number.
    pub fn allocate(&self) -> Result<HpoVariant, VariantsError> {
        std::fs::create_dir_all(&self.dir).map_err(VariantsError::io("create", &self.dir))?;
        let mut candidate = self.next()?;
        loop {
            match std::fs::create_dir(&candidate.path) {
                Ok(()) => {
                    tracing::debug!("allocated study folder {}", candidate.path.display());
                    return Ok(candidate);
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    let following = candidate.variant.checked_add(1).ok_or_else(|| {
                        VariantsError::VariantsExhausted {
                            dir: self.dir.clone(),
                        }
                    })?;
                    candidate = self.variant(following);
                }
                Err(err) => return Err(VariantsError::io("create", &candidate.path)(err)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn templates_come_from_checkpoint_then_hpo_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hpo.yaml");
        let cases = [
            (
                "checkpoint:\n  study_name: a_{backbone}\nstudy_name: b_{backbone}\n",
                "a_distilbert",
            ),
            (
                "checkpoint:\n  study_name: null\nstudy_name: b_{backbone}\n",
                "b_distilbert",
            ),
            (
                "checkpoint:\n  study_name: ''\nstudy_name: b_{backbone}\n",
                "b_distilbert",
            ),
            // A nested `hpo:` section is no place the pipeline reads.
            ("hpo:\n  study_name: b_{backbone}\n", "hpo_distilbert"),
            ("checkpoint:\n  save_only_best: true\n", "hpo_distilbert"),
            ("run:\n  mode: force_new\n", "hpo_distilbert"),
            ("checkpoint:\n  study_name: fixed\n", "fixed"),
        ];
        for (yaml, expected) in cases {
            std::fs::write(&path, yaml).unwrap();
            let naming = StudyNaming::from_hpo_config(&path).unwrap();
            assert_eq!(
                naming.base_name("distilbert-base-uncased").unwrap(),
                expected,
                "{yaml}"
            );
        }
    }

    #[test]
    fn study_names_are_the_pipelines_create_study_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hpo.yaml");
        let cases = [
            (
                "checkpoint:\n  enabled: true\n  study_name: hpo_{backbone}_test_v3\n",
                "hpo_deberta-v3-small_test_v3",
            ),
            ("checkpoint:\n  enabled: true\n", "hpo_deberta-v3-small"),
            // No name and no checkpointing: a new study per sweep, named by its run id.
            (
                "checkpoint:\n  enabled: false\n",
                "hpo_deberta-v3-small_{run_id}",
            ),
            ("objective: {metric: f1}\n", "hpo_deberta-v3-small_{run_id}"),
            ("study_name: fixed\n", "fixed"),
        ];
        for (yaml, expected) in cases {
            std::fs::write(&path, yaml).unwrap();
            let naming = StudyNaming::from_hpo_config(&path).unwrap();
            assert_eq!(naming.study_name("deberta-v3-small"), expected, "{yaml}");
        }
    }

    #[test]
    fn bad_templates_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prod.yaml");
        for (yaml, key) in [
            (
                "checkpoint:\n  study_name: \"{model}_x\"\n",
                "checkpoint.study_name",
            ),
            ("study_name: a/{backbone}\n", "study_name"),
            ("checkpoint:\n  study_name: [1]\n", "checkpoint.study_name"),
        ] {
            std::fs::write(&path, yaml).unwrap();
            let message = StudyNaming::from_hpo_config(&path).unwrap_err().to_string();
            assert!(
                message.contains("prod.yaml") && message.contains(key),
                "{message}"
            );
        }
        assert!(StudyNaming::from_template("..").is_err());
        assert!(StudyNaming::from_template("").is_err());
    }

    #[test]
    fn repo_hpo_configs_give_their_documented_bases() {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/hpo");
        let smoke = StudyNaming::from_hpo_config(&config.join("smoke.yaml")).unwrap();
        assert_eq!(
            smoke.base_name("distilroberta-base").unwrap(),
            "hpo_distilroberta_smoke"
        );
        let prod = StudyNaming::from_hpo_config(&config.join("prod.yaml")).unwrap();
        assert_eq!(
            prod.base_name("distilroberta-base").unwrap(),
            "hpo_distilroberta"
        );
    }

    #[test]
    fn scanning_is_strict() {
        let root = tempfile::tempdir().unwrap();
        let studies = HpoStudies::new(root.path(), "hpo_x").unwrap();
        assert!(
            studies.list().unwrap().is_empty(),
            "a missing folder has no variants"
        );
        for name in [
            "hpo_x",
            "hpo_x_v1",
            "hpo_x_v3",
            "hpo_x_v2_v3",
            "hpo_x_vX",
            "hpo_x_v",
            "hpo_x_v03",
            "hpo_x_v0",
            "hpo_xy",
            "hpo_x_v99999999999",
            "other_v7",
        ] {
            std::fs::create_dir_all(root.path().join(name)).unwrap();
        }
        std::fs::write(root.path().join("hpo_x_v9"), "a file is not a study").unwrap();
        let found: Vec<(u32, String)> = studies
            .list()
            .unwrap()
            .into_iter()
            .map(|v| (v.variant, v.name))
            .collect();
        assert_eq!(
            found,
            vec![
                (1, "hpo_x".into()),
                (1, "hpo_x_v1".into()),
                (3, "hpo_x_v3".into())
            ]
        );
        assert_eq!(studies.next().unwrap().name, "hpo_x_v4");
    }

    #[test]
    fn allocation_skips_taken_numbers() {
        let root = tempfile::tempdir().unwrap();
        let studies = HpoStudies::new(root.path().join("nested/dir"), "hpo_x").unwrap();
        let names: Vec<String> = (0..3).map(|_| studies.allocate().unwrap().name).collect();
        assert_eq!(names, ["hpo_x", "hpo_x_v2", "hpo_x_v3"]);
        // A plain file squatting on the next name is skipped, not reported as a study.
        std::fs::write(studies.dir().join("hpo_x_v4"), "").unwrap();
        assert_eq!(studies.allocate().unwrap().name, "hpo_x_v5");
    }

    #[test]
    fn choose_applies_the_decision_table_to_the_latest_study() {
        let root = tempfile::tempdir().unwrap();
        let studies = HpoStudies::new(root.path(), "hpo_x").unwrap();
        let complete = |_: &HpoVariant| Ok(Existing::Complete);
        let incomplete = |_: &HpoVariant| Ok(Existing::Incomplete);

        let (decision, first) = studies.choose(RunMode::ReuseIfExists, complete).unwrap();
        assert_eq!(
            (decision, first.name.as_str()),
            (Decision::CreateNew, "hpo_x")
        );
        assert!(first.path.is_dir());
        let (decision, same) = studies.choose(RunMode::ReuseIfExists, complete).unwrap();
        assert_eq!((decision, same.name.as_str()), (Decision::Reuse, "hpo_x"));
        let (decision, same) = studies
            .choose(RunMode::ResumeIfIncomplete, incomplete)
            .unwrap();
        assert_eq!((decision, same.name.as_str()), (Decision::Resume, "hpo_x"));
        let (decision, second) = studies
            .choose(RunMode::ResumeIfIncomplete, complete)
            .unwrap();
        assert_eq!(
            (decision, second.name.as_str()),
            (Decision::CreateNew, "hpo_x_v2")
        );
        let (decision, third) = studies.choose(RunMode::ForceNew, incomplete).unwrap();
        assert_eq!(
            (decision, third.name.as_str()),
            (Decision::CreateNew, "hpo_x_v3")
        );

        std::fs::create_dir(root.path().join("hpo_x_v7")).unwrap();
        let mut asked = None;
        studies
            .choose(RunMode::ReuseIfExists, |study| {
                asked = Some(study.name.clone());
                Ok(Existing::Incomplete)
            })
            .unwrap();
        assert_eq!(
            asked.as_deref(),
            Some("hpo_x_v7"),
            "the latest study is the one examined"
        );
    }

    #[test]
    fn latest_prefers_the_bare_name_for_variant_one() {
        let root = tempfile::tempdir().unwrap();
        let studies = HpoStudies::new(root.path(), "hpo_x").unwrap();
        assert_eq!(studies.latest().unwrap(), None);
        std::fs::create_dir(root.path().join("hpo_x_v1")).unwrap();
        std::fs::create_dir(root.path().join("hpo_x")).unwrap();
        assert_eq!(studies.latest().unwrap().unwrap().name, "hpo_x");
    }

    #[test]
    fn concurrent_threads_get_distinct_variants() {
        const THREADS: u32 = 16;
        let root = tempfile::tempdir().unwrap();
        let studies = HpoStudies::new(root.path(), "hpo_distilbert").unwrap();
        let barrier = std::sync::Barrier::new(THREADS as usize);
        let mut variants: Vec<u32> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        studies.allocate().unwrap().variant
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        variants.sort_unstable();
        assert_eq!(variants, (1..=THREADS).collect::<Vec<_>>());
    }

    proptest! {
        #[test]
        fn names_parse_back_to_their_variant(base in "[a-z][a-z0-9_]{0,12}", variant in 1u32..) {
            prop_assert_eq!(parse_variant(&base, &variant_name(&base, variant)), Some(variant));
        }

        #[test]
        fn only_exact_suffixes_are_variants(base in "[a-z]{1,6}", suffix in "[_v0-9a-z]{1,6}") {
            let folder = format!("{base}{suffix}");
            let expected = suffix
                .strip_prefix("_v")
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0'))
                .and_then(|d| d.parse::<u32>().ok());
            prop_assert_eq!(parse_variant(&base, &folder), expected);
        }

        #[test]
        fn next_is_max_plus_one(existing in proptest::collection::vec(1u32..1000, 0..8)) {
            let expected = existing.iter().max().map_or(1, |max| max + 1);
            prop_assert_eq!(next_variant(existing), Some(expected));
        }
    }
}
