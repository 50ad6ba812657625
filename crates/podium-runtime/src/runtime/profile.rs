//! Where a forward pass spends its time, stage by stage (`podium bench-model --profile`).
//!
//! The CPU path is synchronous, so the wall time between two stage boundaries is the cost of
//! that stage. Profiled passes are separate from the timed ones: reading the clock a few dozen
//! times per pass is cheap, but the latency figures never include it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One step of the forward pass. GEMMs and the fused kernels between them are separate
/// stages, so the profile says how much is matrix multiply and how much is everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Embedding lookups, (DeBERTa's projection), LayerNorm.
    Embeddings,
    /// The fused Q/K/V GEMM.
    QkvProjection,
    /// The projection's bias, and the query scaling.
    QkvBias,
    /// The `Q·Kᵀ` GEMM of every (sequence, head).
    AttentionScores,
    /// DeBERTa's content→position and position→content GEMMs.
    RelativePositionTerms,
    /// Mask, relative terms and softmax over each score row.
    Softmax,
    /// The `P·V` GEMM of every (sequence, head).
    AttentionContext,
    /// Merging the heads back into `[tokens, hidden]`.
    MergeHeads,
    /// The attention output GEMM.
    AttentionOutput,
    /// Bias + residual + LayerNorm after attention.
    AttentionNorm,
    /// The feed-forward up-projection GEMM.
    FeedForwardUp,
    /// Bias + activation on the feed-forward hidden layer.
    Activation,
    /// The feed-forward down-projection GEMM.
    FeedForwardDown,
    /// Bias + residual + LayerNorm after the feed-forward block.
    OutputNorm,
    /// The whole encoder (embeddings and every layer) on the reference path: candle-transformers'
    /// models run as one call, with no finer boundaries to time.
    EncoderLayers,
    /// The token-classification head.
    Classifier,
}

impl Stage {
    /// The stage's name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Embeddings => "embeddings",
            Stage::QkvProjection => "qkv_projection",
            Stage::QkvBias => "qkv_bias",
            Stage::AttentionScores => "attention_scores",
            Stage::RelativePositionTerms => "relative_position_terms",
            Stage::Softmax => "softmax",
            Stage::AttentionContext => "attention_context",
            Stage::MergeHeads => "merge_heads",
            Stage::AttentionOutput => "attention_output",
            Stage::AttentionNorm => "attention_norm",
            Stage::FeedForwardUp => "feed_forward_up",
            Stage::Activation => "activation",
            Stage::FeedForwardDown => "feed_forward_down",
            Stage::OutputNorm => "output_norm",
            Stage::EncoderLayers => "encoder_layers",
            Stage::Classifier => "classifier",
        }
    }

    /// Whether the stage is a matrix multiply (candle/gemm) rather than podium's own code.
    pub fn is_matmul(self) -> bool {
        matches!(
            self,
            Stage::QkvProjection
                | Stage::AttentionScores
                | Stage::RelativePositionTerms
                | Stage::AttentionContext
                | Stage::AttentionOutput
                | Stage::FeedForwardUp
                | Stage::FeedForwardDown
                | Stage::Classifier
        )
    }
}

/// Time per stage summed over one or more forward passes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForwardProfile {
    passes: usize,
    totals: BTreeMap<Stage, Duration>,
}

/// One row of a [`ForwardProfile`] summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageTime {
    /// The stage.
    pub stage: Stage,
    /// Mean milliseconds per forward pass.
    pub ms_per_pass: f64,
    /// Share of the profiled time, 0–1.
    pub share: f64,
    /// Whether it is a matrix multiply.
    pub matmul: bool,
}

impl ForwardProfile {
    /// Adds `elapsed` to `stage`.
    pub fn record(&mut self, stage: Stage, elapsed: Duration) {
        *self.totals.entry(stage).or_default() += elapsed;
    }

    /// Counts one more forward pass (the divisor of the per-pass means).
    pub fn finish_pass(&mut self) {
        self.passes += 1;
    }

    /// Forward passes recorded.
    pub fn passes(&self) -> usize {
        self.passes
    }

    /// Mean milliseconds per pass over all stages.
    pub fn total_ms_per_pass(&self) -> f64 {
        self.per_pass_ms(self.totals.values().sum())
    }

    /// Mean milliseconds per pass spent in matrix multiplies.
    pub fn matmul_ms_per_pass(&self) -> f64 {
        self.per_pass_ms(
            self.totals
                .iter()
                .filter(|(stage, _)| stage.is_matmul())
                .map(|(_, elapsed)| *elapsed)
                .sum(),
        )
    }

    /// Every stage that took time, in forward-pass order.
    pub fn stages(&self) -> Vec<StageTime> {
        let total = self.total_ms_per_pass();
        self.totals
            .iter()
            .map(|(stage, elapsed)| {
                let ms_per_pass = self.per_pass_ms(*elapsed);
                StageTime {
                    stage: *stage,
                    ms_per_pass,
                    share: if total > 0.0 {
                        ms_per_pass / total
                    } else {
                        0.0
                    },
                    matmul: stage.is_matmul(),
                }
            })
            .collect()
    }

    fn per_pass_ms(&self, elapsed: Duration) -> f64 {
        elapsed.as_secs_f64() * 1e3 / self.passes.max(1) as f64
    }
}

/// Splits a forward pass into stages; does nothing (not even read the clock) when off.
#[derive(Debug)]
pub(crate) struct Stopwatch<'a> {
    profile: Option<&'a mut ForwardProfile>,
    last: Option<Instant>,
}

impl<'a> Stopwatch<'a> {
    pub(crate) fn off() -> Stopwatch<'static> {
        Stopwatch {
            profile: None,
            last: None,
        }
    }

    pub(crate) fn on(profile: &'a mut ForwardProfile) -> Stopwatch<'a> {
        Stopwatch {
            profile: Some(profile),
            last: Some(Instant::now()),
        }
    }

    /// Whether laps are recorded (callers skip bookkeeping of their own when not).
    pub(crate) fn is_on(&self) -> bool {
        self.profile.is_some()
    }

    /// Charges the time since the previous lap to `stage`.
    pub(crate) fn lap(&mut self, stage: Stage) {
        self.split(&[(stage, 1)]);
    }

    /// Charges the time since the previous lap to several stages that ran interleaved (on
    /// parallel tasks), in proportion to `weights` (e.g. the thread time each took).
    pub(crate) fn split(&mut self, weights: &[(Stage, u64)]) {
        if let (Some(profile), Some(last)) = (self.profile.as_deref_mut(), self.last.as_mut()) {
            let now = Instant::now();
            let elapsed = now - *last;
            let total: u64 = weights.iter().map(|(_, weight)| weight).sum();
            for (stage, weight) in weights.iter().filter(|(_, weight)| *weight > 0) {
                let share = if total == 0 {
                    0.0
                } else {
                    *weight as f64 / total as f64
                };
                profile.record(*stage, elapsed.mul_f64(share));
            }
            *last = now;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn summary_divides_by_passes_and_sums_to_one() {
        let mut profile = ForwardProfile::default();
        for _ in 0..2 {
            profile.record(Stage::FeedForwardUp, Duration::from_millis(6));
            profile.record(Stage::Softmax, Duration::from_millis(2));
            profile.finish_pass();
        }
        assert_eq!(profile.passes(), 2);
        assert!((profile.total_ms_per_pass() - 8.0).abs() < 1e-9);
        assert!((profile.matmul_ms_per_pass() - 6.0).abs() < 1e-9);
        let stages = profile.stages();
        assert_eq!(stages[0].stage, Stage::Softmax, "forward-pass order");
        assert!((stages[0].share - 0.25).abs() < 1e-9);
        assert!(stages[1].matmul && (stages[1].ms_per_pass - 6.0).abs() < 1e-9);
    }

    #[test]
    fn split_laps_share_the_time_by_weight() {
        let mut profile = ForwardProfile::default();
        {
            let mut watch = Stopwatch::on(&mut profile);
            std::thread::sleep(Duration::from_millis(4));
            watch.split(&[(Stage::AttentionScores, 3), (Stage::Softmax, 1)]);
        }
        profile.finish_pass();
        let stages = profile.stages();
        assert_eq!(stages.len(), 2);
        assert!((stages[0].share - 0.75).abs() < 1e-6, "{stages:?}");
        assert!(profile.total_ms_per_pass() >= 4.0);
    }

    #[test]
    fn a_stopped_watch_records_nothing() {
        let mut watch = Stopwatch::off();
        watch.lap(Stage::Embeddings);
        let mut profile = ForwardProfile::default();
        {
            let mut watch = Stopwatch::on(&mut profile);
            watch.lap(Stage::Embeddings);
            watch.lap(Stage::Classifier);
        }
        assert_eq!(profile.stages().len(), 2);
    }
}
