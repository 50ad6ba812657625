//! Claims: at most one worker measures a benchmark key at a time, across processes and machines
//! that share one tracking store (an MLflow server or a SQLite file).
//!
//! MLflow's only atomic create is a unique experiment name, so a claim on key `K` is the active
//! experiment named `podium-claim-<sha256(K)[:32]>`. Whoever creates it owns the claim; its
//! tags carry the owner, the key, the in-flight benchmark run and the lease expiry (Unix ms).
//! The owner renews the lease while it works; a claim whose lease has expired is taken over by
//! renaming *that experiment id* to a unique tombstone name and racing on the create again.
//! The protocol and exactly what it guarantees are written down in docs/ARCHITECTURE.md
//! ("Benchmark claims").
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use podium_bench::claim::{ClaimOutcome, Claims};
//! use podium_keys::TagRegistry;
//! use podium_mlflow::{SqliteStore, TrackingStore};
//!
//! let dir = tempfile::tempdir()?;
//! let store: Arc<dyn TrackingStore> = Arc::new(SqliteStore::open(&dir.path().join("mlflow.db"))?);
//! let tags = TagRegistry::defaults();
//! let alice = Claims::new(store.clone(), "alice".into(), Duration::from_secs(60), &tags);
//! let bob = Claims::new(store.clone(), "bob".into(), Duration::from_secs(60), &tags);
//!
//! let ClaimOutcome::Won(claim) = alice.try_claim("run1:data:eval:bench")? else { panic!() };
//! assert!(matches!(bob.try_claim("run1:data:eval:bench")?, ClaimOutcome::Held { .. }));
//! claim.release()?;
//! assert!(matches!(bob.try_claim("run1:data:eval:bench")?, ClaimOutcome::Won(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use podium_keys::{Tag, TagRegistry};
use podium_mlflow::{Experiment, ExperimentGuard, MlflowError, RunStatus, TrackingStore};

use crate::error::BenchError;

/// Prefix of every claim experiment's name.
pub const CLAIM_PREFIX: &str = "podium-claim-";

/// Environment variable overriding the lease length in seconds (fractions allowed).
pub const LEASE_ENV: &str = "PODIUM_CLAIM_LEASE_SECONDS";

/// The default lease: long enough to ride out a slow tracking server, short enough that a
/// crashed worker's key is picked up again within minutes.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Experiment tags of a claim experiment (internal to the protocol, not run tags).
pub mod claim_tag {
    /// Who holds the claim (`host:pid:random`).
    pub const OWNER: &str = "podium.claim.owner";
    /// The full benchmark key.
    pub const KEY: &str = "podium.claim.key";
    /// Lease expiry, Unix milliseconds by the owner's clock.
    pub const EXPIRES_MS: &str = "podium.claim.expires_ms";
    /// The benchmark run the owner is measuring into (so a taker can mark it FAILED).
    pub const RUN_ID: &str = "podium.claim.run_id";
}

/// Milliseconds since the Unix epoch by this machine's clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// The claim experiment name of a benchmark key: `podium-claim-<sha256(key)[:32]>`.
///
/// ```
/// let name = podium_bench::claim::claim_name("a:b:c:d");
/// assert!(name.starts_with("podium-claim-") && name.len() == 13 + 32);
/// ```
pub fn claim_name(key: &str) -> String {
    let digest = podium_keys::sha256_hex(key);
    format!("{CLAIM_PREFIX}{}", &digest[..32])
}

/// The longest lease accepted: a week. Longer ones would keep a dead worker's key blocked for
/// longer than any benchmark takes, and would overflow expiry arithmetic.
pub const MAX_LEASE: Duration = Duration::from_secs(7 * 24 * 3600);

/// The lease from [`LEASE_ENV`] when set, else [`DEFAULT_LEASE`].
pub fn lease_from_env() -> Result<Duration, BenchError> {
    match std::env::var(LEASE_ENV) {
        Ok(text) if !text.trim().is_empty() => {
            parse_lease(&text).ok_or_else(|| BenchError::Config {
                file: LEASE_ENV.into(),
                key: LEASE_ENV.into(),
                message: format!(
                    "{text:?} is not a number of seconds in (0, {}]",
                    MAX_LEASE.as_secs()
                ),
            })
        }
        _ => Ok(DEFAULT_LEASE),
    }
}

/// Parses a number of seconds in (0, [`MAX_LEASE`]]; anything else (not a number, zero,
/// negative, NaN, infinite, longer than a week) is `None`.
///
/// ```
/// use podium_bench::claim::parse_lease;
/// assert_eq!(parse_lease("1.5").map(|d| d.as_millis()), Some(1500));
/// assert_eq!(parse_lease("1e308"), None);
/// assert_eq!(parse_lease("18446744073709551615"), None);
/// assert_eq!(parse_lease("0"), None);
/// ```
pub fn parse_lease(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().parse().ok()?;
    let valid = seconds.is_finite() && seconds > 0.0 && seconds <= MAX_LEASE.as_secs_f64();
    valid.then(|| Duration::from_secs_f64(seconds))
}

/// A worker identity unique across machines and processes: `host:pid:random`.
pub fn worker_id() -> String {
    let host = podium_variants::fs::read_regular_text(
        std::path::Path::new("/proc/sys/kernel/hostname"),
        4096,
    )
    .ok()
    .or_else(|| std::env::var("HOSTNAME").ok())
    .or_else(|| std::env::var("COMPUTERNAME").ok())
    .map(|name| name.trim().to_string())
    .filter(|name| !name.is_empty())
    .unwrap_or_else(|| "unknown-host".to_string());
    format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..))
}

/// The claims of one worker on one tracking store.
#[derive(Debug)]
pub struct Claims {
    store: Arc<dyn TrackingStore>,
    owner: String,
    lease: Duration,
    /// The `benchmark.error` tag key an abandoned run taken over gets its reason under.
    error_tag: String,
    /// When this worker first saw each claim experiment that had no expiry tag yet (its creator
    /// may have died between the create and the tag write); measured on this worker's clock.
    untagged_since: Mutex<HashMap<String, Instant>>,
}

/// The answer to [`Claims::try_claim`].
#[derive(Debug)]
pub enum ClaimOutcome {
    /// This worker holds the claim.
    Won(Claim),
    /// Another worker holds a live claim.
    Held {
        /// Its owner, when tagged yet.
        owner: Option<String>,
        /// Its lease expiry (Unix ms), when tagged yet.
        expires_ms: Option<i64>,
    },
}

impl Claims {
    /// Claims made by `owner` (see [`worker_id`]) with leases of `lease`; benchmark runs are
    /// tagged with `tags`' keys.
    pub fn new(
        store: Arc<dyn TrackingStore>,
        owner: String,
        lease: Duration,
        tags: &TagRegistry,
    ) -> Self {
        Self {
            store,
            owner,
            lease,
            error_tag: tags.get(Tag::BenchmarkError).to_string(),
            untagged_since: Mutex::new(HashMap::new()),
        }
    }

    /// This worker's identity.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The lease length.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Tries to claim `key`: creates the claim experiment, or takes over an expired one.
    pub fn try_claim(&self, key: &str) -> Result<ClaimOutcome, BenchError> {
        let name = claim_name(key);
        let mut taken_over: Option<Experiment> = None;
        // Each pass either wins, sees a live claim, or removes an expired one; a few passes
        // cover a takeover followed by another worker winning the re-create.
        for _ in 0..4 {
            // Owner, key and expiry travel in the create itself: a claim is never untagged,
            // and a retry after a lost response recognises its own claim by the owner tag.
            let claim_tags = self.new_claim_tags(key);
            let claim_tags: Vec<(&str, &str)> = claim_tags
                .iter()
                .map(|(tag, value)| (*tag, value.as_str()))
                .collect();
            match self.store.create_experiment_with_tags(&name, &claim_tags) {
                Ok(experiment_id) => {
                    let claim = self.claim_of(&name, key, experiment_id);
                    if let Some(previous) = taken_over {
                        fail_abandoned_run(
                            self.store.as_ref(),
                            &previous,
                            &self.owner,
                            &self.error_tag,
                        );
                    }
                    return Ok(ClaimOutcome::Won(claim));
                }
                Err(MlflowError::AlreadyExists { .. }) => {}
                Err(source) => {
                    // The request may have reached the server before the response was lost.
                    let own = match self.store.get_experiment_by_name(&name) {
                        Ok(Some(existing)) => self.own_claim(&name, key, &existing),
                        _ => None,
                    };
                    if let Some(claim) = own {
                        return Ok(ClaimOutcome::Won(claim));
                    }
                    return Err(BenchError::Mlflow {
                        context: format!("creating claim {name} for benchmark key {key}"),
                        source: Box::new(source),
                    });
                }
            }
            let Some(existing) = self
                .store
                .get_experiment_by_name(&name)
                .map_err(BenchError::mlflow(format!("reading claim {name}")))?
            else {
                continue; // released between our create and our read: race again
            };
            if !existing.is_active() {
                return Err(BenchError::Claim {
                    claim: name,
                    key: key.to_string(),
                    message: format!(
                        "a deleted experiment (id {}) still holds the claim name; restore it \
                         and rerun, or purge it with `mlflow gc --experiment-ids {}`",
                        existing.experiment_id, existing.experiment_id
                    ),
                });
            }
            if let Some(claim) = self.own_claim(&name, key, &existing) {
                tracing::info!(
                    "claim {name} of benchmark key {key} is already this worker's (a lost \
                     response to its create): keeping it"
                );
                return Ok(ClaimOutcome::Won(claim));
            }
            let expires_ms = expiry_of(&existing);
            if !self.is_expired(&existing, expires_ms) {
                return Ok(ClaimOutcome::Held {
                    owner: existing.tags.get(claim_tag::OWNER).cloned(),
                    expires_ms,
                });
            }
            self.bury(&name, &existing, "expired")?;
            tracing::warn!(
                "claim {name} of {} expired; taking it over",
                owner_of(&existing)
            );
            taken_over = Some(existing);
        }
        Ok(ClaimOutcome::Held {
            owner: None,
            expires_ms: None,
        })
    }

    /// Buries the claim of `key` when its lease has expired (by this worker's clock): the claim
    /// of a worker that died after finishing the key but before releasing it, which no worker
    /// would otherwise look at again (the key is done, so nobody claims it). A live claim is
    /// left to its owner. Returns whether one was buried.
    pub fn bury_if_expired(&self, key: &str) -> Result<bool, BenchError> {
        let name = claim_name(key);
        let Some(existing) = self
            .store
            .get_experiment_by_name(&name)
            .map_err(BenchError::mlflow(format!("reading claim {name}")))?
        else {
            return Ok(false);
        };
        if !existing.is_active() || !self.is_expired(&existing, expiry_of(&existing)) {
            return Ok(false);
        }
        self.bury(&name, &existing, "expired")?;
        tracing::info!(
            "buried claim {name} of {}: its lease expired and its key {key} is done",
            owner_of(&existing)
        );
        Ok(true)
    }

    fn is_expired(&self, existing: &Experiment, expires_ms: Option<i64>) -> bool {
        match expires_ms {
            Some(expires) => now_ms() > expires,
            None => {
                let Ok(mut seen) = self.untagged_since.lock() else {
                    return false;
                };
                let first = *seen
                    .entry(existing.experiment_id.clone())
                    .or_insert_with(Instant::now);
                first.elapsed() > self.lease
            }
        }
    }

    /// The tags a new claim on `key` is created with.
    fn new_claim_tags(&self, key: &str) -> [(&'static str, String); 3] {
        let expires =
            now_ms().saturating_add(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX));
        [
            (claim_tag::OWNER, self.owner.clone()),
            (claim_tag::KEY, key.to_string()),
            (claim_tag::EXPIRES_MS, expires.to_string()),
        ]
    }

    fn claim_of(&self, name: &str, key: &str, experiment_id: String) -> Claim {
        Claim {
            store: self.store.clone(),
            name: name.to_string(),
            key: key.to_string(),
            experiment_id,
            owner: self.owner.clone(),
            lease: self.lease,
            lost: Arc::new(AtomicBool::new(false)),
        }
    }

    /// `existing` as this worker's own claim on `key` (active, for this key, owner tag = this
    /// worker), with its lease renewed; `None` when it is not (or cannot be renewed).
    fn own_claim(&self, name: &str, key: &str, existing: &Experiment) -> Option<Claim> {
        let ours = existing.is_active()
            && existing.tags.get(claim_tag::OWNER) == Some(&self.owner)
            && existing.tags.get(claim_tag::KEY).map(String::as_str) == Some(key);
        if !ours {
            return None;
        }
        let claim = self.claim_of(name, key, existing.experiment_id.clone());
        claim.renew().ok()?;
        Some(claim)
    }

    /// Renames the claim experiment `existing` (by id, so a newer claim under the same name is
    /// never touched) to a unique tombstone, then deletes it to keep experiment lists clean.
    fn bury(&self, name: &str, existing: &Experiment, why: &str) -> Result<(), BenchError> {
        bury(
            self.store.as_ref(),
            name,
            &existing.experiment_id,
            existing.tags.get(claim_tag::OWNER).map(String::as_str),
            why,
        )
    }
}

/// The lease expiry a claim experiment is tagged with (Unix ms), when it has a readable one.
fn expiry_of(claim: &Experiment) -> Option<i64> {
    claim
        .tags
        .get(claim_tag::EXPIRES_MS)
        .and_then(|text| text.parse::<i64>().ok())
}

/// Who holds a claim experiment, for messages.
fn owner_of(claim: &Experiment) -> &str {
    claim
        .tags
        .get(claim_tag::OWNER)
        .map_or("an unknown worker", String::as_str)
}

fn bury(
    store: &dyn TrackingStore,
    name: &str,
    experiment_id: &str,
    owner: Option<&str>,
    why: &str,
) -> Result<(), BenchError> {
    let owner: String = owner
        .unwrap_or("unknown")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let tombstone = format!("{name}.{why}.{experiment_id}.{owner}");
    match store.rename_experiment(experiment_id, &tombstone) {
        Ok(()) => {}
        // Another worker buried this incarnation first (or it is already deleted): the name
        // is free either way, which is all the caller needs.
        Err(
            MlflowError::AlreadyExists { .. }
            | MlflowError::InvalidState { .. }
            | MlflowError::NotFound { .. },
        ) => return Ok(()),
        Err(source) => {
            return Err(BenchError::Mlflow {
                context: format!(
                    "renaming claim {name} (experiment {experiment_id}) to {tombstone}"
                ),
                source: Box::new(source),
            });
        }
    }
    if let Err(err) = store.delete_experiment(experiment_id) {
        tracing::debug!("cannot delete claim tombstone {tombstone}: {err}");
    }
    Ok(())
}

/// Marks the benchmark run of a worker whose claim expired as FAILED, if it is still RUNNING,
/// with the reason under `error_tag`.
fn fail_abandoned_run(
    store: &dyn TrackingStore,
    previous: &Experiment,
    new_owner: &str,
    error_tag: &str,
) {
    let Some(run_id) = previous.tags.get(claim_tag::RUN_ID) else {
        return;
    };
    let owner = owner_of(previous);
    match store.get_run(run_id) {
        Ok(run) if run.info.status == RunStatus::Running => {
            let message = format!(
                "abandoned: the claim of worker {owner} expired and {new_owner} took it over"
            );
            let result = store
                .set_tag(run_id, error_tag, &message)
                .and_then(|()| store.update_run(run_id, RunStatus::Failed, Some(now_ms())));
            if let Err(err) = result {
                tracing::warn!("cannot mark abandoned benchmark run {run_id} FAILED: {err}");
            }
        }
        Ok(_) => {}
        Err(err) => tracing::debug!("abandoned benchmark run {run_id} not readable: {err}"),
    }
}

/// A claim this worker holds. Release it with [`Claim::release`]; a dropped claim simply
/// expires after its lease. Clones share the claim (and its lost flag), e.g. with a Ctrl-C
/// handler that releases it.
#[derive(Debug, Clone)]
pub struct Claim {
    store: Arc<dyn TrackingStore>,
    name: String,
    key: String,
    experiment_id: String,
    owner: String,
    lease: Duration,
    lost: Arc<AtomicBool>,
}

impl Claim {
    /// The claim experiment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The claimed benchmark key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The claim experiment's id.
    pub fn experiment_id(&self) -> &str {
        &self.experiment_id
    }

    fn next_expiry(&self) -> i64 {
        now_ms().saturating_add(i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX))
    }

    /// Records the benchmark run being measured, so a worker taking over an expired claim can
    /// mark it FAILED.
    pub fn record_run(&self, run_id: &str) -> Result<(), BenchError> {
        self.store
            .set_experiment_tag(&self.experiment_id, claim_tag::RUN_ID, run_id)
            .map_err(BenchError::mlflow(format!(
                "recording run {run_id} on claim {}",
                self.name
            )))
    }

    /// Extends the lease by a full lease from now, then checks the claim is still ours.
    pub fn renew(&self) -> Result<(), BenchError> {
        // Tags are addressed by experiment id: if the claim was taken over, this writes to our
        // own tombstone, never to the new owner's claim.
        self.store
            .set_experiment_tag(
                &self.experiment_id,
                claim_tag::EXPIRES_MS,
                &self.next_expiry().to_string(),
            )
            .map_err(BenchError::mlflow(format!("renewing claim {}", self.name)))?;
        self.verify()
    }

    /// Checks the claim is still ours: the experiment still carries the claim name, is active
    /// and is tagged with our identity, and no heartbeat has found it lost.
    pub fn verify(&self) -> Result<(), BenchError> {
        let lost = |message: String| BenchError::Claim {
            claim: self.name.clone(),
            key: self.key.clone(),
            message,
        };
        if self.lost.load(Ordering::SeqCst) {
            return Err(lost("a lease renewal found the claim lost".into()));
        }
        let experiment = self
            .store
            .get_experiment(&self.experiment_id)
            .map_err(BenchError::mlflow(format!("reading claim {}", self.name)))?;
        if experiment.name != self.name || !experiment.is_active() {
            return Err(lost(format!(
                "lost: the lease expired and another worker took it over (experiment {} is now {:?})",
                self.experiment_id, experiment.name
            )));
        }
        if experiment.tags.get(claim_tag::OWNER).map(String::as_str) != Some(self.owner.as_str()) {
            return Err(lost(format!(
                "lost: now owned by {:?}",
                experiment.tags.get(claim_tag::OWNER)
            )));
        }
        Ok(())
    }

    /// Marks `run_id` FINISHED only while the claim is still ours: the store writes it only if
    /// the claim experiment is still active, named and owned as when won
    /// ([`TrackingStore::update_run_if`]). On the SQLite and PostgreSQL stores the check and the
    /// write are one transaction that a takeover's rename cannot split; through a server they
    /// are two calls, back to back. A claim found lost is [`BenchError::Claim`], and nothing is
    /// written.
    pub fn finish_run(&self, run_id: &str, end_time_ms: i64) -> Result<(), BenchError> {
        let guard = ExperimentGuard {
            experiment_id: &self.experiment_id,
            name: &self.name,
            tag: (claim_tag::OWNER, &self.owner),
        };
        let finished = self
            .store
            .update_run_if(run_id, RunStatus::Finished, Some(end_time_ms), &guard)
            .map_err(BenchError::mlflow(format!(
                "finishing benchmark run {run_id} under claim {}",
                self.name
            )))?;
        if finished {
            Ok(())
        } else {
            Err(BenchError::Claim {
                claim: self.name.clone(),
                key: self.key.clone(),
                message: format!(
                    "lost before run {run_id} could be marked FINISHED: another worker took the \
                     claim over (experiment {} is no longer this worker's)",
                    self.experiment_id
                ),
            })
        }
    }

    /// Renews the lease every third of it on a background thread until the returned guard is
    /// dropped. A failed renewal marks the claim lost, which [`Claim::verify`] reports.
    pub fn heartbeat(&self) -> Heartbeat {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let interval = self.lease / 3;
        let renewer = self.clone();
        let thread = std::thread::spawn(move || {
            loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {
                        if let Err(err) = renewer.renew() {
                            tracing::warn!("{err}");
                            if matches!(err, BenchError::Claim { .. }) {
                                renewer.lost.store(true, Ordering::SeqCst);
                                return;
                            }
                        }
                    }
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        Heartbeat {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Gives the claim back: renames it to a tombstone and deletes that, freeing the name.
    /// A claim already taken over by someone else is left alone.
    pub fn release(self) -> Result<(), BenchError> {
        self.bury_self("released")
    }

    fn bury_self(&self, why: &str) -> Result<(), BenchError> {
        match self.store.get_experiment(&self.experiment_id) {
            Ok(experiment) if experiment.name == self.name && experiment.is_active() => bury(
                self.store.as_ref(),
                &self.name,
                &self.experiment_id,
                Some(&self.owner),
                why,
            ),
            Ok(_) | Err(MlflowError::NotFound { .. }) => Ok(()),
            Err(source) => Err(BenchError::Mlflow {
                context: format!("releasing claim {}", self.name),
                source: Box::new(source),
            }),
        }
    }
}

/// Renews a claim's lease in the background while alive (see [`Claim::heartbeat`]).
#[derive(Debug)]
pub struct Heartbeat {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
