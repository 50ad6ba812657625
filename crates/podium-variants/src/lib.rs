//! Output layout, platform detection, variant scanning and allocation, study names.
//!
//! ```
//! use podium_variants::{Environment, HpoStudies, OutputLayout, StudyNaming};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let root = tempfile::tempdir()?;
//! let layout = OutputLayout::new(root.path());
//! // Tests pass the variables in; real callers use `Environment::detect()`.
//! let environment = Environment::detect_with(|_| None)?;
//! assert_eq!(environment, Environment::Local);
//!
//! let naming = StudyNaming::default(); // or StudyNaming::from_hpo_config(path)
//! let studies = HpoStudies::locate(&layout, &environment, "distilbert-base-uncased", &naming)?;
//! let claimed = studies.allocate()?; // race-free: creates the folder atomically
//! assert_eq!(claimed.name, "hpo_distilbert");
//! assert!(claimed.path.ends_with("outputs/hpo/local/distilbert/hpo_distilbert"));
//! assert_eq!(studies.next()?.name, "hpo_distilbert_v2");
//! assert!(claimed.study().study_db().ends_with("hpo_distilbert/study.db"));
//! # Ok(()) }
//! ```
//!
//! The layout is `{root}/outputs/{process}/{environment}/{model}/…`. Everything here
//! that writes to disk does so atomically: variant folders are claimed with a single
//! `create_dir`, files are replaced through [`fs::write_atomic`].

pub mod config_keys;
pub mod environment;
pub mod error;
pub mod experiment;
pub mod final_training;
pub mod fs;
pub mod hpo;
pub mod layout;
pub mod paths_config;

pub use config_keys::KeySchema;
pub use environment::{ENVIRONMENT_OVERRIDE, Environment};
pub use error::VariantsError;
pub use experiment::{
    ExperimentConfig, ExperimentFiles, backbone_short_name, backbones_of_hpo_config,
    read_yaml as read_yaml_config, run_mode_of,
};
pub use final_training::{FinalTrainingKey, FinalTrainingVariant, FinalTrainings, IndexEntry};
pub use hpo::{
    DEFAULT_STUDY_TEMPLATE, HpoStudies, HpoVariant, PIPELINE_STUDY_PREFIX, PIPELINE_TRIAL_PREFIX,
    PipelineStudy, StudyNaming, next_variant, parse_variant, pipeline_studies,
    pipeline_study_folder, pipeline_trial_folder, variant_name,
};
pub use layout::{OutputLayout, Process, StudyDir, TrialMeta, model_folder};
pub use paths_config::{AcquisitionConfig, DEFAULT_SEARCH_ROOTS, PathsConfig};
