//! `plan`: what a cycle would do, printed; and the read-only ports that make sure it does
//! nothing (no SMS, no notes, no Redis writes).

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use std::time::Duration;

use domain::chrono::{DateTime, Utc};
use domain::ports::{
    Claim, DispatchRegistry, Email, LedgerEntry, LedgerKey, Notifier, PortError, SmsLedger,
    StepKey, TicketRepository,
};
use domain::rules::Step;
use domain::safeguards::{OptOut, Reservation, SafeguardMark, Safeguards};
use domain::{
    CycleReport, DispatchNumber, DispatchOutcome, PhoneE164, Ports, RawTicketNote, TicketId,
    VendorName,
};
use serde::Serialize;

fn refused(what: &str) -> PortError {
    PortError::Rejected {
        status: 403,
        detail: format!("plan performs no side effects ({what})"),
    }
}

/// Reads through; refuses every write.
struct ReadOnly {
    tickets: Arc<dyn TicketRepository>,
    ledger: Arc<dyn SmsLedger>,
    safeguards: Arc<dyn Safeguards>,
}

#[async_trait]
impl TicketRepository for ReadOnly {
    async fn ticket_notes(&self, ticket: &TicketId) -> Result<Vec<RawTicketNote>, PortError> {
        self.tickets.ticket_notes(ticket).await
    }
    async fn append_note(&self, _: &TicketId, _: &str) -> Result<(), PortError> {
        Err(refused("note"))
    }
}

#[async_trait]
impl SmsLedger for ReadOnly {
    async fn entries(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Vec<LedgerEntry>, PortError> {
        self.ledger.entries(vendor, dispatch_number).await
    }
    async fn claim(&self, _: &LedgerKey, _: &str, _: Duration) -> Result<Claim, PortError> {
        Err(refused("ledger claim"))
    }
    async fn mark_sent(&self, _: &LedgerKey) -> Result<(), PortError> {
        Err(refused("ledger write"))
    }
    async fn mark_uncertain(&self, _: &LedgerKey) -> Result<(), PortError> {
        Err(refused("ledger write"))
    }
    async fn release(&self, _: &LedgerKey) -> Result<(), PortError> {
        Err(refused("ledger write"))
    }
    async fn claim_note(&self, _: &StepKey, _: Duration) -> Result<Claim, PortError> {
        Err(refused("ledger claim"))
    }
    async fn note_appended(&self, _: &StepKey) -> Result<(), PortError> {
        Err(refused("ledger write"))
    }
    async fn release_note(&self, _: &StepKey) -> Result<(), PortError> {
        Err(refused("ledger write"))
    }
}

#[async_trait]
impl Notifier for ReadOnly {
    async fn send_sms(&self, _: &PhoneE164, _: &str, _: &str) -> Result<(), PortError> {
        Err(refused("SMS"))
    }
    async fn post_slack(&self, _: &str) -> Result<(), PortError> {
        Err(refused("Slack"))
    }
    async fn send_email(&self, _: &Email) -> Result<(), PortError> {
        Err(refused("email"))
    }
}

#[async_trait]
impl DispatchRegistry for ReadOnly {
    async fn register(&self, _: &str, _: &serde_json::Value) -> Result<bool, PortError> {
        Err(refused("registry"))
    }
}

#[async_trait]
impl Safeguards for ReadOnly {
    async fn opted_out(&self, phones: &[PhoneE164]) -> Result<BTreeSet<PhoneE164>, PortError> {
        self.safeguards.opted_out(phones).await
    }
    async fn add_opt_out(&self, _: &PhoneE164, _: &SafeguardMark) -> Result<bool, PortError> {
        Err(refused("opt-out write"))
    }
    async fn remove_opt_out(&self, _: &PhoneE164) -> Result<bool, PortError> {
        Err(refused("opt-out write"))
    }
    async fn opt_outs(&self) -> Result<Vec<OptOut>, PortError> {
        self.safeguards.opt_outs().await
    }
    async fn pause(
        &self,
        _: &VendorName,
        _: &DispatchNumber,
        _: &SafeguardMark,
    ) -> Result<bool, PortError> {
        Err(refused("pause write"))
    }
    async fn resume(
        &self,
        _: &VendorName,
        _: &DispatchNumber,
    ) -> Result<Option<SafeguardMark>, PortError> {
        Err(refused("pause write"))
    }
    async fn paused(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Option<SafeguardMark>, PortError> {
        self.safeguards.paused(vendor, dispatch_number).await
    }
    async fn texts_in_window(
        &self,
        phone: &PhoneE164,
        now: DateTime<Utc>,
    ) -> Result<u32, PortError> {
        self.safeguards.texts_in_window(phone, now).await
    }
    async fn reserve(
        &self,
        _: &PhoneE164,
        _: &str,
        _: u32,
        _: DateTime<Utc>,
    ) -> Result<Reservation, PortError> {
        Err(refused("daily cap reservation"))
    }
    async fn release(&self, _: &PhoneE164, _: &str) -> Result<(), PortError> {
        Err(refused("daily cap release"))
    }
    async fn first_cap_alert(&self, _: &PhoneE164, _: DateTime<Utc>) -> Result<bool, PortError> {
        Err(refused("daily cap alert marker"))
    }
}

/// The same ports with every write refused, reads passed through.
pub fn read_only(ports: Ports) -> Ports {
    let guard = Arc::new(ReadOnly {
        tickets: ports.tickets.clone(),
        ledger: ports.ledger.clone(),
        safeguards: ports.safeguards.clone(),
    });
    Ports {
        source: ports.source,
        tickets: guard.clone(),
        notifier: guard.clone(),
        registry: guard.clone(),
        ledger: guard.clone(),
        safeguards: guard,
        clock: ports.clock,
    }
}

/// One thing `plan` says would happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlanRow {
    /// The vendor.
    pub vendor: String,
    /// The dispatch.
    pub dispatch_number: String,
    /// Its ticket.
    pub ticket_id: String,
    /// Its general status.
    pub status: String,
    /// The action, e.g. `confirmation SMS to the client`.
    pub action: String,
    /// `sms`, `note`, `email`, `blocked`, for a client text in quiet hours (SPEC §15)
    /// `deferred (quiet hours)` or `skipped (quiet hours)`, and for a text a safeguard holds
    /// (SPEC §17) `withheld (opted out)`, `withheld (paused)` or `held (capped)`.
    pub channel: String,
    /// Phone, ticket or addresses.
    pub recipient: String,
    /// The rendered text (or why the step is blocked).
    pub text: String,
    /// For SMS: the ledger says it was sent already, so only its note would be written.
    pub already_sent: bool,
}

/// Flattens cycle reports into rows, in order.
pub fn rows(reports: &[CycleReport]) -> Vec<PlanRow> {
    let mut rows = Vec::new();
    for report in reports {
        for dispatch_report in &report.dispatches {
            let dispatch = RowsOf(&dispatch_report.dispatch);
            for step in &dispatch_report.steps {
                dispatch.step(step, &mut rows);
            }
        }
    }
    rows
}

/// Makes the rows of one dispatch's steps.
struct RowsOf<'a>(&'a domain::Dispatch);

impl RowsOf<'_> {
    fn row(&self, action: String, channel: &str, recipient: String, text: String) -> PlanRow {
        let dispatch = self.0;
        PlanRow {
            vendor: dispatch.vendor.to_string(),
            dispatch_number: dispatch.dispatch_number.to_string(),
            ticket_id: dispatch.ticket_id.to_string(),
            status: dispatch.status.to_string(),
            action,
            channel: channel.to_owned(),
            recipient,
            text,
            already_sent: false,
        }
    }

    fn step(&self, step: &Step, rows: &mut Vec<PlanRow>) {
        match step {
            Step::Blocked(blocked) => rows.push(self.row(
                blocked.kind.to_string(),
                "blocked",
                String::new(),
                blocked.reason.clone(),
            )),
            Step::Deferred(deferred) => rows.push(
                self.row(
                    deferred.kind.to_string(),
                    "deferred (quiet hours)",
                    deferred
                        .to
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    deferred.reason.clone(),
                ),
            ),
            Step::Withheld(w) => rows.extend(w.to.iter().map(|to| {
                let (kind, reason) = (w.kind.to_string(), w.reason.clone());
                self.row(kind, w.why.plan_label(), to.to_string(), reason)
            })),
            Step::Act(action) => self.action(action, rows),
        }
    }

    /// An action's rows: texts skipped for quiet hours, its SMS, its note, its email.
    fn action(&self, action: &domain::rules::Action, rows: &mut Vec<PlanRow>) {
        let kind = action.kind.to_string();
        for to in &action.withheld {
            let skipped = "skipped (quiet hours)";
            rows.push(self.row(kind.clone(), skipped, to.to_string(), String::new()));
        }
        for sms in &action.sms {
            rows.push(PlanRow {
                already_sent: sms.already_sent,
                ..self.row(kind.clone(), "sms", sms.to.to_string(), sms.text.clone())
            });
        }
        let ticket = format!("ticket {}", self.0.ticket_id);
        rows.push(self.row(kind.clone(), "note", ticket, action.note.clone()));
        if let Some(email) = &action.email {
            rows.push(self.row(kind, "email", email.recipients.clone(), email.text.clone()));
        }
    }
}

/// The text form: one block per dispatch with actions, then a summary per vendor.
pub fn render_text(reports: &[CycleReport]) -> String {
    let mut out = String::new();
    for report in reports {
        let ours = report
            .dispatches
            .iter()
            .filter(|d| !matches!(d.outcome, DispatchOutcome::NotOurs { .. }))
            .count();
        let with_steps = report
            .dispatches
            .iter()
            .filter(|d| !d.steps.is_empty())
            .count();
        out.push_str(&format!(
            "== {}: {} records, {} skipped, {} ours, {} with actions\n",
            report.vendor,
            report.records,
            report.skipped_records.len(),
            ours,
            with_steps
        ));
        for skipped in &report.skipped_records {
            out.push_str(&format!("   skipped record {skipped}\n"));
        }
        for dispatch_report in &report.dispatches {
            let d = &dispatch_report.dispatch;
            match &dispatch_report.outcome {
                DispatchOutcome::NotOurs { .. } => continue,
                DispatchOutcome::DetailsFailed { error }
                | DispatchOutcome::LedgerUnavailable { error } => {
                    out.push_str(&format!(
                        "-- {} {} ticket {} ({}): cannot plan: {error}\n",
                        d.vendor, d.dispatch_number, d.ticket_id, d.status
                    ));
                    continue;
                }
                _ => {}
            }
            if dispatch_report.steps.is_empty() && dispatch_report.skipped_rules.is_empty() {
                continue;
            }
            out.push_str(&format!(
                "-- {} {} ticket {} ({})\n",
                d.vendor, d.dispatch_number, d.ticket_id, d.status
            ));
            for reason in &dispatch_report.skipped_rules {
                out.push_str(&format!("   skipped: {reason}\n"));
            }
            for (index, step) in dispatch_report.steps.iter().enumerate() {
                out.push_str(&format!("   {}. {}\n", index + 1, step.kind()));
                out.push_str(&render_step(step, &d.ticket_id.to_string()));
            }
        }
    }
    out
}

/// One planned step's lines: its texts, or why it is blocked or waits.
fn render_step(step: &Step, ticket_id: &str) -> String {
    let mut out = String::new();
    match step {
        Step::Blocked(blocked) => {
            out.push_str(&format!("      BLOCKED: {}\n", blocked.reason));
        }
        Step::Deferred(deferred) => {
            let to = deferred.to.as_ref().map(|to| format!(" to {to}"));
            out.push_str(&format!(
                "      SMS{} deferred (quiet hours): {}\n",
                to.unwrap_or_default(),
                deferred.reason
            ));
        }
        Step::Withheld(withheld) => {
            for to in &withheld.to {
                out.push_str(&format!(
                    "      SMS to {to} {}: {}\n",
                    withheld.why.plan_label(),
                    withheld.reason
                ));
            }
        }
        Step::Act(action) => {
            for to in &action.withheld {
                out.push_str(&format!("      SMS to {to} skipped (quiet hours)\n"));
            }
            for sms in &action.sms {
                let note = if sms.already_sent {
                    " (already sent; not again)"
                } else {
                    ""
                };
                out.push_str(&format!("      SMS to {}{note}:\n", sms.to));
                out.push_str(&indent(&sms.text));
            }
            out.push_str(&format!("      note on ticket {}:\n", ticket_id));
            out.push_str(&indent(&action.note));
            if let Some(email) = &action.email {
                out.push_str(&format!(
                    "      email to {}: {}\n",
                    email.recipients, email.subject
                ));
            }
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("        | {line}\n"))
        .collect()
}

/// `plan --at` and `GET /api/v1/plan?at=` (SPEC §17.4): an RFC 3339 instant
/// (`2026-12-04T21:00:00-05:00`), or a time from `now` in whole hours or minutes up to 7 days
/// (`+6h`, `+90m`): exactly the texts of [`crate::at::AT_PATTERN`] (see
/// [`crate::at::parse_at`], which both share). The error says what is expected; the caller
/// names the parameter.
pub fn parse_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    crate::at::parse_at(text, now).map_err(|error| error.to_string())
}

/// The same (read-only) engine planning as at `at`.
pub fn engine_at(engine: &domain::Engine, at: DateTime<Utc>) -> domain::Engine {
    let clock = Arc::new(domain::memory::ManualClock::new(at));
    engine.clone().with_clock(clock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_is_an_rfc3339_time_or_hours_or_minutes_from_now() {
        let now: DateTime<Utc> = "2026-12-04T15:00:00Z".parse().unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            ("+6h", Some("2026-12-04T21:00:00Z")),
            ("+90m", Some("2026-12-04T16:30:00Z")),
            ("+0m", Some("2026-12-04T15:00:00Z")),
            ("2026-12-04T21:00:00-05:00", Some("2026-12-05T02:00:00Z")),
            (" 2026-12-04T21:00:00-05:00 ", None),
            ("2026-12-04T21:00:00Z", Some("2026-12-04T21:00:00Z")),
            ("6h", Some("2026-12-04T21:00:00Z")),
            ("+169h", None),
            ("+6", None),
            ("+h", None),
            ("+-6h", None),
            ("+6d", None),
            ("+99999999999999h", None),
            ("tonight", None),
            ("2026-12-04 21:00", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let got = parse_at(text, now).ok();
            let expected = expected.map(|at| at.parse::<DateTime<Utc>>().unwrap());
            assert_eq!(got, expected, "{text:?}");
        }
    }
}
