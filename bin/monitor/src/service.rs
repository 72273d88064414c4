//! The long-running service and the one-shot cycle: vendor leases, schedules that never
//! overlap, and graceful shutdown (SPEC §9, §12.1, §12.11).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::ports::{LeaseToken, Notifier, PortError, VendorLease};
use domain::{CycleError, CycleReport, Engine, Mode, VendorName, telemetry};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::settings::VendorSchedule;

/// How one leased vendor cycle went.
#[derive(Debug)]
pub enum LeasedCycle {
    /// The cycle ran.
    Ran(Result<CycleReport, CycleError>),
    /// The cycle ran but lost its lease on the way (it could not be renewed in time, or another
    /// replica took it): no dispatch started after that (SPEC §13.8).
    LeaseLost(Result<CycleReport, CycleError>),
    /// Another replica holds the vendor's lease; the cycle was skipped.
    LeaseHeld,
    /// The lease store could not be reached; the cycle was skipped.
    LeaseUnavailable(PortError),
}

impl LeasedCycle {
    /// Whether the vendor's list could not be fetched or read (`once` exits 1 then).
    pub fn failed(&self) -> bool {
        matches!(
            self,
            LeasedCycle::Ran(Err(_))
                | LeasedCycle::LeaseLost(Err(_))
                | LeasedCycle::LeaseUnavailable(_)
        )
    }
}

/// The leases this process holds, so shutdown can release those of aborted cycles.
#[derive(Debug, Default)]
pub struct HeldLeases(Mutex<HashMap<VendorName, LeaseToken>>);

impl HeldLeases {
    fn insert(&self, token: &LeaseToken) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.vendor.clone(), token.clone());
    }

    fn remove(&self, vendor: &VendorName) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(vendor);
    }

    /// Releases every lease still held.
    pub async fn release_all(&self, lease: &dyn VendorLease) {
        let tokens: Vec<LeaseToken> = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, t)| t)
            .collect();
        for token in tokens {
            if let Err(error) = lease.release(&token).await {
                tracing::warn!(vendor = %token.vendor, %error, "could not release the lease; it expires by itself");
            }
        }
    }
}

/// Runs one cycle of `vendor` while holding its lease, renewing it every third of `ttl`. Once
/// `stop` is cancelled or the lease is lost, no further dispatch starts; those in flight finish.
pub async fn leased_cycle(
    engine: &Engine,
    lease: &dyn VendorLease,
    held: &HeldLeases,
    vendor: &VendorName,
    ttl: Duration,
    stop: &CancellationToken,
) -> LeasedCycle {
    let token = match lease.try_acquire(vendor, ttl).await {
        Ok(Some(token)) => token,
        Ok(None) => {
            tracing::info!(%vendor, "another replica holds the vendor lease; cycle skipped");
            return LeasedCycle::LeaseHeld;
        }
        Err(error) => {
            tracing::error!(%vendor, %error, "cannot take the vendor lease; cycle skipped");
            return LeasedCycle::LeaseUnavailable(error);
        }
    };
    held.insert(&token);
    let cycle_stop = stop.child_token();
    let lost = AtomicBool::new(false);
    let result = {
        let stopped = || cycle_stop.is_cancelled();
        let cycle = engine.run_cycle_until(vendor, Mode::Execute, &stopped);
        let renewal = keep_renewed(lease, &token, ttl, &cycle_stop, &lost);
        tokio::select! {
            result = cycle => result,
            () = renewal => unreachable!("renewal runs until the cycle ends"),
        }
    };
    match lease.release(&token).await {
        Ok(_) => held.remove(vendor),
        Err(error) => {
            tracing::warn!(%vendor, %error, "could not release the lease; it expires by itself")
        }
    }
    if lost.load(Ordering::SeqCst) {
        LeasedCycle::LeaseLost(result)
    } else {
        LeasedCycle::Ran(result)
    }
}

/// Renews the lease every third of `ttl`, forever. When another holder took it, or the last
/// successful renewal is older than `ttl` (it may have lapsed), `lost` is set and `cycle_stop`
/// cancelled: no further dispatch starts (SPEC §13.8).
async fn keep_renewed(
    lease: &dyn VendorLease,
    token: &LeaseToken,
    ttl: Duration,
    cycle_stop: &CancellationToken,
    lost: &AtomicBool,
) {
    let vendor = &token.vendor;
    let every = (ttl / 3).max(Duration::from_millis(100));
    let mut renewed = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if renewed.elapsed() > ttl && !lost.swap(true, Ordering::SeqCst) {
            tracing::warn!(%vendor, "the vendor lease could not be renewed in time; no further dispatch starts in this cycle");
            cycle_stop.cancel();
        }
        match tokio::time::timeout(every, lease.renew(token, ttl)).await {
            Ok(Ok(true)) => renewed = tokio::time::Instant::now(),
            Ok(Ok(false)) => {
                if !lost.swap(true, Ordering::SeqCst) {
                    tracing::warn!(%vendor, "the vendor lease was lost; no further dispatch starts in this cycle");
                }
                cycle_stop.cancel();
            }
            Ok(Err(error)) => tracing::warn!(%vendor, %error, "could not renew the vendor lease"),
            Err(_) => tracing::warn!(%vendor, "renewing the vendor lease timed out"),
        }
    }
}

/// One leased cycle per vendor, in order (`once`).
pub async fn run_once(
    engine: &Engine,
    lease: &dyn VendorLease,
    ttl: Duration,
    vendors: &[VendorName],
) -> Vec<LeasedCycle> {
    let held = HeldLeases::default();
    let stop = CancellationToken::new();
    let mut outcomes = Vec::new();
    for vendor in vendors {
        let outcome = leased_cycle(engine, lease, &held, vendor, ttl, &stop).await;
        match &outcome {
            LeasedCycle::Ran(Ok(report)) => tracing::info!(
                %vendor,
                records = report.records,
                dispatches = report.dispatches.len(),
                "cycle done"
            ),
            LeasedCycle::Ran(Err(error)) | LeasedCycle::LeaseLost(Err(error)) => {
                tracing::error!(%vendor, %error, "cycle failed")
            }
            LeasedCycle::LeaseLost(Ok(report)) => tracing::warn!(
                %vendor,
                dispatches = report.dispatches.len(),
                "cycle stopped early: the vendor lease was lost"
            ),
            LeasedCycle::LeaseHeld => {}
            LeasedCycle::LeaseUnavailable(error) => {
                tracing::error!(%vendor, %error, "cycle not run: the lease store cannot be reached");
            }
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// Everything a vendor's schedule needs.
#[derive(Clone)]
pub struct Scheduler {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Vendor leases.
    pub lease: Arc<dyn VendorLease>,
    /// For vendor-level alerts about leases.
    pub notifier: Arc<dyn Notifier>,
    /// Leases held now.
    pub held: Arc<HeldLeases>,
    /// Lease TTL.
    pub lease_ttl: Duration,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("lease_ttl", &self.lease_ttl)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Runs the vendor's cycles, the first at once, then one every interval from the previous
    /// start, or at once when `control` is triggered, until `shutdown` is cancelled. Cycles of
    /// one vendor never overlap: the next starts only after the previous ended.
    pub async fn run_vendor(&self, control: Arc<VendorControl>, shutdown: CancellationToken) {
        let vendor = control.name.clone();
        let mut next = tokio::time::Instant::now();
        schedule_started(&vendor, control.interval);
        loop {
            control.set_next(Some(next));
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                () = control.trigger.notified() => {}
                () = shutdown.cancelled() => break,
            }
            let started = tokio::time::Instant::now();
            control.running.store(true, Ordering::SeqCst);
            control.set_next(None);
            let outcome = leased_cycle(
                &self.engine,
                self.lease.as_ref(),
                &self.held,
                &vendor,
                self.lease_ttl,
                &shutdown,
            )
            .await;
            control.running.store(false, Ordering::SeqCst);
            count_cycle(&vendor, cycle_label(&outcome));
            if let LeasedCycle::LeaseUnavailable(error) = &outcome {
                let event = format!("cycle skipped: cannot take the vendor lease: {error}");
                let line = self.engine.vendor_alert_line(&vendor, &event);
                if let Err(error) = self.notifier.post_slack(&line).await {
                    tracing::warn!(%error, "could not post the Slack alert");
                }
            }
            next = (started + control.interval).max(tokio::time::Instant::now());
        }
        control.set_next(None);
        tracing::info!(%vendor, "schedule stopped");
    }
}

/// One vendor's schedule on this replica, as the operator API sees and drives it.
#[derive(Debug)]
pub struct VendorControl {
    /// The vendor.
    pub name: VendorName,
    /// Whether its cycles run here.
    pub enabled: bool,
    /// Time between cycle starts.
    pub interval: Duration,
    running: AtomicBool,
    next: Mutex<Option<tokio::time::Instant>>,
    trigger: tokio::sync::Notify,
}

/// What asking for a cycle now did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triggered {
    /// The schedule starts a cycle now.
    Started,
    /// A cycle is running on this replica.
    AlreadyRunning,
    /// The vendor is disabled here.
    Disabled,
}

impl VendorControl {
    /// The control of `schedule`, idle.
    pub fn new(schedule: &VendorSchedule) -> Self {
        Self {
            name: schedule.name.clone(),
            enabled: schedule.enabled,
            interval: schedule.interval,
            running: AtomicBool::new(false),
            next: Mutex::new(None),
            trigger: tokio::sync::Notify::new(),
        }
    }

    /// Whether a cycle is running here now.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// When the next cycle starts here, if scheduled.
    pub fn next_cycle(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let next = (*self.next.lock().unwrap_or_else(|p| p.into_inner()))?;
        let wait = next.saturating_duration_since(tokio::time::Instant::now());
        chrono::Duration::from_std(wait)
            .ok()
            .map(|wait| chrono::Utc::now() + wait)
    }

    /// Starts a cycle now unless one is running or the vendor is disabled.
    pub fn trigger(&self) -> Triggered {
        if !self.enabled {
            return Triggered::Disabled;
        }
        if self.is_running() {
            return Triggered::AlreadyRunning;
        }
        self.trigger.notify_one();
        Triggered::Started
    }

    fn set_next(&self, next: Option<tokio::time::Instant>) {
        *self.next.lock().unwrap_or_else(|p| p.into_inner()) = next;
    }
}

/// Publishes the vendor's interval, and the schedule's start as its last successful cycle, so
/// that a vendor that never completes a cycle here is seen as stalled too.
fn schedule_started(vendor: &VendorName, interval: Duration) {
    metrics::gauge!(telemetry::CYCLE_INTERVAL, "vendor" => vendor.to_string())
        .set(interval.as_secs_f64());
    mark_successful_cycle(vendor);
}

/// Counts a scheduled cycle's outcome; a successful one also moves the last-success time.
fn count_cycle(vendor: &VendorName, label: &'static str) {
    metrics::counter!(telemetry::CYCLES, "vendor" => vendor.to_string(), "outcome" => label)
        .increment(1);
    if label == "ok" {
        mark_successful_cycle(vendor);
    }
}

fn mark_successful_cycle(vendor: &VendorName) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    metrics::gauge!(telemetry::LAST_OK_CYCLE, "vendor" => vendor.to_string())
        .set(now.as_secs_f64());
}

fn cycle_label(outcome: &LeasedCycle) -> &'static str {
    match outcome {
        LeasedCycle::Ran(Ok(_)) => "ok",
        LeasedCycle::Ran(Err(_)) => "failed",
        LeasedCycle::LeaseHeld => "lease_held",
        LeasedCycle::LeaseUnavailable(_) => "lease_unavailable",
        LeasedCycle::LeaseLost(_) => "lease_lost",
    }
}

/// Waits for SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_trait::async_trait;
    use domain::memory::{ManualClock, MemoryLease, MemoryWorld};
    use domain::ports::TicketRepository;
    use domain::{EngineSettings, RawTicketNote, TicketId};
    use serde_json::json;

    use super::*;

    /// Answers like Bruin, slowly, so a cycle takes a while.
    struct SlowTickets;

    #[async_trait]
    impl TicketRepository for SlowTickets {
        async fn ticket_notes(&self, _: &TicketId) -> Result<Vec<RawTicketNote>, PortError> {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(vec![])
        }
        async fn append_note(&self, _: &TicketId, _: &str) -> Result<(), PortError> {
            Ok(())
        }
    }

    /// Grants the lease, then loses it at the first renewal.
    struct LosingLease;

    #[async_trait]
    impl VendorLease for LosingLease {
        async fn try_acquire(
            &self,
            vendor: &VendorName,
            _: Duration,
        ) -> Result<Option<LeaseToken>, PortError> {
            Ok(Some(LeaseToken {
                vendor: vendor.clone(),
                holder: "me".into(),
            }))
        }
        async fn renew(&self, _: &LeaseToken, _: Duration) -> Result<bool, PortError> {
            Ok(false)
        }
        async fn release(&self, _: &LeaseToken) -> Result<bool, PortError> {
            Ok(false)
        }
    }

    /// Grants the lease, then cannot reach the store to renew it.
    struct UnreachableLease;

    #[async_trait]
    impl VendorLease for UnreachableLease {
        async fn try_acquire(
            &self,
            vendor: &VendorName,
            _: Duration,
        ) -> Result<Option<LeaseToken>, PortError> {
            Ok(Some(LeaseToken {
                vendor: vendor.clone(),
                holder: "me".into(),
            }))
        }
        async fn renew(&self, _: &LeaseToken, _: Duration) -> Result<bool, PortError> {
            Err(PortError::Unavailable("redis down".into()))
        }
        async fn release(&self, _: &LeaseToken) -> Result<bool, PortError> {
            Err(PortError::Unavailable("redis down".into()))
        }
    }

    const DISPATCHES: usize = 100;

    fn slow_engine() -> (Engine, VendorName) {
        let world = MemoryWorld::new(Arc::new(ManualClock::new(chrono::Utc::now())));
        let lit = VendorName::parse("LIT").unwrap();
        let records: Vec<_> = (0..DISPATCHES)
            .map(|i| {
                json!({
                    "Dispatch_Number": format!("DIS{i}"),
                    "MetTel_Bruin_TicketID": format!("{}", 1000 + i),
                    "Dispatch_Status": "New Dispatch",
                })
            })
            .collect();
        world
            .source
            .set_list(&lit, json!({"Status": "Success", "DispatchList": records}));
        let mut ports = world.ports();
        ports.tickets = Arc::new(SlowTickets);
        let settings = EngineSettings {
            concurrency: 1,
            ..EngineSettings::default()
        };
        let engine = Engine::new(ports, settings)
            .with_common_templates(dispatch_templates::COMMON)
            .with_vendor(Arc::new(vendor_lit::LitAdapter::new()), &BTreeMap::new())
            .unwrap();
        (engine, lit)
    }

    #[tokio::test]
    async fn a_lost_lease_stops_the_cycle_from_starting_more_dispatches() {
        let (engine, lit) = slow_engine();
        let held = HeldLeases::default();
        let outcome = leased_cycle(
            &engine,
            &LosingLease,
            &held,
            &lit,
            Duration::from_millis(300),
            &CancellationToken::new(),
        )
        .await;
        let LeasedCycle::LeaseLost(Ok(report)) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(report.skipped_records.is_empty());
        assert!(!report.dispatches.is_empty());
        assert!(
            report.dispatches.len() < DISPATCHES,
            "{}",
            report.dispatches.len()
        );
    }

    #[tokio::test]
    async fn a_lease_that_cannot_be_renewed_stops_the_cycle_once_it_may_have_lapsed() {
        let (engine, lit) = slow_engine();
        let outcome = leased_cycle(
            &engine,
            &UnreachableLease,
            &HeldLeases::default(),
            &lit,
            Duration::from_millis(300),
            &CancellationToken::new(),
        )
        .await;
        let LeasedCycle::LeaseLost(Ok(report)) = &outcome else {
            panic!("{outcome:?}")
        };
        // 20 ms a dispatch, one at a time: about 15 fit in the 300 ms the lease lasts.
        assert!(
            report.dispatches.len() < DISPATCHES / 2,
            "{}",
            report.dispatches.len()
        );
        assert!(
            !outcome.failed(),
            "the list was read; the rest waits for the next cycle"
        );
        assert_eq!(cycle_label(&outcome), "lease_lost");
    }

    #[tokio::test]
    async fn shutdown_stops_the_cycle_and_releases_the_lease() {
        let (engine, lit) = slow_engine();
        let lease = MemoryLease::default();
        let held = HeldLeases::default();
        let stop = CancellationToken::new();
        let cycle = leased_cycle(&engine, &lease, &held, &lit, Duration::from_secs(60), &stop);
        let trigger = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            stop.cancel();
        };
        let (outcome, ()) = tokio::join!(cycle, trigger);
        let LeasedCycle::Ran(Ok(report)) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(!report.dispatches.is_empty());
        assert!(report.dispatches.len() < DISPATCHES);
        // The lease is free again.
        assert!(
            lease
                .try_acquire(&lit, Duration::from_secs(1))
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_lease_held_elsewhere_skips_the_cycle() {
        let (engine, lit) = slow_engine();
        let lease = MemoryLease::default();
        let _other = lease
            .try_acquire(&lit, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        let outcome = leased_cycle(
            &engine,
            &lease,
            &HeldLeases::default(),
            &lit,
            Duration::from_secs(60),
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(outcome, LeasedCycle::LeaseHeld));
        assert!(
            !outcome.failed(),
            "a held lease is not a failure (SPEC §12.1)"
        );
    }
}
