//! Logs (tracing) and metrics (Prometheus) set-up.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::OnceLock;

use domain::telemetry::MetricKind;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::settings::values::LogFormat;

/// Logs to standard error, human-readable or JSON lines; `RUST_LOG` filters (default `info`).
/// Span fields (vendor, dispatch number, ticket id) appear on every line inside a span. Text
/// lines are coloured only when standard error is a terminal and `NO_COLOR` is not set.
pub fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
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

/// Whether text logs get ANSI colour: only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
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
            MetricKind::Gauge => metrics::describe_gauge!(*name, *description),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::use_colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases: &[(bool, Option<&str>, bool)] = &[
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (true, Some("0"), false),
            (false, None, false),
            (false, Some("1"), false),
        ];
        for &(terminal, no_color, expected) in cases {
            assert_eq!(
                use_colour(terminal, no_color.map(OsStr::new)),
                expected,
                "terminal {terminal}, NO_COLOR {no_color:?}"
            );
        }
    }
}
