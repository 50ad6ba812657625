//! The crates are layered (DESIGN §1): each podium crate depends only on crates below it in
//! `LAYERS`. This reads `cargo metadata` so a stray dependency fails CI instead of quietly
//! turning the stack into a web.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

/// Bottom to top.
const LAYERS: [&str; 7] = [
    "podium-run-mode",
    "podium-variants",
    "podium-keys",
    "podium-mlflow",
    "podium-champion",
    "podium-bench",
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

#[test]
fn workspace_respects_the_layering() {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
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
