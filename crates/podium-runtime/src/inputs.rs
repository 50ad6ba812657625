//! Model inputs: deterministic synthetic ids, or test-data records tokenised with the
//! checkpoint's tokenizer.json (padding/truncation to `max_length`, timed on its own).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokenizers::{Tokenizer, TruncationParams};

use crate::error::{Result, RuntimeError};
use crate::runtime::{EncodedBatch, ModelConfig};

/// Seed of the synthetic inputs when none is given: fixed so every run measures the same ids.
pub const DEFAULT_SEED: u64 = 0x706f_6469_756d;

/// One test-data record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Raw text, tokenised as a single sequence.
    Text(String),
    /// Words already split (NER data): tokenised as a pre-tokenised sequence.
    Tokens(Vec<String>),
}

/// One tokenised record, already padded/truncated to `max_length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRow {
    /// Token ids.
    pub ids: Vec<u32>,
    /// 1 for tokens, 0 for padding.
    pub mask: Vec<u32>,
}

/// How long tokenisation took (outside the timed forward passes).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenizationStats {
    /// Records tokenised.
    pub records: usize,
    /// Total wall time in milliseconds.
    pub total_ms: f64,
    /// Mean per record in milliseconds.
    pub per_record_ms: f64,
    /// Records longer than `max_length` tokens that were truncated.
    pub truncated: usize,
}

/// Tokenised test data, reusable for every batch size.
#[derive(Debug, Clone)]
pub struct TokenizedData {
    rows: Vec<EncodedRow>,
    seq: usize,
    /// Timing of the tokenisation.
    pub stats: TokenizationStats,
}

impl TokenizedData {
    /// A batch of `batch_size` rows, cycling through the records in order when there are fewer.
    pub fn batch(&self, batch_size: usize) -> EncodedBatch {
        let mut input_ids = Vec::with_capacity(batch_size * self.seq);
        let mut attention_mask = Vec::with_capacity(batch_size * self.seq);
        for row in self.rows.iter().cycle().take(batch_size) {
            input_ids.extend_from_slice(&row.ids);
            attention_mask.extend_from_slice(&row.mask);
        }
        EncodedBatch {
            input_ids,
            attention_mask,
            batch: batch_size,
            seq: self.seq,
        }
    }

    /// The tokenised rows.
    pub fn rows(&self) -> &[EncodedRow] {
        &self.rows
    }
}

/// The batches one benchmark times: synthetic ids, or test data tokenised once up front.
#[derive(Debug, Clone)]
pub enum BatchSource {
    /// [`synthetic_batch`] rows of the model's vocabulary.
    Synthetic {
        /// The model the ids are drawn for.
        config: ModelConfig,
        /// Tokens per row.
        max_length: usize,
        /// The id stream's seed.
        seed: u64,
    },
    /// Tokenised test records, cycled to fill each batch.
    TestData(TokenizedData),
}

impl BatchSource {
    /// Synthetic ids with [`DEFAULT_SEED`].
    pub fn synthetic(config: &ModelConfig, max_length: usize) -> BatchSource {
        BatchSource::Synthetic {
            config: config.clone(),
            max_length,
            seed: DEFAULT_SEED,
        }
    }

    /// Reads `records_file` and tokenises it with `checkpoint_dir`'s tokenizer.json.
    pub fn test_data(
        config: &ModelConfig,
        checkpoint_dir: &Path,
        records_file: &Path,
        max_length: usize,
    ) -> Result<BatchSource> {
        let records = load_records(records_file)?;
        let tokenizer_file = checkpoint_dir.join(crate::runtime::TOKENIZER_FILE);
        let tokenizer = load_tokenizer(&tokenizer_file)?;
        let data = tokenize(
            &tokenizer,
            &tokenizer_file,
            &records,
            max_length,
            config.pad_token_id,
        )?;
        Ok(BatchSource::TestData(data))
    }

    /// A batch of `batch_size` rows.
    pub fn batch(&self, batch_size: usize) -> EncodedBatch {
        match self {
            BatchSource::Synthetic {
                config,
                max_length,
                seed,
            } => synthetic_batch(config, batch_size, *max_length, *seed),
            BatchSource::TestData(data) => data.batch(batch_size),
        }
    }

    /// `synthetic` or `test_data`, as reports name the input.
    pub fn label(&self) -> &'static str {
        match self {
            BatchSource::Synthetic { .. } => "synthetic",
            BatchSource::TestData(_) => "test_data",
        }
    }

    /// Tokens per row.
    pub fn max_length(&self) -> usize {
        match self {
            BatchSource::Synthetic { max_length, .. } => *max_length,
            BatchSource::TestData(data) => data.seq,
        }
    }

    /// How long tokenisation took (test data only).
    pub fn tokenization(&self) -> Option<&TokenizationStats> {
        match self {
            BatchSource::Synthetic { .. } => None,
            BatchSource::TestData(data) => Some(&data.stats),
        }
    }
}

/// `batch_size` rows of `max_length` random ids, every token real (mask all 1).
///
/// Ids are drawn uniformly from `[first_id, vocab_size)` skipping the padding id, with a
/// SplitMix64 stream of `seed`: the same seed gives the same ids on every platform and version.
pub fn synthetic_batch(
    config: &ModelConfig,
    batch_size: usize,
    max_length: usize,
    seed: u64,
) -> EncodedBatch {
    // Low ids are special tokens in every supported vocabulary; start above them when the
    // vocabulary is large enough to matter.
    let first_id: u64 = if config.vocab_size > 1000 { 1000 } else { 0 };
    let span = (config.vocab_size as u64).saturating_sub(first_id).max(1);
    let mut state = seed;
    let input_ids = (0..batch_size * max_length)
        .map(|_| {
            loop {
                let id = (first_id + splitmix64(&mut state) % span) as u32;
                if id != config.pad_token_id || span == 1 {
                    break id;
                }
            }
        })
        .collect();
    EncodedBatch {
        input_ids,
        attention_mask: vec![1; batch_size * max_length],
        batch: batch_size,
        seq: max_length,
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Reads test records: a JSON array, or JSON Lines (one object per line), of objects with
/// `text` (a string) or `tokens` (a list of strings).
pub fn load_records(file: &Path) -> Result<Vec<Record>> {
    let text = crate::runtime::read_input_text(file, crate::runtime::MAX_TEST_DATA_BYTES, "")?;
    let json_error = |message: String| RuntimeError::Json {
        file: file.to_path_buf(),
        message,
    };
    let values: Vec<(usize, Value)> = if text.trim_start().starts_with('[') {
        let Value::Array(items) =
            serde_json::from_str(&text).map_err(|err| json_error(err.to_string()))?
        else {
            return Err(json_error("expected an array of records".into()));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i + 1, v))
            .collect()
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(index, line)| {
                serde_json::from_str(line)
                    .map(|value| (index + 1, value))
                    .map_err(|err| json_error(format!("line {}: {err}", index + 1)))
            })
            .collect::<Result<_>>()?
    };
    let records: Vec<Record> = values
        .into_iter()
        .map(|(position, value)| record_from_value(file, position, value))
        .collect::<Result<_>>()?;
    if records.is_empty() {
        return Err(RuntimeError::TestData {
            file: file.to_path_buf(),
            message: "no records".into(),
        });
    }
    Ok(records)
}

fn record_from_value(file: &Path, position: usize, value: Value) -> Result<Record> {
    let invalid = |message: &str| RuntimeError::TestData {
        file: file.to_path_buf(),
        message: format!("record {position}: {message}"),
    };
    let Value::Object(mut fields) = value else {
        return Err(invalid("expected an object with `text` or `tokens`"));
    };
    if let Some(tokens) = fields.remove("tokens") {
        let Value::Array(items) = tokens else {
            return Err(invalid("`tokens` must be a list of strings"));
        };
        let words = items
            .into_iter()
            .map(|item| match item {
                Value::String(word) => Ok(word),
                _ => Err(invalid("`tokens` must be a list of strings")),
            })
            .collect::<Result<Vec<_>>>()?;
        return Ok(Record::Tokens(words));
    }
    match fields.remove("text") {
        Some(Value::String(text)) => Ok(Record::Text(text)),
        Some(_) => Err(invalid("`text` must be a string")),
        None => Err(invalid("has neither `text` nor `tokens`")),
    }
}

/// Loads tokenizer.json with no padding of its own: padding is applied here, to `max_length`.
pub fn load_tokenizer(file: &Path) -> Result<Tokenizer> {
    let text = crate::runtime::read_input_text(
        file,
        crate::runtime::MAX_TOKENIZER_BYTES,
        ": text inputs need the checkpoint's tokenizer",
    )?;
    let mut tokenizer = Tokenizer::from_bytes(text).map_err(|err| RuntimeError::Tokenizer {
        file: file.to_path_buf(),
        message: err.to_string(),
    })?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// Tokenises `records` to `max_length` ids each (special tokens added, truncated, padded with
/// `pad_id`), timing the whole pass.
pub fn tokenize(
    tokenizer: &Tokenizer,
    tokenizer_file: &Path,
    records: &[Record],
    max_length: usize,
    pad_id: u32,
) -> Result<TokenizedData> {
    let tokenizer_error = |message: String| RuntimeError::Tokenizer {
        file: PathBuf::from(tokenizer_file),
        message,
    };
    let mut tokenizer = tokenizer.clone();
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length,
            ..TruncationParams::default()
        }))
        .map_err(|err| tokenizer_error(err.to_string()))?;
    let started = Instant::now();
    let mut rows = Vec::with_capacity(records.len());
    let mut truncated = 0;
    for record in records {
        let encoding = match record {
            Record::Text(text) => tokenizer.encode(text.as_str(), true),
            Record::Tokens(words) => {
                tokenizer.encode(words.iter().map(String::as_str).collect::<Vec<_>>(), true)
            }
        }
        .map_err(|err| tokenizer_error(err.to_string()))?;
        if !encoding.get_overflowing().is_empty() {
            truncated += 1;
        }
        let mut ids = encoding.get_ids().to_vec();
        let mut mask = encoding.get_attention_mask().to_vec();
        ids.resize(max_length, pad_id);
        mask.resize(max_length, 0);
        rows.push(EncodedRow { ids, mask });
    }
    let elapsed: Duration = started.elapsed();
    let total_ms = elapsed.as_secs_f64() * 1e3;
    Ok(TokenizedData {
        seq: max_length,
        stats: TokenizationStats {
            records: rows.len(),
            total_ms,
            per_record_ms: total_ms / rows.len().max(1) as f64,
            truncated,
        },
        rows,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::runtime::{Activation, Architecture};

    fn config(vocab_size: usize) -> ModelConfig {
        ModelConfig {
            architecture: Architecture::Bert,
            vocab_size,
            hidden_size: 8,
            num_layers: 1,
            num_heads: 2,
            intermediate_size: 16,
            activation: Activation::Gelu,
            layer_norm_eps: 1e-12,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            pad_token_id: 0,
            id2label: vec![],
            deberta: None,
        }
    }

    #[test]
    fn synthetic_inputs_are_deterministic_and_in_range() {
        let a = synthetic_batch(&config(30522), 2, 16, 7);
        let b = synthetic_batch(&config(30522), 2, 16, 7);
        let c = synthetic_batch(&config(30522), 2, 16, 8);
        assert_eq!(a, b);
        assert_ne!(a.input_ids, c.input_ids);
        assert_eq!(a.input_ids.len(), 32);
        assert!(a.input_ids.iter().all(|id| (1000..30522).contains(id)));
        let small = synthetic_batch(&config(50), 1, 200, 1);
        assert!(small.input_ids.iter().all(|id| *id != 0 && *id < 50));
    }

    #[test]
    fn records_load_from_jsonl_and_json_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("data.jsonl");
        std::fs::write(
            &jsonl,
            "{\"text\": \"hello world\"}\n\n{\"tokens\": [\"a\", \"b\"]}\n",
        )
        .unwrap();
        assert_eq!(
            load_records(&jsonl).unwrap(),
            vec![
                Record::Text("hello world".into()),
                Record::Tokens(vec!["a".into(), "b".into()])
            ]
        );
        let array = dir.path().join("data.json");
        std::fs::write(&array, r#"[{"text": "x"}, {"label": 3}]"#).unwrap();
        let err = load_records(&array).unwrap_err().to_string();
        assert!(
            err.contains("data.json") && err.contains("record 2"),
            "{err}"
        );
        let broken = dir.path().join("broken.jsonl");
        std::fs::write(&broken, "{\"text\": \"ok\"}\n{not json\n").unwrap();
        let err = load_records(&broken).unwrap_err().to_string();
        assert!(
            err.contains("broken.jsonl") && err.contains("line 2"),
            "{err}"
        );
    }
}
