//! One way into a podium project: [`ProjectOptions`] says where it is (config folder,
//! experiment, outputs root, tracking URI, environment), [`Project`] is it loaded — the
//! experiment and the files it names, the tag registry, the selection rules, the output layout
//! and the opened tracking store — and every `podium` command is one call on it returning data
//! (`serde::Serialize`, the same values `--format json` prints), so a Rust service gets what
//! the CLI shows.
//!
//! ```
//! use podium_project::{ProjectError, ProjectOptions, StoreAccess};
//!
//! let config_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");
//! let scratch = tempfile::tempdir()?;
//! let db = scratch.path().join("mlflow.db");
//! let options = ProjectOptions::new(config_dir, scratch.path())
//!     .tracking_uri(Some(format!("sqlite:///{}", db.display())));
//!
//! // Reading from a SQLite store that is not there is refused, and creates nothing.
//! let refused = options.clone().open(StoreAccess::Existing).unwrap_err();
//! assert!(matches!(refused, ProjectError::StoreMissing { .. }));
//! assert!(!db.exists());
//!
//! // Only a command that sets up a new store creates it.
//! let project = options.open(StoreAccess::Create)?;
//! assert!(project.created_store() && db.is_file());
//! assert_eq!(project.experiment.name, "podium-ner");
//!
//! // The champions: none in an empty store, each backbone saying why.
//! let report = podium_project::SelectReport::from(&project.select(&[])?);
//! assert!(report.champions.is_empty());
//! assert_eq!(report.errors.len(), project.experiment.backbones.len());
//! assert!(report.errors["distilbert"].contains("podium-ner-hpo-distilbert"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The store rule is one for every command ([`store`]): reading needs an existing store,
//! `podium run`/`benchmark` write benchmark runs into the existing store of the HPO runs, and
//! only a command that sets up a new store ([`StoreAccess::Create`]) creates the file.
//!
//! This crate sits on top of the library crates and does the I/O they leave to their caller
//! (finding and loading config files, opening the store); the CLI only parses and renders.

pub mod benchmark;
pub mod config_check;
pub mod error;
pub mod project;
pub mod queries;
pub mod report;
pub mod select;
pub mod store;

pub use benchmark::{
    BenchmarkRequest, BenchmarkSummary, Benchmarks, Counts, DryRunReport, PlanEntry, RankReport,
    RankedResults, RunReport,
};
pub use error::{ProjectError, Result};
pub use project::{Project, ProjectOptions, ResolvedBackbones};
pub use queries::{BestTrialsReport, RunRecord, RunsReport};
pub use report::{ReportOutcome, ReportRequest, ReportRun};
pub use select::{SelectReport, SelectionTiming};
pub use store::{EnvLookup, OpenedStore, StoreAccess, open_store, process_env};
