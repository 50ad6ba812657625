//! `podium select`: each backbone's champion, as data.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use podium_champion::selection::GroupStatus;
use podium_champion::{ChampionReport, SelectionResults, Selector};
use serde::Serialize;

use crate::error::Result;
use crate::project::Project;

/// Every requested backbone's champion, and why the others have none. Serialises as
/// `podium select --format json` prints it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SelectReport {
    /// The champions, by backbone.
    pub champions: BTreeMap<String, ChampionReport>,
    /// Backbones without a champion: the reason.
    pub errors: BTreeMap<String, String>,
}

impl From<&SelectionResults> for SelectReport {
    fn from(results: &SelectionResults) -> Self {
        SelectReport {
            champions: results.champions.clone(),
            errors: results
                .errors
                .iter()
                .map(|(backbone, err)| (backbone.clone(), err.to_string()))
                .collect(),
        }
    }
}

/// How many of a backbone's study groups competed for the champion, of those considered (a
/// group of a schema version not used is not considered; one with too few trials is
/// considered but not eligible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GroupCounts {
    /// Groups that competed (ranked).
    pub eligible: usize,
    /// Groups of the schema version used.
    pub considered: usize,
}

impl GroupCounts {
    /// The counts of `report`'s groups.
    pub fn of(report: &ChampionReport) -> GroupCounts {
        let groups = &report.groups;
        GroupCounts {
            eligible: groups.iter().filter(|group| group.rank.is_some()).count(),
            considered: groups
                .iter()
                .filter(|group| group.status != GroupStatus::SchemaNotUsed)
                .count(),
        }
    }
}

/// Where one backbone's selection time went (`podium select --profile`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelectionTiming {
    /// The backbone.
    pub backbone: String,
    /// Wall time of the backbone's selection.
    pub wall: Duration,
    /// Time spent waiting on the store.
    pub store: Duration,
    /// Time spent parsing the store's answers.
    pub parsing: Duration,
    /// What remains: the selection rules.
    pub rules: Duration,
    /// Search pages read.
    pub pages: u64,
    /// Runs read.
    pub runs: u64,
    /// Entries (tags, params, metrics) read.
    pub rows: u64,
}

impl Project {
    fn selector(&self) -> Result<Selector<'_>> {
        Ok(Selector {
            store: self.required_store()?.as_ref(),
            config: &self.selection,
            tags: &self.tags,
            layout: &self.layout,
            environment: &self.environment,
        })
    }

    /// The champion of each of `backbones` (empty: every backbone of the experiment),
    /// selected concurrently; a backbone's failure is recorded and the others still answer.
    pub fn select(&self, backbones: &[String]) -> Result<SelectionResults> {
        let selector = self.selector()?;
        Ok(selector.select_many(&self.backbones(backbones)?, &self.experiment))
    }

    /// [`Project::select`], one backbone after another so that each one's store and parsing
    /// time is its own, with where the time went.
    pub fn select_profiled(
        &self,
        backbones: &[String],
    ) -> Result<(SelectionResults, Vec<SelectionTiming>)> {
        let selector = self.selector()?;
        podium_mlflow::timing::enable();
        let mut results = SelectionResults::default();
        let mut timings = Vec::new();
        let backbones = self.backbones(backbones)?;
        let unique: BTreeSet<&String> = backbones.iter().collect();
        for backbone in unique {
            let before = podium_mlflow::timing::snapshot();
            let started = Instant::now();
            let answer = selector.select(backbone, &self.experiment.hpo_experiment_name(backbone));
            let wall = started.elapsed();
            let spent = podium_mlflow::timing::snapshot().since(&before);
            timings.push(SelectionTiming {
                backbone: backbone.clone(),
                wall,
                store: spent.store,
                parsing: spent.parsing,
                rules: wall.saturating_sub(spent.store + spent.parsing),
                pages: spent.pages,
                runs: spent.runs,
                rows: spent.rows,
            });
            match answer {
                Ok(report) => {
                    results.champions.insert(backbone.clone(), report);
                }
                Err(err) => {
                    tracing::warn!("{err}");
                    results.errors.insert(backbone.clone(), err);
                }
            }
        }
        Ok((results, timings))
    }
}
