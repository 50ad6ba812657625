//! The runtime against Hugging Face transformers: logits of every architecture within 1e-4 of
//! the references made by scripts/make-fixtures.py on both execution paths (the fast CPU path
//! and the reference path on candle-transformers' models), tokenisation identical to
//! transformers', clear errors for broken checkpoints, and requests too large for the model or
//! the machine refused before anything is allocated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use podium_runtime::RuntimeError;
use podium_runtime::harness::{self, HarnessSettings};
use podium_runtime::inputs::{self, Record};
use podium_runtime::runtime::{EncodedBatch, Execution, Model, Stage};
use serde_json::Value;

mod support;

const TOLERANCE: f32 = 1e-4;
const ARCHITECTURES: [&str; 6] = [
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "deberta-v2",
    "deberta-v2-unshared",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap()
}

fn matrix_u32(value: &Value) -> Vec<Vec<u32>> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

fn flat_f32(value: &Value) -> Vec<f32> {
    match value {
        Value::Array(items) => items.iter().flat_map(flat_f32).collect(),
        number => vec![number.as_f64().unwrap() as f32],
    }
}

fn batch_of(ids: &[Vec<u32>], mask: &[Vec<u32>]) -> EncodedBatch {
    EncodedBatch {
        input_ids: ids.concat(),
        attention_mask: mask.concat(),
        batch: ids.len(),
        seq: ids[0].len(),
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "output sizes differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn check_logits(name: &str, execution: Execution) {
    let dir = fixture(name);
    let reference = reference(&dir);
    let model = Model::load_with(&dir, &Device::Cpu, execution).unwrap();
    let expected_path = match execution {
        Execution::Portable => Execution::Portable,
        _ => Execution::Cpu,
    };
    assert_eq!(model.info().execution, expected_path, "{name}");
    assert!(!model.info().bare_encoder, "{name} has a classifier");
    assert_eq!(model.info().num_labels, 5);
    let batch = batch_of(
        &matrix_u32(&reference["input_ids"]),
        &matrix_u32(&reference["attention_mask"]),
    );
    let logits = model.forward_to_vec(&batch).unwrap();
    let expected = flat_f32(&reference["logits"]);
    let diff = max_abs_diff(&logits, &expected);
    let real = real_token_diff(&logits, &expected, &batch.attention_mask);
    assert!(
        real < TOLERANCE,
        "{name} ({execution:?}): max |Δ| = {real} on real tokens vs transformers"
    );
    // candle-transformers' DeBERTa zeroes the attention of padding queries (the original
    // XSoftmax), transformers 5 spreads it evenly: the outputs at padding positions differ,
    // those of real tokens do not. Everywhere else every position matches.
    if !(execution == Execution::Portable && name.starts_with("deberta")) {
        assert!(
            diff < TOLERANCE,
            "{name} ({execution:?}): max |Δ| = {diff} vs transformers"
        );
    }
}

/// Max |a - b| over the rows of real tokens only (`mask` 1), each row `a.len() / mask.len()`
/// values wide.
fn real_token_diff(a: &[f32], b: &[f32], mask: &[u32]) -> f32 {
    let width = a.len() / mask.len();
    a.chunks(width)
        .zip(b.chunks(width))
        .zip(mask)
        .filter(|(_, real)| **real != 0)
        .flat_map(|((x, y), _)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

#[test]
fn logits_match_transformers_for_every_architecture() {
    for name in ARCHITECTURES {
        check_logits(name, Execution::Auto);
        check_logits(name, Execution::Cpu);
    }
}

#[test]
fn reference_path_matches_transformers_too() {
    for name in ARCHITECTURES {
        check_logits(name, Execution::Portable);
    }
}

#[test]
fn tokenisation_matches_transformers() {
    for name in ARCHITECTURES {
        let dir = fixture(name);
        let reference = reference(&dir);
        let model = Model::load(&dir, &Device::Cpu).unwrap();
        let tokenizer_file = model.info().tokenizer_file.clone().unwrap();
        let tokenizer = inputs::load_tokenizer(&tokenizer_file).unwrap();
        let max_length = reference["text_max_length"].as_u64().unwrap() as usize;
        let records: Vec<Record> = reference["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| Record::Text(t.as_str().unwrap().to_string()))
            .collect();
        let data = inputs::tokenize(
            &tokenizer,
            &tokenizer_file,
            &records,
            max_length,
            model.config().pad_token_id,
        )
        .unwrap();
        let ids: Vec<Vec<u32>> = data.rows().iter().map(|row| row.ids.clone()).collect();
        let mask: Vec<Vec<u32>> = data.rows().iter().map(|row| row.mask.clone()).collect();
        assert_eq!(ids, matrix_u32(&reference["text_input_ids"]), "{name}");
        assert_eq!(
            mask,
            matrix_u32(&reference["text_attention_mask"]),
            "{name}"
        );
        assert_eq!(data.stats.records, records.len());
        assert!(data.stats.truncated >= 1, "the long text is truncated");

        let words: Vec<Record> = reference["pre_split"]
            .as_array()
            .unwrap()
            .iter()
            .map(|words| {
                Record::Tokens(
                    words
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|w| w.as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect();
        let data = inputs::tokenize(
            &tokenizer,
            &tokenizer_file,
            &words,
            max_length,
            model.config().pad_token_id,
        )
        .unwrap();
        assert_eq!(
            vec![data.rows()[0].ids.clone()],
            matrix_u32(&reference["pre_split_input_ids"]),
            "{name}"
        );
        // Batches cycle through the records.
        let batch = data.batch(3);
        assert_eq!(batch.batch, 3);
        assert_eq!(batch.input_ids.len(), 3 * max_length);
        model.forward(&batch).unwrap();
    }
}

/// The real all-MiniLM-L6-v2 weights (fetched with pip into target/models) under the seeded
/// random head committed in tests/fixtures/minilm/head.safetensors.
#[test]
fn minilm_logits_match_transformers() {
    let source = support::minilm_checkpoint();
    let fixture_dir = fixture("minilm");
    let reference = reference(&fixture_dir);

    let bare = Model::load(&source, &Device::Cpu).unwrap();
    assert!(bare.info().bare_encoder);
    assert_eq!(bare.info().num_labels, 0);
    assert_eq!(bare.info().hidden_size, 384);

    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(source.join(file), dir.path().join(file)).unwrap();
    }
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(source.join("model.safetensors"), &Device::Cpu).unwrap();
    tensors.extend(
        candle_core::safetensors::load(fixture_dir.join("head.safetensors"), &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let model = Model::load(dir.path(), &Device::Cpu).unwrap();
    assert!(!model.info().bare_encoder);
    assert_eq!(model.info().num_labels, 5);

    // Our tokenisation of the texts gives transformers' ids.
    let tokenizer_file = dir.path().join("tokenizer.json");
    let tokenizer = inputs::load_tokenizer(&tokenizer_file).unwrap();
    let records: Vec<Record> = reference["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Record::Text(t.as_str().unwrap().to_string()))
        .collect();
    let max_length = reference["max_length"].as_u64().unwrap() as usize;
    let data = inputs::tokenize(&tokenizer, &tokenizer_file, &records, max_length, 0).unwrap();
    let ids: Vec<Vec<u32>> = data.rows().iter().map(|row| row.ids.clone()).collect();
    assert_eq!(ids, matrix_u32(&reference["input_ids"]));

    let batch = batch_of(
        &matrix_u32(&reference["input_ids"]),
        &matrix_u32(&reference["attention_mask"]),
    );
    for execution in [Execution::Cpu, Execution::Portable] {
        let model = Model::load_with(dir.path(), &Device::Cpu, execution).unwrap();
        let logits = model.forward_to_vec(&batch).unwrap();
        let diff = max_abs_diff(&logits, &flat_f32(&reference["logits"]));
        assert!(
            diff < TOLERANCE,
            "MiniLM ({execution}): max |Δ| = {diff} vs transformers"
        );
    }
    // The bare encoder's hidden states agree between the paths too.
    let reference_bare = Model::load_with(&source, &Device::Cpu, Execution::Portable).unwrap();
    let diff = max_abs_diff(
        &bare.forward_to_vec(&batch).unwrap(),
        &reference_bare.forward_to_vec(&batch).unwrap(),
    );
    assert!(
        diff < TOLERANCE,
        "bare MiniLM: max |cpu - portable| = {diff}"
    );
}

#[test]
fn harness_times_every_batch_size() {
    let model = Model::load(&fixture("bert"), &Device::Cpu).unwrap();
    let config = model.config().clone();
    let settings = HarnessSettings {
        batch_sizes: vec![1, 2],
        warmup: 1,
        iterations: 3,
        min_duration_s: 0.02,
        threads: Some(1),
        progress: false,
    };
    let report = harness::run(
        &model,
        &settings,
        &inputs::BatchSource::synthetic(&config, 16),
    )
    .unwrap();
    assert_eq!(report.threads, 1);
    assert_eq!(report.results.len(), 2);
    for stats in &report.results {
        assert!(stats.samples >= 3);
        // Both minimums hold: the timed passes add up to at least min_duration_s.
        assert!(
            stats.mean_ms * stats.samples as f64 >= 20.0 - 1e-6,
            "{stats:?}"
        );
        assert!(stats.p50_ms > 0.0 && stats.p99_ms >= stats.p50_ms);
    }
    let metrics = report.metrics();
    assert!(metrics.contains_key("latency_batch_1_ms"));
    assert!(metrics.contains_key("throughput_batch_2_seq_per_s"));
    assert_eq!(metrics["threads"], 1.0);
}

#[test]
fn profile_splits_every_pass_into_stages() {
    let settings = HarnessSettings {
        batch_sizes: vec![2],
        warmup: 1,
        iterations: 3,
        min_duration_s: 0.0,
        threads: Some(1),
        progress: false,
    };
    for (fixture_name, relative_stage) in [("bert", false), ("deberta-v2", true)] {
        let model = Model::load(&fixture(fixture_name), &Device::Cpu).unwrap();
        let source = inputs::BatchSource::synthetic(model.config(), 16);
        let profiles = harness::profile(&model, &settings, &source).unwrap();
        assert_eq!(profiles.len(), 1);
        let profile = &profiles[0].profile;
        assert_eq!(profile.passes(), 3);
        let stages: Vec<Stage> = profile.stages().iter().map(|s| s.stage).collect();
        for expected in [
            Stage::Embeddings,
            Stage::QkvProjection,
            Stage::Softmax,
            Stage::FeedForwardUp,
            Stage::OutputNorm,
            Stage::Classifier,
        ] {
            assert!(stages.contains(&expected), "{fixture_name}: {stages:?}");
        }
        assert_eq!(
            stages.contains(&Stage::RelativePositionTerms),
            relative_stage,
            "{fixture_name}: {stages:?}"
        );
        let shares: f64 = profile.stages().iter().map(|s| s.share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        assert!(profile.matmul_ms_per_pass() < profile.total_ms_per_pass());
    }
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn load_error(dir: &Path) -> String {
    let err: RuntimeError = Model::load(dir, &Device::Cpu).unwrap_err();
    err.to_string()
}

#[test]
fn broken_checkpoints_give_clear_errors() {
    let dir = copy_fixture("bert");
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("config.json is missing"), "{err}");

    let dir = copy_fixture("bert");
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("model.safetensors or pytorch_model.bin is missing"),
        "{err}"
    );

    let dir = copy_fixture("bert");
    std::fs::write(
        dir.path().join("model.safetensors"),
        b"not a safetensors file",
    )
    .unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("model.safetensors: cannot decode weights"),
        "{err}"
    );

    let dir = copy_fixture("distilbert");
    std::fs::write(
        dir.path().join("pytorch_model.bin"),
        b"PK\x03\x04 truncated",
    )
    .unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("pytorch_model.bin: cannot decode weights"),
        "{err}"
    );

    let dir = copy_fixture("bert");
    std::fs::write(dir.path().join("config.json"), "{\"model_type\": ").unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("config.json: invalid JSON"), "{err}");

    let dir = copy_fixture("bert");
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        config.replace("\"model_type\": \"bert\"", "\"model_type\": \"t5\""),
    )
    .unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("unsupported model_type \"t5\""), "{err}");
    assert!(err.contains("deberta-v2"), "{err}");

    // A config that does not fit the weights names the tensor, both shapes and the file.
    let dir = copy_fixture("bert");
    std::fs::write(
        dir.path().join("config.json"),
        config.replace("\"intermediate_size\": 64", "\"intermediate_size\": 48"),
    )
    .unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(
        err.contains("intermediate.dense.weight has shape [64, 32], expected [48, 32]"),
        "{err}"
    );

    // A missing tensor is named.
    let dir = copy_fixture("bert");
    let path = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
    tensors.remove("bert.encoder.layer.1.output.dense.bias");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("tensor bert.encoder.layer.1.output.dense.bias is missing"),
        "{err}"
    );

    let err = load_error(Path::new("/nonexistent/checkpoint"));
    assert!(err.contains("not a checkpoint directory"), "{err}");
}

#[test]
fn inputs_outside_the_model_are_rejected() {
    let model = Model::load(&fixture("bert"), &Device::Cpu).unwrap();
    let too_long = inputs::synthetic_batch(model.config(), 1, 65, 1);
    let err = model.forward(&too_long).unwrap_err().to_string();
    assert!(err.contains("65"), "{err}");
    assert!(err.contains("max_position_embeddings"), "{err}");
    let mut out_of_vocab = inputs::synthetic_batch(model.config(), 1, 8, 1);
    out_of_vocab.input_ids[3] = 100;
    let err = model.forward(&out_of_vocab).unwrap_err().to_string();
    assert!(err.contains("token id 100"), "{err}");
}

fn quick_settings(batch_sizes: Vec<usize>, threads: Option<usize>) -> HarnessSettings {
    HarnessSettings {
        batch_sizes,
        warmup: 0,
        iterations: 1,
        min_duration_s: 0.0,
        threads,
        progress: false,
    }
}

#[test]
fn lengths_past_the_position_table_fail_before_timing() {
    // DeBERTa too: its relative buckets are laid out for max_position_embeddings (64 here).
    for name in ["bert", "roberta", "deberta-v2"] {
        for execution in [Execution::Cpu, Execution::Portable] {
            let model = Model::load_with(&fixture(name), &Device::Cpu, execution).unwrap();
            let err = harness::InputSpec::Synthetic
                .prepare(&model, Path::new("."), 100_000)
                .unwrap_err()
                .to_string();
            assert!(err.contains("sequence length 100000"), "{name}: {err}");
            assert!(err.contains("max_position_embeddings"), "{name}: {err}");
            let source = inputs::BatchSource::synthetic(model.config(), 100_000);
            let err = harness::run(&model, &quick_settings(vec![1], Some(1)), &source)
                .unwrap_err()
                .to_string();
            assert!(err.contains("100000"), "{name}: {err}");
        }
    }
}

#[test]
fn passes_too_large_for_memory_fail_before_allocating() {
    for execution in [Execution::Cpu, Execution::Portable] {
        let model = Model::load_with(&fixture("deberta-v2"), &Device::Cpu, execution).unwrap();
        // A length the model accepts, with a batch no machine holds: refused up front.
        let source = inputs::BatchSource::synthetic(model.config(), 64);
        let err = harness::run(&model, &quick_settings(vec![1, 1 << 40], Some(1)), &source)
            .unwrap_err()
            .to_string();
        assert!(err.contains("MiB"), "{err}");
        assert!(err.contains("lower batch_sizes or max_length"), "{err}");
        assert!(
            err.contains(&format!("({execution} path)")),
            "names the path: {err}"
        );
        // What the fixtures are tested with fits.
        model.check_fits(8, 64).unwrap();
    }
}

#[test]
fn thread_counts_are_bounded() {
    let model = Model::load(&fixture("bert"), &Device::Cpu).unwrap();
    let source = inputs::BatchSource::synthetic(model.config(), 8);
    let max = harness::max_threads();
    for threads in [0, max + 1, 1_000_000] {
        let err = harness::run(&model, &quick_settings(vec![1], Some(threads)), &source)
            .unwrap_err()
            .to_string();
        assert!(err.contains("threads"), "{threads}: {err}");
        assert!(err.contains(&format!("1 ..= {max}")), "{threads}: {err}");
    }
    let report = harness::run(&model, &quick_settings(vec![1], Some(max)), &source).unwrap();
    assert_eq!(report.threads, max);
}
