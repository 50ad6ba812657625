//! Study, family, trial and benchmark keys, fingerprints and config hashes (DESIGN §3), each
//! byte-identical to the Python pipeline's.
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
/// `schema_version` of the legacy study key.
pub const STUDY_KEY_SCHEMA_V1: &str = "1.0";
/// `schema_version` of the study family key.
pub const STUDY_FAMILY_SCHEMA: &str = "family-2.0";
/// `schema_version` of the trial key.
pub const TRIAL_KEY_SCHEMA: &str = "1.0";

/// Which study key definition to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum StudyKeySchema {
    /// v2: bound data/eval fingerprints, training budget, explicit direction, no benchmark.
    #[default]
    V2,
    /// v1 (legacy): local_path and the benchmark config, objective goal.
    V1,
}

impl StudyKeySchema {
    /// The `schema_version` string (also the value of the `study.key_schema_version` tag).
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

/// The configs a study key is computed from, as loaded from YAML.
#[derive(Debug, Clone, Copy)]
pub struct StudyConfigs<'a> {
    /// `data.yaml`.
    pub data: &'a PyValue,
    /// The HPO config (`hpo/*.yaml`).
    pub hpo: &'a PyValue,
    /// `train.yaml`.
    pub train: &'a PyValue,
    /// `eval.yaml` (`None` counts as `{}`).
    pub eval: &'a PyValue,
    /// The backbone name; the key uses `model.lower().strip()`.
    pub model: &'a str,
    /// The benchmark config: only the legacy v1 key hashes it (`None` or null counts as `{}`).
    pub benchmark: Option<&'a PyValue>,
    /// `code_version`, added to the v2 and family payloads when set.
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

/// The data fingerprint: `sha256(str(content_hash or manifest_hash))` when that is truthy, else
/// sha256 of the default-separator dump of `{name, version, split_seed, label_mapping, schema}`
/// (missing name/version/split_seed are null, label_mapping and schema default to `{}`).
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
    Ok(sha256_hex(&py_json(&payload, Separators::Default)?))
}

/// The eval fingerprint: sha256 of the default-separator dump of `{"evaluator_version":
/// g("default"), "metric_spec": g("metric", {}), "thresholding": g({}), "full_eval_config": eval}`.
/// A null config counts as `{}`.
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
    Ok(sha256_hex(&py_json(&payload, Separators::Default)?))
}

/// The v2 payload (with or without the search space).
fn v2_payload(
    configs: &StudyConfigs<'_>,
    data_fingerprint: &str,
    eval_fingerprint: &str,
    schema_version: &str,
    with_search_space: bool,
) -> Result<PyValue, KeysError> {
    let data = mapping(configs.data, "data")?;
    let hpo = mapping(configs.hpo, "hpo")?;
    let train = mapping(configs.train, "train")?;
    let objective_value = get(hpo, "objective", empty());
    let objective = mapping(&objective_value, "hpo.objective")?;
    let sampling_value = get(hpo, "sampling", empty());
    let sampling = mapping(&sampling_value, "hpo.sampling")?;

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
    let mut hpo_key = vec![
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
            object([(
                "algorithm",
                get(sampling, "algorithm", PyValue::str("random")),
            )]),
        ),
        ("early_termination", get(hpo, "early_termination", empty())),
    ];
    if with_search_space {
        hpo_key.push(("search_space", get(hpo, "search_space", empty())));
    }
    let training_key = object([
        ("max_steps", get(train, "max_steps", PyValue::None)),
        ("num_epochs", get(train, "num_epochs", PyValue::None)),
        (
            "seed_policy",
            get(train, "seed_policy", PyValue::str("default")),
        ),
    ]);
    let mut payload = vec![
        ("schema_version", PyValue::str(schema_version)),
        ("data", data_key),
        (
            "hpo",
            PyValue::Dict(
                hpo_key
                    .into_iter()
                    .map(|(k, v)| (PyValue::str(k), v))
                    .collect(),
            ),
        ),
        ("training", training_key),
        (
            "evaluation",
            object([("eval_fingerprint", PyValue::str(eval_fingerprint))]),
        ),
        ("model", PyValue::str(normalize_model_name(configs.model))),
    ];
    if let Some(code_version) = configs.code_version {
        payload.push(("code_version", PyValue::str(code_version)));
    }
    Ok(PyValue::Dict(
        payload
            .into_iter()
            .map(|(k, v)| (PyValue::str(k), v))
            .collect(),
    ))
}

/// The v2 study key JSON (compact). No benchmark config and no local_path; `code_version` only
/// when set in `configs`.
pub fn study_key_v2(
    configs: &StudyConfigs<'_>,
    data_fingerprint: &str,
    eval_fingerprint: &str,
) -> Result<String, KeysError> {
    let payload = v2_payload(
        configs,
        data_fingerprint,
        eval_fingerprint,
        STUDY_KEY_SCHEMA_V2,
        true,
    )?;
    py_json(&payload, Separators::Compact)
}

/// The study family key JSON (compact): the v2 payload without `hpo.search_space`, with
/// `"schema_version": "family-2.0"`.
pub fn study_family_key(
    configs: &StudyConfigs<'_>,
    data_fingerprint: &str,
    eval_fingerprint: &str,
) -> Result<String, KeysError> {
    let payload = v2_payload(
        configs,
        data_fingerprint,
        eval_fingerprint,
        STUDY_FAMILY_SCHEMA,
        false,
    )?;
    py_json(&payload, Separators::Compact)
}

/// The legacy v1 study key JSON (compact). Fields missing from the configs take v2's defaults
/// (`local_path` defaults to `""`); the objective's `goal` falls back to `direction`, then
/// `"maximize"`; the benchmark config is hashed whole (`benchmark or {}`).
pub fn study_key_v1(configs: &StudyConfigs<'_>) -> Result<String, KeysError> {
    let data = mapping(configs.data, "data")?;
    let hpo = mapping(configs.hpo, "hpo")?;
    let objective_value = get(hpo, "objective", empty());
    let objective = mapping(&objective_value, "hpo.objective")?;
    let sampling_value = get(hpo, "sampling", empty());
    let sampling = mapping(&sampling_value, "hpo.sampling")?;
    let goal = get(
        objective,
        "goal",
        get(objective, "direction", PyValue::str("maximize")),
    );
    let benchmark = match configs.benchmark {
        Some(value) if value.is_truthy() => value.clone(),
        _ => empty(),
    };
    let payload = object([
        ("schema_version", PyValue::str(STUDY_KEY_SCHEMA_V1)),
        (
            "data",
            object([
                ("name", get(data, "name", PyValue::str(""))),
                ("version", get(data, "version", PyValue::str(""))),
                ("local_path", get(data, "local_path", PyValue::str(""))),
                ("schema", get(data, "schema", empty())),
                (
                    "split_seed",
                    get(data, "split_seed", PyValue::str("default")),
                ),
                ("label_mapping", get(data, "label_mapping", empty())),
            ]),
        ),
        (
            "hpo",
            object([
                ("search_space", get(hpo, "search_space", empty())),
                (
                    "objective",
                    object([
                        ("metric", get(objective, "metric", PyValue::str("macro-f1"))),
                        ("goal", goal),
                    ]),
                ),
                ("k_fold", get(hpo, "k_fold", empty())),
                (
                    "sampling",
                    object([(
                        "algorithm",
                        get(sampling, "algorithm", PyValue::str("random")),
                    )]),
                ),
                ("early_termination", get(hpo, "early_termination", empty())),
            ]),
        ),
        ("model", PyValue::str(normalize_model_name(configs.model))),
        ("benchmark", benchmark),
    ]);
    py_json(&payload, Separators::Compact)
}

/// `sha256(study_key)`.
pub fn study_key_hash(study_key: &str) -> String {
    sha256_hex(study_key)
}

/// `sha256(family_key)`.
pub fn study_family_hash(family_key: &str) -> String {
    sha256_hex(family_key)
}

/// The trial key JSON (compact): `{"schema_version":"1.0","study_key_hash":H,
/// "hyperparameters":params}`.
pub fn trial_key(study_key_hash: &str, params: &PyValue) -> Result<String, KeysError> {
    let payload = object([
        ("schema_version", PyValue::str(TRIAL_KEY_SCHEMA)),
        ("study_key_hash", PyValue::str(study_key_hash)),
        ("hyperparameters", params.clone()),
    ]);
    py_json(&payload, Separators::Compact)
}

/// `sha256(trial_key)`.
pub fn trial_key_hash(trial_key: &str) -> String {
    sha256_hex(trial_key)
}

/// The first 16 hex digits of sha256 of the compact dump.
pub fn config_hash(config: &PyValue) -> Result<String, KeysError> {
    let mut hash = sha256_hex(&py_json(config, Separators::Compact)?);
    hash.truncate(16);
    Ok(hash)
}

/// The benchmark config fingerprint: [`config_hash`] of the config without its `run` section
/// (run.mode must not change the key: force_new re-measures under the same key) and with
/// `"harness_version": harness_version` set. A null config counts as `{}`.
///
/// `harness_version` is podium-bench's `HARNESS_VERSION`; bumping it invalidates old results.
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
    config_hash(&PyValue::Dict(kept))
}

/// `"{champion_run_id}:{data_fp}:{eval_fp}:{bench_fp}"`.
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
    /// `"2.0"` or `"1.0"`.
    pub schema_version: String,
    /// The study key JSON.
    pub study_key: String,
    /// sha256 of the study key.
    pub study_key_hash: String,
    /// sha256 of the family key (always from the v2 payload).
    pub study_family_hash: String,
    /// The data fingerprint.
    pub data_fingerprint: String,
    /// The eval fingerprint.
    pub eval_fingerprint: String,
    /// The objective direction the sweep optimises (`hpo.objective.direction`, else the legacy
    /// `goal` — `max`/`min` spelled out — else `maximize`).
    pub objective_direction: String,
}

impl StudyIdentity {
    /// Computes the keys, hashes and fingerprints of a study under the given schema.
    pub fn compute(configs: &StudyConfigs<'_>, schema: StudyKeySchema) -> Result<Self, KeysError> {
        let data_fingerprint = data_fingerprint(configs.data)?;
        let eval_fingerprint = eval_fingerprint(configs.eval)?;
        let study_key = match schema {
            StudyKeySchema::V2 => study_key_v2(configs, &data_fingerprint, &eval_fingerprint)?,
            StudyKeySchema::V1 => study_key_v1(configs)?,
        };
        let family_key = study_family_key(configs, &data_fingerprint, &eval_fingerprint)?;
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
                r#"{"label_mapping": {}, "name": "x", "schema": {}, "split_seed": null, "version": null}"#
            )
        );
    }

    #[test]
    fn eval_fingerprint_of_nothing() {
        let expected = sha256_hex(
            r#"{"evaluator_version": "default", "full_eval_config": {}, "metric_spec": {}, "thresholding": {}}"#,
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
