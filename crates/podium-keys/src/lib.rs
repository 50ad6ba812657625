//! Python-compatible canonical JSON, PyYAML-compatible loading, fingerprints, study/trial/family/
//! benchmark keys, the tag registry and the tag builder.
//!
//! Every hash here is byte-identical to what the Python pipeline computes from the same YAML
//! files: configs are loaded with PyYAML's YAML 1.1 rules ([`load_yaml_str`], [`load_path`]),
//! serialised exactly like `json.dumps(value, sort_keys=True, separators=…)` ([`py_json`]) and
//! hashed with sha256.
//!
//! ```
//! use podium_keys::{StudyConfigs, StudyKeys, load_yaml_str, derive_eval_config,
//!                   data_fingerprint, eval_fingerprint, study_key_v2, study_key_hash};
//!
//! let data = load_yaml_str("name: resume-ner\nversion: v1\nsplit_seed: 42\n")?;
//! let hpo = load_yaml_str(
//!     "search_space:\n  learning_rate: {type: loguniform, min: 1e-5, max: 5.0e-5}\n\
//!      objective: {metric: macro-f1, direction: maximize}\n\
//!      sampling: {algorithm: tpe}\n",
//! )?;
//! let train = load_yaml_str("training: {epochs: 3}\n")?;
//! let configs = StudyConfigs {
//!     data: &data, hpo: &hpo, train: &train, eval: None,
//!     model: "distilbert", benchmark: None, code_version: None,
//! };
//!
//! // Step by step, as the Python pipeline does it...
//! let data_fp = data_fingerprint(&data)?;
//! let eval_fp = eval_fingerprint(&derive_eval_config(&train, &hpo)?)?;
//! let study_key = study_key_v2(&configs, &data_fp, &eval_fp)?;
//! assert!(study_key.starts_with(r#"{"data":{"data_fingerprint":""#));
//! assert!(study_key.contains(r#""min":"1e-5""#)); // PyYAML: no dot, a string
//! assert!(study_key.contains(r#""max":5e-05"#)); // Python's float repr
//! let hash = study_key_hash(&study_key);
//! assert_eq!(hash.len(), 64);
//!
//! // ...or all at once.
//! let keys = StudyKeys::compute(&configs)?;
//! assert_eq!(keys.study_key_hash, hash);
//! # Ok::<(), podium_keys::KeysError>(())
//! ```
//!
//! The pieces:
//! - [`PyValue`]: the Python value tree every function takes (`From<&serde_json::Value>` for
//!   MLflow params and JSON payloads; [`load_json_str`] keeps big ints exact).
//! - [`py_json`] / [`Separators`]: the canonical text; [`float_repr`]: Python's `repr(float)`.
//! - [`load_yaml_str`] (`yaml.safe_load`), [`load_json_str`] (`json.loads`), [`load_str`],
//!   [`load_path`].
//! - [`study_key_v2`], [`study_key_v1`], [`study_family_key`], [`trial_key`] (with
//!   [`normalize_hyperparameters`]) and their hashes; [`data_fingerprint`],
//!   [`derive_eval_config`], [`eval_fingerprint`], [`config_hash`], [`benchmark_key`] (with
//!   [`benchmark_eval_config`], the eval config the pipeline's benchmark workflow keys with);
//!   [`StudyKeys`] / [`StudyIdentity`] bundle a study's keys.
//! - [`project`]: one loader from a config folder + experiment + backbone to the inputs of
//!   every key ([`ProjectConfigs`]).
//! - [`TagRegistry`] / [`Tag`]: every MLflow tag key of the pipeline's `tags.yaml` and podium's
//!   own; [`PipelineRunTags`]: the pipeline's tag set of a sweep, trial or refit run.
//!
//! No other crate hand-writes JSON for hashing: use these functions.
//!
//! Where Python's behaviour cannot be reproduced exactly, podium refuses loudly instead of
//! hashing something else: a flow-sequence entry that is a lone `-` (PyYAML reads a string,
//! the YAML 1.2 tokenizer an error), raw YAML 1.1 line breaks (U+0085, U+2028, U+2029) in a
//! YAML text, NaN keys in a dict of 64+ keys (CPython's timsort order is not replayed), and a
//! non-string `content_hash` container holding non-ASCII strings (its `str()` depends on the
//! Unicode database). Both sides enforce Python's 4300-digit int limit.
//!
//! Tests: `tests/differential.rs` compares [`py_json`] with Python's `json.dumps` on hundreds of
//! random values and [`load_yaml_str`] with `yaml.safe_load` on hundreds of random YAML texts
//! (`PODIUM_KEYS_DIFF_CASES=5000 PODIUM_KEYS_DIFF_SEED=7` for a deeper search);
//! `tests/reference.rs` checks every key of `config/` against `scripts/keys-reference.py` (a
//! Python statement of the same formulas).

pub mod canonical;
pub mod error;
pub mod keys;
pub mod load;
pub mod project;
pub mod run_tags;
pub mod tags;
pub mod value;

pub use canonical::{Separators, float_repr, json_float, py_json};
pub use error::KeysError;
pub use keys::{
    STUDY_FAMILY_SCHEMA, STUDY_KEY_SCHEMA_V1, STUDY_KEY_SCHEMA_V2, StudyConfigs, StudyIdentity,
    StudyKeySchema, StudyKeys, TRIAL_KEY_EXCLUDED_PARAMS, TRIAL_KEY_SCHEMA, benchmark_eval_config,
    benchmark_fingerprint, benchmark_key, config_hash, data_fingerprint, derive_eval_config,
    eval_fingerprint, normalize_hyperparameter, normalize_hyperparameters, normalize_model_name,
    objective_direction, sha256_hex, study_family_hash, study_family_key, study_key_hash,
    study_key_v1, study_key_v2, trial_key, trial_key_hash,
};
pub use load::{
    MAX_CONFIG_BYTES, MAX_YAML_VALUES, load_json_str, load_path, load_str, load_yaml_str,
    read_config_text,
};
pub use project::ProjectConfigs;
pub use run_tags::{HpoRunRole, HpoRunTags, PipelineRunRole, PipelineRunTags};
pub use tags::{Tag, TagRegistry, stage};
pub use value::{DictBuilder, PyValue};
