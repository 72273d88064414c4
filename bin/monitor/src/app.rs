//! The service as a value, zero-to-production style: [`App::build`] connects, wires and binds
//! the HTTP listener; [`App::run_until`] runs every vendor's schedule and the HTTP server until
//! a shutdown future resolves, then drains in-flight dispatches and releases leases. Tests,
//! the simulator's stack and `main` all start the service through it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use domain::{CycleReport, Engine, Mode, VendorAdapter, VendorName};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::service::{self, LeasedCycle, Scheduler, VendorControl};
use crate::settings::Settings;
use crate::{api, http, plan, telemetry, wiring};

/// How long queued Slack alerts may take to go out when the process ends.
const ALERT_FLUSH: Duration = Duration::from_secs(5);
/// How often histograms are summarised, so memory stays flat whether or not `/metrics` is
/// scraped (SPEC §13.9).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// The running service's parts, wired and listening but not yet scheduling.
pub struct App {
    settings: Settings,
    infra: wiring::Infrastructure,
    engine: Arc<Engine>,
    planner: Arc<Engine>,
    listener: TcpListener,
    metrics: PrometheusHandle,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("address", &self.address())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Connects to NATS and Redis (both may still be down), builds the engine (templates are
    /// checked here) and binds the HTTP listener; port 0 takes any free port.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, wiring::vendor_adapters()).await
    }

    /// [`build`](Self::build) with the given vendors instead of the wired ones.
    pub async fn build_with(
        settings: Settings,
        adapters: Vec<Arc<dyn VendorAdapter>>,
    ) -> anyhow::Result<Self> {
        let metrics = telemetry::install_metrics()?;
        let infra = wiring::connect(&settings).await?;
        let engine = Arc::new(infra.engine(&settings, adapters.clone())?);
        let planner = Arc::new(wiring::build_engine_with(
            &settings,
            plan::read_only(infra.ports.clone()),
            adapters,
        )?);
        let address = SocketAddr::new(settings.http_address, settings.http_port);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        tracing::info!(address = %listener.local_addr()?, "HTTP listening");
        Ok(Self {
            settings,
            infra,
            engine,
            planner,
            listener,
            metrics,
        })
    }

    /// The address the HTTP server listens on.
    pub fn address(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The HTTP port (the one chosen, when 0 was asked for).
    pub fn port(&self) -> u16 {
        self.address().map_or(0, |address| address.port())
    }

    /// Runs the schedules and the HTTP server until `shutdown` resolves. Then no new cycle or
    /// dispatch starts, in-flight dispatches get the grace period, leases are released and
    /// queued alerts are flushed.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let settings = &self.settings;
        tracing::info!(
            environment = %settings.current_environment,
            registry_prefix = %settings.environment_name,
            "dispatch monitor starting"
        );
        let stop = CancellationToken::new();
        let probe = Arc::new(http::LiveProbe {
            nats: self.infra.nats.clone(),
            redis: self.infra.redis.clone(),
        });
        tokio::spawn(telemetry::keep_metrics_bounded(
            self.metrics.clone(),
            METRICS_UPKEEP,
            stop.clone(),
        ));
        let controls: Arc<Vec<Arc<VendorControl>>> = Arc::new(
            settings
                .vendors
                .iter()
                .map(|schedule| Arc::new(VendorControl::new(schedule)))
                .collect(),
        );
        let api = api::ApiState {
            journal: self.infra.journal.clone(),
            lease: self.infra.lease.clone(),
            controls: controls.clone(),
            planner: self.planner.clone(),
            token: settings.api_token.clone(),
            masker: api::Masker {
                show_phones: settings.api_show_phones,
            },
            safeguards: self.infra.safeguards.clone(),
            replica: wiring::replica_name(settings),
        };
        let router = http::router(probe, self.metrics.clone()).merge(api::router(api));
        let http_task = tokio::spawn(http::serve(
            self.listener,
            router,
            stop.clone().cancelled_owned(),
        ));
        let scheduler = Scheduler {
            engine: self.engine.clone(),
            lease: self.infra.lease.clone(),
            notifier: self.infra.notifier.clone(),
            held: Arc::default(),
            lease_ttl: settings.lease_ttl.0,
        };
        let mut schedules = JoinSet::new();
        for control in controls.iter().filter(|c| c.enabled).cloned() {
            tracing::info!(vendor = %control.name, interval_secs = control.interval.as_secs(), "vendor scheduled");
            let scheduler = scheduler.clone();
            let stop = stop.clone();
            schedules.spawn(async move { scheduler.run_vendor(control, stop).await });
        }

        shutdown.await;
        let grace = settings.shutdown_grace.0;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: no new cycles or dispatches"
        );
        stop.cancel();
        let drained = tokio::time::timeout(grace, async {
            while schedules.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("grace period over; abandoning in-flight dispatches");
            schedules.abort_all();
        }
        scheduler.held.release_all(scheduler.lease.as_ref()).await;
        self.infra.flush(ALERT_FLUSH).await;
        if let Ok(Err(error)) = http_task.await {
            tracing::warn!(%error, "the HTTP server stopped with an error");
        }
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
