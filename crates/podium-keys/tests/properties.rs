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
        prop_assert_eq!(config_hash(&value).unwrap(), sha256_hex(&first)[..16].to_string());
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
