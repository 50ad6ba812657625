//! `podium variants`: a backbone's HPO study folders and final-training folders under the
//! project root — listed, the next one named, or the next one claimed — as data.
//!
//! Needs no experiment: the folders are found from the root, the environment (detected from
//! the options' environment lookups) and the backbone.

use std::path::PathBuf;

use podium_variants::{
    Environment, FinalTrainingKey, FinalTrainings, HpoStudies, OutputLayout, StudyNaming,
    model_folder, pipeline_studies,
};
use serde::Serialize;

pub use podium_variants::{FinalTrainingVariant, HpoVariant, PipelineStudy, Process};

use crate::error::{ProjectError, Result};
use crate::project::ProjectOptions;

/// The processes that have variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VariantProcess {
    /// HPO study folders `{base}`, `{base}_v{N}` (and the pipeline's `study-{s8}` folders).
    Hpo,
    /// Final-training folders `spec-…_exec-…/v{N}`.
    FinalTraining,
}

/// Which variants: process, backbone and what names them.
#[derive(Debug, Clone)]
pub struct VariantsRequest {
    /// The process whose variants to look at.
    pub process: VariantProcess,
    /// The backbone (full Hugging Face name or short name).
    pub backbone: String,
    /// HPO only: the HPO config whose `checkpoint.study_name` / `hpo.study_name` names the
    /// studies (`None`: `hpo_{backbone}`).
    pub hpo_config: Option<PathBuf>,
    /// Final training only: the specification fingerprint (hex).
    pub spec_fp: Option<String>,
    /// Final training only: the execution fingerprint (hex).
    pub exec_fp: Option<String>,
}

/// The variants found, by process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FoundVariants {
    /// HPO study folders.
    Hpo(Vec<HpoVariant>),
    /// Final-training folders.
    FinalTraining(Vec<FinalTrainingVariant>),
}

/// What `podium variants list` reports (its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantsReport {
    /// hpo or final_training.
    pub process: Process,
    /// The `{environment}` folder.
    pub environment: Environment,
    /// The model folder (backbone up to the first `-`).
    pub model: String,
    /// HPO: the study base name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The folder the variants live in.
    pub dir: PathBuf,
    /// The variants, by number.
    pub variants: FoundVariants,
    /// HPO: the pipeline's `study-{s8}` folders.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub studies: Option<Vec<PipelineStudy>>,
}

/// What `podium variants next` reports (its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextVariant {
    /// hpo or final_training.
    pub process: Process,
    /// The `{environment}` folder.
    pub environment: Environment,
    /// The model folder.
    pub model: String,
    /// HPO: the study base name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The variant number.
    pub variant: u32,
    /// Its folder name.
    pub name: String,
    /// Its folder.
    pub path: PathBuf,
    /// Whether the folder was claimed (created) by this call.
    pub allocated: bool,
}

enum Located {
    Hpo(HpoStudies),
    FinalTraining(FinalTrainings),
}

impl ProjectOptions {
    /// The existing variants of `request`'s backbone.
    pub fn list_variants(&self, request: &VariantsRequest) -> Result<VariantsReport> {
        let (environment, model, located) = self.locate_variants(request)?;
        Ok(match located {
            Located::Hpo(studies) => VariantsReport {
                process: Process::Hpo,
                environment,
                model,
                base: Some(studies.base().to_string()),
                dir: studies.dir().to_path_buf(),
                variants: FoundVariants::Hpo(studies.list()?),
                studies: Some(pipeline_studies(studies.dir())?),
            },
            Located::FinalTraining(trainings) => VariantsReport {
                process: Process::FinalTraining,
                environment,
                model,
                base: None,
                dir: trainings.dir().to_path_buf(),
                variants: FoundVariants::FinalTraining(trainings.list()?),
                studies: None,
            },
        })
    }

    /// The variant a new run of `request`'s backbone would get; with `allocate`, claimed by
    /// creating its folder (and, for final training, its index entry), so that concurrent
    /// callers never get the same one.
    pub fn next_variant(&self, request: &VariantsRequest, allocate: bool) -> Result<NextVariant> {
        let (environment, model, located) = self.locate_variants(request)?;
        let (process, base, found) = match &located {
            Located::Hpo(studies) => {
                let found = if allocate {
                    studies.allocate()?
                } else {
                    studies.next()?
                };
                let base = Some(studies.base().to_string());
                (Process::Hpo, base, (found.variant, found.name, found.path))
            }
            Located::FinalTraining(trainings) => {
                let found = if allocate {
                    trainings.allocate()?
                } else {
                    trainings.next()?
                };
                (
                    Process::FinalTraining,
                    None,
                    (found.variant, found.name, found.path),
                )
            }
        };
        let (variant, name, path) = found;
        if allocate {
            tracing::info!("allocated {}", path.display());
        }
        Ok(NextVariant {
            process,
            environment,
            model,
            base,
            variant,
            name,
            path,
            allocated: allocate,
        })
    }

    /// The environment, the model folder and the variants' folder of `request`; refuses the
    /// options of the other process.
    fn locate_variants(&self, request: &VariantsRequest) -> Result<(Environment, String, Located)> {
        let environment = self.environment()?;
        let model = model_folder(&request.backbone)?.to_string();
        let layout = OutputLayout::new(&self.root);
        let located = match request.process {
            VariantProcess::Hpo => {
                if request.spec_fp.is_some() || request.exec_fp.is_some() {
                    return Err(ProjectError::Invalid(
                        "--spec-fp and --exec-fp apply to --process final_training only".into(),
                    ));
                }
                let naming = match &request.hpo_config {
                    Some(path) => StudyNaming::from_hpo_config(path)?,
                    None => StudyNaming::default(),
                };
                let studies =
                    HpoStudies::locate(&layout, &environment, &request.backbone, &naming)?;
                tracing::info!(
                    "HPO studies of {} in {}",
                    studies.base(),
                    studies.dir().display()
                );
                Located::Hpo(studies)
            }
            VariantProcess::FinalTraining => {
                if request.hpo_config.is_some() {
                    return Err(ProjectError::Invalid(
                        "--hpo-config applies to --process hpo only".into(),
                    ));
                }
                let (Some(spec_fp), Some(exec_fp)) = (&request.spec_fp, &request.exec_fp) else {
                    return Err(ProjectError::Invalid(
                        "--process final_training needs --spec-fp and --exec-fp".into(),
                    ));
                };
                let key = FinalTrainingKey::new(spec_fp, exec_fp)?;
                let trainings =
                    FinalTrainings::locate(&layout, &environment, &request.backbone, key)?;
                tracing::info!(
                    "final trainings in {} (index {})",
                    trainings.dir().display(),
                    trainings.index_path().display()
                );
                Located::FinalTraining(trainings)
            }
        };
        Ok((environment, model, located))
    }
}
