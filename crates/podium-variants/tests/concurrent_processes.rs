//! Several processes allocating at the same moment get distinct variants.
//!
//! The test re-runs its own test binary as child processes; each child runs only the ignored
//! `child_allocates` test, which allocates once and prints the variant it got.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use podium_variants::{
    Environment, FinalTrainingKey, FinalTrainings, HpoStudies, OutputLayout, StudyNaming,
};

const CHILD_ROOT: &str = "PODIUM_VARIANTS_CHILD_ROOT";
const CHILD_PROCESS: &str = "PODIUM_VARIANTS_CHILD_PROCESS";
const MARKER: &str = "allocated-variant=";
const BACKBONE: &str = "distilbert-base-uncased";

fn go_file(root: &Path) -> PathBuf {
    root.join("go")
}

fn allocate_in_children(process: &str, children: usize) -> Vec<u32> {
    let root = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let spawned: Vec<_> = (0..children)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "child_allocates",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ROOT, root.path())
                .env(CHILD_PROCESS, process)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Release every child at once so the allocations really overlap.
    std::fs::write(go_file(root.path()), "").unwrap();
    let mut variants: Vec<u32> = spawned
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "child failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            stdout
                .lines()
                .find_map(|line| line.split_once(MARKER).map(|(_, rest)| rest))
                .unwrap_or_else(|| panic!("no variant in child output:\n{stdout}"))
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    variants.sort_unstable();
    variants
}

#[test]
fn concurrent_hpo_processes_get_distinct_variants() {
    assert_eq!(
        allocate_in_children("hpo", 6),
        (1..=6).collect::<Vec<u32>>()
    );
}

#[test]
fn concurrent_final_training_processes_get_distinct_indexed_variants() {
    assert_eq!(
        allocate_in_children("final_training", 6),
        (1..=6).collect::<Vec<u32>>()
    );
}

#[test]
#[ignore = "child process of the concurrent_* tests; fails when run on its own"]
fn child_allocates() {
    let root = PathBuf::from(std::env::var_os(CHILD_ROOT).expect("run by the concurrent_* tests"));
    let process = std::env::var(CHILD_PROCESS).expect("run by the concurrent_* tests");
    let started = Instant::now();
    while !go_file(&root).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never released"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let layout = OutputLayout::new(&root);
    let environment = Environment::Local;
    let variant = match process.as_str() {
        "hpo" => {
            HpoStudies::locate(&layout, &environment, BACKBONE, &StudyNaming::default())
                .unwrap()
                .allocate()
                .unwrap()
                .variant
        }
        "final_training" => {
            let key = FinalTrainingKey::new("0123456789abcdef", "fedcba9876543210").unwrap();
            let trainings = FinalTrainings::locate(&layout, &environment, BACKBONE, key).unwrap();
            let allocated = trainings.allocate().unwrap();
            // Every claim must also be in the index, not only on disk.
            let listed = trainings.list().unwrap();
            assert!(
                listed
                    .iter()
                    .any(|v| v.variant == allocated.variant && v.in_index)
            );
            allocated.variant
        }
        other => panic!("unknown process {other}"),
    };
    println!("{MARKER}{variant}");
}
