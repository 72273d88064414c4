//! In-memory implementations of every port, for the demo, tests and other services' examples.
//! They share one [`WorldLog`] so a run can be printed as a timeline.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::engine::Ports;
use crate::ports::{
    Claim, Clock, DispatchRegistry, DispatchSource, Email, EntryState, LargeMessageStore,
    LeaseToken, LedgerEntry, LedgerKey, Notifier, PortError, SmsLedger, StepKey, TicketRepository,
    VendorLease,
};
use crate::safeguards::{CAP_WINDOW, OptOut, Reservation, SafeguardMark, Safeguards};
use crate::{DispatchNumber, PhoneE164, RawTicketNote, TicketId, VendorName};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }

    /// Sets the time.
    pub fn set(&self, now: DateTime<Utc>) {
        *lock(&self.0) = now;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: chrono::Duration) {
        *lock(&self.0) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

/// What a port did, for the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorldEvent {
    /// An SMS went out.
    Sms {
        /// The recipient.
        to: PhoneE164,
        /// The text.
        text: String,
        /// Its idempotency key.
        key: String,
    },
    /// A note was appended.
    Note {
        /// The ticket.
        ticket: TicketId,
        /// The text.
        text: String,
    },
    /// A Slack line was posted.
    Slack(String),
    /// An email was sent.
    Email(Email),
    /// A registry key was written.
    Registered {
        /// The dispatch number.
        dispatch_number: String,
        /// The value.
        value: serde_json::Value,
    },
}

/// One log line with its (clock) time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldEntry {
    /// When it happened, by the world's clock.
    pub at: DateTime<Utc>,
    /// What happened.
    pub event: WorldEvent,
}

/// The shared record of everything the in-memory ports did.
#[derive(Clone)]
pub struct WorldLog {
    entries: Arc<Mutex<Vec<WorldEntry>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WorldLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorldLog")
            .field("entries", &lock(&self.entries).len())
            .finish()
    }
}

impl WorldLog {
    /// An empty log stamped by `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: Arc::default(),
            clock,
        }
    }

    fn record(&self, event: WorldEvent) {
        lock(&self.entries).push(WorldEntry {
            at: self.clock.now(),
            event,
        });
    }

    /// Every entry so far.
    pub fn entries(&self) -> Vec<WorldEntry> {
        lock(&self.entries).clone()
    }

    /// Removes and returns every entry so far.
    pub fn drain(&self) -> Vec<WorldEntry> {
        std::mem::take(&mut *lock(&self.entries))
    }
}

/// Vendor lists set by the test or demo.
#[derive(Debug, Default)]
pub struct MemorySource {
    lists: Mutex<HashMap<VendorName, Result<serde_json::Value, PortError>>>,
}

impl MemorySource {
    /// Sets the list body `vendor` returns.
    pub fn set_list(&self, vendor: &VendorName, body: serde_json::Value) {
        lock(&self.lists).insert(vendor.clone(), Ok(body));
    }

    /// Makes `vendor`'s fetch fail.
    pub fn fail(&self, vendor: &VendorName, error: PortError) {
        lock(&self.lists).insert(vendor.clone(), Err(error));
    }
}

#[async_trait]
impl DispatchSource for MemorySource {
    async fn fetch_dispatches(&self, vendor: &VendorName) -> Result<crate::ListBody, PortError> {
        match lock(&self.lists).get(vendor) {
            Some(Ok(body)) => Ok(crate::list_body_of(body)),
            Some(Err(error)) => Err(error.clone()),
            None => Err(PortError::Unavailable(format!("no list for {vendor}"))),
        }
    }
}

/// Bruin tickets in memory.
#[derive(Debug)]
pub struct MemoryTickets {
    notes: Mutex<HashMap<TicketId, Vec<RawTicketNote>>>,
    failing_appends: Mutex<HashSet<TicketId>>,
    log: WorldLog,
    next_id: Mutex<i64>,
}

impl MemoryTickets {
    /// No tickets yet.
    pub fn new(log: WorldLog) -> Self {
        Self {
            notes: Mutex::default(),
            failing_appends: Mutex::default(),
            log,
            next_id: Mutex::new(1),
        }
    }

    /// Adds a note as another service (the portal) would, without logging it.
    pub fn seed_note(&self, ticket: &TicketId, text: &str, created: DateTime<Utc>) {
        let id = self.take_id();
        lock(&self.notes)
            .entry(ticket.clone())
            .or_default()
            .push(RawTicketNote {
                note_id: Some(id),
                note_value: Some(text.to_owned()),
                created_date: Some(created.to_rfc3339()),
            });
    }

    /// The ticket's notes' texts, in the order written.
    pub fn texts(&self, ticket: &TicketId) -> Vec<String> {
        lock(&self.notes)
            .get(ticket)
            .map(|notes| notes.iter().filter_map(|n| n.note_value.clone()).collect())
            .unwrap_or_default()
    }

    /// Makes appends to `ticket` fail (or succeed again).
    pub fn set_append_failing(&self, ticket: &TicketId, failing: bool) {
        let mut set = lock(&self.failing_appends);
        if failing {
            set.insert(ticket.clone());
        } else {
            set.remove(ticket);
        }
    }

    fn take_id(&self) -> i64 {
        let mut next = lock(&self.next_id);
        *next += 1;
        *next
    }
}

#[async_trait]
impl TicketRepository for MemoryTickets {
    async fn ticket_notes(&self, ticket: &TicketId) -> Result<Vec<RawTicketNote>, PortError> {
        Ok(lock(&self.notes).get(ticket).cloned().unwrap_or_default())
    }

    async fn append_note(&self, ticket: &TicketId, note: &str) -> Result<(), PortError> {
        if lock(&self.failing_appends).contains(ticket) {
            return Err(PortError::Rejected {
                status: 500,
                detail: "Bruin is failing".into(),
            });
        }
        let id = self.take_id();
        let created = self.log.clock.now();
        lock(&self.notes)
            .entry(ticket.clone())
            .or_default()
            .push(RawTicketNote {
                note_id: Some(id),
                note_value: Some(note.to_owned()),
                created_date: Some(created.to_rfc3339()),
            });
        self.log.record(WorldEvent::Note {
            ticket: ticket.clone(),
            text: note.to_owned(),
        });
        Ok(())
    }
}

/// A notifier that logs what it sends.
#[derive(Debug)]
pub struct MemoryNotifier {
    log: WorldLog,
    failing_sms: Mutex<bool>,
}

impl MemoryNotifier {
    /// Records into `log`.
    pub fn new(log: WorldLog) -> Self {
        Self {
            log,
            failing_sms: Mutex::new(false),
        }
    }

    /// Makes every SMS fail (or succeed again).
    pub fn set_sms_failing(&self, failing: bool) {
        *lock(&self.failing_sms) = failing;
    }
}

#[async_trait]
impl Notifier for MemoryNotifier {
    async fn send_sms(&self, to: &PhoneE164, text: &str, key: &str) -> Result<(), PortError> {
        if *lock(&self.failing_sms) {
            return Err(PortError::Unavailable("SMS gateway is down".into()));
        }
        self.log.record(WorldEvent::Sms {
            to: to.clone(),
            text: text.to_owned(),
            key: key.to_owned(),
        });
        Ok(())
    }

    async fn post_slack(&self, message: &str) -> Result<(), PortError> {
        self.log.record(WorldEvent::Slack(message.to_owned()));
        Ok(())
    }

    async fn send_email(&self, email: &Email) -> Result<(), PortError> {
        self.log.record(WorldEvent::Email(email.clone()));
        Ok(())
    }
}

/// The registry in memory (no expiry).
#[derive(Debug)]
pub struct MemoryRegistry {
    keys: Mutex<BTreeMap<String, serde_json::Value>>,
    log: WorldLog,
}

impl MemoryRegistry {
    /// Empty.
    pub fn new(log: WorldLog) -> Self {
        Self {
            keys: Mutex::default(),
            log,
        }
    }

    /// The value under a dispatch number.
    pub fn get(&self, dispatch_number: &str) -> Option<serde_json::Value> {
        lock(&self.keys).get(dispatch_number).cloned()
    }
}

#[async_trait]
impl DispatchRegistry for MemoryRegistry {
    async fn register(
        &self,
        dispatch_number: &str,
        value: &serde_json::Value,
    ) -> Result<bool, PortError> {
        let mut keys = lock(&self.keys);
        if keys.contains_key(dispatch_number) {
            return Ok(false);
        }
        keys.insert(dispatch_number.to_owned(), value.clone());
        self.log.record(WorldEvent::Registered {
            dispatch_number: dispatch_number.to_owned(),
            value: value.clone(),
        });
        Ok(true)
    }
}

/// The SMS ledger in memory (claims never expire; one process only).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    dispatches: Mutex<BTreeMap<(VendorName, DispatchNumber), BTreeMap<String, LedgerEntry>>>,
    /// Notes claimed (false) or appended (true), by step.
    notes: Mutex<BTreeMap<String, bool>>,
}

fn step_id(key: &StepKey) -> String {
    format!("{}:{}:{}", key.vendor, key.dispatch_number, key.entry_id())
}

impl MemoryLedger {
    fn set_state(&self, key: &LedgerKey, state: EntryState) {
        let mut dispatches = lock(&self.dispatches);
        let ledger = dispatches
            .entry((key.vendor.clone(), key.dispatch_number.clone()))
            .or_default();
        let entry = ledger.entry(key.entry_id()).or_insert_with(|| LedgerEntry {
            key: key.clone(),
            state,
            note: String::new(),
        });
        entry.state = state;
    }
}

#[async_trait]
impl SmsLedger for MemoryLedger {
    async fn entries(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Vec<LedgerEntry>, PortError> {
        Ok(lock(&self.dispatches)
            .get(&(vendor.clone(), dispatch_number.clone()))
            .map(|ledger| ledger.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn claim(&self, key: &LedgerKey, note: &str, _ttl: Duration) -> Result<Claim, PortError> {
        let mut dispatches = lock(&self.dispatches);
        let ledger = dispatches
            .entry((key.vendor.clone(), key.dispatch_number.clone()))
            .or_default();
        match ledger.get(&key.entry_id()).map(|entry| entry.state) {
            Some(EntryState::Sent) => Ok(Claim::AlreadySent),
            Some(EntryState::Claimed) => Ok(Claim::HeldElsewhere),
            Some(EntryState::Uncertain) | None => {
                let entry = LedgerEntry {
                    key: key.clone(),
                    state: EntryState::Claimed,
                    note: note.to_owned(),
                };
                ledger.insert(key.entry_id(), entry);
                Ok(Claim::Claimed)
            }
        }
    }

    async fn mark_sent(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.set_state(key, EntryState::Sent);
        Ok(())
    }

    async fn mark_uncertain(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.set_state(key, EntryState::Uncertain);
        Ok(())
    }

    async fn claim_note(&self, key: &StepKey, _ttl: Duration) -> Result<Claim, PortError> {
        let mut notes = lock(&self.notes);
        match notes.get(&step_id(key)) {
            Some(true) => Ok(Claim::AlreadySent),
            Some(false) => Ok(Claim::HeldElsewhere),
            None => {
                notes.insert(step_id(key), false);
                Ok(Claim::Claimed)
            }
        }
    }

    async fn note_appended(&self, key: &StepKey) -> Result<(), PortError> {
        lock(&self.notes).insert(step_id(key), true);
        Ok(())
    }

    async fn release_note(&self, key: &StepKey) -> Result<(), PortError> {
        let mut notes = lock(&self.notes);
        if notes.get(&step_id(key)) == Some(&false) {
            notes.remove(&step_id(key));
        }
        Ok(())
    }

    async fn release(&self, key: &LedgerKey) -> Result<(), PortError> {
        let mut dispatches = lock(&self.dispatches);
        if let Some(ledger) = dispatches.get_mut(&(key.vendor.clone(), key.dispatch_number.clone()))
            && ledger.get(&key.entry_id()).map(|e| e.state) == Some(EntryState::Claimed)
        {
            ledger.remove(&key.entry_id());
        }
        Ok(())
    }
}

/// Vendor leases in memory (no expiry; one process only).
#[derive(Debug, Default)]
pub struct MemoryLease {
    held: Mutex<HashMap<VendorName, String>>,
    counter: Mutex<u64>,
}

#[async_trait]
impl VendorLease for MemoryLease {
    async fn try_acquire(
        &self,
        vendor: &VendorName,
        _ttl: Duration,
    ) -> Result<Option<LeaseToken>, PortError> {
        let mut held = lock(&self.held);
        if held.contains_key(vendor) {
            return Ok(None);
        }
        let mut counter = lock(&self.counter);
        *counter += 1;
        let holder = format!("memory-{counter}");
        held.insert(vendor.clone(), holder.clone());
        Ok(Some(LeaseToken {
            vendor: vendor.clone(),
            holder,
        }))
    }

    async fn renew(&self, token: &LeaseToken, _ttl: Duration) -> Result<bool, PortError> {
        Ok(lock(&self.held).get(&token.vendor) == Some(&token.holder))
    }

    async fn release(&self, token: &LeaseToken) -> Result<bool, PortError> {
        let mut held = lock(&self.held);
        if held.get(&token.vendor) == Some(&token.holder) {
            held.remove(&token.vendor);
            return Ok(true);
        }
        Ok(false)
    }
}

/// Large NATS messages in memory (no expiry).
#[derive(Debug, Default)]
pub struct MemoryLargeMessages {
    payloads: Mutex<HashMap<String, String>>,
}

impl MemoryLargeMessages {
    /// How many payloads are stored now.
    pub fn len(&self) -> usize {
        lock(&self.payloads).len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl LargeMessageStore for MemoryLargeMessages {
    async fn put(&self, token: &str, json: &str, _ttl: Duration) -> Result<(), PortError> {
        lock(&self.payloads).insert(token.to_owned(), json.to_owned());
        Ok(())
    }

    async fn take(&self, token: &str) -> Result<Option<String>, PortError> {
        Ok(lock(&self.payloads).remove(token))
    }
}

/// The safeguards in memory (SPEC §17): opt-outs, pauses and daily counts, one process only.
/// Pauses do not expire. [`set_failing`](Self::set_failing) makes every call fail, as when
/// the store is down.
#[derive(Debug, Default)]
pub struct MemorySafeguards {
    state: Mutex<SafeguardState>,
}

#[derive(Debug, Default)]
struct SafeguardState {
    opt_outs: BTreeMap<PhoneE164, SafeguardMark>,
    pauses: BTreeMap<(VendorName, DispatchNumber), SafeguardMark>,
    /// Reservations per number: when, and the text's id.
    texts: HashMap<PhoneE164, Vec<(DateTime<Utc>, String)>>,
    /// When each number's last cap alert went out.
    alerted: HashMap<PhoneE164, DateTime<Utc>>,
    failing: bool,
}

impl MemorySafeguards {
    /// Makes every call fail as unavailable (or work again).
    pub fn set_failing(&self, failing: bool) {
        lock(&self.state).failing = failing;
    }

    fn state(&self) -> Result<MutexGuard<'_, SafeguardState>, PortError> {
        let state = lock(&self.state);
        if state.failing {
            return Err(PortError::Unavailable(
                "the safeguards store is down".into(),
            ));
        }
        Ok(state)
    }
}

impl SafeguardState {
    /// The number's reservations still in the window before `now`.
    fn window(
        &mut self,
        phone: &PhoneE164,
        now: DateTime<Utc>,
    ) -> &mut Vec<(DateTime<Utc>, String)> {
        let window = chrono::Duration::from_std(CAP_WINDOW).unwrap_or_default();
        let texts = self.texts.entry(phone.clone()).or_default();
        texts.retain(|(at, _)| *at > now - window);
        texts
    }
}

#[async_trait]
impl Safeguards for MemorySafeguards {
    async fn opted_out(&self, phones: &[PhoneE164]) -> Result<BTreeSet<PhoneE164>, PortError> {
        let state = self.state()?;
        Ok(phones
            .iter()
            .filter(|phone| state.opt_outs.contains_key(*phone))
            .cloned()
            .collect())
    }

    async fn add_opt_out(
        &self,
        phone: &PhoneE164,
        mark: &SafeguardMark,
    ) -> Result<bool, PortError> {
        let mut state = self.state()?;
        if state.opt_outs.contains_key(phone) {
            return Ok(false);
        }
        state.opt_outs.insert(phone.clone(), mark.clone());
        Ok(true)
    }

    async fn remove_opt_out(&self, phone: &PhoneE164) -> Result<bool, PortError> {
        Ok(self.state()?.opt_outs.remove(phone).is_some())
    }

    async fn opt_outs(&self) -> Result<Vec<OptOut>, PortError> {
        Ok(self
            .state()?
            .opt_outs
            .iter()
            .map(|(phone, mark)| OptOut {
                phone: phone.clone(),
                mark: mark.clone(),
            })
            .collect())
    }

    async fn pause(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
        mark: &SafeguardMark,
    ) -> Result<bool, PortError> {
        let key = (vendor.clone(), dispatch_number.clone());
        Ok(self.state()?.pauses.insert(key, mark.clone()).is_none())
    }

    async fn resume(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Option<SafeguardMark>, PortError> {
        let key = (vendor.clone(), dispatch_number.clone());
        Ok(self.state()?.pauses.remove(&key))
    }

    async fn paused(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Option<SafeguardMark>, PortError> {
        let key = (vendor.clone(), dispatch_number.clone());
        Ok(self.state()?.pauses.get(&key).cloned())
    }

    async fn texts_in_window(
        &self,
        phone: &PhoneE164,
        now: DateTime<Utc>,
    ) -> Result<u32, PortError> {
        let mut state = self.state()?;
        Ok(u32::try_from(state.window(phone, now).len()).unwrap_or(u32::MAX))
    }

    async fn reserve(
        &self,
        phone: &PhoneE164,
        id: &str,
        cap: u32,
        now: DateTime<Utc>,
    ) -> Result<Reservation, PortError> {
        let mut state = self.state()?;
        let texts = state.window(phone, now);
        if texts.iter().any(|(_, held)| held == id) {
            return Ok(Reservation::Reserved);
        }
        let count = u32::try_from(texts.len()).unwrap_or(u32::MAX);
        if count >= cap {
            return Ok(Reservation::Full { count });
        }
        texts.push((now, id.to_owned()));
        Ok(Reservation::Reserved)
    }

    async fn release(&self, phone: &PhoneE164, id: &str) -> Result<(), PortError> {
        if let Some(texts) = self.state()?.texts.get_mut(phone) {
            texts.retain(|(_, held)| held != id);
        }
        Ok(())
    }

    async fn first_cap_alert(
        &self,
        phone: &PhoneE164,
        now: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let mut state = self.state()?;
        let window = chrono::Duration::from_std(CAP_WINDOW).unwrap_or_default();
        match state.alerted.get(phone) {
            Some(at) if *at > now - window => Ok(false),
            _ => {
                state.alerted.insert(phone.clone(), now);
                Ok(true)
            }
        }
    }
}

/// A whole in-memory world: every port, one log, one clock.
#[derive(Debug, Clone)]
pub struct MemoryWorld {
    /// The clock.
    pub clock: Arc<ManualClock>,
    /// The log all ports write to.
    pub log: WorldLog,
    /// Vendor lists.
    pub source: Arc<MemorySource>,
    /// Tickets.
    pub tickets: Arc<MemoryTickets>,
    /// SMS, Slack, email.
    pub notifier: Arc<MemoryNotifier>,
    /// The registry.
    pub registry: Arc<MemoryRegistry>,
    /// The SMS ledger.
    pub ledger: Arc<MemoryLedger>,
    /// Vendor leases.
    pub lease: Arc<MemoryLease>,
    /// Opt-outs, pauses and daily counts.
    pub safeguards: Arc<MemorySafeguards>,
}

impl MemoryWorld {
    /// A fresh world at the clock's time.
    pub fn new(clock: Arc<ManualClock>) -> Self {
        let log = WorldLog::new(clock.clone());
        Self {
            source: Arc::default(),
            tickets: Arc::new(MemoryTickets::new(log.clone())),
            notifier: Arc::new(MemoryNotifier::new(log.clone())),
            registry: Arc::new(MemoryRegistry::new(log.clone())),
            ledger: Arc::default(),
            lease: Arc::default(),
            safeguards: Arc::default(),
            log,
            clock,
        }
    }

    /// The engine's ports over this world.
    pub fn ports(&self) -> Ports {
        Ports {
            source: self.source.clone(),
            tickets: self.tickets.clone(),
            notifier: self.notifier.clone(),
            registry: self.registry.clone(),
            ledger: self.ledger.clone(),
            safeguards: self.safeguards.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// The journal in memory (SPEC §14), with the same bounds as the Redis one.
#[derive(Debug, Default)]
pub struct MemoryJournal {
    state: Mutex<JournalState>,
}

#[derive(Debug, Default)]
struct JournalState {
    entries: HashMap<(String, String), Vec<crate::journal::JournalEntry>>,
    cycles: HashMap<String, Vec<crate::journal::CycleRecord>>,
    dispatches: HashMap<String, BTreeMap<String, crate::journal::DispatchSnapshot>>,
}

impl MemoryJournal {
    /// Appends a dispatch's entries, keeping the last [`crate::journal::MAX_ENTRIES`].
    fn keep_entries(&self, vendor: &str, number: &str, entries: Vec<crate::journal::JournalEntry>) {
        if entries.is_empty() {
            return;
        }
        let mut state = lock(&self.state);
        let kept = state
            .entries
            .entry((vendor.to_owned(), number.to_owned()))
            .or_default();
        kept.extend(entries);
        let excess = kept.len().saturating_sub(crate::journal::MAX_ENTRIES);
        kept.drain(..excess);
    }
}

#[async_trait]
impl crate::journal::Journal for MemoryJournal {
    async fn record_dispatch(
        &self,
        mut snapshot: crate::journal::DispatchSnapshot,
        entries: Vec<crate::journal::JournalEntry>,
    ) -> Result<(), PortError> {
        let vendor = snapshot.vendor.clone();
        let number = snapshot.dispatch_number.clone();
        self.keep_entries(&vendor, &number, entries);
        let mut state = lock(&self.state);
        let snapshots = state.dispatches.entry(vendor).or_default();
        if snapshot.last_action.is_none() {
            snapshot.last_action = snapshots.get(&number).and_then(|s| s.last_action.clone());
        }
        snapshots.insert(number, snapshot);
        Ok(())
    }

    async fn record_entries(
        &self,
        vendor: &VendorName,
        dispatch_number: &str,
        entries: Vec<crate::journal::JournalEntry>,
    ) -> Result<(), PortError> {
        self.keep_entries(vendor.as_str(), dispatch_number, entries);
        Ok(())
    }

    async fn record_cycle(
        &self,
        cycle: crate::journal::CycleRecord,
        seen: Option<Vec<String>>,
    ) -> Result<(), PortError> {
        let mut state = lock(&self.state);
        if let Some(seen) = seen {
            let seen: HashSet<String> = seen.into_iter().collect();
            if let Some(snapshots) = state.dispatches.get_mut(&cycle.vendor) {
                snapshots.retain(|number, _| seen.contains(number));
            }
        }
        let cycles = state.cycles.entry(cycle.vendor.clone()).or_default();
        cycles.insert(0, cycle);
        cycles.truncate(crate::journal::MAX_CYCLES);
        Ok(())
    }

    async fn cycles(
        &self,
        vendor: &VendorName,
        limit: usize,
    ) -> Result<Vec<crate::journal::CycleRecord>, PortError> {
        let state = lock(&self.state);
        let cycles = state
            .cycles
            .get(vendor.as_str())
            .cloned()
            .unwrap_or_default();
        Ok(cycles.into_iter().take(limit).collect())
    }

    async fn dispatches(
        &self,
        vendor: &VendorName,
    ) -> Result<Vec<crate::journal::DispatchSnapshot>, PortError> {
        let state = lock(&self.state);
        Ok(state
            .dispatches
            .get(vendor.as_str())
            .map(|snapshots| snapshots.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn dispatch(
        &self,
        vendor: &VendorName,
        dispatch_number: &str,
    ) -> Result<Option<crate::journal::DispatchHistory>, PortError> {
        let state = lock(&self.state);
        let snapshot = state
            .dispatches
            .get(vendor.as_str())
            .and_then(|snapshots| snapshots.get(dispatch_number).cloned());
        let entries = state
            .entries
            .get(&(vendor.to_string(), dispatch_number.to_owned()))
            .cloned()
            .unwrap_or_default();
        Ok((snapshot.is_some() || !entries.is_empty())
            .then(|| crate::journal::DispatchHistory::in_time_order(snapshot, entries)))
    }
}
