//! podium's decision report: which champion to deploy and why, as one self-contained HTML page.
//!
//! [`ReportData::build`] turns the answers podium's commands already compute — each backbone's
//! champion and study groups (`podium select`), the champions' recorded benchmark results and
//! their composite ranking (`podium rank`) — into the report's data model: the recommendation
//! and the runner-up's distance, the Pareto front of metric against latency
//! ([`pareto`]), the groups of every backbone, latency and throughput per batch size, and where
//! every number comes from. [`render_html`] lays it out with an askama template and inline SVG
//! figures drawn by plotters: no script, no external style, font or image, and a
//! Content-Security-Policy that forbids fetching anything.
//!
//! This crate does no I/O: podium-project gathers the inputs and writes the page.
//!
//! ```
//! use std::collections::BTreeMap;
//! use podium_champion::config::SelectionConfig;
//! use podium_champion::ranking::{LatencyAggregation, rank_champions};
//! use podium_keys::TagRegistry;
//! use podium_mlflow::Direction;
//! use podium_report::{BenchmarkSettingsView, ReportData, ReportInputs, render_html};
//!
//! // A store where nothing is benchmarked yet: the page says so, and still loads nothing.
//! let ranking = rank_champions(&[], &SelectionConfig::default(), LatencyAggregation::Latest);
//! let errors = BTreeMap::from([("bert".to_string(), "no HPO experiment".to_string())]);
//! let settings = BenchmarkSettingsView {
//!     config_hash: "0123456789abcdef".into(),
//!     benchmark_config_hash: "ab".repeat(32),
//!     batch_sizes: vec![1, 8],
//!     max_length: 128,
//!     device: "cpu".into(),
//!     harness_version: 3,
//! };
//! let inputs = ReportInputs {
//!     experiment: "ner",
//!     benchmark_experiment: "ner-benchmark",
//!     metric: "macro-f1",
//!     direction: Direction::Maximize,
//!     champions: &BTreeMap::new(),
//!     selection_errors: &errors,
//!     targets: &[],
//!     recorded: &[],
//!     ranking: &ranking,
//!     pipeline_results: &[],
//!     tags: &TagRegistry::defaults(),
//!     benchmark: &settings,
//!     tracking_uri: "https://me:secret@mlflow.example.com",
//!     experiment_ids: &BTreeMap::new(),
//!     generated_at: "2026-01-22T10:00:00Z",
//!     podium_version: "0.1.0",
//! };
//! let data = ReportData::build(&inputs);
//! assert!(data.recommendation.is_none());
//! assert_eq!(data.provenance.tracking_uri, "https://***@mlflow.example.com");
//! let html = render_html(&data)?;
//! assert!(html.contains(r#"<meta http-equiv="Content-Security-Policy""#));
//! assert!(!html.contains("secret") && !html.contains("<script"));
//! # Ok::<(), podium_report::ReportError>(())
//! ```

pub mod error;
pub mod model;
pub mod pareto;
mod plots;
pub mod render;
pub mod text;

pub use error::ReportError;
pub use model::{BenchmarkSettingsView, ReportData, ReportInputs};
pub use render::{content_security_policy, render_html};
