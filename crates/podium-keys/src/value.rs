//! [`PyValue`]: the Python value tree that every hash is computed from.
//!
//! It models what `yaml.safe_load` / `json.loads` hand the Python pipeline: `None`, `bool`,
//! arbitrary-size `int`, `float`, `str`, `list` and `dict`. Mappings keep insertion order and
//! follow Python's dict rules for keys (see [`PyValue::dict_insert`]).

use std::cmp::Ordering;
use std::fmt::Write as _;

use num_bigint::BigInt;
use num_traits::{FromPrimitive, Zero};

use crate::canonical::float_repr;
use crate::error::KeysError;

/// A Python value as the pipeline sees it after loading a config.
///
/// The derived `PartialEq` is structural (`1` ≠ `1.0`, NaN ≠ NaN); Python's own key equality is
/// what [`PyValue::dict_insert`] applies.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int`, any size.
    Int(BigInt),
    /// `float` (IEEE double, like CPython's).
    Float(f64),
    /// `str`.
    Str(String),
    /// `list` (and tuples, which `json.dumps` writes the same way).
    List(Vec<PyValue>),
    /// `dict`, in insertion order. Build it with [`PyValue::dict_insert`] or
    /// [`PyValue::dict_from_pairs`] to get Python's key semantics; `py_json` rejects keys that
    /// Python would have merged.
    Dict(Vec<(PyValue, PyValue)>),
}

impl PyValue {
    /// A `str` value.
    pub fn str(text: impl Into<String>) -> Self {
        PyValue::Str(text.into())
    }

    /// An `int` value.
    pub fn int(value: i64) -> Self {
        PyValue::Int(BigInt::from(value))
    }

    /// An empty `dict`.
    pub fn empty_dict() -> Self {
        PyValue::Dict(Vec::new())
    }

    /// A `dict` built like Python's `dict(pairs)`: a key equal to an earlier one (`1`, `1.0` and
    /// `True` are equal in Python) keeps the earlier key object and its position and takes the
    /// later value. Linear in the number of pairs.
    pub fn dict_from_pairs(pairs: impl IntoIterator<Item = (PyValue, PyValue)>) -> Self {
        let mut builder = DictBuilder::default();
        for (key, value) in pairs {
            builder.insert(key, value);
        }
        PyValue::Dict(builder.into_entries())
    }

    /// `d[key] = value` on a dict's entries, with Python's key equality (one linear scan: build
    /// large dicts with [`DictBuilder`]).
    pub fn dict_insert(entries: &mut Vec<(PyValue, PyValue)>, key: PyValue, value: PyValue) {
        match entries
            .iter_mut()
            .find(|(existing, _)| keys_equal(existing, &key))
        {
            Some(entry) => entry.1 = value,
            None => entries.push((key, value)),
        }
    }

    /// Python's type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            PyValue::None => "NoneType",
            PyValue::Bool(_) => "bool",
            PyValue::Int(_) => "int",
            PyValue::Float(_) => "float",
            PyValue::Str(_) => "str",
            PyValue::List(_) => "list",
            PyValue::Dict(_) => "dict",
        }
    }

    /// `d.get(key)` for a string key: `None` when this is not a dict or the key is absent.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, PyValue::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a `str` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(text) => Some(text),
            _ => None,
        }
    }

    /// Python's `bool(value)`.
    pub fn is_truthy(&self) -> bool {
        match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(i) => !i.is_zero(),
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(items) => !items.is_empty(),
            PyValue::Dict(entries) => !entries.is_empty(),
        }
    }

    /// Python's `str(value)`.
    ///
    /// Scalars are exact. Inside lists and dicts Python writes `repr()` of each string, whose
    /// escaping of non-ASCII text depends on the Unicode database; such strings are an error here
    /// rather than a guess.
    pub fn py_str(&self) -> Result<String, KeysError> {
        match self {
            PyValue::Str(text) => Ok(text.clone()),
            other => {
                let mut out = String::new();
                write_repr(other, &mut out)?;
                Ok(out)
            }
        }
    }
}

fn write_repr(value: &PyValue, out: &mut String) -> Result<(), KeysError> {
    match value {
        PyValue::None => out.push_str("None"),
        PyValue::Bool(true) => out.push_str("True"),
        PyValue::Bool(false) => out.push_str("False"),
        PyValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        PyValue::Float(f) => out.push_str(&float_repr(*f)),
        PyValue::Str(text) => write_str_repr(text, out)?,
        PyValue::List(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out)?;
            }
            out.push(']');
        }
        PyValue::Dict(entries) => {
            out.push('{');
            for (index, (key, item)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_repr(key, out)?;
                out.push_str(": ");
                write_repr(item, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// CPython's `unicode_repr` for ASCII strings.
fn write_str_repr(text: &str, out: &mut String) -> Result<(), KeysError> {
    if !text.is_ascii() {
        return Err(KeysError::Unserialisable {
            path: "$".into(),
            message: format!(
                "str() of a container holding the non-ASCII string {text:?} is not supported"
            ),
        });
    }
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    Ok(())
}

/// What makes two dict keys the same key in Python (`hash` + `==`): bools and integral floats
/// are ints, other floats compare by value, NaN equals nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum KeyIdentity {
    /// `None`.
    None,
    /// A string.
    Str(String),
    /// An int, a bool, or a float with an integral value (`-0.0` is `0`).
    Int(BigInt),
    /// A non-integral or infinite float, by its bits.
    Float(u64),
}

impl KeyIdentity {
    /// The identity of a hashable key; `None` for NaN (never equal to anything) and for
    /// unhashable values (lists, dicts).
    pub(crate) fn of(value: &PyValue) -> Option<Self> {
        Some(match value {
            PyValue::None => KeyIdentity::None,
            PyValue::Str(text) => KeyIdentity::Str(text.clone()),
            PyValue::Bool(b) => KeyIdentity::Int(BigInt::from(u8::from(*b))),
            PyValue::Int(i) => KeyIdentity::Int(i.clone()),
            PyValue::Float(f) if f.is_nan() => return None,
            PyValue::Float(f) if f.is_finite() && f.fract() == 0.0 => {
                KeyIdentity::Int(BigInt::from_f64(*f)?)
            }
            PyValue::Float(f) => KeyIdentity::Float(f.to_bits()),
            PyValue::List(_) | PyValue::Dict(_) => return None,
        })
    }
}

/// Builds a dict's entries with Python's key rules in linear time (a hash index beside the
/// entries): what the loaders use, so a 200k-key mapping loads as fast as a small one.
#[derive(Debug, Default)]
pub struct DictBuilder {
    entries: Vec<(PyValue, PyValue)>,
    index: std::collections::HashMap<KeyIdentity, usize>,
}

impl DictBuilder {
    /// `d[key] = value`: an equal earlier key keeps its object and position; returns the entry's
    /// position and whether it was new.
    pub fn insert(&mut self, key: PyValue, value: PyValue) -> (usize, bool) {
        match KeyIdentity::of(&key) {
            Some(hashed) => match self.index.get(&hashed) {
                Some(&position) => {
                    self.entries[position].1 = value;
                    (position, false)
                }
                None => {
                    let position = self.entries.len();
                    self.index.insert(hashed, position);
                    self.entries.push((key, value));
                    (position, true)
                }
            },
            // NaN (equal to nothing) and unhashable keys are always new entries.
            None => {
                self.entries.push((key, value));
                (self.entries.len() - 1, true)
            }
        }
    }

    /// The number of entries so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry was inserted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in insertion order.
    pub fn into_entries(self) -> Vec<(PyValue, PyValue)> {
        self.entries
    }
}

/// A number as Python compares it: bools are ints.
enum Number<'a> {
    Int(std::borrow::Cow<'a, BigInt>),
    Float(f64),
}

fn as_number(value: &PyValue) -> Option<Number<'_>> {
    match value {
        PyValue::Bool(b) => Some(Number::Int(std::borrow::Cow::Owned(BigInt::from(
            u8::from(*b),
        )))),
        PyValue::Int(i) => Some(Number::Int(std::borrow::Cow::Borrowed(i))),
        PyValue::Float(f) => Some(Number::Float(*f)),
        _ => None,
    }
}

/// Exact comparison of an int with a float, as CPython does it (no rounding of the int).
fn compare_int_float(int: &BigInt, float: f64) -> Option<Ordering> {
    if float.is_nan() {
        return None;
    }
    if float.is_infinite() {
        return Some(if float > 0.0 {
            Ordering::Less
        } else {
            Ordering::Greater
        });
    }
    let floor = float.floor();
    let floor_int = BigInt::from_f64(floor)?;
    if floor == float {
        Some(int.cmp(&floor_int))
    } else if *int <= floor_int {
        Some(Ordering::Less)
    } else {
        Some(Ordering::Greater)
    }
}

fn compare_numbers(a: &Number<'_>, b: &Number<'_>) -> Option<Ordering> {
    match (a, b) {
        (Number::Int(x), Number::Int(y)) => Some(x.as_ref().cmp(y.as_ref())),
        (Number::Float(x), Number::Float(y)) => x.partial_cmp(y),
        (Number::Int(x), Number::Float(y)) => compare_int_float(x, *y),
        (Number::Float(x), Number::Int(y)) => compare_int_float(y, *x).map(Ordering::reverse),
    }
}

/// Python's `a == b` for hashable (key) values.
pub(crate) fn keys_equal(a: &PyValue, b: &PyValue) -> bool {
    match (a, b) {
        (PyValue::None, PyValue::None) => true,
        (PyValue::Str(x), PyValue::Str(y)) => x == y,
        _ => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => compare_numbers(&x, &y) == Some(Ordering::Equal),
            _ => false,
        },
    }
}

/// Python's `a < b` for mapping keys; `Err` carries the TypeError message.
pub(crate) fn key_less_than(a: &PyValue, b: &PyValue) -> Result<bool, String> {
    match (a, b) {
        (PyValue::Str(x), PyValue::Str(y)) => Ok(x < y),
        _ => match (as_number(a), as_number(b)) {
            (Some(x), Some(y)) => Ok(compare_numbers(&x, &y) == Some(Ordering::Less)),
            _ => Err(format!(
                "'<' not supported between instances of '{}' and '{}'",
                a.type_name(),
                b.type_name()
            )),
        },
    }
}

/// Whether a value is a NaN float (which makes Python's key ordering inconsistent).
pub(crate) fn is_nan(value: &PyValue) -> bool {
    matches!(value, PyValue::Float(f) if f.is_nan())
}

impl From<&serde_json::Value> for PyValue {
    /// What Python's `json.loads` gives for the same JSON (floats stay floats, object keys are
    /// strings). Without serde_json's `arbitrary_precision`, integers beyond 64 bits have already
    /// become floats; use [`crate::load_json_str`] on the text to keep them exact.
    fn from(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => PyValue::None,
            serde_json::Value::Bool(b) => PyValue::Bool(*b),
            serde_json::Value::Number(number) => {
                if let Some(i) = number.as_i64() {
                    PyValue::Int(BigInt::from(i))
                } else if let Some(u) = number.as_u64() {
                    PyValue::Int(BigInt::from(u))
                } else {
                    PyValue::Float(number.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(text) => PyValue::Str(text.clone()),
            serde_json::Value::Array(items) => {
                PyValue::List(items.iter().map(Into::into).collect())
            }
            serde_json::Value::Object(map) => PyValue::dict_from_pairs(
                map.iter()
                    .map(|(key, item)| (PyValue::Str(key.clone()), item.into())),
            ),
        }
    }
}

impl From<serde_json::Value> for PyValue {
    fn from(value: serde_json::Value) -> Self {
        PyValue::from(&value)
    }
}

impl From<&str> for PyValue {
    fn from(text: &str) -> Self {
        PyValue::Str(text.to_string())
    }
}

impl From<String> for PyValue {
    fn from(text: String) -> Self {
        PyValue::Str(text)
    }
}

impl From<bool> for PyValue {
    fn from(value: bool) -> Self {
        PyValue::Bool(value)
    }
}

impl From<i64> for PyValue {
    fn from(value: i64) -> Self {
        PyValue::Int(BigInt::from(value))
    }
}

impl From<f64> for PyValue {
    fn from(value: f64) -> Self {
        PyValue::Float(value)
    }
}

impl From<BigInt> for PyValue {
    fn from(value: BigInt) -> Self {
        PyValue::Int(value)
    }
}

impl<T: Into<PyValue>> From<Vec<T>> for PyValue {
    fn from(items: Vec<T>) -> Self {
        PyValue::List(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<PyValue>> From<Option<T>> for PyValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(PyValue::None, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_key_equality_merges_numbers() {
        let dict = PyValue::dict_from_pairs([
            (PyValue::int(1), PyValue::str("a")),
            (PyValue::Float(1.0), PyValue::str("b")),
            (PyValue::Bool(true), PyValue::str("c")),
            (PyValue::str("1"), PyValue::str("d")),
        ]);
        assert_eq!(
            dict,
            PyValue::Dict(vec![
                (PyValue::int(1), PyValue::str("c")),
                (PyValue::str("1"), PyValue::str("d")),
            ])
        );
    }

    #[test]
    fn int_float_comparison_is_exact() {
        let big = PyValue::Int(BigInt::from(9_007_199_254_740_993_i64));
        let float = PyValue::Float(9_007_199_254_740_992.0);
        assert!(!keys_equal(&big, &float));
        assert_eq!(key_less_than(&float, &big), Ok(true));
        assert_eq!(
            key_less_than(&PyValue::int(2), &PyValue::Float(2.5)),
            Ok(true)
        );
        assert_eq!(
            key_less_than(&PyValue::int(-3), &PyValue::Float(-2.5)),
            Ok(true)
        );
        assert_eq!(
            key_less_than(&PyValue::int(-2), &PyValue::Float(-2.5)),
            Ok(false)
        );
        assert!(key_less_than(&PyValue::int(1), &PyValue::str("a")).is_err());
    }

    #[test]
    fn py_str_matches_python() {
        assert_eq!(PyValue::Bool(true).py_str().ok().as_deref(), Some("True"));
        assert_eq!(PyValue::Float(1e16).py_str().ok().as_deref(), Some("1e+16"));
        assert_eq!(
            PyValue::List(vec![
                PyValue::str("it's"),
                PyValue::None,
                PyValue::Float(f64::NAN)
            ])
            .py_str()
            .ok()
            .as_deref(),
            Some("[\"it's\", None, nan]")
        );
    }
}
