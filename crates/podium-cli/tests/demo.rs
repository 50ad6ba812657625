//! `podium demo`: generates its project, benchmarks the three champions once (its own second
//! pass and a second demo measure nothing), and leaves a store that Python mlflow reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

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

/// The `benchmarked N, skipped M, restored K, failed F` lines, in order: the run's, then the
/// second pass's.
fn summary_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|line| line.starts_with("benchmarked "))
        .collect()
}

#[test]
fn demo_benchmarks_once_keeps_its_store_and_python_mlflow_reads_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let dir_text = dir.to_str().unwrap();

    let first = stdout_of(&podium(&["demo", "--dir", dir_text], work.path()));
    // The run measures the three champions; its benchmark step once more measures nothing.
    assert_eq!(
        summary_lines(&first),
        [
            "benchmarked 3, skipped 0, restored 0, failed 0",
            "benchmarked 0, skipped 3, restored 0, failed 0"
        ],
        "{first}"
    );
    for backbone in ["distilbert", "distilroberta", "deberta"] {
        assert!(first.contains(backbone), "{first}");
    }
    let db = dir.join("mlflow.db");
    let browse = format!("mlflow ui --backend-store-uri sqlite:///{}", db.display());
    assert!(first.contains(&browse), "{first}");
    assert!(dir.join("config/benchmark.yaml").is_file());
    let db_bytes = std::fs::metadata(&db).unwrap().len();
    assert!(db_bytes > 0);

    let second = stdout_of(&podium(&["demo", "--dir", dir_text], work.path()));
    assert_eq!(
        summary_lines(&second),
        ["benchmarked 0, skipped 3, restored 0, failed 0"; 2],
        "{second}"
    );
    assert!(second.contains("Keeping the demo store"), "{second}");
    assert!(second.contains(&browse), "{second}");

    // Python mlflow (the real peer) reads what the demo wrote: the sweep, and the benchmarks.
    let counts = podium_testkit::run_python(
        r#"
import json, sys
import mlflow
mlflow.set_tracking_uri("sqlite:///" + sys.argv[1])
out = {}
for backbone, written in [("distilbert", "distilbert-base-uncased"), ("distilroberta", "distilroberta-base"), ("deberta", "deberta-v3-small")]:
    runs = mlflow.search_runs(experiment_names=[f"podium-demo-hpo-{written}"], max_results=50000)
    # As the pipeline tags them: sweeps and trials both stage `hpo`, trials children of a sweep.
    hpo = runs["tags.code.stage"] == "hpo"
    child = runs["tags.mlflow.parentRunId"].notna()
    trials = runs[hpo & child]
    out[backbone] = {
        "sweeps": int((hpo & ~child).sum()),
        "trials": len(trials),
        "refits": int((runs["tags.code.stage"] == "hpo_refit").sum()),
        "nan_trials": int(trials[trials["status"] == "FINISHED"]["metrics.macro-f1"].isna().sum()),
        "failed_trials": int((runs["status"] == "FAILED").sum()),
        "models": sorted(set(runs["tags.code.model"].dropna())),
        "schemas": sorted(set(runs["tags.code.study.key_schema_version"].dropna())),
    }
bench = mlflow.search_runs(experiment_names=["podium-demo-benchmark"], filter_string="attributes.status = 'FINISHED'")
out["benchmark_runs"] = len(bench)
print(json.dumps(out, sort_keys=True))
"#,
        &[db.to_str().unwrap()],
    );
    let counts: serde_json::Value = serde_json::from_str(counts.trim()).unwrap();
    assert_eq!(counts["benchmark_runs"], 3, "{counts}");
    assert_eq!(counts["distilbert"]["sweeps"], 2, "{counts}");
    assert_eq!(counts["distilbert"]["trials"], 8, "{counts}");
    assert_eq!(
        counts["distilbert"]["models"],
        serde_json::json!(["distilbert", "distilbert-base-uncased"]),
        "sweeps name the backbone, trials and refits its short name: {counts}"
    );
    assert_eq!(counts["distilbert"]["nan_trials"], 1, "{counts}");
    assert_eq!(
        counts["distilbert"]["schemas"],
        serde_json::json!(["1.0", "2.0"]),
        "{counts}"
    );
    for backbone in ["distilbert", "distilroberta", "deberta"] {
        assert_eq!(counts[backbone]["refits"], 1, "{counts}");
    }
    assert_eq!(counts["distilroberta"]["sweeps"], 2, "{counts}");
    assert_eq!(counts["deberta"]["trials"], 6, "{counts}");
    assert_eq!(counts["deberta"]["failed_trials"], 1, "{counts}");
}
