//! Tag keys of benchmark runs that the tag registry does not (yet) define.
//!
//! Lineage that the registry already names (backbone, stage, study/trial key hashes,
//! fingerprints, sweep run, benchmark key) is written through `podium_keys::TagRegistry`; the
//! keys below are specific to benchmark runs and live under `code.benchmark.*`.

/// The run whose checkpoint was measured (the refit run, or the trial).
pub const CHAMPION_RUN_ID: &str = "code.benchmark.champion_run_id";
/// The champion trial run.
pub const TRIAL_RUN_ID: &str = "code.benchmark.trial_run_id";
/// The champion's refit run, when the checkpoint came from a refit.
pub const REFIT_RUN_ID: &str = "code.benchmark.refit_run_id";
/// The environment (`local`, `colab`, …) the benchmark ran in.
pub const ENVIRONMENT: &str = "code.benchmark.environment";
/// podium's version.
pub const PODIUM_VERSION: &str = "code.benchmark.podium_version";
/// Compute threads used.
pub const THREADS: &str = "code.benchmark.threads";
/// The timing harness version (also inside the key's benchmark fingerprint).
pub const HARNESS_VERSION: &str = "code.benchmark.harness_version";
/// Which acquisition step provided the checkpoint.
pub const CHECKPOINT_SOURCE: &str = "code.benchmark.checkpoint_source";
/// The worker that measured (see `claim::worker_id`).
pub const WORKER: &str = "code.benchmark.worker";
/// Why a benchmark run FAILED or was KILLED.
pub const ERROR: &str = "code.benchmark.error";
/// Set on runs recreated from the disk cache: the benchmark run id the cache named.
pub const RESTORED_FROM_CACHE: &str = "code.benchmark.restored_from_cache";
