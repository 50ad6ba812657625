//! Best-trial retrieval against the real peers: Optuna studies written by Python `optuna`, runs
//! logged by Python `mlflow` into an `mlflow.db` read with podium's SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use podium_champion::best_trial::{
    BestTrials, Direction, Objective, RetrievalContext, SelectionScope, TrialSource,
    best_of_study_file, retrieve_best_trials,
};
use podium_champion::optuna_study::parse_python_json;
use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::{SqliteStore, TrackingStore};
use podium_variants::{Environment, ExperimentConfig, OutputLayout};
use serde_json::{Value, json};

const BACKBONE: &str = "distilbert-base-uncased";

fn script(name: &str) -> String {
    podium_testkit::workspace_root()
        .join("scripts")
        .join(name)
        .display()
        .to_string()
}

/// Runs a repo script in the test venv and returns its stdout.
fn run_script(name: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(podium_testkit::python())
        .arg(script(name))
        .args(args)
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn experiment() -> ExperimentConfig {
    ExperimentConfig {
        name: "proj".into(),
        backbones: vec![BACKBONE.into()],
        hpo_experiment: "{name}-hpo-{backbone}".into(),
        benchmark_experiment: "{name}-benchmark".into(),
    }
}

fn value_of(expected: &Value) -> f64 {
    match expected {
        Value::String(text) if text == "Infinity" => f64::INFINITY,
        Value::String(text) if text == "-Infinity" => f64::NEG_INFINITY,
        other => other.as_f64().unwrap(),
    }
}

fn params_of(expected: &Value) -> BTreeMap<String, Value> {
    expected["params"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    optuna: Value,
}

impl Fixture {
    fn model_dir(&self) -> PathBuf {
        self.root.join("outputs/hpo/local/distilbert")
    }
}

fn optuna_fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    let model_dir = root.join("outputs/hpo/local/distilbert");
    let stdout = run_script(
        "best-trials-make-studies.py",
        &[model_dir.to_str().unwrap()],
    );
    let optuna = parse_python_json(stdout.trim()).unwrap();
    Fixture {
        _dir: dir,
        root,
        optuna,
    }
}

fn retrieve(
    root: &Path,
    store: Option<&dyn TrackingStore>,
    scope: SelectionScope,
) -> podium_champion::BestTrialsReport {
    let experiment = experiment();
    let tags = TagRegistry::defaults();
    let objective = Objective {
        metric: "macro-f1".into(),
        direction: Direction::Maximize,
    };
    let layout = OutputLayout::new(root);
    let context = RetrievalContext {
        store,
        experiment: &experiment,
        tags: &tags,
        objective: &objective,
        scope,
        layout: &layout,
        environment: &Environment::Local,
    };
    retrieve_best_trials(&context, &[BACKBONE.to_string()])
}

#[test]
fn optuna_studies_read_like_optuna_and_sources_fall_back_in_order() {
    let fixture = optuna_fixture();
    let folders = fixture.optuna.as_object().unwrap();
    assert_eq!(folders.len(), 4);

    // Each study file: the same best trial as Optuna's study.best_trial (number, value, params).
    for (folder, expected) in folders {
        let path = fixture.model_dir().join(folder).join("study.db");
        let (study, trial) = best_of_study_file(&path, &mut |w| panic!("warning {w}"))
            .unwrap()
            .unwrap();
        assert_eq!(study.name, expected["study_name"].as_str().unwrap());
        assert_eq!(
            trial.number,
            expected["number"].as_i64().unwrap(),
            "{folder}"
        );
        assert_eq!(trial.value, value_of(&expected["value"]), "{folder}");
        assert_eq!(trial.params, params_of(expected), "{folder}");
    }
    // Reading must leave the study files untouched (no journal, no migration).
    let before = std::fs::read(fixture.model_dir().join("hpo_distilbert/study.db")).unwrap();

    // per_variant from the studies only (no tracking store).
    let report = retrieve(&fixture.root, None, SelectionScope::PerVariant);
    let found = &report.found[BACKBONE];
    assert_eq!(found.source, TrialSource::Study);
    let BestTrials::PerVariant(per_variant) = &found.best else {
        panic!("expected per-variant answer")
    };
    assert_eq!(per_variant.len(), 4);
    for (folder, expected) in folders {
        let trial = &per_variant[folder];
        assert_eq!(trial.source, TrialSource::Study);
        assert_eq!(trial.trial_number, expected["number"].as_i64());
        assert_eq!(trial.value, value_of(&expected["value"]));
        assert_eq!(trial.params, params_of(expected));
        assert_eq!(trial.variant.as_deref(), Some(folder.as_str()));
    }
    // The minimize study disagrees with the configured direction: said so.
    assert!(
        found
            .warnings
            .iter()
            .any(|w| w.contains("hpo_distilbert_v2") && w.contains("minimize")),
        "{:?}",
        found.warnings
    );

    // overall: the +inf trial of the maximize study hpo_distilbert_v3 (studies' directions
    // differ, so the configured maximize decides across folders).
    let report = retrieve(&fixture.root, None, SelectionScope::Overall);
    let BestTrials::Overall(best) = &report.found[BACKBONE].best else {
        panic!("expected overall answer")
    };
    assert_eq!(best.source, TrialSource::Study);
    assert_eq!(best.variant.as_deref(), Some("hpo_distilbert_v3"));
    assert_eq!(best.value, f64::INFINITY);
    assert_eq!(
        best.trial_number,
        fixture.optuna["hpo_distilbert_v3"]["number"].as_i64()
    );
    assert_eq!(
        std::fs::read(fixture.model_dir().join("hpo_distilbert/study.db")).unwrap(),
        before
    );

    // Remove the studies: the trial metrics on disk answer.
    let disk_root = fixture.root.parent().unwrap().join("disk");
    copy_dir(&fixture.root, &disk_root);
    let model_dir = disk_root.join("outputs/hpo/local/distilbert");
    for folder in folders.keys() {
        std::fs::remove_file(model_dir.join(folder).join("study.db")).unwrap();
    }
    for (folder, trial, text) in [
        ("hpo_distilbert", 0, r#"{"macro-f1": 0.61, "loss": 0.3}"#),
        ("hpo_distilbert", 2, r#"{"macro-f1": 0.83}"#),
        ("hpo_distilbert", 5, r#"{"macro-f1": 0.83}"#),
        ("hpo_distilbert_v2", 1, r#"{"macro-f1": NaN}"#),
        ("hpo_distilbert_v2", 3, r#"{"macro-f1": 0.5}"#),
    ] {
        let dir = model_dir.join(folder).join(format!("trial_{trial}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("metrics.json"), text).unwrap();
    }
    let report = retrieve(&disk_root, None, SelectionScope::Overall);
    let found = &report.found[BACKBONE];
    assert_eq!(found.source, TrialSource::Disk);
    let BestTrials::Overall(best) = &found.best else {
        panic!()
    };
    // The tie at 0.83 goes to the smaller trial number.
    assert_eq!(
        (best.variant.as_deref(), best.trial_number, best.value),
        (Some("hpo_distilbert"), Some(2), 0.83)
    );
    let report = retrieve(&disk_root, None, SelectionScope::PerVariant);
    let BestTrials::PerVariant(per_variant) = &report.found[BACKBONE].best else {
        panic!()
    };
    assert_eq!(per_variant["hpo_distilbert_v2"].trial_number, Some(3));

    // Remove the metrics too: no source answers, and the error names each source.
    for folder in folders.keys() {
        std::fs::remove_dir_all(model_dir.join(folder)).unwrap();
    }
    let report = retrieve(&disk_root, None, SelectionScope::Overall);
    assert!(report.found.is_empty());
    let message = &report.failed[BACKBONE].message;
    assert!(
        message.contains("mlflow") && message.contains("study") && message.contains("disk"),
        "{message}"
    );
}

fn trial_run(name: &str, f1: f64, variant: &str, batch_size: &str) -> Value {
    let tags = TagRegistry::defaults();
    json!({
        "name": name,
        "experiment": "proj-hpo-distilbert-base-uncased",
        "tags": {
            tags.get(Tag::Backbone): "distilbert",
            tags.get(Tag::Stage): stage::HPO_TRIAL,
            tags.get(Tag::Variant): variant,
        },
        "params": {"batch_size": batch_size},
        "metrics": {"macro-f1": f1},
        "parent": "sweep",
    })
}

/// The sweep (parent) run the trials of [`trial_run`] are nested under.
fn sweep_run() -> Value {
    let tags = TagRegistry::defaults();
    json!({
        "name": "sweep",
        "experiment": "proj-hpo-distilbert-base-uncased",
        "tags": {tags.get(Tag::Stage): stage::HPO_TRIAL, tags.get(Tag::Backbone): "distilbert"},
        "metrics": {"macro-f1": 0.999},
    })
}

#[test]
fn mlflow_answers_first_and_disagreement_is_warned() {
    let fixture = optuna_fixture();
    let tags = TagRegistry::defaults();
    let db = fixture.root.join("mlflow.db");
    let spec = fixture.root.join("runs.json");
    let mut failed = trial_run("failed", 0.99, "1", "8");
    failed["status"] = json!("FAILED");
    let mut other_stage = trial_run("refit", 0.98, "1", "8");
    other_stage["tags"][tags.get(Tag::Stage)] = json!(stage::HPO_REFIT);
    // The sweep is no trial although its stage and metric would say so: it has no parent.
    let runs = json!([
        sweep_run(),
        trial_run("t0", 0.61, "1", "8"),
        trial_run("t1", 0.90, "1", "16"),
        trial_run("t2", 0.90, "2", "32"),
        trial_run("t3", 0.40, "2", "8"),
        failed,
        other_stage,
    ]);
    std::fs::write(&spec, runs.to_string()).unwrap();
    let uri = format!("sqlite:///{}", db.display());
    let ids: BTreeMap<String, String> = serde_json::from_str(
        run_script("best-trials-log-runs.py", &[&uri, spec.to_str().unwrap()]).trim(),
    )
    .unwrap();
    let store = SqliteStore::open(&db).unwrap();

    let report = retrieve(&fixture.root, Some(&store), SelectionScope::Overall);
    let found = &report.found[BACKBONE];
    assert_eq!(found.source, TrialSource::Mlflow);
    let BestTrials::Overall(best) = &found.best else {
        panic!()
    };
    // t1 and t2 tie at 0.90: the earlier start time (t1) wins; FAILED and refit runs never count.
    assert_eq!(best.run_id.as_deref(), Some(ids["t1"].as_str()));
    assert_eq!(best.value, 0.90);
    assert_eq!(best.params["batch_size"], json!("16"));
    // The studies' best (+inf in hpo_distilbert_v3) is another trial: warned, MLflow kept.
    assert!(
        found
            .warnings
            .iter()
            .any(|w| w.contains("disagree") && w.contains(&ids["t1"])),
        "{:?}",
        found.warnings
    );

    let report = retrieve(&fixture.root, Some(&store), SelectionScope::PerVariant);
    let BestTrials::PerVariant(per_variant) = &report.found[BACKBONE].best else {
        panic!()
    };
    assert_eq!(per_variant["1"].run_id.as_deref(), Some(ids["t1"].as_str()));
    assert_eq!(per_variant["2"].run_id.as_deref(), Some(ids["t2"].as_str()));

    // A store without the experiment falls through to the studies.
    let empty = SqliteStore::open(&fixture.root.join("empty.db")).unwrap();
    let report = retrieve(&fixture.root, Some(&empty), SelectionScope::Overall);
    assert_eq!(report.found[BACKBONE].source, TrialSource::Study);
}
