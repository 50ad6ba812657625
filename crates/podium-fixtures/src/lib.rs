//! Generated inputs for podium's demo, examples and tests, kept out of the library crates'
//! public API:
//!
//! - [`random_checkpoint`]: tiny random token-classification checkpoints of every architecture
//!   podium-runtime runs, deterministic from a seed;
//! - [`memory_store`]: an in-memory [`podium_mlflow::TrackingStore`] for tests of code built
//!   on selection;
//! - [`demo`]: the project `podium demo` runs on (configs, a realistic sweep in an `mlflow.db`,
//!   a checkpoint per refit).
//!
//! A separate crate rather than a `test-util` feature: `podium demo` needs the generators in the
//! shipped binary, and a feature enabled by the CLI would put them back into the libraries'
//! API for every build that links the CLI. Here only the CLI (for the demo) and
//! dev-dependencies link them, and the random checkpoints are written through
//! [`podium_variants::fs::write_atomic`], which podium-runtime (depending on no podium crate)
//! cannot reach.
//!
//! ```
//! use podium_fixtures::random_checkpoint::RandomCheckpoint;
//!
//! let dir = tempfile::tempdir()?;
//! RandomCheckpoint::tiny_for("distilbert-base-uncased", 7).write(dir.path())?;
//! assert!(dir.path().join("model.safetensors").is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod demo;
pub mod error;
pub mod memory_store;
pub mod random_checkpoint;

pub use error::FixturesError;
pub use memory_store::MemoryStore;
