//! The fast CPU path's weights: loaded from the checkpoint and laid out for the GEMMs and
//! kernels of `cpu` (fused projections stacked, host copies of biases and norms), plus the
//! position and relative-attention indices both paths share.

use std::path::Path;

use candle_core::{Device, Storage, Tensor};

use super::super::config::{Architecture, DebertaSettings, ModelConfig};
use super::super::weights::Weights;
use super::{CandleResult, EncodedBatch, cpu};
use crate::error::{Result, RuntimeError};

#[derive(Debug)]
pub(super) struct Linear {
    /// `[in, out]`, contiguous: the GEMM reads it without a transpose.
    pub(super) weight_t: Tensor,
    pub(super) bias: Option<Tensor>,
    pub(super) bias_host: Vec<f32>,
}

impl Linear {
    /// Loads `names` (each `[output, input]`) stacked into one `[input, names.len()·output]`
    /// projection, so fused projections run as one GEMM.
    pub(super) fn load(
        weights: &Weights,
        names: &[&str],
        input: usize,
        output: usize,
    ) -> Result<Linear> {
        let mut parts = Vec::with_capacity(names.len());
        let mut biases = Vec::with_capacity(names.len());
        for name in names {
            parts.push(weights.get(&format!("{name}.weight"), &[output, input])?);
            biases.push(weights.get(&format!("{name}.bias"), &[output])?);
        }
        Self::from_parts(weights, names, parts, Some(biases))
    }

    pub(super) fn load_head(weights: &Weights, input: usize, output: usize) -> Result<Linear> {
        let weight = weights.get_root("classifier.weight", &[output, input])?;
        let bias = weights.get_root("classifier.bias", &[output])?;
        Self::from_parts(weights, &["classifier"], vec![weight], Some(vec![bias]))
    }

    pub(super) fn from_parts(
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
    pub(super) fn matmul(&self, x: &Tensor) -> CandleResult<Tensor> {
        x.matmul(&self.weight_t)
    }

    /// `x · W + b`.
    pub(super) fn forward(&self, x: &Tensor) -> CandleResult<Tensor> {
        let y = self.matmul(x)?;
        match &self.bias {
            Some(bias) => y.broadcast_add(bias),
            None => Ok(y),
        }
    }
}

#[derive(Debug)]
pub(super) struct Norm {
    pub(super) weight: Tensor,
    pub(super) bias: Tensor,
    pub(super) weight_host: Vec<f32>,
    pub(super) bias_host: Vec<f32>,
    pub(super) eps: f32,
}

impl Norm {
    pub(super) fn load(weights: &Weights, name: &str, width: usize, eps: f64) -> Result<Norm> {
        let (weight, bias) = weights.layer_norm(name, width)?;
        Ok(Norm {
            weight_host: host_vec(&weight, weights.file())?,
            bias_host: host_vec(&bias, weights.file())?,
            weight,
            bias,
            eps: eps as f32,
        })
    }

    pub(super) fn forward(&self, x: &Tensor) -> CandleResult<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

pub(super) fn host_vec(tensor: &Tensor, file: &Path) -> Result<Vec<f32>> {
    tensor
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|err| RuntimeError::Weights {
            file: file.to_path_buf(),
            message: err.to_string(),
        })
}

#[derive(Debug)]
pub(super) struct Embeddings {
    pub(super) word: Tensor,
    pub(super) position: Option<Tensor>,
    /// Row 0 of the token-type table: inputs are single sequences.
    pub(super) token_type: Option<Tensor>,
    pub(super) projection: Option<Linear>,
    pub(super) norm: Norm,
}

/// DeBERTa's per-layer projections of the relative embeddings, computed once at load time.
#[derive(Debug)]
pub(super) struct RelativeProjections {
    /// `[heads, head_dim, rows]` for the content→position term.
    pub(super) key_t: Option<Tensor>,
    /// `[heads, head_dim, rows]`, pre-divided by the attention scale, for position→content.
    pub(super) query_t: Option<Tensor>,
}

#[derive(Debug)]
pub(super) struct Layer {
    pub(super) qkv: Linear,
    pub(super) output: Linear,
    pub(super) attention_norm: Norm,
    pub(super) intermediate: Linear,
    pub(super) ffn_output: Linear,
    pub(super) output_norm: Norm,
    pub(super) relative: Option<RelativeProjections>,
}

/// The fast CPU path's weights, laid out for its GEMMs and kernels (see `cpu`).
#[derive(Debug)]
pub(crate) struct FastModel {
    pub(super) config: ModelConfig,
    pub(super) embeddings: Embeddings,
    pub(super) layers: Vec<Layer>,
    pub(super) classifier: Option<Linear>,
    pub(super) num_labels: usize,
    pub(super) device: Device,
    /// Buffers of the CPU path, kept between passes.
    pub(super) workspaces: cpu::WorkspacePool,
}

impl FastModel {
    pub(super) fn build(
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
        // Grown layer by layer, never sized from config.json up front: a count the weights do
        // not back fails at the first missing layer, not in the allocator.
        let mut layers = Vec::new();
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
    pub(super) fn relative_settings(&self) -> Option<&DebertaSettings> {
        self.config
            .deberta
            .as_ref()
            .filter(|d| d.relative_attention)
    }

    pub(super) fn embed(&self, batch: &EncodedBatch, mask: &[f32]) -> CandleResult<Tensor> {
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
    pub(super) fn query_scale(&self) -> f32 {
        let factor = match &self.config.deberta {
            Some(settings) if settings.relative_attention => {
                1 + usize::from(settings.c2p) + usize::from(settings.p2c)
            }
            _ => 1,
        };
        1.0 / ((self.config.head_dim() * factor) as f32).sqrt()
    }
}

/// Position ids: `0..seq`, or RoBERTa's `pad + cumsum(not pad)` on real tokens and `pad` on
/// padding.
pub(super) fn position_ids(architecture: Architecture, batch: &EncodedBatch, pad: u32) -> Vec<u32> {
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
pub(super) fn log_bucket(relative: i64, bucket_size: i64, max_position: i64) -> i64 {
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
pub(super) fn relative_indices(settings: &DebertaSettings, seq: usize) -> (Vec<u32>, Vec<u32>) {
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

pub(super) fn load_embeddings(config: &ModelConfig, weights: &Weights) -> Result<Embeddings> {
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

pub(super) fn load_relative_embeddings(
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

pub(super) fn load_layer(
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

pub(super) fn load_relative_projections(
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
pub(super) fn with_cpu_slice<R>(tensor: &Tensor, f: impl FnOnce(&[f32]) -> R) -> CandleResult<R> {
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
