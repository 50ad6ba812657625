//! Test support shared by podium's test suites (a dev-dependency only; never linked into the
//! product). It brings up the real peers the tests run against:
//!
//! - [`python`]: the venv with `mlflow==3.17.2`, `optuna`, `pyyaml`, created on first use by
//!   `scripts/python-env.sh` under `target/py-venv`;
//! - [`MlflowServer`]: a real `mlflow server` (SQLite backend, `--serve-artifacts`) on a free
//!   127.0.0.1 port, stopped when dropped;
//! - [`run_python`]: runs a Python snippet or script in that venv and returns its stdout.
//!
//! ```no_run
//! let server = podium_testkit::MlflowServer::start()?;
//! println!("tracking at {}", server.url());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    // crates/podium-testkit → ../..
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Path of the Python interpreter of the test venv, installing it on first use.
///
/// Panics (tests only) when the venv cannot be created: the tests need the real peer.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let script = workspace_root().join("scripts/python-env.sh");
            let output = Command::new("bash")
                .arg(&script)
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
            assert!(
                output.status.success(),
                "{} failed; the tests need Python mlflow/optuna",
                script.display()
            );
            let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
            PathBuf::from(path)
        })
        .clone()
}

/// Runs `python -c code args…` in the test venv; panics with stderr when it fails.
pub fn run_python(code: &str, args: &[&str]) -> String {
    run_python_env(code, args, &[])
}

/// Like [`run_python`] with extra environment variables.
pub fn run_python_env(code: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = python_command(code, args, env)
        .output()
        .expect("cannot start python");
    check_output("python", &output);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A `Command` for `python -c code args…` in the test venv (for callers that need the status).
pub fn python_command(code: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(python());
    command
        .arg("-c")
        .arg(code)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .env("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        .env("GIT_PYTHON_REFRESH", "quiet");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

fn check_output(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A real `mlflow server` on 127.0.0.1 with a SQLite backend and `--serve-artifacts`,
/// killed when dropped.
#[derive(Debug)]
pub struct MlflowServer {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl MlflowServer {
    /// Starts a server in a fresh temporary directory and waits until it answers.
    pub fn start() -> io::Result<MlflowServer> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir)
    }

    fn start_in(dir: tempfile::TempDir) -> io::Result<MlflowServer> {
        let python = python();
        let mlflow = python
            .parent()
            .map(|bin| bin.join("mlflow"))
            .unwrap_or_else(|| PathBuf::from("mlflow"));
        let port = free_port();
        let db = dir.path().join("mlflow.db");
        let artifacts = dir.path().join("artifacts");
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(mlflow)
            .arg("server")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", db.display()))
            .arg("--artifacts-destination")
            .arg(&artifacts)
            .arg("--serve-artifacts")
            .args(["--workers", "1"])
            .env("GIT_PYTHON_REFRESH", "quiet")
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let mut server = MlflowServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        server.wait_ready(port)?;
        Ok(server)
    }

    fn wait_ready(&mut self, port: u16) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "mlflow server exited with {status}:\n{}",
                    self.log()
                )));
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() && self.health_ok(port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(io::Error::other(format!(
            "mlflow server did not answer within 120 s:\n{}",
            self.log()
        )))
    }

    fn health_ok(&self, port: u16) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200")
    }

    /// Base URL, e.g. `http://127.0.0.1:5123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's working directory (database, artifacts, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
