//! Test support shared by podium's test suites (a dev-dependency only; never linked into the
//! product). It brings up the real peers the tests run against:
//!
//! - [`python`]: the venv with `mlflow==3.17.2`, `optuna`, `pyyaml`, created on first use by
//!   `scripts/python-env.sh` under `target/py-venv`;
//! - [`MlflowServer`]: a real `mlflow server` (SQLite backend, or any backend store URI,
//!   `--serve-artifacts`) on a free 127.0.0.1 port, in its own process group, which is stopped
//!   whole (SIGTERM, then SIGKILL after a grace period) when the handle drops, also when a test
//!   panics;
//! - [`PostgresCluster`]: a throwaway PostgreSQL cluster (Debian's package) with MLflow's
//!   schema, one per test binary, removed when dropped;
//! - [`StubServer`], [`FaultProxy`] and [`HostileServer`]: loopback HTTP servers that answer
//!   what a real server never would (faults, huge or cut-off bodies, lying listings);
//! - [`chaos::ChaosProxy`]: a seeded fault-injecting proxy in front of a real server (503s,
//!   lost, truncated and reset responses by path and probability), for storms;
//! - [`run_python`]: runs a Python snippet or script in that venv and returns its stdout;
//! - [`browser::Browser`]: a real headless Chromium driven over the DevTools protocol.
//!
//! Kept whole on purpose: test support only, never in the product; its servers share the
//! request/reply types and helpers defined here, and each test suite reads them in one place.
//!
//! ```no_run
//! let server = podium_testkit::MlflowServer::start()?;
//! println!("tracking at {}", server.url());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod chaos;
pub mod postgres;

pub use postgres::PostgresCluster;

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
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

    /// Starts a server in `dir`, using `dir/mlflow.db` as its backend store (created when
    /// missing; a database prepared beforehand, e.g. by Python or podium, is served as is) and
    /// `dir/artifacts` as its artifact destination.
    pub fn start_in(dir: tempfile::TempDir) -> io::Result<MlflowServer> {
        let backend = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
        Self::start_with_backend(dir, &backend)
    }

    /// Starts a server on the backend store `backend_store_uri` (e.g. a PostgreSQL database),
    /// with `dir/artifacts` as its artifact destination and its log in `dir`.
    pub fn start_with_backend(
        dir: tempfile::TempDir,
        backend_store_uri: &str,
    ) -> io::Result<MlflowServer> {
        let python = python();
        let mlflow = python
            .parent()
            .map(|bin| bin.join("mlflow"))
            .unwrap_or_else(|| PathBuf::from("mlflow"));
        let port = free_port();
        let artifacts = dir.path().join("artifacts");
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(mlflow)
            .arg("server")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--backend-store-uri")
            .arg(backend_store_uri)
            .arg("--artifacts-destination")
            .arg(&artifacts)
            .arg("--serve-artifacts")
            .args(["--workers", "1"])
            .env("GIT_PYTHON_REFRESH", "quiet")
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own group: uvicorn workers are children of `mlflow server`, and killing only
            // the direct child would orphan them.
            .process_group(0)
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

    /// The id of the server's process group (that of `mlflow server`, which leads it).
    pub fn process_group(&self) -> u32 {
        self.child.id()
    }
}

/// How long a stopped server's processes get to exit after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

impl Drop for MlflowServer {
    fn drop(&mut self) {
        stop_process_group(&mut self.child, STOP_GRACE);
    }
}

/// Whether any process of group `pgid` is alive (zombies included until reaped).
pub fn process_group_alive(pgid: u32) -> bool {
    Command::new("kill")
        .args(["-0", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// Stops the process group `child` leads: SIGTERM to the whole group, then SIGKILL to what is
/// still there after `grace`; reaps `child`.
pub fn stop_process_group(child: &mut Child, grace: Duration) {
    let pgid = child.id();
    signal_group(pgid, "-TERM");
    let deadline = Instant::now() + grace;
    let mut reaped = false;
    while Instant::now() < deadline {
        if !reaped {
            reaped = matches!(child.try_wait(), Ok(Some(_)));
        }
        if reaped && !process_group_alive(pgid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(pgid, "-KILL");
    let _ = child.kill();
    let _ = child.wait();
}

/// What a [`FaultProxy`] does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status (an MLflow-style JSON error body), optionally with a
    /// `Retry-After` header in seconds, without contacting the upstream server.
    Status(u16, Option<u32>),
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward to the upstream server unchanged.
    Forward,
}

type Handler = dyn Fn(&HttpRequest) -> Option<HttpReply> + Send + Sync;

/// A request as a loopback stub server saw it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path and query, e.g. `/api/2.0/mlflow/runs/get?run_id=x`.
    pub target: String,
    /// The raw request (head and body) as received.
    pub raw: Vec<u8>,
}

/// A reply of a stub handler.
#[derive(Debug, Clone)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// How the reply goes out.
    pub delivery: Delivery,
}

/// How a [`HttpReply`] is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Head with the body's `Content-Length`, then the body.
    Whole,
    /// Head with the full `Content-Length`, then only this many bytes of the body, then the
    /// connection closes (a response cut off mid-way).
    Truncated(usize),
    /// Head without a length, then the first `prefix` bytes of the body once, then the rest
    /// repeated until `total` bytes went out, then close (a body as large as wanted without
    /// holding it; an unsized download).
    Stream {
        /// Bytes of the body sent once, first.
        prefix: usize,
        /// Bytes sent in all.
        total: u64,
    },
    /// Close the connection without answering (a lost response).
    Drop,
    /// Head with the body's `Content-Length` at once, then the body one byte per `interval`
    /// (a slowloris server: every read gets something, the response never ends in time).
    Trickle {
        /// The pause before each byte.
        interval: Duration,
    },
}

impl HttpReply {
    /// A JSON reply.
    pub fn json(status: u16, body: &str) -> HttpReply {
        HttpReply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
            delivery: Delivery::Whole,
        }
    }

    /// This reply sent as `delivery`.
    pub fn delivered(mut self, delivery: Delivery) -> HttpReply {
        self.delivery = delivery;
        self
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (one thread per connection, `Connection: close`) for
/// the few tests that need answers a real server never gives (faults, hostile listings). A
/// handler returning `None` forwards the request to `upstream` when one is set, else 404.
/// Stopped when dropped.
pub struct StubServer {
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for StubServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StubServer")
            .field("url", &self.url)
            .finish()
    }
}

impl StubServer {
    /// Starts a stub answering with `handler`, forwarding unanswered requests to `upstream`
    /// (`http://127.0.0.1:port`) when given.
    pub fn start(
        upstream: Option<&str>,
        handler: impl Fn(&HttpRequest) -> Option<HttpReply> + Send + Sync + 'static,
    ) -> io::Result<StubServer> {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let url = format!("http://{}", listener.local_addr()?);
        let upstream = upstream.map(|url| {
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let stop = Arc::clone(&stop);
            let requests = Arc::clone(&requests);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let handler = Arc::clone(&handler);
                            let upstream = upstream.clone();
                            let requests = Arc::clone(&requests);
                            std::thread::spawn(move || {
                                let _ = serve_connection(
                                    stream,
                                    &*handler,
                                    upstream.as_deref(),
                                    &requests,
                                );
                            });
                        }
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => break,
                    }
                }
            })
        };
        Ok(StubServer {
            url,
            stop,
            requests,
            thread: Some(thread),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:5123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A [`StubServer`] in front of a real server that applies queued [`Fault`]s, one per request,
/// then forwards everything.
#[derive(Debug)]
pub struct FaultProxy {
    stub: StubServer,
    plan: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Fault>>>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:port`).
    pub fn start(upstream: &str) -> io::Result<FaultProxy> {
        let plan = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let queue = std::sync::Arc::clone(&plan);
        let stub = StubServer::start(Some(upstream), move |_request| {
            let fault = queue.lock().unwrap().pop_front().unwrap_or(Fault::Forward);
            match fault {
                Fault::Forward => None,
                Fault::Delay(delay) => {
                    std::thread::sleep(delay);
                    None
                }
                Fault::Status(status, retry_after) => {
                    let mut reply = HttpReply::json(
                        status,
                        r#"{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected fault"}"#,
                    );
                    if let Some(seconds) = retry_after {
                        reply
                            .headers
                            .push(("Retry-After".into(), seconds.to_string()));
                    }
                    Some(reply)
                }
            }
        })?;
        Ok(FaultProxy { stub, plan })
    }

    /// Queues faults for the next requests (in order).
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        self.plan.lock().unwrap().extend(faults);
    }

    /// Base URL of the proxy.
    pub fn url(&self) -> &str {
        self.stub.url()
    }

    /// Requests received so far (faulted and forwarded).
    pub fn requests(&self) -> usize {
        self.stub.requests()
    }
}

fn read_http_request(stream: &mut TcpStream) -> io::Result<Option<HttpRequest>> {
    use std::io::Read;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    let head_end = loop {
        if let Some(position) = raw.windows(4).position(|window| window == b"\r\n\r\n") {
            break position + 4;
        }
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(None);
        }
        raw.extend_from_slice(&buffer[..read]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let content_length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while raw.len() < head_end + content_length {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        raw.extend_from_slice(&buffer[..read]);
    }
    let mut request_line = head.lines().next().unwrap_or_default().split_whitespace();
    Ok(Some(HttpRequest {
        method: request_line.next().unwrap_or_default().to_string(),
        target: request_line.next().unwrap_or_default().to_string(),
        raw,
    }))
}

/// Replaces any `Connection` header of an HTTP head with `Connection: close`.
fn force_close(message: &[u8]) -> Vec<u8> {
    let Some(head_end) = message.windows(4).position(|window| window == b"\r\n\r\n") else {
        return message.to_vec();
    };
    let head = String::from_utf8_lossy(&message[..head_end]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("connection"));
        if !is_connection {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&message[head_end + 4..]);
    bytes
}

fn serve_connection(
    mut stream: TcpStream,
    handler: &Handler,
    upstream: Option<&str>,
    requests: &std::sync::atomic::AtomicUsize,
) -> io::Result<()> {
    use std::io::Write;
    stream.set_nonblocking(false)?;
    let Some(request) = read_http_request(&mut stream)? else {
        return Ok(());
    };
    requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if let Some(reply) = handler(&request) {
        return send_reply(&mut stream, &reply);
    }
    let Some(upstream) = upstream else {
        stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return stream.flush();
    };
    let response = forward(upstream, &request)?;
    stream.write_all(&response)?;
    stream.flush()
}

/// Sends `request` to `upstream` (`127.0.0.1:port`) and returns its whole raw response (with
/// `Connection: close`): for handlers that let the real server do the work, then misbehave.
pub fn forward(upstream: &str, request: &HttpRequest) -> io::Result<Vec<u8>> {
    use std::io::{Read, Write};
    let upstream = upstream.trim_start_matches("http://").trim_end_matches('/');
    let mut backend = TcpStream::connect(upstream)?;
    backend.write_all(&force_close(&request.raw))?;
    let mut response = Vec::new();
    backend.read_to_end(&mut response)?;
    Ok(force_close(&response))
}

fn send_reply(stream: &mut TcpStream, reply: &HttpReply) -> io::Result<()> {
    use std::io::Write;
    let mut head = format!("HTTP/1.1 {} Stub\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match reply.delivery {
        Delivery::Drop => return Ok(()),
        Delivery::Stream { .. } => head.push_str("Connection: close\r\n\r\n"),
        Delivery::Whole | Delivery::Truncated(_) | Delivery::Trickle { .. } => {
            head.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                reply.body.len()
            ))
        }
    }
    stream.write_all(head.as_bytes())?;
    match reply.delivery {
        Delivery::Whole => stream.write_all(&reply.body)?,
        Delivery::Truncated(bytes) => {
            stream.write_all(&reply.body[..bytes.min(reply.body.len())])?;
        }
        Delivery::Stream { prefix, total } => {
            let (once, repeated) = reply.body.split_at(prefix.min(reply.body.len()));
            if stream.write_all(once).is_err() {
                return Ok(());
            }
            let mut sent = once.len() as u64;
            while sent < total && !repeated.is_empty() {
                let chunk = &repeated[..(total - sent).min(repeated.len() as u64) as usize];
                // The client stops reading once it has had enough: that ends the reply.
                if stream.write_all(chunk).is_err() {
                    return Ok(());
                }
                sent += chunk.len() as u64;
            }
        }
        Delivery::Trickle { interval } => {
            stream.flush()?;
            for byte in &reply.body {
                std::thread::sleep(interval);
                // The client gives up at its deadline: that ends the reply.
                if stream.write_all(std::slice::from_ref(byte)).is_err() || stream.flush().is_err()
                {
                    return Ok(());
                }
            }
        }
        Delivery::Drop => {}
    }
    stream.flush()
}

/// What a [`HostileServer`] does wrong. Requests it has no answer for are forwarded to the
/// upstream server when one is given, else answered 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hostile {
    /// `runs/search` answers a valid JSON object of this many bytes (a huge field nobody
    /// asked for), sent without a length.
    HugeBody(u64),
    /// `runs/search` answers one run and the same `next_page_token` forever.
    RepeatedPageToken,
    /// `runs/search` answers one run and a fresh `next_page_token` every time, forever.
    EndlessPageTokens,
    /// The listing of an artifact directory gives `files` files of `listed` bytes each (or no
    /// size when `None`); each file's body then streams `sent` bytes, unsized.
    LyingArtifactSizes {
        /// Files in the listing.
        files: usize,
        /// The size the listing claims.
        listed: Option<u64>,
        /// The bytes actually sent per file.
        sent: u64,
    },
    /// `runs/get` answers a run whose `artifact_uri` is `mlflow-artifacts://{0}/1/r1/artifacts`
    /// (another host), and artifact requests are answered as for a well-formed one-file model.
    ForeignArtifactHost(String),
    /// Every request is answered 400 with a message echoing the request's head (its
    /// `Authorization` header included), padded to at least this many bytes.
    ReflectAuthHeader(usize),
    /// The first this many requests are forwarded, but their response is cut off halfway.
    TruncatedBody(usize),
    /// The first this many requests are forwarded (the real server does the work), then the
    /// connection closes without an answer.
    ResetAfterWork(usize),
}

/// A loopback HTTP server misbehaving in one [`Hostile`] way, recording every request.
#[derive(Debug)]
pub struct HostileServer {
    stub: StubServer,
    received: std::sync::Arc<std::sync::Mutex<Vec<HttpRequest>>>,
}

impl HostileServer {
    /// Starts one, forwarding what the mode does not answer to `upstream` when given.
    pub fn start(mode: Hostile, upstream: Option<&str>) -> io::Result<HostileServer> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let count = AtomicUsize::new(0);
        let upstream_url = upstream.map(str::to_string);
        let stub = StubServer::start(upstream, move |request| {
            log.lock().unwrap().push(request.clone());
            let index = count.fetch_add(1, Ordering::SeqCst);
            let path = request.target.split('?').next().unwrap_or_default();
            match &mode {
                Hostile::HugeBody(bytes) => {
                    path.ends_with("/runs/search").then(|| huge_json(*bytes))
                }
                Hostile::RepeatedPageToken => path.ends_with("/runs/search").then(|| {
                    HttpReply::json(
                        200,
                        &format!(
                            r#"{{"runs": [{}], "next_page_token": "same-token"}}"#,
                            run_json("r1", "mlflow-artifacts:/1/r1/artifacts")
                        ),
                    )
                }),
                Hostile::EndlessPageTokens => path.ends_with("/runs/search").then(|| {
                    HttpReply::json(
                        200,
                        &format!(
                            r#"{{"runs": [{}], "next_page_token": "page-{index}"}}"#,
                            run_json("r1", "mlflow-artifacts:/1/r1/artifacts")
                        ),
                    )
                }),
                Hostile::LyingArtifactSizes {
                    files,
                    listed,
                    sent,
                } => artifact_reply(request, *files, *listed, *sent),
                Hostile::ForeignArtifactHost(host) => {
                    if path.ends_with("/runs/get") {
                        let uri = format!("mlflow-artifacts://{host}/1/r1/artifacts");
                        Some(HttpReply::json(
                            200,
                            &format!(r#"{{"run": {}}}"#, run_json("r1", &uri)),
                        ))
                    } else {
                        artifact_reply(request, 1, Some(2), 2)
                    }
                }
                Hostile::ReflectAuthHeader(padding) => {
                    let head_end = request
                        .raw
                        .windows(4)
                        .position(|window| window == b"\r\n\r\n")
                        .unwrap_or(request.raw.len());
                    let head = String::from_utf8_lossy(&request.raw[..head_end]).into_owned();
                    let message = format!("bad request {head}{}", "x".repeat(*padding));
                    let body = serde_json_string(&message);
                    Some(HttpReply::json(
                        400,
                        &format!(r#"{{"error_code": "BAD_REQUEST", "message": {body}}}"#),
                    ))
                }
                Hostile::TruncatedBody(first) if index < *first => {
                    let upstream = upstream_url.as_deref()?;
                    let raw = forward(upstream, request).ok()?;
                    let mut reply = parse_raw_reply(&raw)?;
                    let half = reply.body.len() / 2;
                    reply.delivery = Delivery::Truncated(half);
                    Some(reply)
                }
                Hostile::ResetAfterWork(first) if index < *first => {
                    let upstream = upstream_url.as_deref()?;
                    forward(upstream, request).ok()?;
                    Some(HttpReply::json(200, "").delivered(Delivery::Drop))
                }
                Hostile::TruncatedBody(_) | Hostile::ResetAfterWork(_) => None,
            }
        })?;
        Ok(HostileServer { stub, received })
    }

    /// Base URL, e.g. `http://127.0.0.1:5123`.
    pub fn url(&self) -> &str {
        self.stub.url()
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<HttpRequest> {
        self.received.lock().unwrap().clone()
    }
}

impl HttpRequest {
    /// The value of header `name` (case-insensitive), if the request had one.
    pub fn header(&self, name: &str) -> Option<String> {
        let head_end = self
            .raw
            .windows(4)
            .position(|window| window == b"\r\n\r\n")?;
        String::from_utf8_lossy(&self.raw[..head_end])
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_string())
    }
}

/// A JSON string literal of `text`.
fn serde_json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One MLflow run as JSON.
fn run_json(run_id: &str, artifact_uri: &str) -> String {
    format!(
        r#"{{"info": {{"run_id": "{run_id}", "run_uuid": "{run_id}", "experiment_id": "1", "run_name": "r", "status": "FINISHED", "start_time": 1, "artifact_uri": "{artifact_uri}", "lifecycle_stage": "active"}}, "data": {{}}}}"#
    )
}

/// `{"runs": [], "padding": "xxx…"}` of about `bytes` bytes, streamed without a length.
fn huge_json(bytes: u64) -> HttpReply {
    // The opening once, then the padding repeated; the string is never closed, so a client
    // reading it all would fail too, but it must give up at its size cap first.
    let opening = r#"{"runs": [], "padding": ""#;
    let body = format!("{opening}{}", "x".repeat(1 << 16));
    HttpReply::json(200, &body).delivered(Delivery::Stream {
        prefix: opening.len(),
        total: bytes,
    })
}

/// Listings and file bodies of an artifact tree `…/model` with `files` files `w{i}.bin`.
fn artifact_reply(
    request: &HttpRequest,
    files: usize,
    listed: Option<u64>,
    sent: u64,
) -> Option<HttpReply> {
    let target = &request.target;
    if let Some(query) = target.strip_prefix("/api/2.0/mlflow-artifacts/artifacts?path=") {
        let path = query.replace("%2F", "/");
        let body = if path.ends_with("/artifacts") {
            r#"{"files": [{"path": "model", "is_dir": true}]}"#.to_string()
        } else {
            let entries: Vec<String> = (0..files)
                .map(|i| match listed {
                    Some(size) => {
                        format!(r#"{{"path": "w{i}.bin", "is_dir": false, "file_size": {size}}}"#)
                    }
                    None => format!(r#"{{"path": "w{i}.bin", "is_dir": false}}"#),
                })
                .collect();
            format!(r#"{{"files": [{}]}}"#, entries.join(", "))
        };
        return Some(HttpReply::json(200, &body));
    }
    target
        .starts_with("/api/2.0/mlflow-artifacts/artifacts/")
        .then(|| HttpReply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/octet-stream".into())],
            body: vec![b'w'; 64 << 10],
            delivery: Delivery::Stream {
                prefix: 0,
                total: sent,
            },
        })
}

/// A raw HTTP response as a [`HttpReply`] (length and connection headers dropped).
pub(crate) fn parse_raw_reply(raw: &[u8]) -> Option<HttpReply> {
    let head_end = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| {
            !["content-length", "connection", "transfer-encoding"]
                .contains(&name.trim().to_ascii_lowercase().as_str())
        })
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    Some(HttpReply {
        status,
        headers,
        body: raw[head_end + 4..].to_vec(),
        delivery: Delivery::Whole,
    })
}
