//! Lost and truncated responses between a worker and a real `mlflow server` (through a
//! fault-injecting proxy): MLflow has no idempotency keys, so each retried write must be
//! recognised or cleaned up by podium — no orphan RUNNING run, no worker waiting on its own
//! claim, no search lost to a cut-off body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use podium_bench::claim::{ClaimOutcome, Claims, claim_name, claim_tag};
use podium_bench::orchestrate::Outcome;
use podium_keys::{Tag, TagRegistry};
use podium_mlflow::RunStatus;
use podium_mlflow::rest::{RestConfig, RestStore};
use podium_testkit::MlflowServer;
use podium_testkit::chaos::{ChaosProxy, ChaosRule, Fault};
use support::{benchmark_runs, fast_store, project, runs_per_key};

const LEASE: Duration = Duration::from_secs(30);

#[test]
fn a_lost_response_to_runs_create_leaves_no_running_duplicate() {
    let server = MlflowServer::start().unwrap();
    let direct = fast_store(server.url());
    let project = project(direct.as_ref(), &support::BACKBONES[..1]);
    let proxy = ChaosProxy::start(
        server.url(),
        11,
        vec![ChaosRule::path("runs/create", Fault::LoseResponse, 1.0).times(1)],
    )
    .unwrap();
    let worker = project.orchestrator(fast_store(proxy.url()), "w1", LEASE);
    let outcomes = project.sweep(&worker);
    assert_eq!(proxy.count("runs/create", Fault::LoseResponse), 1);
    assert_eq!(outcomes[0].outcome, Outcome::Benchmarked, "{outcomes:?}");
    let key = &project.targets[0].key;
    // The server created the run twice (the lost create, then its retry).
    let runs = benchmark_runs(direct.as_ref());
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs_per_key(direct.as_ref())[key], (1, 0), "{runs:?}");
    let failed: Vec<_> = runs
        .iter()
        .filter(|run| run.info.status == RunStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    let reason = failed[0]
        .tag(TagRegistry::defaults().get(Tag::BenchmarkError))
        .unwrap();
    assert!(reason.contains("duplicate create"), "{reason}");
    assert_eq!(
        outcomes[0].benchmark_run_id.as_deref(),
        runs.iter()
            .find(|run| run.info.status == RunStatus::Finished)
            .map(|run| run.id())
    );
}

#[test]
fn an_orphan_left_by_a_worker_that_gave_up_is_failed_by_the_next_claim_holder() {
    let server = MlflowServer::start().unwrap();
    let direct = fast_store(server.url());
    let project = project(direct.as_ref(), &support::BACKBONES[..1]);
    // The first worker's create reaches the server but its answer is lost, and so is its
    // look-up by creation token; it retries nothing and gives up.
    let proxy = ChaosProxy::start(
        server.url(),
        12,
        vec![
            ChaosRule::path("runs/create", Fault::LoseResponse, 1.0).times(1),
            ChaosRule::path("runs/search", Fault::Unavailable, 1.0).times(1),
        ],
    )
    .unwrap();
    let impatient = RestConfig {
        max_retries: 0,
        ..RestConfig::default()
    };
    let first = project.orchestrator(
        std::sync::Arc::new(RestStore::new(proxy.url(), impatient).unwrap()),
        "gave-up",
        LEASE,
    );
    let outcomes = project.sweep(&first);
    assert_eq!(outcomes[0].outcome, Outcome::Failed, "{outcomes:?}");
    assert_eq!(proxy.count("runs/create", Fault::LoseResponse), 1);
    assert_eq!(proxy.count("runs/search", Fault::Unavailable), 1);
    let key = &project.targets[0].key;
    assert_eq!(
        runs_per_key(direct.as_ref())[key],
        (0, 1),
        "the lost create left a RUNNING run nobody knows"
    );
    // Its claim is gone (released): the next worker holding the key fails the orphan.
    assert!(
        direct
            .get_experiment_by_name(&claim_name(key))
            .unwrap()
            .is_none()
    );
    let second = project.orchestrator(fast_store(proxy.url()), "next", LEASE);
    let outcomes = project.sweep(&second);
    assert_eq!(outcomes[0].outcome, Outcome::Benchmarked, "{outcomes:?}");
    assert_eq!(runs_per_key(direct.as_ref())[key], (1, 0));
    let orphan = benchmark_runs(direct.as_ref())
        .into_iter()
        .find(|run| run.info.status == RunStatus::Failed)
        .unwrap();
    let reason = orphan
        .tag(TagRegistry::defaults().get(Tag::BenchmarkError))
        .unwrap();
    assert!(reason.starts_with("orphaned"), "{reason}");
}

/// The claim's `experiments/create` did its work but the answer was `fault`: the retry must
/// recognise the claim as this worker's, at once, and anyone else must see it held.
fn the_claim_survives(fault: Fault) {
    let server = MlflowServer::start().unwrap();
    let proxy = ChaosProxy::start(
        server.url(),
        13,
        vec![ChaosRule::path("experiments/create", fault, 1.0).times(1)],
    )
    .unwrap();
    let tags = TagRegistry::defaults();
    let through_proxy = fast_store(proxy.url());
    let direct = fast_store(server.url());
    let alice = Claims::new(through_proxy, "alice".into(), LEASE, &tags);
    let bob = Claims::new(direct.clone(), "bob".into(), LEASE, &tags);
    let key = "lost:d:e:b";
    let started = std::time::Instant::now();
    let claim = match alice.try_claim(key).unwrap() {
        ClaimOutcome::Won(claim) => claim,
        ClaimOutcome::Held { owner, .. } => {
            panic!("alice waits on her own claim (held by {owner:?})")
        }
    };
    assert!(started.elapsed() < LEASE / 2, "{:?}", started.elapsed());
    assert_eq!(proxy.count("experiments/create", fault), 1);
    let experiment = direct.get_experiment(claim.experiment_id()).unwrap();
    assert_eq!(experiment.name, claim_name(key));
    assert_eq!(experiment.tags[claim_tag::OWNER], "alice");
    assert!(
        matches!(bob.try_claim(key).unwrap(), ClaimOutcome::Held { owner: Some(owner), .. } if owner == "alice")
    );
    claim.release().unwrap();
    assert!(matches!(bob.try_claim(key).unwrap(), ClaimOutcome::Won(_)));
}

#[test]
fn a_lost_response_to_the_claim_create_is_recognised_as_ones_own_claim() {
    the_claim_survives(Fault::LoseResponse);
}

#[test]
fn a_truncated_response_to_the_claim_create_is_recognised_as_ones_own_claim() {
    the_claim_survives(Fault::Truncate);
}

#[test]
fn a_truncated_runs_search_is_retried() {
    let server = MlflowServer::start().unwrap();
    let direct = fast_store(server.url());
    let project = project(direct.as_ref(), &support::BACKBONES[..2]);
    let outcomes = project.sweep(&project.orchestrator(direct.clone(), "first", LEASE));
    assert!(outcomes.iter().all(|o| o.outcome == Outcome::Benchmarked));
    let proxy = ChaosProxy::start(
        server.url(),
        14,
        vec![ChaosRule::path("runs/search", Fault::Truncate, 1.0).times(3)],
    )
    .unwrap();
    let worker = project.orchestrator(fast_store(proxy.url()), "second", LEASE);
    let plan = worker.plan(project.targets.clone()).unwrap();
    assert!(proxy.count("runs/search", Fault::Truncate) >= 1);
    assert!(
        plan.iter().all(|planned| planned.status.label() == "done"),
        "{plan:?}"
    );
    for (planned, first) in plan.iter().zip(&outcomes) {
        let found = worker.finished_run(&planned.target.key).unwrap().unwrap();
        assert_eq!(Some(found.id()), first.benchmark_run_id.as_deref());
    }
    assert_eq!(proxy.count("runs/search", Fault::Truncate), 3);
}
