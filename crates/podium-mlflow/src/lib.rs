//! MLflow tracking stores for podium: a REST client for `mlflow server` and a reader/writer of
//! MLflow's own SQLite schema, behind one [`TrackingStore`] trait.
//!
//! ```
//! use podium_mlflow::{Filter, RunStatus};
//!
//! let candidates = Filter::new()
//!     .tag_eq("code.backbone", "distilbert")
//!     .status(RunStatus::Finished);
//! assert!(candidates.server_side().starts_with("tags.`code.backbone`"));
//! ```

pub mod error;
pub mod filter;
pub mod model;
pub mod query;
pub mod store;

pub use error::MlflowError;
pub use filter::Filter;
pub use model::{Experiment, MetricPoint, Run, RunInfo, RunStatus, RunsPage, ViewType};
pub use query::search_all;
pub use store::{MAX_RESULTS_LIMIT, TrackingStore};
