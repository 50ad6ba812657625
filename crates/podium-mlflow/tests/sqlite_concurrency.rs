//! Python mlflow 3.17.2 and podium's SqliteStore writing the same `mlflow.db` at the same time:
//! neither side may fail with "database is locked", and every write of both must be there
//! afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use podium_mlflow::{MetricPoint, RunStatus, SqliteStore, TrackingStore};

const EXPERIMENT: &str = "concurrent-writers";
const PYTHON_RUNS: usize = 25;
/// Each podium writer keeps going while Python writes, and writes at least this many runs.
const MIN_PODIUM_RUNS_PER_WRITER: usize = 10;
const PODIUM_WRITERS: usize = 2;
const METRIC_KEYS: [&str; 4] = ["loss", "f1", "precision", "recall"];
const STEPS: i64 = 3;
const PARAM_KEYS: [&str; 3] = ["lr", "batch_size", "seed"];

/// Python's side, through MlflowClient with MLflow's own engine settings (rollback journal,
/// busy_timeout 20 s): per run create_run, log_batch (metrics × steps, params, a tag) and
/// set_terminated. Prints `ready` once the store is open, then the run ids as JSON.
const PYTHON_WRITER: &str = r#"
import json, logging, sys
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

uri, experiment_name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
metric_keys, steps, param_keys = sys.argv[4].split(","), int(sys.argv[5]), sys.argv[6].split(",")
client = MlflowClient(uri)
experiment = client.get_experiment_by_name(experiment_name).experiment_id
print("ready", flush=True)
ids = []
for i in range(count):
    run = client.create_run(experiment, run_name=f"py-{i}", tags={"writer": "python"})
    rid = run.info.run_id
    metrics = [Metric(key, i + step / 10, 1000 + step, step)
               for key in metric_keys for step in range(steps)]
    params = [Param(key, f"{key}-{i}") for key in param_keys]
    client.log_batch(rid, metrics=metrics, params=params, tags=[RunTag("index", str(i))])
    client.set_terminated(rid, "FINISHED")
    ids.append(rid)
print(json.dumps(ids), flush=True)
"#;

/// An mlflow.db in `dir` created by Python mlflow (so it is exactly MLflow's own) with
/// [`EXPERIMENT`] in it: the file, its URI, podium's store on it, and the experiment id.
fn python_made_store(dir: &Path) -> (PathBuf, String, SqliteStore, String) {
    let db = dir.join("mlflow.db");
    let uri = format!("sqlite:///{}", db.display());
    podium_testkit::run_python(
        "import sys, logging; logging.disable(logging.CRITICAL)\n\
         from mlflow import MlflowClient\n\
         MlflowClient(sys.argv[1]).create_experiment(sys.argv[2])",
        &[&uri, EXPERIMENT],
    );
    let store = SqliteStore::open(&db).unwrap();
    let experiment = store
        .get_experiment_by_name(EXPERIMENT)
        .unwrap()
        .expect("experiment created by Python")
        .experiment_id;
    (db, uri, store, experiment)
}

/// podium's side of one run: the same shape of writes as the Python loop.
fn podium_run(store: &SqliteStore, experiment: &str, writer: usize, index: usize) -> String {
    let tags = BTreeMap::from([("writer".to_string(), format!("podium-{writer}"))]);
    let run = store
        .create_run(experiment, &format!("rs-{writer}-{index}"), 1, &tags)
        .expect("podium create_run");
    let points: Vec<MetricPoint<'_>> = METRIC_KEYS
        .iter()
        .flat_map(|key| {
            (0..STEPS).map(move |step| MetricPoint {
                key,
                value: index as f64 + step as f64 / 10.0,
                timestamp: 1000 + step,
                step,
            })
        })
        .collect();
    let param_values: Vec<String> = PARAM_KEYS
        .iter()
        .map(|key| format!("{key}-{index}"))
        .collect();
    let params: Vec<(&str, &str)> = PARAM_KEYS
        .iter()
        .copied()
        .zip(param_values.iter().map(String::as_str))
        .collect();
    let index_text = index.to_string();
    store
        .log_batch(&run.run_id, &points, &params, &[("index", &index_text)])
        .expect("podium log_batch");
    store
        .update_run(&run.run_id, RunStatus::Finished, Some(2))
        .expect("podium update_run");
    run.run_id
}

/// Every write of one run is in the file: status, params, tags, each latest metric, and every
/// metric point of the history.
fn check_run(store: &SqliteStore, history: &rusqlite::Connection, run_id: &str, writer: &str) {
    let run = store.get_run(run_id).expect("reading a written run");
    assert_eq!(
        run.info.status,
        RunStatus::Finished,
        "{writer} run {run_id}"
    );
    assert!(
        run.tag("writer").is_some_and(|tag| tag.starts_with(writer)),
        "{writer} run {run_id}: tags {:?}",
        run.tags
    );
    let index: usize = run.tag("index").expect("index tag").parse().unwrap();
    for key in PARAM_KEYS {
        assert_eq!(
            run.params.get(key),
            Some(&format!("{key}-{index}")),
            "{writer} run {run_id}"
        );
    }
    for key in METRIC_KEYS {
        let latest = index as f64 + (STEPS - 1) as f64 / 10.0;
        assert_eq!(run.metric(key), Some(latest), "{writer} run {run_id} {key}");
    }
    let points: i64 = history
        .query_row(
            "SELECT count(*) FROM metrics WHERE run_uuid = ?1",
            [run_id],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(
        points,
        (METRIC_KEYS.len() as i64) * STEPS,
        "{writer} run {run_id}: metric history"
    );
}

#[test]
fn python_mlflow_and_podium_write_one_sqlite_file_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db, uri, store, experiment) = python_made_store(dir.path());

    let metric_keys = METRIC_KEYS.join(",");
    let param_keys = PARAM_KEYS.join(",");
    let mut python = podium_testkit::python_command(
        PYTHON_WRITER,
        &[
            &uri,
            EXPERIMENT,
            &PYTHON_RUNS.to_string(),
            &metric_keys,
            &STEPS.to_string(),
            &param_keys,
        ],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("starting the Python writer");
    let mut lines = BufReader::new(python.stdout.take().unwrap()).lines();
    let first = lines.next().map(Result::unwrap);

    let python_done = AtomicBool::new(false);
    let written_while_python_ran = AtomicUsize::new(0);
    let started = Instant::now();
    let (python_ids, podium_ids) = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..PODIUM_WRITERS)
            .map(|writer| {
                let (store, experiment) = (&store, &experiment);
                let (python_done, overlap) = (&python_done, &written_while_python_ran);
                scope.spawn(move || {
                    let mut ids = Vec::new();
                    while !python_done.load(Ordering::SeqCst)
                        || ids.len() < MIN_PODIUM_RUNS_PER_WRITER
                    {
                        ids.push(podium_run(store, experiment, writer, ids.len()));
                        if !python_done.load(Ordering::SeqCst) {
                            overlap.fetch_add(1, Ordering::SeqCst);
                        }
                        assert!(
                            started.elapsed() < Duration::from_secs(120),
                            "the Python writer did not finish"
                        );
                    }
                    ids
                })
            })
            .collect();
        let last = lines.last().map(Result::unwrap);
        python_done.store(true, Ordering::SeqCst);
        let status = python.wait().unwrap();
        let stderr = std::io::read_to_string(python.stderr.take().unwrap()).unwrap();
        assert!(
            status.success() && first.as_deref() == Some("ready"),
            "Python writer failed ({status}), first line {first:?}:\n{stderr}"
        );
        let python_ids: Vec<String> =
            serde_json::from_str(&last.expect("Python printed its run ids")).unwrap();
        let podium_ids: Vec<Vec<String>> = writers
            .into_iter()
            .map(|writer| writer.join().expect("a podium writer failed"))
            .collect();
        (python_ids, podium_ids)
    });

    assert_eq!(python_ids.len(), PYTHON_RUNS);
    assert!(
        written_while_python_ran.load(Ordering::SeqCst) >= PODIUM_WRITERS,
        "podium must have written while Python was writing"
    );
    let history = rusqlite::Connection::open(&db).unwrap();
    for id in &python_ids {
        check_run(&store, &history, id, "python");
    }
    for id in podium_ids.iter().flatten() {
        check_run(&store, &history, id, "podium");
    }
    let total: i64 = history
        .query_row("SELECT count(*) FROM runs", [], |row| row.get(0))
        .unwrap();
    let podium_total: usize = podium_ids.iter().map(Vec::len).sum();
    assert_eq!(total as usize, PYTHON_RUNS + podium_total);
}

#[test]
fn a_store_write_inside_its_own_batch_is_refused_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, store, experiment) = python_made_store(dir.path());
    let started = Instant::now();
    let outcome = store.write_batch(|batch| {
        batch.create_run(&experiment, "inside", 0, &BTreeMap::new())?;
        store.create_run(&experiment, "nested", 0, &BTreeMap::new())
    });
    let error = outcome.unwrap_err().to_string();
    assert!(error.contains("nested write"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The failed batch rolled back, and the store still writes afterwards.
    let after = store
        .create_run(&experiment, "after", 0, &BTreeMap::new())
        .unwrap();
    assert_eq!(after.run_name, "after");
}
