//! [`py_json`]: byte-for-byte Python 3.11 `json.dumps(value, sort_keys=True, separators=S)` with
//! the defaults `ensure_ascii=True` and `allow_nan=True`.
//!
//! The C encoder CPython uses for that call sorts each dict's `(key, value)` items with
//! `list.sort` *before* turning keys into strings, writes floats with `float.__repr__` and ints
//! with `int.__repr__`; every rule below follows it.

use std::fmt::Write as _;

use crate::error::KeysError;
use crate::value::{KeyIdentity, PyValue, is_nan, key_less_than};

/// Deepest nesting `py_json` writes; deeper values are an error instead of a stack overflow
/// (Python's own recursion limit stops it at a similar depth).
pub const MAX_DEPTH: usize = 256;

/// CPython refuses to write ints longer than this many decimal digits (Python 3.11's
/// `sys.get_int_max_str_digits()` default).
pub const MAX_INT_DIGITS: usize = 4300;

/// The `separators` argument of `json.dumps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Separators {
    /// `(",", ":")` — every key's payload except the fingerprints.
    #[default]
    Compact,
    /// `(", ", ": ")` — Python's default when `indent` is None; the data and eval fingerprints.
    Default,
}

impl Separators {
    fn item(self) -> &'static str {
        match self {
            Separators::Compact => ",",
            Separators::Default => ", ",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Separators::Compact => ":",
            Separators::Default => ": ",
        }
    }
}

/// `json.dumps(value, sort_keys=True, separators=…)`, byte-identical to Python 3.11.
///
/// Errors where Python raises: a dict whose keys cannot be ordered (strings mixed with numbers,
/// `None` beside any other key), keys Python's dict would have merged (`1` and `1.0`), ints
/// longer than 4300 digits, and nesting deeper than [`MAX_DEPTH`].
///
/// ```
/// use podium_keys::{PyValue, Separators, py_json};
///
/// let value = PyValue::dict_from_pairs([
///     (PyValue::int(10), PyValue::Float(1e-5)),
///     (PyValue::int(2), PyValue::str("é")),
/// ]);
/// assert_eq!(py_json(&value, Separators::Compact)?, r#"{"2":"\u00e9","10":1e-05}"#);
/// assert_eq!(py_json(&value, Separators::Default)?, r#"{"2": "\u00e9", "10": 1e-05}"#);
/// # Ok::<(), podium_keys::KeysError>(())
/// ```
pub fn py_json(value: &PyValue, separators: Separators) -> Result<String, KeysError> {
    let mut out = String::new();
    let mut path = Vec::new();
    write_value(value, separators, &mut out, &mut path)?;
    Ok(out)
}

/// One step of the path to a nested value, for error messages.
enum PathStep {
    Index(usize),
    Key(String),
}

fn render_path(path: &[PathStep]) -> String {
    let mut out = String::from("$");
    for step in path {
        match step {
            PathStep::Index(index) => {
                let _ = write!(out, "[{index}]");
            }
            PathStep::Key(key) => {
                let _ = write!(out, ".{key}");
            }
        }
    }
    out
}

fn error(path: &[PathStep], message: impl Into<String>) -> KeysError {
    KeysError::Unserialisable {
        path: render_path(path),
        message: message.into(),
    }
}

fn write_value(
    value: &PyValue,
    separators: Separators,
    out: &mut String,
    path: &mut Vec<PathStep>,
) -> Result<(), KeysError> {
    if path.len() > MAX_DEPTH {
        return Err(error(
            path,
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    match value {
        PyValue::None => out.push_str("null"),
        PyValue::Bool(true) => out.push_str("true"),
        PyValue::Bool(false) => out.push_str("false"),
        PyValue::Int(int) => write_int(int, out).map_err(|message| error(path, message))?,
        PyValue::Float(float) => out.push_str(&json_float(*float)),
        PyValue::Str(text) => write_json_string(text, out),
        PyValue::List(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(separators.item());
                }
                path.push(PathStep::Index(index));
                write_value(item, separators, out, path)?;
                path.pop();
            }
            out.push(']');
        }
        PyValue::Dict(entries) => {
            let order = sorted_entry_order(entries).map_err(|message| error(path, message))?;
            out.push('{');
            for (position, &index) in order.iter().enumerate() {
                let (key, item) = &entries[index];
                if position > 0 {
                    out.push_str(separators.item());
                }
                let key_text = key_string(key).map_err(|message| error(path, message))?;
                write_json_string(&key_text, out);
                out.push_str(separators.key());
                path.push(PathStep::Key(key_text));
                write_value(item, separators, out, path)?;
                path.pop();
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_int(int: &num_bigint::BigInt, out: &mut String) -> Result<(), String> {
    let text = int.to_string();
    let digits = text.trim_start_matches('-').len();
    if digits > MAX_INT_DIGITS {
        return Err(format!(
            "an int of {digits} digits exceeds Python's limit of {MAX_INT_DIGITS} for integer string conversion"
        ));
    }
    out.push_str(&text);
    Ok(())
}

/// How the C encoder turns a sorted key into a string.
fn key_string(key: &PyValue) -> Result<String, String> {
    match key {
        PyValue::Str(text) => Ok(text.clone()),
        PyValue::Float(float) => Ok(json_float(*float)),
        PyValue::Bool(true) => Ok("true".into()),
        PyValue::Bool(false) => Ok("false".into()),
        PyValue::None => Ok("null".into()),
        PyValue::Int(int) => {
            let mut text = String::new();
            write_int(int, &mut text)?;
            Ok(text)
        }
        PyValue::List(_) | PyValue::Dict(_) => Err(format!(
            "keys must be str, int, float, bool or None, not {}",
            key.type_name()
        )),
    }
}

/// The order CPython's `list.sort` puts a dict's items in (keys decide: they are unique).
fn sorted_entry_order(entries: &[(PyValue, PyValue)]) -> Result<Vec<usize>, String> {
    // A hash index keeps this linear: dicts of 200k keys come from real files.
    let mut seen: std::collections::HashMap<KeyIdentity, usize> =
        std::collections::HashMap::with_capacity(entries.len());
    for (index, (key, _)) in entries.iter().enumerate() {
        let Some(identity) = KeyIdentity::of(key) else {
            continue;
        };
        if let Some(&earlier) = seen.get(&identity) {
            let earlier: &PyValue = &entries[earlier].0;
            return Err(format!(
                "keys {} and {} are the same key of a Python dict",
                describe_key(earlier),
                describe_key(key)
            ));
        }
        seen.insert(identity, index);
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    let less = |a: usize, b: usize| key_less_than(&entries[a].0, &entries[b].0);
    if entries.len() < 64 {
        // CPython sorts short lists by a run scan plus binary insertion; replaying it exactly
        // reproduces Python's order even when NaN keys make comparisons inconsistent, and raises
        // exactly where Python's comparisons raise.
        cpython_short_sort(&mut order, &less)?;
        return Ok(order);
    }
    // With a consistent total order every stable sort gives CPython's result; make sure the
    // order is one (no NaN, a single comparable kind) before using ours.
    if let Some(index) = entries.iter().position(|(k, _)| is_nan(k)) {
        return Err(format!(
            "NaN key {} in a dict of {} keys: Python's order is not reproducible",
            describe_key(&entries[index].0),
            entries.len()
        ));
    }
    for window in entries.windows(2) {
        key_less_than(&window[0].0, &window[1].0)?;
    }
    if entries.len() >= 2 {
        key_less_than(&entries[entries.len() - 1].0, &entries[0].0)?;
    }
    let mut failure = None;
    order.sort_by(|&a, &b| match less(a, b) {
        Ok(true) => std::cmp::Ordering::Less,
        Ok(false) => match less(b, a) {
            Ok(true) => std::cmp::Ordering::Greater,
            Ok(false) => std::cmp::Ordering::Equal,
            Err(message) => {
                failure.get_or_insert(message);
                std::cmp::Ordering::Equal
            }
        },
        Err(message) => {
            failure.get_or_insert(message);
            std::cmp::Ordering::Equal
        }
    });
    match failure {
        Some(message) => Err(message),
        None => Ok(order),
    }
}

fn describe_key(key: &PyValue) -> String {
    match key {
        PyValue::Str(text) => format!("{text:?}"),
        other => other
            .py_str()
            .unwrap_or_else(|_| other.type_name().to_string()),
    }
}

/// CPython 3.11 `list.sort` for fewer than 64 items: `count_run`, reverse a strictly descending
/// run, then `binarysort` the rest into it.
fn cpython_short_sort(
    order: &mut [usize],
    less: &impl Fn(usize, usize) -> Result<bool, String>,
) -> Result<(), String> {
    let n = order.len();
    if n < 2 {
        return Ok(());
    }
    let mut run = 2;
    if less(order[1], order[0])? {
        while run < n && less(order[run], order[run - 1])? {
            run += 1;
        }
        order[..run].reverse();
    } else {
        while run < n && !less(order[run], order[run - 1])? {
            run += 1;
        }
    }
    for start in run..n {
        let pivot = order[start];
        let (mut left, mut right) = (0, start);
        while left < right {
            let middle = left + ((right - left) >> 1);
            if less(pivot, order[middle])? {
                right = middle;
            } else {
                left = middle + 1;
            }
        }
        order.copy_within(left..start, left + 1);
        order[left] = pivot;
    }
    Ok(())
}

/// `json.dumps` of one float with `allow_nan=True`.
pub fn json_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else {
        float_repr(value)
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when
/// 1e-4 ≤ |x| < 1e16 (always with a `.`), else `d[.ddd]e±XX`; `nan`, `inf`, `-inf`.
///
/// ```
/// use podium_keys::float_repr;
/// assert_eq!(float_repr(1e-5), "1e-05");
/// assert_eq!(float_repr(0.0001), "0.0001");
/// assert_eq!(float_repr(1e16), "1e+16");
/// assert_eq!(float_repr(-0.0), "-0.0");
/// assert_eq!(float_repr(123456789.0), "123456789.0");
/// ```
pub fn float_repr(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sign = if value.is_sign_negative() { "-" } else { "" };
    if value == 0.0 {
        return format!("{sign}0.0");
    }
    let (digits, decimal_point) = shortest_digits(value.abs());
    let body = if !(-4 < decimal_point && decimal_point <= 16) {
        let exponent = decimal_point - 1;
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{exponent_sign}{:02}", exponent.unsigned_abs())
    } else if decimal_point <= 0 {
        format!(
            "0.{}{digits}",
            "0".repeat(decimal_point.unsigned_abs() as usize)
        )
    } else {
        let point = decimal_point as usize;
        if point >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point - digits.len()))
        } else {
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    };
    format!("{sign}{body}")
}

/// The shortest round-trip decimal digits of a finite positive float (no leading or trailing
/// zeros) and the position of the decimal point: value = 0.DIGITS × 10^point.
fn shortest_digits(value: f64) -> (String, i32) {
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(value);
    let (mantissa, exponent) = match text.split_once('e') {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().unwrap_or(0)),
        None => (text, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{integer}{fraction}");
    let without_leading = all.trim_start_matches('0');
    let leading_zeros = (all.len() - without_leading.len()) as i32;
    let digits = without_leading.trim_end_matches('0').to_string();
    (digits, integer.len() as i32 + exponent - leading_zeros)
}

/// A JSON string with `ensure_ascii=True`: printable ASCII as is, `\n \r \t \b \f \" \\` short,
/// everything else `\uXXXX` in lowercase hex (astral characters as a surrogate pair).
pub fn write_json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use num_bigint::BigInt;

    #[test]
    fn float_repr_follows_python() {
        for (value, expected) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.2345e20, "1.2345e+20"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (1e22, "1e+22"),
            (100.0, "100.0"),
        ] {
            assert_eq!(float_repr(value), expected, "{value:e}");
        }
        assert_eq!(json_float(f64::NAN), "NaN");
        assert_eq!(json_float(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn strings_escape_like_ensure_ascii() {
        let mut out = String::new();
        write_json_string("a\"\\/\n\u{7f}\u{1}é😀\u{2028}", &mut out);
        assert_eq!(out, r#""a\"\\/\n\u007f\u0001\u00e9\ud83d\ude00\u2028""#);
    }

    #[test]
    fn keys_sort_before_stringification() {
        let value = PyValue::dict_from_pairs([
            (PyValue::int(10), PyValue::int(1)),
            (PyValue::int(2), PyValue::int(2)),
            (PyValue::Float(2.5), PyValue::int(3)),
            (PyValue::Bool(false), PyValue::int(4)),
        ]);
        assert_eq!(
            py_json(&value, Separators::Compact).unwrap(),
            r#"{"false":4,"2":2,"2.5":3,"10":1}"#
        );
    }

    #[test]
    fn type_errors_are_errors() {
        let mixed = PyValue::dict_from_pairs([
            (PyValue::int(1), PyValue::None),
            (PyValue::str("a"), PyValue::None),
        ]);
        assert!(py_json(&mixed, Separators::Compact).is_err());
        let none_and_int = PyValue::dict_from_pairs([
            (PyValue::None, PyValue::None),
            (PyValue::int(1), PyValue::None),
        ]);
        assert!(py_json(&none_and_int, Separators::Compact).is_err());
        let lone_none = PyValue::dict_from_pairs([(PyValue::None, PyValue::int(1))]);
        assert_eq!(
            py_json(&lone_none, Separators::Compact).unwrap(),
            r#"{"null":1}"#
        );
        let merged = PyValue::Dict(vec![
            (PyValue::int(1), PyValue::None),
            (PyValue::Float(1.0), PyValue::None),
        ]);
        assert!(py_json(&merged, Separators::Compact).is_err());
        let huge = PyValue::Int(BigInt::from(10).pow(4300));
        assert!(py_json(&huge, Separators::Compact).is_err());
        let fits = PyValue::Int(BigInt::from(10).pow(4299));
        assert!(py_json(&fits, Separators::Compact).is_ok());
    }

    #[test]
    fn nan_keys_sort_like_cpython() {
        // json.dumps({float('nan'): 1, 2: 3, 1: 2}, sort_keys=True)
        let value = PyValue::dict_from_pairs([
            (PyValue::Float(f64::NAN), PyValue::int(1)),
            (PyValue::int(2), PyValue::int(3)),
            (PyValue::int(1), PyValue::int(2)),
        ]);
        assert_eq!(
            py_json(&value, Separators::Default).unwrap(),
            r#"{"NaN": 1, "1": 2, "2": 3}"#
        );
    }
}
