//! One module per subcommand; each exposes its clap arguments and a `run` function.

pub mod bench_model;
pub mod benchmark;
pub mod best_trials;
pub mod config;
pub mod demo;
pub mod keys;
pub mod rank;
pub mod report;
pub mod run;
pub mod runs;
pub mod select;
pub mod variants;
pub mod verify_hashes;
