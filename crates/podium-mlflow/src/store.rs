//! The one interface every tracking backend implements.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::MlflowError;
use crate::model::{Experiment, MetricPoint, Run, RunInfo, RunStatus, RunsPage};
use crate::query::PageGuard;
use crate::request::SearchRequest;

/// The largest page MLflow 3.17.2 accepts for `runs/search` (more is a 400).
pub const MAX_RESULTS_LIMIT: usize = 50_000;

/// How a store's backing database is opened: the rule that a command that reads (or writes runs
/// into a store that must already hold them) never changes a store by opening it. Every store
/// that owns its schema (SQLite here; any database-backed store alike) follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenMode {
    /// The database must already be an MLflow tracking database: a missing or empty file, or
    /// one without MLflow's tables, is an error naming it, and nothing is created or written.
    #[default]
    Existing,
    /// A missing or empty database is given MLflow's schema and default experiment (a new
    /// store: `podium demo`, tests, a service setting one up).
    Create,
}

/// A tracking backend: an MLflow server over REST, or an MLflow SQLite database read directly.
///
/// Implementations are shared between threads (independent queries run concurrently).
/// Higher-level helpers ([`crate::query`]) page to the end; nothing above this trait calls
/// [`TrackingStore::search_runs_page`] with a page token by hand.
pub trait TrackingStore: Send + Sync + std::fmt::Debug {
    /// A human-readable location for messages (never contains credentials).
    fn describe(&self) -> String;

    /// The experiment with this exact name, if any (active or deleted).
    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, MlflowError>;

    /// Creates an experiment; fails with [`MlflowError::AlreadyExists`] when the name is taken.
    /// This is MLflow's only atomic create, so claims are built on it.
    fn create_experiment(&self, name: &str) -> Result<String, MlflowError>;

    /// Creates an experiment carrying `tags` from its first instant (one `experiments/create`
    /// call with tags; one transaction on SQLite), so whoever reads the new experiment — a
    /// retry after a lost response included — sees them. The default creates, then tags
    /// (not atomic); the stores override it.
    fn create_experiment_with_tags(
        &self,
        name: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, MlflowError> {
        let id = self.create_experiment(name)?;
        for (key, value) in tags {
            self.set_experiment_tag(&id, key, value)?;
        }
        Ok(id)
    }

    /// The experiment with this id (active or deleted); [`MlflowError::NotFound`] if none.
    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, MlflowError>;

    /// Every active experiment whose name starts with `prefix` (exactly: `_` and `%` are plain
    /// characters here), sorted by name. REST reads every page of `experiments/search`.
    fn experiments_with_prefix(&self, prefix: &str) -> Result<Vec<Experiment>, MlflowError>;

    /// Sets (or overwrites) one experiment tag.
    fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError>;

    /// Renames an experiment; [`MlflowError::AlreadyExists`] when `new_name` is taken (by an
    /// active or a deleted experiment, as in MLflow).
    fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<(), MlflowError>;

    /// Marks an experiment (and its runs) deleted, as MLflow does; its name stays taken until
    /// the experiment is purged by `mlflow gc`.
    fn delete_experiment(&self, experiment_id: &str) -> Result<(), MlflowError>;

    /// One page of `runs/search`: the runs of `request` (its filter, view, order, page size at
    /// most [`MAX_RESULTS_LIMIT`], starting at its page token) with only the tags, params and
    /// metrics its `fields` name (run info always). Stores leave the other data unread where
    /// they can (SQLite never queries it, REST drops it while deserialising).
    fn search_runs_page(&self, request: &SearchRequest) -> Result<RunsPage, MlflowError>;

    /// Every run of `request` from its page token to the last page, handed to `visit` one at a
    /// time; returns how many. No more than one page of `request.max_results` runs is held at
    /// once (the default reads page after page; SQLite overrides it with one statement read in
    /// small chunks), so a caller that keeps only what it needs of each run holds that.
    fn search_runs_each(
        &self,
        request: &SearchRequest,
        visit: &mut dyn FnMut(Run),
    ) -> Result<usize, MlflowError> {
        let mut pages = PageGuard::new(self.describe()).within(self.max_search_time());
        let mut request = request.clone();
        let mut count = 0;
        loop {
            let page = self.search_runs_page(&request)?;
            count += page.runs.len();
            page.runs.into_iter().for_each(&mut *visit);
            match page.next_page_token {
                Some(next) if !next.is_empty() => {
                    pages.next(&next)?;
                    request.page_token = Some(next);
                }
                _ => return Ok(count),
            }
        }
    }

    /// The longest one paginated search may take, every page included, before it stops with an
    /// error ([`PageGuard`]). Stores that page over a network take it from their settings (REST:
    /// `PODIUM_MAX_SEARCH_SECONDS`).
    fn max_search_time(&self) -> std::time::Duration {
        crate::query::DEFAULT_MAX_SEARCH_TIME
    }

    /// One run by id.
    fn get_run(&self, run_id: &str) -> Result<Run, MlflowError>;

    /// Creates a RUNNING run with these tags.
    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError>;

    /// Sets a run's status (and end time for terminal statuses).
    fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError>;

    /// Sets a run's status (and end time) only while `guard` holds of its experiment: still
    /// active, still named `guard.name`, still carrying tag `guard.tag`. Returns false, having
    /// written nothing, when it does not (the experiment was renamed, deleted, retagged or is
    /// gone).
    ///
    /// The default checks, then writes: two calls, so a change of the experiment between them
    /// goes unseen (MLflow's REST API has no conditional update). The database stores check
    /// and write in one transaction that holds the experiment (PostgreSQL locks its row, SQLite
    /// holds the write lock): a concurrent rename of it — a claim's takeover — lands entirely
    /// before the check or after the write.
    fn update_run_if(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
        guard: &ExperimentGuard<'_>,
    ) -> Result<bool, MlflowError> {
        match self.get_experiment(guard.experiment_id) {
            Ok(experiment) if guard.holds_for(&experiment) => {}
            Ok(_) | Err(MlflowError::NotFound { .. }) => return Ok(false),
            Err(err) => return Err(err),
        }
        self.update_run(run_id, status, end_time_ms)?;
        Ok(true)
    }

    /// Sets one tag.
    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError>;

    /// Logs metrics, params and tags; implementations chunk to the backend's size limits.
    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError>;

    /// Downloads the artifact sub-path `path` of a run (a file or a directory) to
    /// `dest/<basename of path>` atomically (temp dir + rename) and returns where it landed.
    fn download_artifacts(
        &self,
        run: &RunInfo,
        path: &str,
        dest: &Path,
    ) -> Result<PathBuf, MlflowError>;

    /// Uploads the local file `source` as the artifact `artifact_path` of a run, replacing an
    /// artifact already there. Unlike Python's `log_artifact(local_path, artifact_path)`,
    /// `artifact_path` names the file itself (`benchmark_results.json/benchmark.json` is what
    /// Python logs as `log_artifact("…/benchmark.json", "benchmark_results.json")`), so a
    /// later upload to the same path replaces it whatever the source file is called.
    ///
    /// Downloads' rules hold: a relative path of plain components, a regular source file of
    /// at most `PODIUM_MAX_DOWNLOAD_BYTES`, credentials sent only to the tracking server (or a
    /// host trusted by `PODIUM_TRUSTED_ARTIFACT_HOSTS`), retries as for every call. Into a
    /// local artifact root the file is replaced atomically
    /// ([`crate::artifacts::upload_to_local_root`]); through a server, with one `PUT` to its
    /// artifact proxy (`mlflow-artifacts`).
    fn log_artifact(
        &self,
        run: &RunInfo,
        artifact_path: &str,
        source: &Path,
    ) -> Result<(), MlflowError>;
}

/// What [`TrackingStore::update_run_if`] requires of an experiment: the claims protocol's
/// "this claim is still mine".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExperimentGuard<'a> {
    /// The experiment's id.
    pub experiment_id: &'a str,
    /// The name it must still have.
    pub name: &'a str,
    /// A tag (key, value) it must still carry.
    pub tag: (&'a str, &'a str),
}

impl ExperimentGuard<'_> {
    /// True when `experiment` is this guard's, active, so named and so tagged.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use podium_mlflow::{Experiment, ExperimentGuard};
    ///
    /// let mut claim = Experiment {
    ///     experiment_id: "7".into(),
    ///     name: "podium-claim-ab".into(),
    ///     artifact_location: String::new(),
    ///     lifecycle_stage: "active".into(),
    ///     tags: BTreeMap::from([("owner".to_string(), "me".to_string())]),
    /// };
    /// let guard = ExperimentGuard { experiment_id: "7", name: "podium-claim-ab", tag: ("owner", "me") };
    /// assert!(guard.holds_for(&claim));
    /// claim.name = "podium-claim-ab.expired.7.me".into();
    /// assert!(!guard.holds_for(&claim));
    /// ```
    pub fn holds_for(&self, experiment: &Experiment) -> bool {
        experiment.experiment_id == self.experiment_id
            && experiment.name == self.name
            && experiment.is_active()
            && experiment.tags.get(self.tag.0).map(String::as_str) == Some(self.tag.1)
    }
}
