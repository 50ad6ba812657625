//! The statement a PostgreSQL search runs, checked with `EXPLAIN` on MLflow's schema holding
//! 20,000 runs of 15 tags each (statistics gathered, as on a live server): each run's data is
//! read through the `run_uuid` indexes after the runs are cut, and the outer order is the
//! subquery's, never a second sort of the runs with their data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::model::{RunFields, ViewType};
use crate::request::SearchRequest;
use crate::sql::SqlConn;
use crate::sql::runs::runs_with_data_query;
use crate::{Filter, RunStatus, TrackingStore};

fn plan(store: &PostgresStore, sql: &str, values: Vec<crate::sql::SqlValue>) -> Vec<String> {
    store
        .transaction(Access::Read, |conn| {
            let mut lines = Vec::new();
            conn.query(&format!("EXPLAIN {sql}"), &values, &mut |row| {
                lines.push(row.text(0).unwrap().unwrap_or_default().to_string());
                Ok(())
            })
            .map_err(|err| store.schema.fail("explain", err))?;
            Ok(lines)
        })
        .unwrap()
}

#[test]
fn a_search_reads_each_runs_data_by_its_index_after_the_cut_with_one_sort() {
    let cluster = podium_testkit::PostgresCluster::shared();
    let db = cluster.create_database();
    let store = PostgresStore::open(&cluster.uri(&db)).unwrap();
    let experiment = store.create_experiment("plans").unwrap();
    cluster
        .psql(
            &db,
            &format!(
                "INSERT INTO runs (run_uuid, name, status, start_time, lifecycle_stage, \
                 experiment_id, artifact_uri) SELECT md5(i::text), 'r' || i, 'FINISHED', i, \
                 'active', {experiment}, '' FROM generate_series(1, 20000) i; \
                 INSERT INTO tags (key, value, run_uuid) SELECT 'k' || k, 'v' || (i % 7), \
                 md5(i::text) FROM generate_series(1, 20000) i, generate_series(1, 14) k; \
                 INSERT INTO tags (key, value, run_uuid) SELECT 'code.stage', 'hpo', md5(i::text) \
                 FROM generate_series(1, 20000) i; \
                 INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) \
                 SELECT 'f1', i / 20000.0, 0, 0, false, md5(i::text) FROM generate_series(1, 20000) i; \
                 ANALYZE"
            ),
        )
        .unwrap();
    let request = SearchRequest::new([experiment])
        .filter(
            Filter::new()
                .tag_eq("code.stage", "hpo")
                .status(RunStatus::Finished)
                .server_side(),
        )
        .view(ViewType::ActiveOnly)
        .fields(
            RunFields::none()
                .with_tags(["code.stage", "k3", "k9"])
                .with_metrics(["f1"]),
        );
    for limit in [None, Some(1_000)] {
        let (sql, values) = runs_with_data_query(&request, limit, 0).unwrap().unwrap();
        let lines = plan(&store, &sql, values);
        let text = lines.join("\n");
        for index in ["index_tags_run_uuid", "index_latest_metrics_run_uuid"] {
            assert!(text.contains(index), "{index} unused:\n{text}");
        }
        assert!(
            !text.contains("tag_pk on tags t_1") && !text.contains("Index Cond: (((key)"),
            "the data probes the (key, run_uuid) primary key:\n{text}"
        );
        let sorts = lines.iter().filter(|line| line.contains("Sort  (")).count();
        assert_eq!(sorts, 1, "one sort, of the runs alone:\n{text}");
    }
    // The same runs and data as the search returns.
    let mut streamed = Vec::new();
    store
        .search_runs_each(&request, &mut |run| streamed.push(run))
        .unwrap();
    assert_eq!(streamed.len(), 20_000);
    assert_eq!(streamed[0].info.start_time, Some(20_000));
    assert_eq!(
        streamed[0].tags.keys().collect::<Vec<_>>(),
        ["code.stage", "k3", "k9"]
    );
    assert_eq!(streamed[0].metric("f1"), Some(1.0));
}
