//! [`SqliteBatch`]: many writes in one transaction (bulk imports), through the shared schema
//! code ([`crate::sql::runs`]).

use super::*;
use crate::sql::runs;

impl SqliteStore {
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
}

/// One write transaction of a [`SqliteStore`], handed out by [`SqliteStore::write_batch`].
#[derive(Debug)]
pub struct SqliteBatch<'a> {
    store: &'a SqliteStore,
    transaction: &'a Transaction<'a>,
}

impl SqliteBatch<'_> {
    /// As [`TrackingStore::create_run`](crate::TrackingStore::create_run), inside the batch.
    pub fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        runs::create_run(
            &mut SqliteConn(self.transaction),
            &self.store.schema,
            experiment_id,
            run_name,
            start_time_ms,
            tags,
        )
    }

    /// As [`TrackingStore::update_run`](crate::TrackingStore::update_run), inside the batch.
    pub fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        runs::update_run(
            &mut SqliteConn(self.transaction),
            &self.store.schema,
            run_id,
            status,
            end_time_ms,
        )
    }

    /// As [`TrackingStore::set_tag`](crate::TrackingStore::set_tag), inside the batch.
    pub fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        runs::set_tag(
            &mut SqliteConn(self.transaction),
            &self.store.schema,
            run_id,
            key,
            value,
        )
    }

    /// As [`TrackingStore::log_batch`](crate::TrackingStore::log_batch), inside the batch.
    pub fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        runs::log_batch(
            &mut SqliteConn(self.transaction),
            &self.store.schema,
            run_id,
            metrics,
            params,
            tags,
        )
    }
}
