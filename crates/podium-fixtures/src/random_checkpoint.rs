//! Tiny random token-classification checkpoints in the Hugging Face layout (`config.json` +
//! `model.safetensors`), deterministic from a seed: for demos, examples and tests that need a
//! real checkpoint directory without downloading one.
//!
//! The tensor names, shapes and config keys are those `transformers` writes for the
//! `*ForTokenClassification` models of every [`Architecture`] the runtime runs (DeBERTa-v2 in
//! the v3 configuration: relative attention with log buckets, shared keys, no absolute
//! positions), so the runtime loads them like any downloaded checkpoint. Weights are drawn from
//! N(0, 0.02) like `initializer_range`; layer norms start at (1, 0).
//!
//! ```
//! use podium_fixtures::random_checkpoint::RandomCheckpoint;
//! use podium_runtime::runtime::{Architecture, Model, parse_device};
//!
//! let dir = tempfile::tempdir()?;
//! let checkpoint = RandomCheckpoint::tiny_for("distilroberta-base", 7)
//!     .with_labels(["O", "B-SKILL", "I-SKILL"].map(String::from).to_vec());
//! assert_eq!(checkpoint.architecture, Architecture::Roberta);
//! checkpoint.write(dir.path())?;
//! let model = Model::load(dir.path(), &parse_device("cpu")?)?;
//! assert_eq!(model.config().id2label, ["O", "B-SKILL", "I-SKILL"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use podium_runtime::runtime::Architecture;
use podium_variants::fs::write_atomic;
use safetensors::{Dtype, tensor::TensorView};
use serde_json::{Value, json};

use crate::error::FixturesError;

/// The architecture `transformers` would give a backbone of this name: DistilBERT, XLM-RoBERTa,
/// RoBERTa (also distilroberta), DeBERTa-v2 (also deberta-v3), else BERT.
pub fn architecture_for_backbone(backbone: &str) -> Architecture {
    let name = backbone.to_ascii_lowercase();
    if name.contains("distilbert") {
        Architecture::DistilBert
    } else if name.contains("xlm-roberta") {
        Architecture::XlmRoberta
    } else if name.contains("roberta") {
        Architecture::Roberta
    } else if name.contains("deberta") {
        Architecture::DebertaV2
    } else {
        Architecture::Bert
    }
}

fn class_name(architecture: Architecture) -> &'static str {
    match architecture {
        Architecture::Bert => "BertForTokenClassification",
        Architecture::DistilBert => "DistilBertForTokenClassification",
        Architecture::Roberta => "RobertaForTokenClassification",
        Architecture::XlmRoberta => "XLMRobertaForTokenClassification",
        Architecture::DebertaV2 => "DebertaV2ForTokenClassification",
    }
}

fn is_roberta(architecture: Architecture) -> bool {
    matches!(
        architecture,
        Architecture::Roberta | Architecture::XlmRoberta
    )
}

/// Rows of the absolute position table: RoBERTa counts positions past its padding index (1).
fn position_rows(architecture: Architecture, max_positions: usize) -> usize {
    if is_roberta(architecture) {
        max_positions + 2
    } else {
        max_positions
    }
}

/// Log buckets of the DeBERTa-v2 relative attention (deberta-v3 uses 256).
const DEBERTA_POSITION_BUCKETS: usize = 32;

/// A random checkpoint's shape and seed.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomCheckpoint {
    /// The architecture.
    pub architecture: Architecture,
    /// Vocabulary size (synthetic inputs draw ids below it).
    pub vocab_size: usize,
    /// Hidden size (a multiple of `num_heads`).
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Feed-forward inner size.
    pub intermediate_size: usize,
    /// Longest input in tokens.
    pub max_positions: usize,
    /// The token-classification labels, in id order.
    pub labels: Vec<String>,
    /// Seed of the weights: the same seed and shape give byte-identical files.
    pub seed: u64,
}

impl RandomCheckpoint {
    /// A tiny model (2 layers, hidden 32, 4 heads, vocabulary 1024, 512 positions, labels O /
    /// B-ENT / I-ENT): a few hundred kilobytes, well under a millisecond per forward pass.
    pub fn tiny(architecture: Architecture, seed: u64) -> Self {
        Self {
            architecture,
            vocab_size: 1024,
            hidden_size: 32,
            num_layers: 2,
            num_heads: 4,
            intermediate_size: 64,
            max_positions: 512,
            labels: ["O", "B-ENT", "I-ENT"].map(String::from).to_vec(),
            seed,
        }
    }

    /// [`RandomCheckpoint::tiny`] with the architecture of this backbone
    /// ([`architecture_for_backbone`]).
    pub fn tiny_for(backbone: &str, seed: u64) -> Self {
        Self::tiny(architecture_for_backbone(backbone), seed)
    }

    /// The same checkpoint with these labels.
    pub fn with_labels(mut self, labels: Vec<String>) -> Self {
        self.labels = labels;
        self
    }

    /// config.json as `transformers` writes it for this architecture.
    pub fn config_json(&self) -> Value {
        let id2label: serde_json::Map<String, Value> = self
            .labels
            .iter()
            .enumerate()
            .map(|(id, label)| (id.to_string(), json!(label)))
            .collect();
        let label2id: serde_json::Map<String, Value> = self
            .labels
            .iter()
            .enumerate()
            .map(|(id, label)| (label.clone(), json!(id)))
            .collect();
        let arch = self.architecture;
        let mut config = match arch {
            Architecture::DistilBert => json!({
                "activation": "gelu",
                "attention_dropout": 0.1,
                "dim": self.hidden_size,
                "dropout": 0.1,
                "hidden_dim": self.intermediate_size,
                "n_heads": self.num_heads,
                "n_layers": self.num_layers,
                "pad_token_id": 0,
                "qa_dropout": 0.1,
                "seq_classif_dropout": 0.2,
                "sinusoidal_pos_embds": false,
            }),
            Architecture::DebertaV2 => json!({
                "attention_probs_dropout_prob": 0.1,
                "hidden_act": "gelu",
                "hidden_dropout_prob": 0.1,
                "hidden_size": self.hidden_size,
                "intermediate_size": self.intermediate_size,
                "layer_norm_eps": 1e-7,
                "max_relative_positions": -1,
                "norm_rel_ebd": "layer_norm",
                "num_attention_heads": self.num_heads,
                "num_hidden_layers": self.num_layers,
                "pad_token_id": 0,
                "pooler_hidden_size": self.hidden_size,
                "pos_att_type": ["p2c", "c2p"],
                "position_biased_input": false,
                "position_buckets": DEBERTA_POSITION_BUCKETS,
                "relative_attention": true,
                "share_att_key": true,
                "type_vocab_size": 0,
            }),
            Architecture::Bert | Architecture::Roberta | Architecture::XlmRoberta => json!({
                "attention_probs_dropout_prob": 0.1,
                "hidden_act": "gelu",
                "hidden_dropout_prob": 0.1,
                "hidden_size": self.hidden_size,
                "intermediate_size": self.intermediate_size,
                "layer_norm_eps": if is_roberta(arch) { 1e-5 } else { 1e-12 },
                "num_attention_heads": self.num_heads,
                "num_hidden_layers": self.num_layers,
                "pad_token_id": u32::from(is_roberta(arch)),
                "position_embedding_type": "absolute",
                "type_vocab_size": if is_roberta(arch) { 1 } else { 2 },
            }),
        };
        if let Value::Object(map) = &mut config {
            map.insert("architectures".into(), json!([class_name(arch)]));
            map.insert("model_type".into(), json!(arch.model_type()));
            map.insert("vocab_size".into(), json!(self.vocab_size));
            map.insert(
                "max_position_embeddings".into(),
                json!(position_rows(arch, self.max_positions)),
            );
            map.insert("initializer_range".into(), json!(0.02));
            map.insert("id2label".into(), Value::Object(id2label));
            map.insert("label2id".into(), Value::Object(label2id));
            map.insert("torch_dtype".into(), json!("float32"));
            if is_roberta(arch) {
                map.insert("bos_token_id".into(), json!(0));
                map.insert("eos_token_id".into(), json!(2));
            }
        }
        config
    }

    /// Every tensor (name, shape, values), in a fixed order that the seeded values follow.
    pub fn tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut init = Init::new(self.seed);
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let arch = self.architecture;
        let positions = position_rows(arch, self.max_positions);
        let mut out = Vec::new();
        let prefix = arch.weight_prefix().trim_end_matches('.');
        let mut normal = |out: &mut Vec<_>, name: String, shape: Vec<usize>| {
            let values = init.normal(shape.iter().product());
            out.push((name, shape, values));
        };
        normal(
            &mut out,
            format!("{prefix}.embeddings.word_embeddings.weight"),
            vec![v, h],
        );
        if arch != Architecture::DebertaV2 {
            normal(
                &mut out,
                format!("{prefix}.embeddings.position_embeddings.weight"),
                vec![positions, h],
            );
        }
        if matches!(
            arch,
            Architecture::Bert | Architecture::Roberta | Architecture::XlmRoberta
        ) {
            let types = if is_roberta(arch) { 1 } else { 2 };
            normal(
                &mut out,
                format!("{prefix}.embeddings.token_type_embeddings.weight"),
                vec![types, h],
            );
        }
        layer_norm(&mut out, &format!("{prefix}.embeddings.LayerNorm"), h);
        for layer in 0..self.num_layers {
            let linears: Vec<(String, usize, usize)> = match arch {
                Architecture::DistilBert => {
                    let base = format!("{prefix}.transformer.layer.{layer}");
                    vec![
                        (format!("{base}.attention.q_lin"), h, h),
                        (format!("{base}.attention.k_lin"), h, h),
                        (format!("{base}.attention.v_lin"), h, h),
                        (format!("{base}.attention.out_lin"), h, h),
                        (format!("{base}.ffn.lin1"), i, h),
                        (format!("{base}.ffn.lin2"), h, i),
                    ]
                }
                Architecture::Bert
                | Architecture::Roberta
                | Architecture::XlmRoberta
                | Architecture::DebertaV2 => {
                    let base = format!("{prefix}.encoder.layer.{layer}");
                    let projection = if arch == Architecture::DebertaV2 {
                        "_proj"
                    } else {
                        ""
                    };
                    vec![
                        (format!("{base}.attention.self.query{projection}"), h, h),
                        (format!("{base}.attention.self.key{projection}"), h, h),
                        (format!("{base}.attention.self.value{projection}"), h, h),
                        (format!("{base}.attention.output.dense"), h, h),
                        (format!("{base}.intermediate.dense"), i, h),
                        (format!("{base}.output.dense"), h, i),
                    ]
                }
            };
            for (name, rows, cols) in linears {
                normal(&mut out, format!("{name}.weight"), vec![rows, cols]);
                out.push((format!("{name}.bias"), vec![rows], vec![0.0; rows]));
            }
            let norms = match arch {
                Architecture::DistilBert => {
                    let base = format!("{prefix}.transformer.layer.{layer}");
                    [
                        format!("{base}.sa_layer_norm"),
                        format!("{base}.output_layer_norm"),
                    ]
                }
                Architecture::Bert
                | Architecture::Roberta
                | Architecture::XlmRoberta
                | Architecture::DebertaV2 => {
                    let base = format!("{prefix}.encoder.layer.{layer}");
                    [
                        format!("{base}.attention.output.LayerNorm"),
                        format!("{base}.output.LayerNorm"),
                    ]
                }
            };
            for norm in norms {
                layer_norm(&mut out, &norm, h);
            }
        }
        if arch == Architecture::DebertaV2 {
            normal(
                &mut out,
                format!("{prefix}.encoder.rel_embeddings.weight"),
                vec![2 * DEBERTA_POSITION_BUCKETS, h],
            );
            layer_norm(&mut out, &format!("{prefix}.encoder.LayerNorm"), h);
        }
        let labels = self.labels.len();
        normal(&mut out, "classifier.weight".into(), vec![labels, h]);
        out.push(("classifier.bias".into(), vec![labels], vec![0.0; labels]));
        out
    }

    /// Writes config.json and model.safetensors into `dir` (created as needed), each through
    /// [`write_atomic`], so a reader never sees half a checkpoint file. Returns `dir`.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, FixturesError> {
        self.check()?;
        let config_path = dir.join("config.json");
        let config = serde_json::to_string_pretty(&self.config_json()).map_err(|err| {
            FixturesError::Serialise {
                file: config_path.clone(),
                message: err.to_string(),
            }
        })?;
        write_atomic(&config_path, format!("{config}\n").as_bytes())?;
        let weights_path = dir.join("model.safetensors");
        write_atomic(&weights_path, &self.safetensors_bytes(&weights_path)?)?;
        Ok(dir.to_path_buf())
    }

    /// The weights as a safetensors file (little-endian f32, as candle and `transformers` read
    /// them); `file` only names the file in errors.
    fn safetensors_bytes(&self, file: &Path) -> Result<Vec<u8>, FixturesError> {
        let serialise = |err: safetensors::SafeTensorError| FixturesError::Serialise {
            file: file.to_path_buf(),
            message: err.to_string(),
        };
        let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors()
            .into_iter()
            .map(|(name, shape, values)| {
                let bytes = values
                    .iter()
                    .flat_map(|value| value.to_le_bytes())
                    .collect();
                (name, shape, bytes)
            })
            .collect();
        let views = tensors
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes).map(|view| (name.as_str(), view))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(serialise)?;
        safetensors::serialize(views, None).map_err(serialise)
    }

    fn check(&self) -> Result<(), FixturesError> {
        let invalid = |key, message| FixturesError::InvalidCheckpoint { key, message };
        if self.num_heads == 0 || !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(invalid(
                "hidden_size",
                "must be a positive multiple of num_heads",
            ));
        }
        if self.labels.is_empty() {
            return Err(invalid(
                "labels",
                "must not be empty: a token-classification head needs labels",
            ));
        }
        for (key, value) in [
            ("vocab_size", self.vocab_size),
            ("num_layers", self.num_layers),
            ("intermediate_size", self.intermediate_size),
            ("max_positions", self.max_positions),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be positive"));
            }
        }
        Ok(())
    }
}

fn layer_norm(out: &mut Vec<(String, Vec<usize>, Vec<f32>)>, name: &str, size: usize) {
    out.push((format!("{name}.weight"), vec![size], vec![1.0; size]));
    out.push((format!("{name}.bias"), vec![size], vec![0.0; size]));
}

/// N(0, 0.02) values from a seeded generator (Box–Muller), reproducible on every platform.
#[derive(Debug)]
struct Init {
    rng: fastrand::Rng,
}

impl Init {
    const STD: f64 = 0.02;

    fn new(seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    fn normal(&mut self, count: usize) -> Vec<f32> {
        let mut values = Vec::with_capacity(count);
        while values.len() < count {
            // 1 - f64() is in (0, 1]: ln never sees 0.
            let radius = (-2.0 * (1.0 - self.rng.f64()).ln()).sqrt() * Self::STD;
            let angle = std::f64::consts::TAU * self.rng.f64();
            values.push((radius * angle.cos()) as f32);
            if values.len() < count {
                values.push((radius * angle.sin()) as f32);
            }
        }
        values
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_weights() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        RandomCheckpoint::tiny(Architecture::Bert, 1)
            .write(a.path())
            .unwrap();
        RandomCheckpoint::tiny(Architecture::Bert, 1)
            .write(b.path())
            .unwrap();
        RandomCheckpoint::tiny(Architecture::Bert, 2)
            .write(c.path())
            .unwrap();
        let read =
            |dir: &tempfile::TempDir, name: &str| std::fs::read(dir.path().join(name)).unwrap();
        assert_eq!(read(&a, "model.safetensors"), read(&b, "model.safetensors"));
        assert_eq!(read(&a, "config.json"), read(&b, "config.json"));
        assert_ne!(read(&a, "model.safetensors"), read(&c, "model.safetensors"));
    }

    const ALL: [Architecture; 5] = [
        Architecture::Bert,
        Architecture::DistilBert,
        Architecture::Roberta,
        Architecture::XlmRoberta,
        Architecture::DebertaV2,
    ];

    #[test]
    fn every_architecture_loads_and_runs_in_the_runtime() {
        use podium_runtime::runtime::{Model, parse_device};
        for arch in ALL {
            let checkpoint = RandomCheckpoint::tiny(arch, 3);
            let dir = tempfile::tempdir().unwrap();
            checkpoint.write(dir.path()).unwrap();
            let model = Model::load(dir.path(), &parse_device("cpu").unwrap())
                .unwrap_or_else(|err| panic!("{arch:?}: {err}"));
            assert_eq!(model.config().architecture, arch);
            assert_eq!(model.config().id2label, ["O", "B-ENT", "I-ENT"]);
            let batch = podium_runtime::inputs::synthetic_batch(model.config(), 2, 16, 1);
            let logits = model.forward_to_vec(&batch).unwrap();
            assert_eq!(logits.len(), 2 * 16 * 3, "{arch:?}");
            assert!(logits.iter().all(|v| v.is_finite()), "{arch:?}");
            assert!(logits.iter().any(|v| *v != 0.0), "{arch:?}");
        }
    }

    #[test]
    fn backbone_names_pick_their_architecture() {
        assert_eq!(
            architecture_for_backbone("distilbert-base-uncased"),
            Architecture::DistilBert
        );
        assert_eq!(
            architecture_for_backbone("distilroberta-base"),
            Architecture::Roberta
        );
        assert_eq!(
            architecture_for_backbone("xlm-roberta-base"),
            Architecture::XlmRoberta
        );
        assert_eq!(
            architecture_for_backbone("microsoft/deberta-v3-small"),
            Architecture::DebertaV2
        );
        assert_eq!(
            architecture_for_backbone("bert-base-cased"),
            Architecture::Bert
        );
    }

    #[test]
    fn weights_look_like_an_initialised_model() {
        let values = Init::new(9).normal(10_000);
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / 10_000.0;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 10_000.0;
        assert!(mean.abs() < 0.002, "{mean}");
        assert!((var.sqrt() - 0.02).abs() < 0.002, "{}", var.sqrt());
    }

    #[test]
    fn impossible_shapes_are_errors() {
        let mut checkpoint = RandomCheckpoint::tiny(Architecture::Bert, 1);
        checkpoint.num_heads = 5;
        let dir = tempfile::tempdir().unwrap();
        assert!(checkpoint.write(dir.path()).is_err());
        let empty = RandomCheckpoint::tiny(Architecture::Bert, 1).with_labels(Vec::new());
        assert!(empty.write(dir.path()).is_err());
    }
}
