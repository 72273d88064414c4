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

/// A plan's vendor and the `at` it was asked for, as written (none: now).
type SlotKey = (VendorName, Option<String>);

/// The most slots kept; past it, slots that are idle and stale are dropped.
const MAX_SLOTS: usize = 64;

/// The last plan of each vendor (and of each `at` asked for); the slot's lock is held while a
/// plan is computed, so concurrent callers wait for that plan instead of starting their own.
pub struct PlanCache {
    vendors: Mutex<HashMap<SlotKey, Slot>>,
    reuse: Duration,
}

impl Default for PlanCache {
    fn default() -> Self {
        Self::reusing_for(PLAN_REUSE)
    }
}

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanCache").finish_non_exhaustive()
    }
}

impl PlanCache {
    /// A cache serving a plan again for `reuse` ([`PLAN_REUSE`] by default).
    pub fn reusing_for(reuse: Duration) -> Self {
        Self {
            vendors: Mutex::default(),
            reuse,
        }
    }

    /// `vendor`'s plan: the one computed less than the reuse period ago, the one being
    /// computed now, or a new one.
    pub async fn rows(&self, planner: &Engine, vendor: &VendorName) -> Computed {
        self.rows_at(planner, vendor, None).await
    }

    /// The same for a plan at another instant: `planner`'s clock reads that instant, and
    /// `at` is how the caller wrote it (`+6h`), so repeated callers share one computation.
    pub async fn rows_at(
        &self,
        planner: &Engine,
        vendor: &VendorName,
        at: Option<&str>,
    ) -> Computed {
        let slot = self.slot((vendor.clone(), at.map(str::to_owned)));
        let mut slot = slot.lock().await;
        if let Some((started, computed)) = slot.as_ref()
            && started.elapsed() <= self.reuse
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

    fn slot(&self, key: SlotKey) -> Slot {
        let mut vendors = self.vendors.lock().unwrap_or_else(|e| e.into_inner());
        if vendors.len() >= MAX_SLOTS {
            let reuse = self.reuse;
            vendors.retain(|_, slot| match slot.try_lock() {
                Ok(plan) => plan
                    .as_ref()
                    .is_some_and(|(started, _)| started.elapsed() <= reuse),
                Err(_) => true,
            });
        }
        vendors.entry(key).or_default().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use domain::memory::{ManualClock, MemoryWorld};
    use domain::ports::{DispatchSource, PortError};
    use domain::{EngineSettings, ListBody, Ports};

    use super::*;

    /// A vendor list that answers slowly and counts its requests.
    #[derive(Default)]
    struct SlowList {
        requests: AtomicUsize,
    }

    #[async_trait]
    impl DispatchSource for SlowList {
        async fn fetch_dispatches(&self, _vendor: &VendorName) -> Result<ListBody, PortError> {
            self.requests.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let empty = serde_json::json!({
                "Status": "Success",
                "DispatchList": [],
                "done": true,
                "totalSize": 0,
                "records": [],
            });
            Ok(domain::list_body_of(&empty))
        }
    }

    fn planner(list: Arc<SlowList>) -> Engine {
        let world = MemoryWorld::new(Arc::new(ManualClock::new(chrono::Utc::now())));
        let ports = Ports {
            source: list,
            ..world.ports()
        };
        let mut engine = Engine::new(ports, EngineSettings::default())
            .with_common_templates(dispatch_templates::COMMON);
        for adapter in crate::wiring::vendor_adapters() {
            engine = engine.with_vendor(adapter, &BTreeMap::new()).unwrap();
        }
        engine
    }

    #[tokio::test]
    async fn one_plan_per_vendor_at_a_time_reused_for_a_while() {
        let list = Arc::new(SlowList::default());
        let engine = planner(list.clone());
        let cache = PlanCache::reusing_for(Duration::from_secs(1));
        let requests = || list.requests.load(Ordering::SeqCst);
        let lit = VendorName::parse("LIT").unwrap();
        let plans = futures::future::join_all((0..5).map(|_| cache.rows(&engine, &lit))).await;
        assert!(plans.iter().all(Result::is_ok), "{plans:?}");
        assert_eq!(requests(), 1, "five concurrent callers, one plan");
        cache.rows(&engine, &lit).await.unwrap();
        assert_eq!(requests(), 1, "served again while fresh");
        let cts = VendorName::parse("CTS").unwrap();
        cache.rows(&engine, &cts).await.unwrap();
        assert_eq!(requests(), 2, "each vendor has its own plan");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        cache.rows(&engine, &lit).await.unwrap();
        assert_eq!(requests(), 3, "computed again once stale");
    }
}
