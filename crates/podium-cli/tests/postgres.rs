//! `podium` on a PostgreSQL tracking store, end to end: the demo's runs loaded into PostgreSQL
//! give the same champions and ranking as the demo's `mlflow.db` and are benchmarked once
//! (the pipeline's existence check on the database is in tests/benchmark.rs); fleets of
//! benchmark workers — eight on the database, four on it plus four through an `mlflow server` on
//! it — under SIGKILL and SIGTERM leave exactly one FINISHED run per key, no RUNNING run and no
//! live claim. One PostgreSQL cluster for the file, a database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/orchestrate.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use podium_bench::claim::{CLAIM_PREFIX, claim_tag};
use podium_mlflow::{Filter, RunStatus, TrackingStore, ViewType, search_all};
use podium_testkit::PostgresCluster;
use support::{BACKBONES, Project, names};

/// A fresh database of the shared cluster: (cluster, its URI with the password).
fn database() -> (std::sync::Arc<PostgresCluster>, String) {
    let cluster = PostgresCluster::shared();
    let uri = cluster.uri(&cluster.create_database());
    (cluster, uri)
}

/// Copies the runs of an `mlflow.db` into the PostgreSQL database at `uri`, ids kept
/// (scripts/sqlite-to-postgres.py, as a team moving its store would).
fn load_into_postgres(db: &Path, uri: &str) {
    let script = podium_testkit::workspace_root().join("scripts/sqlite-to-postgres.py");
    let output = Command::new(podium_testkit::python())
        .arg(&script)
        .arg(db)
        .arg(uri)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn podium(root: &Path, uri: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .current_dir(root)
        .env("PODIUM_ENVIRONMENT", "local")
        .env_remove("MLFLOW_TRACKING_URI")
        .args(["--tracking-uri", uri, "--root"])
        .arg(root)
        .arg("--config-dir")
        .arg(root.join("config"))
        .args(args)
        .output()
        .unwrap()
}

fn json_of(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "podium failed ({}): {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Champions (trial and refit run per backbone, group, score) of `podium select`.
fn champions(select: &serde_json::Value) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (backbone, report) in select["champions"].as_object().unwrap() {
        let champion = &report["champion"];
        out.insert(
            backbone.clone(),
            serde_json::json!([
                champion["trial_run_id"],
                champion["refit_run_id"],
                champion["study_key_hash"],
                champion["stable_score"],
            ]),
        );
    }
    serde_json::Value::Object(out)
}

/// The `podium run` ranking without the benchmark run ids (store-specific when measured again).
fn ranking(run: &serde_json::Value) -> Vec<serde_json::Value> {
    run["ranking"]["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let mut row = row.clone();
            row.as_object_mut().unwrap().remove("benchmark_run_id");
            row
        })
        .collect()
}

/// The acceptance of the PostgreSQL store: the demo's sweep, loaded into PostgreSQL, selects
/// the same champions as the `mlflow.db`; a `podium run` that finds the demo's results on disk
/// restores them into PostgreSQL and ranks exactly as on the file, and one in a fresh project
/// measures on PostgreSQL; every second run measures nothing.
#[test]
fn the_demo_on_postgresql_selects_ranks_and_benchmarks_like_on_its_mlflow_db() {
    let work = tempfile::tempdir().unwrap();
    let demo = work.path().join("demo");
    podium_fixtures::demo::prepare(&demo).unwrap();
    let sqlite = format!("sqlite:///{}", demo.join("mlflow.db").display());
    let (cluster, uri) = database();
    load_into_postgres(&demo.join("mlflow.db"), &uri);
    // A second project with the same sweep and nothing measured, for a measurement on
    // PostgreSQL itself.
    let fresh = work.path().join("fresh");
    podium_fixtures::demo::prepare(&fresh).unwrap();
    let fresh_uri = cluster.uri(&cluster.create_database());
    load_into_postgres(&fresh.join("mlflow.db"), &fresh_uri);

    let on_file = json_of(&podium(&demo, &sqlite, &["--format", "json", "select"]));
    let on_postgres = json_of(&podium(&demo, &uri, &["--format", "json", "select"]));
    assert_eq!(champions(&on_file), champions(&on_postgres));
    assert_eq!(on_file["champions"].as_object().unwrap().len(), 3);

    // The demo on its file measures; on PostgreSQL the same project's results are restored from
    // disk (nothing measured again) and rank exactly alike.
    let file_run = json_of(&podium(&demo, &sqlite, &["--format", "json", "run"]));
    assert_eq!(file_run["counts"]["benchmarked"], 3, "{file_run}");
    let postgres_run = json_of(&podium(&demo, &uri, &["--format", "json", "run"]));
    assert_eq!(postgres_run["counts"]["restored"], 3, "{postgres_run}");
    assert_eq!(ranking(&file_run), ranking(&postgres_run));
    assert_eq!(ranking(&postgres_run).len(), 3);
    let again = podium(&demo, &uri, &["run"]);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success(), "{text}");
    assert!(
        text.contains("benchmarked 0, skipped 3, restored 0, failed 0"),
        "{text}"
    );

    // A project with nothing on disk measures on PostgreSQL, once.
    let first = podium(&fresh, &fresh_uri, &["run"]);
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{text}");
    assert!(
        text.contains("benchmarked 3, skipped 0, restored 0, failed 0"),
        "{text}"
    );
    for backbone in [
        "deberta-v3-small",
        "distilbert-base-uncased",
        "distilroberta-base",
    ] {
        assert!(text.contains(backbone), "{text}");
    }
    let second = podium(&fresh, &fresh_uri, &["run"]);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(
        text.contains("benchmarked 0, skipped 3, restored 0, failed 0"),
        "{text}"
    );
    // Where the time went: the database, as for SQLite.
    let profiled = podium(&fresh, &fresh_uri, &["select", "--profile"]);
    let profile = String::from_utf8_lossy(&profiled.stderr);
    assert!(profiled.status.success(), "{profile}");
    assert!(profile.contains("store s"), "{profile}");
    // The password is nowhere in what podium printed.
    for output in [&first, &second, &profiled] {
        for stream in [&output.stdout, &output.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(cluster.password()),
                "the password was printed"
            );
        }
    }
}

fn benchmark_runs(store: &dyn TrackingStore) -> Vec<podium_mlflow::Run> {
    let Some(experiment) = store.get_experiment_by_name("t-benchmark").unwrap() else {
        return Vec::new();
    };
    search_all(
        store,
        &[experiment.experiment_id],
        &Filter::new(),
        ViewType::ActiveOnly,
    )
    .unwrap()
}

/// Long enough that workers are measuring when the test interrupts two of them.
const SLOW_BENCHMARK: &str = concat!(
    "run:\n  mode: null\nbenchmarking:\n  batch_sizes: [1]\n  max_length: 16\n",
    "  warmup_iterations: 1\n  iterations: 3\n  min_duration_s: 2\n  device: cpu\n",
    "  threads: 1\n  input: synthetic\n",
);

/// One `podium benchmark` worker process on `uri`. Leases of 6 s (heartbeats every 2 s): short
/// enough that the SIGKILLed worker's key is taken over within the test, long enough that a
/// worker starved of CPU on a loaded machine does not lose a live claim.
fn worker(project: &Project, uri: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .current_dir(project.root())
        .env("PODIUM_ENVIRONMENT", "local")
        .env("PODIUM_CLAIM_LEASE_SECONDS", "6")
        .env_remove("MLFLOW_TRACKING_URI")
        .args(["--tracking-uri", uri, "--root"])
        .arg(project.root())
        .arg("--config-dir")
        .arg(project.config_dir())
        .args(["--format", "json", "benchmark"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Live claims (active claim experiments) with the pid of their owner and whether a run is
/// being measured under them.
fn live_claims(store: &dyn TrackingStore) -> Vec<(String, u32, bool)> {
    store
        .experiments_with_prefix(CLAIM_PREFIX)
        .unwrap()
        .into_iter()
        .filter(|experiment| !experiment.name.contains('.'))
        .filter_map(|experiment| {
            let owner = experiment.tags.get(claim_tag::OWNER)?;
            let pid = owner.split(':').nth(1)?.parse().ok()?;
            let measuring = experiment.tags.contains_key(claim_tag::RUN_ID);
            Some((experiment.name, pid, measuring))
        })
        .collect()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {name} {pid}");
}

/// Runs the workers (each on its URI) on `project`; once two of them measure under their
/// claims, SIGKILLs the first and SIGTERMs the second, then waits for everyone and checks the
/// store: one FINISHED run per key, nothing RUNNING, no live claim, the survivors' reports whole.
fn fleet_under_signals(project: &Project, direct: &dyn TrackingStore, uris: &[&str]) {
    let mut children: Vec<Child> = uris.iter().map(|uri| worker(project, uri)).collect();
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (killed, terminated) = loop {
        let measuring: Vec<u32> = live_claims(direct)
            .into_iter()
            .filter(|(_, pid, measuring)| *measuring && pids.contains(pid))
            .map(|(_, pid, _)| pid)
            .collect();
        if let [first, second, ..] = measuring[..]
            && first != second
        {
            break (first, second);
        }
        assert!(
            Instant::now() < deadline,
            "two workers never measured at once"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    signal(killed, "-KILL");
    signal(terminated, "-TERM");
    let mut reports = BTreeMap::new();
    for (index, child) in children.drain(..).enumerate() {
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if pid == killed {
            assert_eq!(output.status.code(), None, "SIGKILLed: {stderr}");
        } else if pid == terminated {
            assert_eq!(output.status.code(), Some(130), "SIGTERM: {stderr}");
        } else {
            assert!(
                output.status.success(),
                "worker {index} ({}): {}\n{stderr}",
                uris[index],
                String::from_utf8_lossy(&output.stdout)
            );
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
            reports.insert(index, report);
        }
    }
    let keys = project_keys(direct);
    assert_eq!(keys.len(), BACKBONES.len(), "{keys:?}");
    let runs = benchmark_runs(direct);
    let mut per_key: BTreeMap<String, BTreeMap<RunStatus, usize>> = BTreeMap::new();
    for run in &runs {
        *per_key
            .entry(run.tag("benchmark_key").unwrap_or("<none>").to_string())
            .or_default()
            .entry(run.info.status)
            .or_default() += 1;
    }
    for key in &keys {
        let statuses = &per_key[key];
        assert_eq!(
            statuses.get(&RunStatus::Finished),
            Some(&1),
            "{key}: {per_key:?}"
        );
        assert_eq!(
            statuses.get(&RunStatus::Running),
            None,
            "{key}: {per_key:?}"
        );
    }
    // The interrupted measurements: the SIGTERMed worker's run KILLED, the SIGKILLed one's
    // FAILED by the worker that took its claim over.
    let count = |status: RunStatus| runs.iter().filter(|run| run.info.status == status).count();
    assert!(count(RunStatus::Killed) >= 1, "{per_key:?}");
    assert!(count(RunStatus::Failed) >= 1, "{per_key:?}");
    assert!(live_claims(direct).is_empty(), "live claims left");
    // Every survivor settled every key: measured it, found it done, or (finding it FINISHED in
    // the store before its measurer wrote the disk result) wrote the disk result itself.
    for report in reports.values() {
        let settled = ["benchmarked", "skipped", "restored"]
            .iter()
            .map(|field| names(report, field).len())
            .sum::<usize>();
        assert_eq!(settled, BACKBONES.len(), "{report}");
    }
}

/// The benchmark keys of the project's FINISHED runs.
fn project_keys(store: &dyn TrackingStore) -> Vec<String> {
    let mut keys: Vec<String> = benchmark_runs(store)
        .into_iter()
        .filter_map(|run| run.tag("benchmark_key").map(str::to_string))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// A project with six champions on the PostgreSQL database `uri`, benchmarks of about two
/// seconds each.
fn slow_project(uri: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let store = podium_mlflow::open_store(Some(uri)).unwrap();
    support::populate(store.as_ref(), dir.path(), &BACKBONES);
    support::write_configs(&dir.path().join("config"), &BACKBONES);
    let project = Project {
        uri: uri.to_string(),
        dir,
    };
    project.set_benchmark(SLOW_BENCHMARK);
    project
}

#[test]
fn eight_workers_on_the_database_under_sigkill_and_sigterm_measure_each_key_once() {
    let (_cluster, uri) = database();
    let project = slow_project(&uri);
    let direct = podium_mlflow::open_store(Some(&uri)).unwrap();
    let uris = vec![uri.as_str(); 8];
    fleet_under_signals(&project, direct.as_ref(), &uris);
}

#[test]
fn four_workers_on_the_database_and_four_through_a_server_on_it_agree() {
    let (_cluster, uri) = database();
    let project = slow_project(&uri);
    let server =
        podium_testkit::MlflowServer::start_with_backend(tempfile::tempdir().unwrap(), &uri)
            .unwrap();
    let direct = podium_mlflow::open_store(Some(&uri)).unwrap();
    let mut uris = vec![uri.as_str(); 4];
    uris.extend([server.url(); 4]);
    fleet_under_signals(&project, direct.as_ref(), &uris);
}
