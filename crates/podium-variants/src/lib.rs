//! Output layout, platform detection, variant scanning and allocation, study names.
//!
//! ```
//! use podium_variants::backbone_short_name;
//! assert_eq!(backbone_short_name("distilbert-base-uncased"), "distilbert");
//! ```

pub mod error;
pub mod experiment;

pub use error::VariantsError;
pub use experiment::{ExperimentConfig, backbone_short_name};
