//! The corners of the claim protocol a second red-team found (items 12–14 of issue 26), each
//! through the fault-injecting proxy in front of a real `mlflow server`: exactly-once held in
//! every one of them, but a worker failed a key, a run was left RUNNING, or a claim outlived its
//! key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use podium_bench::claim::{ClaimOutcome, Claims, claim_name};
use podium_bench::orchestrate::{InFlight, Outcome};
use podium_keys::TagRegistry;
use podium_mlflow::RunStatus;
use podium_mlflow::rest::{RestConfig, RestStore};
use podium_testkit::MlflowServer;
use podium_testkit::chaos::{ChaosProxy, ChaosRule, Fault};
use support::{benchmark_runs, claim_experiments, fast_store, project};

/// Item 12: the "already exists" answer to a claim's `experiments/create`, cut off (half of it,
/// or all of its body: seen when uvicorn workers die) has lost its error code; it is retried,
/// so the worker learns the key is held and waits, instead of failing the key.
#[test]
fn a_cut_off_already_exists_answer_to_a_claim_is_retried() {
    let server = MlflowServer::start().unwrap();
    let proxy = ChaosProxy::start(server.url(), 12, vec![]).unwrap();
    let tags = TagRegistry::defaults();
    let key = "run-12:data:eval:bench";
    let alice = Claims::new(
        fast_store(server.url()),
        "alice".into(),
        Duration::from_secs(60),
        &tags,
    );
    let ClaimOutcome::Won(claim) = alice.try_claim(key).unwrap() else {
        panic!("alice did not win the free claim");
    };
    let bob = Claims::new(
        fast_store(proxy.url()),
        "bob".into(),
        Duration::from_secs(60),
        &tags,
    );
    for fault in [Fault::Truncate, Fault::EmptyBody] {
        proxy.set_rules(vec![
            ChaosRule::path("experiments/create", fault, 1.0).times(1),
        ]);
        match bob.try_claim(key) {
            Ok(ClaimOutcome::Held { owner, .. }) => {
                assert_eq!(owner.as_deref(), Some("alice"), "{fault:?}");
            }
            other => panic!("{fault:?}: bob did not see alice's claim: {other:?}"),
        }
        assert_eq!(proxy.count("experiments/create", fault), 1, "{fault:?}");
    }
    claim.release().unwrap();
}

/// Item 13: SIGTERM (here: the interrupt the signal handler runs) while the claim's benchmark
/// run is being created — its `runs/create` answered late — waits for the create and marks the
/// run KILLED, instead of finding no run to mark and leaving it RUNNING with no claim behind it.
#[test]
fn an_interrupt_while_the_run_is_created_leaves_it_killed() {
    let server = MlflowServer::start().unwrap();
    let direct = fast_store(server.url());
    let project = Arc::new(project(direct.as_ref(), &["bert-base-cased"]));
    let proxy = ChaosProxy::start(
        server.url(),
        13,
        vec![
            ChaosRule::path(
                "runs/create",
                Fault::LateResponse(Duration::from_millis(1500)),
                1.0,
            )
            .times(1),
        ],
    )
    .unwrap();
    let store = fast_store(proxy.url());
    let in_flight = InFlight::new(store.clone(), &TagRegistry::defaults());
    let worker = {
        let project = Arc::clone(&project);
        let in_flight = in_flight.clone();
        std::thread::spawn(move || {
            let orchestrator =
                project.orchestrator_in(store, "w1", Duration::from_secs(30), in_flight);
            project.sweep(&orchestrator)
        })
    };
    // The run is created on the server; its answer is still on its way back.
    let started = Instant::now();
    while proxy.seen().get("runs/create").copied().unwrap_or(0) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no runs/create"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let killed = in_flight.interrupt_all();
    let outcomes = worker.join().unwrap();
    assert_eq!(outcomes[0].outcome, Outcome::Failed, "{outcomes:?}");
    assert_eq!(killed, 1, "the run being created was not marked");
    let runs = benchmark_runs(direct.as_ref());
    let statuses: Vec<RunStatus> = runs.iter().map(|run| run.info.status).collect();
    assert_eq!(statuses, [RunStatus::Killed], "{runs:?}");
    let (active, _) = claim_experiments(server.url());
    assert!(active.is_empty(), "claims left: {active:?}");
}

/// Item 14: a worker that wrote FINISHED but could not release its claim (killed just then:
/// here its release is refused until it gives up) leaves a live claim that no later worker
/// would look at, since the key is done. The next worker that finds the key done buries it once
/// its lease has expired.
#[test]
fn a_claim_left_after_its_key_is_done_is_buried_once_expired() {
    let server = MlflowServer::start().unwrap();
    let direct = fast_store(server.url());
    let project = project(direct.as_ref(), &["bert-base-cased"]);
    let proxy = ChaosProxy::start(
        server.url(),
        14,
        vec![ChaosRule::path("experiments/update", Fault::Reset, 1.0)],
    )
    .unwrap();
    let lease = Duration::from_secs(5);
    // Few retries: the refused release gives up at once, well inside the lease.
    let doomed_store: Arc<dyn podium_mlflow::TrackingStore> = Arc::new(
        RestStore::new(
            proxy.url(),
            RestConfig {
                max_retries: 1,
                backoff_factor: 0.01,
                backoff_jitter: 0.0,
                ..RestConfig::default()
            },
        )
        .unwrap(),
    );
    let doomed = project.orchestrator(doomed_store, "w-doomed", lease);
    let outcomes = project.sweep(&doomed);
    assert_eq!(outcomes[0].outcome, Outcome::Benchmarked, "{outcomes:?}");
    let claim = claim_name(&project.targets[0].key);
    let live = || {
        direct
            .get_experiment_by_name(&claim)
            .unwrap()
            .is_some_and(|experiment| experiment.is_active())
    };
    assert!(live(), "the release was meant to fail");

    // Within the lease, the claim is its owner's: a worker finding the key done leaves it.
    let next = project.orchestrator(direct.clone(), "w-next", lease);
    assert_eq!(project.sweep(&next)[0].outcome, Outcome::Skipped);
    assert!(live(), "buried while its lease runs");

    std::thread::sleep(lease + Duration::from_millis(500));
    let outcomes = project.sweep(&next);
    assert_eq!(outcomes[0].outcome, Outcome::Skipped, "{outcomes:?}");
    let (active, deleted) = claim_experiments(server.url());
    assert!(
        active.is_empty(),
        "the dead worker's claim is still live: {active:?}"
    );
    assert!(
        deleted.iter().any(|name| name.contains(".expired.")),
        "{deleted:?}"
    );
    let finished = benchmark_runs(direct.as_ref())
        .iter()
        .filter(|run| run.info.status == RunStatus::Finished)
        .count();
    assert_eq!(finished, 1);
}
