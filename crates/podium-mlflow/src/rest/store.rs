//! [`TrackingStore`] for [`RestStore`]: each call as MLflow's REST API has it.

use std::time::Instant;

use super::*;

impl TrackingStore for RestStore {
    fn describe(&self) -> String {
        self.display_url.clone()
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, MlflowError> {
        #[derive(Deserialize)]
        struct Response {
            experiment: ExperimentJson,
        }
        match self.get::<Response>("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(response) => Ok(Some(response.experiment.into())),
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn create_experiment(&self, name: &str) -> Result<String, MlflowError> {
        self.create_experiment_with_tags(name, &[])
    }

    fn create_experiment_with_tags(
        &self,
        name: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, MlflowError> {
        #[derive(Serialize)]
        struct Tag<'a> {
            key: &'a str,
            value: &'a str,
        }
        #[derive(Serialize)]
        struct Request<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            tags: Vec<Tag<'a>>,
        }
        #[derive(Deserialize)]
        struct Response {
            experiment_id: String,
        }
        let request = Request {
            name,
            tags: tags.iter().map(|(key, value)| Tag { key, value }).collect(),
        };
        match self.post::<_, Response>("experiments/create", &request) {
            Ok(response) => Ok(response.experiment_id),
            Err(err) if is_already_exists(&err) => Err(MlflowError::AlreadyExists {
                what: "experiment",
                name: name.to_string(),
                store: self.display_url.clone(),
            }),
            Err(err) => Err(err),
        }
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, MlflowError> {
        self.fetch_experiment(experiment_id)
    }

    fn experiments_with_prefix(&self, prefix: &str) -> Result<Vec<Experiment>, MlflowError> {
        self.experiments_with_prefix_paged(prefix, EXPERIMENTS_PAGE_SIZE)
    }

    fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_id: &'a str,
            key: &'a str,
            value: &'a str,
        }
        let request = Request {
            experiment_id,
            key,
            value,
        };
        match self.post::<_, serde::de::IgnoredAny>("experiments/set-experiment-tag", &request) {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("experiment", experiment_id)),
            Err(err) => Err(err),
        }
    }

    fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_id: &'a str,
            new_name: &'a str,
        }
        let request = Request {
            experiment_id,
            new_name,
        };
        match self.post::<_, serde::de::IgnoredAny>("experiments/update", &request) {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("experiment", experiment_id)),
            Err(err) if is_already_exists(&err) || is_unique_violation(&err) => {
                Err(MlflowError::AlreadyExists {
                    what: "experiment",
                    name: new_name.to_string(),
                    store: self.display_url.clone(),
                })
            }
            Err(err) => Err(err),
        }
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_id: &'a str,
        }
        match self
            .post::<_, serde::de::IgnoredAny>("experiments/delete", &Request { experiment_id })
        {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("experiment", experiment_id)),
            Err(err) => Err(err),
        }
    }

    fn max_search_time(&self) -> Duration {
        self.config.max_search_time
    }

    fn search_runs_page(&self, request: &SearchRequest) -> Result<RunsPage, MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_ids: &'a [String],
            filter: &'a str,
            run_view_type: &'static str,
            max_results: usize,
            order_by: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            page_token: Option<&'a str>,
        }
        request.check_page_size()?;
        let fields = &request.fields;
        let filter = request.filter.as_str();
        let request = Request {
            experiment_ids: &request.experiment_ids,
            filter,
            run_view_type: view_name(request.view),
            max_results: request.max_results,
            order_by: &request.order_by,
            page_token: request.token(),
        };
        // For `--profile`: the exchange (request, then the body decoded as it arrives) is the
        // store's time; building runs from the decoded page is parsing.
        let started = Instant::now();
        let response = match self.post_seed(
            "runs/search",
            &request,
            ProjectedSearchResponse(fields),
            Connection::Fresh,
        ) {
            Err(MlflowError::Http {
                status: 400,
                message,
                ..
            }) => {
                return Err(MlflowError::InvalidQuery(format!(
                    "{} rejected filter {filter:?}: {message}",
                    self.display_url
                )));
            }
            other => other?,
        };
        let exchanged = started.elapsed();
        let runs = response
            .runs
            .into_iter()
            .map(RunJson::into_run)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| MlflowError::Protocol {
                store: self.display_url.clone(),
                context: "runs/search".to_string(),
                message,
            })?;
        if crate::timing::is_enabled() {
            let total = started.elapsed();
            let entries = runs
                .iter()
                .map(|run| run.tags.len() + run.params.len() + run.metrics.len())
                .sum();
            crate::timing::record_page(
                exchanged,
                total.saturating_sub(exchanged),
                runs.len(),
                entries,
            );
        }
        Ok(RunsPage {
            runs,
            next_page_token: response.next_page_token.filter(|token| !token.is_empty()),
        })
    }

    fn get_run(&self, run_id: &str) -> Result<Run, MlflowError> {
        #[derive(Deserialize)]
        struct Response {
            run: RunJson,
        }
        match self.get::<Response>("runs/get", &[("run_id", run_id)]) {
            Ok(response) => response
                .run
                .into_run()
                .map_err(|message| MlflowError::Protocol {
                    store: self.display_url.clone(),
                    context: format!("runs/get {run_id}"),
                    message,
                }),
            Err(err) if is_missing(&err) => Err(self.not_found("run", run_id)),
            Err(err) => Err(err),
        }
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_id: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            run_name: &'a str,
            start_time: i64,
            tags: Vec<KeyValue<'a>>,
        }
        #[derive(Deserialize)]
        struct Response {
            run: RunJson,
        }
        let request = Request {
            experiment_id,
            run_name,
            start_time: start_time_ms,
            tags: tags
                .iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect(),
        };
        let response: Response = match self.post("runs/create", &request) {
            Err(err) if is_missing(&err) => return Err(self.not_found("experiment", experiment_id)),
            other => other?,
        };
        response
            .run
            .info
            .into_info()
            .map_err(|message| MlflowError::Protocol {
                store: self.display_url.clone(),
                context: "runs/create".to_string(),
                message,
            })
    }

    fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            run_id: &'a str,
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            end_time: Option<i64>,
        }
        let request = Request {
            run_id,
            status: status.as_str(),
            end_time: end_time_ms,
        };
        match self.post::<_, serde::de::IgnoredAny>("runs/update", &request) {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("run", run_id)),
            Err(err) => Err(err),
        }
    }

    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            run_id: &'a str,
            key: &'a str,
            value: &'a str,
        }
        match self.post::<_, serde::de::IgnoredAny>("runs/set-tag", &Request { run_id, key, value })
        {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("run", run_id)),
            Err(err) => Err(err),
        }
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            run_id: &'a str,
            metrics: Vec<MetricJson<'a>>,
            params: Vec<KeyValue<'a>>,
            tags: Vec<KeyValue<'a>>,
        }
        for (m, p, t) in batch_chunks(metrics.len(), params.len(), tags.len()) {
            let request = Request {
                run_id,
                metrics: metrics[m]
                    .iter()
                    .map(|point| MetricJson {
                        key: point.key,
                        value: MlflowFloat(point.value),
                        timestamp: point.timestamp,
                        step: point.step,
                    })
                    .collect(),
                params: params[p]
                    .iter()
                    .map(|(key, value)| KeyValue { key, value })
                    .collect(),
                tags: tags[t]
                    .iter()
                    .map(|(key, value)| KeyValue { key, value })
                    .collect(),
            };
            match self.post::<_, serde::de::IgnoredAny>("runs/log-batch", &request) {
                Ok(_) => {}
                Err(err) if is_missing(&err) => return Err(self.not_found("run", run_id)),
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    fn download_artifacts(
        &self,
        run: &RunInfo,
        path: &str,
        dest: &Path,
    ) -> Result<PathBuf, MlflowError> {
        match ArtifactLocation::parse(&run.artifact_uri) {
            ArtifactLocation::Proxy { authority, root } => {
                let source = ProxySource {
                    store: self,
                    base: self.artifacts_base(run, path, authority.as_deref())?,
                };
                artifacts::download_tree(
                    &source,
                    &run.run_id,
                    &root,
                    path,
                    dest,
                    &self.config.download_limits,
                )
            }
            ArtifactLocation::Local(root) => {
                artifacts::download_local_with(run, &root, path, dest, &self.config.download_limits)
            }
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
        let limits = &self.config.download_limits;
        match ArtifactLocation::parse(&run.artifact_uri) {
            ArtifactLocation::Proxy { authority, root } => {
                let components = artifacts::upload_components(&run.run_id, artifact_path)?;
                let (opened, size) =
                    artifacts::open_upload_source(&run.run_id, artifact_path, source, limits)?;
                let target = proxy_path(&root, &components);
                let proxy = ProxySource {
                    store: self,
                    base: self.artifacts_base(run, artifact_path, authority.as_deref())?,
                };
                proxy.upload(&target, &opened, size)
            }
            ArtifactLocation::Local(root) => {
                artifacts::write_local(run, &root, artifact_path, source, limits).map(|_| ())
            }
            ArtifactLocation::Unsupported(scheme) => {
                Err(artifacts::unsupported(run, artifact_path, &scheme))
            }
        }
    }
}

/// `root/component/…`, the path of an artifact under the proxy's artifact destination.
fn proxy_path(root: &str, components: &[&str]) -> String {
    std::iter::once(root)
        .chain(components.iter().copied())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

pub(super) fn is_unique_violation(err: &MlflowError) -> bool {
    matches!(err, MlflowError::Http { message, .. } if message.contains("UNIQUE constraint"))
}
