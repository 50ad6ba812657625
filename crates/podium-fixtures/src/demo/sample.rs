//! Trial hyperparameters for the demo's sweeps, drawn from the HPO config's search space with a
//! seeded generator.

use podium_keys::PyValue;

use crate::error::FixturesError;

/// One trial's hyperparameters drawn from an Optuna-style search space (`loguniform`,
/// `uniform`, `int`, `choice`), rounded so they read like real values (3 significant digits).
pub(super) fn sample_params(
    search_space: &PyValue,
    rng: &mut fastrand::Rng,
) -> Result<Vec<(PyValue, PyValue)>, FixturesError> {
    let invalid = |what: String, message: &str| FixturesError::DemoConfig {
        what,
        message: message.to_string(),
    };
    let PyValue::Dict(entries) = search_space else {
        return Err(invalid("search_space".into(), "must be a mapping"));
    };
    let mut params = Vec::new();
    for (name, distribution) in entries {
        let name_text = name.as_str().unwrap_or_default().to_string();
        // The backbone is the sweep's, not a trial's choice.
        if name_text == "backbone" {
            continue;
        }
        let kind = distribution
            .get("type")
            .and_then(PyValue::as_str)
            .ok_or_else(|| invalid(format!("search_space.{name_text}.type"), "is missing"))?;
        let bound = |key: &str| -> Result<f64, FixturesError> {
            // The pipeline writes min/max; low/high are Optuna's names.
            let alias = match key {
                "low" => "min",
                "high" => "max",
                other => other,
            };
            let value = distribution
                .get(key)
                .or_else(|| distribution.get(alias))
                .ok_or_else(|| invalid(format!("search_space.{name_text}.{key}"), "is missing"))?;
            value
                .py_str()?
                .parse::<f64>()
                .map_err(|_| invalid(format!("search_space.{name_text}.{key}"), "is not a number"))
        };
        let value = match kind {
            "loguniform" => {
                let (low, high) = (bound("low")?.ln(), bound("high")?.ln());
                PyValue::Float(round_significant((low + rng.f64() * (high - low)).exp()))
            }
            "uniform" => {
                let (low, high) = (bound("low")?, bound("high")?);
                PyValue::Float(round_significant(low + rng.f64() * (high - low)))
            }
            "int" => {
                let (low, high) = (bound("low")? as i64, bound("high")? as i64);
                PyValue::int(rng.i64(low..=high))
            }
            "choice" | "categorical" => {
                let Some(PyValue::List(values)) = distribution
                    .get("values")
                    .or_else(|| distribution.get("choices"))
                else {
                    return Err(invalid(
                        format!("search_space.{name_text}.values"),
                        "must be a list",
                    ));
                };
                if values.is_empty() {
                    return Err(invalid(
                        format!("search_space.{name_text}.values"),
                        "is empty",
                    ));
                }
                values[rng.usize(..values.len())].clone()
            }
            other => {
                return Err(invalid(
                    format!("search_space.{name_text}.type"),
                    &format!("{other:?} is not one the demo samples"),
                ));
            }
        };
        params.push((name.clone(), value));
    }
    Ok(params)
}

fn round_significant(value: f64) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    // Formatting and parsing back gives the shortest decimal, so Python's repr matches it.
    format!("{value:.2e}").parse().unwrap_or(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn sampled_params_follow_the_search_space() {
        let space = podium_keys::load_yaml_str(
            "lr: {type: loguniform, low: 1.0e-5, high: 5.0e-5}\n\
             bs: {type: choice, values: [8, 16]}\n\
             layers: {type: int, low: 1, high: 3}\n\
             dropout: {type: uniform, low: 0.1, high: 0.3}\n",
        )
        .unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..50 {
            let params = sample_params(&space, &mut rng).unwrap();
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k.as_str() == Some(name))
                    .unwrap()
            };
            let PyValue::Float(lr) = get("lr").1 else {
                panic!()
            };
            assert!((1.0e-5..=5.0e-5).contains(&lr), "{lr}");
            assert!(matches!(get("bs").1, PyValue::Int(_)));
            let PyValue::Float(dropout) = get("dropout").1 else {
                panic!()
            };
            assert!((0.1..=0.3).contains(&dropout), "{dropout}");
        }
        let mut again = fastrand::Rng::with_seed(7);
        let mut first = fastrand::Rng::with_seed(7);
        assert_eq!(
            sample_params(&space, &mut first).unwrap(),
            sample_params(&space, &mut again).unwrap()
        );
    }
}
