//! config.json of a Hugging Face checkpoint, normalised across architectures.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Result, RuntimeError};

/// The `model_type` values the runtime implements.
pub const SUPPORTED_MODEL_TYPES: [&str; 5] =
    ["bert", "distilbert", "roberta", "xlm-roberta", "deberta-v2"];

/// The encoder family, which decides weight names, embeddings and attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// BERT (and BERT-shaped sentence encoders such as MiniLM).
    Bert,
    /// DistilBERT: no token types, its own weight names.
    DistilBert,
    /// RoBERTa: position ids count from `pad_token_id + 1`.
    Roberta,
    /// XLM-RoBERTa: RoBERTa with a larger vocabulary.
    XlmRoberta,
    /// DeBERTa-v2/v3: disentangled attention over relative positions.
    DebertaV2,
}

impl Architecture {
    /// The `model_type` string of config.json.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Bert => "bert",
            Architecture::DistilBert => "distilbert",
            Architecture::Roberta => "roberta",
            Architecture::XlmRoberta => "xlm-roberta",
            Architecture::DebertaV2 => "deberta-v2",
        }
    }

    /// The prefix of the encoder's weights inside a `*ForTokenClassification` checkpoint.
    pub fn weight_prefix(self) -> &'static str {
        match self {
            Architecture::Bert => "bert.",
            Architecture::DistilBert => "distilbert.",
            Architecture::Roberta | Architecture::XlmRoberta => "roberta.",
            Architecture::DebertaV2 => "deberta.",
        }
    }

    fn parse(model_type: &str) -> Option<Self> {
        match model_type {
            "bert" => Some(Architecture::Bert),
            "distilbert" => Some(Architecture::DistilBert),
            "roberta" => Some(Architecture::Roberta),
            "xlm-roberta" => Some(Architecture::XlmRoberta),
            "deberta-v2" => Some(Architecture::DebertaV2),
            _ => None,
        }
    }
}

/// The activation of the feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact GELU, `x·Φ(x)` with the error function (`gelu`).
    Gelu,
    /// The tanh approximation of GELU (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

/// DeBERTa-v2 relative-attention settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DebertaSettings {
    /// Whether attention adds relative-position terms at all.
    pub relative_attention: bool,
    /// Content-to-position term.
    pub c2p: bool,
    /// Position-to-content term.
    pub p2c: bool,
    /// Log-bucket count (≤ 0: no bucketing).
    pub position_buckets: i64,
    /// Maximum relative distance (already defaulted to max_position_embeddings when < 1).
    pub max_relative_positions: i64,
    /// Position projections reuse the content query/key projections.
    pub share_att_key: bool,
    /// The relative embeddings go through the encoder's LayerNorm.
    pub norm_rel_embeddings: bool,
    /// Absolute position embeddings are added to the input.
    pub position_biased_input: bool,
    /// Width of the word embeddings (projected to hidden_size when different).
    pub embedding_size: usize,
}

impl DebertaSettings {
    /// Rows of relative embeddings one side of zero (`pos_ebd_size` in transformers).
    pub fn attention_span(&self) -> usize {
        let span = if self.position_buckets > 0 {
            self.position_buckets
        } else {
            self.max_relative_positions
        };
        usize::try_from(span).unwrap_or(0)
    }
}

/// The architecture-independent view of config.json the runtime works from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    /// The encoder family.
    pub architecture: Architecture,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Hidden width.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Feed-forward width.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    pub activation: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Rows of the absolute position table.
    pub max_position_embeddings: usize,
    /// Rows of the token-type table (0: none).
    pub type_vocab_size: usize,
    /// Padding token id (used by RoBERTa position ids and synthetic inputs).
    pub pad_token_id: u32,
    /// Labels by id from `id2label` (empty when config.json has none).
    pub id2label: Vec<String>,
    /// DeBERTa-v2 only.
    pub deberta: Option<DebertaSettings>,
}

impl ModelConfig {
    /// Reads and validates `config.json`.
    pub fn from_file(file: &Path) -> Result<ModelConfig> {
        let text = super::read_input_text(
            file,
            super::MAX_CONFIG_JSON_BYTES,
            ": a checkpoint directory needs config.json",
        )?;
        let value: Value = serde_json::from_str(&text).map_err(|err| RuntimeError::Json {
            file: file.to_path_buf(),
            message: err.to_string(),
        })?;
        let Value::Object(map) = value else {
            return Err(RuntimeError::Json {
                file: file.to_path_buf(),
                message: "expected a JSON object".into(),
            });
        };
        Self::from_map(&map, file)
    }

    /// Bytes the model's weights take in f32, as this config describes them (embeddings, every
    /// layer's attention and feed-forward, LayerNorms): what loading it needs at the least,
    /// computed without overflow whatever the config says.
    pub fn estimated_weight_bytes(&self) -> u64 {
        let hidden = self.hidden_size as f64;
        let inner = self.intermediate_size as f64;
        let width = self
            .deberta
            .as_ref()
            .map_or(hidden, |deberta| deberta.embedding_size as f64);
        let rows = self.vocab_size as f64
            + self.max_position_embeddings as f64
            + self.type_vocab_size as f64;
        let projection = if width == hidden { 0.0 } else { width * hidden };
        let relative = self.deberta.as_ref().map_or(0.0, |deberta| {
            2.0 * deberta.attention_span() as f64 * hidden
        });
        let per_layer = 4.0 * hidden * hidden + 2.0 * hidden * inner + 9.0 * hidden + inner;
        let floats = rows * width + projection + relative + self.num_layers as f64 * per_layer;
        // `as` saturates: an absurd config reads as u64::MAX bytes.
        (floats * 4.0) as u64
    }

    /// Validates an already-parsed config.json object (`file` is used in errors).
    pub fn from_map(map: &Map<String, Value>, file: &Path) -> Result<ModelConfig> {
        let keys = Keys { map, file };
        let model_type = keys.string("model_type")?;
        let architecture =
            Architecture::parse(&model_type).ok_or_else(|| RuntimeError::UnsupportedModelType {
                file: file.to_path_buf(),
                model_type: model_type.clone(),
                supported: SUPPORTED_MODEL_TYPES.join(", "),
            })?;
        let id2label = keys.id2label()?;
        let config = if architecture == Architecture::DistilBert {
            ModelConfig {
                architecture,
                vocab_size: keys.usize("vocab_size")?,
                hidden_size: keys.usize("dim")?,
                num_layers: keys.usize("n_layers")?,
                num_heads: keys.usize("n_heads")?,
                intermediate_size: keys.usize("hidden_dim")?,
                activation: keys.activation("activation", "gelu")?,
                // transformers hard-codes DistilBERT's LayerNorm epsilon.
                layer_norm_eps: 1e-12,
                max_position_embeddings: keys.usize("max_position_embeddings")?,
                type_vocab_size: 0,
                pad_token_id: keys.optional_u32("pad_token_id")?.unwrap_or(0),
                id2label,
                deberta: None,
            }
        } else {
            let hidden_size = keys.usize("hidden_size")?;
            let deberta = if architecture == Architecture::DebertaV2 {
                Some(keys.deberta(hidden_size)?)
            } else {
                None
            };
            ModelConfig {
                architecture,
                vocab_size: keys.usize("vocab_size")?,
                hidden_size,
                num_layers: keys.usize("num_hidden_layers")?,
                num_heads: keys.usize("num_attention_heads")?,
                intermediate_size: keys.usize("intermediate_size")?,
                activation: keys.activation("hidden_act", "gelu")?,
                layer_norm_eps: keys.f64_or("layer_norm_eps", 1e-12)?,
                max_position_embeddings: keys.usize("max_position_embeddings")?,
                type_vocab_size: keys.usize_or("type_vocab_size", 2)?,
                pad_token_id: keys
                    .optional_u32("pad_token_id")?
                    .unwrap_or(match architecture {
                        Architecture::Roberta | Architecture::XlmRoberta => 1,
                        _ => 0,
                    }),
                id2label,
                deberta,
            }
        };
        if config.num_heads == 0 || config.hidden_size % config.num_heads != 0 {
            return Err(keys.invalid(
                if architecture == Architecture::DistilBert {
                    "n_heads"
                } else {
                    "num_attention_heads"
                },
                format!(
                    "{} heads do not divide hidden size {}",
                    config.num_heads, config.hidden_size
                ),
            ));
        }
        Ok(config)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }
}

struct Keys<'a> {
    map: &'a Map<String, Value>,
    file: &'a Path,
}

impl Keys<'_> {
    fn invalid(&self, key: &str, message: impl Into<String>) -> RuntimeError {
        RuntimeError::ModelConfig {
            file: PathBuf::from(self.file),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn required(&self, key: &str) -> Result<&Value> {
        match self.map.get(key) {
            Some(Value::Null) | None => Err(self.invalid(key, "missing")),
            Some(value) => Ok(value),
        }
    }

    fn string(&self, key: &str) -> Result<String> {
        match self.required(key)? {
            Value::String(text) => Ok(text.clone()),
            other => Err(self.invalid(key, format!("expected a string, found {other}"))),
        }
    }

    fn usize(&self, key: &str) -> Result<usize> {
        let value = self.required(key)?;
        value
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                self.invalid(
                    key,
                    format!("expected a non-negative integer, found {value}"),
                )
            })
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(_) => self.usize(key),
        }
    }

    fn i64_or(&self, key: &str, default: i64) -> Result<i64> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_i64()
                .ok_or_else(|| self.invalid(key, format!("expected an integer, found {value}"))),
        }
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(value) => Err(self.invalid(key, format!("expected true or false, found {value}"))),
        }
    }

    fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| self.invalid(key, format!("expected a number ≥ 0, found {value}"))),
        }
    }

    fn optional_u32(&self, key: &str) -> Result<Option<u32>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| self.invalid(key, format!("expected a token id, found {value}"))),
        }
    }

    fn activation(&self, key: &str, default: &str) -> Result<Activation> {
        let name = match self.map.get(key) {
            None | Some(Value::Null) => default.to_string(),
            Some(Value::String(name)) => name.clone(),
            Some(value) => {
                return Err(self.invalid(key, format!("expected a string, found {value}")));
            }
        };
        match name.as_str() {
            "gelu" => Ok(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::GeluTanh),
            "relu" => Ok(Activation::Relu),
            other => Err(self.invalid(
                key,
                format!(
                    "unsupported activation {other:?}; supported: gelu, gelu_new, gelu_pytorch_tanh, relu"
                ),
            )),
        }
    }

    fn id2label(&self) -> Result<Vec<String>> {
        let Some(value) = self.map.get("id2label") else {
            return Ok(Vec::new());
        };
        let Value::Object(entries) = value else {
            return Err(self.invalid("id2label", "expected an object of id → label"));
        };
        let mut labels = vec![None; entries.len()];
        for (id, label) in entries {
            let index = id
                .parse::<usize>()
                .ok()
                .filter(|index| *index < entries.len())
                .ok_or_else(|| {
                    self.invalid(
                        "id2label",
                        format!("ids must be 0..{}, found {id:?}", entries.len()),
                    )
                })?;
            let label = label.as_str().ok_or_else(|| {
                self.invalid("id2label", format!("label of {id} is not a string"))
            })?;
            labels[index] = Some(label.to_string());
        }
        labels
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.invalid("id2label", "ids are not contiguous from 0"))
    }

    fn deberta(&self, hidden_size: usize) -> Result<DebertaSettings> {
        let pos_att_type: Vec<String> = match self.map.get("pos_att_type") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(joined)) => joined
                .split('|')
                .map(|part| part.trim().to_lowercase())
                .collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_lowercase)
                        .ok_or_else(|| self.invalid("pos_att_type", "expected strings"))
                })
                .collect::<Result<_>>()?,
            Some(other) => {
                return Err(self.invalid(
                    "pos_att_type",
                    format!("expected a list or a |-joined string, found {other}"),
                ));
            }
        };
        if let Some(unknown) = pos_att_type
            .iter()
            .find(|kind| !matches!(kind.as_str(), "c2p" | "p2c" | ""))
        {
            return Err(self.invalid(
                "pos_att_type",
                format!("unsupported {unknown:?}; supported: c2p, p2c"),
            ));
        }
        if self.usize_or("conv_kernel_size", 0)? > 0 {
            return Err(self.invalid(
                "conv_kernel_size",
                "the convolution layer of DeBERTa-v2 xlarge models is not supported",
            ));
        }
        let max_position_embeddings = self.usize("max_position_embeddings")?;
        let mut max_relative_positions = self.i64_or("max_relative_positions", -1)?;
        if max_relative_positions < 1 {
            max_relative_positions = i64::try_from(max_position_embeddings).unwrap_or(i64::MAX);
        }
        let norm_rel_ebd = match self.map.get("norm_rel_ebd") {
            None | Some(Value::Null) => String::from("none"),
            Some(Value::String(text)) => text.clone(),
            Some(other) => {
                return Err(
                    self.invalid("norm_rel_ebd", format!("expected a string, found {other}"))
                );
            }
        };
        Ok(DebertaSettings {
            relative_attention: self.bool_or("relative_attention", false)?,
            c2p: pos_att_type.iter().any(|kind| kind == "c2p"),
            p2c: pos_att_type.iter().any(|kind| kind == "p2c"),
            position_buckets: self.i64_or("position_buckets", -1)?,
            max_relative_positions,
            share_att_key: self.bool_or("share_att_key", false)?,
            norm_rel_embeddings: norm_rel_ebd
                .split('|')
                .any(|part| part.trim() == "layer_norm"),
            position_biased_input: self.bool_or("position_biased_input", true)?,
            embedding_size: self.usize_or("embedding_size", hidden_size)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(json: &str) -> Result<ModelConfig> {
        let Value::Object(map) = serde_json::from_str(json).unwrap() else {
            panic!("not an object")
        };
        ModelConfig::from_map(&map, Path::new("ckpt/config.json"))
    }

    #[test]
    fn unknown_model_type_lists_supported_ones() {
        let err = parse(r#"{"model_type": "gpt2"}"#).unwrap_err().to_string();
        assert!(err.contains("ckpt/config.json"), "{err}");
        assert!(err.contains("\"gpt2\""), "{err}");
        for supported in SUPPORTED_MODEL_TYPES {
            assert!(err.contains(supported), "{err}");
        }
    }

    #[test]
    fn missing_key_is_named() {
        let err = parse(r#"{"model_type": "bert", "vocab_size": 10}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hidden_size: missing"), "{err}");
    }

    #[test]
    fn id2label_is_ordered_by_id() {
        let config = parse(
            r#"{"model_type": "distilbert", "vocab_size": 10, "dim": 8, "n_layers": 1,
                "n_heads": 2, "hidden_dim": 16, "max_position_embeddings": 16,
                "id2label": {"1": "B-PER", "0": "O"}}"#,
        )
        .unwrap();
        assert_eq!(config.id2label, vec!["O", "B-PER"]);
        assert_eq!(config.head_dim(), 4);
    }

    #[test]
    fn heads_must_divide_hidden_size() {
        let err = parse(
            r#"{"model_type": "bert", "vocab_size": 10, "hidden_size": 10, "num_hidden_layers": 1,
                "num_attention_heads": 3, "intermediate_size": 16, "max_position_embeddings": 16}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("num_attention_heads"), "{err}");
    }
}
