//! A PostgreSQL transaction as the shared schema code ([`crate::sql`]) uses it: `?`
//! placeholders numbered to `$n`, statements prepared once per connection, [`SqlValue`]s bound
//! to whatever type the server inferred for each parameter (an id to `integer`, a time to
//! `bigint`, a flag to `boolean`, a list to `text[]`), rows read without copying their text,
//! and long statements read through a portal a chunk at a time.

use std::collections::HashMap;
use std::error::Error as StdError;

use bytes::BytesMut;
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Statement, Transaction};

use crate::error::MlflowError;
use crate::sql::{Backend, SqlConn, SqlError, SqlRow, SqlValue};

/// Prepared statements kept per connection before the cache starts over (statements with
/// `IN (…)` lists of varying length make distinct texts).
const MAX_CACHED_STATEMENTS: usize = 256;

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for SqlValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let mismatch = |what: &str| -> BoxError {
            format!("cannot bind {what} to a parameter of type {ty}").into()
        };
        match self {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Text(text) => text.as_str().to_sql(ty, out),
            SqlValue::Integer(number) => match *ty {
                Type::INT2 => i16::try_from(*number)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*number)?.to_sql(ty, out),
                Type::INT8 => number.to_sql(ty, out),
                Type::FLOAT8 => (*number as f64).to_sql(ty, out),
                Type::BOOL => (*number != 0).to_sql(ty, out),
                _ => Err(mismatch("an integer")),
            },
            SqlValue::Real(number) => match *ty {
                Type::FLOAT8 => number.to_sql(ty, out),
                Type::FLOAT4 => (*number as f32).to_sql(ty, out),
                _ => Err(mismatch("a number")),
            },
            SqlValue::Bool(flag) => match *ty {
                Type::BOOL => flag.to_sql(ty, out),
                Type::INT2 | Type::INT4 | Type::INT8 => {
                    SqlValue::Integer(i64::from(*flag)).to_sql(ty, out)
                }
                _ => Err(mismatch("a boolean")),
            },
            SqlValue::TextList(items) => items.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // Checked per value in `to_sql`, where the value's kind is known.
        true
    }

    to_sql_checked!();
}

/// Rewrites the `?` placeholders of `sql` (outside quoted literals and identifiers) to
/// PostgreSQL's `$1`, `$2`, … in order.
pub(crate) fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut quote: Option<char> = None;
    let mut next = 0;
    for c in sql.chars() {
        match quote {
            Some(open) => {
                out.push(c);
                if c == open {
                    quote = None;
                }
            }
            None if c == '?' => {
                next += 1;
                out.push('$');
                out.push_str(&next.to_string());
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// A driver error as a [`SqlError`]: the server's message (with its detail and hint), or the
/// client's, with its causes. Passwords are never part of either.
pub(crate) fn database_error(err: &postgres::Error) -> SqlError {
    let unique_violation = err.code() == Some(&SqlState::UNIQUE_VIOLATION);
    SqlError::Database {
        unique_violation,
        message: describe(err),
    }
}

/// The text of a driver error.
pub(crate) fn describe(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut text = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        // podium's own bounds on the session (PostgresSettings::session_options): say which
        // setting ended the wait.
        if *db.code() == postgres::error::SqlState::QUERY_CANCELED
            && db.message().contains("statement timeout")
        {
            text.push_str(
                "; a statement may take at most the search budget (PODIUM_MAX_SEARCH_SECONDS \
                 raises it)",
            );
        } else if *db.code() == postgres::error::SqlState::LOCK_NOT_AVAILABLE {
            text.push_str(
                "; another session held a lock longer than the lock timeout (the URI's \
                 `options=-c lock_timeout=…` raises it)",
            );
        }
        return text;
    }
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

/// A transaction with its connection's statement cache.
pub(crate) struct PgConn<'t> {
    pub transaction: Transaction<'t>,
    pub statements: &'t mut HashMap<String, Statement>,
}

impl PgConn<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, SqlError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self
            .transaction
            .prepare(&number_placeholders(sql))
            .map_err(|err| database_error(&err))?;
        if self.statements.len() >= MAX_CACHED_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

struct Row<'a>(&'a postgres::Row);

impl Row<'_> {
    fn column_type(&self, index: usize) -> Result<&Type, String> {
        self.0
            .columns()
            .get(index)
            .map(|column| column.type_())
            .ok_or_else(|| format!("no column {index}"))
    }
}

fn column_error(index: usize, err: postgres::Error) -> String {
    format!("column {index}: {err}")
}

impl SqlRow for Row<'_> {
    fn text(&self, index: usize) -> Result<Option<&str>, String> {
        self.0
            .try_get::<_, Option<&str>>(index)
            .map_err(|err| column_error(index, err))
    }

    fn int(&self, index: usize) -> Result<Option<i64>, String> {
        let get = |err| column_error(index, err);
        match *self.column_type(index)? {
            Type::INT2 => Ok(self
                .0
                .try_get::<_, Option<i16>>(index)
                .map_err(get)?
                .map(i64::from)),
            Type::INT4 => Ok(self
                .0
                .try_get::<_, Option<i32>>(index)
                .map_err(get)?
                .map(i64::from)),
            _ => self.0.try_get::<_, Option<i64>>(index).map_err(get),
        }
    }

    fn real(&self, index: usize) -> Result<Option<f64>, String> {
        let get = |err| column_error(index, err);
        match *self.column_type(index)? {
            Type::FLOAT4 => Ok(self
                .0
                .try_get::<_, Option<f32>>(index)
                .map_err(get)?
                .map(f64::from)),
            Type::FLOAT8 => self.0.try_get::<_, Option<f64>>(index).map_err(get),
            // An untyped NULL column of a UNION branch.
            _ => Ok(None),
        }
    }

    fn flag(&self, index: usize) -> Result<Option<bool>, String> {
        match *self.column_type(index)? {
            Type::BOOL => self
                .0
                .try_get::<_, Option<bool>>(index)
                .map_err(|err| column_error(index, err)),
            Type::INT2 | Type::INT4 | Type::INT8 => Ok(self.int(index)?.map(|number| number != 0)),
            _ => Ok(None),
        }
    }

    fn texts(&self, index: usize) -> Result<Option<Vec<Option<&str>>>, String> {
        self.0
            .try_get::<_, Option<Vec<Option<&str>>>>(index)
            .map_err(|err| column_error(index, err))
    }

    fn reals(&self, index: usize) -> Result<Option<Vec<Option<f64>>>, String> {
        self.0
            .try_get::<_, Option<Vec<Option<f64>>>>(index)
            .map_err(|err| column_error(index, err))
    }

    fn flags(&self, index: usize) -> Result<Option<Vec<Option<bool>>>, String> {
        self.0
            .try_get::<_, Option<Vec<Option<bool>>>>(index)
            .map_err(|err| column_error(index, err))
    }
}

fn references(params: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

impl SqlConn for PgConn<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, SqlError> {
        let statement = self.statement(sql)?;
        self.transaction
            .execute(&statement, &references(params))
            .map_err(|err| database_error(&err))
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        visit: &mut dyn FnMut(&dyn SqlRow) -> Result<(), MlflowError>,
    ) -> Result<(), SqlError> {
        use postgres::fallible_iterator::FallibleIterator;
        let statement = self.statement(sql)?;
        let mut rows = self
            .transaction
            .query_raw(&statement, params.iter())
            .map_err(|err| database_error(&err))?;
        while let Some(row) = rows.next().map_err(|err| database_error(&err))? {
            visit(&Row(&row))?;
        }
        Ok(())
    }

    fn query_chunked<T>(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        chunk: usize,
        mut decode: impl FnMut(&dyn SqlRow) -> Result<T, MlflowError>,
        mut each: impl FnMut(&mut Self, Vec<T>) -> Result<(), MlflowError>,
    ) -> Result<(), SqlError> {
        // One statement, read through a portal: other statements may run on the connection
        // between two fetches, inside the same transaction (and snapshot).
        let statement = self.statement(sql)?;
        let portal = self
            .transaction
            .bind(&statement, &references(params))
            .map_err(|err| database_error(&err))?;
        let fetch = i32::try_from(chunk).unwrap_or(i32::MAX);
        loop {
            let rows = self
                .transaction
                .query_portal(&portal, fetch)
                .map_err(|err| database_error(&err))?;
            let fetched = rows.len();
            let mut items = Vec::with_capacity(fetched);
            for row in &rows {
                items.push(decode(&Row(row))?);
            }
            drop(rows);
            if !items.is_empty() {
                each(self, items)?;
            }
            if fetched < chunk {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals() {
        assert_eq!(
            number_placeholders("SELECT '?', \"a?\" FROM t WHERE a = ? AND b IN (?, ?)"),
            "SELECT '?', \"a?\" FROM t WHERE a = $1 AND b IN ($2, $3)"
        );
    }
}
