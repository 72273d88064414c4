//! Wiring: which vendors exist, and how the ports are built over NATS and Redis.
//! Adding a vendor is one line in [`vendor_adapters`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use async_trait::async_trait;
use domain::PhoneE164;
use domain::ports::{Email, Notifier, PortError, VendorLease};
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
    /// The queue Slack alerts go through.
    pub alerts: Arc<AlertQueue>,
}

impl Infrastructure {
    /// Waits (at most `limit`) until queued Slack alerts are posted; call before exiting.
    pub async fn flush_alerts(&self, limit: Duration) {
        self.alerts.flush(limit).await;
    }
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
    // The client connects in the background; give it a moment so the first cycle does not
    // fail on a connection that is still being made.
    let limit = settings.request_timeout.min(Duration::from_secs(10));
    if !nats.wait_until_connected(limit).await {
        tracing::warn!("NATS is not reachable yet; requests fail fast until it is");
    }
    let alerts = AlertQueue::spawn(Arc::new(nats.notifier()));
    let notifier: Arc<dyn Notifier> = alerts.clone();
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
        alerts,
    })
}

/// A notifier whose Slack alerts are posted by a background task, in order, so a slow Slack
/// bridge never holds up a dispatch (SPEC §7.5). SMS and email pass straight through.
pub struct AlertQueue {
    inner: Arc<dyn Notifier>,
    queue: tokio::sync::mpsc::Sender<String>,
    pending: Arc<AtomicUsize>,
}

impl std::fmt::Debug for AlertQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertQueue")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// Alerts waiting beyond this many are dropped (and logged).
const ALERT_QUEUE_CAPACITY: usize = 1024;

impl AlertQueue {
    /// Starts the background poster; needs a running tokio runtime.
    pub fn spawn(inner: Arc<dyn Notifier>) -> Arc<Self> {
        let (queue, mut lines) = tokio::sync::mpsc::channel::<String>(ALERT_QUEUE_CAPACITY);
        let pending = Arc::new(AtomicUsize::new(0));
        let poster = inner.clone();
        let done = pending.clone();
        tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                if let Err(error) = poster.post_slack(&line).await {
                    metrics::counter!("dispatch_monitor_alert_failures_total").increment(1);
                    tracing::warn!(%error, alert = %line, "could not post the Slack alert");
                }
                done.fetch_sub(1, Ordering::SeqCst);
            }
        });
        Arc::new(Self {
            inner,
            queue,
            pending,
        })
    }

    /// Waits until every queued alert is posted, or `limit` passes.
    pub async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[async_trait]
impl Notifier for AlertQueue {
    async fn send_sms(&self, to: &PhoneE164, text: &str) -> Result<(), PortError> {
        self.inner.send_sms(to, text).await
    }

    async fn post_slack(&self, message: &str) -> Result<(), PortError> {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.queue.try_send(message.to_owned()).map_err(|_| {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            PortError::Unavailable("the alert queue is full".into())
        })
    }

    async fn send_email(&self, email: &Email) -> Result<(), PortError> {
        self.inner.send_email(email).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    /// A Slack bridge that never answers.
    struct HangingSlack;

    #[async_trait]
    impl Notifier for HangingSlack {
        async fn send_sms(&self, _: &PhoneE164, _: &str) -> Result<(), PortError> {
            Ok(())
        }
        async fn post_slack(&self, _: &str) -> Result<(), PortError> {
            std::future::pending().await
        }
        async fn send_email(&self, _: &Email) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_hanging_slack_bridge_never_holds_up_an_alert() {
        let queue = AlertQueue::spawn(Arc::new(HangingSlack));
        for _ in 0..3 {
            let posted = queue
                .post_slack("[dispatch-monitor] [LIT] line")
                .now_or_never();
            assert_eq!(posted, Some(Ok(())), "posting an alert returns at once");
        }
        // The queue is bounded: past its capacity alerts are refused, not waited for.
        let mut refused = 0;
        for _ in 0..ALERT_QUEUE_CAPACITY + 10 {
            if let Some(Err(_)) = queue.post_slack("line").now_or_never() {
                refused += 1;
            }
        }
        assert!(refused > 0);
    }

    #[test]
    fn the_wired_vendors_are_lit_and_cts() {
        let names: Vec<String> = vendor_names().iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["LIT", "CTS"]);
    }
}
