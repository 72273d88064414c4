//! One vendor cycle (SPEC §6, §9): fetch the list, map records, and for each dispatch —
//! concurrently, up to a limit — read its ticket once, keep it if ours, register it, plan its
//! steps and execute them (or only report them, in a dry run).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tracing::Instrument;

use crate::alerts::{AlertLevel, AlertOutbox, Alerts, Outcome};
use crate::executor::Executor;
use crate::journal::{
    self, CycleRecord, DispatchSnapshot, EntryBuffer, EntryStamp, Journal, NoJournal,
};
use crate::notes::phrases;
use crate::ports::{
    Clock, DispatchRegistry, DispatchSource, LedgerEntry, Notifier, PortError, SmsLedger,
    TicketRepository,
};
use crate::rules::{self, LedgerFacts, Plan, RuleInput, RuleSettings};
use crate::safeguards::{SafeguardFacts, Safeguards};
use crate::{
    Dispatch, DispatchNotes, ListBody, ListError, PhoneE164, RawRecordText, SkipReason, Status,
    TemplateError, TemplateSource, Templates, TicketNotes, VendorAdapter, VendorName, telemetry,
};

pub use crate::journal::{DispatchOutcome, DispatchReport};

/// The ports a cycle uses.
#[derive(Clone)]
pub struct Ports {
    /// Vendor lists.
    pub source: Arc<dyn DispatchSource>,
    /// Ticket notes.
    pub tickets: Arc<dyn TicketRepository>,
    /// SMS, Slack, email.
    pub notifier: Arc<dyn Notifier>,
    /// The dispatch registry.
    pub registry: Arc<dyn DispatchRegistry>,
    /// The SMS ledger.
    pub ledger: Arc<dyn SmsLedger>,
    /// Opt-outs, pauses and the daily cap (SPEC §17).
    pub safeguards: Arc<dyn Safeguards>,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// Engine settings an operator can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineSettings {
    /// Dispatches processed at once per cycle (default 8).
    pub concurrency: usize,
    /// Rule settings.
    pub rules: RuleSettings,
    /// Which outcomes reach Slack.
    pub alert_level: AlertLevel,
    /// `ENVIRONMENT_NAME`: the first part of every SMS idempotency key (default `dev`).
    pub environment: String,
    /// How long an SMS claim lasts: twice the request timeout plus 30 s (SPEC §13.3; 150 s
    /// with the default 60 s timeout).
    pub claim_ttl: Duration,
    /// This replica's name in the journal (SPEC §14), e.g. `host:pid`.
    pub replica: String,
}

impl EngineSettings {
    /// The claim TTL for a request timeout: `2 × timeout + 30 s` (SPEC §13.3).
    pub fn claim_ttl_for(request_timeout: Duration) -> Duration {
        request_timeout * 2 + Duration::from_secs(30)
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            concurrency: 8,
            rules: RuleSettings::default(),
            alert_level: AlertLevel::All,
            environment: "dev".to_owned(),
            claim_ttl: Self::claim_ttl_for(Duration::from_secs(60)),
            replica: "local".to_owned(),
        }
    }
}

/// Whether a cycle acts or only reports what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Send SMS, append notes, write the registry and ledger.
    Execute,
    /// Read only: no SMS, no notes, no Redis writes, no alerts.
    DryRun,
}

/// Why a cycle starts no further dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The process is shutting down.
    Shutdown,
    /// The vendor lease may have lapsed: another holder took it, or its last successful renewal
    /// was requested a TTL ago or more (SPEC §13.8, §18.6).
    LeaseLost,
}

/// A vendor cycle could not run at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CycleError {
    /// No adapter is registered under that name.
    #[error("no vendor named {0} is configured")]
    UnknownVendor(String),
    /// The list request failed.
    #[error("fetching the {vendor} dispatch list failed: {error}")]
    Fetch {
        /// The vendor.
        vendor: VendorName,
        /// Why.
        error: PortError,
    },
    /// The list reply had the wrong shape.
    #[error(transparent)]
    Malformed(#[from] ListError),
}

/// What one vendor cycle did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CycleReport {
    /// The vendor.
    pub vendor: VendorName,
    /// Records in the list.
    pub records: usize,
    /// Records that could not be mapped.
    pub skipped_records: Vec<SkipReason>,
    /// Every mapped dispatch processed, in list order.
    pub dispatches: Vec<DispatchReport>,
    /// Dispatches left for the next cycle (shutdown, or a lost lease).
    pub left: usize,
    /// Why the cycle stopped starting dispatches; a lease lost while its last dispatches ran
    /// counts too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<StopReason>,
}

#[derive(Debug, Clone)]
struct VendorEntry {
    adapter: Arc<dyn VendorAdapter>,
    templates: Templates,
}

/// Runs vendor cycles over the ports.
///
/// A cycle fetches the vendor's list, maps every record, and for each dispatch — up to
/// `concurrency` at once — reads its ticket's notes once. A dispatch is **ours** only when one
/// of its notes (a note whose watermark line `#*MetTel's IPA*# {note key}` names exactly its
/// note key) contains `Dispatch Management - Dispatch Requested`: the dispatch portal writes
/// that note when it books the dispatch. Every other dispatch is left alone; a dispatch with no
/// note key can never be ours. A dispatch of ours is registered (SPEC §4), then its rules are
/// planned and executed (SPEC §7).
///
/// Another service can drive the engine with its own vendor and ports. Here it brings a vendor
/// (ACME, whose records are `{"id", "ticket", "phone", "at"}`), its own dispatch source and its
/// own notifier, and borrows the in-memory ports of [`memory`](crate::memory) for the rest:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use domain::memory::{ManualClock, MemoryWorld};
/// use domain::prelude::*;
/// use domain::record;
///
/// #[derive(Debug)]
/// struct Acme(VendorName);
///
/// impl VendorAdapter for Acme {
///     fn name(&self) -> &VendorName { &self.0 }
///     fn policy(&self) -> VendorPolicy { VendorPolicy::default() }
///     fn templates(&self) -> &'static [TemplateSource] {
///         &[("confirmed_note", "#*MetTel's IPA*# {{note_key}}\nDispatch Management - Dispatch Confirmed\n"),
///           ("confirmed_sms", "Confirmed for {{when}}.\n")]
///     }
///     fn records<'a>(&self, body: &'a RawValue) -> Result<Vec<RawRecordText<'a>>, ListError> {
///         let (_, items) = record::list_fields(body, "items").map_err(|why| ListError::new(&self.0, why))?;
///         record::list_records(items, "items").map_err(|why| ListError::new(&self.0, why))
///     }
///     fn list_body(&self, records: Vec<RawRecord>) -> Value { serde_json::json!({ "items": records }) }
///     fn map_record(&self, record: &RawRecord) -> Result<Dispatch, SkipReason> {
///         let object = record::object(record)?;
///         let (number, ticket) = record::identity(object, "id", "ticket")?;
///         let mut dispatch = Dispatch::new(self.0.clone(), number, ticket, Status::Confirmed, "booked");
///         dispatch.note_key = NoteKey::parse(dispatch.dispatch_number.as_str()).ok();
///         let field = |name| record::Field::text(object, name);
///         dispatch.client_phone = PhoneE164::parse_optional(field("phone").raw());
///         dispatch.appointment = field("at").raw().and_then(|at| Appointment::parse_rfc3339(at, Some("Eastern")));
///         Ok(dispatch)
///     }
/// }
///
/// /// The service's own source: a list it already holds.
/// struct Held(Value);
/// #[async_trait]
/// impl DispatchSource for Held {
///     async fn fetch_dispatches(&self, _: &VendorName) -> Result<ListBody, PortError> {
///         Ok(list_body_of(&self.0))
///     }
/// }
///
/// /// The service's own notifier: it keeps the SMS texts.
/// #[derive(Default)]
/// struct Outbox(Mutex<Vec<String>>);
/// #[async_trait]
/// impl Notifier for Outbox {
///     async fn send_sms(&self, to: &PhoneE164, text: &str, _key: &str) -> Result<(), PortError> {
///         self.0.lock().unwrap().push(format!("{to}: {text}"));
///         Ok(())
///     }
///     async fn post_slack(&self, _: &str) -> Result<(), PortError> { Ok(()) }
///     async fn send_email(&self, _: &Email) -> Result<(), PortError> { Ok(()) }
/// }
///
/// let acme = Arc::new(Acme(VendorName::fixed("ACME")));
/// let world = MemoryWorld::new(Arc::new(ManualClock::new("2026-01-01T12:00:00Z".parse().unwrap())));
/// // The portal booked A-1: that note makes it ours.
/// world.tickets.seed_note(
///     &TicketId::parse("42").unwrap(),
///     "#*MetTel's IPA*# A-1\nDispatch Management - Dispatch Requested",
///     "2026-01-01T00:00:00Z".parse().unwrap(),
/// );
/// let outbox = Arc::new(Outbox::default());
/// let mut ports = world.ports();
/// let record = serde_json::json!({"id": "A-1", "ticket": "42", "phone": "(212) 555-0100", "at": "2026-01-02T09:00:00-05:00"});
/// ports.source = Arc::new(Held(acme.list_body(vec![record])));
/// ports.notifier = outbox.clone();
///
/// let engine = Engine::new(ports, EngineSettings::default())
///     .with_common_templates(dispatch_templates::COMMON)
///     .with_vendor(acme.clone(), &Default::default())
///     .unwrap();
/// futures::executor::block_on(engine.run_cycle(acme.name(), Mode::Execute)).unwrap();
/// assert_eq!(
///     outbox.0.lock().unwrap().as_slice(),
///     ["+12125550100: Confirmed for Jan 02, 2026 @ 09:00 AM Eastern.\n"]
/// );
/// ```
#[derive(Debug, Clone)]
pub struct Engine {
    ports: Ports,
    settings: EngineSettings,
    common_templates: Vec<TemplateSource>,
    vendors: Vec<VendorEntry>,
    journal: Arc<dyn Journal>,
    alert_outbox: Option<Arc<dyn AlertOutbox>>,
}

impl std::fmt::Debug for dyn AlertOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertOutbox")
    }
}

impl std::fmt::Debug for dyn Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Journal")
    }
}

impl Engine {
    /// An engine with no vendors yet, journaling nothing.
    pub fn new(ports: Ports, settings: EngineSettings) -> Self {
        Self {
            ports,
            settings,
            common_templates: Vec::new(),
            vendors: Vec::new(),
            journal: Arc::new(NoJournal),
            alert_outbox: None,
        }
    }

    /// Queues the alert lines about dispatches in `outbox`, which posts them later and
    /// journals their outcome (SPEC §18.5); without one they are posted at once.
    pub fn with_alert_outbox(mut self, outbox: Arc<dyn AlertOutbox>) -> Self {
        self.alert_outbox = Some(outbox);
        self
    }

    /// Records what each executed cycle does in `journal` (SPEC §14).
    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = journal;
        self
    }

    /// The same engine reading the time from `clock`: `plan --at` plans as at another
    /// instant (SPEC §17.4).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.ports.clock = clock;
        self
    }

    /// Sets the texts every vendor shares (e.g. `dispatch_templates::COMMON`); add them before
    /// the vendors. Without them every vendor must bring every template itself.
    pub fn with_common_templates(mut self, sources: &[TemplateSource]) -> Self {
        self.common_templates = sources.to_vec();
        self
    }

    /// Adds a vendor, building and checking its templates: the common ones, overridden by the
    /// vendor's, then by `overrides` (e.g. an operator's files); reminder notes are checked
    /// for every configured reminder hour (SPEC §18.3).
    pub fn with_vendor(
        mut self,
        adapter: Arc<dyn VendorAdapter>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, TemplateError> {
        let sources = self
            .common_templates
            .iter()
            .chain(adapter.templates())
            .copied()
            .chain(overrides.iter().map(|(n, s)| (n.as_str(), s.as_str())));
        let templates = Templates::build_for(
            adapter.policy(),
            sources,
            adapter.template_fields(),
            &self.settings.rules.reminder_hours,
        )?;
        self.vendors.push(VendorEntry { adapter, templates });
        Ok(self)
    }

    /// The configured vendors, in the order they were added.
    pub fn vendors(&self) -> Vec<VendorName> {
        self.vendors
            .iter()
            .map(|entry| entry.adapter.name().clone())
            .collect()
    }

    /// A vendor-level alert line for `vendor`, through its alert template (e.g. for the
    /// scheduler's lease alerts); the default format when the vendor is unknown.
    pub fn vendor_alert_line(&self, vendor: &VendorName, event: &str) -> String {
        match self
            .vendors
            .iter()
            .find(|entry| entry.adapter.name() == vendor)
        {
            Some(entry) => crate::alerts::vendor_line(&entry.templates, vendor, event),
            None => format!("{} {event}", crate::alerts::alert_prefix(vendor)),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Runs one cycle of `vendor`. Fetch and shape failures alert and return an error; every
    /// per-dispatch failure is alerted and reported, never returned.
    pub async fn run_cycle(
        &self,
        vendor: &VendorName,
        mode: Mode,
    ) -> Result<CycleReport, CycleError> {
        self.run_cycle_until(vendor, mode, &|| None).await
    }

    /// Like [`run_cycle`](Self::run_cycle), but `stop()` is asked before each dispatch starts:
    /// once it gives a reason no further dispatch is started; those in flight finish. It is
    /// asked once more at the end, so a lease lost during the last dispatches is reported and
    /// journaled (`lease_lost`). Used for graceful shutdown and lost leases.
    pub async fn run_cycle_until(
        &self,
        vendor: &VendorName,
        mode: Mode,
        stop: &(dyn Fn() -> Option<StopReason> + Sync),
    ) -> Result<CycleReport, CycleError> {
        let entry = self
            .vendors
            .iter()
            .find(|entry| entry.adapter.name() == vendor)
            .ok_or_else(|| CycleError::UnknownVendor(vendor.to_string()))?;
        let started = Instant::now();
        let started_at = self.ports.clock.now();
        let result = self
            .cycle(entry, mode, stop)
            .instrument(tracing::info_span!("cycle", vendor = %vendor))
            .await;
        // A dry run (a plan) is not a cycle: it counts in no cycle metric (SPEC §18.5).
        if mode == Mode::Execute {
            let outcome = if result.is_ok() { "ok" } else { "failed" };
            metrics::histogram!(telemetry::CYCLE_DURATION, "vendor" => vendor.to_string(), "outcome" => outcome)
                .record(started.elapsed().as_secs_f64());
            self.record_cycle(vendor, started_at, &result).await;
        }
        result
    }

    /// Journals the cycle and the snapshots of its dispatches; a failure is logged and counted.
    async fn record_cycle(
        &self,
        vendor: &VendorName,
        started: chrono::DateTime<chrono::Utc>,
        result: &Result<CycleReport, CycleError>,
    ) {
        let finished = self.ports.clock.now();
        let mut cycle = CycleRecord {
            vendor: vendor.to_string(),
            replica: self.settings.replica.clone(),
            started,
            finished,
            outcome: "ok".to_owned(),
            error: None,
            records: 0,
            ours: 0,
            actions: 0,
            failures: 0,
        };
        let seen = match result {
            Ok(report) => {
                cycle.records = report.records;
                cycle.count(&report.dispatches);
                if report.stopped == Some(StopReason::LeaseLost) {
                    cycle.outcome = "lease_lost".to_owned();
                } else if report.left > 0 {
                    cycle.outcome = "stopped".to_owned();
                }
                Some(
                    report
                        .dispatches
                        .iter()
                        .map(|r| r.dispatch.dispatch_number.to_string())
                        .collect(),
                )
            }
            Err(error) => {
                cycle.outcome = "failed".to_owned();
                cycle.error = Some(error.to_string());
                None
            }
        };
        if let Err(error) = self.journal.record_cycle(cycle, seen).await {
            journal_failed(&error);
        }
    }

    async fn cycle(
        &self,
        entry: &VendorEntry,
        mode: Mode,
        stop: &(dyn Fn() -> Option<StopReason> + Sync),
    ) -> Result<CycleReport, CycleError> {
        let body = self.fetch_list(entry, mode).await?;
        let adapter = entry.adapter.as_ref();
        let records = match adapter.records(&body) {
            Ok(records) => records,
            Err(error) => return Err(self.list_failed(entry, mode, error.into()).await),
        };
        let record_count = records.len();
        let (dispatches, skipped_records) = map_records(adapter, records);
        drop(body);

        let total = dispatches.len();
        let (reports, stopped) = self.process_all(entry, dispatches, mode, stop).await;

        if reports.len() < total {
            tracing::warn!(
                left = total - reports.len(),
                "stopping: dispatches left for the next run"
            );
        }
        tracing::info!(
            records = record_count,
            skipped = skipped_records.len(),
            "cycle finished"
        );
        Ok(CycleReport {
            vendor: entry.adapter.name().clone(),
            records: record_count,
            skipped_records,
            left: total - reports.len(),
            dispatches: reports,
            stopped,
        })
    }

    /// Processes the dispatches until `stop()` gives a reason, asking it before each starts;
    /// returns their reports in list order and the reason, if any (a lease lost while the last
    /// ones ran included). A free slot starts the next dispatch at once, so one slow dispatch
    /// never holds the others back (SPEC §13.7).
    async fn process_all(
        &self,
        entry: &VendorEntry,
        dispatches: Vec<Dispatch>,
        mode: Mode,
        stop: &(dyn Fn() -> Option<StopReason> + Sync),
    ) -> (Vec<DispatchReport>, Option<StopReason>) {
        let mut stopped = None;
        let mut reports: Vec<(usize, DispatchReport)> =
            futures::stream::iter(dispatches.into_iter().enumerate())
                .take_while(|_| {
                    stopped = stop();
                    futures::future::ready(stopped.is_none())
                })
                .map(|(index, dispatch)| {
                    let span = tracing::info_span!(
                        "dispatch",
                        vendor = %dispatch.vendor,
                        dispatch_number = %dispatch.dispatch_number,
                        ticket_id = %dispatch.ticket_id,
                    );
                    let process = self.process(entry, dispatch, mode).instrument(span);
                    async move { (index, process.await) }
                })
                .buffer_unordered(self.settings.concurrency.max(1))
                .collect()
                .await;
        reports.sort_by_key(|(index, _)| *index);
        let reports = reports.into_iter().map(|(_, report)| report).collect();
        let stopped = stopped.or_else(|| stop().filter(|why| *why == StopReason::LeaseLost));
        (reports, stopped)
    }

    /// Fetches the vendor's list; a failure alerts (SPEC §9).
    async fn fetch_list(&self, entry: &VendorEntry, mode: Mode) -> Result<ListBody, CycleError> {
        let vendor = entry.adapter.name();
        match self.ports.source.fetch_dispatches(vendor).await {
            Ok(body) => Ok(body),
            Err(error) => {
                let error = CycleError::Fetch {
                    vendor: vendor.clone(),
                    error,
                };
                Err(self.list_failed(entry, mode, error).await)
            }
        }
    }

    /// Logs and alerts a list that could not be fetched or read (SPEC §9), and hands the error
    /// back.
    async fn list_failed(&self, entry: &VendorEntry, mode: Mode, error: CycleError) -> CycleError {
        tracing::error!(%error, "vendor cycle skipped");
        if mode == Mode::Execute {
            self.alerts()
                .vendor(&entry.templates, entry.adapter.name(), &error.to_string())
                .await;
        }
        error
    }

    /// One dispatch (see [`steps`](Self::steps)); what an executed one did is journaled.
    async fn process(&self, entry: &VendorEntry, dispatch: Dispatch, mode: Mode) -> DispatchReport {
        let buffer = EntryBuffer::default();
        let mut report = self.steps(entry, dispatch, mode, &buffer).await;
        if mode == Mode::DryRun {
            return report;
        }
        let stamp = EntryStamp {
            at: self.ports.clock.now(),
            replica: &self.settings.replica,
        };
        let mut entries = journal::outcome_entries(
            stamp,
            &report.dispatch,
            &report.outcome,
            &report.skipped_rules,
        );
        entries.extend(buffer.take());
        report.actions = entries.iter().filter(|e| e.is_action()).count();
        report.last_action = journal::last_action(&entries);
        let snapshot = DispatchSnapshot::of(&report, stamp.at);
        if let Err(error) = self.journal.record_dispatch(snapshot, entries).await {
            journal_failed(&error);
        }
        report
    }

    /// One dispatch, in phases: observe its notes and ownership (reading its ledger
    /// meanwhile), register it, plan its steps, reconcile them with the ledger (marking SMS
    /// already sent, and adding the notes of sent SMS that are missing), then execute (or, in
    /// a dry run, only report).
    async fn steps(
        &self,
        entry: &VendorEntry,
        dispatch: Dispatch,
        mode: Mode,
        journal: &EntryBuffer,
    ) -> DispatchReport {
        if mode == Mode::Execute {
            metrics::counter!(
                telemetry::DISPATCHES_SEEN,
                "vendor" => dispatch.vendor.to_string(),
                "status" => dispatch.status.label()
            )
            .increment(1);
        }
        // The ledger is read while the ticket is: a dispatch then waits for one round trip,
        // not two. Reading it first is safe: a later note only means less to reconcile, and
        // the claim before each SMS is what keeps it from going twice (SPEC §13).
        let read_ledger = self
            .ports
            .ledger
            .entries(&dispatch.vendor, &dispatch.dispatch_number);
        let (observed, ledger, safeguards) = futures::join!(
            self.observe(entry, &dispatch, mode),
            read_ledger,
            self.read_safeguards(&dispatch)
        );
        let notes = match observed {
            Ok(notes) => notes,
            Err(outcome) => return DispatchReport::without_steps(dispatch, outcome),
        };
        if mode == Mode::Execute {
            self.register(entry, &dispatch).await;
        }
        if dispatch.status == Status::NotMonitored {
            tracing::debug!(vendor_status = %dispatch.vendor_status, "status not monitored");
        }
        let mut plan = self.plan(entry, &dispatch, &notes, &safeguards);
        let paused = safeguards.paused;
        if let Err(outcome) = self
            .reconcile(entry, &dispatch, &notes, &mut plan, mode, ledger)
            .await
        {
            return DispatchReport::planned(dispatch, outcome, plan).paused(paused);
        }
        let outcome = match mode {
            Mode::DryRun => DispatchOutcome::Planned,
            Mode::Execute => DispatchOutcome::Executed(
                self.executor(entry, journal)
                    .execute(&dispatch, &plan.steps)
                    .await,
            ),
        };
        DispatchReport::planned(dispatch, outcome, plan).paused(paused)
    }

    /// Reads what the safeguards say about the dispatch's numbers (SPEC §17), once, while
    /// its ticket is read. A failure is kept in the facts: the rules then take no SMS step
    /// (fail safe), and say why.
    async fn read_safeguards(&self, dispatch: &Dispatch) -> SafeguardFacts {
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

    /// Reads the ticket once and keeps the dispatch's notes when the dispatch is ours (SPEC §6).
    async fn observe(
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

    /// Writes the registry key other services read; a failure alerts and is retried next cycle.
    async fn register(&self, entry: &VendorEntry, dispatch: &Dispatch) {
        let value = dispatch.registry_value();
        match self
            .ports
            .registry
            .register(dispatch.dispatch_number.as_str(), &value)
            .await
        {
            Ok(true) => tracing::info!("dispatch registered"),
            Ok(false) => {}
            Err(error) => {
                let event = format!("registry write failed: {error}");
                tracing::warn!(event = %event, "registry write failed; retried next cycle");
                self.alert_failure(entry, dispatch, Mode::Execute, &event)
                    .await;
            }
        }
    }

    /// The rules' plan for the dispatch, now.
    fn plan(
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

    /// Applies the dispatch's ledger, read in one round trip: SMS it records as sent are
    /// marked, and the notes of sent SMS that are missing and not planned again come first
    /// (SPEC §13.4). An unreadable ledger stops the dispatch: nothing is sent without knowing.
    async fn reconcile(
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

    fn alerts(&self) -> Alerts<'_> {
        Alerts::new(self.ports.notifier.as_ref(), self.settings.alert_level)
            .with_outbox(self.alert_outbox.as_deref())
    }

    /// Alerts a per-dispatch failure; a dry run posts nothing.
    async fn alert_failure(
        &self,
        entry: &VendorEntry,
        dispatch: &Dispatch,
        mode: Mode,
        event: &str,
    ) {
        if mode == Mode::Execute {
            self.alerts()
                .dispatch(&entry.templates, dispatch, Outcome::Failure, event)
                .await;
        }
    }
}

impl DispatchReport {
    fn without_steps(dispatch: Dispatch, outcome: DispatchOutcome) -> Self {
        Self {
            dispatch,
            outcome,
            steps: vec![],
            skipped_rules: vec![],
            actions: 0,
            last_action: None,
            paused: None,
        }
    }

    fn planned(dispatch: Dispatch, outcome: DispatchOutcome, plan: Plan) -> Self {
        Self {
            dispatch,
            outcome,
            steps: plan.steps,
            skipped_rules: plan.skipped,
            actions: 0,
            last_action: None,
            paused: None,
        }
    }

    fn paused(mut self, paused: Option<crate::safeguards::SafeguardMark>) -> Self {
        self.paused = paused;
        self
    }
}

/// A journal write failed: logged and counted, never failing the dispatch (SPEC §14).
fn journal_failed(error: &PortError) {
    tracing::warn!(%error, "could not write the journal");
    metrics::counter!(telemetry::JOURNAL_FAILURES).increment(1);
}

/// Maps every record; a dispatch listed twice keeps its later record, so that each dispatch
/// gets one ticket-details request per cycle.
fn map_records(
    adapter: &dyn VendorAdapter,
    records: Vec<RawRecordText<'_>>,
) -> (Vec<Dispatch>, Vec<SkipReason>) {
    let mut skipped = Vec::new();
    let mut dispatches: Vec<Dispatch> = Vec::with_capacity(records.len());
    let mut index_by_number: HashMap<String, usize> = HashMap::with_capacity(records.len());
    // Each record is read from the list's text only while it is mapped, so the list is never
    // one JSON tree in memory.
    for text in records {
        let mapped = serde_json::from_str(text.get())
            .map_err(|error| SkipReason::new(None, format!("the record cannot be read: {error}")))
            .and_then(|record| adapter.map_record(&record));
        match mapped {
            Ok(dispatch) => {
                let number = dispatch.dispatch_number.to_string();
                if let Some(&earlier) = index_by_number.get(&number) {
                    tracing::warn!(vendor = %dispatch.vendor, dispatch_number = %number, ticket_id = %dispatch.ticket_id, "dispatch listed twice; the later record is used");
                    skipped.push(SkipReason::new(
                        Some(&number),
                        "listed twice; the later record is used",
                    ));
                    dispatches[earlier] = dispatch;
                } else {
                    index_by_number.insert(number, dispatches.len());
                    dispatches.push(dispatch);
                }
            }
            Err(reason) => {
                tracing::info!(vendor = %adapter.name(), %reason, "record skipped");
                skipped.push(reason);
            }
        }
    }
    (dispatches, skipped)
}
