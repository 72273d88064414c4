//! Unit-testing rules with mocked ports (feature `mocks`): [`MockPorts`], every port a mockall
//! mock, and [`Rig`], which plans a dispatch and runs the plan through those mocks.
//!
//! Set expectations on the fields of [`MockPorts`] for what the test is about; everything else
//! falls back to "nothing there, nothing sent, fixed clock, any Slack line": no ticket notes,
//! an empty ledger that grants every claim, the registry accepts, Slack accepts any line.
//! Sending an SMS, appending a note or sending an email is never a default: a test that does
//! not expect one fails if it happens. The crate documentation shows a whole rule test in a
//! dozen lines.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::alerts::{AlertLevel, Alerts};
use crate::engine::Ports;
use crate::executor::{Execution, Executor};
use crate::ports::{Claim, PortError};
pub use crate::ports::{
    MockClock, MockDispatchRegistry, MockDispatchSource, MockLargeMessageStore, MockNotifier,
    MockSmsLedger, MockTicketRepository, MockVendorLease,
};
use crate::rules::{self, Plan, RuleInput, RuleSettings, Step};
pub use crate::safeguards::MockSafeguards;
use crate::safeguards::SafeguardFacts;
use crate::{
    Appointment, Dispatch, DispatchNotes, DispatchNumber, NoteKey, PhoneE164, Status,
    TemplateSource, Templates, TicketId, TicketNote, VendorName, VendorPolicy,
};

/// Every port as a mockall mock, plus the time the clock shows.
#[derive(Default)]
pub struct MockPorts {
    /// Vendor lists; by default every fetch is unavailable.
    pub source: MockDispatchSource,
    /// Ticket notes; by default every ticket has none, and appends are not expected.
    pub tickets: MockTicketRepository,
    /// SMS, Slack, email; by default any Slack line is accepted, SMS and email not expected.
    pub notifier: MockNotifier,
    /// The registry; by default every write succeeds.
    pub registry: MockDispatchRegistry,
    /// The SMS ledger; by default empty: nothing is sent, every claim is granted.
    pub ledger: MockSmsLedger,
    /// Opt-outs, pauses and daily counts; by default an empty in-memory store.
    pub safeguards: Arc<crate::memory::MemorySafeguards>,
    /// What the clock shows; [`Rig::NOW`] by default.
    pub now: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for MockPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockPorts")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl MockPorts {
    /// Mocks with no expectations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The engine's ports, after adding the fallbacks. mockall tries expectations in the order
    /// they were set, so the test's own come first and the fallbacks only catch the rest.
    pub fn into_ports(mut self) -> Ports {
        self.source
            .expect_fetch_dispatches()
            .returning(|vendor| Err(PortError::Unavailable(format!("no list for {vendor}"))));
        self.tickets
            .expect_ticket_notes()
            .returning(|_| Ok(Vec::new()));
        self.notifier.expect_post_slack().returning(|_| Ok(()));
        self.registry.expect_register().returning(|_, _| Ok(true));
        self.ledger
            .expect_entries()
            .returning(|_, _| Ok(Vec::new()));
        self.ledger
            .expect_claim()
            .returning(|_, _, _| Ok(Claim::Claimed));
        self.ledger.expect_mark_sent().returning(|_| Ok(()));
        self.ledger.expect_mark_uncertain().returning(|_| Ok(()));
        self.ledger.expect_release().returning(|_| Ok(()));
        self.ledger
            .expect_claim_note()
            .returning(|_, _| Ok(Claim::Claimed));
        self.ledger.expect_note_appended().returning(|_| Ok(()));
        self.ledger.expect_release_note().returning(|_| Ok(()));
        let now = self
            .now
            .unwrap_or(Rig::NOW.parse().expect("a valid instant"));
        let mut clock = MockClock::new();
        clock.expect_now().return_const(now);
        Ports {
            source: Arc::new(self.source),
            tickets: Arc::new(self.tickets),
            notifier: Arc::new(self.notifier),
            registry: Arc::new(self.registry),
            ledger: Arc::new(self.ledger),
            safeguards: self.safeguards,
            clock: Arc::new(clock),
        }
    }
}

/// Plans a dispatch's steps and runs them through [`MockPorts`]: the shared set-up of rule
/// tests, with a sample dispatch that has everything the rules can use
/// ([`dispatch`](Self::dispatch)) or everything but a tech
/// ([`dispatch_without_tech`](Self::dispatch_without_tech)).
///
/// The vendor's policy decides the plan. With only the portal's note, a Confirmed dispatch
/// plans: with [`Rig::lit`] (the field-engineer step) the Confirmed note, the client's SMS, the
/// field engineer's SMS and note, and the tech's SMS — without a tech, the first two only;
/// with [`Rig::cts`] (confirmed only with a tech) the Confirmed note, the client's SMS and
/// the tech's SMS — without a tech, nothing.
#[derive(Debug)]
pub struct Rig {
    vendor: VendorName,
    templates: Templates,
    policy: VendorPolicy,
    settings: RuleSettings,
    alert_level: AlertLevel,
    now: DateTime<Utc>,
    safeguards: SafeguardFacts,
}

impl Rig {
    /// The time rules run at by default: 30 hours before the sample appointment.
    pub const NOW: &'static str = "2020-03-15T17:00:00Z";
    /// The sample dispatch's client phone.
    pub const CLIENT: &'static str = "+12123595129";
    /// The sample dispatch's tech phone.
    pub const TECH: &'static str = "+12123595130";

    /// LIT: the field-engineer step, the default texts and LIT's own; dispatches of vendor `LIT`.
    pub fn lit() -> Self {
        Self::new(dispatch_templates::COMMON, dispatch_templates::LIT).vendor("LIT")
    }

    /// CTS: confirmed only with a tech, the default texts and CTS's own; dispatches of vendor
    /// `CTS`.
    pub fn cts() -> Self {
        let policy = VendorPolicy {
            field_engineer_step: false,
            confirmed_needs_tech: true,
        };
        let (common, cts) = (dispatch_templates::COMMON, dispatch_templates::CTS);
        Self::with_policy(policy, common, cts).vendor("CTS")
    }

    /// A rig for a vendor with the field-engineer step (as LIT), with the common texts and the
    /// vendor's; panics when they do not build. Its dispatches are of vendor `TEST`.
    pub fn new(common: &[TemplateSource], vendor: &[TemplateSource]) -> Self {
        let policy = VendorPolicy {
            field_engineer_step: true,
            confirmed_needs_tech: false,
        };
        Self::with_policy(policy, common, vendor)
    }

    /// A rig for a vendor with `policy`.
    pub fn with_policy(
        policy: VendorPolicy,
        common: &[TemplateSource],
        vendor: &[TemplateSource],
    ) -> Self {
        let sources = common.iter().chain(vendor).copied();
        let templates = Templates::build(policy, sources, SAMPLE_FIELDS)
            .unwrap_or_else(|error| panic!("the rig's templates: {error}"));
        Self {
            vendor: VendorName::fixed("TEST"),
            templates,
            policy,
            settings: RuleSettings::default(),
            alert_level: AlertLevel::All,
            safeguards: SafeguardFacts::default(),
            now: Self::NOW.parse().expect("a valid instant"),
        }
    }

    /// The rules run `hours` before the sample appointment (negative: after it).
    pub fn hours_before(mut self, hours: f64) -> Self {
        let appointment = sample_appointment().instant.with_timezone(&Utc);
        self.now = appointment - Duration::seconds((hours * 3600.0) as i64);
        self
    }

    /// Dispatches of another vendor (only its name changes).
    pub fn vendor(mut self, name: &'static str) -> Self {
        self.vendor = VendorName::fixed(name);
        self
    }

    /// The vendor's policy.
    pub fn policy(&self) -> VendorPolicy {
        self.policy
    }

    /// Other rule settings.
    pub fn settings(mut self, settings: RuleSettings) -> Self {
        self.settings = settings;
        self
    }

    /// What the safeguards say about the dispatch (SPEC §17) when planning.
    pub fn safeguards(mut self, facts: SafeguardFacts) -> Self {
        self.safeguards = facts;
        self
    }

    /// Another alert level.
    pub fn alert_level(mut self, level: AlertLevel) -> Self {
        self.alert_level = level;
        self
    }

    /// The templates.
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// A dispatch of the rig's vendor with everything present: appointment Mar 16, 2020 4 PM
    /// Pacific, client [`Self::CLIENT`], tech Joe Malone at [`Self::TECH`], the site and street,
    /// and LIT's raw date, time and zone texts.
    pub fn dispatch(&self, status: Status) -> Dispatch {
        let mut dispatch = Dispatch::new(
            self.vendor.clone(),
            DispatchNumber::parse("DIS37405").expect("valid"),
            TicketId::parse("3544800").expect("valid"),
            status,
            status.label(),
        );
        dispatch.note_key = NoteKey::parse("DIS37405").ok();
        dispatch.appointment = Some(sample_appointment());
        dispatch.appointment_raw = Some("2020-03-16 4PM-6PM Pacific Time".into());
        dispatch.tech_name = Some("Joe Malone".into());
        dispatch.tech_phone = PhoneE164::parse_us(Self::TECH).ok();
        dispatch.tech_phone_raw = Some("+1 (212) 359-5130".into());
        dispatch.client_phone = PhoneE164::parse_us(Self::CLIENT).ok();
        dispatch.site = Some("Red Rose Inn".into());
        dispatch.street = Some("160 Broadway".into());
        for (key, value) in SAMPLE_FIELDS
            .iter()
            .zip(["2020-03-16", "4PM-6PM", "Pacific Time"])
        {
            dispatch.template_fields.insert((*key).into(), value.into());
        }
        dispatch
    }

    /// [`dispatch`](Self::dispatch) before a tech is known: no tech name or phone.
    pub fn dispatch_without_tech(&self, status: Status) -> Dispatch {
        let mut dispatch = self.dispatch(status);
        dispatch.tech_name = None;
        dispatch.tech_phone = None;
        dispatch.tech_phone_raw = None;
        dispatch
    }

    /// The dispatch's notes: each text under its watermark line, oldest first.
    pub fn notes(&self, dispatch: &Dispatch, texts: &[&str]) -> DispatchNotes {
        let key = dispatch.note_key.as_ref().map_or("", |key| key.as_str());
        let notes = texts
            .iter()
            .map(|text| TicketNote {
                id: None,
                text: format!("#*MetTel's IPA*# {key}\n{text}"),
                created: None,
            })
            .collect();
        DispatchNotes::from_ordered(notes)
    }

    /// The rules' plan for `dispatch` whose notes hold `texts`.
    pub fn plan(&self, dispatch: &Dispatch, texts: &[&str]) -> Plan {
        rules::plan(&RuleInput {
            dispatch,
            notes: &self.notes(dispatch, texts),
            now: self.now,
            policy: self.policy,
            settings: &self.settings,
            templates: &self.templates,
            safeguards: &self.safeguards,
        })
    }

    /// Takes `steps` through the executor over the mocked ports.
    pub async fn run(&self, mocks: MockPorts, dispatch: &Dispatch, steps: &[Step]) -> Execution {
        let ports = mocks.into_ports();
        let journal = crate::journal::EntryBuffer::default();
        let executor = Executor {
            journal: &journal,
            clock: ports.clock.as_ref(),
            replica: "test",
            environment: "test",
            claim_ttl: std::time::Duration::from_secs(150),
            tickets: ports.tickets.as_ref(),
            notifier: ports.notifier.as_ref(),
            ledger: ports.ledger.as_ref(),
            safeguards: ports.safeguards.as_ref(),
            daily_cap: self.settings.daily_cap,
            alerts: Alerts::new(ports.notifier.as_ref(), self.alert_level),
            templates: &self.templates,
        };
        executor.execute(dispatch, steps).await
    }
}

/// The extra values of the sample dispatch (LIT's raw appointment texts).
const SAMPLE_FIELDS: &[&str] = &["date_of_dispatch", "time_of_dispatch", "time_zone"];

fn sample_appointment() -> Appointment {
    let date = "2020-03-16".parse().expect("a valid date");
    let time = "16:00:00".parse().expect("a valid time");
    Appointment::localise(date, time, "Pacific Time").expect("a known zone")
}
