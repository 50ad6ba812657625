//! A throwaway PostgreSQL cluster from Debian's `postgresql` package, for the tests of the
//! PostgreSQL tracking store: `initdb` in a temporary directory, a server on a free 127.0.0.1
//! port and a Unix socket in that directory, TLS with a test CA, password (SCRAM) auth over TCP
//! and trust over the socket, and MLflow 3.17.2's schema created by Python mlflow itself in a
//! template database that each test copies ([`PostgresCluster::create_database`]).
//!
//! The cluster is stopped and its directory removed when the last handle drops; a watchdog
//! process does the same if the test process dies without dropping it (kill -9). As root (CI
//! containers) the server runs as the `postgres` user, since it refuses to run as root.
//! [`PostgresCluster::shared`] hands every test of a binary the same cluster (starting one
//! takes a few seconds, most of it Python creating the schema).

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The database MLflow's schema is created in once; tests get copies of it.
const TEMPLATE: &str = "mlflow_template";

/// A running cluster; stopped and removed on drop.
#[derive(Debug)]
pub struct PostgresCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
    run_as_postgres: bool,
    watchdog: Mutex<Option<Child>>,
    /// CREATE DATABASE … TEMPLATE refuses to copy a template another copy is reading.
    creating: Mutex<()>,
    databases: AtomicUsize,
}

/// The `bin` directory of the newest installed PostgreSQL, else the one `initdb` is in.
fn postgres_bin() -> io::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()?;
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    match Path::new(&path).parent() {
        Some(bin) if found.status.success() && !path.is_empty() => Ok(bin.to_path_buf()),
        _ => Err(io::Error::other(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no initdb on \
             PATH): install Debian's `postgresql` package (.ci/run does)",
        )),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn run(what: &str, command: &mut Command) -> io::Result<String> {
    let output = command.output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

impl PostgresCluster {
    /// The cluster every test of this process shares while any of them holds it (a new one
    /// once all have dropped theirs). Panics when it cannot start: the tests need it.
    pub fn shared() -> Arc<PostgresCluster> {
        static SHARED: Mutex<Weak<PostgresCluster>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(cluster) = shared.upgrade() {
            return cluster;
        }
        let cluster = Arc::new(
            PostgresCluster::start().unwrap_or_else(|err| panic!("PostgreSQL cluster: {err}")),
        );
        *shared = Arc::downgrade(&cluster);
        cluster
    }

    /// Starts a fresh cluster and creates MLflow's schema in its template database.
    pub fn start() -> io::Result<PostgresCluster> {
        let bin = postgres_bin()?;
        let run_as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("podium-pg.").tempdir()?;
        let password = format!("pw-{:016x}", fastrand_u64());
        let mut cluster = PostgresCluster {
            dir,
            bin,
            port: crate::free_port(),
            password,
            run_as_postgres,
            watchdog: Mutex::new(None),
            creating: Mutex::new(()),
            databases: AtomicUsize::new(0),
        };
        cluster.init()?;
        cluster.start_server()?;
        cluster.create_template()?;
        Ok(cluster)
    }

    /// A command run as the cluster's owner.
    fn as_owner(&self, program: &Path) -> Command {
        if self.run_as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn init(&mut self) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let root = self.dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(root.join("pwfile"), format!("{}\n", self.password))?;
        self.make_certificates()?;
        if self.run_as_postgres {
            run(
                "chown",
                Command::new("chown").args(["-R", "postgres:"]).arg(root),
            )?;
        }
        run(
            "initdb",
            self.as_owner(&self.bin.join("initdb"))
                .arg("-D")
                .arg(self.data())
                .args(["-U", "postgres", "-E", "UTF8", "--locale=C"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", root.join("pwfile").display())),
        )?;
        Ok(())
    }

    /// A test CA and a server certificate it signs, for 127.0.0.1 and localhost.
    fn make_certificates(&self) -> io::Result<()> {
        let root = self.dir.path();
        let openssl = |what: &str, args: &[&str]| {
            run(what, Command::new("openssl").args(args).current_dir(root))
        };
        openssl(
            "openssl (CA)",
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "3",
                "-subj",
                "/CN=podium test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )?;
        openssl(
            "openssl (server key)",
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        )?;
        std::fs::write(
            root.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )?;
        openssl(
            "openssl (server certificate)",
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "3",
                "-extfile",
                "server.ext",
            ],
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )?;
        Ok(())
    }

    fn start_server(&self) -> io::Result<()> {
        let root = self.dir.path();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c max_connections=300 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            self.port,
            root.display(),
            root.join("server.crt").display(),
            root.join("server.key").display()
        );
        run(
            "pg_ctl start",
            self.as_owner(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(root.join("postgres.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"]),
        )?;
        // Stops the cluster and removes it if this process dies without dropping the handle.
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} -D '{data}' -m immediate stop \
             >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            stop = if self.run_as_postgres {
                format!(
                    "runuser -u postgres -- '{}'",
                    self.bin.join("pg_ctl").display()
                )
            } else {
                format!("'{}'", self.bin.join("pg_ctl").display())
            },
            data = self.data().display(),
            dir = root.display(),
        );
        let watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        *self.watchdog.lock().unwrap_or_else(|p| p.into_inner()) = Some(watchdog);
        Ok(())
    }

    fn create_template(&self) -> io::Result<()> {
        self.psql("postgres", &format!("CREATE DATABASE {TEMPLATE}"))?;
        // MLflow creates its tables (and the Default experiment, artifacts under
        // <cluster>/mlruns) on first use of the database.
        let code = r#"
import logging, sys
logging.disable(logging.CRITICAL)
from mlflow import MlflowClient
MlflowClient(sys.argv[1]).search_experiments()
"#;
        let output = crate::python_command(code, &[&self.uri(TEMPLATE)], &[])
            .current_dir(self.dir.path())
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "mlflow could not create its schema: {}",
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(())
    }

    /// Runs SQL with `psql` over the socket (trust) in database `db`; returns its unaligned,
    /// tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> io::Result<String> {
        run(
            "psql",
            Command::new(self.bin.join("psql"))
                .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(self.dir.path())
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    db,
                    "-c",
                    sql,
                ]),
        )
    }

    /// A fresh database holding MLflow's schema (a copy of the template); returns its name.
    pub fn create_database(&self) -> String {
        self.new_database(true)
    }

    /// A fresh database without any table.
    pub fn create_empty_database(&self) -> String {
        self.new_database(false)
    }

    fn new_database(&self, with_schema: bool) -> String {
        let name = format!(
            "podium_{}_{}",
            std::process::id(),
            self.databases.fetch_add(1, Ordering::SeqCst)
        );
        let _turn = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        let template = if with_schema { TEMPLATE } else { "template0" };
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {name} TEMPLATE {template}"),
        )
        .unwrap_or_else(|err| panic!("creating database {name}: {err}"));
        name
    }

    /// `postgresql://postgres:<password>@127.0.0.1:<port>/<db>` (TCP, password auth).
    pub fn uri(&self, db: &str) -> String {
        format!(
            "postgresql://postgres:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// The same database through the cluster's Unix socket (trust, no password).
    pub fn socket_uri(&self, db: &str) -> String {
        format!(
            "postgresql://postgres@/{db}?host={}&port={}",
            self.dir.path().display(),
            self.port
        )
    }

    /// The superuser's password (for tests that check it never shows).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test CA's certificate, which signed the server's (for `sslmode=verify-full`).
    pub fn ca_certificate(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The cluster's directory (socket, certificates, log; `mlruns/` holds the artifacts of
    /// experiments created in its databases).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PostgresCluster {
    fn drop(&mut self) {
        let _ = self
            .as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut watchdog) = self
            .watchdog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// A random u64 from the clock and the process id (test passwords need not be secure, only
/// not guessable by the tests that check they never show).
fn fastrand_u64() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15
}
