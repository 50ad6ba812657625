//! Rule 2's sweep verdicts without one request per sweep.
//!
//! The artifact rule reads each trial's parent (sweep) run. The pipeline tags its sweeps with
//! the same stage and backbone as their trials, so the sweeps stream past with the candidates
//! — after their trials, in MLflow's newest-first order. [`SweepVerdicts`] therefore holds a
//! trial back until its sweep has gone by, takes the verdict from the streamed sweep, and looks
//! up only the parents the stream never brings (another stage, a sweep still RUNNING, a deleted
//! one). That saves a `runs/get` per sweep (667 per backbone on the 100k-run store of
//! docs/PERFORMANCE.md; small next to the server's time on the candidate pages, but requests a
//! busy server need not answer). The rules do not depend on the order of their input, so
//! holding a trial back changes nothing but when it is counted.

use std::collections::{BTreeMap, HashMap};

use podium_keys::TagRegistry;
use podium_mlflow::Run;

use super::PARENT_RUN_ID_TAG;
use super::rules::artifact_verdict;

/// At most this many trials wait for their sweep (about 1 KiB each, projected); one more and
/// the parents they wait for are looked up, so memory stays bounded when sweeps never stream.
pub const MAX_WAITING_TRIALS: usize = 4_096;

/// Trials paired with their parent's [`artifact_verdict`] (None: no parent, no tag, or a parent
/// that cannot be read), as soon as it is known.
pub(crate) struct SweepVerdicts<'t, L> {
    tags: &'t TagRegistry,
    /// Reads a parent the stream did not bring: its verdict, None when it cannot be read.
    lookup: L,
    known: HashMap<String, Option<bool>>,
    /// By parent id; a BTreeMap so that look-ups go out in a fixed order.
    waiting: BTreeMap<String, Vec<Run>>,
    waiting_trials: usize,
    lookups: usize,
}

impl<'t, L: FnMut(&str) -> Option<bool>> SweepVerdicts<'t, L> {
    pub(crate) fn new(tags: &'t TagRegistry, lookup: L) -> Self {
        Self {
            tags,
            lookup,
            known: HashMap::new(),
            waiting: BTreeMap::new(),
            waiting_trials: 0,
            lookups: 0,
        }
    }

    /// Takes one streamed run; hands `ready` every run whose parent verdict is now known
    /// (this one, and the trials that waited for it if it is their sweep).
    pub(crate) fn visit(&mut self, run: Run, ready: &mut dyn FnMut(Run, Option<bool>)) {
        let parent = run.tag(PARENT_RUN_ID_TAG).map(str::to_string);
        // A run nobody names as parent yet is remembered only if it may be a sweep (no parent of
        // its own): one entry per sweep, not per trial.
        if parent.is_none() || self.waiting.contains_key(run.id()) {
            let verdict = artifact_verdict(&run, self.tags);
            self.known.insert(run.id().to_string(), verdict);
            if let Some(trials) = self.waiting.remove(run.id()) {
                self.waiting_trials -= trials.len();
                for trial in trials {
                    ready(trial, verdict);
                }
            }
        }
        let Some(parent) = parent else {
            ready(run, None);
            return;
        };
        if let Some(verdict) = self.known.get(&parent) {
            ready(run, *verdict);
            return;
        }
        self.waiting.entry(parent).or_default().push(run);
        self.waiting_trials += 1;
        if self.waiting_trials > MAX_WAITING_TRIALS {
            self.look_up_waiting(ready);
        }
    }

    /// The end of the stream: the parents still awaited are looked up.
    pub(crate) fn finish(mut self, ready: &mut dyn FnMut(Run, Option<bool>)) -> usize {
        self.look_up_waiting(ready);
        self.lookups
    }

    fn look_up_waiting(&mut self, ready: &mut dyn FnMut(Run, Option<bool>)) {
        for (parent, trials) in std::mem::take(&mut self.waiting) {
            let verdict = (self.lookup)(&parent);
            self.lookups += 1;
            self.known.insert(parent, verdict);
            for trial in trials {
                ready(trial, verdict);
            }
        }
        self.waiting_trials = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeMap;

    use podium_keys::Tag;
    use podium_mlflow::{RunInfo, RunStatus};

    use super::*;

    fn run(id: &str, parent: Option<&str>, available: Option<&str>) -> Run {
        let registry = TagRegistry::defaults();
        let mut tags = BTreeMap::new();
        if let Some(parent) = parent {
            tags.insert(PARENT_RUN_ID_TAG.to_string(), parent.to_string());
        }
        if let Some(available) = available {
            tags.insert(
                registry.get(Tag::ArtifactAvailable).to_string(),
                available.to_string(),
            );
            tags.insert(
                registry.get(Tag::StudyKeySchemaVersion).to_string(),
                "2.0".to_string(),
            );
        }
        Run {
            info: RunInfo {
                run_id: id.to_string(),
                experiment_id: "1".to_string(),
                run_name: id.to_string(),
                status: RunStatus::Finished,
                start_time: Some(1),
                end_time: None,
                artifact_uri: String::new(),
                lifecycle_stage: "active".to_string(),
            },
            tags,
            params: BTreeMap::new(),
            metrics: BTreeMap::new(),
        }
    }

    /// Every run handed out once, with its parent's verdict as a direct look-up would give it.
    fn drive(
        runs: Vec<Run>,
        parents: &BTreeMap<&str, Option<bool>>,
    ) -> (Vec<(String, Option<bool>)>, usize) {
        let tags = TagRegistry::defaults();
        let mut out = Vec::new();
        let mut verdicts = SweepVerdicts::new(&tags, |id: &str| parents.get(id).copied().flatten());
        let mut ready = |run: Run, verdict| out.push((run.id().to_string(), verdict));
        for run in runs {
            verdicts.visit(run, &mut ready);
        }
        let lookups = verdicts.finish(&mut ready);
        out.sort();
        (out, lookups)
    }

    #[test]
    fn streamed_sweeps_decide_without_a_lookup() {
        // Newest first: trials, then their sweep.
        let runs = vec![
            run("t2", Some("s1"), None),
            run("t1", Some("s1"), None),
            run("s1", None, Some("false")),
            run("u1", Some("s2"), None),
            run("s2", None, Some("true")),
            run("u2", Some("s2"), None),
        ];
        let (out, lookups) = drive(runs, &BTreeMap::new());
        assert_eq!(lookups, 0);
        let expected = [
            ("s1", None),
            ("s2", None),
            ("t1", Some(false)),
            ("t2", Some(false)),
            ("u1", Some(true)),
            ("u2", Some(true)),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(id, v)| (id.to_string(), *v))
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn parents_the_stream_never_brings_are_looked_up_once() {
        let runs = vec![
            run("t1", Some("gone"), None),
            run("t2", Some("gone"), None),
            run("t3", Some("unreadable"), None),
        ];
        let parents = BTreeMap::from([("gone", Some(false))]);
        let (out, lookups) = drive(runs, &parents);
        assert_eq!(lookups, 2);
        assert_eq!(
            out,
            vec![
                ("t1".to_string(), Some(false)),
                ("t2".to_string(), Some(false)),
                ("t3".to_string(), None)
            ]
        );
    }

    #[test]
    fn waiting_trials_stay_bounded_when_sweeps_never_stream() {
        let tags = TagRegistry::defaults();
        let mut lookups = 0;
        let mut verdicts = SweepVerdicts::new(&tags, |_: &str| {
            lookups += 1;
            Some(true)
        });
        let mut handed = 0;
        let mut most_waiting = 0;
        for index in 0..3 * MAX_WAITING_TRIALS {
            let parent = format!("sweep-{}", index % 7);
            verdicts.visit(
                run(&format!("t{index}"), Some(&parent), None),
                &mut |_, verdict| {
                    assert_eq!(verdict, Some(true));
                    handed += 1;
                },
            );
            most_waiting = most_waiting.max(verdicts.waiting_trials);
        }
        verdicts.finish(&mut |_, _| handed += 1);
        assert_eq!(handed, 3 * MAX_WAITING_TRIALS);
        assert!(most_waiting <= MAX_WAITING_TRIALS);
        // Seven sweeps, each looked up once: a verdict once known is kept.
        assert_eq!(lookups, 7);
    }
}
