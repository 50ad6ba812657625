//! One module per subcommand; each exposes its clap arguments and a `run` function.

pub mod variants;
