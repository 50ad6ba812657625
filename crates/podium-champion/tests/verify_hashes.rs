//! verify-hashes against runs logged by Python `mlflow` into an `mlflow.db`, read with podium's
//! SQLite store: a consistent sweep, and one sweep per kind of mismatch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use podium_champion::verify::{ProblemKind, verify_hashes};
use podium_keys::{Tag, TagRegistry, stage};
use podium_mlflow::SqliteStore;
use serde_json::{Value, json};

const EXPERIMENT: &str = "proj-hpo-distilbert";

fn h(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

/// A sweep and its runs; `edit` changes the children's tags to create one defect.
fn sweep(prefix: &str, study_hash: &str) -> Vec<Value> {
    let tags = TagRegistry::defaults();
    let base = |stage_name: &str| {
        json!({
            tags.get(Tag::Backbone): "distilbert",
            tags.get(Tag::Stage): stage_name,
            tags.get(Tag::StudyKeyHash): study_hash,
            tags.get(Tag::StudyKeySchemaVersion): "2.0",
        })
    };
    let mut trial_tags = base(stage::HPO_TRIAL);
    trial_tags[tags.get(Tag::TrialKeyHash)] = json!(h('7'));
    let mut refit_tags = trial_tags.clone();
    refit_tags[tags.get(Tag::Stage)] = json!(stage::HPO_REFIT);
    vec![
        json!({"name": format!("{prefix}-sweep"), "experiment": EXPERIMENT, "tags": base(stage::HPO_SWEEP)}),
        // The trial links through the lineage tag, the refit through MLflow nesting.
        json!({"name": format!("{prefix}-trial"), "experiment": EXPERIMENT, "tags": trial_tags,
               "tag_refs": {tags.get(Tag::LineageHpoSweepRunId): format!("{prefix}-sweep")}}),
        json!({"name": format!("{prefix}-refit"), "experiment": EXPERIMENT, "tags": refit_tags,
               "parent": format!("{prefix}-sweep"),
               "tag_refs": {tags.get(Tag::RefitOfTrialRunId): format!("{prefix}-trial")}}),
    ]
}

fn log_runs(db: &std::path::Path, runs: &[Value]) -> BTreeMap<String, String> {
    let spec = db.with_file_name("runs.json");
    std::fs::write(&spec, Value::Array(runs.to_vec()).to_string()).unwrap();
    let output = std::process::Command::new(podium_testkit::python())
        .arg(podium_testkit::workspace_root().join("scripts/best-trials-log-runs.py"))
        .arg(format!("sqlite:///{}", db.display()))
        .arg(&spec)
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn consistent_sweep_passes_and_each_mismatch_is_named() {
    let tags = TagRegistry::defaults();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let mut runs = sweep("good", &h('a'));

    let mut study = sweep("study", &h('b'));
    study[1]["tags"][tags.get(Tag::StudyKeyHash)] = json!(h('c'));
    runs.extend(study);

    let mut schema = sweep("schema", &h('d'));
    schema[2]["tags"][tags.get(Tag::StudyKeySchemaVersion)] = json!("1.0");
    runs.extend(schema);

    let mut unlinked = sweep("unlinked", &h('e'));
    unlinked[2]["tag_refs"] = json!({});
    runs.extend(unlinked);

    let mut trial_hash = sweep("trialhash", &h('f'));
    trial_hash[2]["tags"][tags.get(Tag::TrialKeyHash)] = json!(h('8'));
    runs.extend(trial_hash);

    let mut dangling = sweep("dangling", &h('0'));
    dangling[2]["tag_refs"] = json!({});
    dangling[2]["tags"][tags.get(Tag::RefitOfTrialRunId)] = json!(h('9')[..32].to_string());
    runs.extend(dangling);

    let mut legacy = sweep("legacy", &h('1'));
    for run in legacy.iter_mut() {
        run["tags"][tags.get(Tag::StudyKeySchemaVersion)] = json!("1.0");
    }
    runs.extend(legacy);

    let mut orphan = sweep("orphan", &h('2'));
    orphan[1]["tag_refs"] = json!({});
    runs.extend(orphan);

    let ids = log_runs(&db, &runs);
    let store = SqliteStore::open(&db).unwrap();
    let check = |sweep_name: &str| {
        verify_hashes(
            &store,
            &tags,
            EXPERIMENT,
            Some(&ids[&format!("{sweep_name}-sweep")]),
        )
        .unwrap()
    };

    let good = check("good");
    assert!(good.is_consistent(), "{:?}", good.problems);
    assert_eq!((good.sweeps, good.trials, good.refits), (1, 1, 1));

    let expect = |sweep_name: &str, kind: ProblemKind, run: &str| {
        let report = check(sweep_name);
        assert_eq!(
            report
                .problems
                .iter()
                .map(|p| (p.kind, p.run_id.clone()))
                .collect::<Vec<_>>(),
            vec![(kind, ids[&format!("{sweep_name}-{run}")].clone())],
            "{sweep_name}: {:?}",
            report.problems
        );
    };
    expect("study", ProblemKind::StudyKeyHashMismatch, "trial");
    expect("schema", ProblemKind::SchemaVersionMismatch, "refit");
    expect("unlinked", ProblemKind::RefitMissingTrialLink, "refit");
    expect("trialhash", ProblemKind::TrialKeyHashMismatch, "refit");
    expect("dangling", ProblemKind::RefitTrialNotFound, "refit");
    expect("legacy", ProblemKind::SweepNotV2, "sweep");

    // The whole experiment: every problem above, plus the orphan trial without a sweep link.
    let all = verify_hashes(&store, &tags, EXPERIMENT, None).unwrap();
    assert_eq!(all.sweeps, 8);
    let kinds: Vec<ProblemKind> = all.problems.iter().map(|p| p.kind).collect();
    for kind in [
        ProblemKind::StudyKeyHashMismatch,
        ProblemKind::SchemaVersionMismatch,
        ProblemKind::RefitMissingTrialLink,
        ProblemKind::TrialKeyHashMismatch,
        ProblemKind::RefitTrialNotFound,
        ProblemKind::SweepNotV2,
        ProblemKind::MissingParentLink,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} missing from {kinds:?}");
    }
    assert!(
        all.problems
            .iter()
            .any(|p| p.kind == ProblemKind::MissingParentLink && p.run_id == ids["orphan-trial"])
    );

    // A missing experiment is an error, not an empty report.
    let err = verify_hashes(&store, &tags, "nope", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}
