//! The demo's config directory: podium's default configs, laid out as the pipeline lays out
//! its config/ folder (embedded in the binary, so the demo works from any directory), with the
//! experiment renamed, the backbones spelled as the demo's sweeps name them and the benchmark
//! made tiny.
//!
//! Edits are made on the YAML text, line by line, rather than by parsing and re-serialising:
//! the files feed the study keys through a PyYAML-compatible loader, and a round trip through a
//! YAML 1.2 serialiser would silently change scalars such as `1e-5` (a string to PyYAML).

use std::path::Path;

use podium_variants::fs::write_atomic;

use crate::error::FixturesError;

/// The experiment-name prefix of everything the demo logs.
pub const DEMO_EXPERIMENT_NAME: &str = "podium-demo";

/// The HPO config the demo's sweeps were "run" with (relative to the config directory); the
/// experiment's HPO config of record.
pub const DEMO_HPO_CONFIG: &str = "hpo/prod.yaml";

/// The HPO config of the demo's narrower follow-up sweep (a different search space, so a
/// different study key: its own group).
pub const DEMO_NARROW_HPO_CONFIG: &str = "hpo/smoke.yaml";

/// The demo's experiment file (relative to the config directory).
pub const DEMO_EXPERIMENT_FILE: &str = "experiment/podium_demo.yaml";

/// One config file: its path in the demo's config directory, the shipped default it starts
/// from, and the lines the demo replaces in it (each must occur exactly once).
struct DemoConfig {
    path: &'static str,
    text: &'static str,
    replace: &'static [(&'static str, &'static str)],
}

/// podium's default configs, as shipped in `config/`, and the demo's edits: small enough that
/// the whole demo benchmarks three champions in seconds on two cores.
const CONFIGS: &[DemoConfig] = &[
    DemoConfig {
        path: DEMO_EXPERIMENT_FILE,
        text: include_str!("../../../../config/experiment/podium_ner.yaml"),
        replace: &[(
            "experiment_name: \"podium-ner\"",
            "experiment_name: \"podium-demo\"",
        )],
    },
    DemoConfig {
        path: "benchmark.yaml",
        text: include_str!("../../../../config/benchmark.yaml"),
        replace: &[
            ("  max_length: 128", "  max_length: 32"),
            ("  warmup_iterations: 10", "  warmup_iterations: 5"),
            ("  iterations: 100", "  iterations: 30"),
            ("  min_duration_s: 1.0", "  min_duration_s: 0.05"),
            // One thread: a sub-millisecond model is timed more steadily without a pool to wake.
            ("  threads: null", "  threads: 1"),
        ],
    },
    DemoConfig {
        path: "best_model_selection.yaml",
        text: include_str!("../../../../config/best_model_selection.yaml"),
        replace: &[],
    },
    DemoConfig {
        path: "data/resume_ner.yaml",
        text: include_str!("../../../../config/data/resume_ner.yaml"),
        replace: &[],
    },
    DemoConfig {
        path: "model/distilbert.yaml",
        text: include_str!("../../../../config/model/distilbert.yaml"),
        replace: &[],
    },
    DemoConfig {
        path: "env/local.yaml",
        text: include_str!("../../../../config/env/local.yaml"),
        replace: &[],
    },
    DemoConfig {
        path: "paths.yaml",
        text: include_str!("../../../../config/paths.yaml"),
        replace: &[],
    },
    DemoConfig {
        path: "tags.yaml",
        text: include_str!("../../../../config/tags.yaml"),
        replace: &[],
    },
    DemoConfig {
        path: "train.yaml",
        text: include_str!("../../../../config/train.yaml"),
        replace: &[],
    },
    DemoConfig {
        path: DEMO_HPO_CONFIG,
        text: include_str!("../../../../config/hpo/prod.yaml"),
        replace: &[(
            "    values: [\"distilbert\", \"distilroberta\", \"deberta\"]",
            "    values: [\"distilbert-base-uncased\", \"distilroberta-base\", \"deberta-v3-small\"]",
        )],
    },
    DemoConfig {
        path: DEMO_NARROW_HPO_CONFIG,
        text: include_str!("../../../../config/hpo/smoke.yaml"),
        replace: &[(
            "    values: [\"distilroberta\"]",
            "    values: [\"distilroberta-base\"]",
        )],
    },
];

const HEADER: &str = "# Written by `podium demo`: podium's default config, adapted for the demo.\n";

/// The demo's config files: (path relative to the config directory, text).
pub fn demo_configs() -> Result<Vec<(&'static str, String)>, FixturesError> {
    CONFIGS
        .iter()
        .map(|config| {
            let mut text = config.text.to_string();
            for (old, new) in config.replace {
                text =
                    replace_line(&text, old, new).map_err(|message| FixturesError::DemoConfig {
                        what: config.path.to_string(),
                        message: format!("adapting the shipped default: {message}"),
                    })?;
            }
            Ok((config.path, format!("{HEADER}{text}")))
        })
        .collect()
}

/// Writes the demo configs under `dir` (directories created as needed), each file replaced
/// atomically.
pub fn write_demo_configs(dir: &Path) -> Result<(), FixturesError> {
    for (path, text) in demo_configs()? {
        write_atomic(&dir.join(path), text.as_bytes())?;
    }
    Ok(())
}

/// `text` with the line `old` (whole line, comments after it kept out of the match: the line
/// must start with `old` followed by nothing or a comment) replaced by `new`; an error when it
/// is not there exactly once, so a change of the defaults cannot go unnoticed.
pub fn replace_line(text: &str, old: &str, new: &str) -> Result<String, String> {
    let mut found = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.strip_prefix(old) {
            Some(rest) if rest.trim().is_empty() || rest.trim_start().starts_with('#') => {
                found += 1;
                format!("{new}{rest}")
            }
            _ => line.to_string(),
        })
        .collect();
    if found != 1 {
        return Err(format!("expected one line `{old}`, found {found}"));
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn replacements_match_exactly_one_line() {
        let text = "# c\nname: x  # note\nnested:\n  name: x\n";
        assert_eq!(
            replace_line(text, "name: x", "name: demo").unwrap(),
            "# c\nname: demo  # note\nnested:\n  name: x\n"
        );
        assert!(replace_line(text, "missing: 1", "x").is_err());
        assert!(replace_line(text, "name: ", "x").is_err());
    }

    #[test]
    fn every_default_is_adapted_and_loads() {
        let configs = demo_configs().unwrap();
        assert_eq!(configs.len(), CONFIGS.len());
        let dir = tempfile::tempdir().unwrap();
        write_demo_configs(dir.path()).unwrap();
        let experiment =
            podium_variants::ExperimentConfig::from_config_dir(dir.path(), None).unwrap();
        assert_eq!(experiment.name, DEMO_EXPERIMENT_NAME);
        assert_eq!(
            experiment.backbones,
            [
                "distilbert-base-uncased",
                "distilroberta-base",
                "deberta-v3-small"
            ]
        );
        let benchmark = podium_keys::load_path(&dir.path().join("benchmark.yaml")).unwrap();
        let setting = |name: &str| {
            benchmark
                .get("benchmarking")
                .and_then(|b| b.get(name))
                .cloned()
        };
        assert_eq!(setting("max_length"), Some(podium_keys::PyValue::int(32)));
        assert_eq!(setting("threads"), Some(podium_keys::PyValue::int(1)));
    }
}
