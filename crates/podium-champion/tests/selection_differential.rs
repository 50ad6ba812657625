//! Differential test of champion selection against a plain Python statement of its rules
//! (tests/peers/selection_rules.py) on hundreds of random stores: stage fallbacks, parent links,
//! artifact tags on sweeps and trials, schema tags, NaN/inf/missing metrics, ties on metrics,
//! stable scores and start times, deleted and unfinished runs, refits found by key or link.
//! The stores are in memory (the rules are what is compared); the real-store paths are the
//! CLI tests on generated pipeline stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use podium_champion::config::{ArtifactCheckSource, CheckpointRun, SchemaPreference};
use podium_champion::{ChampionError, SelectionConfig, Selector};
use podium_fixtures::MemoryStore;
use podium_keys::TagRegistry;
use podium_mlflow::{Direction, Run, RunInfo, RunStatus};
use podium_variants::{Environment, OutputLayout};
use serde_json::{Value, json};

const EXPERIMENT: &str = "resume_ner_baseline-hpo-distilbert";
const CASES: u64 = 400;

/// xorshift64*: a small seeded generator, so every case is reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct Case {
    config: SelectionConfig,
    runs: Vec<Run>,
}

fn run(rng: &mut Rng, id: String, tags: BTreeMap<String, String>) -> Run {
    let status = *rng.pick(&[
        RunStatus::Finished,
        RunStatus::Finished,
        RunStatus::Finished,
        RunStatus::Finished,
        RunStatus::Failed,
        RunStatus::Running,
    ]);
    Run {
        info: RunInfo {
            run_id: id.clone(),
            experiment_id: "0".into(),
            run_name: id,
            status,
            start_time: Some(1_000 + rng.below(12) as i64),
            end_time: None,
            artifact_uri: String::new(),
            lifecycle_stage: if rng.chance(4) { "deleted" } else { "active" }.into(),
        },
        tags,
        params: BTreeMap::new(),
        metrics: BTreeMap::new(),
    }
}

fn random_case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let mut config = SelectionConfig::default();
    config.objective.direction = *rng.pick(&[Direction::Maximize, Direction::Minimize]);
    let rules = &mut config.champion_selection;
    rules.min_trials_per_group = 1 + rng.below(3) as usize;
    rules.top_k_for_stable_score = (1 + rng.below(3) as usize).min(rules.min_trials_per_group);
    rules.require_artifact_available = rng.chance(70);
    rules.artifact_check_source = ArtifactCheckSource::Tag;
    rules.prefer_schema_version = *rng.pick(&[
        SchemaPreference::Auto,
        SchemaPreference::Auto,
        SchemaPreference::V2,
        SchemaPreference::V1,
    ]);
    rules.allow_mixed_schema_groups = rng.chance(15);
    rules.checkpoint_source = if rng.chance(85) {
        CheckpointRun::Refit
    } else {
        CheckpointRun::Trial
    };

    // Random hex ids: their order has nothing to do with the order runs are created in.
    let mut ids: Vec<String> = (0..64)
        .map(|i| format!("{:08x}{i:02}", rng.next() as u32))
        .collect();
    let mut next_id = move || ids.pop().unwrap();
    let mut runs = Vec::new();
    let trial_stage = *rng.pick(&["hpo", "hpo", "hpo_trial"]);
    let with_backbone = rng.chance(30);
    let sweeps = 1 + rng.below(2);
    let mut trial_ids = Vec::new();
    for _ in 0..sweeps {
        let sweep_id = next_id();
        let mut tags = BTreeMap::from([("code.stage".to_string(), "hpo".to_string())]);
        if rng.chance(60) {
            tags.insert(
                "code.study.key_schema_version".into(),
                rng.pick(&["2.0", "1.0"]).to_string(),
            );
        }
        if rng.chance(70) {
            tags.insert(
                "code.artifact.available".into(),
                rng.pick(&["true", "false", "True", "no"]).to_string(),
            );
        }
        let mut sweep = run(&mut rng, sweep_id.clone(), tags);
        sweep.info.start_time = Some(900);
        runs.push(sweep);
        // Some sweeps have no trials at all (a crashed study), so some backbones no candidates.
        let trials = if rng.chance(20) { 0 } else { 1 + rng.below(8) };
        for _ in 0..trials {
            let id = next_id();
            let mut tags = BTreeMap::new();
            let stage = if rng.chance(90) {
                trial_stage
            } else {
                "hpo_trial"
            };
            tags.insert("code.stage".to_string(), stage.to_string());
            tags.insert("code.model".to_string(), "distilbert".to_string());
            if with_backbone && rng.chance(80) {
                tags.insert("code.backbone".to_string(), "distilbert".to_string());
            }
            if rng.chance(95) {
                tags.insert("mlflow.parentRunId".to_string(), sweep_id.clone());
            }
            if rng.chance(95) {
                tags.insert(
                    "code.study_key_hash".to_string(),
                    rng.pick(&["aaaa", "bbbb"]).to_string(),
                );
            }
            if rng.chance(20) {
                tags.insert(
                    "code.study.key_schema_version".to_string(),
                    rng.pick(&["2.0", "1.0", "3.0"]).to_string(),
                );
            }
            if rng.chance(30) {
                tags.insert(
                    "code.artifact.available".to_string(),
                    rng.pick(&["true", "false", "TRUE"]).to_string(),
                );
            }
            if rng.chance(80) {
                tags.insert(
                    "code.trial_key_hash".to_string(),
                    format!("tk{}", rng.below(12)),
                );
            }
            let mut trial = run(&mut rng, id.clone(), tags);
            let metric = match rng.below(10) {
                0 => None,
                1 => Some(f64::NAN),
                2 => Some(*rng.pick(&[f64::INFINITY, f64::MAX, -f64::MAX])),
                _ => Some(*rng.pick(&[0.7, 0.75, 0.8, 0.85, 0.9])),
            };
            if let Some(value) = metric {
                trial.metrics.insert("macro-f1".into(), value);
            }
            runs.push(trial);
            trial_ids.push(id);
        }
    }
    for _ in 0..rng.below(6) {
        if trial_ids.is_empty() {
            break;
        }
        let of = rng.pick(&trial_ids).clone();
        let of_key = runs
            .iter()
            .find(|r| r.id() == of)
            .and_then(|r| r.tag("code.trial_key_hash"))
            .map(str::to_string);
        let mut tags = BTreeMap::from([(
            "code.stage".to_string(),
            rng.pick(&["hpo_refit", "hpo_refit", "hpo"]).to_string(),
        )]);
        if let Some(key) = of_key.filter(|_| rng.chance(70)) {
            tags.insert("code.trial_key_hash".to_string(), key);
        }
        if rng.chance(70) {
            tags.insert("code.refit.of_trial_run_id".to_string(), of);
        }
        let id = next_id();
        runs.push(run(&mut rng, id, tags));
    }
    Case { config, runs }
}

fn metric_text(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{value:?}")
    }
}

fn case_json(case: &Case) -> Value {
    let rules = &case.config.champion_selection;
    json!({
        "model": "distilbert",
        "config": {
            "metric": "macro-f1",
            "direction": case.config.objective.direction.to_string(),
            "min_trials_per_group": rules.min_trials_per_group,
            "top_k_for_stable_score": rules.top_k_for_stable_score,
            "require_artifact_available": rules.require_artifact_available,
            "prefer_schema_version": rules.prefer_schema_version.to_string(),
            "allow_mixed_schema_groups": rules.allow_mixed_schema_groups,
            "checkpoint_source": rules.checkpoint_source.to_string(),
        },
        "runs": case.runs.iter().map(|run| json!({
            "id": run.id(),
            "status": run.info.status.as_str(),
            "start": run.info.start_time,
            "deleted": run.info.lifecycle_stage == "deleted",
            "tags": run.tags,
            "metrics": run.metrics.iter().map(|(k, v)| (k.clone(), metric_text(*v))).collect::<BTreeMap<_, _>>(),
        })).collect::<Vec<_>>(),
    })
}

fn podium_answer(case: &Case, root: &std::path::Path) -> Value {
    let store = MemoryStore::with_page_size(3);
    let experiment = store.experiment(EXPERIMENT);
    // Insert in a scrambled order: the answer must not depend on it.
    let mut runs = case.runs.clone();
    runs.reverse();
    for mut run in runs {
        run.info.experiment_id = experiment.clone();
        store.insert(run);
    }
    let tags = TagRegistry::defaults();
    let layout = OutputLayout::new(root);
    let selector = Selector {
        store: &store,
        config: &case.config,
        tags: &tags,
        layout: &layout,
        environment: &Environment::Local,
    };
    match selector.select("distilbert", EXPERIMENT) {
        Ok(report) => json!({
            "trial": report.champion.trial_run_id,
            "refit": report.champion.refit_run_id,
        }),
        Err(ChampionError::NoCandidates { .. }) => json!({"error": "no_candidates"}),
        Err(ChampionError::NoEligibleGroup { .. }) => json!({"error": "no_group"}),
        Err(ChampionError::RefitMissing { trial_run_id, .. }) => {
            json!({"error": "no_refit", "trial": trial_run_id})
        }
        Err(other) => json!({"error": other.to_string()}),
    }
}

#[test]
fn selection_matches_the_python_statement_of_the_rules() {
    let root = tempfile::tempdir().unwrap();
    let cases: Vec<Case> = (0..CASES).map(random_case).collect();
    let input = Value::Array(cases.iter().map(case_json).collect());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/selection_rules.py");
    let mut child = Command::new(podium_testkit::python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python peer");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "peer failed");
    let expected: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(expected.len(), cases.len());

    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for (seed, (case, want)) in cases.iter().zip(&expected).enumerate() {
        let got = podium_answer(case, root.path());
        assert_eq!(&got, want, "case {seed}: {}", case_json(case));
        let kind = want["error"].as_str().unwrap_or("champion").to_string();
        *outcomes.entry(kind).or_default() += 1;
    }
    // The random stores must exercise every outcome, or the comparison proves little.
    for kind in ["champion", "no_candidates", "no_group", "no_refit"] {
        assert!(
            outcomes.get(kind).copied().unwrap_or(0) >= 5,
            "{outcomes:?}"
        );
    }
}
