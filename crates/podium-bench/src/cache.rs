//! The disk side of benchmark results: `outputs/benchmarking/{env}/cache/<file>.json`, one file
//! per benchmark key, written atomically and only after the MLflow run is FINISHED, so a file
//! on disk always has a result behind it.
//!
//! ```
//! use std::collections::BTreeMap;
//! use podium_bench::cache::{BenchmarkCache, CacheLookup, CachedBenchmark};
//!
//! let dir = tempfile::tempdir()?;
//! let cache = BenchmarkCache::new(dir.path());
//! let key = "0123abcd:data:eval:bench";
//! assert!(matches!(cache.read(key), CacheLookup::Missing));
//! let entry = CachedBenchmark {
//!     benchmark_key: key.into(),
//!     backbone: "distilbert".into(),
//!     champion_run_id: "0123abcd".into(),
//!     benchmark_run_id: "feed".into(),
//!     metrics: BTreeMap::from([("latency_batch_1_ms".into(), 3.5)]),
//!     tags: BTreeMap::new(),
//!     created_ms: 1_700_000_000_000,
//! };
//! cache.write(&entry)?;
//! assert!(matches!(cache.read(key), CacheLookup::Hit(found) if found == entry));
//! assert!(cache.path_for(key).ends_with("0123abcd_data_eval_bench.json"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::BenchError;

/// One benchmark result as stored on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedBenchmark {
    /// The full benchmark key (checked against the file name's key on read).
    pub benchmark_key: String,
    /// The champion's backbone.
    pub backbone: String,
    /// The run whose checkpoint was measured.
    pub champion_run_id: String,
    /// The FINISHED MLflow benchmark run holding the same result.
    pub benchmark_run_id: String,
    /// The measured metrics (`latency_batch_1_ms`, …).
    #[serde(with = "podium_mlflow::model::metric_map")]
    pub metrics: BTreeMap<String, f64>,
    /// The benchmark run's tags (lineage, fingerprints, environment…), so MLflow can be
    /// restored from this file alone.
    pub tags: BTreeMap<String, String>,
    /// When the result was recorded, Unix milliseconds.
    pub created_ms: i64,
}

/// What [`BenchmarkCache::read`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheLookup {
    /// A valid entry for the key.
    Hit(CachedBenchmark),
    /// No file.
    Missing,
    /// A file that cannot be used (unreadable, not JSON of the right shape, or for another key):
    /// a miss, replaced on the next write.
    Invalid(String),
}

/// The benchmark result cache of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchmarkCache {
    dir: PathBuf,
}

impl BenchmarkCache {
    /// The cache in `dir` (normally `OutputLayout::benchmark_cache_dir`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a key: the key with `:` (and anything not safe in a file name) as `_`;
    /// a key too long for a file name is replaced by its sha256.
    pub fn path_for(&self, key: &str) -> PathBuf {
        let safe: String = key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let stem = if safe.is_empty() || safe.len() > 200 || safe.starts_with('.') {
            podium_keys::sha256_hex(key)
        } else {
            safe
        };
        self.dir.join(format!("{stem}.json"))
    }

    /// Reads the entry of `key`; anything unusable is [`CacheLookup::Invalid`], never an error.
    pub fn read(&self, key: &str) -> CacheLookup {
        let path = self.path_for(key);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return CacheLookup::Missing,
            Err(err) => {
                return CacheLookup::Invalid(format!("cannot read {}: {err}", path.display()));
            }
        };
        match serde_json::from_slice::<CachedBenchmark>(&bytes) {
            Ok(entry) if entry.benchmark_key == key => CacheLookup::Hit(entry),
            Ok(entry) => CacheLookup::Invalid(format!(
                "{} holds key {:?}, not {key:?}",
                path.display(),
                entry.benchmark_key
            )),
            Err(err) => CacheLookup::Invalid(format!("{} is corrupt: {err}", path.display())),
        }
    }

    /// Writes (or replaces) the entry of its key atomically.
    pub fn write(&self, entry: &CachedBenchmark) -> Result<PathBuf, BenchError> {
        let path = self.path_for(&entry.benchmark_key);
        podium_variants::fs::write_json_atomic(&path, entry).map_err(BenchError::layout(
            format!("writing benchmark cache for key {}", entry.benchmark_key),
        ))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn entry(key: &str) -> CachedBenchmark {
        CachedBenchmark {
            benchmark_key: key.into(),
            backbone: "bert".into(),
            champion_run_id: "r".into(),
            benchmark_run_id: "b".into(),
            metrics: BTreeMap::from([("latency_batch_1_ms".into(), 1.25), ("cv".into(), f64::NAN)]),
            tags: BTreeMap::from([("benchmark_key".into(), key.into())]),
            created_ms: 5,
        }
    }

    #[test]
    fn corrupt_and_mismatched_files_are_misses_and_get_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BenchmarkCache::new(dir.path());
        let key = "r:d:e:b";
        std::fs::write(
            cache.path_for(key),
            b"{\"benchmark_key\": \"r:d:e:b\", trunc",
        )
        .unwrap();
        assert!(matches!(cache.read(key), CacheLookup::Invalid(m) if m.contains("corrupt")));
        // A file whose stored key differs (e.g. written by a version that mapped names
        // differently) is not trusted.
        cache.write(&entry("r:d:e:b")).unwrap();
        let other = entry("r_d:e:b");
        std::fs::write(cache.path_for(key), serde_json::to_vec(&other).unwrap()).unwrap();
        assert!(matches!(cache.read(key), CacheLookup::Invalid(m) if m.contains("holds key")));
        cache.write(&entry(key)).unwrap();
        match cache.read(key) {
            CacheLookup::Hit(found) => {
                assert_eq!(found.metrics["latency_batch_1_ms"], 1.25);
                assert!(found.metrics["cv"].is_nan());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_or_odd_keys_still_get_one_safe_file_name() {
        let cache = BenchmarkCache::new("/c");
        let long = "x".repeat(300);
        let path = cache.path_for(&long);
        assert_eq!(path.file_name().unwrap().len(), 64 + 5);
        assert_eq!(cache.path_for("a/b:c").file_name().unwrap(), "a_b_c.json");
        assert_eq!(cache.path_for("../x").file_name().unwrap().len(), 64 + 5);
    }
}
