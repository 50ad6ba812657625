//! The CPU path: every product a direct GEMM on slices ([`super::super::gemm`]), everything
//! between them a fused kernel, in buffers reused from pass to pass.
//!
//! - Q, K and V stay where the fused projection wrote them (`[tokens, 3·hidden]`); each
//!   (sequence, head) reads its slices through strides, so there is no head split or transpose.
//! - Attention runs as one task per (sequence, head): `Q·Kᵀ`, DeBERTa's relative terms, the
//!   masked softmax and `P·V` back to back while the block is in cache, the tasks spread over
//!   the pool's threads (a batch of one still uses every thread).
//! - The large products are split over exactly the threads of the rayon pool they run in
//!   (`--threads`), whatever candle's machine-wide default is.
//! - No allocation per layer: a [`Workspace`] holds every intermediate buffer, and a pool of
//!   them survives between passes (fresh multi-megabyte buffers would cost page faults each
//!   pass).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use candle_core::{StorageRef, Tensor};
use rayon::prelude::*;

use super::super::gemm::{self, MatMut, MatRef, Parallelism};
use super::super::kernels::{self, AttentionShape, RelativeTerms};
use super::super::profile::{Stage, Stopwatch};
use super::{Architecture, CandleResult, EncodedBatch, FastModel, Layer, Linear};

/// Every intermediate buffer of one forward pass.
#[derive(Debug, Default)]
pub(super) struct Workspace {
    hidden: Vec<f32>,
    attention: Vec<f32>,
    qkv: Vec<f32>,
    scores: Vec<f32>,
    context: Vec<f32>,
    merged: Vec<f32>,
    intermediate: Vec<f32>,
    content_to_position: Vec<f32>,
    position_to_content: Vec<f32>,
}

/// The first `len` elements of `buffer`, growing it when needed. Contents are whatever the
/// previous pass left: every user overwrites its buffer before reading it.
fn sized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// Workspaces of finished passes, for the next ones (one per concurrent caller).
#[derive(Debug, Default)]
pub(super) struct WorkspacePool(Mutex<Vec<Workspace>>);

impl WorkspacePool {
    fn take(&self) -> Workspace {
        self.0
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    fn give_back(&self, workspace: Workspace) {
        // A poisoned lock only means another pass panicked; the workspace is then dropped.
        if let Ok(mut free) = self.0.lock() {
            free.push(workspace);
        }
    }
}

/// A read lock on a CPU tensor's data, as a slice.
struct Host<'a> {
    storage: StorageRef<'a>,
    start: usize,
    end: usize,
}

impl<'a> Host<'a> {
    fn new(tensor: &'a Tensor) -> CandleResult<Host<'a>> {
        let (storage, layout) = tensor.storage_and_layout();
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("the CPU path needs contiguous weights")
        };
        Ok(Host {
            storage,
            start,
            end,
        })
    }

    fn slice(&self) -> CandleResult<&[f32]> {
        let candle_core::Storage::Cpu(cpu) = &*self.storage else {
            candle_core::bail!("the CPU path needs CPU tensors")
        };
        Ok(&cpu.as_slice::<f32>()?[self.start..self.end])
    }
}

/// `out[tokens, out_width] = input[tokens, in_width] · W` over the pool's threads (no bias).
fn project(out: &mut [f32], input: &[f32], tokens: usize, linear: &Linear) -> CandleResult<()> {
    let weight = Host::new(&linear.weight_t)?;
    let (in_width, out_width) = linear.weight_t.dims2()?;
    gemm::matmul(
        MatMut::row_major(out, tokens, out_width)?,
        MatRef::row_major(input, tokens, in_width)?,
        MatRef::row_major(weight.slice()?, in_width, out_width)?,
        gemm::pool_parallelism(),
    )
}

/// Thread time spent in each attention step, summed over the parallel tasks (profiling only).
#[derive(Default)]
struct AttentionClock {
    scores: AtomicU64,
    relative: AtomicU64,
    softmax: AtomicU64,
    context: AtomicU64,
}

impl AttentionClock {
    fn charge(counter: &AtomicU64, since: &mut Option<Instant>) {
        if let Some(started) = since {
            let now = Instant::now();
            let nanos = u64::try_from((now - *started).as_nanos()).unwrap_or(u64::MAX);
            counter.fetch_add(nanos, Ordering::Relaxed);
            *started = now;
        }
    }

    fn weights(&self) -> [(Stage, u64); 4] {
        [
            (Stage::AttentionScores, self.scores.load(Ordering::Relaxed)),
            (
                Stage::RelativePositionTerms,
                self.relative.load(Ordering::Relaxed),
            ),
            (Stage::Softmax, self.softmax.load(Ordering::Relaxed)),
            (
                Stage::AttentionContext,
                self.context.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// Per-call inputs of the layers.
struct Call<'a> {
    shape: AttentionShape,
    /// 1.0 for real tokens, `[batch, seq]`.
    mask: &'a [f32],
    c2p_index: &'a [u32],
    p2c_index: &'a [u32],
    /// Rows of relative embeddings (0 without relative attention).
    relative_rows: usize,
}

impl FastModel {
    /// The CPU forward pass (see the module docs).
    pub(super) fn forward_cpu(
        &self,
        batch: &EncodedBatch,
        watch: &mut Stopwatch<'_>,
    ) -> CandleResult<Tensor> {
        let mut workspace = self.workspaces.take();
        let output = self.forward_cpu_in(batch, watch, &mut workspace);
        self.workspaces.give_back(workspace);
        output
    }

    fn forward_cpu_in(
        &self,
        batch: &EncodedBatch,
        watch: &mut Stopwatch<'_>,
        workspace: &mut Workspace,
    ) -> CandleResult<Tensor> {
        let (b, s) = (batch.batch, batch.seq);
        let tokens = b * s;
        let hidden = self.config.hidden_size;
        let mask: Vec<f32> = batch
            .attention_mask
            .iter()
            .map(|m| f32::from(u8::from(*m != 0)))
            .collect();
        self.embed_cpu(batch, &mask, sized(&mut workspace.hidden, tokens * hidden))?;
        watch.lap(Stage::Embeddings);

        let relative = self.relative_settings();
        let (c2p_index, p2c_index) = match relative {
            Some(settings) => super::relative_indices(settings, s),
            None => (Vec::new(), Vec::new()),
        };
        let call = Call {
            shape: AttentionShape {
                batch: b,
                seq: s,
                heads: self.config.num_heads,
                head_dim: self.config.head_dim(),
            },
            mask: &mask,
            c2p_index: &c2p_index,
            p2c_index: &p2c_index,
            relative_rows: relative.map(|r| 2 * r.attention_span()).unwrap_or(0),
        };
        for layer in &self.layers {
            self.layer_cpu(layer, &call, workspace, watch)?;
        }

        let hidden_states = &workspace.hidden[..tokens * hidden];
        match &self.classifier {
            Some(head) => {
                let mut logits = vec![0f32; tokens * self.num_labels];
                project(&mut logits, hidden_states, tokens, head)?;
                for row in logits.chunks_exact_mut(self.num_labels) {
                    for (x, bias) in row.iter_mut().zip(&head.bias_host) {
                        *x += bias;
                    }
                }
                watch.lap(Stage::Classifier);
                Tensor::from_vec(logits, (b, s, self.num_labels), &self.device)
            }
            None => Tensor::from_slice(hidden_states, (b, s, hidden), &self.device),
        }
    }

    /// Embeddings + LayerNorm into `out` (`[tokens, hidden]`).
    fn embed_cpu(&self, batch: &EncodedBatch, mask: &[f32], out: &mut [f32]) -> CandleResult<()> {
        let embeddings = &self.embeddings;
        let width = self.config.hidden_size;
        if embeddings.projection.is_some() {
            // DeBERTa with embedding_size ≠ hidden: rare, and its projection is one more GEMM
            // candle does well; the tensor path covers it.
            let x = self.embed(batch, mask)?;
            return super::with_cpu_slice(&x, |data| out.copy_from_slice(data));
        }
        let word = Host::new(&embeddings.word)?;
        let position = embeddings.position.as_ref().map(Host::new).transpose()?;
        let token_type = embeddings.token_type.as_ref().map(Host::new).transpose()?;
        let positions =
            super::position_ids(self.config.architecture, batch, self.config.pad_token_id);
        let position = match &position {
            Some(table) => Some((table.slice()?, positions.as_slice())),
            None => None,
        };
        let token_type = match &token_type {
            Some(row) => Some(row.slice()?),
            None => None,
        };
        kernels::gather_embeddings(
            out,
            width,
            &batch.input_ids,
            word.slice()?,
            position,
            token_type,
        );
        let norm = &embeddings.norm;
        kernels::bias_residual_layer_norm(
            out,
            None,
            None,
            &norm.weight_host,
            &norm.bias_host,
            norm.eps,
        );
        if self.config.architecture == Architecture::DebertaV2 {
            kernels::zero_masked_rows(out, width, mask);
        }
        Ok(())
    }

    fn layer_cpu(
        &self,
        layer: &Layer,
        call: &Call<'_>,
        workspace: &mut Workspace,
        watch: &mut Stopwatch<'_>,
    ) -> CandleResult<()> {
        let shape = call.shape;
        let AttentionShape {
            batch,
            seq,
            heads,
            head_dim,
        } = shape;
        let tokens = batch * seq;
        let hidden = shape.hidden();
        let Workspace {
            hidden: layer_input,
            attention,
            qkv,
            scores,
            context,
            merged,
            intermediate,
            content_to_position,
            position_to_content,
        } = workspace;
        let x = &mut layer_input[..tokens * hidden];

        let qkv = sized(qkv, tokens * 3 * hidden);
        project(qkv, x, tokens, &layer.qkv)?;
        watch.lap(Stage::QkvProjection);
        kernels::qkv_bias_and_scale(qkv, &layer.qkv.bias_host, self.query_scale());
        watch.lap(Stage::QkvBias);

        let blocks = batch * heads;
        let scores = sized(scores, blocks * seq * seq);
        let context = sized(context, blocks * seq * head_dim);
        // Scratch for the relative terms; one element per block when there are none, so the
        // chunks below always exist.
        let relative_len = seq * call.relative_rows.max(1);
        let c2p_scratch = sized(content_to_position, blocks * relative_len);
        let p2c_scratch = sized(position_to_content, blocks * relative_len);
        let key_t = layer
            .relative
            .as_ref()
            .and_then(|r| r.key_t.as_ref())
            .map(Host::new)
            .transpose()?;
        let query_t = layer
            .relative
            .as_ref()
            .and_then(|r| r.query_t.as_ref())
            .map(Host::new)
            .transpose()?;
        let key_t = key_t.as_ref().map(Host::slice).transpose()?;
        let query_t = query_t.as_ref().map(Host::slice).transpose()?;
        let pairwise_mask = self.config.architecture == Architecture::DebertaV2;
        let clock = AttentionClock::default();
        let profiling = watch.is_on();
        let qkv: &[f32] = qkv;
        scores
            .par_chunks_mut(seq * seq)
            .zip(context.par_chunks_mut(seq * head_dim))
            .zip(c2p_scratch.par_chunks_mut(relative_len))
            .zip(p2c_scratch.par_chunks_mut(relative_len))
            .enumerate()
            .try_for_each(|(block, (((scores, context), c2p), p2c))| {
                let mut since = profiling.then(Instant::now);
                let (b, head) = (block / heads, block % heads);
                let base = b * seq * 3 * hidden + head * head_dim;
                let part = |offset: usize| {
                    MatRef::strided(&qkv[base + offset..], seq, head_dim, 3 * hidden, 1)
                };
                let (query, key, value) = (part(0)?, part(hidden)?, part(2 * hidden)?);
                gemm::matmul(
                    MatMut::row_major(scores, seq, seq)?,
                    query,
                    key.t(),
                    Parallelism::None,
                )?;
                AttentionClock::charge(&clock.scores, &mut since);
                let rows = call.relative_rows;
                let project_relative = |out: &mut [f32], input: MatRef<'_>, table: &[f32]| {
                    gemm::matmul(
                        MatMut::row_major(out, seq, rows)?,
                        input,
                        MatRef::row_major(&table[head * head_dim * rows..], head_dim, rows)?,
                        Parallelism::None,
                    )
                };
                let c2p = match key_t {
                    Some(table) => {
                        project_relative(&mut c2p[..seq * rows], query, table)?;
                        Some(&c2p[..seq * rows])
                    }
                    None => None,
                };
                let p2c = match query_t {
                    Some(table) => {
                        project_relative(&mut p2c[..seq * rows], key, table)?;
                        Some(&p2c[..seq * rows])
                    }
                    None => None,
                };
                if rows > 0 {
                    AttentionClock::charge(&clock.relative, &mut since);
                }
                let sequence_mask = &call.mask[b * seq..(b + 1) * seq];
                kernels::masked_softmax_block(
                    scores,
                    sequence_mask,
                    pairwise_mask.then_some(sequence_mask),
                    (rows > 0).then_some(RelativeTerms {
                        c2p,
                        p2c,
                        c2p_index: call.c2p_index,
                        p2c_index: call.p2c_index,
                        rows,
                    }),
                );
                AttentionClock::charge(&clock.softmax, &mut since);
                gemm::matmul(
                    MatMut::row_major(context, seq, head_dim)?,
                    MatRef::row_major(scores, seq, seq)?,
                    value,
                    Parallelism::None,
                )?;
                AttentionClock::charge(&clock.context, &mut since);
                CandleResult::Ok(())
            })?;
        watch.split(&clock.weights());

        let merged = sized(merged, tokens * hidden);
        kernels::merge_heads(context, merged, shape);
        watch.lap(Stage::MergeHeads);
        let attention = sized(attention, tokens * hidden);
        project(attention, merged, tokens, &layer.output)?;
        watch.lap(Stage::AttentionOutput);
        let norm = &layer.attention_norm;
        kernels::bias_residual_layer_norm(
            attention,
            Some(&layer.output.bias_host),
            Some(x),
            &norm.weight_host,
            &norm.bias_host,
            norm.eps,
        );
        watch.lap(Stage::AttentionNorm);

        let inner = self.config.intermediate_size;
        let intermediate = sized(intermediate, tokens * inner);
        project(intermediate, attention, tokens, &layer.intermediate)?;
        watch.lap(Stage::FeedForwardUp);
        kernels::bias_activation(
            intermediate,
            &layer.intermediate.bias_host,
            self.config.activation,
        );
        watch.lap(Stage::Activation);
        // The layer's input is no longer needed: its buffer takes the output.
        project(x, intermediate, tokens, &layer.ffn_output)?;
        watch.lap(Stage::FeedForwardDown);
        let norm = &layer.output_norm;
        kernels::bias_residual_layer_norm(
            x,
            Some(&layer.ffn_output.bias_host),
            Some(attention),
            &norm.weight_host,
            &norm.bias_host,
            norm.eps,
        );
        watch.lap(Stage::OutputNorm);
        Ok(())
    }
}
