//! `config/best_model_selection.yaml`, as the pipeline lays it out: `run`, `objective`,
//! `champion_selection`, `scoring` and `benchmark` — how champions are picked and ranked.
//!
//! Every key is checked: an unknown section, key or value is a load-time error naming the file
//! and the dotted key. The legacy `objective.goal` is still read (with a deprecation warning),
//! and a `top_k_for_stable_score` above `min_trials_per_group` is clamped (with a warning).

use std::fmt;
use std::path::{Path, PathBuf};

use podium_mlflow::Direction;
use podium_run_mode::RunMode;
use serde::{Serialize, Serializer};
use serde_yaml::{Mapping, Value};

use crate::error::ChampionError;
pub use crate::ranking::LatencyAggregation;

mod reader;

use reader::{Reader, expected};

/// The file name under the config directory.
pub const SELECTION_CONFIG_FILE: &str = "best_model_selection.yaml";

/// The benchmark metric the composite ranking uses for latency.
pub const LATENCY_METRIC: &str = "latency_batch_1_ms";

/// The whole selection config.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectionConfig {
    /// `run.mode` of the selection step (None when unset).
    pub run: RunSettings,
    /// The metric trials compete on and its direction.
    pub objective: Objective,
    /// Champion selection rules.
    pub champion_selection: ChampionSelection,
    /// Composite ranking weights.
    pub scoring: Scoring,
    /// What a champion's benchmark must contain to be ranked.
    pub benchmark: BenchmarkRequirements,
}

/// `run.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RunSettings {
    /// `run.mode` (None when absent or null).
    pub mode: Option<RunMode>,
}

/// `objective.*`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Objective {
    /// The MLflow metric (default `macro-f1`).
    pub metric: String,
    /// Which way is better (default maximize).
    #[serde(serialize_with = "serialize_display")]
    pub direction: Direction,
}

/// `champion_selection.*`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChampionSelection {
    /// A group needs at least this many trials with a finite metric (default 3).
    pub min_trials_per_group: usize,
    /// K of the median-of-best-K stable score, already clamped to `min_trials_per_group`.
    pub top_k_for_stable_score: usize,
    /// Only runs whose checkpoint is available can provide the champion checkpoint (default true).
    pub require_artifact_available: bool,
    /// How availability is checked (default tag).
    pub artifact_check_source: ArtifactCheckSource,
    /// Which study-key schema's groups compete (default "auto").
    pub prefer_schema_version: SchemaPreference,
    /// Let v1 and v2 groups compete together (default false; warns).
    pub allow_mixed_schema_groups: bool,
    /// Which run provides the champion checkpoint (default refit).
    pub checkpoint_source: CheckpointRun,
}

/// `champion_selection.artifact_check_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactCheckSource {
    /// The `artifact.available` tag says "true" (case-insensitive).
    Tag,
    /// The checkpoint directory resolves on the local filesystem.
    Disk,
}

/// `champion_selection.prefer_schema_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SchemaPreference {
    /// Only schema "2.0" groups.
    #[serde(rename = "2.0")]
    V2,
    /// Only schema "1.0" groups.
    #[serde(rename = "1.0")]
    V1,
    /// "2.0" groups when any exist, else "1.0".
    #[serde(rename = "auto")]
    Auto,
}

/// `champion_selection.checkpoint_source`: which run's checkpoint the champion uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointRun {
    /// The champion trial's refit run (retrained on all training data).
    Refit,
    /// The champion trial run itself.
    Trial,
}

/// `scoring.*`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scoring {
    /// Weight of the objective metric (default 0.7).
    pub f1_weight: f64,
    /// Weight of latency (default 0.3).
    pub latency_weight: f64,
    /// Rescale the weights to sum to 1 (default true).
    pub normalize_weights: bool,
}

/// `benchmark.*`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkRequirements {
    /// Benchmark metrics a champion needs to be ranked (default `[latency_batch_1_ms]`).
    pub required_metrics: Vec<String>,
    /// How several benchmark runs of one key are aggregated (default latest).
    pub latency_aggregation: LatencyAggregation,
}

impl Default for SelectionConfig {
    fn default() -> Self {
        Self {
            run: RunSettings::default(),
            objective: Objective {
                metric: "macro-f1".to_string(),
                direction: Direction::Maximize,
            },
            champion_selection: ChampionSelection {
                min_trials_per_group: 3,
                top_k_for_stable_score: 3,
                require_artifact_available: true,
                artifact_check_source: ArtifactCheckSource::Tag,
                prefer_schema_version: SchemaPreference::Auto,
                allow_mixed_schema_groups: false,
                checkpoint_source: CheckpointRun::Refit,
            },
            scoring: Scoring {
                f1_weight: 0.7,
                latency_weight: 0.3,
                normalize_weights: true,
            },
            benchmark: BenchmarkRequirements {
                required_metrics: vec![LATENCY_METRIC.to_string()],
                latency_aggregation: LatencyAggregation::Latest,
            },
        }
    }
}

impl fmt::Display for ArtifactCheckSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArtifactCheckSource::Tag => "tag",
            ArtifactCheckSource::Disk => "disk",
        })
    }
}

impl fmt::Display for SchemaPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchemaPreference::V2 => "2.0",
            SchemaPreference::V1 => "1.0",
            SchemaPreference::Auto => "auto",
        })
    }
}

impl fmt::Display for CheckpointRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckpointRun::Refit => "refit",
            CheckpointRun::Trial => "trial",
        })
    }
}

fn serialize_display<T: fmt::Display, S: Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

impl SelectionConfig {
    /// Loads `path`; a missing file gives the defaults.
    ///
    /// ```
    /// use podium_champion::config::{SchemaPreference, SelectionConfig};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("best_model_selection.yaml");
    /// std::fs::write(&path, "champion_selection:\n  prefer_schema_version: auto\n")?;
    /// let config = SelectionConfig::load(&path)?;
    /// assert_eq!(config.champion_selection.prefer_schema_version, SchemaPreference::Auto);
    /// assert_eq!(config.objective.metric, "macro-f1");
    ///
    /// std::fs::write(&path, "champion_selection:\n  checkpoint_source: best\n")?;
    /// let err = SelectionConfig::load(&path).unwrap_err().to_string();
    /// assert!(err.contains("best_model_selection.yaml") && err.contains("champion_selection.checkpoint_source"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load(path: &Path) -> Result<Self, ChampionError> {
        if !path.exists() {
            tracing::info!(file = %path.display(), "no selection config; using the defaults");
            return Ok(Self::default());
        }
        match podium_variants::fs::read_config_text(path) {
            Ok(text) => Self::from_yaml_str(&text, path),
            Err(err) if err.is_not_found() => {
                tracing::info!(file = %path.display(), "no selection config; using the defaults");
                Ok(Self::default())
            }
            Err(podium_variants::fs::ReadError::Io { source, .. }) => Err(ChampionError::Io {
                path: path.to_path_buf(),
                source,
            }),
            Err(refused) => Err(ChampionError::Config {
                file: path.to_path_buf(),
                key: "<document>".into(),
                message: refused.reason(),
            }),
        }
    }

    /// Parses the YAML text of `file` (named in errors).
    pub fn from_yaml_str(text: &str, file: &Path) -> Result<Self, ChampionError> {
        let reader = Reader {
            file: file.to_path_buf(),
        };
        let doc: Value =
            serde_yaml::from_str(text).map_err(|err| reader.error("<document>", err))?;
        let mut config = Self::default();
        let root = match doc {
            Value::Null => return Ok(config),
            Value::Mapping(root) => root,
            other => return Err(reader.error("<document>", expected("a mapping", &other))),
        };
        for (key, value) in &root {
            let section = reader.key_name("", key)?;
            match section.as_str() {
                "run" => {
                    for (key, _) in reader.entries("run", value)? {
                        if key != "run.mode" {
                            return Err(reader.unknown_key(&key, &["mode"]));
                        }
                    }
                    let doc = Value::Mapping(root.clone());
                    config.run.mode = RunMode::from_config_value(&doc)
                        .map_err(|err| reader.error("run.mode", err.to_string()))?;
                }
                "objective" => reader.objective(value, &mut config.objective)?,
                "champion_selection" => {
                    reader.champion_selection(value, &mut config.champion_selection)?;
                }
                "scoring" => reader.scoring(value, &mut config.scoring)?,
                "benchmark" => reader.benchmark(value, &mut config.benchmark)?,
                other => {
                    return Err(reader.error(
                        other,
                        "unknown section; valid sections are run, objective, \
                         champion_selection, scoring, benchmark",
                    ));
                }
            }
        }
        let selection = &mut config.champion_selection;
        if selection.top_k_for_stable_score > selection.min_trials_per_group {
            tracing::warn!(
                file = %file.display(),
                "champion_selection.top_k_for_stable_score ({}) is larger than \
                 min_trials_per_group ({}); clamping it to {}",
                selection.top_k_for_stable_score,
                selection.min_trials_per_group,
                selection.min_trials_per_group
            );
            selection.top_k_for_stable_score = selection.min_trials_per_group;
        }
        let scoring = &config.scoring;
        if scoring.normalize_weights && scoring.f1_weight + scoring.latency_weight <= 0.0 {
            return Err(reader.error(
                "scoring",
                "f1_weight and latency_weight are both 0; nothing to normalise",
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(text: &str) -> Result<SelectionConfig, ChampionError> {
        SelectionConfig::from_yaml_str(text, Path::new("conf/best_model_selection.yaml"))
    }

    fn error_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn repository_config_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config")
            .join(SELECTION_CONFIG_FILE);
        let mut expected = SelectionConfig::default();
        expected.run.mode = Some(RunMode::ReuseIfExists);
        assert_eq!(SelectionConfig::load(&path).unwrap(), expected);
    }

    #[test]
    fn the_pipeline_sections_are_read() {
        let config = parse(
            "run:\n  mode: force_new\nbenchmark:\n  required_metrics: [latency_batch_1_ms]\n  latency_aggregation: median\n",
        )
        .unwrap();
        assert_eq!(config.run.mode, Some(RunMode::ForceNew));
        assert_eq!(
            config.benchmark.latency_aggregation,
            LatencyAggregation::Median
        );
        assert_eq!(
            config.champion_selection.prefer_schema_version,
            SchemaPreference::Auto
        );
        assert!(error_of("run:\n  mode: sometimes\n").contains("run.mode"));
        assert!(error_of("run:\n  mood: x\n").contains("run.mood"));
        assert!(
            error_of("benchmark:\n  latency_aggregation: max\n")
                .contains("benchmark.latency_aggregation")
        );
    }

    #[test]
    fn empty_and_missing_files_give_defaults() {
        assert_eq!(parse("").unwrap(), SelectionConfig::default());
        assert_eq!(parse("objective:\n").unwrap(), SelectionConfig::default());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            SelectionConfig::load(&dir.path().join("absent.yaml")).unwrap(),
            SelectionConfig::default()
        );
    }

    /// Random text and random YAML never panic the loader.
    #[test]
    fn random_text_never_panics() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let pieces = [
            "run:",
            "\n  ",
            "mode: ",
            "force_new",
            "objective:",
            "metric: ",
            "direction: ",
            "champion_selection:",
            "min_trials_per_group: ",
            "1e308",
            "-1",
            "&a [*a]",
            "*a",
            "benchmark:",
            "latency_aggregation: ",
            "{",
            "}",
            "- ",
            ": :",
            "'",
            "18446744073709551616",
        ];
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..12 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            let _ = parse(&text);
        }
    }

    #[test]
    fn legacy_goal_is_accepted() {
        for (goal, direction) in [
            ("min", Direction::Minimize),
            ("minimize", Direction::Minimize),
            ("max", Direction::Maximize),
            ("maximize", Direction::Maximize),
        ] {
            let config = parse(&format!("objective:\n  goal: {goal}\n")).unwrap();
            assert_eq!(config.objective.direction, direction, "{goal}");
        }
        // `direction` itself takes only the full words.
        assert!(error_of("objective:\n  direction: min\n").contains("objective.direction"));
        assert!(error_of("objective:\n  direction: maximize\n  goal: min\n").contains("disagree"));
    }

    #[test]
    fn top_k_is_clamped_to_min_trials() {
        let config =
            parse("champion_selection:\n  min_trials_per_group: 2\n  top_k_for_stable_score: 5\n")
                .unwrap();
        assert_eq!(config.champion_selection.top_k_for_stable_score, 2);
        let config =
            parse("champion_selection:\n  min_trials_per_group: 5\n  top_k_for_stable_score: 2\n")
                .unwrap();
        assert_eq!(config.champion_selection.top_k_for_stable_score, 2);
    }

    #[test]
    fn every_value_is_parsed() {
        let config = parse(
            "objective: {metric: loss, direction: minimize}\n\
             champion_selection:\n  min_trials_per_group: 4\n  top_k_for_stable_score: 2\n  \
             require_artifact_available: false\n  artifact_check_source: disk\n  \
             prefer_schema_version: 1.0\n  allow_mixed_schema_groups: true\n  checkpoint_source: trial\n\
             scoring: {f1_weight: 1, latency_weight: 3, normalize_weights: false}\n\
             benchmark: {required_metrics: [latency_batch_1_ms, latency_batch_8_ms]}\n",
        )
        .unwrap();
        assert_eq!(config.objective.metric, "loss");
        assert_eq!(config.objective.direction, Direction::Minimize);
        let selection = &config.champion_selection;
        assert_eq!(selection.min_trials_per_group, 4);
        assert_eq!(selection.top_k_for_stable_score, 2);
        assert!(!selection.require_artifact_available);
        assert_eq!(selection.artifact_check_source, ArtifactCheckSource::Disk);
        assert_eq!(selection.prefer_schema_version, SchemaPreference::V1);
        assert!(selection.allow_mixed_schema_groups);
        assert_eq!(selection.checkpoint_source, CheckpointRun::Trial);
        assert_eq!(config.scoring.f1_weight, 1.0);
        assert_eq!(config.scoring.latency_weight, 3.0);
        assert!(!config.scoring.normalize_weights);
        assert_eq!(config.benchmark.required_metrics.len(), 2);
    }

    #[test]
    fn unknown_keys_and_values_name_file_and_key() {
        for (text, key) in [
            ("colour: red\n", "colour"),
            ("objective:\n  metrc: f1\n", "objective.metrc"),
            (
                "champion_selection:\n  top_k: 3\n",
                "champion_selection.top_k",
            ),
            (
                "champion_selection:\n  artifact_check_source: cloud\n",
                "champion_selection.artifact_check_source",
            ),
            (
                "champion_selection:\n  prefer_schema_version: \"3.0\"\n",
                "champion_selection.prefer_schema_version",
            ),
            (
                "champion_selection:\n  min_trials_per_group: 0\n",
                "champion_selection.min_trials_per_group",
            ),
            (
                "champion_selection:\n  require_artifact_available: maybe\n",
                "champion_selection.require_artifact_available",
            ),
            ("scoring:\n  f1_weight: -1\n", "scoring.f1_weight"),
            ("scoring:\n  f1_weight: 0\n  latency_weight: 0\n", "scoring"),
            (
                "benchmark:\n  required_metrics: latency\n",
                "benchmark.required_metrics",
            ),
            ("objective:\n  direction: up\n", "objective.direction"),
        ] {
            let message = error_of(text);
            assert!(
                message.contains("conf/best_model_selection.yaml")
                    && message.contains(&format!("`{key}`")),
                "{text:?} → {message}"
            );
        }
        assert!(error_of("champion_selection:\n  checkpoint_source: best\n").contains("\"refit\""));
    }
}
