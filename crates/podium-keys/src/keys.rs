//! Study, family, trial and benchmark keys, fingerprints and config hashes, each
//! byte-identical to the Python pipeline's.
//!
//! Kept whole on purpose: the key functions (about 600 lines) build on each other, study key to
//! hash to trial key to benchmark key, and the tests after them pin their bytes to the pipeline's.
//!
//! Every function takes the configs as [`PyValue`]s loaded with [`crate::load_path`] /
//! [`crate::load_yaml_str`] (never with serde_yaml: YAML 1.2 would read `1e-5` as a float and
//! change the hash). `g(d, k, default)` below means Python's `d.get(k, default)`: a key present
//! with a null value gives null, not the default.

use sha2::{Digest, Sha256};

use crate::canonical::{Separators, py_json};
use crate::error::KeysError;
use crate::value::PyValue;

/// `schema_version` of the current study key.
pub const STUDY_KEY_SCHEMA_V2: &str = "2.0";
/// `schema_version` tag value of legacy studies (their hashes are read from tags, never
/// recomputed: the payload they were made from is gone).
pub const STUDY_KEY_SCHEMA_V1: &str = "1.0";
/// `schema_version` inside the "v1" study key and the family key payloads. The pipeline's
/// `build_hpo_study_key` writes "2.0" there too; only the `study.key_schema_version` tag tells
/// the two study keys apart.
pub const STUDY_FAMILY_SCHEMA: &str = "2.0";
/// `schema_version` of the trial key.
pub const TRIAL_KEY_SCHEMA: &str = "2.0";
/// Hyperparameters that are not part of a trial's identity (the pipeline drops them before
/// hashing).
pub const TRIAL_KEY_EXCLUDED_PARAMS: [&str; 3] = ["backbone", "trial_number", "run_id"];

/// Which study key definition to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum StudyKeySchema {
    /// v2 (`build_hpo_study_key_v2`): bound data/eval fingerprints, training budget, explicit
    /// direction, no benchmark.
    #[default]
    V2,
    /// "v1" (`build_hpo_study_key`): local_path, the whole objective and the benchmark's
    /// metric/max_length.
    V1,
}

impl StudyKeySchema {
    /// The `study.key_schema_version` tag value of studies keyed this way.
    pub fn as_str(self) -> &'static str {
        match self {
            StudyKeySchema::V2 => STUDY_KEY_SCHEMA_V2,
            StudyKeySchema::V1 => STUDY_KEY_SCHEMA_V1,
        }
    }

    /// Parses `2.0`/`v2`/`2` or `1.0`/`v1`/`1`.
    pub fn parse(text: &str) -> Result<Self, KeysError> {
        match text.trim().trim_start_matches(['v', 'V']) {
            "2" | "2.0" => Ok(StudyKeySchema::V2),
            "1" | "1.0" => Ok(StudyKeySchema::V1),
            other => Err(KeysError::Config {
                file: None,
                key: "schema".into(),
                message: format!("unknown study key schema {other:?} (expected v2 or v1)"),
            }),
        }
    }
}

impl std::fmt::Display for StudyKeySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `hashlib.sha256(text.encode("utf-8")).hexdigest()`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The configs a study key is computed from, as loaded with the PyYAML-compatible loader.
#[derive(Debug, Clone, Copy)]
pub struct StudyConfigs<'a> {
    /// The data config the experiment names (`data/*.yaml`).
    pub data: &'a PyValue,
    /// The HPO config of record (`hpo/*.yaml`).
    pub hpo: &'a PyValue,
    /// The train config (`train.yaml`, whole file as loaded).
    pub train: &'a PyValue,
    /// An explicit eval config; `None` derives it from train and HPO ([`derive_eval_config`]),
    /// as the pipeline always does.
    pub eval: Option<&'a PyValue>,
    /// The backbone as written in the search space; the key uses `model.lower().strip()`.
    pub model: &'a str,
    /// The benchmark config (`benchmark.yaml`): only the "v1" and family keys read it
    /// (`benchmarking.metric` / `benchmarking.max_length`); `None` or a falsy config counts
    /// as absent.
    pub benchmark: Option<&'a PyValue>,
    /// `code_version`, added to the v2 payload when set.
    pub code_version: Option<&'a str>,
}

/// A config that must be a dict: its entries, or an error naming it.
fn mapping<'v>(value: &'v PyValue, name: &str) -> Result<&'v [(PyValue, PyValue)], KeysError> {
    match value {
        PyValue::Dict(entries) => Ok(entries),
        other => Err(KeysError::Config {
            file: None,
            key: name.to_string(),
            message: format!(
                "expected a mapping, found {} (Python's .get would fail)",
                other.type_name()
            ),
        }),
    }
}

/// Like [`mapping`], with null meaning `{}` (an empty YAML file loads as None).
fn mapping_or_empty<'v>(
    value: &'v PyValue,
    name: &str,
) -> Result<&'v [(PyValue, PyValue)], KeysError> {
    match value {
        PyValue::None => Ok(&[]),
        other => mapping(other, name),
    }
}

/// `d.get(key, default)` on a dict's entries.
fn get(entries: &[(PyValue, PyValue)], key: &str, default: PyValue) -> PyValue {
    entries
        .iter()
        .find(|(k, _)| matches!(k, PyValue::Str(s) if s == key))
        .map(|(_, v)| v.clone())
        .unwrap_or(default)
}

fn empty() -> PyValue {
    PyValue::empty_dict()
}

/// A dict with string keys, in the order given (py_json sorts anyway).
fn object<const N: usize>(pairs: [(&str, PyValue); N]) -> PyValue {
    PyValue::Dict(
        pairs
            .into_iter()
            .map(|(key, value)| (PyValue::str(key), value))
            .collect(),
    )
}

/// Python's `str.lower().strip()` (strip removes what `str.isspace` calls whitespace, which
/// includes the ASCII separators U+001C..U+001F that Rust's `trim` keeps).
pub fn normalize_model_name(model: &str) -> String {
    model
        .to_lowercase()
        .trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .to_string()
}

/// The data fingerprint (`compute_data_fingerprint`): `sha256(str(content_hash or
/// manifest_hash))` when that is truthy, else sha256 of the compact dump of `{name, version,
/// split_seed, label_mapping, schema}` (missing name/version/split_seed are null,
/// label_mapping and schema default to `{}`). A null config counts as `{}`.
pub fn data_fingerprint(data: &PyValue) -> Result<String, KeysError> {
    let data = mapping_or_empty(data, "data")?;
    let content = get(data, "content_hash", PyValue::None);
    let identity = if content.is_truthy() {
        content
    } else {
        get(data, "manifest_hash", PyValue::None)
    };
    if identity.is_truthy() {
        return Ok(sha256_hex(&identity.py_str()?));
    }
    let payload = object([
        ("name", get(data, "name", PyValue::None)),
        ("version", get(data, "version", PyValue::None)),
        ("split_seed", get(data, "split_seed", PyValue::None)),
        ("label_mapping", get(data, "label_mapping", empty())),
        ("schema", get(data, "schema", empty())),
    ]);
    Ok(sha256_hex(&py_json(&payload, Separators::Compact)?))
}

/// The eval config every key derives (`derive_eval_config(train, hpo)`): `train["eval"]` when
/// truthy, else `hpo["evaluation"]` when truthy, else — for a non-empty HPO config —
/// `{"evaluator_version": "default", "metric": hpo.get("objective", {})}`, else
/// `{"evaluator_version": "default"}`. There is no eval file.
pub fn derive_eval_config(train: &PyValue, hpo: &PyValue) -> Result<PyValue, KeysError> {
    let mut eval = PyValue::None;
    if train.is_truthy() {
        let train = mapping(train, "train")?;
        eval = get(train, "eval", empty());
    }
    if !eval.is_truthy() && hpo.is_truthy() {
        let hpo_entries = mapping(hpo, "hpo")?;
        eval = get(hpo_entries, "evaluation", empty());
        if !eval.is_truthy() {
            eval = object([
                ("evaluator_version", PyValue::str("default")),
                ("metric", get(hpo_entries, "objective", empty())),
            ]);
        }
    }
    if !eval.is_truthy() {
        eval = object([("evaluator_version", PyValue::str("default"))]);
    }
    Ok(eval)
}

/// The eval config the pipeline's benchmark workflow keys benchmarks with
/// (`run_benchmarking_workflow`): `derive_eval_config(hpo.get("train", {}), hpo)` over the HPO
/// config it is given — its train input is the HPO config's own `train` entry (usually absent),
/// not the train file the study keys derive theirs from. The HPO config must be a mapping.
pub fn benchmark_eval_config(hpo: &PyValue) -> Result<PyValue, KeysError> {
    let train = get(mapping(hpo, "hpo")?, "train", empty());
    derive_eval_config(&train, hpo)
}

/// The eval fingerprint (`compute_eval_fingerprint`): sha256 of the compact dump of
/// `{"evaluator_version": g("default"), "metric_spec": g("metric", {}), "thresholding": g({}),
/// "full_eval_config": eval}`. A null config counts as `{}`.
pub fn eval_fingerprint(eval: &PyValue) -> Result<String, KeysError> {
    let entries = mapping_or_empty(eval, "eval")?;
    let full = PyValue::Dict(entries.to_vec());
    let payload = object([
        (
            "evaluator_version",
            get(entries, "evaluator_version", PyValue::str("default")),
        ),
        ("metric_spec", get(entries, "metric", empty())),
        ("thresholding", get(entries, "thresholding", empty())),
        ("full_eval_config", full),
    ]);
    Ok(sha256_hex(&py_json(&payload, Separators::Compact)?))
}

impl StudyConfigs<'_> {
    /// The eval config: the explicit one, else [`derive_eval_config`].
    pub fn eval_config(&self) -> Result<PyValue, KeysError> {
        match self.eval {
            Some(eval) => Ok(eval.clone()),
            None => derive_eval_config(self.train, self.hpo),
        }
    }
}

/// `hpo.get("sampling", {}).get("algorithm", "random")`.
fn sampling_algorithm(hpo: &[(PyValue, PyValue)]) -> Result<PyValue, KeysError> {
    let sampling_value = get(hpo, "sampling", empty());
    let sampling = mapping(&sampling_value, "hpo.sampling")?;
    Ok(get(sampling, "algorithm", PyValue::str("random")))
}

/// The v2 study key JSON (`build_hpo_study_key_v2`, compact). No benchmark config and no
/// local_path; `code_version` only when set in `configs`.
pub fn study_key_v2(
    configs: &StudyConfigs<'_>,
    data_fingerprint: &str,
    eval_fingerprint: &str,
) -> Result<String, KeysError> {
    let data = mapping(configs.data, "data")?;
    let hpo = mapping(configs.hpo, "hpo")?;
    let train = mapping(configs.train, "train")?;
    let objective_value = get(hpo, "objective", empty());
    let objective = mapping(&objective_value, "hpo.objective")?;
    let data_key = object([
        ("name", get(data, "name", PyValue::str(""))),
        ("version", get(data, "version", PyValue::str(""))),
        ("schema", get(data, "schema", empty())),
        (
            "split_seed",
            get(data, "split_seed", PyValue::str("default")),
        ),
        ("label_mapping", get(data, "label_mapping", empty())),
        ("data_fingerprint", PyValue::str(data_fingerprint)),
    ]);
    let hpo_key = object([
        ("search_space", get(hpo, "search_space", empty())),
        (
            "objective",
            object([
                ("metric", get(objective, "metric", PyValue::str("macro-f1"))),
                (
                    "direction",
                    get(objective, "direction", PyValue::str("maximize")),
                ),
            ]),
        ),
        ("k_fold", get(hpo, "k_fold", empty())),
        (
            "sampling",
            object([("algorithm", sampling_algorithm(hpo)?)]),
        ),
        ("early_termination", get(hpo, "early_termination", empty())),
    ]);
    let training_key = object([
        ("max_steps", get(train, "max_steps", PyValue::None)),
        ("num_epochs", get(train, "num_epochs", PyValue::None)),
        (
            "seed_policy",
            get(train, "seed_policy", PyValue::str("default")),
        ),
    ]);
    let mut payload = vec![
        (
            PyValue::str("schema_version"),
            PyValue::str(STUDY_KEY_SCHEMA_V2),
        ),
        (PyValue::str("data"), data_key),
        (PyValue::str("hpo"), hpo_key),
        (PyValue::str("training"), training_key),
        (
            PyValue::str("evaluation"),
            object([("eval_fingerprint", PyValue::str(eval_fingerprint))]),
        ),
        (
            PyValue::str("model"),
            PyValue::str(normalize_model_name(configs.model)),
        ),
    ];
    if let Some(code_version) = configs.code_version {
        payload.push((PyValue::str("code_version"), PyValue::str(code_version)));
    }
    py_json(&PyValue::Dict(payload), Separators::Compact)
}

/// The payload shared by the "v1" study key and the family key (`build_hpo_study_key` /
/// `build_hpo_study_family_key`), with `model` only for the study key.
fn v1_payload(configs: &StudyConfigs<'_>, with_model: bool) -> Result<PyValue, KeysError> {
    let data = mapping(configs.data, "data")?;
    let hpo = mapping(configs.hpo, "hpo")?;
    let local_path = get(data, "local_path", PyValue::str("")).py_str()?;
    let data_key = object([
        ("name", get(data, "name", PyValue::str(""))),
        ("version", get(data, "version", PyValue::str(""))),
        ("local_path", PyValue::Str(local_path)),
        ("schema", get(data, "schema", empty())),
    ]);
    let hpo_key = object([
        ("search_space", get(hpo, "search_space", empty())),
        ("objective", get(hpo, "objective", empty())),
        ("k_fold", get(hpo, "k_fold", empty())),
        (
            "sampling",
            object([("algorithm", sampling_algorithm(hpo)?)]),
        ),
        ("early_termination", get(hpo, "early_termination", empty())),
    ]);
    let bench_key = match configs.benchmark {
        Some(benchmark) if benchmark.is_truthy() => {
            let benchmark = mapping(benchmark, "benchmark")?;
            let section_value = get(benchmark, "benchmarking", empty());
            let section = mapping(&section_value, "benchmark.benchmarking")?;
            object([
                ("metric", get(section, "metric", PyValue::str("macro-f1"))),
                ("max_length", get(section, "max_length", PyValue::int(512))),
            ])
        }
        _ => empty(),
    };
    let mut payload = vec![
        (
            PyValue::str("schema_version"),
            PyValue::str(STUDY_FAMILY_SCHEMA),
        ),
        (PyValue::str("data"), data_key),
        (PyValue::str("hpo"), hpo_key),
        (PyValue::str("benchmark"), bench_key),
    ];
    if with_model {
        payload.push((
            PyValue::str("model"),
            PyValue::str(normalize_model_name(configs.model)),
        ));
    }
    Ok(PyValue::Dict(payload))
}

/// The "v1" study key JSON (`build_hpo_study_key`, compact): data name/version/`str(local_path)`
/// /schema, the HPO search space, the whole objective, k_fold, sampling algorithm and early
/// termination, the model, and the benchmark's `metric`/`max_length` (`{}` without a benchmark
/// config). Its `schema_version` says "2.0".
pub fn study_key_v1(configs: &StudyConfigs<'_>) -> Result<String, KeysError> {
    py_json(&v1_payload(configs, true)?, Separators::Compact)
}

/// The study family key JSON (`build_hpo_study_family_key`, compact): the "v1" payload without
/// `model`.
pub fn study_family_key(configs: &StudyConfigs<'_>) -> Result<String, KeysError> {
    py_json(&v1_payload(configs, false)?, Separators::Compact)
}

/// `sha256(study_key)`.
pub fn study_key_hash(study_key: &str) -> String {
    sha256_hex(study_key)
}

/// `sha256(family_key)`.
pub fn study_family_hash(family_key: &str) -> String {
    sha256_hex(family_key)
}

/// One hyperparameter value as the pipeline normalises it for the trial key: a float becomes
/// `float(f"{v:.12e}")` (13 significant digits, rounded half-even on the exact binary value;
/// `0.0` and `-0.0` become `0.0`); ints and bools stay; a string becomes `.lower().strip()`;
/// anything else `str(v).lower().strip()`.
pub fn normalize_hyperparameter(value: &PyValue) -> Result<PyValue, KeysError> {
    Ok(match value {
        PyValue::Float(float) if *float == 0.0 => PyValue::Float(0.0),
        PyValue::Float(float) => PyValue::Float(round_to_13_significant_digits(*float)),
        PyValue::Int(_) | PyValue::Bool(_) => value.clone(),
        PyValue::Str(text) => PyValue::Str(normalize_model_name(text)),
        other => PyValue::Str(normalize_model_name(&other.py_str()?)),
    })
}

/// `float(f"{value:.12e}")`. Rust's exact-precision formatting rounds the exact binary value
/// half to even, like CPython's; parsing back is correctly rounded on both sides. Non-finite
/// values pass through (`f"{inf:.12e}"` is "inf").
fn round_to_13_significant_digits(value: f64) -> f64 {
    if !value.is_finite() {
        return value;
    }
    format!("{value:.12e}").parse().unwrap_or(value)
}

/// The trial's hyperparameters as the trial key hashes them: without `backbone`,
/// `trial_number` and `run_id`, each value normalised ([`normalize_hyperparameter`]).
pub fn normalize_hyperparameters(params: &PyValue) -> Result<PyValue, KeysError> {
    let entries = mapping_or_empty(params, "hyperparameters")?;
    let mut normalized = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        if matches!(key, PyValue::Str(name) if TRIAL_KEY_EXCLUDED_PARAMS.contains(&name.as_str())) {
            continue;
        }
        let value = normalize_hyperparameter(value).map_err(|err| match err {
            KeysError::Unserialisable { message, .. } => KeysError::Config {
                file: None,
                key: format!("hyperparameters.{}", key.py_str().unwrap_or_default()),
                message,
            },
            other => other,
        })?;
        normalized.push((key.clone(), value));
    }
    Ok(PyValue::Dict(normalized))
}

/// The trial key JSON (`build_hpo_trial_key`, compact): `{"schema_version":"2.0",
/// "study_key_hash":H,"hyperparameters":N}` with N = [`normalize_hyperparameters`] of the
/// trial's parameters.
pub fn trial_key(study_key_hash: &str, params: &PyValue) -> Result<String, KeysError> {
    let payload = object([
        ("schema_version", PyValue::str(TRIAL_KEY_SCHEMA)),
        ("study_key_hash", PyValue::str(study_key_hash)),
        ("hyperparameters", normalize_hyperparameters(params)?),
    ]);
    py_json(&payload, Separators::Compact)
}

/// `sha256(trial_key)`.
pub fn trial_key_hash(trial_key: &str) -> String {
    sha256_hex(trial_key)
}

/// The config hash (`compute_config_hash`): the first 16 hex digits of sha256 of
/// `json.dumps(config, sort_keys=True)` with the default separators, over the whole config.
pub fn config_hash(config: &PyValue) -> Result<String, KeysError> {
    let mut hash = sha256_hex(&py_json(config, Separators::Default)?);
    hash.truncate(16);
    Ok(hash)
}

/// podium's earlier benchmark config fingerprint: the first 16 hex of sha256 of the compact
/// dump of the config without its `run` section and with `"harness_version"` set. Kept for the
/// benchmark results podium keyed this way; the pipeline's benchmark key uses [`config_hash`]
/// of the whole benchmark config.
pub fn benchmark_fingerprint(
    benchmark_config: &PyValue,
    harness_version: u32,
) -> Result<String, KeysError> {
    let entries = mapping_or_empty(benchmark_config, "benchmark")?;
    let mut kept: Vec<(PyValue, PyValue)> = entries
        .iter()
        .filter(|(key, _)| !matches!(key, PyValue::Str(name) if name == "run"))
        .cloned()
        .collect();
    PyValue::dict_insert(
        &mut kept,
        PyValue::str("harness_version"),
        PyValue::int(i64::from(harness_version)),
    );
    let mut hash = sha256_hex(&py_json(&PyValue::Dict(kept), Separators::Compact)?);
    hash.truncate(16);
    Ok(hash)
}

/// `"{champion_run_id}:{data_fp}:{eval_fp}:{bench_fp}"` (`build_benchmark_key`; the pipeline's
/// `bench_fp` is [`config_hash`] of the whole benchmark config).
pub fn benchmark_key(
    champion_run_id: &str,
    data_fingerprint: &str,
    eval_fingerprint: &str,
    bench_fingerprint: &str,
) -> String {
    format!("{champion_run_id}:{data_fingerprint}:{eval_fingerprint}:{bench_fingerprint}")
}

/// Everything that identifies a study, ready for tagging its runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StudyIdentity {
    /// The `study.key_schema_version` tag value: `"2.0"` for the v2 key, `"1.0"` for the
    /// "v1" key.
    pub schema_version: String,
    /// The study key JSON.
    pub study_key: String,
    /// sha256 of the study key.
    pub study_key_hash: String,
    /// sha256 of the family key.
    pub study_family_hash: String,
    /// The data fingerprint.
    pub data_fingerprint: String,
    /// The eval fingerprint (of the explicit or derived eval config).
    pub eval_fingerprint: String,
    /// The objective direction the sweep optimises (`hpo.objective.direction`, else the legacy
    /// `goal` — `max`/`min` spelled out — else `maximize`).
    pub objective_direction: String,
}

impl StudyIdentity {
    /// Computes the keys, hashes and fingerprints of a study under the given schema.
    pub fn compute(configs: &StudyConfigs<'_>, schema: StudyKeySchema) -> Result<Self, KeysError> {
        let data_fingerprint = data_fingerprint(configs.data)?;
        let eval_fingerprint = eval_fingerprint(&configs.eval_config()?)?;
        let study_key = match schema {
            StudyKeySchema::V2 => study_key_v2(configs, &data_fingerprint, &eval_fingerprint)?,
            StudyKeySchema::V1 => study_key_v1(configs)?,
        };
        let family_key = study_family_key(configs)?;
        Ok(StudyIdentity {
            schema_version: schema.as_str().to_string(),
            study_key_hash: study_key_hash(&study_key),
            study_key,
            study_family_hash: study_family_hash(&family_key),
            data_fingerprint,
            eval_fingerprint,
            objective_direction: objective_direction(configs.hpo)?,
        })
    }
}

/// Every key of a study at once, as `podium keys study` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StudyKeys {
    /// The data fingerprint.
    pub data_fingerprint: String,
    /// The eval fingerprint of the (derived) eval config.
    pub eval_fingerprint: String,
    /// The v2 study key JSON.
    pub study_key: String,
    /// sha256 of the v2 study key.
    pub study_key_hash: String,
    /// The family key JSON.
    pub study_family_key: String,
    /// sha256 of the family key.
    pub study_family_hash: String,
    /// The "v1" study key JSON.
    pub v1_study_key: String,
    /// sha256 of the "v1" study key.
    pub v1_study_key_hash: String,
}

impl StudyKeys {
    /// Computes every key of a study.
    pub fn compute(configs: &StudyConfigs<'_>) -> Result<Self, KeysError> {
        let data_fingerprint = data_fingerprint(configs.data)?;
        let eval_fingerprint = eval_fingerprint(&configs.eval_config()?)?;
        let study_key = study_key_v2(configs, &data_fingerprint, &eval_fingerprint)?;
        let study_family_key = study_family_key(configs)?;
        let v1_study_key = study_key_v1(configs)?;
        Ok(StudyKeys {
            study_key_hash: study_key_hash(&study_key),
            study_family_hash: study_family_hash(&study_family_key),
            v1_study_key_hash: study_key_hash(&v1_study_key),
            data_fingerprint,
            eval_fingerprint,
            study_key,
            study_family_key,
            v1_study_key,
        })
    }
}

/// The direction an HPO config optimises: `objective.direction`, else the legacy
/// `objective.goal` (`max`/`min` spelled out), else `maximize`.
pub fn objective_direction(hpo: &PyValue) -> Result<String, KeysError> {
    let hpo = mapping(hpo, "hpo")?;
    let objective_value = get(hpo, "objective", empty());
    let objective = mapping(&objective_value, "hpo.objective")?;
    let raw = match get(objective, "direction", PyValue::None) {
        PyValue::None => get(objective, "goal", PyValue::str("maximize")),
        direction => direction,
    };
    let text = raw.as_str().ok_or_else(|| KeysError::Config {
        file: None,
        key: "hpo.objective.direction".into(),
        message: format!("expected a string, found {}", raw.type_name()),
    })?;
    Ok(match text.to_lowercase().as_str() {
        "max" | "maximize" => "maximize".to_string(),
        "min" | "minimize" => "minimize".to_string(),
        _ => text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::load::load_yaml_str;

    #[test]
    fn sha256_of_empty_text() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn data_fingerprint_prefers_content_hash() {
        let with_hash = load_yaml_str("name: x\ncontent_hash: abc\n").unwrap();
        assert_eq!(data_fingerprint(&with_hash).unwrap(), sha256_hex("abc"));
        let manifest = load_yaml_str("content_hash: ''\nmanifest_hash: 12\n").unwrap();
        assert_eq!(data_fingerprint(&manifest).unwrap(), sha256_hex("12"));
        let neither = load_yaml_str("name: x\n").unwrap();
        assert_eq!(
            data_fingerprint(&neither).unwrap(),
            sha256_hex(
                r#"{"label_mapping":{},"name":"x","schema":{},"split_seed":null,"version":null}"#
            )
        );
    }

    #[test]
    fn eval_fingerprint_of_nothing() {
        let expected = sha256_hex(
            r#"{"evaluator_version":"default","full_eval_config":{},"metric_spec":{},"thresholding":{}}"#,
        );
        assert_eq!(eval_fingerprint(&PyValue::None).unwrap(), expected);
        assert_eq!(eval_fingerprint(&PyValue::empty_dict()).unwrap(), expected);
    }

    #[test]
    fn benchmark_fingerprint_ignores_run_mode() {
        let a = load_yaml_str("run: {mode: force_new}\nwarmup: 10\n").unwrap();
        let b = load_yaml_str("run: {mode: reuse_if_exists}\nwarmup: 10\n").unwrap();
        assert_eq!(
            benchmark_fingerprint(&a, 1).unwrap(),
            benchmark_fingerprint(&b, 1).unwrap()
        );
        assert_ne!(
            benchmark_fingerprint(&a, 1).unwrap(),
            benchmark_fingerprint(&a, 2).unwrap()
        );
        let expected = sha256_hex(r#"{"harness_version":1,"warmup":10}"#);
        assert_eq!(benchmark_fingerprint(&a, 1).unwrap(), expected[..16]);
    }

    #[test]
    fn eval_config_is_derived_like_the_pipeline() {
        let train = load_yaml_str("training: {epochs: 1}\n").unwrap();
        let hpo = load_yaml_str("objective: {metric: macro-f1, direction: maximize}\n").unwrap();
        assert_eq!(
            py_json(
                &derive_eval_config(&train, &hpo).unwrap(),
                Separators::Compact
            )
            .unwrap(),
            r#"{"evaluator_version":"default","metric":{"direction":"maximize","metric":"macro-f1"}}"#
        );
        let with_eval = load_yaml_str("eval: {evaluator_version: '2'}\n").unwrap();
        assert_eq!(
            derive_eval_config(&with_eval, &hpo).unwrap(),
            load_yaml_str("{evaluator_version: '2'}").unwrap()
        );
        let evaluation = load_yaml_str("evaluation: {x: 1}\n").unwrap();
        assert_eq!(
            derive_eval_config(&train, &evaluation).unwrap(),
            load_yaml_str("{x: 1}").unwrap()
        );
        assert_eq!(
            derive_eval_config(&PyValue::None, &PyValue::empty_dict()).unwrap(),
            load_yaml_str("{evaluator_version: default}").unwrap()
        );
        assert!(derive_eval_config(&PyValue::int(3), &hpo).is_err());
    }

    #[test]
    fn the_benchmark_workflow_derives_its_eval_config_from_the_hpo_config_alone() {
        // The HPO config's own `train` entry is the train input: its `eval` wins…
        let hpo = load_yaml_str(
            "train: {eval: {evaluator_version: '3'}}\nevaluation: {x: 1}\nobjective: {metric: f}\n",
        )
        .unwrap();
        assert_eq!(
            benchmark_eval_config(&hpo).unwrap(),
            load_yaml_str("{evaluator_version: '3'}").unwrap()
        );
        // …without one, `evaluation`, then the objective, as derive_eval_config goes.
        let hpo = load_yaml_str("objective: {metric: macro-f1, direction: maximize}\n").unwrap();
        assert_eq!(
            benchmark_eval_config(&hpo).unwrap(),
            derive_eval_config(&PyValue::empty_dict(), &hpo).unwrap()
        );
        // Python's hpo.get fails on anything but a mapping; so does podium, naming it.
        let err = benchmark_eval_config(&PyValue::None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hpo"), "{err}");
    }

    #[test]
    fn hyperparameters_normalise_like_the_pipeline() {
        let params = load_yaml_str(
            "learning_rate: 2.3300000000001e-05\nbackbone: x\ntrial_number: 3\nrun_id: r\n\
             name: ' AdamW '\nzero: -0.0\nflag: true\nnone: null\nlist: [1, 'A']\n",
        )
        .unwrap();
        let text = py_json(
            &normalize_hyperparameters(&params).unwrap(),
            Separators::Compact,
        )
        .unwrap();
        assert_eq!(
            text,
            r#"{"flag":true,"learning_rate":2.33e-05,"list":"[1, 'a']","name":"adamw","none":"none","zero":0.0}"#
        );
        // 13 significant digits, half-even on the exact binary value: 0.5 is exact.
        assert_eq!(
            round_to_13_significant_digits(1234567890123.5),
            1234567890124.0
        );
        assert_eq!(
            round_to_13_significant_digits(1234567890122.5),
            1234567890122.0
        );
        assert_eq!(round_to_13_significant_digits(1e16), 1e16);
        assert_eq!(round_to_13_significant_digits(5e-324), 5e-324);
    }

    #[test]
    fn config_hash_uses_default_separators() {
        let value = load_yaml_str("b: [1, 2]\na: {c: x}\n").unwrap();
        let expected = sha256_hex(r#"{"a": {"c": "x"}, "b": [1, 2]}"#);
        assert_eq!(config_hash(&value).unwrap(), expected[..16]);
    }

    #[test]
    fn model_names_are_normalized_like_python() {
        assert_eq!(normalize_model_name("  DistilBERT\u{1f}\n"), "distilbert");
    }

    #[test]
    fn objective_direction_accepts_legacy_goal() {
        let hpo = load_yaml_str("objective: {goal: min}").unwrap();
        assert_eq!(objective_direction(&hpo).unwrap(), "minimize");
        assert_eq!(
            objective_direction(&PyValue::empty_dict()).unwrap(),
            "maximize"
        );
    }
}
