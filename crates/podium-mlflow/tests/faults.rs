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
    // A delay shorter than the timeout is just slow (a timeout with room for a loaded machine).
    let patient = RestStore::new(
        proxy.url(),
        RestConfig {
            timeout: Duration::from_secs(15),
            ..fast_retries(0)
        },
    )
    .unwrap();
    proxy.push([Fault::Delay(Duration::from_secs(1))]);
    let started = Instant::now();
    assert!(patient.get_experiment_by_name("Default").unwrap().is_some());
    assert!(started.elapsed() >= Duration::from_secs(1));
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

// ---------------------------------------------------------------------------------------------
// Hostile servers: what an attacker (or a broken proxy) in the server's place can send.

use podium_mlflow::artifacts::DownloadLimits;
use podium_mlflow::rest::{Auth, Secret};
use podium_mlflow::{Filter, ViewType, search_all};
use podium_testkit::{Hostile, HostileServer};

fn authority(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

fn with_token(config: RestConfig) -> RestConfig {
    RestConfig {
        auth: Auth::Bearer(Secret::new("tok-secret")),
        ..config
    }
}

#[test]
fn credentials_go_only_to_the_tracking_server_unless_a_host_is_trusted() {
    let elsewhere = HostileServer::start(
        Hostile::LyingArtifactSizes {
            files: 1,
            listed: Some(2),
            sent: 2,
        },
        None,
    )
    .unwrap();
    let other = authority(elsewhere.url());
    let tracking = HostileServer::start(Hostile::ForeignArtifactHost(other.clone()), None).unwrap();
    let store = RestStore::new(tracking.url(), with_token(fast_retries(0))).unwrap();
    let run = store.get_run("r1").unwrap();
    assert!(
        run.info.artifact_uri.contains(&other),
        "{}",
        run.info.artifact_uri
    );
    let dest = tempfile::tempdir().unwrap();

    let err = store
        .download_artifacts(&run.info, "model", dest.path())
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MlflowError::Artifact { .. }), "{message}");
    assert!(
        message.contains("PODIUM_TRUSTED_ARTIFACT_HOSTS"),
        "{message}"
    );
    assert!(message.contains(&other), "{message}");
    assert!(elsewhere.received().is_empty(), "a request went to {other}");
    assert!(!dest.path().join("model").exists());

    // Opted in: downloaded from there, with the credentials (and a warning).
    let trusting = RestStore::new(
        tracking.url(),
        RestConfig {
            trusted_artifact_hosts: vec![other.clone()],
            ..with_token(fast_retries(0))
        },
    )
    .unwrap();
    let landed = trusting
        .download_artifacts(&run.info, "model", dest.path())
        .unwrap();
    assert_eq!(std::fs::read(landed.join("w0.bin")).unwrap(), b"ww");
    let requests = elsewhere.received();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|request| request.header("authorization").as_deref() == Some("Bearer tok-secret"))
    );
    // The tracking server's own requests carried the credentials all along.
    assert_eq!(
        tracking.received()[0].header("authorization").as_deref(),
        Some("Bearer tok-secret")
    );
}

#[test]
fn huge_response_bodies_stop_at_the_cap() {
    let server = HostileServer::start(Hostile::HugeBody(512 << 20), None).unwrap();
    let store = RestStore::new(
        server.url(),
        RestConfig {
            max_response_bytes: 1 << 20,
            ..fast_retries(2)
        },
    )
    .unwrap();
    let started = Instant::now();
    let err = search_all(
        &store,
        &["1".to_string()],
        &Filter::new(),
        ViewType::ActiveOnly,
    )
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let message = err.to_string();
    assert!(message.contains("larger than 1048576 bytes"), "{message}");
    assert!(message.contains("PODIUM_MAX_RESPONSE_BYTES"), "{message}");
    // Too large is final: not retried.
    assert_eq!(server.received().len(), 1);
}

#[test]
fn a_repeated_page_token_ends_the_search_with_a_clear_error() {
    let server = HostileServer::start(Hostile::RepeatedPageToken, None).unwrap();
    let store = RestStore::new(server.url(), fast_retries(0)).unwrap();
    let err = search_all(
        &store,
        &["1".to_string()],
        &Filter::new(),
        ViewType::ActiveOnly,
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MlflowError::Protocol { .. }), "{message}");
    assert!(message.contains("\"same-token\" again"), "{message}");
    assert_eq!(server.received().len(), 2);
}

fn download_with(
    mode: Hostile,
    limits: DownloadLimits,
    dest: &std::path::Path,
) -> (Result<std::path::PathBuf, MlflowError>, Duration) {
    let server = HostileServer::start(mode, None).unwrap();
    let store = RestStore::new(
        server.url(),
        RestConfig {
            download_limits: limits,
            ..fast_retries(0)
        },
    )
    .unwrap();
    let run = run_at("mlflow-artifacts:/lying/artifacts");
    let started = Instant::now();
    let result = store.download_artifacts(&run, "model", dest);
    (result, started.elapsed())
}

fn assert_nothing_landed(dest: &std::path::Path) {
    let left: Vec<_> = std::fs::read_dir(dest)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn artifact_downloads_stop_at_the_listed_size_and_the_caps() {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("dest");

    // The listing says 10 bytes; the body would stream 2 GB.
    let (result, took) = download_with(
        Hostile::LyingArtifactSizes {
            files: 1,
            listed: Some(10),
            sent: 2 << 30,
        },
        DownloadLimits::default(),
        &dest,
    );
    let message = result.unwrap_err().to_string();
    assert!(
        message.contains("listing says 10 bytes but the server sent more"),
        "{message}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_nothing_landed(&dest);

    // No size listed: the total cap stops it.
    let limits = DownloadLimits {
        max_bytes: 1 << 20,
        ..DownloadLimits::default()
    };
    let (result, took) = download_with(
        Hostile::LyingArtifactSizes {
            files: 1,
            listed: None,
            sent: 2 << 30,
        },
        limits,
        &dest,
    );
    let message = result.unwrap_err().to_string();
    assert!(message.contains("PODIUM_MAX_DOWNLOAD_BYTES"), "{message}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_nothing_landed(&dest);

    // Too many files.
    let limits = DownloadLimits {
        max_entries: 10,
        ..DownloadLimits::default()
    };
    let (result, _) = download_with(
        Hostile::LyingArtifactSizes {
            files: 50,
            listed: Some(1),
            sent: 1,
        },
        limits,
        &dest,
    );
    let message = result.unwrap_err().to_string();
    assert!(message.contains("PODIUM_MAX_DOWNLOAD_FILES"), "{message}");
    assert_nothing_landed(&dest);

    // Within the caps the same tree downloads.
    let (result, _) = download_with(
        Hostile::LyingArtifactSizes {
            files: 50,
            listed: Some(1),
            sent: 1,
        },
        DownloadLimits::default(),
        &dest,
    );
    let landed = result.unwrap();
    assert_eq!(std::fs::read_dir(&landed).unwrap().count(), 50);
}

#[test]
fn staging_dirs_of_dead_downloads_are_removed_by_the_next_one() {
    let dest = tempfile::tempdir().unwrap();
    // One left by a process killed mid-download (its lock died with it) …
    let dead = dest.path().join(".podium-download-dead");
    std::fs::create_dir_all(dead.join("model")).unwrap();
    std::fs::write(dead.join(".owner.lock"), b"").unwrap();
    std::fs::write(dead.join("model/w0.bin"), b"partial").unwrap();
    // … and one of a download still running (its lock is held).
    let live = dest.path().join(".podium-download-live");
    std::fs::create_dir_all(&live).unwrap();
    let lock = std::fs::File::create(live.join(".owner.lock")).unwrap();
    fs4::FileExt::lock(&lock).unwrap();

    let (result, _) = download_with(
        Hostile::LyingArtifactSizes {
            files: 1,
            listed: Some(2),
            sent: 2,
        },
        DownloadLimits::default(),
        dest.path(),
    );
    result.unwrap();
    assert!(
        !dead.exists(),
        "the dead download's staging dir is still there"
    );
    assert!(live.exists(), "a live download's staging dir was removed");
    let mut names: Vec<_> = std::fs::read_dir(dest.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".podium-download-live", "model"]);
}

#[test]
fn reflected_credentials_are_redacted_and_huge_messages_cut() {
    let server = HostileServer::start(Hostile::ReflectAuthHeader(5 << 20), None).unwrap();
    let config = RestConfig {
        auth: Auth::Basic {
            username: "me".into(),
            password: Secret::new("pw-secret"),
        },
        ..fast_retries(0)
    };
    let store = RestStore::new(server.url(), config).unwrap();
    let err = store.get_experiment_by_name("Default").unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, MlflowError::Http { status: 400, .. }),
        "{message}"
    );
    // The server did echo the header …
    let sent = server.received()[0].header("authorization").unwrap();
    assert!(sent.starts_with("Basic "), "{sent}");
    let encoded = sent.trim_start_matches("Basic ");
    // … but the message shows neither it nor the password, and stays short.
    assert!(!message.contains(encoded), "{message}");
    assert!(!message.contains("pw-secret"), "{message}");
    assert!(message.contains("Basic ***"), "{message}");
    assert!(message.len() < 4096, "{} bytes", message.len());
    assert!(message.contains("more bytes left out"), "{message}");
}

#[test]
fn cut_off_bodies_are_retried_and_lost_answers_after_the_work_are_safe() {
    let server = MlflowServer::start().unwrap();

    // Two responses cut off halfway, then a whole one.
    let truncating = HostileServer::start(Hostile::TruncatedBody(2), Some(server.url())).unwrap();
    let store = RestStore::new(truncating.url(), fast_retries(3)).unwrap();
    let default = store.get_experiment_by_name("Default").unwrap().unwrap();
    assert_eq!(default.experiment_id, "0");
    assert_eq!(truncating.received().len(), 3);
    // With fewer retries than cut-offs: a clear error naming the cause and the attempts.
    let truncating = HostileServer::start(Hostile::TruncatedBody(5), Some(server.url())).unwrap();
    let store = RestStore::new(truncating.url(), fast_retries(1)).unwrap();
    let message = store
        .get_experiment_by_name("Default")
        .unwrap_err()
        .to_string();
    assert!(message.contains("after 2 attempts"), "{message}");
    assert!(message.contains("cut off"), "{message}");

    // The server sets the tag, then the answer is lost: the retry sets it again, harmlessly.
    let direct = RestStore::new(server.url(), fast_retries(0)).unwrap();
    let experiment = direct.create_experiment("lost-answers").unwrap();
    let run = direct
        .create_run(&experiment, "r", 1, &Default::default())
        .unwrap();
    let resetting = HostileServer::start(Hostile::ResetAfterWork(1), Some(server.url())).unwrap();
    let store = RestStore::new(resetting.url(), fast_retries(2)).unwrap();
    store.set_tag(&run.run_id, "stage", "hpo").unwrap();
    assert_eq!(resetting.received().len(), 2);
    let fetched = direct.get_run(&run.run_id).unwrap();
    assert_eq!(fetched.tag("stage"), Some("hpo"));

    // An upload whose answer is lost is sent again, whole, and replaces what the first wrote.
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("page.html");
    std::fs::write(&page, "<html>retried</html>").unwrap();
    let resetting = HostileServer::start(Hostile::ResetAfterWork(1), Some(server.url())).unwrap();
    let store = RestStore::new(resetting.url(), fast_retries(2)).unwrap();
    store.log_artifact(&run, "report/page.html", &page).unwrap();
    let puts: Vec<_> = resetting
        .received()
        .into_iter()
        .filter(|request| request.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 2);
    assert!(
        puts.iter()
            .all(|put| put.raw.ends_with(b"<html>retried</html>"))
    );
    let back = direct
        .download_artifacts(&run, "report/page.html", work.path())
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(back).unwrap(),
        "<html>retried</html>"
    );
}

#[test]
fn uploads_follow_the_download_rules_for_credentials_and_size() {
    let elsewhere = HostileServer::start(
        Hostile::LyingArtifactSizes {
            files: 1,
            listed: Some(2),
            sent: 2,
        },
        None,
    )
    .unwrap();
    let other = authority(elsewhere.url());
    let tracking = HostileServer::start(Hostile::ForeignArtifactHost(other.clone()), None).unwrap();
    let store = RestStore::new(tracking.url(), with_token(fast_retries(0))).unwrap();
    let run = store.get_run("r1").unwrap();
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("page.html");
    std::fs::write(&page, "<html>report</html>").unwrap();

    // Another host than the tracking server: refused, nothing sent there.
    let err = store
        .log_artifact(&run.info, "podium-report.html", &page)
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MlflowError::Artifact { .. }), "{message}");
    assert!(
        message.contains("PODIUM_TRUSTED_ARTIFACT_HOSTS"),
        "{message}"
    );
    assert!(elsewhere.received().is_empty(), "a request went to {other}");

    // Trusted: one PUT there, with the credentials, of the file's bytes.
    let trusting = RestStore::new(
        tracking.url(),
        RestConfig {
            trusted_artifact_hosts: vec![other.clone()],
            ..with_token(fast_retries(0))
        },
    )
    .unwrap();
    trusting
        .log_artifact(&run.info, "podium-report.html", &page)
        .unwrap();
    let requests = elsewhere.received();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "PUT");
    assert!(
        requests[0]
            .target
            .ends_with("/api/2.0/mlflow-artifacts/artifacts/1/r1/artifacts/podium-report.html"),
        "{}",
        requests[0].target
    );
    assert_eq!(
        requests[0].header("authorization").as_deref(),
        Some("Bearer tok-secret")
    );
    assert!(requests[0].raw.ends_with(b"<html>report</html>"));

    // Larger than the download cap: refused before any request.
    let before = tracking.received().len();
    let capped = RestStore::new(
        tracking.url(),
        RestConfig {
            download_limits: DownloadLimits {
                max_bytes: 8,
                max_entries: 10,
            },
            ..fast_retries(0)
        },
    )
    .unwrap();
    let message = capped
        .log_artifact(&run.info, "podium-report.html", &page)
        .unwrap_err()
        .to_string();
    assert!(message.contains("PODIUM_MAX_DOWNLOAD_BYTES"), "{message}");
    assert_eq!(tracking.received().len(), before);
    assert_eq!(elsewhere.received().len(), 1);
}
