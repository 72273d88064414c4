//! Every metric the monitor records: its name, kind and meaning, in one place. The recorder
//! (in the binary) describes them from [`CATALOG`]; the code that counts uses the names.

/// Vendor cycle duration (histogram; `vendor`, `outcome`).
pub const CYCLE_DURATION: &str = "dispatch_monitor_cycle_duration_seconds";
/// Scheduled cycles (`vendor`, `outcome`).
pub const CYCLES: &str = "dispatch_monitor_cycles_total";
/// Dispatches seen (`vendor`, `status`).
pub const DISPATCHES_SEEN: &str = "dispatch_monitor_dispatches_seen_total";
/// SMS outcomes (`vendor`, `outcome`).
pub const SMS: &str = "dispatch_monitor_sms_total";
/// Note outcomes (`vendor`, `outcome`).
pub const NOTES: &str = "dispatch_monitor_notes_total";
/// Slack alert lines posted.
pub const ALERTS: &str = "dispatch_monitor_alerts_total";
/// Slack alert lines that failed.
pub const ALERT_FAILURES: &str = "dispatch_monitor_alert_failures_total";
/// Journal writes that failed or were dropped (SPEC §14).
pub const JOURNAL_FAILURES: &str = "dispatch_monitor_journal_failures_total";
/// NATS request latency (histogram; `subject`).
pub const RPC_DURATION: &str = "dispatch_monitor_rpc_duration_seconds";
/// NATS request failures (`subject`, `reason`).
pub const RPC_FAILURES: &str = "dispatch_monitor_rpc_failures_total";
/// Whether a dependency's client is connected, 1 or 0 (gauge; `dependency`: `nats`, `redis`).
pub const DEPENDENCY_UP: &str = "dispatch_monitor_dependency_up";
/// A vendor's configured cycle interval in seconds (gauge; `vendor`).
pub const CYCLE_INTERVAL: &str = "dispatch_monitor_cycle_interval_seconds";
/// When this replica last finished a cycle with outcome `ok`, or started its schedule, as a
/// Unix time in seconds (gauge; `vendor`).
pub const LAST_OK_CYCLE: &str = "dispatch_monitor_last_successful_cycle_timestamp_seconds";

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonically increasing count.
    Counter,
    /// A distribution of durations in seconds.
    Histogram,
    /// A value that goes up and down.
    Gauge,
}

/// Every metric with its kind and description, for the recorder and the README.
pub const CATALOG: &[(&str, MetricKind, &str)] = &[
    (
        CYCLE_DURATION,
        MetricKind::Histogram,
        "Vendor cycle duration.",
    ),
    (CYCLES, MetricKind::Counter, "Vendor cycles by outcome."),
    (
        DISPATCHES_SEEN,
        MetricKind::Counter,
        "Dispatches seen per vendor and general status.",
    ),
    (
        SMS,
        MetricKind::Counter,
        "SMS sent, failed or deduplicated.",
    ),
    (
        NOTES,
        MetricKind::Counter,
        "Ticket notes appended or failed.",
    ),
    (ALERTS, MetricKind::Counter, "Slack alert lines posted."),
    (
        JOURNAL_FAILURES,
        MetricKind::Counter,
        "Journal writes that failed or were dropped.",
    ),
    (
        ALERT_FAILURES,
        MetricKind::Counter,
        "Slack alert lines that failed.",
    ),
    (
        RPC_DURATION,
        MetricKind::Histogram,
        "NATS request latency per subject.",
    ),
    (
        RPC_FAILURES,
        MetricKind::Counter,
        "NATS request failures per subject.",
    ),
    (
        DEPENDENCY_UP,
        MetricKind::Gauge,
        "Whether the NATS or Redis client is connected (1) or not (0).",
    ),
    (
        CYCLE_INTERVAL,
        MetricKind::Gauge,
        "The vendor's cycle interval in seconds.",
    ),
    (
        LAST_OK_CYCLE,
        MetricKind::Gauge,
        "Unix time of the vendor's last successful cycle here, or of the schedule's start.",
    ),
];
