//! [`ProjectOptions`] (where a project is) and [`Project`] (it, loaded and opened).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use podium_champion::SelectionConfig;
use podium_champion::config::SELECTION_CONFIG_FILE;
use podium_keys::{ProjectConfigs, TagRegistry};
use podium_mlflow::TrackingStore;
use podium_variants::{Environment, ExperimentConfig, ExperimentFiles, OutputLayout, PathsConfig};

use crate::error::{ProjectError, Result};
use crate::store::{EnvLookup, OpenedStore, StoreAccess, open_store, process_env};

/// Where a project is: its config folder (the pipeline's `config/` layout), the experiment,
/// the root whose `outputs/` it writes, the tracking URI and the environment variables to
/// read (`MLFLOW_TRACKING_URI`, the REST settings, the environment detection).
#[derive(Clone)]
pub struct ProjectOptions {
    /// `experiment/<name>.yaml`, `best_model_selection.yaml`, `tags.yaml`, … live here.
    pub config_dir: PathBuf,
    /// The stem of `experiment/<name>.yaml` or its `experiment_name`; `None`: the only one.
    pub experiment: Option<String>,
    /// Outputs live under `root/outputs`.
    pub root: PathBuf,
    /// The tracking URI; `None`: `MLFLOW_TRACKING_URI`, else `sqlite:///mlflow.db`.
    pub tracking_uri: Option<String>,
    /// Environment lookups.
    pub env: EnvLookup,
}

impl std::fmt::Debug for ProjectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectOptions")
            .field("config_dir", &self.config_dir)
            .field("experiment", &self.experiment)
            .field("root", &self.root)
            .field(
                "tracking_uri",
                &self
                    .tracking_uri
                    .as_deref()
                    .map(podium_mlflow::uri::redact_uri),
            )
            .finish_non_exhaustive()
    }
}

impl ProjectOptions {
    /// A project whose configs are in `config_dir`, its outputs under `root`, the only
    /// experiment, the tracking URI and every setting from the process environment.
    pub fn new(config_dir: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        ProjectOptions {
            config_dir: config_dir.into(),
            experiment: None,
            root: root.into(),
            tracking_uri: None,
            env: process_env(),
        }
    }

    /// Picks the experiment (file stem or `experiment_name`).
    pub fn experiment(mut self, experiment: Option<impl Into<String>>) -> Self {
        self.experiment = experiment.map(Into::into);
        self
    }

    /// Sets the tracking URI (`None`: `MLFLOW_TRACKING_URI`, else `sqlite:///mlflow.db`).
    pub fn tracking_uri(mut self, uri: Option<impl Into<String>>) -> Self {
        self.tracking_uri = uri.map(Into::into);
        self
    }

    /// Reads environment variables through `env` instead of the process's.
    pub fn env(mut self, env: EnvLookup) -> Self {
        self.env = env;
        self
    }

    /// The tag registry of `tags.yaml`.
    pub fn tags(&self) -> Result<TagRegistry> {
        Ok(TagRegistry::load(&self.config_dir.join("tags.yaml"))?)
    }

    /// The tracking store under the rule of `access` (see [`crate::store`]).
    pub fn open_store(&self, access: StoreAccess) -> Result<Option<OpenedStore>> {
        open_store(self.tracking_uri.as_deref(), access, &self.env)
    }

    /// The tracking store for a command that reads it (or writes into it): it must exist.
    pub fn existing_store(&self) -> Result<OpenedStore> {
        self.open_store(StoreAccess::Existing)?
            .ok_or_else(|| ProjectError::Invalid("no tracking store was opened".into()))
    }

    /// The environment (`{environment}` folders, tags) detected from the variables of `env`.
    pub fn environment(&self) -> Result<Environment> {
        let env = self.env.clone();
        Ok(Environment::detect_with(move |name: &str| env(name))?)
    }

    /// Loads the configs and opens the store: the [`Project`].
    pub fn open(self, access: StoreAccess) -> Result<Project> {
        Project::open(self, access)
    }
}

/// A loaded project: the experiment and the files it names, the tag registry, the selection
/// rules, the environment and output layout, and the opened tracking store. Every podium
/// command is one method on it (or on [`ProjectOptions`], for those that need no experiment).
#[derive(Clone)]
pub struct Project {
    options: ProjectOptions,
    /// The experiment file and the data/train/HPO/benchmark files it names.
    pub files: ExperimentFiles,
    /// The experiment's names: backbones, HPO and benchmark experiments.
    pub experiment: ExperimentConfig,
    /// Tag keys (`tags.yaml`).
    pub tags: TagRegistry,
    /// Selection rules and ranking weights (`best_model_selection.yaml`).
    pub selection: SelectionConfig,
    /// The `{environment}` of output folders and tags.
    pub environment: Environment,
    /// `root/outputs/…`.
    pub layout: OutputLayout,
    store: Option<OpenedStore>,
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project")
            .field("options", &self.options)
            .field("experiment", &self.experiment)
            .field("environment", &self.environment)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Project {
    /// Loads the configs of `options`, then opens its store under the rule of `access`.
    /// Configs load first: a broken config is reported before any store is touched.
    pub fn open(options: ProjectOptions, access: StoreAccess) -> Result<Project> {
        let files = ExperimentFiles::discover(&options.config_dir, options.experiment.as_deref())?;
        let experiment = ExperimentConfig::from_files(&files)?;
        let tags = options.tags()?;
        let selection = SelectionConfig::load(&options.config_dir.join(SELECTION_CONFIG_FILE))?;
        let environment = options.environment()?;
        // `paths.yaml` decides where `outputs/` is on this platform (its `env_overrides`), for
        // every command alike: selection's disk checks, results, acquisition.
        let layout = match load_paths_config(&files)? {
            Some(paths) => paths.layout(&options.root, &environment),
            None => OutputLayout::new(&options.root),
        };
        let store = options.open_store(access)?;
        Ok(Project {
            options,
            files,
            experiment,
            tags,
            selection,
            environment,
            layout,
            store,
        })
    }

    /// Where the project is.
    pub fn options(&self) -> &ProjectOptions {
        &self.options
    }

    /// The config folder.
    pub fn config_dir(&self) -> &Path {
        &self.options.config_dir
    }

    /// The project root (outputs under `root/outputs`).
    pub fn root(&self) -> &Path {
        &self.options.root
    }

    /// The tracking store; `None` only when opened with [`StoreAccess::IfExists`] and its
    /// SQLite file does not exist.
    pub fn store(&self) -> Option<&Arc<dyn TrackingStore>> {
        self.store.as_ref().map(|opened| &opened.store)
    }

    /// The tracking store, which a command that reads runs needs.
    pub fn required_store(&self) -> Result<&Arc<dyn TrackingStore>> {
        self.store().ok_or_else(|| {
            ProjectError::Invalid(
                "this project was opened without a tracking store (StoreAccess::IfExists)".into(),
            )
        })
    }

    /// The tracking URI in use, credentials removed; `None` without a store.
    pub fn tracking_uri(&self) -> Option<&str> {
        self.store.as_ref().map(|opened| opened.uri.as_str())
    }

    /// Whether opening the project created its SQLite store ([`StoreAccess::Create`]).
    pub fn created_store(&self) -> bool {
        self.store.as_ref().is_some_and(|opened| opened.created)
    }

    /// The backbones asked for, else every backbone of the HPO config of record, else (the
    /// config lists none) those whose HPO experiment is in the store
    /// ([`Project::resolve_backbones`]).
    pub fn backbones(&self, requested: &[String]) -> Result<Vec<String>> {
        Ok(self.resolve_backbones(requested)?.names)
    }

    /// [`Project::backbones`], with where they came from. Discovery lists the store's active
    /// experiments named like the HPO experiment template (`{experiment_name}-hpo-…`), reads
    /// every page, takes the backbone as the rest of the name (the prefix removed once, so a
    /// backbone may itself hold it or `-`), and sorts them.
    pub fn resolve_backbones(&self, requested: &[String]) -> Result<ResolvedBackbones> {
        let configured = self.experiment.backbones_or(requested);
        if !configured.is_empty() {
            return Ok(ResolvedBackbones {
                names: configured.to_vec(),
                discovered_with_prefix: None,
            });
        }
        let (prefix, suffix) = self.hpo_experiment_affixes()?;
        let store = self.required_store().map_err(|_| {
            ProjectError::Invalid(
                "the HPO config lists no backbones (search_space.backbone.values) and none \
                 were given with --backbone; discovering them needs a tracking store"
                    .into(),
            )
        })?;
        let experiments = store
            .experiments_with_prefix(&prefix)
            .map_err(ProjectError::mlflow(format!(
                "listing experiments named {prefix}… to discover the backbones"
            )))?;
        let mut names: Vec<String> = experiments
            .iter()
            .filter_map(|experiment| {
                let rest = experiment.name.strip_prefix(prefix.as_str())?;
                let backbone = rest.strip_suffix(suffix.as_str())?;
                (!backbone.is_empty()).then(|| backbone.to_string())
            })
            .collect();
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Err(ProjectError::Invalid(format!(
                "the HPO config lists no backbones (search_space.backbone.values), none were \
                 given with --backbone, and {} has no active experiment named {prefix}…{suffix}",
                self.tracking_uri().unwrap_or("the store")
            )));
        }
        let resolved = ResolvedBackbones {
            names,
            discovered_with_prefix: Some(prefix),
        };
        if let Some(note) = resolved.note() {
            tracing::info!("{note}");
        }
        Ok(resolved)
    }

    /// The HPO experiment template around `{backbone}`, `{name}` filled in.
    fn hpo_experiment_affixes(&self) -> Result<(String, String)> {
        let template = &self.experiment.hpo_experiment;
        let Some((before, after)) = template.split_once("{backbone}") else {
            return Err(ProjectError::Invalid(format!(
                "the HPO experiment template {template:?} has no {{backbone}}, so backbones \
                 cannot be discovered from experiment names; list them in the HPO config"
            )));
        };
        let fill = |part: &str| part.replace("{name}", &self.experiment.name);
        Ok((fill(before), fill(after)))
    }

    /// Every config the experiment names, loaded (data, train, HPO, benchmark), for the keys.
    pub fn configs(&self) -> Result<ProjectConfigs> {
        Ok(ProjectConfigs::from_files(self.files.clone())?)
    }

    /// `paths.yaml`, when the config folder has one.
    pub fn paths_config(&self) -> Result<Option<PathsConfig>> {
        load_paths_config(&self.files)
    }
}

/// The backbones of a command and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedBackbones {
    /// The backbones, as the HPO experiment names spell them.
    pub names: Vec<String>,
    /// `Some(prefix)` when they were discovered from the store's experiments named `prefix…`
    /// (the config listed none and none were requested).
    pub discovered_with_prefix: Option<String>,
}

impl ResolvedBackbones {
    /// The line a report shows when the backbones were discovered; `None` otherwise.
    pub fn note(&self) -> Option<String> {
        let prefix = self.discovered_with_prefix.as_ref()?;
        Some(format!(
            "backbones discovered from the store (the HPO config lists none; experiments named \
             {prefix}…): {}",
            self.names.join(", ")
        ))
    }
}

pub(crate) fn load_paths_config(files: &ExperimentFiles) -> Result<Option<PathsConfig>> {
    let path = files.paths_config();
    if !path.is_file() {
        return Ok(None);
    }
    Ok(Some(PathsConfig::load(&path)?))
}

impl ProjectOptions {
    /// Every study key of `backbone` (as written in the HPO config's search space) from the
    /// experiment's data, train, HPO and benchmark configs; `code_version` is added to the v2
    /// payload when given. Needs no store.
    pub fn study_keys(
        &self,
        backbone: &str,
        code_version: Option<&str>,
    ) -> Result<podium_keys::StudyKeys> {
        let project = ProjectConfigs::load(&self.config_dir, self.experiment.as_deref())?;
        check_backbone(&project, backbone)?;
        let mut configs = project.study_configs(backbone);
        configs.code_version = code_version;
        Ok(podium_keys::StudyKeys::compute(&configs)?)
    }
}

/// A backbone the HPO config does not list (when it lists any) is refused, naming the file.
pub(crate) fn check_backbone(project: &ProjectConfigs, backbone: &str) -> Result<()> {
    if !project.backbones.is_empty() && !project.backbones.iter().any(|b| b == backbone) {
        return Err(ProjectError::Invalid(format!(
            "backbone {backbone:?} is not in {} search_space.backbone.values ({})",
            project.files.hpo.display(),
            project.backbones.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use podium_mlflow::SqliteStore;

    #[test]
    fn backbones_are_discovered_only_when_none_are_configured_or_requested() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::create_dir_all(config.join("experiment")).unwrap();
        std::fs::create_dir_all(config.join("hpo")).unwrap();
        std::fs::write(
            config.join("experiment/res_ner.yaml"),
            "experiment_name: \"res_ner\"\ndata_config: \"data/d.yaml\"\n\
             model_config: \"model.yaml\"\ntrain_config: \"train.yaml\"\n\
             hpo_config: \"hpo/prod.yaml\"\nenv_config: \"env.yaml\"\n\
             benchmark_config: \"benchmark.yaml\"\n",
        )
        .unwrap();
        std::fs::write(
            config.join("hpo/prod.yaml"),
            "search_space:\n  backbone:\n    type: \"choice\"\n    values: []\n",
        )
        .unwrap();
        let db = dir.path().join("mlflow.db");
        let store = SqliteStore::open(&db).unwrap();
        for name in [
            "res_ner-hpo-res_ner-hpo-x",
            "res_ner-hpo-deberta-v3",
            "res_ner-hpo-",
            "resXner-hpo-decoy",
            "other-hpo-x",
        ] {
            store.create_experiment(name).unwrap();
        }
        let gone = store.create_experiment("res_ner-hpo-gone").unwrap();
        store.delete_experiment(&gone).unwrap();
        drop(store);

        let env: EnvLookup =
            Arc::new(|name: &str| (name == "PODIUM_ENVIRONMENT").then(|| "local".to_string()));
        let project = ProjectOptions::new(&config, dir.path())
            .tracking_uri(Some(format!("sqlite:///{}", db.display())))
            .env(env)
            .open(StoreAccess::Existing)
            .unwrap();
        let found = project.resolve_backbones(&[]).unwrap();
        // The prefix comes off once; an empty remainder names no backbone.
        assert_eq!(found.names, ["deberta-v3", "res_ner-hpo-x"]);
        assert_eq!(
            found.discovered_with_prefix.as_deref(),
            Some("res_ner-hpo-")
        );
        assert!(found.note().unwrap().contains("deberta-v3, res_ner-hpo-x"));

        let asked = project.resolve_backbones(&["bert".to_string()]).unwrap();
        assert_eq!(asked.names, ["bert"]);
        assert_eq!(asked.note(), None);
    }
}
