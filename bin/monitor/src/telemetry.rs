//! Logs (tracing) and metrics (Prometheus) set-up.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::sync::{LazyLock, Mutex};

use domain::telemetry::MetricKind;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use regex::Regex;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::api::mask_phones;
use crate::settings::values::LogFormat;

/// The log filter: `RUST_LOG` (default `info`). The NATS client's own lines below warnings
/// are left out unless `RUST_LOG` names it: they repeat, without the URL or the cause, what
/// `infra_nats` logs of each connection event.
fn log_filter(rust_log: Option<&str>) -> EnvFilter {
    let wanted = rust_log
        .filter(|text| !text.trim().is_empty())
        .unwrap_or("info");
    let filter = EnvFilter::try_new(wanted).unwrap_or_else(|_| EnvFilter::new("info"));
    if wanted.contains("async_nats") {
        return filter;
    }
    match "async_nats=warn".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    }
}

/// Logs to standard error, human-readable or JSON lines; `RUST_LOG` filters (default `info`).
/// Span fields (vendor, dispatch number, ticket id) appear on every line inside a span. Every
/// line, a client library's included, has URL credentials hidden and, unless `show_phones`,
/// phone numbers masked to their last 4 digits (SPEC §18.4). Text lines are coloured only
/// when standard error is a terminal and `NO_COLOR` is not set.
pub fn init_logs(format: LogFormat, show_phones: bool) {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(MaskedStderr { show_phones });
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

/// A URL's `user:password@` (up to its last `@` before a space, `/` or quote).
static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\b([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#"']*@"#).expect("a valid pattern")
});

/// A parsed URL's password as `Debug` prints it: `password: Some("…")`.
static DEBUG_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(password: Some\()(\\?")(.*?)(\\?"\))"#).expect("a valid pattern")
});

/// `text` as it may be logged: credentials hidden, phones masked unless `show_phones`.
pub fn mask_log_text(text: &str, show_phones: bool) -> String {
    let text = URL_CREDENTIALS.replace_all(text, "$1***@");
    let text = DEBUG_PASSWORD.replace_all(&text, "$1$2***$4");
    if show_phones {
        text.into_owned()
    } else {
        mask_phones(&text)
    }
}

/// Standard error, one masked log line at a time.
#[derive(Debug, Clone, Copy)]
struct MaskedStderr {
    show_phones: bool,
}

impl<'a> MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedLine;

    fn make_writer(&'a self) -> MaskedLine {
        MaskedLine {
            line: Vec::new(),
            show_phones: self.show_phones,
        }
    }
}

/// One log line, collected whole and written masked when dropped (the formatter drops its
/// writer after each line).
struct MaskedLine {
    line: Vec<u8>,
    show_phones: bool,
}

impl Write for MaskedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MaskedLine {
    fn drop(&mut self) {
        let masked = mask_log_text(&String::from_utf8_lossy(&self.line), self.show_phones);
        let _ = std::io::stderr().lock().write_all(masked.as_bytes());
    }
}

/// Whether text logs get ANSI colour: only on a terminal, and never when `NO_COLOR` is set to
/// anything but the empty string (<https://no-color.org>).
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Installs the global Prometheus recorder (once per process) and describes every metric of
/// the catalog; later calls return the same handle.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    // Held while installing, so concurrent callers (apps built at once in tests) install once.
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut installed = HANDLE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
        ])?
        .install_recorder()?;
    describe_metrics();
    Ok(installed.insert(handle).clone())
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

    use super::*;

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

    #[test]
    fn log_lines_hide_credentials_and_mask_phones_unless_shown() {
        for (line, masked) in [
            (
                "server=ServerAddr(nats://monitor:Pw@Alpha:Bravo@127.0.0.1:4222) attempt",
                "server=ServerAddr(nats://***@127.0.0.1:4222) attempt",
            ),
            (
                r#"{"server":"redis://:Pw,Alpha@r:6379/0","to":"ops@example.com"}"#,
                r#"{"server":"redis://***@r:6379/0","to":"ops@example.com"}"#,
            ),
            (
                r#"Url { scheme: "nats", username: "m", password: Some("Pw\"Alpha"), host: None }"#,
                r#"Url { scheme: "nats", username: "m", password: Some("***"), host: None }"#,
            ),
            (
                r#"{"fields":{"message":"x password: Some(\"PwAlpha\")"}}"#,
                r#"{"fields":{"message":"x password: Some(\"***\")"}}"#,
            ),
            (
                "INFO SMS sent action=tech_reminder_2h to=+12123595129",
                "INFO SMS sent action=tech_reminder_2h to=+1******5129",
            ),
            (
                r#"{"detail":"rejected 12123595129","to":"(212) 359-5129"}"#,
                r#"{"detail":"rejected *******5129","to":"(***) ***-5129"}"#,
            ),
        ] {
            assert_eq!(mask_log_text(line, false), masked, "{line}");
        }
        assert_eq!(
            mask_log_text("SMS sent to=+12123595129 nats://u:p@h:1", true),
            "SMS sent to=+12123595129 nats://***@h:1"
        );
    }

    #[test]
    fn a_line_is_written_whole_when_the_formatter_drops_its_writer() {
        let writer = MaskedStderr { show_phones: false };
        let mut line = writer.make_writer();
        line.write_all(b"SMS sent to=+1212").unwrap();
        line.write_all(b"3595129\n").unwrap();
        assert_eq!(
            mask_log_text(&String::from_utf8_lossy(&line.line), false),
            "SMS sent to=+1******5129\n"
        );
    }
}
