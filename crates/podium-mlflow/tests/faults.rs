//! Faults a real server cannot be asked to produce: transient 503s, a server that is down,
//! a slow server (injected by a loopback proxy in front of a real `mlflow server`), and a
//! hostile artifact listing (a loopback stub, since a real MLflow never sends one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use podium_mlflow::{
    MlflowError, RestConfig, RestStore, RunInfo, RunStatus, TrackingStore, open_store_with_env,
};
use podium_testkit::{Fault, FaultProxy, HttpReply, MlflowServer, StubServer};

fn fast_retries(max_retries: u32) -> RestConfig {
    RestConfig {
        max_retries,
        backoff_factor: 0.05,
        backoff_jitter: 0.0,
        timeout: Duration::from_secs(20),
        ..RestConfig::default()
    }
}

#[test]
fn transient_failures_are_retried_then_exhausted_then_slow_times_out() {
    let server = MlflowServer::start().unwrap();
    let proxy = FaultProxy::start(server.url()).unwrap();
    let store = RestStore::new(proxy.url(), fast_retries(3)).unwrap();

    // 503, 503 (Retry-After: 0), then the real answer.
    proxy.push([Fault::Status(503, None), Fault::Status(429, Some(0))]);
    let before = proxy.requests();
    let default = store.get_experiment_by_name("Default").unwrap().unwrap();
    assert_eq!(default.experiment_id, "0");
    assert_eq!(proxy.requests() - before, 3);

    // More failures than retries: the last status is reported.
    proxy.push(std::iter::repeat_n(Fault::Status(502, None), 4));
    let err = store.get_experiment_by_name("Default").unwrap_err();
    assert!(
        matches!(err, MlflowError::Http { status: 502, .. }),
        "{err}"
    );
    // A 4xx is an answer, not a transient failure: no retry.
    proxy.push([Fault::Status(400, None)]);
    let before = proxy.requests();
    assert!(store.get_experiment_by_name("Default").is_err());
    assert_eq!(proxy.requests() - before, 1);

    // Slow server: the request times out (and so does its one retry).
    let impatient = RestStore::new(
        proxy.url(),
        RestConfig {
            timeout: Duration::from_millis(700),
            ..fast_retries(1)
        },
    )
    .unwrap();
    proxy.push([
        Fault::Delay(Duration::from_secs(3)),
        Fault::Delay(Duration::from_secs(3)),
    ]);
    let started = Instant::now();
    let err = impatient.get_experiment_by_name("Default").unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match &err {
        MlflowError::Unreachable {
            attempts, message, ..
        } => {
            assert_eq!(*attempts, 2);
            assert!(message.contains("timed out"), "{message}");
        }
        other => panic!("expected a timeout, got {other}"),
    }
    // A delay shorter than the timeout is just slow.
    proxy.push([Fault::Delay(Duration::from_millis(200))]);
    assert!(
        impatient
            .get_experiment_by_name("Default")
            .unwrap()
            .is_some()
    );
}

#[test]
fn server_down_is_a_clear_error_after_retries() {
    let port = podium_testkit::free_port();
    let url = format!("http://127.0.0.1:{port}");
    // Settings come from MLflow's environment variables, as for the Python client.
    let env = |name: &str| {
        Some(
            match name {
                "MLFLOW_TRACKING_URI" => url.as_str(),
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES" => "2",
                "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR" => "0.05",
                "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER" => "0",
                "MLFLOW_TRACKING_PASSWORD" => "hunter2",
                "MLFLOW_TRACKING_USERNAME" => "me",
                _ => return None,
            }
            .to_string(),
        )
    };
    let store = open_store_with_env(None, &env).unwrap();
    assert!(!format!("{store:?}").contains("hunter2"));
    let started = Instant::now();
    let err = store.get_experiment_by_name("Default").unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    match &err {
        MlflowError::Unreachable {
            attempts,
            url: shown,
            ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(shown, &url);
        }
        other => panic!("expected Unreachable, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("after 3 attempts"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

fn run_at(uri: &str) -> RunInfo {
    RunInfo {
        run_id: "r1".into(),
        experiment_id: "1".into(),
        run_name: "r".into(),
        status: RunStatus::Finished,
        start_time: None,
        end_time: None,
        artifact_uri: uri.into(),
        lifecycle_stage: "active".into(),
    }
}

/// Listing of `<case>/model` for each hostile case; `good` is well-formed.
fn listing(path: &str) -> Option<&'static str> {
    Some(match path {
        p if p.ends_with("/artifacts") => r#"{"files": [{"path": "model", "is_dir": true}]}"#,
        "escape/artifacts/model" => {
            r#"{"files": [{"path": "../escape.txt", "is_dir": false, "file_size": 2}]}"#
        }
        "absolute/artifacts/model" => {
            r#"{"files": [{"path": "/tmp/podium-owned.txt", "is_dir": false, "file_size": 2}]}"#
        }
        "nested/artifacts/model" => {
            r#"{"files": [{"path": "a/../../b", "is_dir": false, "file_size": 2}]}"#
        }
        "dotdot/artifacts/model" => r#"{"files": [{"path": "..", "is_dir": true}]}"#,
        "short/artifacts/model" => {
            r#"{"files": [{"path": "w.bin", "is_dir": false, "file_size": 10}]}"#
        }
        "good/artifacts/model" => {
            r#"{"files": [{"path": "w.bin", "is_dir": false, "file_size": 2}]}"#
        }
        _ => return None,
    })
}

#[test]
fn hostile_artifact_listings_are_refused() {
    let stub = StubServer::start(None, |request| {
        let target = &request.target;
        if let Some(query) = target.strip_prefix("/api/2.0/mlflow-artifacts/artifacts?path=") {
            let path = query.replace("%2F", "/");
            return listing(&path).map(|body| HttpReply::json(200, body));
        }
        target
            .starts_with("/api/2.0/mlflow-artifacts/artifacts/")
            .then(|| HttpReply::json(200, "ok"))
    })
    .unwrap();
    let store = RestStore::new(stub.url(), fast_retries(0)).unwrap();
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("dest");

    for case in ["escape", "absolute", "nested", "dotdot", "short"] {
        let run = run_at(&format!("mlflow-artifacts:/{case}/artifacts"));
        let err = store.download_artifacts(&run, "model", &dest).unwrap_err();
        assert!(matches!(err, MlflowError::Artifact { .. }), "{case}: {err}");
        // Nothing landed, nothing escaped, no temp dir left behind.
        assert!(!dest.join("model").exists(), "{case}");
        assert!(!outer.path().join("escape.txt").exists());
        assert!(std::fs::read_dir(&dest).unwrap().next().is_none(), "{case}");
    }
    assert!(!std::path::Path::new("/tmp/podium-owned.txt").exists());

    let good = run_at("mlflow-artifacts:/good/artifacts");
    let landed = store.download_artifacts(&good, "model", &dest).unwrap();
    assert_eq!(std::fs::read(landed.join("w.bin")).unwrap(), b"ok");

    let elsewhere = run_at("s3://bucket/1/r1/artifacts");
    let err = store
        .download_artifacts(&elsewhere, "model", &dest)
        .unwrap_err();
    assert!(err.to_string().contains("s3"), "{err}");
}
