//! What a Ctrl-C or SIGTERM must clean up: benchmark runs in flight (marked KILLED) and claims held
//! (released so other workers need not wait for the lease).
//!
//! The binary installs the signal handler and calls [`InFlight::interrupt_all`]; the library
//! only keeps the books, so embedding services can wire it to their own shutdown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use podium_keys::{Tag, TagRegistry};
use podium_mlflow::{RunStatus, TrackingStore};

use crate::claim::{Claim, now_ms};

#[derive(Debug)]
struct Entry {
    claim: Claim,
    run_id: Option<String>,
}

/// The claims and runs this process holds right now. Clones share the same books.
#[derive(Debug, Clone)]
pub struct InFlight {
    store: Arc<dyn TrackingStore>,
    /// The `benchmark.error` tag key a KILLED run gets its reason under.
    error_tag: String,
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
    interrupted: Arc<AtomicBool>,
}

impl InFlight {
    /// Empty books for runs and claims on `store`; runs are tagged with `tags`' keys.
    pub fn new(store: Arc<dyn TrackingStore>, tags: &TagRegistry) -> Self {
        Self {
            store,
            error_tag: tags.get(Tag::BenchmarkError).to_string(),
            entries: Arc::new(Mutex::new(BTreeMap::new())),
            interrupted: Arc::new(AtomicBool::new(false)),
        }
    }

    /// True once [`InFlight::interrupt_all`] ran: no new work may start.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock leaves the books usable: recover them.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a claim just won.
    pub(crate) fn add_claim(&self, claim: &Claim) {
        self.lock().insert(
            claim.key().to_string(),
            Entry {
                claim: claim.clone(),
                run_id: None,
            },
        );
    }

    /// Creates the benchmark run of `key` with `create` (its `runs/create`) with the books
    /// locked, and records the run it returns: registered before it exists, in effect. An
    /// interrupt that comes while the run is being created waits for the create and marks the
    /// run KILLED, instead of finding no run to mark and leaving it RUNNING (with no claim
    /// behind it once the claim is released). `None`, and nothing created, when an interrupt
    /// came first.
    pub(crate) fn create_run<E>(
        &self,
        key: &str,
        create: impl FnOnce() -> Result<String, E>,
    ) -> Option<Result<String, E>> {
        let mut entries = self.lock();
        if self.is_interrupted() {
            return None;
        }
        let created = create();
        if let (Ok(run_id), Some(entry)) = (&created, entries.get_mut(key)) {
            entry.run_id = Some(run_id.clone());
        }
        Some(created)
    }

    /// Runs `finish` (the terminal writes of a key's run) unless an interrupt came first, with
    /// the books locked so an interrupt cannot interleave; the key leaves the books either way.
    /// Returns `None` when interrupted.
    pub(crate) fn finish<T>(&self, key: &str, finish: impl FnOnce() -> T) -> Option<T> {
        let mut entries = self.lock();
        if self.is_interrupted() {
            return None;
        }
        let result = finish();
        entries.remove(key);
        Some(result)
    }

    /// Forgets a key whose claim was released normally.
    pub(crate) fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Marks every run in flight KILLED and releases every claim held. Returns how many runs
    /// were marked. Safe to call from a signal-handling thread; later calls do nothing.
    pub fn interrupt_all(&self) -> usize {
        let mut entries = self.lock();
        if self.interrupted.swap(true, Ordering::SeqCst) {
            return 0;
        }
        let mut killed = 0;
        for (key, entry) in std::mem::take(&mut *entries) {
            if let Some(run_id) = &entry.run_id {
                let result = self
                    .store
                    .set_tag(run_id, &self.error_tag, "interrupted (Ctrl-C or SIGTERM)")
                    .and_then(|()| {
                        self.store
                            .update_run(run_id, RunStatus::Killed, Some(now_ms()))
                    });
                match result {
                    Ok(()) => killed += 1,
                    Err(err) => tracing::warn!("cannot mark benchmark run {run_id} KILLED: {err}"),
                }
            }
            if let Err(err) = entry.claim.release() {
                tracing::warn!("cannot release the claim of benchmark key {key}: {err}");
            }
        }
        killed
    }
}
