//! Logs (tracing) and metrics (Prometheus) set-up.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

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

/// Installs the global Prometheus recorder and describes the metrics.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
        ])?
        .install_recorder()?;
    describe_metrics();
    Ok(handle)
}

/// A handle to a recorder that is not installed globally (tests).
pub fn detached_metrics() -> PrometheusHandle {
    PrometheusBuilder::new().build_recorder().handle()
}

fn describe_metrics() {
    use metrics::{describe_counter, describe_histogram};
    describe_histogram!(
        "dispatch_monitor_cycle_duration_seconds",
        "Vendor cycle duration."
    );
    describe_counter!("dispatch_monitor_cycles_total", "Vendor cycles by outcome.");
    describe_counter!(
        "dispatch_monitor_dispatches_seen_total",
        "Dispatches seen per vendor and general status."
    );
    describe_counter!(
        "dispatch_monitor_sms_total",
        "SMS sent, failed or deduplicated."
    );
    describe_counter!(
        "dispatch_monitor_notes_total",
        "Ticket notes appended or failed."
    );
    describe_counter!("dispatch_monitor_alerts_total", "Slack alert lines posted.");
    describe_counter!(
        "dispatch_monitor_alert_failures_total",
        "Slack alert lines that failed."
    );
    describe_histogram!(
        "dispatch_monitor_rpc_duration_seconds",
        "NATS request latency per subject."
    );
    describe_counter!(
        "dispatch_monitor_rpc_failures_total",
        "NATS request failures per subject."
    );
}
