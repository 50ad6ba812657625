//! The reference execution path: candle-transformers' own models (`bert`, `xlm_roberta` for
//! roberta and xlm-roberta, `debertav2`) with a token-classification head (`candle_nn::Linear`)
//! on the encoder output. Plain candle tensor ops, so it runs on any device (CUDA included),
//! and it is what the fast CPU path is checked against.
//!
//! Three adapters, each because candle-transformers 0.11 gets a supported checkpoint wrong (all
//! recorded in docs/PERFORMANCE.md with a reproduction):
//!
//! - DistilBERT runs on [`BertModel`] with its weights renamed: `distilbert::DistilBertModel`
//!   computes `activation: "gelu"` with the tanh approximation, where transformers uses the
//!   exact (erf) GELU. A DistilBERT layer is a BERT layer with other tensor names and no token
//!   types, so a renaming (and a zero token-type row) is all it takes.
//! - DeBERTa-v2's head is our own biased `Linear` on the encoder: `DebertaV2NERModel` loads
//!   `classifier` without its bias, which transformers' head has.
//! - DeBERTa-v2 runs `DebertaV2Model`'s embeddings and encoder with `[batch, seq]` position
//!   ids: with its own `[1, seq]` ids, absolute positions (`position_biased_input`) fail for
//!   any batch above one (a non-broadcasting add).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, debertav2, xlm_roberta};

use super::super::config::{Activation, Architecture, DebertaSettings, ModelConfig};
use super::super::profile::{Stage, Stopwatch};
use super::{CandleResult, EncodedBatch};
use crate::error::{Result, RuntimeError};

/// Where the encoder's tensors sit in the [`VarBuilder`] (the checkpoint's own prefix, such as
/// `bert.`, is replaced by this one, so bare and `*ForTokenClassification` saves load alike).
const ENCODER: &str = "encoder_root";

enum Encoder {
    /// bert, and distilbert through the renaming adapter.
    Bert(bert::BertModel),
    /// roberta and xlm-roberta.
    Roberta(xlm_roberta::XLMRobertaModel),
    /// `DebertaV2Model`'s two halves, called as it calls them but with explicit position ids.
    DebertaV2 {
        embeddings: Box<debertav2::DebertaV2Embeddings>,
        encoder: Box<debertav2::DebertaV2Encoder>,
    },
}

/// candle-transformers' encoder and an optional token-classification head.
pub(crate) struct ReferenceModel {
    encoder: Encoder,
    head: Option<candle_nn::Linear>,
    device: Device,
}

impl std::fmt::Debug for ReferenceModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let encoder = match self.encoder {
            Encoder::Bert(_) => "bert::BertModel",
            Encoder::Roberta(_) => "xlm_roberta::XLMRobertaModel",
            Encoder::DebertaV2 { .. } => "debertav2::DebertaV2Model",
        };
        f.debug_struct("ReferenceModel")
            .field("encoder", &encoder)
            .field("head", &self.head.is_some())
            .field("device", &self.device)
            .finish()
    }
}

impl ReferenceModel {
    /// Builds the candle-transformers model of `config` from the checkpoint's tensors
    /// (`prefix`: the encoder's prefix in the file, e.g. `bert.`, or empty for a bare save).
    pub(crate) fn build(
        config: &ModelConfig,
        tensors: HashMap<String, Tensor>,
        prefix: &str,
        labels: Option<usize>,
        file: &Path,
        device: &Device,
    ) -> Result<ReferenceModel> {
        let architecture = config.architecture;
        let mut named = HashMap::with_capacity(tensors.len() + 1);
        for (name, tensor) in tensors {
            if name.starts_with("classifier.") {
                named.insert(name, tensor);
            } else if let Some(rest) = name.strip_prefix(prefix) {
                named.insert(
                    format!("{ENCODER}.{}", encoder_name(architecture, rest)),
                    tensor,
                );
            }
        }
        if architecture == Architecture::DistilBert {
            // BERT adds a token-type row; DistilBERT has none, so a zero row changes nothing.
            let zeros = Tensor::zeros((1, config.hidden_size), DType::F32, &Device::Cpu)
                .map_err(|err| weights_error(file, architecture, err))?;
            named.insert(
                format!("{ENCODER}.embeddings.token_type_embeddings.weight"),
                zeros,
            );
        }
        let vb = VarBuilder::from_tensors(named, DType::F32, device);
        let encoder_vb = vb.pp(ENCODER);
        let encoder = match architecture {
            Architecture::Bert | Architecture::DistilBert => {
                bert::BertModel::load(encoder_vb, &bert_config(config)).map(Encoder::Bert)
            }
            Architecture::Roberta | Architecture::XlmRoberta => {
                xlm_roberta::XLMRobertaModel::new(&roberta_config(config), encoder_vb)
                    .map(Encoder::Roberta)
            }
            Architecture::DebertaV2 => {
                let settings =
                    config
                        .deberta
                        .as_ref()
                        .ok_or_else(|| RuntimeError::ModelConfig {
                            file: file.with_file_name("config.json"),
                            key: "model_type".into(),
                            message: "deberta-v2 without its relative-attention settings".into(),
                        })?;
                let deberta = deberta_config(config, settings);
                debertav2::DebertaV2Embeddings::load(encoder_vb.pp("embeddings"), &deberta)
                    .and_then(|embeddings| {
                        let encoder =
                            debertav2::DebertaV2Encoder::load(encoder_vb.pp("encoder"), &deberta)?;
                        Ok(Encoder::DebertaV2 {
                            embeddings: Box::new(embeddings),
                            encoder: Box::new(encoder),
                        })
                    })
            }
        }
        .map_err(|err| weights_error(file, architecture, err))?;
        let head = match labels {
            Some(labels) => Some(
                candle_nn::linear(config.hidden_size, labels, vb.pp("classifier"))
                    .map_err(|err| weights_error(file, architecture, err))?,
            ),
            None => None,
        };
        Ok(ReferenceModel {
            encoder,
            head,
            device: device.clone(),
        })
    }

    /// Logits `[batch, seq, labels]`, or hidden states `[batch, seq, hidden]` without a head.
    pub(crate) fn forward(
        &self,
        batch: &EncodedBatch,
        watch: &mut Stopwatch<'_>,
    ) -> CandleResult<Tensor> {
        let shape = (batch.batch, batch.seq);
        let ids = Tensor::from_slice(&batch.input_ids, shape, &self.device)?;
        let mask = Tensor::from_slice(&batch.attention_mask, shape, &self.device)?;
        // Single sequences: every token has type 0.
        let token_types = ids.zeros_like()?;
        let hidden = match &self.encoder {
            Encoder::Bert(model) => model.forward(&ids, &token_types, Some(&mask))?,
            Encoder::Roberta(model) => {
                model.forward(&ids, &mask, &token_types, None, None, None)?
            }
            Encoder::DebertaV2 {
                embeddings,
                encoder,
            } => {
                // `[batch, seq]` position ids: DebertaV2Model's own `[1, seq]` ids make its
                // embeddings `add` (not broadcast) `[1, seq, h]` to `[batch, seq, h]`, which
                // fails for any batch above one when position_biased_input is set.
                let positions = Tensor::arange(0u32, batch.seq as u32, &self.device)?
                    .unsqueeze(0)?
                    .repeat((batch.batch, 1))?;
                let mask = mask.to_dtype(DType::F32)?;
                let embedded = embeddings.forward(
                    Some(&ids),
                    Some(&token_types),
                    Some(&positions),
                    Some(&mask),
                    None,
                )?;
                encoder.forward(&embedded, &mask, None, None)?
            }
        };
        watch.lap(Stage::EncoderLayers);
        match &self.head {
            Some(head) => {
                let logits = head.forward(&hidden)?;
                watch.lap(Stage::Classifier);
                Ok(logits)
            }
            None => Ok(hidden),
        }
    }
}

fn weights_error(file: &Path, architecture: Architecture, err: candle_core::Error) -> RuntimeError {
    RuntimeError::Weights {
        file: file.to_path_buf(),
        message: format!(
            "building candle-transformers' {} model: {err}",
            architecture.model_type()
        ),
    }
}

/// The tensor name candle-transformers' model reads for `name` (without the encoder prefix):
/// old `gamma`/`beta` LayerNorm names become `weight`/`bias` (as transformers renames them on
/// load), and DistilBERT's names become BERT's.
fn encoder_name(architecture: Architecture, name: &str) -> String {
    let name = if let Some(stem) = name.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = name.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        name.to_string()
    };
    if architecture != Architecture::DistilBert {
        return name;
    }
    let Some(rest) = name.strip_prefix("transformer.layer.") else {
        return name;
    };
    let Some((index, part)) = rest.split_once('.') else {
        return name;
    };
    const RENAMES: [(&str, &str); 8] = [
        ("attention.q_lin.", "attention.self.query."),
        ("attention.k_lin.", "attention.self.key."),
        ("attention.v_lin.", "attention.self.value."),
        ("attention.out_lin.", "attention.output.dense."),
        ("sa_layer_norm.", "attention.output.LayerNorm."),
        ("ffn.lin1.", "intermediate.dense."),
        ("ffn.lin2.", "output.dense."),
        ("output_layer_norm.", "output.LayerNorm."),
    ];
    for (from, to) in RENAMES {
        if let Some(tail) = part.strip_prefix(from) {
            return format!("encoder.layer.{index}.{to}{tail}");
        }
    }
    name
}

fn bert_config(config: &ModelConfig) -> bert::Config {
    bert::Config {
        vocab_size: config.vocab_size,
        hidden_size: config.hidden_size,
        num_hidden_layers: config.num_layers,
        num_attention_heads: config.num_heads,
        intermediate_size: config.intermediate_size,
        hidden_act: match config.activation {
            Activation::Gelu => bert::HiddenAct::Gelu,
            Activation::GeluTanh => bert::HiddenAct::GeluApproximate,
            Activation::Relu => bert::HiddenAct::Relu,
        },
        hidden_dropout_prob: 0.0,
        max_position_embeddings: config.max_position_embeddings,
        // DistilBERT: the one zero row the adapter adds.
        type_vocab_size: config.type_vocab_size.max(1),
        initializer_range: 0.02,
        layer_norm_eps: config.layer_norm_eps,
        pad_token_id: config.pad_token_id as usize,
        position_embedding_type: bert::PositionEmbeddingType::Absolute,
        use_cache: false,
        classifier_dropout: None,
        model_type: None,
    }
}

fn roberta_config(config: &ModelConfig) -> xlm_roberta::Config {
    xlm_roberta::Config {
        hidden_size: config.hidden_size,
        layer_norm_eps: config.layer_norm_eps,
        attention_probs_dropout_prob: 0.0,
        hidden_dropout_prob: 0.0,
        num_attention_heads: config.num_heads,
        position_embedding_type: "absolute".into(),
        intermediate_size: config.intermediate_size,
        hidden_act: match config.activation {
            Activation::Gelu => candle_nn::Activation::Gelu,
            Activation::GeluTanh => candle_nn::Activation::NewGelu,
            Activation::Relu => candle_nn::Activation::Relu,
        },
        num_hidden_layers: config.num_layers,
        vocab_size: config.vocab_size,
        max_position_embeddings: config.max_position_embeddings,
        type_vocab_size: config.type_vocab_size,
        pad_token_id: config.pad_token_id,
    }
}

fn deberta_config(config: &ModelConfig, settings: &DebertaSettings) -> debertav2::Config {
    let mut pos_att_type = Vec::new();
    if settings.c2p {
        pos_att_type.push("c2p".to_string());
    }
    if settings.p2c {
        pos_att_type.push("p2c".to_string());
    }
    debertav2::Config {
        vocab_size: config.vocab_size,
        hidden_size: config.hidden_size,
        num_hidden_layers: config.num_layers,
        num_attention_heads: config.num_heads,
        intermediate_size: config.intermediate_size,
        hidden_act: match config.activation {
            Activation::Gelu => debertav2::HiddenAct::Gelu,
            Activation::GeluTanh => debertav2::HiddenAct::GeluApproximate,
            Activation::Relu => debertav2::HiddenAct::Relu,
        },
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        max_position_embeddings: config.max_position_embeddings,
        type_vocab_size: config.type_vocab_size,
        initializer_range: 0.02,
        layer_norm_eps: config.layer_norm_eps,
        relative_attention: settings.relative_attention,
        max_relative_positions: isize::try_from(settings.max_relative_positions)
            .unwrap_or(isize::MAX),
        pad_token_id: Some(config.pad_token_id as usize),
        position_biased_input: settings.position_biased_input,
        pos_att_type,
        position_buckets: Some(isize::try_from(settings.position_buckets).unwrap_or(-1)),
        share_att_key: Some(settings.share_att_key),
        attention_head_size: None,
        embedding_size: Some(settings.embedding_size),
        norm_rel_ebd: Some(if settings.norm_rel_embeddings {
            "layer_norm".into()
        } else {
            "none".into()
        }),
        conv_kernel_size: None,
        conv_groups: None,
        conv_act: None,
        id2label: None,
        label2id: None,
        pooler_dropout: None,
        pooler_hidden_act: None,
        pooler_hidden_size: None,
        cls_dropout: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distilbert_names_become_bert_names() {
        for (distilbert, bert) in [
            (
                "transformer.layer.3.attention.q_lin.weight",
                "encoder.layer.3.attention.self.query.weight",
            ),
            (
                "transformer.layer.0.sa_layer_norm.bias",
                "encoder.layer.0.attention.output.LayerNorm.bias",
            ),
            (
                "transformer.layer.1.ffn.lin2.weight",
                "encoder.layer.1.output.dense.weight",
            ),
            (
                "transformer.layer.1.output_layer_norm.weight",
                "encoder.layer.1.output.LayerNorm.weight",
            ),
            (
                "embeddings.word_embeddings.weight",
                "embeddings.word_embeddings.weight",
            ),
        ] {
            assert_eq!(encoder_name(Architecture::DistilBert, distilbert), bert);
        }
        assert_eq!(
            encoder_name(Architecture::Bert, "embeddings.LayerNorm.gamma"),
            "embeddings.LayerNorm.weight"
        );
    }
}
