//! The bridge services the dispatch monitor talks to, simulated over a real NATS server: every
//! subject of SPEC §3 answered as the real bridges would — each wired vendor's dispatch list,
//! Bruin ticket details and note appends (notes over 1,500 characters refused with 400), SMS
//! (delivered once per `idempotency_key`, SPEC §13.1), Slack and email — with large messages
//! through Redis when a Redis URL is given. A [`Scenario`] describes the world and its timeline;
//! [`Fault`]s make subjects fail, go silent, answer bad JSON or answer late. Everything the
//! monitor sent lands in the [`Outbox`] and, as it happens, in a stream of [`SimEvent`]s.
//!
//! The `dispatch-sim` binary, the end-to-end tests and the benchmarks use it. It knows no
//! vendor's JSON: a vendor's records come from its adapter ([`VendorAdapter::record_for`] and
//! [`VendorAdapter::list_body`]), so a newly wired vendor is simulated with no change here.

#![warn(missing_docs)]

pub mod faults;
pub mod http;
pub mod scenario;
mod serve;
pub mod timeline;
mod world;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use domain::ports::LargeMessageStore;
use domain::{DispatchSpec, VendorAdapter, VendorName};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use faults::Fault;
pub use scenario::{Scenario, ScenarioError};
pub use world::{AppendedNote, MAX_NOTE_CHARS, Outbox, SentSms, SimEvent};

use world::World;

/// The subjects besides the vendors' lists (SPEC §3).
pub mod subjects {
    /// Ticket details and notes.
    pub const TICKET_DETAILS: &str = "bruin.ticket.details.request";
    /// Appending a note.
    pub const NOTE_APPEND: &str = "bruin.ticket.note.append.request";
    /// One SMS.
    pub const SMS: &str = "notification.sms.request";
    /// One Slack line.
    pub const SLACK: &str = "notification.slack.request";
    /// One email.
    pub const EMAIL: &str = "notification.email.request";
    /// All of them.
    pub const ALL: [&str; 5] = [TICKET_DETAILS, NOTE_APPEND, SMS, SLACK, EMAIL];
}

/// A vendor's list subject, e.g. `lit.dispatch.get`.
pub fn list_subject(vendor: &VendorName) -> String {
    format!("{}.dispatch.get", vendor.lower())
}

/// The simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// NATS could not be used.
    #[error("NATS: {0}")]
    Nats(String),
    /// Redis could not be used.
    #[error("Redis: {0}")]
    Redis(String),
}

/// What the simulator connects to and serves.
#[derive(Clone)]
pub struct SimConfig {
    /// The NATS server.
    pub nats_url: String,
    /// Redis, for large messages; without it large replies are sent as they are.
    pub redis_url: Option<String>,
    /// The vendors whose lists it serves (an empty list each until told otherwise).
    pub vendors: Vec<Arc<dyn VendorAdapter>>,
    /// Whether SMS with a known idempotency key are answered without delivering again.
    pub deduplicate_sms: bool,
    /// Whether every request envelope is kept for inspection (tests).
    pub record_requests: bool,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field(
                "vendors",
                &self.vendors.iter().map(|v| v.name()).collect::<Vec<_>>(),
            )
            .field("deduplicate_sms", &self.deduplicate_sms)
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// Serves `vendors` over `nats_url`, deduplicating SMS, recording nothing extra.
    pub fn new(nats_url: &str, vendors: Vec<Arc<dyn VendorAdapter>>) -> Self {
        Self {
            nats_url: nats_url.to_owned(),
            redis_url: None,
            vendors,
            deduplicate_sms: true,
            record_requests: false,
        }
    }
}

/// What the bridge tasks share.
pub(crate) struct Shared {
    world: Mutex<World>,
    events: broadcast::Sender<SimEvent>,
    client: async_nats::Client,
    store: Option<Arc<dyn LargeMessageStore>>,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn emit(&self, event: SimEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }
}

/// The running simulator; its bridges stop when it is dropped.
pub struct Sim {
    shared: Arc<Shared>,
    started: DateTime<Utc>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// Connects and answers every subject; returns once the subscriptions are in place.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        let client = async_nats::ConnectOptions::new()
            .name("dispatch-sim")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(
                config
                    .nats_url
                    .split(',')
                    .map(str::trim)
                    .filter(|seed| !seed.is_empty())
                    .collect::<Vec<_>>(),
            )
            .await
            .map_err(|error| SimError::Nats(error.to_string()))?;
        let store: Option<Arc<dyn LargeMessageStore>> = match &config.redis_url {
            Some(url) => {
                let redis = infra_redis::RedisConnection::connect(url, Duration::from_secs(2))
                    .await
                    .map_err(|error| SimError::Redis(error.to_string()))?;
                Some(Arc::new(redis.large_messages()))
            }
            None => None,
        };
        let mut world = World::new(&config.vendors);
        world.deduplicate_sms = config.deduplicate_sms;
        world.requests = config.record_requests.then(Vec::new);
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            events,
            client: client.clone(),
            store,
        });
        let mut subjects: Vec<String> = subjects::ALL.iter().map(|s| (*s).to_owned()).collect();
        subjects.extend(config.vendors.iter().map(|v| list_subject(v.name())));
        let mut tasks = Vec::new();
        for subject in subjects {
            let task = serve::serve(shared.clone(), subject)
                .await
                .map_err(|error| SimError::Nats(error.to_string()))?;
            tasks.push(task);
        }
        client
            .flush()
            .await
            .map_err(|error| SimError::Nats(error.to_string()))?;
        Ok(Self {
            shared,
            started: Utc::now(),
            tasks: Mutex::new(tasks),
        })
    }

    /// When it started; scenario times are after this.
    pub fn started(&self) -> DateTime<Utc> {
        self.started
    }

    /// The live timeline: every event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SimEvent> {
        self.shared.events.subscribe()
    }

    /// Adds `spec` to `vendor`'s list, or replaces the dispatch of the same number.
    pub fn upsert(&self, vendor: &VendorName, spec: DispatchSpec) {
        if !self.shared.lock().upsert(vendor, spec) {
            tracing::warn!(%vendor, "the simulator does not serve this vendor");
        }
    }

    /// Changes one of `vendor`'s dispatches; `false` when it is not listed.
    pub fn update(
        &self,
        vendor: &VendorName,
        number: &str,
        change: impl FnOnce(&mut DispatchSpec),
    ) -> bool {
        let mut world = self.shared.lock();
        match world.dispatch_mut(vendor, number) {
            Some(spec) => {
                change(spec);
                true
            }
            None => false,
        }
    }

    /// Serves these raw records as `vendor`'s list instead of its dispatches (fixtures).
    pub fn set_records(&self, vendor: &VendorName, records: Vec<Value>) {
        if let Some(world) = self.shared.lock().vendors.get_mut(vendor) {
            world.raw = Some(records);
        }
    }

    /// Adds a note to a ticket, as another service (the portal) would.
    pub fn seed_note(&self, ticket: &str, text: &str) {
        self.shared.lock().seed_note(ticket, text, Utc::now());
    }

    /// Writes the portal's Dispatch Requested note for `note_key` on `ticket`: the dispatch
    /// becomes ours.
    pub fn book(&self, ticket: &str, note_key: &str) {
        self.seed_note(
            ticket,
            &format!(
                "#*MetTel's IPA*# {note_key}\nDispatch Management - Dispatch Requested\n\n\
                 Please see the summary below."
            ),
        );
    }

    /// Sets a fault.
    pub fn add_fault(&self, fault: &Fault) {
        self.shared.lock().faults.add(fault);
        self.shared.emit(SimEvent::Fault {
            what: fault.describe(),
        });
    }

    /// Drops every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Whether SMS with a known idempotency key are answered without delivering again.
    pub fn set_deduplicate_sms(&self, deduplicate: bool) {
        self.shared.lock().deduplicate_sms = deduplicate;
    }

    /// Who each ticket and phone of the simulated dispatches belongs to, for the timeline.
    pub fn labels(&self) -> timeline::Labels {
        let world = self.shared.lock();
        let vendors: Vec<_> = world
            .vendors
            .iter()
            .map(|(name, vendor)| (name.clone(), vendor.dispatches.clone()))
            .collect();
        timeline::Labels::of(&vendors)
    }

    /// Everything sent so far.
    pub fn outbox(&self) -> Outbox {
        self.shared.lock().outbox.clone()
    }

    /// The texts of the notes on `ticket` now, seeded ones included.
    pub fn ticket_notes(&self, ticket: &str) -> Vec<String> {
        self.shared
            .lock()
            .tickets
            .get(ticket)
            .map(|notes| {
                notes
                    .iter()
                    .filter_map(|note| note["noteValue"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many ticket-details requests `ticket` got.
    pub fn details_requests(&self, ticket: &str) -> usize {
        self.shared
            .lock()
            .details_requests
            .get(ticket)
            .copied()
            .unwrap_or(0)
    }

    /// Ticket-details requests in all.
    pub fn details_requests_total(&self) -> usize {
        self.shared.lock().details_requests.values().sum()
    }

    /// How long the bridge held the ticket-details requests in all, from receipt to the
    /// published reply (the added latency, the timer's rounding and the simulator's own work):
    /// no monitor finishes a request sooner.
    pub fn details_held_total(&self) -> std::time::Duration {
        self.shared.lock().details_held
    }

    /// Every request envelope so far, with its subject (only with `record_requests`).
    pub fn requests(&self) -> Vec<(String, Value)> {
        self.shared.lock().requests.clone().unwrap_or_default()
    }

    /// Loads `scenario`'s dispatches and notes now and plays its timeline in the background,
    /// each time multiplied by `time_scale` (1.0: as written; 0.1: ten times faster).
    pub fn play(&self, scenario: &Scenario, time_scale: f64) {
        let start = self.started;
        let scale = |at: Duration| at.mul_f64(time_scale.max(0.0));
        let mut later = Vec::new();
        for dispatch in &scenario.dispatches {
            let mut spec = dispatch.spec.clone();
            if let Some((after, zone)) = &dispatch.appointment {
                spec.appointment =
                    scenario::local_time(start, *after, zone).map(|t| (t, zone.clone()));
            }
            if dispatch.ours {
                let key = spec
                    .note_key
                    .clone()
                    .unwrap_or_else(|| spec.dispatch_number.clone());
                self.book(&spec.ticket_id, &key);
            }
            for note in &dispatch.notes {
                self.seed_note(&spec.ticket_id, note);
            }
            if dispatch.appears.is_zero() {
                self.upsert(&dispatch.vendor, spec);
            } else {
                later.push((
                    scale(dispatch.appears),
                    Step::Appear(dispatch.vendor.clone(), spec),
                ));
            }
        }
        for change in &scenario.changes {
            later.push((scale(change.at), Step::Change(change.clone())));
        }
        for fault in &scenario.faults {
            later.push((scale(fault.at), Step::Fault(fault.fault.clone())));
        }
        later.sort_by_key(|(at, _)| *at);
        let shared = self.shared.clone();
        let zones: Vec<(VendorName, String, String)> = scenario
            .dispatches
            .iter()
            .filter_map(|d| {
                let zone = d.appointment.as_ref().map(|(_, z)| z.clone())?;
                Some((d.vendor.clone(), d.spec.dispatch_number.clone(), zone))
            })
            .collect();
        let task = tokio::spawn(async move {
            let began = tokio::time::Instant::now();
            for (at, step) in later {
                tokio::time::sleep_until(began + at).await;
                apply(&shared, start, &zones, step);
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            task.abort();
        }
    }
}

/// One timed step of a scenario.
enum Step {
    Appear(VendorName, DispatchSpec),
    Change(scenario::Change),
    Fault(Fault),
}

fn apply(
    shared: &Shared,
    start: DateTime<Utc>,
    zones: &[(VendorName, String, String)],
    step: Step,
) {
    let what = match step {
        Step::Appear(vendor, spec) => {
            let what = format!("{vendor} {} appears in the list", spec.dispatch_number);
            shared.lock().upsert(&vendor, spec);
            what
        }
        Step::Fault(fault) => {
            shared.lock().faults.add(&fault);
            shared.emit(SimEvent::Fault {
                what: fault.describe(),
            });
            return;
        }
        Step::Change(change) => {
            let zone = zones
                .iter()
                .find(|(v, n, _)| *v == change.vendor && *n == change.number)
                .map_or("Pacific", |(_, _, zone)| zone.as_str());
            let what = describe(&change);
            let mut world = shared.lock();
            let ticket = world
                .dispatch_mut(&change.vendor, &change.number)
                .map(|spec| {
                    change_spec(spec, &change, start, zone);
                    spec.ticket_id.clone()
                });
            if let (Some(ticket), Some(note)) = (ticket, &change.note) {
                world.seed_note(&ticket, note, Utc::now());
            }
            what
        }
    };
    shared.emit(SimEvent::Change { what });
}

fn change_spec(
    spec: &mut DispatchSpec,
    change: &scenario::Change,
    start: DateTime<Utc>,
    zone: &str,
) {
    if let Some(status) = change.status {
        spec.status = status;
    }
    if let Some((name, phone)) = &change.tech {
        spec.tech_name = Some(name.clone());
        spec.tech_phone = phone.clone();
    }
    if let Some(after) = change.appointment {
        spec.appointment = scenario::local_time(start, after, zone).map(|t| (t, zone.to_owned()));
    }
    if let Some(on_site) = change.tech_on_site {
        spec.tech_on_site = on_site;
    }
    if let Some(completed) = change.completed {
        spec.completed = completed;
    }
}

fn describe(change: &scenario::Change) -> String {
    let mut parts = Vec::new();
    if let Some(status) = change.status {
        parts.push(format!("status {status}"));
    }
    if let Some((name, _)) = &change.tech {
        parts.push(format!("tech {name}"));
    }
    if change.appointment.is_some() {
        parts.push("appointment moved".to_owned());
    }
    if change.tech_on_site == Some(true) {
        parts.push("tech checked in".to_owned());
    }
    if change.completed == Some(true) {
        parts.push("tech checked out".to_owned());
    }
    if change.note.is_some() {
        parts.push("a note written".to_owned());
    }
    format!("{} {}: {}", change.vendor, change.number, parts.join(", "))
}
