//! `podium benchmark`, `podium rank` and `podium run`: plan and measure the champions'
//! benchmarks, and rank them from their recorded results.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use podium_bench::claim::{self, Claims};
use podium_bench::orchestrate::{
    BenchmarkOutcome, BenchmarkSettings, BenchmarkTarget, CheckpointMeasurer, Event, InFlight,
    Orchestrator, OrchestratorOptions, Outcome, PipelineResult, PlanStatus, PlannedBenchmark,
    RecordedBenchmark,
};
use podium_champion::{
    LatencyAggregation, Ranking, RankingInput, SelectionResults, rank_champions,
};
use serde::Serialize;

use crate::error::{ProjectError, Result};
use crate::project::Project;

/// What to benchmark, and how.
#[derive(Debug, Clone, Default)]
pub struct BenchmarkRequest {
    /// Backbones to benchmark; empty: every backbone of the experiment.
    pub backbones: Vec<String>,
    /// Measure again even when a result exists (like `run.mode: force_new`).
    pub force: bool,
    /// The HPO config the pipeline's benchmark workflow is given: the eval fingerprint of
    /// champions without the tag comes from it, and a benchmark `run.mode: null` inherits its
    /// `run.mode`; `None`: the experiment's `hpo_config` (what the pipeline's
    /// `load_all_configs` hands its benchmark workflow).
    pub hpo_config: Option<PathBuf>,
    /// Claim lease in seconds; `None`: the default lease.
    pub lease_seconds: Option<f64>,
}

/// The champions selected and their benchmarks planned: nothing measured, nothing written.
/// [`Benchmarks::run`] measures; [`Benchmarks::ranking`] ranks from what is recorded.
#[derive(Debug)]
pub struct Benchmarks {
    /// Every requested backbone's champion, or why it has none.
    pub selection: SelectionResults,
    /// One target per champion.
    pub targets: Vec<BenchmarkTarget>,
    /// What will happen to each target.
    pub plan: Vec<PlannedBenchmark>,
    orchestrator: Orchestrator,
    in_flight: InFlight,
    aggregation: LatencyAggregation,
}

impl Project {
    /// The benchmark settings of `benchmark.yaml`, with the fingerprints and the run mode the
    /// pipeline's benchmark workflow takes from the experiment's data config and from
    /// `hpo_config` (default: the experiment's `hpo_config`, see
    /// [`podium_variants::ExperimentFiles::default_hpo`]).
    pub fn benchmark_settings(
        &self,
        hpo_config: Option<&std::path::Path>,
        force: bool,
    ) -> Result<BenchmarkSettings> {
        let hpo_config = hpo_config.unwrap_or(&self.files.default_hpo);
        BenchmarkSettings::load(self.config_dir(), &self.files.data, hpo_config, force)
            .map_err(ProjectError::bench("loading the benchmark settings"))
    }

    /// Selects the champions and plans their benchmarks (one search and one file read per
    /// champion; no model load, no writes).
    pub fn plan_benchmarks(&self, request: &BenchmarkRequest) -> Result<Benchmarks> {
        let mut benchmarks = self.benchmark_targets(request)?;
        benchmarks.plan = benchmarks
            .orchestrator
            .plan(benchmarks.targets.clone())
            .map_err(ProjectError::bench("planning the benchmarks"))?;
        Ok(benchmarks)
    }

    /// The composite ranking of the champions of `backbones` from their recorded benchmark
    /// results (podium's runs of each key, else the disk result); measures nothing.
    /// `aggregation` `None`: the selection config's `benchmark.latency_aggregation`.
    pub fn ranking(
        &self,
        backbones: &[String],
        hpo_config: Option<&std::path::Path>,
        aggregation: Option<LatencyAggregation>,
    ) -> Result<RankReport> {
        let request = BenchmarkRequest {
            backbones: backbones.to_vec(),
            hpo_config: hpo_config.map(std::path::Path::to_path_buf),
            ..BenchmarkRequest::default()
        };
        let benchmarks = self.benchmark_targets(&request)?;
        Ok(RankReport {
            ranking: benchmarks.ranking(self, aggregation)?,
            errors: selection_errors(&benchmarks.selection),
        })
    }

    /// The champions and their targets, unplanned: what ranking needs, and planning starts from.
    pub(crate) fn benchmark_targets(&self, request: &BenchmarkRequest) -> Result<Benchmarks> {
        let selection = self.select(&request.backbones)?;
        let settings = self.benchmark_settings(request.hpo_config.as_deref(), request.force)?;
        let store = self.required_store()?.clone();
        let in_flight = InFlight::new(store.clone(), &self.tags);
        let lease = match request.lease_seconds {
            Some(seconds) => claim::parse_lease(&seconds.to_string()).ok_or_else(|| {
                ProjectError::Invalid(format!(
                    "--lease-seconds (or {}) {seconds}: expected a number of seconds in (0, {}]",
                    claim::LEASE_ENV,
                    claim::MAX_LEASE.as_secs()
                ))
            })?,
            None => claim::DEFAULT_LEASE,
        };
        let measurer = CheckpointMeasurer::new(settings.config.clone(), self.root());
        let orchestrator = Orchestrator::new(OrchestratorOptions {
            store: store.clone(),
            tags: self.tags.clone(),
            layout: self.layout.clone(),
            environment: self.environment.clone(),
            benchmark_experiment: self.experiment.benchmark_experiment_name(),
            settings,
            claims: Claims::new(store, claim::worker_id(), lease, &self.tags),
            in_flight: in_flight.clone(),
            measurer: Box::new(measurer),
            poll_interval: (lease / 10).clamp(Duration::from_millis(200), Duration::from_secs(5)),
        });
        let targets: Vec<BenchmarkTarget> = selection
            .champions
            .values()
            .map(|report| BenchmarkTarget::new(report, orchestrator.settings()))
            .collect();
        Ok(Benchmarks {
            selection,
            targets,
            plan: Vec::new(),
            orchestrator,
            in_flight,
            aggregation: self.selection.benchmark.latency_aggregation,
        })
    }
}

fn selection_errors(selection: &SelectionResults) -> BTreeMap<String, String> {
    selection
        .errors
        .iter()
        .map(|(backbone, err)| (backbone.clone(), err.to_string()))
        .collect()
}

impl Benchmarks {
    /// The books of in-flight runs and claims, for an interrupt handler
    /// ([`InFlight::interrupt_all`] marks them KILLED and releases the claims).
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.clone()
    }

    /// How many planned targets are not done already.
    pub fn remaining(&self) -> usize {
        self.plan
            .iter()
            .filter(|planned| !matches!(planned.status, PlanStatus::Done(_)))
            .count()
    }

    /// The plan as `--dry-run --format json` prints it.
    pub fn dry_run_report(&self) -> DryRunReport {
        DryRunReport {
            dry_run: true,
            plan: self
                .plan
                .iter()
                .map(|planned| {
                    let reason = match &planned.status {
                        PlanStatus::ToRun(reason) => Some(reason.clone()),
                        _ => None,
                    };
                    (
                        planned.target.backbone.clone(),
                        PlanEntry {
                            status: planned.status.label(),
                            key: planned.target.key.clone(),
                            champion_run_id: planned.target.champion.run_id.clone(),
                            reason,
                        },
                    )
                })
                .collect(),
            failed: selection_errors(&self.selection),
        }
    }

    /// Settles every planned target (skips, restores, or measures under a claim, waiting for
    /// keys other workers hold), telling `on_event` as it goes. Selection errors count as
    /// failures.
    pub fn run(&mut self, on_event: &dyn Fn(Event<'_>)) -> Result<BenchmarkSummary> {
        let plan = std::mem::take(&mut self.plan);
        let outcomes = self.orchestrator.run(plan, on_event);
        let mut summary = BenchmarkSummary::default();
        for (backbone, err) in &self.selection.errors {
            summary
                .failed
                .insert(backbone.clone(), format!("champion selection: {err}"));
        }
        for outcome in outcomes {
            summary.record(outcome);
        }
        summary.pipeline_results = self.pipeline_results()?;
        Ok(summary)
    }

    /// The composite ranking of the targets from their recorded benchmark results;
    /// `aggregation` `None`: the selection config's `benchmark.latency_aggregation`.
    pub fn ranking(
        &self,
        project: &Project,
        aggregation: Option<LatencyAggregation>,
    ) -> Result<Ranking> {
        Ok(self.ranked(project, aggregation)?.ranking)
    }

    /// [`Benchmarks::ranking`] with the recorded results it ranked (their tags included), so
    /// a report shows exactly the numbers the ranking used.
    pub fn ranked(
        &self,
        project: &Project,
        aggregation: Option<LatencyAggregation>,
    ) -> Result<RankedResults> {
        let recorded = self
            .orchestrator
            .recorded(&self.targets)
            .map_err(ProjectError::bench("reading benchmark results"))?;
        let inputs: Vec<RankingInput> = self
            .targets
            .iter()
            .zip(&recorded)
            .map(|(target, results)| RankingInput {
                backbone: target.backbone.clone(),
                metric: target.champion.metric,
                benchmarks: results.iter().map(|result| result.sample.clone()).collect(),
            })
            .collect();
        let ranking = rank_champions(
            &inputs,
            &project.selection,
            aggregation.unwrap_or(self.aggregation),
        );
        Ok(RankedResults { ranking, recorded })
    }

    /// FINISHED runs the pipeline measured for the targets (not podium's: never ranked).
    pub fn pipeline_results(&self) -> Result<Vec<PipelineResult>> {
        self.orchestrator
            .pipeline_results(&self.targets)
            .map_err(ProjectError::bench(
                "looking up benchmark runs the pipeline measured",
            ))
    }

    /// The benchmark settings in force.
    pub fn settings(&self) -> &BenchmarkSettings {
        self.orchestrator.settings()
    }
}

/// A ranking and the recorded results it was computed from, in target order.
#[derive(Debug, Clone)]
pub struct RankedResults {
    /// The composite ranking.
    pub ranking: Ranking,
    /// Each target's recorded results (podium's runs of its key, else the disk result).
    pub recorded: Vec<Vec<RecordedBenchmark>>,
}

/// One target of a [`DryRunReport`].
#[derive(Debug, Clone, Serialize)]
pub struct PlanEntry {
    /// `done`, `restore_cache`, `restore_mlflow` or `to_run`.
    pub status: &'static str,
    /// The benchmark key.
    pub key: String,
    /// The run whose checkpoint is measured.
    pub champion_run_id: String,
    /// Why it must run (`to_run` only).
    pub reason: Option<String>,
}

/// The plan, as `podium benchmark --dry-run --format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunReport {
    /// Always true.
    pub dry_run: bool,
    /// Per backbone.
    pub plan: BTreeMap<String, PlanEntry>,
    /// Backbones without a champion: why.
    pub failed: BTreeMap<String, String>,
}

/// What `podium benchmark` (and the benchmark step of `podium run`) did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchmarkSummary {
    /// Measured now.
    pub benchmarked: Vec<String>,
    /// Already benchmarked.
    pub skipped: Vec<String>,
    /// Restored from MLflow or the disk cache.
    pub restored: Vec<String>,
    /// Failed (selection or benchmark): why.
    pub failed: BTreeMap<String, String>,
    /// The metrics of every backbone that did not fail.
    #[serde(serialize_with = "serialize_results")]
    pub results: BTreeMap<String, BTreeMap<String, f64>>,
    /// FINISHED runs the pipeline measured for these champions: not podium's results.
    pub pipeline_results: Vec<PipelineResult>,
    /// Every target's outcome, in plan order.
    #[serde(skip)]
    pub outcomes: Vec<BenchmarkOutcome>,
}

fn serialize_results<S: serde::Serializer>(
    results: &BTreeMap<String, BTreeMap<String, f64>>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(results.len()))?;
    for (backbone, metrics) in results {
        map.serialize_entry(backbone, &Metrics(metrics))?;
    }
    map.end()
}

struct Metrics<'a>(&'a BTreeMap<String, f64>);

impl Serialize for Metrics<'_> {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        podium_mlflow::model::metric_map::serialize(self.0, serializer)
    }
}

impl BenchmarkSummary {
    /// The line scripts (and the demo) rely on.
    pub fn counts_line(&self) -> String {
        format!(
            "benchmarked {}, skipped {}, restored {}, failed {}",
            self.benchmarked.len(),
            self.skipped.len(),
            self.restored.len(),
            self.failed.len()
        )
    }

    /// How many of the champions' results the pipeline measured (shown, never counted).
    pub fn pipeline_line(&self) -> String {
        format!(
            "measured by the pipeline: {} (not podium's harness: not counted, not ranked)",
            self.pipeline_results.len()
        )
    }

    /// The counts of the summary.
    pub fn counts(&self) -> Counts {
        Counts {
            benchmarked: self.benchmarked.len(),
            skipped: self.skipped.len(),
            restored: self.restored.len(),
            failed: self.failed.len(),
        }
    }

    fn record(&mut self, outcome: BenchmarkOutcome) {
        let backbone = outcome.backbone.clone();
        match outcome.outcome {
            Outcome::Benchmarked => self.benchmarked.push(backbone.clone()),
            Outcome::Skipped => self.skipped.push(backbone.clone()),
            Outcome::RestoredCache | Outcome::RestoredMlflow => {
                self.restored.push(backbone.clone());
            }
            Outcome::Failed => {
                self.failed.insert(
                    backbone.clone(),
                    outcome
                        .error
                        .clone()
                        .unwrap_or_else(|| "failed".to_string()),
                );
            }
        }
        if outcome.outcome != Outcome::Failed {
            self.results.insert(backbone, outcome.metrics.clone());
        }
        self.outcomes.push(outcome);
    }
}

/// How many backbones each outcome had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Measured now.
    pub benchmarked: usize,
    /// Already benchmarked.
    pub skipped: usize,
    /// Restored.
    pub restored: usize,
    /// Failed.
    pub failed: usize,
}

/// `podium rank`'s answer: the ranking (what `podium rank --format json` prints), and the
/// backbones without a champion.
#[derive(Debug, Clone, Serialize)]
pub struct RankReport {
    /// The ranking.
    pub ranking: Ranking,
    /// Backbones without a champion: why.
    pub errors: BTreeMap<String, String>,
}

/// `podium run`'s answer: the benchmark summary, its counts and the ranking, as
/// `podium run --format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// What the benchmark step did.
    #[serde(flatten)]
    pub summary: BenchmarkSummary,
    /// Its counts.
    pub counts: Counts,
    /// The ranking after it.
    pub ranking: Ranking,
    /// The report page written after it (`podium run --report`, the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<crate::report::ReportOutcome>,
}
