//! The HTTP transport of [`RestStore`]: one pooled client, same-origin redirects, retries with
//! backoff, bounded bodies and error texts with credentials redacted.

use super::*;

/// A store talking to `mlflow server` over REST. Cheap to share between threads (`&RestStore`
/// is `Sync`; the connection pool is shared).
///
/// ```no_run
/// use podium_mlflow::rest::{RestConfig, RestStore};
/// use podium_mlflow::TrackingStore;
/// let store = RestStore::new("http://127.0.0.1:5000", RestConfig::default())?;
/// let experiment = store.get_experiment_by_name("Default")?;
/// # Ok::<(), podium_mlflow::MlflowError>(())
/// ```
#[derive(Debug)]
pub struct RestStore {
    pub(super) base_url: String,
    pub(super) display_url: String,
    /// Scheme, host and port of the tracking server: credentials go there and nowhere else.
    pub(super) origin: Origin,
    pub(super) client: Client,
    pub(super) config: RestConfig,
}

/// The origin of a URL (scheme, host, port), as browsers compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    pub(super) scheme: String,
    pub(super) host: String,
    pub(super) port: Option<u16>,
}

impl Origin {
    pub(super) fn of(url: &reqwest::Url) -> Origin {
        Origin {
            scheme: url.scheme().to_ascii_lowercase(),
            host: url.host_str().unwrap_or_default().to_ascii_lowercase(),
            port: url.port_or_known_default(),
        }
    }

    /// `host:port` (the port always written).
    pub(super) fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Redirects are followed only within the origin of the first request, so that credentials
/// never follow a redirect to another host or from https to http.
pub(super) fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(Origin::of);
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if first.is_some_and(|origin| origin == Origin::of(attempt.url())) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

impl RestStore {
    /// A store for the server at `base_url` (`http(s)://host[:port][/prefix]`).
    pub fn new(base_url: &str, config: RestConfig) -> Result<Self, MlflowError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        let display_url = redact_uri(&base_url);
        let origin = reqwest::Url::parse(&base_url)
            .map(|url| Origin::of(&url))
            .map_err(|err| MlflowError::UnsupportedUri {
                uri: display_url.clone(),
                reason: format!("not a valid URL: {err}"),
            })?;
        let mut builder = Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(same_origin_redirects())
            .user_agent(concat!("podium/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(config.insecure_tls);
        if let Some(path) = &config.server_cert_path {
            let pem = read_regular_file(path, MAX_CERT_BUNDLE_BYTES).map_err(|err| {
                MlflowError::Config {
                    name: "MLFLOW_TRACKING_SERVER_CERT_PATH".to_string(),
                    value: path.display().to_string(),
                    message: err.reason(),
                }
            })?;
            let certificates =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| MlflowError::Config {
                    name: "MLFLOW_TRACKING_SERVER_CERT_PATH".to_string(),
                    value: path.display().to_string(),
                    message: format!("not a PEM certificate bundle: {err}"),
                })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(|err| MlflowError::Config {
            name: "tracking URI".to_string(),
            value: display_url.clone(),
            message: format!("cannot build an HTTP client: {err}"),
        })?;
        Ok(Self {
            base_url,
            display_url,
            origin,
            client,
            config,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &RestConfig {
        &self.config
    }

    pub(super) fn api_url(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/mlflow/{endpoint}", self.base_url)
    }

    pub(super) fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.config.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose()))
            }
        }
    }

    /// Sends a request with retries and reads its successful (2xx) response with `read`,
    /// inside the retry loop: a body cut off or reset mid-way is retried like a failed
    /// request, and so is an error response whose body was cut off (its error code, which
    /// callers act on, is lost). `endpoint` names the call in messages; credentials are
    /// attached only when `credentials` says so (requests to the tracking server's own origin).
    ///
    /// Every attempt is bounded by its deadline ([`TimedResponse`]), and the sequence by
    /// [`RestConfig::max_retry_time`]: no retry or wait starts past it.
    pub(super) fn request<V>(
        &self,
        endpoint: &str,
        credentials: bool,
        build: &dyn Fn() -> RequestBuilder,
        read: &dyn Fn(TimedResponse) -> Result<V, BodyFailure>,
    ) -> Result<V, MlflowError> {
        let attempts = self.config.max_retries.saturating_add(1);
        let sequence = std::time::Instant::now();
        let mut retry = 0u32;
        loop {
            let request = if credentials {
                self.authorize(build())
            } else {
                build()
            };
            let started = std::time::Instant::now();
            let outcome = request.send();
            let last_attempt = retry + 1 >= attempts;
            let retry_after;
            let failure = match outcome {
                Ok(response) if response.status().is_success() => {
                    match read(TimedResponse::new(response, started, &self.config)) {
                        Ok(value) => return Ok(value),
                        Err(BodyFailure::Fatal(err)) => return Err(err),
                        Err(BodyFailure::Transient(message)) => {
                            let message = format!("response body cut off: {message}");
                            if last_attempt {
                                return Err(self.unreachable_message(endpoint, attempts, message));
                            }
                            retry_after = None;
                            message
                        }
                    }
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retried_status = RETRY_STATUSES.contains(&status);
                    retry_after = parse_retry_after(&response);
                    let response = TimedResponse::new(response, started, &self.config);
                    if retried_status && !last_attempt {
                        format!("HTTP {status}")
                    } else {
                        match self.http_error(endpoint, response) {
                            Ok(err) => return Err(err),
                            Err(cut) => {
                                let message =
                                    format!("HTTP {status} with its error body cut off: {cut}");
                                if last_attempt {
                                    return Err(
                                        self.unreachable_message(endpoint, attempts, message)
                                    );
                                }
                                message
                            }
                        }
                    }
                }
                Err(err) => {
                    if last_attempt {
                        return Err(self.unreachable(endpoint, attempts, &err));
                    }
                    retry_after = None;
                    describe_transport_error(&err)
                }
            };
            retry += 1;
            let delay = retry_after
                .map(|delay| delay.min(self.config.backoff_max))
                .unwrap_or_else(|| self.config.backoff(retry));
            let spent = sequence.elapsed();
            if spent.saturating_add(delay) > self.config.max_retry_time {
                return Err(self.unreachable_message(
                    endpoint,
                    retry,
                    format!(
                        "{failure}; gave up after {retry} attempt(s) in {:.1} s: waiting {:.1} s \
                         more would pass the {:.0} s budget of one request with its retries \
                         (PODIUM_MAX_RETRY_SECONDS)",
                        spent.as_secs_f64(),
                        delay.as_secs_f64(),
                        self.config.max_retry_time.as_secs_f64()
                    ),
                ));
            }
            tracing::warn!(
                "MLflow server {} {endpoint}: {failure}; retry {retry}/{} in {:.1}s",
                self.display_url,
                self.config.max_retries,
                delay.as_secs_f64()
            );
            std::thread::sleep(delay);
        }
    }

    pub(super) fn unreachable(
        &self,
        endpoint: &str,
        attempts: u32,
        err: &reqwest::Error,
    ) -> MlflowError {
        self.unreachable_message(endpoint, attempts, describe_transport_error(err))
    }

    pub(super) fn unreachable_message(
        &self,
        endpoint: &str,
        attempts: u32,
        message: String,
    ) -> MlflowError {
        UNREACHABLE_SEEN.store(true, std::sync::atomic::Ordering::Relaxed);
        MlflowError::Unreachable {
            url: self.display_url.clone(),
            endpoint: endpoint.to_string(),
            attempts,
            message,
        }
    }

    /// The error a non-2xx response stands for, or (`Err`) what cut its body off: a body that
    /// ends before its length, or is reset mid-way, has lost the error code callers act on
    /// (`RESOURCE_ALREADY_EXISTS` above all), so it is retried like a cut-off success body.
    pub(super) fn http_error(
        &self,
        endpoint: &str,
        response: TimedResponse,
    ) -> Result<MlflowError, String> {
        #[derive(Deserialize, Default)]
        struct ErrorBody {
            #[serde(default)]
            error_code: String,
            #[serde(default)]
            message: String,
        }
        let status = response.status();
        // Only the head of an error body is read: a server can send anything here.
        let mut body = Vec::new();
        if let Err(err) = response.take(MAX_ERROR_BODY_BYTES).read_to_end(&mut body) {
            return Err(describe_io_error(&err));
        }
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let message = if parsed.message.is_empty() {
            String::from_utf8_lossy(&body).into_owned()
        } else {
            parsed.message
        };
        Ok(MlflowError::Http {
            url: self.display_url.clone(),
            endpoint: endpoint.to_string(),
            status,
            code: bounded_message(&self.redact(&parsed.error_code)),
            message: bounded_message(&self.redact(&message)),
        })
    }

    /// `text` with this store's credentials and any `Basic …`/`Bearer …` value replaced by
    /// `***`: a server (or a proxy in front of it) may echo the request's headers.
    pub(super) fn redact(&self, text: &str) -> String {
        let mut secrets: Vec<String> = Vec::new();
        match &self.config.auth {
            Auth::None => {}
            Auth::Bearer(token) => secrets.push(token.expose().to_string()),
            Auth::Basic { username, password } => {
                use base64::Engine as _;
                secrets.push(password.expose().to_string());
                secrets.push(
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{}", password.expose())),
                );
            }
        }
        redact_credentials(text, &secrets)
    }

    /// Reads a JSON body through `seed` (so that it can drop what the caller does not want
    /// while reading), within [`RestConfig::max_response_bytes`].
    pub(super) fn read_json<V, S>(
        &self,
        endpoint: &str,
        response: TimedResponse,
        seed: S,
    ) -> Result<V, BodyFailure>
    where
        S: for<'de> DeserializeSeed<'de, Value = V>,
    {
        let max = self.config.max_response_bytes;
        let length = response.content_length();
        if length.is_some_and(|length| length > max) {
            return Err(BodyFailure::Fatal(self.too_large(endpoint)));
        }
        let exceeded = Cell::new(false);
        let mut body = CappedBody {
            inner: response,
            remaining: max,
            exceeded: &exceeded,
        };
        let parsed = match length {
            Some(length) if length <= BUFFERED_BODY_BYTES => {
                let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
                if let Err(err) = body.read_to_end(&mut bytes) {
                    return Err(if exceeded.get() {
                        BodyFailure::Fatal(self.too_large(endpoint))
                    } else {
                        BodyFailure::Transient(describe_io_error(&err))
                    });
                }
                let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
                seed.deserialize(&mut deserializer)
                    .and_then(|value| deserializer.end().map(|()| value))
            }
            _ => {
                let reader = BufReader::with_capacity(64 << 10, body);
                let mut deserializer = serde_json::Deserializer::from_reader(reader);
                seed.deserialize(&mut deserializer)
                    .and_then(|value| deserializer.end().map(|()| value))
            }
        };
        parsed.map_err(|err| {
            if exceeded.get() {
                BodyFailure::Fatal(self.too_large(endpoint))
            } else if err.is_io() || err.is_eof() {
                BodyFailure::Transient(bounded_message(&err.to_string()))
            } else {
                BodyFailure::Fatal(MlflowError::Protocol {
                    store: self.display_url.clone(),
                    context: endpoint.to_string(),
                    message: bounded_message(&err.to_string()),
                })
            }
        })
    }

    pub(super) fn too_large(&self, endpoint: &str) -> MlflowError {
        MlflowError::Protocol {
            store: self.display_url.clone(),
            context: endpoint.to_string(),
            message: format!(
                "response larger than {} bytes (PODIUM_MAX_RESPONSE_BYTES)",
                self.config.max_response_bytes
            ),
        }
    }

    pub(super) fn get<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
    ) -> Result<T, MlflowError> {
        let url = self.api_url(endpoint);
        self.request(
            endpoint,
            true,
            &|| self.client.get(&url).query(query),
            &|response| self.read_json(endpoint, response, PhantomData::<T>),
        )
    }

    pub(super) fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &B,
    ) -> Result<T, MlflowError> {
        self.post_seed(endpoint, body, PhantomData::<T>, Connection::Reuse)
    }

    /// POSTs `body` and reads the answer through `seed`.
    pub(super) fn post_seed<B: Serialize, V, S: Copy + for<'de> DeserializeSeed<'de, Value = V>>(
        &self,
        endpoint: &str,
        body: &B,
        seed: S,
        connection: Connection,
    ) -> Result<V, MlflowError> {
        let url = self.api_url(endpoint);
        let bytes = serde_json::to_vec(body).map_err(|err| MlflowError::Protocol {
            store: self.display_url.clone(),
            context: endpoint.to_string(),
            message: format!("cannot encode the request: {err}"),
        })?;
        self.request(
            endpoint,
            true,
            &|| {
                let request = self
                    .client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone());
                match connection {
                    Connection::Reuse => request,
                    Connection::Fresh => request.header(reqwest::header::CONNECTION, "close"),
                }
            },
            &|response| self.read_json(endpoint, response, seed),
        )
    }

    pub(super) fn not_found(&self, what: &'static str, id: &str) -> MlflowError {
        MlflowError::NotFound {
            what,
            id: id.to_string(),
            store: self.display_url.clone(),
        }
    }

    /// The experiment with this id.
    pub(super) fn fetch_experiment(&self, experiment_id: &str) -> Result<Experiment, MlflowError> {
        #[derive(Deserialize)]
        struct Response {
            experiment: ExperimentJson,
        }
        match self.get::<Response>("experiments/get", &[("experiment_id", experiment_id)]) {
            Ok(response) => Ok(response.experiment.into()),
            Err(err) if is_missing(&err) => Err(self.not_found("experiment", experiment_id)),
            Err(err) => Err(err),
        }
    }

    /// The base URL an `mlflow-artifacts:` URI resolves to, and whether the credentials may
    /// go there. The tracking server's own origin is used as is. Another host named by the
    /// URI (the server chooses it, so it is untrusted) is refused unless it is listed in
    /// [`RestConfig::trusted_artifact_hosts`]; then it is used with a warning.
    pub(super) fn artifacts_base(
        &self,
        run: &RunInfo,
        path: &str,
        authority: Option<&str>,
    ) -> Result<String, MlflowError> {
        let Some(authority) = authority else {
            return Ok(self.base_url.clone());
        };
        let refuse = |message: String| artifacts::artifact_error(&run.run_id, path, message);
        // userinfo in a server-supplied URI is never used.
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        let url = reqwest::Url::parse(&format!("{}://{host_port}", self.origin.scheme)).map_err(
            |err| {
                refuse(format!(
                    "artifact URI names an invalid host {host_port:?}: {err}"
                ))
            },
        )?;
        let origin = Origin::of(&url);
        if origin == self.origin {
            return Ok(self.base_url.clone());
        }
        let named = origin.authority();
        if !self.config.trusted_artifact_hosts.contains(&named) {
            return Err(refuse(format!(
                "artifact URI {:?} points at {named}, not at the tracking server {}; podium \
                 sends requests and credentials only to the tracking server (list {named} in \
                 PODIUM_TRUSTED_ARTIFACT_HOSTS to allow it)",
                redact_uri(&run.artifact_uri),
                self.origin.authority()
            )));
        }
        tracing::warn!(
            "downloading artifacts of run {} from {named} (trusted by PODIUM_TRUSTED_ARTIFACT_HOSTS), \
             not from the tracking server {}; the tracking credentials are sent there too",
            run.run_id,
            self.origin.authority()
        );
        Ok(format!("{}://{named}", origin.scheme))
    }
}

pub(super) fn describe_transport_error(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut message = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    // The innermost cause says what actually happened (refused, reset, …); URLs are not in it.
    append_innermost_cause(&mut message, err.source());
    message
}

pub(super) fn describe_io_error(err: &std::io::Error) -> String {
    use std::error::Error as _;
    let mut message = err.to_string();
    append_innermost_cause(&mut message, err.source());
    message
}

/// Appends `: {innermost cause}` of a source chain, when there is one.
pub(super) fn append_innermost_cause(
    message: &mut String,
    mut source: Option<&(dyn std::error::Error + 'static)>,
) {
    let mut last = None;
    while let Some(cause) = source {
        last = Some(cause.to_string());
        source = cause.source();
    }
    if let Some(cause) = last {
        message.push_str(": ");
        message.push_str(&cause);
    }
}

/// A `Retry-After` in seconds; absurd values (`1e308`) saturate and are capped by the caller.
pub(super) fn parse_retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let seconds: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (seconds >= 0.0).then(|| Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

/// A response whose body must arrive in time: by the request's start plus
/// [`RestConfig::timeout`], plus one second per [`RestConfig::min_response_rate`] bytes
/// received so far. Every read past that fails (as a body cut off: retried within the retry
/// budget), so a server that sends its head and then a byte a second cannot hold a request for
/// longer than the timeout and the slack its bytes earn; a read that gets nothing waits at most
/// the timeout (reqwest's own per-read limit).
pub(super) struct TimedResponse {
    inner: Response,
    started: std::time::Instant,
    timeout: Duration,
    min_rate: u64,
    received: u64,
}

impl TimedResponse {
    pub(super) fn new(inner: Response, started: std::time::Instant, config: &RestConfig) -> Self {
        TimedResponse {
            inner,
            started,
            timeout: config.timeout,
            min_rate: config.min_response_rate.max(1),
            received: 0,
        }
    }

    /// The `Content-Length` the server announced.
    pub(super) fn content_length(&self) -> Option<u64> {
        self.inner.content_length()
    }

    /// The status code.
    pub(super) fn status(&self) -> u16 {
        self.inner.status().as_u16()
    }

    /// How long this response may take in all, given what it has delivered so far.
    fn allowance(&self) -> Duration {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        self.timeout.saturating_add(earned)
    }
}

impl Read for TimedResponse {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let allowance = self.allowance();
        if self.started.elapsed() > allowance {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the response took longer than {:.1} s ({} bytes in; at least {} bytes a \
                     second are needed past MLFLOW_HTTP_REQUEST_TIMEOUT, \
                     PODIUM_MIN_RESPONSE_BYTES_PER_SECOND)",
                    allowance.as_secs_f64(),
                    self.received,
                    self.min_rate
                ),
            ));
        }
        let read = self.inner.read(buf)?;
        self.received += read as u64;
        Ok(read)
    }
}

/// Whether a request may go over a kept-alive connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Connection {
    /// The client's pool: small requests, where a handshake would cost more than the request.
    Reuse,
    /// A connection of its own, closed after the answer (`Connection: close`). For search
    /// pages: a multi-worker `mlflow server` serves each connection in the worker that accepted
    /// it, so concurrent searches over long-lived connections can pile onto one worker (Python,
    /// one core at a time) while others idle; a fresh connection per page goes to a worker that
    /// is free to accept. On a 4-worker server on 2 cores this took `podium select` on a
    /// 100k-run store from 60 – 133 s to 57 – 65 s (docs/PERFORMANCE.md).
    Fresh,
}

/// What went wrong reading a successful response's body.
pub(super) enum BodyFailure {
    /// Cut off, reset or timed out mid-way: worth another attempt.
    Transient(String),
    /// Final (too large, not what was expected, a local write failed).
    Fatal(MlflowError),
}

/// A response body that fails (and says so in `exceeded`) past `remaining` bytes.
pub(super) struct CappedBody<'a, R> {
    pub(super) inner: R,
    pub(super) remaining: u64,
    pub(super) exceeded: &'a Cell<bool>,
}

impl<R: Read> Read for CappedBody<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            // One byte more than allowed tells a body of exactly the cap from a larger one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.exceeded.set(true);
                    Err(std::io::Error::other("response too large"))
                }
            };
        }
        let limit = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let read = self.inner.read(&mut buf[..limit])?;
        self.remaining -= read as u64;
        Ok(read)
    }
}

/// `text` cut to [`MAX_ERROR_MESSAGE_CHARS`] characters, saying how much was left out.
pub(crate) fn bounded_message(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
        None => text.to_string(),
        Some((cut, _)) => format!(
            "{}… ({} more bytes left out)",
            &text[..cut],
            text.len() - cut
        ),
    }
}

/// Replaces each of `secrets` and every value after `Basic ` / `Bearer ` (any case) by `***`.
pub(super) fn redact_credentials(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        out = out.replace(secret.as_str(), "***");
    }
    let lower = out.to_ascii_lowercase();
    let mut redacted = String::with_capacity(out.len());
    let mut index = 0;
    while index < out.len() {
        let scheme = ["basic ", "bearer "]
            .into_iter()
            .find(|scheme| lower[index..].starts_with(scheme));
        match scheme {
            Some(scheme) => {
                let value_start = index + scheme.len();
                let value_end = out[value_start..]
                    .find(|c: char| {
                        c.is_whitespace() || matches!(c, '"' | '\'' | ',' | ';' | '}' | '\\')
                    })
                    .map_or(out.len(), |offset| value_start + offset);
                redacted.push_str(&out[index..value_start]);
                if value_end > value_start {
                    redacted.push_str("***");
                }
                index = value_end;
            }
            None => {
                let step = out[index..].chars().next().map_or(1, char::len_utf8);
                redacted.push_str(&out[index..index + step]);
                index += step;
            }
        }
    }
    redacted
}

pub(super) fn is_missing(err: &MlflowError) -> bool {
    matches!(err, MlflowError::Http { status: 404, .. })
        || matches!(err, MlflowError::Http { code, .. } if code == "RESOURCE_DOES_NOT_EXIST")
}

pub(super) fn is_already_exists(err: &MlflowError) -> bool {
    matches!(err, MlflowError::Http { code, .. } if code == "RESOURCE_ALREADY_EXISTS")
}

// ---------------------------------------------------------------------------------------------
// Wire types: deserialized straight from the response bytes into what podium keeps.
