//! The report's data model for the demo project, snapshotted (insta): everything it shows that
//! does not depend on this machine's timings — the recommendation's backbone, the champions'
//! runs, metrics and keys, every backbone's groups and drop counts, the provenance. What a
//! measurement decides (latencies, scores, ranks among the fast champions, the front, the CPU)
//! is replaced by a placeholder after checking it is there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use podium_project::{BenchmarkRequest, EnvLookup, ProjectOptions, StoreAccess};
use serde_json::Value;

fn redact(value: &mut Value, path: &str) {
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    if head == "[]" {
        for item in value.as_array_mut().unwrap() {
            redact(item, rest);
        }
        return;
    }
    assert!(value.get(head).is_some(), "no {head} in {value}");
    let slot = &mut value[head];
    if rest.is_empty() {
        assert!(!slot.is_null() || head == "url", "{head} is missing");
        *slot = Value::String("[measured]".into());
    } else {
        redact(slot, rest);
    }
}

#[test]
fn the_demo_reports_data_model() {
    let work = tempfile::tempdir().unwrap();
    let demo = podium_fixtures::demo::prepare(&work.path().join("demo")).unwrap();
    let paths = demo.paths;
    let env: EnvLookup =
        Arc::new(|name: &str| (name == "PODIUM_ENVIRONMENT").then(|| "local".to_string()));
    let project = ProjectOptions::new(&paths.config_dir, &paths.root)
        .tracking_uri(Some(paths.tracking_uri()))
        .env(env)
        .open(StoreAccess::Existing)
        .unwrap();
    let mut benchmarks = project
        .plan_benchmarks(&BenchmarkRequest::default())
        .unwrap();
    let summary = benchmarks.run(&|_| {}).unwrap();
    assert_eq!(summary.benchmarked.len(), 3, "{:?}", summary.failed);
    let ranked = benchmarks.ranked(&project, None).unwrap();
    let data = benchmarks
        .report_data(
            &project,
            &ranked,
            &summary.pipeline_results,
            "2026-01-22T10:00:00Z",
        )
        .unwrap();
    assert_eq!(data.champions.len(), 3);
    assert!(data.champions.iter().all(|point| point.latency_ms > 0.0));
    assert!(data.champions.iter().any(|point| point.on_front));

    let mut value = serde_json::to_value(&data).unwrap();
    // The champions by name: their order is the ranking's, which timings decide.
    value["champions"]
        .as_array_mut()
        .unwrap()
        .sort_by(|a, b| a["backbone"].as_str().cmp(&b["backbone"].as_str()));
    for path in [
        "champions.[].rank",
        "champions.[].latency_ms",
        "champions.[].p50_ms",
        "champions.[].p95_ms",
        "champions.[].composite_score",
        "champions.[].metric_score",
        "champions.[].latency_score",
        "champions.[].on_front",
        "champions.[].dominated_by",
        "champions.[].benchmark_run",
        "champions.[].batches.[].mean_ms",
        "champions.[].batches.[].p50_ms",
        "champions.[].batches.[].p95_ms",
        "champions.[].batches.[].p99_ms",
        "champions.[].batches.[].throughput_seq_per_s",
        "champions.[].measured_on.cpu_model",
        "champions.[].measured_on.simd",
        "latency_axis",
        "recommendation.latency_ms",
        "recommendation.composite_score",
        "recommendation.latency_score",
        "recommendation.on_front",
        "recommendation.runner_up",
        "provenance.cpu_models",
        "provenance.simd_levels",
        "provenance.tracking_uri",
    ] {
        redact(&mut value, path);
    }
    insta::assert_json_snapshot!("demo_report_data", value);
}
