//! Where a PostgreSQL tracking URI points and how to connect, as MLflow (SQLAlchemy + libpq)
//! reads it: `postgresql[+driver]://[user[:password]@][host][:port][/database][?key=value&…]`,
//! percent-decoded, with libpq's keys in the query (`host` for a Unix socket directory,
//! `sslmode`, `sslrootcert`, …) and libpq's environment variables (`PGHOST`, `PGPORT`,
//! `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, …) and password file (`~/.pgpass`) for
//! whatever the URI leaves out.
//!
//! The password is kept out of everything printable: [`PostgresSettings`]'s `Debug` and
//! [`PostgresSettings::display`] leave it out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::MlflowError;
use crate::uri::redact_uri;

/// The port libpq connects to by default.
pub const DEFAULT_PORT: u16 = 5432;

/// How long a connection attempt may take when neither `connect_timeout` nor
/// `PGCONNECT_TIMEOUT` says (libpq waits forever; a tracking store that does not answer within
/// this is reported instead).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest password file read (`~/.pgpass`).
const MAX_PASSFILE_BYTES: u64 = 1 << 20;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it (like `prefer`: podium cannot retry in plain text after
    /// a failed TLS attempt the way libpq does for `allow`), certificates not checked.
    Allow,
    /// TLS when the server offers it, certificates not checked (libpq's default).
    Prefer,
    /// TLS required; certificates not checked, unless a root certificate is given (libpq then
    /// checks the chain, as for `verify-ca`).
    Require,
    /// TLS required, the server's certificate chain checked against the root certificates.
    VerifyCa,
    /// As `verify-ca`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// libpq's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgHost {
    /// A host name or IP address (TCP).
    Tcp(String),
    /// A directory holding the server's Unix socket.
    Socket(PathBuf),
}

/// The root certificates a verifying `sslmode` checks against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// A PEM file (`sslrootcert`, else `~/.postgresql/root.crt`).
    File(PathBuf),
    /// `sslrootcert=system`: the Mozilla roots podium is built with.
    System,
}

/// Everything needed to connect, resolved from the URI, the environment and the password file.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// The server.
    pub host: PgHost,
    /// Its port.
    pub port: u16,
    /// The role connected as.
    pub user: String,
    /// The password, when one is known (never printed).
    pub password: Option<String>,
    /// The database.
    pub dbname: String,
    /// TLS.
    pub sslmode: SslMode,
    /// Root certificates for the chain check; None: none available (no verification).
    pub root_certs: Option<RootCerts>,
    /// A client certificate and its key (`sslcert`, `sslkey`), when both are given or both
    /// exist at libpq's default paths.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Connection attempt limit.
    pub connect_timeout: Duration,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
    /// Server options (`options=-c search_path=…`).
    pub options: Option<String>,
    /// The longest one statement may run (the session's `statement_timeout`): the search
    /// budget every store keeps (`PODIUM_MAX_SEARCH_SECONDS`, 600 s by default).
    pub statement_timeout: Duration,
}

/// The session's `lock_timeout`: how long a statement waits for a row or table lock another
/// session holds (a worker's open claim transaction, a `LOCK TABLE` by hand) before failing, as
/// a SQLite store waits out its busy timeout. `options=-c lock_timeout=…` overrides it.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(60);

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .field("root_certs", &self.root_certs)
            .field("client_cert", &self.client_cert)
            .field("connect_timeout", &self.connect_timeout)
            .field("application_name", &self.application_name)
            .field("options", &self.options)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// True for the URI schemes MLflow hands to its SQLAlchemy store for PostgreSQL:
/// `postgresql://` and `postgresql+<driver>://` (psycopg2, psycopg, pg8000, …).
pub fn is_postgres_uri(uri: &str) -> bool {
    let Some((scheme, _)) = uri.trim().split_once("://") else {
        return false;
    };
    let scheme = scheme.to_ascii_lowercase();
    scheme == "postgresql" || scheme.starts_with("postgresql+")
}

fn invalid(uri: &str, reason: impl Into<String>) -> MlflowError {
    MlflowError::UnsupportedUri {
        uri: redact_uri(uri),
        reason: reason.into(),
    }
}

/// `%XX` escapes decoded (SQLAlchemy unquotes user, password, host and database names).
fn percent_decode(uri: &str, text: &str) -> Result<String, MlflowError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| invalid(uri, "a % in the URI must start an escape like %2F"))?;
            out.push(hex);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(uri, "an escape in the URI is not UTF-8"))
}

/// The query keys podium reads (libpq's names); any other key is refused rather than ignored.
const QUERY_KEYS: [&str; 12] = [
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
    "options",
];

/// What the URI itself says, before the environment fills in the rest.
#[derive(Debug, Default)]
struct UriParts {
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    query: Vec<(String, String)>,
}

impl UriParts {
    fn get(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }
}

fn split_uri(uri: &str) -> Result<UriParts, MlflowError> {
    let trimmed = uri.trim();
    let (scheme, rest) = trimmed
        .split_once("://")
        .ok_or_else(|| invalid(uri, "not a postgresql:// URI"))?;
    if !is_postgres_uri(trimmed) {
        return Err(invalid(
            uri,
            format!("scheme {scheme:?} is not postgresql:// or postgresql+<driver>://"),
        ));
    }
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let mut parts = UriParts::default();
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                parts.user = Some(percent_decode(uri, user)?);
            }
            if let Some(password) = password {
                parts.password = Some(percent_decode(uri, password)?);
            }
            host_port
        }
        None => authority,
    };
    if let Some(bracketed) = host_port.strip_prefix('[') {
        // [IPv6]:port
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| invalid(uri, "an IPv6 host needs its closing ]"))?;
        parts.host = Some(host.to_string());
        if let Some(port) = after.strip_prefix(':') {
            parts.port = Some(port.to_string());
        } else if !after.is_empty() {
            return Err(invalid(uri, "unexpected text after the IPv6 host"));
        }
    } else {
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        };
        if !host.is_empty() {
            parts.host = Some(percent_decode(uri, host)?);
        }
        parts.port = port.map(str::to_string);
    }
    if !path.is_empty() {
        parts.dbname = Some(percent_decode(uri, path)?);
    }
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(uri, key)?;
        if !QUERY_KEYS.contains(&key.as_str()) {
            return Err(invalid(
                uri,
                format!(
                    "query key {key:?} is not one podium reads ({})",
                    QUERY_KEYS.join(", ")
                ),
            ));
        }
        let value = percent_decode(uri, &value.replace('+', " "))?;
        parts.query.push((key, value));
    }
    Ok(parts)
}

/// The directory of the server's socket when no host is given: Debian's, else `/tmp`, as libpq
/// is built on each.
fn default_socket_dir() -> PathBuf {
    let debian = Path::new("/var/run/postgresql");
    if debian.is_dir() {
        debian.to_path_buf()
    } else {
        PathBuf::from("/tmp")
    }
}

fn home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}

impl PostgresSettings {
    /// Resolves `uri` as libpq would: the URI first (its query keys over its authority), then
    /// the `PG…` variables of `env`, then libpq's defaults; a password from neither is looked
    /// up in the password file (`PGPASSFILE`, else `~/.pgpass`).
    ///
    /// ```
    /// use podium_mlflow::postgres::{PgHost, PostgresSettings, SslMode};
    ///
    /// let env = |name: &str| (name == "PGPASSWORD").then(|| "s3cret".to_string());
    /// let settings = PostgresSettings::from_uri(
    ///     "postgresql+psycopg2://mlflow@db.example:6543/tracking?sslmode=verify-full&sslrootcert=system",
    ///     &env,
    /// )?;
    /// assert_eq!(settings.host, PgHost::Tcp("db.example".into()));
    /// assert_eq!((settings.port, settings.user.as_str()), (6543, "mlflow"));
    /// assert_eq!(settings.password.as_deref(), Some("s3cret"));
    /// assert_eq!(settings.sslmode, SslMode::VerifyFull);
    /// assert_eq!(settings.display(), "postgresql://mlflow@db.example:6543/tracking");
    /// # Ok::<(), podium_mlflow::MlflowError>(())
    /// ```
    pub fn from_uri(
        uri: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PostgresSettings, MlflowError> {
        let parts = split_uri(uri)?;
        let pick = |key: &str, from_uri: Option<&str>, variable: &str| -> Option<String> {
            parts
                .get(key)
                .or(from_uri)
                .map(str::to_string)
                .or_else(|| env(variable))
                .filter(|value| !value.is_empty())
        };
        let host = match pick("host", parts.host.as_deref(), "PGHOST") {
            Some(host) if host.contains(',') => {
                return Err(invalid(
                    uri,
                    "several hosts are not supported; name one (or put a pooler in front)",
                ));
            }
            Some(host) if host.starts_with('/') => PgHost::Socket(PathBuf::from(host)),
            Some(host) => PgHost::Tcp(host),
            None => PgHost::Socket(default_socket_dir()),
        };
        let port = match pick("port", parts.port.as_deref(), "PGPORT") {
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&port| port > 0)
                .ok_or_else(|| {
                    invalid(
                        uri,
                        format!("port {port:?} is not a number from 1 to 65535"),
                    )
                })?,
            None => DEFAULT_PORT,
        };
        let user = pick("user", parts.user.as_deref(), "PGUSER")
            .or_else(|| env("USER").filter(|user| !user.is_empty()))
            .or_else(|| env("LOGNAME").filter(|user| !user.is_empty()))
            .ok_or_else(|| invalid(uri, "no user: give one in the URI or PGUSER"))?;
        let dbname =
            pick("dbname", parts.dbname.as_deref(), "PGDATABASE").unwrap_or_else(|| user.clone());
        let sslmode_text = pick("sslmode", None, "PGSSLMODE").unwrap_or_else(|| "prefer".into());
        let mut sslmode = SslMode::parse(&sslmode_text).ok_or_else(|| {
            invalid(
                uri,
                format!(
                    "sslmode {sslmode_text:?} is not one of disable, allow, prefer, require, \
                     verify-ca, verify-full"
                ),
            )
        })?;
        if matches!(host, PgHost::Socket(_)) {
            // libpq never uses TLS over a Unix socket.
            sslmode = match sslmode {
                SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                    return Err(invalid(
                        uri,
                        format!(
                            "sslmode {} needs a TCP host; a Unix socket has no TLS",
                            sslmode.as_str()
                        ),
                    ));
                }
                _ => SslMode::Disable,
            };
        }
        let postgresql_dir = home(env).map(|home| home.join(".postgresql"));
        let root_certs = match pick("sslrootcert", None, "PGSSLROOTCERT") {
            Some(value) if value == "system" => Some(RootCerts::System),
            Some(path) => Some(RootCerts::File(PathBuf::from(path))),
            None => postgresql_dir
                .as_ref()
                .map(|dir| dir.join("root.crt"))
                .filter(|path| path.is_file())
                .map(RootCerts::File),
        };
        if matches!(sslmode, SslMode::VerifyCa | SslMode::VerifyFull) && root_certs.is_none() {
            return Err(invalid(
                uri,
                format!(
                    "sslmode {} needs root certificates: give sslrootcert=<file> (or \
                     sslrootcert=system), or put them in ~/.postgresql/root.crt",
                    sslmode.as_str()
                ),
            ));
        }
        // libpq: `require` with a root certificate at hand checks the chain, as `verify-ca`.
        if sslmode == SslMode::Require && root_certs.is_some() {
            sslmode = SslMode::VerifyCa;
        }
        let client_cert = match (
            pick("sslcert", None, "PGSSLCERT"),
            pick("sslkey", None, "PGSSLKEY"),
        ) {
            (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
            (Some(_), None) | (None, Some(_)) => {
                return Err(invalid(uri, "sslcert and sslkey go together: give both"));
            }
            (None, None) => postgresql_dir.and_then(|dir| {
                let (cert, key) = (dir.join("postgresql.crt"), dir.join("postgresql.key"));
                (cert.is_file() && key.is_file()).then_some((cert, key))
            }),
        };
        let connect_timeout = match pick("connect_timeout", None, "PGCONNECT_TIMEOUT") {
            Some(text) => match text.trim().parse::<u64>() {
                // libpq: 0 (or negative) waits forever; podium keeps its own limit then.
                Ok(0) => DEFAULT_CONNECT_TIMEOUT,
                // libpq treats 1 as 2 seconds.
                Ok(seconds) => Duration::from_secs(seconds.clamp(2, 24 * 3600)),
                Err(_) => {
                    return Err(invalid(
                        uri,
                        format!("connect_timeout {text:?} is not a whole number of seconds"),
                    ));
                }
            },
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        let application_name =
            pick("application_name", None, "PGAPPNAME").unwrap_or_else(|| "podium".into());
        let options = pick("options", None, "PGOPTIONS");
        let statement_timeout = match env("PODIUM_MAX_SEARCH_SECONDS")
            .filter(|value| !value.trim().is_empty())
        {
            Some(value) => {
                let seconds = crate::rest::parse_non_negative("PODIUM_MAX_SEARCH_SECONDS", &value)?;
                crate::rest::bounded_seconds("PODIUM_MAX_SEARCH_SECONDS", &value, seconds)?
            }
            None => crate::query::DEFAULT_MAX_SEARCH_TIME,
        };
        let mut settings = PostgresSettings {
            host,
            port,
            user,
            password: parts
                .get("password")
                .map(str::to_string)
                .or(parts.password.clone())
                .or_else(|| env("PGPASSWORD"))
                .filter(|password| !password.is_empty()),
            dbname,
            sslmode,
            root_certs,
            client_cert,
            connect_timeout,
            application_name,
            options,
            statement_timeout,
        };
        if settings.password.is_none() {
            settings.password = settings.password_from_file(env);
        }
        Ok(settings)
    }

    /// The server options a session starts with: podium's bounds on every wait
    /// (`statement_timeout`, `lock_timeout`, an idle transaction's end), then the user's
    /// `options`, which PostgreSQL applies last, so a setting there wins.
    pub fn session_options(&self) -> String {
        let millis = |duration: Duration| duration.as_millis().max(1);
        let mut options = format!(
            "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
            millis(self.statement_timeout),
            millis(LOCK_TIMEOUT),
            millis(self.statement_timeout),
        );
        if let Some(user) = &self.options {
            options.push(' ');
            options.push_str(user);
        }
        options
    }

    /// The store for messages: `postgresql://user@host:port/database` (a socket directory as
    /// `?host=/dir`), never the password.
    pub fn display(&self) -> String {
        match &self.host {
            PgHost::Tcp(host) if host.contains(':') => format!(
                "postgresql://{}@[{host}]:{}/{}",
                self.user, self.port, self.dbname
            ),
            PgHost::Tcp(host) => format!(
                "postgresql://{}@{host}:{}/{}",
                self.user, self.port, self.dbname
            ),
            PgHost::Socket(dir) => format!(
                "postgresql://{}@:{}/{}?host={}",
                self.user,
                self.port,
                self.dbname,
                dir.display()
            ),
        }
    }

    /// The host name the password file is matched with: the TCP host, or `localhost` for a
    /// socket (as libpq does for its default socket directory).
    fn passfile_host(&self) -> &str {
        match &self.host {
            PgHost::Tcp(host) => host,
            PgHost::Socket(_) => "localhost",
        }
    }

    /// The password of the first matching line of the password file, if the file exists and
    /// is private (libpq ignores one that group or others may read, and so does podium, with a
    /// warning).
    fn password_from_file(&self, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
        let path = env("PGPASSFILE")
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
            .or_else(|| home(env).map(|home| home.join(".pgpass")))?;
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() {
            return None;
        }
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(
                    "password file {} has group or world access; not read (chmod 0600 it)",
                    path.display()
                );
                return None;
            }
        }
        let text = match podium_variants::fs::read_regular_text(&path, MAX_PASSFILE_BYTES) {
            Ok(text) => text,
            Err(err) => {
                tracing::warn!("cannot read password file {}: {err}", path.display());
                return None;
            }
        };
        let port = self.port.to_string();
        let wanted = [
            self.passfile_host(),
            port.as_str(),
            self.dbname.as_str(),
            self.user.as_str(),
        ];
        text.lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .filter_map(passfile_fields)
            .find(|fields| {
                fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(field, value)| field == "*" || field == value)
            })
            .map(|mut fields| fields.swap_remove(4))
    }
}

/// The five fields of a password file line (`host:port:database:user:password`, `\` escaping
/// `:` and `\`); None for a malformed line.
fn passfile_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    (fields.len() == 5).then_some(fields)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn settings(uri: &str) -> PostgresSettings {
        PostgresSettings::from_uri(uri, &|name| (name == "USER").then(|| "osuser".into())).unwrap()
    }

    #[test]
    fn uris_as_mlflow_spells_them() {
        let full = settings("postgresql://me:p%40ss%3Aw@db.local:6000/ml%2Dflow?sslmode=disable");
        assert_eq!(full.host, PgHost::Tcp("db.local".into()));
        assert_eq!(full.port, 6000);
        assert_eq!(full.user, "me");
        assert_eq!(full.password.as_deref(), Some("p@ss:w"));
        assert_eq!(full.dbname, "ml-flow");
        assert_eq!(full.sslmode, SslMode::Disable);
        for driver in ["postgresql+psycopg2", "postgresql+psycopg", "POSTGRESQL"] {
            let uri = format!("{driver}://u@h/db");
            assert!(is_postgres_uri(&uri), "{uri}");
            assert_eq!(settings(&uri).dbname, "db");
        }
        assert!(!is_postgres_uri("postgres://u@h/db"));
        assert!(!is_postgres_uri("postgresqlx://u@h/db"));
        let v6 = settings("postgresql://u@[::1]:7000/db");
        assert_eq!((v6.host, v6.port), (PgHost::Tcp("::1".into()), 7000));
        let socket = settings("postgresql:///mlflow?host=%2Fvar%2Flib%2Fpg");
        assert_eq!(socket.host, PgHost::Socket("/var/lib/pg".into()));
        assert_eq!(socket.user, "osuser");
        assert_eq!(socket.sslmode, SslMode::Disable, "no TLS over a socket");
        assert_eq!(
            socket.display(),
            "postgresql://osuser@:5432/mlflow?host=/var/lib/pg"
        );
        assert_eq!(settings("postgresql://u@h").dbname, "u", "database = user");
        assert_eq!(settings("postgresql://u@h").sslmode, SslMode::Prefer);
    }

    #[test]
    fn the_environment_fills_what_the_uri_leaves_out() {
        let env = |name: &str| {
            Some(
                match name {
                    "PGHOST" => "envhost",
                    "PGPORT" => "7777",
                    "PGUSER" => "envuser",
                    "PGPASSWORD" => "envpw",
                    "PGDATABASE" => "envdb",
                    "PGSSLMODE" => "require",
                    "PGCONNECT_TIMEOUT" => "5",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let from_env = PostgresSettings::from_uri("postgresql://", &env).unwrap();
        assert_eq!(from_env.host, PgHost::Tcp("envhost".into()));
        assert_eq!(
            (
                from_env.port,
                from_env.user.as_str(),
                from_env.dbname.as_str()
            ),
            (7777, "envuser", "envdb")
        );
        assert_eq!(from_env.password.as_deref(), Some("envpw"));
        assert_eq!(from_env.sslmode, SslMode::Require);
        assert_eq!(from_env.connect_timeout, Duration::from_secs(5));
        let uri_wins = PostgresSettings::from_uri(
            "postgresql://u:pw@h:1/d?sslmode=disable&connect_timeout=1",
            &env,
        )
        .unwrap();
        assert_eq!(
            (
                uri_wins.port,
                uri_wins.user.as_str(),
                uri_wins.dbname.as_str()
            ),
            (1, "u", "d")
        );
        assert_eq!(uri_wins.password.as_deref(), Some("pw"));
        assert_eq!(uri_wins.sslmode, SslMode::Disable);
        assert_eq!(uri_wins.connect_timeout, Duration::from_secs(2));
    }

    #[test]
    fn bad_uris_are_clear_errors_without_the_password() {
        for (uri, says) in [
            ("postgresql://u:secret@h:99999/db", "port"),
            ("postgresql://u:secret@h/db?sslmode=sometimes", "sslmode"),
            ("postgresql://u:secret@h/db?fancy=1", "fancy"),
            ("postgresql://u:secret@a,b/db", "several hosts"),
            (
                "postgresql://u:secret@h/db?sslmode=verify-full",
                "root certificates",
            ),
            ("postgresql://u:secret@h/db?sslcert=/c", "together"),
            ("postgresql://u:secret@h/d%zz", "escape"),
            (
                "postgresql://u:secret@/db?host=/run/pg&sslmode=require",
                "Unix socket",
            ),
        ] {
            let err = PostgresSettings::from_uri(uri, &no_env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{uri}: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_password() {
        let settings = settings("postgresql://me:hunter2@h/db");
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert!(!settings.display().contains("hunter2"));
    }

    #[test]
    fn password_file_lines_match_like_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:*:*:*:nope\nh:5432:db:me:first\n*:*:*:me:w\\:ild\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = file.display().to_string();
        let env = |name: &str| (name == "PGPASSFILE").then(|| path.clone());
        let exact = PostgresSettings::from_uri("postgresql://me@h/db", &env).unwrap();
        assert_eq!(exact.password.as_deref(), Some("first"));
        let wild = PostgresSettings::from_uri("postgresql://me@other2:1/x", &env).unwrap();
        assert_eq!(wild.password.as_deref(), Some("w:ild"));
        let given = PostgresSettings::from_uri("postgresql://me:mine@h/db", &env).unwrap();
        assert_eq!(given.password.as_deref(), Some("mine"));
        // A file others may read is ignored, as libpq does.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = PostgresSettings::from_uri("postgresql://me@h/db", &env).unwrap();
        assert_eq!(open.password, None);
    }
}
