//! Reconcile: apply the dispatch's SMS ledger to its plan (SPEC §13.4).

use super::{Engine, Mode, VendorEntry};
use crate::journal::DispatchOutcome;
use crate::ports::{LedgerEntry, PortError};
use crate::rules::{self, LedgerFacts, Plan};
use crate::{Dispatch, DispatchNotes};

impl Engine {
    /// Applies the dispatch's ledger, read in one round trip: SMS it records as sent are
    /// marked, and the notes of sent SMS that are missing and not planned again come first
    /// (SPEC §13.4). An unreadable ledger stops the dispatch: nothing is sent without knowing.
    pub(super) async fn reconcile(
        &self,
        entry: &VendorEntry,
        dispatch: &Dispatch,
        notes: &DispatchNotes,
        plan: &mut Plan,
        mode: Mode,
        ledger: Result<Vec<LedgerEntry>, PortError>,
    ) -> Result<(), DispatchOutcome> {
        let entries = match ledger {
            Ok(entries) => entries,
            Err(error) => {
                let event = format!("SMS ledger unavailable: {error}");
                tracing::warn!(event = %event, "dispatch skipped this cycle");
                self.alert_failure(entry, dispatch, mode, &event).await;
                return Err(DispatchOutcome::LedgerUnavailable {
                    error: error.to_string(),
                });
            }
        };
        let missing = rules::reconcile(plan, &entries, notes);
        if !missing.is_empty() {
            tracing::info!(
                notes = missing.len(),
                "notes of SMS already sent are missing; appending them"
            );
            plan.steps.splice(0..0, missing);
        }
        plan.mark_sent(&LedgerFacts::from_entries(&entries));
        Ok(())
    }
}
