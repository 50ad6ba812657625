//! `podium bench-model` end to end on the committed tiny checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../podium-runtime/tests/fixtures")
        .join(name)
}

fn podium(config_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_podium"))
        .arg("--config-dir")
        .arg(config_dir)
        .args(args)
        .output()
        .unwrap()
}

const QUICK: [&str; 8] = [
    "--warmup",
    "1",
    "--iterations",
    "3",
    "--min-duration-s",
    "0",
    "--threads",
    "1",
];

#[test]
fn json_report_has_every_metric_per_batch_size() {
    let config = tempfile::tempdir().unwrap();
    let checkpoint = fixture("distilbert");
    let mut args = vec![
        "bench-model",
        checkpoint.to_str().unwrap(),
        "--batch-sizes",
        "1,2",
        "--max-length",
        "16",
        "--format",
        "json",
    ];
    args.extend(QUICK);
    let output = podium(config.path(), &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["threads"], 1);
    assert_eq!(report["max_length"], 16);
    assert_eq!(report["model"]["model_type"], "distilbert");
    assert_eq!(report["model"]["bare_encoder"], false);
    let metrics = report["metrics"].as_object().unwrap();
    // The pipeline's overall throughput: the largest batch size's.
    assert_eq!(
        metrics["throughput_samples_per_sec"],
        metrics["throughput_batch_2_seq_per_s"]
    );
    for batch in [1, 2] {
        for suffix in ["ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "std_ms", "cv"] {
            let key = format!("latency_batch_{batch}_{suffix}");
            assert!(metrics[&key].as_f64().unwrap() >= 0.0, "{key}");
        }
        assert!(!metrics.contains_key(&format!("latency_batch_{batch}_mean_ms")));
        assert!(
            metrics[&format!("throughput_batch_{batch}_seq_per_s")]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }
    assert_eq!(report["results"].as_array().unwrap().len(), 2);
    // Not a terminal: no progress bar frames on stderr.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("passes"), "{stderr}");
}

#[test]
fn profile_breaks_each_batch_size_into_stages() {
    let config = tempfile::tempdir().unwrap();
    let checkpoint = fixture("bert");
    let mut args = vec![
        "bench-model",
        checkpoint.to_str().unwrap(),
        "--batch-sizes",
        "1,2",
        "--max-length",
        "16",
        "--profile",
    ];
    args.extend(QUICK);
    let table = podium(config.path(), &args);
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let stdout = String::from_utf8_lossy(&table.stdout);
    for expected in [
        "profile (3 passes",
        "batch 2 ms (share)",
        "qkv_projection",
        "softmax",
        "feed_forward_down",
        "% gemm",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }

    args.extend(["--format", "json"]);
    let json = podium(config.path(), &args);
    assert!(json.status.success());
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let profiles = report["profile"].as_array().unwrap();
    assert_eq!(profiles.len(), 2);
    let stages = profiles[1]["stages"].as_array().unwrap();
    let share: f64 = stages.iter().map(|s| s["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-6, "{stages:?}");
    assert!(
        stages
            .iter()
            .any(|s| s["stage"] == "attention_scores" && s["matmul"] == true)
    );
    assert_eq!(profiles[1]["passes"], 3);
    // Without --profile, no profile key.
    let without_profile: Vec<&str> = args.iter().copied().filter(|a| *a != "--profile").collect();
    let plain: Value =
        serde_json::from_slice(&podium(config.path(), &without_profile).stdout).unwrap();
    assert!(plain.get("profile").is_none());
}

#[test]
fn table_has_a_row_per_batch_size_and_config_file_is_used() {
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("benchmark.yaml"),
        "benchmarking:\n  batch_sizes: [1, 3]\n  max_length: 8\n  warmup_iterations: 0\n  iterations: 2\n  min_duration_s: 0\n  threads: 1\n",
    )
    .unwrap();
    let checkpoint = fixture("deberta-v2");
    let output = podium(
        config.path(),
        &["bench-model", checkpoint.to_str().unwrap()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("deberta-v2"), "{stdout}");
    assert!(stdout.contains("p50 ms"), "{stdout}");
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("│ 1 ") || line.starts_with("│ 3 "))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
}

#[test]
fn test_data_is_tokenised_outside_the_timed_region() {
    let config = tempfile::tempdir().unwrap();
    let data = config.path().join("test.jsonl");
    std::fs::write(
        &data,
        "{\"text\": \"Alice works in Paris\"}\n{\"tokens\": [\"Bob\", \"lives\", \"in\", \"London\"]}\n",
    )
    .unwrap();
    let checkpoint = fixture("roberta");
    let mut args = vec![
        "bench-model",
        checkpoint.to_str().unwrap(),
        "--batch-sizes",
        "4",
        "--max-length",
        "12",
        "--test-data",
        data.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend(QUICK);
    let output = podium(config.path(), &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["input"], "test_data");
    assert_eq!(report["tokenization"]["records"], 2);
    assert!(report["metrics"]["tokenization_ms"].as_f64().unwrap() >= 0.0);
}

#[test]
fn errors_name_the_problem() {
    let config = tempfile::tempdir().unwrap();
    let output = podium(config.path(), &["bench-model", "/nonexistent/checkpoint"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/checkpoint"), "{stderr}");

    let checkpoint = fixture("bert");
    let output = podium(
        config.path(),
        &[
            "bench-model",
            checkpoint.to_str().unwrap(),
            "--device",
            "cuda:0",
        ],
    );
    assert_ne!(output.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cuda"), "{stderr}");

    std::fs::write(config.path().join("benchmark.yaml"), "batch_size: [1]\n").unwrap();
    let output = podium(
        config.path(),
        &["bench-model", checkpoint.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("benchmark.yaml") && stderr.contains("batch_size"),
        "{stderr}"
    );
}

#[test]
fn execution_picks_the_path_and_the_report_names_it() {
    let config = tempfile::tempdir().unwrap();
    let checkpoint = fixture("roberta");
    for (execution, ran, label) in [
        ("auto", "cpu", "fast CPU path"),
        ("cpu", "cpu", "fast CPU path"),
        (
            "portable",
            "portable",
            "reference (candle-transformers) path",
        ),
    ] {
        let mut args = vec![
            "bench-model",
            checkpoint.to_str().unwrap(),
            "--batch-sizes",
            "2",
            "--max-length",
            "12",
            "--execution",
            execution,
        ];
        args.extend(QUICK);
        let table = podium(config.path(), &args);
        assert!(
            table.status.success(),
            "{execution}: {}",
            String::from_utf8_lossy(&table.stderr)
        );
        let stdout = String::from_utf8_lossy(&table.stdout);
        assert!(stdout.contains(label), "{execution}: {stdout}");
        args.extend(["--format", "json"]);
        let json = podium(config.path(), &args);
        let report: Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(report["model"]["execution"], ran, "{execution}");
    }
    let output = podium(
        config.path(),
        &[
            "bench-model",
            checkpoint.to_str().unwrap(),
            "--execution",
            "gpu",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("auto, cpu, portable"), "{stderr}");
}

#[test]
fn absurd_sizes_fail_with_a_clear_error() {
    let config = tempfile::tempdir().unwrap();
    let checkpoint = fixture("deberta-v2");
    // Options go through benchmark.yaml's bounds first (naming the option), then the model's
    // own limits (its positions) when the model is loaded.
    for (flag, value, expected) in [
        ("--max-length", "100000", "--max-length"),
        ("--max-length", "4096", "max_position_embeddings"),
        ("--threads", "1000000", "--threads"),
        ("--batch-sizes", "1000000000000", "--batch-sizes"),
    ] {
        let mut args = vec![
            "bench-model",
            checkpoint.to_str().unwrap(),
            "--warmup",
            "0",
            "--iterations",
            "1",
            "--min-duration-s",
            "0",
        ];
        args.extend([flag, value]);
        if flag != "--max-length" {
            // Within the fixture's 64 positions, so the knob under test is what fails.
            args.extend(["--max-length", "16"]);
        }
        let output = podium(config.path(), &args);
        assert!(!output.status.success(), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{flag} {value}: {stderr}");
    }
}
