//! The thin executor: takes planned steps through the ports under the delivery rule (SPEC §7):
//! each SMS under the ledger first, then the note that records it; any failure alerts and
//! stops the dispatch for this cycle.

use serde::Serialize;

use crate::alerts::{Alerts, Outcome};
use crate::ports::{Claim, Notifier, SmsLedger, TicketRepository};
use crate::rules::{Action, Step};
use crate::{Dispatch, Templates};

/// How executing a dispatch's steps ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Execution {
    /// Every step was taken.
    Completed {
        /// How many steps.
        steps: usize,
    },
    /// A step failed or was refused; the rest waits for the next cycle.
    Stopped {
        /// How many steps were taken before.
        steps: usize,
        /// What stopped it.
        reason: String,
    },
}

/// Executes steps through the ports.
#[derive(Clone, Copy)]
pub struct Executor<'a> {
    /// Appends notes.
    pub tickets: &'a dyn TicketRepository,
    /// Sends SMS and email.
    pub notifier: &'a dyn Notifier,
    /// Guards every SMS.
    pub ledger: &'a dyn SmsLedger,
    /// Posts outcomes.
    pub alerts: Alerts<'a>,
    /// The vendor's templates, for alert lines.
    pub templates: &'a Templates,
}

impl std::fmt::Debug for Executor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("alerts", &self.alerts)
            .finish_non_exhaustive()
    }
}

impl Executor<'_> {
    /// Takes the steps in order, stopping at the first failure.
    pub async fn execute(&self, dispatch: &Dispatch, steps: &[Step]) -> Execution {
        for (taken, step) in steps.iter().enumerate() {
            let result = match step {
                Step::Blocked(blocked) => {
                    self.fail(
                        dispatch,
                        format!("{} not taken: {}", blocked.kind, blocked.reason),
                    )
                    .await
                }
                Step::Act(action) => self.act(dispatch, action).await,
            };
            if let Err(reason) = result {
                return Execution::Stopped {
                    steps: taken,
                    reason,
                };
            }
        }
        Execution::Completed { steps: steps.len() }
    }

    async fn fail(&self, dispatch: &Dispatch, event: String) -> Result<(), String> {
        tracing::warn!(event = %event, "dispatch stopped for this cycle");
        self.alerts
            .dispatch(self.templates, dispatch, Outcome::Failure, &event)
            .await;
        Err(event)
    }

    async fn act(&self, dispatch: &Dispatch, action: &Action) -> Result<(), String> {
        let vendor = dispatch.vendor.to_string();
        let mut sent_to = Vec::new();
        for sms in &action.sms {
            if sms.already_sent {
                tracing::info!(key = %sms.key.as_key(), "SMS already sent; appending its note only");
                count_sms(&vendor, "deduplicated");
                continue;
            }
            match self.ledger.claim(&sms.key).await {
                Err(error) => {
                    return self
                        .fail(
                            dispatch,
                            format!("{}: SMS ledger unavailable: {error}", action.kind),
                        )
                        .await;
                }
                Ok(Claim::AlreadySent) => {
                    tracing::info!(key = %sms.key.as_key(), "SMS already sent by another run; not sending again");
                    count_sms(&vendor, "deduplicated");
                    continue;
                }
                Ok(Claim::HeldElsewhere) => {
                    // Another replica is sending it right now; it will write the note.
                    tracing::info!(key = %sms.key.as_key(), "SMS claimed by another run; dispatch waits for the next cycle");
                    count_sms(&vendor, "deduplicated");
                    return Err(format!("{}: SMS claimed by another run", action.kind));
                }
                Ok(Claim::Claimed) => {}
            }
            if let Err(error) = self.notifier.send_sms(&sms.to, &sms.text).await {
                count_sms(&vendor, "failed");
                if let Err(release_error) = self.ledger.release(&sms.key).await {
                    tracing::warn!(%release_error, key = %sms.key.as_key(), "could not release the SMS claim; it expires by itself");
                }
                return self
                    .fail(
                        dispatch,
                        format!("{} to {} failed: {error}", action.kind, sms.to),
                    )
                    .await;
            }
            count_sms(&vendor, "sent");
            sent_to.push(sms.to.to_string());
            if let Err(error) = self.ledger.mark_sent(&sms.key).await {
                // The note below still records the SMS; alert so an operator knows.
                tracing::error!(%error, key = %sms.key.as_key(), "SMS sent but the ledger could not record it");
                self.alerts
                    .dispatch(
                        self.templates,
                        dispatch,
                        Outcome::Failure,
                        &format!(
                            "{} sent to {} but the SMS ledger could not record it: {error}",
                            action.kind, sms.to
                        ),
                    )
                    .await;
            }
        }

        if let Err(error) = self
            .tickets
            .append_note(&dispatch.ticket_id, &action.note)
            .await
        {
            metrics::counter!("dispatch_monitor_notes_total", "vendor" => vendor.clone(), "outcome" => "failed").increment(1);
            return self
                .fail(
                    dispatch,
                    format!("{}: appending the note failed: {error}", action.kind),
                )
                .await;
        }
        metrics::counter!("dispatch_monitor_notes_total", "vendor" => vendor.clone(), "outcome" => "appended").increment(1);

        let event = if sent_to.is_empty() {
            format!("{}: note appended", action.kind)
        } else {
            format!(
                "{}: SMS sent to {} and note appended",
                action.kind,
                sent_to.join(", ")
            )
        };
        tracing::info!(event = %event, "action taken");
        self.alerts
            .dispatch(self.templates, dispatch, Outcome::Success, &event)
            .await;

        if let Some(email) = &action.email {
            match self.notifier.send_email(email).await {
                Ok(()) => {
                    let event = format!("cancellation email sent to {}", email.recipients);
                    self.alerts
                        .dispatch(self.templates, dispatch, Outcome::Success, &event)
                        .await;
                }
                Err(error) => {
                    // The note is in place, so this is not retried; the alert tells an operator.
                    let event =
                        format!("cancellation email to {} failed: {error}", email.recipients);
                    tracing::warn!(event = %event, "email failed");
                    self.alerts
                        .dispatch(self.templates, dispatch, Outcome::Failure, &event)
                        .await;
                }
            }
        }
        Ok(())
    }
}

/// Counts one SMS outcome (`sent`, `failed`, `deduplicated`) for the vendor.
fn count_sms(vendor: &str, outcome: &'static str) {
    metrics::counter!("dispatch_monitor_sms_total", "vendor" => vendor.to_owned(), "outcome" => outcome)
        .increment(1);
}
