//! The weights file of a checkpoint: model.safetensors, else pytorch_model.bin.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Result, RuntimeError};

/// File names tried, in order.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// All tensors of a checkpoint, looked up under an optional name prefix.
#[derive(Debug)]
pub(crate) struct Weights {
    file: PathBuf,
    tensors: HashMap<String, Tensor>,
    prefix: String,
    device: Device,
}

impl Weights {
    /// Reads the first weights file of `dir` onto the CPU.
    pub(crate) fn load(dir: &Path, device: &Device) -> Result<Weights> {
        let Some(file) = WEIGHT_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
        else {
            return Err(RuntimeError::MissingFile {
                file: dir.join(WEIGHT_FILES.join(" or ")),
                hint: if dir.join("model.safetensors.index.json").is_file() {
                    ": sharded checkpoints are not supported".into()
                } else {
                    String::new()
                },
            });
        };
        let decode_error = |err: candle_core::Error| RuntimeError::Weights {
            file: file.clone(),
            message: err.to_string(),
        };
        let tensors: HashMap<String, Tensor> = if file.extension().is_some_and(|ext| ext == "bin") {
            candle_core::pickle::read_all(&file)
                .map_err(decode_error)?
                .into_iter()
                .collect()
        } else {
            candle_core::safetensors::load(&file, &Device::Cpu).map_err(decode_error)?
        };
        Ok(Weights {
            file,
            tensors,
            prefix: String::new(),
            device: device.clone(),
        })
    }

    /// The weights file (for messages).
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Looks encoder tensors up under `prefix` when the checkpoint uses it (a
    /// `*ForTokenClassification` save), bare otherwise (a bare `*Model` save such as MiniLM).
    pub(crate) fn use_prefix_if_present(&mut self, prefix: &str, probe: &str) {
        let prefixed = format!("{prefix}{probe}");
        self.prefix = if self.tensors.contains_key(&prefixed) || !self.tensors.contains_key(probe) {
            prefix.to_string()
        } else {
            String::new()
        };
    }

    /// Every tensor as stored (CPU, file dtype), the encoder prefix in use, and the file: what
    /// the reference path builds candle-transformers' models from.
    pub(crate) fn into_parts(self) -> (HashMap<String, Tensor>, String, PathBuf) {
        (self.tensors, self.prefix, self.file)
    }

    /// Whether an unprefixed tensor exists.
    pub(crate) fn has_root(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Whether an encoder tensor exists.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(&format!("{}{name}", self.prefix))
    }

    /// An encoder tensor of the given shape, as f32 on the model's device.
    pub(crate) fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get_root(&format!("{}{name}", self.prefix), shape)
    }

    /// A tensor outside the encoder (the classifier head), as f32 on the model's device.
    pub(crate) fn get_root(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self
            .tensors
            .get(name)
            .ok_or_else(|| RuntimeError::MissingTensor {
                file: self.file.clone(),
                name: name.to_string(),
            })?;
        if tensor.dims() != shape {
            return Err(RuntimeError::TensorShape {
                file: self.file.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
                actual: tensor.dims().to_vec(),
            });
        }
        tensor
            .to_dtype(DType::F32)
            .and_then(|t| t.to_device(&self.device))
            .and_then(|t| t.contiguous())
            .map_err(|err| RuntimeError::Weights {
                file: self.file.clone(),
                message: format!("{name}: {err}"),
            })
    }

    /// The shape of an unprefixed tensor, when present.
    pub(crate) fn root_shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|t| t.dims().to_vec())
    }

    /// A LayerNorm's (weight, bias), accepting the old `gamma`/`beta` names.
    pub(crate) fn layer_norm(&self, name: &str, width: usize) -> Result<(Tensor, Tensor)> {
        if !self.has(&format!("{name}.weight")) && self.has(&format!("{name}.gamma")) {
            return Ok((
                self.get(&format!("{name}.gamma"), &[width])?,
                self.get(&format!("{name}.beta"), &[width])?,
            ));
        }
        Ok((
            self.get(&format!("{name}.weight"), &[width])?,
            self.get(&format!("{name}.bias"), &[width])?,
        ))
    }
}
