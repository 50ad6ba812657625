//! Which platform podium runs on: the `{environment}` folder of the output layout.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::VariantsError;
use crate::layout::check_component;

/// The variable that overrides platform detection.
pub const ENVIRONMENT_OVERRIDE: &str = "PODIUM_ENVIRONMENT";

/// The platform a run happens on. Outputs of different platforms live side by side under
/// `outputs/{process}/{environment}/…`, so a project synced between machines never mixes them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Environment {
    /// A workstation or server: none of the hosted platforms was detected.
    Local,
    /// Google Colab (`COLAB_RELEASE_TAG` or `COLAB_GPU` set).
    Colab,
    /// Kaggle notebooks (`KAGGLE_KERNEL_RUN_TYPE` set).
    Kaggle,
    /// Azure Machine Learning jobs (`AZUREML_RUN_ID` set).
    AzureMl,
    /// Any other name given through `PODIUM_ENVIRONMENT`.
    Named(String),
}

impl Environment {
    /// Detects the platform from the process environment (see [`Environment::detect_with`]).
    pub fn detect() -> Result<Self, VariantsError> {
        Self::detect_with(|key| {
            std::env::var_os(key).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// Detects the platform from the variables `lookup` returns.
    ///
    /// A non-empty `PODIUM_ENVIRONMENT` wins (and must be usable as a folder name); otherwise
    /// colab, kaggle and azureml are recognised by their marker variables, in that order, and
    /// anything else is local. Taking the lookup as a closure keeps tests away from the
    /// process-wide environment, which other threads may read concurrently.
    ///
    /// ```
    /// use podium_variants::Environment;
    /// let vars = |key: &str| (key == "KAGGLE_KERNEL_RUN_TYPE").then(|| "Interactive".to_string());
    /// assert_eq!(Environment::detect_with(vars)?, Environment::Kaggle);
    /// # Ok::<(), podium_variants::VariantsError>(())
    /// ```
    pub fn detect_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, VariantsError> {
        if let Some(forced) = lookup(ENVIRONMENT_OVERRIDE) {
            let forced = forced.trim();
            if !forced.is_empty() {
                return forced.parse();
            }
        }
        let present = |key: &str| lookup(key).is_some();
        Ok(if present("COLAB_RELEASE_TAG") || present("COLAB_GPU") {
            Environment::Colab
        } else if present("KAGGLE_KERNEL_RUN_TYPE") {
            Environment::Kaggle
        } else if present("AZUREML_RUN_ID") {
            Environment::AzureMl
        } else {
            Environment::Local
        })
    }

    /// The folder name (`local`, `colab`, `kaggle`, `azureml`, or the override).
    pub fn as_str(&self) -> &str {
        match self {
            Environment::Local => "local",
            Environment::Colab => "colab",
            Environment::Kaggle => "kaggle",
            Environment::AzureMl => "azureml",
            Environment::Named(name) => name,
        }
    }
}

impl FromStr for Environment {
    type Err = VariantsError;

    /// Parses an environment name; the four known names map to their variants.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "local" => Environment::Local,
            "colab" => Environment::Colab,
            "kaggle" => Environment::Kaggle,
            "azureml" => Environment::AzureMl,
            other => {
                check_component("environment (PODIUM_ENVIRONMENT)", other)?;
                Environment::Named(other.to_string())
            }
        })
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Environment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    #[test]
    fn detects_each_platform_by_its_marker() {
        let cases: [(&[(&str, &str)], Environment); 6] = [
            (&[], Environment::Local),
            (
                &[("COLAB_RELEASE_TAG", "release-colab_20240101")],
                Environment::Colab,
            ),
            (&[("COLAB_GPU", "")], Environment::Colab),
            (&[("KAGGLE_KERNEL_RUN_TYPE", "Batch")], Environment::Kaggle),
            (&[("AZUREML_RUN_ID", "abc")], Environment::AzureMl),
            (&[("HOME", "/root")], Environment::Local),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                Environment::detect_with(vars(pairs)).unwrap(),
                expected,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn override_wins_and_empty_override_is_ignored() {
        let forced = vars(&[("PODIUM_ENVIRONMENT", "ci"), ("COLAB_GPU", "1")]);
        assert_eq!(
            Environment::detect_with(forced).unwrap(),
            Environment::Named("ci".into())
        );
        let known = vars(&[("PODIUM_ENVIRONMENT", " kaggle "), ("COLAB_GPU", "1")]);
        assert_eq!(
            Environment::detect_with(known).unwrap(),
            Environment::Kaggle
        );
        let empty = vars(&[("PODIUM_ENVIRONMENT", "  "), ("AZUREML_RUN_ID", "x")]);
        assert_eq!(
            Environment::detect_with(empty).unwrap(),
            Environment::AzureMl
        );
    }

    #[test]
    fn override_must_be_a_folder_name() {
        for bad in ["../up", "a/b", "..", "a\\b"] {
            let err = Environment::detect_with(vars(&[("PODIUM_ENVIRONMENT", bad)])).unwrap_err();
            let message = err.to_string();
            assert!(message.contains("PODIUM_ENVIRONMENT"), "{message}");
        }
    }

    #[test]
    fn serde_round_trips_through_the_folder_name() {
        for env in [
            Environment::Local,
            Environment::AzureMl,
            Environment::Named("ci".into()),
        ] {
            let json = serde_json::to_string(&env).unwrap();
            assert_eq!(json, format!("\"{}\"", env.as_str()));
            assert_eq!(serde_json::from_str::<Environment>(&json).unwrap(), env);
        }
    }
}
