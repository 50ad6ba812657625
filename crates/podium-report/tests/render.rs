//! The page from hand-made reports: hostile names from the store shown as they are held and
//! never as markup, the recommendation and front as the ranking says, links only to a server
//! and without credentials, a self-contained page under its size budget for many groups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use podium_bench::orchestrate::{BenchmarkTarget, MatchedBy, PipelineResult, RecordedBenchmark};
use podium_champion::ChampionReport;
use podium_champion::config::{
    ArtifactCheckSource, CheckpointRun, SchemaPreference, SelectionConfig,
};
use podium_champion::ranking::{BenchmarkSample, LatencyAggregation, RankingInput, rank_champions};
use podium_champion::selection::{
    Champion, CheckpointLocation, DropCounts, GroupStatus, GroupSummary, MetricDistribution,
    SelectionMetadata,
};
use podium_keys::TagRegistry;
use podium_mlflow::Direction;
use podium_report::{BenchmarkSettingsView, ReportData, ReportInputs, render_html};

/// One champion of a hand-made store.
struct Made {
    backbone: &'static str,
    metric: f64,
    latency_ms: f64,
    groups: usize,
    trials_per_group: usize,
}

struct Store {
    champions: BTreeMap<String, ChampionReport>,
    targets: Vec<BenchmarkTarget>,
    recorded: Vec<Vec<RecordedBenchmark>>,
    settings: BenchmarkSettingsView,
}

fn group(index: usize, trials: usize, top: f64) -> GroupSummary {
    let values: Vec<f64> = (0..trials)
        .map(|i| top - (i as f64) * 0.3 / trials.max(1) as f64)
        .collect();
    GroupSummary {
        study_key_hash: format!("{index:02}{}", "ab".repeat(31)),
        schema_version: "2.0".into(),
        rank: Some(index + 1),
        status: if index == 0 {
            GroupStatus::Winner
        } else {
            GroupStatus::Eligible
        },
        runs: trials,
        counted_trials: trials,
        missing_metric: 0,
        non_finite_metric: 0,
        best_metric: Some(top),
        stable_score: Some(top - 0.01),
        distribution: MetricDistribution::of(values),
    }
}

fn store(made: &[Made]) -> Store {
    let mut champions = BTreeMap::new();
    let mut targets = Vec::new();
    let mut recorded = Vec::new();
    for (index, champion) in made.iter().enumerate() {
        let run = |kind: &str| format!("{kind}{index:02}{}", "0".repeat(28));
        let winner = Champion {
            run_id: run("rf"),
            trial_run_id: run("tr"),
            refit_run_id: Some(run("rf")),
            refit_matched_by: None,
            sweep_run_id: None,
            trial_key_hash: Some("t".repeat(64)),
            study_key_hash: format!("00{}", "ab".repeat(31)),
            metric: champion.metric,
            stable_score: champion.metric - 0.01,
            schema_version: "2.0".into(),
            counted_trials: champion.trials_per_group,
            data_fingerprint: None,
            eval_fingerprint: None,
            checkpoint: CheckpointLocation {
                run_id: run("rf"),
                artifact_uri: String::new(),
                checkpoint_path_tag: None,
                local: None,
            },
        };
        let report = ChampionReport {
            backbone: champion.backbone.to_string(),
            model: champion.backbone.to_string(),
            experiment: format!("ner-hpo-{}", champion.backbone),
            champion: winner.clone(),
            groups: (0..champion.groups)
                .map(|g| {
                    group(
                        g,
                        champion.trials_per_group,
                        champion.metric - g as f64 * 0.01,
                    )
                })
                .collect(),
            metadata: SelectionMetadata {
                metric: "macro-f1".into(),
                direction: "maximize".into(),
                min_trials_per_group: 3,
                top_k_for_stable_score: 3,
                require_artifact_available: true,
                artifact_check_source: ArtifactCheckSource::Tag,
                checkpoint_source: CheckpointRun::Refit,
                prefer_schema_version: SchemaPreference::Auto,
                allow_mixed_schema_groups: false,
                schema_version_used: "2.0".into(),
                candidates: champion.groups * champion.trials_per_group,
            },
            dropped: DropCounts {
                not_a_child_run: 1,
                ..DropCounts::default()
            },
        };
        champions.insert(champion.backbone.to_string(), report);
        targets.push(BenchmarkTarget {
            backbone: champion.backbone.to_string(),
            model: champion.backbone.to_string(),
            champion: winner,
            key: format!("{}:d:e:c", run("rf")),
            data_fingerprint: "d".into(),
            eval_fingerprint: "e".into(),
        });
        let metrics = BTreeMap::from([
            ("latency_batch_1_ms".to_string(), champion.latency_ms),
            (
                "latency_batch_1_p50_ms".to_string(),
                champion.latency_ms * 0.9,
            ),
            (
                "latency_batch_1_p95_ms".to_string(),
                champion.latency_ms * 1.3,
            ),
            ("latency_batch_8_ms".to_string(), champion.latency_ms * 5.0),
            (
                "latency_batch_8_p50_ms".to_string(),
                champion.latency_ms * 4.8,
            ),
            (
                "latency_batch_8_p95_ms".to_string(),
                champion.latency_ms * 6.0,
            ),
            (
                "throughput_batch_1_seq_per_s".to_string(),
                1000.0 / champion.latency_ms,
            ),
            (
                "throughput_batch_8_seq_per_s".to_string(),
                1600.0 / champion.latency_ms,
            ),
        ]);
        let tags = BTreeMap::from([
            (
                "code.benchmark.harness_version".to_string(),
                "3".to_string(),
            ),
            (
                "code.benchmark.cpu_model".to_string(),
                "Test CPU".to_string(),
            ),
            ("code.benchmark.simd".to_string(), "AVX2".to_string()),
            ("code.benchmark.threads".to_string(), "2".to_string()),
        ]);
        recorded.push(vec![RecordedBenchmark {
            sample: BenchmarkSample {
                run_id: run("bm"),
                start_time: 1,
                metrics,
            },
            tags,
            experiment_id: Some("9".into()),
        }]);
    }
    Store {
        champions,
        targets,
        recorded,
        settings: BenchmarkSettingsView {
            config_hash: "0123456789abcdef".into(),
            benchmark_config_hash: "cd".repeat(32),
            batch_sizes: vec![1, 8],
            max_length: 128,
            device: "cpu".into(),
            harness_version: 3,
        },
    }
}

fn report(made: &[Made], tracking_uri: &str) -> ReportData {
    report_with(made, tracking_uri, &[])
}

fn report_with(made: &[Made], tracking_uri: &str, pipeline: &[PipelineResult]) -> ReportData {
    let store = store(made);
    let inputs: Vec<RankingInput> = store
        .targets
        .iter()
        .zip(&store.recorded)
        .map(|(target, recorded)| RankingInput {
            backbone: target.backbone.clone(),
            metric: target.champion.metric,
            benchmarks: recorded.iter().map(|r| r.sample.clone()).collect(),
        })
        .collect();
    let ranking = rank_champions(
        &inputs,
        &SelectionConfig::default(),
        LatencyAggregation::Latest,
    );
    let experiment_ids: BTreeMap<String, String> = made
        .iter()
        .enumerate()
        .map(|(index, m)| (format!("ner-hpo-{}", m.backbone), index.to_string()))
        .collect();
    ReportData::build(&ReportInputs {
        experiment: "ner",
        benchmark_experiment: "ner-benchmark",
        metric: "macro-f1",
        direction: Direction::Maximize,
        champions: &store.champions,
        selection_errors: &BTreeMap::new(),
        targets: &store.targets,
        recorded: &store.recorded,
        ranking: &ranking,
        pipeline_results: pipeline,
        tags: &TagRegistry::defaults(),
        benchmark: &store.settings,
        tracking_uri,
        experiment_ids: &experiment_ids,
        generated_at: "2026-01-22T10:00:00Z",
        podium_version: "0.1.0",
    })
}

fn made(backbone: &'static str, metric: f64, latency_ms: f64) -> Made {
    Made {
        backbone,
        metric,
        latency_ms,
        groups: 2,
        trials_per_group: 5,
    }
}

#[test]
fn hostile_names_are_shown_as_held_and_never_run() {
    let hostile = [
        made("<script>alert(1)</script>", 0.90, 30.0),
        made("q\"uote'd", 0.85, 10.0),
        made("ansi\u{1b}[2Jclear", 0.80, 5.0),
        made("rtl\u{202e}lmth.exe", 0.70, 4.0),
    ];
    let data = report(&hostile, "sqlite:///mlflow.db");
    let html = render_html(&data).unwrap();
    assert!(!html.contains("<script"), "a name became markup");
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(!html.contains("q\"uote"), "a quote reached the page raw");
    assert!(html.contains("q&#34;uote&#39;d"));
    assert!(!html.contains('\u{1b}') && html.contains("ansi\\x1b[2Jclear"));
    assert!(!html.contains('\u{202e}') && html.contains("rtl\\u{202e}lmth.exe"));
    // The recommendation is the ranking's first, named as held.
    let best = data.recommendation.as_ref().unwrap();
    assert_eq!(best.backbone, data.champions[0].backbone);
    assert_eq!(best.backbone, "q\"uote'd");
    assert!(html.contains("Deploy <strong class=\"winner-name\">q&#34;uote&#39;d</strong>"));
    // Data attributes escape the same way.
    assert!(html.contains("data-backbone=\"&#60;script&#62;alert(1)&#60;/script&#62;\""));
}

#[test]
fn the_front_and_the_axis_follow_the_champions() {
    // Fast and weak, slow and strong, and one dominated by the first.
    let data = report(
        &[
            made("fast", 0.80, 2.0),
            made("strong", 0.90, 40.0),
            made("dominated", 0.79, 3.0),
        ],
        "sqlite:///mlflow.db",
    );
    let front: BTreeMap<&str, (bool, Vec<String>)> = data
        .champions
        .iter()
        .map(|point| {
            (
                point.backbone.as_str(),
                (point.on_front, point.dominated_by.clone()),
            )
        })
        .collect();
    assert_eq!(front["fast"], (true, vec![]));
    assert_eq!(front["strong"], (true, vec![]));
    assert_eq!(front["dominated"], (false, vec!["fast".to_string()]));
    assert_eq!(
        serde_json::to_value(data.latency_axis).unwrap(),
        "log",
        "40 ms is more than 10× 2 ms"
    );
    let html = render_html(&data).unwrap();
    assert_eq!(html.matches("class=\"champion-point").count(), 3);
    assert_eq!(html.matches("champion-point point dominated").count(), 1);
    assert_eq!(html.matches("class=\"winner-label\"").count(), 1);
    let runner_up = data.recommendation.unwrap().runner_up.unwrap();
    assert!(runner_up.composite_gap >= 0.0);
}

#[test]
fn links_go_to_the_server_without_credentials_and_a_sqlite_store_has_none() {
    let served = report(
        &[made("a", 0.8, 2.0), made("b", 0.9, 3.0)],
        "https://alice:s3cret@mlflow.example.com/",
    );
    let html = render_html(&served).unwrap();
    assert!(!html.contains("s3cret") && !html.contains("alice"));
    assert!(html.contains("https://***@mlflow.example.com"));
    let trial = &served.champions[0].trial;
    assert_eq!(
        trial.url.as_deref(),
        Some(
            format!(
                "https://mlflow.example.com/#/experiments/{}/runs/{}",
                if served.champions[0].backbone == "a" {
                    0
                } else {
                    1
                },
                trial.id
            )
            .as_str()
        )
    );
    assert!(html.contains("href=\"https://mlflow.example.com/#/experiments/"));
    let local = report(&[made("a", 0.8, 2.0)], "sqlite:///mlflow.db");
    assert!(local.champions[0].trial.url.is_none());
    assert!(!render_html(&local).unwrap().contains("href="));
}

#[test]
fn a_page_with_many_large_groups_stays_small_and_self_contained() {
    let many: Vec<Made> = ["alpha", "beta", "gamma", "delta"]
        .into_iter()
        .enumerate()
        .map(|(index, backbone)| Made {
            backbone,
            metric: 0.8 + index as f64 * 0.01,
            latency_ms: 3.0 + index as f64,
            groups: 25,
            trials_per_group: 1000,
        })
        .collect();
    let data = report(&many, "sqlite:///mlflow.db");
    for backbone in &data.backbones {
        assert_eq!(backbone.groups.len(), 10, "the best ten groups are drawn");
        assert_eq!(backbone.not_shown.eligible, 15);
        assert_eq!(backbone.not_shown.runs, 15_000);
    }
    let html = render_html(&data).unwrap();
    assert!(html.contains("Not drawn: 15 more eligible group(s)"));
    assert!(html.len() < 2 << 20, "{} bytes", html.len());
    for fetching in ["src=", "<link", "@import", "url(", "<script"] {
        assert!(!html.contains(fetching), "the page would fetch: {fetching}");
    }
    assert!(html.contains("Content-Security-Policy"));
}

#[test]
fn the_pipelines_own_results_are_listed_apart_and_never_ranked() {
    let pytorch = PipelineResult {
        backbone: "fast".into(),
        run_id: "pytorch0run".into(),
        run_name: "local_fast_benchmark".into(),
        benchmark_key: Some("k".into()),
        matched_by: MatchedBy::StudyTrialHash,
        start_time: Some(1),
        metrics: BTreeMap::from([("latency_batch_1_ms".to_string(), 0.001)]),
    };
    let data = report_with(
        &[made("fast", 0.80, 2.0), made("slow", 0.90, 9.0)],
        "sqlite:///mlflow.db",
        std::slice::from_ref(&pytorch),
    );
    assert_eq!(data.champions.len(), 2);
    assert!(data.champions.iter().all(|point| point.latency_ms >= 2.0));
    assert_eq!(data.pipeline_results.len(), 1);
    assert_eq!(data.pipeline_results[0].matched_by, "study + trial hash");
    let html = render_html(&data).unwrap();
    let apart = html
        .split("Measured by the pipeline (PyTorch)")
        .nth(1)
        .unwrap();
    assert!(apart.contains("pytorch0run"));
    assert!(
        !html
            .split("Measured by the pipeline")
            .next()
            .unwrap()
            .contains("pytorch0run")
    );
}
