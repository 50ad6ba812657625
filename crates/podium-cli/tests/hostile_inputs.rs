//! What an attacker or an unlucky operator hands podium, through the real binary: config files
//! that are FIFOs, links to `/dev/zero`, not mappings or nested 100,000 deep; an empty or
//! locked `mlflow.db`; absurd `bench-model` options and model configs; a full disk on stdout;
//! control characters and line breaks in paths and store text. Each is refused at once, naming
//! what is wrong, without hanging, panicking or changing anything — and `config check` refuses
//! exactly what the commands refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/orchestrate.rs"]
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Project, sqlite_project};

/// Runs `command`, killing it after `limit`: `None` when it had to be killed (it hung).
fn run_within(mut command: Command, limit: Duration) -> Option<(Output, Duration)> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let elapsed = started.elapsed();
            let output = Output {
                status,
                stdout: out.join().unwrap(),
                stderr: err.join().unwrap(),
            };
            return Some((output, elapsed));
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// How a config file is broken.
#[derive(Debug, Clone, Copy)]
enum Broken {
    /// A named pipe: opening it for reading blocks until a writer comes.
    Fifo,
    /// A link to `/dev/zero`: endless bytes.
    DevZero,
    /// `/etc/passwd`-like text: valid YAML, a string, not a mapping.
    NotAMapping,
    /// 100,000 `[`: a parser that keeps every level goes quadratic.
    Deep,
}

fn break_file(path: &Path, how: Broken) {
    let _ = std::fs::remove_file(path);
    match how {
        Broken::Fifo => {
            let status = Command::new("mkfifo").arg(path).status().unwrap();
            assert!(status.success());
        }
        Broken::DevZero => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        Broken::NotAMapping => std::fs::write(
            path,
            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
        )
        .unwrap(),
        Broken::Deep => std::fs::write(path, format!("a: {}", "[".repeat(100_000))).unwrap(),
    }
}

fn project_with_paths() -> Project {
    let project = sqlite_project(&["bert-base-cased"]);
    std::fs::write(
        project.config_dir().join("paths.yaml"),
        std::fs::read_to_string(podium_testkit::workspace_root().join("config/paths.yaml"))
            .unwrap(),
    )
    .unwrap();
    project
}

/// Items 5, 6 and 15: every config file a command reads, broken every way, is refused at once by
/// `benchmark --dry-run` and by `config check` alike, naming the file.
#[test]
fn broken_config_files_are_refused_at_once_by_the_commands_and_by_config_check() {
    let project = project_with_paths();
    let limit = Duration::from_secs(20);
    for (args, name) in [
        (&["benchmark", "--dry-run"][..], "benchmark --dry-run"),
        (&["config", "check"][..], "config check"),
    ] {
        let (output, _) = run_within(project.podium(args), limit).unwrap();
        assert!(output.status.success(), "{name}: {}", text(&output));
    }
    let files = [
        "paths.yaml",
        "tags.yaml",
        "hpo/prod.yaml",
        "best_model_selection.yaml",
        "benchmark.yaml",
        "experiment/t.yaml",
    ];
    for file in files {
        let path = project.config_dir().join(file);
        let original = std::fs::read(&path).unwrap();
        for how in [
            Broken::Fifo,
            Broken::DevZero,
            Broken::NotAMapping,
            Broken::Deep,
        ] {
            break_file(&path, how);
            for args in [&["benchmark", "--dry-run"][..], &["config", "check"][..]] {
                let Some((output, elapsed)) = run_within(project.podium(args), limit) else {
                    panic!("podium {args:?} hung on {file} ({how:?})");
                };
                let said = text(&output);
                assert!(
                    !output.status.success(),
                    "podium {args:?} accepted {file} ({how:?}): {said}"
                );
                assert_ne!(output.status.code(), Some(101), "panicked: {said}");
                assert!(said.contains(file), "{args:?} {how:?}: {said}");
                assert!(
                    elapsed < Duration::from_secs(10),
                    "podium {args:?} took {elapsed:?} on {file} ({how:?})"
                );
            }
        }
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, original).unwrap();
    }
}

/// Item 1: a command that reads refuses an empty or non-MLflow `mlflow.db`, naming it, and
/// leaves it as it was (it used to give the empty file MLflow's schema, 950 KB of it).
#[test]
fn reading_commands_never_turn_a_file_into_a_store() {
    let project = project_with_paths();
    for (content, said) in [
        (&b""[..], "an empty file"),
        (&b"just some notes\n"[..], "not a database"),
    ] {
        let db = project.root().join("other.db");
        std::fs::write(&db, content).unwrap();
        let uri = format!("sqlite:///{}", db.display());
        for args in [
            &["select"][..],
            &["benchmark", "--dry-run"][..],
            &["rank"][..],
        ] {
            let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
            command
                .env("PODIUM_ENVIRONMENT", "local")
                .args(["--tracking-uri", &uri, "--root"])
                .arg(project.root())
                .arg("--config-dir")
                .arg(project.config_dir())
                .args(args);
            let (output, _) = run_within(command, Duration::from_secs(30)).unwrap();
            let text = text(&output);
            assert_eq!(output.status.code(), Some(2), "{args:?}: {text}");
            assert!(text.contains("other.db") && text.contains(said), "{text}");
            assert_eq!(
                std::fs::read(&db).unwrap(),
                content,
                "{args:?} changed the file"
            );
        }
        let names: Vec<String> = std::fs::read_dir(project.root())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with("other.db"))
            .collect();
        assert_eq!(names, ["other.db"], "a journal or WAL was left beside it");
    }
}

/// Item 7: a database another process holds with `BEGIN EXCLUSIVE` makes `select` say what it
/// waits on, then give up after the busy timeout (here 2 s), naming the setting.
#[test]
fn a_locked_store_is_waited_on_out_loud_then_given_up() {
    let project = project_with_paths();
    let db = project.root().join("mlflow.db");
    let locker = lock_exclusively(&db);
    let mut command = project.podium(&["select"]);
    command.env("PODIUM_SQLITE_BUSY_TIMEOUT_SECONDS", "2");
    let (output, elapsed) = run_within(command, Duration::from_secs(60)).unwrap();
    drop(locker);
    let text = text(&output);
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains("another process holds a lock on the database"),
        "it does not say what it waits on: {text}"
    );
    assert!(
        text.contains("database is locked") && text.contains("PODIUM_SQLITE_BUSY_TIMEOUT_SECONDS"),
        "{text}"
    );
    assert!(elapsed < Duration::from_secs(15), "waited {elapsed:?}");
}

/// Holds `BEGIN EXCLUSIVE` on `db` from another process (Python's sqlite3) until dropped.
fn lock_exclusively(db: &Path) -> ChildGuard {
    let mut child = podium_testkit::python_command(
        "import sqlite3, sys, time\n\
         c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
         c.execute('BEGIN EXCLUSIVE')\n\
         print('locked', flush=True)\n\
         time.sleep(120)\n",
        &[db.to_str().unwrap()],
        &[],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    // The pipe stays open while the lock is held: closing it would kill the child with EPIPE.
    let mut stdout = child.stdout.take().unwrap();
    let mut line = [0u8; 7];
    stdout.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"locked\n");
    ChildGuard {
        child,
        _stdout: stdout,
    }
}

struct ChildGuard {
    child: std::process::Child,
    /// Held open with the lock.
    _stdout: std::process::ChildStdout,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let from = podium_testkit::workspace_root()
        .join("crates/podium-runtime/tests/fixtures")
        .join(name);
    let to = dir.path().join(name);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    (dir, to)
}

fn bench_model(checkpoint: &Path, args: &[&str]) -> Output {
    let config = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
    command
        .arg("--config-dir")
        .arg(config.path())
        .arg("bench-model")
        .arg(checkpoint)
        .args(args);
    run_within(command, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("bench-model {args:?} hung"))
        .0
}

/// Item 9: `bench-model`'s options go through the bounds `benchmark.yaml`'s values do: refused
/// before anything is measured, naming the option, never a panic (exit 101).
#[test]
fn bench_model_options_are_bounded_like_benchmark_yaml() {
    let (_dir, checkpoint) = fixture_copy("distilbert");
    let sixty_five: String = (1..=65)
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    for (args, option) in [
        (vec!["--min-duration-s", "1e20"], "--min-duration-s"),
        (vec!["--min-duration-s", "1e308"], "--min-duration-s"),
        (vec!["--min-duration-s", "3601"], "--min-duration-s"),
        (vec!["--iterations", "1000001"], "--iterations"),
        (vec!["--batch-sizes", sixty_five.as_str()], "--batch-sizes"),
        (vec!["--batch-sizes", "1,1"], "--batch-sizes"),
        (vec!["--max-length", "8193"], "--max-length"),
        (vec!["--threads", "100000"], "--threads"),
        (vec!["--warmup", "100001"], "--warmup"),
    ] {
        let started = Instant::now();
        let output = bench_model(&checkpoint, &args);
        let said = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(option), "{args:?}: {said}");
        assert!(started.elapsed() < Duration::from_secs(20), "{args:?} ran");
    }
}

/// Item 10: a config.json claiming a billion layers is refused before anything is allocated
/// for them (it used to abort the process with a 328 GB allocation, exit 134).
#[test]
fn a_model_too_large_for_memory_is_refused_before_allocating() {
    let (_dir, checkpoint) = fixture_copy("distilbert");
    let config_file = checkpoint.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_file).unwrap()).unwrap();
    config["n_layers"] = serde_json::json!(1_000_000_000u64);
    std::fs::write(&config_file, config.to_string()).unwrap();
    let output = bench_model(
        &checkpoint,
        &[
            "--iterations",
            "1",
            "--warmup",
            "0",
            "--min-duration-s",
            "0",
        ],
    );
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("config.json") && said.contains("1000000000 layers") && said.contains("MiB"),
        "{said}"
    );
}

/// Item 5: a checkpoint's config.json that is a FIFO (or a link to /dev/zero) is refused at
/// once by `bench-model`, naming it, instead of blocking the open (or reading forever).
#[test]
fn a_checkpoint_config_that_is_not_a_regular_file_is_refused_at_once() {
    for how in [Broken::Fifo, Broken::DevZero] {
        let (_dir, checkpoint) = fixture_copy("distilbert");
        break_file(&checkpoint.join("config.json"), how);
        let started = Instant::now();
        let output = bench_model(&checkpoint, &["--iterations", "1", "--warmup", "0"]);
        let said = text(&output);
        assert_eq!(output.status.code(), Some(2), "{how:?}: {said}");
        assert!(
            said.contains("config.json") && said.contains("not a regular file"),
            "{how:?}: {said}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{how:?}");
    }
}

/// Item 11: stdout on a full disk is an error (exit 2, saying so), not a panic; a reader that
/// went away is still a quiet success.
#[test]
fn a_full_disk_on_stdout_is_an_error_not_a_panic() {
    let config = podium_testkit::workspace_root().join("config");
    for format in ["table", "json"] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
        command
            .args(["config", "check", "--format", format, "--config-dir"])
            .arg(&config)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .stderr(Stdio::piped());
        let output = command.output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{format}: {said}");
        assert!(said.contains("No space left on device"), "{said}");
        assert!(!said.contains("panicked"), "{said}");
    }
}

/// Terminal output: ESC and a line break in `podium demo --dir`'s path, a line break in a path
/// that reaches a log line, and one in a run name shown in a table are escaped like every other
/// store text: no raw ESC, and no forged line.
#[test]
fn control_characters_and_line_breaks_never_reach_the_terminal_raw() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("demo\u{1b}[2J\nFORGED line");
    let (output, _) = run_within(
        {
            let mut command = Command::new(env!("CARGO_BIN_EXE_podium"));
            command.arg("demo").arg("--dir").arg(&dir);
            command
        },
        Duration::from_secs(300),
    )
    .unwrap();
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(!said.contains('\u{1b}'), "a raw ESC: {said}");
    assert!(said.contains("demo\\x1b[2J\\nFORGED line"), "{said}");
    assert!(
        !said.lines().any(|line| line.starts_with("FORGED")),
        "a path forged a line: {said}"
    );

    // A log line (the warning that the store is missing) holding a path with a line break.
    let missing = parent.path().join("nowhere\nERROR forged/mlflow.db");
    let uri = format!("sqlite:///{}", missing.display());
    let output = Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(["best-trials", "--tracking-uri", &uri, "--config-dir"])
        .arg(dir.join("config"))
        .arg("--root")
        .arg(&dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("nowhere\\nERROR forged"), "{said}");
    assert!(
        !said.lines().any(|line| line.starts_with("ERROR forged")),
        "a path forged a log line: {said}"
    );

    // A run name holding a line break stays in its table row.
    let db = parent.path().join("runs.db");
    let store = podium_mlflow::SqliteStore::open(&db).unwrap();
    use podium_mlflow::TrackingStore;
    let experiment = store.create_experiment("sweep").unwrap();
    store
        .create_run(
            &experiment,
            "evil\nforged row",
            1,
            &std::collections::BTreeMap::new(),
        )
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_podium"))
        .args(["runs", "search", "--experiment", "sweep", "--tracking-uri"])
        .arg(format!("sqlite:///{}", db.display()))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}");
    assert!(table.contains("evil\\nforged row"), "{table}");
    assert!(
        !table
            .lines()
            .any(|line| line.contains("forged row") && !line.contains("evil"))
    );
}
