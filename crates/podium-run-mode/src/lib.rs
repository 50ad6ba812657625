//! `run.mode` values, the reuse/resume/create decision, and run-mode inheritance.
//!
//! ```
//! use podium_run_mode::{decide, Decision, Existing, RunMode};
//!
//! let mode: RunMode = "resume_if_incomplete".parse()?;
//! assert_eq!(decide(mode, Existing::Complete), Decision::CreateNew);
//! assert_eq!(decide(mode, Existing::Incomplete), Decision::Resume);
//! assert!(mode.load_if_exists());
//! // A benchmark config with `run.mode: null` inherits the HPO config's mode.
//! assert_eq!(RunMode::inherit(None, RunMode::ForceNew), RunMode::ForceNew);
//! # Ok::<(), podium_run_mode::RunModeError>(())
//! ```
//!
//! This crate is the bottom of the podium stack: pure logic and no I/O. `run.mode` is read
//! out of an already-parsed config ([`RunMode::from_config_value`]), so every stage validates
//! it the same way; the file itself is read by podium-variants' one bounded config reader.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The valid `run.mode` spellings, in the order error messages list them.
pub const VALID_RUN_MODES: [&str; 3] = ["reuse_if_exists", "force_new", "resume_if_incomplete"];

/// What to do when a study, training or benchmark may already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Reuse a complete result, resume an incomplete one, create when nothing exists.
    #[default]
    ReuseIfExists,
    /// Always create a new variant.
    ForceNew,
    /// Resume an incomplete result; a complete one is left alone and a new variant created.
    ResumeIfIncomplete,
}

/// What exists already for the thing being run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Existing {
    /// Nothing exists yet.
    Nothing,
    /// Something exists but did not finish.
    Incomplete,
    /// A finished result exists.
    Complete,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Use the existing, complete result as it is.
    Reuse,
    /// Continue the existing, incomplete result.
    Resume,
    /// Create a new one (the next variant when something exists already).
    CreateNew,
}

/// Errors of this crate. Each names the file and key involved where there is one.
#[derive(Debug, thiserror::Error)]
pub enum RunModeError {
    /// A `run.mode` value that is not one of [`VALID_RUN_MODES`].
    #[error("invalid run mode {value:?}{location}: valid values are {valid}", location = location_suffix(.file.as_deref(), .key), valid = VALID_RUN_MODES.join(", "))]
    Invalid {
        /// The text that was found.
        value: String,
        /// The config file, when the value came from one.
        file: Option<PathBuf>,
        /// The dotted key path, e.g. `run.mode`.
        key: String,
    },
}

fn location_suffix(file: Option<&Path>, key: &str) -> String {
    match file {
        Some(file) => format!(" at key `{key}` in {}", file.display()),
        None => format!(" at key `{key}`"),
    }
}

impl RunMode {
    /// The spelling used in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::ReuseIfExists => "reuse_if_exists",
            RunMode::ForceNew => "force_new",
            RunMode::ResumeIfIncomplete => "resume_if_incomplete",
        }
    }

    /// Optuna's `load_if_exists`: true exactly when the decision may resume or reuse.
    pub fn load_if_exists(self) -> bool {
        !matches!(self, RunMode::ForceNew)
    }

    /// A benchmark's own mode, or the HPO mode when the benchmark config says `null`.
    pub fn inherit(own: Option<RunMode>, hpo: RunMode) -> RunMode {
        own.unwrap_or(hpo)
    }

    /// Reads `run.mode` from an already-parsed config document. A missing `run` section or key,
    /// or an explicit `null`, gives `Ok(None)` so callers choose the default or inherit; any value
    /// that is not a valid mode is an error (name the file with [`RunModeError::in_file`]).
    pub fn from_config_value(doc: &serde_yaml::Value) -> Result<Option<RunMode>, RunModeError> {
        let Some(value) = doc.get("run").and_then(|run| run.get("mode")) else {
            return Ok(None);
        };
        match value {
            serde_yaml::Value::Null => Ok(None),
            serde_yaml::Value::String(text) => parse_mode(text, "run.mode").map(Some),
            other => Err(RunModeError::Invalid {
                value: serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                file: None,
                key: "run.mode".into(),
            }),
        }
    }
}

impl RunModeError {
    /// Attaches the config file a value came from.
    pub fn in_file(self, path: &Path) -> Self {
        let RunModeError::Invalid { value, key, .. } = self;
        RunModeError::Invalid {
            value,
            file: Some(path.to_path_buf()),
            key,
        }
    }
}

fn parse_mode(text: &str, key: &str) -> Result<RunMode, RunModeError> {
    match text {
        "reuse_if_exists" => Ok(RunMode::ReuseIfExists),
        "force_new" => Ok(RunMode::ForceNew),
        "resume_if_incomplete" => Ok(RunMode::ResumeIfIncomplete),
        _ => Err(RunModeError::Invalid {
            value: text.to_string(),
            file: None,
            key: key.to_string(),
        }),
    }
}

impl FromStr for RunMode {
    type Err = RunModeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        parse_mode(text, "run.mode")
    }
}

impl fmt::Display for RunMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The decision table: what exists (nothing, incomplete, complete) × run mode → Reuse, Resume or CreateNew.
///
/// | mode | nothing exists | exists, incomplete | exists, complete |
/// |---|---|---|---|
/// | reuse_if_exists | CreateNew | Resume | Reuse |
/// | resume_if_incomplete | CreateNew | Resume | CreateNew (next variant) |
/// | force_new | CreateNew | CreateNew | CreateNew |
pub fn decide(mode: RunMode, existing: Existing) -> Decision {
    match (mode, existing) {
        (RunMode::ForceNew, _) | (_, Existing::Nothing) => Decision::CreateNew,
        (RunMode::ReuseIfExists, Existing::Incomplete)
        | (RunMode::ResumeIfIncomplete, Existing::Incomplete) => Decision::Resume,
        (RunMode::ReuseIfExists, Existing::Complete) => Decision::Reuse,
        (RunMode::ResumeIfIncomplete, Existing::Complete) => Decision::CreateNew,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_table_every_cell() {
        use Decision::*;
        use Existing::*;
        use RunMode::*;
        let table = [
            (ReuseIfExists, Nothing, CreateNew),
            (ReuseIfExists, Incomplete, Resume),
            (ReuseIfExists, Complete, Reuse),
            (ResumeIfIncomplete, Nothing, CreateNew),
            (ResumeIfIncomplete, Incomplete, Resume),
            (ResumeIfIncomplete, Complete, CreateNew),
            (ForceNew, Nothing, CreateNew),
            (ForceNew, Incomplete, CreateNew),
            (ForceNew, Complete, CreateNew),
        ];
        for (mode, existing, expected) in table {
            assert_eq!(decide(mode, existing), expected, "{mode} / {existing:?}");
        }
    }

    #[test]
    fn load_if_exists_is_true_exactly_when_resume_or_reuse_is_possible() {
        for mode in [
            RunMode::ReuseIfExists,
            RunMode::ForceNew,
            RunMode::ResumeIfIncomplete,
        ] {
            let may_resume_or_reuse = [Existing::Nothing, Existing::Incomplete, Existing::Complete]
                .into_iter()
                .any(|existing| decide(mode, existing) != Decision::CreateNew);
            assert_eq!(mode.load_if_exists(), may_resume_or_reuse, "{mode}");
        }
    }

    #[test]
    fn parse_round_trips_and_default() {
        for text in VALID_RUN_MODES {
            let mode: RunMode = text.parse().unwrap_or_default();
            assert_eq!(mode.as_str(), text);
        }
        assert_eq!(RunMode::default(), RunMode::ReuseIfExists);
    }

    #[test]
    fn invalid_mode_lists_valid_values() {
        let err = "reuse".parse::<RunMode>().err().map(|e| e.to_string());
        let message = err.unwrap_or_default();
        assert!(message.contains("\"reuse\""), "{message}");
        for valid in VALID_RUN_MODES {
            assert!(message.contains(valid), "{message}");
        }
    }

    #[test]
    fn inherit_null_takes_hpo_mode() {
        assert_eq!(
            RunMode::inherit(None, RunMode::ResumeIfIncomplete),
            RunMode::ResumeIfIncomplete
        );
        assert_eq!(
            RunMode::inherit(Some(RunMode::ForceNew), RunMode::ReuseIfExists),
            RunMode::ForceNew
        );
    }

    #[test]
    fn config_values_are_read_and_errors_name_file_key_and_values() {
        let doc = |text: &str| serde_yaml::from_str::<serde_yaml::Value>(text).unwrap_or_default();
        let path = Path::new("config/benchmark.yaml");
        let message = match RunMode::from_config_value(&doc("run:\n  mode: always\n")) {
            Err(err) => err.in_file(path).to_string(),
            Ok(mode) => panic!("expected an error, got {mode:?}"),
        };
        assert!(message.contains("benchmark.yaml"), "{message}");
        assert!(message.contains("run.mode"), "{message}");
        assert!(message.contains("resume_if_incomplete"), "{message}");
        for (text, expected) in [
            ("run:\n  mode: null\n", None),
            ("other: 1\n", None),
            ("run:\n  mode: force_new\n", Some(RunMode::ForceNew)),
        ] {
            assert_eq!(RunMode::from_config_value(&doc(text)).ok(), Some(expected));
        }
        assert!(RunMode::from_config_value(&doc("run:\n  mode: 3\n")).is_err());
    }
}
