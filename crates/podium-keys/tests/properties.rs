//! Properties of the canonical JSON and the hashes built on it: determinism, independence from
//! mapping order, and sensitivity to every leaf.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::serialisable_value;
use num_bigint::BigInt;
use podium_keys::{PyValue, Separators, config_hash, py_json, sha256_hex};
use proptest::prelude::*;

/// The value with every dict's entries rotated and reversed (Python dicts with the same items
/// in another insertion order).
fn reorder(value: &PyValue, salt: usize) -> PyValue {
    match value {
        PyValue::List(items) => PyValue::List(items.iter().map(|v| reorder(v, salt)).collect()),
        PyValue::Dict(entries) => {
            let mut entries: Vec<(PyValue, PyValue)> = entries
                .iter()
                .map(|(k, v)| (k.clone(), reorder(v, salt)))
                .collect();
            if !entries.is_empty() {
                let len = entries.len();
                entries.rotate_left(salt % len);
                if salt % 2 == 1 {
                    entries.reverse();
                }
            }
            PyValue::Dict(entries)
        }
        other => other.clone(),
    }
}

/// Whether any dict has a NaN key: Python then orders keys by insertion (NaN compares false
/// with everything), so only NaN-free values are order independent.
fn has_nan_key(value: &PyValue) -> bool {
    match value {
        PyValue::List(items) => items.iter().any(has_nan_key),
        PyValue::Dict(entries) => entries
            .iter()
            .any(|(k, v)| matches!(k, PyValue::Float(f) if f.is_nan()) || has_nan_key(v)),
        _ => false,
    }
}

/// Number of leaves in value positions (dict keys are not counted).
fn leaf_count(value: &PyValue) -> usize {
    match value {
        PyValue::List(items) => items.iter().map(leaf_count).sum(),
        PyValue::Dict(entries) => entries.iter().map(|(_, v)| leaf_count(v)).sum(),
        _ => 1,
    }
}

/// A leaf with a different canonical text: ints +1, floats to the next representable value,
/// strings extended, bools flipped, None to False.
fn changed_leaf(leaf: &PyValue) -> PyValue {
    match leaf {
        PyValue::None => PyValue::Bool(false),
        PyValue::Bool(b) => PyValue::Bool(!b),
        PyValue::Int(i) => PyValue::Int(i + BigInt::from(1)),
        PyValue::Float(f) if f.is_nan() => PyValue::Float(0.0),
        PyValue::Float(f) if *f == f64::INFINITY => PyValue::Float(f64::NEG_INFINITY),
        PyValue::Float(f) if *f == f64::NEG_INFINITY => PyValue::Float(f64::INFINITY),
        PyValue::Float(f) if *f == 0.0 => PyValue::Float(-f),
        PyValue::Float(f) => PyValue::Float(f64::from_bits(f.to_bits() + 1)),
        PyValue::Str(s) => PyValue::Str(format!("{s}x")),
        container => container.clone(),
    }
}

/// The value with its `index`-th leaf changed.
fn with_changed_leaf(value: &PyValue, index: &mut usize) -> PyValue {
    match value {
        PyValue::List(items) => {
            PyValue::List(items.iter().map(|v| with_changed_leaf(v, index)).collect())
        }
        PyValue::Dict(entries) => PyValue::Dict(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), with_changed_leaf(v, index)))
                .collect(),
        ),
        leaf => {
            let changed = if *index == 0 {
                changed_leaf(leaf)
            } else {
                leaf.clone()
            };
            *index = index.wrapping_sub(1);
            changed
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn canonical_text_is_deterministic(value in serialisable_value()) {
        let first = py_json(&value, Separators::Compact).unwrap();
        let again = py_json(&value.clone(), Separators::Compact).unwrap();
        prop_assert_eq!(&first, &again);
        prop_assert!(first.is_ascii());
        let default = py_json(&value, Separators::Default).unwrap();
        prop_assert_eq!(config_hash(&value).unwrap(), sha256_hex(&default)[..16].to_string());
    }

    #[test]
    fn mapping_order_does_not_matter(value in serialisable_value(), salt in 0usize..64) {
        prop_assume!(!has_nan_key(&value));
        let reordered = reorder(&value, salt);
        for separators in [Separators::Compact, Separators::Default] {
            prop_assert_eq!(
                py_json(&value, separators).unwrap(),
                py_json(&reordered, separators).unwrap()
            );
        }
    }

    #[test]
    fn changing_any_leaf_changes_the_hash(value in serialisable_value(), pick in any::<usize>()) {
        let leaves = leaf_count(&value);
        prop_assume!(leaves > 0);
        let mut index = pick % leaves;
        let changed = with_changed_leaf(&value, &mut index);
        prop_assert_ne!(
            sha256_hex(&py_json(&value, Separators::Compact).unwrap()),
            sha256_hex(&py_json(&changed, Separators::Compact).unwrap())
        );
    }

    #[test]
    fn default_separators_only_add_spaces(value in serialisable_value()) {
        // Outside strings, the default style is the compact one with a space after `,` and `:`.
        let compact = py_json(&value, Separators::Compact).unwrap();
        let default = py_json(&value, Separators::Default).unwrap();
        prop_assert!(default.len() >= compact.len());
        let stripped: String = {
            let mut out = String::new();
            let mut in_string = false;
            let mut escaped = false;
            let mut chars = default.chars().peekable();
            while let Some(c) = chars.next() {
                out.push(c);
                if in_string {
                    if escaped { escaped = false; }
                    else if c == '\\' { escaped = true; }
                    else if c == '"' { in_string = false; }
                } else if c == '"' {
                    in_string = true;
                } else if (c == ',' || c == ':') && chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            out
        };
        prop_assert_eq!(stripped, compact);
    }
}

/// A YAML scalar PyYAML reads back as exactly `value` (floats with a dot and a signed exponent,
/// strings double-quoted).
fn yaml_scalar(value: &PyValue) -> String {
    match value {
        PyValue::None => "null".into(),
        PyValue::Bool(b) => b.to_string(),
        PyValue::Int(i) => i.to_string(),
        PyValue::Float(f) if f.is_nan() => ".nan".into(),
        PyValue::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
        PyValue::Float(f) => {
            let text = format!("{f:e}");
            let (mantissa, exponent) = text.split_once('e').unwrap();
            let mantissa = if mantissa.contains('.') {
                mantissa.to_string()
            } else {
                format!("{mantissa}.0")
            };
            let exponent = if exponent.starts_with('-') {
                exponent.to_string()
            } else {
                format!("+{exponent}")
            };
            format!("{mantissa}e{exponent}")
        }
        PyValue::Str(text) => serde_json::to_string(text).unwrap(),
        PyValue::List(_) | PyValue::Dict(_) => unreachable!("not a scalar"),
    }
}

/// Flow style: `{k: v, …}` / `[…]` on one line.
fn yaml_flow(value: &PyValue) -> String {
    match value {
        PyValue::List(items) => format!(
            "[{}]",
            items.iter().map(yaml_flow).collect::<Vec<_>>().join(", ")
        ),
        PyValue::Dict(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(k, v)| format!("{}: {}", yaml_scalar(k), yaml_flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        scalar => yaml_scalar(scalar),
    }
}

/// Block style, indented, with comments sprinkled in.
fn yaml_block(value: &PyValue, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        PyValue::Dict(entries) if !entries.is_empty() => {
            for (key, item) in entries {
                match item {
                    PyValue::Dict(e) if !e.is_empty() => {
                        out.push_str(&format!("{pad}{}:  # nested\n", yaml_scalar(key)));
                        yaml_block(item, indent + 2, out);
                    }
                    PyValue::List(l) if !l.is_empty() => {
                        out.push_str(&format!("{pad}{}:\n", yaml_scalar(key)));
                        yaml_block(item, indent + 2, out);
                    }
                    other => out.push_str(&format!(
                        "{pad}{}: {}\n",
                        yaml_scalar(key),
                        yaml_flow(other)
                    )),
                }
            }
        }
        PyValue::List(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&format!("{pad}- {}\n", yaml_flow(item)));
            }
        }
        other => out.push_str(&format!("{pad}{}\n", yaml_flow(other))),
    }
}

fn as_config(value: PyValue) -> PyValue {
    match value {
        dict @ PyValue::Dict(_) => dict,
        other => PyValue::dict_from_pairs([(PyValue::str("value"), other)]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Key order and YAML formatting of the input never change a key: a config written in block
    /// style and the same config reordered in flow style give the same study keys, trial key and
    /// config hash.
    #[test]
    fn key_order_and_yaml_formatting_never_change_a_hash(
        value in serialisable_value(),
        params in serialisable_value(),
        salt in 0usize..64,
    ) {
        prop_assume!(!has_nan_key(&value) && !has_nan_key(&params));
        let config = as_config(value);
        let mut block = String::from("# a config\n");
        yaml_block(&config, 0, &mut block);
        let flow = yaml_flow(&reorder(&config, salt));
        let (Ok(from_block), Ok(from_flow)) =
            (podium_keys::load_yaml_str(&block), podium_keys::load_yaml_str(&flow))
        else {
            // Texts PyYAML itself reads differently (YAML 1.1 line breaks) are refused, not hashed.
            return Ok(());
        };
        prop_assert_eq!(config_hash(&from_block).unwrap(), config_hash(&config).unwrap());
        prop_assert_eq!(config_hash(&from_flow).unwrap(), config_hash(&config).unwrap());
        let keys = |hpo: &PyValue| {
            let configs = podium_keys::StudyConfigs {
                data: hpo, hpo, train: hpo, eval: None, model: "distilbert",
                benchmark: None, code_version: None,
            };
            podium_keys::StudyKeys::compute(&configs).ok()
        };
        prop_assert_eq!(keys(&from_block), keys(&from_flow));
        // Only the top level: the pipeline writes nested values with Python's str(), whose text
        // follows insertion order (so does ours).
        let params = as_config(params);
        let PyValue::Dict(mut entries) = params.clone() else { unreachable!() };
        let shift = salt % entries.len().max(1);
        entries.rotate_left(shift);
        let reordered = PyValue::Dict(entries);
        prop_assert_eq!(
            podium_keys::trial_key("h", &params).ok(),
            podium_keys::trial_key("h", &reordered).ok()
        );
    }
}

/// Aliases nested so that each level multiplies the previous by 10.
fn alias_bomb(levels: usize, merge: bool) -> String {
    let mut text =
        String::from("a0: &a0 {x: 1, y: 2, z: 3, w: 4, v: 5, u: 6, t: 7, s: 8, r: 9, q: 0}\n");
    for level in 1..levels {
        let previous = format!("*a{}", level - 1);
        if merge {
            let items: Vec<String> = (0..10).map(|i| format!("k{i}: {previous}")).collect();
            text.push_str(&format!("a{level}: &a{level} {{{}}}\n", items.join(", ")));
        } else {
            text.push_str(&format!(
                "a{level}: &a{level} [{}]\n",
                vec![previous; 10].join(", ")
            ));
        }
    }
    text
}

#[test]
fn alias_and_merge_bombs_are_refused_quickly() {
    for merge in [false, true] {
        let started = std::time::Instant::now();
        let err = podium_keys::load_yaml_str(&alias_bomb(12, merge))
            .unwrap_err()
            .to_string();
        assert!(err.contains("alias bomb"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
    // A modest use of aliases still loads.
    assert!(podium_keys::load_yaml_str(&alias_bomb(4, false)).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random bytes and random YAML-ish text never panic any loader; they load or are refused.
    #[test]
    fn loaders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), levels in 0usize..6) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = podium_keys::load_yaml_str(&text);
        let _ = podium_keys::load_json_str(&text);
        let _ = podium_keys::load_str(&text);
        let _ = podium_keys::TagRegistry::from_yaml_str(&text);
        let nested = format!("{}{text}{}", "[".repeat(levels * 60), "]".repeat(levels * 60));
        if let Ok(value) = podium_keys::load_yaml_str(&nested) {
            let _ = py_json(&value, Separators::Compact);
        }
    }
}
