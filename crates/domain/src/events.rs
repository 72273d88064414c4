//! Typed outcome events (vector's "internal events"): each outcome of taking a step is one
//! value that writes its log line and counts its metric together, so the two cannot drift.

use serde::Serialize;

use crate::actions::ActionKind;
use crate::journal::{EntryKind, EntryStamp, JournalEntry};
use crate::{Dispatch, PhoneE164, VendorName, telemetry};

/// What happened to one SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsOutcome {
    /// The notifier accepted it.
    Sent,
    /// The notifier refused it, or could not be reached before it was sent.
    Failed,
    /// It was not sent because the ledger says it went out already or is being sent.
    Deduplicated,
    /// No answer came: it may have been delivered, and goes again with the same key.
    Uncertain,
    /// Held or skipped: quiet hours at the site (SPEC §15).
    QuietHours,
    /// Withheld: the number opted out of texts (SPEC §17.1).
    OptedOut,
    /// Withheld: the dispatch is paused (SPEC §17.3).
    Paused,
    /// Held: the number had its daily cap of texts (SPEC §17.2).
    Capped,
}

impl From<crate::safeguards::Withhold> for SmsOutcome {
    fn from(why: crate::safeguards::Withhold) -> Self {
        match why {
            crate::safeguards::Withhold::OptedOut => SmsOutcome::OptedOut,
            crate::safeguards::Withhold::Paused => SmsOutcome::Paused,
            crate::safeguards::Withhold::Capped => SmsOutcome::Capped,
        }
    }
}

impl SmsOutcome {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            SmsOutcome::Sent => "sent",
            SmsOutcome::Failed => "failed",
            SmsOutcome::Deduplicated => "deduplicated",
            SmsOutcome::Uncertain => "uncertain",
            SmsOutcome::QuietHours => "quiet_hours",
            SmsOutcome::OptedOut => "opted_out",
            SmsOutcome::Paused => "paused",
            SmsOutcome::Capped => "capped",
        }
    }
}

/// One outcome of taking a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StepEvent {
    /// An SMS went out, was refused, or was not sent again.
    Sms {
        /// The action it belongs to.
        action: ActionKind,
        /// The recipient.
        to: PhoneE164,
        /// What happened.
        outcome: SmsOutcome,
        /// Why, for failures and deduplications.
        detail: Option<String>,
    },
    /// The note recording the action was appended.
    NoteAppended {
        /// The action.
        action: ActionKind,
    },
    /// Appending the note failed.
    NoteFailed {
        /// The action.
        action: ActionKind,
        /// Why.
        error: String,
    },
    /// The SMS ledger could not be read or written.
    LedgerFailed {
        /// The action.
        action: ActionKind,
        /// What failed.
        error: String,
    },
    /// The cancellation email went out or failed.
    Email {
        /// The addresses.
        to: String,
        /// Why it failed; `None` when sent.
        error: Option<String>,
    },
    /// The step could not be rendered and was not taken.
    Blocked {
        /// The action.
        action: ActionKind,
        /// Why.
        reason: String,
    },
}

impl StepEvent {
    /// Writes the event's log line and counts its metric. The dispatch's span carries the
    /// vendor, dispatch number and ticket id.
    pub fn emit(&self, vendor: &VendorName) {
        match self {
            StepEvent::Sms {
                action,
                to,
                outcome,
                detail,
            } => {
                let detail = detail.as_deref().unwrap_or("");
                match outcome {
                    SmsOutcome::Sent => tracing::info!(%action, %to, "SMS sent"),
                    SmsOutcome::Failed => tracing::warn!(%action, %to, detail, "SMS failed"),
                    SmsOutcome::Deduplicated => {
                        tracing::info!(%action, %to, detail, "SMS not sent again")
                    }
                    SmsOutcome::Uncertain => {
                        tracing::warn!(%action, %to, detail, "SMS may have been delivered")
                    }
                    SmsOutcome::QuietHours => {
                        tracing::info!(%action, %to, detail, "SMS not sent: quiet hours")
                    }
                    SmsOutcome::OptedOut | SmsOutcome::Paused | SmsOutcome::Capped => {
                        tracing::info!(%action, %to, detail, outcome = outcome.label(), "SMS withheld by a safeguard")
                    }
                }
                metrics::counter!(telemetry::SMS, "vendor" => vendor.to_string(), "outcome" => outcome.label())
                    .increment(1);
            }
            StepEvent::NoteAppended { action } => {
                tracing::info!(%action, "note appended");
                count_note(vendor, "appended");
            }
            StepEvent::NoteFailed { action, error } => {
                tracing::warn!(%action, error, "appending the note failed");
                count_note(vendor, "failed");
            }
            StepEvent::LedgerFailed { action, error } => {
                tracing::error!(%action, error, "SMS ledger failure");
            }
            StepEvent::Email { to, error: None } => tracing::info!(to, "email sent"),
            StepEvent::Email {
                to,
                error: Some(error),
            } => tracing::warn!(to, error, "email failed"),
            StepEvent::Blocked { action, reason } => {
                tracing::warn!(%action, reason, "step blocked")
            }
        }
    }
}

impl StepEvent {
    /// The journal entry recording the event (SPEC §14); `text` is what was sent or appended.
    pub fn journal_entry(
        &self,
        stamp: EntryStamp<'_>,
        dispatch: &Dispatch,
        text: Option<&str>,
    ) -> JournalEntry {
        let ticket = || Some(format!("ticket {}", dispatch.ticket_id));
        let base = |kind, outcome: &str, action: Option<&ActionKind>| JournalEntry {
            action: action.map(ToString::to_string),
            text: text.map(str::to_owned),
            ..stamp.entry(kind, outcome)
        };
        match self {
            StepEvent::Sms {
                action,
                to,
                outcome,
                detail,
            } => JournalEntry {
                to: Some(to.to_string()),
                detail: detail.clone(),
                ..base(EntryKind::Sms, outcome.label(), Some(action))
            },
            StepEvent::NoteAppended { action } => JournalEntry {
                to: ticket(),
                ..base(EntryKind::Note, "appended", Some(action))
            },
            StepEvent::NoteFailed { action, error } => JournalEntry {
                to: ticket(),
                detail: Some(error.clone()),
                ..base(EntryKind::Note, "failed", Some(action))
            },
            StepEvent::LedgerFailed { action, error } => JournalEntry {
                detail: Some(error.clone()),
                ..base(EntryKind::Ledger, "failed", Some(action))
            },
            StepEvent::Email { to, error } => JournalEntry {
                to: Some(to.clone()),
                detail: error.clone(),
                ..base(
                    EntryKind::Email,
                    if error.is_some() { "failed" } else { "sent" },
                    None,
                )
            },
            StepEvent::Blocked { action, reason } => JournalEntry {
                detail: Some(reason.clone()),
                ..base(EntryKind::Blocked, "blocked", Some(action))
            },
        }
    }
}

fn count_note(vendor: &VendorName, outcome: &'static str) {
    metrics::counter!(telemetry::NOTES, "vendor" => vendor.to_string(), "outcome" => outcome)
        .increment(1);
}
