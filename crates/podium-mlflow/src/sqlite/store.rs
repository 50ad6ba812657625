//! [`TrackingStore`] for [`SqliteStore`].

use super::read::*;
use super::*;

impl TrackingStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:///{}", self.display)
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, MlflowError> {
        self.read(|transaction| self.load_experiment(transaction, "name = ?", &name))
    }

    fn create_experiment(&self, name: &str) -> Result<String, MlflowError> {
        self.create_experiment_with_tags(name, &[])
    }

    fn create_experiment_with_tags(
        &self,
        name: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, MlflowError> {
        if name.trim().is_empty() {
            return Err(MlflowError::InvalidQuery(
                "an experiment name must not be empty".to_string(),
            ));
        }
        self.write(|transaction| {
            let now = now_ms();
            let inserted = if self.has_workspace {
                transaction.execute(
                    "INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time, workspace) \
                     VALUES (?1, 'active', ?2, ?2, 'default')",
                    params![name, now],
                )
            } else {
                transaction.execute(
                    "INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time) \
                     VALUES (?1, 'active', ?2, ?2)",
                    params![name, now],
                )
            };
            match inserted {
                Ok(_) => {}
                Err(err) if is_unique_violation(&err) => {
                    return Err(MlflowError::AlreadyExists {
                        what: "experiment",
                        name: name.to_string(),
                        store: self.display.clone(),
                    });
                }
                Err(err) => return Err(self.sql_error(&format!("creating experiment {name:?}"), err)),
            }
            let id = transaction.last_insert_rowid();
            let location = format!("{}/{id}", self.default_artifact_root);
            transaction
                .execute(
                    "UPDATE experiments SET artifact_location = ?1 WHERE experiment_id = ?2",
                    params![location, id],
                )
                .map_err(|err| self.sql_error(&format!("creating experiment {name:?}"), err))?;
            for (key, value) in tags {
                transaction
                    .execute(
                        "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
                        params![key, value, id],
                    )
                    .map_err(|err| {
                        self.sql_error(&format!("tagging new experiment {name:?}"), err)
                    })?;
            }
            Ok(id.to_string())
        })
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, MlflowError> {
        self.read(|transaction| self.require_experiment(transaction, experiment_id))
    }

    fn experiments_with_prefix(&self, prefix: &str) -> Result<Vec<Experiment>, MlflowError> {
        self.read(|transaction| self.load_experiments_with_prefix(transaction, prefix))
    }

    fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        self.write(|transaction| {
            let experiment = self.require_experiment(transaction, experiment_id)?;
            if !experiment.is_active() {
                return Err(self.invalid_state(
                    "experiment",
                    experiment_id,
                    "the experiment is deleted; MLflow refuses to tag it",
                ));
            }
            transaction
                .execute(
                    "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
                    params![
                        key,
                        value,
                        experiment.experiment_id.parse::<i64>().unwrap_or(-1)
                    ],
                )
                .map_err(|err| {
                    self.sql_error(&format!("tagging experiment {experiment_id}"), err)
                })?;
            Ok(())
        })
    }

    fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<(), MlflowError> {
        if new_name.trim().is_empty() {
            return Err(MlflowError::InvalidQuery(
                "an experiment name must not be empty".to_string(),
            ));
        }
        self.write(|transaction| {
            let experiment = self.require_experiment(transaction, experiment_id)?;
            if !experiment.is_active() {
                return Err(self.invalid_state(
                    "experiment",
                    experiment_id,
                    "cannot rename a non-active experiment",
                ));
            }
            match transaction.execute(
                "UPDATE experiments SET name = ?1, last_update_time = ?2 WHERE experiment_id = ?3",
                params![
                    new_name,
                    now_ms(),
                    experiment.experiment_id.parse::<i64>().unwrap_or(-1)
                ],
            ) {
                Ok(_) => Ok(()),
                Err(err) if is_unique_violation(&err) => Err(MlflowError::AlreadyExists {
                    what: "experiment",
                    name: new_name.to_string(),
                    store: self.display.clone(),
                }),
                Err(err) => {
                    Err(self.sql_error(&format!("renaming experiment {experiment_id}"), err))
                }
            }
        })
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<(), MlflowError> {
        self.write(|transaction| {
            let experiment = self.require_experiment(transaction, experiment_id)?;
            if !experiment.is_active() {
                return Err(self.not_found("active experiment", experiment_id));
            }
            let id = experiment.experiment_id.parse::<i64>().unwrap_or(-1);
            let now = now_ms();
            transaction
                .execute(
                    "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ?1 \
                     WHERE experiment_id = ?2",
                    params![now, id],
                )
                .and_then(|_| {
                    transaction.execute(
                        "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ?1 \
                         WHERE experiment_id = ?2 AND lifecycle_stage = 'active'",
                        params![now, id],
                    )
                })
                .map_err(|err| {
                    self.sql_error(&format!("deleting experiment {experiment_id}"), err)
                })?;
            Ok(())
        })
    }

    fn search_runs_page(&self, request: &SearchRequest) -> Result<RunsPage, MlflowError> {
        request.check_page_size()?;
        let offset = request.token().map_or(Ok(0), decode_page_token)?;
        self.read(|transaction| self.search_page(transaction, request, offset))
    }

    fn search_runs_each(
        &self,
        request: &SearchRequest,
        visit: &mut dyn FnMut(Run),
    ) -> Result<usize, MlflowError> {
        request.check_page_size()?;
        let offset = request.token().map_or(Ok(0), decode_page_token)?;
        self.read(|transaction| self.stream_runs(transaction, request, offset, visit))
    }

    fn get_run(&self, run_id: &str) -> Result<Run, MlflowError> {
        self.read(|transaction| {
            let info = transaction
                .query_row(
                    "SELECT r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, r.end_time, \
                     r.artifact_uri, r.lifecycle_stage FROM runs r WHERE r.run_uuid = ?",
                    [run_id],
                    run_info_from_row,
                )
                .optional()
                .map_err(|err| self.sql_error(&format!("reading run {run_id}"), err))?
                .ok_or_else(|| self.not_found("run", run_id))?;
            self.load_run_data(transaction, vec![info], &RunFields::all(), &mut PageTimes::new())?
                .pop()
                .ok_or_else(|| self.not_found("run", run_id))
        })
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        self.write(|transaction| {
            self.create_run_in(transaction, experiment_id, run_name, start_time_ms, tags)
        })
    }

    fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        self.write(|transaction| self.update_run_in(transaction, run_id, status, end_time_ms))
    }

    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        self.write(|transaction| {
            self.require_active_run(transaction, run_id)?;
            self.insert_tag(transaction, run_id, key, value)
        })
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        self.write(|transaction| self.log_batch_in(transaction, run_id, metrics, params, tags))
    }

    fn download_artifacts(
        &self,
        run: &RunInfo,
        path: &str,
        dest: &Path,
    ) -> Result<PathBuf, MlflowError> {
        match ArtifactLocation::parse(&run.artifact_uri) {
            ArtifactLocation::Local(root) => artifacts::download_local(run, &root, path, dest),
            ArtifactLocation::Proxy { .. } => Err(artifacts::artifact_error(
                &run.run_id,
                path,
                format!(
                    "artifact URI {:?} is served by an MLflow tracking server; open the store with \
                     that server's http(s):// URI to download it",
                    run.artifact_uri
                ),
            )),
            ArtifactLocation::Unsupported(scheme) => {
                Err(artifacts::unsupported(run, path, &scheme))
            }
        }
    }

    fn log_artifact(
        &self,
        run: &RunInfo,
        artifact_path: &str,
        source: &Path,
    ) -> Result<(), MlflowError> {
        let limits = artifacts::DownloadLimits::from_env(&|name| std::env::var(name).ok())?;
        artifacts::upload_to_local_root(run, artifact_path, source, &limits).map(|_| ())
    }
}
