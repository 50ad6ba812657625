//! The crates are layered: each podium crate depends only on crates below it in `LAYERS`, and
//! podium-runtime (the model runtime) on no podium crate at all, nor on an HTTP client or
//! SQLite, so a service that only times checkpoints links nothing else. This reads
//! `cargo metadata` so a stray dependency fails CI instead of quietly turning the stack into a
//! web.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

/// Bottom to top. podium-runtime sits at the bottom: it may depend on no other podium crate.
const LAYERS: [&str; 9] = [
    "podium-runtime",
    "podium-run-mode",
    "podium-variants",
    "podium-keys",
    "podium-mlflow",
    "podium-champion",
    "podium-bench",
    "podium-project",
    "podium-cli",
];
/// Test support: allowed as a dev-dependency anywhere, never as a normal or build dependency.
const TESTKIT: &str = "podium-testkit";
/// The facade re-exports the library crates; nothing depends on it and it does not link the CLI.
const FACADE: &str = "podium";

fn layer(name: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| *layer == name)
}

fn is_podium(name: &str) -> bool {
    name == FACADE || name == TESTKIT || layer(name).is_some()
}

/// Every layering rule the workspace in `metadata` breaks, one line each.
fn violations(metadata: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    for package in &packages {
        let name = package["name"].as_str().unwrap_or_default();
        if name.starts_with("podium") && !is_podium(name) {
            found.push(format!(
                "{name} is not in the layering order; add it to LAYERS"
            ));
            continue;
        }
        let dependencies = package["dependencies"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for dependency in &dependencies {
            let dep = dependency["name"].as_str().unwrap_or_default();
            // Dev-dependencies only build tests; they cannot make a library reach upwards.
            let kind = dependency["kind"].as_str().unwrap_or("normal");
            if kind == "dev" || !is_podium(dep) {
                continue;
            }
            let problem = if dep == TESTKIT {
                Some("podium-testkit may only be a dev-dependency".to_string())
            } else if dep == FACADE {
                Some("nothing may depend on the facade".to_string())
            } else if name == FACADE || name == TESTKIT {
                (dep == "podium-cli").then(|| "the CLI is a binary, not a library".to_string())
            } else {
                match (layer(name), layer(dep)) {
                    (Some(own), Some(other)) if other >= own => {
                        Some(format!("{dep} is not below {name} in the layering order"))
                    }
                    _ => None,
                }
            };
            if let Some(problem) = problem {
                found.push(format!(
                    "{name} has a {kind} dependency on {dep}: {problem}"
                ));
            }
        }
    }
    found
}

/// The standalone runtime: none of these may appear anywhere in its dependency tree (normal,
/// build or dev dependencies).
const RUNTIME: &str = "podium-runtime";
const RUNTIME_FORBIDDEN: [&str; 3] = ["reqwest", "rusqlite", "libsqlite3-sys"];

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

/// Every package podium-runtime reaches through the resolved graph of `metadata`, itself
/// excluded (all dependency kinds: `cargo tree -p podium-runtime` shows the same set).
fn runtime_closure(metadata: &Value) -> Vec<String> {
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let name_of = |id: &str| -> String {
        metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|package| package["id"] == id)
            .and_then(|package| package["name"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let Some(root) = nodes
        .iter()
        .find(|node| name_of(node["id"].as_str().unwrap_or_default()) == RUNTIME)
    else {
        return vec![format!("{RUNTIME} missing from cargo metadata")];
    };
    let mut seen: Vec<String> = Vec::new();
    let mut stack = vec![root["id"].as_str().unwrap_or_default().to_string()];
    let mut names = Vec::new();
    while let Some(id) = stack.pop() {
        if seen.contains(&id) {
            continue;
        }
        seen.push(id.clone());
        if let Some(node) = nodes.iter().find(|node| node["id"] == id.as_str()) {
            for dep in node["dependencies"].as_array().into_iter().flatten() {
                stack.push(dep.as_str().unwrap_or_default().to_string());
            }
        }
        let name = name_of(&id);
        if name != RUNTIME {
            names.push(name);
        }
    }
    names.sort();
    names.dedup();
    names
}

/// What in `closure` (the runtime's dependency names) breaks the runtime's independence.
fn runtime_violations(closure: &[String]) -> Vec<String> {
    closure
        .iter()
        .filter(|name| is_podium(name) || RUNTIME_FORBIDDEN.contains(&name.as_str()))
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

#[test]
fn workspace_respects_the_layering() {
    let metadata = metadata(&["--no-deps"]);
    let names: Vec<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|package| package["name"].as_str())
        .collect();
    for expected in LAYERS.iter().chain([&TESTKIT, &FACADE]) {
        assert!(
            names.contains(expected),
            "{expected} missing from cargo metadata: {names:?}"
        );
    }
    let found = violations(&metadata);
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        found.join("\n")
    );
}

fn package(name: &str, deps: &[(&str, Option<&str>)]) -> Value {
    let dependencies: Vec<Value> = deps
        .iter()
        .map(|(dep, kind)| serde_json::json!({"name": dep, "kind": kind}))
        .collect();
    serde_json::json!({"name": name, "dependencies": dependencies})
}

#[test]
fn the_checker_catches_each_kind_of_violation() {
    let metadata = serde_json::json!({"packages": [
        package("podium-run-mode", &[("serde", None), ("podium-testkit", Some("dev"))]),
        package("podium-variants", &[("podium-run-mode", None), ("podium-keys", None)]),
        package("podium-keys", &[("podium-keys-extra", None), ("podium-cli", Some("dev"))]),
        package("podium-mlflow", &[("podium-testkit", None)]),
        package("podium-champion", &[("podium-bench", Some("build"))]),
        package("podium-bench", &[("podium", None)]),
        package("podium", &[("podium-bench", None), ("podium-cli", None)]),
        package("podium-extra", &[]),
    ]});
    let found = violations(&metadata);
    let expected = [
        "podium-variants has a normal dependency on podium-keys",
        "podium-mlflow has a normal dependency on podium-testkit",
        "podium-champion has a build dependency on podium-bench",
        "podium-bench has a normal dependency on podium:",
        "podium has a normal dependency on podium-cli",
        "podium-extra is not in the layering order",
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for (line, start) in found.iter().zip(expected) {
        assert!(
            line.starts_with(start),
            "{line:?} should start with {start:?}"
        );
    }
}
