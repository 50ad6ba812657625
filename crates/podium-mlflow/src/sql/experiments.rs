//! Experiments on MLflow's schema: lookups by id, name and name prefix, and the writes the
//! claims protocol is built on (create with tags in one transaction, tag, rename, delete).

use std::collections::BTreeMap;

use super::{Backend, Schema, SqlConn, SqlError, SqlValue, now_ms};
use crate::error::MlflowError;
use crate::model::Experiment;

/// How an experiment is looked up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ExperimentKey<'a> {
    /// By id (the decimal string MLflow hands out).
    Id(&'a str),
    /// By exact name (in the default workspace where the schema has workspaces).
    Name(&'a str),
}

/// The numeric id of `experiment_id`, or NotFound: a string that is no id of this database's
/// integer column names no experiment in it.
pub(crate) fn id_number(schema: &Schema, experiment_id: &str) -> Result<i64, MlflowError> {
    let number: i64 = experiment_id
        .trim()
        .parse()
        .map_err(|_| schema.not_found("experiment", experiment_id))?;
    // PostgreSQL's column is a 32-bit INTEGER.
    if schema.backend == Backend::Postgres && i32::try_from(number).is_err() {
        return Err(schema.not_found("experiment", experiment_id));
    }
    Ok(number)
}

/// The experiment `key` names, with its tags; None when there is none.
pub(crate) fn load(
    conn: &mut impl SqlConn,
    schema: &Schema,
    key: ExperimentKey<'_>,
) -> Result<Option<Experiment>, MlflowError> {
    let (condition, value) = match key {
        ExperimentKey::Id(id) => match id_number(schema, id) {
            Ok(number) => ("experiment_id = ?", SqlValue::Integer(number)),
            Err(_) => return Ok(None),
        },
        ExperimentKey::Name(name) => ("name = ?", SqlValue::Text(name.to_string())),
    };
    let workspace = if schema.has_workspace && matches!(key, ExperimentKey::Name(_)) {
        " AND workspace = 'default'"
    } else {
        ""
    };
    let sql = format!(
        "SELECT experiment_id, name, artifact_location, lifecycle_stage FROM experiments \
         WHERE {condition}{workspace}"
    );
    let mut found: Option<(i64, Experiment)> = None;
    conn.query(&sql, &[value], &mut |row| {
        let read = |row: &dyn super::SqlRow| -> Result<(i64, Experiment), String> {
            let id = row.int(0)?.ok_or("experiment without id")?;
            Ok((
                id,
                Experiment {
                    experiment_id: id.to_string(),
                    name: row.text(1)?.unwrap_or_default().to_string(),
                    artifact_location: row.text(2)?.unwrap_or_default().to_string(),
                    lifecycle_stage: row.text(3)?.unwrap_or("active").to_string(),
                    tags: BTreeMap::new(),
                },
            ))
        };
        found = Some(read(row).map_err(|err| schema.error("reading experiments", err))?);
        Ok(())
    })
    .map_err(|err| schema.fail("reading experiments", err))?;
    let Some((id, mut experiment)) = found else {
        return Ok(None);
    };
    conn.query(
        "SELECT key, value FROM experiment_tags WHERE experiment_id = ?",
        &[SqlValue::Integer(id)],
        &mut |row| {
            let key = row
                .text(0)
                .map_err(|e| schema.error("reading experiment tags", e))?;
            let value = row
                .text(1)
                .map_err(|e| schema.error("reading experiment tags", e))?;
            if let Some(key) = key {
                experiment
                    .tags
                    .insert(key.to_string(), value.unwrap_or_default().to_string());
            }
            Ok(())
        },
    )
    .map_err(|err| schema.fail("reading experiment tags", err))?;
    Ok(Some(experiment))
}

/// The experiment with this id, or NotFound.
pub(crate) fn require(
    conn: &mut impl SqlConn,
    schema: &Schema,
    experiment_id: &str,
) -> Result<Experiment, MlflowError> {
    load(conn, schema, ExperimentKey::Id(experiment_id))?
        .ok_or_else(|| schema.not_found("experiment", experiment_id))
}

/// Active experiments named `prefix…`, sorted by name. The prefix is compared as text
/// (`substr`), never as a LIKE pattern, so `_` and `%` in names match only themselves.
pub(crate) fn with_prefix(
    conn: &mut impl SqlConn,
    schema: &Schema,
    prefix: &str,
) -> Result<Vec<Experiment>, MlflowError> {
    let workspace = if schema.has_workspace {
        " AND workspace = 'default'"
    } else {
        ""
    };
    let sql = format!(
        "SELECT experiment_id FROM experiments WHERE lifecycle_stage = 'active' \
         AND substr(name, 1, length(CAST(? AS TEXT))) = CAST(? AS TEXT){workspace}"
    );
    let mut ids = Vec::new();
    let prefix_value = SqlValue::Text(prefix.to_string());
    conn.query(&sql, &[prefix_value.clone(), prefix_value], &mut |row| {
        match row.int(0) {
            Ok(Some(id)) => ids.push(id.to_string()),
            Ok(None) => {}
            Err(err) => return Err(schema.error("listing experiments by name prefix", err)),
        }
        Ok(())
    })
    .map_err(|err| schema.fail("listing experiments by name prefix", err))?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(experiment) = load(conn, schema, ExperimentKey::Id(&id))? {
            found.push(experiment);
        }
    }
    // Databases order by their collation; the contract is Rust's string order.
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Sets (or overwrites) an experiment tag, without checks.
fn upsert_tag(
    conn: &mut impl SqlConn,
    schema: &Schema,
    experiment_id: i64,
    key: &str,
    value: &str,
) -> Result<(), MlflowError> {
    conn.execute(
        "INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?) \
         ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
        &[
            SqlValue::Text(key.to_string()),
            SqlValue::Text(value.to_string()),
            SqlValue::Integer(experiment_id),
        ],
    )
    .map_err(|err| schema.fail(&format!("tagging experiment {experiment_id}"), err))?;
    Ok(())
}

/// Creates an active experiment carrying `tags`, inside the caller's transaction (so nobody
/// sees it untagged); [`MlflowError::AlreadyExists`] when the name is taken by any experiment,
/// deleted ones included.
pub(crate) fn create(
    conn: &mut impl SqlConn,
    schema: &Schema,
    name: &str,
    tags: &[(&str, &str)],
) -> Result<String, MlflowError> {
    if name.trim().is_empty() {
        return Err(MlflowError::InvalidQuery(
            "an experiment name must not be empty".to_string(),
        ));
    }
    let now = SqlValue::Integer(now_ms());
    let (columns, values) = if schema.has_workspace {
        (", workspace", ", 'default'")
    } else {
        ("", "")
    };
    let sql = format!(
        "INSERT INTO experiments (name, lifecycle_stage, creation_time, last_update_time{columns}) \
         VALUES (?, 'active', ?, ?{values}) RETURNING experiment_id"
    );
    let mut id = None;
    let inserted = conn.query(
        &sql,
        &[SqlValue::Text(name.to_string()), now.clone(), now],
        &mut |row| {
            id = row
                .int(0)
                .map_err(|err| schema.error(&format!("creating experiment {name:?}"), err))?;
            Ok(())
        },
    );
    match inserted {
        Ok(()) => {}
        Err(SqlError::Database {
            unique_violation: true,
            ..
        }) => return Err(schema.name_taken(name)),
        Err(err) => return Err(schema.fail(&format!("creating experiment {name:?}"), err)),
    }
    let id = id.ok_or_else(|| {
        schema.error(
            &format!("creating experiment {name:?}"),
            "the database returned no id",
        )
    })?;
    let location = format!("{}/{id}", schema.default_artifact_root);
    conn.execute(
        "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
        &[SqlValue::Text(location), SqlValue::Integer(id)],
    )
    .map_err(|err| schema.fail(&format!("creating experiment {name:?}"), err))?;
    for (key, value) in tags {
        upsert_tag(conn, schema, id, key, value)?;
    }
    Ok(id.to_string())
}

/// The active experiment with this id; NotFound, or InvalidState with `refusal` when deleted.
fn require_active(
    conn: &mut impl SqlConn,
    schema: &Schema,
    experiment_id: &str,
    refusal: &str,
) -> Result<i64, MlflowError> {
    let experiment = require(conn, schema, experiment_id)?;
    if !experiment.is_active() {
        return Err(schema.invalid_state("experiment", experiment_id, refusal));
    }
    id_number(schema, &experiment.experiment_id)
}

/// Sets (or overwrites) one tag of an active experiment.
pub(crate) fn set_tag(
    conn: &mut impl SqlConn,
    schema: &Schema,
    experiment_id: &str,
    key: &str,
    value: &str,
) -> Result<(), MlflowError> {
    let id = require_active(
        conn,
        schema,
        experiment_id,
        "the experiment is deleted; MLflow refuses to tag it",
    )?;
    upsert_tag(conn, schema, id, key, value)
}

/// Renames an active experiment; AlreadyExists when the name is taken.
pub(crate) fn rename(
    conn: &mut impl SqlConn,
    schema: &Schema,
    experiment_id: &str,
    new_name: &str,
) -> Result<(), MlflowError> {
    if new_name.trim().is_empty() {
        return Err(MlflowError::InvalidQuery(
            "an experiment name must not be empty".to_string(),
        ));
    }
    let id = require_active(
        conn,
        schema,
        experiment_id,
        "cannot rename a non-active experiment",
    )?;
    match conn.execute(
        "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
        &[
            SqlValue::Text(new_name.to_string()),
            SqlValue::Integer(now_ms()),
            SqlValue::Integer(id),
        ],
    ) {
        Ok(_) => Ok(()),
        Err(SqlError::Database {
            unique_violation: true,
            ..
        }) => Err(schema.name_taken(new_name)),
        Err(err) => Err(schema.fail(&format!("renaming experiment {experiment_id}"), err)),
    }
}

/// Marks an active experiment and its active runs deleted, as MLflow does.
pub(crate) fn delete(
    conn: &mut impl SqlConn,
    schema: &Schema,
    experiment_id: &str,
) -> Result<(), MlflowError> {
    let experiment = require(conn, schema, experiment_id)?;
    if !experiment.is_active() {
        return Err(schema.not_found("active experiment", experiment_id));
    }
    let id = SqlValue::Integer(id_number(schema, &experiment.experiment_id)?);
    let now = SqlValue::Integer(now_ms());
    let context = format!("deleting experiment {experiment_id}");
    conn.execute(
        "UPDATE experiments SET lifecycle_stage = 'deleted', last_update_time = ? \
         WHERE experiment_id = ?",
        &[now.clone(), id.clone()],
    )
    .map_err(|err| schema.fail(&context, err))?;
    conn.execute(
        "UPDATE runs SET lifecycle_stage = 'deleted', deleted_time = ? \
         WHERE experiment_id = ? AND lifecycle_stage = 'active'",
        &[now, id],
    )
    .map_err(|err| schema.fail(&context, err))?;
    Ok(())
}
