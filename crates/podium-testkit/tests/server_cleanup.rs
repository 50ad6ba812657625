//! A test server leaves no process behind: not when its handle drops, not when the test holding
//! it panics (`mlflow server` forks uvicorn workers; killing only the direct child orphaned them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::Command;

use podium_testkit::MlflowServer;

/// `pid` and every process descending from it, from `ps`.
fn process_tree(pid: u32) -> BTreeSet<u32> {
    let output = Command::new("ps")
        .args(["-e", "-o", "pid=,ppid="])
        .output()
        .unwrap();
    let pairs: Vec<(u32, u32)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect();
    let mut tree = BTreeSet::from([pid]);
    loop {
        let before = tree.len();
        for (child, parent) in &pairs {
            if tree.contains(parent) {
                tree.insert(*child);
            }
        }
        if tree.len() == before {
            return tree;
        }
    }
}

/// Processes of `pids` still running (zombies count as gone: they have exited).
fn still_running(pids: &BTreeSet<u32>) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after_name = stat.rsplit_once(')')?.1.trim_start().to_string();
                    after_name.chars().next()
                })
                .is_some_and(|state| state != 'Z')
        })
        .collect()
}

#[test]
fn dropping_a_server_stops_its_whole_process_tree() {
    let server = MlflowServer::start().unwrap();
    let tree = process_tree(server.process_group());
    assert!(
        tree.len() >= 2,
        "expected mlflow and its workers, got {tree:?}"
    );
    drop(server);
    assert_eq!(still_running(&tree), Vec::<u32>::new());
}

#[test]
fn a_panicking_test_stops_its_server_too() {
    let (sender, receiver) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let server = MlflowServer::start().unwrap();
        sender.send(process_tree(server.process_group())).unwrap();
        panic!("a failing assertion while the server runs");
    })
    .join();
    assert!(outcome.is_err());
    let tree = receiver.recv().unwrap();
    assert!(tree.len() >= 2, "{tree:?}");
    assert_eq!(still_running(&tree), Vec::<u32>::new());
}
