//! One named test per selection rule, on the pure core and through an in-memory store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod selection_support;

use std::path::Path;

use podium_champion::config::{
    ArtifactCheckSource, CheckpointRun, SchemaPreference, SelectionConfig,
};
use podium_champion::selection::{GroupStatus, RefitMatch, choose_refit, choose_trial};
use podium_champion::{ChampionError, ChampionReport, Selector};
use podium_fixtures::MemoryStore;
use podium_keys::TagRegistry;
use podium_mlflow::{Direction, Run, RunStatus};
use podium_variants::{Environment, ExperimentConfig, OutputLayout};
use selection_support::{RunExt, group, refit, trial};

fn tags() -> TagRegistry {
    TagRegistry::defaults()
}

fn config() -> SelectionConfig {
    SelectionConfig::default()
}

fn trial_config() -> SelectionConfig {
    let mut config = config();
    config.champion_selection.checkpoint_source = CheckpointRun::Trial;
    config
}

fn choose(runs: &[Run], config: &SelectionConfig) -> Result<(String, String, f64), ChampionError> {
    let choice = choose_trial("distilbert", runs, config, &tags(), &|run: &Run| {
        run.tag("code.artifact.available")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    })?;
    Ok((
        choice.trial.id().to_string(),
        choice.study_key_hash,
        choice.stable_score,
    ))
}

fn v1(mut runs: Vec<Run>) -> Vec<Run> {
    for run in &mut runs {
        run.tags
            .insert("code.study.key_schema_version".into(), "1.0".into());
    }
    runs
}

/// A store with experiment `podium-ner-hpo-distilbert` holding `runs`.
fn store_with(runs: Vec<Run>) -> MemoryStore {
    let store = MemoryStore::new();
    let id = store.experiment("podium-ner-hpo-distilbert");
    for run in runs {
        store.insert(run.experiment(&id));
    }
    store
}

fn select_with(
    store: &MemoryStore,
    config: &SelectionConfig,
    root: &Path,
) -> Result<ChampionReport, ChampionError> {
    let tags = tags();
    let layout = OutputLayout::new(root);
    Selector {
        store,
        config,
        tags: &tags,
        layout: &layout,
        environment: &Environment::Local,
    }
    .select("distilbert-base-uncased", "podium-ner-hpo-distilbert")
}

fn select(runs: Vec<Run>, config: &SelectionConfig) -> Result<ChampionReport, ChampionError> {
    let root = tempfile::tempdir().unwrap();
    select_with(&store_with(runs), config, root.path())
}

#[test]
fn v1_and_v2_groups_are_never_mixed() {
    // The v1 group scores higher, but v2 is preferred: v1 must not even compete.
    let mut runs = v1(group("old", &[0.95, 0.96, 0.97]));
    runs.extend(group("new", &[0.80, 0.81, 0.82]));
    let (run, study, _) = choose(&runs, &trial_config()).unwrap();
    assert_eq!((run.as_str(), study.as_str()), ("new-2", "new"));

    let choice = choose_trial("distilbert", &runs, &trial_config(), &tags(), &|_| true).unwrap();
    assert_eq!(choice.schema_version_used, "2.0");
    assert_eq!(choice.dropped.schema_not_used, 3);
    let old = choice
        .groups
        .iter()
        .find(|g| g.study_key_hash == "old")
        .unwrap();
    assert_eq!(old.status, GroupStatus::SchemaNotUsed);
    assert_eq!(old.rank, None);

    let mut prefer_v1 = trial_config();
    prefer_v1.champion_selection.prefer_schema_version = SchemaPreference::V1;
    assert_eq!(choose(&runs, &prefer_v1).unwrap().1, "old");

    let mut auto = trial_config();
    auto.champion_selection.prefer_schema_version = SchemaPreference::Auto;
    assert_eq!(choose(&runs, &auto).unwrap().1, "new");

    // Only when asked do they compete together.
    let mut mixed = trial_config();
    mixed.champion_selection.allow_mixed_schema_groups = true;
    let choice = choose_trial("distilbert", &runs, &mixed, &tags(), &|_| true).unwrap();
    assert_eq!(choice.study_key_hash, "old");
    assert_eq!(choice.schema_version, "1.0");
    assert_eq!(choice.schema_version_used, "mixed");
}

#[test]
fn prefer_v2_with_only_v1_present_gives_no_champion_with_a_clear_reason() {
    let runs = v1(group("old", &[0.9, 0.91, 0.92]));
    let err = choose(&runs, &trial_config()).unwrap_err();
    let ChampionError::NoEligibleGroup {
        reason, dropped, ..
    } = &err
    else {
        panic!("unexpected {err}");
    };
    assert!(
        reason.contains("only schema 1.0 groups") && reason.contains("prefer_schema_version"),
        "{reason}"
    );
    assert!(
        reason.contains("set prefer_schema_version to \"1.0\""),
        "{reason}"
    );
    assert_eq!(dropped.schema_not_used, 3);
    let message = err.to_string();
    assert!(message.starts_with("distilbert: no champion"), "{message}");

    // auto is v2 only, as in the pipeline: v1 groups are selected only when asked for.
    let mut auto = trial_config();
    auto.champion_selection.prefer_schema_version = SchemaPreference::Auto;
    let reason = choose(&runs, &auto).unwrap_err().to_string();
    assert!(
        reason.contains("prefer_schema_version is \"auto\""),
        "{reason}"
    );
}

#[test]
fn missing_schema_tag_means_v2_and_any_other_version_is_v1() {
    // The pipeline's trial runs carry no schema tag: they are v2.
    let mut runs: Vec<Run> = group("untagged", &[0.7, 0.71, 0.72])
        .into_iter()
        .map(|run| run.tag_removed("code.study.key_schema_version"))
        .collect();
    let choice = choose_trial("distilbert", &runs, &trial_config(), &tags(), &|_| true).unwrap();
    assert_eq!(choice.trial.id(), "untagged-2");
    assert_eq!(choice.schema_version, "2.0");
    // "1.0" and any value but "2.0" form v1 groups, selected with prefer "1.0".
    runs = v1(group("legacy", &[0.5, 0.51, 0.52]));
    runs.push(trial("odd", "legacy", 0.99).tag_set("code.study.key_schema_version", "3.0"));
    let mut prefer_v1 = trial_config();
    prefer_v1.champion_selection.prefer_schema_version = SchemaPreference::V1;
    let choice = choose_trial("distilbert", &runs, &prefer_v1, &tags(), &|_| true).unwrap();
    assert_eq!(choice.trial.id(), "odd");
    assert_eq!(choice.schema_version, "1.0");
    assert_eq!(choice.counted_trials, 4);
}

#[test]
fn runs_without_a_parent_are_not_trials() {
    let mut runs = group("a", &[0.5, 0.6, 0.7]);
    runs.push(trial("sweep-a", "a", 0.99).tag_removed("mlflow.parentRunId"));
    let choice = choose_trial("distilbert", &runs, &trial_config(), &tags(), &|_| true).unwrap();
    assert_eq!(choice.trial.id(), "a-2");
    assert_eq!(choice.dropped.not_a_child_run, 1);
}

#[test]
fn runs_without_study_key_hash_are_dropped() {
    let mut runs = group("a", &[0.5, 0.6, 0.7]);
    runs.push(trial("lost", "x", 0.99).tag_removed("code.study_key_hash"));
    runs.push(trial("blank", "", 0.99));
    let choice = choose_trial("distilbert", &runs, &trial_config(), &tags(), &|_| true).unwrap();
    assert_eq!(choice.trial.id(), "a-2");
    assert_eq!(choice.dropped.missing_study_key_hash, 2);
}

#[test]
fn top_k_is_clamped_to_min_trials_and_even_k_averages_the_middle_two() {
    let config = SelectionConfig::from_yaml_str(
        "champion_selection:\n  min_trials_per_group: 2\n  top_k_for_stable_score: 5\n  checkpoint_source: trial\n",
        Path::new("best_model_selection.yaml"),
    )
    .unwrap();
    assert_eq!(config.champion_selection.top_k_for_stable_score, 2);
    // Best 2 of a: 0.9, 0.7 → 0.8. Without the clamp (K=5 → all 4 values) it would be 0.6.
    let mut runs = group("a", &[0.9, 0.7, 0.3, 0.1]);
    runs.extend(group("b", &[0.75, 0.74]));
    let (run, study, stable) = choose(&runs, &config).unwrap();
    assert_eq!((run.as_str(), study.as_str()), ("a-0", "a"));
    assert!((stable - 0.8).abs() < 1e-12, "{stable}");
}

#[test]
fn stable_score_is_the_median_of_the_best_k() {
    // One lucky trial does not make a group win: median of best 3.
    let mut runs = group("steady", &[0.80, 0.81, 0.82, 0.10]);
    runs.extend(group("lucky", &[0.99, 0.60, 0.50]));
    let (run, study, stable) = choose(&runs, &trial_config()).unwrap();
    assert_eq!((run.as_str(), study.as_str()), ("steady-2", "steady"));
    assert_eq!(stable, 0.81);
}

#[test]
fn groups_below_min_trials_are_dropped() {
    // "tiny" has the best values but only two finite ones (NaN and a missing metric do not count).
    let mut runs = group("tiny", &[0.99, 0.98, f64::NAN]);
    runs.push(trial("tiny-missing", "tiny", 0.0).metric_removed());
    runs.extend(group("big", &[0.5, 0.6, 0.7]));
    let choice = choose_trial("distilbert", &runs, &trial_config(), &tags(), &|_| true).unwrap();
    assert_eq!(choice.study_key_hash, "big");
    assert_eq!(choice.dropped.group_below_min_trials, 2);
    assert_eq!(choice.dropped.non_finite_metric, 1);
    assert_eq!(choice.dropped.missing_metric, 1);
    let tiny = choice
        .groups
        .iter()
        .find(|g| g.study_key_hash == "tiny")
        .unwrap();
    assert_eq!(tiny.status, GroupStatus::BelowMinTrials);
    assert_eq!((tiny.runs, tiny.counted_trials), (4, 2));

    let only_tiny = group("tiny", &[0.99, 0.98]);
    let err = choose(&only_tiny, &trial_config()).unwrap_err().to_string();
    assert!(
        err.contains("at least 3 trials") && err.contains("largest group has 2"),
        "{err}"
    );
}

#[test]
fn non_finite_metrics_and_sentinels_never_count() {
    let sentinel = 1.797_693_134_862_315_7e308;
    let mut runs = group("inf", &[f64::INFINITY, sentinel, sentinel, f64::MAX, 0.1]);
    runs.extend(group("ok", &[0.5, 0.5, 0.5]));
    let choice = choose_trial("distilbert", &runs, &trial_config(), &tags(), &|_| true).unwrap();
    assert_eq!(choice.study_key_hash, "ok");
    assert_eq!(choice.dropped.non_finite_metric, 4);

    let mut minimize = trial_config();
    minimize.objective.direction = Direction::Minimize;
    let mut runs = group("neg", &[f64::NEG_INFINITY, -sentinel, -f64::MAX, f64::NAN]);
    runs.extend(group("ok", &[0.5, 0.4, 0.3]));
    let choice = choose_trial("distilbert", &runs, &minimize, &tags(), &|_| true).unwrap();
    assert_eq!(choice.trial.id(), "ok-2");
    assert_eq!(choice.dropped.non_finite_metric, 4);
}

#[test]
fn winner_ties_go_to_the_group_whose_newest_run_started_last() {
    let mut runs: Vec<Run> = group("b", &[0.8, 0.8, 0.8, 0.8])
        .into_iter()
        .map(|run| run.started(100))
        .collect();
    runs.extend(
        group("a", &[0.8, 0.8, 0.8])
            .into_iter()
            .map(|run| run.started(50)),
    );
    assert_eq!(choose(&runs, &trial_config()).unwrap().1, "b");
    // A newer run in "a" (even one whose metric does not count) makes "a" the newest group.
    runs.push(trial("a-late", "a", f64::NAN).started(200));
    assert_eq!(choose(&runs, &trial_config()).unwrap().1, "a");
    // Same newest start: the group of the smaller run id.
    let mut runs: Vec<Run> = group("y", &[0.8, 0.8, 0.8])
        .into_iter()
        .map(|run| run.started(7))
        .collect();
    runs.extend(
        group("x", &[0.8, 0.8, 0.8])
            .into_iter()
            .map(|run| run.started(7)),
    );
    assert_eq!(choose(&runs, &trial_config()).unwrap().1, "x");
}

#[test]
fn champion_trial_ties_go_to_earlier_start_then_smaller_run_id() {
    let runs = vec![
        trial("r3", "g", 0.9).started(50),
        trial("r2", "g", 0.9).started(10),
        trial("r1", "g", 0.9).started(10),
        trial("r0", "g", 0.5).started(1),
    ];
    assert_eq!(choose(&runs, &trial_config()).unwrap().0, "r1");
    let later: Vec<Run> = runs
        .into_iter()
        .map(|run| {
            if run.id() == "r1" {
                run.started(99)
            } else {
                run
            }
        })
        .collect();
    assert_eq!(choose(&later, &trial_config()).unwrap().0, "r2");
}

#[test]
fn minimize_picks_the_smallest() {
    let mut config = trial_config();
    config.objective.direction = Direction::Minimize;
    let mut runs = group("low", &[0.2, 0.1, 0.3]);
    runs.extend(group("high", &[0.9, 0.05, 0.95]));
    let (run, study, stable) = choose(&runs, &config).unwrap();
    assert_eq!(
        (run.as_str(), study.as_str(), stable),
        ("low-1", "low", 0.2)
    );
}

#[test]
fn artifact_tag_rule_applies_to_trials() {
    let runs = vec![
        trial("yes-upper", "g", 0.7).tag_set("code.artifact.available", "TRUE"),
        trial("yes-title", "g", 0.6).tag_set("code.artifact.available", "True"),
        trial("yes", "g", 0.5),
        trial("no", "g", 0.99).tag_set("code.artifact.available", "false"),
        trial("unknown", "g", 0.98).tag_removed("code.artifact.available"),
    ];
    let choice = choose_trial(
        "distilbert",
        &runs,
        &trial_config(),
        &tags(),
        &|run: &Run| podium_champion::selection::artifact_tag_true(run, &TagRegistry::defaults()),
    )
    .unwrap();
    assert_eq!(choice.trial.id(), "yes-upper");
    assert_eq!(choice.dropped.artifact_unavailable, 2);

    // Not required → everything competes.
    let mut relaxed = trial_config();
    relaxed.champion_selection.require_artifact_available = false;
    assert_eq!(choose(&runs, &relaxed).unwrap().0, "no");
    // With either checkpoint source.
    let choice = choose_trial("distilbert", &runs, &config(), &tags(), &|run: &Run| {
        podium_champion::selection::artifact_tag_true(run, &TagRegistry::defaults())
    })
    .unwrap();
    assert_eq!(choice.trial.id(), "yes-upper");
}

#[test]
fn the_parent_sweeps_artifact_tag_decides_first() {
    use podium_champion::selection::trial_artifact_available;
    let tags = tags();
    let sweep = |value: Option<&str>, schema: bool| {
        let mut run = trial("sweep", "g", 0.0).tag_removed("mlflow.parentRunId");
        run.tags.remove("code.artifact.available");
        if let Some(value) = value {
            run.tags
                .insert("code.artifact.available".into(), value.into());
        }
        if !schema {
            run.tags.remove("code.study.key_schema_version");
        }
        run
    };
    let trial_true = trial("t", "g", 0.5);
    let trial_false = trial("t", "g", 0.5).tag_set("code.artifact.available", "false");
    // The parent's "false" drops a trial whose own tag says "true"; its "True" keeps a trial
    // whose own tag says "false".
    assert!(!trial_artifact_available(
        &trial_true,
        Some(&sweep(Some("false"), true)),
        &tags
    ));
    assert!(trial_artifact_available(
        &trial_false,
        Some(&sweep(Some("True"), true)),
        &tags
    ));
    // A legacy parent (no schema tag) saying "false" keeps the trial.
    assert!(trial_artifact_available(
        &trial_true,
        Some(&sweep(Some("false"), false)),
        &tags
    ));
    // A parent without the tag (or none readable): the trial's own tag, same rule.
    assert!(!trial_artifact_available(
        &trial_false,
        Some(&sweep(None, true)),
        &tags
    ));
    assert!(!trial_artifact_available(&trial_false, None, &tags));
    let legacy_trial = trial_false
        .clone()
        .tag_removed("code.study.key_schema_version");
    assert!(trial_artifact_available(&legacy_trial, None, &tags));
    // No tag anywhere: kept.
    let untagged = trial("t", "g", 0.5).tag_removed("code.artifact.available");
    assert!(trial_artifact_available(
        &untagged,
        Some(&sweep(None, true)),
        &tags
    ));

    // Through a store: the sweep run is read by its id.
    let mut runs = group("good", &[0.7, 0.71, 0.72]);
    runs.extend(group("bad", &[0.9, 0.91, 0.92]));
    runs.push(sweep(Some("false"), true).tag_set("code.stage", "hpo_sweep"));
    let mut bad_sweep = runs.pop().unwrap();
    bad_sweep.info.run_id = "sweep-bad".into();
    runs.push(bad_sweep);
    let report = select(runs, &trial_config()).unwrap();
    assert_eq!(report.champion.study_key_hash, "good");
    assert_eq!(report.dropped.artifact_unavailable, 3);
}

fn make_checkpoint(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("config.json"), "{}").unwrap();
    std::fs::write(dir.join("model.safetensors"), "weights").unwrap();
}

#[test]
fn artifact_disk_rule_checks_real_directories() {
    let root = tempfile::tempdir().unwrap();
    // The tag says false everywhere: only the disk counts. Trial key hashes "0trial…", "1trial…".
    let runs: Vec<Run> = group("studyhash", &[0.9, 0.8, 0.7, 0.6])
        .into_iter()
        .enumerate()
        .map(|(i, run)| {
            run.tag_set("code.artifact.available", "false")
                .tag_set("code.trial_key_hash", &format!("{i}trialhash"))
        })
        .collect();
    // studyhash-1: checkpoint in the Python layout; -2: via the checkpoint_path tag;
    // -3: a directory without weights.
    make_checkpoint(&root.path().join(
        "outputs/hpo/local/distilbert/hpo_distilbert_v2/study-studyhas/trial-1trialha/checkpoint",
    ));
    let ckpt = root.path().join("elsewhere/ckpt");
    make_checkpoint(&ckpt);
    let half = root.path().join("half");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::write(half.join("config.json"), "{}").unwrap();
    let runs: Vec<Run> = runs
        .into_iter()
        .map(|run| match run.id() {
            "studyhash-2" => run.tag_set("code.artifact.checkpoint_path", ckpt.to_str().unwrap()),
            "studyhash-3" => run.tag_set("code.artifact.checkpoint_path", half.to_str().unwrap()),
            _ => run,
        })
        .collect();

    let mut config = trial_config();
    config.champion_selection.artifact_check_source = ArtifactCheckSource::Disk;
    config.champion_selection.min_trials_per_group = 1;
    config.champion_selection.top_k_for_stable_score = 1;
    let store = store_with(runs);
    let report = select_with(&store, &config, root.path()).unwrap();
    // -0 (0.9) has nothing on disk, -3 has no weights: -1 (0.8) wins.
    assert_eq!(report.champion.trial_run_id, "studyhash-1");
    assert_eq!(report.dropped.artifact_unavailable, 2);
    assert_eq!(report.champion.counted_trials, 2);
    let local = report.champion.checkpoint.local.expect("resolved locally");
    assert!(
        local.path.ends_with("trial-1trialha/checkpoint"),
        "{local:?}"
    );

    // The tag rule on the same runs finds nothing, and says so.
    config.champion_selection.artifact_check_source = ArtifactCheckSource::Tag;
    let err = select_with(&store, &config, root.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no trial run has an available checkpoint"),
        "{err}"
    );
}

#[test]
fn refit_is_found_by_trial_key_hash_first() {
    let runs = group("g", &[0.7, 0.9, 0.8]);
    let champion = runs[1].clone();
    // Linked by tag but with another trial key hash: the key hash wins.
    let linked = refit("refit-linked", &champion)
        .tag_set("code.trial_key_hash", "tk-other")
        .started(9_000);
    let by_hash = refit("refit-hash", &champion)
        .tag_removed("code.refit.of_trial_run_id")
        .started(5_000);
    let other = refit("refit-other", &runs[0]).started(9_999);
    let mut all = runs.clone();
    all.extend([linked, by_hash, other]);
    let report = select(all, &config()).unwrap();
    assert_eq!(report.champion.trial_run_id, "g-1");
    assert_eq!(report.champion.run_id, "refit-hash");
    assert_eq!(report.champion.refit_run_id.as_deref(), Some("refit-hash"));
    assert_eq!(
        report.champion.refit_matched_by,
        Some(RefitMatch::KeyHashes)
    );
    assert_eq!(report.champion.checkpoint.run_id, "refit-hash");
    assert_eq!(
        report.champion.checkpoint.artifact_uri,
        "mlflow-artifacts:/0/refit-hash/artifacts/best_trial_checkpoint.tar.gz"
    );
}

#[test]
fn several_refits_pick_latest_start_then_smaller_run_id_whatever_their_status() {
    let trial_run = trial("t", "g", 0.9);
    let refits = vec![
        refit("a", &trial_run).started(10),
        refit("c", &trial_run).started(20),
        refit("b", &trial_run).started(20),
        // Not stage hpo_refit: not a refit by key hash.
        refit("z", &trial_run)
            .started(30)
            .tag_set("code.stage", "hpo_trial"),
    ];
    let mut all = refits;
    let (chosen, how) = choose_refit(&trial_run, &all, &tags()).unwrap();
    assert_eq!((chosen.id(), how), ("b", RefitMatch::KeyHashes));
    all.reverse();
    assert_eq!(choose_refit(&trial_run, &all, &tags()).unwrap().0.id(), "b");
    // A FAILED (upload failed) or RUNNING (crashed) refit still counts, as in the pipeline.
    let mut failed = refit("zz", &trial_run).started(40);
    failed.info.status = RunStatus::Failed;
    all.push(failed);
    assert_eq!(
        choose_refit(&trial_run, &all, &tags()).unwrap().0.id(),
        "zz"
    );
}

#[test]
fn refit_falls_back_to_the_link_tag() {
    // A trial without cross-validation carries no trial_key_hash: only the link tag names it.
    let runs: Vec<Run> = group("g", &[0.7, 0.9, 0.8])
        .into_iter()
        .map(|run| run.tag_removed("code.trial_key_hash"))
        .collect();
    let linked = refit("refit-linked", &runs[1]).tag_set("code.trial_key_hash", "tk-refit");
    let mut all = runs;
    all.push(linked);
    let report = select(all, &config()).unwrap();
    assert_eq!(report.champion.run_id, "refit-linked");
    assert_eq!(report.champion.refit_matched_by, Some(RefitMatch::LinkTag));
}

#[test]
fn missing_refit_is_an_error_naming_the_trial() {
    let runs = group("g", &[0.7, 0.9, 0.8]);
    let mut all = runs.clone();
    // Only the runner-up has a refit: no silent fallback to it or to the trial.
    all.push(refit("refit-of-runner-up", &runs[2]));
    let err = select(all, &config()).unwrap_err();
    assert!(matches!(err, ChampionError::RefitMissing { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("g-1") && message.contains("tk-g-1"),
        "{message}"
    );
    assert!(message.contains("refusing to fall back"), "{message}");
}

#[test]
fn a_refit_whose_artifact_tag_is_not_true_is_still_named() {
    // The pipeline names it too; acquiring its checkpoint is what may then fail.
    let runs = group("g", &[0.7, 0.9, 0.8]);
    let mut all = runs.clone();
    all.push(refit("refit-broken", &runs[1]).tag_set("code.artifact.available", "false"));
    assert_eq!(
        select(all, &config()).unwrap().champion.run_id,
        "refit-broken"
    );
}

#[test]
fn candidates_are_filtered_by_the_store_and_every_page_is_read() {
    let mut runs = group("g", &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]);
    // Eight runs that must be filtered out by the query itself.
    runs.push(trial("running", "g", 0.99));
    runs.last_mut().unwrap().info.status = RunStatus::Running;
    runs.push(trial("other-backbone", "g", 0.99).tag_set("code.backbone", "deberta"));
    runs.push(trial("sweep", "g", 0.99).tag_set("code.stage", "hpo_sweep"));
    let mut deleted = trial("deleted", "g", 0.99);
    deleted.info.lifecycle_stage = "deleted".into();
    runs.push(deleted);
    let best = runs[6].clone();
    runs.push(refit("refit", &best));
    let store = store_with(runs);
    let root = tempfile::tempdir().unwrap();
    let report = select_with(&store, &config(), root.path()).unwrap();
    assert_eq!(report.champion.trial_run_id, "g-6");
    assert_eq!(report.metadata.candidates, 7);
    assert_eq!(report.champion.stable_score, 0.6);
    let queries = store.queries();
    // 7 candidates in pages of 3 → 3 pages, then the refit lookup.
    assert_eq!(
        queries[0],
        "tags.`code.stage` = 'hpo_trial' AND tags.`code.backbone` = 'distilbert' AND attributes.status = 'FINISHED'"
    );
    assert_eq!(queries.iter().filter(|q| **q == queries[0]).count(), 3);
    assert!(
        queries[3].contains("tags.`code.trial_key_hash` = 'tk-g-6'"),
        "{queries:?}"
    );
}

#[test]
fn the_stage_queries_fall_back_in_the_pipelines_order() {
    // The pipeline's own runs: stage "hpo" on sweep and trials, no backbone tag.
    let pipeline = |run: Run| {
        run.tag_set("code.stage", "hpo")
            .tag_removed("code.backbone")
            .tag_set("code.model", "distilbert")
    };
    let mut runs: Vec<Run> = group("g", &[0.7, 0.9, 0.8])
        .into_iter()
        .map(pipeline)
        .collect();
    runs.push(pipeline(trial("sweep-g", "g", 0.0)).tag_removed("mlflow.parentRunId"));
    runs.push(refit("refit", &runs[1].clone()));
    let store = store_with(runs.clone());
    let root = tempfile::tempdir().unwrap();
    let report = select_with(&store, &config(), root.path()).unwrap();
    assert_eq!(report.champion.trial_run_id, "g-1");
    assert_eq!(report.champion.run_id, "refit");
    assert_eq!(report.dropped.not_a_child_run, 1);
    let queries = store.queries();
    let mut stage_queries: Vec<&String> = queries
        .iter()
        .filter(|q| !q.contains("trial_key_hash"))
        .collect();
    stage_queries.dedup(); // the last query reads two pages
    assert_eq!(stage_queries.len(), 4, "{queries:?}");
    assert!(stage_queries[1].starts_with("tags.`code.stage` = 'hpo_trial' AND attributes"));
    assert!(stage_queries[2].contains("'hpo' AND tags.`code.backbone`"));
    assert!(stage_queries[3].starts_with("tags.`code.stage` = 'hpo' AND attributes"));

    // hpo_trial runs, when present, win over hpo runs.
    runs.extend(group("h", &[0.1, 0.2, 0.3]));
    let report = select(runs, &trial_config()).unwrap();
    assert_eq!(report.champion.study_key_hash, "h");
}

#[test]
fn report_carries_every_step_7_field() {
    let runs: Vec<Run> = group("g", &[0.7, 0.9, 0.8])
        .into_iter()
        .map(|run| {
            run.tag_set("code.fingerprint.data", "data-fp")
                .tag_set("code.fingerprint.eval", "eval-fp")
                .tag_set("mlflow.parentRunId", "sweep-parent")
        })
        .collect();
    let mut all = runs.clone();
    all.push(refit("refit", &runs[1]));
    let report = select(all.clone(), &config()).unwrap();
    let champion = &report.champion;
    assert_eq!(champion.sweep_run_id.as_deref(), Some("sweep-parent"));
    assert_eq!(champion.trial_key_hash.as_deref(), Some("tk-g-1"));
    assert_eq!(champion.study_key_hash, "g");
    assert_eq!((champion.metric, champion.stable_score), (0.9, 0.8));
    assert_eq!(champion.schema_version, "2.0");
    assert_eq!(champion.counted_trials, 3);
    assert_eq!(champion.data_fingerprint.as_deref(), Some("data-fp"));
    assert_eq!(champion.eval_fingerprint.as_deref(), Some("eval-fp"));
    assert_eq!(champion.checkpoint.local, None);
    assert_eq!(report.model, "distilbert");
    assert_eq!(report.metadata.direction, "maximize");
    assert_eq!(report.metadata.schema_version_used, "2.0");
    assert_eq!(report.groups.len(), 1);
    assert_eq!(report.groups[0].rank, Some(1));
    assert_eq!(report.groups[0].best_metric, Some(0.9));

    // The lineage tag wins over MLflow's parent tag.
    all[1] = all[1]
        .clone()
        .tag_set("code.lineage.hpo_sweep_run_id", "sweep-lineage");
    let report = select(all, &config()).unwrap();
    assert_eq!(
        report.champion.sweep_run_id.as_deref(),
        Some("sweep-lineage")
    );
}

#[test]
fn many_backbones_answer_independently() {
    let store = MemoryStore::new();
    let distil = store.experiment("p-hpo-distilbert-base-uncased");
    let deberta = store.experiment("p-hpo-deberta-v3-small");
    let runs = group("g", &[0.7, 0.9, 0.8]);
    for run in &runs {
        store.insert(run.clone().experiment(&distil));
    }
    store.insert(refit("refit", &runs[1]).experiment(&distil));
    // deberta: trials but no refit for its champion.
    for run in group("d", &[0.5, 0.6, 0.7]) {
        store.insert(run.tag_set("code.backbone", "deberta").experiment(&deberta));
    }
    let experiments: ExperimentConfig = serde_yaml::from_str(
        "name: p\nbackbones: [distilbert-base-uncased, deberta-v3-small, roberta-base]\n",
    )
    .unwrap();
    let tags = tags();
    let root = tempfile::tempdir().unwrap();
    let layout = OutputLayout::new(root.path());
    let config = config();
    let selector = Selector {
        store: &store,
        config: &config,
        tags: &tags,
        layout: &layout,
        environment: &Environment::Local,
    };
    let results = selector.select_many(&experiments.backbones, &experiments);
    assert_eq!(results.champions.len(), 1);
    assert_eq!(
        results.champions["distilbert-base-uncased"].champion.run_id,
        "refit"
    );
    assert!(matches!(
        results.errors["deberta-v3-small"],
        ChampionError::RefitMissing { .. }
    ));
    let missing = results.errors["roberta-base"].to_string();
    assert!(
        missing.contains("p-hpo-roberta") && missing.contains("not found"),
        "{missing}"
    );
}

#[test]
fn no_candidates_is_an_error_naming_the_experiment() {
    let err = select(Vec::new(), &config()).unwrap_err().to_string();
    assert!(
        err.contains("podium-ner-hpo-distilbert")
            && err.contains("hpo_trial")
            && err.contains("then hpo"),
        "{err}"
    );
}
