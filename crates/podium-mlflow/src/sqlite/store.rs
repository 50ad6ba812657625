//! [`TrackingStore`] for [`SqliteStore`]: each call one transaction of the shared schema code
//! ([`crate::sql`]).

use super::*;
use crate::model::{Experiment, Run, RunsPage};
use crate::request::SearchRequest;
use crate::sql::experiments::{self, ExperimentKey};
use crate::sql::{decode_page_token, runs};
use crate::store::ExperimentGuard;

impl TrackingStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:///{}", self.display)
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, MlflowError> {
        self.read(|tx| {
            experiments::load(&mut SqliteConn(tx), &self.schema, ExperimentKey::Name(name))
        })
    }

    fn create_experiment(&self, name: &str) -> Result<String, MlflowError> {
        self.create_experiment_with_tags(name, &[])
    }

    fn create_experiment_with_tags(
        &self,
        name: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, MlflowError> {
        self.write(|tx| experiments::create(&mut SqliteConn(tx), &self.schema, name, tags))
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, MlflowError> {
        self.read(|tx| experiments::require(&mut SqliteConn(tx), &self.schema, experiment_id))
    }

    fn experiments_with_prefix(&self, prefix: &str) -> Result<Vec<Experiment>, MlflowError> {
        self.read(|tx| experiments::with_prefix(&mut SqliteConn(tx), &self.schema, prefix))
    }

    fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        self.write(|tx| {
            experiments::set_tag(&mut SqliteConn(tx), &self.schema, experiment_id, key, value)
        })
    }

    fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<(), MlflowError> {
        self.write(|tx| {
            experiments::rename(&mut SqliteConn(tx), &self.schema, experiment_id, new_name)
        })
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<(), MlflowError> {
        self.write(|tx| experiments::delete(&mut SqliteConn(tx), &self.schema, experiment_id))
    }

    fn search_runs_page(&self, request: &SearchRequest) -> Result<RunsPage, MlflowError> {
        request.check_page_size()?;
        let offset = request.token().map_or(Ok(0), decode_page_token)?;
        self.read(|tx| runs::search_page(&mut SqliteConn(tx), &self.schema, request, offset))
    }

    fn search_runs_each(
        &self,
        request: &SearchRequest,
        visit: &mut dyn FnMut(Run),
    ) -> Result<usize, MlflowError> {
        request.check_page_size()?;
        let offset = request.token().map_or(Ok(0), decode_page_token)?;
        self.read(|tx| runs::stream_runs(&mut SqliteConn(tx), &self.schema, request, offset, visit))
    }

    fn get_run(&self, run_id: &str) -> Result<Run, MlflowError> {
        self.read(|tx| runs::get_run(&mut SqliteConn(tx), &self.schema, run_id))
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        self.write(|tx| {
            let conn = &mut SqliteConn(tx);
            runs::create_run(
                conn,
                &self.schema,
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
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        self.write(|tx| {
            runs::update_run(
                &mut SqliteConn(tx),
                &self.schema,
                run_id,
                status,
                end_time_ms,
            )
        })
    }

    fn update_run_if(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
        guard: &ExperimentGuard<'_>,
    ) -> Result<bool, MlflowError> {
        self.write(|tx| {
            let conn = &mut SqliteConn(tx);
            runs::update_run_guarded(conn, &self.schema, run_id, status, end_time_ms, guard)
        })
    }

    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        self.write(|tx| runs::set_tag(&mut SqliteConn(tx), &self.schema, run_id, key, value))
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        self.write(|tx| {
            runs::log_batch(
                &mut SqliteConn(tx),
                &self.schema,
                run_id,
                metrics,
                params,
                tags,
            )
        })
    }

    fn download_artifacts(
        &self,
        run: &RunInfo,
        path: &str,
        dest: &Path,
    ) -> Result<PathBuf, MlflowError> {
        artifacts::download_for_database_store(run, path, dest)
    }
}
