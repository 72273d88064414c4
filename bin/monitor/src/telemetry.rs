//! Logs (tracing) and metrics (Prometheus) set-up.

use std::sync::OnceLock;

use domain::telemetry::MetricKind;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::settings::values::LogFormat;

/// Logs to standard error, human-readable or JSON lines; `RUST_LOG` filters (default `info`).
/// Span fields (vendor, dispatch number, ticket id) appear on every line inside a span.
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
    // A second initialisation (tests) keeps the first subscriber.
    let _ = result;
}

/// Installs the global Prometheus recorder (once per process) and describes every metric of
/// the catalog; later calls return the same handle.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
        ])?
        .install_recorder()?;
    describe_metrics();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Summarises the histograms every `every` until `stop`: the recorder keeps every sample until
/// upkeep runs, so without it memory grows with each cycle until `/metrics` is scraped.
pub async fn keep_metrics_bounded(
    handle: PrometheusHandle,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => handle.run_upkeep(),
            () = stop.cancelled() => break,
        }
    }
}

/// A handle to a recorder that is not installed globally (tests).
pub fn detached_metrics() -> PrometheusHandle {
    PrometheusBuilder::new().build_recorder().handle()
}

fn describe_metrics() {
    for (name, kind, description) in domain::telemetry::CATALOG {
        match kind {
            MetricKind::Counter => metrics::describe_counter!(*name, *description),
            MetricKind::Histogram => metrics::describe_histogram!(*name, *description),
        }
    }
}
