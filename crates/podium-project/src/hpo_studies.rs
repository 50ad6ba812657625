//! `podium variants list|next --process hpo`: a backbone's HPO study folders as the experiment
//! names them, and where the pipeline's next sweep of it goes (final-training variants need no
//! experiment and stay with podium-variants).
//!
//! The pipeline keeps each study in a `study-{study_key_hash[:8]}` folder (its `study.db` holds
//! the Optuna studies, its `trial-{t8}` folders the trials) and names the Optuna study from the
//! HPO config ([`StudyNaming::study_name`]); the HPO config is the experiment's of record, read by
//! the same loader as `select` and `config check` ([`ProjectConfigs`]), unless the caller names
//! another. The plans' `{base}`/`{base}_vN` variant folders stay readable as a legacy layout.

use std::path::{Path, PathBuf};

use podium_champion::optuna_study;
use podium_keys::{ProjectConfigs, load_path};
pub use podium_variants::{HpoVariant, PipelineStudy};

use podium_variants::{
    Environment, HpoStudies, OutputLayout, Process, StudyDir, StudyNaming, backbone_short_name,
    backbones_of_hpo_config, pipeline_studies, pipeline_study_folder,
};
use serde::Serialize;

use crate::error::{ProjectError, Result};
use crate::project::{ProjectOptions, check_backbone, load_paths_config};

/// Which layout a backbone's HPO folder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HpoLayout {
    /// The pipeline's `study-{s8}` folders, named by study key hash.
    PipelineStudies,
    /// The plans' `{base}`, `{base}_vN` variant folders (a legacy layout).
    LegacyVariants,
    /// Both kinds of folder.
    Mixed,
    /// Neither yet.
    Empty,
}

impl HpoLayout {
    /// One line for people.
    pub fn describe(self) -> &'static str {
        match self {
            HpoLayout::PipelineStudies => "the pipeline's study folders (study-{s8})",
            HpoLayout::LegacyVariants => "the plans' legacy variant folders ({base}, {base}_vN)",
            HpoLayout::Mixed => {
                "both the pipeline's study folders (study-{s8}) and legacy variant folders ({base}_vN)"
            }
            HpoLayout::Empty => "no study folder yet",
        }
    }
}

/// One of the pipeline's `study-{s8}` folders, with the Optuna studies its `study.db` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StudyFolder {
    /// The folder, its trial count and what its trials' `trial_meta.json` say.
    #[serde(flatten)]
    pub folder: PipelineStudy,
    /// The names of the Optuna studies in its `study.db` (empty without one, or when it cannot
    /// be read: a warning says why).
    pub optuna_studies: Vec<String>,
}

/// A backbone's HPO study folders, as `podium variants list --process hpo --format json`
/// prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HpoStudiesReport {
    /// Always [`Process::Hpo`].
    pub process: Process,
    /// The `{environment}` folder.
    pub environment: Environment,
    /// The `{model}` folder (the backbone's short name).
    pub model: String,
    /// The backbone, as written in the HPO config.
    pub backbone: String,
    /// The HPO config that names the studies and feeds the study key.
    pub hpo_config: PathBuf,
    /// Which layout the folder uses.
    pub layout: HpoLayout,
    /// The Optuna study name the pipeline gives a sweep of this backbone.
    pub study_name: String,
    /// The study key hash of the current configs.
    pub study_key_hash: String,
    /// The pipeline's folder of that study: `study-{study_key_hash[:8]}`.
    pub study_folder: String,
    /// The legacy layout's base folder name (`{base}`, then `{base}_v2`, …).
    pub base: String,
    /// `outputs/hpo/{environment}/{model}`.
    pub dir: PathBuf,
    /// The pipeline's `study-{s8}` folders.
    pub studies: Vec<StudyFolder>,
    /// The legacy `{base}`/`{base}_vN` folders.
    pub variants: Vec<HpoVariant>,
}

/// Where the next HPO study of a backbone goes, as `podium variants next --process hpo
/// --format json` prints it: the folder listing, then the next study. In a folder holding only
/// legacy variants that is the next variant; otherwise the pipeline's study folder of the
/// current configs (which a sweep resumes when it already holds the study).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HpoNextReport {
    /// The folders, the layout, the pipeline's study name and folder.
    #[serde(flatten)]
    pub listing: HpoStudiesReport,
    /// The legacy variant number; `None` for a pipeline study folder.
    pub variant: Option<u32>,
    /// The folder name: `study-{s8}`, or `{base}_vN`.
    pub name: String,
    /// The folder.
    pub path: PathBuf,
    /// Whether the folder exists (before any allocation).
    pub exists: bool,
    /// Whether its `study.db` already holds the study [`HpoStudiesReport::study_name`] names:
    /// the pipeline's next sweep resumes it (its `auto_resume` default).
    pub holds_study: bool,
    /// Whether the folder was claimed: a legacy variant by creating it (concurrent callers get
    /// different ones); a pipeline study folder by creating it when missing (every caller with
    /// the same configs gets the same one, as the pipeline's sweeps do).
    pub allocated: bool,
}

impl ProjectOptions {
    /// The HPO study folders of `backbone` (as written in the HPO config's search space) under
    /// this project's outputs, named as the experiment's HPO config of record names them, or
    /// as `hpo_config` does when given.
    pub fn hpo_studies(
        &self,
        backbone: &str,
        hpo_config: Option<&Path>,
    ) -> Result<HpoStudiesReport> {
        Ok(self.locate_hpo_studies(backbone, hpo_config)?.0)
    }

    /// Where the next HPO study of `backbone` goes (see [`HpoNextReport`]); `allocate` claims
    /// it. Nothing is created without `allocate`.
    pub fn next_hpo_study(
        &self,
        backbone: &str,
        hpo_config: Option<&Path>,
        allocate: bool,
    ) -> Result<HpoNextReport> {
        let (listing, legacy) = self.locate_hpo_studies(backbone, hpo_config)?;
        if listing.layout == HpoLayout::LegacyVariants {
            let found = if allocate {
                legacy.allocate()?
            } else {
                legacy.next()?
            };
            return Ok(HpoNextReport {
                listing,
                variant: Some(found.variant),
                name: found.name,
                // A next variant is a new folder by definition.
                exists: false,
                path: found.path,
                holds_study: false,
                allocated: allocate,
            });
        }
        let path = listing.dir.join(&listing.study_folder);
        let exists = path.is_dir();
        let holds_study = listing
            .studies
            .iter()
            .find(|study| study.folder.name == listing.study_folder)
            .is_some_and(|study| study.optuna_studies.contains(&listing.study_name));
        if allocate {
            std::fs::create_dir_all(&path).map_err(|source| ProjectError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(HpoNextReport {
            variant: None,
            name: listing.study_folder.clone(),
            path,
            exists,
            holds_study,
            allocated: allocate,
            listing,
        })
    }

    fn locate_hpo_studies(
        &self,
        backbone: &str,
        hpo_config: Option<&Path>,
    ) -> Result<(HpoStudiesReport, HpoStudies)> {
        let mut configs = ProjectConfigs::load(&self.config_dir, self.experiment.as_deref())?;
        if let Some(path) = hpo_config {
            configs.hpo = load_path(path)?;
            configs.backbones = backbones_of_hpo_config(path)?;
            configs.files.hpo = path.to_path_buf();
        }
        check_backbone(&configs, backbone)?;
        let keys = configs.study_keys(backbone)?;
        let naming = StudyNaming::from_hpo_config(&configs.files.hpo)?;
        let environment = self.environment()?;
        let layout = match load_paths_config(&configs.files)? {
            Some(paths) => paths.layout(&self.root, &environment),
            None => OutputLayout::new(&self.root),
        };
        let legacy = HpoStudies::locate(&layout, &environment, backbone, &naming)?;
        let studies: Vec<StudyFolder> = pipeline_studies(legacy.dir())?
            .into_iter()
            .map(|folder| StudyFolder {
                optuna_studies: optuna_study_names(&folder.path),
                folder,
            })
            .collect();
        let variants = legacy.list()?;
        let kind = match (studies.is_empty(), variants.is_empty()) {
            (false, true) => HpoLayout::PipelineStudies,
            (true, false) => HpoLayout::LegacyVariants,
            (false, false) => HpoLayout::Mixed,
            (true, true) => HpoLayout::Empty,
        };
        let report = HpoStudiesReport {
            process: Process::Hpo,
            model: backbone_short_name(backbone.trim()).to_string(),
            backbone: backbone.to_string(),
            hpo_config: configs.files.hpo.clone(),
            layout: kind,
            study_name: naming.study_name(backbone),
            study_folder: pipeline_study_folder(&keys.study_key_hash),
            study_key_hash: keys.study_key_hash,
            base: legacy.base().to_string(),
            dir: legacy.dir().to_path_buf(),
            studies,
            variants,
            environment,
        };
        tracing::info!(
            "HPO studies of {backbone} in {}: {}",
            report.dir.display(),
            kind.describe()
        );
        Ok((report, legacy))
    }
}

/// The Optuna study names in a study folder's `study.db` (every study, single- or
/// multi-objective); none without one.
fn optuna_study_names(folder: &Path) -> Vec<String> {
    let path = StudyDir::new(folder).study_db();
    if !path.is_file() {
        return Vec::new();
    }
    match optuna_study::read_studies(&path) {
        Ok((studies, multi_objective)) => studies
            .into_iter()
            .map(|study| study.name)
            .chain(multi_objective)
            .collect(),
        Err(err) => {
            tracing::warn!("cannot read the study names of {}: {err}", path.display());
            Vec::new()
        }
    }
}
