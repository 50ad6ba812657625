//! The claims protocol against real stores (SQLite, an `mlflow server`, PostgreSQL): one winner
//! per key, release, takeover of expired (and never-tagged) claims by id, a stale owner that
//! finds its claim gone, and on PostgreSQL a FINISHED write that a concurrent takeover cannot
//! slip past.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use podium_bench::claim::{ClaimOutcome, Claims, claim_name, claim_tag};
use podium_keys::{Tag, TagRegistry};
use podium_mlflow::{RunStatus, SqliteStore, TrackingStore};

fn sqlite() -> (tempfile::TempDir, Arc<dyn TrackingStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("mlflow.db")).unwrap();
    (dir, Arc::new(store))
}

fn won(outcome: ClaimOutcome) -> podium_bench::claim::Claim {
    match outcome {
        ClaimOutcome::Won(claim) => claim,
        ClaimOutcome::Held { owner, .. } => panic!("held by {owner:?}"),
    }
}

fn exactly_one_winner_among_racing_threads(store: Arc<dyn TrackingStore>) {
    let winners: Vec<bool> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|worker| {
                let store = store.clone();
                scope.spawn(move || {
                    let claims = Claims::new(
                        store,
                        format!("w{worker}"),
                        Duration::from_secs(60),
                        &TagRegistry::defaults(),
                    );
                    matches!(claims.try_claim("k:d:e:b").unwrap(), ClaimOutcome::Won(_))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(winners.iter().filter(|&&w| w).count(), 1, "{winners:?}");
}

#[test]
fn one_winner_on_sqlite() {
    let (_dir, store) = sqlite();
    exactly_one_winner_among_racing_threads(store);
}

#[test]
fn one_winner_and_takeover_on_a_server() {
    let server = podium_testkit::MlflowServer::start().unwrap();
    let store: Arc<dyn TrackingStore> =
        Arc::from(podium_mlflow::open_store(Some(server.url())).unwrap());
    exactly_one_winner_among_racing_threads(store.clone());
    expired_claims_are_taken_over_and_the_stale_owner_loses(store, Duration::from_secs(3));
}

/// `lease` must exceed a few store round trips (a loaded machine, a server): the first
/// attempt of `fast` must still see a live claim.
fn expired_claims_are_taken_over_and_the_stale_owner_loses(
    store: Arc<dyn TrackingStore>,
    lease: Duration,
) {
    // An overridden error tag key shows that the abandoned run is tagged through the registry.
    let tags = TagRegistry::from_yaml_str("benchmark:\n  error: test.benchmark.failure\n").unwrap();
    let slow = Claims::new(store.clone(), "slow".into(), lease, &tags);
    let fast = Claims::new(store.clone(), "fast".into(), lease, &tags);
    let stale = won(slow.try_claim("x:d:e:b").unwrap());
    let experiment = store.create_experiment("bench").unwrap();
    let run = store
        .create_run(&experiment, "benchmark", 1, &BTreeMap::new())
        .unwrap();
    stale.record_run(&run.run_id).unwrap();
    assert!(
        matches!(fast.try_claim("x:d:e:b").unwrap(), ClaimOutcome::Held { owner: Some(o), .. } if o == "slow")
    );

    std::thread::sleep(lease + Duration::from_millis(100));
    let taken = won(fast.try_claim("x:d:e:b").unwrap());
    assert_ne!(taken.experiment_id(), stale.experiment_id());
    // The stale owner notices before writing FINISHED, and its renewals touch only its tombstone.
    assert!(stale.renew().is_err());
    taken.verify().unwrap();
    let abandoned = store.get_run(&run.run_id).unwrap();
    assert_eq!(abandoned.info.status, RunStatus::Failed);
    let reason = &abandoned.tags[tags.get(Tag::BenchmarkError)];
    assert!(reason.starts_with("abandoned"), "{reason}");
    assert!(!abandoned.tags.contains_key("code.benchmark.error"));
    // Releasing the stale claim must not free the new owner's.
    stale.release().unwrap();
    taken.verify().unwrap();
    taken.release().unwrap();
    assert!(
        store
            .get_experiment_by_name(&claim_name("x:d:e:b"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn expired_takeover_on_sqlite() {
    let (_dir, store) = sqlite();
    expired_claims_are_taken_over_and_the_stale_owner_loses(store, Duration::from_secs(1));
}

#[test]
fn a_claim_never_tagged_expires_after_a_lease_seen_by_the_reader() {
    let (_dir, store) = sqlite();
    // A worker that died between the create and its tag write.
    let name = claim_name("y:d:e:b");
    store.create_experiment(&name).unwrap();
    let lease = Duration::from_millis(300);
    let claims = Claims::new(store.clone(), "me".into(), lease, &TagRegistry::defaults());
    assert!(matches!(
        claims.try_claim("y:d:e:b").unwrap(),
        ClaimOutcome::Held { owner: None, .. }
    ));
    std::thread::sleep(lease + Duration::from_millis(100));
    let claim = won(claims.try_claim("y:d:e:b").unwrap());
    let experiment = store.get_experiment(claim.experiment_id()).unwrap();
    assert_eq!(experiment.tags[claim_tag::OWNER], "me");
    assert_eq!(experiment.tags[claim_tag::KEY], "y:d:e:b");
}

#[test]
fn heartbeats_keep_a_long_claim_alive() {
    let (_dir, store) = sqlite();
    let lease = Duration::from_millis(900);
    let tags = TagRegistry::defaults();
    let owner = Claims::new(store.clone(), "owner".into(), lease, &tags);
    let other = Claims::new(store.clone(), "other".into(), lease, &tags);
    let claim = won(owner.try_claim("z:d:e:b").unwrap());
    let heartbeat = claim.heartbeat();
    std::thread::sleep(lease * 3);
    assert!(matches!(
        other.try_claim("z:d:e:b").unwrap(),
        ClaimOutcome::Held { .. }
    ));
    drop(heartbeat);
    claim.verify().unwrap();
    claim.release().unwrap();
    assert!(matches!(
        other.try_claim("z:d:e:b").unwrap(),
        ClaimOutcome::Won(_)
    ));
}

#[test]
fn a_deleted_experiment_holding_the_name_is_reported() {
    let (_dir, store) = sqlite();
    let id = store.create_experiment(&claim_name("d:d:e:b")).unwrap();
    store.delete_experiment(&id).unwrap();
    let claims = Claims::new(
        store,
        "me".into(),
        Duration::from_secs(1),
        &TagRegistry::defaults(),
    );
    let message = claims.try_claim("d:d:e:b").unwrap_err().to_string();
    assert!(message.contains("mlflow gc"), "{message}");
}

/// A lost response to the claim's create: the experiment exists with this worker's owner tag
/// (tags travel in the create), and the retry recognises it as its own instead of waiting a
/// lease on itself; anyone else still sees it held.
fn a_retry_after_a_lost_create_recognises_its_own_claim(store: Arc<dyn TrackingStore>) {
    let tags = TagRegistry::defaults();
    let alice = Claims::new(
        store.clone(),
        "alice".into(),
        Duration::from_secs(60),
        &tags,
    );
    let bob = Claims::new(store.clone(), "bob".into(), Duration::from_secs(60), &tags);
    let key = "lost:d:e:b";
    let expires = (podium_bench::claim::now_ms() + 60_000).to_string();
    // What alice's create did on the server before its response was lost.
    let id = store
        .create_experiment_with_tags(
            &claim_name(key),
            &[
                (claim_tag::OWNER, "alice"),
                (claim_tag::KEY, key),
                (claim_tag::EXPIRES_MS, expires.as_str()),
            ],
        )
        .unwrap();
    let experiment = store.get_experiment(&id).unwrap();
    assert_eq!(
        experiment.tags[claim_tag::OWNER],
        "alice",
        "tagged in the create"
    );
    assert!(
        matches!(bob.try_claim(key).unwrap(), ClaimOutcome::Held { owner: Some(owner), .. } if owner == "alice")
    );
    let claim = won(alice.try_claim(key).unwrap());
    assert_eq!(claim.experiment_id(), id);
    claim.release().unwrap();
    won(bob.try_claim(key).unwrap());
}

#[test]
fn a_retry_after_a_lost_create_recognises_its_own_claim_on_sqlite() {
    let (_dir, store) = sqlite();
    a_retry_after_a_lost_create_recognises_its_own_claim(store);
}

#[test]
fn a_retry_after_a_lost_create_recognises_its_own_claim_on_a_server() {
    let server = podium_testkit::MlflowServer::start().unwrap();
    let store: Arc<dyn TrackingStore> =
        Arc::from(podium_mlflow::open_store(Some(server.url())).unwrap());
    a_retry_after_a_lost_create_recognises_its_own_claim(store);
}

fn postgres() -> (
    std::sync::Arc<podium_testkit::PostgresCluster>,
    String,
    Arc<dyn TrackingStore>,
) {
    let cluster = podium_testkit::PostgresCluster::shared();
    let db = cluster.create_database();
    let store = podium_mlflow::PostgresStore::open(&cluster.uri(&db)).unwrap();
    (cluster, db, Arc::new(store))
}

#[test]
fn one_winner_takeover_and_lost_creates_on_postgres() {
    let (_cluster, _db, store) = postgres();
    exactly_one_winner_among_racing_threads(store.clone());
    expired_claims_are_taken_over_and_the_stale_owner_loses(store.clone(), Duration::from_secs(1));
    a_retry_after_a_lost_create_recognises_its_own_claim(store);
}

/// A takeover committed while the owner writes FINISHED: on PostgreSQL the owner's guarded write
/// locks the claim experiment's row, so it waits for the taker's rename and then refuses —
/// a check followed by a separate write would have read the old name and finished the run.
#[test]
fn a_takeover_in_flight_stops_the_finished_write_on_postgres() {
    let (cluster, db, store) = postgres();
    let tags = TagRegistry::defaults();
    let owner = Claims::new(
        store.clone(),
        "owner".into(),
        Duration::from_secs(60),
        &tags,
    );
    let claim = won(owner.try_claim("inflight:d:e:b").unwrap());
    let experiment = store.create_experiment("bench").unwrap();
    let run = store
        .create_run(&experiment, "benchmark", 1, &BTreeMap::new())
        .unwrap();
    claim.verify().unwrap();
    // Another worker's takeover, in a transaction that holds the renamed row for a while.
    let taker = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf \"BEGIN;\\nUPDATE experiments SET name = name || '.expired.{id}.owner' WHERE experiment_id = {id};\\nSELECT pg_sleep(1.5);\\nCOMMIT;\\n\" | psql -X -q -v ON_ERROR_STOP=1 -h '{dir}' -p {port} -U postgres -d {db}",
            id = claim.experiment_id(),
            dir = cluster.dir().display(),
            port = cluster.port(),
        ))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the taker holds the row.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let held = cluster
            .psql(
                &db,
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' \
                 AND state = 'active' AND pid <> pg_backend_pid()",
            )
            .unwrap();
        if held.trim() != "0" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the taker never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = std::time::Instant::now();
    let err = claim.finish_run(&run.run_id, 5).unwrap_err().to_string();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the write waited for the taker's transaction"
    );
    assert!(err.contains("took the claim over"), "{err}");
    assert_eq!(
        store.get_run(&run.run_id).unwrap().info.status,
        RunStatus::Running,
        "nothing written under a lost claim"
    );
    let mut taker = taker;
    assert!(taker.wait().unwrap().success());
}
