//! Plan: the rules' steps for the dispatch, now (SPEC §7).

use super::{Engine, VendorEntry};
use crate::rules::{self, Plan, RuleInput};
use crate::safeguards::SafeguardFacts;
use crate::{Dispatch, DispatchNotes};

impl Engine {
    /// The rules' plan for the dispatch, now.
    pub(super) fn plan(
        &self,
        entry: &VendorEntry,
        dispatch: &Dispatch,
        notes: &DispatchNotes,
        safeguards: &SafeguardFacts,
    ) -> Plan {
        let plan = rules::plan(&RuleInput {
            safeguards,
            dispatch,
            notes,
            now: self.ports.clock.now(),
            policy: entry.adapter.policy(),
            settings: &self.settings.rules,
            templates: &entry.templates,
        });
        for reason in &plan.skipped {
            tracing::info!(%reason, "rule skipped");
        }
        plan
    }
}
