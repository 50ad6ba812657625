//! Reads an Optuna RDB storage file (`study.db`) directly, without Python.
//!
//! Only what best-trial retrieval needs: each study's direction (`study_directions`), its COMPLETE
//! trials with their objective value (`trial_values`, where ±inf is stored as a NULL `value` plus
//! `value_type` `INF_POS`/`INF_NEG`), their parameters decoded from `distribution_json` as Optuna's
//! `to_external_repr` does (a categorical `param_value` is the index into `choices`), and their
//! constraint values (Optuna's `study.best_trial` skips an infeasible best trial).
//!
//! The best trial is chosen exactly like Optuna's `study.best_trial`: the largest (maximize) or
//! smallest (minimize) value where `-inf < finite < +inf`; ties go to the smaller trial number.
//! The file is opened read-only and never created or migrated.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::Value;

use crate::best_trial::{Direction, is_better};
use crate::error::ChampionError;

/// Optuna's trial state for trials that finished with a value.
const COMPLETE: &str = "COMPLETE";
/// Optuna's system attribute holding a trial's constraint values (old list form), and the prefix
/// of the newer one-key-per-constraint form (`constraints:<name>`).
const CONSTRAINTS_KEY: &str = "constraints";

/// One single-objective study of an Optuna storage file.
#[derive(Debug, Clone, PartialEq)]
pub struct OptunaStudy {
    /// Optuna's `study_name`.
    pub name: String,
    /// The study's direction (from `study_directions`).
    pub direction: Direction,
    /// COMPLETE trials with a value, ordered by trial number.
    pub complete_trials: Vec<OptunaTrial>,
}

/// A COMPLETE trial of an Optuna study.
#[derive(Debug, Clone, PartialEq)]
pub struct OptunaTrial {
    /// Optuna's per-study trial number.
    pub number: i64,
    /// The objective value (±inf allowed, as in Optuna).
    pub value: f64,
    /// Parameters in their external representation (ints, floats, categorical choices).
    pub params: BTreeMap<String, Value>,
    /// Constraint values; the trial is feasible when every value is ≤ 0.
    pub constraints: Vec<f64>,
}

impl OptunaStudy {
    /// The trial Optuna's `study.best_trial` returns, or `None` when no trial is COMPLETE (or,
    /// in a constrained study, none is feasible).
    pub fn best_trial(&self) -> Option<&OptunaTrial> {
        let best = best_by(self.direction, self.complete_trials.iter())?;
        if best.constraints.iter().any(|c| *c > 0.0) {
            // Optuna's rule: an infeasible best falls back to the best feasible trial.
            return best_by(
                self.direction,
                self.complete_trials
                    .iter()
                    .filter(|trial| trial.constraints.iter().all(|c| *c <= 0.0)),
            );
        }
        Some(best)
    }
}

fn best_by<'a>(
    direction: Direction,
    trials: impl Iterator<Item = &'a OptunaTrial>,
) -> Option<&'a OptunaTrial> {
    let mut best: Option<&OptunaTrial> = None;
    for trial in trials {
        let replaces = best.is_none_or(|current| {
            is_better(direction, trial.value, current.value)
                || (trial.value == current.value && trial.number < current.number)
        });
        if replaces {
            best = Some(trial);
        }
    }
    best
}

/// Reads every study of an Optuna SQLite storage file. Multi-objective studies (which have no
/// single best trial) are returned in the second list by name so callers can report them.
pub fn read_studies(path: &Path) -> Result<(Vec<OptunaStudy>, Vec<String>), ChampionError> {
    if !path.is_file() {
        return Err(ChampionError::OptunaStorage {
            path: path.to_path_buf(),
            message: "no such file".into(),
        });
    }
    let sql_error = |err: rusqlite::Error| ChampionError::OptunaStorage {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_error)?;
    let mut studies = Vec::new();
    let mut multi_objective = Vec::new();
    let mut statement = connection
        .prepare("SELECT study_id, study_name FROM studies ORDER BY study_id")
        .map_err(sql_error)?;
    let rows = statement
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    for (study_id, name) in rows {
        let directions = read_directions(&connection, path, study_id)?;
        match directions.as_slice() {
            [direction] => studies.push(OptunaStudy {
                complete_trials: read_complete_trials(&connection, path, study_id)?,
                name,
                direction: *direction,
            }),
            _ => multi_objective.push(name),
        }
    }
    Ok((studies, multi_objective))
}

fn read_directions(
    connection: &Connection,
    path: &Path,
    study_id: i64,
) -> Result<Vec<Direction>, ChampionError> {
    let sql_error = |err: rusqlite::Error| ChampionError::OptunaStorage {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let mut statement = connection
        .prepare("SELECT direction FROM study_directions WHERE study_id = ?1 ORDER BY objective")
        .map_err(sql_error)?;
    let names = statement
        .query_map([study_id], |row| row.get::<_, String>(0))
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    names
        .iter()
        .map(|name| match name.as_str() {
            "MAXIMIZE" => Ok(Direction::Maximize),
            "MINIMIZE" => Ok(Direction::Minimize),
            other => Err(ChampionError::OptunaStorage {
                path: path.to_path_buf(),
                message: format!(
                    "study {study_id} has direction {other:?} (expected MAXIMIZE or MINIMIZE)"
                ),
            }),
        })
        .collect()
}

fn read_complete_trials(
    connection: &Connection,
    path: &Path,
    study_id: i64,
) -> Result<Vec<OptunaTrial>, ChampionError> {
    let sql_error = |err: rusqlite::Error| ChampionError::OptunaStorage {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let mut statement = connection
        .prepare(
            "SELECT t.trial_id, t.number, v.value, v.value_type \
             FROM trials t JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0 \
             WHERE t.study_id = ?1 AND t.state = ?2 ORDER BY t.number, t.trial_id",
        )
        .map_err(sql_error)?;
    let rows = statement
        .query_map(rusqlite::params![study_id, COMPLETE], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<f64>>(2)?,
                row.get::<_, String>(3)?,
            ))
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    let mut trials = Vec::with_capacity(rows.len());
    for (trial_id, number, stored, value_type) in rows {
        let value = match (value_type.as_str(), stored) {
            ("INF_POS", _) => f64::INFINITY,
            ("INF_NEG", _) => f64::NEG_INFINITY,
            ("FINITE", Some(value)) => value,
            (kind, stored) => {
                return Err(ChampionError::OptunaStorage {
                    path: path.to_path_buf(),
                    message: format!(
                        "trial {number}: value {stored:?} with value_type {kind:?} is not a valid stored objective value"
                    ),
                });
            }
        };
        trials.push(OptunaTrial {
            number,
            value,
            params: read_params(connection, path, trial_id, number)?,
            constraints: read_constraints(connection, path, trial_id, number)?,
        });
    }
    Ok(trials)
}

fn read_params(
    connection: &Connection,
    path: &Path,
    trial_id: i64,
    number: i64,
) -> Result<BTreeMap<String, Value>, ChampionError> {
    let sql_error = |err: rusqlite::Error| ChampionError::OptunaStorage {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let mut statement = connection
        .prepare(
            "SELECT param_name, param_value, distribution_json FROM trial_params WHERE trial_id = ?1",
        )
        .map_err(sql_error)?;
    let rows = statement
        .query_map([trial_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, f64>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    rows.into_iter()
        .map(|(name, internal, distribution)| {
            let external = external_repr(internal, &distribution).map_err(|message| {
                ChampionError::OptunaStorage {
                    path: path.to_path_buf(),
                    message: format!("trial {number}, param {name:?}: {message}"),
                }
            })?;
            Ok((name, external))
        })
        .collect()
}

/// Optuna's `distribution.to_external_repr(param_value)` for a `distribution_json`, covering the
/// current classes, the deprecated ones older studies hold, and the abbreviated `type` form.
pub fn external_repr(internal: f64, distribution_json: &str) -> Result<Value, String> {
    let distribution: Value = serde_json::from_str(distribution_json)
        .map_err(|err| format!("distribution_json is not JSON ({err}): {distribution_json}"))?;
    let kind = distribution
        .get("name")
        .or_else(|| distribution.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("distribution_json has no name: {distribution_json}"))?;
    let choices = || {
        distribution
            .get("attributes")
            .unwrap_or(&distribution)
            .get("choices")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("categorical distribution without choices: {distribution_json}"))
    };
    match kind {
        "CategoricalDistribution" | "categorical" => {
            let choices = choices()?;
            // Optuna stores the index as a float and converts with int() (truncation).
            let index = internal.trunc();
            if !(index >= 0.0 && index < choices.len() as f64) {
                return Err(format!(
                    "categorical index {internal} outside the {} choices",
                    choices.len()
                ));
            }
            Ok(choices[index as usize].clone())
        }
        "IntDistribution" | "IntUniformDistribution" | "IntLogUniformDistribution" | "int" => {
            if !internal.is_finite() {
                return Err(format!("integer parameter stored as {internal}"));
            }
            Ok(Value::from(internal.trunc() as i64))
        }
        "FloatDistribution"
        | "UniformDistribution"
        | "LogUniformDistribution"
        | "DiscreteUniformDistribution"
        | "float" => serde_json::Number::from_f64(internal)
            .map(Value::Number)
            .ok_or_else(|| format!("float parameter stored as {internal}")),
        other => Err(format!("unknown distribution class {other:?}")),
    }
}

fn read_constraints(
    connection: &Connection,
    path: &Path,
    trial_id: i64,
    number: i64,
) -> Result<Vec<f64>, ChampionError> {
    let sql_error = |err: rusqlite::Error| ChampionError::OptunaStorage {
        path: path.to_path_buf(),
        message: err.to_string(),
    };
    let has_table: Option<String> = connection
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'trial_system_attributes'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    if has_table.is_none() {
        return Ok(Vec::new());
    }
    let mut statement = connection
        .prepare(
            "SELECT key, value_json FROM trial_system_attributes \
             WHERE trial_id = ?1 AND (key = ?2 OR key LIKE ?3) ORDER BY key",
        )
        .map_err(sql_error)?;
    let rows = statement
        .query_map(
            rusqlite::params![trial_id, CONSTRAINTS_KEY, format!("{CONSTRAINTS_KEY}:%")],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    let mut constraints = Vec::new();
    for (key, json) in rows {
        let bad = |message: String| ChampionError::OptunaStorage {
            path: path.to_path_buf(),
            message: format!("trial {number}, system attribute {key:?}: {message}"),
        };
        let value = parse_python_json(&json).map_err(bad)?;
        match value {
            Value::Array(items) => {
                for item in items {
                    constraints.push(
                        json_number(&item).ok_or_else(|| bad(format!("{item} is not a number")))?,
                    );
                }
            }
            Value::Null => {}
            other => constraints
                .push(json_number(&other).ok_or_else(|| bad(format!("{other} is not a number")))?),
        }
    }
    Ok(constraints)
}

fn json_number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => match text.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Parses JSON written by Python's `json.dumps`, whose default `allow_nan=True` writes the bare
/// tokens `NaN`, `Infinity` and `-Infinity` that strict JSON parsers reject. They come back as the
/// strings `"NaN"`, `"Infinity"` and `"-Infinity"`.
pub fn parse_python_json(text: &str) -> Result<Value, String> {
    match serde_json::from_str(text) {
        Ok(value) => Ok(value),
        Err(strict_error) => {
            let quoted = quote_non_finite_tokens(text);
            serde_json::from_str(&quoted).map_err(|_| strict_error.to_string())
        }
    }
}

/// Rewrites bare `NaN`/`Infinity`/`-Infinity` tokens (outside strings) as JSON strings.
fn quote_non_finite_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        if in_string {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
            rest = &rest[ch.len_utf8()..];
            continue;
        }
        if ch == '"' {
            in_string = true;
            out.push(ch);
            rest = &rest[1..];
            continue;
        }
        if let Some(token) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|token| rest.starts_with(token))
        {
            out.push('"');
            out.push_str(token);
            out.push('"');
            rest = &rest[token.len()..];
            continue;
        }
        out.push(ch);
        rest = &rest[ch.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(number: i64, value: f64, constraints: Vec<f64>) -> OptunaTrial {
        OptunaTrial {
            number,
            value,
            params: BTreeMap::new(),
            constraints,
        }
    }

    #[test]
    fn best_follows_direction_infinities_and_ties() {
        let mut study = OptunaStudy {
            name: "s".into(),
            direction: Direction::Maximize,
            complete_trials: vec![
                trial(0, 0.5, vec![]),
                trial(1, 0.9, vec![]),
                trial(2, 0.9, vec![]),
                trial(3, f64::NEG_INFINITY, vec![]),
            ],
        };
        assert_eq!(study.best_trial().map(|t| t.number), Some(1));
        study.direction = Direction::Minimize;
        assert_eq!(study.best_trial().map(|t| t.number), Some(3));
        study.complete_trials.push(trial(4, f64::INFINITY, vec![]));
        study.direction = Direction::Maximize;
        assert_eq!(study.best_trial().map(|t| t.number), Some(4));
    }

    #[test]
    fn infeasible_best_falls_back_to_best_feasible() {
        let study = OptunaStudy {
            name: "s".into(),
            direction: Direction::Maximize,
            complete_trials: vec![
                trial(0, 0.5, vec![0.0]),
                trial(1, 0.9, vec![1.0]),
                trial(2, 0.7, vec![-1.0, 0.0]),
            ],
        };
        assert_eq!(study.best_trial().map(|t| t.number), Some(2));
    }

    #[test]
    fn external_repr_decodes_each_distribution() -> Result<(), String> {
        let categorical = r#"{"name": "CategoricalDistribution", "attributes": {"choices": [8, "x", null, 2.5, true]}}"#;
        assert_eq!(external_repr(1.0, categorical)?, Value::from("x"));
        assert_eq!(external_repr(2.0, categorical)?, Value::Null);
        assert_eq!(external_repr(4.0, categorical)?, Value::Bool(true));
        assert!(external_repr(5.0, categorical).is_err());
        let int = r#"{"name": "IntDistribution", "attributes": {"log": true, "step": 1, "low": 2, "high": 64}}"#;
        assert_eq!(external_repr(20.0, int)?, Value::from(20));
        let float = r#"{"name": "FloatDistribution", "attributes": {"step": null, "low": 1e-05, "high": 0.1, "log": true}}"#;
        assert_eq!(external_repr(0.001, float)?, Value::from(0.001));
        assert_eq!(
            external_repr(
                3.0,
                r#"{"name": "IntUniformDistribution", "attributes": {"low": 1, "high": 5}}"#
            )?,
            Value::from(3)
        );
        assert!(external_repr(1.0, r#"{"name": "Mystery", "attributes": {}}"#).is_err());
        Ok(())
    }

    #[test]
    fn python_json_non_finite_tokens() -> Result<(), String> {
        let value =
            parse_python_json(r#"{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN text"}"#)?;
        assert_eq!(value["a"], Value::from("NaN"));
        assert_eq!(value["b"][1], Value::from("-Infinity"));
        assert_eq!(value["c"], Value::from("NaN text"));
        assert!(parse_python_json("{bad").is_err());
        Ok(())
    }
}
