//! Speed of the candidate query (one backbone's FINISHED HPO trials, every page), podium vs
//! Python `MlflowClient.search_runs` on the same store:
//!
//! - SQLite: a generated MLflow 3.17.2 database of `--runs` runs (default 100,000);
//! - REST: a real `mlflow server` on a generated database of `--rest-runs` runs (default
//!   10,000), plus all backbones at once on threads.
//!
//! ```text
//! cargo run -p podium-mlflow --example bench_search -- [--runs N] [--rest-runs N] [--repeat N] [--db PATH]
//! ```
//!
//! Prints a Markdown table for docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use podium_mlflow::query::search_all_concurrently;
use podium_mlflow::{
    Filter, MetricPoint, RestConfig, RestStore, RunStatus, SqliteStore, TrackingStore, ViewType,
    search_all,
};

const BACKBONES: [&str; 5] = ["distilbert", "distilroberta", "deberta", "bert", "roberta"];
const EXPERIMENT: &str = "bench-hpo";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

/// `runs` runs over five backbones; 90 % FINISHED HPO trials, the rest failed or refits.
fn generate(db: &Path, runs: usize) {
    let started = Instant::now();
    let store = SqliteStore::open(db).unwrap();
    let experiment = store.create_experiment(EXPERIMENT).unwrap();
    let chunk = 10_000;
    for first in (0..runs).step_by(chunk) {
        store
            .write_batch(|batch| {
                for i in first..(first + chunk).min(runs) {
                    let backbone = BACKBONES[i % BACKBONES.len()];
                    let stage = if i % 20 == 7 { "hpo_refit" } else { "hpo" };
                    // Tagged as the pipeline tags its trials (the model's short name).
                    let tags = BTreeMap::from([
                        ("code.model".to_string(), backbone.to_string()),
                        ("code.stage".to_string(), stage.to_string()),
                        (
                            "code.study_key_hash".to_string(),
                            format!("{:064x}", i % 97),
                        ),
                    ]);
                    let run =
                        batch.create_run(&experiment, &format!("trial-{i}"), i as i64, &tags)?;
                    let f1 = (i % 1000) as f64 / 1000.0;
                    batch.log_batch(
                        &run.run_id,
                        &[
                            MetricPoint {
                                key: "macro_f1",
                                value: f1,
                                timestamp: i as i64,
                                step: 0,
                            },
                            MetricPoint {
                                key: "loss",
                                value: 1.0 - f1,
                                timestamp: i as i64,
                                step: 0,
                            },
                        ],
                        &[("learning_rate", "3e-5"), ("batch_size", "16")],
                        &[],
                    )?;
                    let status = if i % 10 == 3 {
                        RunStatus::Failed
                    } else {
                        RunStatus::Finished
                    };
                    batch.update_run(&run.run_id, status, Some(i as i64 + 1))?;
                }
                Ok(())
            })
            .unwrap();
    }
    eprintln!(
        "generated {runs} runs in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        db.display()
    );
}

fn candidates(backbone: &str) -> Filter {
    Filter::new()
        .tag_eq("code.model", backbone)
        .tag_eq("code.stage", "hpo")
        .status(RunStatus::Finished)
}

/// CPU time (user + system) of this process in ms, from /proc (Linux); the machine this
/// runs on is shared, so CPU time is the fair comparison and wall time is shown beside it.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the name, in 1/100 s.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) * 10.0
}

/// Median wall ms, median CPU ms and count of `repeat` runs of `work`.
fn time(repeat: usize, mut work: impl FnMut() -> usize) -> Timing {
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    let mut count = 0;
    for _ in 0..repeat {
        let started = Instant::now();
        let cpu_started = cpu_ms();
        count = work();
        wall.push(started.elapsed().as_secs_f64() * 1000.0);
        cpu.push(cpu_ms() - cpu_started);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    Timing {
        wall_ms: wall[wall.len() / 2],
        cpu_ms: cpu[cpu.len() / 2],
        count,
    }
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    wall_ms: f64,
    cpu_ms: f64,
    count: usize,
}

fn python(uri: &str, backbone: &str, repeat: usize) -> Timing {
    let script = podium_testkit::workspace_root().join("scripts/bench-search.py");
    let output = std::process::Command::new(podium_testkit::python())
        .arg(script)
        .args([uri, EXPERIMENT, backbone, &repeat.to_string()])
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    Timing {
        wall_ms: json["median_ms"].as_f64().unwrap(),
        cpu_ms: json["median_cpu_ms"].as_f64().unwrap(),
        count: json["count"].as_u64().unwrap() as usize,
    }
}

fn row(what: &str, podium: Timing, other: Timing) {
    assert_eq!(
        podium.count, other.count,
        "{what}: both sides must see the same runs"
    );
    println!(
        "| {what} | {} | {:.0} ms ({:.0} ms CPU) | {:.0} ms ({:.0} ms CPU) | {:.1}× ({:.1}× CPU) |",
        podium.count,
        podium.wall_ms,
        podium.cpu_ms,
        other.wall_ms,
        other.cpu_ms,
        other.wall_ms / podium.wall_ms,
        other.cpu_ms / podium.cpu_ms.max(1.0)
    );
}

fn main() {
    let runs = arg("--runs", 100_000);
    let rest_runs = arg("--rest-runs", 10_000);
    let repeat = arg("--repeat", 5);
    println!(
        "| query | runs returned | podium wall (CPU) | Python MlflowClient wall (CPU) | ratio wall (CPU) |"
    );
    println!("|---|---|---|---|---|");

    // `--db PATH` keeps (or reuses) the generated database, for poking at it with sqlite3.
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<String> = std::env::args().collect();
    let db = args
        .iter()
        .position(|a| a == "--db")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| dir.path().join("mlflow.db"), std::path::PathBuf::from);
    if !db.exists() {
        generate(&db, runs);
    }
    let uri = format!("sqlite:///{}", db.display());
    let store = SqliteStore::open(&db).unwrap();
    let experiment = vec![
        store
            .get_experiment_by_name(EXPERIMENT)
            .unwrap()
            .unwrap()
            .experiment_id,
    ];
    let podium = time(repeat, || {
        search_all(
            &store,
            &experiment,
            &candidates("distilbert"),
            ViewType::ActiveOnly,
        )
        .unwrap()
        .len()
    });
    row(
        &format!("SQLite, {runs} runs, one backbone"),
        podium,
        python(&uri, "distilbert", repeat),
    );
    drop(store);

    let rest_dir = tempfile::tempdir().unwrap();
    generate(&rest_dir.path().join("mlflow.db"), rest_runs);
    let server = podium_testkit::MlflowServer::start_in(rest_dir).unwrap();
    let rest = RestStore::new(server.url(), RestConfig::default()).unwrap();
    let experiment = vec![
        rest.get_experiment_by_name(EXPERIMENT)
            .unwrap()
            .unwrap()
            .experiment_id,
    ];
    let podium = time(repeat, || {
        search_all(
            &rest,
            &experiment,
            &candidates("distilbert"),
            ViewType::ActiveOnly,
        )
        .unwrap()
        .len()
    });
    row(
        &format!("REST, {rest_runs} runs, one backbone"),
        podium,
        python(server.url(), "distilbert", repeat),
    );
    let filters: Vec<(&str, Filter)> = BACKBONES.iter().map(|b| (*b, candidates(b))).collect();
    let sequential = time(repeat, || {
        filters
            .iter()
            .map(|(_, filter)| {
                search_all(&rest, &experiment, filter, ViewType::ActiveOnly)
                    .unwrap()
                    .len()
            })
            .sum()
    });
    let concurrent = time(repeat, || {
        search_all_concurrently(&rest, &experiment, &filters, ViewType::ActiveOnly)
            .into_iter()
            .map(|(_, result)| result.unwrap().len())
            .sum()
    });
    row(
        &format!(
            "REST, {rest_runs} runs, all {} backbones: threads vs podium sequential",
            BACKBONES.len()
        ),
        concurrent,
        sequential,
    );
}
