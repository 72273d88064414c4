//! Real `nats-server` and `redis-server` processes for tests.
//!
//! Each server runs on a free loopback port chosen at start, never on the standard 4222 or 6379,
//! so tests never touch services the machine already runs (a partition test may add one other
//! local address: the root end of its own veth pair). A server can be stopped and started
//! again on the same port to test how clients survive an outage, and it is killed when dropped.
//! Everything here is plain `std` so that any test, async or not, can use it.
//!
//! ```no_run
//! use test_support::servers::{NatsServer, RedisServer};
//!
//! let nats = NatsServer::new();
//! let mut redis = RedisServer::new();
//! println!("{} {}", nats.url(), redis.url());
//! redis.restart();
//! ```

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to accept connections after it is spawned.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How many fresh ports a first start tries when another process steals the chosen one.
const PORT_ATTEMPTS: usize = 5;
/// The directories searched after `PATH`; Debian puts `nats-server` in `/usr/sbin`.
const EXTRA_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"];

/// A `nats-server` listening on `127.0.0.1` on a free port.
#[derive(Debug)]
pub struct NatsServer {
    process: ServerProcess,
}

impl NatsServer {
    /// Starts a server on a free port and waits until it accepts clients.
    ///
    /// Panics when `nats-server` is not installed (run `scripts/test.sh`) or does not start.
    pub fn new() -> Self {
        Self {
            process: ServerProcess::spawn_on_free_port(Kind::Nats),
        }
    }

    /// A server that requires TLS, with the certificate `tls` made.
    pub fn tls(tls: &TlsFiles) -> Self {
        Self::with(Some(tls.clone()), Vec::new())
    }

    /// A server listening on `host` only (a local address other than loopback, e.g. one end of
    /// a veth pair), on a free port; [`url`](Self::url) names `host`.
    pub fn on_host(host: Ipv4Addr) -> Self {
        Self {
            process: ServerProcess::spawn_on_host(Kind::Nats, host),
        }
    }

    /// A server with extra arguments (cluster options, ...), on a free client port.
    pub fn with_args(extra: Vec<String>) -> Self {
        Self::with(None, extra)
    }

    fn with(tls: Option<TlsFiles>, extra: Vec<String>) -> Self {
        Self {
            process: ServerProcess::spawn_on_free_port(Kind::NatsWith { tls, extra }),
        }
    }

    /// The client URL, `nats://127.0.0.1:PORT` (`tls://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = match &self.process.kind {
            Kind::NatsWith { tls: Some(_), .. } => "tls",
            _ => "nats",
        };
        format!("{scheme}://{}:{}", self.process.host, self.process.port)
    }

    /// The port the server listens on; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit. Idempotent.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts the server again on the same port and waits until it accepts clients.
    /// Does nothing when it is already running.
    pub fn start(&mut self) {
        self.process.start();
    }

    /// Stops then starts the server on the same port.
    pub fn restart(&mut self) {
        self.process.stop();
        self.process.start();
    }
}

impl Default for NatsServer {
    fn default() -> Self {
        Self::new()
    }
}

/// A `redis-server` listening on `127.0.0.1` on a free port, without persistence.
#[derive(Debug)]
pub struct RedisServer {
    process: ServerProcess,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    ///
    /// Panics when `redis-server` is not installed (run `scripts/test.sh`) or does not start.
    pub fn new() -> Self {
        Self {
            process: ServerProcess::spawn_on_free_port(Kind::Redis),
        }
    }

    /// A server listening on a TLS port only, with the certificate `tls` made; clients need
    /// not present one.
    pub fn tls(tls: &TlsFiles) -> Self {
        Self {
            process: ServerProcess::spawn_on_free_port(Kind::RedisTls(tls.clone())),
        }
    }

    /// A server with extra arguments (replication, sentinel or cluster options).
    pub fn with_args(extra: Vec<String>) -> Self {
        Self {
            process: ServerProcess::spawn_on_free_port(Kind::RedisWith(extra)),
        }
    }

    /// A server listening on loopback and on `host` (a local address, e.g. one end of a veth
    /// pair), on a free port, accepting clients on both without a password (protected mode
    /// off); [`url`](Self::url) still names loopback.
    pub fn also_on_host(host: Ipv4Addr) -> Self {
        let args = [
            "--bind",
            "127.0.0.1",
            &host.to_string(),
            "--protected-mode",
            "no",
        ];
        Self::with_args(args.map(str::to_owned).to_vec())
    }

    /// The client URL, `redis://127.0.0.1:PORT` (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = match &self.process.kind {
            Kind::RedisTls(_) => "rediss",
            _ => "redis",
        };
        format!("{scheme}://127.0.0.1:{}", self.process.port)
    }

    /// The port the server listens on; it stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.process.port
    }

    /// Whether the server process is running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit. Idempotent.
    /// Its data is lost: persistence is off.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts the server again, empty, on the same port and waits until it answers `PING`.
    /// Does nothing when it is already running.
    pub fn start(&mut self) {
        self.process.start();
    }

    /// Stops then starts the server on the same port.
    pub fn restart(&mut self) {
        self.process.stop();
        self.process.start();
    }
}

/// A `redis-server --sentinel` process on a free loopback port.
#[derive(Debug)]
pub struct RedisSentinel {
    process: ServerProcess,
}

impl RedisSentinel {
    /// Starts a sentinel watching `primary` (its service name) at `127.0.0.1:primary_port`,
    /// with a 1 s down-after and quorum 2; its config file goes in `dir`.
    pub fn new(dir: &Path, primary: &str, primary_port: u16) -> Self {
        Self {
            process: ServerProcess::spawn_on_free_port(Kind::Sentinel {
                dir: dir.to_path_buf(),
                primary: primary.to_owned(),
                primary_port,
            }),
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.process.port
    }
}

impl Default for RedisServer {
    fn default() -> Self {
        Self::new()
    }
}

/// Which server a process runs, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Nats,
    Redis,
    /// NATS with TLS required, and extra arguments.
    NatsWith {
        tls: Option<TlsFiles>,
        extra: Vec<String>,
    },
    /// Redis on a TLS port only, no plaintext port.
    RedisTls(TlsFiles),
    /// Redis with extra arguments (replication, sentinel, cluster options).
    RedisWith(Vec<String>),
    /// `redis-server --sentinel` watching the primary `primary` on `127.0.0.1:port` (its
    /// config file is written in `dir`).
    Sentinel {
        dir: PathBuf,
        primary: String,
        primary_port: u16,
    },
}

impl Kind {
    fn binary_name(&self) -> &'static str {
        match self {
            Kind::Nats | Kind::NatsWith { .. } => "nats-server",
            Kind::Redis | Kind::RedisTls(_) | Kind::RedisWith(_) | Kind::Sentinel { .. } => {
                "redis-server"
            }
        }
    }

    fn args(&self, host: Ipv4Addr, port: u16) -> Vec<String> {
        let host = host.to_string();
        let port = port.to_string();
        let text = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        let redis = |port_option: &str, extra: Vec<String>| {
            let mut args = text(&[
                port_option,
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]);
            args.extend(extra);
            args
        };
        match self {
            Kind::Nats => text(&["-a", &host, "-p", &port]),
            Kind::NatsWith { tls, extra } => nats_args(&port, tls.as_ref(), extra),
            Kind::Redis => redis("--port", Vec::new()),
            Kind::Sentinel {
                dir,
                primary,
                primary_port,
            } => sentinel_args(&port, dir, primary, *primary_port),
            Kind::RedisWith(extra) => redis("--port", extra.clone()),
            Kind::RedisTls(tls) => {
                let files = [
                    ("--tls-cert-file", tls.server_cert()),
                    ("--tls-key-file", tls.server_key()),
                    ("--tls-ca-cert-file", tls.ca_cert()),
                ];
                let mut extra = text(&["--port", "0", "--tls-auth-clients", "no"]);
                for (option, path) in files {
                    extra.push(option.to_owned());
                    extra.push(path.display().to_string());
                }
                redis("--tls-port", extra)
            }
        }
    }

    /// Whether the server on `port` is up: NATS greets with `INFO`, Redis answers `PING` with
    /// `+PONG`; a TLS server only has to accept the connection.
    fn answers(&self, host: Ipv4Addr, port: u16) -> bool {
        let address = SocketAddr::from((host, port));
        let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(500))
        else {
            return false;
        };
        let timeout = Some(Duration::from_secs(2));
        if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
            return false;
        }
        let expected: &[u8] = match self {
            Kind::RedisTls(_) => return true,
            Kind::Nats | Kind::NatsWith { .. } => b"INFO",
            Kind::Redis | Kind::RedisWith(_) | Kind::Sentinel { .. } => {
                if stream.write_all(b"PING\r\n").is_err() {
                    return false;
                }
                b"+PONG"
            }
        };
        let mut reply = vec![0_u8; expected.len()];
        stream.read_exact(&mut reply).is_ok() && reply == expected
    }
}

/// `nats-server` on loopback at `port`, with TLS when given and the extra arguments.
fn nats_args(port: &str, tls: Option<&TlsFiles>, extra: &[String]) -> Vec<String> {
    let mut args = text_args(&["-a", "127.0.0.1", "-p", port]);
    if let Some(tls) = tls {
        args.extend(text_args(&["--tls", "--tlscert"]));
        args.push(tls.server_cert().display().to_string());
        args.push("--tlskey".into());
        args.push(tls.server_key().display().to_string());
    }
    args.extend(extra.iter().cloned());
    args
}

/// `redis-server --sentinel` on loopback at `port`, watching `primary`; writes its config file
/// in `dir`.
fn sentinel_args(port: &str, dir: &Path, primary: &str, primary_port: u16) -> Vec<String> {
    // Sentinel rewrites its config file, so each one has its own.
    let conf = dir.join(format!("sentinel-{port}.conf"));
    let text = format!(
        "sentinel monitor {primary} 127.0.0.1 {primary_port} 2\n\
         sentinel down-after-milliseconds {primary} 1000\n\
         sentinel failover-timeout {primary} 5000\n\
         sentinel parallel-syncs {primary} 1\n"
    );
    std::fs::write(&conf, text).expect("the sentinel config is written");
    let mut args = vec![conf.display().to_string(), "--sentinel".to_owned()];
    args.extend(text_args(&["--port", port, "--bind", "127.0.0.1"]));
    args
}

/// A throwaway certificate authority and a server certificate it signed for `127.0.0.1` and
/// `localhost`, made with the `openssl` command in a fresh folder; for TLS tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    dir: PathBuf,
}

impl TlsFiles {
    /// Makes the CA and the server's key and certificate. Panics when `openssl` fails.
    pub fn generate() -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("test-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder for the certificates");
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl runs (install the openssl package)");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        openssl(&Self::ca_request());
        openssl(&Self::server_request());
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("the extensions file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ]);
        Self { dir }
    }

    /// A P-256 key made with the request, unencrypted.
    const EC_KEY: [&str; 5] = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];

    /// `openssl` arguments making the self-signed CA (`ca.key`, `ca.crt`).
    fn ca_request() -> Vec<&'static str> {
        let mut ca = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=dispatch-monitor test CA",
        ];
        ca.extend(Self::EC_KEY);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        ca
    }

    /// `openssl` arguments making the server's key and signing request (`server.key`,
    /// `server.csr`).
    fn server_request() -> Vec<&'static str> {
        let mut request = vec![
            "req",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ];
        request.extend(Self::EC_KEY);
        request
    }

    /// The CA certificate (PEM): what clients must trust.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The server's certificate (PEM).
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    /// The server's private key (PEM).
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
}

/// A server process bound to one port for its whole life.
#[derive(Debug)]
struct ServerProcess {
    kind: Kind,
    binary: PathBuf,
    /// The address the server is checked on (and, for NATS, listens on).
    host: Ipv4Addr,
    port: u16,
    child: Option<Child>,
}

impl ServerProcess {
    /// Spawns the server on a fresh free port, trying other ports when one is taken between
    /// choosing and binding it.
    fn spawn_on_free_port(kind: Kind) -> Self {
        Self::spawn_on_host(kind, Ipv4Addr::LOCALHOST)
    }

    /// [`spawn_on_free_port`](Self::spawn_on_free_port), checked on (for NATS, listening on)
    /// `host`.
    fn spawn_on_host(kind: Kind, host: Ipv4Addr) -> Self {
        let binary = find_binary(kind.binary_name());
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let mut process = Self {
                kind: kind.clone(),
                binary: binary.clone(),
                host,
                port: free_port(),
                child: None,
            };
            match process.try_start() {
                Ok(()) => return process,
                Err(error) => last_error = error,
            }
        }
        panic!(
            "{} did not start after {PORT_ATTEMPTS} attempts: {last_error}",
            kind.binary_name()
        );
    }

    fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn start(&mut self) {
        if self.is_running() {
            return;
        }
        if let Err(error) = self.try_start() {
            panic!(
                "{} did not restart on port {}: {error}",
                self.kind.binary_name(),
                self.port
            );
        }
    }

    /// Spawns the process and waits until it answers, or explains why it did not.
    fn try_start(&mut self) -> Result<(), String> {
        self.stop();
        let child = Command::new(&self.binary)
            .args(self.kind.args(self.host, self.port))
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot run {}: {error}", self.binary.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if !self.is_running() {
                self.stop();
                return Err(format!("it exited at once (is port {} taken?)", self.port));
            }
            if self.kind.answers(self.host, self.port) {
                // The answer must come from our process, not from one that took the port.
                if self.is_running() {
                    return Ok(());
                }
                continue;
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(format!(
                    "it did not accept connections on port {} within {READY_DEADLINE:?}",
                    self.port
                ));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error means the process already exited; waiting reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn text_args(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

/// A port that was free a moment ago: bind port 0 on loopback and read what the OS chose.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap_or_else(|error| panic!("cannot bind a loopback port: {error}"));
    listener
        .local_addr()
        .map(|address| address.port())
        .unwrap_or_else(|error| {
            panic!("cannot read the bound port: {error}");
        })
}

/// Looks for `name` on `PATH`, then in the usual system directories.
fn find_binary(name: &str) -> PathBuf {
    let path_dirs = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed (looked on PATH and in {}): run scripts/test.sh, which \
                 apt-installs nats-server and redis-server",
                EXTRA_DIRS.join(", ")
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_server_starts_stops_and_restarts_on_the_same_port() {
        let mut nats = NatsServer::new();
        let port = nats.port();
        assert_ne!(port, 4222);
        assert_eq!(nats.url(), format!("nats://127.0.0.1:{port}"));
        assert!(Kind::Nats.answers(Ipv4Addr::LOCALHOST, port));
        nats.stop();
        assert!(!nats.is_running());
        assert!(!Kind::Nats.answers(Ipv4Addr::LOCALHOST, port));
        nats.start();
        assert_eq!(nats.port(), port);
        assert!(Kind::Nats.answers(Ipv4Addr::LOCALHOST, port));
        nats.restart();
        assert!(Kind::Nats.answers(Ipv4Addr::LOCALHOST, port));
    }

    #[test]
    fn redis_server_starts_stops_and_restarts_on_the_same_port() {
        let mut redis = RedisServer::new();
        let port = redis.port();
        assert_ne!(port, 6379);
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{port}"));
        assert!(Kind::Redis.answers(Ipv4Addr::LOCALHOST, port));
        redis.stop();
        assert!(!Kind::Redis.answers(Ipv4Addr::LOCALHOST, port));
        redis.restart();
        assert_eq!(redis.port(), port);
        assert!(Kind::Redis.answers(Ipv4Addr::LOCALHOST, port));
    }

    #[test]
    fn dropping_a_server_kills_it() {
        let redis = RedisServer::new();
        let port = redis.port();
        drop(redis);
        assert!(!Kind::Redis.answers(Ipv4Addr::LOCALHOST, port));
    }

    #[test]
    fn two_servers_get_different_ports() {
        let first = RedisServer::new();
        let second = RedisServer::new();
        assert_ne!(first.port(), second.port());
    }
}
