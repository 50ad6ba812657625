//! `podium report`: the page `podium demo` and `podium run` write, `--log-to-mlflow` twice on an
//! `mlflow.db` and through a real `mlflow server` (one report run, its page replaced, never a
//! benchmark for podium or for the pipeline's checks), every benchmark run with its
//! `benchmark_results.json/benchmark.json` artifact, and the page in a real headless Chromium:
//! from disk with the network off (no console error, no request, one point per champion, the
//! winner's label, a screenshot under target/), then from the server in MLflow's artifact view.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

fn podium(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(args)
        .current_dir(cwd)
        .env_remove("MLFLOW_TRACKING_URI")
        .env("PODIUM_ENVIRONMENT", "local")
        .output()
        .expect("run podium")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "podium failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A demo project and the store it is read through.
struct Project {
    root: PathBuf,
    uri: String,
}

impl Project {
    fn run(&self, args: &[&str]) -> String {
        let root = self.root.to_str().unwrap().to_string();
        let config = self.root.join("config").to_str().unwrap().to_string();
        let mut all: Vec<&str> = vec![
            "--root",
            &root,
            "--config-dir",
            &config,
            "--tracking-uri",
            &self.uri,
        ];
        all.extend_from_slice(args);
        stdout_of(&podium(&all, &self.root))
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--format", "json"]);
        serde_json::from_str(&self.run(&all)).unwrap()
    }

    /// Each champion's benchmark key and study/trial key hashes, as podium computes them.
    fn champions(&self) -> Value {
        let plan = self.json(&["benchmark", "--dry-run"]);
        let select = self.json(&["select"]);
        let mut champions = Vec::new();
        for (backbone, entry) in plan["plan"].as_object().unwrap() {
            let champion = &select["champions"][backbone]["champion"];
            champions.push(json!({
                "key": entry["key"],
                "study_key_hash": champion["study_key_hash"],
                "trial_key_hash": champion["trial_key_hash"],
            }));
        }
        Value::Array(champions)
    }
}

/// What Python's client sees of the benchmark experiment: its report runs (with their page
/// and artifacts) and each benchmark run's result artifact.
fn python_view(uri: &str, experiment: &str) -> Value {
    let code = r#"
import sys, json, tempfile, logging
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
uri, name = sys.argv[1:3]
client = MlflowClient(uri)
experiment = client.get_experiment_by_name(name)
ids = [experiment.experiment_id]
reports = []
for run in client.search_runs(ids, "tags.`code.report.kind` = 'decision_report'"):
    with tempfile.TemporaryDirectory() as folder:
        page = client.download_artifacts(run.info.run_id, "podium-report.html", folder)
        text = open(page, encoding="utf-8").read()
    reports.append({
        "run_id": run.info.run_id,
        "status": run.info.status,
        "files": [[f.path, f.file_size] for f in client.list_artifacts(run.info.run_id)],
        "page": text,
        "metrics": run.data.metrics,
        "tags": sorted(k for k in run.data.tags if not k.startswith("mlflow.")),
    })
results = {}
for run in client.search_runs(ids, "attributes.status = 'FINISHED'"):
    if "benchmark_key" not in run.data.tags:
        continue
    files = [f.path for f in client.list_artifacts(run.info.run_id, "benchmark_results.json")]
    with tempfile.TemporaryDirectory() as folder:
        doc = json.load(open(client.download_artifacts(
            run.info.run_id, "benchmark_results.json/benchmark.json", folder)))
    results[run.info.run_id] = {
        "files": files,
        "key": doc["podium"]["benchmark_key"],
        "tag": run.data.tags["benchmark_key"],
        "batches": sorted(k for k in doc if k.startswith("batch_")),
    }
print(json.dumps({"reports": reports, "results": results}))
"#;
    serde_json::from_str(&podium_testkit::run_python(code, &[uri, experiment])).unwrap()
}

/// The pipeline's checks (a Python statement of them) on the benchmark experiment.
fn pipeline_checks(uri: &str, experiment: &str, champions: &Value) -> Value {
    let peer =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pipeline_benchmark_checks.py");
    let code = format!(
        "import runpy, sys; sys.argv = ['peer'] + sys.argv[1:]; runpy.run_path({:?}, run_name='__main__')",
        peer.to_str().unwrap()
    );
    let output = podium_testkit::run_python(&code, &[uri, experiment, &champions.to_string()]);
    serde_json::from_str(&output).unwrap()
}

/// `--log-to-mlflow` twice (the second with another aggregation, so its page differs): one
/// report run, holding the second page; podium and the pipeline never count it as a
/// benchmark; every benchmark run has its result file; `podium run` still skips everything.
fn reports_twice_then_checks(project: &Project) -> (String, String) {
    let experiment = "podium-demo-benchmark";
    let first_page = project.root.join("first.html");
    let second_page = project.root.join("second.html");
    let first = project.json(&[
        "report",
        "--log-to-mlflow",
        "--out",
        first_page.to_str().unwrap(),
    ]);
    assert_eq!(first["recommended"], "deberta-v3-small", "{first}");
    assert_eq!(first["ranked"], 3);
    let second = project.json(&[
        "report",
        "--log-to-mlflow",
        "--latency-aggregation",
        "median",
        "--out",
        second_page.to_str().unwrap(),
    ]);
    let run_id = first["mlflow"]["run_id"].as_str().unwrap().to_string();
    assert_eq!(first["mlflow"]["created"], true, "{first}");
    assert_eq!(second["mlflow"]["created"], false, "{second}");
    assert_eq!(second["mlflow"]["run_id"], run_id.as_str());
    let first_html = std::fs::read_to_string(&first_page).unwrap();
    let second_html = std::fs::read_to_string(&second_page).unwrap();
    assert_ne!(first_html, second_html);
    assert!(
        second_html.contains("median over a key"),
        "the second page says median"
    );

    let seen = python_view(&project.uri, experiment);
    let reports = seen["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "one report run: {seen}");
    let report = &reports[0];
    assert_eq!(report["run_id"], run_id.as_str());
    assert_eq!(report["status"], "FINISHED");
    assert_eq!(
        report["page"],
        second_html.as_str(),
        "the page was replaced"
    );
    assert_eq!(
        report["files"],
        json!([["podium-report.html", second_html.len()]])
    );
    assert_eq!(report["metrics"], json!({}));
    assert_eq!(
        report["tags"],
        json!([
            "code.report.generated_at",
            "code.report.kind",
            "code.report.podium_version"
        ])
    );
    let results = seen["results"].as_object().unwrap();
    assert_eq!(results.len(), 3, "{seen}");
    for result in results.values() {
        assert_eq!(
            result["files"],
            json!(["benchmark_results.json/benchmark.json"])
        );
        assert_eq!(result["key"], result["tag"]);
        assert_eq!(result["batches"], json!(["batch_1", "batch_8"]));
    }

    let champions = project.champions();
    let checks = pipeline_checks(&project.uri, experiment, &champions);
    for champion in champions.as_array().unwrap() {
        assert_eq!(
            checks["exists"][champion["key"].as_str().unwrap()],
            true,
            "{checks}"
        );
    }
    let never = |list: &str| {
        assert!(
            !checks[list]
                .as_array()
                .unwrap()
                .iter()
                .any(|id| id == run_id.as_str()),
            "{list} counts the report run: {checks}"
        );
    };
    never("matched");
    never("selection_candidates");
    never("stage_benchmarking");
    assert_eq!(checks["selection_candidates"].as_array().unwrap().len(), 3);
    // MLflow itself lists it, as the report it is.
    assert!(
        checks["all_runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| id == run_id.as_str())
    );

    let again = project.run(&["run", "--no-report"]);
    assert!(
        again.contains("benchmarked 0, skipped 3, restored 0, failed 0"),
        "{again}"
    );
    let experiment_id = first["mlflow"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    (run_id, experiment_id)
}

#[test]
fn demo_report_logged_twice_to_its_mlflow_db() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let out = stdout_of(&podium(
        &["demo", "--dir", dir.to_str().unwrap()],
        work.path(),
    ));
    let last = out.lines().last().unwrap();
    let page = dir.join("outputs/report/podium-demo-report.html");
    assert_eq!(
        last,
        format!("The decision, as one page: {}", page.display()),
        "{out}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Deploy <strong class=\"winner-name\">deberta-v3-small</strong>"));
    let project = Project {
        uri: format!("sqlite:///{}", dir.join("mlflow.db").display()),
        root: dir,
    };
    reports_twice_then_checks(&project);
}

/// Chromium's verdict on a page: its console errors, the requests it made, and what the DOM
/// says of the scatter.
struct Loaded {
    errors: Vec<Value>,
    requests: Vec<String>,
}

fn console_errors(events: &[Value], session: &str) -> Loaded {
    let mine = |event: &&Value| event["sessionId"] == session;
    let errors = events
        .iter()
        .filter(mine)
        .filter(|event| match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => true,
            Some("Runtime.consoleAPICalled") => event["params"]["type"] == "error",
            Some("Log.entryAdded") => event["params"]["entry"]["level"] == "error",
            _ => false,
        })
        .cloned()
        .collect();
    let requests = events
        .iter()
        .filter(mine)
        .filter(|event| event["method"] == "Network.requestWillBeSent")
        .map(|event| {
            event["params"]["request"]["url"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    Loaded { errors, requests }
}

/// Loads `page` from disk with the network off: no console error, no request besides the
/// page itself, one point per champion and the winner's label; writes a screenshot.
fn page_from_disk_in_chromium(page: &Path, champions: usize, winner: &str) {
    let mut browser = podium_testkit::browser::Browser::launch()
        .expect("the report test needs Chromium: apt-get install chromium (.ci/run installs it)");
    let session = browser.new_page().unwrap();
    for domain in ["Page", "Runtime", "Log", "Network"] {
        browser
            .call(Some(&session), &format!("{domain}.enable"), json!({}))
            .unwrap();
    }
    browser
        .call(
            Some(&session),
            "Network.emulateNetworkConditions",
            json!({"offline": true, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
        )
        .unwrap();
    browser
        .call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        )
        .unwrap();
    let url = format!("file://{}", page.display());
    browser
        .call(Some(&session), "Page.navigate", json!({"url": url}))
        .unwrap();
    browser
        .wait_for(Duration::from_secs(60), |event| {
            event["method"] == "Page.loadEventFired" && event["sessionId"] == session.as_str()
        })
        .unwrap();
    browser.settle(Duration::from_millis(500)).unwrap();
    let points = browser
        .evaluate(
            &session,
            None,
            "document.querySelectorAll('.champion-point').length",
        )
        .unwrap();
    assert_eq!(points, champions);
    let label = browser
        .evaluate(
            &session,
            None,
            "document.querySelector('.winner-label').textContent",
        )
        .unwrap();
    assert!(label.as_str().unwrap().contains(winner), "{label}");
    let dominated_or_front = browser
        .evaluate(
            &session,
            None,
            "document.querySelectorAll('.champion-point.front, .champion-point.dominated').length",
        )
        .unwrap();
    assert_eq!(dominated_or_front, champions);
    let loaded = console_errors(browser.events(), &session);
    assert!(
        loaded.errors.is_empty(),
        "console errors: {:?}",
        loaded.errors
    );
    assert!(
        loaded.requests.iter().all(|request| *request == url),
        "requests left the page: {:?}",
        loaded.requests
    );

    let height = browser
        .evaluate(&session, None, "document.documentElement.scrollHeight")
        .unwrap();
    browser
        .call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1100, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .unwrap();
    let shot = browser
        .call(
            Some(&session),
            "Page.captureScreenshot",
            json!({"format": "png"}),
        )
        .unwrap();
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("podium-demo-report.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// The report run's page in MLflow's own artifact view, served by the server: the UI shows it
/// in its HTML viewer, and inside it the scatter has one point per champion.
fn page_in_mlflow_artifact_view(server: &str, experiment_id: &str, run_id: &str, champions: usize) {
    let mut browser = podium_testkit::browser::Browser::launch().unwrap();
    let session = browser.new_page().unwrap();
    for domain in ["Page", "Runtime", "Log"] {
        browser
            .call(Some(&session), &format!("{domain}.enable"), json!({}))
            .unwrap();
    }
    // The UI shows HTML artifacts in a sandboxed frame of their own process: attach to it.
    browser
        .call(
            Some(&session),
            "Target.setAutoAttach",
            json!({"autoAttach": true, "waitForDebuggerOnStart": false, "flatten": true}),
        )
        .unwrap();
    let url = format!(
        "{server}/#/experiments/{experiment_id}/runs/{run_id}/artifacts/podium-report.html"
    );
    browser
        .call(Some(&session), "Page.navigate", json!({"url": url}))
        .unwrap();
    let attached = browser
        .wait_for(Duration::from_secs(90), |event| {
            event["method"] == "Target.attachedToTarget"
                && event["params"]["targetInfo"]["type"] == "iframe"
        })
        .unwrap_or_else(|err| {
            let seen: Vec<&Value> = browser
                .events()
                .iter()
                .filter(|event| event["method"] == "Target.attachedToTarget")
                .collect();
            panic!("MLflow's artifact view showed the page in no frame ({err}): {seen:?}")
        });
    let frame = attached["params"]["sessionId"]
        .as_str()
        .unwrap()
        .to_string();
    for domain in ["Runtime", "Log"] {
        browser
            .call(Some(&frame), &format!("{domain}.enable"), json!({}))
            .unwrap();
    }
    let context: Option<u64> = None;
    let session = frame;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let points = browser
            .evaluate(
                &session,
                context,
                "document.querySelectorAll('.champion-point').length",
            )
            .unwrap();
        if points == champions {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the report in MLflow's viewer has {points} points"
        );
        browser.settle(Duration::from_millis(300)).unwrap();
    }
    let title = browser
        .evaluate(&session, context, "document.title")
        .unwrap();
    assert_eq!(title, "podium report — podium-demo");
    // No error in its frame either (a policy violation would be one).
    browser.settle(Duration::from_millis(500)).unwrap();
    let loaded = console_errors(browser.events(), &session);
    assert!(
        loaded.errors.is_empty(),
        "console errors: {:?}",
        loaded.errors
    );
}

#[test]
fn report_through_a_real_server_and_in_a_real_browser() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    podium_fixtures::demo::prepare(&dir).unwrap();
    // The server serves the demo's database; what podium writes through it (benchmark runs,
    // their results, the report run) gets the server's artifact root.
    let served = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("mlflow.db"), served.path().join("mlflow.db")).unwrap();
    let server = podium_testkit::MlflowServer::start_in(served).unwrap();
    let project = Project {
        root: dir.clone(),
        uri: server.url().to_string(),
    };
    let out = project.run(&["run"]);
    assert!(
        out.contains("benchmarked 3, skipped 0, restored 0, failed 0"),
        "{out}"
    );
    let page = dir.join("outputs/report/podium-demo-report.html");
    let closing: Vec<&str> = out.lines().rev().take(2).collect();
    assert_eq!(
        closing,
        [
            "benchmarked 3, skipped 0, restored 0, failed 0".to_string(),
            format!("report: {}", page.display())
        ],
        "{out}"
    );
    page_from_disk_in_chromium(&page, 3, "deberta-v3-small");

    let (run_id, experiment_id) = reports_twice_then_checks(&project);
    page_in_mlflow_artifact_view(server.url(), &experiment_id, &run_id, 3);
}
