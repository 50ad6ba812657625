//! `json.loads`: Python's JSON reading (big ints exact, `NaN`/`Infinity`, later duplicate keys
//! win), for configs and MLflow payloads.

use crate::canonical::MAX_DEPTH;
use crate::error::KeysError;
use crate::value::{DictBuilder, PyValue};

use super::construct::python_int;

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

pub(super) enum JsonFailure {
    /// Not JSON at all.
    Syntax { offset: usize, message: String },
    /// JSON that Python refuses to turn into a value (or that Rust strings cannot hold).
    Value { offset: usize, message: String },
}

impl JsonFailure {
    pub(super) fn into_error(self) -> KeysError {
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

pub(super) fn parse_json(text: &str) -> Result<PyValue, JsonFailure> {
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

pub(super) struct JsonParser<'a> {
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
