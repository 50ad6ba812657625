//! `podium config check`: load every config file the way the commands that use it do, and say
//! which ones are broken before a long run trips over them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use podium_keys::TagRegistry;
use podium_run_mode::RunMode;
use podium_variants::{ExperimentConfig, StudyNaming};
use serde::Serialize;

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate every YAML file in --config-dir (and its hpo/ folder); exit 1 on any error.
    Check,
}

/// The files every project must have.
const REQUIRED: [&str; 1] = ["experiment.yaml"];

/// The verdict on one file.
#[derive(Debug, Serialize)]
struct FileReport {
    file: PathBuf,
    ok: bool,
    /// What was found (when OK) or what is wrong.
    detail: String,
}

#[derive(Debug, Serialize)]
struct CheckReport<'a> {
    config_dir: &'a Path,
    ok: bool,
    files: &'a [FileReport],
}

/// Runs `podium config`.
pub fn run(global: &GlobalArgs, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check => check(global),
    }
}

fn check(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let dir = &global.config_dir;
    let mut files = Vec::new();
    if !dir.is_dir() {
        files.push(FileReport {
            file: dir.clone(),
            ok: false,
            detail: "config directory does not exist".into(),
        });
    } else {
        for required in REQUIRED {
            let path = dir.join(required);
            if !path.is_file() {
                files.push(FileReport {
                    file: path,
                    ok: false,
                    detail: "required file is missing".into(),
                });
            }
        }
        let mut paths = yaml_files(dir)?;
        paths.extend(yaml_files(&dir.join("hpo"))?);
        for path in paths {
            let verdict = check_file(dir, &path);
            files.push(FileReport {
                ok: verdict.is_ok(),
                detail: verdict.unwrap_or_else(|err| err),
                file: path,
            });
        }
    }
    let ok = files.iter().all(|report| report.ok);
    match global.format {
        Format::Json => output::print_json(&CheckReport {
            config_dir: dir,
            ok,
            files: &files,
        })?,
        Format::Table => {
            let mut table = output::table(["File", "Status", "Detail"]);
            for report in &files {
                table.add_row([
                    report.file.display().to_string(),
                    if report.ok { "OK" } else { "ERROR" }.to_string(),
                    report.detail.clone(),
                ]);
            }
            println!("{table}");
        }
    }
    for report in files.iter().filter(|report| !report.ok) {
        let file = report.file.display().to_string();
        if report.detail.contains(&file) {
            tracing::error!("{}", report.detail);
        } else {
            tracing::error!("{file}: {}", report.detail);
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The `.yaml`/`.yml` files directly in `dir`, sorted; none when `dir` does not exist.
fn yaml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!("cannot list {}", dir.display())));
        }
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if is_yaml && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Loads one file with every loader that applies to it; Ok carries a one-line summary.
fn check_file(config_dir: &Path, path: &Path) -> Result<String, String> {
    let mut found = Vec::new();
    // Every file is YAML, and a `run.mode` anywhere must be valid (DESIGN §2).
    let in_hpo_dir = path.parent() == Some(config_dir.join("hpo").as_path());
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default();
    match RunMode::from_config_file(path).map_err(|err| err.to_string())? {
        Some(mode) => found.push(format!("run.mode {mode}")),
        None if name == "benchmark.yaml" && !in_hpo_dir => {
            found.push("run.mode inherited from the HPO config".into());
        }
        None => {}
    }
    if in_hpo_dir {
        let naming = StudyNaming::from_hpo_config(path).map_err(|err| err.to_string())?;
        found.push(format!("study name {}", naming.template()));
    } else if name == "experiment.yaml" {
        let experiment = ExperimentConfig::load(path).map_err(|err| err.to_string())?;
        found.push(format!(
            "experiment {}, {} backbone(s)",
            experiment.name,
            experiment.backbones.len()
        ));
    } else if name == "best_model_selection.yaml" {
        let selection =
            podium_champion::SelectionConfig::load(path).map_err(|err| err.to_string())?;
        found.push(format!(
            "objective {} ({})",
            selection.objective.metric, selection.objective.direction
        ));
    } else if name == podium_bench::bench_config::BenchmarkConfig::FILE {
        let benchmark = podium_bench::bench_config::BenchmarkConfig::from_file(path)
            .map_err(|err| err.to_string())?;
        found.push(format!("batch sizes {:?}", benchmark.batch_sizes));
    } else if name == "tags.yaml" {
        let registry = TagRegistry::load(path).map_err(|err| err.to_string())?;
        found.push(format!("{} tag keys", registry.iter().count()));
    }
    if found.is_empty() {
        found.push("valid YAML".into());
    }
    Ok(found.join("; "))
}
