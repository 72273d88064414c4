//! The long-running service and the one-shot cycle: vendor leases, schedules that never
//! overlap, and graceful shutdown (SPEC §9, §12.1, §12.11).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::ports::{LeaseToken, Notifier, PortError, VendorLease};
use domain::{CycleError, CycleReport, Engine, Mode, StopReason, VendorName, telemetry};
use tokio::time::{Instant, MissedTickBehavior};
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
/// `stop` is cancelled or the lease may have lapsed, no further dispatch starts; those in
/// flight finish. The lease's age is measured from the request that last took or renewed it,
/// and checked before each dispatch starts (SPEC §13.8, §18.6).
pub async fn leased_cycle(
    engine: &Engine,
    lease: &dyn VendorLease,
    held: &HeldLeases,
    vendor: &VendorName,
    ttl: Duration,
    stop: &CancellationToken,
) -> LeasedCycle {
    let asked = Instant::now();
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
    let state = LeaseState::new(asked, ttl);
    let result = {
        let stopped = || state.stop_reason(vendor, stop);
        let cycle = engine.run_cycle_until(vendor, Mode::Execute, &stopped);
        let renewal = keep_renewed(lease, &token, &state);
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
    if state.lost.load(Ordering::SeqCst) {
        LeasedCycle::LeaseLost(result)
    } else {
        LeasedCycle::Ran(result)
    }
}

/// What a running cycle knows of its lease.
struct LeaseState {
    /// When the request that last took or renewed the lease was sent: the lease lasts `ttl`
    /// from then at most, however late the reply came.
    asked: Mutex<Instant>,
    ttl: Duration,
    /// The lease was taken by another holder, or may have lapsed.
    lost: AtomicBool,
}

impl LeaseState {
    fn new(asked: Instant, ttl: Duration) -> Self {
        Self {
            asked: Mutex::new(asked),
            ttl,
            lost: AtomicBool::new(false),
        }
    }

    /// A renewal requested at `asked` succeeded.
    fn renewed(&self, asked: Instant) {
        let mut last = self.asked.lock().unwrap_or_else(|p| p.into_inner());
        *last = (*last).max(asked);
    }

    /// Why no further dispatch may start, if one may not: a lost or lapsed lease, or shutdown.
    fn stop_reason(&self, vendor: &VendorName, stop: &CancellationToken) -> Option<StopReason> {
        let age = self
            .asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed();
        if age >= self.ttl && !self.lost.swap(true, Ordering::SeqCst) {
            tracing::warn!(%vendor, age_ms = age.as_millis(), "the vendor lease was not renewed in time; no further dispatch starts in this cycle");
        }
        if self.lost.load(Ordering::SeqCst) {
            return Some(StopReason::LeaseLost);
        }
        stop.is_cancelled().then_some(StopReason::Shutdown)
    }
}

/// Renews the lease every third of its TTL until another holder has it; each renewal that
/// succeeds counts from the instant it was requested.
async fn keep_renewed(lease: &dyn VendorLease, token: &LeaseToken, state: &LeaseState) {
    let vendor = &token.vendor;
    let every = (state.ttl / 3).max(Duration::from_millis(100));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let asked = Instant::now();
        match tokio::time::timeout(every, lease.renew(token, state.ttl)).await {
            Ok(Ok(true)) => state.renewed(asked),
            Ok(Ok(false)) => {
                if !state.lost.swap(true, Ordering::SeqCst) {
                    tracing::warn!(%vendor, "the vendor lease was lost; no further dispatch starts in this cycle");
                }
                return std::future::pending().await;
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

/// Far enough to mean "not again" for a schedule whose interval cannot be added to the clock.
const FAR_AWAY: Duration = Duration::from_secs(365 * 86_400);

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
            // Settings bound the interval; a sum past the clock's range still never panics.
            next = started
                .checked_add(control.interval)
                .unwrap_or(started + FAR_AWAY)
                .max(tokio::time::Instant::now());
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

/// Listens for SIGTERM and SIGINT from now on (call it first thing, inside the runtime), and
/// resolves when one arrives: a signal during start-up is not missed.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM and SIGINT");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_trait::async_trait;
    use domain::journal::Journal;
    use domain::memory::{ManualClock, MemoryJournal, MemoryLease, MemoryWorld};
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
        engine_over(Arc::new(SlowTickets), DISPATCHES, None)
    }

    /// An engine whose LIT list has `count` dispatches, its tickets read through `tickets`.
    fn engine_over(
        tickets: Arc<dyn TicketRepository>,
        count: usize,
        journal: Option<Arc<MemoryJournal>>,
    ) -> (Engine, VendorName) {
        let world = MemoryWorld::new(Arc::new(ManualClock::new(chrono::Utc::now())));
        let lit = VendorName::parse("LIT").unwrap();
        let records: Vec<_> = (0..count)
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
        ports.tickets = tickets;
        let settings = EngineSettings {
            concurrency: 1,
            ..EngineSettings::default()
        };
        let mut engine = Engine::new(ports, settings)
            .with_common_templates(dispatch_templates::COMMON)
            .with_vendor(Arc::new(vendor_lit::LitAdapter::new()), &BTreeMap::new())
            .unwrap();
        if let Some(journal) = journal {
            engine = engine.with_journal(journal);
        }
        (engine, lit)
    }

    /// Answers like Bruin after 10 ms, noting when each ticket read (each dispatch) started.
    #[derive(Default)]
    struct StampedTickets(Mutex<Vec<Instant>>);

    #[async_trait]
    impl TicketRepository for StampedTickets {
        async fn ticket_notes(&self, _: &TicketId) -> Result<Vec<RawTicketNote>, PortError> {
            self.0.lock().unwrap().push(Instant::now());
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(vec![])
        }
        async fn append_note(&self, _: &TicketId, _: &str) -> Result<(), PortError> {
            Ok(())
        }
    }

    /// Grants the lease; its first renewal succeeds but replies late, and later ones cannot
    /// reach the store. Notes when the successful renewal was requested.
    #[derive(Default)]
    struct LateReplyLease(Mutex<Option<Instant>>);

    #[async_trait]
    impl VendorLease for LateReplyLease {
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
            {
                let mut asked = self.0.lock().unwrap();
                if asked.is_some() {
                    return Err(PortError::Unavailable("redis down".into()));
                }
                *asked = Some(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(80)).await;
            Ok(true)
        }
        async fn release(&self, _: &LeaseToken) -> Result<bool, PortError> {
            Ok(true)
        }
    }

    #[tokio::test]
    async fn no_dispatch_starts_once_the_last_renewal_request_is_a_ttl_old() {
        // The lease lasts a TTL from the renewal request, however late the reply: it was
        // measured from the reply and checked only on renewal ticks, so dispatches went on
        // starting for up to a tick and a reply's delay after it lapsed (SPEC §18.6).
        let tickets = Arc::new(StampedTickets::default());
        let (engine, lit) = engine_over(tickets.clone(), 200, None);
        let lease = LateReplyLease::default();
        let ttl = Duration::from_millis(300);
        let outcome = leased_cycle(
            &engine,
            &lease,
            &HeldLeases::default(),
            &lit,
            ttl,
            &CancellationToken::new(),
        )
        .await;
        assert!(
            matches!(outcome, LeasedCycle::LeaseLost(Ok(_))),
            "{outcome:?}"
        );
        let renewed = lease.0.lock().unwrap().expect("one renewal succeeded");
        let starts = tickets.0.lock().unwrap().clone();
        let last = *starts.last().unwrap();
        assert!(
            last < renewed + ttl + Duration::from_millis(20),
            "a dispatch started {:?} after the lease lapsed",
            last - (renewed + ttl)
        );
        assert!(starts.len() > 20, "{}", starts.len());
        assert!(starts.len() < 200, "{}", starts.len());
    }

    #[tokio::test]
    async fn a_cycle_stopped_for_a_lapsed_lease_is_journaled_as_lease_lost() {
        let journal = Arc::new(MemoryJournal::default());
        let (engine, lit) = engine_over(Arc::new(SlowTickets), DISPATCHES, Some(journal.clone()));
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
        assert_eq!(report.stopped, Some(StopReason::LeaseLost));
        assert!(report.left > 0);
        let cycles = journal.cycles(&lit, 10).await.unwrap();
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].outcome, "lease_lost", "{cycles:?}");
        // Shutdown is journaled as such.
        let stop = CancellationToken::new();
        stop.cancel();
        let outcome = leased_cycle(
            &engine,
            &MemoryLease::default(),
            &HeldLeases::default(),
            &lit,
            Duration::from_secs(60),
            &stop,
        )
        .await;
        assert!(matches!(outcome, LeasedCycle::Ran(Ok(_))), "{outcome:?}");
        assert_eq!(
            journal.cycles(&lit, 10).await.unwrap()[0].outcome,
            "stopped"
        );
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
