//! The live timeline `dispatch-sim` prints: every note and SMS as it arrives, like the
//! monitor's `demo`, with who each ticket and phone belongs to.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use domain::{PhoneE164, VendorName};

use crate::SimEvent;

/// Who tickets and phones belong to, from the simulated dispatches.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    tickets: BTreeMap<String, String>,
    phones: BTreeMap<String, String>,
}

impl Labels {
    /// Labels for the dispatches of the world.
    pub(crate) fn of(vendors: &[(VendorName, Vec<domain::DispatchSpec>)]) -> Self {
        let mut labels = Self::default();
        for (vendor, specs) in vendors {
            for spec in specs {
                let dispatch = format!("{vendor} {}", spec.dispatch_number);
                labels
                    .tickets
                    .insert(spec.ticket_id.clone(), dispatch.clone());
                let digits = |phone: &Option<String>| {
                    PhoneE164::parse_optional(phone.as_deref()).map(|p| p.digits().to_owned())
                };
                if let Some(phone) = digits(&spec.client_phone) {
                    labels
                        .phones
                        .insert(phone, format!("{dispatch} site contact"));
                }
                if let (Some(phone), Some(name)) = (digits(&spec.tech_phone), &spec.tech_name) {
                    labels
                        .phones
                        .insert(phone, format!("{dispatch} tech {name}"));
                }
            }
        }
        labels
    }

    fn ticket(&self, ticket: &str) -> &str {
        self.tickets
            .get(ticket)
            .map_or("another dispatch", String::as_str)
    }

    fn phone(&self, digits: &str) -> &str {
        self.phones
            .get(digits)
            .map_or("someone else", String::as_str)
    }
}

/// The timeline text of one event, `elapsed` after the start.
pub fn render(elapsed: Duration, event: &SimEvent, labels: &Labels) -> String {
    let secs = elapsed.as_secs();
    let at = format!("+{:02}:{:02}", secs / 60, secs % 60);
    let mut out = String::new();
    let indented = |out: &mut String, text: &str| {
        for line in text.lines() {
            let _ = writeln!(out, "        | {line}");
        }
    };
    match event {
        SimEvent::Note { ticket, text } => {
            let _ = writeln!(
                out,
                "{at}  NOTE  on ticket {ticket} ({})",
                labels.ticket(ticket)
            );
            indented(&mut out, text);
        }
        SimEvent::Sms {
            to,
            text,
            deduplicated,
        } => {
            let again = if *deduplicated {
                " (same idempotency key: not delivered again)"
            } else {
                ""
            };
            let _ = writeln!(out, "{at}  SMS   to +{to} ({}){again}", labels.phone(to));
            if !deduplicated {
                indented(&mut out, text);
            }
        }
        SimEvent::Slack { line } => {
            let _ = writeln!(out, "{at}  SLACK {line}");
        }
        SimEvent::Email {
            subject,
            recipients,
        } => {
            let _ = writeln!(out, "{at}  EMAIL to {recipients}: {subject}");
        }
        SimEvent::Change { what } => {
            let _ = writeln!(out, "{at}  ----  {what}");
        }
        SimEvent::Fault { what } => {
            let _ = writeln!(out, "{at}  FAULT {what}");
        }
    }
    out
}
