//! `GET /api/v1/plan` is a full dry-run cycle (the vendor's list, then a Bruin read per
//! dispatch), so callers must not multiply that load: at most one plan per vendor is computed
//! at a time, and a result up to [`PLAN_REUSE`] old is served to concurrent or repeated
//! callers (SPEC §18.5). Plans never count in the cycle metrics (the engine records those for
//! executed cycles only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::{Engine, Mode, VendorName};
use tokio::time::Instant;

use crate::plan::{self, PlanRow};

/// How long a computed plan is served again.
pub const PLAN_REUSE: Duration = Duration::from_secs(10);

/// A vendor's plan rows, or why its plan failed (a failure is reused too: it bounds the load
/// just as well).
pub type Computed = Result<Arc<Vec<PlanRow>>, String>;

/// A vendor's last plan and when its computation started.
type Slot = Arc<tokio::sync::Mutex<Option<(Instant, Computed)>>>;

/// The last plan of each vendor; the slot's lock is held while a plan is computed, so
/// concurrent callers wait for that plan instead of starting their own.
#[derive(Default)]
pub struct PlanCache {
    vendors: Mutex<HashMap<VendorName, Slot>>,
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanCache").finish_non_exhaustive()
    }
}

impl PlanCache {
    /// `vendor`'s plan: the one computed less than [`PLAN_REUSE`] ago, the one being computed
    /// now, or a new one.
    pub async fn rows(&self, planner: &Engine, vendor: &VendorName) -> Computed {
        let slot = self.slot(vendor);
        let mut slot = slot.lock().await;
        if let Some((started, computed)) = slot.as_ref()
            && started.elapsed() <= PLAN_REUSE
        {
            return computed.clone();
        }
        let started = Instant::now();
        let computed = planner
            .run_cycle(vendor, Mode::DryRun)
            .await
            .map(|report| Arc::new(plan::rows(&[report])))
            .map_err(|error| error.to_string());
        *slot = Some((started, computed.clone()));
        computed
    }

    fn slot(&self, vendor: &VendorName) -> Slot {
        let mut vendors = self.vendors.lock().unwrap_or_else(|e| e.into_inner());
        vendors.entry(vendor.clone()).or_default().clone()
    }
}
