//! Interop with Python mlflow 3.17.2 on the same data: what Python logs podium reads (from the
//! file and through a server), what podium writes Python reads, and a database podium creates
//! is exactly the one MLflow creates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use podium_mlflow::query::search_all_concurrently;
use podium_mlflow::sqlite::SCHEMA_REVISION;
use podium_mlflow::{
    Filter, MetricPoint, MlflowError, RestConfig, RestStore, RunStatus, SqliteStore, TrackingStore,
    ViewType, search_all,
};

const PYTHON_RUNS: usize = 1_100;
const PODIUM_RUNS: usize = 1_400;
const NOTE: &str = "it's \"both\"";

/// Logs PYTHON_RUNS runs with Python's MlflowClient on a SQLite file (the bulk path: one
/// create_run + one log_batch per run); prints the experiment id and the special runs.
const PYTHON_LOG: &str = r#"
import json, logging, os, sys, time
logging.disable(logging.CRITICAL)
import sqlalchemy
from sqlalchemy import event

# Test speed only: the data MLflow writes is unchanged, commits just skip fsync.
@event.listens_for(sqlalchemy.engine.Engine, "connect")
def _no_fsync(dbapi_connection, record):
    dbapi_connection.execute("PRAGMA synchronous=OFF")

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

uri, count, note = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = MlflowClient(uri)
experiment = client.create_experiment("interop")
special = {}
now = int(time.time() * 1000)
for i in range(count):
    run = client.create_run(
        experiment,
        run_name=f"py-{i}",
        tags={"code.backbone": "distil", "note": note, "q": "it's"},
        start_time=now + i,
    )
    value = {0: float("nan"), 1: float("inf"), 2: float("-inf")}.get(i, i / count)
    client.log_batch(
        run.info.run_id,
        metrics=[Metric("f1", value, now, 0)],
        params=[Param("lr", str(i))],
    )
    if i < 3:
        special[["nan", "inf", "neg_inf"][i]] = run.info.run_id
    if i < 10:
        client.set_terminated(run.info.run_id, "FINISHED")
work = os.path.dirname(uri.replace("sqlite:///", ""))
open(os.path.join(work, "artifact.txt"), "w").write("hello")
client.log_artifact(special["nan"], os.path.join(work, "artifact.txt"), "notes")
print(json.dumps({"experiment": experiment, **special}))
"#;

fn distil() -> Filter {
    Filter::new().tag_eq("code.backbone", "distil")
}

fn check_python_runs(store: &dyn TrackingStore, experiment: &str, special: &serde_json::Value) {
    let label = store.describe();
    let all = [experiment.to_string()];
    let runs = search_all(store, &all, &distil(), ViewType::ActiveOnly).unwrap();
    assert_eq!(
        runs.len(),
        PYTHON_RUNS + PODIUM_RUNS,
        "{label}: every matching run"
    );
    let by_id: BTreeMap<&str, &podium_mlflow::Run> = runs.iter().map(|r| (r.id(), r)).collect();
    let nan = by_id[special["nan"].as_str().unwrap()];
    assert!(
        nan.metric("f1").unwrap().is_nan(),
        "{label}: Python's NaN is NaN"
    );
    assert_eq!(nan.tag("note"), Some(NOTE));
    assert_eq!(nan.info.status, RunStatus::Finished);
    assert_eq!(
        by_id[special["inf"].as_str().unwrap()].metric("f1"),
        Some(f64::INFINITY)
    );
    assert_eq!(
        by_id[special["neg_inf"].as_str().unwrap()].metric("f1"),
        Some(f64::NEG_INFINITY)
    );
    // Quote handling on Python-written values: server-side ("…") and client-side (both kinds).
    let single = search_all(
        store,
        &all,
        &Filter::new().tag_eq("q", "it's"),
        ViewType::ActiveOnly,
    )
    .unwrap();
    assert_eq!(single.len(), PYTHON_RUNS, "{label}");
    let both = search_all(
        store,
        &all,
        &Filter::new().tag_eq("note", NOTE),
        ViewType::ActiveOnly,
    )
    .unwrap();
    assert_eq!(both.len(), PYTHON_RUNS, "{label}");
    let finished = search_all(
        store,
        &all,
        &distil().status(RunStatus::Finished),
        ViewType::ActiveOnly,
    )
    .unwrap();
    assert_eq!(finished.len(), 10 + PODIUM_RUNS, "{label}");

    // Independent candidate queries, one per backbone, on threads sharing the store.
    let per_backbone = [
        ("distil", distil().status(RunStatus::Finished)),
        ("roberta", Filter::new().tag_eq("code.backbone", "roberta")),
    ];
    let results = search_all_concurrently(store, &all, &per_backbone, ViewType::ActiveOnly);
    assert_eq!(results[0].0, "distil");
    assert_eq!(results[0].1.as_ref().unwrap().len(), 10 + PODIUM_RUNS);
    assert_eq!(results[1].1.as_ref().unwrap().len(), 0);

    // The artifact Python logged to the local artifact store.
    let dest = tempfile::tempdir().unwrap();
    let landed = store
        .download_artifacts(&nan.info, "notes/artifact.txt", dest.path())
        .unwrap();
    assert_eq!(std::fs::read_to_string(landed).unwrap(), "hello");
}

#[test]
fn python_logged_runs_are_read_by_both_stores() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let uri = format!("sqlite:///{}", db.display());
    // MLflow's default artifact root is ./mlruns: run Python inside the temp dir.
    let output =
        podium_testkit::python_command(PYTHON_LOG, &[&uri, &PYTHON_RUNS.to_string(), NOTE], &[])
            .current_dir(dir.path())
            .output()
            .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let special: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let experiment = special["experiment"].as_str().unwrap().to_string();

    // Podium adds its own matching runs to the same experiment, in one transaction.
    {
        let store = SqliteStore::open(&db).unwrap();
        assert_eq!(store.revision(), SCHEMA_REVISION);
        store
            .write_batch(|batch| {
                for i in 0..PODIUM_RUNS {
                    let run = batch.create_run(
                        &experiment,
                        &format!("rs-{i}"),
                        i as i64,
                        &BTreeMap::from([("code.backbone".to_string(), "distil".to_string())]),
                    )?;
                    batch.log_batch(
                        &run.run_id,
                        &[MetricPoint {
                            key: "f1",
                            value: 0.5,
                            timestamp: 1,
                            step: 0,
                        }],
                        &[],
                        &[],
                    )?;
                    batch.update_run(&run.run_id, RunStatus::Finished, Some(i as i64 + 1))?;
                }
                Ok(())
            })
            .unwrap();
        check_python_runs(&store, &experiment, &special);
    }

    // The same data through a real server on that database.
    let server = podium_testkit::MlflowServer::start_in(dir).unwrap();
    let rest = RestStore::new(server.url(), RestConfig::default()).unwrap();
    check_python_runs(&rest, &experiment, &special);
}

/// Compares podium's database with one Python creates, then reads podium's runs with
/// `mlflow.search_runs` and writes to the database with Python.
const PYTHON_CHECK: &str = r#"
import json, logging, math, os, sys, tempfile
logging.disable(logging.CRITICAL)
import sqlite3
import mlflow
from mlflow import MlflowClient

podium_db = sys.argv[1]

def schema(path):
    # MLflow's own migrations emit a table's CHECK constraints in Python set order (it varies
    # with PYTHONHASHSEED), so statements are compared as sets of lines.
    with sqlite3.connect(path) as connection:
        return sorted(
            (kind, name, table, tuple(sorted(line.strip().rstrip(",") for line in sql.splitlines())))
            for kind, name, table, sql in connection.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        )

def seeded(path):
    with sqlite3.connect(path) as connection:
        return {
            "alembic": connection.execute("SELECT version_num FROM alembic_version").fetchall(),
            "workspaces": connection.execute("SELECT * FROM workspaces").fetchall(),
            "default": connection.execute(
                "SELECT experiment_id, name, lifecycle_stage, workspace FROM experiments WHERE experiment_id = 0"
            ).fetchall(),
        }

with tempfile.TemporaryDirectory() as tmp:
    reference = os.path.join(tmp, "mlflow.db")
    MlflowClient(f"sqlite:///{reference}").get_experiment("0")
    ours, theirs = schema(podium_db), schema(reference)
    same_schema = ours == theirs
    schema_diff = [repr(x) for x in set(ours) ^ set(theirs)][:4]
    same_seed = seeded(reference) == seeded(podium_db)

# Opening podium's database must not migrate anything.
from mlflow.store.db.utils import _verify_schema, create_sqlalchemy_engine_with_retry
_verify_schema(create_sqlalchemy_engine_with_retry(f"sqlite:///{podium_db}"))
mlflow.set_tracking_uri(f"sqlite:///{podium_db}")
frame = mlflow.search_runs(experiment_names=["from-podium"], max_results=50000)
row = frame[frame["tags.mlflow.runName"] == "special"].iloc[0]
client = MlflowClient()
experiment = client.get_experiment_by_name("from-podium")
run = client.create_run(experiment.experiment_id, run_name="from-python")
client.log_metric(run.info.run_id, "f1", 0.25)
client.set_terminated(run.info.run_id)
print(json.dumps({
    "same_schema": same_schema,
    "same_seed": same_seed,
    "schema_diff": schema_diff,
    "count": int(len(frame)),
    "nan": bool(math.isnan(row["metrics.f1"])),
    # MLflow's SQL store hands back its ±1.7976931348623157e308 sentinels for ±inf.
    "inf": bool(row["metrics.pos"] in (math.inf, sys.float_info.max)),
    "neg_inf": bool(row["metrics.neg"] in (-math.inf, -sys.float_info.max)),
    "note": str(row["tags.note"]),
    "status": str(row["status"]),
    "param": str(row["params.lr"]),
    "experiment_tag": experiment.tags.get("podium.claim"),
    "python_run": run.info.run_id,
}))
"#;

#[test]
fn python_reads_what_podium_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let store = SqliteStore::open(&db).unwrap();
    let experiment = store.create_experiment("from-podium").unwrap();
    store
        .set_experiment_tag(&experiment, "podium.claim", "me")
        .unwrap();
    let run = store
        .create_run(
            &experiment,
            "special",
            1_000,
            &BTreeMap::from([("note".to_string(), NOTE.to_string())]),
        )
        .unwrap();
    store
        .log_batch(
            &run.run_id,
            &[
                MetricPoint {
                    key: "f1",
                    value: f64::NAN,
                    timestamp: 2,
                    step: 0,
                },
                MetricPoint {
                    key: "pos",
                    value: f64::INFINITY,
                    timestamp: 2,
                    step: 0,
                },
                MetricPoint {
                    key: "neg",
                    value: f64::NEG_INFINITY,
                    timestamp: 2,
                    step: 0,
                },
            ],
            &[("lr", "3e-5")],
            &[],
        )
        .unwrap();
    store
        .update_run(&run.run_id, RunStatus::Finished, Some(3_000))
        .unwrap();
    store
        .write_batch(|batch| {
            for i in 0..1_200 {
                batch.create_run(&experiment, &format!("bulk-{i}"), i, &BTreeMap::new())?;
            }
            Ok(())
        })
        .unwrap();

    let output = podium_testkit::run_python(PYTHON_CHECK, &[db.to_str().unwrap()]);
    let seen: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(
        seen["same_schema"], true,
        "podium's schema is MLflow 3.17.2's: {seen}"
    );
    assert_eq!(seen["same_seed"], true, "{seen}");
    assert_eq!(seen["count"], 1_201);
    assert_eq!(seen["nan"], true);
    assert_eq!(seen["inf"], true);
    assert_eq!(seen["neg_inf"], true);
    assert_eq!(seen["note"], NOTE);
    assert_eq!(seen["status"], "FINISHED");
    assert_eq!(seen["param"], "3e-5");
    assert_eq!(seen["experiment_tag"], "me");

    // And podium reads Python's write back.
    let python_run = store.get_run(seen["python_run"].as_str().unwrap()).unwrap();
    assert_eq!(python_run.metric("f1"), Some(0.25));
    assert_eq!(python_run.info.status, RunStatus::Finished);
}

#[test]
fn unknown_schema_revision_is_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    {
        let store = SqliteStore::open(&db).unwrap();
        store.create_experiment("kept").unwrap();
    }
    let connection = rusqlite::Connection::open(&db).unwrap();
    connection
        .execute(
            "UPDATE alembic_version SET version_num = '0584bdc529eb'",
            [],
        )
        .unwrap();
    drop(connection);
    let store = SqliteStore::open(&db).unwrap();
    assert!(!store.is_writable());
    assert!(store.get_experiment_by_name("kept").unwrap().is_some());
    let err = store.create_experiment("new").unwrap_err();
    assert!(matches!(err, MlflowError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("0584bdc529eb"), "{err}");

    let not_mlflow = dir.path().join("other.db");
    rusqlite::Connection::open(&not_mlflow)
        .unwrap()
        .execute("CREATE TABLE t (x)", [])
        .unwrap();
    let err = SqliteStore::open(&not_mlflow).unwrap_err();
    assert!(
        err.to_string().contains("not an MLflow tracking database"),
        "{err}"
    );
}
