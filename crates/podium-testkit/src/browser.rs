//! A real headless Chromium (the Debian package `chromium`), driven over the DevTools protocol
//! through a websocket: open a page, watch its console, errors and network requests, evaluate
//! expressions in it (or in one of its frames) and take screenshots.
//!
//! Chromium starts with a fresh profile and everything that would reach out to the network on
//! its own switched off (this machine's closed network would otherwise fill the logs with
//! refused connections); it is killed, with its helper processes, when the [`Browser`] drops.

use std::io::{self, BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The Chromium binary: `PODIUM_CHROMIUM`, else `chromium`, `chromium-browser` or
/// `google-chrome` on the `PATH`.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PODIUM_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .map(|name| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// A headless Chromium and one DevTools connection to it.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Every event received so far, in order.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium (see [`chromium`]) and connects to it.
    pub fn launch() -> io::Result<Browser> {
        let binary = chromium().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no chromium on the PATH (apt-get install chromium; .ci/run installs it)",
            )
        })?;
        let profile = tempfile::tempdir()?;
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--mute-audio",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("chromium has no stderr"))?;
        let (found, endpoint) = mpsc::channel();
        std::thread::spawn(move || {
            // Reads to the end, so chromium never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = found.send(url.trim().to_string());
                }
            }
        });
        let url = match endpoint.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                kill_group(&mut child);
                return Err(io::Error::other(
                    "chromium did not say where its DevTools endpoint is within 60 s",
                ));
            }
        };
        let (socket, _) = tungstenite::connect(url.as_str()).map_err(io::Error::other)?;
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream.set_read_timeout(Some(Duration::from_millis(250)))?;
        }
        Ok(Browser {
            child,
            socket,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        })
    }

    /// Opens a new tab and attaches to it; returns its session id (for [`Browser::call`]).
    pub fn new_page(&mut self) -> io::Result<String> {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"].as_str().unwrap_or_default().to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        attached["sessionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| io::Error::other(format!("no session id in {attached}")))
    }

    /// Sends a command (to `session`, or to the browser) and returns its result; the events
    /// that arrive meanwhile are kept ([`Browser::events`]).
    pub fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> io::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .map_err(io::Error::other)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let Some(message) = self.receive(deadline)? else {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{method}: no answer within 60 s"),
                ));
            };
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    return Err(io::Error::other(format!("{method}: {error}")));
                }
                return Ok(message["result"].clone());
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    /// The first event (received so far or within `timeout`) for which `matches` is true.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> io::Result<Value> {
        if let Some(event) = self.events.iter().find(|event| matches(event)) {
            return Ok(event.clone());
        }
        let deadline = Instant::now() + timeout;
        while let Some(message) = self.receive(deadline)? {
            if message.get("method").is_some() {
                self.events.push(message.clone());
                if matches(&message) {
                    return Ok(message);
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the awaited DevTools event did not come",
        ))
    }

    /// Reads for `duration`, keeping every event (what a page still does after loading).
    pub fn settle(&mut self, duration: Duration) -> io::Result<()> {
        let deadline = Instant::now() + duration;
        while let Some(message) = self.receive(deadline)? {
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
        Ok(())
    }

    /// Every event received so far, in order.
    pub fn events(&self) -> &[Value] {
        &self.events
    }

    /// Evaluates `expression` in the page of `session` (or in the execution context
    /// `context`), awaiting a promise, and returns its value.
    pub fn evaluate(
        &mut self,
        session: &str,
        context: Option<u64>,
        expression: &str,
    ) -> io::Result<Value> {
        let mut params = json!({
            "expression": expression,
            "returnByValue": true,
            "awaitPromise": true,
        });
        if let Some(context) = context {
            params["contextId"] = json!(context);
        }
        let result = self.call(Some(session), "Runtime.evaluate", params)?;
        if let Some(exception) = result.get("exceptionDetails") {
            return Err(io::Error::other(format!(
                "evaluating {expression}: {exception}"
            )));
        }
        Ok(result["result"]["value"].clone())
    }

    /// One message, or `None` once `deadline` has passed.
    fn receive(&mut self, deadline: Instant) -> io::Result<Option<Value>> {
        while Instant::now() < deadline {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str())
                        .map(Some)
                        .map_err(io::Error::other);
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(err))
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(err) => return Err(io::Error::other(err)),
            }
        }
        Ok(None)
    }
}

fn kill_group(child: &mut Child) {
    crate::stop_process_group(child, Duration::from_secs(2));
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.socket.close(None);
        kill_group(&mut self.child);
    }
}
