//! The [`crate::TrackingStore`] of every database store, written once: each call is one
//! transaction of the store ([`Database`]) running the schema code on its connection. A store
//! supplies its transactions and `describe`, and gets the trait with
//! [`impl_tracking_store!`](crate::sql::store::impl_tracking_store).

use super::{Schema, SqlConn};
use crate::error::MlflowError;

/// A database holding MLflow's schema: its connection type and its transactions.
pub(crate) trait Database {
    /// A connection inside a transaction.
    type Conn<'t>: SqlConn;

    /// What the schema code needs to know of the database.
    fn schema(&self) -> &Schema;

    /// Runs `work` in a read transaction (one snapshot; nothing written).
    fn read_tx<T>(
        &self,
        work: impl FnOnce(&mut Self::Conn<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError>;

    /// Runs `work` in a write transaction, committed when it succeeds and rolled back when it
    /// fails (refused unless the schema is the one podium writes).
    fn write_tx<T>(
        &self,
        work: impl FnOnce(&mut Self::Conn<'_>) -> Result<T, MlflowError>,
    ) -> Result<T, MlflowError>;
}

/// `impl TrackingStore for $store` from its [`Database`] impl and a `describe` expression of
/// `self`.
macro_rules! impl_tracking_store {
    ($store:ty, |$this:ident| $describe:expr) => {
        impl $crate::store::TrackingStore for $store {
            fn describe(&self) -> String {
                let $this = self;
                $describe
            }

            fn get_experiment_by_name(
                &self,
                name: &str,
            ) -> Result<Option<$crate::model::Experiment>, $crate::MlflowError> {
                use $crate::sql::experiments::{self, ExperimentKey};
                use $crate::sql::store::Database;
                self.read_tx(|conn| {
                    experiments::load(conn, self.schema(), ExperimentKey::Name(name))
                })
            }

            fn create_experiment(&self, name: &str) -> Result<String, $crate::MlflowError> {
                self.create_experiment_with_tags(name, &[])
            }

            fn create_experiment_with_tags(
                &self,
                name: &str,
                tags: &[(&str, &str)],
            ) -> Result<String, $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.write_tx(|conn| {
                    $crate::sql::experiments::create(conn, self.schema(), name, tags)
                })
            }

            fn get_experiment(
                &self,
                experiment_id: &str,
            ) -> Result<$crate::model::Experiment, $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.read_tx(|conn| {
                    $crate::sql::experiments::require(conn, self.schema(), experiment_id)
                })
            }

            fn experiments_with_prefix(
                &self,
                prefix: &str,
            ) -> Result<Vec<$crate::model::Experiment>, $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.read_tx(|conn| {
                    $crate::sql::experiments::with_prefix(conn, self.schema(), prefix)
                })
            }

            fn set_experiment_tag(
                &self,
                experiment_id: &str,
                key: &str,
                value: &str,
            ) -> Result<(), $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.write_tx(|conn| {
                    $crate::sql::experiments::set_tag(
                        conn,
                        self.schema(),
                        experiment_id,
                        key,
                        value,
                    )
                })
            }

            fn rename_experiment(
                &self,
                experiment_id: &str,
                new_name: &str,
            ) -> Result<(), $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.write_tx(|conn| {
                    $crate::sql::experiments::rename(conn, self.schema(), experiment_id, new_name)
                })
            }

            fn delete_experiment(&self, experiment_id: &str) -> Result<(), $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.write_tx(|conn| {
                    $crate::sql::experiments::delete(conn, self.schema(), experiment_id)
                })
            }

            fn search_runs_page(
                &self,
                request: &$crate::request::SearchRequest,
            ) -> Result<$crate::model::RunsPage, $crate::MlflowError> {
                use $crate::sql::store::Database;
                request.check_page_size()?;
                let offset = request
                    .token()
                    .map_or(Ok(0), $crate::sql::decode_page_token)?;
                self.read_tx(|conn| {
                    $crate::sql::runs::search_page(conn, self.schema(), request, offset)
                })
            }

            fn search_runs_each(
                &self,
                request: &$crate::request::SearchRequest,
                visit: &mut dyn FnMut($crate::model::Run),
            ) -> Result<usize, $crate::MlflowError> {
                use $crate::sql::store::Database;
                request.check_page_size()?;
                let offset = request
                    .token()
                    .map_or(Ok(0), $crate::sql::decode_page_token)?;
                self.read_tx(|conn| {
                    $crate::sql::runs::stream_runs(conn, self.schema(), request, offset, visit)
                })
            }

            fn get_run(&self, run_id: &str) -> Result<$crate::model::Run, $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.read_tx(|conn| $crate::sql::runs::get_run(conn, self.schema(), run_id))
            }

            fn create_run(
                &self,
                experiment_id: &str,
                run_name: &str,
                start_time_ms: i64,
                tags: &std::collections::BTreeMap<String, String>,
            ) -> Result<$crate::model::RunInfo, $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.write_tx(|conn| {
                    $crate::sql::runs::create_run(
                        conn,
                        self.schema(),
                        experiment_id,
                        run_name,
                        start_time_ms,
                        tags,
                    )
                })
            }

            fn update_run(
                &self,
                run_id: &str,
                status: $crate::model::RunStatus,
                end_time_ms: Option<i64>,
            ) -> Result<(), $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.write_tx(|conn| {
                    $crate::sql::runs::update_run(conn, self.schema(), run_id, status, end_time_ms)
                })
            }

            fn update_run_if(
                &self,
                run_id: &str,
                status: $crate::model::RunStatus,
                end_time_ms: Option<i64>,
                guard: &$crate::store::ExperimentGuard<'_>,
            ) -> Result<bool, $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.write_tx(|conn| {
                    $crate::sql::runs::update_run_guarded(
                        conn,
                        self.schema(),
                        run_id,
                        status,
                        end_time_ms,
                        guard,
                    )
                })
            }

            fn set_tag(
                &self,
                run_id: &str,
                key: &str,
                value: &str,
            ) -> Result<(), $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.write_tx(|conn| {
                    $crate::sql::runs::set_tag(conn, self.schema(), run_id, key, value)
                })
            }

            fn log_batch(
                &self,
                run_id: &str,
                metrics: &[$crate::model::MetricPoint<'_>],
                params: &[(&str, &str)],
                tags: &[(&str, &str)],
            ) -> Result<(), $crate::MlflowError> {
                use $crate::sql::store::Database;
                self.write_tx(|conn| {
                    $crate::sql::runs::log_batch(conn, self.schema(), run_id, metrics, params, tags)
                })
            }

            fn download_artifacts(
                &self,
                run: &$crate::model::RunInfo,
                path: &str,
                dest: &std::path::Path,
            ) -> Result<std::path::PathBuf, $crate::MlflowError> {
                $crate::artifacts::download_for_database_store(run, path, dest)
            }

            fn log_artifact(
                &self,
                run: &$crate::model::RunInfo,
                artifact_path: &str,
                source: &std::path::Path,
            ) -> Result<(), $crate::MlflowError> {
                let limits =
                    $crate::artifacts::DownloadLimits::from_env(&|name| std::env::var(name).ok())?;
                $crate::artifacts::upload_to_local_root(run, artifact_path, source, &limits)
                    .map(|_| ())
            }
        }
    };
}

pub(crate) use impl_tracking_store;
