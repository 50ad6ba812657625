//! candle token-classification runtime, timing harness and idempotent benchmarking.
