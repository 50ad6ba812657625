//! The one error type of podium-fixtures.

use std::path::PathBuf;

use podium_keys::KeysError;
use podium_mlflow::MlflowError;
use podium_variants::VariantsError;

/// Everything that can go wrong while generating a fixture: each variant names the file, key
/// or step involved; [`FixturesError::Context`] says which step a lower error belongs to.
#[derive(Debug, thiserror::Error)]
pub enum FixturesError {
    /// Loading a config or computing a key.
    #[error(transparent)]
    Keys(#[from] KeysError),
    /// Writing the demo's tracking store.
    #[error(transparent)]
    Mlflow(#[from] MlflowError),
    /// Reading the layout or configs, or writing a file.
    #[error(transparent)]
    Variants(#[from] VariantsError),
    /// A file-system operation other than an atomic write.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted (`create`, `remove`, `rename`…).
        action: &'static str,
        /// The path acted on.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A random checkpoint whose shape cannot be a model.
    #[error("random checkpoint: {key} {message}")]
    InvalidCheckpoint {
        /// The offending setting.
        key: &'static str,
        /// What is wrong with it.
        message: &'static str,
    },
    /// Serialising a generated file (config.json, model.safetensors).
    #[error("cannot serialise {file}: {message}")]
    Serialise {
        /// The file being generated.
        file: PathBuf,
        /// The serialiser's message.
        message: String,
    },
    /// A config the demo adapts or samples from does not have the shape it needs.
    #[error("{what}: {message}")]
    DemoConfig {
        /// The config file (relative to the config directory) or key.
        what: String,
        /// What does not match.
        message: String,
    },
    /// A lower error, with the step it happened in.
    #[error("{context}")]
    Context {
        /// The step (`writing the refit checkpoint …`).
        context: String,
        /// What went wrong in it.
        #[source]
        source: Box<FixturesError>,
    },
}

/// [`FixturesError::Context`] for any error this crate wraps.
pub(crate) trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, FixturesError>;
}

impl<T, E: Into<FixturesError>> Context<T> for Result<T, E> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, FixturesError> {
        self.map_err(|err| FixturesError::Context {
            context: context(),
            source: Box::new(err.into()),
        })
    }
}
