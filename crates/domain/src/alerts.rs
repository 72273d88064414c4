//! Slack alert lines (SPEC §7.5): one line per action outcome, or per failure only.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::ports::{Notifier, PortError};
use crate::{
    Dispatch, DispatchNumber, TemplateName, TemplateValues, Templates, VendorName, telemetry,
};

/// Which outcomes are posted to Slack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    /// Successes and failures (the default).
    #[default]
    All,
    /// Failures only.
    Errors,
}

impl FromStr for AlertLevel {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(AlertLevel::All),
            "errors" => Ok(AlertLevel::Errors),
            other => Err(format!(
                "alert level must be `all` or `errors`, not `{other}`"
            )),
        }
    }
}

impl fmt::Display for AlertLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlertLevel::All => "all",
            AlertLevel::Errors => "errors",
        })
    }
}

/// Whether an alert reports a success or a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An action succeeded.
    Success,
    /// Something failed.
    Failure,
}

/// A queue in front of Slack, so that a slow Slack bridge never holds up a dispatch: it posts
/// each line later, in order, and records the outcome, `posted` or `failed`, in the
/// dispatch's journal (SPEC §18.5).
pub trait AlertOutbox: Send + Sync {
    /// Queues one line about a dispatch; an error when it cannot be queued (it is then never
    /// posted).
    fn enqueue(&self, alert: QueuedAlert) -> Result<(), PortError>;
}

/// An alert line about one dispatch, queued for Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAlert {
    /// The dispatch's vendor.
    pub vendor: VendorName,
    /// The dispatch.
    pub dispatch_number: DispatchNumber,
    /// The line.
    pub line: String,
}

/// Posts alert lines through the notifier, or queues the lines about dispatches in an
/// [`AlertOutbox`] when there is one. A Slack failure is logged, never returned.
#[derive(Clone, Copy)]
pub struct Alerts<'a> {
    notifier: &'a dyn Notifier,
    level: AlertLevel,
    outbox: Option<&'a dyn AlertOutbox>,
}

impl fmt::Debug for Alerts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alerts")
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl<'a> Alerts<'a> {
    /// Alerts at `level` through `notifier`.
    pub fn new(notifier: &'a dyn Notifier, level: AlertLevel) -> Self {
        Self {
            notifier,
            level,
            outbox: None,
        }
    }

    /// Queues the lines about dispatches in `outbox` (when given) instead of posting them.
    pub fn with_outbox(mut self, outbox: Option<&'a dyn AlertOutbox>) -> Self {
        self.outbox = outbox;
        self
    }

    /// `[dispatch-monitor] [LIT] Dispatch [DIS37405] in ticket_id: 3544800 - <event>`.
    pub async fn dispatch(
        &self,
        templates: &Templates,
        dispatch: &Dispatch,
        outcome: Outcome,
        event: &str,
    ) -> Option<Posted> {
        if outcome == Outcome::Success && self.level == AlertLevel::Errors {
            return None;
        }
        let line = dispatch_line(templates, dispatch, event);
        let Some(outbox) = self.outbox else {
            let error = self.post(&line).await.err();
            let delivery = match error {
                None => Delivery::Posted,
                Some(error) => Delivery::Failed(error),
            };
            return Some(Posted { line, delivery });
        };
        metrics::counter!(telemetry::ALERTS).increment(1);
        let queued = outbox.enqueue(QueuedAlert {
            vendor: dispatch.vendor.clone(),
            dispatch_number: dispatch.dispatch_number.clone(),
            line: line.clone(),
        });
        let delivery = match queued {
            Ok(()) => Delivery::Queued,
            Err(error) => {
                metrics::counter!(telemetry::ALERT_FAILURES).increment(1);
                tracing::warn!(%error, alert = line, "could not queue the Slack alert");
                Delivery::Failed(error.to_string())
            }
        };
        Some(Posted { line, delivery })
    }

    /// `[dispatch-monitor] [LIT] <event>`; vendor-level alerts are always posted.
    pub async fn vendor(&self, templates: &Templates, vendor: &VendorName, event: &str) {
        let _ = self.post(&vendor_line(templates, vendor, event)).await;
    }

    async fn post(&self, line: &str) -> Result<(), String> {
        metrics::counter!(telemetry::ALERTS).increment(1);
        self.notifier.post_slack(line).await.map_err(|error| {
            metrics::counter!(telemetry::ALERT_FAILURES).increment(1);
            tracing::warn!(%error, alert = line, "could not post the Slack alert");
            error.to_string()
        })
    }
}

/// An alert line handed to Slack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The line.
    pub line: String,
    /// What became of it.
    pub delivery: Delivery,
}

/// What became of an alert line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Slack took it.
    Posted,
    /// The alert queue took it; it records the outcome later.
    Queued,
    /// It could not be posted or queued, and why.
    Failed(String),
}

impl Delivery {
    /// The journal's outcome: `posted`, `queued` or `failed`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Delivery::Posted => "posted",
            Delivery::Queued => "queued",
            Delivery::Failed(_) => "failed",
        }
    }

    /// Why it failed.
    pub fn error(&self) -> Option<&str> {
        match self {
            Delivery::Failed(error) => Some(error),
            Delivery::Posted | Delivery::Queued => None,
        }
    }
}

/// The start of every alert line: `[dispatch-monitor] [LIT]`.
pub fn alert_prefix(vendor: &VendorName) -> String {
    format!("[dispatch-monitor] [{vendor}]")
}

/// Renders a vendor-level alert line, `[dispatch-monitor] [LIT] <event>` by default, through
/// the alert template (without a dispatch); falls back to that format if the template fails.
pub fn vendor_line(templates: &Templates, vendor: &VendorName, event: &str) -> String {
    let values = TemplateValues {
        vendor_upper: Some(vendor.as_str()),
        vendor: Some(vendor.as_str()),
        event: Some(event),
        ..TemplateValues::default()
    };
    match templates.render(TemplateName::ALERT, &values) {
        Ok(line) => line.trim_end().to_owned(),
        Err(_) => format!("{} {event}", alert_prefix(vendor)),
    }
}

/// Renders the alert line for a dispatch; falls back to the fixed format if the template fails.
pub fn dispatch_line(templates: &Templates, dispatch: &Dispatch, event: &str) -> String {
    let values = TemplateValues {
        vendor_upper: Some(dispatch.vendor.as_str()),
        vendor: Some(dispatch.vendor.as_str()),
        dispatch_number: Some(dispatch.dispatch_number.as_str()),
        ticket_id: Some(dispatch.ticket_id.as_str()),
        event: Some(event),
        ..TemplateValues::default()
    };
    match templates.render(TemplateName::ALERT, &values) {
        Ok(line) => line.trim_end().to_owned(),
        Err(_) => format!(
            "{} Dispatch [{}] in ticket_id: {} - {}",
            alert_prefix(&dispatch.vendor),
            dispatch.dispatch_number,
            dispatch.ticket_id,
            event
        ),
    }
}
