//! MLflow search filter strings and `order_by` clauses translated to SQL on MLflow's schema, for
//! every database podium reads directly (SQLite and PostgreSQL: the few spellings that differ
//! follow [`Backend`]).
//!
//! Supported: conjunctions (`AND`) of
//! - `tags.<key>` / `params.<key>` with `=`, `!=`, `LIKE`, `ILIKE`, `IS NULL`, `IS NOT NULL`;
//! - `metrics.<key>` with `=`, `!=`, `<`, `<=`, `>`, `>=` against a number, `IS [NOT] NULL`;
//! - `attributes.<name>` for `status`, `run_name`, `run_id`, `user_id`, `artifact_uri`
//!   (`=`, `!=`, `LIKE`, `ILIKE`; `run_id` also `IN`/`NOT IN`) and `start_time`, `end_time`,
//!   `created` (numeric comparisons).
//!
//! Keys may be plain, backticked or double-quoted; string literals use `'…'` or `"…"` (MLflow
//! has no escapes). Anything else is an [`MlflowError::InvalidQuery`] rather than a silent
//! mismatch.

use super::{Backend, SqlValue};
use crate::error::MlflowError;

/// SQL for a parsed filter: fragments over the alias `r` (the `runs` table), joined by AND,
/// with `?` placeholders in the order of `params`.
#[derive(Debug, Default)]
pub(crate) struct SqlFilter {
    pub clauses: Vec<String>,
    pub params: Vec<SqlValue>,
}

/// SQL for `order_by`: joins to add and ORDER BY keys, with their parameters (the join
/// parameters come before the WHERE parameters in the statement).
#[derive(Debug, Default)]
pub(crate) struct SqlOrder {
    pub joins: Vec<String>,
    pub join_params: Vec<SqlValue>,
    /// (expression, `ASC` or `DESC`), most significant first.
    pub keys: Vec<(String, &'static str)>,
}

impl SqlOrder {
    /// The ORDER BY list: `expression direction, …`.
    pub(crate) fn terms(&self) -> String {
        self.keys
            .iter()
            .map(|(expression, direction)| format!("{expression} {direction}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Quoted(String),
    Number(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn invalid(filter: &str, message: impl std::fmt::Display) -> MlflowError {
    MlflowError::InvalidQuery(format!("filter {filter:?}: {message}"))
}

fn tokenize(text: &str) -> Result<Vec<Token>, MlflowError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        match c {
            c if c.is_whitespace() => index += 1,
            '(' => {
                tokens.push(Token::LParen);
                index += 1;
            }
            ')' => {
                tokens.push(Token::RParen);
                index += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                index += 1;
            }
            '=' => {
                tokens.push(Token::Op("="));
                index += if chars.get(index + 1) == Some(&'=') {
                    2
                } else {
                    1
                };
            }
            '!' | '<' | '>' => {
                let next = chars.get(index + 1).copied();
                let (op, width) = match (c, next) {
                    ('!', Some('=')) => ("!=", 2),
                    ('<', Some('>')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    _ => return Err(invalid(text, format!("unexpected {c:?}"))),
                };
                tokens.push(Token::Op(op));
                index += width;
            }
            '\'' | '"' => {
                let end = chars[index + 1..]
                    .iter()
                    .position(|&other| other == c)
                    .ok_or_else(|| invalid(text, "unterminated string literal"))?;
                tokens.push(Token::Quoted(
                    chars[index + 1..index + 1 + end].iter().collect(),
                ));
                index += end + 2;
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' || c == '.' => {
                let start = index;
                index += 1;
                while index < chars.len()
                    && (chars[index].is_ascii_alphanumeric()
                        || chars[index] == '.'
                        || ((chars[index] == '-' || chars[index] == '+')
                            && matches!(chars[index - 1], 'e' | 'E')))
                {
                    index += 1;
                }
                let literal: String = chars[start..index].iter().collect();
                let number = literal
                    .parse::<f64>()
                    .map_err(|_| invalid(text, format!("bad number {literal:?}")))?;
                tokens.push(Token::Number(number));
            }
            c if c.is_alphabetic() || c == '_' || c == '`' => {
                // An identifier: words, dots, and backticked or double-quoted segments.
                let mut ident = String::new();
                loop {
                    match chars.get(index) {
                        Some('`') => {
                            let end = chars[index + 1..]
                                .iter()
                                .position(|&other| other == '`')
                                .ok_or_else(|| invalid(text, "unterminated backtick"))?;
                            ident.push('\u{0}');
                            ident.extend(&chars[index + 1..index + 1 + end]);
                            index += end + 2;
                        }
                        Some('"') if ident.ends_with('.') => {
                            let end = chars[index + 1..]
                                .iter()
                                .position(|&other| other == '"')
                                .ok_or_else(|| invalid(text, "unterminated quoted key"))?;
                            ident.push('\u{0}');
                            ident.extend(&chars[index + 1..index + 1 + end]);
                            index += end + 2;
                        }
                        Some(&ch)
                            if ch.is_alphanumeric()
                                || matches!(ch, '_' | '.' | '-' | '/' | ':') =>
                        {
                            ident.push(ch);
                            index += 1;
                        }
                        _ => break,
                    }
                }
                tokens.push(Token::Ident(ident));
            }
            other => return Err(invalid(text, format!("unexpected character {other:?}"))),
        }
    }
    Ok(tokens)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entity {
    Tag,
    Param,
    Metric,
    Attribute,
}

/// Splits `tags.key` / ``tags.`a.b` `` into entity and key. Keys quoted with backticks or `"`
/// were marked with a NUL by the tokenizer.
fn split_identifier(filter: &str, ident: &str) -> Result<(Entity, String), MlflowError> {
    // As in MLflow, a name without a prefix is an attribute (`status`, `start_time`, …).
    let (prefix, key) = ident.split_once('.').unwrap_or(("attributes", ident));
    let entity = match prefix.to_ascii_lowercase().as_str() {
        "tags" | "tag" => Entity::Tag,
        "params" | "param" | "parameter" | "parameters" => Entity::Param,
        "metrics" | "metric" => Entity::Metric,
        "attributes" | "attribute" | "attr" | "run" => Entity::Attribute,
        other => {
            return Err(invalid(
                filter,
                format!("unknown entity {other:?} (tags, params, metrics, attributes)"),
            ));
        }
    };
    let key = match key.strip_prefix('\u{0}') {
        Some(quoted) if !quoted.contains('\u{0}') => quoted.to_string(),
        Some(_) => return Err(invalid(filter, "malformed quoted key")),
        None if key.contains('\u{0}') => return Err(invalid(filter, "malformed quoted key")),
        None => key.to_string(),
    };
    if key.is_empty() {
        return Err(invalid(filter, "empty key"));
    }
    Ok((entity, key))
}

enum AttributeKind {
    Text(&'static str),
    Number(&'static str),
}

fn attribute_column(filter: &str, name: &str) -> Result<AttributeKind, MlflowError> {
    Ok(match name {
        "status" => AttributeKind::Text("r.status"),
        "run_name" | "run name" | "Run name" | "Run Name" => AttributeKind::Text("r.name"),
        "run_id" => AttributeKind::Text("r.run_uuid"),
        "user_id" => AttributeKind::Text("r.user_id"),
        "artifact_uri" => AttributeKind::Text("r.artifact_uri"),
        "start_time" | "created" | "Created" => AttributeKind::Number("r.start_time"),
        "end_time" => AttributeKind::Number("r.end_time"),
        other => {
            return Err(invalid(
                filter,
                format!(
                    "attribute {other:?} is not supported by podium's database stores (status, \
                     run_name, run_id, user_id, artifact_uri, start_time, end_time)"
                ),
            ));
        }
    })
}

fn text_operator<'a>(filter: &str, op: &'a str) -> Result<&'a str, MlflowError> {
    match op {
        "=" | "!=" | "LIKE" | "ILIKE" => Ok(op),
        other => Err(invalid(
            filter,
            format!("comparator {other} needs a numeric key (metrics, start_time, end_time)"),
        )),
    }
}

/// `column op ?` for a string comparison, with MLflow's ILIKE (SQLite has none: both sides
/// lower-cased there).
fn text_comparison(backend: Backend, column: &str, op: &str) -> String {
    match (op, backend) {
        ("ILIKE", Backend::Sqlite) => format!("lower({column}) LIKE lower(?)"),
        (other, _) => format!("{column} {other} ?"),
    }
}

struct Parser<'a> {
    backend: Backend,
    filter: &'a str,
    tokens: Vec<Token>,
    position: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn peek_keyword(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.position), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn error(&self, message: impl std::fmt::Display) -> MlflowError {
        invalid(self.filter, message)
    }

    /// The comparator after a key: an operator or a keyword form.
    fn comparator(&mut self) -> Result<String, MlflowError> {
        match self.next() {
            Some(Token::Op(op)) => Ok(op.to_string()),
            Some(Token::Ident(word)) => {
                let upper = word.to_ascii_uppercase();
                match upper.as_str() {
                    "LIKE" | "ILIKE" | "IN" => Ok(upper),
                    "NOT" if self.peek_keyword("IN") => {
                        self.position += 1;
                        Ok("NOT IN".to_string())
                    }
                    "IS" => {
                        let negated = self.peek_keyword("NOT");
                        if negated {
                            self.position += 1;
                        }
                        if !self.peek_keyword("NULL") {
                            return Err(self.error("expected NULL after IS"));
                        }
                        self.position += 1;
                        Ok(if negated { "IS NOT NULL" } else { "IS NULL" }.to_string())
                    }
                    "RLIKE" => {
                        Err(self.error("RLIKE is not supported by podium's database stores"))
                    }
                    _ => Err(self.error(format!("expected a comparator, found {word:?}"))),
                }
            }
            other => Err(self.error(format!("expected a comparator, found {other:?}"))),
        }
    }

    fn string_value(&mut self) -> Result<String, MlflowError> {
        match self.next() {
            Some(Token::Quoted(value)) => Ok(value),
            other => Err(self.error(format!("expected a quoted string, found {other:?}"))),
        }
    }

    fn number_value(&mut self) -> Result<f64, MlflowError> {
        match self.next() {
            Some(Token::Number(value)) => Ok(value),
            other => Err(self.error(format!("expected a number, found {other:?}"))),
        }
    }

    fn string_list(&mut self) -> Result<Vec<String>, MlflowError> {
        if self.next() != Some(Token::LParen) {
            return Err(self.error("expected ( after IN"));
        }
        let mut values = vec![self.string_value()?];
        loop {
            match self.next() {
                Some(Token::Comma) => values.push(self.string_value()?),
                Some(Token::RParen) => return Ok(values),
                other => {
                    return Err(self.error(format!("expected , or ) in IN list, found {other:?}")));
                }
            }
        }
    }

    fn clause(&mut self, out: &mut SqlFilter) -> Result<(), MlflowError> {
        let ident = match self.next() {
            Some(Token::Ident(ident)) => ident,
            other => return Err(self.error(format!("expected a key, found {other:?}"))),
        };
        let (entity, key) = split_identifier(self.filter, &ident)?;
        let op = self.comparator()?;
        match entity {
            Entity::Tag | Entity::Param | Entity::Metric => {
                let (table, alias) = match entity {
                    Entity::Tag => ("tags", "t"),
                    Entity::Param => ("params", "p"),
                    _ => ("latest_metrics", "m"),
                };
                let exists = format!(
                    "EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.run_uuid = r.run_uuid AND {alias}.key = ?"
                );
                out.params.push(SqlValue::Text(key));
                match op.as_str() {
                    "IS NULL" => out.clauses.push(format!("NOT {exists})")),
                    "IS NOT NULL" => out.clauses.push(format!("{exists})")),
                    _ if entity == Entity::Metric => {
                        if !matches!(op.as_str(), "=" | "!=" | "<" | "<=" | ">" | ">=") {
                            return Err(
                                self.error(format!("comparator {op} is not valid for metrics"))
                            );
                        }
                        let value = self.number_value()?;
                        out.clauses
                            .push(format!("{exists} AND {alias}.value {op} ?)"));
                        out.params.push(SqlValue::Real(value));
                    }
                    _ => {
                        let op = text_operator(self.filter, &op)?;
                        let value = self.string_value()?;
                        out.clauses.push(format!(
                            "{exists} AND {})",
                            text_comparison(self.backend, &format!("{alias}.value"), op)
                        ));
                        out.params.push(SqlValue::Text(value));
                    }
                }
            }
            Entity::Attribute => match attribute_column(self.filter, &key)? {
                AttributeKind::Text(column) => match op.as_str() {
                    "IN" | "NOT IN" if column == "r.run_uuid" => {
                        let values = self.string_list()?;
                        let marks = vec!["?"; values.len()].join(", ");
                        out.clauses.push(format!("{column} {op} ({marks})"));
                        out.params.extend(values.into_iter().map(SqlValue::Text));
                    }
                    _ => {
                        let op = text_operator(self.filter, &op)?;
                        let value = self.string_value()?;
                        out.clauses.push(text_comparison(self.backend, column, op));
                        out.params.push(SqlValue::Text(value));
                    }
                },
                AttributeKind::Number(column) => {
                    if !matches!(op.as_str(), "=" | "!=" | "<" | "<=" | ">" | ">=") {
                        return Err(self.error(format!("comparator {op} is not valid for {key}")));
                    }
                    let value = self.number_value()?;
                    out.clauses.push(format!("{column} {op} ?"));
                    // Times are integers; compare as such when the literal is one.
                    if value.fract() == 0.0 && value.abs() < 9.0e15 {
                        out.params.push(SqlValue::Integer(value as i64));
                    } else {
                        out.params.push(SqlValue::Real(value));
                    }
                }
            },
        }
        Ok(())
    }
}

/// Parses an MLflow filter string into SQL for `backend` (empty or blank: no condition).
pub(crate) fn parse_filter(backend: Backend, filter: &str) -> Result<SqlFilter, MlflowError> {
    let mut out = SqlFilter::default();
    if filter.trim().is_empty() {
        return Ok(out);
    }
    let mut parser = Parser {
        backend,
        filter,
        tokens: tokenize(filter)?,
        position: 0,
    };
    loop {
        parser.clause(&mut out)?;
        match parser.next() {
            None => return Ok(out),
            Some(Token::Ident(word)) if word.eq_ignore_ascii_case("AND") => {}
            Some(Token::Ident(word)) if word.eq_ignore_ascii_case("OR") => {
                return Err(parser.error("MLflow filters have no OR"));
            }
            Some(other) => return Err(parser.error(format!("expected AND, found {other:?}"))),
        }
    }
}

/// Translates MLflow `order_by` clauses (`metrics.loss ASC`, `attributes.start_time DESC`, …).
/// MLflow's tie-breakers (start time descending, then run id) are always appended.
pub(crate) fn parse_order_by(order_by: &[String]) -> Result<SqlOrder, MlflowError> {
    let mut out = SqlOrder::default();
    let mut has_start_time = false;
    for (index, clause) in order_by.iter().enumerate() {
        let tokens = tokenize(clause)?;
        let (ident, direction) = match tokens.as_slice() {
            [Token::Ident(ident)] => (ident.clone(), "ASC"),
            [Token::Ident(ident), Token::Ident(dir)] if dir.eq_ignore_ascii_case("ASC") => {
                (ident.clone(), "ASC")
            }
            [Token::Ident(ident), Token::Ident(dir)] if dir.eq_ignore_ascii_case("DESC") => {
                (ident.clone(), "DESC")
            }
            _ => {
                return Err(MlflowError::InvalidQuery(format!(
                    "order_by {clause:?}: expected `<key> [ASC|DESC]`"
                )));
            }
        };
        let (entity, key) = split_identifier(clause, &ident)?;
        match entity {
            Entity::Attribute => {
                let column = match attribute_column(clause, &key)? {
                    AttributeKind::Text(column) | AttributeKind::Number(column) => column,
                };
                has_start_time |= column == "r.start_time";
                out.keys.push((format!("{column} IS NULL"), "ASC"));
                out.keys.push((column.to_string(), direction));
            }
            Entity::Metric => {
                let alias = format!("o{index}");
                out.joins.push(format!(
                    "LEFT JOIN latest_metrics {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = ?"
                ));
                out.join_params.push(SqlValue::Text(key));
                // MLflow sorts NaN after numbers and missing values last, whatever the direction.
                // `is_nan` is an integer in SQLite and a boolean in PostgreSQL: tested as such.
                out.keys.push((
                    format!(
                        "CASE WHEN {alias}.is_nan THEN 1 WHEN {alias}.value IS NULL THEN 2 ELSE 0 END"
                    ),
                    "ASC",
                ));
                out.keys.push((format!("{alias}.value"), direction));
            }
            Entity::Tag | Entity::Param => {
                let alias = format!("o{index}");
                let table = if entity == Entity::Tag {
                    "tags"
                } else {
                    "params"
                };
                out.joins.push(format!(
                    "LEFT JOIN {table} {alias} ON {alias}.run_uuid = r.run_uuid AND {alias}.key = ?"
                ));
                out.join_params.push(SqlValue::Text(key));
                out.keys.push((format!("{alias}.value IS NULL"), "ASC"));
                out.keys.push((format!("{alias}.value"), direction));
            }
        }
    }
    if !has_start_time {
        out.keys.push(("r.start_time".to_string(), "DESC"));
    }
    out.keys.push(("r.run_uuid".to_string(), "ASC"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn podium_filters_translate() {
        let sql = parse_filter(
            Backend::Sqlite,
            "tags.`code.backbone` = 'distil' AND tags.`note` = \"it's\" AND attributes.status = 'FINISHED'",
        )
        .unwrap();
        assert_eq!(sql.clauses.len(), 3);
        assert_eq!(
            sql.params,
            vec![
                SqlValue::Text("code.backbone".into()),
                SqlValue::Text("distil".into()),
                SqlValue::Text("note".into()),
                SqlValue::Text("it's".into()),
                SqlValue::Text("FINISHED".into()),
            ]
        );
        assert_eq!(sql.clauses[2], "r.status = ?");
    }

    #[test]
    fn the_filter_builder_output_always_parses() {
        use crate::filter::Filter;
        use crate::model::RunStatus;
        let filter = Filter::new()
            .tag_eq("a.b-c/d", "x y")
            .tag_eq("q", "it's")
            .tag_eq("r", "say \"hi\"")
            .status(RunStatus::Killed);
        let sql = parse_filter(Backend::Postgres, &filter.server_side()).unwrap();
        assert_eq!(sql.clauses.len(), 4);
        assert_eq!(sql.params[5], SqlValue::Text("say \"hi\"".into()));
    }

    #[test]
    fn numeric_and_list_forms() {
        let sql = parse_filter(
            Backend::Sqlite,
            "metrics.f1 >= 0.5 and params.lr != '0.1' AND attributes.run_id IN ('a', 'b') \
             AND attributes.start_time > 100 AND tags.x IS NOT NULL AND metrics.`val loss` < -1e-3",
        )
        .unwrap();
        assert_eq!(sql.clauses.len(), 6);
        assert!(sql.clauses[2].contains("IN (?, ?)"));
        assert_eq!(sql.params.last(), Some(&SqlValue::Real(-1e-3)));
    }

    #[test]
    fn ilike_is_spelled_per_dialect() {
        let filter = "tags.note ILIKE '%Big%' AND attributes.run_name ILIKE 'T%'";
        let sqlite = parse_filter(Backend::Sqlite, filter).unwrap();
        assert!(
            sqlite.clauses[0].ends_with("lower(t.value) LIKE lower(?))"),
            "{sqlite:?}"
        );
        assert_eq!(sqlite.clauses[1], "lower(r.name) LIKE lower(?)");
        let postgres = parse_filter(Backend::Postgres, filter).unwrap();
        assert!(
            postgres.clauses[0].ends_with("t.value ILIKE ?)"),
            "{postgres:?}"
        );
        assert_eq!(postgres.clauses[1], "r.name ILIKE ?");
        assert_eq!(sqlite.params, postgres.params);
    }

    #[test]
    fn unsupported_syntax_is_an_error() {
        for bad in [
            "tags.a = 'x' OR tags.b = 'y'",
            "nonsense = 'x'",
            "tags.a = 'unterminated",
            "metrics.x = 'text'",
            "tags.a > 'x'",
            "attributes.lifecycle_stage = 'active'",
            "datasets.name = 'x'",
            "tags.a = 'x' tags.b = 'y'",
            "params.p RLIKE 'x'",
        ] {
            assert!(
                matches!(
                    parse_filter(Backend::Sqlite, bad),
                    Err(MlflowError::InvalidQuery(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn order_by_translates() {
        let bare = parse_order_by(&["start_time".into()]).unwrap();
        assert_eq!(
            bare.terms(),
            "r.start_time IS NULL ASC, r.start_time ASC, r.run_uuid ASC"
        );
        assert!(parse_filter(Backend::Postgres, "status = 'FINISHED'").is_ok());
        let order = parse_order_by(&[
            "metrics.`val.f1` DESC".into(),
            "attributes.start_time".into(),
        ])
        .unwrap();
        assert_eq!(order.joins.len(), 1);
        assert_eq!(order.keys.len(), 5);
        assert!(parse_order_by(&["metrics.x SIDEWAYS".into()]).is_err());
    }
}
