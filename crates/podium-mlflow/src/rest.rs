//! The REST store: MLflow's `/api/2.0/mlflow` API over HTTP(S), with the Python client's retry,
//! timeout, auth and TLS settings.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufReader, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde::{Deserialize, Deserializer, Serialize};

use crate::artifacts::{self, ArtifactEntry, ArtifactLocation, ArtifactSource, DownloadLimits};
use crate::error::MlflowError;
use crate::model::{
    Experiment, KeySelection, MetricPoint, MlflowFloat, Run, RunFields, RunInfo, RunStatus,
    RunsPage, ViewType,
};
use crate::request::SearchRequest;
use crate::store::TrackingStore;
use crate::uri::redact_uri;
use podium_variants::fs::read_regular_file;

/// MLflow's `log-batch` limits (a larger request is a 400).
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// See [`MAX_METRICS_PER_BATCH`].
pub const MAX_PARAMS_PER_BATCH: usize = 100;
/// See [`MAX_METRICS_PER_BATCH`].
pub const MAX_TAGS_PER_BATCH: usize = 100;
/// See [`MAX_METRICS_PER_BATCH`].
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;

/// Statuses the Python client retries.
const RETRY_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// Default cap of one response body (`PODIUM_MAX_RESPONSE_BYTES`): far above any page MLflow
/// sends (a 1000-run page is megabytes), far below what would exhaust memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1 << 30;

/// Longest request timeout accepted (a week): larger values overflow the timers underneath.
pub const MAX_TIMEOUT_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Bodies up to this size with a known length are read whole, then parsed (fastest); longer
/// or unsized ones are parsed as they stream in, so only what is kept is held.
const BUFFERED_BODY_BYTES: u64 = 32 << 20;

/// An error response is read up to this many bytes; its message is cut to
/// [`MAX_ERROR_MESSAGE_CHARS`].
const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

/// Characters of a server-supplied message kept in an error.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1000;

/// Redirects followed, all within the origin of the first request.
const MAX_REDIRECTS: usize = 10;

/// Largest CA bundle read (`MLFLOW_TRACKING_SERVER_CERT_PATH`); system bundles are ~250 KiB.
const MAX_CERT_BUNDLE_BYTES: u64 = 16 << 20;

/// Set once any [`RestStore`] of this process gives up reaching its server.
static UNREACHABLE_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a [`RestStore`] of this process has given up reaching its server (returned
/// [`MlflowError::Unreachable`]) since it started. A command that reports failures per item
/// (per backbone) can still tell, at its end, that the store being down is why.
pub fn unreachable_seen() -> bool {
    UNREACHABLE_SEEN.load(std::sync::atomic::Ordering::Relaxed)
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer <token>` (`MLFLOW_TRACKING_TOKEN`).
    Bearer(Secret),
    /// HTTP Basic (`MLFLOW_TRACKING_USERNAME`/`MLFLOW_TRACKING_PASSWORD`; wins over a token).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
}

/// Settings of the REST store; [`RestConfig::from_env`] reads them like the Python client.
#[derive(Debug, Clone, PartialEq)]
pub struct RestConfig {
    /// Retries after the first attempt (`MLFLOW_HTTP_REQUEST_MAX_RETRIES`, 7).
    pub max_retries: u32,
    /// Exponential backoff factor in seconds (`MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`, 2).
    pub backoff_factor: f64,
    /// Random extra delay up to this many seconds (`MLFLOW_HTTP_REQUEST_BACKOFF_JITTER`, 1.0).
    pub backoff_jitter: f64,
    /// Cap of one backoff delay and of an honoured `Retry-After` (120 s, as urllib3).
    pub backoff_max: Duration,
    /// Whole-request timeout (`MLFLOW_HTTP_REQUEST_TIMEOUT`, 120 s).
    pub timeout: Duration,
    /// Credentials.
    pub auth: Auth,
    /// Skip TLS certificate verification (`MLFLOW_TRACKING_INSECURE_TLS`).
    pub insecure_tls: bool,
    /// Extra CA bundle in PEM (`MLFLOW_TRACKING_SERVER_CERT_PATH`).
    pub server_cert_path: Option<PathBuf>,
    /// Largest response body accepted, in bytes (`PODIUM_MAX_RESPONSE_BYTES`, 1 GiB).
    pub max_response_bytes: u64,
    /// `host:port` authorities other than the tracking server that `mlflow-artifacts://`
    /// URIs may download from, with the credentials (`PODIUM_TRUSTED_ARTIFACT_HOSTS`,
    /// comma-separated; empty by default: only the tracking server's own origin is used).
    pub trusted_artifact_hosts: Vec<String>,
    /// Caps of one artifact download.
    pub download_limits: DownloadLimits,
}

impl Default for RestConfig {
    fn default() -> Self {
        Self {
            max_retries: 7,
            backoff_factor: 2.0,
            backoff_jitter: 1.0,
            backoff_max: Duration::from_secs(120),
            timeout: Duration::from_secs(120),
            auth: Auth::None,
            insecure_tls: false,
            server_cert_path: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            trusted_artifact_hosts: Vec::new(),
            download_limits: DownloadLimits::default(),
        }
    }
}

impl RestConfig {
    /// Reads MLflow's environment variables through `env` (unset or empty → default).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, MlflowError> {
        let get = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let mut config = RestConfig::default();
        if let Some(value) = get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") {
            config.max_retries = parse_setting("MLFLOW_HTTP_REQUEST_MAX_RETRIES", &value)?;
        }
        if let Some(value) = get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR") {
            config.backoff_factor =
                parse_non_negative("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", &value)?;
        }
        if let Some(value) = get("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER") {
            config.backoff_jitter =
                parse_non_negative("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", &value)?;
        }
        if let Some(value) = get("MLFLOW_HTTP_REQUEST_TIMEOUT") {
            let seconds = parse_non_negative("MLFLOW_HTTP_REQUEST_TIMEOUT", &value)?;
            config.timeout = bounded_seconds("MLFLOW_HTTP_REQUEST_TIMEOUT", &value, seconds)?;
        }
        if let Some(value) = get("PODIUM_MAX_RESPONSE_BYTES") {
            config.max_response_bytes = parse_positive_count("PODIUM_MAX_RESPONSE_BYTES", &value)?;
        }
        if let Some(value) = get("PODIUM_TRUSTED_ARTIFACT_HOSTS") {
            config.trusted_artifact_hosts = value
                .split(',')
                .map(|host| host.trim().to_ascii_lowercase())
                .filter(|host| !host.is_empty())
                .collect();
        }
        config.download_limits = DownloadLimits::from_env(env)?;
        if let Some(value) = get("MLFLOW_TRACKING_INSECURE_TLS") {
            config.insecure_tls = parse_bool("MLFLOW_TRACKING_INSECURE_TLS", &value)?;
        }
        config.server_cert_path = get("MLFLOW_TRACKING_SERVER_CERT_PATH").map(PathBuf::from);
        config.auth = match (
            get("MLFLOW_TRACKING_USERNAME"),
            get("MLFLOW_TRACKING_PASSWORD"),
            get("MLFLOW_TRACKING_TOKEN"),
        ) {
            (Some(username), Some(password), _) => Auth::Basic {
                username,
                password: Secret::new(password),
            },
            (_, _, Some(token)) => Auth::Bearer(Secret::new(token)),
            _ => Auth::None,
        };
        Ok(config)
    }

    /// The delay before retry number `retry` (1-based), as urllib3 computes it: none before the
    /// first retry, then `factor * 2^(retry-1)` plus up to `jitter` seconds, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        if retry <= 1 {
            return Duration::ZERO;
        }
        let exponent = i32::try_from(retry - 1).unwrap_or(i32::MAX);
        let base = self.backoff_factor * 2f64.powi(exponent);
        let jitter = if self.backoff_jitter > 0.0 {
            fastrand::f64() * self.backoff_jitter
        } else {
            0.0
        };
        let seconds = base + jitter;
        // 0 × ∞ is NaN for a zero factor and a huge retry number: that is no delay.
        if seconds.is_nan() {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(seconds.max(0.0))
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max)
    }
}

/// A number of seconds as a [`Duration`], refusing what no timer can hold.
fn bounded_seconds(name: &str, value: &str, seconds: f64) -> Result<Duration, MlflowError> {
    if seconds > MAX_TIMEOUT_SECONDS {
        return Err(MlflowError::Config {
            name: name.to_string(),
            value: value.to_string(),
            message: format!("at most {MAX_TIMEOUT_SECONDS} seconds (a week)"),
        });
    }
    Duration::try_from_secs_f64(seconds).map_err(|err| MlflowError::Config {
        name: name.to_string(),
        value: value.to_string(),
        message: err.to_string(),
    })
}

/// A count or size setting: a positive integer.
pub(crate) fn parse_positive_count(name: &str, value: &str) -> Result<u64, MlflowError> {
    match value.trim().parse::<u64>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(MlflowError::Config {
            name: name.to_string(),
            value: value.to_string(),
            message: "expected a positive whole number".to_string(),
        }),
    }
}

fn parse_setting<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, MlflowError> {
    value.trim().parse().map_err(|_| MlflowError::Config {
        name: name.to_string(),
        value: value.to_string(),
        message: "expected a non-negative number".to_string(),
    })
}

fn parse_non_negative(name: &str, value: &str) -> Result<f64, MlflowError> {
    let number: f64 = parse_setting(name, value)?;
    if number.is_finite() && number >= 0.0 {
        Ok(number)
    } else {
        Err(MlflowError::Config {
            name: name.to_string(),
            value: value.to_string(),
            message: "expected a finite non-negative number".to_string(),
        })
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, MlflowError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(MlflowError::Config {
            name: name.to_string(),
            value: value.to_string(),
            message: "expected true or false".to_string(),
        }),
    }
}

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
    base_url: String,
    display_url: String,
    /// Scheme, host and port of the tracking server: credentials go there and nowhere else.
    origin: Origin,
    client: Client,
    config: RestConfig,
}

/// The origin of a URL (scheme, host, port), as browsers compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &reqwest::Url) -> Origin {
        Origin {
            scheme: url.scheme().to_ascii_lowercase(),
            host: url.host_str().unwrap_or_default().to_ascii_lowercase(),
            port: url.port_or_known_default(),
        }
    }

    /// `host:port` (the port always written).
    fn authority(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Redirects are followed only within the origin of the first request, so that credentials
/// never follow a redirect to another host or from https to http.
fn same_origin_redirects() -> reqwest::redirect::Policy {
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
            let pem = read_regular_file(path, MAX_CERT_BUNDLE_BYTES).map_err(|source| {
                MlflowError::Io {
                    context: format!(
                        "reading MLFLOW_TRACKING_SERVER_CERT_PATH {}",
                        path.display()
                    ),
                    source,
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

    fn api_url(&self, endpoint: &str) -> String {
        format!("{}/api/2.0/mlflow/{endpoint}", self.base_url)
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
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
    /// request. `endpoint` names the call in messages; credentials are attached only when
    /// `credentials` says so (requests to the tracking server's own origin).
    fn request<V>(
        &self,
        endpoint: &str,
        credentials: bool,
        build: &dyn Fn() -> RequestBuilder,
        read: &dyn Fn(Response) -> Result<V, BodyFailure>,
    ) -> Result<V, MlflowError> {
        let attempts = self.config.max_retries.saturating_add(1);
        let mut retry = 0u32;
        loop {
            let request = if credentials {
                self.authorize(build())
            } else {
                build()
            };
            let outcome = request.send();
            let last_attempt = retry + 1 >= attempts;
            let retry_after;
            let failure = match outcome {
                Ok(response) if response.status().is_success() => match read(response) {
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
                },
                Ok(response) => {
                    let status = response.status().as_u16();
                    if !RETRY_STATUSES.contains(&status) || last_attempt {
                        return Err(self.http_error(endpoint, response));
                    }
                    retry_after = parse_retry_after(&response);
                    format!("HTTP {status}")
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
            tracing::warn!(
                "MLflow server {} {endpoint}: {failure}; retry {retry}/{} in {:.1}s",
                self.display_url,
                self.config.max_retries,
                delay.as_secs_f64()
            );
            std::thread::sleep(delay);
        }
    }

    fn unreachable(&self, endpoint: &str, attempts: u32, err: &reqwest::Error) -> MlflowError {
        self.unreachable_message(endpoint, attempts, describe_transport_error(err))
    }

    fn unreachable_message(&self, endpoint: &str, attempts: u32, message: String) -> MlflowError {
        UNREACHABLE_SEEN.store(true, std::sync::atomic::Ordering::Relaxed);
        MlflowError::Unreachable {
            url: self.display_url.clone(),
            endpoint: endpoint.to_string(),
            attempts,
            message,
        }
    }

    fn http_error(&self, endpoint: &str, response: Response) -> MlflowError {
        #[derive(Deserialize, Default)]
        struct ErrorBody {
            #[serde(default)]
            error_code: String,
            #[serde(default)]
            message: String,
        }
        let status = response.status().as_u16();
        // Only the head of an error body is read: a server can send anything here.
        let mut body = Vec::new();
        let _ = response.take(MAX_ERROR_BODY_BYTES).read_to_end(&mut body);
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let message = if parsed.message.is_empty() {
            String::from_utf8_lossy(&body).into_owned()
        } else {
            parsed.message
        };
        MlflowError::Http {
            url: self.display_url.clone(),
            endpoint: endpoint.to_string(),
            status,
            code: bounded_message(&self.redact(&parsed.error_code)),
            message: bounded_message(&self.redact(&message)),
        }
    }

    /// `text` with this store's credentials and any `Basic …`/`Bearer …` value replaced by
    /// `***`: a server (or a proxy in front of it) may echo the request's headers.
    fn redact(&self, text: &str) -> String {
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
    fn read_json<V, S>(&self, endpoint: &str, response: Response, seed: S) -> Result<V, BodyFailure>
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

    fn too_large(&self, endpoint: &str) -> MlflowError {
        MlflowError::Protocol {
            store: self.display_url.clone(),
            context: endpoint.to_string(),
            message: format!(
                "response larger than {} bytes (PODIUM_MAX_RESPONSE_BYTES)",
                self.config.max_response_bytes
            ),
        }
    }

    fn get<T: DeserializeOwned>(
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

    fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &B,
    ) -> Result<T, MlflowError> {
        self.post_seed(endpoint, body, PhantomData::<T>)
    }

    fn post_seed<B: Serialize, V, S: Copy + for<'de> DeserializeSeed<'de, Value = V>>(
        &self,
        endpoint: &str,
        body: &B,
        seed: S,
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
                self.client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(bytes.clone())
            },
            &|response| self.read_json(endpoint, response, seed),
        )
    }

    fn not_found(&self, what: &'static str, id: &str) -> MlflowError {
        MlflowError::NotFound {
            what,
            id: id.to_string(),
            store: self.display_url.clone(),
        }
    }

    /// The experiment with this id.
    fn fetch_experiment(&self, experiment_id: &str) -> Result<Experiment, MlflowError> {
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
    fn artifacts_base(
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

fn describe_transport_error(err: &reqwest::Error) -> String {
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

fn describe_io_error(err: &std::io::Error) -> String {
    use std::error::Error as _;
    let mut message = err.to_string();
    append_innermost_cause(&mut message, err.source());
    message
}

/// Appends `: {innermost cause}` of a source chain, when there is one.
fn append_innermost_cause(
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
fn parse_retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let seconds: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (seconds >= 0.0).then(|| Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

/// What went wrong reading a successful response's body.
enum BodyFailure {
    /// Cut off, reset or timed out mid-way: worth another attempt.
    Transient(String),
    /// Final (too large, not what was expected, a local write failed).
    Fatal(MlflowError),
}

/// A response body that fails (and says so in `exceeded`) past `remaining` bytes.
struct CappedBody<'a, R> {
    inner: R,
    remaining: u64,
    exceeded: &'a Cell<bool>,
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
fn redact_credentials(text: &str, secrets: &[String]) -> String {
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

fn is_missing(err: &MlflowError) -> bool {
    matches!(err, MlflowError::Http { status: 404, .. })
        || matches!(err, MlflowError::Http { code, .. } if code == "RESOURCE_DOES_NOT_EXIST")
}

fn is_already_exists(err: &MlflowError) -> bool {
    matches!(err, MlflowError::Http { code, .. } if code == "RESOURCE_ALREADY_EXISTS")
}

// ---------------------------------------------------------------------------------------------
// Wire types: deserialized straight from the response bytes into what podium keeps.

#[derive(Deserialize)]
struct ExperimentJson {
    experiment_id: String,
    name: String,
    #[serde(default)]
    artifact_location: String,
    #[serde(default)]
    lifecycle_stage: String,
    #[serde(default, deserialize_with = "key_value_map")]
    tags: BTreeMap<String, String>,
}

impl From<ExperimentJson> for Experiment {
    fn from(json: ExperimentJson) -> Self {
        Experiment {
            experiment_id: json.experiment_id,
            name: json.name,
            artifact_location: json.artifact_location,
            lifecycle_stage: json.lifecycle_stage,
            tags: json.tags,
        }
    }
}

struct RunJson {
    info: RunInfoJson,
    data: RunDataJson,
}

impl<'de> Deserialize<'de> for RunJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ProjectedRun(&RunFields::all()).deserialize(deserializer)
    }
}

#[derive(Deserialize)]
struct RunInfoJson {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    experiment_id: String,
    #[serde(default)]
    run_name: String,
    status: RunStatus,
    #[serde(default, deserialize_with = "flexible_i64")]
    start_time: Option<i64>,
    #[serde(default, deserialize_with = "flexible_i64")]
    end_time: Option<i64>,
    #[serde(default)]
    artifact_uri: String,
    #[serde(default)]
    lifecycle_stage: String,
}

impl RunInfoJson {
    fn into_info(self) -> Result<RunInfo, String> {
        let run_id = self
            .run_id
            .or(self.run_uuid)
            .ok_or_else(|| "run info without run_id".to_string())?;
        Ok(RunInfo {
            run_id,
            experiment_id: self.experiment_id,
            run_name: self.run_name,
            status: self.status,
            start_time: self.start_time,
            end_time: self.end_time,
            artifact_uri: self.artifact_uri,
            lifecycle_stage: self.lifecycle_stage,
        })
    }
}

#[derive(Default)]
struct RunDataJson {
    metrics: BTreeMap<String, f64>,
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
}

impl RunJson {
    fn into_run(self) -> Result<Run, String> {
        Ok(Run {
            info: self.info.into_info()?,
            tags: self.data.tags,
            params: self.data.params,
            metrics: self.data.metrics,
        })
    }
}

/// The body of `runs/search`, keeping only the tags, params and metrics of a [`RunFields`]:
/// left-out entries are dropped as they are read, never collected.
#[derive(Clone, Copy)]
struct ProjectedSearchResponse<'f>(&'f RunFields);

struct SearchResponse {
    runs: Vec<RunJson>,
    next_page_token: Option<String>,
}

impl<'de> DeserializeSeed<'de> for ProjectedSearchResponse<'_> {
    type Value = SearchResponse;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ProjectedSearchResponse<'_> {
    type Value = SearchResponse;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a runs/search response")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut response = SearchResponse {
            runs: Vec::new(),
            next_page_token: None,
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "runs" => response.runs = map.next_value_seed(ProjectedRuns(self.0))?,
                "next_page_token" => response.next_page_token = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(response)
    }
}

/// A list of runs, projected by a [`RunFields`].
struct ProjectedRuns<'f>(&'f RunFields);

impl<'de> DeserializeSeed<'de> for ProjectedRuns<'_> {
    type Value = Vec<RunJson>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ProjectedRuns<'_> {
    type Value = Vec<RunJson>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of runs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut runs = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(run) = seq.next_element_seed(ProjectedRun(self.0))? {
            runs.push(run);
        }
        Ok(runs)
    }
}

/// One run `{info, data}`, projected by a [`RunFields`].
struct ProjectedRun<'f>(&'f RunFields);

impl<'de> DeserializeSeed<'de> for ProjectedRun<'_> {
    type Value = RunJson;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ProjectedRun<'_> {
    type Value = RunJson;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a run")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut info = None;
        let mut data = RunDataJson::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "info" => info = Some(map.next_value::<RunInfoJson>()?),
                "data" => data = map.next_value_seed(ProjectedRunData(self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let info = info.ok_or_else(|| serde::de::Error::missing_field("info"))?;
        Ok(RunJson { info, data })
    }
}

/// A run's `{metrics, params, tags}`, projected by a [`RunFields`].
struct ProjectedRunData<'f>(&'f RunFields);

impl<'de> DeserializeSeed<'de> for ProjectedRunData<'_> {
    type Value = RunDataJson;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ProjectedRunData<'_> {
    type Value = RunDataJson;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("run data")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut data = RunDataJson::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "metrics" => {
                    data.metrics = map.next_value_seed(
                        SelectedEntries::<MlflowFloat, f64>::new(&self.0.metrics),
                    )?;
                }
                "params" => {
                    data.params = map
                        .next_value_seed(SelectedEntries::<String, String>::new(&self.0.params))?;
                }
                "tags" => {
                    data.tags =
                        map.next_value_seed(SelectedEntries::<String, String>::new(&self.0.tags))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(data)
    }
}

/// `[{"key": k, "value": v, …}, …]` straight into a map, keeping the selected keys: tags and
/// params (`V` = `T` = `String`) and latest metrics (`V` = [`MlflowFloat`], `T` = `f64`; their
/// timestamp and step are ignored). A missing value is the protobuf default, as MLflow omits it.
struct SelectedEntries<'k, V, T> {
    keys: &'k KeySelection,
    types: PhantomData<fn() -> (V, T)>,
}

impl<'k, V, T> SelectedEntries<'k, V, T> {
    fn new(keys: &'k KeySelection) -> Self {
        SelectedEntries {
            keys,
            types: PhantomData,
        }
    }
}

impl<'de, V: DeserializeOwned + Default, T: From<V>> DeserializeSeed<'de>
    for SelectedEntries<'_, V, T>
{
    type Value = BTreeMap<String, T>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, V: DeserializeOwned + Default, T: From<V>> serde::de::Visitor<'de>
    for SelectedEntries<'_, V, T>
{
    type Value = BTreeMap<String, T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of {key, value}")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        #[derive(Deserialize)]
        #[serde(bound = "V: DeserializeOwned + Default")]
        struct Entry<V> {
            key: String,
            #[serde(default)]
            value: V,
        }
        let mut map = BTreeMap::new();
        while let Some(entry) = seq.next_element::<Entry<V>>()? {
            if self.keys.contains(&entry.key) {
                map.insert(entry.key, T::from(entry.value));
            }
        }
        Ok(map)
    }
}

/// Experiment tags: `[{"key": k, "value": v}, …]` into a map.
fn key_value_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    SelectedEntries::<String, String>::new(&KeySelection::All).deserialize(deserializer)
}

/// int64 fields arrive as numbers or (protobuf JSON) as strings.
fn flexible_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flexible {
        Number(i64),
        Text(String),
    }
    match Option::<Flexible>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Flexible::Number(value)) => Ok(Some(value)),
        Some(Flexible::Text(text)) => text
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("not an integer: {text:?}"))),
    }
}

#[derive(Serialize)]
struct KeyValue<'a> {
    key: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct MetricJson<'a> {
    key: &'a str,
    value: MlflowFloat,
    timestamp: i64,
    step: i64,
}

fn view_name(view: ViewType) -> &'static str {
    match view {
        ViewType::ActiveOnly => "ACTIVE_ONLY",
        ViewType::DeletedOnly => "DELETED_ONLY",
        ViewType::All => "ALL",
    }
}

/// Splits a batch into requests within MLflow's per-request limits. Each item is
/// `(metrics range, params range, tags range)`.
pub(crate) fn batch_chunks(
    metrics: usize,
    params: usize,
    tags: usize,
) -> Vec<(
    std::ops::Range<usize>,
    std::ops::Range<usize>,
    std::ops::Range<usize>,
)> {
    let mut chunks = Vec::new();
    let (mut m, mut p, mut t) = (0, 0, 0);
    while m < metrics || p < params || t < tags {
        let p_end = params.min(p + MAX_PARAMS_PER_BATCH);
        let t_end = tags.min(t + MAX_TAGS_PER_BATCH);
        let room = MAX_ENTITIES_PER_BATCH - (p_end - p) - (t_end - t);
        let m_end = metrics.min(m + MAX_METRICS_PER_BATCH.min(room));
        chunks.push((m..m_end, p..p_end, t..t_end));
        (m, p, t) = (m_end, p_end, t_end);
    }
    chunks
}

impl TrackingStore for RestStore {
    fn describe(&self) -> String {
        self.display_url.clone()
    }

    fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, MlflowError> {
        #[derive(Deserialize)]
        struct Response {
            experiment: ExperimentJson,
        }
        match self.get::<Response>("experiments/get-by-name", &[("experiment_name", name)]) {
            Ok(response) => Ok(Some(response.experiment.into())),
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn create_experiment(&self, name: &str) -> Result<String, MlflowError> {
        self.create_experiment_with_tags(name, &[])
    }

    fn create_experiment_with_tags(
        &self,
        name: &str,
        tags: &[(&str, &str)],
    ) -> Result<String, MlflowError> {
        #[derive(Serialize)]
        struct Tag<'a> {
            key: &'a str,
            value: &'a str,
        }
        #[derive(Serialize)]
        struct Request<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            tags: Vec<Tag<'a>>,
        }
        #[derive(Deserialize)]
        struct Response {
            experiment_id: String,
        }
        let request = Request {
            name,
            tags: tags.iter().map(|(key, value)| Tag { key, value }).collect(),
        };
        match self.post::<_, Response>("experiments/create", &request) {
            Ok(response) => Ok(response.experiment_id),
            Err(err) if is_already_exists(&err) => Err(MlflowError::AlreadyExists {
                what: "experiment",
                name: name.to_string(),
                store: self.display_url.clone(),
            }),
            Err(err) => Err(err),
        }
    }

    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment, MlflowError> {
        self.fetch_experiment(experiment_id)
    }

    fn set_experiment_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_id: &'a str,
            key: &'a str,
            value: &'a str,
        }
        let request = Request {
            experiment_id,
            key,
            value,
        };
        match self.post::<_, serde::de::IgnoredAny>("experiments/set-experiment-tag", &request) {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("experiment", experiment_id)),
            Err(err) => Err(err),
        }
    }

    fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_id: &'a str,
            new_name: &'a str,
        }
        let request = Request {
            experiment_id,
            new_name,
        };
        match self.post::<_, serde::de::IgnoredAny>("experiments/update", &request) {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("experiment", experiment_id)),
            Err(err) if is_already_exists(&err) || is_unique_violation(&err) => {
                Err(MlflowError::AlreadyExists {
                    what: "experiment",
                    name: new_name.to_string(),
                    store: self.display_url.clone(),
                })
            }
            Err(err) => Err(err),
        }
    }

    fn delete_experiment(&self, experiment_id: &str) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_id: &'a str,
        }
        match self
            .post::<_, serde::de::IgnoredAny>("experiments/delete", &Request { experiment_id })
        {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("experiment", experiment_id)),
            Err(err) => Err(err),
        }
    }

    fn search_runs_page(&self, request: &SearchRequest) -> Result<RunsPage, MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_ids: &'a [String],
            filter: &'a str,
            run_view_type: &'static str,
            max_results: usize,
            order_by: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            page_token: Option<&'a str>,
        }
        request.check_page_size()?;
        let fields = &request.fields;
        let filter = request.filter.as_str();
        let request = Request {
            experiment_ids: &request.experiment_ids,
            filter,
            run_view_type: view_name(request.view),
            max_results: request.max_results,
            order_by: &request.order_by,
            page_token: request.token(),
        };
        let response =
            match self.post_seed("runs/search", &request, ProjectedSearchResponse(fields)) {
                Err(MlflowError::Http {
                    status: 400,
                    message,
                    ..
                }) => {
                    return Err(MlflowError::InvalidQuery(format!(
                        "{} rejected filter {filter:?}: {message}",
                        self.display_url
                    )));
                }
                other => other?,
            };
        let runs = response
            .runs
            .into_iter()
            .map(RunJson::into_run)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| MlflowError::Protocol {
                store: self.display_url.clone(),
                context: "runs/search".to_string(),
                message,
            })?;
        Ok(RunsPage {
            runs,
            next_page_token: response.next_page_token.filter(|token| !token.is_empty()),
        })
    }

    fn get_run(&self, run_id: &str) -> Result<Run, MlflowError> {
        #[derive(Deserialize)]
        struct Response {
            run: RunJson,
        }
        match self.get::<Response>("runs/get", &[("run_id", run_id)]) {
            Ok(response) => response
                .run
                .into_run()
                .map_err(|message| MlflowError::Protocol {
                    store: self.display_url.clone(),
                    context: format!("runs/get {run_id}"),
                    message,
                }),
            Err(err) if is_missing(&err) => Err(self.not_found("run", run_id)),
            Err(err) => Err(err),
        }
    }

    fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        start_time_ms: i64,
        tags: &BTreeMap<String, String>,
    ) -> Result<RunInfo, MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            experiment_id: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            run_name: &'a str,
            start_time: i64,
            tags: Vec<KeyValue<'a>>,
        }
        #[derive(Deserialize)]
        struct Response {
            run: RunJson,
        }
        let request = Request {
            experiment_id,
            run_name,
            start_time: start_time_ms,
            tags: tags
                .iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect(),
        };
        let response: Response = match self.post("runs/create", &request) {
            Err(err) if is_missing(&err) => return Err(self.not_found("experiment", experiment_id)),
            other => other?,
        };
        response
            .run
            .info
            .into_info()
            .map_err(|message| MlflowError::Protocol {
                store: self.display_url.clone(),
                context: "runs/create".to_string(),
                message,
            })
    }

    fn update_run(
        &self,
        run_id: &str,
        status: RunStatus,
        end_time_ms: Option<i64>,
    ) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            run_id: &'a str,
            status: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            end_time: Option<i64>,
        }
        let request = Request {
            run_id,
            status: status.as_str(),
            end_time: end_time_ms,
        };
        match self.post::<_, serde::de::IgnoredAny>("runs/update", &request) {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("run", run_id)),
            Err(err) => Err(err),
        }
    }

    fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            run_id: &'a str,
            key: &'a str,
            value: &'a str,
        }
        match self.post::<_, serde::de::IgnoredAny>("runs/set-tag", &Request { run_id, key, value })
        {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Err(self.not_found("run", run_id)),
            Err(err) => Err(err),
        }
    }

    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[MetricPoint<'_>],
        params: &[(&str, &str)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        #[derive(Serialize)]
        struct Request<'a> {
            run_id: &'a str,
            metrics: Vec<MetricJson<'a>>,
            params: Vec<KeyValue<'a>>,
            tags: Vec<KeyValue<'a>>,
        }
        for (m, p, t) in batch_chunks(metrics.len(), params.len(), tags.len()) {
            let request = Request {
                run_id,
                metrics: metrics[m]
                    .iter()
                    .map(|point| MetricJson {
                        key: point.key,
                        value: MlflowFloat(point.value),
                        timestamp: point.timestamp,
                        step: point.step,
                    })
                    .collect(),
                params: params[p]
                    .iter()
                    .map(|(key, value)| KeyValue { key, value })
                    .collect(),
                tags: tags[t]
                    .iter()
                    .map(|(key, value)| KeyValue { key, value })
                    .collect(),
            };
            match self.post::<_, serde::de::IgnoredAny>("runs/log-batch", &request) {
                Ok(_) => {}
                Err(err) if is_missing(&err) => return Err(self.not_found("run", run_id)),
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    fn download_artifacts(
        &self,
        run: &RunInfo,
        path: &str,
        dest: &Path,
    ) -> Result<PathBuf, MlflowError> {
        match ArtifactLocation::parse(&run.artifact_uri) {
            ArtifactLocation::Proxy { authority, root } => {
                let source = ProxySource {
                    store: self,
                    base: self.artifacts_base(run, path, authority.as_deref())?,
                };
                artifacts::download_tree(
                    &source,
                    &run.run_id,
                    &root,
                    path,
                    dest,
                    &self.config.download_limits,
                )
            }
            ArtifactLocation::Local(root) => {
                artifacts::download_local_with(run, &root, path, dest, &self.config.download_limits)
            }
            ArtifactLocation::Unsupported(scheme) => {
                Err(artifacts::unsupported(run, path, &scheme))
            }
        }
    }
}

fn is_unique_violation(err: &MlflowError) -> bool {
    matches!(err, MlflowError::Http { message, .. } if message.contains("UNIQUE constraint"))
}

/// The mlflow-artifacts proxy of a server (the tracking server, or a host trusted for it).
struct ProxySource<'a> {
    store: &'a RestStore,
    base: String,
}

impl ProxySource<'_> {
    fn artifact_url(&self, remote_path: &str) -> Result<reqwest::Url, MlflowError> {
        let mut url =
            reqwest::Url::parse(&format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base))
                .map_err(|err| MlflowError::Config {
                    name: "artifact URL".to_string(),
                    value: redact_uri(&self.base),
                    message: err.to_string(),
                })?;
        if !remote_path.is_empty() {
            let mut segments = url.path_segments_mut().map_err(|()| MlflowError::Config {
                name: "artifact URL".to_string(),
                value: redact_uri(&self.base),
                message: "cannot hold a path".to_string(),
            })?;
            segments.extend(remote_path.split('/'));
        }
        Ok(url)
    }
}

impl ArtifactSource for ProxySource<'_> {
    fn list(&self, remote_dir: &str) -> Result<Vec<ArtifactEntry>, MlflowError> {
        #[derive(Deserialize)]
        struct Listing {
            #[serde(default)]
            files: Vec<FileJson>,
        }
        #[derive(Deserialize)]
        struct FileJson {
            path: String,
            #[serde(default)]
            is_dir: bool,
            #[serde(default, deserialize_with = "flexible_i64")]
            file_size: Option<i64>,
        }
        let url = format!("{}/api/2.0/mlflow-artifacts/artifacts", self.base);
        let endpoint = "mlflow-artifacts/artifacts (list)";
        let listing: Listing = self.store.request(
            endpoint,
            true,
            &|| self.store.client.get(&url).query(&[("path", remote_dir)]),
            &|response| {
                self.store
                    .read_json(endpoint, response, PhantomData::<Listing>)
            },
        )?;
        Ok(listing
            .files
            .into_iter()
            .map(|file| ArtifactEntry {
                path: file.path,
                is_dir: file.is_dir,
                size: file.file_size.and_then(|size| u64::try_from(size).ok()),
            })
            .collect())
    }

    fn fetch(&self, remote_path: &str, to: &Path, max_bytes: u64) -> Result<u64, MlflowError> {
        let url = self.artifact_url(remote_path)?;
        let endpoint = "mlflow-artifacts/artifacts (download)";
        // Read inside the retry loop: a body cut off mid-way is retried like a failed request.
        // At most one byte past `max_bytes` is written, so the caller can tell "more".
        self.store.request(
            endpoint,
            true,
            &|| self.store.client.get(url.clone()),
            &|response| {
                if response
                    .content_length()
                    .is_some_and(|length| length > max_bytes)
                {
                    return Ok(max_bytes.saturating_add(1));
                }
                let mut file = std::fs::File::create(to).map_err(|source| {
                    BodyFailure::Fatal(MlflowError::Io {
                        context: format!("creating {}", to.display()),
                        source,
                    })
                })?;
                let mut limited = response.take(max_bytes.saturating_add(1));
                let written =
                    copy_body(&mut limited, &mut file).map_err(|failure| match failure {
                        CopyFailure::Read(err) => BodyFailure::Transient(describe_io_error(&err)),
                        CopyFailure::Write(source) => BodyFailure::Fatal(MlflowError::Io {
                            context: format!("writing {}", to.display()),
                            source,
                        }),
                    })?;
                file.flush().map_err(|source| {
                    BodyFailure::Fatal(MlflowError::Io {
                        context: format!("writing {}", to.display()),
                        source,
                    })
                })?;
                Ok(written)
            },
        )
    }
}

enum CopyFailure {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies `from` to `to`, telling a failed read (the network) from a failed write (the disk).
fn copy_body(from: &mut dyn Read, to: &mut dyn Write) -> Result<u64, CopyFailure> {
    let mut buffer = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(CopyFailure::Read(err)),
        };
        to.write_all(&buffer[..read]).map_err(CopyFailure::Write)?;
        total += read as u64;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn env_settings_like_the_python_client() {
        let env = |name: &str| {
            Some(
                match name {
                    "MLFLOW_HTTP_REQUEST_MAX_RETRIES" => "3",
                    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR" => "0.5",
                    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER" => "0",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT" => "7",
                    "MLFLOW_TRACKING_TOKEN" => "tok-secret",
                    "MLFLOW_TRACKING_USERNAME" => "me",
                    "MLFLOW_TRACKING_PASSWORD" => "pw-secret",
                    "MLFLOW_TRACKING_INSECURE_TLS" => "true",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let config = RestConfig::from_env(&env).unwrap();
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.timeout, Duration::from_secs(7));
        assert!(config.insecure_tls);
        assert!(matches!(config.auth, Auth::Basic { ref username, .. } if username == "me"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(config.backoff(1), Duration::ZERO);
        assert_eq!(config.backoff(2), Duration::from_secs(1));
        assert_eq!(config.backoff(3), Duration::from_secs(2));
        let token_only =
            |name: &str| (name == "MLFLOW_TRACKING_TOKEN").then(|| "tok-secret".to_string());
        let config = RestConfig::from_env(&token_only).unwrap();
        assert!(matches!(config.auth, Auth::Bearer(_)));
        assert!(!format!("{config:?}").contains("tok-secret"));
        let bad = |name: &str| (name == "MLFLOW_HTTP_REQUEST_TIMEOUT").then(|| "soon".to_string());
        assert!(matches!(
            RestConfig::from_env(&bad),
            Err(MlflowError::Config { .. })
        ));
    }

    #[test]
    fn absurd_settings_are_errors_or_saturate_never_panics() {
        for (name, value) in [
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "1e308"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "inf"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "NaN"),
            ("MLFLOW_HTTP_REQUEST_TIMEOUT", "-1"),
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "99999999999"),
            ("PODIUM_MAX_RESPONSE_BYTES", "0"),
            ("PODIUM_MAX_DOWNLOAD_FILES", "-3"),
        ] {
            let env = |asked: &str| (asked == name).then(|| value.to_string());
            let err = RestConfig::from_env(&env).unwrap_err().to_string();
            assert!(err.contains(name), "{err}");
        }
        let week = |name: &str| (name == "MLFLOW_HTTP_REQUEST_TIMEOUT").then(|| "604800".into());
        assert_eq!(
            RestConfig::from_env(&week).unwrap().timeout,
            Duration::from_secs(604_800)
        );
        // Huge factors and retry numbers saturate at the cap; a zero factor stays zero.
        let huge = RestConfig {
            backoff_factor: 1e308,
            backoff_jitter: 1e308,
            ..RestConfig::default()
        };
        assert_eq!(huge.backoff(5000), huge.backoff_max);
        let zero = RestConfig {
            backoff_factor: 0.0,
            backoff_jitter: 0.0,
            ..RestConfig::default()
        };
        assert_eq!(zero.backoff(5000), Duration::ZERO);
        assert_eq!(zero.backoff(u32::MAX), Duration::ZERO);
    }

    #[test]
    fn credentials_are_redacted_from_server_text() {
        let text = "echo: authorization: Basic bWU6cHc= and BEARER abc.def, \"Bearer x\"";
        let redacted = redact_credentials(text, &["hunter2".into()]);
        assert_eq!(
            redacted,
            "echo: authorization: Basic *** and BEARER ***, \"Bearer ***\""
        );
        assert_eq!(
            redact_credentials("password hunter2 here", &["hunter2".into()]),
            "password *** here"
        );
        let long = "é".repeat(5000);
        let bounded = bounded_message(&long);
        assert!(bounded.starts_with(&"é".repeat(MAX_ERROR_MESSAGE_CHARS)));
        assert!(bounded.ends_with("(8000 more bytes left out)"), "{bounded}");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let config = RestConfig::default();
        for retry in 2..12 {
            let delay = config.backoff(retry).as_secs_f64();
            let base = (2.0 * 2f64.powi(retry as i32 - 1)).min(120.0);
            assert!(delay >= base.min(120.0) - 1e-9 && delay <= (base + 1.0).min(120.0));
        }
    }

    #[test]
    fn batches_respect_mlflow_limits() {
        for (m, p, t) in [
            (0, 0, 0),
            (2500, 0, 0),
            (950, 250, 30),
            (10, 100, 100),
            (0, 101, 0),
        ] {
            let chunks = batch_chunks(m, p, t);
            let (mut sm, mut sp, mut st) = (0, 0, 0);
            for (cm, cp, ct) in &chunks {
                assert!(cm.len() <= MAX_METRICS_PER_BATCH);
                assert!(cp.len() <= MAX_PARAMS_PER_BATCH);
                assert!(ct.len() <= MAX_TAGS_PER_BATCH);
                assert!(cm.len() + cp.len() + ct.len() <= MAX_ENTITIES_PER_BATCH);
                assert!(cm.len() + cp.len() + ct.len() > 0);
                assert_eq!((cm.start, cp.start, ct.start), (sm, sp, st));
                (sm, sp, st) = (cm.end, cp.end, ct.end);
            }
            assert_eq!((sm, sp, st), (m, p, t));
        }
        assert_eq!(batch_chunks(2500, 0, 0).len(), 3);
    }

    #[test]
    fn runs_parse_with_non_finite_metrics() {
        let body =
            br#"{"runs": [{"info": {"run_id": "abc", "run_uuid": "abc", "experiment_id": "1",
            "run_name": "r", "status": "FINISHED", "start_time": 5, "end_time": "9",
            "artifact_uri": "mlflow-artifacts:/1/abc/artifacts", "lifecycle_stage": "active"},
            "data": {"metrics": [{"key": "a", "value": "NaN", "timestamp": 1, "step": 0},
                                 {"key": "b", "value": 1.7976931348623157e308},
                                 {"key": "c", "value": "-Infinity"}, {"key": "d", "value": 0.25}],
                     "params": [{"key": "lr", "value": "0.1"}],
                     "tags": [{"key": "q", "value": "it's \"x\""}]}}],
            "next_page_token": "tok"}"#;
        #[derive(Deserialize)]
        struct Response {
            runs: Vec<RunJson>,
            next_page_token: Option<String>,
        }
        let response: Response = serde_json::from_slice(body).unwrap();
        assert_eq!(response.next_page_token.as_deref(), Some("tok"));
        let run = response
            .runs
            .into_iter()
            .next()
            .unwrap()
            .into_run()
            .unwrap();
        assert_eq!(run.info.end_time, Some(9));
        assert!(run.metric("a").unwrap().is_nan());
        assert_eq!(run.metric("b"), Some(f64::INFINITY));
        assert_eq!(run.metric("c"), Some(f64::NEG_INFINITY));
        assert_eq!(run.metric("d"), Some(0.25));
        assert_eq!(run.tag("q"), Some("it's \"x\""));
        assert_eq!(run.params["lr"], "0.1");
    }
}
