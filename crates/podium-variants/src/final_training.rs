//! Final-training variants: `…/final_training/{env}/{model}/spec-{spec8}_exec-{exec8}/v{N}`,
//! recorded in the index `{root}/outputs/cache/final_training_index.json`.
//!
//! The index is the authority (it holds the full fingerprints, where the folder names hold only
//! 8-digit prefixes); folders on disk that the index does not know are counted too, so a lost or
//! stale index never hands out a variant that is already in use.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use podium_run_mode::{Decision, RunMode};
use serde::{Deserialize, Serialize};

use crate::environment::Environment;
use crate::error::VariantsError;
use crate::fs::write_json_atomic;
use crate::hpo::next_variant;
use crate::layout::{OutputLayout, Process, model_folder, parse_canonical, subdirectory_names};

/// The fingerprints that identify one final-training configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FinalTrainingKey {
    spec_fp: String,
    exec_fp: String,
}

impl FinalTrainingKey {
    /// Both fingerprints must be lowercase hex digests of at least 8 digits.
    pub fn new(spec_fp: &str, exec_fp: &str) -> Result<Self, VariantsError> {
        Ok(Self {
            spec_fp: check_fingerprint("spec", spec_fp)?,
            exec_fp: check_fingerprint("exec", exec_fp)?,
        })
    }

    /// The specification fingerprint (what is trained).
    pub fn spec_fp(&self) -> &str {
        &self.spec_fp
    }

    /// The execution fingerprint (how it is trained).
    pub fn exec_fp(&self) -> &str {
        &self.exec_fp
    }

    /// `spec-{spec_fp[:8]}_exec-{exec_fp[:8]}`.
    pub fn folder_name(&self) -> String {
        format!("spec-{}_exec-{}", &self.spec_fp[..8], &self.exec_fp[..8])
    }
}

fn check_fingerprint(which: &'static str, value: &str) -> Result<String, VariantsError> {
    let valid = value.len() >= 8
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        Ok(value.to_string())
    } else {
        Err(VariantsError::Fingerprint {
            which,
            value: value.to_string(),
        })
    }
}

/// One entry of the final-training index. Fields podium does not know are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Full specification fingerprint.
    pub spec_fp: String,
    /// Full execution fingerprint.
    pub exec_fp: String,
    /// Environment folder name.
    pub environment: String,
    /// Model folder name (short backbone name).
    pub model: String,
    /// Variant number.
    #[serde(default = "first_variant")]
    pub variant: u32,
    /// The variant folder, relative to the project root (absolute paths are kept as written).
    #[serde(default)]
    pub path: Option<String>,
    /// Anything else the writer recorded.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn first_variant() -> u32 {
    1
}

/// The on-disk shape of the index: `{"entries": […]}` (other top-level keys preserved), or a
/// bare list as older writers left it (written back as a bare list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum IndexDocument {
    Object {
        #[serde(default)]
        entries: Vec<IndexEntry>,
        #[serde(flatten)]
        extra: serde_json::Map<String, serde_json::Value>,
    },
    List(Vec<IndexEntry>),
}

impl IndexDocument {
    fn entries(&self) -> &[IndexEntry] {
        match self {
            IndexDocument::Object { entries, .. } | IndexDocument::List(entries) => entries,
        }
    }

    fn push(&mut self, entry: IndexEntry) {
        match self {
            IndexDocument::Object { entries, .. } | IndexDocument::List(entries) => {
                entries.push(entry)
            }
        }
    }
}

/// Reads the index at `path`; a missing file is an empty index.
fn read_index(path: &Path) -> Result<IndexDocument, VariantsError> {
    let text = match crate::fs::read_config_text(path) {
        Ok(text) => text,
        Err(err) if err.is_not_found() => {
            return Ok(IndexDocument::Object {
                entries: Vec::new(),
                extra: serde_json::Map::new(),
            });
        }
        Err(err) => return Err(err.into()),
    };
    serde_json::from_str(&text).map_err(|err| VariantsError::Index {
        file: path.to_path_buf(),
        message: format!(
            "not a list of entries with spec_fp, exec_fp, environment, model, variant, path ({err})"
        ),
    })
}

/// One final-training variant, and where podium learned about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinalTrainingVariant {
    /// The variant number.
    pub variant: u32,
    /// The folder name, `v{N}`.
    pub name: String,
    /// The folder.
    pub path: PathBuf,
    /// The index records this variant.
    pub in_index: bool,
    /// The folder exists.
    pub on_disk: bool,
}

/// The final-training variants of one configuration in one environment and model folder.
///
/// ```
/// use podium_variants::{Environment, FinalTrainingKey, FinalTrainings, OutputLayout};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let root = tempfile::tempdir()?;
/// let key = FinalTrainingKey::new("0123456789abcdef", "fedcba9876543210")?;
/// let trainings = FinalTrainings::locate(
///     &OutputLayout::new(root.path()),
///     &Environment::Local,
///     "distilbert-base-uncased",
///     key,
/// )?;
/// let first = trainings.allocate()?;
/// assert!(first.path.ends_with("spec-01234567_exec-fedcba98/v1"));
/// assert_eq!(trainings.next()?.variant, 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalTrainings {
    root: PathBuf,
    index: PathBuf,
    dir: PathBuf,
    environment: Environment,
    model: String,
    key: FinalTrainingKey,
}

impl FinalTrainings {
    /// The variants of `key` for a backbone under a layout and environment.
    pub fn locate(
        layout: &OutputLayout,
        environment: &Environment,
        backbone: &str,
        key: FinalTrainingKey,
    ) -> Result<Self, VariantsError> {
        let dir = layout
            .process_dir(Process::FinalTraining, environment, backbone)?
            .join(key.folder_name());
        Ok(Self {
            root: layout.root().to_path_buf(),
            index: layout.final_training_index(),
            dir,
            environment: environment.clone(),
            model: model_folder(backbone)?.to_string(),
            key,
        })
    }

    /// The `spec-…_exec-…` folder holding the `v{N}` folders.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index file.
    pub fn index_path(&self) -> &Path {
        &self.index
    }

    /// The folder a variant has (whether or not it exists).
    pub fn variant(&self, variant: u32) -> FinalTrainingVariant {
        let name = format!("v{variant}");
        FinalTrainingVariant {
            variant,
            path: self.dir.join(&name),
            name,
            in_index: false,
            on_disk: false,
        }
    }

    /// The known variants, ascending: index entries of this key, environment and model, plus
    /// `v{N}` folders on disk. An unreadable index is reported as a warning and only the folders
    /// are used.
    pub fn list(&self) -> Result<Vec<FinalTrainingVariant>, VariantsError> {
        let index = match read_index(&self.index) {
            Ok(index) => index,
            Err(err @ VariantsError::Index { .. }) => {
                tracing::warn!("{err}; using the folders on disk only");
                IndexDocument::List(Vec::new())
            }
            Err(err) => return Err(err),
        };
        self.merge(&index)
    }

    /// Whether a variant is complete, as the pipeline decides it: its `metadata.json` has a
    /// truthy `status.training.completed` (Python's truthiness: `true`, a non-zero number, a
    /// non-empty string or collection), or its `checkpoint/` holds a `config.json` and an entry
    /// named `model.*`.
    pub fn is_complete(&self, variant: u32) -> bool {
        let dir = self.variant(variant).path;
        let completed = crate::fs::read_config_text(&dir.join("metadata.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|meta| truthy(&meta["status"]["training"]["completed"]));
        if completed {
            return true;
        }
        let checkpoint = dir.join("checkpoint");
        checkpoint.join("config.json").is_file()
            && std::fs::read_dir(&checkpoint).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|entry| entry.file_name().to_string_lossy().starts_with("model."))
            })
    }

    /// The variant a final training uses under `mode`, as the pipeline's final-training config
    /// resolves it: `force_new` always takes the next variant (an explicit `number` is ignored);
    /// otherwise an explicit `number` is used as is (reused when complete, else trained in that
    /// folder); `reuse_if_exists` reuses the existing variant when it is complete — the highest
    /// the index records for this key, else (no entry) the highest folder, as the pipeline looks
    /// it up; everything else — an incomplete variant included, which is never resumed — takes
    /// the next variant (above every variant the index or the disk knows). Nothing is created.
    pub fn resolve_variant(
        &self,
        mode: RunMode,
        explicit: Option<u32>,
    ) -> Result<(Decision, FinalTrainingVariant), VariantsError> {
        if mode != RunMode::ForceNew
            && let Some(variant) = explicit
        {
            let found = self.variant(variant);
            let decision = if self.is_complete(variant) {
                Decision::Reuse
            } else {
                Decision::CreateNew
            };
            return Ok((decision, found));
        }
        if mode == RunMode::ReuseIfExists
            && let Some(latest) = {
                let known = self.list()?;
                let indexed = known.iter().filter(|found| found.in_index);
                indexed
                    .map(|found| found.variant)
                    .max()
                    .or_else(|| known.iter().map(|found| found.variant).max())
            }
            && self.is_complete(latest)
        {
            return Ok((Decision::Reuse, self.variant(latest)));
        }
        Ok((Decision::CreateNew, self.next()?))
    }

    /// The variant a new training would get now (nothing is created).
    pub fn next(&self) -> Result<FinalTrainingVariant, VariantsError> {
        let existing = self.list()?.into_iter().map(|found| found.variant);
        next_variant(existing)
            .map(|variant| self.variant(variant))
            .ok_or_else(|| VariantsError::VariantsExhausted {
                dir: self.dir.clone(),
            })
    }

    /// Claims the next variant: creates its folder and records it in the index.
    ///
    /// Allocators serialise on a lock file beside the index, so every claim lands in the index;
    /// the folder is still created with an atomic create so a writer that ignores the lock (the
    /// Python pipeline) cannot be handed the same folder. An unreadable index is an error here:
    /// rewriting it would drop the entries it holds.
    pub fn allocate(&self) -> Result<FinalTrainingVariant, VariantsError> {
        let _lock = IndexLock::acquire(&self.index)?;
        let mut index = read_index(&self.index)?;
        let existing = self.merge(&index)?.into_iter().map(|found| found.variant);
        let mut candidate =
            next_variant(existing).ok_or_else(|| VariantsError::VariantsExhausted {
                dir: self.dir.clone(),
            })?;
        std::fs::create_dir_all(&self.dir).map_err(VariantsError::io("create", &self.dir))?;
        let created = loop {
            let variant = self.variant(candidate);
            match std::fs::create_dir(&variant.path) {
                Ok(()) => break variant,
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    candidate = candidate.checked_add(1).ok_or_else(|| {
                        VariantsError::VariantsExhausted {
                            dir: self.dir.clone(),
                        }
                    })?;
                }
                Err(err) => return Err(VariantsError::io("create", &variant.path)(err)),
            }
        };
        index.push(IndexEntry {
            spec_fp: self.key.spec_fp.clone(),
            exec_fp: self.key.exec_fp.clone(),
            environment: self.environment.as_str().to_string(),
            model: self.model.clone(),
            variant: created.variant,
            path: Some(relative_to(&created.path, &self.root)),
            extra: serde_json::Map::new(),
        });
        write_json_atomic(&self.index, &index)?;
        tracing::debug!("allocated final-training folder {}", created.path.display());
        Ok(FinalTrainingVariant {
            in_index: true,
            on_disk: true,
            ..created
        })
    }

    fn merge(&self, index: &IndexDocument) -> Result<Vec<FinalTrainingVariant>, VariantsError> {
        let mut found: BTreeMap<u32, FinalTrainingVariant> = BTreeMap::new();
        let ours = index.entries().iter().filter(|entry| {
            entry.spec_fp == self.key.spec_fp
                && entry.exec_fp == self.key.exec_fp
                && entry.environment == self.environment.as_str()
                && entry.model == self.model
        });
        for entry in ours {
            let path = match &entry.path {
                Some(recorded) if Path::new(recorded).is_absolute() => PathBuf::from(recorded),
                Some(recorded) => self.root.join(recorded),
                None => self.variant(entry.variant).path,
            };
            found
                .entry(entry.variant)
                .or_insert_with(|| FinalTrainingVariant {
                    variant: entry.variant,
                    name: format!("v{}", entry.variant),
                    on_disk: path.is_dir(),
                    path,
                    in_index: true,
                });
        }
        for name in subdirectory_names(&self.dir)? {
            let Some(variant) = name.strip_prefix('v').and_then(parse_canonical::<u32>) else {
                continue;
            };
            if variant == 0 {
                continue;
            }
            found
                .entry(variant)
                .or_insert_with(|| FinalTrainingVariant {
                    variant,
                    path: self.dir.join(&name),
                    name,
                    in_index: false,
                    on_disk: true,
                });
        }
        Ok(found.into_values().collect())
    }
}

/// Python's truthiness of a JSON value.
fn truthy(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => false,
        serde_json::Value::Bool(flag) => *flag,
        serde_json::Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        serde_json::Value::String(text) => !text.is_empty(),
        serde_json::Value::Array(items) => !items.is_empty(),
        serde_json::Value::Object(entries) => !entries.is_empty(),
    }
}

/// `path` relative to `root` with `/` separators, as the index stores it (so a project can move
/// between machines); a path outside `root` stays absolute.
fn relative_to(path: &Path, root: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(relative) => relative
            .components()
            .filter_map(|component| match component {
                Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => path.display().to_string(),
    }
}

/// An exclusive advisory lock on `{index}.lock`, released when dropped. The lock file itself is
/// never deleted: removing it would let two allocators lock two different files.
#[derive(Debug)]
struct IndexLock {
    _file: std::fs::File,
}

impl IndexLock {
    fn acquire(index: &Path) -> Result<Self, VariantsError> {
        let mut name = index.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(VariantsError::io("create", parent))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(VariantsError::io("open lock file", &path))?;
        // Called through the trait: std's inherent `File::lock` is newer than the MSRV.
        fs4::FileExt::lock(&file).map_err(VariantsError::io("lock", &path))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SPEC: &str = "aaaaaaaa11112222";
    const EXEC: &str = "bbbbbbbb33334444";

    fn trainings(root: &Path) -> FinalTrainings {
        FinalTrainings::locate(
            &OutputLayout::new(root),
            &Environment::Local,
            "distilbert-base-uncased",
            FinalTrainingKey::new(SPEC, EXEC).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn fingerprints_are_checked() {
        assert!(FinalTrainingKey::new("abc", EXEC).is_err());
        assert!(FinalTrainingKey::new(SPEC, "BBBBBBBB").is_err());
        let message = FinalTrainingKey::new(SPEC, "../../etc")
            .unwrap_err()
            .to_string();
        assert!(message.contains("exec"), "{message}");
        assert_eq!(
            FinalTrainingKey::new(SPEC, EXEC).unwrap().folder_name(),
            "spec-aaaaaaaa_exec-bbbbbbbb"
        );
    }

    #[test]
    fn fallback_scan_finds_strict_v_folders() {
        let root = tempfile::tempdir().unwrap();
        let trainings = trainings(root.path());
        assert_eq!(trainings.next().unwrap().variant, 1);
        for name in ["v1", "v4", "v04", "v0", "vx", "v2_v9", "x5"] {
            std::fs::create_dir_all(trainings.dir().join(name)).unwrap();
        }
        let found: Vec<u32> = trainings
            .list()
            .unwrap()
            .iter()
            .map(|v| v.variant)
            .collect();
        assert_eq!(found, [1, 4]);
        assert!(
            trainings
                .list()
                .unwrap()
                .iter()
                .all(|v| v.on_disk && !v.in_index)
        );
        assert_eq!(trainings.next().unwrap().name, "v5");
    }

    #[test]
    fn index_entries_count_and_are_filtered_by_key_environment_and_model() {
        let root = tempfile::tempdir().unwrap();
        let trainings = trainings(root.path());
        let entry = |spec: &str, env: &str, model: &str, variant: u32| {
            serde_json::json!({"spec_fp": spec, "exec_fp": EXEC, "environment": env,
                "model": model, "variant": variant, "path": format!("elsewhere/v{variant}"),
                "created_at": "2024-01-01"})
        };
        let index = serde_json::json!([
            entry(SPEC, "local", "distilbert", 7),
            entry(SPEC, "colab", "distilbert", 20),
            entry(SPEC, "local", "deberta", 21),
            entry("cccccccc00000000", "local", "distilbert", 22),
        ]);
        write_json_atomic(trainings.index_path(), &index).unwrap();
        let listed = trainings.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].variant, 7);
        assert_eq!(listed[0].path, root.path().join("elsewhere/v7"));
        assert!(listed[0].in_index && !listed[0].on_disk);

        let allocated = trainings.allocate().unwrap();
        assert_eq!(allocated.variant, 8);
        // A bare list stays a bare list, and unknown fields survive the rewrite.
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(trainings.index_path()).unwrap())
                .unwrap();
        let entries = written.as_array().unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0]["created_at"], "2024-01-01");
        assert_eq!(
            entries[4]["path"],
            "outputs/final_training/local/distilbert/spec-aaaaaaaa_exec-bbbbbbbb/v8"
        );
    }

    #[test]
    fn corrupt_index_falls_back_for_reads_and_blocks_writes() {
        let root = tempfile::tempdir().unwrap();
        let trainings = trainings(root.path());
        std::fs::create_dir_all(trainings.dir().join("v2")).unwrap();
        write_atomic_text(trainings.index_path(), "{not json");
        assert_eq!(trainings.next().unwrap().variant, 3);
        let message = trainings.allocate().unwrap_err().to_string();
        assert!(message.contains("final_training_index.json"), "{message}");
        assert_eq!(
            std::fs::read_to_string(trainings.index_path()).unwrap(),
            "{not json"
        );
    }

    fn write_atomic_text(path: &Path, text: &str) {
        crate::fs::write_atomic(path, text.as_bytes()).unwrap();
    }

    #[test]
    fn concurrent_threads_get_distinct_variants_all_indexed() {
        const THREADS: u32 = 8;
        let root = tempfile::tempdir().unwrap();
        let trainings = trainings(root.path());
        let barrier = std::sync::Barrier::new(THREADS as usize);
        let mut variants: Vec<u32> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        trainings.allocate().unwrap().variant
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        variants.sort_unstable();
        assert_eq!(variants, (1..=THREADS).collect::<Vec<_>>());
        let listed = trainings.list().unwrap();
        assert_eq!(listed.len(), THREADS as usize);
        assert!(listed.iter().all(|v| v.in_index && v.on_disk), "{listed:?}");
    }

    #[test]
    fn run_modes_decide_as_the_pipelines_final_training_config() {
        let root = tempfile::tempdir().unwrap();
        let key = FinalTrainingKey::new("0123456789abcdef", "fedcba9876543210").unwrap();
        let trainings = FinalTrainings::locate(
            &OutputLayout::new(root.path()),
            &Environment::Local,
            "distilbert-base-uncased",
            key,
        )
        .unwrap();
        let decide = |mode, explicit| {
            let (decision, found) = trainings.resolve_variant(mode, explicit).unwrap();
            (decision, found.variant)
        };
        assert_eq!(
            decide(RunMode::ReuseIfExists, None),
            (Decision::CreateNew, 1)
        );
        // v1 exists but is incomplete: never resumed, the next variant starts.
        let v1 = trainings.allocate().unwrap();
        assert_eq!(
            decide(RunMode::ReuseIfExists, None),
            (Decision::CreateNew, 2)
        );
        assert_eq!(
            decide(RunMode::ResumeIfIncomplete, None),
            (Decision::CreateNew, 2)
        );
        // Complete by its checkpoint, or by metadata.json.
        std::fs::create_dir_all(v1.path.join("checkpoint")).unwrap();
        std::fs::write(v1.path.join("checkpoint/config.json"), "{}").unwrap();
        std::fs::write(v1.path.join("checkpoint/model.safetensors"), "w").unwrap();
        assert_eq!(decide(RunMode::ReuseIfExists, None), (Decision::Reuse, 1));
        assert_eq!(decide(RunMode::ForceNew, Some(1)), (Decision::CreateNew, 2));
        assert_eq!(
            decide(RunMode::ReuseIfExists, Some(1)),
            (Decision::Reuse, 1)
        );
        let v2 = trainings.allocate().unwrap();
        assert_eq!(
            decide(RunMode::ReuseIfExists, None),
            (Decision::CreateNew, 3)
        );
        std::fs::write(
            v2.path.join("metadata.json"),
            r#"{"status": {"training": {"completed": true}}}"#,
        )
        .unwrap();
        assert_eq!(decide(RunMode::ReuseIfExists, None), (Decision::Reuse, 2));
    }

    #[test]
    fn reuse_looks_at_the_indexed_variant_as_the_pipeline_does() {
        let root = tempfile::tempdir().unwrap();
        let trainings = trainings(root.path());
        let decide = |mode| {
            let (decision, found) = trainings.resolve_variant(mode, None).unwrap();
            (decision, found.variant)
        };
        // v1 is indexed and complete (a truthy flag that is not `true`); a crashed v2 left a
        // folder the index does not know.
        let v1 = trainings.allocate().unwrap();
        std::fs::write(
            v1.path.join("metadata.json"),
            r#"{"status": {"training": {"completed": 1}}}"#,
        )
        .unwrap();
        std::fs::create_dir_all(trainings.variant(2).path.join("checkpoint")).unwrap();
        assert_eq!(decide(RunMode::ReuseIfExists), (Decision::Reuse, 1));
        // A new variant still goes above every folder.
        assert_eq!(decide(RunMode::ForceNew), (Decision::CreateNew, 3));
        // Without index entries the highest folder is the one looked at: incomplete, so the
        // next variant starts.
        std::fs::remove_file(trainings.index_path()).unwrap();
        assert_eq!(decide(RunMode::ReuseIfExists), (Decision::CreateNew, 3));
        // `model.*` may be a folder (a sharded checkpoint), as the pipeline's glob sees it.
        let v2 = trainings.variant(2).path;
        std::fs::write(v2.join("checkpoint/config.json"), "{}").unwrap();
        std::fs::create_dir_all(v2.join("checkpoint/model.shards")).unwrap();
        assert_eq!(decide(RunMode::ReuseIfExists), (Decision::Reuse, 2));
        for (flag, complete) in [
            ("false", false),
            ("0", false),
            ("\"\"", false),
            ("\"yes\"", true),
        ] {
            std::fs::write(
                v1.path.join("metadata.json"),
                format!(r#"{{"status": {{"training": {{"completed": {flag}}}}}}}"#),
            )
            .unwrap();
            assert_eq!(trainings.is_complete(1), complete, "{flag}");
        }
    }
}
