//! Eight benchmark workers on one real `mlflow server`: under a storm of 503s and lost
//! responses each key still ends with exactly one FINISHED run, and nothing is left RUNNING or
//! claimed; in calm weather a sweep leaves about one claim tombstone per key measured, not one
//! per worker and key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use podium_bench::orchestrate::{BenchmarkOutcome, Outcome};
use podium_mlflow::TrackingStore;
use podium_testkit::MlflowServer;
use podium_testkit::chaos::{ChaosProxy, ChaosRule, Fault};
use support::{BACKBONES, Project, claim_experiments, fast_store, project, runs_per_key};

const WORKERS: usize = 8;

/// Runs `WORKERS` workers at once, each with its own store on `url`, and returns their
/// outcomes.
fn sweep_in_parallel(project: &Project, url: &str, lease: Duration) -> Vec<Vec<BenchmarkOutcome>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|index| {
                scope.spawn(move || {
                    let store: Arc<dyn TrackingStore> = fast_store(url);
                    let worker = project.orchestrator(store, &format!("worker-{index}"), lease);
                    project.sweep(&worker)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn assert_clean_end(server: &MlflowServer, project: &Project) {
    let direct = fast_store(server.url());
    let counts = runs_per_key(direct.as_ref());
    for key in project.keys() {
        assert_eq!(
            counts.get(&key),
            Some(&(1, 0)),
            "key {key}: (FINISHED, RUNNING) runs; all: {counts:?}"
        );
    }
    let (active, _) = claim_experiments(server.url());
    assert!(active.is_empty(), "live claims left: {active:?}");
}

#[test]
fn eight_workers_in_a_storm_of_503s_and_lost_responses_leave_one_finished_run_per_key() {
    let server = MlflowServer::start().unwrap();
    let project = project(fast_store(server.url()).as_ref(), &BACKBONES);
    let proxy = ChaosProxy::start(
        server.url(),
        2026,
        vec![
            ChaosRule::any(Fault::Unavailable, 0.30),
            ChaosRule::any(Fault::LoseResponse, 0.05),
        ],
    )
    .unwrap();
    let started = Instant::now();
    let outcomes = sweep_in_parallel(&project, proxy.url(), Duration::from_secs(20));
    let elapsed = started.elapsed();
    proxy.set_rules(Vec::new());
    let injected = proxy.injected();
    eprintln!(
        "storm: {} requests, faults {injected:?}, {:.1} s",
        proxy.requests(),
        elapsed.as_secs_f64()
    );
    // About a hundred 503s and a dozen lost responses are expected; far fewer would mean the
    // storm did not happen.
    assert!(proxy.count("", Fault::Unavailable) > 30, "{injected:?}");
    assert!(proxy.count("", Fault::LoseResponse) >= 2, "{injected:?}");
    assert_clean_end(&server, &project);
    // Every worker settled every key, and each key was measured once.
    let measured = outcomes
        .iter()
        .flatten()
        .filter(|outcome| outcome.outcome == Outcome::Benchmarked)
        .count();
    assert_eq!(measured, project.keys().len(), "{outcomes:#?}");
    for worker in &outcomes {
        assert_eq!(worker.len(), project.keys().len());
        for outcome in worker {
            assert_ne!(outcome.outcome, Outcome::Failed, "{outcome:?}");
        }
    }
    assert_eq!(
        support::result_files(project.root()).len(),
        project.keys().len()
    );
}

#[test]
fn a_calm_sweep_of_eight_workers_leaves_about_one_claim_tombstone_per_key() {
    let server = MlflowServer::start().unwrap();
    let project = project(fast_store(server.url()).as_ref(), &BACKBONES);
    let outcomes = sweep_in_parallel(&project, server.url(), Duration::from_secs(20));
    assert_clean_end(&server, &project);
    let measured = outcomes
        .iter()
        .flatten()
        .filter(|outcome| outcome.outcome == Outcome::Benchmarked)
        .count();
    assert_eq!(measured, project.keys().len());
    let (_, deleted) = claim_experiments(server.url());
    let keys = project.keys().len();
    eprintln!("{} claim tombstones for {keys} keys", deleted.len());
    // One per key measured; a waiting worker that finds the key done claims nothing. A race
    // (a worker reading the key just before it is finished) may add one now and then; before
    // the status was read again right before each claim, 8 workers left about 4 per key.
    assert!(
        deleted.len() >= keys && deleted.len() <= 2 * keys,
        "{} tombstones for {keys} keys: {deleted:#?}",
        deleted.len()
    );
    // Another sweep finds everything done and claims nothing.
    sweep_in_parallel(&project, server.url(), Duration::from_secs(20));
    assert_eq!(claim_experiments(server.url()).1.len(), deleted.len());
}
