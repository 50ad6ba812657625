//! A fault-injecting HTTP proxy on 127.0.0.1 in front of a real `mlflow server`: per request
//! path, a fault fires with a probability (and at most a number of times), decided by a seeded
//! generator so a failing storm can be replayed.
//!
//! The faults are those a flaky network or an overloaded server produce, and differ in whether
//! the server did the work: a `503` or a reset before forwarding means it did not; a lost or a
//! truncated response means it did, and only the client does not know.
//!
//! ```no_run
//! use podium_testkit::chaos::{ChaosProxy, ChaosRule, Fault};
//! let server = podium_testkit::MlflowServer::start()?;
//! let proxy = ChaosProxy::start(
//!     server.url(),
//!     42,
//!     vec![
//!         ChaosRule::any(Fault::Unavailable, 0.30),
//!         ChaosRule::path("runs/create", Fault::LoseResponse, 1.0).times(1),
//!     ],
//! )?;
//! println!("tracking through {}", proxy.url());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::{Delivery, HttpReply, HttpRequest, StubServer, forward, parse_raw_reply};

/// One way of failing a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Answer `503 Service Unavailable` without forwarding: the server never saw the request.
    Unavailable,
    /// Forward, let the server do the work, then close the connection without an answer.
    LoseResponse,
    /// Forward, then send the response head with its full length but only half of the body.
    Truncate,
    /// Close the connection without forwarding or answering.
    Reset,
    /// Forward, then send the response head with its full length and no body at all (an error
    /// or success answer lost right after its head).
    EmptyBody,
    /// Forward (the server does the work), then hold the answer back this long before sending
    /// it: a slow network or server, the window between a request's effect and its answer.
    LateResponse(std::time::Duration),
    /// Forward, then send the head at once and the body one byte per this interval: a server
    /// (or a proxy) that trickles its answer out.
    Trickle(std::time::Duration),
    /// Answer `503` with `Retry-After: <seconds>` without forwarding.
    RetryAfter(u64),
}

impl Fault {
    /// A short name for counts and messages.
    pub fn label(self) -> &'static str {
        match self {
            Fault::Unavailable => "503",
            Fault::LoseResponse => "lost",
            Fault::Truncate => "truncated",
            Fault::Reset => "reset",
            Fault::EmptyBody => "empty body",
            Fault::LateResponse(_) => "late",
            Fault::Trickle(_) => "trickled",
            Fault::RetryAfter(_) => "503 with Retry-After",
        }
    }
}

/// When a [`Fault`] fires: on requests whose path (without the query) ends with `path`, with
/// probability `probability`, at most `times` times.
#[derive(Debug, Clone, PartialEq)]
pub struct ChaosRule {
    /// Suffix of the request path, e.g. `runs/create`; empty for every request.
    pub path: String,
    /// What happens.
    pub fault: Fault,
    /// Chance per matching request, in [0, 1].
    pub probability: f64,
    /// How often it may fire in all; `None` for no limit.
    pub times: Option<usize>,
}

impl ChaosRule {
    /// `fault` with `probability` on every request.
    pub fn any(fault: Fault, probability: f64) -> Self {
        Self::path("", fault, probability)
    }

    /// `fault` with `probability` on requests whose path ends with `path`.
    pub fn path(path: &str, fault: Fault, probability: f64) -> Self {
        Self {
            path: path.to_string(),
            fault,
            probability: probability.clamp(0.0, 1.0),
            times: None,
        }
    }

    /// This rule firing at most `times` times.
    pub fn times(mut self, times: usize) -> Self {
        self.times = Some(times);
        self
    }

    fn matches(&self, path: &str) -> bool {
        path.ends_with(&self.path)
    }
}

/// The rules and what they did.
#[derive(Debug, Default)]
struct Book {
    rules: Vec<ChaosRule>,
    /// Firings per rule index.
    fired: Vec<usize>,
    /// Injected faults per (endpoint, fault).
    injected: BTreeMap<(String, Fault), usize>,
    /// Requests per endpoint (faulted or not).
    seen: BTreeMap<String, usize>,
}

/// The proxy: see the module docs. Stopped when dropped.
#[derive(Debug)]
pub struct ChaosProxy {
    stub: StubServer,
    book: Arc<Mutex<Book>>,
}

/// SplitMix64: a tiny, well-mixed generator; the `n`-th draw of a seed is a pure function of
/// both, so the decision for the `n`-th request does not depend on thread timing.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) for draw `n` of `seed`.
fn uniform(seed: u64, n: u64) -> f64 {
    let bits = splitmix64(seed ^ splitmix64(n));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// The endpoint of a request target: its path after `/api/2.0/mlflow/` (or the whole path).
fn endpoint(target: &str) -> &str {
    let path = target.split('?').next().unwrap_or_default();
    path.strip_prefix("/api/2.0/mlflow/")
        .or_else(|| path.strip_prefix("/ajax-api/2.0/mlflow/"))
        .unwrap_or(path)
}

impl ChaosProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:port`) applying `rules` with draws from
    /// `seed`. For each request the rules matching its path are tried in order, each with one
    /// draw; the first that fires decides; none firing forwards the request unchanged.
    pub fn start(upstream: &str, seed: u64, rules: Vec<ChaosRule>) -> io::Result<ChaosProxy> {
        let book = Arc::new(Mutex::new(Book {
            fired: vec![0; rules.len()],
            rules,
            ..Book::default()
        }));
        let draws = Arc::new(AtomicU64::new(0));
        let upstream_url = upstream.to_string();
        let shared = Arc::clone(&book);
        let stub = StubServer::start(Some(upstream), move |request| {
            let fault = decide(&shared, &draws, seed, request);
            fault.map(|fault| apply(fault, &upstream_url, request))
        })?;
        Ok(ChaosProxy { stub, book })
    }

    /// Base URL of the proxy, e.g. `http://127.0.0.1:5123`.
    pub fn url(&self) -> &str {
        self.stub.url()
    }

    /// Replaces the rules (their firing counts start again); `vec![]` makes the proxy pass
    /// everything through.
    pub fn set_rules(&self, rules: Vec<ChaosRule>) {
        let mut book = self.book.lock().unwrap();
        book.fired = vec![0; rules.len()];
        book.rules = rules;
    }

    /// Faults injected so far, per `(endpoint, fault)` (endpoint as after `/api/2.0/mlflow/`).
    pub fn injected(&self) -> BTreeMap<(String, Fault), usize> {
        self.book.lock().unwrap().injected.clone()
    }

    /// How many faults of kind `fault` were injected on endpoints ending with `path`.
    pub fn count(&self, path: &str, fault: Fault) -> usize {
        self.book
            .lock()
            .unwrap()
            .injected
            .iter()
            .filter(|((endpoint, kind), _)| endpoint.ends_with(path) && *kind == fault)
            .map(|(_, count)| count)
            .sum()
    }

    /// Requests received per endpoint, faulted or not.
    pub fn seen(&self) -> BTreeMap<String, usize> {
        self.book.lock().unwrap().seen.clone()
    }

    /// Requests received in all.
    pub fn requests(&self) -> usize {
        self.stub.requests()
    }
}

fn decide(
    book: &Mutex<Book>,
    draws: &AtomicU64,
    seed: u64,
    request: &HttpRequest,
) -> Option<Fault> {
    let endpoint = endpoint(&request.target).to_string();
    let mut book = book.lock().unwrap();
    *book.seen.entry(endpoint.clone()).or_insert(0) += 1;
    let mut chosen = None;
    for index in 0..book.rules.len() {
        let rule = &book.rules[index];
        if !rule.matches(&endpoint) || rule.times.is_some_and(|times| book.fired[index] >= times) {
            continue;
        }
        // One draw per matching rule, numbered in arrival order under the lock.
        let draw = uniform(seed, draws.fetch_add(1, Ordering::SeqCst));
        if draw < rule.probability {
            chosen = Some((index, rule.fault));
            break;
        }
    }
    let (index, fault) = chosen?;
    book.fired[index] += 1;
    *book.injected.entry((endpoint, fault)).or_insert(0) += 1;
    Some(fault)
}

fn apply(fault: Fault, upstream: &str, request: &HttpRequest) -> HttpReply {
    let dropped = || HttpReply::json(200, "").delivered(Delivery::Drop);
    match fault {
        Fault::Unavailable => HttpReply::json(
            503,
            r#"{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected 503"}"#,
        ),
        Fault::Reset => dropped(),
        Fault::LoseResponse => {
            // The server does the work; its answer never reaches the client.
            let _ = forward(upstream, request);
            dropped()
        }
        Fault::Truncate => match forward(upstream, request)
            .ok()
            .and_then(|raw| parse_raw_reply(&raw))
        {
            Some(mut reply) => {
                let half = reply.body.len() / 2;
                reply.delivery = Delivery::Truncated(half);
                reply
            }
            None => dropped(),
        },
        Fault::EmptyBody => match forward(upstream, request)
            .ok()
            .and_then(|raw| parse_raw_reply(&raw))
        {
            Some(reply) => reply.delivered(Delivery::Truncated(0)),
            None => dropped(),
        },
        Fault::LateResponse(delay) => match forward(upstream, request)
            .ok()
            .and_then(|raw| parse_raw_reply(&raw))
        {
            Some(reply) => {
                std::thread::sleep(delay);
                reply
            }
            None => dropped(),
        },
        Fault::Trickle(interval) => match forward(upstream, request)
            .ok()
            .and_then(|raw| parse_raw_reply(&raw))
        {
            Some(reply) => reply.delivered(Delivery::Trickle { interval }),
            None => dropped(),
        },
        Fault::RetryAfter(seconds) => {
            let mut reply = HttpReply::json(
                503,
                r#"{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected 503"}"#,
            );
            reply
                .headers
                .push(("Retry-After".into(), seconds.to_string()));
            reply
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_a_function_of_seed_and_number() {
        let a: Vec<f64> = (0..100).map(|n| uniform(7, n)).collect();
        let b: Vec<f64> = (0..100).map(|n| uniform(7, n)).collect();
        let c: Vec<f64> = (0..100).map(|n| uniform(8, n)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|u| (0.0..1.0).contains(u)));
    }

    #[test]
    fn draws_hit_a_probability_about_as_often_as_asked() {
        let hits = (0..100_000).filter(|&n| uniform(1, n) < 0.3).count();
        assert!((29_000..31_000).contains(&hits), "{hits}");
    }

    #[test]
    fn endpoints_drop_the_api_prefix_and_the_query() {
        assert_eq!(endpoint("/api/2.0/mlflow/runs/get?run_id=1"), "runs/get");
        assert_eq!(endpoint("/health"), "/health");
    }

    fn request(target: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            target: target.into(),
            raw: Vec::new(),
        }
    }

    #[test]
    fn rules_fire_by_path_and_at_most_their_times() {
        let book = Mutex::new(Book {
            rules: vec![
                ChaosRule::path("runs/create", Fault::LoseResponse, 1.0).times(2),
                ChaosRule::any(Fault::Unavailable, 0.0),
            ],
            fired: vec![0, 0],
            ..Book::default()
        });
        let draws = AtomicU64::new(0);
        let create = request("/api/2.0/mlflow/runs/create");
        let search = request("/api/2.0/mlflow/runs/search");
        assert_eq!(decide(&book, &draws, 1, &search), None);
        assert_eq!(decide(&book, &draws, 1, &create), Some(Fault::LoseResponse));
        assert_eq!(decide(&book, &draws, 1, &create), Some(Fault::LoseResponse));
        assert_eq!(decide(&book, &draws, 1, &create), None);
        let book = book.into_inner().unwrap();
        assert_eq!(
            book.injected[&("runs/create".into(), Fault::LoseResponse)],
            2
        );
        assert_eq!(book.seen["runs/create"], 3);
    }
}
