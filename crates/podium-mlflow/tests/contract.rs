//! One contract, three stores: every behaviour podium relies on, checked against a real
//! `mlflow server` (REST store), an MLflow SQLite file (SQLite store) and a PostgreSQL database
//! holding MLflow's schema (PostgreSQL store).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use podium_mlflow::query::{Direction, best_run, group_by_tag, runs_with_tags};
use podium_mlflow::{
    ExperimentGuard, Filter, MetricPoint, MlflowError, PostgresStore, RestConfig, RestStore, Run,
    RunFields, RunStatus, SearchRequest, SqliteStore, TrackingStore, ViewType, search_all,
    search_all_fields, search_all_raw, search_all_raw_fields,
};

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ids(runs: &[podium_mlflow::Run]) -> Vec<String> {
    let mut ids: Vec<String> = runs.iter().map(|run| run.id().to_string()).collect();
    ids.sort();
    ids
}

/// Runs by id, as JSON (so NaN metrics compare equal to themselves).
fn by_id(runs: &[Run]) -> BTreeMap<String, String> {
    runs.iter()
        .map(|run| (run.id().to_string(), serde_json::to_string(run).unwrap()))
        .collect()
}

/// `run` cut down to `fields` by hand, to compare a projected search with a full one.
fn expected_projection(run: &Run, fields: &RunFields) -> Run {
    let mut run = run.clone();
    run.tags.retain(|key, _| fields.tags.contains(key));
    run.params.retain(|key, _| fields.params.contains(key));
    run.metrics.retain(|key, _| fields.metrics.contains(key));
    run
}

/// Projected searches return run info and exactly the requested keys, with the values a full
/// search has; the default projection is a plain search.
fn projection_contract(store: &dyn TrackingStore, experiment: &str, run_ids: [&str; 3]) {
    let label = store.describe();
    let all = [experiment.to_string()];
    let [run_a, run_b, run_c] = run_ids;
    let full = search_all(store, &all, &Filter::new(), ViewType::ActiveOnly).unwrap();
    assert_eq!(full.len(), 3);
    let everything = search_all_fields(
        store,
        &all,
        &Filter::new(),
        ViewType::ActiveOnly,
        &RunFields::all(),
    )
    .unwrap();
    assert_eq!(
        by_id(&everything),
        by_id(&full),
        "{label}: all = a plain search"
    );

    let fields = RunFields::none()
        .with_tags(["note", "code.backbone", "never-set"])
        .with_params(["lr", "p149"])
        .with_metrics(["f1", "loss", "pos", "never-logged"]);
    let projected =
        search_all_fields(store, &all, &Filter::new(), ViewType::ActiveOnly, &fields).unwrap();
    let expected: Vec<Run> = full
        .iter()
        .map(|run| expected_projection(run, &fields))
        .collect();
    assert_eq!(by_id(&projected), by_id(&expected), "{label}: projected");
    let a = projected.iter().find(|run| run.id() == run_a).unwrap();
    assert_eq!(
        a.tags.keys().collect::<Vec<_>>(),
        ["code.backbone", "note"],
        "{label}"
    );
    assert_eq!(a.params.keys().collect::<Vec<_>>(), ["lr", "p149"]);
    assert_eq!(a.params["p149"], "149");
    assert_eq!(a.metrics.keys().collect::<Vec<_>>(), ["f1", "loss", "pos"]);
    assert_eq!(a.metric("f1"), Some(0.4));
    assert!(a.metric("loss").unwrap().is_nan());
    assert_eq!(a.metric("pos"), Some(f64::INFINITY));
    let c = projected.iter().find(|run| run.id() == run_c).unwrap();
    assert_eq!(c.tags.keys().collect::<Vec<_>>(), ["code.backbone"]);
    assert!(c.params.is_empty());

    // Run info only.
    let bare =
        search_all_raw_fields(store, &all, "", ViewType::ActiveOnly, &RunFields::none()).unwrap();
    assert_eq!(bare.len(), 3);
    for run in &bare {
        assert!(run.tags.is_empty() && run.params.is_empty() && run.metrics.is_empty());
        let whole = full.iter().find(|whole| whole.id() == run.id()).unwrap();
        assert_eq!(run.info, whole.info, "{label}");
    }

    // A condition checked client-side still sees its tag, which is then left out again.
    let quoted = a_note(&full, run_a);
    let by_note = search_all_fields(
        store,
        &all,
        &Filter::new().tag_eq("note", quoted.as_str()),
        ViewType::ActiveOnly,
        &RunFields::none().with_metrics(["f1"]),
    )
    .unwrap();
    assert_eq!(ids(&by_note), vec![run_a.to_string()], "{label}");
    assert!(by_note[0].tags.is_empty());
    assert_eq!(by_note[0].metrics.keys().collect::<Vec<_>>(), ["f1"]);

    // One page at a time, with a token and an order, the same runs as unprojected pages.
    let fields = RunFields::all().with_tags(["ignored: all stays all"]);
    assert!(fields.is_all());
    let tags_only = RunFields {
        tags: podium_mlflow::KeySelection::only(["note"]),
        ..RunFields::all()
    };
    let mut token: Option<String> = None;
    let mut paged = Vec::new();
    loop {
        let page = store
            .search_runs_page(
                &SearchRequest::new(all.iter().cloned())
                    .max_results(2)
                    .order_by(["attributes.start_time ASC".to_string()])
                    .page_token(token.clone())
                    .fields(tags_only.clone()),
            )
            .unwrap();
        paged.extend(page.runs);
        match page.next_page_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(
        paged.iter().map(Run::id).collect::<Vec<_>>(),
        [run_a, run_b, run_c],
        "{label}"
    );
    let expected: Vec<Run> = full
        .iter()
        .map(|run| expected_projection(run, &tags_only))
        .collect();
    assert_eq!(by_id(&paged), by_id(&expected), "{label}");
    let a = paged.iter().find(|run| run.id() == run_a).unwrap();
    assert_eq!(a.params.len(), 151, "{label}: params kept whole");

    // Streamed, pages of one and of two, from the first page and from the second: the runs of
    // the paged search, in its order, projected alike.
    for page_size in [1, 2] {
        let request = SearchRequest::new(all.iter().cloned())
            .max_results(page_size)
            .order_by(["attributes.start_time ASC".to_string()])
            .fields(tags_only.clone());
        let mut streamed = Vec::new();
        let count = store
            .search_runs_each(&request, &mut |run| streamed.push(run))
            .unwrap();
        assert_eq!(count, 3, "{label}");
        // Debug text, so that NaN metrics compare equal.
        let text = |runs: &[Run]| format!("{runs:?}");
        assert_eq!(
            text(&streamed),
            text(&paged),
            "{label}: pages of {page_size}"
        );
        let second = store.search_runs_page(&request).unwrap().next_page_token;
        let mut rest = Vec::new();
        store
            .search_runs_each(&request.clone().page_token(second), &mut |run| {
                rest.push(run)
            })
            .unwrap();
        assert_eq!(
            text(&rest),
            text(&paged[page_size..]),
            "{label}: from page 2 of {page_size}"
        );
    }
}

fn a_note(runs: &[Run], run_id: &str) -> String {
    runs.iter()
        .find(|run| run.id() == run_id)
        .and_then(|run| run.tag("note"))
        .unwrap()
        .to_string()
}

/// Uploads `model/{config.json,weights.bin}` to a run's artifact store with Python mlflow.
fn python_log_artifacts(tracking_uri: &str, run_id: &str, workdir: &Path) {
    let code = r#"
import os, sys, logging
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
uri, run_id, work = sys.argv[1:4]
model = os.path.join(work, "model")
os.makedirs(os.path.join(model, "sub"), exist_ok=True)
open(os.path.join(model, "config.json"), "w").write('{"hidden": 8}')
open(os.path.join(model, "sub", "weights.bin"), "wb").write(bytes(range(256)) * 40)
MlflowClient(uri).log_artifacts(run_id, model, "model")
"#;
    podium_testkit::run_python(code, &[tracking_uri, run_id, workdir.to_str().unwrap()]);
}

/// What Python's client sees of a run's artifacts under `dir`, and the text of `file`
/// downloaded with it: `path size` lines, then the text.
fn python_sees(tracking_uri: &str, run_id: &str, dir: &str, file: &str) -> String {
    let code = r#"
import sys, tempfile, logging
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
uri, run_id, folder, name = sys.argv[1:5]
client = MlflowClient(uri)
for info in client.list_artifacts(run_id, folder):
    print(info.path, info.file_size, info.is_dir)
with tempfile.TemporaryDirectory() as dst:
    print(open(client.download_artifacts(run_id, name, dst)).read(), end="")
"#;
    podium_testkit::run_python(code, &[tracking_uri, run_id, dir, file])
}

/// Uploads: podium logs a file as an artifact, Python's client lists and downloads exactly
/// it; a second upload to the same path replaces it; unsafe paths and sources are refused.
fn upload_contract(store: &dyn TrackingStore, tracking_uri: &str, run: &podium_mlflow::RunInfo) {
    let label = store.describe();
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("any-name.html");
    std::fs::write(&page, "<html>first</html>").unwrap();
    store
        .log_artifact(run, "reports/podium-report.html", &page)
        .unwrap();
    let second = "<html>second, \u{e9}t\u{e9} \"quoted\"</html>\n";
    std::fs::write(&page, second).unwrap();
    store
        .log_artifact(run, "reports/podium-report.html", &page)
        .unwrap();
    store
        .log_artifact(run, "benchmark_results.json/benchmark.json", &page)
        .unwrap();
    let seen = python_sees(
        tracking_uri,
        &run.run_id,
        "reports",
        "reports/podium-report.html",
    );
    assert_eq!(
        seen,
        format!(
            "reports/podium-report.html {} False\n{second}",
            second.len()
        ),
        "{label}"
    );
    let nested = python_sees(
        tracking_uri,
        &run.run_id,
        "benchmark_results.json",
        "benchmark_results.json/benchmark.json",
    );
    assert!(
        nested.starts_with("benchmark_results.json/benchmark.json "),
        "{label}: {nested}"
    );
    // podium reads back what it wrote.
    let dest = tempfile::tempdir().unwrap();
    let back = store
        .download_artifacts(run, "reports/podium-report.html", dest.path())
        .unwrap();
    assert_eq!(std::fs::read_to_string(back).unwrap(), second);

    for bad in ["", "reports/", "../escape.html", "/abs.html", "a\\b.html"] {
        assert!(
            matches!(
                store.log_artifact(run, bad, &page),
                Err(MlflowError::Artifact { .. })
            ),
            "{label}: {bad:?} must be refused"
        );
    }
    // Only regular files are uploaded.
    assert!(matches!(
        store.log_artifact(run, "reports/dir.html", work.path()),
        Err(MlflowError::Artifact { .. })
    ));
    assert!(
        store
            .log_artifact(run, "reports/missing.html", &work.path().join("missing"))
            .is_err()
    );
}

/// Experiments created by Python mlflow, for the prefix listing: `_` and `%` in the prefix
/// must not act as wildcards, deleted experiments are left out, names come back sorted.
fn prefix_contract(store: &dyn TrackingStore, tracking_uri: &str) {
    let code = r#"
import sys, logging
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
for name in ["res_ner%x-hpo-distilbert", "res_ner%x-hpo-deberta-v3",
             "res_ner%x-hpo-res_ner%x-hpo-twice", "resAner%x-hpo-decoy",
             "res_nerZZZx-hpo-decoy", "other_exp-hpo-x", "res_ner%x-hp"]:
    client.create_experiment(name)
client.delete_experiment(client.create_experiment("res_ner%x-hpo-gone"))
"#;
    podium_testkit::run_python(code, &[tracking_uri]);
    let label = store.describe();
    let names = |found: Vec<podium_mlflow::Experiment>| -> Vec<String> {
        assert!(found.iter().all(|e| e.is_active()), "{label}");
        found.into_iter().map(|e| e.name).collect()
    };
    let expected = [
        "res_ner%x-hpo-deberta-v3",
        "res_ner%x-hpo-distilbert",
        "res_ner%x-hpo-res_ner%x-hpo-twice",
    ];
    assert_eq!(
        names(store.experiments_with_prefix("res_ner%x-hpo-").unwrap()),
        expected,
        "{label}"
    );
    let found = store.experiments_with_prefix("res_ner%x-hpo-dist").unwrap();
    assert_eq!(found.len(), 1, "{label}");
    assert_eq!(
        store.get_experiment(&found[0].experiment_id).unwrap().name,
        "res_ner%x-hpo-distilbert"
    );
    assert!(
        store
            .experiments_with_prefix("no-such-prefix-")
            .unwrap()
            .is_empty()
    );
    // A prefix holding both quote kinds cannot be a LIKE literal; it still answers (nothing).
    assert!(
        store
            .experiments_with_prefix("both ' and \" quotes")
            .unwrap()
            .is_empty()
    );
}

/// A guarded status update happens only while the guard experiment is active, so named and so
/// tagged; a renamed (taken over) claim refuses it and leaves the run as it was.
fn guard_contract(store: &dyn TrackingStore) {
    let label = store.describe();
    let claim = store
        .create_experiment_with_tags("guard-claim", &[("owner", "me")])
        .unwrap();
    let runs = store.create_experiment("guarded").unwrap();
    let run = store
        .create_run(&runs, "measured", 1, &BTreeMap::new())
        .unwrap();
    let guard = ExperimentGuard {
        experiment_id: &claim,
        name: "guard-claim",
        tag: ("owner", "me"),
    };
    let someone_else = ExperimentGuard {
        tag: ("owner", "you"),
        ..guard
    };
    assert!(
        !store
            .update_run_if(&run.run_id, RunStatus::Failed, Some(5), &someone_else)
            .unwrap(),
        "{label}"
    );
    assert_eq!(
        store.get_run(&run.run_id).unwrap().info.status,
        RunStatus::Running
    );
    assert!(
        store
            .update_run_if(&run.run_id, RunStatus::Finished, Some(6), &guard)
            .unwrap(),
        "{label}"
    );
    let finished = store.get_run(&run.run_id).unwrap();
    assert_eq!(
        (finished.info.status, finished.info.end_time),
        (RunStatus::Finished, Some(6))
    );
    store
        .rename_experiment(&claim, "guard-claim.expired")
        .unwrap();
    assert!(
        !store
            .update_run_if(&run.run_id, RunStatus::Failed, Some(7), &guard)
            .unwrap(),
        "{label}: a renamed claim guards nothing"
    );
    let missing = ExperimentGuard {
        experiment_id: "987654",
        ..guard
    };
    assert!(
        !store
            .update_run_if(&run.run_id, RunStatus::Failed, Some(7), &missing)
            .unwrap()
    );
    assert_eq!(
        store.get_run(&run.run_id).unwrap().info.status,
        RunStatus::Finished
    );
}

/// The contract. `tracking_uri` is the same store for Python (artifact upload).
fn contract(store: &dyn TrackingStore, tracking_uri: &str) {
    let label = store.describe();

    // --- experiments and the claim primitives
    assert!(store.get_experiment_by_name("contract").unwrap().is_none());
    let experiment = store.create_experiment("contract").unwrap();
    assert!(
        matches!(
            store.create_experiment("contract"),
            Err(MlflowError::AlreadyExists { .. })
        ),
        "{label}: duplicate name must be AlreadyExists"
    );
    let found = store.get_experiment_by_name("contract").unwrap().unwrap();
    assert_eq!(found.experiment_id, experiment);
    assert!(found.is_active());
    store
        .set_experiment_tag(&experiment, "podium.owner", "host-1")
        .unwrap();
    store
        .set_experiment_tag(&experiment, "podium.owner", "host-2")
        .unwrap();
    assert_eq!(
        store.get_experiment(&experiment).unwrap().tags["podium.owner"],
        "host-2"
    );
    assert!(matches!(
        store.get_experiment("987654321"),
        Err(MlflowError::NotFound { .. })
    ));

    let lock = store.create_experiment("podium-lock-a").unwrap();
    store.create_experiment("podium-lock-b").unwrap();
    assert!(matches!(
        store.rename_experiment(&lock, "podium-lock-b"),
        Err(MlflowError::AlreadyExists { .. })
    ));
    store.rename_experiment(&lock, "podium-lock-a2").unwrap();
    assert_eq!(store.get_experiment(&lock).unwrap().name, "podium-lock-a2");
    store.delete_experiment(&lock).unwrap();
    let deleted = store.get_experiment(&lock).unwrap();
    assert_eq!(deleted.lifecycle_stage, "deleted");
    // A deleted experiment still holds its name: the claim stays taken until purged.
    assert!(matches!(
        store.create_experiment("podium-lock-a2"),
        Err(MlflowError::AlreadyExists { .. })
    ));

    guard_contract(store);

    // --- runs
    let quoted = "it's \"both\"";
    let run_a = store
        .create_run(
            &experiment,
            "trial-a",
            1_000,
            &tags(&[("code.backbone", "distil"), ("note", quoted), ("q", "it's")]),
        )
        .unwrap();
    assert_eq!(run_a.status, RunStatus::Running);
    assert_eq!(run_a.run_name, "trial-a");
    let run_b = store
        .create_run(
            &experiment,
            "trial-b",
            2_000,
            &tags(&[("code.backbone", "distil")]),
        )
        .unwrap();
    let run_c = store
        .create_run(
            &experiment,
            "trial-c",
            3_000,
            &tags(&[("code.backbone", "roberta")]),
        )
        .unwrap();

    let mut points = vec![
        MetricPoint {
            key: "f1",
            value: 0.9,
            timestamp: 10,
            step: 0,
        },
        MetricPoint {
            key: "f1",
            value: 0.3,
            timestamp: 5,
            step: 1,
        },
        MetricPoint {
            key: "f1",
            value: 0.4,
            timestamp: 5,
            step: 1,
        },
        MetricPoint {
            key: "loss",
            value: f64::NAN,
            timestamp: 1,
            step: 0,
        },
        MetricPoint {
            key: "pos",
            value: f64::INFINITY,
            timestamp: 1,
            step: 0,
        },
        MetricPoint {
            key: "neg",
            value: f64::NEG_INFINITY,
            timestamp: 1,
            step: 0,
        },
    ];
    // More points than one REST request may carry.
    points.extend((0..2_100).map(|step| MetricPoint {
        key: "curve",
        value: step as f64,
        timestamp: 100 + step,
        step,
    }));
    let many_params: Vec<(String, String)> = (0..150)
        .map(|i| (format!("p{i:03}"), i.to_string()))
        .collect();
    let mut params: Vec<(&str, &str)> = vec![("lr", "3e-5")];
    params.extend(many_params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    store
        .log_batch(&run_a.run_id, &points, &params, &[("stage", "hpo")])
        .unwrap();
    // Params are immutable; the same value again is fine.
    store
        .log_batch(&run_a.run_id, &[], &[("lr", "3e-5")], &[])
        .unwrap();
    assert!(
        store
            .log_batch(&run_a.run_id, &[], &[("lr", "1e-3")], &[])
            .is_err()
    );
    store
        .log_batch(
            &run_b.run_id,
            &[MetricPoint {
                key: "f1",
                value: 0.4,
                timestamp: 1,
                step: 7,
            }],
            &[],
            &[],
        )
        .unwrap();
    store
        .log_batch(
            &run_c.run_id,
            &[MetricPoint {
                key: "f1",
                value: 0.8,
                timestamp: 1,
                step: 0,
            }],
            &[],
            &[],
        )
        .unwrap();
    store.set_tag(&run_b.run_id, "note", "plain").unwrap();
    store
        .update_run(&run_a.run_id, RunStatus::Finished, Some(1_500))
        .unwrap();
    store
        .update_run(&run_b.run_id, RunStatus::Failed, Some(2_500))
        .unwrap();
    store
        .update_run(&run_c.run_id, RunStatus::Finished, Some(3_500))
        .unwrap();

    let a = store.get_run(&run_a.run_id).unwrap();
    assert_eq!(a.info.status, RunStatus::Finished);
    assert_eq!(a.info.end_time, Some(1_500));
    assert_eq!(a.info.start_time, Some(1_000));
    assert_eq!(a.info.experiment_id, experiment);
    assert_eq!(
        a.metric("f1"),
        Some(0.4),
        "{label}: latest = max by (step, timestamp, value)"
    );
    assert!(a.metric("loss").unwrap().is_nan(), "{label}: NaN");
    assert_eq!(a.metric("pos"), Some(f64::INFINITY));
    assert_eq!(a.metric("neg"), Some(f64::NEG_INFINITY));
    assert_eq!(a.metric("curve"), Some(2_099.0));
    assert_eq!(a.params.len(), 151);
    assert_eq!(a.params["lr"], "3e-5");
    assert_eq!(a.tag("note"), Some(quoted));
    assert_eq!(a.tag("stage"), Some("hpo"));
    assert_eq!(a.tag("mlflow.runName"), Some("trial-a"));
    assert!(matches!(
        store.get_run("0123456789abcdef0123456789abcdef"),
        Err(MlflowError::NotFound { .. })
    ));

    // --- searches
    let all = [experiment.clone()];
    let finished_distil = Filter::new()
        .tag_eq("code.backbone", "distil")
        .status(RunStatus::Finished);
    let runs = search_all(store, &all, &finished_distil, ViewType::ActiveOnly).unwrap();
    assert_eq!(ids(&runs), vec![run_a.run_id.clone()], "{label}");
    let distil = runs_with_tags(store, &all, &[("code.backbone", "distil")], None).unwrap();
    assert_eq!(distil.len(), 2);
    // A value with both quote kinds is filtered client-side; one with ' is quoted with ".
    let both = search_all(
        store,
        &all,
        &Filter::new().tag_eq("note", quoted),
        ViewType::ActiveOnly,
    )
    .unwrap();
    assert_eq!(ids(&both), vec![run_a.run_id.clone()]);
    let single = search_all(
        store,
        &all,
        &Filter::new().tag_eq("q", "it's"),
        ViewType::ActiveOnly,
    )
    .unwrap();
    assert_eq!(ids(&single), vec![run_a.run_id.clone()]);
    let by_metric = search_all_raw(
        store,
        &all,
        "metrics.f1 >= 0.4 AND params.lr = '3e-5'",
        ViewType::ActiveOnly,
    )
    .unwrap();
    assert_eq!(ids(&by_metric), vec![run_a.run_id.clone()]);
    let in_list = search_all_raw(
        store,
        &all,
        &format!(
            "attributes.run_id IN ('{}', '{}')",
            run_b.run_id, run_c.run_id
        ),
        ViewType::ActiveOnly,
    )
    .unwrap();
    assert_eq!(in_list.len(), 2);
    assert!(
        matches!(
            search_all_raw(
                store,
                &all,
                "tags.a = 'x' OR tags.b = 'y'",
                ViewType::ActiveOnly
            ),
            Err(MlflowError::InvalidQuery(_))
        ),
        "{label}: bad filter syntax is an InvalidQuery"
    );

    // Paging: one run per page, newest first, to the end.
    let page_of_two = SearchRequest::new(all.iter().cloned()).max_results(2);
    let first = store.search_runs_page(&page_of_two).unwrap();
    assert_eq!(first.runs.len(), 2);
    assert_eq!(first.runs[0].id(), run_c.run_id);
    let token = first.next_page_token.expect("a second page");
    let second = store
        .search_runs_page(&page_of_two.clone().page_token(Some(token)))
        .unwrap();
    assert_eq!(second.runs.len(), 1);
    assert_eq!(second.runs[0].id(), run_a.run_id);
    assert!(second.next_page_token.is_none());
    let ordered = store
        .search_runs_page(
            &SearchRequest::new(all.iter().cloned())
                .max_results(10)
                .order_by(["metrics.f1 DESC".to_string()]),
        )
        .unwrap();
    assert_eq!(ordered.runs[0].id(), run_c.run_id);

    // Queries on top.
    let everything = search_all(store, &all, &Filter::new(), ViewType::ActiveOnly).unwrap();
    assert_eq!(
        best_run(&everything, "f1", Direction::Maximize)
            .unwrap()
            .id(),
        run_c.run_id
    );
    // a and b tie on 0.4: the earlier start wins.
    assert_eq!(
        best_run(&everything, "f1", Direction::Minimize)
            .unwrap()
            .id(),
        run_a.run_id
    );
    let groups = group_by_tag(everything, "code.backbone");
    assert_eq!(groups.keys().collect::<Vec<_>>(), vec!["distil", "roberta"]);
    assert_eq!(groups["distil"].len(), 2);
    projection_contract(
        store,
        &experiment,
        [&run_a.run_id, &run_b.run_id, &run_c.run_id],
    );

    // --- artifacts (uploaded by Python mlflow to wherever this store puts them)
    let work = tempfile::tempdir().unwrap();
    python_log_artifacts(tracking_uri, &run_c.run_id, work.path());
    let dest = tempfile::tempdir().unwrap();
    let landed = store
        .download_artifacts(&run_c, "model", dest.path())
        .unwrap();
    assert_eq!(landed, dest.path().join("model"));
    assert_eq!(
        std::fs::read_to_string(landed.join("config.json")).unwrap(),
        r#"{"hidden": 8}"#
    );
    assert_eq!(
        std::fs::read(landed.join("sub/weights.bin")).unwrap(),
        [(0..=255u8).collect::<Vec<_>>()].concat().repeat(40)
    );
    let file = store
        .download_artifacts(&run_c, "model/config.json", dest.path())
        .unwrap();
    assert_eq!(file, dest.path().join("config.json"));
    // Downloading again replaces what is there.
    store
        .download_artifacts(&run_c, "model", dest.path())
        .unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dest.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with(".podium-download"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(matches!(
        store.download_artifacts(&run_c, "model/missing.txt", dest.path()),
        Err(MlflowError::NotFound { .. })
    ));
    assert!(matches!(
        store.download_artifacts(&run_c, "../../etc", dest.path()),
        Err(MlflowError::Artifact { .. })
    ));
    upload_contract(store, tracking_uri, &run_c);

    // Deleting the experiment deletes its runs from the default view.
    store.delete_experiment(&experiment).unwrap();
    assert!(
        search_all(store, &all, &Filter::new(), ViewType::ActiveOnly)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        search_all(store, &all, &Filter::new(), ViewType::DeletedOnly)
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn contract_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let store = SqliteStore::open(&db).unwrap();
    contract(&store, &format!("sqlite:///{}", db.display()));
    prefix_contract(&store, &format!("sqlite:///{}", db.display()));
}

#[test]
fn contract_rest_server() {
    let server = podium_testkit::MlflowServer::start().unwrap();
    let store = RestStore::new(server.url(), RestConfig::default()).unwrap();
    contract(&store, server.url());
    prefix_contract(&store, server.url());
    // Two a page: the three matches and the wildcard decoys span several pages, all read.
    let paged = store
        .experiments_with_prefix_paged("res_ner%x-hpo-", 2)
        .unwrap();
    assert_eq!(
        paged.into_iter().map(|e| e.name).collect::<Vec<_>>(),
        [
            "res_ner%x-hpo-deberta-v3",
            "res_ner%x-hpo-distilbert",
            "res_ner%x-hpo-res_ner%x-hpo-twice",
        ]
    );
}

/// An `mlflow.db` Python made (its own artifact root, chosen by MLflow): podium's upload lands
/// where Python's client lists and downloads it.
#[test]
fn uploads_into_a_python_made_mlflow_db() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mlflow.db");
    let uri = format!("sqlite:///{}", db.display());
    let code = r#"
import sys, logging
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
experiment = client.create_experiment("made-by-python")
run = client.create_run(experiment, run_name="bench")
client.set_terminated(run.info.run_id)
print(run.info.run_id, end="")
"#;
    // MLflow puts a new store's artifacts under `./mlruns` of its working directory.
    let output = podium_testkit::python_command(code, &[&uri], &[])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run_id = String::from_utf8_lossy(&output.stdout).into_owned();
    let store = SqliteStore::open(&db).unwrap();
    let run = store.get_run(&run_id).unwrap();
    upload_contract(&store, &uri, &run.info);
}

#[test]
fn contract_postgres_database() {
    let cluster = podium_testkit::PostgresCluster::shared();
    let uri = cluster.uri(&cluster.create_database());
    let store = PostgresStore::open(&uri).unwrap();
    contract(&store, &uri);
    prefix_contract(&store, &uri);
}
