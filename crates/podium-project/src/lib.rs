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
//! The commands that need no experiment are here too: [`keys`] (the pipeline's keys of files
//! named by path), [`ProjectOptions::hpo_studies`] / [`ProjectOptions::next_hpo_study`] (study
//! folders), [`ProjectOptions::final_trainings`] / [`ProjectOptions::next_final_training`]
//! (final-training folders) and [`bench_model`] (time one checkpoint directory).
//!
//! This crate sits on top of the library crates and does the I/O they leave to their caller
//! (finding and loading config files, opening the store), and re-exports the types its answers
//! are made of: it is the one podium dependency the CLI has (`tests/layering.rs`), and the one
//! a Rust service needs. The CLI only parses, calls and renders.

pub mod bench_model;
pub mod benchmark;
pub mod config_check;
pub mod error;
pub mod hpo_studies;
pub mod keys;
pub mod project;
pub mod queries;
pub mod report;
pub mod select;
pub mod store;
pub mod variants;

pub use benchmark::{
    BenchmarkRequest, BenchmarkSummary, Benchmarks, Counts, DryRunReport, PlanEntry, RankReport,
    RankedResults, RunReport,
};
pub use error::{ProjectError, Result};
pub use hpo_studies::{HpoLayout, HpoNextReport, HpoStudiesReport, HpoVariant, StudyFolder};
pub use project::{Project, ProjectOptions, ResolvedBackbones};
pub use queries::{BestTrialsReport, RunRecord, RunsReport, metric_text};
pub use report::{ReportOutcome, ReportRequest, ReportRun};
pub use select::{GroupCounts, SelectReport, SelectionTiming};
pub use store::{
    EnvLookup, OpenedStore, StoreAccess, is_store_unreachable, open_store, process_env,
    store_unreachable_seen,
};

// The types the commands' answers are made of, so that a caller (the CLI, a Rust service)
// needs no other podium crate to read them.
pub use podium_bench::claim::LEASE_ENV;
pub use podium_bench::orchestrate::{
    BenchmarkOutcome, BenchmarkTarget, Event, InFlight, MatchedBy, Outcome, PipelineResult,
    PlanStatus, PlannedBenchmark,
};
pub use podium_champion::best_trial::{BestTrial, BestTrials, SelectionScope, TrialSource};
pub use podium_champion::ranking::{RankedChampion, Unranked};
pub use podium_champion::selection::{Champion, GroupStatus, GroupSummary, SelectionMetadata};
pub use podium_champion::{
    ChampionReport, HashProblem, HashReport, LatencyAggregation, Ranking, SelectionResults,
};
pub use podium_keys::StudyKeys;
pub use podium_mlflow::MlflowError;
/// Text from stores and configs made safe to show (control and bidirectional characters
/// escaped), and run ids as people read them: one rule for the page and the terminal.
pub use podium_report::text;
