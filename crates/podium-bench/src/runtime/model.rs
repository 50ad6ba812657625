//! The encoder (embeddings + post-LayerNorm transformer layers) shared by every supported
//! architecture, with the token-classification head on top.
//!
//! Two interchangeable execution paths: on a CPU device, podium's own forward pass (`cpu`:
//! direct GEMMs on strided slices with the fused kernels of [`super::kernels`] between them);
//! elsewhere (CUDA) the same maths as plain candle tensor ops. [`Execution::Portable`] forces
//! the second path on the CPU too, which the tests use to check one against the other.

use std::path::Path;

use candle_core::{D, DType, Device, Storage, Tensor};

use super::config::{Activation, Architecture, DebertaSettings, ModelConfig};
use super::kernels::AttentionShape;
use super::profile::{ForwardProfile, Stage, Stopwatch};
use super::weights::Weights;
use crate::error::{BenchError, Result};

mod cpu;

/// Which implementation of the non-GEMM operations runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Execution {
    /// Fused CPU kernels when the device is the CPU, candle ops otherwise.
    #[default]
    Auto,
    /// candle tensor ops only (any device).
    Portable,
}

/// A batch of token ids ready for the model, row-major `[batch, seq]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBatch {
    /// Token ids.
    pub input_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
    /// Rows.
    pub batch: usize,
    /// Columns (every row is padded/truncated to it).
    pub seq: usize,
}

type CandleResult<T> = candle_core::Result<T>;

#[derive(Debug)]
struct Linear {
    /// `[in, out]`, contiguous: the GEMM reads it without a transpose.
    weight_t: Tensor,
    bias: Option<Tensor>,
    bias_host: Vec<f32>,
}

impl Linear {
    /// Loads `names` (each `[output, input]`) stacked into one `[input, names.len()·output]`
    /// projection, so fused projections run as one GEMM.
    fn load(weights: &Weights, names: &[&str], input: usize, output: usize) -> Result<Linear> {
        let mut parts = Vec::with_capacity(names.len());
        let mut biases = Vec::with_capacity(names.len());
        for name in names {
            parts.push(weights.get(&format!("{name}.weight"), &[output, input])?);
            biases.push(weights.get(&format!("{name}.bias"), &[output])?);
        }
        Self::from_parts(weights, names, parts, Some(biases))
    }

    fn load_head(weights: &Weights, input: usize, output: usize) -> Result<Linear> {
        let weight = weights.get_root("classifier.weight", &[output, input])?;
        let bias = weights.get_root("classifier.bias", &[output])?;
        Self::from_parts(weights, &["classifier"], vec![weight], Some(vec![bias]))
    }

    fn from_parts(
        weights: &Weights,
        names: &[&str],
        parts: Vec<Tensor>,
        biases: Option<Vec<Tensor>>,
    ) -> Result<Linear> {
        let build = || -> CandleResult<(Tensor, Option<Tensor>)> {
            let weight = Tensor::cat(&parts, 0)?.t()?.contiguous()?;
            let bias = match &biases {
                Some(biases) => Some(Tensor::cat(biases, 0)?),
                None => None,
            };
            Ok((weight, bias))
        };
        let (weight_t, bias) = build().map_err(|err| BenchError::Weights {
            file: weights.file().to_path_buf(),
            message: format!("{}: {err}", names.join(", ")),
        })?;
        let bias_host = match &bias {
            Some(bias) => host_vec(bias, weights.file())?,
            None => vec![0.0; weight_t.dims()[1]],
        };
        Ok(Linear {
            weight_t,
            bias,
            bias_host,
        })
    }

    /// `x · W` without the bias (the fused kernels add it).
    fn matmul(&self, x: &Tensor) -> CandleResult<Tensor> {
        x.matmul(&self.weight_t)
    }

    /// `x · W + b`.
    fn forward(&self, x: &Tensor) -> CandleResult<Tensor> {
        let y = self.matmul(x)?;
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

#[derive(Debug)]
struct Norm {
    weight: Tensor,
    bias: Tensor,
    weight_host: Vec<f32>,
    bias_host: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(weights: &Weights, name: &str, width: usize, eps: f64) -> Result<Norm> {
        let (weight, bias) = weights.layer_norm(name, width)?;
        Ok(Norm {
            weight_host: host_vec(&weight, weights.file())?,
            bias_host: host_vec(&bias, weights.file())?,
            weight,
            bias,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> CandleResult<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

fn host_vec(tensor: &Tensor, file: &Path) -> Result<Vec<f32>> {
    tensor
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|err| BenchError::Weights {
            file: file.to_path_buf(),
            message: err.to_string(),
        })
}

#[derive(Debug)]
struct Embeddings {
    word: Tensor,
    position: Option<Tensor>,
    /// Row 0 of the token-type table: inputs are single sequences.
    token_type: Option<Tensor>,
    projection: Option<Linear>,
    norm: Norm,
}

/// DeBERTa's per-layer projections of the relative embeddings, computed once at load time.
#[derive(Debug)]
struct RelativeProjections {
    /// `[heads, head_dim, rows]` for the content→position term.
    key_t: Option<Tensor>,
    /// `[heads, head_dim, rows]`, pre-divided by the attention scale, for position→content.
    query_t: Option<Tensor>,
}

#[derive(Debug)]
struct Layer {
    qkv: Linear,
    output: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    ffn_output: Linear,
    output_norm: Norm,
    relative: Option<RelativeProjections>,
}

/// A loaded token-classification model (or bare encoder).
#[derive(Debug)]
pub struct TokenClassifier {
    config: ModelConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    classifier: Option<Linear>,
    num_labels: usize,
    device: Device,
    execution: Execution,
    /// Buffers of the CPU path, kept between passes.
    workspaces: cpu::WorkspacePool,
}

impl TokenClassifier {
    /// Builds the model from validated config.json and the checkpoint's weights.
    pub(crate) fn build(
        config: ModelConfig,
        mut weights: Weights,
        device: &Device,
        execution: Execution,
    ) -> Result<TokenClassifier> {
        weights.use_prefix_if_present(
            config.architecture.weight_prefix(),
            "embeddings.word_embeddings.weight",
        );
        let hidden = config.hidden_size;
        let embeddings = load_embeddings(&config, &weights)?;
        let relative_embeddings = match &config.deberta {
            Some(settings) if settings.relative_attention => {
                Some(load_relative_embeddings(&config, settings, &weights)?)
            }
            _ => None,
        };
        let mut layers = Vec::with_capacity(config.num_layers);
        for index in 0..config.num_layers {
            layers.push(load_layer(
                &config,
                &weights,
                index,
                relative_embeddings.as_ref(),
            )?);
        }
        let (classifier, num_labels) = if weights.has_root("classifier.weight") {
            let labels = weights
                .root_shape("classifier.weight")
                .and_then(|shape| shape.first().copied())
                .unwrap_or(0);
            if !config.id2label.is_empty() && config.id2label.len() != labels {
                return Err(BenchError::TensorShape {
                    file: weights.file().to_path_buf(),
                    name: "classifier.weight".into(),
                    expected: vec![config.id2label.len(), hidden],
                    actual: weights.root_shape("classifier.weight").unwrap_or_default(),
                });
            }
            (Some(Linear::load_head(&weights, hidden, labels)?), labels)
        } else {
            (None, 0)
        };
        Ok(TokenClassifier {
            config,
            embeddings,
            layers,
            classifier,
            num_labels,
            device: device.clone(),
            execution,
            workspaces: cpu::WorkspacePool::default(),
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Whether a token-classification head is present (else outputs are hidden states).
    pub fn has_classifier(&self) -> bool {
        self.classifier.is_some()
    }

    /// Width of each output row: labels with a head, hidden size without.
    pub fn output_width(&self) -> usize {
        if self.classifier.is_some() {
            self.num_labels
        } else {
            self.config.hidden_size
        }
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the model: logits `[batch, seq, num_labels]` with a head, the last hidden states
    /// `[batch, seq, hidden]` without.
    pub fn forward(&self, batch: &EncodedBatch) -> Result<Tensor> {
        self.check_batch(batch)?;
        self.forward_inner(batch, &mut Stopwatch::off())
            .map_err(|err| self.forward_error(err))
    }

    /// [`Self::forward`], adding the time of each stage to `profile`.
    pub fn forward_profiled(
        &self,
        batch: &EncodedBatch,
        profile: &mut ForwardProfile,
    ) -> Result<Tensor> {
        self.check_batch(batch)?;
        let output = self
            .forward_inner(batch, &mut Stopwatch::on(profile))
            .map_err(|err| self.forward_error(err))?;
        profile.finish_pass();
        Ok(output)
    }

    fn forward_error(&self, err: candle_core::Error) -> BenchError {
        BenchError::Forward {
            model_type: self.config.architecture.model_type().into(),
            message: err.to_string(),
        }
    }

    fn check_batch(&self, batch: &EncodedBatch) -> Result<()> {
        let tokens = batch.batch * batch.seq;
        if tokens == 0 {
            return Err(BenchError::Input("empty batch".into()));
        }
        if batch.input_ids.len() != tokens || batch.attention_mask.len() != tokens {
            return Err(BenchError::Input(format!(
                "{} ids and {} mask values for a {}×{} batch",
                batch.input_ids.len(),
                batch.attention_mask.len(),
                batch.batch,
                batch.seq
            )));
        }
        if let Some(id) = batch
            .input_ids
            .iter()
            .find(|id| **id as usize >= self.config.vocab_size)
        {
            return Err(BenchError::Input(format!(
                "token id {id} is outside the vocabulary of {}",
                self.config.vocab_size
            )));
        }
        let positions_needed = match self.config.architecture {
            Architecture::Roberta | Architecture::XlmRoberta => {
                batch.seq + self.config.pad_token_id as usize + 1
            }
            _ => batch.seq,
        };
        if self.embeddings.position.is_some()
            && positions_needed > self.config.max_position_embeddings
        {
            return Err(BenchError::Input(format!(
                "sequence length {} needs {positions_needed} positions; the model has {}",
                batch.seq, self.config.max_position_embeddings
            )));
        }
        Ok(())
    }

    fn fast_path(&self) -> bool {
        self.execution == Execution::Auto && self.device.is_cpu()
    }

    fn forward_inner(
        &self,
        batch: &EncodedBatch,
        watch: &mut Stopwatch<'_>,
    ) -> CandleResult<Tensor> {
        if self.fast_path() {
            return self.forward_cpu(batch, watch);
        }
        let (b, s) = (batch.batch, batch.seq);
        let mask_host: Vec<f32> = batch
            .attention_mask
            .iter()
            .map(|m| f32::from(u8::from(*m != 0)))
            .collect();
        let mut hidden = self.embed(batch, &mask_host)?;
        watch.lap(Stage::Embeddings);
        let shape = AttentionShape {
            batch: b,
            seq: s,
            heads: self.config.num_heads,
            head_dim: self.config.head_dim(),
        };
        let (c2p_index, p2c_index) = match self.relative_settings() {
            Some(settings) => relative_indices(settings, s),
            None => (Vec::new(), Vec::new()),
        };
        let ctx = PortableContext::new(&mask_host, &c2p_index, &p2c_index, shape, &self.device)?;
        for layer in &self.layers {
            hidden = self.layer_portable(layer, &hidden, shape, &ctx)?;
            watch.lap(Stage::EncoderLayers);
        }
        let output = match &self.classifier {
            Some(head) => {
                let logits = head.forward(&hidden)?;
                watch.lap(Stage::Classifier);
                logits
            }
            None => hidden,
        };
        output.reshape((b, s, self.output_width()))
    }

    /// DeBERTa's relative-attention settings, when it uses relative attention.
    fn relative_settings(&self) -> Option<&DebertaSettings> {
        self.config
            .deberta
            .as_ref()
            .filter(|d| d.relative_attention)
    }

    fn embed(&self, batch: &EncodedBatch, mask: &[f32]) -> CandleResult<Tensor> {
        let (b, s) = (batch.batch, batch.seq);
        let ids = Tensor::from_slice(&batch.input_ids, b * s, &self.device)?;
        let mut x = self.embeddings.word.index_select(&ids, 0)?;
        if let Some(position) = &self.embeddings.position {
            let positions = position_ids(self.config.architecture, batch, self.config.pad_token_id);
            let positions = Tensor::from_vec(positions, b * s, &self.device)?;
            x = (x + position.index_select(&positions, 0)?)?;
        }
        if let Some(token_type) = &self.embeddings.token_type {
            x = x.broadcast_add(token_type)?;
        }
        if let Some(projection) = &self.embeddings.projection {
            x = projection.matmul(&x)?;
        }
        let x = self.embeddings.norm.forward(&x)?;
        if self.config.architecture == Architecture::DebertaV2 {
            let mask = Tensor::from_slice(mask, (b * s, 1), &self.device)?;
            return x.broadcast_mul(&mask);
        }
        Ok(x)
    }

    fn layer_portable(
        &self,
        layer: &Layer,
        x: &Tensor,
        shape: AttentionShape,
        ctx: &PortableContext,
    ) -> CandleResult<Tensor> {
        let AttentionShape {
            batch,
            seq,
            heads,
            head_dim,
        } = shape;
        let tokens = batch * seq;
        let qkv = layer
            .qkv
            .forward(x)?
            .reshape((batch, seq, 3, heads, head_dim))?
            .permute((2, 3, 0, 1, 4))?
            .contiguous()?;
        let q = (qkv.get(0)?.reshape((heads * batch, seq, head_dim))? * self.query_scale() as f64)?;
        let k = qkv.get(1)?.reshape((heads * batch, seq, head_dim))?;
        let v = qkv.get(2)?.reshape((heads * batch, seq, head_dim))?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(projections) = &layer.relative {
            if let Some(key_t) = &projections.key_t {
                let c2p = q
                    .reshape((heads, tokens, head_dim))?
                    .matmul(key_t)?
                    .reshape((heads * batch, seq, ()))?
                    .contiguous()?;
                scores = (scores + c2p.gather(&ctx.c2p_index, D::Minus1)?)?;
            }
            if let Some(query_t) = &projections.query_t {
                let p2c = k
                    .reshape((heads, tokens, head_dim))?
                    .matmul(query_t)?
                    .reshape((heads * batch, seq, ()))?
                    .contiguous()?;
                scores = (scores + p2c.gather(&ctx.p2c_index, D::Minus1)?.t()?)?;
            }
        }
        let scores = scores.reshape((heads, batch, seq, seq))?;
        let keep = match self.config.architecture {
            Architecture::DebertaV2 => &ctx.pair_mask,
            _ => &ctx.key_mask,
        };
        let keep = keep.broadcast_as((heads, batch, seq, seq))?;
        let masked = keep.where_cond(&scores, &ctx.masked_value.broadcast_as(scores.shape())?)?;
        let probs = candle_nn::ops::softmax_last_dim(&masked)?;
        let context = probs
            .reshape((heads * batch, seq, seq))?
            .matmul(&v)?
            .reshape((heads, batch, seq, head_dim))?
            .permute((1, 2, 0, 3))?
            .reshape((tokens, shape.hidden()))?;
        let attention = layer
            .attention_norm
            .forward(&(layer.output.forward(&context)? + x)?)?;
        let intermediate = layer.intermediate.forward(&attention)?;
        let intermediate = match self.config.activation {
            Activation::Gelu => intermediate.gelu_erf()?,
            Activation::GeluTanh => intermediate.gelu()?,
            Activation::Relu => intermediate.relu()?,
        };
        layer
            .output_norm
            .forward(&(layer.ffn_output.forward(&intermediate)? + attention)?)
    }

    /// Multiplier folded into the query: 1/√(head_dim · scale_factor).
    fn query_scale(&self) -> f32 {
        let factor = match &self.config.deberta {
            Some(settings) if settings.relative_attention => {
                1 + usize::from(settings.c2p) + usize::from(settings.p2c)
            }
            _ => 1,
        };
        1.0 / ((self.config.head_dim() * factor) as f32).sqrt()
    }
}

/// Per-call tensors of the portable path.
struct PortableContext {
    /// `[1, batch, 1, seq]`, u8: key j of row b is real.
    key_mask: Tensor,
    /// `[1, batch, seq, seq]`, u8: query i and key j of row b are both real (DeBERTa).
    pair_mask: Tensor,
    masked_value: Tensor,
    c2p_index: Tensor,
    p2c_index: Tensor,
}

impl PortableContext {
    fn new(
        mask: &[f32],
        c2p_index: &[u32],
        p2c_index: &[u32],
        shape: AttentionShape,
        device: &Device,
    ) -> CandleResult<PortableContext> {
        let (batch, seq) = (shape.batch, shape.seq);
        let mask_u8: Vec<u8> = mask.iter().map(|m| (*m != 0.0) as u8).collect();
        let key_mask = Tensor::from_vec(mask_u8.clone(), (1, batch, 1, seq), device)?;
        let query_mask = Tensor::from_vec(mask_u8, (1, batch, seq, 1), device)?;
        let pair_mask = key_mask.broadcast_mul(&query_mask)?;
        let index = |table: &[u32]| -> CandleResult<Tensor> {
            if table.is_empty() {
                return Tensor::zeros((1, 1, 1), DType::U32, device);
            }
            Tensor::from_slice(table, (1, seq, seq), device)?
                .broadcast_as((shape.heads * batch, seq, seq))?
                .contiguous()
        };
        Ok(PortableContext {
            key_mask,
            pair_mask,
            masked_value: Tensor::new(f32::MIN, device)?,
            c2p_index: index(c2p_index)?,
            p2c_index: index(p2c_index)?,
        })
    }
}

/// Position ids: `0..seq`, or RoBERTa's `pad + cumsum(not pad)` on real tokens and `pad` on
/// padding.
fn position_ids(architecture: Architecture, batch: &EncodedBatch, pad: u32) -> Vec<u32> {
    match architecture {
        Architecture::Roberta | Architecture::XlmRoberta => batch
            .input_ids
            .chunks(batch.seq)
            .flat_map(|row| {
                let mut count = 0;
                row.iter()
                    .map(move |id| {
                        if *id == pad {
                            pad
                        } else {
                            count += 1;
                            pad + count
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .collect(),
        _ => (0..batch.batch).flat_map(|_| 0..batch.seq as u32).collect(),
    }
}

/// transformers' `make_log_bucket_position` for one relative distance (f32 like torch).
fn log_bucket(relative: i64, bucket_size: i64, max_position: i64) -> i64 {
    let mid = bucket_size / 2;
    if relative.abs() <= mid {
        return relative;
    }
    let abs = relative.abs() as f32;
    let mid_f = mid as f32;
    let log_pos = ((abs / mid_f).ln() / (((max_position - 1) as f64 / mid as f64) as f32).ln()
        * (mid - 1) as f32)
        .ceil()
        + mid_f;
    (log_pos * relative.signum() as f32) as i64
}

/// `(c2p_index[i·seq + j], p2c_index[j·seq + i])` row indices into the relative embeddings.
fn relative_indices(settings: &DebertaSettings, seq: usize) -> (Vec<u32>, Vec<u32>) {
    let span = settings.attention_span() as i64;
    let relative = |i: usize, j: usize| {
        let distance = i as i64 - j as i64;
        if settings.position_buckets > 0 && settings.max_relative_positions > 0 {
            log_bucket(
                distance,
                settings.position_buckets,
                settings.max_relative_positions,
            )
        } else {
            distance
        }
    };
    let clamp = |x: i64| x.clamp(0, (2 * span - 1).max(0)) as u32;
    let mut c2p = Vec::with_capacity(seq * seq);
    let mut p2c = Vec::with_capacity(seq * seq);
    for a in 0..seq {
        for b in 0..seq {
            c2p.push(clamp(relative(a, b) + span));
            p2c.push(clamp(span - relative(a, b)));
        }
    }
    (c2p, p2c)
}

fn load_embeddings(config: &ModelConfig, weights: &Weights) -> Result<Embeddings> {
    let hidden = config.hidden_size;
    let embedding_size = config
        .deberta
        .as_ref()
        .map(|d| d.embedding_size)
        .unwrap_or(hidden);
    let word = weights.get(
        "embeddings.word_embeddings.weight",
        &[config.vocab_size, embedding_size],
    )?;
    let wants_positions = config
        .deberta
        .as_ref()
        .is_none_or(|d| d.position_biased_input);
    let position = if wants_positions {
        Some(weights.get(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, embedding_size],
        )?)
    } else {
        None
    };
    let token_type =
        if config.type_vocab_size > 0 && config.architecture != Architecture::DistilBert {
            let table = weights.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, embedding_size],
            )?;
            Some(table.get(0).map_err(|err| BenchError::Weights {
                file: weights.file().to_path_buf(),
                message: err.to_string(),
            })?)
        } else {
            None
        };
    let projection = if embedding_size != hidden {
        let weight = weights.get("embed_proj.weight", &[hidden, embedding_size])?;
        Some(Linear::from_parts(
            weights,
            &["embed_proj"],
            vec![weight],
            None,
        )?)
    } else {
        None
    };
    let norm = Norm::load(
        weights,
        "embeddings.LayerNorm",
        hidden,
        config.layer_norm_eps,
    )?;
    Ok(Embeddings {
        word,
        position,
        token_type,
        projection,
        norm,
    })
}

fn load_relative_embeddings(
    config: &ModelConfig,
    settings: &DebertaSettings,
    weights: &Weights,
) -> Result<Tensor> {
    let rows = 2 * settings.attention_span();
    let table = weights.get("encoder.rel_embeddings.weight", &[rows, config.hidden_size])?;
    if !settings.norm_rel_embeddings {
        return Ok(table);
    }
    let norm = Norm::load(
        weights,
        "encoder.LayerNorm",
        config.hidden_size,
        config.layer_norm_eps,
    )?;
    norm.forward(&table).map_err(|err| BenchError::Weights {
        file: weights.file().to_path_buf(),
        message: format!("encoder.rel_embeddings: {err}"),
    })
}

fn load_layer(
    config: &ModelConfig,
    weights: &Weights,
    index: usize,
    relative_embeddings: Option<&Tensor>,
) -> Result<Layer> {
    let hidden = config.hidden_size;
    let inter = config.intermediate_size;
    let eps = config.layer_norm_eps;
    let name = |suffix: &str| match config.architecture {
        Architecture::DistilBert => format!("transformer.layer.{index}.{suffix}"),
        _ => format!("encoder.layer.{index}.{suffix}"),
    };
    let linear = |suffix: &str, input: usize, output: usize| {
        Linear::load(weights, &[name(suffix).as_str()], input, output)
    };
    let fused = |suffixes: [&str; 3]| {
        let names = suffixes.map(&name);
        Linear::load(
            weights,
            &names.each_ref().map(String::as_str),
            hidden,
            hidden,
        )
    };
    let norm = |suffix: &str| Norm::load(weights, &name(suffix), hidden, eps);
    let (qkv, output, attention_norm, intermediate, ffn_output, output_norm) =
        match config.architecture {
            Architecture::DistilBert => (
                fused(["attention.q_lin", "attention.k_lin", "attention.v_lin"])?,
                linear("attention.out_lin", hidden, hidden)?,
                norm("sa_layer_norm")?,
                linear("ffn.lin1", hidden, inter)?,
                linear("ffn.lin2", inter, hidden)?,
                norm("output_layer_norm")?,
            ),
            // BERT-style names; DeBERTa differs only in its projections' `_proj` suffix.
            architecture => (
                fused(if architecture == Architecture::DebertaV2 {
                    [
                        "attention.self.query_proj",
                        "attention.self.key_proj",
                        "attention.self.value_proj",
                    ]
                } else {
                    [
                        "attention.self.query",
                        "attention.self.key",
                        "attention.self.value",
                    ]
                })?,
                linear("attention.output.dense", hidden, hidden)?,
                norm("attention.output.LayerNorm")?,
                linear("intermediate.dense", hidden, inter)?,
                linear("output.dense", inter, hidden)?,
                norm("output.LayerNorm")?,
            ),
        };
    let relative = match (&config.deberta, relative_embeddings) {
        (Some(settings), Some(table)) => Some(load_relative_projections(
            config, settings, weights, &name, table,
        )?),
        _ => None,
    };
    Ok(Layer {
        qkv,
        output,
        attention_norm,
        intermediate,
        ffn_output,
        output_norm,
        relative,
    })
}

fn load_relative_projections(
    config: &ModelConfig,
    settings: &DebertaSettings,
    weights: &Weights,
    name: &dyn Fn(&str) -> String,
    table: &Tensor,
) -> Result<RelativeProjections> {
    let hidden = config.hidden_size;
    let heads = config.num_heads;
    let head_dim = config.head_dim();
    let scale_factor = 1 + usize::from(settings.c2p) + usize::from(settings.p2c);
    let scale = ((head_dim * scale_factor) as f64).sqrt();
    let project = |projection: &str, divide: f64| -> Result<Tensor> {
        let linear = Linear::load(weights, &[name(projection).as_str()], hidden, hidden)?;
        let rows = table.dims()[0];
        linear
            .forward(table)
            .and_then(|t| t.affine(1.0 / divide, 0.0))
            .and_then(|t| t.reshape((rows, heads, head_dim)))
            .and_then(|t| t.permute((1, 2, 0)))
            .and_then(|t| t.contiguous())
            .map_err(|err| BenchError::Weights {
                file: weights.file().to_path_buf(),
                message: format!("{projection}: {err}"),
            })
    };
    let (key_name, query_name) = if settings.share_att_key {
        ("attention.self.key_proj", "attention.self.query_proj")
    } else {
        (
            "attention.self.pos_key_proj",
            "attention.self.pos_query_proj",
        )
    };
    Ok(RelativeProjections {
        key_t: if settings.c2p {
            Some(project(key_name, 1.0)?)
        } else {
            None
        },
        query_t: if settings.p2c {
            Some(project(query_name, scale)?)
        } else {
            None
        },
    })
}

/// Runs `f` on the contiguous f32 CPU data of `tensor`.
fn with_cpu_slice<R>(tensor: &Tensor, f: impl FnOnce(&[f32]) -> R) -> CandleResult<R> {
    let (storage, layout) = tensor.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("expected a CPU tensor")
    };
    let data = cpu.as_slice::<f32>()?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("expected a contiguous tensor")
    };
    Ok(f(&data[start..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_buckets_match_transformers() {
        // torch: make_log_bucket_position(torch.arange(-12, 13), 8, 64)
        let got: Vec<i64> = (-12..=12).map(|r| log_bucket(r, 8, 64)).collect();
        let mid = 4;
        for (r, bucket) in (-12i64..=12).zip(&got) {
            if r.abs() <= mid {
                assert_eq!(*bucket, r);
            } else {
                assert!(bucket.abs() > mid && bucket.abs() <= 8, "{r} → {bucket}");
                assert_eq!(bucket.signum(), r.signum());
            }
        }
        // monotone in |r|
        for pair in got[13..].windows(2) {
            assert!(pair[0] <= pair[1], "{got:?}");
        }
    }

    #[test]
    fn roberta_positions_skip_padding() {
        let batch = EncodedBatch {
            input_ids: vec![0, 5, 6, 2, 1, 1],
            attention_mask: vec![1, 1, 1, 1, 0, 0],
            batch: 1,
            seq: 6,
        };
        assert_eq!(
            position_ids(Architecture::Roberta, &batch, 1),
            vec![2, 3, 4, 5, 1, 1]
        );
        assert_eq!(
            position_ids(Architecture::Bert, &batch, 0),
            vec![0, 1, 2, 3, 4, 5]
        );
    }
}
