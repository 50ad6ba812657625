//! MLflow tracking stores for podium: a REST client for `mlflow server` ([`RestStore`]) and
//! readers/writers of MLflow's own schema in its databases — an `mlflow.db` ([`SqliteStore`])
//! and PostgreSQL ([`PostgresStore`], `postgresql://` URIs) — behind one [`TrackingStore`]
//! trait, plus the [`Filter`] builder, paginated queries ([`search_all`], [`query`]) and
//! artifact download.
//!
//! ```
//! use std::collections::BTreeMap;
//! use podium_mlflow::{open_store, search_all, Filter, MetricPoint, RunStatus, ViewType};
//!
//! let dir = tempfile::tempdir()?;
//! let uri = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
//! let store = open_store(Some(&uri))?; // flag, else MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
//! let experiment = store.create_experiment("ner-sweep")?;
//! let tags = BTreeMap::from([("code.backbone".to_string(), "distilbert".to_string())]);
//! let run = store.create_run(&experiment, "trial-0", 1_700_000_000_000, &tags)?;
//! let f1 = MetricPoint { key: "f1", value: f64::NAN, timestamp: 1_700_000_000_500, step: 0 };
//! store.log_batch(&run.run_id, &[f1], &[("lr", "3e-5")], &[])?;
//! store.update_run(&run.run_id, RunStatus::Finished, Some(1_700_000_001_000))?;
//!
//! let candidates = Filter::new()
//!     .tag_eq("code.backbone", "distilbert")
//!     .status(RunStatus::Finished);
//! let runs = search_all(store.as_ref(), &[experiment], &candidates, ViewType::ActiveOnly)?;
//! assert_eq!(runs.len(), 1);
//! assert!(runs[0].metric("f1").unwrap().is_nan());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod artifacts;
pub mod error;
pub mod filter;
pub mod model;
pub mod postgres;
pub mod query;
pub mod request;
pub mod rest;
pub(crate) mod sql;
pub mod sqlite;
pub mod store;
pub mod timing;
pub mod uri;

pub use error::MlflowError;
pub use filter::Filter;
pub use model::{
    Experiment, KeySelection, MetricPoint, Run, RunFields, RunInfo, RunStatus, RunsPage, ViewType,
};
pub use postgres::PostgresStore;
pub use query::{
    Direction, best_run, group_by_tag, search_all, search_all_fields, search_all_raw,
    search_all_raw_fields, search_each,
};
pub use request::SearchRequest;
pub use rest::{RestConfig, RestStore};
pub use sqlite::{SqliteBatch, SqliteStore};
pub use store::{ExperimentGuard, MAX_RESULTS_LIMIT, OpenMode, TrackingStore};
pub use uri::{open_store, open_store_with_env};
