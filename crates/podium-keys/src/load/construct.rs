//! Constructing: each composed node resolved to its tag with PyYAML's implicit resolvers and
//! built with PyYAML's constructors (ints, floats, timestamps, merge keys), within a budget of
//! values that stops alias bombs.

use std::rc::Rc;
use std::sync::LazyLock;

use num_bigint::BigInt;
use num_traits::Zero;
use regex::Regex;
use yaml_rust2::parser::Tag;
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::canonical::{MAX_DEPTH, MAX_INT_DIGITS};
use crate::error::KeysError;
use crate::value::{DictBuilder, PyValue};

use super::compose::{Node, NodePair, yaml_error};

/// What PyYAML's constructor produces for a node.
#[derive(Debug)]
pub(super) enum Built {
    /// A value json.dumps can write.
    Value(PyValue),
    /// A value PyYAML loads (a date, bytes, a set, or something containing one) but json.dumps
    /// refuses. It only matters if it survives: a later duplicate key may replace it.
    Undumpable(KeysError),
}

pub(super) const YAML_TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// The tag PyYAML resolves a node to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolved {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Merge,
    Value,
    Timestamp,
    Map,
    Seq,
    Omap,
    Pairs,
    Set,
    Binary,
    Other,
}

impl Resolved {
    fn from_standard(suffix: &str) -> Resolved {
        match suffix {
            "null" => Resolved::Null,
            "bool" => Resolved::Bool,
            "int" => Resolved::Int,
            "float" => Resolved::Float,
            "str" => Resolved::Str,
            "merge" => Resolved::Merge,
            "value" => Resolved::Value,
            "timestamp" => Resolved::Timestamp,
            "map" => Resolved::Map,
            "seq" => Resolved::Seq,
            "omap" => Resolved::Omap,
            "pairs" => Resolved::Pairs,
            "set" => Resolved::Set,
            "binary" => Resolved::Binary,
            _ => Resolved::Other,
        }
    }
}

/// The full tag text, for messages.
pub(super) fn tag_text(tag: &Tag) -> String {
    format!("{}{}", tag.handle, tag.suffix)
}

/// The non-specific tag `!`, which PyYAML resolves like an untagged plain scalar.
pub(super) fn is_non_specific(tag: &Tag) -> bool {
    (tag.handle.is_empty() && tag.suffix == "!") || (tag.handle == "!" && tag.suffix.is_empty())
}

pub(super) fn explicit_tag(tag: &Tag) -> Resolved {
    match tag.handle.strip_prefix(YAML_TAG_PREFIX) {
        Some(rest) => Resolved::from_standard(&format!("{rest}{}", tag.suffix)),
        None if tag.handle.is_empty() && tag.suffix.starts_with(YAML_TAG_PREFIX) => {
            Resolved::from_standard(&tag.suffix[YAML_TAG_PREFIX.len()..])
        }
        None => Resolved::Other,
    }
}

pub(super) fn resolve(node: &Node) -> Resolved {
    match node {
        Node::Scalar {
            value, style, tag, ..
        } => match tag {
            None if *style == TScalarStyle::Plain => resolve_plain(value),
            None => Resolved::Str,
            Some(tag) if is_non_specific(tag) => resolve_plain(value),
            Some(tag) => explicit_tag(tag),
        },
        Node::Sequence { tag, .. } => match tag {
            None => Resolved::Seq,
            Some(tag) if is_non_specific(tag) => Resolved::Seq,
            Some(tag) => explicit_tag(tag),
        },
        Node::Mapping { tag, .. } => match tag {
            None => Resolved::Map,
            Some(tag) if is_non_specific(tag) => Resolved::Map,
            Some(tag) => explicit_tag(tag),
        },
    }
}

// PyYAML's implicit resolvers (resolver.py), verbatim; tried in registration order.
pub(super) static BOOL_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
        .ok()
});
pub(super) static FLOAT_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .ok()
});
pub(super) static INT_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
    .ok()
});
pub(super) static NULL_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(?:~|null|Null|NULL|)$").ok());
pub(super) static TIMESTAMP_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    )
    .ok()
});

pub(super) fn matches(regex: &LazyLock<Option<Regex>>, text: &str) -> bool {
    regex.as_ref().is_some_and(|re| re.is_match(text))
}

/// PyYAML's `Resolver.resolve` for an untagged plain scalar: the resolvers registered for the
/// first character, in order (bool, float, int, merge, null, timestamp, value).
pub(super) fn resolve_plain(value: &str) -> Resolved {
    let Some(first) = value.chars().next() else {
        return Resolved::Null;
    };
    if "yYnNtTfFoO".contains(first) && matches(&BOOL_RE, value) {
        return Resolved::Bool;
    }
    if "-+0123456789.".contains(first) && matches(&FLOAT_RE, value) {
        return Resolved::Float;
    }
    if "-+0123456789".contains(first) && matches(&INT_RE, value) {
        return Resolved::Int;
    }
    if first == '<' && value == "<<" {
        return Resolved::Merge;
    }
    if "~nN".contains(first) && matches(&NULL_RE, value) {
        return Resolved::Null;
    }
    if first.is_ascii_digit() && matches(&TIMESTAMP_RE, value) {
        return Resolved::Timestamp;
    }
    if first == '=' && value == "=" {
        return Resolved::Value;
    }
    Resolved::Str
}

/// PyYAML's SafeConstructor.
pub(super) fn construct(node: &Node, depth: usize, budget: &Budget) -> Result<Built, KeysError> {
    budget.spend(node.mark(), 1)?;
    if depth > MAX_DEPTH {
        return Err(yaml_error(
            node.mark(),
            format!("nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    let resolved = resolve(node);
    match (node, resolved) {
        (Node::Scalar { value, mark, .. }, _) => construct_scalar(value, resolved, node, *mark),
        (Node::Sequence { items, .. }, Resolved::Seq) => {
            // Every item is built (PyYAML raises construction errors anywhere in the
            // document), and the first undumpable one spoils the list.
            let mut values = Vec::with_capacity(items.len());
            let mut spoiled = None;
            for item in items {
                match construct(item, depth + 1, budget)? {
                    Built::Value(value) => values.push(value),
                    Built::Undumpable(err) => {
                        spoiled.get_or_insert(err);
                    }
                }
            }
            Ok(match spoiled {
                Some(err) => Built::Undumpable(err),
                None => Built::Value(PyValue::List(values)),
            })
        }
        (Node::Sequence { items, .. }, Resolved::Omap | Resolved::Pairs) => {
            // A list of (key, value) tuples, which json.dumps writes as two-item lists.
            let mut pairs = Vec::with_capacity(items.len());
            let mut spoiled = None;
            for item in items {
                match &**item {
                    Node::Mapping { pairs: entries, .. } if entries.len() == 1 => {
                        let (key, value) = &entries[0];
                        match (
                            construct(key, depth + 1, budget)?,
                            construct(value, depth + 1, budget)?,
                        ) {
                            (Built::Value(key), Built::Value(value)) => {
                                pairs.push(PyValue::List(vec![key, value]));
                            }
                            (Built::Undumpable(err), _) | (_, Built::Undumpable(err)) => {
                                spoiled.get_or_insert(err);
                            }
                        }
                    }
                    other => {
                        return Err(yaml_error(
                            other.mark(),
                            format!(
                                "while constructing an ordered map, expected a single mapping item, but found {}",
                                other.kind()
                            ),
                        ));
                    }
                }
            }
            Ok(match spoiled {
                Some(err) => Built::Undumpable(err),
                None => Built::Value(PyValue::List(pairs)),
            })
        }
        (Node::Mapping { .. }, Resolved::Map) => construct_mapping(node, depth, budget),
        (Node::Mapping { mark, .. }, Resolved::Set) => {
            // PyYAML builds a Python set from the keys; json.dumps cannot write sets.
            match construct_mapping(node, depth, budget)? {
                Built::Value(_) | Built::Undumpable(_) => Ok(Built::Undumpable(yaml_error(
                    *mark,
                    "a YAML !!set loads as a Python set, which json.dumps cannot serialise",
                ))),
            }
        }
        (other, _) => Err(yaml_error(
            other.mark(),
            format!(
                "could not determine a constructor for the tag {} on {}",
                node_tag_text(other, resolved),
                other.kind()
            ),
        )),
    }
}

pub(super) fn node_tag_text(node: &Node, resolved: Resolved) -> String {
    let tag = match node {
        Node::Scalar { tag, .. } | Node::Sequence { tag, .. } | Node::Mapping { tag, .. } => tag,
    };
    match tag {
        Some(tag) if !is_non_specific(tag) => format!("'{}'", tag_text(tag)),
        _ => format!(
            "'{YAML_TAG_PREFIX}{}'",
            format!("{resolved:?}").to_lowercase()
        ),
    }
}

pub(super) fn construct_scalar(
    value: &str,
    resolved: Resolved,
    node: &Node,
    mark: Marker,
) -> Result<Built, KeysError> {
    let built = match resolved {
        Resolved::Null => PyValue::None,
        Resolved::Str => PyValue::Str(value.to_string()),
        Resolved::Bool => match value.to_lowercase().as_str() {
            "yes" | "true" | "on" => PyValue::Bool(true),
            "no" | "false" | "off" => PyValue::Bool(false),
            _ => return Err(yaml_error(mark, format!("{value:?} is not a YAML boolean"))),
        },
        Resolved::Int => construct_int(value)
            .map(PyValue::Int)
            .map_err(|message| yaml_error(mark, message))?,
        Resolved::Float => construct_float(value)
            .map(PyValue::Float)
            .map_err(|message| yaml_error(mark, message))?,
        Resolved::Timestamp => {
            check_timestamp(value).map_err(|message| yaml_error(mark, message))?;
            return Ok(Built::Undumpable(yaml_error(
                mark,
                format!(
                    "{value:?} is a YAML timestamp; the Python pipeline cannot hash it (json.dumps raises TypeError on datetime). Quote it to make it a string"
                ),
            )));
        }
        Resolved::Binary => {
            return Ok(Built::Undumpable(yaml_error(
                mark,
                "a YAML !!binary loads as Python bytes, which json.dumps cannot serialise",
            )));
        }
        _ => {
            return Err(yaml_error(
                mark,
                format!(
                    "could not determine a constructor for the tag {}",
                    node_tag_text(node, resolved)
                ),
            ));
        }
    };
    Ok(Built::Value(built))
}

pub(super) static TIMESTAMP_PARTS_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<year>[0-9][0-9][0-9][0-9])-(?P<month>[0-9][0-9]?)-(?P<day>[0-9][0-9]?)(?:(?:[Tt]|[ \t]+)(?P<hour>[0-9][0-9]?):(?P<minute>[0-9][0-9]):(?P<second>[0-9][0-9])(?:\.(?P<fraction>[0-9]*))?(?:[ \t]*(?P<tz>Z|(?P<tz_sign>[-+])(?P<tz_hour>[0-9][0-9]?)(?::(?P<tz_minute>[0-9][0-9]))?))?)?$",
    )
    .ok()
});

/// The checks `datetime.date`/`datetime.datetime`/`timezone` make when PyYAML builds a
/// timestamp (an invalid one fails at load time, a valid one only when dumped).
pub(super) fn check_timestamp(value: &str) -> Result<(), String> {
    let Some(parts) = TIMESTAMP_PARTS_RE
        .as_ref()
        .and_then(|re| re.captures(value))
    else {
        return Err(format!("{value:?} is not a timestamp"));
    };
    let number = |name: &str| -> u32 {
        parts
            .name(name)
            .and_then(|m| m.as_str().parse().ok())
            .unwrap_or(0)
    };
    let (year, month, day) = (number("year"), number("month"), number("day"));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("month must be in 1..12 in {value:?}")),
    };
    if year == 0 {
        return Err(format!("year 0 is out of range in {value:?}"));
    }
    if day == 0 || day > days_in_month {
        return Err(format!("day is out of range for month in {value:?}"));
    }
    if parts.name("hour").is_some()
        && (number("hour") > 23 || number("minute") > 59 || number("second") > 59)
    {
        return Err(format!("time out of range in {value:?}"));
    }
    if parts.name("tz_sign").is_some() && number("tz_hour") * 60 + number("tz_minute") >= 24 * 60 {
        return Err(format!("UTC offset out of range in {value:?}"));
    }
    Ok(())
}

/// Python's `int(text, base)` for the digits PyYAML hands it (no underscores left).
pub(super) fn python_int(text: &str, radix: u32) -> Result<BigInt, String> {
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let invalid = || format!("invalid literal for int() with base {radix}: {text:?}");
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(invalid());
    }
    if radix == 10 && digits.len() > MAX_INT_DIGITS {
        return Err(format!(
            "Exceeds the limit ({MAX_INT_DIGITS} digits) for integer string conversion"
        ));
    }
    let magnitude = BigInt::parse_bytes(digits.as_bytes(), radix).ok_or_else(invalid)?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// PyYAML's `construct_yaml_int`.
pub(super) fn construct_int(text: &str) -> Result<BigInt, String> {
    let value = text.replace('_', "");
    let (negative, value) = match value.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, value.strip_prefix('+').unwrap_or(&value).to_string()),
    };
    if value.is_empty() {
        return Err(format!("{text:?} is not an int"));
    }
    let magnitude = if value == "0" {
        BigInt::zero()
    } else if let Some(binary) = value.strip_prefix("0b") {
        python_int(binary, 2)?
    } else if let Some(hex) = value.strip_prefix("0x") {
        python_int(hex, 16)?
    } else if value.starts_with('0') {
        python_int(&value, 8)?
    } else if value.contains(':') {
        let mut total = BigInt::zero();
        let mut base = BigInt::from(1);
        for part in value.split(':').rev() {
            total += python_int(part, 10)? * &base;
            base *= 60;
        }
        total
    } else {
        python_int(&value, 10)?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// Python's `float(text)` (correctly rounded, like Rust's parser).
pub(super) fn python_float(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let word = matches!(unsigned, "inf" | "infinity" | "nan");
    let numeric = !unsigned.is_empty()
        && unsigned
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | '+' | '-'));
    if lower.len() - unsigned.len() > 1 || !(word || numeric) {
        return Err(format!("could not convert string to float: {text:?}"));
    }
    lower
        .parse::<f64>()
        .map_err(|_| format!("could not convert string to float: {text:?}"))
}

/// PyYAML's `construct_yaml_float`.
pub(super) fn construct_float(text: &str) -> Result<f64, String> {
    let value = text.replace('_', "").to_lowercase();
    let (negative, value) = match value.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, value.strip_prefix('+').unwrap_or(&value).to_string()),
    };
    if value.is_empty() {
        return Err(format!("{text:?} is not a float"));
    }
    let magnitude = if value == ".inf" {
        f64::INFINITY
    } else if value == ".nan" {
        return Ok(f64::NAN);
    } else if value.contains(':') {
        // value += digit * base with an int base, as PyYAML does (the int → float conversion
        // of the base is correctly rounded, like Rust's decimal parser).
        let mut total = 0.0_f64;
        let mut base = BigInt::from(1);
        for part in value.split(':').rev() {
            let digit = python_float(part)?;
            let base_float: f64 = base
                .to_string()
                .parse()
                .map_err(|_| "int too large to convert to float".to_string())?;
            if base_float.is_infinite() {
                return Err("int too large to convert to float".into());
            }
            total += digit * base_float;
            base *= 60;
        }
        total
    } else {
        python_float(&value)?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// Whether a mapping key node is a `<<` merge key.
pub(super) fn is_merge_key(node: &Node) -> bool {
    matches!(node, Node::Scalar { .. }) && resolve(node) == Resolved::Merge
}

/// PyYAML's `flatten_mapping`: merged pairs first (later merge sources before earlier ones so
/// that earlier ones win), then the mapping's own pairs, which win over all merged ones.
pub(super) fn flatten_mapping(node: &Node, budget: &Budget) -> Result<Vec<NodePair>, KeysError> {
    let Node::Mapping { pairs, .. } = node else {
        return Ok(Vec::new());
    };
    let mut merged = Vec::new();
    let mut own = Vec::new();
    for (key, value) in pairs {
        if !is_merge_key(key) {
            own.push((Rc::clone(key), Rc::clone(value)));
            continue;
        }
        match &**value {
            Node::Mapping { .. } => merged.extend(flatten_mapping(value, budget)?),
            Node::Sequence { items, .. } => {
                let mut sources = Vec::with_capacity(items.len());
                for item in items {
                    if !matches!(&**item, Node::Mapping { .. }) {
                        return Err(yaml_error(
                            item.mark(),
                            format!(
                                "while constructing a mapping, expected a mapping for merging, but found {}",
                                item.kind()
                            ),
                        ));
                    }
                    sources.push(flatten_mapping(item, budget)?);
                }
                for source in sources.into_iter().rev() {
                    merged.extend(source);
                }
            }
            Node::Scalar { mark, .. } => {
                return Err(yaml_error(
                    *mark,
                    "while constructing a mapping, expected a mapping or list of mappings for merging, but found a scalar",
                ));
            }
        }
    }
    budget.spend(node.mark(), merged.len() + own.len())?;
    merged.extend(own);
    Ok(merged)
}

pub(super) fn construct_mapping(
    node: &Node,
    depth: usize,
    budget: &Budget,
) -> Result<Built, KeysError> {
    let mut entries = DictBuilder::default();
    // Values that load but cannot be dumped, by entry index: harmless if a later duplicate
    // key replaces them, fatal if they survive.
    let mut undumpable: Vec<Option<KeysError>> = Vec::new();
    let mut undumpable_key = None;
    for (key_node, value_node) in flatten_mapping(node, budget)? {
        // A `=` key (the YAML 1.1 value key) is read as the string "=".
        let key = if resolve(&key_node) == Resolved::Value {
            Built::Value(PyValue::str("="))
        } else {
            construct(&key_node, depth + 1, budget)?
        };
        if let Built::Value(PyValue::List(_) | PyValue::Dict(_)) = key {
            return Err(yaml_error(
                key_node.mark(),
                "while constructing a mapping, found unhashable key",
            ));
        }
        let value = construct(&value_node, depth + 1, budget)?;
        let key = match key {
            Built::Value(key) => key,
            Built::Undumpable(err) => {
                undumpable_key.get_or_insert(err);
                continue;
            }
        };
        let (value, problem) = match value {
            Built::Value(value) => (value, None),
            Built::Undumpable(err) => (PyValue::None, Some(err)),
        };
        match entries.insert(key, value) {
            (_, true) => undumpable.push(problem),
            (index, false) => undumpable[index] = problem,
        }
    }
    if let Some(err) = undumpable_key {
        return Ok(Built::Undumpable(err));
    }
    if let Some(err) = undumpable.into_iter().flatten().next() {
        return Ok(Built::Undumpable(err));
    }
    Ok(Built::Value(PyValue::Dict(entries.into_entries())))
}

/// The most values one YAML document may construct, aliases expanded: a few hundred bytes of
/// nested aliases ("billion laughs") would otherwise expand without bound. Far above any real
/// config (a 200k-key mapping constructs 400k values).
pub const MAX_YAML_VALUES: usize = 4_000_000;

/// What is left of [`MAX_YAML_VALUES`] while constructing one document.
#[derive(Debug)]
pub(super) struct Budget {
    left: std::cell::Cell<usize>,
}

impl Budget {
    pub(super) fn new() -> Self {
        Budget {
            left: std::cell::Cell::new(MAX_YAML_VALUES),
        }
    }

    fn spend(&self, mark: Marker, values: usize) -> Result<(), KeysError> {
        match self.left.get().checked_sub(values) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(yaml_error(
                mark,
                format!(
                    "the document expands to more than {MAX_YAML_VALUES} values (aliases and merge keys expanded); refusing an alias bomb"
                ),
            )),
        }
    }
}
