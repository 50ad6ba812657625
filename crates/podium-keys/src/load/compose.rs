//! Composing: yaml-rust2's events into PyYAML's representation graph (aliases share their
//! node), with the checks the event parser does not make (duplicate anchors, characters PyYAML
//! refuses).

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, Scanner, TScalarStyle, Token, TokenType};

use crate::canonical::MAX_DEPTH;
use crate::error::KeysError;

/// PyYAML refuses a document that defines the same anchor name twice; the event parser does
/// not say, so the scanner's tokens are checked.
pub(super) fn check_duplicate_anchors(text: &str) -> Result<(), KeysError> {
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
pub(super) type NodePair = (Rc<Node>, Rc<Node>);

/// A composed YAML node (PyYAML's representation graph; aliases share the node).
#[derive(Debug)]
pub(super) enum Node {
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
    pub(super) fn mark(&self) -> Marker {
        match self {
            Node::Scalar { mark, .. }
            | Node::Sequence { mark, .. }
            | Node::Mapping { mark, .. } => *mark,
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Node::Scalar { .. } => "a scalar",
            Node::Sequence { .. } => "a sequence",
            Node::Mapping { .. } => "a mapping",
        }
    }
}

pub(super) fn yaml_error(mark: Marker, message: impl Into<String>) -> KeysError {
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
pub(super) fn check_yaml_characters(text: &str) -> Result<(), KeysError> {
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
pub(super) struct Frame {
    anchor: usize,
    tag: Option<Tag>,
    mark: Marker,
    contents: Contents,
}

pub(super) enum Contents {
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
pub(super) struct Composer {
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
pub(super) fn compose(text: &str) -> Result<Option<Rc<Node>>, KeysError> {
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
