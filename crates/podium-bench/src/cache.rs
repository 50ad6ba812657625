//! The disk side of benchmark results, where the Python pipeline puts its own:
//! `outputs/benchmarking/{env}/{model}/study-{s8}/trial-{t8}/bench-{b8}/{output.filename}`
//! (`s8`/`t8` the first 8 characters of the champion's study and trial key hashes, `b8` those of
//! the benchmark config hash), in the pipeline's JSON shape — one `batch_{b}` object per batch
//! size with `mean_ms`, `median_ms`, `p95_ms`, `p99_ms`, `throughput_docs_per_sec`, then
//! `device` and `timestamp` — plus a `podium` object holding the benchmark key, the harness
//! version and everything needed to recreate the MLflow run. A champion without a trial key
//! hash (the pipeline cannot place those) gets `outputs/benchmarking/{env}/cache/
//! benchmark_{key}.json`, the file the pipeline's disk existence check looks for.
//!
//! Files are written atomically and only after the MLflow run is FINISHED, so a file on disk
//! always has a result behind it. A file the pipeline wrote (no `podium` object) is its result:
//! never counted as podium's and never overwritten.
//!
//! ```
//! use std::collections::BTreeMap;
//! use podium_bench::cache::{BenchmarkCache, CacheLookup, CachedBenchmark, ResultLocation};
//!
//! let dir = tempfile::tempdir()?;
//! let cache = BenchmarkCache::new(dir.path(), "0123456789abcdef", "benchmark.json");
//! let location = ResultLocation {
//!     model: "distilbert".into(),
//!     study_key_hash: "aaaaaaaabbbb".into(),
//!     trial_key_hash: Some("ccccccccdddd".into()),
//! };
//! let key = "0123abcd:data:eval:bench";
//! assert!(matches!(cache.read(&location, key), CacheLookup::Missing));
//! let entry = CachedBenchmark {
//!     benchmark_key: key.into(),
//!     harness_version: podium_bench::HARNESS_VERSION,
//!     backbone: "distilbert-base-uncased".into(),
//!     champion_run_id: "0123abcd".into(),
//!     benchmark_run_id: "feed".into(),
//!     metrics: BTreeMap::from([("latency_batch_1_ms".into(), 3.5)]),
//!     tags: BTreeMap::new(),
//!     created_ms: 1_700_000_000_000,
//! };
//! cache.write(&location, &entry)?;
//! assert!(matches!(cache.read(&location, key), CacheLookup::Hit(found) if found == entry));
//! assert!(cache
//!     .path_for(&location, key)
//!     .ends_with("distilbert/study-aaaaaaaa/trial-cccccccc/bench-01234567/benchmark.json"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use podium_variants::{pipeline_study_folder, pipeline_trial_folder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::HARNESS_VERSION;
use crate::error::BenchError;

/// The pipeline's default `output.filename`.
pub const DEFAULT_FILENAME: &str = "benchmark.json";

/// Largest result file read (one holds a few KiB of metrics and tags).
pub const MAX_RESULT_BYTES: u64 = 16 << 20;

/// Name of the object podium adds to the pipeline's JSON shape.
pub const PODIUM_FIELD: &str = "podium";

/// One benchmark result as podium records it on disk (the `podium` object of the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachedBenchmark {
    /// The full benchmark key (checked on read).
    pub benchmark_key: String,
    /// The harness version that measured (checked on read against [`HARNESS_VERSION`]).
    pub harness_version: u32,
    /// The champion's backbone.
    pub backbone: String,
    /// The run whose checkpoint was measured.
    pub champion_run_id: String,
    /// The FINISHED MLflow benchmark run holding the same result.
    pub benchmark_run_id: String,
    /// Every metric of the run (`latency_batch_1_ms`, …).
    #[serde(with = "podium_mlflow::model::metric_map")]
    pub metrics: BTreeMap<String, f64>,
    /// The benchmark run's tags (lineage, fingerprints, environment…), so MLflow can be
    /// restored from this file alone.
    pub tags: BTreeMap<String, String>,
    /// When the result was recorded, Unix milliseconds.
    pub created_ms: i64,
}

/// Where a champion's result lives: its model folder and key hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLocation {
    /// The short model name (`{model}` folder).
    pub model: String,
    /// The champion's study key hash.
    pub study_key_hash: String,
    /// The champion's trial key hash, when tagged.
    pub trial_key_hash: Option<String>,
}

/// What [`BenchmarkCache::read`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheLookup {
    /// A valid entry for the key, by the current harness.
    Hit(CachedBenchmark),
    /// No file.
    Missing,
    /// A file that is not podium's result for this key (unreadable, not JSON of the right shape,
    /// another key or harness version): a miss, replaced on the next write.
    Invalid(String),
    /// The pipeline's own result (no `podium` object) occupies the file: a miss that is never
    /// overwritten.
    PipelineOwned(PathBuf),
}

/// The benchmark results of one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchmarkCache {
    /// `outputs/benchmarking/{env}`.
    dir: PathBuf,
    /// First 8 characters of the benchmark config hash.
    bench8: String,
    /// `output.filename`.
    filename: String,
    /// The device measured on (the file's `device`).
    device: String,
}

/// A path component built from tag values: only characters that are safe in a folder name.
fn safe_component(text: &str) -> Option<&str> {
    let ok = !text.is_empty()
        && !text.starts_with('.')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    ok.then_some(text)
}

fn prefix8(text: &str) -> &str {
    text.char_indices()
        .nth(8)
        .map_or(text, |(end, _)| &text[..end])
}

impl BenchmarkCache {
    /// Results under `dir` (normally `outputs/benchmarking/{env}`) for the benchmark config of
    /// hash `benchmark_config_hash`, in files named `filename` (`output.filename`).
    pub fn new(dir: impl Into<PathBuf>, benchmark_config_hash: &str, filename: &str) -> Self {
        Self {
            dir: dir.into(),
            bench8: prefix8(benchmark_config_hash).to_string(),
            filename: filename.to_string(),
            device: "cpu".to_string(),
        }
    }

    /// The same results, recording `device` as the device measured on.
    pub fn with_device(mut self, device: &str) -> Self {
        self.device = device.to_string();
        self
    }

    /// `outputs/benchmarking/{env}`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of a champion's result (see the module docs); hash values that are not safe
    /// folder names, and a missing trial key hash, fall back to the `cache/` file of the key.
    pub fn path_for(&self, location: &ResultLocation, key: &str) -> PathBuf {
        let folders = (
            safe_component(&location.model),
            safe_component(prefix8(&location.study_key_hash)),
            location
                .trial_key_hash
                .as_deref()
                .and_then(|hash| safe_component(prefix8(hash))),
            safe_component(&self.bench8),
            safe_component(&self.filename),
        );
        if let (Some(model), Some(s8), Some(t8), Some(b8), Some(file)) = folders {
            return self
                .dir
                .join(model)
                .join(pipeline_study_folder(s8))
                .join(pipeline_trial_folder(t8))
                .join(format!("bench-{b8}"))
                .join(file);
        }
        let keyed = key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.'));
        let stem = if keyed && !key.is_empty() && key.len() <= 200 {
            key.to_string()
        } else {
            podium_keys::sha256_hex(key)
        };
        self.dir
            .join("cache")
            .join(format!("benchmark_{stem}.json"))
    }

    /// Reads podium's entry of `key`; anything unusable is [`CacheLookup::Invalid`], never an
    /// error.
    pub fn read(&self, location: &ResultLocation, key: &str) -> CacheLookup {
        let path = self.path_for(location, key);
        let bytes = match podium_variants::fs::read_regular_file(&path, MAX_RESULT_BYTES) {
            Ok(bytes) => bytes,
            Err(err) if err.is_not_found() => return CacheLookup::Missing,
            Err(err) => return CacheLookup::Invalid(err.to_string()),
        };
        let document: Value = match serde_json::from_slice(&bytes) {
            Ok(document) => document,
            Err(err) => {
                return CacheLookup::Invalid(format!("{} is corrupt: {err}", path.display()));
            }
        };
        let Some(podium) = document.get(PODIUM_FIELD) else {
            return CacheLookup::PipelineOwned(path);
        };
        match CachedBenchmark::deserialize(podium) {
            Ok(entry) if entry.benchmark_key != key => CacheLookup::Invalid(format!(
                "{} holds key {:?}, not {key:?}",
                path.display(),
                entry.benchmark_key
            )),
            Ok(entry) if entry.harness_version != HARNESS_VERSION => CacheLookup::Invalid(format!(
                "{} was measured by harness version {}, not {HARNESS_VERSION}",
                path.display(),
                entry.harness_version
            )),
            Ok(entry) => CacheLookup::Hit(entry),
            Err(err) => CacheLookup::Invalid(format!("{} is corrupt: {err}", path.display())),
        }
    }

    /// Writes (or replaces) podium's result of `entry`'s key atomically; returns the path, or
    /// `None` when the pipeline's own result occupies it (left as it is).
    pub fn write(
        &self,
        location: &ResultLocation,
        entry: &CachedBenchmark,
    ) -> Result<Option<PathBuf>, BenchError> {
        let path = self.path_for(location, &entry.benchmark_key);
        if let Ok(bytes) = podium_variants::fs::read_regular_file(&path, MAX_RESULT_BYTES) {
            let pipeline_owned = serde_json::from_slice::<Value>(&bytes)
                .is_ok_and(|doc| doc.is_object() && doc.get(PODIUM_FIELD).is_none());
            if pipeline_owned {
                tracing::warn!(
                    "{} holds the pipeline's result: left as it is; podium's result of key {} \
                     is in MLflow only",
                    path.display(),
                    entry.benchmark_key
                );
                return Ok(None);
            }
        }
        let context = || {
            format!(
                "writing the benchmark result of key {}",
                entry.benchmark_key
            )
        };
        let document = self.document(entry).map_err(|err| BenchError::Config {
            file: path.clone(),
            key: PODIUM_FIELD.into(),
            message: format!("{}: {err}", context()),
        })?;
        podium_variants::fs::write_atomic(&path, &document)
            .map_err(BenchError::layout(context()))?;
        Ok(Some(path))
    }

    /// The bytes [`BenchmarkCache::write`] writes for `entry`: the pipeline's JSON shape,
    /// pretty-printed with a trailing newline (also the run's `benchmark_results.json`
    /// artifact when the pipeline's own file holds the place on disk).
    pub fn document(&self, entry: &CachedBenchmark) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(&pipeline_document(entry, &self.device)?)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The file name results are written under (`output.filename`).
    pub fn filename(&self) -> &str {
        &self.filename
    }
}

/// The pipeline's JSON shape of `entry`: `batch_{b}` objects from the metrics, `device`,
/// `timestamp`, and podium's own object.
fn pipeline_document(entry: &CachedBenchmark, device: &str) -> Result<Value, serde_json::Error> {
    let mut document = Map::new();
    let mut batches: BTreeMap<u64, Map<String, Value>> = BTreeMap::new();
    let number =
        |value: f64| serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
    for (name, value) in &entry.metrics {
        let Some(rest) = name.strip_prefix("latency_batch_") else {
            continue;
        };
        let Some((batch, statistic)) = rest.split_once('_') else {
            continue;
        };
        let Ok(batch) = batch.parse::<u64>() else {
            continue;
        };
        let field = match statistic {
            "ms" => "mean_ms",
            "p50_ms" => "median_ms",
            "p95_ms" => "p95_ms",
            "p99_ms" => "p99_ms",
            _ => continue,
        };
        batches
            .entry(batch)
            .or_default()
            .insert(field.to_string(), number(*value));
    }
    for (batch, mut fields) in batches {
        if let Some(throughput) = entry
            .metrics
            .get(&format!("throughput_batch_{batch}_seq_per_s"))
        {
            fields.insert("throughput_docs_per_sec".into(), number(*throughput));
        }
        document.insert(format!("batch_{batch}"), Value::Object(fields));
    }
    document.insert("device".into(), Value::String(device.to_string()));
    document.insert(
        "timestamp".into(),
        Value::String(utc_timestamp(entry.created_ms)),
    );
    document.insert(PODIUM_FIELD.into(), serde_json::to_value(entry)?);
    Ok(Value::Object(document))
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix milliseconds, UTC (the pipeline's `timestamp` format; also
/// the report's time).
///
/// ```
/// use podium_bench::cache::utc_timestamp;
/// assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
/// assert_eq!(utc_timestamp(1_769_076_000_000), "2026-01-22T10:00:00Z");
/// ```
pub fn utc_timestamp(unix_ms: i64) -> String {
    let seconds = unix_ms.div_euclid(1000);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn timestamps_are_civil_utc() {
        assert_eq!(utc_timestamp(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc_timestamp(4_107_542_399_000), "2100-02-28T23:59:59Z");
        assert_eq!(utc_timestamp(-1_000), "1969-12-31T23:59:59Z");
    }

    fn location() -> ResultLocation {
        ResultLocation {
            model: "bert".into(),
            study_key_hash: "s".repeat(64),
            trial_key_hash: Some("t".repeat(64)),
        }
    }

    fn entry(key: &str) -> CachedBenchmark {
        CachedBenchmark {
            benchmark_key: key.into(),
            harness_version: HARNESS_VERSION,
            backbone: "bert".into(),
            champion_run_id: "r".into(),
            benchmark_run_id: "b".into(),
            metrics: BTreeMap::from([
                ("latency_batch_1_ms".into(), 1.25),
                ("latency_batch_1_p50_ms".into(), 1.0),
                ("throughput_batch_1_seq_per_s".into(), 800.0),
                ("latency_batch_1_cv".into(), f64::NAN),
            ]),
            tags: BTreeMap::from([("benchmark_key".into(), key.into())]),
            created_ms: 1_764_806_400_000,
        }
    }

    #[test]
    fn the_file_has_the_pipelines_shape_with_podiums_object_inside() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BenchmarkCache::new(dir.path(), &"b".repeat(64), "result.json");
        let path = cache
            .write(&location(), &entry("r:d:e:b"))
            .unwrap()
            .unwrap();
        assert!(path.ends_with("bert/study-ssssssss/trial-tttttttt/bench-bbbbbbbb/result.json"));
        let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(doc["batch_1"]["mean_ms"], 1.25);
        assert_eq!(doc["batch_1"]["median_ms"], 1.0);
        assert_eq!(doc["batch_1"]["throughput_docs_per_sec"], 800.0);
        assert_eq!(doc["device"], "cpu");
        assert_eq!(doc["timestamp"], "2025-12-04T00:00:00Z");
        assert_eq!(doc["podium"]["harness_version"], HARNESS_VERSION);
        match cache.read(&location(), "r:d:e:b") {
            CacheLookup::Hit(found) => assert!(found.metrics["latency_batch_1_cv"].is_nan()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn corrupt_foreign_and_mismatched_files_are_misses() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BenchmarkCache::new(dir.path(), "bench", DEFAULT_FILENAME);
        let key = "r:d:e:b";
        let path = cache.path_for(&location(), key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"podium\": trunc").unwrap();
        assert!(
            matches!(cache.read(&location(), key), CacheLookup::Invalid(m) if m.contains("corrupt"))
        );
        cache.write(&location(), &entry("r:other:e:b")).unwrap();
        assert!(
            matches!(cache.read(&location(), key), CacheLookup::Invalid(m) if m.contains("holds key"))
        );
        let mut old = entry(key);
        old.harness_version = HARNESS_VERSION - 1;
        cache.write(&location(), &old).unwrap();
        assert!(
            matches!(cache.read(&location(), key), CacheLookup::Invalid(m) if m.contains("harness"))
        );
        cache.write(&location(), &entry(key)).unwrap();
        assert!(matches!(cache.read(&location(), key), CacheLookup::Hit(_)));

        // The pipeline's own result: not podium's, and never overwritten.
        let pipeline = b"{\"batch_1\": {\"mean_ms\": 9.0}, \"device\": \"cuda\"}";
        std::fs::write(&path, pipeline).unwrap();
        assert_eq!(
            cache.read(&location(), key),
            CacheLookup::PipelineOwned(path.clone())
        );
        assert_eq!(cache.write(&location(), &entry(key)).unwrap(), None);
        assert_eq!(std::fs::read(&path).unwrap(), pipeline);
    }

    #[test]
    fn unsafe_hashes_or_no_trial_hash_use_the_pipelines_cache_file() {
        let cache = BenchmarkCache::new("/o", "bench", DEFAULT_FILENAME);
        let mut odd = location();
        odd.trial_key_hash = None;
        assert_eq!(
            cache.path_for(&odd, "r:d:e:b"),
            Path::new("/o/cache/benchmark_r:d:e:b.json")
        );
        odd.trial_key_hash = Some("../../x".into());
        odd.study_key_hash = "s".into();
        let path = cache.path_for(&odd, "a/b");
        assert!(path.starts_with("/o/cache"));
        assert_eq!(
            path.file_name().unwrap().len(),
            "benchmark_.json".len() + 64
        );
    }
}
