//! Queries on top of [`TrackingStore`]: every page, always.

use crate::error::MlflowError;
use crate::filter::Filter;
use crate::model::{Run, ViewType};
use crate::store::{MAX_RESULTS_LIMIT, TrackingStore};

/// All runs of the experiments matching `filter`, reading every page (never the classic silent
/// truncation at 1000). Conditions the server cannot express are applied here.
pub fn search_all(
    store: &dyn TrackingStore,
    experiment_ids: &[String],
    filter: &Filter,
    view: ViewType,
) -> Result<Vec<Run>, MlflowError> {
    let server_filter = filter.server_side();
    let mut runs = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.search_runs_page(
            experiment_ids,
            &server_filter,
            view,
            MAX_RESULTS_LIMIT,
            &[],
            token.as_deref(),
        )?;
        runs.extend(
            page.runs
                .into_iter()
                .filter(|run| filter.matches_client_side(run)),
        );
        match page.next_page_token {
            Some(next) if !next.is_empty() => token = Some(next),
            _ => break,
        }
    }
    Ok(runs)
}
