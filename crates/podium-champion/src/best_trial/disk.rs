//! Best-trial candidates from `trial_*/metrics.json` on disk.

use super::*;

pub(super) fn disk_candidates(
    folders: &[PathBuf],
    objective: &Objective,
    warn: &mut dyn FnMut(String),
) -> Vec<BestTrial> {
    let mut candidates = Vec::new();
    for folder in folders {
        match trial_metrics(folder, &objective.metric) {
            Ok(found) => {
                for err in found.skipped {
                    warn(format!("skipping trial metrics: {err}"));
                }
                candidates.extend(found.trials.into_iter().map(|(number, value)| BestTrial {
                    source: TrialSource::Disk,
                    value,
                    params: BTreeMap::new(),
                    study: String::new(),
                    keyed_by: StudyKeyedBy::StudyFolder,
                    study_key_hash: None,
                    variant: None,
                    run_id: None,
                    trial_number: Some(number),
                    study_name: None,
                    study_folder: Some(folder.clone()),
                }));
            }
            Err(err) => warn(format!("skipping trial metrics: {err}")),
        }
    }
    candidates
}

/// The trial metrics of one study folder: what could be read, and why the rest could not.
#[derive(Debug, Default)]
pub struct TrialMetrics {
    /// `(trial number, metric value)` of every trial whose `metrics.json` holds the metric.
    pub trials: Vec<(i64, f64)>,
    /// One error per `metrics.json` that could not be used; its siblings still count.
    pub skipped: Vec<ChampionError>,
}

/// The most a trial's `metrics.json` may hold (they are a few hundred bytes).
pub(super) const TRIAL_METRICS_MAX_BYTES: u64 = 16 << 20;

/// The metrics of every trial folder in a study folder — the plans' `trial_{number}/` and the
/// pipeline's `trial-{t8}/` (numbered by its `trial_meta.json`) — that hold `metric` as a
/// number in their `metrics.json` (NaN excluded; `Infinity` as Python's json writes it counts).
/// A file that cannot be read or used is reported in `skipped` and never hides the others; only
/// a study folder that cannot be listed is an error.
pub fn trial_metrics(folder: &Path, metric: &str) -> Result<TrialMetrics, ChampionError> {
    let trial_folders =
        StudyDir::new(folder)
            .trial_folders()
            .map_err(|err| ChampionError::TrialMetrics {
                path: folder.to_path_buf(),
                message: err.to_string(),
            })?;
    let mut found = TrialMetrics::default();
    for (number, trial_dir) in trial_folders {
        let path = trial_dir.join("metrics.json");
        match trial_metric(&path, number, metric) {
            Ok(Some(trial)) => found.trials.push(trial),
            Ok(None) => {}
            Err(err) => found.skipped.push(err),
        }
    }
    Ok(found)
}

/// One trial's metric from its `metrics.json`: `None` when the file or the metric is absent or
/// the value is NaN.
pub(super) fn trial_metric(
    path: &Path,
    number: u64,
    metric: &str,
) -> Result<Option<(i64, f64)>, ChampionError> {
    let invalid = |message: String| ChampionError::TrialMetrics {
        path: path.to_path_buf(),
        message,
    };
    let text = match podium_variants::fs::read_regular_text(path, TRIAL_METRICS_MAX_BYTES) {
        Ok(text) => text,
        Err(err) if err.is_not_found() => return Ok(None),
        Err(podium_variants::fs::ReadError::Io { source, .. }) => {
            return Err(ChampionError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        Err(refused) => return Err(invalid(refused.reason())),
    };
    let metrics = optuna_study::parse_python_json(&text).map_err(invalid)?;
    let value = match metrics.get(metric) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number.as_f64(),
        Some(Value::String(text)) => match text.as_str() {
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            "NaN" => None,
            _ => {
                return Err(invalid(format!(
                    "`{metric}` is the string {text:?}, not a number"
                )));
            }
        },
        Some(other) => return Err(invalid(format!("`{metric}` is {other}, not a number"))),
    };
    let number = i64::try_from(number)
        .map_err(|_| invalid(format!("trial number {number} is too large")))?;
    Ok(value.filter(|v| !v.is_nan()).map(|value| (number, value)))
}
