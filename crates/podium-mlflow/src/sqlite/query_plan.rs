//! The statements a search runs, checked with `EXPLAIN QUERY PLAN` on MLflow's own schema (no
//! `ANALYZE` statistics, as in a file MLflow wrote): every filter condition and every read of a
//! page's tags, params and metrics goes through an index, never a scan of those tables, and a
//! page's data is one statement over all its run ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::model::{RunFields, ViewType};
use crate::request::SearchRequest;
use crate::sql::runs::{run_data_query, runs_query};
use crate::sql::{Backend, SqlValue};
use crate::store::MAX_RESULTS_LIMIT;
use crate::{Filter, RunStatus, TrackingStore};

/// The plan's lines (`detail` column), e.g. `SEARCH t USING INDEX index_tags_run_uuid (run_uuid=?)`.
fn plan(store: &SqliteStore, sql: &str, values: Vec<SqlValue>) -> Vec<String> {
    store
        .read(|transaction| {
            let mut statement = transaction
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let lines = statement
                .query_map(rusqlite::params_from_iter(values), |row| {
                    row.get::<_, String>(3)
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            Ok(lines)
        })
        .unwrap()
}

/// A store with a few runs, so the plans are made against real tables.
fn store() -> (tempfile::TempDir, SqliteStore, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mlflow.db")).unwrap();
    let experiment = store.create_experiment("plans").unwrap();
    store
        .write_batch(|batch| {
            for trial in 0..20_i64 {
                let tags = BTreeMap::from([
                    ("code.stage".to_string(), "hpo_trial".to_string()),
                    ("code.backbone".to_string(), "distilbert".to_string()),
                ]);
                let run = batch.create_run(&experiment, &format!("t{trial}"), trial, &tags)?;
                let metric = MetricPoint {
                    key: "macro-f1",
                    value: 0.5,
                    timestamp: trial,
                    step: 0,
                };
                batch.log_batch(&run.run_id, &[metric], &[("lr", "1e-5")], &[])?;
                batch.update_run(&run.run_id, RunStatus::Finished, Some(trial + 1))?;
            }
            Ok(())
        })
        .unwrap();
    (dir, store, experiment)
}

/// No line reads a whole tags, params or metrics table.
fn assert_no_table_scan(lines: &[String]) {
    for line in lines {
        let scans_table = line.starts_with("SCAN ")
            && !line.starts_with("SCAN r")
            && !line.contains("json_each")
            && !line.starts_with("SCAN page");
        assert!(!scans_table, "full scan in {lines:#?}");
    }
}

#[test]
fn selection_candidates_probe_the_tag_primary_key() {
    let (_dir, store, experiment) = store();
    let filter = Filter::new()
        .tag_eq("code.stage", "hpo_trial")
        .tag_eq("code.backbone", "distilbert")
        .status(RunStatus::Finished)
        .server_side();
    let request = SearchRequest::new([experiment])
        .filter(format!("{filter} AND metrics.`macro-f1` > 0.1"))
        .view(ViewType::ActiveOnly);
    let (sql, values) = runs_query(Backend::Sqlite, &request, Some(MAX_RESULTS_LIMIT), 0)
        .unwrap()
        .unwrap();
    let lines = plan(&store, &sql, values);
    let tag_probes = lines
        .iter()
        .filter(|line| line.contains("USING INDEX sqlite_autoindex_tags_1 (key=? AND run_uuid=?)"))
        .count();
    assert_eq!(tag_probes, 2, "{lines:#?}");
    assert!(
        lines.iter().any(|line| line
            .contains("USING INDEX sqlite_autoindex_latest_metrics_1 (key=? AND run_uuid=?)")),
        "{lines:#?}"
    );
    assert_no_table_scan(&lines);
}

#[test]
fn page_data_is_one_indexed_statement_over_all_run_ids() {
    let (_dir, store, _experiment) = store();
    let ids = vec!["a".repeat(32), "b".repeat(32)];
    for fields in [
        RunFields::all(),
        RunFields::none()
            .with_tags(["code.stage", "mlflow.parentRunId"])
            .with_metrics(["macro-f1"]),
    ] {
        let (sql, values) = run_data_query(Backend::Sqlite, ids.clone(), &fields).unwrap();
        let lines = plan(&store, &sql, values);
        for index in ["index_tags_run_uuid", "index_latest_metrics_run_uuid"] {
            assert!(
                lines
                    .iter()
                    .any(|line| line.contains(&format!("USING INDEX {index} (run_uuid=?)"))),
                "{index} unused in {lines:#?}"
            );
        }
        // The ids are one list probed by the index: a single statement per page.
        assert!(
            lines.iter().any(|line| line.starts_with("LIST SUBQUERY")),
            "{lines:#?}"
        );
        assert_no_table_scan(&lines);
    }
    // Params are read through their run index too when asked for.
    let (sql, values) = run_data_query(Backend::Sqlite, ids, &RunFields::all()).unwrap();
    assert!(
        plan(&store, &sql, values)
            .iter()
            .any(|line| line.contains("USING INDEX index_params_run_uuid (run_uuid=?)"))
    );
}

#[test]
fn a_projection_selecting_nothing_runs_no_data_statement() {
    assert!(run_data_query(Backend::Sqlite, Vec::new(), &RunFields::none()).is_none());
}

#[test]
fn reads_neither_lock_nor_write_the_file() {
    let (dir, store, experiment) = store();
    drop(store);
    let path = dir.path().join("mlflow.db");
    let before = std::fs::read(&path).unwrap();
    // Another process's write transaction holds the RESERVED lock: a reader may still open the
    // store and search (opening used to take the write lock itself).
    let mut holder = Connection::open(&path).unwrap();
    let pending = holder
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    pending
        .execute("UPDATE experiments SET last_update_time = 1", [])
        .unwrap();
    let reader = SqliteStore::open_with_busy_timeout(&path, Duration::from_millis(50)).unwrap();
    let runs = crate::search_all(
        &reader,
        &[experiment],
        &Filter::new().tag_eq("code.stage", "hpo_trial"),
        ViewType::ActiveOnly,
    )
    .unwrap();
    assert_eq!(runs.len(), 20);
    drop(pending); // rolls back
    drop(reader);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a read changed the file"
    );
    assert!(!dir.path().join("mlflow.db-journal").exists());
}
