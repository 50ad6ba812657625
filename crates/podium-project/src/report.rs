//! `podium report` (and `podium run --report`): the decision as one self-contained HTML page
//! ([`podium_report`]), built from the same selection, recorded benchmark results and ranking
//! as `podium rank`, written atomically, and — with `--log-to-mlflow` — logged as the artifact
//! of one report run in the benchmark experiment.
//!
//! The report run is found again by its `report.kind` tag and its page replaced on later
//! reports. It carries no benchmark key, no study or trial hash and no metric, so neither
//! podium's "done" lookup (key + harness tag) nor the pipeline's existence check (key, then
//! study + trial hashes) nor its best-model pick (required metrics + grouping tags) ever counts
//! it as a benchmark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use podium_bench::HARNESS_VERSION;
use podium_bench::claim::now_ms;
use podium_bench::orchestrate::PipelineResult;
use podium_champion::LatencyAggregation;
use podium_keys::Tag;
use podium_mlflow::{Filter, MlflowError, RunInfo, RunStatus, ViewType, search_all};
use podium_report::model::ui_base;
use podium_report::{BenchmarkSettingsView, ReportData, ReportInputs, render_html};
use serde::Serialize;

use crate::benchmark::{BenchmarkRequest, Benchmarks, RankedResults};
use crate::error::{ProjectError, Result};
use crate::project::Project;

/// The value of the `report.kind` tag on podium's report run.
pub const REPORT_KIND: &str = "decision_report";

/// The report run's name.
pub const REPORT_RUN_NAME: &str = "podium-report";

/// The page's artifact path in the report run.
pub const REPORT_ARTIFACT: &str = "podium-report.html";

/// What `podium report` builds, and where it goes.
#[derive(Debug, Clone, Default)]
pub struct ReportRequest {
    /// Backbones to report on; empty: every backbone of the experiment.
    pub backbones: Vec<String>,
    /// The HPO config whose `run.mode` a benchmark `run.mode: null` inherits (as for `rank`).
    pub hpo_config: Option<PathBuf>,
    /// How several runs of a key become one latency; `None`: the selection config's.
    pub aggregation: Option<LatencyAggregation>,
    /// Where to write the page; `None`: [`Project::default_report_path`].
    pub out: Option<PathBuf>,
    /// Also log the page as the artifact of the experiment's report run.
    pub log_to_mlflow: bool,
}

/// The report written.
#[derive(Debug, Clone, Serialize)]
pub struct ReportOutcome {
    /// Where the page was written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// The recommended backbone, when a champion is ranked.
    pub recommended: Option<String>,
    /// Ranked champions.
    pub ranked: usize,
    /// Champions without a complete benchmark.
    pub unranked: usize,
    /// Backbones without a champion: why.
    pub errors: BTreeMap<String, String>,
    /// The report run, with `--log-to-mlflow`.
    pub mlflow: Option<ReportRun>,
}

/// The report run the page was logged to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRun {
    /// The run.
    pub run_id: String,
    /// The benchmark experiment holding it.
    pub experiment_id: String,
    /// The page's artifact path.
    pub artifact_path: String,
    /// Whether this report created the run (else it replaced the page of an existing one).
    pub created: bool,
    /// The run in MLflow's UI, when the store is a server.
    pub url: Option<String>,
}

impl Project {
    /// Where `podium report` writes without `--out`: `outputs/report/{experiment}-report.html`
    /// (under the outputs folder `paths.yaml` names for this platform).
    pub fn default_report_path(&self) -> PathBuf {
        let name: String = self
            .experiment
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.layout
            .outputs_dir()
            .join("report")
            .join(format!("{}-report.html", name.trim_start_matches('.')))
    }

    /// `podium report`: selects the champions, reads their recorded benchmark results and
    /// ranks them exactly as `podium rank` does (measuring nothing), renders the page, writes
    /// it atomically and, when asked, logs it to the report run.
    pub fn report(&self, request: &ReportRequest) -> Result<ReportOutcome> {
        let benchmarks = self.benchmark_targets(&BenchmarkRequest {
            backbones: request.backbones.clone(),
            hpo_config: request.hpo_config.clone(),
            ..BenchmarkRequest::default()
        })?;
        let ranked = benchmarks.ranked(self, request.aggregation)?;
        let pipeline = benchmarks.pipeline_results()?;
        benchmarks.write_report(
            self,
            &ranked,
            &pipeline,
            request.out.as_deref(),
            request.log_to_mlflow,
        )
    }
}

impl Benchmarks {
    /// The report's data model of these champions, their ranked results and the pipeline's
    /// results, with `generated_at` as its time.
    pub fn report_data(
        &self,
        project: &Project,
        ranked: &RankedResults,
        pipeline_results: &[PipelineResult],
        generated_at: &str,
    ) -> Result<ReportData> {
        let selection_errors: BTreeMap<String, String> = self
            .selection
            .errors
            .iter()
            .map(|(backbone, err)| (backbone.clone(), err.to_string()))
            .collect();
        let tracking_uri = project.tracking_uri().unwrap_or_default().to_string();
        let experiment_ids = if ui_base(&tracking_uri).is_some() {
            self.experiment_ids(project)?
        } else {
            BTreeMap::new()
        };
        let settings = self.settings();
        let benchmark = BenchmarkSettingsView {
            config_hash: settings.config_hash.clone(),
            benchmark_config_hash: settings.benchmark_config_hash.clone(),
            batch_sizes: settings.config.batch_sizes.clone(),
            max_length: settings.config.max_length,
            device: settings.config.device.clone(),
            harness_version: HARNESS_VERSION,
        };
        let benchmark_experiment = project.experiment.benchmark_experiment_name();
        Ok(ReportData::build(&ReportInputs {
            experiment: &project.experiment.name,
            benchmark_experiment: &benchmark_experiment,
            metric: &project.selection.objective.metric,
            direction: project.selection.objective.direction,
            champions: &self.selection.champions,
            selection_errors: &selection_errors,
            targets: &self.targets,
            recorded: &ranked.recorded,
            ranking: &ranked.ranking,
            pipeline_results,
            tags: &project.tags,
            benchmark: &benchmark,
            tracking_uri: &tracking_uri,
            experiment_ids: &experiment_ids,
            generated_at,
            podium_version: env!("CARGO_PKG_VERSION"),
        }))
    }

    /// The ids of the champions' HPO experiments and of the benchmark experiment, for links.
    fn experiment_ids(&self, project: &Project) -> Result<BTreeMap<String, String>> {
        let store = project.required_store()?;
        let mut names: Vec<String> = self
            .selection
            .champions
            .values()
            .map(|report| report.experiment.clone())
            .collect();
        names.push(project.experiment.benchmark_experiment_name());
        let mut ids = BTreeMap::new();
        for name in names {
            let found = store
                .get_experiment_by_name(&name)
                .map_err(ProjectError::mlflow(format!(
                    "looking up experiment {name}"
                )))?;
            if let Some(experiment) = found {
                ids.insert(name, experiment.experiment_id);
            }
        }
        Ok(ids)
    }

    /// Renders the report of these champions and writes it to `out` (default
    /// [`Project::default_report_path`]) atomically; with `log_to_mlflow`, also logs it to the
    /// report run. What `podium run --report` calls after benchmarking, with the results it
    /// ranked.
    pub fn write_report(
        &self,
        project: &Project,
        ranked: &RankedResults,
        pipeline_results: &[PipelineResult],
        out: Option<&Path>,
        log_to_mlflow: bool,
    ) -> Result<ReportOutcome> {
        let generated_at = podium_report::text::utc_timestamp(now_ms());
        let data = self.report_data(project, ranked, pipeline_results, &generated_at)?;
        let html = render_html(&data).map_err(|err| ProjectError::Invalid(err.to_string()))?;
        let path = out.map_or_else(|| project.default_report_path(), Path::to_path_buf);
        podium_variants::fs::write_atomic(&path, html.as_bytes())?;
        tracing::info!("wrote the report {} ({} bytes)", path.display(), html.len());
        let mlflow = if log_to_mlflow {
            Some(log_report(project, &path, &generated_at)?)
        } else {
            None
        };
        Ok(ReportOutcome {
            recommended: data
                .recommendation
                .as_ref()
                .map(|best| best.backbone.clone()),
            ranked: data.champions.len(),
            unranked: data.unranked.len(),
            errors: data
                .selection_errors
                .iter()
                .map(|item| (item.backbone.clone(), item.reason.clone()))
                .collect(),
            path,
            bytes: html.len(),
            mlflow,
        })
    }
}

/// Logs the page at `page` as the artifact [`REPORT_ARTIFACT`] of the benchmark experiment's
/// report run: the oldest run tagged `report.kind = decision_report` (its page replaced), else
/// a new one (RUNNING, then FINISHED once the page is there; FAILED if the upload fails).
fn log_report(project: &Project, page: &Path, generated_at: &str) -> Result<ReportRun> {
    let store = project.required_store()?.as_ref();
    let tags = &project.tags;
    let name = project.experiment.benchmark_experiment_name();
    let failed = |what: &str| ProjectError::mlflow(format!("{what} (report run in {name})"));
    let experiment_id = match store
        .get_experiment_by_name(&name)
        .map_err(failed("looking up the benchmark experiment"))?
    {
        Some(experiment) if !experiment.is_active() => {
            return Err(ProjectError::Invalid(format!(
                "experiment {name} (id {}) is deleted; restore it to log the report there",
                experiment.experiment_id
            )));
        }
        Some(experiment) => experiment.experiment_id,
        None => match store.create_experiment(&name) {
            Ok(id) => id,
            Err(MlflowError::AlreadyExists { .. }) => store
                .get_experiment_by_name(&name)
                .map_err(failed("looking up the benchmark experiment"))?
                .map(|experiment| experiment.experiment_id)
                .ok_or_else(|| {
                    ProjectError::Invalid(format!("experiment {name} vanished while created"))
                })?,
            Err(err) => return Err(failed("creating the benchmark experiment")(err)),
        },
    };
    let kind = tags.get(Tag::ReportKind);
    let mut existing = search_all(
        store,
        std::slice::from_ref(&experiment_id),
        &Filter::new().tag_eq(kind, REPORT_KIND),
        ViewType::ActiveOnly,
    )
    .map_err(failed("searching for the report run"))?;
    existing.sort_by(|a, b| {
        a.info
            .start_time
            .cmp(&b.info.start_time)
            .then_with(|| a.id().cmp(b.id()))
    });
    if existing.len() > 1 {
        tracing::warn!(
            "{} report runs in {name}; updating the oldest, {}",
            existing.len(),
            existing[0].id()
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    let (info, created): (RunInfo, bool) = match existing.into_iter().next() {
        Some(run) => (run.info, false),
        None => {
            let run_tags = BTreeMap::from([
                (kind.to_string(), REPORT_KIND.to_string()),
                (
                    tags.get(Tag::ReportGeneratedAt).to_string(),
                    generated_at.to_string(),
                ),
                (
                    tags.get(Tag::ReportPodiumVersion).to_string(),
                    version.to_string(),
                ),
            ]);
            let info = store
                .create_run(&experiment_id, REPORT_RUN_NAME, now_ms(), &run_tags)
                .map_err(failed("creating the report run"))?;
            (info, true)
        }
    };
    let run_id = info.run_id.clone();
    let finish = || -> std::result::Result<(), MlflowError> {
        store.log_artifact(&info, REPORT_ARTIFACT, page)?;
        store.log_batch(
            &run_id,
            &[],
            &[],
            &[
                (tags.get(Tag::ReportGeneratedAt), generated_at),
                (tags.get(Tag::ReportPodiumVersion), version),
            ],
        )?;
        if info.status != RunStatus::Finished {
            store.update_run(&run_id, RunStatus::Finished, Some(now_ms()))?;
        }
        Ok(())
    };
    if let Err(err) = finish() {
        if created && let Err(mark) = store.update_run(&run_id, RunStatus::Failed, Some(now_ms())) {
            tracing::warn!("cannot mark report run {run_id} FAILED: {mark}");
        }
        return Err(failed(&format!(
            "logging {REPORT_ARTIFACT} to run {run_id}"
        ))(err));
    }
    tracing::info!(
        "{} report run {run_id} in {name} with {REPORT_ARTIFACT}",
        if created { "created" } else { "updated" }
    );
    let url = project
        .tracking_uri()
        .and_then(ui_base)
        .map(|base| format!("{base}/#/experiments/{experiment_id}/runs/{run_id}"));
    Ok(ReportRun {
        run_id,
        experiment_id,
        artifact_path: REPORT_ARTIFACT.to_string(),
        created,
        url,
    })
}
