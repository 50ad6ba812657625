//! MLflow's entities as podium sees them.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Experiment tags, sorted by key.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl Experiment {
    /// True unless the experiment was deleted.
    pub fn is_active(&self) -> bool {
        self.lifecycle_stage == "active"
    }
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
    /// Latest value of each metric, sorted by key. Serialized as MLflow writes JSON: non-finite
    /// values as `"NaN"`, `"Infinity"`, `"-Infinity"`.
    #[serde(with = "metric_map")]
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

/// Which keys of one kind (tags, params or latest metrics) a run search returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeySelection {
    /// Every key the run has.
    #[default]
    All,
    /// Only these keys (those the run has); empty for none.
    Only(BTreeSet<String>),
}

impl KeySelection {
    /// Only the given keys.
    pub fn only<I, K>(keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        KeySelection::Only(keys.into_iter().map(Into::into).collect())
    }

    /// No key at all.
    pub fn none() -> Self {
        KeySelection::Only(BTreeSet::new())
    }

    /// True when `key` is returned.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            KeySelection::All => true,
            KeySelection::Only(keys) => keys.contains(key),
        }
    }

    /// True when nothing of this kind is returned (the store need not read it at all).
    pub fn is_none(&self) -> bool {
        matches!(self, KeySelection::Only(keys) if keys.is_empty())
    }

    /// This selection widened by `keys` (unchanged when it already returns everything).
    pub fn with<I, K>(self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        match self {
            KeySelection::All => KeySelection::All,
            KeySelection::Only(mut selected) => {
                selected.extend(keys.into_iter().map(Into::into));
                KeySelection::Only(selected)
            }
        }
    }

    /// Drops the entries of `map` this selection does not return.
    pub fn retain<V>(&self, map: &mut BTreeMap<String, V>) {
        if let KeySelection::Only(keys) = self {
            map.retain(|key, _| keys.contains(key));
        }
    }
}

/// A projection of run searches: which tags, params and latest metrics come back with each run.
/// Run info (ids, name, status, times, artifact URI, lifecycle stage) always does. The default
/// returns everything, as a plain search does.
///
/// ```
/// use podium_mlflow::{KeySelection, RunFields};
/// let fields = RunFields::none()
///     .with_tags(["code.study_key_hash", "mlflow.parentRunId"])
///     .with_metrics(["macro-f1"]);
/// assert!(fields.tags.contains("mlflow.parentRunId"));
/// assert!(fields.params.is_none());
/// assert_eq!(RunFields::default().metrics, KeySelection::All);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunFields {
    /// Tag keys to return.
    pub tags: KeySelection,
    /// Param keys to return.
    pub params: KeySelection,
    /// Metric keys to return (latest values).
    pub metrics: KeySelection,
}

impl RunFields {
    /// Every tag, param and metric (the default).
    pub fn all() -> Self {
        Self::default()
    }

    /// Run info only; widen with [`RunFields::with_tags`] and friends.
    pub fn none() -> Self {
        RunFields {
            tags: KeySelection::none(),
            params: KeySelection::none(),
            metrics: KeySelection::none(),
        }
    }

    /// True when nothing is left out.
    pub fn is_all(&self) -> bool {
        *self == Self::all()
    }

    /// Also returns these tag keys.
    pub fn with_tags<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.tags = self.tags.with(keys);
        self
    }

    /// Also returns these param keys.
    pub fn with_params<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.params = self.params.with(keys);
        self
    }

    /// Also returns these metric keys.
    pub fn with_metrics<I, K>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = K>,
        K: Into<String>,
    {
        self.metrics = self.metrics.with(keys);
        self
    }

    /// Drops from `run` every tag, param and metric this projection leaves out.
    pub fn project(&self, run: &mut Run) {
        self.tags.retain(&mut run.tags);
        self.params.retain(&mut run.params);
        self.metrics.retain(&mut run.metrics);
    }
}

/// The largest finite double; MLflow's SQL store writes ±inf as ± this value.
pub const INFINITY_SENTINEL: f64 = f64::MAX;

/// A metric value as MLflow carries it in JSON: a number, or one of the strings `"NaN"`,
/// `"Infinity"`, `"-Infinity"`; ±1.7976931348623157e308 (what SQL stores keep for ±inf) reads as
/// ±inf. Serializes non-finite values as those strings.
///
/// ```
/// use podium_mlflow::model::MlflowFloat;
/// let parsed: Vec<MlflowFloat> =
///     serde_json::from_str(r#"["NaN", "-Infinity", 1.7976931348623157e308, 0.5]"#).unwrap();
/// assert!(parsed[0].0.is_nan());
/// assert_eq!(parsed[1].0, f64::NEG_INFINITY);
/// assert_eq!(parsed[2].0, f64::INFINITY);
/// assert_eq!(serde_json::to_string(&MlflowFloat(f64::NAN)).unwrap(), r#""NaN""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MlflowFloat(pub f64);

impl From<MlflowFloat> for f64 {
    fn from(value: MlflowFloat) -> f64 {
        value.0
    }
}

impl MlflowFloat {
    /// Maps the SQL stores' ±f64::MAX sentinels to ±inf.
    pub fn from_stored(value: f64) -> f64 {
        if value >= INFINITY_SENTINEL {
            f64::INFINITY
        } else if value <= -INFINITY_SENTINEL {
            f64::NEG_INFINITY
        } else {
            value
        }
    }

    /// Parses MLflow's string spellings (and plain numbers written as strings).
    pub fn parse(text: &str) -> Option<f64> {
        match text {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            other => other.parse::<f64>().ok().map(Self::from_stored),
        }
    }

    /// MLflow's string for a non-finite value, `None` for a finite one.
    pub fn non_finite_str(value: f64) -> Option<&'static str> {
        if value.is_nan() {
            Some("NaN")
        } else if value == f64::INFINITY {
            Some("Infinity")
        } else if value == f64::NEG_INFINITY {
            Some("-Infinity")
        } else {
            None
        }
    }
}

impl Serialize for MlflowFloat {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match Self::non_finite_str(self.0) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_f64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for MlflowFloat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = MlflowFloat;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or one of \"NaN\", \"Infinity\", \"-Infinity\"")
            }
            fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<MlflowFloat, E> {
                Ok(MlflowFloat(MlflowFloat::from_stored(value)))
            }
            fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<MlflowFloat, E> {
                Ok(MlflowFloat(value as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<MlflowFloat, E> {
                Ok(MlflowFloat(value as f64))
            }
            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<MlflowFloat, E> {
                MlflowFloat::parse(value)
                    .map(MlflowFloat)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(value), &self))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Serde adapter for `BTreeMap<String, f64>` metric maps with MLflow's non-finite spellings.
pub mod metric_map {
    use std::collections::BTreeMap;

    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::MlflowFloat;

    /// Writes non-finite values as `"NaN"`, `"Infinity"`, `"-Infinity"`.
    pub fn serialize<S: Serializer>(
        metrics: &BTreeMap<String, f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(metrics.len()))?;
        for (key, value) in metrics {
            map.serialize_entry(key, &MlflowFloat(*value))?;
        }
        map.end()
    }

    /// Reads numbers, the string spellings and the ±f64::MAX sentinels.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, f64>, D::Error> {
        let raw = BTreeMap::<String, MlflowFloat>::deserialize(deserializer)?;
        Ok(raw.into_iter().map(|(key, value)| (key, value.0)).collect())
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
