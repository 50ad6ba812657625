//! CPU kernels on contiguous f32 slices for everything around the matrix multiplies.
//!
//! The GEMMs run in `gemm`; these fuse what would otherwise be separate tensor ops (and separate
//! allocations and passes over memory): the embedding gather, the Q/K/V bias and query scaling,
//! bias + residual + LayerNorm, bias + activation, the masked softmax with DeBERTa's relative
//! terms, and the head merge. Loops are written over plain slices with independent lanes so the
//! compiler vectorises them, under run-time SIMD dispatch ([`with_widest_simd`]).

use rayon::prelude::*;

use super::config::Activation;

/// Runs `body` compiled for the widest vector instructions this CPU has (AVX-512, else
/// AVX2+FMA, else the baseline), chosen at run time.
///
/// Rust compiles for the x86-64 baseline (SSE2) unless told otherwise, which would leave these
/// kernels at a quarter of the width the GEMMs use. `body` must be an `#[inline(always)]`
/// closure calling `#[inline(always)]` helpers: only code inlined into pulp's feature-enabled
/// entry point is compiled for the wide instructions (a closure left out of line, as LLVM
/// chose for the softmax, silently runs on the baseline).
#[inline(always)]
fn with_widest_simd<R>(body: impl FnOnce() -> R) -> R {
    struct Body<F>(F);
    impl<R, F: FnOnce() -> R> pulp::WithSimd for Body<F> {
        type Output = R;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) -> R {
            (self.0)()
        }
    }
    pulp::Arch::new().dispatch(Body(body))
}

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
    // n is in [-126, 127] after the clamp: no overflow, and no overflow check to unvectorise.
    let scale = f32::from_bits(((n as i32).wrapping_add(127) as u32) << 23);
    e_r * scale
}

/// The error function as a rational function of x² (the approximation of Eigen and XLA),
/// |error| < 5e-7 on f32 (largest just below the clamp at ±4): branch-free and without `exp`,
/// so a loop of it vectorises into plain multiplies, adds and one division per lane.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    // Beyond ±4, erf rounds to ±1 in f32.
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    x * p / q
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
            with_widest_simd(
                #[inline(always)]
                || bias_activation_rows(rows, bias, activation),
            )
        });
}

#[inline(always)]
fn bias_activation_rows(rows: &mut [f32], bias: &[f32], activation: Activation) {
    let width = bias.len();
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
    let norm = RowNorm {
        bias,
        gamma,
        beta,
        eps,
    };
    match residual {
        Some(residual) => data
            .par_chunks_mut(per_task)
            .zip(residual.par_chunks(per_task))
            .for_each(|(rows, residual_rows)| {
                with_widest_simd(
                    #[inline(always)]
                    || {
                        for (row, residual_row) in rows
                            .chunks_exact_mut(width)
                            .zip(residual_rows.chunks_exact(width))
                        {
                            norm.apply(row, Some(residual_row));
                        }
                    },
                )
            }),
        None => data.par_chunks_mut(per_task).for_each(|rows| {
            with_widest_simd(
                #[inline(always)]
                || {
                    for row in rows.chunks_exact_mut(width) {
                        norm.apply(row, None);
                    }
                },
            )
        }),
    }
}

/// LayerNorm parameters, with the bias of the GEMM before it folded in.
#[derive(Clone, Copy)]
struct RowNorm<'a> {
    bias: Option<&'a [f32]>,
    gamma: &'a [f32],
    beta: &'a [f32],
    eps: f32,
}

impl RowNorm<'_> {
    #[inline(always)]
    fn apply(&self, row: &mut [f32], residual_row: Option<&[f32]>) {
        if let Some(bias) = self.bias {
            for (x, b) in row.iter_mut().zip(bias) {
                *x += b;
            }
        }
        if let Some(residual_row) = residual_row {
            for (x, r) in row.iter_mut().zip(residual_row) {
                *x += r;
            }
        }
        let width = row.len() as f32;
        let mean = sum(row) / width;
        let mut lanes = [0f32; LANES];
        for chunk in row.chunks(LANES) {
            for (lane, x) in lanes.iter_mut().zip(chunk) {
                let d = x - mean;
                *lane += d * d;
            }
        }
        let variance = lanes.iter().sum::<f32>() / width;
        let inv = 1.0 / (variance + self.eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(self.gamma).zip(self.beta) {
            *x = (*x - mean) * inv * g + b;
        }
    }
}

/// Independent accumulators per reduction: one AVX-512 register of f32.
const LANES: usize = 16;

/// Sum with [`LANES`] independent accumulators (vectorisable, unlike a sequential fold).
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *lane += x;
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

/// The largest `values[i]` with `mask[i] != 0` (−∞ when all are masked), in independent lanes:
/// a running `if x > max` is a loop-carried dependency the compiler will not vectorise.
#[inline(always)]
fn masked_max(values: &[f32], mask: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut value_chunks = values.chunks_exact(LANES);
    let mut mask_chunks = mask.chunks_exact(LANES);
    for (chunk, mask_chunk) in (&mut value_chunks).zip(&mut mask_chunks) {
        for ((lane, x), m) in lanes.iter_mut().zip(chunk).zip(mask_chunk) {
            let candidate = if *m != 0.0 { *x } else { f32::NEG_INFINITY };
            *lane = lane.max(candidate);
        }
    }
    let mut max = lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (x, m) in value_chunks.remainder().iter().zip(mask_chunks.remainder()) {
        if *m != 0.0 {
            max = max.max(*x);
        }
    }
    max
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

/// Adds the fused projection's bias to every `[q | k | v]` row of `qkv` (`3·hidden` wide) and
/// multiplies the query part by `query_scale`, so the scores need no scaling pass of their own.
pub(crate) fn qkv_bias_and_scale(qkv: &mut [f32], bias: &[f32], query_scale: f32) {
    let width = bias.len();
    let hidden = width / 3;
    qkv.par_chunks_mut(width * rows_per_task(width))
        .for_each(|rows| {
            with_widest_simd(
                #[inline(always)]
                || {
                    for row in rows.chunks_exact_mut(width) {
                        let (query, key_value) = row.split_at_mut(hidden);
                        for (x, b) in query.iter_mut().zip(&bias[..hidden]) {
                            *x = (*x + b) * query_scale;
                        }
                        for (x, b) in key_value.iter_mut().zip(&bias[hidden..]) {
                            *x += b;
                        }
                    }
                },
            )
        });
}

/// `out[t, :] = word[ids[t]] (+ position[positions[t]]) (+ token_type)`, rows of `width`.
pub(crate) fn gather_embeddings(
    out: &mut [f32],
    width: usize,
    ids: &[u32],
    word: &[f32],
    position: Option<(&[f32], &[u32])>,
    token_type: Option<&[f32]>,
) {
    out.par_chunks_mut(width * rows_per_task(width))
        .enumerate()
        .for_each(|(task, rows)| {
            let first = task * rows_per_task(width);
            with_widest_simd(
                #[inline(always)]
                || {
                    for (offset, row) in rows.chunks_exact_mut(width).enumerate() {
                        let token = first + offset;
                        let id = ids[token] as usize;
                        row.copy_from_slice(&word[id * width..][..width]);
                        if let Some((table, positions)) = position {
                            let position_row = &table[positions[token] as usize * width..][..width];
                            for (x, p) in row.iter_mut().zip(position_row) {
                                *x += p;
                            }
                        }
                        if let Some(token_type) = token_type {
                            for (x, t) in row.iter_mut().zip(token_type) {
                                *x += t;
                            }
                        }
                    }
                },
            )
        });
}

/// Zeroes the rows of padding tokens (DeBERTa masks its embeddings).
pub(crate) fn zero_masked_rows(data: &mut [f32], width: usize, mask: &[f32]) {
    for (row, keep) in data.chunks_exact_mut(width).zip(mask) {
        if *keep == 0.0 {
            row.fill(0.0);
        }
    }
}

/// Merges per-(batch, head) contexts `[batch, heads, seq, head_dim]` into `[batch·seq, hidden]`.
pub(crate) fn merge_heads(context: &[f32], merged: &mut [f32], shape: AttentionShape) {
    let AttentionShape {
        seq,
        heads,
        head_dim,
        ..
    } = shape;
    let hidden = shape.hidden();
    merged
        .par_chunks_mut(hidden * rows_per_task(hidden))
        .enumerate()
        .for_each(|(task, rows)| {
            let first = task * rows_per_task(hidden);
            for (offset, row) in rows.chunks_exact_mut(hidden).enumerate() {
                let token = first + offset;
                let (b, i) = (token / seq, token % seq);
                for (head, dst) in row.chunks_exact_mut(head_dim).enumerate() {
                    let block = b * heads + head;
                    dst.copy_from_slice(&context[(block * seq + i) * head_dim..][..head_dim]);
                }
            }
        });
}

/// DeBERTa's relative-position terms of one (batch, head) block: `c2p[i, r]` and `p2c[j, r]`
/// (already scaled), gathered through the bucket index tables.
#[derive(Debug, Clone, Copy)]
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

/// Row-wise softmax of one block of scores `[seq, seq]` in place, after adding the relative
/// terms, with keys where `key_mask[j]` is 0 excluded (they get probability 0, which is what
/// transformers' additive `finfo.min` mask yields). A query row whose keys are all masked gets
/// a uniform distribution, as a softmax over equal `finfo.min` scores does in transformers;
/// with `query_mask` (DeBERTa's pairwise mask) so does every padding query row.
pub(crate) fn masked_softmax_block(
    block: &mut [f32],
    key_mask: &[f32],
    query_mask: Option<&[f32]>,
    relative: Option<RelativeTerms<'_>>,
) {
    with_widest_simd(
        #[inline(always)]
        || {
            let seq = key_mask.len();
            for (i, row) in block.chunks_exact_mut(seq).enumerate() {
                if query_mask.is_some_and(|q| q[i] == 0.0) {
                    row.fill(1.0 / seq as f32);
                    continue;
                }
                if let Some(relative) = relative {
                    let index_row = &relative.c2p_index[i * seq..(i + 1) * seq];
                    if let Some(c2p) = relative.c2p {
                        let terms = &c2p[i * relative.rows..][..relative.rows];
                        for (x, r) in row.iter_mut().zip(index_row) {
                            *x += terms[*r as usize];
                        }
                    }
                    if let Some(p2c) = relative.p2c {
                        for (j, x) in row.iter_mut().enumerate() {
                            let r = relative.p2c_index[j * seq + i] as usize;
                            *x += p2c[j * relative.rows + r];
                        }
                    }
                }
                softmax_row(row, key_mask);
            }
        },
    )
}

#[inline(always)]
fn softmax_row(row: &mut [f32], mask: &[f32]) {
    let max = masked_max(row, mask);
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

    /// erf by its Maclaurin series in f64 (exact to ~1e-9 for |x| ≤ 4, far below f32's step).
    fn erf_reference(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            let next = term / (2 * n + 1) as f64;
            sum += next;
            if next.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_accurate_over_its_whole_range() {
        let mut worst = 0f64;
        let mut x = -6.0f32;
        while x <= 6.0 {
            let reference = erf_reference(f64::from(x.clamp(-4.5, 4.5)));
            let reference = if x.abs() > 4.5 {
                reference.signum()
            } else {
                reference
            };
            worst = worst.max((f64::from(erf(x)) - reference).abs());
            x += 0.000_731;
        }
        assert!(worst < 5e-7, "worst absolute error {worst}");
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
        let mut scores = vec![0.0, 0.0, 100.0, 1.0, 2.0, 3.0, 0.5, 0.5, 0.5];
        masked_softmax_block(&mut scores, &[1.0, 1.0, 0.0], None, None);
        assert!(
            (scores[0] - 0.5).abs() < 1e-6 && scores[2] == 0.0,
            "{scores:?}"
        );
        let mut all_masked = vec![1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0];
        masked_softmax_block(&mut all_masked, &[0.0, 0.0, 0.0], None, None);
        assert!(all_masked.iter().all(|p| (p - 1.0 / 3.0).abs() < 1e-6));
        let mut padding_query = vec![5.0, 1.0, 0.0, 5.0, 1.0, 0.0, 5.0, 1.0, 0.0];
        masked_softmax_block(
            &mut padding_query,
            &[1.0, 1.0, 0.0],
            Some(&[1.0, 1.0, 0.0]),
            None,
        );
        assert!(
            padding_query[6..]
                .iter()
                .all(|p| (p - 1.0 / 3.0).abs() < 1e-6)
        );
        assert!(padding_query[0] > 0.98 && padding_query[2] == 0.0);
    }

    #[test]
    fn long_masked_rows_agree_with_a_plain_softmax() {
        // Longer than one lane block, with a remainder, masked keys in both parts.
        let seq = 37;
        let row: Vec<f32> = (0..seq)
            .map(|j| ((j * 7) % 11) as f32 * 0.9 - 3.0)
            .collect();
        let mask: Vec<f32> = (0..seq).map(|j| f32::from(j % 5 != 3)).collect();
        let mut block = row.clone();
        block.resize(seq * seq, 0.0);
        masked_softmax_block(&mut block, &mask, None, None);
        let max = row
            .iter()
            .zip(&mask)
            .filter(|(_, m)| **m != 0.0)
            .map(|(x, _)| *x)
            .fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = row
            .iter()
            .zip(&mask)
            .map(|(x, m)| (x - max).exp() * m)
            .sum();
        for j in 0..seq {
            let expected = (row[j] - max).exp() * mask[j] / total;
            assert!((block[j] - expected).abs() < 1e-6, "key {j}");
        }
    }

    #[test]
    fn bias_and_scale_touch_only_their_part() {
        let mut qkv = vec![1.0f32; 2 * 6];
        qkv_bias_and_scale(&mut qkv, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.5);
        assert_eq!(qkv[..6], [1.0, 1.5, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(qkv[6..], qkv[..6]);
    }

    #[test]
    fn merge_interleaves_heads_per_token() {
        let shape = AttentionShape {
            batch: 2,
            seq: 3,
            heads: 2,
            head_dim: 2,
        };
        // context[b, h, i, e] = 1000·b + 100·h + 10·i + e
        let mut context = Vec::new();
        for b in 0..2 {
            for h in 0..2 {
                for i in 0..3 {
                    for e in 0..2 {
                        context.push((1000 * b + 100 * h + 10 * i + e) as f32);
                    }
                }
            }
        }
        let mut merged = vec![0f32; 6 * 4];
        merge_heads(&context, &mut merged, shape);
        // token 4 = batch 1, position 1: head 0 then head 1.
        assert_eq!(merged[4 * 4..5 * 4], [1010.0, 1011.0, 1110.0, 1111.0]);
    }
}
