//! Loading configs into [`PyValue`] exactly as the Python pipeline does: YAML with PyYAML's
//! `yaml.safe_load` (YAML 1.1 resolution), JSON with `json.loads`.
//!
//! The YAML event parser (yaml-rust2) only tokenises; every scalar is resolved here from its
//! text, quoting style and tag with PyYAML's own regular expressions and constructors, so
//! `1e-5` stays a string, `yes` is `True`, `017` is 15 and `1:30` is 90.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;
use std::sync::LazyLock;

use num_bigint::BigInt;
use num_traits::Zero;
use regex::Regex;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, Scanner, TScalarStyle, Token, TokenType};

use crate::canonical::{MAX_DEPTH, MAX_INT_DIGITS};
use crate::error::KeysError;
use crate::value::{DictBuilder, PyValue};

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

/// Reads a config file's text: a regular file of at most [`MAX_CONFIG_BYTES`] (a FIFO or
/// `/dev/zero` named as a config must not hang or exhaust memory).
pub fn read_config_text(path: &Path) -> Result<String, KeysError> {
    podium_variants::fs::read_regular_text(path, MAX_CONFIG_BYTES).map_err(|source| {
        match source.kind() {
            // The reader's own refusals (not a regular file, too large, not UTF-8).
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                KeysError::Config {
                    file: Some(path.to_path_buf()),
                    key: String::new(),
                    message: source.to_string(),
                }
            }
            _ => KeysError::Io {
                path: path.to_path_buf(),
                source,
            },
        }
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

// ---------------------------------------------------------------------------------------------
// YAML

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

/// What PyYAML's constructor produces for a node.
#[derive(Debug)]
enum Built {
    /// A value json.dumps can write.
    Value(PyValue),
    /// A value PyYAML loads (a date, bytes, a set, or something containing one) but json.dumps
    /// refuses. It only matters if it survives: a later duplicate key may replace it.
    Undumpable(KeysError),
}

/// PyYAML refuses a document that defines the same anchor name twice; the event parser does
/// not say, so the scanner's tokens are checked.
fn check_duplicate_anchors(text: &str) -> Result<(), KeysError> {
    let mut seen: HashMap<String, Marker> = HashMap::new();
    for Token(mark, token) in Scanner::new(text.chars()) {
        if let TokenType::Anchor(name) = token
            && let Some(first) = seen.insert(name.clone(), mark)
        {
            return Err(yaml_error(
                mark,
                format!(
                    "found duplicate anchor {name:?}; first occurrence at line {}, column {}",
                    first.line(),
                    first.col() + 1
                ),
            ));
        }
    }
    Ok(())
}

/// A mapping entry of the node graph.
type NodePair = (Rc<Node>, Rc<Node>);

/// A composed YAML node (PyYAML's representation graph; aliases share the node).
#[derive(Debug)]
enum Node {
    Scalar {
        value: String,
        style: TScalarStyle,
        tag: Option<Tag>,
        mark: Marker,
    },
    Sequence {
        items: Vec<Rc<Node>>,
        tag: Option<Tag>,
        mark: Marker,
    },
    Mapping {
        pairs: Vec<NodePair>,
        tag: Option<Tag>,
        mark: Marker,
    },
}

impl Node {
    fn mark(&self) -> Marker {
        match self {
            Node::Scalar { mark, .. }
            | Node::Sequence { mark, .. }
            | Node::Mapping { mark, .. } => *mark,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::Scalar { .. } => "a scalar",
            Node::Sequence { .. } => "a sequence",
            Node::Mapping { .. } => "a mapping",
        }
    }
}

fn yaml_error(mark: Marker, message: impl Into<String>) -> KeysError {
    KeysError::Yaml {
        file: None,
        line: mark.line(),
        column: mark.col() + 1,
        message: message.into(),
    }
}

/// PyYAML's reader refuses these characters anywhere in the stream; YAML 1.1 line breaks
/// (NEL, LS, PS) fold differently from the YAML 1.2 parser, so they are refused too rather than
/// risk a silent difference.
fn check_yaml_characters(text: &str) -> Result<(), KeysError> {
    let mut line = 1;
    let mut column = 1;
    for c in text.chars() {
        let code = c as u32;
        let printable = matches!(code, 0x09 | 0x0A | 0x0D | 0x20..=0x7E | 0x85 | 0xA0..=0xD7FF | 0xE000..=0xFFFD)
            || code >= 0x10000;
        if !printable {
            return Err(KeysError::Yaml {
                file: None,
                line,
                column,
                message: format!(
                    "unacceptable character U+{code:04X}: special characters are not allowed"
                ),
            });
        }
        if matches!(code, 0x85 | 0x2028 | 0x2029) {
            return Err(KeysError::Yaml {
                file: None,
                line,
                column,
                message: format!(
                    "YAML 1.1 line break U+{code:04X} inside the text is not supported"
                ),
            });
        }
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    Ok(())
}

/// A collection whose start event has been seen and whose end event has not.
struct Frame {
    anchor: usize,
    tag: Option<Tag>,
    mark: Marker,
    contents: Contents,
}

enum Contents {
    Sequence(Vec<Rc<Node>>),
    Mapping {
        pairs: Vec<NodePair>,
        /// A key waiting for its value.
        key: Option<Rc<Node>>,
    },
}

impl Frame {
    fn into_node(self) -> Node {
        let Frame {
            tag,
            mark,
            contents,
            ..
        } = self;
        match contents {
            Contents::Sequence(items) => Node::Sequence { items, tag, mark },
            Contents::Mapping { pairs, .. } => Node::Mapping { pairs, tag, mark },
        }
    }
}

/// Anchors and open collections while composing: an alias to a collection that is still open
/// would make the value contain itself.
#[derive(Default)]
struct Composer {
    anchors: HashMap<usize, Rc<Node>>,
    open_anchors: HashSet<usize>,
    stack: Vec<Frame>,
}

impl Composer {
    fn open(
        &mut self,
        anchor: usize,
        tag: Option<Tag>,
        mark: Marker,
        contents: Contents,
    ) -> Result<(), KeysError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(yaml_error(
                mark,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        if anchor > 0 {
            self.open_anchors.insert(anchor);
        }
        self.stack.push(Frame {
            anchor,
            tag,
            mark,
            contents,
        });
        Ok(())
    }

    fn close(&mut self, mark: Marker) -> Result<Rc<Node>, KeysError> {
        let frame = self
            .stack
            .pop()
            .ok_or_else(|| yaml_error(mark, "unbalanced collection end"))?;
        let anchor = frame.anchor;
        let node = Rc::new(frame.into_node());
        if anchor > 0 {
            self.open_anchors.remove(&anchor);
            self.anchors.insert(anchor, Rc::clone(&node));
        }
        Ok(node)
    }
}

/// PyYAML's composer: events → node graph of the single document (None for an empty stream).
fn compose(text: &str) -> Result<Option<Rc<Node>>, KeysError> {
    let mut parser = Parser::new_from_str(text);
    let mut composer = Composer::default();
    let mut documents = 0;
    let mut root: Option<Rc<Node>> = None;
    loop {
        let (event, mark) = parser
            .next_token()
            .map_err(|err| yaml_error(*err.marker(), err.info().to_string()))?;
        let completed: Rc<Node> = match event {
            Event::StreamEnd => break,
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => continue,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(yaml_error(
                        mark,
                        "expected a single document in the stream, but found another document",
                    ));
                }
                continue;
            }
            Event::Alias(id) => {
                if composer.open_anchors.contains(&id) {
                    return Err(yaml_error(
                        mark,
                        "recursive alias: the value would contain itself (json.dumps raises \"Circular reference detected\")",
                    ));
                }
                composer
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| yaml_error(mark, "found undefined alias"))?
            }
            Event::Scalar(value, style, anchor, tag) => {
                let node = Rc::new(Node::Scalar {
                    value,
                    style,
                    tag,
                    mark,
                });
                if anchor > 0 {
                    composer.anchors.insert(anchor, Rc::clone(&node));
                }
                node
            }
            Event::SequenceStart(anchor, tag) => {
                composer.open(anchor, tag, mark, Contents::Sequence(Vec::new()))?;
                continue;
            }
            Event::MappingStart(anchor, tag) => {
                let contents = Contents::Mapping {
                    pairs: Vec::new(),
                    key: None,
                };
                composer.open(anchor, tag, mark, contents)?;
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => composer.close(mark)?,
        };
        match composer.stack.last_mut().map(|frame| &mut frame.contents) {
            Some(Contents::Sequence(items)) => items.push(completed),
            Some(Contents::Mapping { pairs, key }) => match key.take() {
                Some(pending) => pairs.push((pending, completed)),
                None => *key = Some(completed),
            },
            None => root = Some(completed),
        }
    }
    Ok(root)
}

const YAML_TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// The tag PyYAML resolves a node to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resolved {
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
fn tag_text(tag: &Tag) -> String {
    format!("{}{}", tag.handle, tag.suffix)
}

/// The non-specific tag `!`, which PyYAML resolves like an untagged plain scalar.
fn is_non_specific(tag: &Tag) -> bool {
    (tag.handle.is_empty() && tag.suffix == "!") || (tag.handle == "!" && tag.suffix.is_empty())
}

fn explicit_tag(tag: &Tag) -> Resolved {
    match tag.handle.strip_prefix(YAML_TAG_PREFIX) {
        Some(rest) => Resolved::from_standard(&format!("{rest}{}", tag.suffix)),
        None if tag.handle.is_empty() && tag.suffix.starts_with(YAML_TAG_PREFIX) => {
            Resolved::from_standard(&tag.suffix[YAML_TAG_PREFIX.len()..])
        }
        None => Resolved::Other,
    }
}

fn resolve(node: &Node) -> Resolved {
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
static BOOL_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
        .ok()
});
static FLOAT_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .ok()
});
static INT_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
    .ok()
});
static NULL_RE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^(?:~|null|Null|NULL|)$").ok());
static TIMESTAMP_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
    )
    .ok()
});

fn matches(regex: &LazyLock<Option<Regex>>, text: &str) -> bool {
    regex.as_ref().is_some_and(|re| re.is_match(text))
}

/// PyYAML's `Resolver.resolve` for an untagged plain scalar: the resolvers registered for the
/// first character, in order (bool, float, int, merge, null, timestamp, value).
fn resolve_plain(value: &str) -> Resolved {
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
fn construct(node: &Node, depth: usize, budget: &Budget) -> Result<Built, KeysError> {
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

fn node_tag_text(node: &Node, resolved: Resolved) -> String {
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

fn construct_scalar(
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

static TIMESTAMP_PARTS_RE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<year>[0-9][0-9][0-9][0-9])-(?P<month>[0-9][0-9]?)-(?P<day>[0-9][0-9]?)(?:(?:[Tt]|[ \t]+)(?P<hour>[0-9][0-9]?):(?P<minute>[0-9][0-9]):(?P<second>[0-9][0-9])(?:\.(?P<fraction>[0-9]*))?(?:[ \t]*(?P<tz>Z|(?P<tz_sign>[-+])(?P<tz_hour>[0-9][0-9]?)(?::(?P<tz_minute>[0-9][0-9]))?))?)?$",
    )
    .ok()
});

/// The checks `datetime.date`/`datetime.datetime`/`timezone` make when PyYAML builds a
/// timestamp (an invalid one fails at load time, a valid one only when dumped).
fn check_timestamp(value: &str) -> Result<(), String> {
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
fn python_int(text: &str, radix: u32) -> Result<BigInt, String> {
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
fn construct_int(text: &str) -> Result<BigInt, String> {
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
fn python_float(text: &str) -> Result<f64, String> {
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
fn construct_float(text: &str) -> Result<f64, String> {
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
fn is_merge_key(node: &Node) -> bool {
    matches!(node, Node::Scalar { .. }) && resolve(node) == Resolved::Merge
}

/// PyYAML's `flatten_mapping`: merged pairs first (later merge sources before earlier ones so
/// that earlier ones win), then the mapping's own pairs, which win over all merged ones.
fn flatten_mapping(node: &Node, budget: &Budget) -> Result<Vec<NodePair>, KeysError> {
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

fn construct_mapping(node: &Node, depth: usize, budget: &Budget) -> Result<Built, KeysError> {
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

/// The largest config text podium reads (bytes).
pub use podium_variants::fs::MAX_CONFIG_BYTES;

/// What is left of [`MAX_YAML_VALUES`] while constructing one document.
#[derive(Debug)]
struct Budget {
    left: std::cell::Cell<usize>,
}

impl Budget {
    fn new() -> Self {
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

// ---------------------------------------------------------------------------------------------
// JSON

/// Python's `json.loads(text)`: ints of any size (up to Python's 4300-digit limit), floats for
/// numbers with a fraction or exponent, `NaN`/`Infinity`/`-Infinity`, later duplicate keys win.
///
/// ```
/// use podium_keys::{PyValue, load_json_str};
///
/// let value = load_json_str(r#"{"lr": 1e-5, "seed": 123456789012345678901234567890}"#)?;
/// assert_eq!(value.get("lr"), Some(&PyValue::Float(1e-5)));
/// assert_eq!(
///     value.get("seed").map(|v| podium_keys::py_json(v, podium_keys::Separators::Compact)).transpose()?,
///     Some("123456789012345678901234567890".to_string())
/// );
/// # Ok::<(), podium_keys::KeysError>(())
/// ```
pub fn load_json_str(text: &str) -> Result<PyValue, KeysError> {
    parse_json(text).map_err(JsonFailure::into_error)
}

enum JsonFailure {
    /// Not JSON at all.
    Syntax { offset: usize, message: String },
    /// JSON that Python refuses to turn into a value (or that Rust strings cannot hold).
    Value { offset: usize, message: String },
}

impl JsonFailure {
    fn into_error(self) -> KeysError {
        match self {
            JsonFailure::Syntax { offset, message } | JsonFailure::Value { offset, message } => {
                KeysError::Json {
                    file: None,
                    offset,
                    message,
                }
            }
        }
    }
}

fn parse_json(text: &str) -> Result<PyValue, JsonFailure> {
    let mut parser = JsonParser {
        bytes: text.as_bytes(),
        text,
        position: 0,
    };
    parser.skip_whitespace();
    let value = parser.value(0)?;
    parser.skip_whitespace();
    if parser.position != parser.bytes.len() {
        return Err(parser.syntax("Extra data"));
    }
    Ok(value)
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    position: usize,
}

impl JsonParser<'_> {
    fn syntax(&self, message: &str) -> JsonFailure {
        JsonFailure::Syntax {
            offset: self.position,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.position += 1;
        }
    }

    fn eat_literal(&mut self, literal: &str) -> bool {
        if self.text[self.position..].starts_with(literal) {
            self.position += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, JsonFailure> {
        if depth > MAX_DEPTH {
            return Err(JsonFailure::Value {
                offset: self.position,
                message: format!("nested deeper than {MAX_DEPTH} levels"),
            });
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(PyValue::Str),
            Some(b'n') if self.eat_literal("null") => Ok(PyValue::None),
            Some(b't') if self.eat_literal("true") => Ok(PyValue::Bool(true)),
            Some(b'f') if self.eat_literal("false") => Ok(PyValue::Bool(false)),
            Some(b'N') if self.eat_literal("NaN") => Ok(PyValue::Float(f64::NAN)),
            Some(b'I') if self.eat_literal("Infinity") => Ok(PyValue::Float(f64::INFINITY)),
            Some(b'-') if self.eat_literal("-Infinity") => Ok(PyValue::Float(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.syntax("Expecting value")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.position;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.position += 1;
        }
        self.position - start
    }

    /// Python's NUMBER_RE `(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?`.
    fn number(&mut self) -> Result<PyValue, JsonFailure> {
        let start = self.position;
        if self.peek() == Some(b'-') {
            self.position += 1;
        }
        match self.peek() {
            Some(b'0') => self.position += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => {
                self.position = start;
                return Err(self.syntax("Expecting value"));
            }
        }
        let integer_end = self.position;
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            let dot = self.position;
            self.position += 1;
            if self.digits() == 0 {
                self.position = dot;
            } else {
                is_float = true;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            let mark = self.position;
            self.position += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.position += 1;
            }
            if self.digits() == 0 {
                self.position = mark;
            } else {
                is_float = true;
            }
        }
        let literal = &self.text[start..self.position];
        if is_float {
            literal
                .parse::<f64>()
                .map(PyValue::Float)
                .map_err(|err| JsonFailure::Value {
                    offset: start,
                    message: format!("bad float {literal:?}: {err}"),
                })
        } else {
            python_int(&self.text[start..integer_end], 10)
                .map(PyValue::Int)
                .map_err(|message| JsonFailure::Value {
                    offset: start,
                    message,
                })
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonFailure> {
        let digits = self
            .text
            .get(self.position..self.position + 4)
            .filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| self.syntax("Invalid \\uXXXX escape"))?;
        self.position += 4;
        u32::from_str_radix(digits, 16).map_err(|_| self.syntax("Invalid \\uXXXX escape"))
    }

    fn string(&mut self) -> Result<String, JsonFailure> {
        self.position += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.position..];
            let Some(c) = rest.chars().next() else {
                return Err(self.syntax("Unterminated string starting at"));
            };
            match c {
                '"' => {
                    self.position += 1;
                    return Ok(out);
                }
                '\\' => {
                    self.position += 1;
                    let escape = self
                        .peek()
                        .ok_or_else(|| self.syntax("Unterminated string"))?;
                    self.position += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let escape_start = self.position - 2;
                            let unit = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&unit)
                                && self.text[self.position..].starts_with("\\u")
                            {
                                let save = self.position;
                                self.position += 2;
                                let low = self.hex4()?;
                                if (0xDC00..0xE000).contains(&low) {
                                    0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                                } else {
                                    self.position = save;
                                    unit
                                }
                            } else {
                                unit
                            };
                            let decoded = char::from_u32(code).ok_or(JsonFailure::Value {
                                offset: escape_start,
                                message: format!(
                                    "lone surrogate \\u{code:04x}: not representable as UTF-8 text"
                                ),
                            })?;
                            out.push(decoded);
                        }
                        _ => {
                            self.position -= 1;
                            return Err(self.syntax("Invalid \\escape"));
                        }
                    }
                }
                c if (c as u32) < 0x20 => return Err(self.syntax("Invalid control character at")),
                c => {
                    out.push(c);
                    self.position += c.len_utf8();
                }
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<PyValue, JsonFailure> {
        self.position += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.position += 1;
            return Ok(PyValue::List(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b']') => {
                    self.position += 1;
                    return Ok(PyValue::List(items));
                }
                _ => return Err(self.syntax("Expecting ',' delimiter")),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<PyValue, JsonFailure> {
        self.position += 1;
        let mut entries = DictBuilder::default();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.position += 1;
            return Ok(PyValue::Dict(entries.into_entries()));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.syntax("Expecting property name enclosed in double quotes"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.syntax("Expecting ':' delimiter"));
            }
            self.position += 1;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            entries.insert(PyValue::Str(key), value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b'}') => {
                    self.position += 1;
                    return Ok(PyValue::Dict(entries.into_entries()));
                }
                _ => return Err(self.syntax("Expecting ',' delimiter")),
            }
        }
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
