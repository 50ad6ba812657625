//! The model runtime: load a Hugging Face token-classification checkpoint directory and run it
//! with candle, on the reference path (candle-transformers' models, any device) or the fast CPU
//! path (see [`Execution`]).
//!
//! Supported `model_type`s: [`SUPPORTED_MODEL_TYPES`]. A checkpoint without `classifier.*`
//! weights (a sentence encoder such as all-MiniLM-L6-v2) runs as the bare encoder, returns its
//! last hidden states, and says so in [`ModelInfo::bare_encoder`] and a log line.

mod config;
mod gemm;
mod kernels;
mod model;
mod profile;
mod weights;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Serialize;

pub use config::{Activation, Architecture, DebertaSettings, ModelConfig, SUPPORTED_MODEL_TYPES};
pub use model::{EncodedBatch, Execution, TokenClassifier};
pub use profile::{ForwardProfile, Stage, StageTime};
pub use weights::WEIGHT_FILES;

use crate::error::{Result, RuntimeError};

/// The tokenizer file of a checkpoint directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// What was loaded, for reports and logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    /// The checkpoint directory.
    pub checkpoint_dir: PathBuf,
    /// `model_type` of config.json.
    pub model_type: String,
    /// The weights file read.
    pub weights_file: PathBuf,
    /// Encoder layers.
    pub num_layers: usize,
    /// Hidden width.
    pub hidden_size: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Labels of the classification head (0 for a bare encoder).
    pub num_labels: usize,
    /// Label names by id from config.json (may be empty).
    pub labels: Vec<String>,
    /// true when the checkpoint has no classifier weights and runs as the bare encoder.
    pub bare_encoder: bool,
    /// tokenizer.json, when the directory has one.
    pub tokenizer_file: Option<PathBuf>,
    /// Device the model runs on (`cpu`, `cuda:0`).
    pub device: String,
    /// The execution path that runs it: `cpu` (the fast CPU path) or `portable` (the reference
    /// path on candle-transformers' models).
    pub execution: Execution,
}

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Model {
    info: ModelInfo,
    network: TokenClassifier,
}

impl Model {
    /// Loads `dir` onto `device` with the default execution path ([`Execution::Auto`]).
    pub fn load(dir: &Path, device: &Device) -> Result<Model> {
        Self::load_with(dir, device, Execution::Auto)
    }

    /// Loads `dir` onto `device`, choosing the execution path.
    pub fn load_with(dir: &Path, device: &Device, execution: Execution) -> Result<Model> {
        if !dir.is_dir() {
            return Err(RuntimeError::MissingFile {
                file: dir.to_path_buf(),
                hint: ": not a checkpoint directory".into(),
            });
        }
        let config_file = dir.join("config.json");
        let config = ModelConfig::from_file(&config_file)?;
        // Before anything is allocated for the layers config.json describes (a billion of
        // them would abort the process): their weights must fit the memory available.
        check_weights_fit(&config, &config_file)?;
        let weights = weights::Weights::load(dir, device)?;
        let weights_file = weights.file().to_path_buf();
        let network = TokenClassifier::build(config, weights, device, execution)?;
        let config = network.config();
        let tokenizer_file = Some(dir.join(TOKENIZER_FILE)).filter(|path| path.is_file());
        let info = ModelInfo {
            checkpoint_dir: dir.to_path_buf(),
            model_type: config.architecture.model_type().to_string(),
            weights_file,
            num_layers: config.num_layers,
            hidden_size: config.hidden_size,
            num_heads: config.num_heads,
            vocab_size: config.vocab_size,
            num_labels: if network.has_classifier() {
                network.output_width()
            } else {
                0
            },
            labels: config.id2label.clone(),
            bare_encoder: !network.has_classifier(),
            tokenizer_file,
            device: device_name(device),
            execution: network.execution(),
        };
        if info.bare_encoder {
            tracing::warn!(
                checkpoint = %dir.display(),
                "no classifier weights (classifier.weight): running the bare {} encoder; outputs are hidden states",
                info.model_type
            );
        } else {
            tracing::info!(
                checkpoint = %dir.display(),
                model_type = %info.model_type,
                labels = info.num_labels,
                execution = %info.execution,
                "loaded token-classification checkpoint"
            );
        }
        Ok(Model { info, network })
    }

    /// What was loaded.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The validated config.json.
    pub fn config(&self) -> &ModelConfig {
        self.network.config()
    }

    /// Logits `[batch, seq, num_labels]`, or hidden states `[batch, seq, hidden]` for a bare
    /// encoder.
    pub fn forward(&self, batch: &EncodedBatch) -> Result<Tensor> {
        self.network.forward(batch)
    }

    /// [`Self::forward`], adding the time each stage took to `profile` (see [`Stage`]).
    pub fn forward_profiled(
        &self,
        batch: &EncodedBatch,
        profile: &mut ForwardProfile,
    ) -> Result<Tensor> {
        self.network.forward_profiled(batch, profile)
    }

    /// [`Self::forward`] copied to the host as a flat row-major vector.
    pub fn forward_to_vec(&self, batch: &EncodedBatch) -> Result<Vec<f32>> {
        let output = self.forward(batch)?;
        output
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|source| RuntimeError::Forward {
                model_type: self.info.model_type.clone(),
                path: self.info.execution.name().into(),
                source: Box::new(source),
            })
    }

    /// Checks that rows of `seq` tokens fit the model's positions (`max_position_embeddings`).
    pub fn check_length(&self, seq: usize) -> Result<()> {
        self.network.check_length(seq)
    }

    /// Checks, before anything is allocated, that batches of `batch` rows × `seq` tokens fit:
    /// `seq` within the model's positions (`max_position_embeddings`), and the estimated
    /// memory of one forward pass ([`TokenClassifier::estimated_pass_bytes`]) within what the
    /// system reports as available (Linux `MemAvailable`; on CUDA and where the figure is
    /// unknown only the length is checked).
    pub fn check_fits(&self, batch: usize, seq: usize) -> Result<()> {
        self.network.check_length(seq)?;
        if !self.network.device().is_cpu() {
            return Ok(());
        }
        let Some(available) = available_memory_bytes() else {
            return Ok(());
        };
        let needed = self.network.estimated_pass_bytes(batch, seq);
        if needed > available {
            return Err(RuntimeError::OutOfMemory {
                model_type: self.info.model_type.clone(),
                path: self.info.execution.name().into(),
                batch,
                seq,
                needed_mib: needed / (1 << 20),
                available_mib: available / (1 << 20),
            });
        }
        Ok(())
    }
}

/// Refuses a model whose weights, as `config` describes them, need more memory than the system
/// reports as available (Linux `MemAvailable`; no check where the figure is unknown).
fn check_weights_fit(config: &ModelConfig, file: &Path) -> Result<()> {
    let Some(available) = available_memory_bytes() else {
        return Ok(());
    };
    let needed = config.estimated_weight_bytes();
    if needed > available {
        return Err(RuntimeError::ModelTooLarge {
            file: file.to_path_buf(),
            model_type: config.architecture.model_type().to_string(),
            layers: config.num_layers,
            hidden: config.hidden_size,
            vocab: config.vocab_size,
            needed_mib: needed / (1 << 20),
            available_mib: available / (1 << 20),
        });
    }
    Ok(())
}

/// Largest `config.json` read (a checkpoint's is a few KiB).
pub const MAX_CONFIG_JSON_BYTES: u64 = 16 << 20;

/// Largest `tokenizer.json` read (xlm-roberta's is about 17 MiB).
pub const MAX_TOKENIZER_BYTES: u64 = 1 << 30;

/// Largest test-data file read (JSON or JSONL records; tokenised whole before timing).
pub const MAX_TEST_DATA_BYTES: u64 = 4 << 30;

/// Reads a file of a checkpoint or an input through podium's one bounded reader: a missing
/// file is [`RuntimeError::MissingFile`] with `hint`; a FIFO, a device or a file over
/// `max_bytes` is refused at once, naming it.
pub(crate) fn read_input_text(file: &Path, max_bytes: u64, hint: &str) -> Result<String> {
    podium_io::read_regular_text(file, max_bytes).map_err(|err| match err {
        err if err.is_not_found() => RuntimeError::MissingFile {
            file: file.to_path_buf(),
            hint: hint.to_string(),
        },
        podium_io::ReadError::Io { source, .. } => RuntimeError::Read {
            file: file.to_path_buf(),
            source,
        },
        refused => RuntimeError::Refused(refused),
    })
}

/// `MemAvailable` of /proc/meminfo in bytes (Linux), else `None`.
fn available_memory_bytes() -> Option<u64> {
    let text = podium_io::read_regular_text(Path::new("/proc/meminfo"), 1 << 20).ok()?;
    let line = text
        .lines()
        .find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line
        .trim_start_matches("MemAvailable:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

/// Parses `cpu` or `cuda:N` (the latter only when built with the `cuda` feature).
pub fn parse_device(spec: &str) -> Result<Device> {
    let invalid = |message: &str| RuntimeError::Device {
        device: spec.to_string(),
        message: message.to_string(),
    };
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let Some(ordinal) = spec.strip_prefix("cuda:") else {
        return Err(invalid("expected cpu or cuda:N"));
    };
    let ordinal: usize = ordinal
        .parse()
        .map_err(|_| invalid("expected cuda:N with N a GPU index"))?;
    cuda_device(ordinal).map_err(|message| invalid(&message))
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> std::result::Result<Device, String> {
    Device::new_cuda(ordinal).map_err(|err| err.to_string())
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_ordinal: usize) -> std::result::Result<Device, String> {
    Err("podium was built without the `cuda` cargo feature; rebuild with --features cuda".into())
}

fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}
