//! `podium config check`: load every config file with the loaders the commands use, and say
//! which are broken — and which keys are the pipeline's that podium ignores — before a long run
//! trips over them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use podium_bench::bench_config::BenchmarkConfig;
use podium_champion::SelectionConfig;
use podium_keys::project::{HPO_KEYS, check_top_level_keys};
use podium_keys::{ProjectConfigs, TagRegistry, load_path};
use podium_run_mode::RunMode;
use podium_variants::{ExperimentFiles, PathsConfig, StudyNaming, backbones_of_hpo_config};
use serde::Serialize;

use crate::GlobalArgs;
use crate::output::{self, Format};

/// `podium config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate every config file of --config-dir (the pipeline's layout) with the
    /// loaders the commands use; list the ignored keys; exit 1 on any error.
    Check,
}

/// The verdict on one file.
#[derive(Debug, Serialize)]
struct FileReport {
    file: PathBuf,
    ok: bool,
    /// What was found (when OK) or what is wrong.
    detail: String,
    /// Keys the pipeline defines that podium does not read.
    ignored_keys: Vec<String>,
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

/// Collects one verdict per file.
#[derive(Default)]
struct Reports {
    files: Vec<FileReport>,
    seen: BTreeSet<PathBuf>,
}

impl Reports {
    fn add(&mut self, file: &Path, verdict: Result<(String, Vec<String>), String>) {
        if !self.seen.insert(file.to_path_buf()) {
            return;
        }
        let (ok, detail, ignored_keys) = match verdict {
            Ok((detail, ignored)) => (true, detail, ignored),
            Err(message) => (false, message, Vec::new()),
        };
        self.files.push(FileReport {
            file: file.to_path_buf(),
            ok,
            detail,
            ignored_keys,
        });
    }
}

fn check(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let dir = &global.config_dir;
    let mut reports = Reports::default();
    if !dir.is_dir() {
        reports.add(dir, Err("config directory does not exist".into()));
    } else {
        check_folder(dir, global.experiment.as_deref(), &mut reports)?;
    }
    let files = reports.files;
    let ok = files.iter().all(|report| report.ok);
    match global.format {
        Format::Json => output::print_json(&CheckReport {
            config_dir: dir,
            ok,
            files: &files,
        })?,
        Format::Table => {
            let mut table = output::table(["File", "Status", "Detail", "Ignored keys"]);
            for report in &files {
                table.add_row([
                    report.file.display().to_string(),
                    if report.ok { "OK" } else { "ERROR" }.to_string(),
                    report.detail.clone(),
                    report.ignored_keys.join(", "),
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

fn text<E: std::fmt::Display>(err: E) -> String {
    err.to_string()
}

/// Splits `file: key` entries of a project's ignored keys by file.
fn ignored_in(all: &[String], file: &Path) -> Vec<String> {
    let prefix = format!("{}: ", file.display());
    all.iter()
        .filter_map(|entry| entry.strip_prefix(&prefix).map(str::to_string))
        .collect()
}

fn check_folder(dir: &Path, wanted: Option<&str>, reports: &mut Reports) -> anyhow::Result<()> {
    let experiments = ExperimentFiles::list(dir)?;
    if experiments.is_empty() {
        reports.add(
            &dir.join(podium_variants::experiment::EXPERIMENT_DIR),
            Err("no experiment file: expected experiment/<name>.yaml".into()),
        );
    }
    if let Some(name) = wanted
        && let Err(err) = ExperimentFiles::discover(dir, Some(name))
    {
        reports.add(&dir.join(podium_variants::experiment::EXPERIMENT_DIR), Err(text(err)));
    }
    // Each experiment and the files it names, with the loader `podium run` uses.
    for file in &experiments {
        let files = match ExperimentFiles::from_file(dir, file) {
            Ok(files) => files,
            Err(err) => {
                reports.add(file, Err(text(err)));
                continue;
            }
        };
        match ProjectConfigs::from_files(files.clone()) {
            Ok(project) => {
                let summary = project_summary(&project);
                reports.add(
                    file,
                    summary
                        .clone()
                        .map(|detail| (detail, ignored_in(&project.ignored_keys, file))),
                );
                for (path, what) in [
                    (&files.data, "data config"),
                    (&files.train, "train config"),
                ] {
                    reports.add(
                        path,
                        summary
                            .clone()
                            .map(|_| (what.to_string(), ignored_in(&project.ignored_keys, path))),
                    );
                }
                let hpo_verdict = check_hpo(&files.hpo).map(|(detail, _)| {
                    (
                        format!("HPO config of record; {detail}"),
                        ignored_in(&project.ignored_keys, &files.hpo),
                    )
                });
                reports.add(&files.hpo, hpo_verdict);
            }
            Err(err) => {
                let message = text(err);
                // Put the error on the file it names, and the experiment too.
                for path in [&files.data, &files.train, &files.hpo, &files.benchmark] {
                    if message.contains(&path.display().to_string()) {
                        reports.add(path, Err(message.clone()));
                    }
                }
                reports.add(file, Err(message));
            }
        }
        if files.benchmark.exists() {
            reports.add(&files.benchmark, check_benchmark(&files.benchmark));
        }
    }
    let fixed: [(&str, fn(&Path) -> Result<(String, Vec<String>), String>); 4] = [
        (BenchmarkConfig::FILE, check_benchmark),
        ("best_model_selection.yaml", check_selection),
        ("tags.yaml", check_tags),
        ("paths.yaml", check_paths),
    ];
    for (name, checker) in fixed {
        let path = dir.join(name);
        if path.is_file() {
            reports.add(&path, checker(&path));
        }
    }
    for path in yaml_files(&dir.join("hpo"))? {
        reports.add(&path, check_hpo(&path));
    }
    // Whatever else is in the folder (the pipeline's model/, env/, … files): readable YAML.
    for path in all_yaml_files(dir)? {
        let verdict = load_path(&path)
            .map(|_| ("not read by podium (valid YAML)".to_string(), Vec::new()))
            .map_err(text);
        reports.add(&path, verdict);
    }
    Ok(())
}

fn project_summary(project: &ProjectConfigs) -> Result<String, String> {
    let mut hashes = Vec::new();
    for backbone in &project.backbones {
        let keys = project.study_keys(backbone).map_err(text)?;
        hashes.push(format!("{backbone} {}", &keys.study_key_hash[..12]));
    }
    Ok(format!(
        "experiment {}, HPO config {}, backbones: {}",
        project.files.experiment_name,
        project.files.hpo.display(),
        if hashes.is_empty() {
            "none listed".to_string()
        } else {
            hashes.join(", ")
        }
    ))
}

fn check_hpo(path: &Path) -> Result<(String, Vec<String>), String> {
    let value = load_path(path).map_err(text)?;
    if !matches!(value, podium_keys::PyValue::Dict(_)) {
        return Err(format!(
            "{}: expected a mapping of HPO settings, found {}",
            path.display(),
            value.type_name()
        ));
    }
    let ignored = check_top_level_keys(&value, &HPO_KEYS, path).map_err(text)?;
    let mut found = Vec::new();
    if let Some(mode) = RunMode::from_config_file(path).map_err(text)? {
        found.push(format!("run.mode {mode}"));
    }
    let naming = StudyNaming::from_hpo_config(path).map_err(text)?;
    found.push(format!("study name {}", naming.template()));
    let backbones = backbones_of_hpo_config(path).map_err(text)?;
    found.push(format!("{} backbone(s)", backbones.len()));
    Ok((found.join("; "), ignored))
}

fn check_benchmark(path: &Path) -> Result<(String, Vec<String>), String> {
    let benchmark = BenchmarkConfig::from_file(path).map_err(text)?;
    let hash = podium_keys::config_hash(&load_path(path).map_err(text)?).map_err(text)?;
    let mode = match benchmark.run_mode {
        Some(mode) => format!("run.mode {mode}"),
        None => "run.mode inherited from the HPO config".into(),
    };
    Ok((
        format!(
            "{mode}; batch sizes {:?}; config hash {hash}",
            benchmark.batch_sizes
        ),
        Vec::new(),
    ))
}

fn check_selection(path: &Path) -> Result<(String, Vec<String>), String> {
    let selection = SelectionConfig::load(path).map_err(text)?;
    Ok((
        format!(
            "objective {} ({})",
            selection.objective.metric, selection.objective.direction
        ),
        Vec::new(),
    ))
}

fn check_tags(path: &Path) -> Result<(String, Vec<String>), String> {
    let registry = TagRegistry::load(path).map_err(text)?;
    Ok((format!("{} tag keys", registry.iter().count()), Vec::new()))
}

fn check_paths(path: &Path) -> Result<(String, Vec<String>), String> {
    let paths = PathsConfig::load(path).map_err(text)?;
    Ok((format!("outputs in {}", paths.outputs), paths.ignored_keys))
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

/// The YAML files of `dir` and its sub-folders (two levels, as the pipeline nests them).
fn all_yaml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = yaml_files(dir)?;
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(dir).with_context_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            subdirs.push(path);
        }
    }
    subdirs.sort();
    for sub in subdirs {
        paths.extend(yaml_files(&sub)?);
    }
    Ok(paths)
}

trait WithContextDir<T> {
    fn with_context_dir(self, dir: &Path) -> anyhow::Result<T>;
}

impl<T> WithContextDir<T> for std::io::Result<T> {
    fn with_context_dir(self, dir: &Path) -> anyhow::Result<T> {
        self.map_err(|err| anyhow::Error::new(err).context(format!("cannot list {}", dir.display())))
    }
}
