//! The demo's config directory: podium's default configs (embedded in the binary, so the demo
//! works from any directory) with the experiment renamed and the benchmark made tiny.
//!
//! Edits are made on the YAML text, line by line, rather than by parsing and re-serialising:
//! the files feed the study keys through a PyYAML-compatible loader, and a round trip through a
//! YAML 1.2 serialiser would silently change scalars such as `1e-5` (a string to PyYAML).

use std::path::Path;

use anyhow::{Context, bail};

/// The experiment-name prefix of everything the demo logs.
pub const DEMO_EXPERIMENT_NAME: &str = "podium-demo";

/// The HPO config the demo's sweeps were "run" with (relative to the config directory).
pub const DEMO_HPO_CONFIG: &str = "hpo/prod.yaml";

/// The HPO config of the demo's narrower follow-up sweep (a different search space, so a
/// different study key: its own group).
pub const DEMO_NARROW_HPO_CONFIG: &str = "hpo/smoke.yaml";

/// One config file: its path relative to the config directory and its default text.
struct DefaultConfig {
    path: &'static str,
    text: &'static str,
}

/// podium's default configs, as shipped in `config/`.
const DEFAULTS: &[DefaultConfig] = &[
    DefaultConfig {
        path: "benchmark.yaml",
        text: include_str!("../../../../../config/benchmark.yaml"),
    },
    DefaultConfig {
        path: "best_model_selection.yaml",
        text: include_str!("../../../../../config/best_model_selection.yaml"),
    },
    DefaultConfig {
        path: "data.yaml",
        text: include_str!("../../../../../config/data.yaml"),
    },
    DefaultConfig {
        path: "eval.yaml",
        text: include_str!("../../../../../config/eval.yaml"),
    },
    DefaultConfig {
        path: "experiment.yaml",
        text: include_str!("../../../../../config/experiment.yaml"),
    },
    DefaultConfig {
        path: "paths.yaml",
        text: include_str!("../../../../../config/paths.yaml"),
    },
    DefaultConfig {
        path: "tags.yaml",
        text: include_str!("../../../../../config/tags.yaml"),
    },
    DefaultConfig {
        path: "train.yaml",
        text: include_str!("../../../../../config/train.yaml"),
    },
    DefaultConfig {
        path: "hpo/prod.yaml",
        text: include_str!("../../../../../config/hpo/prod.yaml"),
    },
    DefaultConfig {
        path: "hpo/smoke.yaml",
        text: include_str!("../../../../../config/hpo/smoke.yaml"),
    },
];

/// Top-level keys the demo overrides, per file: small enough that the whole demo benchmarks
/// three champions in seconds on two cores.
const OVERRIDES: &[(&str, &[(&str, &str)])] = &[
    ("experiment.yaml", &[("name", DEMO_EXPERIMENT_NAME)]),
    (
        "benchmark.yaml",
        &[
            ("batch_sizes", "[1, 8]"),
            ("max_length", "32"),
            ("warmup", "5"),
            ("iterations", "30"),
            ("min_duration_s", "0.05"),
            // One thread: a sub-millisecond model is timed more steadily without a pool to wake.
            ("threads", "1"),
        ],
    ),
];

const HEADER: &str = "# Written by `podium demo`: podium's default config, adapted for the demo.\n";

/// The demo's config files: (path relative to the config directory, text).
pub fn demo_configs() -> anyhow::Result<Vec<(&'static str, String)>> {
    DEFAULTS
        .iter()
        .map(|default| {
            let mut text = default.text.to_string();
            for (file, overrides) in OVERRIDES {
                if *file == default.path {
                    for (key, value) in *overrides {
                        text = set_top_level_value(&text, key, value)
                            .with_context(|| format!("adapting the default {file}"))?;
                    }
                }
            }
            Ok((default.path, format!("{HEADER}{text}")))
        })
        .collect()
}

/// Writes the demo configs under `dir` (created as needed), replacing what is there.
pub fn write_demo_configs(dir: &Path) -> anyhow::Result<()> {
    for (path, text) in demo_configs()? {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}

/// `text` with the value of the top-level (unindented) `key` replaced by `value`; an error when
/// the key is not there exactly once, so a change of the defaults cannot go unnoticed.
pub fn set_top_level_value(text: &str, key: &str, value: &str) -> anyhow::Result<String> {
    let prefix = format!("{key}:");
    let mut found = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if line.starts_with(&prefix) {
                found += 1;
                format!("{key}: {value}")
            } else {
                line.to_string()
            }
        })
        .collect();
    if found != 1 {
        bail!("expected one top-level `{key}:` line, found {found}");
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
    fn overrides_replace_exactly_one_line() {
        let text = "# c\nname: x\nnested:\n  name: y\n";
        assert_eq!(
            set_top_level_value(text, "name", "demo").unwrap(),
            "# c\nname: demo\nnested:\n  name: y\n"
        );
        assert!(set_top_level_value(text, "missing", "1").is_err());
    }

    #[test]
    fn every_default_is_adapted() {
        let configs = demo_configs().unwrap();
        assert_eq!(configs.len(), DEFAULTS.len());
        let experiment = &configs
            .iter()
            .find(|(p, _)| *p == "experiment.yaml")
            .unwrap()
            .1;
        assert!(experiment.contains("\nname: podium-demo\n"), "{experiment}");
        let benchmark = &configs
            .iter()
            .find(|(p, _)| *p == "benchmark.yaml")
            .unwrap()
            .1;
        assert!(benchmark.contains("\nbatch_sizes: [1, 8]\n"), "{benchmark}");
        assert!(benchmark.contains("\nmax_length: 32\n"), "{benchmark}");
    }
}
