//! The shared Redis client: built from a URL, reconnecting by itself, with a default command
//! timeout so that commands fail fast instead of queueing while Redis is down.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fred::prelude::{Builder, Client, ClientLike, Config, ReconnectPolicy};
use fred::types::config::{TlsConnector, UnresponsiveConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

use crate::{RedisLargeMessageStore, RedisLease, RedisRegistry, RedisSmsLedger};

/// The command timeout used when zero is asked for (zero would mean "wait forever" to fred).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The first reconnection delay, in milliseconds; it doubles after each failed attempt. With
/// `fail_fast` off, fred waits this long (plus the jitter) before even the first connection,
/// so it is kept short: start-up would otherwise cost 100–200 ms.
const RECONNECT_MIN_DELAY_MS: u32 = 5;
/// The most added at random to each reconnection delay, in milliseconds.
const RECONNECT_JITTER_MS: u32 = 5;
/// The longest delay between reconnection attempts, in milliseconds.
const RECONNECT_MAX_DELAY_MS: u32 = 5_000;
/// A connection that leaves a command unanswered this long is closed and reopened.
const UNRESPONSIVE_AFTER: Duration = Duration::from_secs(10);
/// The longest `connect` waits on one connection notice before looking at the state again.
const CONNECT_POLL: Duration = Duration::from_millis(50);

/// Exponential backoff from a few milliseconds up to five seconds, never giving up.
fn reconnect_policy() -> ReconnectPolicy {
    let mut policy =
        ReconnectPolicy::new_exponential(0, RECONNECT_MIN_DELAY_MS, RECONNECT_MAX_DELAY_MS, 2);
    policy.set_jitter(RECONNECT_JITTER_MS);
    policy
}

/// Redis could not be used: a bad URL, or a failed command.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL could not be read. The URL itself is not repeated: it may hold a password.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] fred::error::Error),
    /// TLS was asked for (`rediss://`) but cannot be set up; the client never falls back to
    /// plaintext.
    #[error("cannot set up TLS to Redis: {0}")]
    Tls(String),
    /// The client could not be built from the configuration.
    #[error("cannot create the Redis client: {0}")]
    Client(#[source] fred::error::Error),
    /// A command failed or timed out, for example while Redis is down.
    #[error("Redis is unavailable: {0}")]
    Unavailable(#[source] fred::error::Error),
}

/// One Redis client shared by every Redis-backed port. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisConnection {
    client: Client,
}

impl RedisConnection {
    /// Builds the client and starts connecting in the background.
    ///
    /// Waits at most `command_timeout` for the first connection, then returns even when Redis
    /// is down: the client keeps reconnecting with exponential backoff (5 ms doubling up to
    /// 5 s), and meanwhile every command fails after `command_timeout` (zero means
    /// [`DEFAULT_COMMAND_TIMEOUT`]). Must be called inside a Tokio runtime.
    pub async fn connect(url: &str, command_timeout: Duration) -> Result<Self, RedisError> {
        Self::connect_with(url, command_timeout, None).await
    }

    /// [`connect`](Self::connect), trusting the PEM certificates of `ca_file` as well as the
    /// system's roots when the URL asks for TLS (`rediss://`, SPEC §13.12). The server's
    /// certificate is always verified, and a TLS URL never connects in plaintext.
    pub async fn connect_with(
        url: &str,
        command_timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Self, RedisError> {
        let connection = Self::start_with(url, command_timeout, ca_file)?;
        connection
            .wait_until_connected(connection.command_timeout())
            .await;
        Ok(connection)
    }

    /// Builds the client and starts connecting in the background without waiting, so that
    /// other connections can be made meanwhile; see
    /// [`wait_until_connected`](Self::wait_until_connected).
    pub fn start_with(
        url: &str,
        command_timeout: Duration,
        ca_file: Option<&Path>,
    ) -> Result<Self, RedisError> {
        let command_timeout = if command_timeout.is_zero() {
            DEFAULT_COMMAND_TIMEOUT
        } else {
            command_timeout
        };
        let mut config = Config::from_url(url).map_err(RedisError::InvalidUrl)?;
        // Without this the reconnect policy does not cover the first connection, and start-up
        // with Redis down fails instead of retrying.
        config.fail_fast = false;
        if url.starts_with("rediss") {
            config.tls = Some(tls_connector(ca_file)?.into());
        }
        let client = Builder::from_config(config)
            .with_performance_config(|performance| {
                performance.default_command_timeout = command_timeout;
            })
            .with_connection_config(|connection| {
                connection.connection_timeout = command_timeout;
                connection.internal_command_timeout = command_timeout;
                connection.unresponsive = UnresponsiveConfig {
                    max_timeout: Some(UNRESPONSIVE_AFTER),
                    interval: Duration::from_secs(1),
                };
            })
            .set_policy(reconnect_policy())
            .build()
            .map_err(RedisError::Client)?;
        // The connection task runs until the client quits; its handle is not needed.
        let _task = client.connect();
        Ok(Self { client })
    }

    /// Waits at most `limit` for the connection; false (and a warning) when it is not up by
    /// then. The client goes on reconnecting in the background either way.
    pub async fn wait_until_connected(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        // A connection notice ends the wait at once; the poll only covers one sent between
        // looking at the state and subscribing.
        while !self.client.is_connected() && Instant::now() < deadline {
            let notice = tokio::time::timeout(CONNECT_POLL, self.client.wait_for_connect()).await;
            if let Ok(Err(_)) = notice {
                tokio::time::sleep(CONNECT_POLL / 5).await;
            }
        }
        let connected = self.client.is_connected();
        if connected {
            tracing::info!("connected to Redis");
        } else {
            tracing::warn!("Redis is not reachable yet; reconnecting in the background");
        }
        connected
    }

    /// The timeout applied to every command.
    pub fn command_timeout(&self) -> Duration {
        self.client.perf_config().default_command_timeout
    }

    /// Sends `PING`; an error when Redis does not answer within the command timeout.
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.client
            .ping::<String>(None)
            .await
            .map(drop)
            .map_err(RedisError::Unavailable)
    }

    /// The client, for ports built over another connection.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the client's connection is up right now (no round trip).
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Closes the connection after pending commands finish; the ports stop working.
    pub async fn close(&self) -> Result<(), RedisError> {
        self.client.quit().await.map_err(RedisError::Unavailable)
    }

    /// The dispatch registry under `{env_name}-{dispatch_number}`.
    pub fn registry(&self, env_name: &str) -> RedisRegistry {
        RedisRegistry::new(self.client.clone(), env_name)
    }

    /// The SMS ledger under `{env_name}-dispatch-monitor:sms:`.
    pub fn ledger(&self, env_name: &str) -> RedisSmsLedger {
        RedisSmsLedger::new(self.client.clone(), env_name)
    }

    /// The vendor leases under `{env_name}-dispatch-monitor:lease:`.
    pub fn lease(&self, env_name: &str) -> RedisLease {
        RedisLease::new(self.client.clone(), env_name)
    }

    /// The journal under `{env_name}-dispatch-monitor:`; its writer task starts on the current
    /// Tokio runtime.
    pub fn journal(&self, env_name: &str) -> crate::RedisJournal {
        crate::RedisJournal::start(self.client.clone(), env_name)
    }

    /// The customer-text safeguards (opt-outs, pauses, daily cap) under
    /// `{env_name}-dispatch-monitor:`.
    pub fn safeguards(&self, env_name: &str) -> crate::RedisSafeguards {
        crate::RedisSafeguards::new(self.client.clone(), env_name)
    }

    /// The large-message store; its keys are the bare tokens other services expect (SPEC §3).
    pub fn large_messages(&self) -> RedisLargeMessageStore {
        RedisLargeMessageStore::new(self.client.clone())
    }
}

/// A rustls connector trusting the system's roots and, when given, the certificates of
/// `ca_file`.
fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, RedisError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "a system certificate could not be read");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|error| RedisError::Tls(format!("cannot read {}: {error}", path.display())))?;
        if certificates.is_empty() {
            return Err(RedisError::Tls(format!(
                "{} holds no certificate",
                path.display()
            )));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|error| RedisError::Tls(format!("{}: {error}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| RedisError::Tls(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(config))
}

/// A failed command as the ports report it: `Unavailable`, naming what was being done.
pub(crate) fn unavailable(what: &str, error: &fred::error::Error) -> domain::ports::PortError {
    domain::ports::PortError::Unavailable(format!("Redis {what} failed: {error}"))
}

/// A duration in whole seconds for `EX`, rounded up and at least one.
pub(crate) fn whole_seconds(ttl: Duration) -> i64 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(seconds.max(1)).unwrap_or(i64::MAX)
}

/// A duration in whole milliseconds for `PX`, rounded up and at least one.
pub(crate) fn whole_millis(ttl: Duration) -> i64 {
    let millis = ttl.as_nanos().div_ceil(1_000_000).max(1);
    i64::try_from(millis).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_at_least_one_unit() {
        assert_eq!(whole_seconds(Duration::from_secs(300)), 300);
        assert_eq!(whole_seconds(Duration::from_millis(1_500)), 2);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_millis(Duration::from_secs(2)), 2_000);
        assert_eq!(whole_millis(Duration::from_micros(1_500)), 2);
        assert_eq!(whole_millis(Duration::ZERO), 1);
    }
}
