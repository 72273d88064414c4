//! The service as a value, zero-to-production style: [`App::build`] binds the HTTP listener,
//! serves it, connects and wires; [`App::run_until`] runs every vendor's schedule until
//! a shutdown future resolves, then drains in-flight dispatches and releases leases. Tests,
//! the simulator's stack and `main` all start the service through it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::{CycleReport, Engine, Mode, VendorAdapter, VendorName};
use infra_redis::RedisConnection;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::service::{self, LeasedCycle, Scheduler, VendorControl};
use crate::settings::Settings;
use crate::{api, http, plan, telemetry, wiring};

/// How long queued Slack alerts and journal writes may take to go out when the process ends
/// (at most; within the grace period when the service stops).
const ALERT_FLUSH: Duration = Duration::from_secs(5);
/// How often histograms are summarised, so memory stays flat whether or not `/metrics` is
/// scraped (SPEC §13.9).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The running service's parts, wired and serving HTTP but not yet scheduling.
pub struct App {
    settings: Settings,
    infra: wiring::Infrastructure,
    engine: Arc<Engine>,
    controls: Arc<Vec<Arc<VendorControl>>>,
    address: SocketAddr,
    metrics: PrometheusHandle,
    http: JoinHandle<std::io::Result<()>>,
    /// Stops the HTTP server (and, once running, everything else); dropping the app stops it.
    stop: DropGuard,
    /// What the HTTP server and the API's Redis client run on; dropped last.
    _http_runtime: http::HttpRuntime,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Binds the HTTP listener (port 0 takes any free port), creates the NATS and Redis
    /// clients, builds the engine (templates are checked here) and starts serving HTTP on its
    /// own runtime ([`http::HttpRuntime`]), then gives the connections a moment. While they
    /// are being made `/_health` answers 503 naming the dependency that is not up yet, and the
    /// API answers as during an outage.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, wiring::vendor_adapters()).await
    }

    /// [`build`](Self::build) with the given vendors instead of the wired ones.
    pub async fn build_with(
        settings: Settings,
        adapters: Vec<Arc<dyn VendorAdapter>>,
    ) -> anyhow::Result<Self> {
        let metrics = telemetry::install_metrics()?;
        let http_runtime = http::HttpRuntime::start().context("cannot start the HTTP runtime")?;
        let address = SocketAddr::new(settings.http_address, settings.http_port);
        let listener = http_runtime
            .handle()
            .spawn(TcpListener::bind(address))
            .await
            .context("the HTTP runtime stopped")?
            .with_context(|| format!("cannot listen on {address}"))?;
        let address = listener.local_addr()?;
        let infra = wiring::start(&settings).await?;
        let api_redis = {
            let _on_http_runtime = http_runtime.handle().enter();
            wiring::api_redis(&settings)?
        };
        let engine = Arc::new(infra.engine(&settings, adapters.clone())?);
        let planner = Arc::new(wiring::build_engine_with(
            &settings,
            plan::read_only(infra.ports.clone()),
            adapters,
        )?);
        let controls: Arc<Vec<Arc<VendorControl>>> = Arc::new(
            settings
                .vendors
                .iter()
                .map(|schedule| Arc::new(VendorControl::new(schedule)))
                .collect(),
        );
        let router = routes(&settings, &infra, &api_redis, &metrics, &controls, planner);
        // Dropped before the app is made (a signal during start-up), this stops the server.
        let token = CancellationToken::new();
        let stop = token.clone().drop_guard();
        let served = http::serve(listener, router, token.cancelled_owned());
        let http = http_runtime.handle().spawn(served);
        tracing::info!(%address, "HTTP listening");
        infra.wait_until_connected(settings.request_timeout.0).await;
        Ok(Self {
            settings,
            infra,
            engine,
            controls,
            address,
            metrics,
            http,
            stop,
            _http_runtime: http_runtime,
        })
    }

    /// The address the HTTP server listens on.
    pub fn address(&self) -> Option<SocketAddr> {
        Some(self.address)
    }

    /// The HTTP port (the one chosen, when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Runs the schedules (the HTTP server already runs) until `shutdown` resolves. Then no
    /// new cycle or dispatch starts, and the service stops within the grace period (SPEC
    /// §18.6): in-flight dispatches, lease release, the alert and journal flush and HTTP
    /// requests in flight share it; what is not done by then is abandoned.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let settings = &self.settings;
        tracing::info!(
            environment = %settings.current_environment,
            registry_prefix = %settings.environment_name,
            "dispatch monitor starting"
        );
        let stop = self.stop.disarm();
        tokio::spawn(telemetry::keep_metrics_bounded(
            self.metrics.clone(),
            METRICS_UPKEEP,
            stop.clone(),
        ));
        let scheduler = Scheduler {
            engine: self.engine.clone(),
            lease: self.infra.lease.clone(),
            notifier: self.infra.notifier.clone(),
            held: Arc::default(),
            lease_ttl: settings.lease_ttl.0,
        };
        let running = Running::start(scheduler, &self.controls, stop, self.http);

        shutdown.await;
        running
            .stop_within(settings.shutdown_grace.0, &self.infra)
            .await;
        tracing::info!("dispatch monitor stopped");
        Ok(())
    }

    /// Runs the app on the current runtime until the returned handle stops it.
    pub fn spawn(self) -> RunningApp {
        let port = self.port();
        let stop = CancellationToken::new();
        let task = tokio::spawn(self.run_until(stop.clone().cancelled_owned()));
        RunningApp { port, stop, task }
    }
}

/// Every route: health and metrics over the live connections, and the operator API, which
/// reads Redis through `api_redis`.
fn routes(
    settings: &Settings,
    infra: &wiring::Infrastructure,
    api_redis: &RedisConnection,
    metrics: &PrometheusHandle,
    controls: &Arc<Vec<Arc<VendorControl>>>,
    planner: Arc<Engine>,
) -> axum::Router {
    let probe = Arc::new(http::LiveProbe {
        nats: infra.nats.clone(),
        redis: infra.redis.clone(),
    });
    let masker = api::Masker {
        show_phones: settings.api_show_phones,
    };
    let journal = Arc::new(infra.journal.reading_through(api_redis));
    let dispatch_lists = api::DispatchLists::new(
        journal.clone(),
        journal.cycles_stored(),
        masker,
        api::LIST_REUSE,
    );
    let environment = &settings.environment_name;
    let replica = wiring::replica_name(settings);
    let api = api::ApiState {
        journal,
        lease: Arc::new(api_redis.lease(environment).with_replica(&replica)),
        controls: controls.clone(),
        planner,
        plans: Arc::default(),
        dispatch_lists: Arc::new(dispatch_lists),
        token: settings.api_token.clone(),
        masker,
        safeguards: Arc::new(api_redis.safeguards(environment)),
        replica,
    };
    http::router(probe, metrics.clone()).merge(api::router(api))
}

/// What runs once the service has started, until it is stopped.
struct Running {
    stop: CancellationToken,
    schedules: JoinSet<()>,
    scheduler: Scheduler,
    http: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Starts every enabled vendor's schedule.
    fn start(
        scheduler: Scheduler,
        controls: &[Arc<VendorControl>],
        stop: CancellationToken,
        http: JoinHandle<std::io::Result<()>>,
    ) -> Self {
        let mut schedules = JoinSet::new();
        for control in controls.iter().filter(|c| c.enabled).cloned() {
            tracing::info!(vendor = %control.name, interval_secs = control.interval.as_secs(), "vendor scheduled");
            let scheduler = scheduler.clone();
            let stop = stop.clone();
            schedules.spawn(async move { scheduler.run_vendor(control, stop).await });
        }
        Self {
            stop,
            schedules,
            scheduler,
            http,
        }
    }

    /// Starts no new cycle or dispatch, then within `grace` (SPEC §18.6): in-flight dispatches
    /// finish (the grace less [`flush_reserve`]), leases are released, queued alerts and
    /// journal writes flushed and HTTP requests in flight answered; the rest is abandoned.
    async fn stop_within(mut self, grace: Duration, infra: &wiring::Infrastructure) {
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: no new cycles or dispatches"
        );
        self.stop.cancel();
        let deadline = Instant::now() + grace;
        drain(&mut self.schedules, deadline - flush_reserve(grace)).await;
        let left = || deadline.saturating_duration_since(Instant::now());
        let release = self
            .scheduler
            .held
            .release_all(self.scheduler.lease.as_ref());
        if tokio::time::timeout(left(), release).await.is_err() {
            tracing::warn!("grace period over; leases not released expire by themselves");
        }
        infra.flush(left()).await;
        stop_http(self.http, left()).await;
    }
}

/// The part of the grace period kept for releasing leases and flushing the journal and
/// alerts: half of it, at most 5 s. In-flight dispatches get the rest.
fn flush_reserve(grace: Duration) -> Duration {
    (grace / 2).min(ALERT_FLUSH)
}

/// Lets the schedules' in-flight dispatches finish until `until`, then abandons them.
async fn drain(schedules: &mut JoinSet<()>, until: Instant) {
    let drained = tokio::time::timeout_at(until, async {
        while schedules.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("grace period over; abandoning in-flight dispatches");
        schedules.abort_all();
    }
}

/// Waits at most `limit` for HTTP requests in flight (a `/plan` may take a while), then
/// abandons them.
async fn stop_http(mut server: JoinHandle<std::io::Result<()>>, limit: Duration) {
    match tokio::time::timeout(limit, &mut server).await {
        Ok(Ok(Err(error))) => tracing::warn!(%error, "the HTTP server stopped with an error"),
        Ok(_) => {}
        Err(_) => {
            tracing::warn!("grace period over; abandoning HTTP requests in flight");
            server.abort();
        }
    }
}

/// An app running in the background (tests, benchmarks, the local stack).
#[derive(Debug)]
pub struct RunningApp {
    /// Its HTTP port.
    pub port: u16,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    /// Shuts the app down as SIGTERM would and waits until it has stopped.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await.context("the app task panicked")?
    }
}

/// `once`: one leased cycle per vendor over fresh connections, then alerts flushed.
pub async fn once(settings: &Settings, vendors: &[VendorName]) -> anyhow::Result<Vec<LeasedCycle>> {
    once_with(settings, wiring::vendor_adapters(), vendors).await
}

/// [`once`] with the given vendors wired instead of the usual ones.
pub async fn once_with(
    settings: &Settings,
    adapters: Vec<Arc<dyn VendorAdapter>>,
    vendors: &[VendorName],
) -> anyhow::Result<Vec<LeasedCycle>> {
    let infra = wiring::connect(settings).await?;
    let engine = infra.engine(settings, adapters)?;
    let outcomes =
        service::run_once(&engine, infra.lease.as_ref(), settings.lease_ttl.0, vendors).await;
    infra.flush(ALERT_FLUSH * 2).await;
    Ok(outcomes)
}

/// `plan`: dry-run cycles over read-only ports; the flag is set when a vendor's list failed.
pub async fn plan(
    settings: &Settings,
    vendors: &[VendorName],
) -> anyhow::Result<(Vec<CycleReport>, bool)> {
    plan_with(settings, wiring::vendor_adapters(), vendors).await
}

/// [`plan`] as at the instant `at` (now when `None`) on today's vendor data and notes
/// (`plan --at`, SPEC §17.4).
pub async fn plan_at(
    settings: &Settings,
    vendors: &[VendorName],
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<(Vec<CycleReport>, bool)> {
    plan_with_at(settings, wiring::vendor_adapters(), vendors, at).await
}

/// [`plan`] with the given vendors wired instead of the usual ones.
pub async fn plan_with(
    settings: &Settings,
    adapters: Vec<Arc<dyn VendorAdapter>>,
    vendors: &[VendorName],
) -> anyhow::Result<(Vec<CycleReport>, bool)> {
    plan_with_at(settings, adapters, vendors, None).await
}

/// [`plan_with`] as at the instant `at` (now when `None`).
pub async fn plan_with_at(
    settings: &Settings,
    adapters: Vec<Arc<dyn VendorAdapter>>,
    vendors: &[VendorName],
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<(Vec<CycleReport>, bool)> {
    let infra = wiring::connect(settings).await?;
    let mut ports = plan::read_only(infra.ports.clone());
    if let Some(at) = at {
        ports.clock = Arc::new(domain::memory::ManualClock::new(at));
    }
    let engine = wiring::build_engine_with(settings, ports, adapters)?;
    let mut reports = Vec::new();
    let mut failed = false;
    for vendor in vendors {
        match engine.run_cycle(vendor, Mode::DryRun).await {
            Ok(report) => reports.push(report),
            Err(error) => {
                eprintln!("dispatch-monitor: {vendor}: {error}");
                failed = true;
            }
        }
    }
    Ok((reports, failed))
}
