//! Generators shared by the property and differential tests.
#![allow(dead_code, clippy::unwrap_used)]

use num_bigint::BigInt;
use podium_keys::PyValue;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A small deterministic PRNG (splitmix64) for the YAML text generator.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Characters that stress `ensure_ascii`: controls, DEL, Latin-1, BMP (incl. U+2028, U+FFFF)
/// and astral planes.
pub fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => proptest::char::range('\u{0}', '\u{1f}'),
        1 => Just('\u{7f}'),
        1 => proptest::char::range('\u{80}', '\u{ff}'),
        1 => proptest::char::range('\u{100}', '\u{d7ff}'),
        1 => proptest::char::range('\u{e000}', '\u{ffff}'),
        1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
    ]
}

pub fn tricky_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(tricky_char(), 0..8).prop_map(String::from_iter)
}

/// Floats across every magnitude: raw bit patterns (subnormals, NaN, ±inf), decimal-looking
/// values from 1e-320 to 1e308, and the boundaries of Python's repr.
pub fn any_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        2 => any::<u64>().prop_map(f64::from_bits),
        2 => (-1.0f64..1.0, -320i32..309).prop_map(|(m, e)| m * 10f64.powi(e)),
        1 => (-1_000_000i64..1_000_000, 0u32..8).prop_map(|(m, d)| m as f64 / 10f64.powi(d as i32)),
        1 => proptest::sample::select(vec![
            0.0, -0.0, 1e-4, 0.000_099_999_999_999_999_99, 1e16, 9_999_999_999_999_998.0,
            1e15, 1e17, 5e-324, 2.225_073_858_507_201e-308, f64::MAX, f64::MIN_POSITIVE,
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.1, 1.0, 1e-5, 1.5e-7, 1e22, 1e23,
        ]),
    ]
}

/// Ints from small to far beyond 64 bits.
pub fn any_int() -> impl Strategy<Value = BigInt> {
    prop_oneof![
        3 => any::<i64>().prop_map(BigInt::from),
        2 => (-20i64..20).prop_map(BigInt::from),
        1 => "-?[1-9][0-9]{18,80}".prop_map(|digits| digits.parse::<BigInt>().unwrap()),
    ]
}

pub fn leaf() -> impl Strategy<Value = PyValue> {
    prop_oneof![
        1 => Just(PyValue::None),
        1 => any::<bool>().prop_map(PyValue::Bool),
        3 => any_int().prop_map(PyValue::Int),
        3 => any_float().prop_map(PyValue::Float),
        3 => tricky_string().prop_map(PyValue::Str),
    ]
}

/// Keys Python can order among themselves: numbers (int, float, bool mixed).
pub fn numeric_key() -> impl Strategy<Value = PyValue> {
    prop_oneof![
        3 => (-20i64..20).prop_map(PyValue::int),
        1 => any_int().prop_map(PyValue::Int),
        2 => any_float().prop_map(PyValue::Float),
        1 => any::<bool>().prop_map(PyValue::Bool),
    ]
}

pub fn any_key() -> impl Strategy<Value = PyValue> {
    prop_oneof![
        3 => tricky_string().prop_map(PyValue::Str),
        3 => numeric_key(),
        1 => Just(PyValue::None),
    ]
}

/// Arbitrary nested values. Most dicts have orderable keys (all strings or all numbers); some
/// mix kinds, which Python refuses to sort.
pub fn py_value() -> impl Strategy<Value = PyValue> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            2 => proptest::collection::vec(inner.clone(), 0..6).prop_map(PyValue::List),
            3 => proptest::collection::vec((tricky_string().prop_map(PyValue::Str), inner.clone()), 0..6)
                .prop_map(PyValue::dict_from_pairs),
            2 => proptest::collection::vec((numeric_key(), inner.clone()), 0..6)
                .prop_map(PyValue::dict_from_pairs),
            1 => proptest::collection::vec((any_key(), inner), 0..3)
                .prop_map(PyValue::dict_from_pairs),
        ]
    })
}

/// Values whose every dict Python can sort (no mixed key kinds, no None next to other keys).
pub fn serialisable_value() -> impl Strategy<Value = PyValue> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            2 => proptest::collection::vec(inner.clone(), 0..6).prop_map(PyValue::List),
            3 => proptest::collection::vec((tricky_string().prop_map(PyValue::Str), inner.clone()), 0..6)
                .prop_map(PyValue::dict_from_pairs),
            2 => proptest::collection::vec((numeric_key(), inner), 0..6)
                .prop_map(PyValue::dict_from_pairs),
        ]
    })
}

/// `count` values drawn from a strategy with a fixed seed (the same values on every run).
pub fn sample<S: Strategy>(strategy: S, count: usize, seed: u8) -> Vec<S::Value> {
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect()
}
