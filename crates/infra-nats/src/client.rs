//! The NATS connection: connects in the background, reconnects forever, and tracks
//! disconnections so that requests in flight fail as soon as the connection drops.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{ConnectOptions, Event};
use domain::ports::LargeMessageStore;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::adapters::{NatsDispatchSource, NatsNotifier, NatsTicketRepository};

/// The request timeout when none is configured (SPEC §3).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the server is pinged, so that a silently dead connection is noticed.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// The longest a wait for the connection sleeps between looks at its state.
const CONNECT_POLL: Duration = Duration::from_millis(10);
/// The client name the server shows in its connection list.
const CLIENT_NAME: &str = "dispatch-monitor";
/// How long the look at why a connection attempt failed may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The port of a URL that gives none.
const DEFAULT_PORT: u16 = 4222;

/// The client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The URL could not be read, or the options were refused. The URL itself is not repeated:
    /// it may hold credentials.
    #[error("cannot create the NATS client: {0}")]
    Connect(#[source] async_nats::ConnectError),
}

/// The connection's state, for health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Not connected yet since start.
    Pending,
    /// Connected.
    Connected,
    /// Connected before, reconnecting now.
    Disconnected,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionState::Pending => "pending",
            ConnectionState::Connected => "connected",
            ConnectionState::Disconnected => "disconnected",
        })
    }
}

/// A NATS client speaking the bridge services' request/reply envelope. Cheap to clone; all
/// clones share one connection.
#[derive(Clone)]
pub struct NatsClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) client: async_nats::Client,
    pub(crate) request_timeout: Duration,
    pub(crate) store: Arc<dyn LargeMessageStore>,
    /// Counts disconnections; a change while a request waits means the connection dropped.
    pub(crate) disconnections: watch::Receiver<u64>,
    /// Counts connections, so that a wait for the connection ends as soon as it is up.
    connections: watch::Receiver<u64>,
}

impl fmt::Debug for NatsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsClient")
            .field("state", &self.connection_state())
            .field("request_timeout", &self.inner.request_timeout)
            .finish_non_exhaustive()
    }
}

impl NatsClient {
    /// Creates the client and returns at once, even while NATS is down: it connects and
    /// reconnects in the background, forever, with a backoff of up to 4 s between attempts.
    /// Requests wait at most `request_timeout` for a reply (zero means
    /// [`DEFAULT_REQUEST_TIMEOUT`]); oversized requests and replies go through `store`.
    /// Must be called inside a Tokio runtime.
    pub async fn connect(
        url: &str,
        request_timeout: Duration,
        store: Arc<dyn LargeMessageStore>,
    ) -> Result<Self, NatsError> {
        Self::connect_with(url, request_timeout, store, None).await
    }

    /// [`connect`](Self::connect), trusting the PEM certificates of `ca_file` as well as the
    /// system's roots. A `tls://` URL requires TLS (SPEC §13.12): the server's certificate is
    /// verified, and the connection never falls back to plaintext.
    pub async fn connect_with(
        url: &str,
        request_timeout: Duration,
        store: Arc<dyn LargeMessageStore>,
        ca_file: Option<&Path>,
    ) -> Result<Self, NatsError> {
        let request_timeout = if request_timeout.is_zero() {
            DEFAULT_REQUEST_TIMEOUT
        } else {
            request_timeout
        };
        let (disconnected_tx, disconnections) = watch::channel(0_u64);
        let disconnected_tx = Arc::new(disconnected_tx);
        let (connected_tx, connections) = watch::channel(0_u64);
        let connected_tx = Arc::new(connected_tx);
        let mut options = ConnectOptions::new();
        if url.split(',').any(|one| one.trim().starts_with("tls://")) {
            options = options.require_tls(true);
        }
        if let Some(path) = ca_file {
            options = options.add_root_certificates(path.to_path_buf());
        }
        // Credentials travel in the CONNECT message, never in the server addresses: the client
        // logs those at debug level (SPEC §18.4).
        let (seeds, credentials) = split_credentials(url);
        let target = Arc::new(Target::new(&seeds, credentials.is_some()));
        if let Some(credentials) = credentials {
            options = credentials.apply(options);
        }
        let options = options
            .name(CLIENT_NAME)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(CONNECTION_TIMEOUT)
            .ping_interval(PING_INTERVAL)
            .request_timeout(Some(request_timeout))
            .event_callback(move |event| {
                let disconnected_tx = Arc::clone(&disconnected_tx);
                let connected_tx = Arc::clone(&connected_tx);
                let target = Arc::clone(&target);
                async move { on_event(event, &connected_tx, &disconnected_tx, &target).await }
            });
        let client = options.connect(seeds).await.map_err(NatsError::Connect)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                request_timeout,
                store,
                disconnections,
                connections,
            }),
        })
    }

    /// Whether the connection is up right now (no round trip).
    pub fn is_connected(&self) -> bool {
        self.connection_state() == ConnectionState::Connected
    }

    /// The connection's state.
    pub fn connection_state(&self) -> ConnectionState {
        match self.inner.client.connection_state() {
            State::Pending => ConnectionState::Pending,
            State::Connected => ConnectionState::Connected,
            State::Disconnected => ConnectionState::Disconnected,
        }
    }

    /// Waits until the connection is up, at most `limit`; whether it is.
    pub async fn wait_until_connected(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut connections = self.inner.connections.clone();
        while !self.is_connected() {
            if Instant::now() >= deadline {
                return false;
            }
            // A connection event ends the wait at once; the poll covers the state changing
            // just after the event.
            if let Ok(Err(_)) = tokio::time::timeout(CONNECT_POLL, connections.changed()).await {
                tokio::time::sleep(CONNECT_POLL).await;
            }
        }
        true
    }

    /// The port of the server the client is connected to (of a cluster's members, SPEC §16).
    pub fn server_port(&self) -> Option<u16> {
        self.is_connected()
            .then(|| self.inner.client.server_info().port)
    }

    /// The timeout applied to every request.
    pub fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    /// Sends what is buffered and closes the connection; later requests fail.
    pub async fn close(&self) {
        if let Err(error) = self.inner.client.drain().await {
            tracing::debug!(%error, "closing the NATS connection failed");
        }
    }

    /// The vendors' dispatch lists (`{vendor}.dispatch.get`).
    pub fn dispatch_source(&self) -> NatsDispatchSource {
        NatsDispatchSource::new(self.clone())
    }

    /// Bruin ticket notes.
    pub fn tickets(&self) -> NatsTicketRepository {
        NatsTicketRepository::new(self.clone())
    }

    /// SMS, Slack and email.
    pub fn notifier(&self) -> NatsNotifier {
        NatsNotifier::new(self.clone())
    }
}

/// How the client authenticates, read from a URL's `user:password@` or `token@`.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    UserPassword(String, String),
    Token(String),
}

impl Credentials {
    fn apply(self, options: ConnectOptions) -> ConnectOptions {
        match self {
            Credentials::UserPassword(user, password) => options.user_and_password(user, password),
            Credentials::Token(token) => options.token(token),
        }
    }
}

/// The seed list's URLs without credentials, and the credentials of the first URL that has
/// some, percent-decoded (`%2C` for a `,` in a password, which would otherwise split the
/// list). A seed list (`nats://n1:4222,nats://n2:4222`): the client connects to any reachable
/// member, learns the cluster's others from it, and fails over between them (SPEC §16).
fn split_credentials(url: &str) -> (Vec<String>, Option<Credentials>) {
    let mut credentials = None;
    let seeds = url
        .split(',')
        .map(str::trim)
        .filter(|seed| !seed.is_empty())
        .map(|seed| {
            let Some((scheme, rest)) = seed.split_once("://") else {
                return seed.to_owned();
            };
            let Some((userinfo, host)) = rest.rsplit_once('@') else {
                return seed.to_owned();
            };
            if credentials.is_none() {
                credentials = Some(match userinfo.split_once(':') {
                    Some((user, password)) => {
                        Credentials::UserPassword(percent_decode(user), percent_decode(password))
                    }
                    None => Credentials::Token(percent_decode(userinfo)),
                });
            }
            format!("{scheme}://{host}")
        })
        .collect();
    (seeds, credentials)
}

/// `%XX` escapes decoded; anything else kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| text.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Where the client connects: the seeds, and how logs show them (credentials masked).
#[derive(Debug)]
struct Target {
    seeds: Vec<String>,
    shown: String,
}

impl Target {
    fn new(seeds: &[String], has_credentials: bool) -> Self {
        let shown = seeds
            .iter()
            .map(|seed| match seed.split_once("://") {
                Some((scheme, host)) if has_credentials => format!("{scheme}://***@{host}"),
                _ => seed.clone(),
            })
            .collect::<Vec<_>>()
            .join(",");
        Self {
            seeds: seeds.to_vec(),
            shown,
        }
    }

    /// Why the seeds cannot be reached, as the operating system tells it: a TCP connection
    /// is tried to each (the client's own error says no more than "IO error").
    async fn why_unreachable(&self) -> String {
        let mut causes = Vec::new();
        for seed in &self.seeds {
            let address = host_and_port(seed);
            let connect = tokio::net::TcpStream::connect(address.as_str());
            let cause = match tokio::time::timeout(PROBE_TIMEOUT, connect).await {
                Ok(Ok(_)) => "the server accepts connections; the NATS handshake failed".to_owned(),
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
            };
            causes.push(if self.seeds.len() > 1 {
                format!("{address}: {cause}")
            } else {
                cause
            });
        }
        causes.join("; ")
    }
}

/// A seed's `host:port`, the port 4222 when it gives none.
fn host_and_port(seed: &str) -> String {
    let address = seed.split_once("://").map_or(seed, |(_, rest)| rest);
    let address = address.trim_end_matches('/');
    let has_port = address.rsplit_once(':').is_some_and(|(host, port)| {
        !port.is_empty()
            && port.chars().all(|c| c.is_ascii_digit())
            && (!host.contains(':') || host.ends_with(']'))
    });
    if has_port {
        address.to_owned()
    } else {
        format!("{address}:{DEFAULT_PORT}")
    }
}

/// Logs connection events and counts connections and disconnections. A failed connection
/// attempt is logged once, with the URL (credentials masked) and the cause.
async fn on_event(
    event: Event,
    connections: &watch::Sender<u64>,
    disconnections: &watch::Sender<u64>,
    target: &Target,
) {
    match event {
        Event::ClientError(async_nats::ClientError::Other(error)) => {
            let cause = target.why_unreachable().await;
            tracing::warn!(url = %target.shown, %error, %cause, "cannot connect to NATS; retrying");
        }
        Event::Connected => {
            connections.send_modify(|count| *count += 1);
            tracing::info!("connected to NATS");
        }
        Event::Disconnected => {
            disconnections.send_modify(|count| *count += 1);
            tracing::warn!("disconnected from NATS; reconnecting");
        }
        Event::Closed => tracing::info!("NATS connection closed"),
        other => tracing::warn!(event = %other, "NATS connection event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_attempts_show_the_seeds_masked_and_probe_host_and_port() {
        let (seeds, credentials) = split_credentials("nats://u:pw@n1:4222, tls://n2");
        let target = Target::new(&seeds, credentials.is_some());
        assert_eq!(target.shown, "nats://***@n1:4222,tls://***@n2");
        let plain = Target::new(&["nats://n1:4222".to_owned()], false);
        assert_eq!(plain.shown, "nats://n1:4222");
        for (seed, address) in [
            ("nats://n1:4222", "n1:4222"),
            ("tls://n2", "n2:4222"),
            ("nats://[::1]:4333", "[::1]:4333"),
            ("nats://[::1]", "[::1]:4222"),
            ("n3:5222/", "n3:5222"),
        ] {
            assert_eq!(host_and_port(seed), address, "{seed}");
        }
    }

    #[test]
    fn credentials_leave_the_urls_and_are_decoded() {
        let pair = |user: &str, password: &str| {
            Some(Credentials::UserPassword(
                user.to_owned(),
                password.to_owned(),
            ))
        };
        for (url, seeds, credentials) in [
            ("nats://n1:4222", vec!["nats://n1:4222"], None),
            (
                "nats://u:p@ss:w%2Crd@n1:4222, nats://n2:4222",
                vec!["nats://n1:4222", "nats://n2:4222"],
                pair("u", "p@ss:w,rd"),
            ),
            (
                "tls://n1:4222,tls://first:one@n2:4222,tls://second:two@n3:4222",
                vec!["tls://n1:4222", "tls://n2:4222", "tls://n3:4222"],
                pair("first", "one"),
            ),
            (
                "nats://s3cr%3At0ken@n1:4222",
                vec!["nats://n1:4222"],
                Some(Credentials::Token("s3cr:t0ken".to_owned())),
            ),
            (
                "nats://%zz%4@n1",
                vec!["nats://n1"],
                Some(Credentials::Token("%zz%4".to_owned())),
            ),
        ] {
            assert_eq!(
                split_credentials(url),
                (seeds.iter().map(|s| (*s).to_owned()).collect(), credentials),
                "{url}"
            );
        }
    }
}
