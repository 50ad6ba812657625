//! Searches: the run statement translated from a filter, the one statement of a page's tags,
//! params and latest metrics, and the streamed form that reads a search in chunks.

use super::*;

/// Runs per statement of run data when a search is streamed ([`TrackingStore::search_runs_each`]):
/// large enough that the data statement's fixed cost vanishes, small enough that a chunk's runs
/// are a few hundred KiB.
pub(super) const STREAM_CHUNK: usize = 1024;

/// One search page's split between SQLite stepping and building runs from its rows, kept only
/// while [`crate::timing`] records (two clock reads per row, none otherwise).
#[derive(Debug)]
pub(super) struct PageTimes {
    mark: Option<Instant>,
    stepping: Duration,
    parsing: Duration,
    rows: usize,
}

impl PageTimes {
    pub(super) fn new() -> Self {
        Self {
            mark: None,
            stepping: Duration::ZERO,
            parsing: Duration::ZERO,
            rows: 0,
        }
    }

    /// Starts the clock (when recording).
    pub(super) fn start(&mut self) {
        if crate::timing::is_enabled() {
            self.mark = Some(Instant::now());
        }
    }

    /// The time since the last mark was SQLite's.
    pub(super) fn stepped(&mut self) {
        if let Some(mark) = self.mark.as_mut() {
            let now = Instant::now();
            self.stepping += now - *mark;
            *mark = now;
        }
    }

    /// The time since the last mark went into building runs.
    pub(super) fn parsed(&mut self) {
        if let Some(mark) = self.mark.as_mut() {
            let now = Instant::now();
            self.parsing += now - *mark;
            *mark = now;
        }
    }

    pub(super) fn record(&self, runs: usize) {
        if self.mark.is_some() {
            crate::timing::record_page(self.stepping, self.parsing, runs, self.rows);
        }
    }
}

impl SqliteStore {
    /// Tags, params and latest metrics of the given runs, in one statement; only the keys
    /// `fields` selects are read (a kind selecting nothing is not queried at all).
    pub(super) fn load_run_data(
        &self,
        transaction: &Transaction<'_>,
        runs: Vec<RunInfo>,
        fields: &RunFields,
        times: &mut PageTimes,
    ) -> Result<Vec<Run>, MlflowError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(&runs.iter().map(|run| &run.run_id).collect::<Vec<_>>())
            .map_err(|err| self.sql_error("encoding run ids", err))?;
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
        let Some((sql, values)) =
            run_data_query(ids, fields).map_err(|err| self.sql_error("encoding keys", err))?
        else {
            return Ok(out);
        };
        // Building the runs' skeletons was parsing.
        times.parsed();
        let mut statement = transaction
            .prepare_cached(&sql)
            .map_err(|err| self.sql_error("preparing the run data query", err))?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(values))
            .map_err(|err| self.sql_error("reading run data", err))?;
        while let Some(row) = rows
            .next()
            .map_err(|err| self.sql_error("reading run data", err))?
        {
            times.stepped();
            // The run id is only looked up, so it is borrowed from SQLite's row, not copied.
            let position = match row.get_ref(1) {
                Ok(rusqlite::types::ValueRef::Text(id)) => std::str::from_utf8(id)
                    .ok()
                    .and_then(|id| index.get(id).copied()),
                Ok(_) => None,
                Err(err) => return Err(self.sql_error("reading run data", err)),
            };
            let Some(position) = position else {
                continue;
            };
            let read = |row: &rusqlite::Row<'_>| -> rusqlite::Result<_> {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, Option<f64>>(4)?,
                    row.get::<_, Option<bool>>(5)?,
                ))
            };
            let (kind, key, text, number, is_nan) =
                read(row).map_err(|err| self.sql_error("reading run data", err))?;
            let run = &mut out[position];
            match kind {
                0 => {
                    run.tags.insert(key, text.unwrap_or_default());
                }
                1 => {
                    run.params.insert(key, text.unwrap_or_default());
                }
                _ => {
                    let value = read_metric(number.unwrap_or(0.0), is_nan.unwrap_or(false));
                    run.metrics.insert(key, value);
                }
            }
            times.rows += 1;
            times.parsed();
        }
        times.stepped();
        Ok(out)
    }

    pub(super) fn search_page(
        &self,
        transaction: &Transaction<'_>,
        request: &SearchRequest,
        offset: usize,
    ) -> Result<RunsPage, MlflowError> {
        let max_results = request.max_results;
        let Some((sql, values)) = runs_query(request, Some(max_results), offset)? else {
            return Ok(RunsPage::default());
        };
        let mut times = PageTimes::new();
        times.start();
        let mut statement = transaction
            .prepare(&sql)
            .map_err(|err| self.sql_error("preparing the search", err))?;
        let mut infos = statement
            .query_map(rusqlite::params_from_iter(values), run_info_from_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|err| self.sql_error("searching runs", err))?;
        // The run rows are few and small: their decoding counts as the statement's time.
        times.stepped();
        let next_page_token = (infos.len() > max_results).then(|| {
            infos.truncate(max_results);
            encode_page_token(offset + max_results)
        });
        let runs = self.load_run_data(transaction, infos, &request.fields, &mut times)?;
        times.record(runs.len());
        Ok(RunsPage {
            runs,
            next_page_token,
        })
    }

    /// Every run of `request` from `offset` on, in one statement stepped while the runs'
    /// data is read [`STREAM_CHUNK`] runs at a time (one snapshot, one filter pass, at most a
    /// chunk of runs held).
    pub(super) fn stream_runs(
        &self,
        transaction: &Transaction<'_>,
        request: &SearchRequest,
        offset: usize,
        visit: &mut dyn FnMut(Run),
    ) -> Result<usize, MlflowError> {
        let Some((sql, values)) = runs_query(request, None, offset)? else {
            return Ok(0);
        };
        let chunk_size = STREAM_CHUNK.min(request.max_results).max(1);
        let mut times = PageTimes::new();
        times.start();
        let mut statement = transaction
            .prepare(&sql)
            .map_err(|err| self.sql_error("preparing the search", err))?;
        let mut rows = statement
            .query(rusqlite::params_from_iter(values))
            .map_err(|err| self.sql_error("searching runs", err))?;
        let mut chunk = Vec::with_capacity(chunk_size);
        let mut count = 0;
        loop {
            let row = rows
                .next()
                .map_err(|err| self.sql_error("searching runs", err))?;
            let done = row.is_none();
            if let Some(row) = row {
                chunk.push(
                    run_info_from_row(row).map_err(|err| self.sql_error("searching runs", err))?,
                );
            }
            if chunk.len() == chunk_size || (done && !chunk.is_empty()) {
                times.stepped();
                let infos = std::mem::replace(&mut chunk, Vec::with_capacity(chunk_size));
                let runs = self.load_run_data(transaction, infos, &request.fields, &mut times)?;
                times.record(runs.len());
                count += runs.len();
                runs.into_iter().for_each(&mut *visit);
                times = PageTimes::new();
                times.start();
            }
            if done {
                return Ok(count);
            }
        }
    }
}

/// The statement that finds one page of runs (one extra row tells whether another page
/// follows, as MLflow does), with its parameters; None when no experiment id can match.
/// The statement of the runs of `request` from `offset`: `limit` runs plus one (telling whether
/// another page follows, as MLflow does), or all of them.
pub(super) fn runs_query(
    request: &SearchRequest,
    limit: Option<usize>,
    offset: usize,
) -> Result<Option<(String, Vec<Value>)>, MlflowError> {
    let SearchRequest {
        experiment_ids,
        filter,
        view,
        order_by,
        ..
    } = request;
    let view = *view;
    let parsed = search::parse_filter(filter)?;
    let order = search::parse_order_by(order_by)?;
    let mut experiments = Vec::with_capacity(experiment_ids.len());
    for id in experiment_ids {
        // A non-numeric id names no experiment in this database.
        if let Ok(number) = id.trim().parse::<i64>() {
            experiments.push(Value::Integer(number));
        }
    }
    if experiments.is_empty() {
        return Ok(None);
    }
    let stage_values = stages(view);
    let mut sql = String::from(
        "SELECT r.run_uuid, r.experiment_id, r.name, r.status, r.start_time, r.end_time, \
         r.artifact_uri, r.lifecycle_stage FROM runs r",
    );
    for join in &order.joins {
        sql.push(' ');
        sql.push_str(join);
    }
    sql.push_str(&format!(
        " WHERE r.experiment_id IN ({}) AND r.lifecycle_stage IN ({})",
        vec!["?"; experiments.len()].join(", "),
        vec!["?"; stage_values.len()].join(", ")
    ));
    for clause in &parsed.clauses {
        sql.push_str(" AND ");
        sql.push_str(clause);
    }
    sql.push_str(" ORDER BY ");
    sql.push_str(&order.terms.join(", "));
    sql.push_str(" LIMIT ? OFFSET ?");
    let mut values: Vec<Value> = order.join_params;
    values.extend(experiments);
    values.extend(
        stage_values
            .iter()
            .map(|stage| Value::Text((*stage).to_string())),
    );
    values.extend(parsed.params);
    // SQLite reads a negative LIMIT as none.
    values.push(Value::Integer(
        limit.map_or(-1, |limit| i64::try_from(limit + 1).unwrap_or(i64::MAX)),
    ));
    values.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    Ok(Some((sql, values)))
}

/// The one statement that reads the tags, params and latest metrics of a page's runs (`ids`:
/// a JSON array of run ids), restricted to the keys `fields` selects; None when it selects
/// nothing at all.
pub(super) fn run_data_query(
    ids: String,
    fields: &RunFields,
) -> Result<Option<(String, Vec<Value>)>, serde_json::Error> {
    let mut values = vec![Value::Text(ids)];
    let mut selects = Vec::with_capacity(3);
    for (kind, columns, table, selection) in [
        (0, "t.value, NULL, NULL", "tags t", &fields.tags),
        (1, "t.value, NULL, NULL", "params t", &fields.params),
        (
            2,
            "NULL, t.value, t.is_nan",
            "latest_metrics t",
            &fields.metrics,
        ),
    ] {
        let mut select = format!(
            "SELECT {kind}, t.run_uuid, t.key, {columns} FROM {table} \
             WHERE t.run_uuid IN (SELECT id FROM page)"
        );
        match selection {
            KeySelection::All => {}
            KeySelection::Only(keys) if keys.is_empty() => continue,
            KeySelection::Only(keys) => {
                let keys = serde_json::to_string(keys)?;
                values.push(Value::Text(keys));
                // The unary `+` keeps SQLite on the run_uuid index: probing the
                // (key, run_uuid) primary key once per key and run measured twice as slow
                // as reading each run's few rows and filtering them here.
                select.push_str(&format!(
                    " AND +t.key IN (SELECT value FROM json_each(?{}))",
                    values.len()
                ));
            }
        }
        selects.push(select);
    }
    if selects.is_empty() {
        return Ok(None);
    }
    let sql = format!(
        "WITH page(id) AS (SELECT value FROM json_each(?1)) {}",
        selects.join(" UNION ALL ")
    );
    Ok(Some((sql, values)))
}

pub(super) fn run_info_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunInfo> {
    let status_text: Option<String> = row.get(3)?;
    let status = status_text
        .as_deref()
        .and_then(RunStatus::parse)
        .unwrap_or(RunStatus::Running);
    Ok(RunInfo {
        run_id: row.get(0)?,
        experiment_id: row
            .get::<_, Option<i64>>(1)?
            .map(|id| id.to_string())
            .unwrap_or_default(),
        run_name: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
        status,
        start_time: row.get(4)?,
        end_time: row.get(5)?,
        artifact_uri: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
        lifecycle_stage: row
            .get::<_, Option<String>>(7)?
            .unwrap_or_else(|| "active".to_string()),
    })
}
