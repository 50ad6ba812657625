//! Loading configs into [`PyValue`] exactly as the Python pipeline does: YAML with PyYAML's
//! `yaml.safe_load` (YAML 1.1 resolution), JSON with `json.loads`.
//!
//! The YAML event parser (yaml-rust2) only tokenises; every scalar is resolved here from its
//! text, quoting style and tag with PyYAML's own regular expressions and constructors, so
//! `1e-5` stays a string, `yes` is `True`, `017` is 15 and `1:30` is 90.
//!
//! Split by stage: `compose` turns YAML events into a node graph (anchors, aliases, the
//! characters PyYAML refuses), `construct` resolves and builds each node as PyYAML does
//! (implicit resolvers, int/float/timestamp constructors, merge keys, the alias-bomb budget),
//! and `json` is `json.loads`.

mod compose;
mod construct;
mod json;

use std::path::Path;

use crate::error::KeysError;
use crate::value::PyValue;

pub use construct::MAX_YAML_VALUES;
pub use json::load_json_str;
/// The largest config text podium reads (bytes).
pub use podium_variants::fs::MAX_CONFIG_BYTES;

use compose::{check_duplicate_anchors, check_yaml_characters, compose};
use construct::{Budget, Built, construct};
use json::{JsonFailure, parse_json};

/// Reads a config file: `.json` with `json.loads` rules, `.yaml`/`.yml` with `yaml.safe_load`
/// rules, anything else as JSON when the whole text is JSON and as YAML otherwise.
pub fn load_path(path: &Path) -> Result<PyValue, KeysError> {
    let text = read_config_text(path)?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let loaded = match extension.as_deref() {
        Some("json") => load_json_str(&text),
        Some("yaml" | "yml") => load_yaml_str(&text),
        _ => load_str(&text),
    };
    loaded.map_err(|err| err.in_file(path))
}

/// Reads a config file's text through podium's one bounded config reader
/// ([`podium_variants::fs::read_config_text`]): a regular file of at most [`MAX_CONFIG_BYTES`]
/// nested at most [`podium_variants::fs::MAX_CONFIG_DEPTH`] deep (a FIFO, `/dev/zero` or
/// 100,000 `[` named as a config must not hang, exhaust memory or burn CPU).
pub fn read_config_text(path: &Path) -> Result<String, KeysError> {
    podium_variants::fs::read_config_text(path).map_err(|err| match err {
        podium_variants::fs::ReadError::Io { path, source } => KeysError::Io { path, source },
        refused => KeysError::Config {
            file: Some(path.to_path_buf()),
            key: String::new(),
            message: refused.reason(),
        },
    })
}

/// Loads text whose format is unknown: JSON rules when the whole text is valid JSON (a JSON
/// document is also YAML, but `json.loads` reads `1e-5` as a float and keeps big ints exact),
/// YAML rules otherwise.
pub fn load_str(text: &str) -> Result<PyValue, KeysError> {
    match parse_json(text) {
        Ok(value) => Ok(value),
        Err(JsonFailure::Syntax { .. }) => load_yaml_str(text),
        Err(failure) => Err(failure.into_error()),
    }
}

/// PyYAML's `yaml.safe_load(text)`.
///
/// ```
/// use podium_keys::{PyValue, load_yaml_str};
///
/// let value = load_yaml_str("lr: 1e-5\nwd: 1.0e-5\nflag: yes\nmode: 017\n")?;
/// assert_eq!(value.get("lr"), Some(&PyValue::str("1e-5")));
/// assert_eq!(value.get("wd"), Some(&PyValue::Float(1.0e-5)));
/// assert_eq!(value.get("flag"), Some(&PyValue::Bool(true)));
/// assert_eq!(value.get("mode"), Some(&PyValue::int(15)));
/// # Ok::<(), podium_keys::KeysError>(())
/// ```
pub fn load_yaml_str(text: &str) -> Result<PyValue, KeysError> {
    // PyYAML skips a byte-order mark at the very start of the stream.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    check_yaml_characters(text)?;
    let Some(root) = compose(text)? else {
        return Ok(PyValue::None);
    };
    check_duplicate_anchors(text)?;
    let budget = Budget::new();
    match construct(&root, 0, &budget)? {
        Built::Value(value) => Ok(value),
        Built::Undumpable(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn yaml(text: &str) -> PyValue {
        load_yaml_str(text).unwrap()
    }

    #[test]
    fn scalars_resolve_like_pyyaml() {
        assert_eq!(yaml("1e-5"), PyValue::str("1e-5"));
        assert_eq!(yaml("1.0e-5"), PyValue::Float(1.0e-5));
        assert_eq!(yaml("1.0e5"), PyValue::str("1.0e5"));
        assert_eq!(yaml("017"), PyValue::int(15));
        assert_eq!(yaml("0o17"), PyValue::str("0o17"));
        assert_eq!(yaml("0x1F"), PyValue::int(31));
        assert_eq!(yaml("-0b101"), PyValue::int(-5));
        assert_eq!(yaml("1_000"), PyValue::int(1000));
        assert_eq!(yaml("1:30"), PyValue::int(90));
        assert_eq!(yaml("-1:30.5"), PyValue::Float(-90.5));
        assert_eq!(yaml("~"), PyValue::None);
        assert_eq!(yaml(""), PyValue::None);
        assert_eq!(yaml("NO"), PyValue::Bool(false));
        assert_eq!(yaml("'yes'"), PyValue::str("yes"));
        assert_eq!(yaml("-.inf"), PyValue::Float(f64::NEG_INFINITY));
        assert_eq!(yaml("-.5"), PyValue::str("-.5"));
        assert_eq!(yaml(".5"), PyValue::Float(0.5));
        assert_eq!(yaml("1."), PyValue::Float(1.0));
        assert!(load_yaml_str("2024-01-15").is_err());
        assert!(load_yaml_str("0b_").is_err());
        assert!(load_yaml_str("a: =").is_err());
        assert_eq!(yaml("! 12"), PyValue::int(12));
        assert_eq!(yaml("!!float 1e5"), PyValue::Float(1e5));
        assert_eq!(yaml("!!str 12"), PyValue::str("12"));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let value =
            yaml("base: &b {x: 1, y: 2}\nother: &o {y: 3, z: 4}\nm:\n  <<: [*b, *o]\n  x: 9\n");
        let m = value.get("m").unwrap();
        assert_eq!(m.get("x"), Some(&PyValue::int(9)));
        assert_eq!(m.get("y"), Some(&PyValue::int(2)));
        assert_eq!(m.get("z"), Some(&PyValue::int(4)));
        assert!(load_yaml_str("a: &x [1, *x]").is_err());
        assert!(load_yaml_str("a: 1\n---\nb: 2\n").is_err());
        assert!(load_yaml_str("a: \u{7f}").is_err());
    }

    #[test]
    fn json_keeps_python_semantics() {
        let value = load_json_str(r#"{"a": 1e-5, "a": 2, "b": [NaN, -0.0, 1]}"#).unwrap();
        assert_eq!(value.get("a"), Some(&PyValue::int(2)));
        assert!(load_json_str("01").is_err());
        assert!(load_json_str(r#""\ud800""#).is_err());
        assert_eq!(
            load_json_str(r#""\ud83d\ude00""#).unwrap(),
            PyValue::str("😀")
        );
        assert_eq!(
            load_str("[1e-5]").unwrap(),
            PyValue::List(vec![PyValue::Float(1e-5)])
        );
        assert_eq!(
            load_str("a: 1e-5").unwrap().get("a"),
            Some(&PyValue::str("1e-5"))
        );
    }
}
