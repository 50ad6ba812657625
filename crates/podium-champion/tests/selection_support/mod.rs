//! Run builders shared by the selection test suites.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use podium_mlflow::{Run, RunInfo, RunStatus};

pub const METRIC: &str = "macro-f1";

/// A FINISHED v2 hpo_trial run of distilbert in study group `study` (a child of the sweep
/// `sweep-{study}`), artifact available.
pub fn trial(id: &str, study: &str, f1: f64) -> Run {
    Run {
        info: RunInfo {
            run_id: id.to_string(),
            experiment_id: "0".to_string(),
            run_name: id.to_string(),
            status: RunStatus::Finished,
            start_time: Some(1_000),
            end_time: Some(2_000),
            artifact_uri: format!("mlflow-artifacts:/0/{id}/artifacts"),
            lifecycle_stage: "active".to_string(),
        },
        tags: [
            ("code.backbone", "distilbert"),
            ("code.stage", "hpo_trial"),
            ("code.study_key_hash", study),
            ("code.study.key_schema_version", "2.0"),
            ("code.artifact.available", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([
            ("code.trial_key_hash".to_string(), format!("tk-{id}")),
            ("mlflow.parentRunId".to_string(), format!("sweep-{study}")),
        ])
        .collect(),
        params: BTreeMap::new(),
        metrics: BTreeMap::from([(METRIC.to_string(), f1)]),
    }
}

/// A FINISHED hpo_refit run of `of` (linked by tag), artifact available.
pub fn refit(id: &str, of: &Run) -> Run {
    let mut run = trial(id, of.tag("code.study_key_hash").unwrap_or_default(), 0.0);
    run.metrics.clear();
    run.tags.insert("code.stage".into(), "hpo_refit".into());
    run.tags.insert(
        "code.trial_key_hash".into(),
        of.tag("code.trial_key_hash")
            .unwrap_or_default()
            .to_string(),
    );
    run.tags
        .insert("code.refit.of_trial_run_id".into(), of.id().to_string());
    run
}

pub trait RunExt: Sized {
    fn tag_set(self, key: &str, value: &str) -> Self;
    fn tag_removed(self, key: &str) -> Self;
    fn metric_removed(self) -> Self;
    fn started(self, start: i64) -> Self;
    fn experiment(self, id: &str) -> Self;
}

impl RunExt for Run {
    fn tag_set(mut self, key: &str, value: &str) -> Self {
        self.tags.insert(key.to_string(), value.to_string());
        self
    }
    fn tag_removed(mut self, key: &str) -> Self {
        self.tags.remove(key);
        self
    }
    fn metric_removed(mut self) -> Self {
        self.metrics.clear();
        self
    }
    fn started(mut self, start: i64) -> Self {
        self.info.start_time = Some(start);
        self
    }
    fn experiment(mut self, id: &str) -> Self {
        self.info.experiment_id = id.to_string();
        self
    }
}

/// `count` trials of group `study` with the given metrics, ids `{study}-{i}`.
pub fn group(study: &str, metrics: &[f64]) -> Vec<Run> {
    metrics
        .iter()
        .enumerate()
        .map(|(i, f1)| trial(&format!("{study}-{i}"), study, *f1))
        .collect()
}
