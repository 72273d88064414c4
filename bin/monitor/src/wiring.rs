//! Wiring: which vendors exist, and how the ports are built over NATS and Redis.
//! Adding a vendor is one line in [`vendor_adapters`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::journal::Journal;
use domain::ports::{Notifier, VendorLease};
use domain::{Engine, EngineSettings, Ports, VendorAdapter, VendorName};
use infra_nats::NatsClient;
use infra_redis::{DEFAULT_COMMAND_TIMEOUT, RedisConnection, RedisJournal, RedisSafeguards};

use crate::alert_queue::{AlertQueue, OutcomeJournal};
use crate::settings::Settings;

/// Every vendor the monitor knows, in schedule order. A new vendor is one more line here.
pub fn vendor_adapters() -> Vec<Arc<dyn VendorAdapter>> {
    vec![
        Arc::new(vendor_lit::LitAdapter::new()),
        Arc::new(vendor_cts::CtsAdapter::new()),
    ]
}

/// The names of [`vendor_adapters`].
pub fn vendor_names() -> Vec<VendorName> {
    vendor_adapters()
        .iter()
        .map(|adapter| adapter.name().clone())
        .collect()
}

/// Engine settings from the service settings.
pub fn engine_settings(settings: &Settings) -> EngineSettings {
    EngineSettings {
        concurrency: settings.concurrency,
        rules: settings.rule_settings(),
        alert_level: settings.alert_level,
        environment: settings.environment_name.clone(),
        claim_ttl: EngineSettings::claim_ttl_for(settings.request_timeout.0),
        replica: replica_name(settings),
    }
}

/// This replica's name in the journal and on the leases it holds: `MONITOR_REPLICA_NAME`, or
/// `host:pid`.
pub fn replica_name(settings: &Settings) -> String {
    if let Some(name) = &settings.replica_name {
        return name.clone();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Reads operator template overrides: `<dir>/common/<name>.hbs` for every vendor, then
/// `<dir>/<vendor>/<name>.hbs` for one vendor.
pub fn template_overrides(
    dir: Option<&Path>,
    vendor: &VendorName,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut overrides = BTreeMap::new();
    let Some(dir) = dir else {
        return Ok(overrides);
    };
    for folder in [dir.join("common"), dir.join(vendor.lower())] {
        if !folder.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&folder)
            .with_context(|| format!("cannot read {}", folder.display()))?
        {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("hbs") {
                continue;
            }
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            overrides.insert(name, text);
        }
    }
    Ok(overrides)
}

/// Builds the engine with every wired vendor; templates are checked here.
pub fn build_engine(settings: &Settings, ports: Ports) -> anyhow::Result<Engine> {
    build_engine_with(settings, ports, vendor_adapters())
}

/// Builds the engine with the given vendors (tests wire a throwaway one this way).
pub fn build_engine_with(
    settings: &Settings,
    ports: Ports,
    adapters: Vec<Arc<dyn VendorAdapter>>,
) -> anyhow::Result<Engine> {
    let mut engine = Engine::new(ports, engine_settings(settings))
        .with_common_templates(dispatch_templates::COMMON);
    let dir = settings.templates_dir.as_ref().map(|dir| dir.0.as_path());
    for adapter in adapters {
        let name = adapter.name().clone();
        let overrides = template_overrides(dir, &name)?;
        engine = engine
            .with_vendor(adapter, &overrides)
            .with_context(|| format!("templates of {name}"))?;
    }
    Ok(engine)
}

/// Checks the templates (built in and overridden) without connecting to anything.
pub fn check_templates(settings: &Settings) -> anyhow::Result<()> {
    let clock = Arc::new(domain::memory::ManualClock::new(chrono::Utc::now()));
    let offline = domain::memory::MemoryWorld::new(clock).ports();
    build_engine(settings, offline).map(drop)
}

/// The live connections and the ports over them.
#[derive(Clone)]
pub struct Infrastructure {
    /// The NATS client.
    pub nats: NatsClient,
    /// The Redis connection.
    pub redis: RedisConnection,
    /// The engine's ports.
    pub ports: Ports,
    /// Vendor leases.
    pub lease: Arc<dyn VendorLease>,
    /// The notifier, for vendor-level alerts outside cycles.
    pub notifier: Arc<dyn Notifier>,
    /// The queue Slack alerts go through.
    pub alerts: Arc<AlertQueue>,
    /// The operator journal (SPEC §14).
    pub journal: Arc<RedisJournal>,
    /// Opt-outs, pauses and the daily cap (SPEC §17), for the engine, the CLI and the API.
    pub safeguards: Arc<RedisSafeguards>,
}

impl Infrastructure {
    /// Waits (at most `limit` in all) until queued Slack alerts are posted and journal writes
    /// made, the alerts first: their outcomes are journal writes too (SPEC §18.5). Call before
    /// exiting.
    pub async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        self.alerts.flush(limit).await;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        self.journal.flush(left).await;
    }

    /// Gives both clients, connecting at the same time, a moment (at most `request_timeout`
    /// and 10 s), so the first cycle does not fail on a connection still being made.
    pub async fn wait_until_connected(&self, request_timeout: Duration) {
        let limit = request_timeout.min(Duration::from_secs(10));
        tracing::info!(wait_secs = limit.as_secs(), "connecting to NATS and Redis");
        let (_, nats_up) = tokio::join!(
            self.redis
                .wait_until_connected(self.redis.command_timeout()),
            self.nats.wait_until_connected(limit)
        );
        if !nats_up {
            tracing::warn!("NATS is not reachable yet; requests fail fast until it is");
        }
    }

    /// The engine over these ports with `adapters`, journaling what it does.
    pub fn engine(
        &self,
        settings: &Settings,
        adapters: Vec<Arc<dyn VendorAdapter>>,
    ) -> anyhow::Result<Engine> {
        let journal: Arc<dyn Journal> = self.journal.clone();
        Ok(build_engine_with(settings, self.ports.clone(), adapters)?
            .with_journal(journal)
            .with_alert_outbox(self.alerts.clone()))
    }
}

impl std::fmt::Debug for Infrastructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Infrastructure").finish_non_exhaustive()
    }
}

/// Connects to NATS and Redis and waits a moment for both (see
/// [`Infrastructure::wait_until_connected`]). Neither has to be up yet: both reconnect by
/// themselves, and requests fail fast until they are.
pub async fn connect(settings: &Settings) -> anyhow::Result<Infrastructure> {
    let infra = start(settings).await?;
    infra.wait_until_connected(settings.request_timeout.0).await;
    Ok(infra)
}

/// The operator API's own Redis connection, so that its reads never queue ahead of a cycle's
/// commands; it connects in the background on the current runtime.
pub fn api_redis(settings: &Settings) -> anyhow::Result<RedisConnection> {
    let ca_file = settings.tls_ca_file.as_ref().map(|file| file.0.as_path());
    let redis_url = settings.redis_url().expose();
    RedisConnection::start_with(redis_url, DEFAULT_COMMAND_TIMEOUT, ca_file)
        .context("cannot set up the API's Redis client")
}

/// Creates the NATS and Redis clients and the ports over them at once; both connect in the
/// background.
pub async fn start(settings: &Settings) -> anyhow::Result<Infrastructure> {
    let ca_file = settings.tls_ca_file.as_ref().map(|file| file.0.as_path());
    let redis_url = settings.redis_url().expose();
    let redis = RedisConnection::start_with(redis_url, DEFAULT_COMMAND_TIMEOUT, ca_file)
        .context("cannot set up the Redis client")?;
    let store = Arc::new(redis.large_messages());
    let request_timeout = settings.request_timeout.0;
    let nats_url = settings.nats_urls.0.expose();
    let nats = NatsClient::connect_with(nats_url, request_timeout, store, ca_file)
        .await
        .context("cannot set up the NATS client")?;
    let journal = Arc::new(redis.journal(&settings.environment_name));
    let outcomes = OutcomeJournal {
        journal: journal.clone(),
        replica: replica_name(settings),
    };
    let alerts = AlertQueue::spawn_with(Arc::new(nats.notifier()), Some(outcomes));
    let notifier: Arc<dyn Notifier> = alerts.clone();
    let environment = &settings.environment_name;
    let safeguards = Arc::new(redis.safeguards(environment));
    let ports = Ports {
        source: Arc::new(nats.dispatch_source()),
        tickets: Arc::new(nats.tickets()),
        notifier: notifier.clone(),
        registry: Arc::new(redis.registry(environment)),
        ledger: Arc::new(redis.ledger(environment)),
        safeguards: safeguards.clone(),
        clock: Arc::new(domain::ports::SystemClock),
    };
    let lease: Arc<dyn VendorLease> = Arc::new(
        redis
            .lease(environment)
            .with_replica(&replica_name(settings)),
    );
    Ok(Infrastructure {
        nats,
        redis,
        ports,
        lease,
        notifier,
        alerts,
        journal,
        safeguards,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wired_vendors_include_lit_and_cts_in_schedule_order() {
        let names: Vec<String> = vendor_names().iter().map(|n| n.to_string()).collect();
        assert_eq!(names[..2], ["LIT", "CTS"]);
    }
}
