//! The dependency graph between podium's crates, as `cargo metadata` reports it (normal and
//! build dependencies; dev-dependencies only build tests), is exactly the one docs/ARCHITECTURE.md
//! draws, has no cycle, and keeps its rules: podium-testkit only ever a dev-dependency, nothing
//! depending on the facade or the CLI, podium-fixtures linked only by the CLI (for `podium demo`),
//! podium-runtime depending on no podium crate but podium-io (the bounded file reader, which
//! itself depends on none), nor on an HTTP client or a database client, so a service that only times
//! checkpoints links nothing else, and the CLI reaching the libraries only through
//! podium-project (plus podium-fixtures for the demo), so a service that links podium-project
//! can do whatever the CLI does. A new edge fails here until the
//! document (and so its reader) knows about it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// crate → the podium crates it depends on (normal or build dependencies).
type Graph = BTreeMap<String, BTreeSet<String>>;

const TESTKIT: &str = "podium-testkit";
const FACADE: &str = "podium";
const CLI: &str = "podium-cli";
const FIXTURES: &str = "podium-fixtures";
const RUNTIME: &str = "podium-runtime";
const PROJECT: &str = "podium-project";
/// The CLI's podium dependencies, exactly: every library through podium-project, and the
/// fixtures for `podium demo`.
const CLI_DEPENDENCIES: [&str; 2] = [PROJECT, FIXTURES];
/// The one bounded reader of input files: below everything, the runtime included.
const IO: &str = "podium-io";
/// Only the CLI links fixtures (the demo); everyone else as a dev-dependency.
const FIXTURE_USERS: [&str; 1] = [CLI];
/// The standalone runtime: none of these may appear anywhere in its dependency tree.
const RUNTIME_FORBIDDEN: [&str; 5] = [
    "reqwest",
    "rusqlite",
    "libsqlite3-sys",
    "postgres",
    "tokio-postgres",
];
/// External crates only one podium crate may depend on, and which.
const SOLE_USERS: [(&str, &str); 4] = [
    // Errors are one thiserror enum per library crate; anyhow is for the binary.
    ("anyhow", CLI),
    // Every hash comes from podium-keys' functions.
    ("sha2", "podium-keys"),
    // Every page and figure comes from podium-report's template and plots.
    ("askama", "podium-report"),
    ("plotters", "podium-report"),
];

fn is_podium(name: &str) -> bool {
    name == FACADE || name.starts_with("podium-")
}

fn metadata(extra: &[&str]) -> Value {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn packages(metadata: &Value) -> Vec<Value> {
    metadata["packages"].as_array().cloned().unwrap_or_default()
}

/// (package, dependency, kind) for every declared dependency; kind "normal", "build" or "dev".
fn edges(metadata: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for package in packages(metadata) {
        let name = package["name"].as_str().unwrap_or_default().to_string();
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let dep = dependency["name"].as_str().unwrap_or_default().to_string();
            let kind = dependency["kind"].as_str().unwrap_or("normal").to_string();
            found.push((name.clone(), dep, kind));
        }
    }
    found
}

/// The podium-to-podium graph of `metadata` without dev-dependencies; every podium package is
/// a node, with or without edges.
fn graph(metadata: &Value) -> Graph {
    let mut graph = Graph::new();
    for package in packages(metadata) {
        let name = package["name"].as_str().unwrap_or_default();
        if is_podium(name) {
            graph.entry(name.to_string()).or_default();
        }
    }
    for (name, dep, kind) in edges(metadata) {
        if kind != "dev" && is_podium(&name) && is_podium(&dep) {
            graph.entry(name).or_default().insert(dep);
        }
    }
    graph
}

/// The graph ARCHITECTURE.md draws: the lines `crate → dep, dep` (or `crate → (none)`) of the
/// fenced block after its "Dependency graph" heading.
fn documented(text: &str) -> Graph {
    let mut graph = Graph::new();
    let Some((_, after)) = text.split_once("## Dependency graph") else {
        return graph;
    };
    let Some(block) = after.split("```").nth(1) else {
        return graph;
    };
    for line in block.lines() {
        let Some((name, deps)) = line.split_once('→') else {
            continue;
        };
        let deps = deps.trim();
        let deps = if deps == "(none)" {
            BTreeSet::new()
        } else {
            deps.split(',').map(|dep| dep.trim().to_string()).collect()
        };
        graph.insert(name.trim().to_string(), deps);
    }
    graph
}

/// How `actual` differs from `expected`, one line per crate.
fn differences(expected: &Graph, actual: &Graph) -> Vec<String> {
    let names: BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| match (expected.get(name), actual.get(name)) {
            (None, Some(_)) => Some(format!("{name} is not in the documented graph")),
            (Some(_), None) => Some(format!("{name} is documented but not in the workspace")),
            (Some(want), Some(have)) if want != have => {
                let added: Vec<&String> = have.difference(want).collect();
                let removed: Vec<&String> = want.difference(have).collect();
                Some(format!(
                    "{name}: undocumented dependencies {added:?}, documented but absent {removed:?}"
                ))
            }
            _ => None,
        })
        .collect()
}

/// The crates of `graph` on a cycle (empty when it has none): what is left after repeatedly
/// removing crates whose dependencies are all removed.
fn cyclic(graph: &Graph) -> Vec<String> {
    let mut left: BTreeMap<&String, &BTreeSet<String>> = graph.iter().collect();
    loop {
        let done: Vec<&String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|dep| !left.contains_key(dep)))
            .map(|(name, _)| *name)
            .collect();
        if done.is_empty() {
            return left.keys().map(|name| name.to_string()).collect();
        }
        for name in done {
            left.remove(name);
        }
    }
}

/// Every rule `graph` (and the declared `edges`, dev-dependencies included) breaks.
fn rule_violations(graph: &Graph, edges: &[(String, String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, deps) in graph {
        for dep in deps {
            let problem = match dep.as_str() {
                TESTKIT => Some("podium-testkit may only be a dev-dependency"),
                FACADE => Some("nothing may depend on the facade"),
                CLI => Some("the CLI is a binary, not a library"),
                FIXTURES if !FIXTURE_USERS.contains(&name.as_str()) => {
                    Some("podium-fixtures is a dev-dependency outside the CLI")
                }
                _ if name == IO => Some("podium-io may depend on no podium crate"),
                _ if name == RUNTIME && dep != IO => {
                    Some("podium-runtime may depend on no podium crate but podium-io")
                }
                _ if name == CLI && !CLI_DEPENDENCIES.contains(&dep.as_str()) => {
                    Some("the CLI reaches the libraries only through podium-project")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                found.push(format!("{name} depends on {dep}: {problem}"));
            }
        }
    }
    if let Some(deps) = graph.get(CLI) {
        for wanted in CLI_DEPENDENCIES {
            if !deps.contains(wanted) {
                found.push(format!("{CLI} does not depend on {wanted}"));
            }
        }
    }
    for (name, dep, kind) in edges {
        if kind == "dev" || !is_podium(name) {
            continue;
        }
        for (external, user) in SOLE_USERS {
            if dep == external && name != user {
                found.push(format!("{name} depends on {dep}: only {user} may"));
            }
        }
    }
    let cycle = cyclic(graph);
    if !cycle.is_empty() {
        found.push(format!("dependency cycle among {cycle:?}"));
    }
    found
}

#[test]
fn the_crate_graph_is_the_documented_one() {
    let metadata = metadata(&["--no-deps"]);
    let actual = graph(&metadata);
    for expected in [RUNTIME, FIXTURES, CLI, TESTKIT, FACADE, "podium-keys"] {
        assert!(
            actual.contains_key(expected),
            "{expected} missing: {actual:?}"
        );
    }
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"),
    )
    .unwrap();
    let drawn = documented(&doc);
    let found = differences(&drawn, &actual);
    assert!(
        found.is_empty(),
        "docs/ARCHITECTURE.md's dependency graph is not the workspace's:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_crate_graph_keeps_its_rules() {
    let metadata = metadata(&["--no-deps"]);
    let found = rule_violations(&graph(&metadata), &edges(&metadata));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// Every package podium-runtime reaches through the resolved graph of `metadata`, itself
/// excluded (all dependency kinds: `cargo tree -p podium-runtime` shows the same set).
fn runtime_closure(metadata: &Value) -> Vec<String> {
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: BTreeMap<&str, &str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|package| Some((package["id"].as_str()?, package["name"].as_str()?)))
        .collect();
    let Some(root) = nodes
        .iter()
        .find(|node| names.get(node["id"].as_str().unwrap_or_default()) == Some(&RUNTIME))
    else {
        return vec![format!("{RUNTIME} missing from cargo metadata")];
    };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut stack = vec![root["id"].as_str().unwrap_or_default().to_string()];
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Some(node) = nodes.iter().find(|node| node["id"] == id.as_str()) {
            for dep in node["dependencies"].as_array().into_iter().flatten() {
                stack.push(dep.as_str().unwrap_or_default().to_string());
            }
        }
    }
    let mut closure: Vec<String> = seen
        .iter()
        .filter_map(|id| names.get(id.as_str()))
        .filter(|name| **name != RUNTIME)
        .map(|name| name.to_string())
        .collect();
    closure.sort();
    closure.dedup();
    closure
}

/// What in `closure` (the runtime's dependency names) breaks the runtime's independence.
fn runtime_violations(closure: &[String]) -> Vec<String> {
    closure
        .iter()
        .filter(|name| {
            (is_podium(name) && name.as_str() != IO) || RUNTIME_FORBIDDEN.contains(&name.as_str())
        })
        .map(|name| format!("{RUNTIME} depends (directly or not) on {name}"))
        .collect()
}

#[test]
fn the_runtime_links_no_podium_crate_no_http_client_no_sqlite() {
    // The host's dependency graph only: the other platforms' crates are not downloaded here.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc).arg("-vV").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    let host = version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .trim()
        .to_string();
    let closure = runtime_closure(&metadata(&["--filter-platform", &host]));
    assert!(
        closure.iter().any(|name| name == "candle-transformers"),
        "the dependency walk found the runtime's own dependencies: {closure:?}"
    );
    let found = runtime_violations(&closure);
    assert!(found.is_empty(), "{}", found.join("\n"));
    // The check itself can fail.
    let bad = runtime_violations(&["podium-keys".into(), "reqwest".into(), "serde".into()]);
    assert_eq!(bad.len(), 2, "{bad:?}");
}

fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Value {
    let dependencies: Vec<Value> = deps
        .iter()
        .map(|(dep, kind)| serde_json::json!({"name": dep, "kind": kind}))
        .collect();
    serde_json::json!({"name": name, "dependencies": dependencies})
}

#[test]
fn the_checkers_catch_each_kind_of_violation() {
    let metadata = serde_json::json!({"packages": [
        package("podium-run-mode", &[("serde", None), ("podium-testkit", Some("dev"))]),
        package("podium-variants", &[("podium-run-mode", None), ("podium-keys", None)]),
        package("podium-keys", &[("podium-variants", None), ("podium-cli", Some("dev"))]),
        package("podium-mlflow", &[("podium-testkit", None), ("anyhow", None)]),
        package("podium-champion", &[("podium-fixtures", Some("build"))]),
        package("podium-runtime", &[("podium-run-mode", None)]),
        package("podium", &[("podium-cli", None)]),
        package(
            "podium-cli",
            &[
                ("podium-fixtures", None),
                ("podium-project", None),
                ("podium-mlflow", Some("dev")),
                ("anyhow", None),
            ],
        ),
        package("podium-project", &[]),
        package("podium-fixtures", &[]),
        package("podium-testkit", &[]),
    ]});
    let graph = graph(&metadata);
    assert_eq!(
        graph["podium-keys"],
        BTreeSet::from(["podium-variants".to_string()])
    );
    let found = rule_violations(&graph, &edges(&metadata));
    let expected = [
        "podium depends on podium-cli",
        "podium-champion depends on podium-fixtures",
        "podium-mlflow depends on podium-testkit",
        "podium-runtime depends on podium-run-mode",
        "podium-mlflow depends on anyhow",
        "dependency cycle among [\"podium-keys\", \"podium-variants\"]",
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (line, start) in found.iter().zip(expected) {
        assert!(
            line.starts_with(start),
            "{line:?} should start with {start:?}"
        );
    }

    // The CLI may reach a library only through podium-project: one added back is caught, and
    // so is podium-project itself gone.
    let thick = serde_json::json!({"packages": [
        package("podium-cli", &[("podium-fixtures", None), ("podium-keys", None)]),
        package("podium-keys", &[]),
        package("podium-fixtures", &[]),
    ]});
    let found = rule_violations(&crate::graph(&thick), &edges(&thick));
    assert_eq!(
        found,
        [
            "podium-cli depends on podium-keys: the CLI reaches the libraries only through \
             podium-project",
            "podium-cli does not depend on podium-project",
        ],
        "{found:#?}"
    );

    let drawn = documented(
        "x\n## Dependency graph\n\n```\npodium-keys → podium-variants\npodium-cli → (none)\n```\n",
    );
    let mut actual = drawn.clone();
    actual
        .get_mut("podium-keys")
        .unwrap()
        .insert("podium-run-mode".into());
    actual.remove("podium-cli");
    actual.insert("podium-extra".into(), BTreeSet::new());
    let found = differences(&drawn, &actual);
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].starts_with("podium-cli is documented but not"),
        "{found:?}"
    );
    assert!(found[1].starts_with("podium-extra is not in"), "{found:?}");
    assert!(found[2].contains("[\"podium-run-mode\"]"), "{found:?}");
}
