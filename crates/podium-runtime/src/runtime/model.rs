//! The model behind [`super::Model`]: one of two execution paths over the same checkpoint.
//!
//! - The reference path (`reference`): candle-transformers' models with a token-classification
//!   head, plain candle tensor ops on any device (CUDA included).
//! - The fast CPU path ([`FastModel`], `cpu`): podium's own forward pass, every product a
//!   direct GEMM on strided slices with the fused kernels of [`super::kernels`] between them.
//!
//! [`Execution::Auto`] takes the fast path on the CPU and the reference path elsewhere; the
//! tests check the two against each other and both against transformers.

use std::str::FromStr;

use candle_core::{Device, Tensor};
use serde::Serialize;

use super::config::{Architecture, ModelConfig};
use super::profile::{ForwardProfile, Stopwatch};
use super::weights::Weights;
use crate::error::{Result, RuntimeError};

mod cpu;
mod fast;
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

use fast::{FastModel, Layer, Linear, position_ids, relative_indices, with_cpu_slice};

type CandleResult<T> = candle_core::Result<T>;

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

#[cfg(test)]
mod tests {
    use super::fast::log_bucket;
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
