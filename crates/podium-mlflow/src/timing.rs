//! Where a search spends its time, for `--profile` output: waiting on the store (SQL statements
//! stepping through the file, or an HTTP exchange) and parsing its answer into [`crate::Run`]s.
//!
//! Recording is off until [`enable`] is called, so ordinary searches pay one relaxed atomic load
//! per page. Counters are process-wide sums of thread time: with several searches running at
//! once they add up to more than the wall time. Stores add to them once per page, not per row.
//!
//! ```
//! use podium_mlflow::timing;
//!
//! timing::enable();
//! let before = timing::snapshot();
//! // … searches …
//! let spent = timing::snapshot().since(&before);
//! assert!(spent.store >= std::time::Duration::ZERO);
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

static ENABLED: AtomicBool = AtomicBool::new(false);
static STORE_NANOS: AtomicU64 = AtomicU64::new(0);
static PARSING_NANOS: AtomicU64 = AtomicU64::new(0);
static PAGES: AtomicU64 = AtomicU64::new(0);
static RUNS: AtomicU64 = AtomicU64::new(0);
static ROWS: AtomicU64 = AtomicU64::new(0);

/// Totals since the process started recording (see [`enable`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreTimings {
    /// Waiting on the store: SQLite statements stepping (reading pages, evaluating filters,
    /// sorting) or an HTTP request until its body has arrived.
    pub store: Duration,
    /// Turning the store's rows or response bytes into runs.
    pub parsing: Duration,
    /// Search pages answered.
    pub pages: u64,
    /// Runs returned in those pages.
    pub runs: u64,
    /// Tag, param and metric entries read for those runs.
    pub rows: u64,
}

impl StoreTimings {
    /// What was recorded between `earlier` and `self`.
    pub fn since(&self, earlier: &StoreTimings) -> StoreTimings {
        StoreTimings {
            store: self.store.saturating_sub(earlier.store),
            parsing: self.parsing.saturating_sub(earlier.parsing),
            pages: self.pages.saturating_sub(earlier.pages),
            runs: self.runs.saturating_sub(earlier.runs),
            rows: self.rows.saturating_sub(earlier.rows),
        }
    }
}

/// Starts recording for the rest of the process.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// True once [`enable`] was called.
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The totals recorded so far.
pub fn snapshot() -> StoreTimings {
    StoreTimings {
        store: Duration::from_nanos(STORE_NANOS.load(Ordering::Relaxed)),
        parsing: Duration::from_nanos(PARSING_NANOS.load(Ordering::Relaxed)),
        pages: PAGES.load(Ordering::Relaxed),
        runs: RUNS.load(Ordering::Relaxed),
        rows: ROWS.load(Ordering::Relaxed),
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Adds one page's times (no-op unless recording).
pub fn record_page(store: Duration, parsing: Duration, runs: usize, rows: usize) {
    if !is_enabled() {
        return;
    }
    STORE_NANOS.fetch_add(nanos(store), Ordering::Relaxed);
    PARSING_NANOS.fetch_add(nanos(parsing), Ordering::Relaxed);
    PAGES.fetch_add(1, Ordering::Relaxed);
    RUNS.fetch_add(u64::try_from(runs).unwrap_or(u64::MAX), Ordering::Relaxed);
    ROWS.fetch_add(u64::try_from(rows).unwrap_or(u64::MAX), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_add_up_once_enabled() {
        enable();
        let before = snapshot();
        record_page(Duration::from_millis(3), Duration::from_millis(1), 10, 40);
        record_page(Duration::from_millis(2), Duration::from_millis(1), 5, 20);
        let spent = snapshot().since(&before);
        // Other tests may record concurrently: at least this test's pages are there.
        assert!(spent.store >= Duration::from_millis(5));
        assert!(spent.parsing >= Duration::from_millis(2));
        assert!(spent.pages >= 2 && spent.runs >= 15 && spent.rows >= 60);
    }
}
