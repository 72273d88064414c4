//! Wiring: which vendors exist, and how the ports are built over NATS and Redis.
//! Adding a vendor is one line in [`vendor_adapters`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::ports::{Notifier, VendorLease};
use domain::rules::RuleSettings;
use domain::{Engine, EngineSettings, Ports, VendorAdapter, VendorName};
use infra_nats::NatsClient;
use infra_redis::RedisConnection;

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
        rules: RuleSettings {
            reminder_hours: settings.reminder_hours.clone(),
            completed_notes: settings.completed_notes,
            cancel_email_recipients: settings.cancel_email_recipients.clone(),
        },
        alert_level: settings.alert_level,
    }
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
    let mut engine = Engine::new(ports, engine_settings(settings));
    for adapter in vendor_adapters() {
        let name = adapter.name().clone();
        let overrides = template_overrides(settings.templates_dir.as_deref(), &name)?;
        engine = engine
            .with_vendor(adapter, &overrides)
            .with_context(|| format!("templates of {name}"))?;
    }
    Ok(engine)
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
}

impl std::fmt::Debug for Infrastructure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Infrastructure").finish_non_exhaustive()
    }
}

/// Connects to NATS and Redis. Neither has to be up yet: both reconnect by themselves, and
/// requests fail fast until they are.
pub async fn connect(settings: &Settings) -> anyhow::Result<Infrastructure> {
    let redis = RedisConnection::connect(&settings.redis_url, Duration::from_secs(2))
        .await
        .context("cannot set up the Redis client")?;
    let store = Arc::new(redis.large_messages());
    let nats = NatsClient::connect(&settings.nats_url, settings.request_timeout, store)
        .await
        .context("cannot set up the NATS client")?;
    let notifier: Arc<dyn Notifier> = Arc::new(nats.notifier());
    let ports = Ports {
        source: Arc::new(nats.dispatch_source()),
        tickets: Arc::new(nats.tickets()),
        notifier: notifier.clone(),
        registry: Arc::new(redis.registry(&settings.environment_name)),
        ledger: Arc::new(redis.ledger(&settings.environment_name)),
        clock: Arc::new(domain::ports::SystemClock),
    };
    let lease: Arc<dyn VendorLease> = Arc::new(redis.lease(&settings.environment_name));
    Ok(Infrastructure {
        nats,
        redis,
        ports,
        lease,
        notifier,
    })
}
