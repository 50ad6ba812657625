//! Many benchmark workers against the tracking server at `PODIUM_PG_TRACKING_URI` (a
//! PostgreSQL-backed `mlflow server` that `scripts/pg-mlflow-server.sh` starts): each key must
//! end with exactly one FINISHED run, no RUNNING run and no live claim. Ignored: it needs that
//! server; run it through the script.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use podium_bench::orchestrate::Outcome;
use support::{claim_experiments, fast_store, project_n, runs_per_key};

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "needs a PostgreSQL-backed mlflow server: scripts/pg-mlflow-server.sh"]
fn workers_on_a_postgresql_backed_server_measure_each_key_once() {
    let url = std::env::var("PODIUM_PG_TRACKING_URI")
        .expect("PODIUM_PG_TRACKING_URI: run scripts/pg-mlflow-server.sh");
    let workers = env_count("PODIUM_PG_WORKERS", 8);
    let champions = env_count("PODIUM_PG_CHAMPIONS", 12);
    let project = project_n(fast_store(&url).as_ref(), champions);
    let started = Instant::now();
    let outcomes: Vec<Vec<_>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|index| {
                let (project, url) = (&project, &url);
                scope.spawn(move || {
                    let worker = project.orchestrator(
                        fast_store(url),
                        &format!("pg-worker-{index}"),
                        Duration::from_secs(30),
                    );
                    project.sweep(&worker)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    let count = |kind: Outcome| {
        outcomes
            .iter()
            .flatten()
            .filter(|outcome| outcome.outcome == kind)
            .count()
    };
    let counts = runs_per_key(fast_store(&url).as_ref());
    let (active, deleted) = claim_experiments(&url);
    println!(
        "postgresql: {workers} workers x {champions} champions in {:.1} s: {} benchmarked, {} \
         skipped, {} restored, {} failed; FINISHED/RUNNING per key all (1, 0): {}; live claims {}; claim \
         tombstones {}",
        elapsed.as_secs_f64(),
        count(Outcome::Benchmarked),
        count(Outcome::Skipped),
        count(Outcome::RestoredCache) + count(Outcome::RestoredMlflow),
        count(Outcome::Failed),
        project
            .keys()
            .iter()
            .all(|key| counts.get(key) == Some(&(1, 0))),
        active.len(),
        deleted.len()
    );
    for key in project.keys() {
        assert_eq!(counts.get(&key), Some(&(1, 0)), "key {key}: {counts:?}");
    }
    assert!(active.is_empty(), "live claims: {active:?}");
    assert_eq!(count(Outcome::Benchmarked), champions);
    assert_eq!(count(Outcome::Failed), 0, "{outcomes:#?}");
}
