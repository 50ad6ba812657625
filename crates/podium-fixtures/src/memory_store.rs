//! An in-memory [`TrackingStore`] for tests of code built on selection: it evaluates the filter
//! strings [`podium_mlflow::Filter`] writes (tag equality and status, joined by `AND`), serves
//! small pages so callers must page, honours search projections ([`RunFields`]) unless told to
//! ignore them, and records every query. Writes that selection never
//! needs (experiment renames, artifact downloads) return [`MlflowError::InvalidQuery`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use podium_mlflow::{
    Experiment, MetricPoint, MlflowError, Run, RunFields, RunInfo, RunStatus, RunsPage,
    SearchRequest, TrackingStore, ViewType,
};

/// Runs and experiments held in memory.
#[derive(Debug)]
pub struct MemoryStore {
    page_size: usize,
    ignore_projections: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    experiments: Vec<Experiment>,
    runs: Vec<Run>,
    queries: Vec<String>,
    projections: Vec<RunFields>,
    run_lookups: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

/// One parsed `lhs = 'value'` clause.
#[derive(Debug, PartialEq, Eq)]
enum Clause {
    Tag(String, String),
    Status(String),
}

fn unsupported(what: impl Into<String>) -> MlflowError {
    MlflowError::InvalidQuery(what.into())
}

/// Parses the subset of MLflow's filter grammar that [`podium_mlflow::Filter`] writes.
fn parse_filter(filter: &str) -> Result<Vec<Clause>, MlflowError> {
    let mut clauses = Vec::new();
    let mut rest = filter.trim();
    while !rest.is_empty() {
        let (lhs, after) = if let Some(tag) = rest.strip_prefix("tags.`") {
            let end = tag
                .find('`')
                .ok_or_else(|| unsupported(format!("unterminated tag key in {filter:?}")))?;
            (Some(tag[..end].to_string()), &tag[end + 1..])
        } else if let Some(after) = rest.strip_prefix("attributes.status") {
            (None, after)
        } else {
            return Err(unsupported(format!(
                "memory store cannot evaluate {rest:?}"
            )));
        };
        let after = after
            .trim_start()
            .strip_prefix('=')
            .ok_or_else(|| unsupported(format!("only `=` is supported in {filter:?}")))?
            .trim_start();
        let quote = after
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
            .ok_or_else(|| unsupported(format!("expected a quoted value in {filter:?}")))?;
        let body = &after[1..];
        let end = body
            .find(quote)
            .ok_or_else(|| unsupported(format!("unterminated value in {filter:?}")))?;
        let value = body[..end].to_string();
        clauses.push(match lhs {
            Some(key) => Clause::Tag(key, value),
            None => Clause::Status(value),
        });
        rest = body[end + 1..].trim_start();
        if let Some(next) = rest.strip_prefix("AND ") {
            rest = next.trim_start();
        } else if !rest.is_empty() {
            return Err(unsupported(format!("expected AND in {filter:?}")));
        }
    }
    Ok(clauses)
}

impl MemoryStore {
    /// An empty store serving pages of at most 3 runs (so every caller must page).
    pub fn new() -> Self {
        Self::with_page_size(3)
    }

    /// An empty store serving pages of at most `page_size` runs.
    pub fn with_page_size(page_size: usize) -> Self {
        Self {
            page_size: page_size.max(1),
            ignore_projections: false,
            state: Mutex::new(State::default()),
        }
    }

    /// This store answering projected searches with whole runs, as if every field had been
    /// asked for: the reference to check that a projection leaves out nothing its caller reads.
    pub fn ignoring_projections(mut self) -> Self {
        self.ignore_projections = true;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an experiment named `name` (if absent) and returns its id.
    pub fn experiment(&self, name: &str) -> String {
        let mut state = self.state();
        if let Some(found) = state.experiments.iter().find(|e| e.name == name) {
            return found.experiment_id.clone();
        }
        let id = state.experiments.len().to_string();
        state.experiments.push(Experiment {
            experiment_id: id.clone(),
            name: name.to_string(),
            artifact_location: format!("mlflow-artifacts:/{id}"),
            lifecycle_stage: "active".to_string(),
            tags: BTreeMap::new(),
        });
        id
    }

    /// Adds a run as is (its `experiment_id` must name an experiment of this store).
    pub fn insert(&self, run: Run) {
        self.state().runs.push(run);
    }

    /// Every filter string searched so far, in order.
    pub fn queries(&self) -> Vec<String> {
        self.state().queries.clone()
    }

    /// How many runs were read one by one (`get_run`) so far.
    pub fn run_lookups(&self) -> usize {
        self.state().run_lookups
    }

    /// The projection of every projected page searched so far, in order.
    pub fn projections(&self) -> Vec<RunFields> {
        self.state().projections.clone()
    }

    fn matches(run: &Run, experiment_ids: &[String], clauses: &[Clause], view: ViewType) -> bool {
        let stage_ok = match view {
            ViewType::ActiveOnly => run.info.lifecycle_stage == "active",
            ViewType::DeletedOnly => run.info.lifecycle_stage == "deleted",
            ViewType::All => true,
        };
        stage_ok
            && experiment_ids.contains(&run.info.experiment_id)
            && clauses.iter().all(|clause| match clause {
                Clause::Tag(key, value) => run.tag(key) == Some(value.as_str()),
                Clause::Status(status) => run.info.status.as_str() == status,
            })
    }
}

impl TrackingStore for MemoryStore {
    fn describe(&self) -> String {
        "memory store".to_string()
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, MlflowError> {
        Ok(self
            .state()
            .experiments
            .iter()
            .find(|e| e.name == name)
            .cloned())
    }

    fn create_experiment(&self, name: &str) -> Result<String, MlflowError> {
        if self.state().experiments.iter().any(|e| e.name == name) {
            return Err(MlflowError::AlreadyExists {
                what: "experiment",
                name: name.to_string(),
                store: self.describe(),
            });
        }
        Ok(self.experiment(name))
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, MlflowError> {
        self.state()
            .experiments
            .iter()
            .find(|e| e.experiment_id == experiment_id)
            .cloned()
            .ok_or_else(|| MlflowError::NotFound {
                what: "experiment",
                id: experiment_id.to_string(),
                store: self.describe(),
            })
    }

    fn experiments_with_prefix(&self, prefix: &str) -> Result<Vec<Experiment>, MlflowError> {
        let mut found: Vec<Experiment> = self
            .state()
            .experiments
            .iter()
            .filter(|e| e.is_active() && e.name.starts_with(prefix))
            .cloned()
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        let mut state = self.state();
        let experiment = state
            .experiments
            .iter_mut()
            .find(|e| e.experiment_id == experiment_id)
            .ok_or_else(|| unsupported(format!("no experiment {experiment_id}")))?;
        experiment.tags.insert(key.to_string(), value.to_string());
        Ok(())
    }

    fn rename_experiment(&self, _experiment_id: &str, _new_name: &str) -> Result<(), MlflowError> {
        Err(unsupported("the memory store does not rename experiments"))
    }

    fn delete_experiment(&self, _experiment_id: &str) -> Result<(), MlflowError> {
        Err(unsupported("the memory store does not delete experiments"))
    }

    fn search_runs_page(&self, request: &SearchRequest) -> Result<RunsPage, MlflowError> {
        let fields = &request.fields;
        self.state().projections.push(fields.clone());
        let mut page = self.whole_runs_page(
            &request.experiment_ids,
            &request.filter,
            request.view,
            request.max_results,
            &request.order_by,
            request.token(),
        )?;
        if !self.ignore_projections {
            for run in &mut page.runs {
                fields.project(run);
            }
        }
        Ok(page)
    }

    fn get_run(&self, run_id: &str) -> Result<Run, MlflowError> {
        let mut state = self.state();
        state.run_lookups += 1;
        state
            .runs
            .iter()
            .find(|run| run.id() == run_id)
            .cloned()
            .ok_or_else(|| MlflowError::NotFound {
                what: "run",
                id: run_id.to_string(),
                store: self.describe(),
            })
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        let mut state = self.state();
        let run_id = format!("{:032x}", state.runs.len() + 1);
        let info = RunInfo {
            run_id: run_id.clone(),
            experiment_id: experiment_id.to_string(),
            run_name: run_name.to_string(),
            status: RunStatus::Running,
            start_time: Some(start_time_ms),
            end_time: None,
            artifact_uri: format!("mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"),
            lifecycle_stage: "active".to_string(),
        };
        state.runs.push(Run {
            info: info.clone(),
            tags: tags.clone(),
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
        });
        Ok(info)
    }

    fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        self.with_run(run_id, |run| {
            run.info.status = status;
            run.info.end_time = end_time_ms;
        })
    }

    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        self.with_run(run_id, |run| {
            run.tags.insert(key.to_string(), value.to_string());
        })
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        self.with_run(run_id, |run| {
            for point in metrics {
                run.metrics.insert(point.key.to_string(), point.value);
            }
            for (key, value) in params {
                run.params.insert(key.to_string(), value.to_string());
            }
            for (key, value) in tags {
                run.tags.insert(key.to_string(), value.to_string());
            }
        })
    }

    fn download_artifacts(
        &self,
        run: &RunInfo,
        _path: &str,
        _dest: &Path,
    ) -> Result<PathBuf, MlflowError> {
        Err(unsupported(format!(
            "the memory store holds no artifacts (run {})",
            run.run_id
        )))
    }

    fn log_artifact(
        &self,
        run: &RunInfo,
        artifact_path: &str,
        _source: &Path,
    ) -> Result<(), MlflowError> {
        Err(unsupported(format!(
            "the memory store holds no artifacts (run {}, {artifact_path})",
            run.run_id
        )))
    }
}

impl MemoryStore {
    /// One page of whole runs (the projection, if any, is applied by the caller).
    fn whole_runs_page(
        &self,
        experiment_ids: &[String],
        filter: &str,
        view: ViewType,
        max_results: usize,
        _order_by: &[String],
        page_token: Option<&str>,
    ) -> Result<RunsPage, MlflowError> {
        let clauses = parse_filter(filter)?;
        let offset = match page_token {
            None => 0,
            Some(token) => token
                .parse::<usize>()
                .map_err(|_| unsupported(format!("bad page token {token:?}")))?,
        };
        let mut state = self.state();
        state.queries.push(filter.to_string());
        let matching: Vec<&Run> = state
            .runs
            .iter()
            .filter(|run| Self::matches(run, experiment_ids, &clauses, view))
            .collect();
        let size = self.page_size.min(max_results.max(1));
        let runs: Vec<Run> = matching
            .iter()
            .skip(offset)
            .take(size)
            .map(|run| (*run).clone())
            .collect();
        let next = offset + runs.len();
        Ok(RunsPage {
            runs,
            next_page_token: (next < matching.len()).then(|| next.to_string()),
        })
    }

    fn with_run(&self, run_id: &str, change: impl FnOnce(&mut Run)) -> Result<(), MlflowError> {
        let mut state = self.state();
        let run = state
            .runs
            .iter_mut()
            .find(|run| run.id() == run_id)
            .ok_or_else(|| unsupported(format!("no run {run_id}")))?;
        change(run);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use podium_mlflow::Filter;

    use super::*;

    #[test]
    fn parses_what_filter_writes() {
        let filter = Filter::new()
            .tag_eq("code.stage", "hpo_trial")
            .tag_eq("note", "it's AND more")
            .status(RunStatus::Finished);
        assert_eq!(
            parse_filter(&filter.server_side()).unwrap(),
            vec![
                Clause::Tag("code.stage".into(), "hpo_trial".into()),
                Clause::Tag("note".into(), "it's AND more".into()),
                Clause::Status("FINISHED".into()),
            ]
        );
        assert!(parse_filter("metrics.f1 > 0.5").is_err());
        assert_eq!(parse_filter("").unwrap(), vec![]);
    }
}
