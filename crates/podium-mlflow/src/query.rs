//! Queries on top of [`TrackingStore`]: every page, always; deterministic answers.

use std::collections::BTreeMap;
use std::fmt;

use crate::error::MlflowError;
use crate::filter::Filter;
use crate::model::{Experiment, Run, RunFields, RunStatus, ViewType};
use crate::request::SearchRequest;
use crate::store::TrackingStore;

/// All runs of the experiments matching `filter`, reading every page (never the classic silent
/// truncation at 1000). Conditions the server cannot express are applied here.
pub fn search_all(
    store: &dyn TrackingStore,
    experiment_ids: &[String],
    filter: &Filter,
    view: ViewType,
) -> Result<Vec<Run>, MlflowError> {
    search_all_fields(store, experiment_ids, filter, view, &RunFields::all())
}

/// [`search_all`] returning only the tags, params and metrics named by `fields` (run info
/// always), so large searches hold only what their caller reads.
pub fn search_all_fields(
    store: &dyn TrackingStore,
    experiment_ids: &[String],
    filter: &Filter,
    view: ViewType,
    fields: &RunFields,
) -> Result<Vec<Run>, MlflowError> {
    let mut runs = Vec::new();
    let request = SearchRequest::new(experiment_ids.iter().cloned())
        .view(view)
        .fields(fields.clone());
    search_each(store, &request, filter, &mut |run| runs.push(run))?;
    Ok(runs)
}

/// Every run of `request` that matches `filter`, handed to `visit` one at a time: the
/// streaming form of [`search_all_fields`] (`request`'s own filter is replaced by `filter`'s
/// server-side part). At most one page of `request.max_results` runs is held at once, so a
/// caller that keeps a summary of each run holds that summary and one page. Returns how many
/// runs were visited.
pub fn search_each(
    store: &dyn TrackingStore,
    request: &SearchRequest,
    filter: &Filter,
    visit: &mut dyn FnMut(Run),
) -> Result<usize, MlflowError> {
    let mut request = request.clone().filter(filter.server_side());
    if !filter.has_client_side() {
        return store.search_runs_each(&request, visit);
    }
    // The client-side conditions read tags the caller may not have asked for: fetch them too,
    // and drop them again once the run is filtered.
    let wanted = request.fields.clone();
    request.fields.tags = request.fields.tags.with(filter.client_side_tag_keys());
    let projected = request.fields != wanted;
    let mut count = 0;
    store.search_runs_each(&request, &mut |mut run| {
        if filter.matches_client_side(&run) {
            if projected {
                wanted.project(&mut run);
            }
            count += 1;
            visit(run);
        }
    })?;
    Ok(count)
}

/// All runs matching an MLflow filter string typed by a user (every page). Prefer
/// [`search_all`] with a [`Filter`] in code: it quotes values correctly.
pub fn search_all_raw(
    store: &dyn TrackingStore,
    experiment_ids: &[String],
    filter: &str,
    view: ViewType,
) -> Result<Vec<Run>, MlflowError> {
    search_all_raw_fields(store, experiment_ids, filter, view, &RunFields::all())
}

/// [`search_all_raw`] returning only the tags, params and metrics named by `fields`.
pub fn search_all_raw_fields(
    store: &dyn TrackingStore,
    experiment_ids: &[String],
    filter: &str,
    view: ViewType,
    fields: &RunFields,
) -> Result<Vec<Run>, MlflowError> {
    let mut runs = Vec::new();
    let request = SearchRequest::new(experiment_ids.iter().cloned())
        .filter(filter)
        .view(view)
        .fields(fields.clone());
    store.search_runs_each(&request, &mut |run| runs.push(run))?;
    Ok(runs)
}

/// Most pages one search reads: 100 million runs at MLflow's 1000 per page.
pub const MAX_PAGES: usize = 100_000;

/// The time budget of one paginated search when its store sets none
/// ([`crate::TrackingStore::max_search_time`]; REST: `PODIUM_MAX_SEARCH_SECONDS`).
pub const DEFAULT_MAX_SEARCH_TIME: std::time::Duration = crate::rest::DEFAULT_MAX_SEARCH_TIME;

/// Stops a paginated search a server would otherwise keep going forever: a page token seen
/// before (the server loops), more than [`MAX_PAGES`] pages, or pages still coming when the
/// search's time budget is spent (fresh tokens forever). Every store's paging loop goes
/// through one.
#[derive(Debug)]
pub struct PageGuard {
    store: String,
    endpoint: &'static str,
    seen: std::collections::HashSet<String>,
    started: std::time::Instant,
    budget: std::time::Duration,
}

impl PageGuard {
    /// A guard for one search of the store `store` describes (for its messages), with the
    /// [`DEFAULT_MAX_SEARCH_TIME`] budget.
    pub fn new(store: impl Into<String>) -> PageGuard {
        PageGuard::for_endpoint(store, "runs/search")
    }

    /// A guard for a paginated search on another endpoint (`experiments/search`).
    pub fn for_endpoint(store: impl Into<String>, endpoint: &'static str) -> PageGuard {
        PageGuard {
            store: store.into(),
            endpoint,
            seen: std::collections::HashSet::new(),
            started: std::time::Instant::now(),
            budget: DEFAULT_MAX_SEARCH_TIME,
        }
    }

    /// This guard with a time budget of `budget` for the whole search, from now.
    pub fn within(mut self, budget: std::time::Duration) -> PageGuard {
        self.budget = budget;
        self.started = std::time::Instant::now();
        self
    }

    /// Records the `next_page_token` of a page; an error when it repeats, there are too many
    /// pages, or the search has used up its time budget.
    pub fn next(&mut self, token: &str) -> Result<(), MlflowError> {
        let elapsed = self.started.elapsed();
        let message = if elapsed > self.budget {
            format!(
                "the search was stopped after {} pages and {:.1} s: the server still sends page \
                 tokens, and one search may take at most {:.0} s (PODIUM_MAX_SEARCH_SECONDS \
                 raises it)",
                self.seen.len() + 1,
                elapsed.as_secs_f64(),
                self.budget.as_secs_f64()
            )
        } else if self.seen.len() + 1 >= MAX_PAGES {
            format!(
                "more than {MAX_PAGES} pages of {}; the server keeps sending page tokens",
                self.endpoint
            )
        } else if !self.seen.insert(token.to_string()) {
            let shown: String = token.chars().take(64).collect();
            format!(
                "the server sent page token {shown:?} again after {} pages; its pagination \
                 loops, so the search is stopped",
                self.seen.len() + 1
            )
        } else {
            return Ok(());
        };
        Err(MlflowError::Protocol {
            store: self.store.clone(),
            context: self.endpoint.to_string(),
            message,
        })
    }
}

/// The experiment named `name`, or [`MlflowError::NotFound`].
pub fn experiment_by_name(
    store: &dyn TrackingStore,
    name: &str,
) -> Result<Experiment, MlflowError> {
    store
        .get_experiment_by_name(name)?
        .ok_or_else(|| MlflowError::NotFound {
            what: "experiment",
            id: name.to_string(),
            store: store.describe(),
        })
}

/// Active runs whose tags equal `tags` (all of them) and, when given, whose status is `status`;
/// filtered by the store, every page.
///
/// ```
/// # use std::collections::BTreeMap;
/// # use podium_mlflow::{RunStatus, TrackingStore};
/// # use podium_mlflow::query::runs_with_tags;
/// # let dir = tempfile::tempdir()?;
/// # let store = podium_mlflow::sqlite::SqliteStore::open(&dir.path().join("mlflow.db"))?;
/// # let exp = store.create_experiment("e")?;
/// # let tags = BTreeMap::from([("stage".to_string(), "hpo".to_string())]);
/// # let run = store.create_run(&exp, "r", 1, &tags)?;
/// # store.update_run(&run.run_id, RunStatus::Finished, Some(2))?;
/// let runs = runs_with_tags(&store, &[exp], &[("stage", "hpo")], Some(RunStatus::Finished))?;
/// assert_eq!(runs.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn runs_with_tags(
    store: &dyn TrackingStore,
    experiment_ids: &[String],
    tags: &[(&str, &str)],
    status: Option<RunStatus>,
) -> Result<Vec<Run>, MlflowError> {
    let mut filter = tags.iter().fold(Filter::new(), |filter, (key, value)| {
        filter.tag_eq(*key, *value)
    });
    if let Some(status) = status {
        filter = filter.status(status);
    }
    search_all(store, experiment_ids, &filter, ViewType::ActiveOnly)
}

/// Whether a larger or a smaller metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Larger is better (F1, accuracy).
    Maximize,
    /// Smaller is better (loss, latency).
    Minimize,
}

impl Direction {
    /// Parses `maximize`/`max` or `minimize`/`min` (case-insensitive).
    pub fn parse(text: &str) -> Option<Direction> {
        match text.trim().to_ascii_lowercase().as_str() {
            "maximize" | "max" => Some(Direction::Maximize),
            "minimize" | "min" => Some(Direction::Minimize),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Maximize => "maximize",
            Direction::Minimize => "minimize",
        })
    }
}

/// The best run by `metric` in `direction`. Runs without the metric or with NaN are skipped.
/// Ties are broken deterministically: earlier start time first (a missing start time counts
/// as latest), then the smaller run id; the order the store returned never matters.
///
/// ```
/// # use std::collections::BTreeMap;
/// # use podium_mlflow::{Run, RunInfo, RunStatus};
/// use podium_mlflow::query::{best_run, Direction};
/// # let run = |id: &str, start: i64, f1: f64| Run {
/// #     info: RunInfo { run_id: id.into(), experiment_id: "1".into(), run_name: id.into(),
/// #         status: RunStatus::Finished, start_time: Some(start), end_time: None,
/// #         artifact_uri: String::new(), lifecycle_stage: "active".into() },
/// #     tags: BTreeMap::new(), params: BTreeMap::new(),
/// #     metrics: BTreeMap::from([("f1".to_string(), f1)]) };
/// let runs = vec![run("b", 10, 0.9), run("a", 10, 0.9), run("c", 5, f64::NAN)];
/// assert_eq!(best_run(&runs, "f1", Direction::Maximize).unwrap().id(), "a");
/// ```
pub fn best_run<'a>(runs: &'a [Run], metric: &str, direction: Direction) -> Option<&'a Run> {
    runs.iter()
        .filter_map(|run| {
            run.metric(metric)
                .filter(|value| !value.is_nan())
                .map(|value| (run, value))
        })
        .min_by(|(a, a_value), (b, b_value)| {
            let by_value = match direction {
                Direction::Maximize => b_value.total_cmp(a_value),
                Direction::Minimize => a_value.total_cmp(b_value),
            };
            by_value
                .then_with(|| {
                    let start = |run: &Run| run.info.start_time.unwrap_or(i64::MAX);
                    start(a).cmp(&start(b))
                })
                .then_with(|| a.id().cmp(b.id()))
        })
        .map(|(run, _)| run)
}

/// Runs grouped by the value of tag `key`, groups sorted by value; runs keep their order.
/// Runs without the tag are left out.
pub fn group_by_tag(runs: Vec<Run>, key: &str) -> BTreeMap<String, Vec<Run>> {
    let mut groups: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for run in runs {
        if let Some(value) = run.tags.get(key).cloned() {
            groups.entry(value).or_default().push(run);
        }
    }
    groups
}

/// Runs several independent searches at once, one thread each, sharing the store (e.g. the
/// candidates of every backbone). Results come back in the order of `filters`, each labelled.
pub fn search_all_concurrently<K: Clone + Send + Sync>(
    store: &dyn TrackingStore,
    experiment_ids: &[String],
    filters: &[(K, Filter)],
    view: ViewType,
) -> Vec<(K, Result<Vec<Run>, MlflowError>)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = filters
            .iter()
            .map(|(label, filter)| {
                let handle = scope.spawn(move || search_all(store, experiment_ids, filter, view));
                (label.clone(), handle)
            })
            .collect();
        handles
            .into_iter()
            .map(|(label, handle)| {
                let result = handle.join().unwrap_or_else(|_| {
                    Err(MlflowError::InvalidQuery(
                        "a search thread panicked".to_string(),
                    ))
                });
                (label, result)
            })
            .collect()
    })
}
