//! Servers that hold a client forever without ever failing outright: one that trickles its
//! answer a byte at a time (a slowloris), one that keeps saying `Retry-After`, one that hands
//! out fresh page tokens forever, and one whose error answer is cut off (its error code lost).
//! Each is bounded by a setting, with small values here so each test takes a second or two.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use podium_mlflow::{
    Filter, MlflowError, RestConfig, RestStore, RunInfo, RunStatus, TrackingStore, ViewType,
    search_all,
};
use podium_testkit::{Delivery, Hostile, HostileServer, HttpReply, StubServer};

/// Retries that do not sleep through urllib3's backoff.
fn quick(config: RestConfig) -> RestConfig {
    RestConfig {
        backoff_factor: 0.01,
        backoff_jitter: 0.0,
        ..config
    }
}

/// Runs `work` on a thread and waits at most `limit` for it: a call that never returns fails
/// the test instead of hanging it.
fn within<T: Send + 'static>(limit: Duration, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(work());
    });
    receive
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("still running after {limit:?}"))
}

/// Item 4: a server that sends its head, then one byte every 100 ms, is given up at the
/// request's deadline (MLFLOW_HTTP_REQUEST_TIMEOUT plus the slack its few bytes earn), not
/// read for as long as it keeps trickling; the cut-off answer is retried like any other.
#[test]
fn a_trickling_answer_is_cut_off_at_its_deadline() {
    let body = format!(r#"{{"runs": [], "padding": "{}"}}"#, "x".repeat(300));
    let server = StubServer::start(None, move |request| {
        request.target.contains("runs/search").then(|| {
            HttpReply::json(200, &body).delivered(Delivery::Trickle {
                interval: Duration::from_millis(100),
            })
        })
    })
    .unwrap();
    let config = quick(RestConfig {
        max_retries: 1,
        timeout: Duration::from_secs(1),
        ..RestConfig::default()
    });
    let store = RestStore::new(server.url(), config).unwrap();
    let started = Instant::now();
    let result = within(Duration::from_secs(60), move || {
        store
            .search_runs_page(&podium_mlflow::SearchRequest::new(vec!["0".into()]))
            .map(|page| page.runs.len())
    });
    let elapsed = started.elapsed();
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MlflowError::Unreachable { .. }), "{message}");
    assert!(
        message.contains("took longer than") && message.contains("MLFLOW_HTTP_REQUEST_TIMEOUT"),
        "{message}"
    );
    // Two attempts of about a second each; the whole answer would take 30 s an attempt.
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
}

/// Item 4, downloads: an artifact file trickled a byte at a time is given up the same way
/// (its deadline grows only with the bytes it delivers, at PODIUM_MIN_RESPONSE_BYTES_PER_SECOND).
#[test]
fn a_trickling_download_is_cut_off_at_its_deadline() {
    let server = StubServer::start(None, |request| {
        let target = &request.target;
        if target.starts_with("/api/2.0/mlflow-artifacts/artifacts?path=") {
            return Some(HttpReply::json(
                200,
                r#"{"files": [{"path": "model.bin", "is_dir": false, "file_size": 400}]}"#,
            ));
        }
        target
            .starts_with("/api/2.0/mlflow-artifacts/artifacts/")
            .then(|| HttpReply {
                status: 200,
                headers: vec![("Content-Type".into(), "application/octet-stream".into())],
                body: vec![b'w'; 400],
                delivery: Delivery::Trickle {
                    interval: Duration::from_millis(100),
                },
            })
    })
    .unwrap();
    let config = quick(RestConfig {
        max_retries: 0,
        timeout: Duration::from_secs(1),
        min_response_rate: 1024,
        ..RestConfig::default()
    });
    let store = RestStore::new(server.url(), config).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let dest_path = dest.path().to_path_buf();
    let started = Instant::now();
    let result = within(Duration::from_secs(60), move || {
        let run = RunInfo {
            run_id: "r1".into(),
            experiment_id: "1".into(),
            run_name: "r".into(),
            status: RunStatus::Finished,
            start_time: None,
            end_time: None,
            artifact_uri: "mlflow-artifacts:/1/r1/artifacts".into(),
            lifecycle_stage: "active".into(),
        };
        store.download_artifacts(&run, "model.bin", &dest_path)
    });
    let elapsed = started.elapsed();
    let message = result.unwrap_err().to_string();
    assert!(message.contains("took longer than"), "{message}");
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    // Nothing landed: the partial file stayed in the staging folder, which is gone.
    let left: Vec<_> = std::fs::read_dir(dest.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Item 8: `Retry-After` waits stop at the retry budget (PODIUM_MAX_RETRY_SECONDS), with an
/// error that says so, instead of adding up to minutes.
#[test]
fn retry_after_waits_stop_at_the_retry_budget() {
    let server = StubServer::start(None, |_| {
        let mut reply = HttpReply::json(
            503,
            r#"{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}"#,
        );
        reply.headers.push(("Retry-After".into(), "1".into()));
        Some(reply)
    })
    .unwrap();
    let config = quick(RestConfig {
        max_retries: 7,
        max_retry_time: Duration::from_millis(2500),
        ..RestConfig::default()
    });
    let store = RestStore::new(server.url(), config).unwrap();
    let started = Instant::now();
    let result = within(Duration::from_secs(60), move || {
        store.get_experiment_by_name("anything").map(|_| ())
    });
    let elapsed = started.elapsed();
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MlflowError::Unreachable { .. }), "{message}");
    assert!(message.contains("PODIUM_MAX_RETRY_SECONDS"), "{message}");
    // Seven one-second waits would be 7 s; the budget stops them at about 2.5 s.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(2),
        "gave up early: {elapsed:?}"
    );
}

/// Item 8: a server that hands out a fresh page token with every page is stopped at the
/// search's time budget (PODIUM_MAX_SEARCH_SECONDS), long before 100,000 pages.
#[test]
fn endless_fresh_page_tokens_stop_at_the_search_budget() {
    let server = HostileServer::start(Hostile::EndlessPageTokens, None).unwrap();
    let config = quick(RestConfig {
        max_search_time: Duration::from_secs(1),
        ..RestConfig::default()
    });
    let store = RestStore::new(server.url(), config).unwrap();
    let started = Instant::now();
    let result = within(Duration::from_secs(60), move || {
        search_all(
            &store,
            &["1".to_string()],
            &Filter::new(),
            ViewType::ActiveOnly,
        )
        .map(|runs| runs.len())
    });
    let elapsed = started.elapsed();
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("PODIUM_MAX_SEARCH_SECONDS") && message.contains("page tokens"),
        "{message}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

/// Item 12: an error answer cut off (half of it, or all of its body) has lost its error code,
/// which callers act on (`RESOURCE_ALREADY_EXISTS` decides a claim): it is retried like a
/// cut-off success, and the whole answer read the second time.
#[test]
fn a_cut_off_error_answer_is_retried() {
    for sent in [0usize, 20] {
        let count = std::sync::atomic::AtomicUsize::new(0);
        let server = StubServer::start(None, move |request| {
            request.target.contains("experiments/create").then(|| {
                let reply = HttpReply::json(
                    400,
                    r#"{"error_code": "RESOURCE_ALREADY_EXISTS", "message": "Experiment 'x' already exists."}"#,
                );
                match count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                    0 => reply.delivered(Delivery::Truncated(sent)),
                    _ => reply,
                }
            })
        })
        .unwrap();
        let config = quick(RestConfig {
            max_retries: 3,
            ..RestConfig::default()
        });
        let store = RestStore::new(server.url(), config).unwrap();
        let err = store.create_experiment("x").unwrap_err();
        assert!(
            matches!(err, MlflowError::AlreadyExists { .. }),
            "{sent} bytes of the error body sent: {err}"
        );
        assert_eq!(server.requests(), 2, "one retry");
    }
}
