//! podium: which trial is the champion of each backbone, and how fast is its checkpoint?
//!
//! This facade re-exports the podium crates under short names; link the individual crates
//! directly when you need only one layer.
//!
//! ```
//! use podium::run_mode::{decide, Decision, Existing, RunMode};
//! assert_eq!(decide(RunMode::ReuseIfExists, Existing::Complete), Decision::Reuse);
//! ```
//!
//! [`project`] is the way in for a program that works on a whole project (configs, tracking
//! store, outputs): what every `podium` command does, as one call returning data.
//! [`report`] renders a decision as one self-contained HTML page.
//!
//! [`runtime`] (loading and timing a checkpoint) depends on no other podium crate.

pub use podium_bench as bench;
pub use podium_champion as champion;
pub use podium_keys as keys;
pub use podium_mlflow as mlflow;
pub use podium_project as project;
pub use podium_report as report;
pub use podium_run_mode as run_mode;
pub use podium_runtime as runtime;
pub use podium_variants as variants;
