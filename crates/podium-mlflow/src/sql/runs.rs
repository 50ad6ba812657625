//! Runs on MLflow's schema: the statements of a search (the runs a filter selects, then the
//! tags, params and latest metrics of a page or chunk of them in one statement), the assembly
//! of their rows into [`Run`]s, and the writes (runs, tags, params, metrics) as MLflow's
//! SQLAlchemy store lays them out.

use std::collections::{BTreeMap, HashMap};

use super::experiments::{self, ExperimentKey};
use super::{
    Backend, PageTimes, RUN_NAME_TAG, Schema, SqlConn, SqlRow, SqlValue, encode_page_token, filter,
    new_run_id, read_metric, sanitize_metric, stages,
};
use crate::error::MlflowError;
use crate::model::{KeySelection, MetricPoint, Run, RunFields, RunInfo, RunStatus, RunsPage};
use crate::request::SearchRequest;
use crate::store::ExperimentGuard;

/// Runs per statement of run data when a search is streamed
/// ([`crate::TrackingStore::search_runs_each`]): large enough that the data statement's fixed
/// cost vanishes, small enough that a chunk's runs are a few hundred KiB.
pub(crate) const STREAM_CHUNK: usize = 1024;

/// The columns of a run's info, in the order [`run_info_from_row`] reads them.
const RUN_COLUMNS: &str = "r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, \
                           r.end_time, r.artifact_uri, r.lifecycle_stage";

/// The parts of the statement that selects the runs of a request: `FROM … WHERE …` (with the
/// order's joins), the order, and the parameters up to and including LIMIT and OFFSET.
struct RunsStatement {
    from_where: String,
    order: filter::SqlOrder,
    values: Vec<SqlValue>,
}

/// The statement parts of the runs of `request` from `offset`: `limit` runs plus one (telling
/// whether another page follows, as MLflow does), or all of them; None when no experiment id
/// can match.
fn runs_statement(
    backend: Backend,
    request: &SearchRequest,
    limit: Option<usize>,
    offset: usize,
) -> Result<Option<RunsStatement>, MlflowError> {
    let SearchRequest {
        experiment_ids,
        filter,
        view,
        order_by,
        ..
    } = request;
    let parsed = filter::parse_filter(backend, filter)?;
    let mut order = filter::parse_order_by(order_by)?;
    let mut experiments = Vec::with_capacity(experiment_ids.len());
    for id in experiment_ids {
        // A non-numeric id names no experiment in this database (nor, on PostgreSQL, one
        // beyond its 32-bit column).
        let number = id
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|number| backend == Backend::Sqlite || i32::try_from(*number).is_ok());
        if let Some(number) = number {
            experiments.push(SqlValue::Integer(number));
        }
    }
    if experiments.is_empty() {
        return Ok(None);
    }
    let stage_values = stages(*view);
    let mut from_where = String::from("FROM runs r");
    for join in &order.joins {
        from_where.push(' ');
        from_where.push_str(join);
    }
    from_where.push_str(&format!(
        " WHERE r.experiment_id IN ({}) AND r.lifecycle_stage IN ({})",
        vec!["?"; experiments.len()].join(", "),
        vec!["?"; stage_values.len()].join(", ")
    ));
    for clause in &parsed.clauses {
        from_where.push_str(" AND ");
        from_where.push_str(clause);
    }
    let mut values: Vec<SqlValue> = std::mem::take(&mut order.join_params);
    values.extend(experiments);
    values.extend(
        stage_values
            .iter()
            .map(|stage| SqlValue::Text((*stage).to_string())),
    );
    values.extend(parsed.params);
    let limit = limit.map(|limit| i64::try_from(limit + 1).unwrap_or(i64::MAX));
    values.push(match (limit, backend) {
        (Some(limit), _) => SqlValue::Integer(limit),
        // SQLite reads a negative LIMIT as none, PostgreSQL a NULL one.
        (None, Backend::Sqlite) => SqlValue::Integer(-1),
        (None, Backend::Postgres) => SqlValue::Null,
    });
    values.push(SqlValue::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    Ok(Some(RunsStatement {
        from_where,
        order,
        values,
    }))
}

/// The statement of the runs of `request` from `offset`: `limit` runs plus one (telling whether
/// another page follows, as MLflow does), or all of them; None when no experiment id can match.
pub(crate) fn runs_query(
    backend: Backend,
    request: &SearchRequest,
    limit: Option<usize>,
    offset: usize,
) -> Result<Option<(String, Vec<SqlValue>)>, MlflowError> {
    let Some(statement) = runs_statement(backend, request, limit, offset)? else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {RUN_COLUMNS} {} ORDER BY {} LIMIT ? OFFSET ?",
        statement.from_where,
        statement.order.terms()
    );
    Ok(Some((sql, statement.values)))
}

/// PostgreSQL: the runs of `request` from `offset` (`limit` plus one, or all), each with the
/// tags, params and latest metrics `request.fields` selects as arrays, in one statement: one row
/// per run, in the request's order. The runs are selected, ordered and cut in a subquery (its
/// order keys carried out as columns `k0`, `k1`, … so the outer order is the subquery's and
/// needs no second sort); each run's data is read after the cut by lateral subqueries on the
/// `run_uuid` indexes (the key condition is written `key || ''` so the planner does not probe
/// the `(key, run_uuid)` primary key once per key and run instead, which measured several times
/// slower). Columns: the run's eight, then tag keys and values, param keys and values, metric
/// keys, values and `is_nan` flags (NULL arrays for a kind not selected or with no entry).
pub(crate) fn runs_with_data_query(
    request: &SearchRequest,
    limit: Option<usize>,
    offset: usize,
) -> Result<Option<(String, Vec<SqlValue>)>, MlflowError> {
    let Some(statement) = runs_statement(Backend::Postgres, request, limit, offset)? else {
        return Ok(None);
    };
    let RunsStatement {
        from_where,
        order,
        mut values,
    } = statement;
    let key_columns: String = order
        .keys
        .iter()
        .enumerate()
        .map(|(index, (expression, _))| format!(", {expression} AS k{index}"))
        .collect();
    let key_order = |prefix: &str| {
        order
            .keys
            .iter()
            .enumerate()
            .map(|(index, (_, direction))| format!("{prefix}k{index} {direction}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut sql = format!(
        "SELECT p.run_uuid, p.experiment_id, p.name, p.status, p.start_time, p.end_time, \
         p.artifact_uri, p.lifecycle_stage, tg.keys, tg.vals, pm.keys, pm.vals, mt.keys, \
         mt.vals, mt.nans FROM (SELECT {RUN_COLUMNS}{key_columns} {from_where} ORDER BY {} \
         LIMIT ? OFFSET ?) p",
        key_order("")
    );
    let fields = &request.fields;
    for (alias, table, aggregates, nulls, selection) in [
        (
            "tg",
            "tags",
            "array_agg(t.key) AS keys, array_agg(t.value) AS vals",
            "NULL::text[] AS keys, NULL::text[] AS vals",
            &fields.tags,
        ),
        (
            "pm",
            "params",
            "array_agg(t.key) AS keys, array_agg(t.value) AS vals",
            "NULL::text[] AS keys, NULL::text[] AS vals",
            &fields.params,
        ),
        (
            "mt",
            "latest_metrics",
            "array_agg(t.key) AS keys, array_agg(t.value) AS vals, array_agg(t.is_nan) AS nans",
            "NULL::text[] AS keys, NULL::float8[] AS vals, NULL::boolean[] AS nans",
            &fields.metrics,
        ),
    ] {
        let lateral = match selection {
            KeySelection::Only(keys) if keys.is_empty() => format!("SELECT {nulls}"),
            KeySelection::Only(keys) => {
                values.push(SqlValue::TextList(keys.iter().cloned().collect()));
                format!(
                    "SELECT {aggregates} FROM {table} t WHERE t.run_uuid = p.run_uuid \
                     AND (t.key || '') = ANY(?)"
                )
            }
            KeySelection::All => {
                format!("SELECT {aggregates} FROM {table} t WHERE t.run_uuid = p.run_uuid")
            }
        };
        sql.push_str(&format!(" LEFT JOIN LATERAL ({lateral}) {alias} ON true"));
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(&key_order("p."));
    Ok(Some((sql, values)))
}

/// A run with its data from a row of [`runs_with_data_query`].
fn run_with_data_from_row(row: &dyn SqlRow) -> Result<Run, String> {
    fn entries<V: Default>(
        keys: Option<Vec<Option<&str>>>,
        values: Option<Vec<Option<V>>>,
        mut insert: impl FnMut(String, V, usize),
    ) -> Result<(), String> {
        let keys = keys.unwrap_or_default();
        let values = values.unwrap_or_default();
        if keys.len() != values.len() {
            return Err(format!(
                "{} keys but {} values in one run's entries",
                keys.len(),
                values.len()
            ));
        }
        for (index, (key, value)) in keys.into_iter().zip(values).enumerate() {
            if let Some(key) = key {
                insert(key.to_string(), value.unwrap_or_default(), index);
            }
        }
        Ok(())
    }
    let mut run = Run {
        info: run_info_from_row(row)?,
        tags: BTreeMap::new(),
        params: BTreeMap::new(),
        metrics: BTreeMap::new(),
    };
    entries(row.texts(8)?, row.texts(9)?, |key, value: &str, _| {
        run.tags.insert(key, value.to_string());
    })?;
    entries(row.texts(10)?, row.texts(11)?, |key, value: &str, _| {
        run.params.insert(key, value.to_string());
    })?;
    let nans = row.flags(14)?.unwrap_or_default();
    entries(row.texts(12)?, row.reals(13)?, |key, value: f64, index| {
        let is_nan = nans.get(index).copied().flatten().unwrap_or(false);
        run.metrics.insert(key, read_metric(value, is_nan));
    })?;
    Ok(run)
}

/// The one statement that reads the tags, params and latest metrics of a page's runs, with
/// the columns (kind 0/1/2, run id, key, text value, metric value, is_nan), restricted to the
/// keys `fields` selects; None when it selects nothing at all.
pub(crate) fn run_data_query(
    backend: Backend,
    ids: Vec<String>,
    fields: &RunFields,
) -> Option<(String, Vec<SqlValue>)> {
    let ids = SqlValue::TextList(ids);
    let mut values = Vec::with_capacity(4);
    let mut selects = Vec::with_capacity(3);
    let kinds = [
        (0, "t.value, NULL, NULL", "tags t", &fields.tags),
        (1, "t.value, NULL, NULL", "params t", &fields.params),
        (
            2,
            "NULL, t.value, t.is_nan",
            "latest_metrics t",
            &fields.metrics,
        ),
    ];
    for (kind, columns, table, selection) in kinds {
        let keys = match selection {
            KeySelection::All => None,
            KeySelection::Only(keys) if keys.is_empty() => continue,
            KeySelection::Only(keys) => Some(SqlValue::TextList(keys.iter().cloned().collect())),
        };
        let select = match backend {
            Backend::Sqlite => {
                // The ids are bound once, as a JSON array read by the `page` table below.
                let mut select = format!(
                    "SELECT {kind}, t.run_uuid, t.key, {columns} FROM {table} \
                     WHERE t.run_uuid IN (SELECT id FROM page)"
                );
                if let Some(keys) = keys {
                    values.push(keys);
                    // The unary `+` keeps SQLite on the run_uuid index: probing the
                    // (key, run_uuid) primary key once per key and run measured twice as slow
                    // as reading each run's few rows and filtering them here.
                    select.push_str(" AND +t.key IN (SELECT value FROM json_each(?))");
                }
                select
            }
            Backend::Postgres => {
                // Typed NULLs: the UNION's columns must agree whichever branches are read.
                let columns = columns
                    .replacen("NULL, NULL", "NULL::float8, NULL::boolean", 1)
                    .replacen("NULL, t.value", "NULL::text, t.value", 1);
                values.push(ids.clone());
                let mut select = format!(
                    "SELECT {kind}, t.run_uuid, t.key, {columns} FROM {table} \
                     WHERE t.run_uuid = ANY(?)"
                );
                if let Some(keys) = keys {
                    values.push(keys);
                    select.push_str(" AND t.key = ANY(?)");
                }
                select
            }
        };
        selects.push(select);
    }
    if selects.is_empty() {
        return None;
    }
    let sql = match backend {
        Backend::Sqlite => {
            values.insert(0, ids);
            format!(
                "WITH page(id) AS (SELECT value FROM json_each(?)) {}",
                selects.join(" UNION ALL ")
            )
        }
        Backend::Postgres => selects.join(" UNION ALL "),
    };
    Some((sql, values))
}

/// A run's info from a row of [`RUN_COLUMNS`].
pub(crate) fn run_info_from_row(row: &dyn SqlRow) -> Result<RunInfo, String> {
    let status = row
        .text(3)?
        .and_then(RunStatus::parse)
        .unwrap_or(RunStatus::Running);
    Ok(RunInfo {
        run_id: row.text(0)?.unwrap_or_default().to_string(),
        experiment_id: row.int(1)?.map(|id| id.to_string()).unwrap_or_default(),
        run_name: row.text(2)?.unwrap_or_default().to_string(),
        status,
        start_time: row.int(4)?,
        end_time: row.int(5)?,
        artifact_uri: row.text(6)?.unwrap_or_default().to_string(),
        lifecycle_stage: row.text(7)?.unwrap_or("active").to_string(),
    })
}

/// Tags, params and latest metrics of the given runs, in one statement; only the keys `fields`
/// selects are read (a kind selecting nothing is not queried at all).
pub(crate) fn load_run_data(
    conn: &mut impl SqlConn,
    schema: &Schema,
    runs: Vec<RunInfo>,
    fields: &RunFields,
    times: &mut PageTimes,
) -> Result<Vec<Run>, MlflowError> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = runs.iter().map(|run| run.run_id.clone()).collect();
    let mut index: HashMap<String, usize> = HashMap::with_capacity(runs.len());
    let mut out: Vec<Run> = runs
        .into_iter()
        .enumerate()
        .map(|(position, info)| {
            index.insert(info.run_id.clone(), position);
            Run {
                info,
                tags: BTreeMap::new(),
                params: BTreeMap::new(),
                metrics: BTreeMap::new(),
            }
        })
        .collect();
    let Some((sql, values)) = run_data_query(schema.backend, ids, fields) else {
        return Ok(out);
    };
    // Building the runs' skeletons was parsing.
    times.parsed();
    let context = "reading run data";
    conn.query(&sql, &values, &mut |row| {
        times.stepped();
        // The run id is only looked up, so it is borrowed from the row, not copied.
        let position = row
            .text(1)
            .map_err(|err| schema.error(context, err))?
            .and_then(|id| index.get(id).copied());
        if let Some(position) = position {
            let read = || -> Result<_, String> {
                Ok((
                    row.int(0)?.unwrap_or(-1),
                    row.text(2)?.unwrap_or_default().to_string(),
                    row.text(3)?,
                    row.real(4)?,
                    row.flag(5)?,
                ))
            };
            let (kind, key, text, number, is_nan) =
                read().map_err(|err| schema.error(context, err))?;
            let run = &mut out[position];
            match kind {
                0 => {
                    run.tags.insert(key, text.unwrap_or_default().to_string());
                }
                1 => {
                    run.params.insert(key, text.unwrap_or_default().to_string());
                }
                _ => {
                    let value = read_metric(number.unwrap_or(0.0), is_nan.unwrap_or(false));
                    run.metrics.insert(key, value);
                }
            }
            times.count_row();
        }
        times.parsed();
        Ok(())
    })
    .map_err(|err| schema.fail(context, err))?;
    times.stepped();
    Ok(out)
}

/// One page of `request` from `offset`, with the page token of the next one.
pub(crate) fn search_page(
    conn: &mut impl SqlConn,
    schema: &Schema,
    request: &SearchRequest,
    offset: usize,
) -> Result<RunsPage, MlflowError> {
    let max_results = request.max_results;
    if schema.backend == Backend::Postgres {
        return search_page_with_data(conn, schema, request, offset);
    }
    let Some((sql, values)) = runs_query(schema.backend, request, Some(max_results), offset)?
    else {
        return Ok(RunsPage::default());
    };
    let mut times = PageTimes::started();
    let mut infos = Vec::new();
    conn.query(&sql, &values, &mut |row| {
        infos.push(run_info_from_row(row).map_err(|err| schema.error("searching runs", err))?);
        Ok(())
    })
    .map_err(|err| schema.fail("searching runs", err))?;
    // The run rows are few and small: their decoding counts as the statement's time.
    times.stepped();
    let next_page_token = cut_page(&mut infos, max_results, offset);
    let runs = load_run_data(conn, schema, infos, &request.fields, &mut times)?;
    times.record(runs.len());
    Ok(RunsPage {
        runs,
        next_page_token,
    })
}

/// Cuts a page read with one row too many (as MLflow reads them) to `max_results`; the token
/// of the next page when there was one more.
fn cut_page<T>(items: &mut Vec<T>, max_results: usize, offset: usize) -> Option<String> {
    (items.len() > max_results).then(|| {
        items.truncate(max_results);
        encode_page_token(offset + max_results)
    })
}

/// [`search_page`] on PostgreSQL: one statement, the runs with their data
/// ([`runs_with_data_query`]).
fn search_page_with_data(
    conn: &mut impl SqlConn,
    schema: &Schema,
    request: &SearchRequest,
    offset: usize,
) -> Result<RunsPage, MlflowError> {
    let max_results = request.max_results;
    let Some((sql, values)) = runs_with_data_query(request, Some(max_results), offset)? else {
        return Ok(RunsPage::default());
    };
    let mut times = PageTimes::started();
    let mut runs = Vec::new();
    conn.query(&sql, &values, &mut |row| {
        times.stepped();
        let run = decode_run_with_data(schema, row, &mut times)?;
        runs.push(run);
        times.parsed();
        Ok(())
    })
    .map_err(|err| schema.fail("searching runs", err))?;
    times.stepped();
    let next_page_token = cut_page(&mut runs, max_results, offset);
    times.record(runs.len());
    Ok(RunsPage {
        runs,
        next_page_token,
    })
}

/// A run with its data, its entries counted for `--profile`.
fn decode_run_with_data(
    schema: &Schema,
    row: &dyn SqlRow,
    times: &mut PageTimes,
) -> Result<Run, MlflowError> {
    let run = run_with_data_from_row(row).map_err(|err| schema.error("searching runs", err))?;
    for _ in 0..run.tags.len() + run.params.len() + run.metrics.len() {
        times.count_row();
    }
    Ok(run)
}

/// Every run of `request` from `offset` on, in one statement read [`STREAM_CHUNK`] runs at a
/// time (one snapshot, one filter pass, at most a chunk of runs held): on SQLite each chunk's
/// data is read by a second statement while the first stays open; on PostgreSQL the statement
/// carries the data ([`runs_with_data_query`]) and is read through a portal.
pub(crate) fn stream_runs(
    conn: &mut impl SqlConn,
    schema: &Schema,
    request: &SearchRequest,
    offset: usize,
    visit: &mut dyn FnMut(Run),
) -> Result<usize, MlflowError> {
    let chunk = STREAM_CHUNK.min(request.max_results).max(1);
    if schema.backend == Backend::Postgres {
        let Some((sql, values)) = runs_with_data_query(request, None, offset)? else {
            return Ok(0);
        };
        // Both closures mark the page's clock: it is shared through a cell.
        let times = std::cell::RefCell::new(PageTimes::started());
        let mut count = 0;
        conn.query_chunked(
            &sql,
            &values,
            chunk,
            |row| {
                let mut times = times.borrow_mut();
                times.stepped();
                let run = decode_run_with_data(schema, row, &mut times)?;
                times.parsed();
                Ok(run)
            },
            |_, runs| {
                let mut times = times.borrow_mut();
                times.stepped();
                times.record(runs.len());
                count += runs.len();
                runs.into_iter().for_each(&mut *visit);
                *times = PageTimes::started();
                Ok(())
            },
        )
        .map_err(|err| schema.fail("searching runs", err))?;
        return Ok(count);
    }
    let Some((sql, values)) = runs_query(schema.backend, request, None, offset)? else {
        return Ok(0);
    };
    let mut times = PageTimes::started();
    let mut count = 0;
    conn.query_chunked(
        &sql,
        &values,
        chunk,
        |row| run_info_from_row(row).map_err(|err| schema.error("searching runs", err)),
        |conn, infos| {
            times.stepped();
            let runs = load_run_data(conn, schema, infos, &request.fields, &mut times)?;
            times.record(runs.len());
            count += runs.len();
            runs.into_iter().for_each(&mut *visit);
            times = PageTimes::started();
            Ok(())
        },
    )
    .map_err(|err| schema.fail("searching runs", err))?;
    Ok(count)
}

/// One run with all its data, or NotFound.
pub(crate) fn get_run(
    conn: &mut impl SqlConn,
    schema: &Schema,
    run_id: &str,
) -> Result<Run, MlflowError> {
    let context = format!("reading run {run_id}");
    let mut info = None;
    conn.query(
        &format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.run_uuid = ?"),
        &[SqlValue::Text(run_id.to_string())],
        &mut |row| {
            info = Some(run_info_from_row(row).map_err(|err| schema.error(&context, err))?);
            Ok(())
        },
    )
    .map_err(|err| schema.fail(&context, err))?;
    let info = info.ok_or_else(|| schema.not_found("run", run_id))?;
    load_run_data(
        conn,
        schema,
        vec![info],
        &RunFields::all(),
        &mut PageTimes::new(),
    )?
    .pop()
    .ok_or_else(|| schema.not_found("run", run_id))
}

/// Fails unless the run exists and is active (MLflow refuses writes to deleted runs).
pub(crate) fn require_active_run(
    conn: &mut impl SqlConn,
    schema: &Schema,
    run_id: &str,
) -> Result<(), MlflowError> {
    let mut stage: Option<Option<String>> = None;
    conn.query(
        "SELECT lifecycle_stage FROM runs WHERE run_uuid = ?",
        &[SqlValue::Text(run_id.to_string())],
        &mut |row| {
            let text = row
                .text(0)
                .map_err(|err| schema.error("reading runs", err))?;
            stage = Some(text.map(str::to_string));
            Ok(())
        },
    )
    .map_err(|err| schema.fail("reading runs", err))?;
    match stage {
        None => Err(schema.not_found("run", run_id)),
        Some(Some(stage)) if stage != "active" => Err(schema.invalid_state(
            "run",
            run_id,
            "the run is deleted; MLflow refuses to change it",
        )),
        Some(_) => Ok(()),
    }
}

/// Creates a RUNNING run with its tags, as MLflow's store does: the `mlflow.runName` tag wins
/// over `run_name`, a run always has a name (and that tag), the user comes from `mlflow.user`,
/// artifacts go under the experiment's location.
pub(crate) fn create_run(
    conn: &mut impl SqlConn,
    schema: &Schema,
    experiment_id: &str,
    run_name: &str,
    start_time_ms: i64,
    tags: &BTreeMap<String, String>,
) -> Result<RunInfo, MlflowError> {
    let experiment = experiments::require(conn, schema, experiment_id)?;
    if !experiment.is_active() {
        return Err(schema.invalid_state(
            "experiment",
            experiment_id,
            "could not create a run under a non-active experiment",
        ));
    }
    let experiment_number = experiments::id_number(schema, &experiment.experiment_id)?;
    let run_id = new_run_id();
    let name = tags
        .get(RUN_NAME_TAG)
        .cloned()
        .filter(|name| !name.is_empty())
        .or_else(|| (!run_name.is_empty()).then(|| run_name.to_string()))
        .unwrap_or_else(|| format!("run-{}", &run_id[..8]));
    let user = tags
        .get("mlflow.user")
        .cloned()
        .unwrap_or_else(|| "unknown".to_string());
    let artifact_uri = format!("{}/{run_id}/artifacts", experiment.artifact_location);
    conn.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, \
         user_id, status, start_time, end_time, source_version, lifecycle_stage, \
         artifact_uri, experiment_id, deleted_time) \
         VALUES (?, ?, 'UNKNOWN', '', '', ?, 'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)",
        &[
            SqlValue::Text(run_id.clone()),
            SqlValue::Text(name.clone()),
            SqlValue::Text(user),
            SqlValue::Integer(start_time_ms),
            SqlValue::Text(artifact_uri.clone()),
            SqlValue::Integer(experiment_number),
        ],
    )
    .map_err(|err| schema.fail("creating a run", err))?;
    for (key, value) in tags {
        insert_tag(conn, schema, &run_id, key, value)?;
    }
    if !tags.contains_key(RUN_NAME_TAG) {
        insert_tag(conn, schema, &run_id, RUN_NAME_TAG, &name)?;
    }
    Ok(RunInfo {
        run_id,
        experiment_id: experiment.experiment_id,
        run_name: name,
        status: RunStatus::Running,
        start_time: Some(start_time_ms),
        end_time: None,
        artifact_uri,
        lifecycle_stage: "active".to_string(),
    })
}

/// Sets an active run's status (and end time, when given).
pub(crate) fn update_run(
    conn: &mut impl SqlConn,
    schema: &Schema,
    run_id: &str,
    status: RunStatus,
    end_time_ms: Option<i64>,
) -> Result<(), MlflowError> {
    require_active_run(conn, schema, run_id)?;
    conn.execute(
        "UPDATE runs SET status = ?, end_time = COALESCE(?, end_time) WHERE run_uuid = ?",
        &[
            SqlValue::Text(status.as_str().to_string()),
            end_time_ms.map_or(SqlValue::Null, SqlValue::Integer),
            SqlValue::Text(run_id.to_string()),
        ],
    )
    .map_err(|err| schema.fail(&format!("updating run {run_id}"), err))?;
    Ok(())
}

/// [`update_run`] only while `guard` holds, in the caller's transaction; false (nothing
/// written) when it does not. PostgreSQL locks the guard experiment's row first, so a
/// concurrent rename of it (a takeover) waits for this transaction or went before it; SQLite's
/// write transaction already excludes every other writer.
pub(crate) fn update_run_guarded(
    conn: &mut impl SqlConn,
    schema: &Schema,
    run_id: &str,
    status: RunStatus,
    end_time_ms: Option<i64>,
    guard: &ExperimentGuard<'_>,
) -> Result<bool, MlflowError> {
    if schema.backend == Backend::Postgres {
        let Ok(id) = experiments::id_number(schema, guard.experiment_id) else {
            return Ok(false);
        };
        conn.query(
            "SELECT experiment_id FROM experiments WHERE experiment_id = ? FOR UPDATE",
            &[SqlValue::Integer(id)],
            &mut |_| Ok(()),
        )
        .map_err(|err| schema.fail(&format!("locking experiment {id}"), err))?;
    }
    let holds = experiments::load(conn, schema, ExperimentKey::Id(guard.experiment_id))?
        .is_some_and(|experiment| guard.holds_for(&experiment));
    if holds {
        update_run(conn, schema, run_id, status, end_time_ms)?;
    }
    Ok(holds)
}

/// Sets (or overwrites) a run tag; `mlflow.runName` also renames the run.
pub(crate) fn insert_tag(
    conn: &mut impl SqlConn,
    schema: &Schema,
    run_id: &str,
    key: &str,
    value: &str,
) -> Result<(), MlflowError> {
    conn.execute(
        "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) \
         ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
        &[
            SqlValue::Text(key.to_string()),
            SqlValue::Text(value.to_string()),
            SqlValue::Text(run_id.to_string()),
        ],
    )
    .map_err(|err| schema.fail(&format!("setting tag {key:?} of run {run_id}"), err))?;
    if key == RUN_NAME_TAG {
        conn.execute(
            "UPDATE runs SET name = ? WHERE run_uuid = ?",
            &[
                SqlValue::Text(value.to_string()),
                SqlValue::Text(run_id.to_string()),
            ],
        )
        .map_err(|err| schema.fail(&format!("renaming run {run_id}"), err))?;
    }
    Ok(())
}

/// Logs a param; the same value again is fine, another is [`MlflowError::ParamConflict`]
/// (MLflow's params are immutable).
fn insert_param(
    conn: &mut impl SqlConn,
    schema: &Schema,
    run_id: &str,
    key: &str,
    value: &str,
) -> Result<(), MlflowError> {
    let context = format!("logging param {key:?} of run {run_id}");
    let mut existing: Option<String> = None;
    conn.query(
        "SELECT value FROM params WHERE run_uuid = ? AND key = ?",
        &[
            SqlValue::Text(run_id.to_string()),
            SqlValue::Text(key.to_string()),
        ],
        &mut |row| {
            existing = row
                .text(0)
                .map_err(|err| schema.error(&context, err))?
                .map(str::to_string);
            Ok(())
        },
    )
    .map_err(|err| schema.fail(&context, err))?;
    match existing {
        Some(existing) if existing == value => Ok(()),
        Some(existing) => Err(MlflowError::ParamConflict {
            run_id: run_id.to_string(),
            key: key.to_string(),
            existing,
            new: value.to_string(),
        }),
        None => conn
            .execute(
                "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                &[
                    SqlValue::Text(key.to_string()),
                    SqlValue::Text(value.to_string()),
                    SqlValue::Text(run_id.to_string()),
                ],
            )
            .map(drop)
            .map_err(|err| schema.fail(&context, err)),
    }
}

/// Logs a metric point and keeps `latest_metrics` at MLflow's latest value: the max by
/// (step, timestamp, value), compared on stored values.
fn insert_metric(
    conn: &mut impl SqlConn,
    schema: &Schema,
    run_id: &str,
    point: &MetricPoint<'_>,
) -> Result<(), MlflowError> {
    let (value, is_nan) = sanitize_metric(point.value);
    let context = || format!("logging metric {:?} of run {run_id}", point.key);
    let key = SqlValue::Text(point.key.to_string());
    let run = SqlValue::Text(run_id.to_string());
    conn.execute(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        &[
            key.clone(),
            SqlValue::Real(value),
            SqlValue::Integer(point.timestamp),
            run.clone(),
            SqlValue::Integer(point.step),
            SqlValue::Bool(is_nan),
        ],
    )
    .map_err(|err| schema.fail(&context(), err))?;
    conn.execute(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) \
         VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value, \
           timestamp = excluded.timestamp, step = excluded.step, is_nan = excluded.is_nan \
         WHERE (excluded.step, excluded.timestamp, excluded.value) > \
           (latest_metrics.step, COALESCE(latest_metrics.timestamp, -9223372036854775807 - 1), \
            latest_metrics.value)",
        &[
            key,
            SqlValue::Real(value),
            SqlValue::Integer(point.timestamp),
            SqlValue::Integer(point.step),
            SqlValue::Bool(is_nan),
            run,
        ],
    )
    .map_err(|err| schema.fail(&context(), err))?;
    Ok(())
}

/// Logs params, metrics and tags of an active run (params first: a conflicting param fails
/// before anything else of the batch is written, and the caller's transaction rolls it back).
pub(crate) fn log_batch(
    conn: &mut impl SqlConn,
    schema: &Schema,
    run_id: &str,
    metrics: &[MetricPoint<'_>],
    params: &[(&str, &str)],
    tags: &[(&str, &str)],
) -> Result<(), MlflowError> {
    require_active_run(conn, schema, run_id)?;
    for (key, value) in params {
        insert_param(conn, schema, run_id, key, value)?;
    }
    for point in metrics {
        insert_metric(conn, schema, run_id, point)?;
    }
    for (key, value) in tags {
        insert_tag(conn, schema, run_id, key, value)?;
    }
    Ok(())
}

/// Sets one tag of an active run.
pub(crate) fn set_tag(
    conn: &mut impl SqlConn,
    schema: &Schema,
    run_id: &str,
    key: &str,
    value: &str,
) -> Result<(), MlflowError> {
    require_active_run(conn, schema, run_id)?;
    insert_tag(conn, schema, run_id, key, value)
}
