//! The fast CPU path (direct GEMMs on strided views, fused attention, reused workspaces) against
//! the reference path (candle-transformers' models), on random architectures, head shapes, batch sizes,
//! sequence lengths and padding — shapes the fixed transformers fixtures do not reach — and
//! across thread counts.
//!
//! It lives here, not in podium-runtime's tests, because the random checkpoints it needs are
//! this crate's, and the runtime may not depend on any podium crate, not even for its tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::Device;
use podium_fixtures::random_checkpoint::RandomCheckpoint;
use podium_runtime::runtime::{Architecture, EncodedBatch, Execution, Model};
use proptest::prelude::*;

const ARCHITECTURES: [Architecture; 5] = [
    Architecture::Bert,
    Architecture::DistilBert,
    Architecture::Roberta,
    Architecture::XlmRoberta,
    Architecture::DebertaV2,
];

/// A batch whose row `r` has `lengths[r]` real tokens (at least one) and padding after them.
fn padded_batch(model: &Model, seq: usize, lengths: &[usize], id_seed: u64) -> EncodedBatch {
    let config = model.config();
    let pad = config.pad_token_id;
    let mut state = id_seed;
    let mut next_id = || loop {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let id = ((state >> 33) % config.vocab_size as u64) as u32;
        if id != pad {
            return id;
        }
    };
    let mut input_ids = Vec::new();
    let mut attention_mask = Vec::new();
    for length in lengths {
        let real = (*length).clamp(1, seq);
        for position in 0..seq {
            let is_real = position < real;
            input_ids.push(if is_real { next_id() } else { pad });
            attention_mask.push(u32::from(is_real));
        }
    }
    EncodedBatch {
        input_ids,
        attention_mask,
        batch: lengths.len(),
        seq,
    }
}

fn forward_in_pool(model: &Model, batch: &EncodedBatch, threads: usize) -> Vec<f32> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| model.forward_to_vec(batch).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn cpu_path_agrees_with_portable_path_and_ignores_thread_count(
        architecture in 0..ARCHITECTURES.len(),
        seed in 0u64..1_000,
        heads in prop::sample::select(vec![1usize, 2, 4]),
        head_dim in prop::sample::select(vec![8usize, 12, 16]),
        seq in 1usize..40,
        lengths in prop::collection::vec(1usize..40, 1..4),
        id_seed in any::<u64>(),
    ) {
        let mut checkpoint = RandomCheckpoint::tiny(ARCHITECTURES[architecture], seed);
        checkpoint.num_heads = heads;
        checkpoint.hidden_size = heads * head_dim;
        checkpoint.intermediate_size = 2 * heads * head_dim;
        let dir = tempfile::tempdir().unwrap();
        checkpoint.write(dir.path()).unwrap();
        let fast = Model::load_with(dir.path(), &Device::Cpu, Execution::Cpu).unwrap();
        let portable = Model::load_with(dir.path(), &Device::Cpu, Execution::Portable).unwrap();
        let batch = padded_batch(&fast, seq, &lengths, id_seed);

        let one_thread = forward_in_pool(&fast, &batch, 1);
        let reference = portable.forward_to_vec(&batch).unwrap();
        prop_assert_eq!(one_thread.len(), reference.len());
        // candle-transformers' DeBERTa zeroes the attention of padding queries where
        // transformers (and the fast path) spread it evenly: compare DeBERTa on real tokens,
        // every other architecture everywhere.
        let deberta = ARCHITECTURES[architecture] == Architecture::DebertaV2;
        let width = one_thread.len() / batch.attention_mask.len();
        let worst = one_thread
            .chunks(width)
            .zip(reference.chunks(width))
            .zip(&batch.attention_mask)
            .filter(|(_, real)| !deberta || **real != 0)
            .flat_map(|((a, b), _)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
            .fold(0f32, f32::max);
        prop_assert!(worst < 1e-4, "max |cpu - portable| = {worst}");

        // Same inputs, same outputs, bit for bit, whatever the pool size; and a second pass
        // (reusing the first pass's workspace) changes nothing.
        prop_assert_eq!(&forward_in_pool(&fast, &batch, 3), &one_thread);
        prop_assert_eq!(&forward_in_pool(&fast, &batch, 1), &one_thread);
    }
}
