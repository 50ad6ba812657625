//! `podium run` on stores generated the way the pipeline writes them
//! (`scripts/gen-pipeline-store.py`, real Python mlflow): the champions' checkpoints exist only
//! as the refit runs' `best_trial_checkpoint.tar.gz` artifacts (tiny random checkpoints). The
//! first run acquires each one — through a real `mlflow server`'s artifact proxy, or from the
//! local artifact root of an `mlflow.db` — benchmarks it and writes runs the pipeline's own
//! existence check finds; the second measures nothing. The pipeline's local copies in the search
//! roots of `artifact_acquisition.yaml`, under the outputs folder `paths.yaml` names for the
//! platform, are used before any download.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/orchestrate.rs"]
mod support;

use std::path::{Path, PathBuf};

use podium_fixtures::random_checkpoint::RandomCheckpoint;
use podium_keys::{Tag, TagRegistry};
use podium_mlflow::{Filter, RunStatus, ViewType};
use support::{FAST_BENCHMARK, Project, names, pipeline_existence_check};

/// The backbones of the generator's `basic` store, as its config lists them.
const BASIC_BACKBONES: [&str; 2] = ["distilbert", "deberta-v3-small"];

/// Generates the `basic` pipeline store (experiment name `t`) into `uri`, with its config
/// folder, a tiny random checkpoint in every refit archive and a fast benchmark.yaml. Returns
/// the project and the generator's manifest.
fn generated_project(uri: &str, artifact_root: bool) -> (Project, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source-checkpoint");
    RandomCheckpoint::tiny_for("distilbert-base-uncased", 11)
        .write(&source)
        .unwrap();
    let manifest = dir.path().join("manifest.json");
    let mut command = std::process::Command::new(podium_testkit::python());
    command
        .arg(podium_testkit::workspace_root().join("scripts/gen-pipeline-store.py"))
        .args(["--tracking-uri", uri, "--store", "basic"])
        .args(["--experiment-name", "t", "--root"])
        .arg(dir.path())
        .arg("--config-dir")
        .arg(dir.path().join("config"))
        .arg("--checkpoint")
        .arg(&source)
        .arg("--manifest")
        .arg(&manifest)
        .current_dir(dir.path())
        .env("GIT_PYTHON_REFRESH", "quiet");
    if artifact_root {
        command
            .arg("--artifact-root")
            .arg(dir.path().join("artifacts"));
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(manifest["backbones"], serde_json::json!(BASIC_BACKBONES));
    std::fs::write(dir.path().join("config/benchmark.yaml"), FAST_BENCHMARK).unwrap();
    let project = Project {
        uri: uri.to_string(),
        dir,
    };
    (project, manifest)
}

/// The refit run id of each backbone's champion, as the generator wrote it (trial 1 is the
/// best of both sweeps in the `basic` store).
fn refit_ids(manifest: &serde_json::Value) -> Vec<(String, String)> {
    [
        ("distilbert", "distilbert-0-refit-1"),
        ("deberta-v3-small", "deberta-1-refit-1"),
    ]
    .into_iter()
    .map(|(backbone, run)| {
        let id = manifest["runs"][run]
            .as_str()
            .unwrap_or_else(|| panic!("no run {run} in {manifest}"));
        (backbone.to_string(), id.to_string())
    })
    .collect()
}

/// The FINISHED benchmark runs of experiment `t-benchmark`.
fn benchmark_runs(uri: &str) -> Vec<podium_mlflow::Run> {
    let store = podium_mlflow::open_store(Some(uri)).unwrap();
    let Some(experiment) = store.get_experiment_by_name("t-benchmark").unwrap() else {
        return Vec::new();
    };
    let registry = TagRegistry::defaults();
    let filter = Filter::new()
        .tag_eq(registry.get(Tag::Stage), "benchmarking")
        .status(RunStatus::Finished);
    podium_mlflow::search_all(
        store.as_ref(),
        &[experiment.experiment_id],
        &filter,
        ViewType::ActiveOnly,
    )
    .unwrap()
}

/// The refit a benchmark run measured, and where its checkpoint came from.
fn lineage(run: &podium_mlflow::Run) -> (String, String) {
    let registry = TagRegistry::defaults();
    (
        run.tag(registry.get(Tag::LineageHpoRefitRunId))
            .unwrap()
            .to_string(),
        run.tag(registry.get(Tag::BenchmarkCheckpointSource))
            .unwrap()
            .to_string(),
    )
}

/// Every file under `dir` with its bytes, by relative path.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path.strip_prefix(base).unwrap().to_path_buf(), bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn stdout_of(output: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Run twice: the first acquires every champion's refit archive, benchmarks it and writes
/// runs the pipeline finds; the second skips them all and measures nothing.
fn run_twice_on_a_generated_store(project: &Project, manifest: &serde_json::Value) {
    let refits = refit_ids(manifest);
    let first = stdout_of(&project.podium(&["run"]).output().unwrap());
    assert!(
        first.ends_with("benchmarked 2, skipped 0, restored 0, failed 0\n"),
        "{first}"
    );
    let runs = benchmark_runs(&project.uri);
    assert_eq!(runs.len(), 2, "{first}");
    let mut measured: Vec<(String, String)> = runs.iter().map(lineage).collect();
    measured.sort();
    let mut expected: Vec<(String, String)> = refits
        .iter()
        .map(|(_, refit)| (refit.clone(), "download".to_string()))
        .collect();
    expected.sort();
    assert_eq!(measured, expected, "each champion's refit, downloaded");
    let source = contents(&project.root().join("source-checkpoint"));
    for (_, refit) in &refits {
        let cached = project
            .root()
            .join("outputs/cache/checkpoints")
            .join(refit)
            .join("checkpoint");
        assert_eq!(contents(&cached), source, "the archive, extracted whole");
    }

    // The pipeline's existence check (key, then study + trial hash) finds each run.
    let registry = TagRegistry::defaults();
    let checks: Vec<(String, String, String)> = runs
        .iter()
        .map(|run| {
            let tag = |tag: Tag| run.tag(registry.get(tag)).unwrap().to_string();
            (
                run.tag("benchmark_key").unwrap().to_string(),
                tag(Tag::StudyKeyHash),
                tag(Tag::TrialKeyHash),
            )
        })
        .collect();
    let store = podium_mlflow::open_store(Some(&project.uri)).unwrap();
    for ((_, study, trial), run) in checks.iter().zip(&runs) {
        let (refit_id, _) = lineage(run);
        let refit = store.get_run(&refit_id).unwrap();
        assert_eq!(
            refit.tag(registry.get(Tag::StudyKeyHash)),
            Some(study.as_str())
        );
        assert_eq!(
            refit.tag(registry.get(Tag::TrialKeyHash)),
            Some(trial.as_str())
        );
    }
    // Each run holds its result file where the pipeline's tracker logs its own
    // (`benchmark_results.json/benchmark.json`), the same document as on disk.
    let dest = tempfile::tempdir().unwrap();
    for run in &runs {
        let landed = store
            .download_artifacts(
                &run.info,
                "benchmark_results.json/benchmark.json",
                dest.path(),
            )
            .unwrap();
        let document: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&landed).unwrap()).unwrap();
        assert_eq!(
            document["podium"]["benchmark_key"].as_str(),
            run.tag("benchmark_key"),
            "{document}"
        );
        assert!(document["batch_1"]["mean_ms"].is_number(), "{document}");
    }
    for check in pipeline_existence_check(&project.uri, &checks) {
        assert_eq!(check["by_key"], 1, "{check}");
        assert_eq!(check["by_hash"], 1, "{check}");
        assert_eq!(check["stage"], "benchmarking", "{check}");
        assert!(
            ["distilbert", "deberta"].contains(&check["model"].as_str().unwrap()),
            "{check}"
        );
    }

    let (output, second) = project.run_json(&["run"]);
    assert!(output.status.success(), "{second}");
    assert_eq!(second["counts"]["benchmarked"], 0, "{second}");
    assert_eq!(second["counts"]["skipped"], 2, "{second}");
    assert_eq!(names(&second, "skipped"), {
        let mut all: Vec<String> = BASIC_BACKBONES.iter().map(|b| b.to_string()).collect();
        all.sort();
        all
    });
    let text = stdout_of(&project.podium(&["run"]).output().unwrap());
    assert!(
        text.ends_with("benchmarked 0, skipped 2, restored 0, failed 0\n"),
        "{text}"
    );
    assert_eq!(
        benchmark_runs(&project.uri).len(),
        2,
        "nothing measured again"
    );
}

#[test]
fn run_acquires_refit_archives_through_a_real_server_then_skips() {
    let server = podium_testkit::MlflowServer::start().unwrap();
    let (project, manifest) = generated_project(server.url(), false);
    run_twice_on_a_generated_store(&project, &manifest);
}

#[test]
fn run_acquires_refit_archives_from_an_mlflow_db_then_skips() {
    let scratch = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", scratch.path().join("mlflow.db").display());
    let (project, manifest) = generated_project(&uri, true);
    run_twice_on_a_generated_store(&project, &manifest);
}

#[test]
fn local_copies_in_the_search_roots_come_before_the_download() {
    let scratch = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", scratch.path().join("mlflow.db").display());
    let (project, manifest) = generated_project(&uri, true);
    let refits = refit_ids(&manifest);
    let config = project.config_dir();
    // On this platform outputs/ is `platform-out`; the pipeline keeps its copies in `copies`
    // (renamed `kept` by paths.yaml).
    std::fs::write(
        config.join("paths.yaml"),
        "base:\n  outputs: outputs\nenv_overrides:\n  local:\n    base:\n      outputs: platform-out\noutputs:\n  copies: kept\n",
    )
    .unwrap();
    std::fs::write(
        config.join("artifact_acquisition.yaml"),
        "search_roots: [\"copies\"]\npriority: [local, mlflow]\n",
    )
    .unwrap();
    let (_, distilbert_refit) = &refits[0];
    let copy = project
        .root()
        .join("platform-out/kept/local/distilbert")
        .join(format!("checkpoint_{}", &distilbert_refit[..12]))
        .join("best_trial_checkpoint");
    RandomCheckpoint::tiny_for("distilbert-base-uncased", 5)
        .write(&copy)
        .unwrap();

    let first = stdout_of(&project.podium(&["run"]).output().unwrap());
    assert!(
        first.ends_with("benchmarked 2, skipped 0, restored 0, failed 0\n"),
        "{first}"
    );
    let mut measured: Vec<(String, String)> =
        benchmark_runs(&project.uri).iter().map(lineage).collect();
    measured.sort();
    let mut expected = vec![
        (refits[0].1.clone(), "search_root".to_string()),
        (refits[1].1.clone(), "download".to_string()),
    ];
    expected.sort();
    assert_eq!(measured, expected);
    // The download went to the platform's outputs folder; nothing was fetched for the copy.
    let cache = project.root().join("platform-out/cache/checkpoints");
    assert!(cache.join(&refits[1].1).join("checkpoint").is_dir());
    assert!(!cache.join(&refits[0].1).exists());
    assert!(!project.root().join("outputs/cache/checkpoints").exists());

    // A typo in artifact_acquisition.yaml is an error naming the file and key.
    std::fs::write(
        config.join("artifact_acquisition.yaml"),
        "search_root: [\"copies\"]\n",
    )
    .unwrap();
    let output = project.podium(&["run", "--force"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("artifact_acquisition.yaml") && stderr.contains("`search_root`"),
        "{stderr}"
    );
}

#[test]
fn the_experiment_is_chosen_by_name_and_names_its_hpo_experiments_as_written() {
    let scratch = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", scratch.path().join("mlflow.db").display());
    let (project, manifest) = generated_project(&uri, true);
    let config = project.config_dir();
    // A second experiment file, named by its experiment_name (not its stem), with its own HPO
    // config: a backbone with `-` in its name that has runs, and one that has none.
    std::fs::write(
        config.join("experiment/second.yaml"),
        "experiment_name: \"t2\"\ndata_config: \"data/resume_tiny.yaml\"\n\
         model_config: \"model/distilbert.yaml\"\ntrain_config: \"train.yaml\"\n\
         hpo_config: \"hpo/prod.yaml\"\nenv_config: \"env/local.yaml\"\n\
         benchmark_config: \"benchmark.yaml\"\nstages:\n  hpo:\n    hpo_config: \"hpo/second.yaml\"\n",
    )
    .unwrap();
    std::fs::write(
        config.join("hpo/second.yaml"),
        "search_space:\n  backbone:\n    type: \"choice\"\n    values: [\"deberta-v3-small\"]\n",
    )
    .unwrap();

    // Two experiment files and none chosen: an error listing both.
    let output = project.podium(&["select"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--experiment") && stderr.contains("second") && stderr.contains("t"),
        "{stderr}"
    );
    let output = project
        .podium(&["--experiment", "nope", "select"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("\"nope\""), "{stderr}");

    // By file stem: experiment `t`, both backbones, `deberta-v3-small` read from
    // `t-hpo-deberta-v3-small` (not shortened).
    let (output, chosen) = project.run_json(&["--experiment", "t", "select"]);
    assert!(output.status.success(), "{chosen}");
    let refits = refit_ids(&manifest);
    for (backbone, refit) in &refits {
        assert_eq!(
            chosen["champions"][backbone]["champion"]["refit_run_id"], *refit,
            "{chosen}"
        );
    }
    assert_eq!(
        manifest["experiments"]["deberta-v3-small"],
        "t-hpo-deberta-v3-small"
    );

    // By experiment_name: `t2` has the HPO config of record of its `stages.hpo`, one backbone,
    // and no `t2-hpo-deberta-v3-small` experiment: an error for it, under "errors".
    let (output, second) = project.run_json(&["--experiment", "t2", "select"]);
    assert!(!output.status.success(), "{second}");
    assert_eq!(
        second["champions"].as_object().map_or(0, |c| c.len()),
        0,
        "{second}"
    );
    let error = second["errors"]["deberta-v3-small"].as_str().unwrap();
    assert!(error.contains("t2-hpo-deberta-v3-small"), "{error}");
    assert_eq!(second["errors"].as_object().unwrap().len(), 1, "{second}");
}

#[test]
fn with_no_backbone_list_the_backbones_are_discovered_from_the_hpo_experiment_names() {
    let scratch = tempfile::tempdir().unwrap();
    let uri = format!("sqlite:///{}", scratch.path().join("mlflow.db").display());
    let (project, manifest) = generated_project(&uri, true);
    let config = project.config_dir();
    // The HPO config of record names no backbones, as a pipeline config may.
    std::fs::write(
        config.join("hpo/prod.yaml"),
        "search_space:\n  backbone:\n    type: \"choice\"\n\
         checkpoint:\n  study_name: \"hpo_{backbone}\"\n  storage_path: \"{study_name}/study.db\"\n",
    )
    .unwrap();
    // Experiments discovery must pass over: another project's, one whose name only shares
    // the start of `t`, and a deleted one with the right prefix.
    let code = r#"
import sys, logging
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
client.create_experiment("other_exp-hpo-x")
client.create_experiment("t2-hpo-x")
gone = client.create_experiment("t-hpo-gone")
client.create_run(gone, tags={"code.stage": "hpo_trial"})
client.delete_experiment(gone)
"#;
    podium_testkit::run_python(code, &[&uri]);

    let (output, chosen) = project.run_json(&["select"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{chosen} {stderr}");
    assert!(
        stderr.contains("backbones discovered from the store")
            && stderr.contains("t-hpo-")
            && stderr.contains("deberta-v3-small, distilbert"),
        "{stderr}"
    );
    let champions: Vec<&String> = chosen["champions"].as_object().unwrap().keys().collect();
    assert_eq!(champions, ["deberta-v3-small", "distilbert"], "{chosen}");
    assert_eq!(chosen["errors"], serde_json::json!({}), "{chosen}");
    for (backbone, refit) in refit_ids(&manifest) {
        assert_eq!(
            chosen["champions"][&backbone]["champion"]["refit_run_id"], refit,
            "{chosen}"
        );
    }

    // `--backbone` still wins over discovery, and nothing is said about discovery then.
    let (output, one) = project.run_json(&["select", "--backbone", "distilbert"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{one} {stderr}");
    assert!(!stderr.contains("discovered"), "{stderr}");
    let champions: Vec<&String> = one["champions"].as_object().unwrap().keys().collect();
    assert_eq!(champions, ["distilbert"], "{one}");

    // An experiment name with no HPO experiment in the store: a clear error, not an empty
    // answer.
    std::fs::write(
        config.join("experiment/t.yaml"),
        std::fs::read_to_string(config.join("experiment/t.yaml"))
            .unwrap()
            .replace(
                "experiment_name: \"t\"",
                "experiment_name: \"nothing_here\"",
            ),
    )
    .unwrap();
    let output = project.podium(&["select"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("no active experiment named nothing_here-hpo-"),
        "{stderr}"
    );
}
