//! `podium benchmark` end to end: idempotency, restores in both directions, what changes the
//! key, force, failures, Ctrl-C, killed workers and concurrent workers (SQLite and a real
//! MLflow server; the pipeline's existence check also on PostgreSQL, whose fleets are in
//! tests/postgres.rs).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/orchestrate.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use podium_mlflow::{Filter, Run, RunStatus, ViewType, search_all};
use support::{BACKBONES, FAST_BENCHMARK, Project, finished_benchmarks, names, sqlite_project};

fn benchmark_runs(uri: &str) -> Vec<Run> {
    let store = podium_mlflow::open_store(Some(uri)).unwrap();
    let Some(experiment) = store.get_experiment_by_name("t-benchmark").unwrap() else {
        return Vec::new();
    };
    search_all(
        store.as_ref(),
        &[experiment.experiment_id],
        &Filter::new().tag_eq("code.stage", "benchmarking"),
        ViewType::ActiveOnly,
    )
    .unwrap()
}

#[test]
fn second_benchmark_measures_nothing_and_says_so() {
    let project = sqlite_project(&BACKBONES[..2]);
    let (output, first) = project.run_json(&["benchmark"]);
    assert!(output.status.success(), "{first}");
    assert_eq!(
        names(&first, "benchmarked"),
        ["bert-base-cased", "distilbert-base-uncased"]
    );
    assert!(
        first["results"]["bert-base-cased"]["latency_batch_1_ms"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(first["results"]["distilbert-base-uncased"]["latency_batch_2_p95_ms"].is_number());
    assert_eq!(project.cache_files().len(), 2);

    let output = project.podium(&["benchmark"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("nothing to measure"), "{stdout}");
    assert!(
        stdout.contains("benchmarked 0, skipped 2, restored 0, failed 0"),
        "{stdout}"
    );
    let (_, again) = project.run_json(&["benchmark"]);
    assert_eq!(names(&again, "skipped").len(), 2);
    assert_eq!(
        again["results"], first["results"],
        "results come back unchanged"
    );
    assert!(finished_benchmarks(&project.uri).values().all(|&n| n == 1));
}

#[test]
fn each_side_is_restored_from_the_other_without_measuring() {
    let project = sqlite_project(&BACKBONES[..2]);
    let (_, first) = project.run_json(&["benchmark"]);
    assert_eq!(names(&first, "benchmarked").len(), 2);

    // Disk cache gone: rewritten from MLflow.
    for file in project.cache_files() {
        std::fs::remove_file(file).unwrap();
    }
    let (output, restored) = project.run_json(&["benchmark"]);
    assert!(output.status.success());
    assert_eq!(names(&restored, "restored").len(), 2, "{restored}");
    assert!(names(&restored, "benchmarked").is_empty());
    assert_eq!(restored["results"], first["results"]);
    assert_eq!(project.cache_files().len(), 2);

    // A corrupt cache file is a miss, replaced from MLflow.
    let corrupt = project.cache_files()[0].clone();
    std::fs::write(&corrupt, b"{ not json").unwrap();
    let (_, repaired) = project.run_json(&["benchmark"]);
    assert_eq!(names(&repaired, "restored").len(), 1, "{repaired}");
    assert!(serde_json::from_slice::<serde_json::Value>(&std::fs::read(&corrupt).unwrap()).is_ok());

    // MLflow side gone (no FINISHED run any more): recreated from the disk cache.
    let store = podium_mlflow::open_store(Some(&project.uri)).unwrap();
    for run in benchmark_runs(&project.uri) {
        store.update_run(run.id(), RunStatus::Failed, None).unwrap();
    }
    let (_, from_cache) = project.run_json(&["benchmark"]);
    assert_eq!(names(&from_cache, "restored").len(), 2, "{from_cache}");
    assert!(names(&from_cache, "benchmarked").is_empty());
    assert_eq!(from_cache["results"], first["results"]);
    let finished = finished_benchmarks(&project.uri);
    assert_eq!(finished.len(), 2);
    assert!(finished.values().all(|&n| n == 1));
    let (_, settled) = project.run_json(&["benchmark"]);
    assert_eq!(names(&settled, "skipped").len(), 2);
}

#[test]
fn benchmark_settings_and_run_mode_change_the_key_and_force_remeasures() {
    let project = sqlite_project(&BACKBONES[..1]);
    let (_, first) = project.run_json(&["benchmark"]);
    assert_eq!(names(&first, "benchmarked").len(), 1);

    project.set_benchmark(&FAST_BENCHMARK.replace("iterations: 3", "iterations: 4"));
    let (_, changed) = project.run_json(&["benchmark"]);
    assert_eq!(names(&changed, "benchmarked").len(), 1, "{changed}");
    assert_eq!(finished_benchmarks(&project.uri).len(), 2, "a new key");

    project.set_benchmark(
        &FAST_BENCHMARK
            .replace("iterations: 3", "iterations: 4")
            .replace("mode: null", "mode: reuse_if_exists"),
    );
    let (_, reuse) = project.run_json(&["benchmark"]);
    assert_eq!(
        names(&reuse, "benchmarked").len(),
        1,
        "the key hashes the whole benchmark.yaml, run.mode included (the pipeline's key): {reuse}"
    );
    let (_, same) = project.run_json(&["benchmark"]);
    assert_eq!(names(&same, "skipped").len(), 1, "{same}");

    let (_, forced) = project.run_json(&["benchmark", "--force"]);
    assert_eq!(names(&forced, "benchmarked").len(), 1, "{forced}");
    project.set_benchmark(
        &FAST_BENCHMARK
            .replace("iterations: 3", "iterations: 4")
            .replace("mode: null", "mode: force_new"),
    );
    let (_, force_new) = project.run_json(&["benchmark"]);
    assert_eq!(names(&force_new, "benchmarked").len(), 1, "{force_new}");
    let counts: Vec<usize> = finished_benchmarks(&project.uri).into_values().collect();
    assert_eq!(counts.iter().sum::<usize>(), 5);

    // run.mode: null inherits the HPO config's force_new.
    project.set_benchmark(&FAST_BENCHMARK.replace("iterations: 3", "iterations: 4"));
    let hpo_prod = project.config_dir().join("hpo/prod.yaml");
    let reusing = std::fs::read_to_string(&hpo_prod).unwrap();
    assert!(reusing.contains("mode: reuse_if_exists"));
    std::fs::write(
        &hpo_prod,
        reusing.replace("mode: reuse_if_exists", "mode: force_new"),
    )
    .unwrap();
    let (_, inherited) = project.run_json(&["benchmark"]);
    assert_eq!(names(&inherited, "benchmarked").len(), 1, "{inherited}");
    let hpo_smoke = project.config_dir().join("hpo/smoke.yaml");
    std::fs::write(&hpo_smoke, &reusing).unwrap();
    let (_, smoke) = project.run_json(&["benchmark", "--hpo-config", hpo_smoke.to_str().unwrap()]);
    assert_eq!(names(&smoke, "skipped").len(), 1, "{smoke}");
}

/// Removes the fingerprint tags from every run of an HPO experiment, with Python mlflow.
const STRIP_FINGERPRINTS: &str = r#"
import sys
from mlflow.tracking import MlflowClient
uri, name = sys.argv[1], sys.argv[2]
client = MlflowClient(tracking_uri=uri)
experiment = client.get_experiment_by_name(name)
for run in client.search_runs([experiment.experiment_id], max_results=1000):
    for key in ("code.fingerprint.data", "code.fingerprint.eval"):
        if key in run.data.tags:
            client.delete_tag(run.info.run_id, key)
"#;

/// A champion without fingerprint tags is keyed as the pipeline's existence check
/// (`filter_missing_benchmarks` in its benchmark workflow) keys it — the data fingerprint of the
/// experiment's data config, the eval fingerprint of `derive_eval_config(hpo.get("train", {}),
/// hpo)` over the experiment's own `hpo_config` (not `stages.hpo.hpo_config`) — stated in Python
/// by scripts/keys-reference.py; and no warning about config files that do not exist.
#[test]
fn a_champion_without_fingerprint_tags_is_keyed_as_the_pipelines_benchmark_workflow_keys_it() {
    let project = sqlite_project(&BACKBONES[..1]);
    podium_testkit::run_python(
        STRIP_FINGERPRINTS,
        &[&project.uri, &format!("t-hpo-{}", BACKBONES[0])],
    );
    // The sweeps ran with stages.hpo.hpo_config; the experiment's own hpo_config differs in
    // what the benchmark workflow's eval fingerprint reads (`evaluation`).
    let config = project.config_dir();
    let prod = std::fs::read_to_string(config.join("hpo/prod.yaml")).unwrap();
    std::fs::write(
        config.join("hpo/sweep.yaml"),
        format!("{prod}objective:\n  metric: macro-f1\n  direction: maximize\n"),
    )
    .unwrap();
    std::fs::write(
        config.join("hpo/prod.yaml"),
        format!("{prod}evaluation:\n  evaluator_version: '2'\n  metric: macro-f1\n"),
    )
    .unwrap();
    std::fs::write(
        config.join("experiment/t.yaml"),
        "experiment_name: t\ndata_config: data/resume_ner.yaml\ntrain_config: train.yaml\n\
         hpo_config: hpo/prod.yaml\nstages:\n  hpo:\n    hpo_config: hpo/sweep.yaml\n",
    )
    .unwrap();

    let output = project
        .podium(&["--format", "json", "-v", "benchmark"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    // No config file is missing, and nothing is fingerprinted as an empty config.
    for said in ["not found", "empty config"] {
        assert!(!stderr.contains(said), "{said}: {stderr}");
    }
    let runs: Vec<Run> = benchmark_runs(&project.uri)
        .into_iter()
        .filter(|run| run.info.status == RunStatus::Finished)
        .collect();
    assert_eq!(runs.len(), 1);
    let written = runs[0].tag("benchmark_key").unwrap();
    let champion = written.split(':').next().unwrap();
    let reference = std::process::Command::new(podium_testkit::python())
        .arg(podium_testkit::workspace_root().join("scripts/keys-reference.py"))
        .arg("--config-dir")
        .arg(&config)
        .args(["--benchmark-workflow", "--run-id", champion])
        .output()
        .unwrap();
    assert!(
        reference.status.success(),
        "{}",
        String::from_utf8_lossy(&reference.stderr)
    );
    let pipeline: serde_json::Value = serde_json::from_slice(&reference.stdout).unwrap();
    assert_eq!(written, pipeline["benchmark_key"], "{pipeline}");
    // The HPO config of record would have given another key: the choice is tested.
    let sweep = podium_keys::load_path(&config.join("hpo/sweep.yaml")).unwrap();
    let of_record =
        podium_keys::eval_fingerprint(&podium_keys::benchmark_eval_config(&sweep).unwrap())
            .unwrap();
    assert_ne!(written.split(':').nth(2), Some(of_record.as_str()));
}

#[test]
fn a_failure_leaves_the_run_failed_and_no_cache_file() {
    let project = sqlite_project(&BACKBONES[..2]);
    // A checkpoint whose weights cannot be decoded.
    std::fs::write(
        project
            .root()
            .join("checkpoints/distilbert/model.safetensors"),
        b"definitely not safetensors",
    )
    .unwrap();
    let (output, report) = project.run_json(&["benchmark"]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert_eq!(names(&report, "benchmarked"), ["bert-base-cased"]);
    let message = report["failed"]["distilbert-base-uncased"]
        .as_str()
        .unwrap();
    assert!(message.contains("model.safetensors"), "{message}");
    assert_eq!(
        project.cache_files().len(),
        1,
        "only the successful key is cached"
    );

    let runs = benchmark_runs(&project.uri);
    let failed: Vec<&Run> = runs
        .iter()
        .filter(|run| run.tag("code.model") == Some("distilbert"))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].info.status, RunStatus::Failed);
    assert!(
        failed[0]
            .tag("code.benchmark.error")
            .unwrap()
            .contains("model.safetensors")
    );
}

fn spawn_slow_worker(project: &Project, lease: &str) -> Child {
    project
        .podium(&["benchmark"])
        .env("PODIUM_CLAIM_LEASE_SECONDS", lease)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for_running_run(uri: &str) -> Run {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(run) = benchmark_runs(uri)
            .into_iter()
            .find(|run| run.info.status == RunStatus::Running)
        {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "no RUNNING benchmark run appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Long enough that a worker is still measuring when the test interrupts it.
const SLOW_BENCHMARK: &str = concat!(
    "run:\n  mode: null\nbenchmarking:\n  batch_sizes: [1]\n  max_length: 16\n",
    "  warmup_iterations: 1\n  iterations: 3\n  min_duration_s: 3\n  device: cpu\n",
    "  threads: 1\n  input: synthetic\n",
);

#[test]
fn a_killed_worker_leaves_no_cache_and_its_claim_is_taken_over_after_the_lease() {
    let project = sqlite_project(&BACKBONES[..1]);
    project.set_benchmark(SLOW_BENCHMARK);
    let mut worker = spawn_slow_worker(&project, "2");
    let abandoned = wait_for_running_run(&project.uri);
    worker.kill().unwrap(); // SIGKILL: no handler runs
    worker.wait().unwrap();
    assert!(
        project.cache_files().is_empty(),
        "no cache without a result"
    );
    let key = abandoned.tag("benchmark_key").unwrap().to_string();
    let store = podium_mlflow::open_store(Some(&project.uri)).unwrap();
    let claim = podium_bench::claim::claim_name(&key);
    assert!(
        store.get_experiment_by_name(&claim).unwrap().is_some(),
        "the dead worker's claim"
    );

    let started = Instant::now();
    let (output, report) = {
        let mut command = project.podium(&["--format", "json", "benchmark"]);
        command.env("PODIUM_CLAIM_LEASE_SECONDS", "2");
        let output = command.output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        (output, json)
    };
    assert!(output.status.success(), "{report}");
    assert_eq!(names(&report, "benchmarked"), ["bert-base-cased"]);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for the lease"
    );
    assert_eq!(finished_benchmarks(&project.uri)[&key], 1);
    let abandoned = store.get_run(abandoned.id()).unwrap();
    assert_eq!(abandoned.info.status, RunStatus::Failed);
    assert!(
        abandoned
            .tag("code.benchmark.error")
            .unwrap()
            .contains("expired")
    );
    assert!(
        store.get_experiment_by_name(&claim).unwrap().is_none(),
        "claim released"
    );
    assert_eq!(project.cache_files().len(), 1);
}

#[test]
fn ctrl_c_marks_the_run_killed_and_releases_the_claim() {
    a_signal_marks_the_run_killed_and_releases_the_claim("-INT");
}

/// What `timeout`, Docker, Kubernetes and Slurm send: handled like Ctrl-C.
#[test]
fn sigterm_marks_the_run_killed_and_releases_the_claim() {
    a_signal_marks_the_run_killed_and_releases_the_claim("-TERM");
}

fn a_signal_marks_the_run_killed_and_releases_the_claim(signal: &str) {
    let project = sqlite_project(&BACKBONES[..1]);
    project.set_benchmark(SLOW_BENCHMARK);
    let mut worker = spawn_slow_worker(&project, "60");
    let running = wait_for_running_run(&project.uri);
    let status = Command::new("kill")
        .args([signal, &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = worker.wait().unwrap();
    assert_eq!(exit.code(), Some(130));
    let store = podium_mlflow::open_store(Some(&project.uri)).unwrap();
    let run = store.get_run(running.id()).unwrap();
    assert_eq!(run.info.status, RunStatus::Killed);
    let claim = podium_bench::claim::claim_name(run.tag("benchmark_key").unwrap());
    assert!(store.get_experiment_by_name(&claim).unwrap().is_none());
    assert!(project.cache_files().is_empty());
}

fn four_workers(project: &Project) {
    let workers: Vec<Child> = (0..4)
        .map(|_| {
            project
                .podium(&["--format", "json", "benchmark"])
                .env("PODIUM_CLAIM_LEASE_SECONDS", "30")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut measured = 0;
    for worker in workers {
        let output = worker.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        measured += names(&report, "benchmarked").len();
        assert_eq!(report["results"].as_object().unwrap().len(), 6, "{report}");
    }
    assert_eq!(measured, 6, "each key measured by exactly one worker");
    let finished = finished_benchmarks(&project.uri);
    assert_eq!(finished.len(), 6, "{finished:?}");
    assert!(finished.values().all(|&n| n == 1), "{finished:?}");
    assert_eq!(project.cache_files().len(), 6);
}

#[test]
fn four_concurrent_workers_measure_each_key_once_on_sqlite() {
    let project = sqlite_project(&BACKBONES);
    four_workers(&project);
}

#[test]
fn four_concurrent_workers_measure_each_key_once_on_a_server() {
    let server = podium_testkit::MlflowServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = podium_mlflow::open_store(Some(server.url())).unwrap();
    support::populate(store.as_ref(), dir.path(), &BACKBONES);
    support::write_configs(&dir.path().join("config"), &BACKBONES);
    let project = Project {
        uri: server.url().to_string(),
        dir,
    };
    four_workers(&project);
}

/// `(benchmark_key, study_key_hash, trial_key_hash)` of every FINISHED podium benchmark run.
fn run_identities(uri: &str) -> Vec<(String, String, String)> {
    let mut identities: Vec<(String, String, String)> = benchmark_runs(uri)
        .into_iter()
        .filter(|run| run.info.status == RunStatus::Finished)
        .map(|run| {
            (
                run.tag("benchmark_key").unwrap().to_string(),
                run.tag("code.study_key_hash").unwrap().to_string(),
                run.tag("code.trial_key_hash").unwrap().to_string(),
            )
        })
        .collect();
    identities.sort();
    identities
}

/// Podium's runs are found by the pipeline's existence check (key first, then study + trial
/// hash) and read with the pipeline's names; the pipeline's layout holds the disk results.
fn podium_runs_pass_the_pipelines_existence_check(project: &Project) {
    let (output, report) = project.run_json(&["benchmark"]);
    assert!(output.status.success(), "{report}");
    assert_eq!(names(&report, "benchmarked").len(), 2, "{report}");
    let identities = run_identities(&project.uri);
    assert_eq!(identities.len(), 2);
    let mut checks = identities.clone();
    // A key the store does not hold: the pipeline falls back to the study + trial hashes.
    checks.push((
        "elsewhere:d:e:c".to_string(),
        identities[0].1.clone(),
        identities[0].2.clone(),
    ));
    let found = support::pipeline_existence_check(&project.uri, &checks);
    for (check, (key, study, trial)) in found.iter().zip(&checks) {
        let expected_by_key = usize::from(!key.starts_with("elsewhere"));
        assert_eq!(check["by_key"], expected_by_key, "{check}");
        assert_eq!(check["by_hash"], 1, "{check}");
        assert_eq!(check["stage"], "benchmarking", "{check}");
        assert_eq!(check["run_type"], "benchmark", "{check}");
        let run_name = check["run_name"].as_str().unwrap();
        let bench8 = &check["config_hash"].as_str().unwrap()[..8];
        let model = check["model"].as_str().unwrap();
        assert_eq!(
            run_name,
            format!(
                "local_{model}_benchmark_study-{}_trial-{}_bench-{bench8}",
                &study[..8],
                &trial[..8]
            )
        );
        assert_eq!(
            check["metrics"],
            serde_json::json!([
                "latency_batch_1_cv",
                "latency_batch_1_ms",
                "latency_batch_1_p50_ms",
                "latency_batch_1_p90_ms",
                "latency_batch_1_p95_ms",
                "latency_batch_1_p99_ms",
                "latency_batch_1_std_ms",
                "throughput_samples_per_sec"
            ])
        );
        assert_eq!(
            check["params"],
            serde_json::json!([
                "benchmark_batch_sizes",
                "benchmark_device",
                "benchmark_iterations",
                "benchmark_max_length",
                "benchmark_warmup_iterations"
            ])
        );
        let file = project
            .cache_dir()
            .join(model)
            .join(format!("study-{}", &study[..8]))
            .join(format!("trial-{}", &trial[..8]))
            .join(format!("bench-{bench8}"))
            .join("benchmark.json");
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert!(doc["batch_1"]["mean_ms"].as_f64().unwrap() > 0.0, "{doc}");
        assert!(doc["batch_2"]["median_ms"].is_number(), "{doc}");
        // The fallback check found the run of the first identity: its file holds that key.
        let stored_key = if expected_by_key == 1 {
            key
        } else {
            &identities[0].0
        };
        assert_eq!(doc["podium"]["benchmark_key"], stored_key.as_str());
        assert_eq!(
            doc["podium"]["harness_version"],
            podium_bench::HARNESS_VERSION
        );
    }
}

#[test]
fn podium_runs_pass_the_pipelines_existence_check_on_sqlite() {
    podium_runs_pass_the_pipelines_existence_check(&sqlite_project(&BACKBONES[..2]));
}

#[test]
fn podium_runs_pass_the_pipelines_existence_check_on_a_server() {
    let server = podium_testkit::MlflowServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = podium_mlflow::open_store(Some(server.url())).unwrap();
    support::populate(store.as_ref(), dir.path(), &BACKBONES[..2]);
    support::write_configs(&dir.path().join("config"), &BACKBONES[..2]);
    let project = Project {
        uri: server.url().to_string(),
        dir,
    };
    podium_runs_pass_the_pipelines_existence_check(&project);
}

#[test]
fn podium_runs_pass_the_pipelines_existence_check_on_postgresql() {
    let cluster = podium_testkit::PostgresCluster::shared();
    let uri = cluster.uri(&cluster.create_database());
    let dir = tempfile::tempdir().unwrap();
    let store = podium_mlflow::open_store(Some(&uri)).unwrap();
    support::populate(store.as_ref(), dir.path(), &BACKBONES[..2]);
    support::write_configs(&dir.path().join("config"), &BACKBONES[..2]);
    podium_runs_pass_the_pipelines_existence_check(&Project { uri, dir });
}

#[test]
fn a_pipeline_measured_run_is_shown_as_the_pipelines_and_podium_still_measures() {
    let project = sqlite_project(&BACKBONES[..1]);
    let (_, plan) = project.run_json(&["benchmark", "--dry-run"]);
    let planned = &plan["plan"]["bert-base-cased"];
    let key = planned["key"].as_str().unwrap().to_string();
    let store = podium_mlflow::open_store(Some(&project.uri)).unwrap();
    let champion = store
        .get_run(planned["champion_run_id"].as_str().unwrap())
        .unwrap();
    // A run the pipeline's benchmark tracker wrote: its tags, PyTorch numbers, no podium
    // harness tag.
    let experiment = store.create_experiment("t-benchmark").unwrap();
    let tags: std::collections::BTreeMap<String, String> = [
        ("benchmark_key", key.as_str()),
        ("code.stage", "benchmarking"),
        ("code.model", "bert"),
        (
            "code.study_key_hash",
            champion.tag("code.study_key_hash").unwrap(),
        ),
        (
            "code.trial_key_hash",
            champion.tag("code.trial_key_hash").unwrap(),
        ),
        ("mlflow.runType", "benchmark"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let pipeline_run = store
        .create_run(&experiment, "local_bert_benchmark_pipeline", 10, &tags)
        .unwrap();
    let point = podium_mlflow::MetricPoint {
        key: "latency_batch_1_ms",
        value: 999.0,
        timestamp: 11,
        step: 0,
    };
    store
        .log_batch(&pipeline_run.run_id, &[point], &[], &[])
        .unwrap();
    store
        .update_run(&pipeline_run.run_id, RunStatus::Finished, Some(12))
        .unwrap();

    let (output, report) = project.run_json(&["benchmark"]);
    assert!(output.status.success(), "{report}");
    assert_eq!(
        names(&report, "benchmarked"),
        ["bert-base-cased"],
        "{report}"
    );
    let ours = report["results"]["bert-base-cased"]["latency_batch_1_ms"]
        .as_f64()
        .unwrap();
    assert!(ours < 999.0, "podium's own measurement: {report}");
    let pipeline = report["pipeline_results"].as_array().unwrap();
    assert_eq!(pipeline.len(), 1, "{report}");
    assert_eq!(pipeline[0]["run_id"], pipeline_run.run_id.as_str());
    assert_eq!(pipeline[0]["matched_by"], "benchmark_key");
    assert_eq!(pipeline[0]["metrics"]["latency_batch_1_ms"], 999.0);

    // Done now (podium's run), the pipeline's run still shown apart and never ranked.
    let output = project.podium(&["run"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("measured by the pipeline: 1"), "{stdout}");
    assert!(
        stdout.contains("benchmarked 0, skipped 1, restored 0, failed 0"),
        "{stdout}"
    );
    let (_, rank) = project.run_json(&["rank"]);
    assert_eq!(
        rank["ranked"][0]["latency_ms"].as_f64().unwrap(),
        ours,
        "{rank}"
    );
    assert_eq!(rank["harness"], "podium");
}

#[test]
fn absurd_leases_are_refused_with_a_clear_error_not_a_panic() {
    let project = sqlite_project(&BACKBONES[..1]);
    for (flag, env) in [
        (None, Some("1e308")),
        (Some("18446744073709551615"), None),
        (Some("0"), None),
    ] {
        let mut command = project.podium(&["benchmark"]);
        if let Some(seconds) = flag {
            command.args(["--lease-seconds", seconds]);
        }
        if let Some(seconds) = env {
            command.env("PODIUM_CLAIM_LEASE_SECONDS", seconds);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("604800"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(finished_benchmarks(&project.uri).is_empty());
}
