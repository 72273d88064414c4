//! Slack alert lines (SPEC §7.5): one line per action outcome, or per failure only.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::Value;

use crate::ports::Notifier;
use crate::{Dispatch, TemplateContext, TemplateName, Templates, VendorName};

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

/// Posts alert lines through the notifier. A Slack failure is logged, never returned.
#[derive(Clone, Copy)]
pub struct Alerts<'a> {
    notifier: &'a dyn Notifier,
    level: AlertLevel,
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
        Self { notifier, level }
    }

    /// `[dispatch-monitor] [LIT] Dispatch [DIS37405] in ticket_id: 3544800 - <event>`.
    pub async fn dispatch(
        &self,
        templates: &Templates,
        dispatch: &Dispatch,
        outcome: Outcome,
        event: &str,
    ) {
        if outcome == Outcome::Success && self.level == AlertLevel::Errors {
            return;
        }
        let line = dispatch_line(templates, dispatch, event);
        self.post(&line).await;
    }

    /// `[dispatch-monitor] [LIT] <event>`; vendor-level alerts are always posted.
    pub async fn vendor(&self, vendor: &VendorName, event: &str) {
        self.post(&format!("[dispatch-monitor] [{vendor}] {event}"))
            .await;
    }

    async fn post(&self, line: &str) {
        metrics::counter!("dispatch_monitor_alerts_total").increment(1);
        if let Err(error) = self.notifier.post_slack(line).await {
            metrics::counter!("dispatch_monitor_alert_failures_total").increment(1);
            tracing::warn!(%error, alert = line, "could not post the Slack alert");
        }
    }
}

/// Renders the alert line for a dispatch; falls back to the fixed format if the template fails.
pub fn dispatch_line(templates: &Templates, dispatch: &Dispatch, event: &str) -> String {
    let mut context = TemplateContext::new();
    context.insert("VENDOR".into(), Value::String(dispatch.vendor.to_string()));
    context.insert(
        "dispatch_number".into(),
        Value::String(dispatch.dispatch_number.to_string()),
    );
    context.insert(
        "ticket_id".into(),
        Value::String(dispatch.ticket_id.to_string()),
    );
    context.insert("event".into(), Value::String(event.to_owned()));
    match templates.render(TemplateName::Alert, &context) {
        Ok(line) => line.trim_end().to_owned(),
        Err(_) => format!(
            "[dispatch-monitor] [{}] Dispatch [{}] in ticket_id: {} - {}",
            dispatch.vendor, dispatch.dispatch_number, dispatch.ticket_id, event
        ),
    }
}
