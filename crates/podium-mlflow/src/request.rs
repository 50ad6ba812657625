//! [`SearchRequest`]: what one `runs/search` asks a store for.

use crate::model::{RunFields, ViewType};
use crate::store::MAX_RESULTS_LIMIT;

/// One `runs/search` request: the experiments, an MLflow filter string, the lifecycle view, the
/// page size, the order, where to start (a page token) and which tags, params and metrics of
/// each run to return (run info always). Built from [`SearchRequest::new`] with builder methods;
/// the defaults are MLflow's: no filter, active runs, pages of [`MAX_RESULTS_LIMIT`], the store's
/// default order, the first page, every field.
///
/// ```
/// use podium_mlflow::{RunFields, SearchRequest, ViewType};
///
/// let request = SearchRequest::new(["3".to_string()])
///     .filter("attributes.status = 'FINISHED'")
///     .view(ViewType::All)
///     .max_results(500)
///     .order_by(["attributes.start_time DESC".to_string()])
///     .fields(RunFields::none().with_metrics(["f1"]));
/// assert_eq!(request.experiment_ids, ["3"]);
/// assert_eq!(request.max_results, 500);
/// assert!(request.page_token.is_none());
/// let next = request.clone().page_token(Some("token-of-page-2".to_string()));
/// assert_eq!(next.page_token.as_deref(), Some("token-of-page-2"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// The experiments searched.
    pub experiment_ids: Vec<String>,
    /// An MLflow filter string; empty: every run.
    pub filter: String,
    /// Active, deleted or all runs.
    pub view: ViewType,
    /// Runs per page, 1 to [`MAX_RESULTS_LIMIT`] (stores refuse anything else).
    pub max_results: usize,
    /// MLflow `order_by` clauses; empty: newest start first, then the run id.
    pub order_by: Vec<String>,
    /// The `next_page_token` of the previous page; None (or empty): the first page.
    pub page_token: Option<String>,
    /// The tags, params and metrics to return.
    pub fields: RunFields,
}

impl SearchRequest {
    /// A request for every active run of `experiment_ids`, pages of [`MAX_RESULTS_LIMIT`].
    pub fn new(experiment_ids: impl IntoIterator<Item = String>) -> Self {
        Self {
            experiment_ids: experiment_ids.into_iter().collect(),
            filter: String::new(),
            view: ViewType::ActiveOnly,
            max_results: MAX_RESULTS_LIMIT,
            order_by: Vec::new(),
            page_token: None,
            fields: RunFields::all(),
        }
    }

    /// Sets the MLflow filter string.
    #[must_use]
    pub fn filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = filter.into();
        self
    }

    /// Sets the lifecycle view.
    #[must_use]
    pub fn view(mut self, view: ViewType) -> Self {
        self.view = view;
        self
    }

    /// Sets the page size.
    #[must_use]
    pub fn max_results(mut self, max_results: usize) -> Self {
        self.max_results = max_results;
        self
    }

    /// Sets the `order_by` clauses.
    #[must_use]
    pub fn order_by(mut self, order_by: impl IntoIterator<Item = String>) -> Self {
        self.order_by = order_by.into_iter().collect();
        self
    }

    /// Sets where the page starts: a `next_page_token`, or None for the first page.
    #[must_use]
    pub fn page_token(mut self, page_token: Option<String>) -> Self {
        self.page_token = page_token;
        self
    }

    /// Sets the projection.
    #[must_use]
    pub fn fields(mut self, fields: RunFields) -> Self {
        self.fields = fields;
        self
    }

    /// The page token, None when absent or empty (MLflow sends `""` for "no more pages").
    pub fn token(&self) -> Option<&str> {
        self.page_token.as_deref().filter(|token| !token.is_empty())
    }

    /// [`crate::MlflowError::InvalidQuery`] unless `max_results` is within the stores' limits.
    pub fn check_page_size(&self) -> Result<(), crate::MlflowError> {
        if self.max_results == 0 || self.max_results > MAX_RESULTS_LIMIT {
            return Err(crate::MlflowError::InvalidQuery(format!(
                "max_results must be between 1 and {MAX_RESULTS_LIMIT}, got {}",
                self.max_results
            )));
        }
        Ok(())
    }
}
