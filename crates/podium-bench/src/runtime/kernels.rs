//! CPU kernels on contiguous f32 slices for everything around the matrix multiplies.
//!
//! candle runs the GEMMs; these fuse what would otherwise be separate tensor ops (and separate
//! allocations and passes over memory): bias + residual + LayerNorm, bias + activation, the
//! masked softmax with DeBERTa's relative terms, and the head split/merge permutations. Loops are
//! written over plain slices with independent lanes so the compiler vectorises them.

use rayon::prelude::*;

use super::config::Activation;

/// Rows below this many elements per task are not worth a rayon split.
const MIN_ELEMENTS_PER_TASK: usize = 16 * 1024;

fn rows_per_task(row_len: usize) -> usize {
    (MIN_ELEMENTS_PER_TASK / row_len.max(1)).max(1)
}

/// `e^x` for f32 with ≈2 ulp relative error, branch-free so loops over it vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and removing 1.5·2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Minimax polynomial of e^r on [-ln2/2, ln2/2] (Cephes expf).
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1;
    let e_r = p * r * r + r + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    e_r * scale
}

/// The error function, |error| < 1.5e-7 (Abramowitz & Stegun 7.1.26).
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    sign * (1.0 - poly * exp(-a * a))
}

#[inline(always)]
fn tanh(x: f32) -> f32 {
    let e = exp(2.0 * x.clamp(-15.0, 15.0));
    (e - 1.0) / (e + 1.0)
}

/// Applies the activation to one value.
#[inline(always)]
pub(crate) fn activate(activation: Activation, x: f32) -> f32 {
    match activation {
        Activation::Gelu => 0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            const C: f32 = 0.797_884_6; // sqrt(2/π)
            0.5 * x * (1.0 + tanh(C * (x + 0.044_715 * x * x * x)))
        }
        Activation::Relu => x.max(0.0),
    }
}

/// `data[r, :] = act(data[r, :] + bias)` for every row.
pub(crate) fn bias_activation(data: &mut [f32], bias: &[f32], activation: Activation) {
    let width = bias.len();
    data.par_chunks_mut(width * rows_per_task(width))
        .for_each(|rows| {
            for row in rows.chunks_exact_mut(width) {
                match activation {
                    // One match per row, not per element, keeps the inner loops vectorisable.
                    Activation::Gelu => {
                        for (x, b) in row.iter_mut().zip(bias) {
                            *x = activate(Activation::Gelu, *x + b);
                        }
                    }
                    Activation::GeluTanh => {
                        for (x, b) in row.iter_mut().zip(bias) {
                            *x = activate(Activation::GeluTanh, *x + b);
                        }
                    }
                    Activation::Relu => {
                        for (x, b) in row.iter_mut().zip(bias) {
                            *x = (*x + b).max(0.0);
                        }
                    }
                }
            }
        });
}

/// `data[r, :] = LayerNorm(data[r, :] + bias + residual[r, :])`, in place.
pub(crate) fn bias_residual_layer_norm(
    data: &mut [f32],
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let width = gamma.len();
    let per_task = width * rows_per_task(width);
    let normalise = |row: &mut [f32], residual_row: Option<&[f32]>| {
        if let Some(bias) = bias {
            for (x, b) in row.iter_mut().zip(bias) {
                *x += b;
            }
        }
        if let Some(residual_row) = residual_row {
            for (x, r) in row.iter_mut().zip(residual_row) {
                *x += r;
            }
        }
        let mean = sum(row) / width as f32;
        let mut lanes = [0f32; 8];
        for chunk in row.chunks(8) {
            for (lane, x) in lanes.iter_mut().zip(chunk) {
                let d = x - mean;
                *lane += d * d;
            }
        }
        let variance = lanes.iter().sum::<f32>() / width as f32;
        let inv = 1.0 / (variance + eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *x = (*x - mean) * inv * g + b;
        }
    };
    match residual {
        Some(residual) => data
            .par_chunks_mut(per_task)
            .zip(residual.par_chunks(per_task))
            .for_each(|(rows, residual_rows)| {
                for (row, residual_row) in rows
                    .chunks_exact_mut(width)
                    .zip(residual_rows.chunks_exact(width))
                {
                    normalise(row, Some(residual_row));
                }
            }),
        None => data.par_chunks_mut(per_task).for_each(|rows| {
            for row in rows.chunks_exact_mut(width) {
                normalise(row, None);
            }
        }),
    }
}

/// Sum with eight independent accumulators (vectorisable, unlike a sequential fold).
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// Shapes of one attention call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttentionShape {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl AttentionShape {
    pub(crate) fn hidden(&self) -> usize {
        self.heads * self.head_dim
    }
}

/// Splits a fused `[batch·seq, 3·hidden]` projection (plus its bias) into head-major
/// `[heads, batch, seq, head_dim]` query, key and value buffers; the query is multiplied by
/// `query_scale` on the way so the scores need no separate scaling pass.
pub(crate) fn split_heads(
    qkv: &[f32],
    bias: &[f32],
    shape: AttentionShape,
    query_scale: f32,
) -> [Vec<f32>; 3] {
    let AttentionShape {
        batch,
        seq,
        head_dim,
        ..
    } = shape;
    let hidden = shape.hidden();
    let tokens = batch * seq;
    let mut out = [
        vec![0f32; tokens * hidden],
        vec![0f32; tokens * hidden],
        vec![0f32; tokens * hidden],
    ];
    for (part, buffer) in out.iter_mut().enumerate() {
        let scale = if part == 0 { query_scale } else { 1.0 };
        // One head's block [batch·seq, head_dim] is contiguous in the destination.
        buffer
            .par_chunks_mut(tokens * head_dim)
            .enumerate()
            .for_each(|(head, block)| {
                let column = part * hidden + head * head_dim;
                let bias = &bias[column..column + head_dim];
                for (token, dst) in block.chunks_exact_mut(head_dim).enumerate() {
                    let src = &qkv[token * 3 * hidden + column..][..head_dim];
                    for ((d, s), b) in dst.iter_mut().zip(src).zip(bias) {
                        *d = (s + b) * scale;
                    }
                }
            });
    }
    out
}

/// Merges head-major `[heads, batch, seq, head_dim]` back into `[batch·seq, hidden]`.
pub(crate) fn merge_heads(context: &[f32], shape: AttentionShape) -> Vec<f32> {
    let hidden = shape.hidden();
    let tokens = shape.batch * shape.seq;
    let head_dim = shape.head_dim;
    let mut out = vec![0f32; tokens * hidden];
    out.par_chunks_mut(hidden * rows_per_task(hidden))
        .enumerate()
        .for_each(|(task, rows)| {
            let first = task * rows_per_task(hidden);
            for (offset, row) in rows.chunks_exact_mut(hidden).enumerate() {
                let token = first + offset;
                for (head, dst) in row.chunks_exact_mut(head_dim).enumerate() {
                    dst.copy_from_slice(&context[(head * tokens + token) * head_dim..][..head_dim]);
                }
            }
        });
    out
}

/// DeBERTa's relative-position terms for one attention call: `c2p[h, b·seq + i, r]` and
/// `p2c[h, b·seq + j, r]` (already scaled), gathered through the bucket index tables.
pub(crate) struct RelativeTerms<'a> {
    pub c2p: Option<&'a [f32]>,
    pub p2c: Option<&'a [f32]>,
    /// `c2p_index[i·seq + j]`: the relative-embedding row for query i, key j.
    pub c2p_index: &'a [u32],
    /// `p2c_index[j·seq + i]`: the row for key j seen from query i.
    pub p2c_index: &'a [u32],
    /// Rows of relative embeddings (2·span).
    pub rows: usize,
}

/// Row-wise softmax of `scores [heads, batch, seq, seq]` in place, after adding the relative
/// terms, with keys where `key_mask[b, j]` is 0 excluded (they get probability 0, which is what
/// transformers' additive `finfo.min` mask yields). A query row whose keys are all masked gets
/// a uniform distribution, as a softmax over equal `finfo.min` scores does in transformers;
/// with `query_mask` (DeBERTa's pairwise mask) so does every padding query row.
pub(crate) fn masked_softmax(
    scores: &mut [f32],
    key_mask: &[f32],
    query_mask: Option<&[f32]>,
    shape: AttentionShape,
    relative: Option<&RelativeTerms<'_>>,
) {
    let seq = shape.seq;
    let batch = shape.batch;
    scores
        .par_chunks_mut(seq * seq)
        .enumerate()
        .for_each(|(head_batch, block)| {
            let head = head_batch / batch;
            let b = head_batch % batch;
            let mask = &key_mask[b * seq..(b + 1) * seq];
            for (i, row) in block.chunks_exact_mut(seq).enumerate() {
                if query_mask.is_some_and(|q| q[b * seq + i] == 0.0) {
                    row.fill(1.0 / seq as f32);
                    continue;
                }
                if let Some(relative) = relative {
                    let index_row = &relative.c2p_index[i * seq..(i + 1) * seq];
                    if let Some(c2p) = relative.c2p {
                        let terms =
                            &c2p[((head * batch + b) * seq + i) * relative.rows..][..relative.rows];
                        for (x, r) in row.iter_mut().zip(index_row) {
                            *x += terms[*r as usize];
                        }
                    }
                    if let Some(p2c) = relative.p2c {
                        let base = (head * batch + b) * seq * relative.rows;
                        for (j, x) in row.iter_mut().enumerate() {
                            let r = relative.p2c_index[j * seq + i] as usize;
                            *x += p2c[base + j * relative.rows + r];
                        }
                    }
                }
                softmax_row(row, mask);
            }
        });
}

#[inline(always)]
fn softmax_row(row: &mut [f32], mask: &[f32]) {
    let mut max = f32::NEG_INFINITY;
    for (x, m) in row.iter().zip(mask) {
        if *m != 0.0 && *x > max {
            max = *x;
        }
    }
    if max == f32::NEG_INFINITY {
        let uniform = 1.0 / row.len() as f32;
        row.fill(uniform);
        return;
    }
    for (x, m) in row.iter_mut().zip(mask) {
        *x = exp(*x - max) * m;
    }
    let inv = 1.0 / sum(row);
    for x in row.iter_mut() {
        *x *= inv;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn exp_matches_std_closely() {
        let mut worst = 0f32;
        let mut x = -80.0f32;
        while x < 80.0 {
            let relative = ((exp(x) - x.exp()) / x.exp()).abs();
            worst = worst.max(relative);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!(exp(-1000.0) < 1e-37);
    }

    #[test]
    fn erf_matches_reference_values() {
        // erf values from a table (Abramowitz & Stegun, table 7.1).
        for (x, expected) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (-1.0, -0.842_700_8),
        ] {
            assert!((erf(x) - expected).abs() < 3e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn layer_norm_normalises_each_row() {
        let mut data = vec![1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0];
        bias_residual_layer_norm(&mut data, None, None, &[1.0; 4], &[0.0; 4], 0.0);
        let expected_first = [-1.341_640_8, -0.447_213_6, 0.447_213_6, 1.341_640_8];
        for (got, want) in data[..4].iter().zip(expected_first) {
            assert!((got - want).abs() < 1e-6, "{data:?}");
        }
        assert!((data[4..].iter().sum::<f32>()).abs() < 1e-5);
    }

    #[test]
    fn softmax_ignores_masked_keys_and_handles_fully_masked_rows() {
        let shape = AttentionShape {
            batch: 1,
            seq: 3,
            heads: 1,
            head_dim: 1,
        };
        let mut scores = vec![0.0, 0.0, 100.0, 1.0, 2.0, 3.0, 0.5, 0.5, 0.5];
        masked_softmax(&mut scores, &[1.0, 1.0, 0.0], None, shape, None);
        assert!(
            (scores[0] - 0.5).abs() < 1e-6 && scores[2] == 0.0,
            "{scores:?}"
        );
        let mut all_masked = vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0];
        masked_softmax(&mut all_masked, &[0.0, 0.0, 0.0], None, shape, None);
        assert!(all_masked.iter().all(|p| (p - 1.0 / 3.0).abs() < 1e-6));
    }

    #[test]
    fn split_then_merge_round_trips() {
        let shape = AttentionShape {
            batch: 2,
            seq: 3,
            heads: 2,
            head_dim: 2,
        };
        let hidden = shape.hidden();
        let qkv: Vec<f32> = (0..6 * 3 * hidden).map(|i| i as f32).collect();
        let [q, k, v] = split_heads(&qkv, &vec![0.0; 3 * hidden], shape, 1.0);
        let merged_q = merge_heads(&q, shape);
        let merged_v = merge_heads(&v, shape);
        for token in 0..6 {
            assert_eq!(
                merged_q[token * hidden..][..hidden],
                qkv[token * 3 * hidden..][..hidden]
            );
            assert_eq!(
                merged_v[token * hidden..][..hidden],
                qkv[token * 3 * hidden + 2 * hidden..][..hidden]
            );
        }
        // head-major: head 1 of token 0 starts after all of head 0's tokens.
        assert_eq!(k[6 * 2], qkv[hidden + 2]);
    }
}
