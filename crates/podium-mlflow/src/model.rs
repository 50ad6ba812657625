//! MLflow's entities as podium sees them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An MLflow experiment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiment {
    /// MLflow's experiment id (a decimal string).
    pub experiment_id: String,
    /// The unique experiment name.
    pub name: String,
    /// Where runs of this experiment store artifacts by default.
    pub artifact_location: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
}

/// MLflow's run status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Started and not ended.
    Running,
    /// Created but not started.
    Scheduled,
    /// Ended successfully.
    Finished,
    /// Ended with an error.
    Failed,
    /// Ended by the user.
    Killed,
}

impl RunStatus {
    /// MLflow's spelling (`FINISHED`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "RUNNING",
            RunStatus::Scheduled => "SCHEDULED",
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }

    /// Parses MLflow's spelling.
    pub fn parse(text: &str) -> Option<RunStatus> {
        Some(match text {
            "RUNNING" => RunStatus::Running,
            "SCHEDULED" => RunStatus::Scheduled,
            "FINISHED" => RunStatus::Finished,
            "FAILED" => RunStatus::Failed,
            "KILLED" => RunStatus::Killed,
            _ => return None,
        })
    }

    /// True for FINISHED, FAILED and KILLED.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Finished | RunStatus::Failed | RunStatus::Killed
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's identity and lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// 32-hex run id.
    pub run_id: String,
    /// The experiment the run belongs to.
    pub experiment_id: String,
    /// The run's display name.
    pub run_name: String,
    /// Current status.
    pub status: RunStatus,
    /// Start, milliseconds since the Unix epoch.
    pub start_time: Option<i64>,
    /// End, milliseconds since the Unix epoch.
    pub end_time: Option<i64>,
    /// Root of the run's artifacts (`mlflow-artifacts:/…`, a local path, `file://…`).
    pub artifact_uri: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
}

/// A run with its data. `metrics` holds MLflow's latest value per key (max by step, timestamp,
/// value); non-finite values are `f64::NAN`/`f64::INFINITY`/`f64::NEG_INFINITY` whatever the store
/// wrote (string forms, `is_nan`, or the ±1.7976931348623157e308 sentinels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Identity and lifecycle.
    pub info: RunInfo,
    /// Tags, sorted by key.
    pub tags: BTreeMap<String, String>,
    /// Params, sorted by key.
    pub params: BTreeMap<String, String>,
    /// Latest value of each metric, sorted by key.
    pub metrics: BTreeMap<String, f64>,
}

impl Run {
    /// The run id.
    pub fn id(&self) -> &str {
        &self.info.run_id
    }

    /// A tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// A metric's latest value.
    pub fn metric(&self, key: &str) -> Option<f64> {
        self.metrics.get(key).copied()
    }
}

/// One metric observation to log.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint<'a> {
    /// Metric name.
    pub key: &'a str,
    /// Value; NaN and ±inf are allowed.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Step.
    pub step: i64,
}

/// Which runs a search covers, by lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ViewType {
    /// Only runs not deleted (MLflow's default).
    #[default]
    ActiveOnly,
    /// Only deleted runs.
    DeletedOnly,
    /// Everything.
    All,
}

/// One page of a run search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunsPage {
    /// The runs of this page.
    pub runs: Vec<Run>,
    /// Token of the next page; `None` on the last page.
    pub next_page_token: Option<String>,
}
