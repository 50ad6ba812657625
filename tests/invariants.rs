//! The architecture invariants of docs/ARCHITECTURE.md that a reading of the sources can check,
//! checked on every source file of the workspace: each rule names the one place allowed to
//! break it, so a new exception is a reviewed edit here, not a quiet drift.
//!
//! What counts as production code: every `.rs` file under `crates/*/src`, `src/` and
//! `examples/`, less comment lines (doc examples are tests), `#[cfg(test)]` modules and the
//! test-support crate. Tests, `tests/` folders and `scripts/` may do what they need.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// One production source file: its path relative to the workspace root and its code lines
/// (1-based line number, text), comments and test modules left out.
#[derive(Debug)]
struct Source {
    path: String,
    lines: Vec<(usize, String)>,
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The code lines of `text`: no comment lines, no `#[cfg(test)]` item (a module's braces are
/// followed to its end). The names of the `#[cfg(test)] mod name;` it declares go to
/// `test_modules`: their files are tests too.
fn code_lines(text: &str, test_modules: &mut Vec<String>) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut skipping_test = false;
    let mut depth: i64 = 0;
    let mut entered = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if !skipping_test && trimmed.starts_with("#[cfg(test)]") {
            skipping_test = true;
            depth = 0;
            entered = false;
            continue;
        }
        if skipping_test {
            depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            entered |= line.contains('{');
            if !entered
                && let Some(name) = trimmed
                    .strip_prefix("mod ")
                    .and_then(|rest| rest.strip_suffix(';'))
            {
                test_modules.push(name.trim().to_string());
            }
            // A one-line item (`#[cfg(test)] mod …;`) or the end of the module's braces.
            if (entered && depth <= 0) || (!entered && trimmed.ends_with(';')) {
                skipping_test = false;
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        lines.push((index + 1, line.to_string()));
    }
    lines
}

/// Every production source file of the workspace.
fn sources() -> Vec<Source> {
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("examples"), &mut files);
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    crates.sort();
    for krate in crates {
        // Test support: only ever a dev-dependency (tests/layering.rs checks that).
        if krate.ends_with("podium-testkit") {
            continue;
        }
        rust_files(&krate.join("src"), &mut files);
    }
    let mut test_files: Vec<PathBuf> = Vec::new();
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut test_modules = Vec::new();
        let lines = code_lines(&text, &mut test_modules);
        // `mod name;` in lib.rs, main.rs or mod.rs names a sibling; in foo.rs, foo/name.rs.
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default();
        let dir = match stem {
            "lib" | "main" | "mod" => path.parent().map(Path::to_path_buf),
            _ => Some(path.with_extension("")),
        }
        .unwrap_or_default();
        for name in test_modules {
            test_files.push(dir.join(format!("{name}.rs")));
            test_files.push(dir.join(&name).join("mod.rs"));
        }
        found.push((path, lines));
    }
    found
        .into_iter()
        .filter(|(path, _)| !test_files.contains(path))
        .map(|(path, lines)| Source {
            path: path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/"),
            lines,
        })
        .collect()
}

/// `path:line: text` for every code line of `sources` outside `allowed` (paths) on which
/// `hit` is true.
fn offending(sources: &[Source], allowed: &[&str], hit: impl Fn(&str) -> bool) -> Vec<String> {
    sources
        .iter()
        .filter(|source| !allowed.contains(&source.path.as_str()))
        .flat_map(|source| {
            source
                .lines
                .iter()
                .filter(|(_, line)| hit(line))
                .map(move |(number, line)| format!("{}:{number}: {}", source.path, line.trim()))
        })
        .collect()
}

/// The files in `allowed` that no longer contain what they are allowed: an exception that is
/// not needed any more must leave the list.
fn unused_exceptions(
    sources: &[Source],
    allowed: &[&str],
    hit: impl Fn(&str) -> bool,
) -> Vec<String> {
    allowed
        .iter()
        .filter(|path| {
            !sources
                .iter()
                .any(|source| source.path == **path && source.lines.iter().any(|(_, l)| hit(l)))
        })
        .map(|path| path.to_string())
        .collect()
}

/// True when `line` holds `word` as a whole identifier.
fn has_word(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn check(sources: &[Source], rule: &str, allowed: &[&str], hit: impl Fn(&str) -> bool + Copy) {
    let found = offending(sources, allowed, hit);
    assert!(found.is_empty(), "{rule}:\n{}", found.join("\n"));
    let stale = unused_exceptions(sources, allowed, hit);
    assert!(
        stale.is_empty(),
        "{rule}: these exceptions are no longer needed, remove them: {stale:?}"
    );
}

/// The registry: `Tag::default_key` spells every key once.
const TAG_REGISTRY: &str = "crates/podium-keys/src/tags.rs";

#[test]
fn tag_keys_are_spelled_only_in_the_registry() {
    let sources = sources();
    check(
        &sources,
        "a literal `code.` tag key outside the registry (use podium_keys::Tag)",
        &[TAG_REGISTRY],
        |line| line.contains("\"code."),
    );
}

/// Files that write other than through write_atomic (itself built on `tempfile`'s persist),
/// and why each may.
const WRITERS: &[&str] = &[
    // Archive members are streamed into a private temporary directory renamed into place.
    "crates/podium-bench/src/archive.rs",
    // Downloads stream into a private temporary directory renamed into place.
    "crates/podium-mlflow/src/rest/proxy.rs",
    // The scratch directories' lock file (downloads, extraction): created, locked and removed
    // with its directory, never replaced.
    "crates/podium-variants/src/fs.rs",
    // The final-training index's lock file: opened without truncating, only locked.
    "crates/podium-variants/src/final_training.rs",
];

#[test]
fn files_are_replaced_only_through_write_atomic() {
    let sources = sources();
    check(
        &sources,
        "a file written outside podium_variants::fs::write_atomic",
        WRITERS,
        |line| {
            line.contains("fs::write(")
                || line.contains("File::create(")
                || line.contains("OpenOptions::new(")
        },
    );
}

/// Files that open a file for reading other than through podium-io's bounded reader
/// (`podium_io::read_regular_file`, re-exported as `podium_variants::fs::read_regular_file`,
/// and the config reader built on it), and why each may.
const READERS: &[&str] = &[
    // The reader itself.
    "crates/podium-io/src/lib.rs",
    // A checkpoint archive podium downloaded into its own scratch directory, streamed through
    // the extraction's caps (size, ratio, free space, members).
    "crates/podium-bench/src/archive.rs",
    // Opens a directory to sync the rename of an atomic write.
    "crates/podium-variants/src/fs.rs",
];

#[test]
fn files_are_read_only_through_the_bounded_reader() {
    let sources = sources();
    check(
        &sources,
        "a file read outside podium_io's bounded reader (a FIFO or /dev/zero would hang it \
         or exhaust memory; use podium_variants::fs::read_regular_file or read_config_text)",
        READERS,
        |line| {
            line.contains("fs::read_to_string(")
                || line.contains("fs::read(")
                || line.contains("File::open(")
                || line.contains("Tokenizer::from_file(")
        },
    );
}

/// The one module allowed `unsafe`: the call into `gemm::gemm` over bounds-checked views.
const UNSAFE_MODULE: &str = "crates/podium-runtime/src/runtime/gemm.rs";

#[test]
fn unsafe_lives_only_in_the_runtimes_gemm_module() {
    // Tests too: nothing needs `unsafe` to test podium.
    let root = workspace();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("examples"), &mut files);
    rust_files(&root.join("tests"), &mut files);
    rust_files(&root.join("crates"), &mut files);
    let sources: Vec<Source> = files
        .into_iter()
        .filter(|path| !path.ends_with("tests/invariants.rs"))
        .map(|path| Source {
            lines: std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .enumerate()
                .filter(|(_, line)| !line.trim_start().starts_with("//"))
                .map(|(index, line)| (index + 1, line.to_string()))
                .collect(),
            path: path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/"),
        })
        .collect();
    check(
        &sources,
        "`unsafe` outside podium-runtime's runtime/gemm.rs",
        &[UNSAFE_MODULE],
        |line| has_word(line, "unsafe") || line.contains("unsafe_code"),
    );
}

/// The key functions and the values they hash: pure (the caller loads files first).
const PURE_KEY_MODULES: &[&str] = &[
    "crates/podium-keys/src/keys.rs",
    "crates/podium-keys/src/canonical.rs",
    "crates/podium-keys/src/value.rs",
    "crates/podium-keys/src/run_tags.rs",
];

#[test]
fn keys_read_no_clock_no_environment_no_file() {
    let sources: Vec<Source> = sources()
        .into_iter()
        .filter(|source| PURE_KEY_MODULES.contains(&source.path.as_str()))
        .collect();
    assert_eq!(sources.len(), PURE_KEY_MODULES.len(), "a key module moved");
    let found = offending(&sources, &[], |line| {
        [
            "std::fs",
            "std::env",
            "SystemTime",
            "Instant",
            "load_path",
            "read_config_text",
        ]
        .iter()
        .any(|word| line.contains(word))
    });
    assert!(
        found.is_empty(),
        "I/O in a key module:\n{}",
        found.join("\n")
    );
}

#[test]
fn run_mode_does_no_io() {
    let sources: Vec<Source> = sources()
        .into_iter()
        .filter(|source| source.path.starts_with("crates/podium-run-mode/"))
        .collect();
    let io = offending(&sources, &[], |line| {
        line.contains("fs::") || line.contains("std::env") || line.contains("std::net")
    });
    assert!(io.is_empty(), "podium-run-mode's I/O:\n{}", io.join("\n"));
}

#[test]
fn the_report_crate_does_no_io() {
    let sources: Vec<Source> = sources()
        .into_iter()
        .filter(|source| source.path.starts_with("crates/podium-report/"))
        .collect();
    assert!(!sources.is_empty());
    let io = offending(&sources, &[], |line| {
        [
            "fs::",
            "std::env",
            "std::net",
            "std::process",
            "File::",
            "SystemTime",
        ]
        .iter()
        .any(|word| line.contains(word))
    });
    assert!(io.is_empty(), "I/O in podium-report:\n{}", io.join("\n"));
}

#[test]
fn each_library_crate_has_one_error_enum() {
    let sources = sources();
    let mut crates: Vec<&str> = sources
        .iter()
        .filter_map(|source| {
            let name = source.path.strip_prefix("crates/")?.split('/').next()?;
            (name != "podium-cli").then_some(name)
        })
        .collect();
    crates.sort_unstable();
    crates.dedup();
    for krate in crates {
        let prefix = format!("crates/{krate}/");
        let enums: Vec<String> = sources
            .iter()
            .filter(|source| source.path.starts_with(&prefix))
            .flat_map(|source| {
                source
                    .lines
                    .iter()
                    .filter(|(_, line)| line.contains("thiserror::Error"))
                    .map(move |(number, _)| format!("{}:{number}", source.path))
            })
            .collect();
        assert_eq!(enums.len(), 1, "{krate}: thiserror enums at {enums:?}");
    }
}

#[test]
fn the_scanners_see_what_they_must() {
    let text = "fn a() { let x = \"code.stage\"; }\n// \"code.stage\" in a comment\n\
                #[cfg(test)]\nmod tests {\n    fn b() { \"code.x\"; }\n}\nfn c() { unsafe {} }\n\
                #[cfg(test)]\nmod query_plan;\n";
    let mut test_modules = Vec::new();
    let lines = code_lines(text, &mut test_modules);
    let numbers: Vec<usize> = lines.iter().map(|(number, _)| *number).collect();
    assert_eq!(numbers, [1, 7], "{lines:?}");
    assert_eq!(test_modules, ["query_plan"]);
    // A test-only module's file is not scanned.
    assert!(
        !self::sources()
            .iter()
            .any(|s| s.path.ends_with("sqlite/query_plan.rs"))
    );
    let sources = [Source {
        path: "x.rs".into(),
        lines,
    }];
    assert_eq!(offending(&sources, &[], |l| l.contains("\"code.")).len(), 1);
    assert!(offending(&sources, &["x.rs"], |l| l.contains("\"code.")).is_empty());
    assert_eq!(
        unused_exceptions(&sources, &["y.rs"], |l| l.contains("\"code.")),
        ["y.rs"]
    );
    assert!(has_word("unsafe {", "unsafe"));
    assert!(!has_word("fn unsafe_paths_are_refused()", "unsafe"));
    // The scan reaches the workspace: the registry and the unsafe module are among the files.
    let all = self::sources();
    assert!(all.iter().any(|source| source.path == TAG_REGISTRY));
    assert!(all.iter().any(|source| source.path == UNSAFE_MODULE));
    assert!(all.len() > 50, "{} files", all.len());
}
