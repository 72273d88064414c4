//! The thin executor: takes planned steps through the ports under the delivery rule (SPEC §7):
//! each SMS under the ledger first, then the note that records it; any failure alerts and
//! stops the dispatch for this cycle.

use crate::actions::ActionKind;
use crate::alerts::{Alerts, Outcome};
use crate::events::{SmsOutcome, StepEvent};
use crate::journal::{EntryBuffer, EntryKind, EntryStamp, JournalEntry};
use crate::ports::{
    Claim, Clock, Email, Notifier, PortError, SmsLedger, StepKey, TicketRepository,
};
use crate::rules::{Action, PlannedSms, Step, WithheldAction};
use crate::safeguards::{DailyCap, Reservation, Safeguards, Withhold};
use crate::{Dispatch, Templates};

pub use crate::journal::Execution;

/// Executes steps through the ports.
#[derive(Clone, Copy)]
pub struct Executor<'a> {
    /// `ENVIRONMENT_NAME`, the first part of every idempotency key.
    pub environment: &'a str,
    /// How long an SMS claim lasts (SPEC §13.3).
    pub claim_ttl: std::time::Duration,
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
    /// Collects the dispatch's journal entries (SPEC §14).
    pub journal: &'a EntryBuffer,
    /// Stamps journal entries.
    pub clock: &'a dyn Clock,
    /// The replica, for journal entries.
    pub replica: &'a str,
    /// Reserves each SMS against its number's daily cap (SPEC §17.2).
    pub safeguards: &'a dyn Safeguards,
    /// `MONITOR_SMS_DAILY_CAP`.
    pub daily_cap: DailyCap,
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
                    self.emit(
                        dispatch,
                        StepEvent::Blocked {
                            action: blocked.kind,
                            reason: blocked.reason.clone(),
                        },
                    );
                    let event = format!("{} not taken: {}", blocked.kind, blocked.reason);
                    self.fail(dispatch, event).await
                }
                Step::Act(action) => self.act(dispatch, action).await,
                Step::Withheld(withheld) => {
                    self.withhold(dispatch, withheld).await;
                    Ok(())
                }
                Step::Deferred(deferred) => {
                    self.emit_quiet(
                        dispatch,
                        deferred.kind,
                        deferred.to.as_ref(),
                        "held for a later cycle",
                    );
                    Ok(())
                }
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

    /// One action: its SMS under the ledger, then its note, then its email.
    async fn act(&self, dispatch: &Dispatch, action: &Action) -> Result<(), String> {
        if !self.reserve_cap(dispatch, action).await? {
            return Ok(());
        }
        let mut sent_to = Vec::new();
        for sms in &action.sms {
            if self.deliver(dispatch, action, sms).await? {
                sent_to.push(sms.to.to_string());
            }
        }
        if !self.append_note(dispatch, action).await? {
            return Ok(());
        }
        for to in &action.withheld {
            self.emit_quiet(
                dispatch,
                action.kind,
                Some(to),
                "not sent; the note records it",
            );
        }
        let event = if !action.withheld.is_empty() {
            let withheld: Vec<String> = action.withheld.iter().map(ToString::to_string).collect();
            format!(
                "{}: SMS to {} not sent (quiet hours at the site) and note appended",
                action.kind,
                withheld.join(", ")
            )
        } else if sent_to.is_empty() {
            format!("{}: note appended", action.kind)
        } else {
            format!(
                "{}: SMS sent to {} and note appended",
                action.kind,
                sent_to.join(", ")
            )
        };
        tracing::info!(event = %event, "action taken");
        self.alert(dispatch, Outcome::Success, &event).await;
        for notice in &action.notices {
            let event = format!("{}: {notice}", action.kind);
            tracing::warn!(event = %event, "text skipped");
            self.alert(dispatch, Outcome::Failure, &event).await;
        }
        if let Some(email) = &action.email {
            self.send_email(dispatch, email).await;
        }
        Ok(())
    }

    /// Counts and journals the texts a safeguard withholds (SPEC §17); a capped number's
    /// alert goes out once per 24 hours.
    async fn withhold(&self, dispatch: &Dispatch, withheld: &WithheldAction) {
        for to in &withheld.to {
            let event = StepEvent::Sms {
                action: withheld.kind,
                to: to.clone(),
                outcome: withheld.why.into(),
                detail: Some(withheld.reason.clone()),
            };
            self.emit(dispatch, event);
            if withheld.why != Withhold::Capped {
                continue;
            }
            // When the marker cannot be set, alerting again beats staying silent.
            let first = self.safeguards.first_cap_alert(to, self.clock.now()).await;
            if first.unwrap_or(true) {
                let event = format!("SMS to {to} held: {}", withheld.reason);
                self.alert(dispatch, Outcome::Failure, &event).await;
            }
        }
    }

    /// Reserves every SMS of the action against its number's daily cap, before any claim
    /// (SPEC §17.2); whether the action may go on. A number at its cap holds the whole step
    /// (its reservations so far are given back); a cap that cannot be read stops the
    /// dispatch with an alert (fail safe).
    async fn reserve_cap(&self, dispatch: &Dispatch, action: &Action) -> Result<bool, String> {
        let Some(cap) = self.daily_cap.limit() else {
            return Ok(true);
        };
        let mut reserved: Vec<&PlannedSms> = Vec::new();
        for sms in action.sms.iter().filter(|sms| !sms.already_sent) {
            let id = sms.key.idempotency_key(self.environment);
            let reservation = self
                .safeguards
                .reserve(&sms.to, &id, cap, self.clock.now())
                .await;
            if let Ok(Reservation::Reserved) = reservation {
                reserved.push(sms);
                continue;
            }
            for earlier in reserved {
                self.release_cap(earlier).await;
            }
            return match reservation {
                Ok(Reservation::Full { count }) => {
                    let withheld = WithheldAction {
                        kind: action.kind,
                        to: vec![sms.to.clone()],
                        why: Withhold::Capped,
                        reason: format!("{count} texts in 24 h (MONITOR_SMS_DAILY_CAP)"),
                    };
                    self.withhold(dispatch, &withheld).await;
                    Ok(false)
                }
                Err(error) => {
                    let event = format!(
                        "{}: SMS to {} not sent: the daily cap cannot be read: {error}",
                        action.kind, sms.to
                    );
                    self.fail(dispatch, event).await.map(|()| false)
                }
                Ok(Reservation::Reserved) => Ok(true),
            };
        }
        Ok(true)
    }

    /// Gives back an SMS's reservation against the daily cap (it was refused, not sent).
    async fn release_cap(&self, sms: &PlannedSms) {
        if self.daily_cap.limit().is_none() {
            return;
        }
        let id = sms.key.idempotency_key(self.environment);
        if let Err(error) = self.safeguards.release(&sms.to, &id).await {
            tracing::warn!(%error, to = %sms.to, "could not give back a daily cap reservation; it expires in 24 h");
        }
    }

    /// Counts and logs a client text held or skipped in quiet hours (SPEC §15).
    fn emit_quiet(
        &self,
        dispatch: &Dispatch,
        action: ActionKind,
        to: Option<&crate::PhoneE164>,
        detail: &str,
    ) {
        if let Some(to) = to {
            let event = StepEvent::Sms {
                action,
                to: to.clone(),
                outcome: SmsOutcome::QuietHours,
                detail: Some(format!("quiet hours at the site: {detail}")),
            };
            self.emit(dispatch, event);
        }
    }

    /// Sends one SMS under the ledger; whether it went out now. An error stops the dispatch.
    async fn deliver(
        &self,
        dispatch: &Dispatch,
        action: &Action,
        sms: &PlannedSms,
    ) -> Result<bool, String> {
        let kind = action.kind;
        if sms.already_sent {
            let event = deduplicated(kind, sms, "already sent; appending its note only");
            self.emit(dispatch, event);
            return Ok(false);
        }
        if !self.claim(dispatch, action, sms).await? {
            return Ok(false);
        }
        self.send(dispatch, kind, sms).await?;
        if let Err(error) = self.ledger.mark_sent(&sms.key).await {
            // The note still records the SMS; alert so an operator knows.
            let error = format!(
                "{kind} sent to {} but the SMS ledger could not record it: {error}",
                sms.to
            );
            self.ledger_failed(dispatch, kind, &error);
            self.alert(dispatch, Outcome::Failure, &error).await;
        }
        Ok(true)
    }

    /// Claims the SMS in the ledger, with the note that will record it; whether this run may
    /// send it.
    async fn claim(
        &self,
        dispatch: &Dispatch,
        action: &Action,
        sms: &PlannedSms,
    ) -> Result<bool, String> {
        let kind = action.kind;
        match self
            .ledger
            .claim(&sms.key, &action.note, self.claim_ttl)
            .await
        {
            Ok(Claim::Claimed) => Ok(true),
            Ok(Claim::AlreadySent) => {
                let why = "already sent by another run; not sending again";
                self.emit(dispatch, deduplicated(kind, sms, why));
                Ok(false)
            }
            Ok(Claim::HeldElsewhere) => {
                // Another replica is sending it right now; it will write the note.
                let why = "claimed by another run; the dispatch waits for the next cycle";
                self.emit(dispatch, deduplicated(kind, sms, why));
                Err(format!("{kind}: SMS claimed by another run"))
            }
            Err(error) => {
                let error = format!("SMS ledger unavailable: {error}");
                self.ledger_failed(dispatch, kind, &error);
                self.fail(dispatch, format!("{kind}: {error}"))
                    .await
                    .map(|()| false)
            }
        }
    }

    /// Sends the claimed SMS with its idempotency key. Refused: the claim is released and the
    /// dispatch stops. No answer: the entry is marked uncertain (it goes again, with the same
    /// key, next cycle) and the dispatch stops (SPEC §13.2).
    async fn send(
        &self,
        dispatch: &Dispatch,
        kind: ActionKind,
        sms: &PlannedSms,
    ) -> Result<(), String> {
        let key = sms.key.idempotency_key(self.environment);
        let result = self.notifier.send_sms(&sms.to, &sms.text, &key).await;
        let outcome = match &result {
            Ok(()) => SmsOutcome::Sent,
            Err(PortError::Uncertain(_)) => SmsOutcome::Uncertain,
            Err(_) => SmsOutcome::Failed,
        };
        let event = StepEvent::Sms {
            action: kind,
            to: sms.to.clone(),
            outcome,
            detail: result.as_ref().err().map(ToString::to_string),
        };
        self.emit_with_text(dispatch, event, Some(&sms.text));
        let Err(error) = result else {
            return Ok(());
        };
        if outcome == SmsOutcome::Uncertain {
            if let Err(ledger_error) = self.ledger.mark_uncertain(&sms.key).await {
                tracing::warn!(%ledger_error, key = %sms.key.as_key(), "could not mark the SMS uncertain; its claim expires by itself");
            }
            let event = format!(
                "{kind}: SMS to {} may have been delivered; it will be sent again with the same idempotency key ({error})",
                sms.to
            );
            return self.fail(dispatch, event).await;
        }
        if let Err(release_error) = self.ledger.release(&sms.key).await {
            tracing::warn!(%release_error, key = %sms.key.as_key(), "could not release the SMS claim; it expires by itself");
        }
        self.release_cap(sms).await;
        self.fail(dispatch, format!("{kind} to {} failed: {error}", sms.to))
            .await
    }

    /// Appends the action's note under its claim, so that two replicas never both append it;
    /// whether it was appended now (not when another run already did).
    async fn append_note(&self, dispatch: &Dispatch, action: &Action) -> Result<bool, String> {
        let step = StepKey {
            vendor: dispatch.vendor.clone(),
            dispatch_number: dispatch.dispatch_number.clone(),
            kind: action.kind,
            change: action
                .sms
                .first()
                .and_then(|sms| sms.key.change.clone())
                .or_else(|| action.about.as_ref().map(|phone| phone.digits().to_owned())),
        };
        match self.ledger.claim_note(&step, self.claim_ttl).await {
            Ok(Claim::Claimed) => {}
            Ok(Claim::AlreadySent) => {
                tracing::info!(action = %action.kind, "note already appended by another run");
                return Ok(false);
            }
            Ok(Claim::HeldElsewhere) => {
                tracing::info!(action = %action.kind, "note claimed by another run; the dispatch waits for the next cycle");
                return Err(format!("{}: note claimed by another run", action.kind));
            }
            Err(error) => {
                let error = format!("SMS ledger unavailable: {error}");
                self.ledger_failed(dispatch, action.kind, &error);
                let event = format!("{}: {error}", action.kind);
                return self.fail(dispatch, event).await.map(|()| false);
            }
        }
        let appended = self
            .tickets
            .append_note(&dispatch.ticket_id, &action.note)
            .await;
        if let Err(error) = appended {
            self.emit(
                dispatch,
                StepEvent::NoteFailed {
                    action: action.kind,
                    error: error.to_string(),
                },
            );
            if let Err(release_error) = self.ledger.release_note(&step).await {
                tracing::warn!(%release_error, "could not release the note's claim; it expires by itself");
            }
            let event = format!("{}: appending the note failed: {error}", action.kind);
            return self.fail(dispatch, event).await.map(|()| false);
        }
        self.emit_with_text(
            dispatch,
            StepEvent::NoteAppended {
                action: action.kind,
            },
            Some(&action.note),
        );
        if let Err(error) = self.ledger.note_appended(&step).await {
            tracing::warn!(%error, "the note is on the ticket but the ledger could not record it");
        }
        Ok(true)
    }

    /// The cancellation email: its failure alerts but never stops the dispatch, since the note
    /// that records the action is in place and the email is not retried.
    async fn send_email(&self, dispatch: &Dispatch, email: &Email) {
        let result = self.notifier.send_email(email).await;
        self.emit(
            dispatch,
            StepEvent::Email {
                to: email.recipients.clone(),
                error: result.as_ref().err().map(ToString::to_string),
            },
        );
        match result {
            Ok(()) => {
                let event = format!("cancellation email sent to {}", email.recipients);
                self.alert(dispatch, Outcome::Success, &event).await;
            }
            Err(error) => {
                let event = format!("cancellation email to {} failed: {error}", email.recipients);
                self.alert(dispatch, Outcome::Failure, &event).await;
            }
        }
    }

    fn ledger_failed(&self, dispatch: &Dispatch, action: ActionKind, error: &str) {
        let error = error.to_owned();
        self.emit(dispatch, StepEvent::LedgerFailed { action, error });
    }

    fn emit(&self, dispatch: &Dispatch, event: StepEvent) {
        self.emit_with_text(dispatch, event, None);
    }

    /// Logs and counts the event, and journals it with the text sent, if any.
    fn emit_with_text(&self, dispatch: &Dispatch, event: StepEvent, text: Option<&str>) {
        event.emit(&dispatch.vendor);
        self.journal
            .push(event.journal_entry(self.stamp(), dispatch, text));
    }

    fn stamp(&self) -> EntryStamp<'_> {
        EntryStamp {
            at: self.clock.now(),
            replica: self.replica,
        }
    }

    async fn alert(&self, dispatch: &Dispatch, outcome: Outcome, event: &str) {
        if let Some(posted) = self
            .alerts
            .dispatch(self.templates, dispatch, outcome, event)
            .await
        {
            self.journal.push(JournalEntry {
                detail: posted.delivery.error().map(str::to_owned),
                text: Some(posted.line),
                ..self
                    .stamp()
                    .entry(EntryKind::Alert, posted.delivery.outcome())
            });
        }
    }

    /// Alerts a failure and stops the dispatch for this cycle.
    async fn fail(&self, dispatch: &Dispatch, event: String) -> Result<(), String> {
        tracing::warn!(event = %event, "dispatch stopped for this cycle");
        self.alert(dispatch, Outcome::Failure, &event).await;
        Err(event)
    }
}

fn deduplicated(kind: ActionKind, sms: &PlannedSms, why: &str) -> StepEvent {
    StepEvent::Sms {
        action: kind,
        to: sms.to.clone(),
        outcome: SmsOutcome::Deduplicated,
        detail: Some(why.to_owned()),
    }
}
