//! Writes: runs, tags, params and metrics as MLflow's SQLAlchemy store lays them out, and
//! [`SqliteBatch`] for many in one transaction.

use super::*;

impl SqliteStore {
    pub(super) fn create_run_in(
        &self,
        transaction: &Transaction<'_>,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        let experiment = self.require_experiment(transaction, experiment_id)?;
        if !experiment.is_active() {
            return Err(self.invalid_state(
                "experiment",
                experiment_id,
                "could not create a run under a non-active experiment",
            ));
        }
        let run_id = new_run_id();
        // As MLflow: the runName tag wins over the argument; a run always has a name.
        let name = tags
            .get(RUN_NAME_TAG)
            .cloned()
            .filter(|name| !name.is_empty())
            .or_else(|| (!run_name.is_empty()).then(|| run_name.to_string()))
            .unwrap_or_else(|| format!("run-{}", &run_id[..8]));
        let user = tags
            .get("mlflow.user")
            .cloned()
            .unwrap_or_else(|| "unknown".to_string());
        let artifact_uri = format!("{}/{run_id}/artifacts", experiment.artifact_location);
        transaction
                .prepare_cached(
                    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, \
                     user_id, status, start_time, end_time, source_version, lifecycle_stage, \
                     artifact_uri, experiment_id, deleted_time) \
                     VALUES (?1, ?2, 'UNKNOWN', '', '', ?3, 'RUNNING', ?4, NULL, '', 'active', ?5, ?6, NULL)",
                )
                .and_then(|mut statement| statement.execute(params![
                        run_id,
                        name,
                        user,
                        start_time_ms,
                        artifact_uri,
                        experiment.experiment_id.parse::<i64>().unwrap_or(-1)
                    ]))
                .map_err(|err| self.sql_error("creating a run", err))?;
        for (key, value) in tags {
            self.insert_tag(transaction, &run_id, key, value)?;
        }
        if !tags.contains_key(RUN_NAME_TAG) {
            self.insert_tag(transaction, &run_id, RUN_NAME_TAG, &name)?;
        }
        Ok(RunInfo {
            run_id,
            experiment_id: experiment.experiment_id,
            run_name: name,
            status: RunStatus::Running,
            start_time: Some(start_time_ms),
            end_time: None,
            artifact_uri,
            lifecycle_stage: "active".to_string(),
        })
    }

    pub(super) fn update_run_in(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        self.require_active_run(transaction, run_id)?;
        transaction
            .prepare_cached(
                "UPDATE runs SET status = ?1, end_time = COALESCE(?2, end_time) WHERE run_uuid = ?3",
            )
            .and_then(|mut statement| statement.execute(params![status.as_str(), end_time_ms, run_id]))
            .map_err(|err| self.sql_error(&format!("updating run {run_id}"), err))?;
        Ok(())
    }

    pub(super) fn log_batch_in(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        self.require_active_run(transaction, run_id)?;
        for (key, value) in params {
            self.insert_param(transaction, run_id, key, value)?;
        }
        for point in metrics {
            self.insert_metric(transaction, run_id, point)?;
        }
        for (key, value) in tags {
            self.insert_tag(transaction, run_id, key, value)?;
        }
        Ok(())
    }

    /// Runs `work` in ONE write transaction: for bulk imports (thousands of runs per second
    /// instead of one commit per call). Nothing is written if `work` fails. `work` must write
    /// through the batch only: a write through the store itself from inside `work` is refused
    /// with an error (it would otherwise wait for the batch to end).
    ///
    /// ```
    /// # use std::collections::BTreeMap;
    /// # use podium_mlflow::{sqlite::SqliteStore, RunStatus, TrackingStore};
    /// # let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(&dir.path().join("mlflow.db"))?;
    /// let experiment = store.create_experiment("bulk")?;
    /// store.write_batch(|batch| {
    ///     for trial in 0..100 {
    ///         let run = batch.create_run(&experiment, &format!("t{trial}"), trial, &BTreeMap::new())?;
    ///         batch.update_run(&run.run_id, RunStatus::Finished, Some(trial + 1))?;
    ///     }
    ///     Ok(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_batch<T>(
        &self,
        work: impl FnOnce(&SqliteBatch<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError> {
        self.write(|transaction| {
            work(&SqliteBatch {
                store: self,
                transaction,
            })
        })
    }

    pub(super) fn insert_tag(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        transaction
            .prepare_cached(
                "INSERT INTO tags (key, value, run_uuid) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
            )
            .and_then(|mut statement| statement.execute(params![key, value, run_id]))
            .map_err(|err| self.sql_error(&format!("setting tag {key:?} of run {run_id}"), err))?;
        if key == RUN_NAME_TAG {
            transaction
                .execute(
                    "UPDATE runs SET name = ?1 WHERE run_uuid = ?2",
                    params![value, run_id],
                )
                .map_err(|err| self.sql_error(&format!("renaming run {run_id}"), err))?;
        }
        Ok(())
    }

    pub(super) fn insert_param(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        let existing: Option<String> = transaction
            .prepare_cached("SELECT value FROM params WHERE run_uuid = ?1 AND key = ?2")
            .and_then(|mut statement| {
                statement
                    .query_row(params![run_id, key], |row| row.get(0))
                    .optional()
            })
            .map_err(|err| self.sql_error(&format!("reading param {key:?}"), err))?;
        match existing {
            Some(existing) if existing == value => Ok(()),
            Some(existing) => Err(MlflowError::ParamConflict {
                run_id: run_id.to_string(),
                key: key.to_string(),
                existing,
                new: value.to_string(),
            }),
            None => transaction
                .prepare_cached("INSERT INTO params (key, value, run_uuid) VALUES (?1, ?2, ?3)")
                .and_then(|mut statement| statement.execute(params![key, value, run_id]))
                .map(drop)
                .map_err(|err| {
                    self.sql_error(&format!("logging param {key:?} of run {run_id}"), err)
                }),
        }
    }

    pub(super) fn insert_metric(
        &self,
        transaction: &Transaction<'_>,
        run_id: &str,
        point: &MetricPoint<'_>,
    ) -> Result<(), MlflowError> {
        let (value, is_nan) = sanitize_metric(point.value);
        let context = || format!("logging metric {:?} of run {run_id}", point.key);
        transaction
            .prepare_cached(
                "INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, step, is_nan) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    point.key,
                    value,
                    point.timestamp,
                    run_id,
                    point.step,
                    is_nan
                ])
            })
            .map_err(|err| self.sql_error(&context(), err))?;
        // MLflow's latest value: the max by (step, timestamp, value), compared on stored values.
        transaction
            .prepare_cached(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value, \
                   timestamp = excluded.timestamp, step = excluded.step, is_nan = excluded.is_nan \
                 WHERE (excluded.step, excluded.timestamp, excluded.value) > \
                   (latest_metrics.step, COALESCE(latest_metrics.timestamp, -9223372036854775808), latest_metrics.value)",
            )
            .and_then(|mut statement| {
                statement.execute(params![point.key, value, point.timestamp, point.step, is_nan, run_id])
            })
            .map_err(|err| self.sql_error(&context(), err))?;
        Ok(())
    }
}

/// One write transaction of a [`SqliteStore`], handed out by [`SqliteStore::write_batch`].
#[derive(Debug)]
pub struct SqliteBatch<'a> {
    store: &'a SqliteStore,
    transaction: &'a Transaction<'a>,
}

impl SqliteBatch<'_> {
    /// As [`TrackingStore::create_run`], inside the batch.
    pub fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        self.store.create_run_in(
            self.transaction,
            experiment_id,
            run_name,
            start_time_ms,
            tags,
        )
    }

    /// As [`TrackingStore::update_run`], inside the batch.
    pub fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        self.store
            .update_run_in(self.transaction, run_id, status, end_time_ms)
    }

    /// As [`TrackingStore::set_tag`], inside the batch.
    pub fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        self.store.require_active_run(self.transaction, run_id)?;
        self.store.insert_tag(self.transaction, run_id, key, value)
    }

    /// As [`TrackingStore::log_batch`], inside the batch.
    pub fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        self.store
            .log_batch_in(self.transaction, run_id, metrics, params, tags)
    }
}
