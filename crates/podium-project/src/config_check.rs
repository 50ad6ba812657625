//! `podium config check`: load every config file with the loaders the commands use, and say
//! which are broken — and which keys are the pipeline's that podium ignores — before a long run
//! trips over them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use podium_bench::bench_config::BenchmarkConfig;
use podium_bench::orchestrate::{TRACKING_CONFIG_FILE, log_artifacts_setting};
use podium_champion::SelectionConfig;
use podium_keys::project::{HPO_KEYS, check_top_level_keys};
use podium_keys::{ProjectConfigs, TagRegistry, load_path};
use podium_variants::{
    AcquisitionConfig, ExperimentFiles, PathsConfig, StudyNaming, backbones_of_hpo_config,
};
use serde::Serialize;

use crate::error::{ProjectError, Result};

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// The file.
    pub file: PathBuf,
    /// Whether it loads and validates.
    pub ok: bool,
    /// What was found (when OK) or what is wrong.
    pub detail: String,
    /// Keys the pipeline defines that podium does not read.
    pub ignored_keys: Vec<String>,
}

/// Every file's verdict, as `podium config check --format json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    /// The folder checked.
    pub config_dir: PathBuf,
    /// Whether every file is OK.
    pub ok: bool,
    /// One verdict per file, in the order they were checked.
    pub files: Vec<FileReport>,
}

/// Loads and validates every config file of `dir` (the pipeline's layout) with the loaders
/// the commands use, and lists the keys podium ignores; `experiment` must name one of its
/// experiments when given. Broken files are verdicts, not errors: an error is a folder that
/// cannot be listed.
pub fn check_config_dir(dir: &Path, experiment: Option<&str>) -> Result<CheckReport> {
    let mut reports = Reports::default();
    if !dir.is_dir() {
        reports.add(dir, Err("config directory does not exist".into()));
    } else {
        check_folder(dir, experiment, &mut reports)?;
    }
    let files = reports.files;
    Ok(CheckReport {
        config_dir: dir.to_path_buf(),
        ok: files.iter().all(|report| report.ok),
        files,
    })
}

/// Collects one verdict per file.
#[derive(Default)]
struct Reports {
    files: Vec<FileReport>,
    seen: BTreeSet<PathBuf>,
}

impl Reports {
    fn add(&mut self, file: &Path, verdict: Verdict) {
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

fn check_folder(dir: &Path, wanted: Option<&str>, reports: &mut Reports) -> Result<()> {
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
        reports.add(
            &dir.join(podium_variants::experiment::EXPERIMENT_DIR),
            Err(text(err)),
        );
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
        let named = [&files.data, &files.train, &files.hpo, &files.benchmark];
        let blame = |reports: &mut Reports, message: String| {
            // Put the error on the file it names, and on the experiment.
            for path in named {
                if message.contains(&path.display().to_string()) {
                    reports.add(path, Err(message.clone()));
                }
            }
            reports.add(file, Err(message));
        };
        match ProjectConfigs::from_files(files.clone()) {
            Ok(project) => {
                match project_summary(&project) {
                    Ok(detail) => {
                        reports.add(file, Ok((detail, ignored_in(&project.ignored_keys, file))));
                    }
                    Err(message) => blame(reports, message),
                }
                for (path, what) in [(&files.data, "data config"), (&files.train, "train config")] {
                    reports.add(
                        path,
                        Ok((what.to_string(), ignored_in(&project.ignored_keys, path))),
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
            Err(err) => blame(reports, text(err)),
        }
        if present(&files.benchmark) {
            reports.add(&files.benchmark, check_benchmark(&files.benchmark));
        }
    }
    let fixed: [(&str, Checker); 6] = [
        (BenchmarkConfig::FILE, check_benchmark),
        ("best_model_selection.yaml", check_selection),
        ("tags.yaml", check_tags),
        ("paths.yaml", check_paths),
        (AcquisitionConfig::FILE, check_acquisition),
        (TRACKING_CONFIG_FILE, check_tracking),
    ];
    for (name, checker) in fixed {
        let path = dir.join(name);
        if present(&path) {
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

/// One file's verdict: (summary, ignored keys) or what is wrong.
type Verdict = Result<(String, Vec<String>), String>;

/// A loader-backed check of one file.
type Checker = fn(&Path) -> Verdict;

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
    // The loaders the commands run on an HPO config, in their order: the keys' reading (the
    // study keys), run.mode (a benchmark's inherited mode), the study name, the backbones.
    let value = load_path(path).map_err(text)?;
    let ignored = check_top_level_keys(&value, &HPO_KEYS, path).map_err(text)?;
    let mut found = Vec::new();
    if let Some(mode) = podium_variants::run_mode_of(path).map_err(text)? {
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

fn check_tracking(path: &Path) -> Result<(String, Vec<String>), String> {
    let log_artifacts = log_artifacts_setting(path).map_err(text)?;
    Ok((
        format!("tracking.benchmark.log_artifacts {log_artifacts} (the rest is the pipeline's)"),
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

fn check_acquisition(path: &Path) -> Result<(String, Vec<String>), String> {
    let acquisition = AcquisitionConfig::load(path).map_err(text)?;
    Ok((
        format!(
            "checkpoint search roots: {}",
            acquisition.search_roots.join(", ")
        ),
        acquisition.ignored_keys,
    ))
}

/// Whether a config file is there in any form: the commands' loaders read (and refuse) a FIFO,
/// a device or a link to one as they do a regular file, so `config check` must see it too.
fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// The `.yaml`/`.yml` entries directly in `dir` that are not directories (FIFOs and links to
/// devices included: the loaders refuse them), sorted; none when `dir` does not exist.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(list_error(dir)(source)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(list_error(dir))?.path();
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if is_yaml && !path.is_dir() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// The YAML files of `dir` and its sub-folders (two levels, as the pipeline nests them).
fn all_yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = yaml_files(dir)?;
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_error(dir))? {
        let path = entry.map_err(list_error(dir))?.path();
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

fn list_error(dir: &Path) -> impl Fn(std::io::Error) -> ProjectError + '_ {
    move |source| ProjectError::Io {
        path: dir.to_path_buf(),
        source,
    }
}
