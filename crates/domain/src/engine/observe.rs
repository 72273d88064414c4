//! Observe: read the dispatch's ticket once and keep its notes when it is ours (SPEC §6); the
//! safeguards over its numbers are read at the same time (SPEC §17).

use super::{Engine, Mode, VendorEntry};
use crate::journal::DispatchOutcome;
use crate::notes::phrases;
use crate::safeguards::SafeguardFacts;
use crate::{Dispatch, DispatchNotes, PhoneE164, TicketNotes};

impl Engine {
    /// Reads the ticket once and keeps the dispatch's notes when the dispatch is ours (SPEC §6).
    pub(super) async fn observe(
        &self,
        entry: &VendorEntry,
        dispatch: &Dispatch,
        mode: Mode,
    ) -> Result<DispatchNotes, DispatchOutcome> {
        let raw_notes = match self.ports.tickets.ticket_notes(&dispatch.ticket_id).await {
            Ok(notes) => notes,
            Err(error) => {
                let event = format!("ticket details request failed: {error}");
                tracing::warn!(event = %event, "dispatch skipped this cycle");
                self.alert_failure(entry, dispatch, mode, &event).await;
                return Err(DispatchOutcome::DetailsFailed {
                    error: error.to_string(),
                });
            }
        };
        let Some(note_key) = dispatch.note_key.as_ref() else {
            tracing::debug!("no note key; never ours");
            return Err(DispatchOutcome::NotOurs {
                reason: "no note key".into(),
            });
        };
        let notes = TicketNotes::from_raw(raw_notes).for_key(note_key);
        if !notes.has(phrases::REQUESTED) {
            tracing::debug!("no Dispatch Requested note for this dispatch; not ours");
            return Err(DispatchOutcome::NotOurs {
                reason: "no Dispatch Requested note".into(),
            });
        }
        Ok(notes)
    }

    /// Reads what the safeguards say about the dispatch's numbers (SPEC §17), once, while
    /// its ticket is read. A failure is kept in the facts: the rules then take no SMS step
    /// (fail safe), and say why.
    pub(super) async fn read_safeguards(&self, dispatch: &Dispatch) -> SafeguardFacts {
        if dispatch.note_key.is_none() {
            return SafeguardFacts::default();
        }
        let mut phones: Vec<PhoneE164> = [&dispatch.client_phone, &dispatch.tech_phone]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        phones.dedup();
        let read = self.ports.safeguards.dispatch_facts(
            &dispatch.vendor,
            &dispatch.dispatch_number,
            &phones,
            self.settings.rules.daily_cap,
            self.ports.clock.now(),
        );
        match read.await {
            Ok(facts) => facts,
            Err(error) => {
                tracing::warn!(%error, "the customer-text safeguards cannot be read; no SMS this cycle");
                SafeguardFacts::unreadable(&error)
            }
        }
    }
}
