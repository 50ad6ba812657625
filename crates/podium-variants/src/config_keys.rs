//! Which keys of a config file podium reads, which the pipeline defines but podium ignores, and
//! the error for any other: a typo must not pass silently, and a file written for the pipeline
//! must load unchanged.

use std::path::Path;

use crate::error::VariantsError;

/// The keys one mapping of a config file may have.
#[derive(Debug, Clone, Copy)]
pub struct KeySchema<'a> {
    /// Keys podium reads.
    pub used: &'a [&'a str],
    /// Keys the pipeline defines that podium does not read (accepted, reported as ignored).
    pub ignored: &'a [&'a str],
}

impl KeySchema<'_> {
    /// Checks the keys of the mapping at `prefix` (dotted, empty for the top level) of `file`:
    /// returns the ignored keys found (dotted), or an error naming the first unknown key.
    pub fn check<'k>(
        &self,
        file: &Path,
        prefix: &str,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<Vec<String>, VariantsError> {
        let dotted = |key: &str| {
            if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            }
        };
        let mut ignored = Vec::new();
        for key in keys {
            if self.used.contains(&key) {
                continue;
            }
            if self.ignored.contains(&key) {
                ignored.push(dotted(key));
                continue;
            }
            let mut known: Vec<&str> = self.used.iter().chain(self.ignored).copied().collect();
            known.sort_unstable();
            return Err(VariantsError::Config {
                file: file.to_path_buf(),
                key: dotted(key),
                message: format!(
                    "unknown key (neither podium nor the pipeline defines it; known here: {})",
                    known.join(", ")
                ),
            });
        }
        Ok(ignored)
    }
}

/// The string keys of a serde_yaml mapping (non-string keys become their YAML text).
pub fn mapping_keys(value: &serde_yaml::Value) -> Vec<String> {
    match value {
        serde_yaml::Value::Mapping(mapping) => mapping
            .keys()
            .map(|key| match key {
                serde_yaml::Value::String(text) => text.clone(),
                other => serde_yaml::to_string(other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn used_ignored_and_unknown_keys() {
        let schema = KeySchema {
            used: &["a"],
            ignored: &["b"],
        };
        let file = Path::new("x.yaml");
        assert_eq!(
            schema.check(file, "sec", ["a", "b"]).unwrap(),
            vec!["sec.b".to_string()]
        );
        let message = schema.check(file, "", ["a", "c"]).unwrap_err().to_string();
        assert!(message.contains("x.yaml") && message.contains("`c`"), "{message}");
    }
}
