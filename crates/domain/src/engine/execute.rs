//! Execute: the planned steps go through the executor, which collects the dispatch's journal
//! entries as it takes them.

use super::{Engine, Mode, VendorEntry};
use crate::Dispatch;
use crate::executor::Executor;
use crate::journal::{DispatchOutcome, EntryBuffer};
use crate::rules::Step;

impl Engine {
    /// Takes the planned steps through the [`Executor`] (SPEC §7); a dry run only reports
    /// them.
    pub(super) async fn execute(
        &self,
        entry: &VendorEntry,
        dispatch: &Dispatch,
        steps: &[Step],
        mode: Mode,
        journal: &EntryBuffer,
    ) -> DispatchOutcome {
        match mode {
            Mode::DryRun => DispatchOutcome::Planned,
            Mode::Execute => DispatchOutcome::Executed(
                self.executor(entry, journal).execute(dispatch, steps).await,
            ),
        }
    }

    fn executor<'a>(&'a self, entry: &'a VendorEntry, journal: &'a EntryBuffer) -> Executor<'a> {
        Executor {
            journal,
            clock: self.ports.clock.as_ref(),
            replica: &self.settings.replica,
            environment: &self.settings.environment,
            claim_ttl: self.settings.claim_ttl,
            tickets: self.ports.tickets.as_ref(),
            notifier: self.ports.notifier.as_ref(),
            ledger: self.ports.ledger.as_ref(),
            safeguards: self.ports.safeguards.as_ref(),
            daily_cap: self.settings.rules.daily_cap,
            alerts: self.alerts(),
            templates: &entry.templates,
        }
    }
}
