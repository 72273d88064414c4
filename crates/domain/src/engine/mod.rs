//! One vendor cycle (SPEC §6, §9): fetch the list, map records, and for each dispatch —
//! concurrently, up to a limit — read its ticket once, keep it if ours, register it, plan its
//! steps and execute them (or only report them, in a dry run).
//!
//! The files follow the phases of `Engine::process`. This one holds the [`Engine`], its builder
//! and `process`; `cycle.rs` fetches and maps the vendor's list, runs its dispatches and
//! journals the cycle; then one file per phase of a dispatch: `observe.rs` (its ticket's
//! notes and whether it is ours, its safeguards), `register.rs`, `plan.rs`, `reconcile.rs`
//! (with the SMS ledger) and `execute.rs`. A dispatch's report types belong to the
//! [`journal`](crate::journal), which records them; they are re-exported here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::alerts::{AlertLevel, AlertOutbox, Alerts, Outcome};
use crate::journal::{self, DispatchSnapshot, EntryBuffer, EntryStamp, Journal, NoJournal};
use crate::ports::{
    Clock, DispatchRegistry, DispatchSource, Notifier, PortError, SmsLedger, TicketRepository,
};
use crate::rules::{Plan, RuleSettings};
use crate::safeguards::Safeguards;
use crate::{
    Dispatch, Status, TemplateError, TemplateSource, Templates, VendorAdapter, VendorName,
    telemetry,
};

mod cycle;
mod execute;
mod observe;
mod plan;
mod reconcile;
mod register;

pub use crate::journal::{DispatchOutcome, DispatchReport};
pub use cycle::{CycleError, CycleReport, StopReason};

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
        let outcome = self
            .execute(entry, &dispatch, &plan.steps, mode, journal)
            .await;
        DispatchReport::planned(dispatch, outcome, plan).paused(paused)
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
