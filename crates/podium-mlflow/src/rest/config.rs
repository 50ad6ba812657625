//! RestConfig: the Python client's HTTP settings (retries, timeouts, auth, TLS) read from the
//! environment, and the REST limits.

use super::*;

/// MLflow's `log-batch` limits (a larger request is a 400).
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// See [`MAX_METRICS_PER_BATCH`].
pub const MAX_PARAMS_PER_BATCH: usize = 100;
/// See [`MAX_METRICS_PER_BATCH`].
pub const MAX_TAGS_PER_BATCH: usize = 100;
/// See [`MAX_METRICS_PER_BATCH`].
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;

/// Statuses the Python client retries.
pub(super) const RETRY_STATUSES: [u16; 6] = [408, 429, 500, 502, 503, 504];

/// Default cap of one response body (`PODIUM_MAX_RESPONSE_BYTES`): far above any page MLflow
/// sends (a 1000-run page is megabytes), far below what would exhaust memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1 << 30;

/// Longest request timeout accepted (a week): larger values overflow the timers underneath.
pub const MAX_TIMEOUT_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Default [`RestConfig::min_response_rate`] (`PODIUM_MIN_RESPONSE_BYTES_PER_SECOND`): 64 KiB/s,
/// far below any link a checkpoint is downloaded over, far above a server trickling bytes.
pub const DEFAULT_MIN_RESPONSE_RATE: u64 = 64 << 10;

/// Default [`RestConfig::max_retry_time`] (`PODIUM_MAX_RETRY_SECONDS`): room for the default
/// seven retries' backoff (about 4 minutes), not for seven two-minute `Retry-After` waits.
pub const DEFAULT_MAX_RETRY_TIME: Duration = Duration::from_secs(300);

/// Default [`RestConfig::max_search_time`] (`PODIUM_MAX_SEARCH_SECONDS`): ten times what the
/// 100,000-run selection of docs/PERFORMANCE.md takes through a server.
pub const DEFAULT_MAX_SEARCH_TIME: Duration = Duration::from_secs(600);

/// Bodies up to this size with a known length are read whole, then parsed (fastest); longer
/// or unsized ones are parsed as they stream in, so only what is kept is held.
pub(super) const BUFFERED_BODY_BYTES: u64 = 32 << 20;

/// An error response is read up to this many bytes; its message is cut to
/// [`MAX_ERROR_MESSAGE_CHARS`].
pub(super) const MAX_ERROR_BODY_BYTES: u64 = 64 << 10;

/// Characters of a server-supplied message kept in an error.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1000;

/// Redirects followed, all within the origin of the first request.
pub(super) const MAX_REDIRECTS: usize = 10;

/// Largest CA bundle read (`MLFLOW_TRACKING_SERVER_CERT_PATH`); system bundles are ~250 KiB.
pub(super) const MAX_CERT_BUNDLE_BYTES: u64 = 16 << 20;

/// Set once any [`RestStore`] of this process gives up reaching its server.
pub(super) static UNREACHABLE_SEEN: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether a [`RestStore`] of this process has given up reaching its server (returned
/// [`MlflowError::Unreachable`]) since it started. A command that reports failures per item
/// (per backbone) can still tell, at its end, that the store being down is why.
pub fn unreachable_seen() -> bool {
    UNREACHABLE_SEEN.load(std::sync::atomic::Ordering::Relaxed)
}

/// A secret string whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(super) String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub(super) fn expose(&self) -> &str {
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
    /// Request timeout (`MLFLOW_HTTP_REQUEST_TIMEOUT`, 120 s): the response's head must come
    /// within it, no read of its body may wait longer, and the whole response must be in by
    /// then plus one second per [`RestConfig::min_response_rate`] bytes received.
    pub timeout: Duration,
    /// Slowest average rate a response body may arrive at once the timeout has passed, in
    /// bytes per second (`PODIUM_MIN_RESPONSE_BYTES_PER_SECOND`, 64 KiB/s): a server trickling
    /// bytes cannot hold a request forever.
    pub min_response_rate: u64,
    /// Longest one request may take with its retries (`PODIUM_MAX_RETRY_SECONDS`, 300 s): no
    /// retry, backoff or `Retry-After` wait starts past it. An attempt in progress is bounded by
    /// its own deadline (above).
    pub max_retry_time: Duration,
    /// Longest one paginated search may take, every page included (`PODIUM_MAX_SEARCH_SECONDS`,
    /// 600 s): a server handing out fresh page tokens forever is stopped.
    pub max_search_time: Duration,
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
            min_response_rate: DEFAULT_MIN_RESPONSE_RATE,
            max_retry_time: DEFAULT_MAX_RETRY_TIME,
            max_search_time: DEFAULT_MAX_SEARCH_TIME,
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
        if let Some(value) = get("PODIUM_MIN_RESPONSE_BYTES_PER_SECOND") {
            config.min_response_rate =
                parse_positive_count("PODIUM_MIN_RESPONSE_BYTES_PER_SECOND", &value)?;
        }
        for (name, setting) in [
            ("PODIUM_MAX_RETRY_SECONDS", &mut config.max_retry_time),
            ("PODIUM_MAX_SEARCH_SECONDS", &mut config.max_search_time),
        ] {
            if let Some(value) = get(name) {
                let seconds = parse_non_negative(name, &value)?;
                *setting = bounded_seconds(name, &value, seconds)?;
            }
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
pub(crate) fn bounded_seconds(
    name: &str,
    value: &str,
    seconds: f64,
) -> Result<Duration, MlflowError> {
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

pub(crate) fn parse_setting<T: std::str::FromStr>(
    name: &str,
    value: &str,
) -> Result<T, MlflowError> {
    value.trim().parse().map_err(|_| MlflowError::Config {
        name: name.to_string(),
        value: value.to_string(),
        message: "expected a non-negative number".to_string(),
    })
}

pub(crate) fn parse_non_negative(name: &str, value: &str) -> Result<f64, MlflowError> {
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

pub(super) fn parse_bool(name: &str, value: &str) -> Result<bool, MlflowError> {
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
