//! The model behind [`super::Model`]: one of two execution paths over the same checkpoint.
//!
//! - The reference path (`reference`): candle-transformers' models with a token-classification
//!   head, plain candle tensor ops on any device (CUDA included).
//! - The fast CPU path ([`FastModel`], `cpu`): podium's own forward pass, every product a
//!   direct GEMM on strided slices with the fused kernels of [`super::kernels`] between them.
//!
//! [`Execution::Auto`] takes the fast path on the CPU and the reference path elsewhere; the
//! tests check the two against each other and both against transformers.

use std::path::Path;
use std::str::FromStr;

use candle_core::{Device, Storage, Tensor};
use serde::Serialize;

use super::config::{Architecture, DebertaSettings, ModelConfig};
use super::profile::{ForwardProfile, Stopwatch};
use super::weights::Weights;
use crate::error::{Result, RuntimeError};

mod cpu;
mod reference;

/// Which execution path runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Execution {
    /// The fast CPU path on the CPU, the reference path on any other device.
    #[default]
    Auto,
    /// The fast CPU path (CPU only).
    Cpu,
    /// The reference path on candle-transformers' models (any device).
    Portable,
}

impl Execution {
    /// The names [`FromStr`] accepts, for help texts and errors.
    pub const NAMES: [&'static str; 3] = ["auto", "cpu", "portable"];

    /// `auto`, `cpu` or `portable`.
    pub fn name(self) -> &'static str {
        match self {
            Execution::Auto => "auto",
            Execution::Cpu => "cpu",
            Execution::Portable => "portable",
        }
    }

    /// The path that runs on `device`: [`Execution::Cpu`] or [`Execution::Portable`], never
    /// `Auto`. The fast path needs the CPU.
    pub fn resolve(self, device: &Device) -> Result<Execution> {
        match (self, device.is_cpu()) {
            (Execution::Auto, true) | (Execution::Cpu, true) => Ok(Execution::Cpu),
            (Execution::Auto, false) | (Execution::Portable, _) => Ok(Execution::Portable),
            (Execution::Cpu, false) => Err(RuntimeError::Device {
                device: super::device_name(device),
                message:
                    "the fast CPU path (execution cpu) runs on the CPU only; use auto or portable"
                        .into(),
            }),
        }
    }
}

impl std::fmt::Display for Execution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Execution {
    type Err = RuntimeError;

    fn from_str(text: &str) -> Result<Execution> {
        match text {
            "auto" => Ok(Execution::Auto),
            "cpu" => Ok(Execution::Cpu),
            "portable" => Ok(Execution::Portable),
            other => Err(RuntimeError::Config {
                file: "<options>".into(),
                key: "execution".into(),
                message: format!(
                    "expected one of {}, found {other:?}",
                    Execution::NAMES.join(", ")
                ),
            }),
        }
    }
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
        let (weight_t, bias) = build().map_err(|err| RuntimeError::Weights {
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
        .map_err(|err| RuntimeError::Weights {
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

/// The fast CPU path's weights, laid out for its GEMMs and kernels (see `cpu`).
#[derive(Debug)]
pub(crate) struct FastModel {
    config: ModelConfig,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    classifier: Option<Linear>,
    num_labels: usize,
    device: Device,
    /// Buffers of the CPU path, kept between passes.
    workspaces: cpu::WorkspacePool,
}

impl FastModel {
    fn build(
        config: &ModelConfig,
        weights: &Weights,
        device: &Device,
        labels: Option<usize>,
    ) -> Result<FastModel> {
        let hidden = config.hidden_size;
        let embeddings = load_embeddings(config, weights)?;
        let relative_embeddings = match &config.deberta {
            Some(settings) if settings.relative_attention => {
                Some(load_relative_embeddings(config, settings, weights)?)
            }
            _ => None,
        };
        let mut layers = Vec::with_capacity(config.num_layers);
        for index in 0..config.num_layers {
            layers.push(load_layer(
                config,
                weights,
                index,
                relative_embeddings.as_ref(),
            )?);
        }
        let classifier = match labels {
            Some(labels) => Some(Linear::load_head(weights, hidden, labels)?),
            None => None,
        };
        Ok(FastModel {
            config: config.clone(),
            embeddings,
            layers,
            classifier,
            num_labels: labels.unwrap_or(0),
            device: device.clone(),
            workspaces: cpu::WorkspacePool::default(),
        })
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

#[derive(Debug)]
enum ExecutionPath {
    Fast(FastModel),
    Reference(reference::ReferenceModel),
}

/// A loaded token-classification model (or bare encoder) on one execution path.
#[derive(Debug)]
pub struct TokenClassifier {
    config: ModelConfig,
    /// [`Execution::Cpu`] or [`Execution::Portable`] (resolved at load).
    execution: Execution,
    /// Rows of `classifier.weight`; `None` for a bare encoder.
    labels: Option<usize>,
    device: Device,
    path: ExecutionPath,
}

impl TokenClassifier {
    /// Builds the model from validated config.json and the checkpoint's weights, on the path
    /// `execution` resolves to on `device`.
    pub(crate) fn build(
        config: ModelConfig,
        mut weights: Weights,
        device: &Device,
        execution: Execution,
    ) -> Result<TokenClassifier> {
        let execution = execution.resolve(device)?;
        weights.use_prefix_if_present(
            config.architecture.weight_prefix(),
            "embeddings.word_embeddings.weight",
        );
        let labels = if weights.has_root("classifier.weight") {
            let shape = weights.root_shape("classifier.weight").unwrap_or_default();
            let labels = shape.first().copied().unwrap_or(0);
            if (!config.id2label.is_empty() && config.id2label.len() != labels)
                || shape.get(1) != Some(&config.hidden_size)
            {
                return Err(RuntimeError::TensorShape {
                    file: weights.file().to_path_buf(),
                    name: "classifier.weight".into(),
                    expected: vec![
                        if config.id2label.is_empty() {
                            labels
                        } else {
                            config.id2label.len()
                        },
                        config.hidden_size,
                    ],
                    actual: shape,
                });
            }
            Some(labels)
        } else {
            None
        };
        let path = match execution {
            Execution::Portable => {
                let (tensors, prefix, file) = weights.into_parts();
                ExecutionPath::Reference(reference::ReferenceModel::build(
                    &config, tensors, &prefix, labels, &file, device,
                )?)
            }
            _ => ExecutionPath::Fast(FastModel::build(&config, &weights, device, labels)?),
        };
        Ok(TokenClassifier {
            config,
            execution,
            labels,
            device: device.clone(),
            path,
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The path that runs: [`Execution::Cpu`] or [`Execution::Portable`].
    pub fn execution(&self) -> Execution {
        self.execution
    }

    /// Whether a token-classification head is present (else outputs are hidden states).
    pub fn has_classifier(&self) -> bool {
        self.labels.is_some()
    }

    /// Width of each output row: labels with a head, hidden size without.
    pub fn output_width(&self) -> usize {
        self.labels.unwrap_or(self.config.hidden_size)
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

    fn forward_inner(
        &self,
        batch: &EncodedBatch,
        watch: &mut Stopwatch<'_>,
    ) -> CandleResult<Tensor> {
        match &self.path {
            ExecutionPath::Fast(model) => model.forward_cpu(batch, watch),
            ExecutionPath::Reference(model) => model.forward(batch, watch),
        }
    }

    fn forward_error(&self, source: candle_core::Error) -> RuntimeError {
        RuntimeError::Forward {
            model_type: self.config.architecture.model_type().into(),
            path: self.execution.name().into(),
            source: Box::new(source),
        }
    }

    /// Checks that rows of `seq` tokens fit the model's position table (RoBERTa counts
    /// positions past its padding id; DeBERTa's relative buckets are laid out for
    /// `max_position_embeddings` too).
    pub fn check_length(&self, seq: usize) -> Result<()> {
        let positions_needed = match self.config.architecture {
            Architecture::Roberta | Architecture::XlmRoberta => {
                seq.saturating_add(self.config.pad_token_id as usize + 1)
            }
            _ => seq,
        };
        if positions_needed > self.config.max_position_embeddings {
            return Err(RuntimeError::Input(format!(
                "sequence length {seq} needs {positions_needed} positions; the model has {} (max_position_embeddings of config.json)",
                self.config.max_position_embeddings
            )));
        }
        Ok(())
    }

    /// Bytes one forward pass of `batch` rows × `seq` tokens holds at its peak (weights not
    /// included), as estimated from the path's intermediate buffers. The fast path's figure is
    /// exact up to small vectors; the reference path keeps more candle intermediates alive, so
    /// its figure is an upper estimate.
    pub fn estimated_pass_bytes(&self, batch: usize, seq: usize) -> u64 {
        // f64: no overflow whatever the request; the figure is an estimate anyway.
        let config = &self.config;
        let (b, s) = (batch as f64, seq as f64);
        let tokens = b * s;
        let hidden = config.hidden_size as f64;
        let inner = config.intermediate_size as f64;
        let heads = config.num_heads as f64;
        let blocks_by_pairs = b * heads * s * s;
        let relative_rows = config
            .deberta
            .as_ref()
            .filter(|d| d.relative_attention)
            .map(|d| 2.0 * d.attention_span() as f64);
        let output = tokens * self.output_width() as f64;
        let floats = match self.execution {
            Execution::Portable => {
                let relative = relative_rows
                    .map(|rows| 10.0 * blocks_by_pairs + 2.0 * b * heads * s * rows)
                    .unwrap_or(0.0);
                10.0 * tokens * hidden
                    + 2.0 * tokens * inner
                    + 4.0 * blocks_by_pairs
                    + relative
                    + output
            }
            _ => {
                let relative = relative_rows
                    .map(|rows| 2.0 * b * heads * s * rows + 2.0 * s * s)
                    .unwrap_or(0.0);
                7.0 * tokens * hidden + tokens * inner + blocks_by_pairs + relative + 2.0 * output
            }
        };
        // `as` saturates: an absurd request reads as u64::MAX bytes.
        (floats * 4.0) as u64
    }

    fn check_batch(&self, batch: &EncodedBatch) -> Result<()> {
        let tokens = batch.batch.saturating_mul(batch.seq);
        if tokens == 0 {
            return Err(RuntimeError::Input("empty batch".into()));
        }
        if batch.input_ids.len() != tokens || batch.attention_mask.len() != tokens {
            return Err(RuntimeError::Input(format!(
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
            return Err(RuntimeError::Input(format!(
                "token id {id} is outside the vocabulary of {}",
                self.config.vocab_size
            )));
        }
        self.check_length(batch.seq)
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
            Some(table.get(0).map_err(|err| RuntimeError::Weights {
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
    norm.forward(&table).map_err(|err| RuntimeError::Weights {
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
            .map_err(|err| RuntimeError::Weights {
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
    fn execution_names_round_trip_and_auto_resolves_by_device() {
        for name in Execution::NAMES {
            assert_eq!(
                name.parse::<Execution>().map(Execution::name).ok(),
                Some(name)
            );
        }
        let err = "gpu".parse::<Execution>().err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("execution") && e.contains("auto, cpu, portable")),
            "{err:?}"
        );
        let cpu = Device::Cpu;
        assert_eq!(Execution::Auto.resolve(&cpu).ok(), Some(Execution::Cpu));
        assert_eq!(Execution::Cpu.resolve(&cpu).ok(), Some(Execution::Cpu));
        assert_eq!(
            Execution::Portable.resolve(&cpu).ok(),
            Some(Execution::Portable)
        );
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
