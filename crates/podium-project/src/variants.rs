//! `podium variants … --process final_training`: a backbone's final-training folders under the
//! project root — listed, the next one named, or the next one claimed — as data. (HPO study
//! folders need the experiment's HPO config: [`crate::hpo_studies`].)
//!
//! Needs no experiment: the folders are found from the root, the environment (detected from
//! the options' environment lookups), the backbone and the two fingerprints.

use std::path::PathBuf;

use podium_variants::{Environment, FinalTrainingKey, FinalTrainings, OutputLayout, model_folder};
use serde::Serialize;

pub use podium_variants::{FinalTrainingVariant, Process};

use crate::error::Result;
use crate::project::ProjectOptions;

/// Which final trainings: the backbone and the fingerprints that name its folder.
#[derive(Debug, Clone)]
pub struct FinalTrainingRequest {
    /// The backbone (full Hugging Face name or short name).
    pub backbone: String,
    /// The specification fingerprint (hex).
    pub spec_fp: String,
    /// The execution fingerprint (hex).
    pub exec_fp: String,
}

/// What `podium variants list --process final_training` reports (its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinalTrainingsReport {
    /// Always [`Process::FinalTraining`].
    pub process: Process,
    /// The `{environment}` folder.
    pub environment: Environment,
    /// The model folder (backbone up to the first `-`).
    pub model: String,
    /// The folder the variants live in.
    pub dir: PathBuf,
    /// The variants, by number.
    pub variants: Vec<FinalTrainingVariant>,
}

/// What `podium variants next --process final_training` reports (its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NextFinalTraining {
    /// Always [`Process::FinalTraining`].
    pub process: Process,
    /// The `{environment}` folder.
    pub environment: Environment,
    /// The model folder.
    pub model: String,
    /// The variant number.
    pub variant: u32,
    /// Its folder name.
    pub name: String,
    /// Its folder.
    pub path: PathBuf,
    /// Whether the folder was claimed (created, with its index entry) by this call.
    pub allocated: bool,
}

impl ProjectOptions {
    /// The existing final-training variants of `request`.
    pub fn final_trainings(&self, request: &FinalTrainingRequest) -> Result<FinalTrainingsReport> {
        let (environment, model, trainings) = self.locate_final_trainings(request)?;
        Ok(FinalTrainingsReport {
            process: Process::FinalTraining,
            environment,
            model,
            dir: trainings.dir().to_path_buf(),
            variants: trainings.list()?,
        })
    }

    /// The variant a new final training of `request` would get; with `allocate`, claimed by
    /// creating its folder and its index entry, so that concurrent callers never get the same
    /// one.
    pub fn next_final_training(
        &self,
        request: &FinalTrainingRequest,
        allocate: bool,
    ) -> Result<NextFinalTraining> {
        let (environment, model, trainings) = self.locate_final_trainings(request)?;
        let found = if allocate {
            trainings.allocate()?
        } else {
            trainings.next()?
        };
        if allocate {
            tracing::info!("allocated {}", found.path.display());
        }
        Ok(NextFinalTraining {
            process: Process::FinalTraining,
            environment,
            model,
            variant: found.variant,
            name: found.name,
            path: found.path,
            allocated: allocate,
        })
    }

    fn locate_final_trainings(
        &self,
        request: &FinalTrainingRequest,
    ) -> Result<(Environment, String, FinalTrainings)> {
        let environment = self.environment()?;
        let model = model_folder(&request.backbone)?.to_string();
        let layout = OutputLayout::new(&self.root);
        let key = FinalTrainingKey::new(&request.spec_fp, &request.exec_fp)?;
        let trainings = FinalTrainings::locate(&layout, &environment, &request.backbone, key)?;
        tracing::info!(
            "final trainings in {} (index {})",
            trainings.dir().display(),
            trainings.index_path().display()
        );
        Ok((environment, model, trainings))
    }
}
