//! Tables people can read: every table of `select`, `run`, `rank`, `best-trials` and
//! `config check` fits 100 columns (the width when stdout is not a terminal) and breaks no word
//! — backbone names, run ids, hashes, paths, config keys — on the demo project and on the
//! pipeline's config layout (a copy of the pipeline-layout folder, its store written by Python
//! mlflow as the pipeline writes it). Tables show run ids shortened to 12 characters; JSON and
//! `--wide` show them whole; `COLUMNS` narrows the tables.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/orchestrate.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use unicode_width::UnicodeWidthStr;

/// A project: where its configs, outputs and store are.
struct Site {
    root: PathBuf,
    config_dir: PathBuf,
    uri: String,
}

impl Site {
    /// `podium ARGS…` on this project; `columns` sets `COLUMNS` (else it is unset).
    fn podium(&self, args: &[&str], columns: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
        command
            .args(args)
            .args(["--tracking-uri", &self.uri, "--root"])
            .arg(&self.root)
            .arg("--config-dir")
            .arg(&self.config_dir)
            .current_dir(&self.root)
            .env("PODIUM_ENVIRONMENT", "local")
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("COLUMNS");
        if let Some(columns) = columns {
            command.env("COLUMNS", columns);
        }
        command.output().unwrap()
    }

    /// stdout of a command that must succeed.
    fn stdout(&self, args: &[&str], columns: Option<&str>) -> String {
        stdout_of(&self.podium(args, columns))
    }

    /// The JSON of a command that must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--format", "json"]);
        serde_json::from_str(&self.stdout(&args, None)).unwrap()
    }
}

fn stdout_of(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "podium failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The words of `text`: split at white space and the table rules, trailing list punctuation
/// dropped (`stages.smoke,` is the word `stages.smoke`).
fn words_of(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || "│┆─┌┐└┘├┤┬┴┼╞╪╡═".contains(c))
        .map(|word| word.trim_end_matches([',', ';', ':']))
        .filter(|word| !word.is_empty())
        .collect()
}

/// Every line of `text` at most `width` display columns, and every one of `words` shown whole.
fn assert_laid_out(what: &str, text: &str, width: usize, words: &[String]) {
    for line in text.lines() {
        assert!(
            line.width() <= width,
            "{what}: a line of {} columns (> {width}):\n{line}\n--- whole output\n{text}",
            line.width()
        );
    }
    let shown = words_of(text);
    for word in words {
        assert!(
            shown.contains(&word.as_str()),
            "{what}: {word:?} is not shown whole:\n{text}"
        );
    }
}

/// No 32-hex run id in `text`: tables show 12 characters.
fn assert_no_whole_ids(what: &str, text: &str) {
    for word in words_of(text) {
        assert!(
            !(word.len() == 32 && word.bytes().all(|b| b.is_ascii_hexdigit())),
            "{what}: whole run id {word} in a table:\n{text}"
        );
    }
}

fn short(id: &Value) -> String {
    let id = id.as_str().unwrap();
    assert_eq!(id.len(), 32, "JSON keeps whole run ids: {id}");
    id[..12].to_string()
}

/// The words each command's table must show whole, from the same command's JSON: backbones,
/// champion and refit run ids; ranked backbones; best-trial run ids; config files and their
/// ignored keys.
fn select_words(site: &Site) -> Vec<String> {
    let report = site.json(&["select"]);
    let mut words = Vec::new();
    for (backbone, champion) in report["champions"].as_object().unwrap() {
        words.push(backbone.clone());
        words.push(short(&champion["champion"]["trial_run_id"]));
        words.push(short(&champion["champion"]["refit_run_id"]));
    }
    assert!(!words.is_empty(), "{report:#}");
    words
}

fn rank_words(site: &Site) -> Vec<String> {
    let ranking = site.json(&["rank"]);
    let ranked = ranking["ranked"].as_array().unwrap();
    assert!(!ranked.is_empty(), "{ranking:#}");
    ranked
        .iter()
        .map(|r| r["backbone"].as_str().unwrap().to_string())
        .collect()
}

fn best_trial_words(site: &Site) -> Vec<String> {
    let report = site.json(&["best-trials"]);
    let mut words = Vec::new();
    for (backbone, best) in report["best_trials"].as_object().unwrap() {
        words.push(backbone.clone());
        words.push(short(&best["run_id"]));
    }
    assert!(!words.is_empty(), "{report:#}");
    words
}

fn config_words(site: &Site) -> Vec<String> {
    let report = site.json(&["config", "check"]);
    let mut words = Vec::new();
    for file in report["files"].as_array().unwrap() {
        let path = Path::new(file["file"].as_str().unwrap());
        let relative = path.strip_prefix(&site.config_dir).unwrap();
        words.push(relative.display().to_string());
        for key in file["ignored_keys"].as_array().unwrap() {
            words.push(key.as_str().unwrap().to_string());
        }
    }
    assert!(words.len() > 10, "{report:#}");
    words
}

/// Every table of the five commands at 100 columns (COLUMNS unset, stdout a pipe), `run`'s
/// output being `run_output`; then narrower through COLUMNS, and whole ids with --wide.
fn check_every_table(site: &Site, run_output: &str) {
    let select = select_words(site);
    let rank = rank_words(site);
    let mut run_words = select.iter().take(1).cloned().collect::<Vec<_>>();
    run_words.extend(rank.iter().cloned());
    assert_laid_out("run", run_output, 100, &run_words);
    assert_no_whole_ids("run", run_output);

    let outputs = [
        ("select", site.stdout(&["select"], None), select.clone()),
        ("rank", site.stdout(&["rank"], None), rank),
        (
            "best-trials",
            site.stdout(&["best-trials"], None),
            best_trial_words(site),
        ),
        (
            "config check",
            site.stdout(&["config", "check"], None),
            config_words(site),
        ),
    ];
    for (what, text, words) in &outputs {
        assert_laid_out(what, text, 100, words);
        assert_no_whole_ids(what, text);
    }

    // COLUMNS narrows every table, still without breaking a word.
    for (args, words) in [
        (&["select"][..], &select),
        (&["config", "check"][..], &outputs[3].2),
    ] {
        let narrow = site.stdout(args, Some("72"));
        assert_laid_out(&format!("{args:?} at 72"), &narrow, 72, words);
    }

    // --wide: whole run ids, one line per row.
    let wide = site.stdout(&["select", "--wide"], None);
    let report = site.json(&["select"]);
    for champion in report["champions"].as_object().unwrap().values() {
        let id = champion["champion"]["trial_run_id"].as_str().unwrap();
        assert!(words_of(&wide).contains(&id), "{id}:\n{wide}");
    }
}

#[test]
fn the_demo_tables_fit_100_columns_and_break_no_word() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let demo = Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .current_dir(work.path())
        .env("PODIUM_ENVIRONMENT", "local")
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    let first = stdout_of(&demo);
    let site = Site {
        root: dir.clone(),
        config_dir: dir.join("config"),
        uri: format!("sqlite:///{}", dir.join("mlflow.db").display()),
    };
    // The demo's own narration and tables, then `podium run` again (everything skipped).
    let studies: Vec<String> = ["hpo_distilroberta_smoke", "(prefer_schema_version"]
        .map(String::from)
        .to_vec();
    assert_laid_out("demo", &first, 100, &studies);
    assert_no_whole_ids("demo", &first);
    let again = site.stdout(&["run"], None);
    assert!(
        again.ends_with("benchmarked 0, skipped 3, restored 0, failed 0\n"),
        "{again}"
    );
    check_every_table(&site, &again);
    // The dry run's plan names the FINISHED runs by their short ids too.
    let plan = site.stdout(&["benchmark", "--dry-run"], None);
    assert_laid_out("benchmark --dry-run", &plan, 100, &[]);
    assert_no_whole_ids("benchmark --dry-run", &plan);
}

/// The pipeline-layout config folder (a copy, its HPO config of record naming the two
/// backbones of the generated store, and a tiny benchmark) with the `basic` store written by
/// Python mlflow as the pipeline writes it, under the folder's experiment name.
#[test]
fn the_pipeline_layout_tables_fit_100_columns_and_break_no_word() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().to_path_buf();
    let config_dir = root.join("config");
    support::copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../podium-keys/tests/fixtures/pipeline-config"),
        &config_dir,
    );
    let smoke = config_dir.join("hpo/smoke.yaml");
    let text = std::fs::read_to_string(&smoke).unwrap();
    let both = text.replace(
        r#"values: ["distilbert"]"#,
        r#"values: ["distilbert", "deberta-v3-small"]"#,
    );
    assert_ne!(
        text, both,
        "the fixture's HPO config lists its backbones on one line"
    );
    std::fs::write(&smoke, both).unwrap();
    std::fs::write(config_dir.join("benchmark.yaml"), support::FAST_BENCHMARK).unwrap();

    let source = root.join("source-checkpoint");
    podium_fixtures::random_checkpoint::RandomCheckpoint::tiny_for("distilbert-base-uncased", 11)
        .write(&source)
        .unwrap();
    let uri = format!("sqlite:///{}", root.join("mlflow.db").display());
    let generated = Command::new(podium_testkit::python())
        .arg(podium_testkit::workspace_root().join("scripts/gen-pipeline-store.py"))
        .args(["--tracking-uri", &uri, "--store", "basic"])
        .args(["--experiment-name", "fixture_baseline", "--root"])
        .arg(&root)
        .arg("--checkpoint")
        .arg(&source)
        .arg("--artifact-root")
        .arg(root.join("artifacts"))
        .current_dir(&root)
        .env("GIT_PYTHON_REFRESH", "quiet")
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let site = Site {
        root,
        config_dir,
        uri,
    };
    let run = site.stdout(&["run"], None);
    assert!(
        run.ends_with("benchmarked 2, skipped 0, restored 0, failed 0\n"),
        "{run}"
    );
    check_every_table(&site, &run);
}
