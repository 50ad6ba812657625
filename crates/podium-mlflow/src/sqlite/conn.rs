//! A SQLite connection as the shared schema code ([`crate::sql`]) uses it: statements cached
//! per connection, [`SqlValue`]s bound as SQLite values (booleans as 0/1, lists as JSON arrays
//! for `json_each`), rows read without copying their text.

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ToSql};

use crate::error::MlflowError;
use crate::sql::{Backend, SqlConn, SqlError, SqlRow, SqlValue};

/// A connection (or a transaction, through `Deref`) for the schema code.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqliteConn<'a>(pub &'a Connection);

impl ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Owned(Value::Null),
            SqlValue::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            SqlValue::Integer(number) => ToSqlOutput::Owned(Value::Integer(*number)),
            SqlValue::Real(number) => ToSqlOutput::Owned(Value::Real(*number)),
            SqlValue::Bool(flag) => ToSqlOutput::Owned(Value::Integer(i64::from(*flag))),
            SqlValue::TextList(items) => ToSqlOutput::Owned(Value::Text(
                serde_json::to_string(items)
                    .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?,
            )),
        })
    }
}

fn database_error(err: rusqlite::Error) -> SqlError {
    let unique_violation = matches!(
        &err,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    );
    SqlError::Database {
        unique_violation,
        message: err.to_string(),
    }
}

struct Row<'a, 'stmt>(&'a rusqlite::Row<'stmt>);

fn value<'r>(row: &'r rusqlite::Row<'_>, index: usize) -> Result<ValueRef<'r>, String> {
    row.get_ref(index).map_err(|err| err.to_string())
}

impl SqlRow for Row<'_, '_> {
    fn text(&self, index: usize) -> Result<Option<&str>, String> {
        match value(self.0, index)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|err| format!("column {index}: {err}")),
            other => Err(format!(
                "column {index}: expected text, found {:?}",
                other.data_type()
            )),
        }
    }

    fn int(&self, index: usize) -> Result<Option<i64>, String> {
        match value(self.0, index)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(number) => Ok(Some(number)),
            other => Err(format!(
                "column {index}: expected an integer, found {:?}",
                other.data_type()
            )),
        }
    }

    fn real(&self, index: usize) -> Result<Option<f64>, String> {
        match value(self.0, index)? {
            ValueRef::Null => Ok(None),
            ValueRef::Real(number) => Ok(Some(number)),
            ValueRef::Integer(number) => Ok(Some(number as f64)),
            other => Err(format!(
                "column {index}: expected a number, found {:?}",
                other.data_type()
            )),
        }
    }

    fn flag(&self, index: usize) -> Result<Option<bool>, String> {
        Ok(self.int(index)?.map(|number| number != 0))
    }
}

impl SqlConn for SqliteConn<'_> {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, SqlError> {
        let mut statement = self.0.prepare_cached(sql).map_err(database_error)?;
        let changed = statement
            .execute(rusqlite::params_from_iter(params))
            .map_err(database_error)?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        visit: &mut dyn FnMut(&dyn SqlRow) -> Result<(), MlflowError>,
    ) -> Result<(), SqlError> {
        let mut statement = self.0.prepare_cached(sql).map_err(database_error)?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(params))
            .map_err(database_error)?;
        while let Some(row) = rows.next().map_err(database_error)? {
            visit(&Row(row))?;
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
        // SQLite steps one statement while others run on the same connection: the statement
        // stays open (uncached: it is read once) while `each` reads a chunk's data.
        let mut statement = self.0.prepare(sql).map_err(database_error)?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(params))
            .map_err(database_error)?;
        let mut other = SqliteConn(self.0);
        let mut items = Vec::with_capacity(chunk);
        loop {
            let row = rows.next().map_err(database_error)?;
            let done = row.is_none();
            if let Some(row) = row {
                items.push(decode(&Row(row))?);
            }
            if items.len() == chunk || (done && !items.is_empty()) {
                let full = std::mem::replace(&mut items, Vec::with_capacity(chunk));
                each(&mut other, full)?;
            }
            if done {
                return Ok(());
            }
        }
    }
}
