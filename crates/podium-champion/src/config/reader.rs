//! The checked walk over `best_model_selection.yaml`: every section, key and value read with
//! the file and dotted key named in its errors.

use super::*;

/// Walks the YAML document, naming the file and dotted key in every error.
pub(super) struct Reader {
    pub(super) file: PathBuf,
}

pub(super) fn expected(what: &str, found: &Value) -> String {
    let found = match found {
        Value::Null => "null".to_string(),
        Value::Bool(value) => format!("the boolean {value}"),
        Value::Number(value) => format!("the number {value}"),
        Value::String(value) => format!("the string {value:?}"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(tagged) => format!("a value tagged {}", tagged.tag),
    };
    format!("expected {what}, found {found}")
}

impl Reader {
    pub(super) fn error(&self, key: &str, message: impl fmt::Display) -> ChampionError {
        ChampionError::Config {
            file: self.file.clone(),
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    pub(super) fn key_name(&self, parent: &str, key: &Value) -> Result<String, ChampionError> {
        match key {
            Value::String(name) => Ok(name.clone()),
            other => Err(self.error(parent, format!("keys must be strings, found {other:?}"))),
        }
    }

    /// The entries of a section (`null` = empty), each with its dotted key.
    pub(super) fn entries<'a>(
        &self,
        section: &str,
        value: &'a Value,
    ) -> Result<Vec<(String, &'a Value)>, ChampionError> {
        match value {
            Value::Null => Ok(Vec::new()),
            Value::Mapping(map) => map_entries(self, section, map),
            other => Err(self.error(section, expected("a mapping", other))),
        }
    }

    pub(super) fn string(&self, key: &str, value: &Value) -> Result<String, ChampionError> {
        match value {
            Value::String(text) if !text.trim().is_empty() => Ok(text.clone()),
            other => Err(self.error(key, expected("a non-empty string", other))),
        }
    }

    pub(super) fn boolean(&self, key: &str, value: &Value) -> Result<bool, ChampionError> {
        match value {
            Value::Bool(flag) => Ok(*flag),
            other => Err(self.error(key, expected("true or false", other))),
        }
    }

    pub(super) fn positive(&self, key: &str, value: &Value) -> Result<usize, ChampionError> {
        match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n >= 1 => Ok(n),
            _ => Err(self.error(key, expected("an integer >= 1", value))),
        }
    }

    pub(super) fn weight(&self, key: &str, value: &Value) -> Result<f64, ChampionError> {
        match value.as_f64() {
            Some(weight) if weight.is_finite() && weight >= 0.0 => Ok(weight),
            _ => Err(self.error(key, expected("a finite number >= 0", value))),
        }
    }

    pub(super) fn choice<T: Copy>(
        &self,
        key: &str,
        value: &Value,
        choices: &[(&str, T)],
    ) -> Result<T, ChampionError> {
        // YAML readers disagree on whether 2.0 is a number; accept both spellings.
        let text = match value {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => number.as_f64().map(|n| format!("{n:.1}")),
            _ => None,
        };
        let valid = choices
            .iter()
            .map(|(name, _)| format!("{name:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        text.and_then(|text| {
            choices
                .iter()
                .find(|(name, _)| *name == text.trim())
                .map(|(_, choice)| *choice)
        })
        .ok_or_else(|| {
            self.error(
                key,
                format!(
                    "{}; valid values are {valid}",
                    expected("a valid value", value)
                ),
            )
        })
    }

    pub(super) fn objective(
        &self,
        value: &Value,
        objective: &mut Objective,
    ) -> Result<(), ChampionError> {
        let mut direction: Option<(String, &Value)> = None;
        let mut goal: Option<(String, &Value)> = None;
        for (key, value) in self.entries("objective", value)? {
            match key.as_str() {
                "objective.metric" => objective.metric = self.string(&key, value)?,
                "objective.direction" => direction = Some((key, value)),
                "objective.goal" => goal = Some((key, value)),
                _ => return Err(self.unknown_key(&key, &["metric", "direction", "goal"])),
            }
        }
        if goal.is_some() {
            tracing::warn!(
                file = %self.file.display(),
                "objective.goal is deprecated; use objective.direction: maximize|minimize"
            );
        }
        let chosen = match (direction, goal) {
            (Some(direction), Some((goal_key, goal_value))) => {
                let parsed =
                    self.direction(&direction.0, direction.1, &["maximize", "minimize"])?;
                let legacy = self.direction(
                    &goal_key,
                    goal_value,
                    &["max", "min", "maximize", "minimize"],
                )?;
                if parsed != legacy {
                    return Err(self.error(
                        "objective",
                        "direction and the deprecated goal disagree; remove goal",
                    ));
                }
                Some(parsed)
            }
            (Some((key, value)), None) => {
                Some(self.direction(&key, value, &["maximize", "minimize"])?)
            }
            (None, Some((key, value))) => {
                Some(self.direction(&key, value, &["max", "min", "maximize", "minimize"])?)
            }
            (None, None) => None,
        };
        if let Some(direction) = chosen {
            objective.direction = direction;
        }
        Ok(())
    }

    pub(super) fn direction(
        &self,
        key: &str,
        value: &Value,
        spellings: &[&str],
    ) -> Result<Direction, ChampionError> {
        let choices: Vec<(&str, Direction)> = spellings
            .iter()
            .filter_map(|spelling| Direction::parse(spelling).map(|d| (*spelling, d)))
            .collect();
        self.choice(key, value, &choices)
    }

    pub(super) fn champion_selection(
        &self,
        value: &Value,
        selection: &mut ChampionSelection,
    ) -> Result<(), ChampionError> {
        const KEYS: &[&str] = &[
            "min_trials_per_group",
            "top_k_for_stable_score",
            "require_artifact_available",
            "artifact_check_source",
            "prefer_schema_version",
            "allow_mixed_schema_groups",
            "checkpoint_source",
        ];
        for (key, value) in self.entries("champion_selection", value)? {
            let name = key.trim_start_matches("champion_selection.");
            match name {
                "min_trials_per_group" => {
                    selection.min_trials_per_group = self.positive(&key, value)?;
                }
                "top_k_for_stable_score" => {
                    selection.top_k_for_stable_score = self.positive(&key, value)?;
                }
                "require_artifact_available" => {
                    selection.require_artifact_available = self.boolean(&key, value)?;
                }
                "artifact_check_source" => {
                    selection.artifact_check_source = self.choice(
                        &key,
                        value,
                        &[
                            ("tag", ArtifactCheckSource::Tag),
                            ("disk", ArtifactCheckSource::Disk),
                        ],
                    )?;
                }
                "prefer_schema_version" => {
                    selection.prefer_schema_version = self.choice(
                        &key,
                        value,
                        &[
                            ("2.0", SchemaPreference::V2),
                            ("1.0", SchemaPreference::V1),
                            ("auto", SchemaPreference::Auto),
                        ],
                    )?;
                }
                "allow_mixed_schema_groups" => {
                    selection.allow_mixed_schema_groups = self.boolean(&key, value)?;
                }
                "checkpoint_source" => {
                    selection.checkpoint_source = self.choice(
                        &key,
                        value,
                        &[
                            ("refit", CheckpointRun::Refit),
                            ("trial", CheckpointRun::Trial),
                        ],
                    )?;
                }
                _ => return Err(self.unknown_key(&key, KEYS)),
            }
        }
        Ok(())
    }

    pub(super) fn scoring(
        &self,
        value: &Value,
        scoring: &mut Scoring,
    ) -> Result<(), ChampionError> {
        for (key, value) in self.entries("scoring", value)? {
            match key.as_str() {
                "scoring.f1_weight" => scoring.f1_weight = self.weight(&key, value)?,
                "scoring.latency_weight" => scoring.latency_weight = self.weight(&key, value)?,
                "scoring.normalize_weights" => {
                    scoring.normalize_weights = self.boolean(&key, value)?;
                }
                _ => {
                    return Err(self
                        .unknown_key(&key, &["f1_weight", "latency_weight", "normalize_weights"]));
                }
            }
        }
        Ok(())
    }

    pub(super) fn benchmark(
        &self,
        value: &Value,
        benchmark: &mut BenchmarkRequirements,
    ) -> Result<(), ChampionError> {
        for (key, value) in self.entries("benchmark", value)? {
            if key == "benchmark.latency_aggregation" {
                benchmark.latency_aggregation = self.choice(
                    &key,
                    value,
                    &[
                        ("latest", LatencyAggregation::Latest),
                        ("median", LatencyAggregation::Median),
                        ("mean", LatencyAggregation::Mean),
                    ],
                )?;
                continue;
            }
            if key != "benchmark.required_metrics" {
                return Err(self.unknown_key(&key, &["required_metrics", "latency_aggregation"]));
            }
            benchmark.required_metrics = match value {
                Value::Null => Vec::new(),
                Value::Sequence(items) => items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| self.string(&format!("{key}[{index}]"), item))
                    .collect::<Result<_, _>>()?,
                other => return Err(self.error(&key, expected("a list of metric names", other))),
            };
        }
        Ok(())
    }

    pub(super) fn unknown_key(&self, key: &str, valid: &[&str]) -> ChampionError {
        self.error(
            key,
            format!("unknown key; valid keys here are {}", valid.join(", ")),
        )
    }
}

pub(super) fn map_entries<'a>(
    reader: &Reader,
    section: &str,
    map: &'a Mapping,
) -> Result<Vec<(String, &'a Value)>, ChampionError> {
    map.iter()
        .map(|(key, value)| {
            let name = reader.key_name(section, key)?;
            Ok((format!("{section}.{name}"), value))
        })
        .collect()
}
