//! Acceptance of `podium run`: on a store with three champions, the first run benchmarks three,
//! the second none, and both print the same ranking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/orchestrate.rs"]
mod support;

use support::{BACKBONES, names, sqlite_project};

/// The ranking table and its weights line, as printed.
fn ranking_section(stdout: &str) -> String {
    let start = stdout
        .find("composite ")
        .and_then(|header| stdout[..header].rfind('┌'))
        .unwrap_or_else(|| panic!("no ranking table in\n{stdout}"));
    let end = stdout[start..]
        .find("composite = ")
        .map(|at| start + at)
        .unwrap();
    let end = end + stdout[end..].find('\n').unwrap();
    stdout[start..end].to_string()
}

#[test]
fn run_twice_benchmarks_then_skips_with_the_same_ranking() {
    let project = sqlite_project(&BACKBONES[..3]);
    let first = project.podium(&["run"]).output().unwrap();
    let first_out = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(
        first.status.success(),
        "{first_out}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        first_out.ends_with("benchmarked 3, skipped 0, restored 0, failed 0\n"),
        "{first_out}"
    );

    let second = project.podium(&["run"]).output().unwrap();
    let second_out = String::from_utf8_lossy(&second.stdout).to_string();
    assert!(second.status.success(), "{second_out}");
    assert!(
        second_out.ends_with("benchmarked 0, skipped 3, restored 0, failed 0\n"),
        "{second_out}"
    );
    let ranking = ranking_section(&first_out);
    assert_eq!(ranking, ranking_section(&second_out));
    for backbone in &BACKBONES[..3] {
        assert!(ranking.contains(backbone), "{ranking}");
    }

    let (output, json) = project.run_json(&["run"]);
    assert!(output.status.success());
    assert_eq!(json["counts"]["skipped"], 3);
    assert_eq!(json["counts"]["benchmarked"], 0);
    assert_eq!(names(&json, "skipped").len(), 3);
    assert_eq!(json["ranking"]["ranked"].as_array().unwrap().len(), 3);
    assert_eq!(json["ranking"]["ranked"][0]["rank"], 1);

    let (output, rank) = project.run_json(&["rank"]);
    assert!(output.status.success(), "{rank}");
    assert_eq!(rank, json["ranking"], "podium rank reads the same results");
}

#[test]
fn dry_run_changes_nothing() {
    let project = sqlite_project(&BACKBONES[..2]);
    let (output, plan) = project.run_json(&["benchmark", "--dry-run"]);
    assert!(output.status.success(), "{plan}");
    assert_eq!(plan["plan"]["bert-base-cased"]["status"], "to_run");
    assert!(project.cache_files().is_empty());
    assert!(support::finished_benchmarks(&project.uri).is_empty());
}
