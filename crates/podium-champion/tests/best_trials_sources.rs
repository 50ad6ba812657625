//! Best-trial retrieval against the real peers: Optuna studies written by Python `optuna`, runs
//! logged by Python `mlflow` into an `mlflow.db` read with podium's SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use podium_champion::best_trial::{
    BestTrials, Direction, Objective, RetrievalContext, SelectionScope, StudyKeyedBy, TrialSource,
    retrieve_best_trials, study_trials_of_file,
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
        let studies = study_trials_of_file(&path, &mut |w| panic!("warning {w}")).unwrap();
        let [(study, trial)] = studies.as_slice() else {
            panic!("{folder}: one study per file, found {}", studies.len())
        };
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
        // Each folder holds one study, named like the folder: the folder is its label.
        assert_eq!(trial.study, *folder);
        assert_eq!(trial.keyed_by, StudyKeyedBy::StudyFolder);
        assert_eq!(trial.variant, None);
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
    assert_eq!(best.study, "hpo_distilbert_v3");
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
        (best.study.as_str(), best.trial_number, best.value),
        ("hpo_distilbert", Some(2), 0.83)
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
    // Runs without a study key hash: the legacy layout's variant tag tells their studies apart.
    assert_eq!(
        per_variant["code.variant=1"].run_id.as_deref(),
        Some(ids["t1"].as_str())
    );
    assert_eq!(
        per_variant["code.variant=2"].run_id.as_deref(),
        Some(ids["t2"].as_str())
    );
    assert_eq!(
        per_variant["code.variant=1"].keyed_by,
        StudyKeyedBy::VariantTag
    );

    // A store without the experiment falls through to the studies.
    let empty = SqliteStore::open(&fixture.root.join("empty.db")).unwrap();
    let report = retrieve(&fixture.root, Some(&empty), SelectionScope::Overall);
    assert_eq!(report.found[BACKBONE].source, TrialSource::Study);
}

/// The pipeline's layout: `study-{s8}` folders, sweeps that log their Optuna `study_name`, every
/// sweep and trial of a backbone tagged `code.variant = 1`.
struct PipelineStudies {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// `{"folder/study_name": {folder, study_key_hash, study_name, best, trials}}`.
    studies: serde_json::Map<String, Value>,
    store: SqliteStore,
    /// Run ids by run name.
    ids: BTreeMap<String, String>,
}

/// Two studies of one backbone in their own `study-{s8}` folders (`hpo_distilbert_test_v3`,
/// `_v4`) and two studies sharing one `study.db` (same study key hash, two names), written by
/// Optuna; MLflow holds the same trials, logged by Python mlflow as the pipeline logs them, plus
/// `extra` runs.
fn pipeline_studies(extra: &[Value]) -> PipelineStudies {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("project");
    let model_dir = root.join("outputs/hpo/local/distilbert");
    let stdout = run_script(
        "best-trials-make-studies.py",
        &["--pipeline", model_dir.to_str().unwrap()],
    );
    let studies = parse_python_json(stdout.trim())
        .unwrap()
        .as_object()
        .unwrap()
        .clone();
    let tags = TagRegistry::defaults();
    let mut runs = Vec::new();
    for (label, study) in &studies {
        let hash = study["study_key_hash"].as_str().unwrap();
        let common = json!({
            tags.get(Tag::Stage): stage::HPO,
            tags.get(Tag::StudyKeyHash): hash,
            tags.get(Tag::Variant): "1",
        });
        let mut sweep_tags = common.clone();
        sweep_tags[tags.get(Tag::Model)] = json!(BACKBONE);
        runs.push(json!({
            "name": format!("sweep {label}"),
            "experiment": "proj-hpo-distilbert-base-uncased",
            "tags": sweep_tags,
            "params": {"study_name": study["study_name"], "backbone": BACKBONE},
        }));
        for trial in study["trials"].as_array().unwrap() {
            let mut trial_tags = common.clone();
            trial_tags[tags.get(Tag::Model)] = json!("distilbert");
            trial_tags[tags.get(Tag::LegacyTrialNumber)] = json!(trial["number"].to_string());
            runs.push(json!({
                "name": format!("{label} trial {}", trial["number"]),
                "experiment": "proj-hpo-distilbert-base-uncased",
                "tags": trial_tags,
                "params": trial["params"],
                "metrics": {"macro-f1": trial["value"]},
                "parent": format!("sweep {label}"),
            }));
        }
    }
    runs.extend(extra.iter().cloned());
    let spec = root.join("runs.json");
    std::fs::write(&spec, Value::Array(runs).to_string()).unwrap();
    let db = root.join("mlflow.db");
    let uri = format!("sqlite:///{}", db.display());
    let ids: BTreeMap<String, String> = serde_json::from_str(
        run_script("best-trials-log-runs.py", &[&uri, spec.to_str().unwrap()]).trim(),
    )
    .unwrap();
    PipelineStudies {
        _dir: dir,
        store: SqliteStore::open(&db).unwrap(),
        root,
        studies,
        ids,
    }
}

#[test]
fn per_variant_answers_one_trial_per_study_however_the_variant_tag_reads() {
    let fixture = pipeline_studies(&[]);
    assert_eq!(fixture.studies.len(), 4);

    // MLflow: one answer per study (study key hash + the name the sweep logged), each Optuna's
    // best, no disagreement although every run says code.variant = 1.
    let report = retrieve(
        &fixture.root,
        Some(&fixture.store),
        SelectionScope::PerVariant,
    );
    let found = &report.found[BACKBONE];
    assert_eq!(found.source, TrialSource::Mlflow);
    let BestTrials::PerVariant(per_study) = &found.best else {
        panic!("expected per-variant answer")
    };
    assert_eq!(
        per_study.keys().collect::<Vec<_>>(),
        fixture.studies.keys().collect::<Vec<_>>()
    );
    for (label, study) in &fixture.studies {
        let trial = &per_study[label];
        let best = &study["best"];
        assert_eq!(trial.keyed_by, StudyKeyedBy::StudyKeyHash, "{label}");
        assert_eq!(trial.study, *label);
        assert_eq!(trial.variant.as_deref(), Some("1"));
        assert_eq!(trial.study_name.as_deref(), study["study_name"].as_str());
        assert_eq!(trial.value, value_of(&best["value"]), "{label}");
        assert_eq!(trial.trial_number, best["number"].as_i64(), "{label}");
        let run_name = format!("{label} trial {}", best["number"]);
        assert_eq!(trial.run_id.as_ref(), Some(&fixture.ids[&run_name]));
    }
    assert!(
        !found.warnings.iter().any(|w| w.contains("disagree")),
        "{:?}",
        found.warnings
    );

    // The same studies from the study files alone, under the same labels.
    let report = retrieve(&fixture.root, None, SelectionScope::PerVariant);
    let found = &report.found[BACKBONE];
    assert_eq!(found.source, TrialSource::Study);
    let BestTrials::PerVariant(from_files) = &found.best else {
        panic!("expected per-variant answer")
    };
    assert_eq!(
        from_files.keys().collect::<Vec<_>>(),
        fixture.studies.keys().collect::<Vec<_>>()
    );
    for (label, trial) in from_files {
        assert_eq!(trial.keyed_by, StudyKeyedBy::StudyFolder);
        assert_eq!(trial.value, per_study[label].value, "{label}");
        assert_eq!(trial.trial_number, per_study[label].trial_number, "{label}");
    }

    // Overall: the best of them all, compared with its own study only.
    let report = retrieve(&fixture.root, Some(&fixture.store), SelectionScope::Overall);
    let found = &report.found[BACKBONE];
    let BestTrials::Overall(best) = &found.best else {
        panic!("expected overall answer")
    };
    assert_eq!(best.study, "study-bbbbbbbb/hpo_distilbert_test_v4");
    assert_eq!(best.value, 0.81);
    assert!(found.warnings.is_empty(), "{:?}", found.warnings);
}

#[test]
fn a_real_disagreement_between_mlflow_and_the_studys_file_is_still_warned() {
    // A trial of hpo_distilbert_test_v3 that its study.db does not hold, better than all.
    let tags = TagRegistry::defaults();
    let stray = json!({
        "name": "stray",
        "experiment": "proj-hpo-distilbert-base-uncased",
        "tags": {
            tags.get(Tag::Stage): stage::HPO,
            tags.get(Tag::StudyKeyHash): "a".repeat(64),
            tags.get(Tag::Variant): "1",
            tags.get(Tag::Model): "distilbert",
        },
        "params": {"batch_size": "8"},
        "metrics": {"macro-f1": 0.95},
        "parent": "sweep study-aaaaaaaa/hpo_distilbert_test_v3",
    });
    let fixture = pipeline_studies(&[stray]);
    let report = retrieve(
        &fixture.root,
        Some(&fixture.store),
        SelectionScope::PerVariant,
    );
    let found = &report.found[BACKBONE];
    let BestTrials::PerVariant(per_study) = &found.best else {
        panic!("expected per-variant answer")
    };
    assert_eq!(per_study.len(), 4);
    let v3 = "study-aaaaaaaa/hpo_distilbert_test_v3";
    assert_eq!(per_study[v3].run_id.as_ref(), Some(&fixture.ids["stray"]));
    let disagreements: Vec<&String> = found
        .warnings
        .iter()
        .filter(|w| w.contains("disagree"))
        .collect();
    assert_eq!(disagreements.len(), 1, "{:?}", found.warnings);
    assert!(
        disagreements[0].contains(v3) && disagreements[0].contains(&fixture.ids["stray"]),
        "{}",
        disagreements[0]
    );

    let report = retrieve(&fixture.root, Some(&fixture.store), SelectionScope::Overall);
    let found = &report.found[BACKBONE];
    assert!(
        found
            .warnings
            .iter()
            .any(|w| w.contains("disagree") && w.contains(v3)),
        "{:?}",
        found.warnings
    );
}
