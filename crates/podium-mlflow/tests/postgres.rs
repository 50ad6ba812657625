//! The PostgreSQL store beyond the shared contract (`tests/contract.rs`): connecting as libpq
//! users do (password in the URI or `PGPASSWORD`, a Unix socket, TLS checked or not),
//! errors that name the database and never the password, the schema revision, interop with
//! Python mlflow 3.17.2 on the same database both ways, the MLflow UI served from it, and a
//! pooled connection the server dropped. One cluster for the whole file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use podium_mlflow::postgres::PostgresStore;
use podium_mlflow::{
    Filter, MetricPoint, MlflowError, RunStatus, TrackingStore, ViewType, search_all,
};
use podium_testkit::PostgresCluster;

fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.clone()))
        .collect();
    move |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

/// How many of the server's connections with this application name use TLS, and how many do
/// not.
fn tls_connections(cluster: &PostgresCluster, application: &str) -> (usize, usize) {
    let out = cluster
        .psql(
            "postgres",
            &format!(
                "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
                 FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.application_name = '{application}'"
            ),
        )
        .unwrap();
    let (with, without) = out.trim().split_once('|').unwrap();
    (with.parse().unwrap(), without.parse().unwrap())
}

#[test]
fn connects_as_libpq_users_do_with_tls_checked_or_not() {
    let cluster = PostgresCluster::shared();
    let db = cluster.create_database();
    let port = cluster.port();
    let password = cluster.password().to_string();
    let ca = cluster.ca_certificate().display().to_string();
    let no_env = |_: &str| None;

    // The password from PGPASSWORD, the rest from the URI; the driver suffix MLflow accepts.
    let from_env = PostgresStore::open_with_env(
        &format!("postgresql+psycopg2://postgres@127.0.0.1:{port}/{db}?sslmode=disable"),
        &env_of(&[("PGPASSWORD", password.clone())]),
    )
    .unwrap();
    assert!(from_env.get_experiment("0").unwrap().is_active());
    // Everything from PG* variables.
    let all_env = env_of(&[
        ("PGHOST", "127.0.0.1".into()),
        ("PGPORT", port.to_string()),
        ("PGUSER", "postgres".into()),
        ("PGPASSWORD", password.clone()),
        ("PGDATABASE", db.clone()),
        ("PGAPPNAME", "podium-env-test".into()),
    ]);
    let store = PostgresStore::open_with_env("postgresql://", &all_env).unwrap();
    assert_eq!(
        store.describe(),
        format!("postgresql://postgres@127.0.0.1:{port}/{db}")
    );
    // libpq's default is sslmode=prefer: the server offers TLS, so it is used.
    assert_eq!(tls_connections(&cluster, "podium-env-test"), (1, 0));

    // A Unix socket (trust: no password), never TLS.
    let socket = PostgresStore::open(&format!(
        "{}&application_name=podium-socket-test",
        cluster.socket_uri(&db)
    ))
    .unwrap();
    assert!(socket.get_experiment_by_name("Default").unwrap().is_some());
    // Socket connections have no pg_stat_ssl TLS row with ssl = true.
    assert_eq!(tls_connections(&cluster, "podium-socket-test").0, 0);

    // TLS required, then checked against the test CA (chain, and chain + host name).
    for (mode, app) in [
        ("require".to_string(), "podium-tls-require"),
        (format!("verify-ca&sslrootcert={ca}"), "podium-tls-ca"),
        (format!("verify-full&sslrootcert={ca}"), "podium-tls-full"),
    ] {
        let uri = format!("{}?sslmode={mode}&application_name={app}", cluster.uri(&db));
        let store = PostgresStore::open_with_env(&uri, &no_env).unwrap();
        store.experiments_with_prefix("Def").unwrap();
        assert_eq!(tls_connections(&cluster, app), (1, 0), "{mode}");
    }
    // A server certificate the roots do not vouch for is refused, and says why.
    let err = PostgresStore::open_with_env(
        &format!(
            "{}?sslmode=verify-full&sslrootcert=system",
            cluster.uri(&db)
        ),
        &no_env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("certificate"), "{err}");
    assert!(!err.contains(&password), "{err}");
}

#[test]
fn errors_name_the_database_never_the_password() {
    let cluster = PostgresCluster::shared();
    let db = cluster.create_database();
    let no_env = |_: &str| None;
    let wrong = cluster
        .uri(&db)
        .replace(cluster.password(), "not-the-password");
    let err = PostgresStore::open_with_env(&wrong, &no_env).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, MlflowError::Postgres { .. }), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{}/{db}", cluster.port())),
        "{text}"
    );
    assert!(!text.contains("not-the-password"), "{text}");

    // No MLflow tables: refused, with the way to create them.
    let empty = cluster.create_empty_database();
    let text = PostgresStore::open_with_env(&cluster.uri(&empty), &no_env)
        .unwrap_err()
        .to_string();
    assert!(text.contains("not an MLflow tracking database"), "{text}");
    assert!(text.contains("mlflow server --backend-store-uri"), "{text}");
    assert!(!text.contains(cluster.password()), "{text}");

    // Nothing listens: the connection error names where it tried.
    let closed = podium_testkit::free_port();
    let text = PostgresStore::open_with_env(
        &format!("postgresql://u:hunter2@127.0.0.1:{closed}/x?connect_timeout=2"),
        &no_env,
    )
    .unwrap_err()
    .to_string();
    assert!(text.contains(&format!("127.0.0.1:{closed}")), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn an_unknown_schema_revision_is_read_but_never_written() {
    let cluster = PostgresCluster::shared();
    let db = cluster.create_database();
    let uri = cluster.uri(&db);
    let store = PostgresStore::open(&uri).unwrap();
    let experiment = store.create_experiment("before-upgrade").unwrap();
    drop(store);
    cluster
        .psql(
            &db,
            "UPDATE alembic_version SET version_num = 'ffffffffffff'",
        )
        .unwrap();
    let store = PostgresStore::open(&uri).unwrap();
    assert_eq!(store.revision(), "ffffffffffff");
    assert!(!store.is_writable());
    assert_eq!(
        store.get_experiment(&experiment).unwrap().name,
        "before-upgrade"
    );
    let err = store.create_experiment("after").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, MlflowError::ReadOnly { .. }), "{text}");
    assert!(text.contains("ffffffffffff"), "{text}");
    assert!(text.contains("PostgreSQL store"), "{text}");
    assert!(!text.contains(cluster.password()), "{text}");
}

/// Python logs runs (NaN, ±inf metrics, a quote-laden tag) through MLflow's SQLAlchemy store on
/// the database; podium reads them exactly. Podium writes runs; `mlflow.search_runs` reads every
/// one of them with the same values. Then `mlflow server` on the database serves them to the UI.
#[test]
fn python_mlflow_and_the_mlflow_ui_share_the_database_with_podium() {
    let cluster = PostgresCluster::shared();
    let db = cluster.create_database();
    let uri = cluster.uri(&db);
    let out = podium_testkit::run_python(
        r#"
import json, logging, sys
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
client = MlflowClient(sys.argv[1])
experiment = client.create_experiment("from-python")
ids = []
for i, value in enumerate([float("nan"), float("inf"), float("-inf"), 0.25]):
    run = client.create_run(experiment, run_name=f"py-{i}", tags={"note": "it's \"both\""})
    client.log_batch(run.info.run_id, metrics=[Metric("f1", value, 1000 + i, 0)],
                     params=[Param("lr", str(i))])
    client.set_terminated(run.info.run_id, "FINISHED")
    ids.append(run.info.run_id)
print(json.dumps({"experiment": experiment, "ids": ids}))
"#,
        &[&uri],
    );
    let logged: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let store = PostgresStore::open(&uri).unwrap();
    let experiment = logged["experiment"].as_str().unwrap().to_string();
    let runs = search_all(
        &store,
        std::slice::from_ref(&experiment),
        &Filter::new()
            .tag_eq("note", "it's \"both\"")
            .status(RunStatus::Finished),
        ViewType::ActiveOnly,
    )
    .unwrap();
    assert_eq!(runs.len(), 4);
    let by_name: BTreeMap<&str, &podium_mlflow::Run> = runs
        .iter()
        .map(|run| (run.info.run_name.as_str(), run))
        .collect();
    assert!(by_name["py-0"].metric("f1").unwrap().is_nan());
    assert_eq!(by_name["py-1"].metric("f1"), Some(f64::INFINITY));
    assert_eq!(by_name["py-2"].metric("f1"), Some(f64::NEG_INFINITY));
    assert_eq!(by_name["py-3"].metric("f1"), Some(0.25));
    assert_eq!(by_name["py-3"].params["lr"], "3");

    // Podium writes; Python reads every run with the same values.
    let mine = store.create_experiment("from-podium").unwrap();
    let mut written = Vec::new();
    for index in 0..25_i64 {
        let tags = BTreeMap::from([("code.backbone".to_string(), format!("b{}", index % 3))]);
        let run = store
            .create_run(&mine, &format!("podium-{index}"), 5_000 + index, &tags)
            .unwrap();
        let value = if index == 0 {
            f64::NAN
        } else {
            index as f64 / 100.0
        };
        let point = MetricPoint {
            key: "macro-f1",
            value,
            timestamp: 6_000,
            step: 0,
        };
        let lr = format!("{index}e-5");
        store
            .log_batch(&run.run_id, &[point], &[("lr", lr.as_str())], &[])
            .unwrap();
        store
            .update_run(&run.run_id, RunStatus::Finished, Some(7_000 + index))
            .unwrap();
        written.push(run.run_id);
    }
    let seen = podium_testkit::run_python(
        r#"
import json, logging, math, sys
logging.disable(logging.CRITICAL)
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
frame = mlflow.search_runs(experiment_names=["from-podium"], max_results=50000)
out = {}
for _, row in frame.iterrows():
    value = row["metrics.macro-f1"]
    out[row["run_id"]] = {"status": row["status"], "backbone": row["tags.code.backbone"],
                          "lr": row["params.lr"], "f1": None if math.isnan(value) else value,
                          "name": row["tags.mlflow.runName"]}
print(json.dumps(out))
"#,
        &[&uri],
    );
    let seen: serde_json::Value = serde_json::from_str(seen.trim()).unwrap();
    assert_eq!(seen.as_object().unwrap().len(), written.len(), "{seen}");
    for (index, run_id) in written.iter().enumerate() {
        let row = &seen[run_id];
        assert_eq!(row["status"], "FINISHED", "{row}");
        assert_eq!(row["backbone"], format!("b{}", index % 3));
        assert_eq!(row["lr"], format!("{index}e-5"));
        assert_eq!(row["name"], format!("podium-{index}"));
        if index == 0 {
            assert!(row["f1"].is_null(), "NaN: {row}");
        } else {
            assert_eq!(row["f1"].as_f64(), Some(index as f64 / 100.0));
        }
    }

    // The MLflow UI served from the same database lists them (it reads runs through the
    // server's ajax API).
    let dir = tempfile::tempdir().unwrap();
    let server = podium_testkit::MlflowServer::start_with_backend(dir, &uri).unwrap();
    let page = podium_testkit::run_python(
        r#"
import json, sys, urllib.request
base, experiment = sys.argv[1], sys.argv[2]
html = urllib.request.urlopen(base + "/").read().decode()
request = urllib.request.Request(
    base + "/ajax-api/2.0/mlflow/runs/search",
    data=json.dumps({"experiment_ids": [experiment], "max_results": 1000}).encode(),
    headers={"Content-Type": "application/json"})
runs = json.loads(urllib.request.urlopen(request).read())["runs"]
print(json.dumps({"ui": "<div id=\"root\"" in html or "<div id='root'" in html or "MLflow" in html,
                  "runs": sorted(run["info"]["run_id"] for run in runs)}))
"#,
        &[server.url(), &mine],
    );
    let page: serde_json::Value = serde_json::from_str(page.trim()).unwrap();
    assert_eq!(page["ui"], true, "{page}");
    let mut expected = written.clone();
    expected.sort();
    assert_eq!(page["runs"], serde_json::json!(expected));

    // A run the server created keeps its artifacts behind the server's proxy: read directly
    // from the database, its download says to use the server.
    let rest = podium_mlflow::open_store(Some(server.url())).unwrap();
    let served = rest.create_experiment("served").unwrap();
    let run = rest
        .create_run(&served, "through-the-server", 1, &BTreeMap::new())
        .unwrap();
    assert!(run.artifact_uri.starts_with("mlflow-artifacts:"), "{run:?}");
    let direct = store.get_run(&run.run_id).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let err = store
        .download_artifacts(&direct.info, "model", dest.path())
        .unwrap_err();
    assert!(matches!(err, MlflowError::Artifact { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("served by an MLflow tracking server"),
        "{err}"
    );
}

#[test]
fn a_connection_the_server_dropped_is_replaced() {
    let cluster = PostgresCluster::shared();
    let db = cluster.create_database();
    let uri = format!("{}?application_name=podium-reconnect", cluster.uri(&db));
    let store = PostgresStore::open(&uri).unwrap();
    let experiment = store.create_experiment("before").unwrap();
    // An administrator (or an idle timeout, or a restart) ends podium's pooled connection.
    let ended = cluster
        .psql(
            "postgres",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'podium-reconnect'",
        )
        .unwrap();
    assert_eq!(ended.trim(), "1");
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(store.get_experiment(&experiment).unwrap().name, "before");
    store.create_experiment("after").unwrap();
}

#[test]
fn a_streamed_search_reads_one_snapshot_through_a_portal() {
    let cluster = PostgresCluster::shared();
    let db = cluster.create_database();
    let store = PostgresStore::open(&cluster.uri(&db)).unwrap();
    let experiment = store.create_experiment("many").unwrap();
    for index in 0..2_500_i64 {
        // Few runs carry the tag, so chunks are filled from a long scan.
        let tags = BTreeMap::from([(
            "kind".to_string(),
            if index % 2 == 0 { "even" } else { "odd" }.to_string(),
        )]);
        let run = store
            .create_run(&experiment, &format!("r{index}"), index, &tags)
            .unwrap();
        if index % 500 == 0 {
            let point = MetricPoint {
                key: "m",
                value: index as f64,
                timestamp: 1,
                step: 0,
            };
            store.log_batch(&run.run_id, &[point], &[], &[]).unwrap();
        }
    }
    let request = podium_mlflow::SearchRequest::new([experiment.clone()])
        .filter(Filter::new().tag_eq("kind", "even").server_side())
        .order_by(["attributes.start_time ASC".to_string()]);
    let mut names = Vec::new();
    let count = store
        .search_runs_each(&request, &mut |run| {
            assert_eq!(run.tag("kind"), Some("even"));
            names.push(run.info.start_time.unwrap());
        })
        .unwrap();
    assert_eq!(count, 1_250);
    assert_eq!(names, (0..2_500).step_by(2).collect::<Vec<i64>>());
    // Pages of one and the same through tokens agree with the stream.
    let page = store
        .search_runs_page(&request.clone().max_results(1_000))
        .unwrap();
    assert_eq!(page.runs.len(), 1_000);
    assert_eq!(page.runs[500].metric("m"), Some(1_000.0));
    let rest = store
        .search_runs_page(&request.max_results(1_000).page_token(page.next_page_token))
        .unwrap();
    assert_eq!(rest.runs.len(), 250);
    assert!(rest.next_page_token.is_none());
}

/// Another session holds `runs` locked for `seconds` (an open transaction by hand, a migration)
/// from a background thread; returns once the lock is held.
fn hold_runs_locked(cluster: &std::sync::Arc<PostgresCluster>, db: &str, seconds: u32) {
    let (holder, held_db) = (std::sync::Arc::clone(cluster), db.to_string());
    std::thread::spawn(move || {
        holder
            .psql(
                &held_db,
                &format!(
                    "BEGIN; LOCK TABLE runs IN ACCESS EXCLUSIVE MODE; \
                     SELECT pg_sleep({seconds}); COMMIT;"
                ),
            )
            .unwrap();
    });
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(10) {
        let held = cluster
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_locks WHERE mode = 'AccessExclusiveLock' AND granted \
                 AND relation IS NOT NULL",
            )
            .unwrap();
        if held.trim() != "0" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the lock was never taken");
}

#[test]
fn a_locked_table_ends_a_statement_at_the_search_budget_and_a_write_at_the_lock_timeout() {
    let cluster = PostgresCluster::shared();
    let db = cluster.create_database();
    // The search budget (PODIUM_MAX_SEARCH_SECONDS) bounds each statement, as it bounds a REST
    // search; a user's own `options` still win (here: a short lock_timeout).
    let reader = PostgresStore::open_with_env(
        &cluster.uri(&db),
        &env_of(&[("PODIUM_MAX_SEARCH_SECONDS", "1".to_string())]),
    )
    .unwrap();
    let writer = PostgresStore::open(&format!(
        "{}?options=-c%20lock_timeout%3D300",
        cluster.uri(&db)
    ))
    .unwrap();
    let experiment = writer.create_experiment("locked").unwrap();
    let run = writer
        .create_run(&experiment, "r", 1, &BTreeMap::new())
        .unwrap();
    hold_runs_locked(&cluster, &db, 6);

    let started = std::time::Instant::now();
    let err = reader.get_run(&run.run_id).unwrap_err().to_string();
    assert!(err.contains("statement timeout"), "{err}");
    assert!(err.contains("PODIUM_MAX_SEARCH_SECONDS"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{err}"
    );

    let started = std::time::Instant::now();
    let err = writer
        .set_tag(&run.run_id, "k", "v")
        .unwrap_err()
        .to_string();
    assert!(err.contains("lock timeout"), "{err}");
    assert!(err.contains("lock_timeout=…"), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{err}"
    );
}
