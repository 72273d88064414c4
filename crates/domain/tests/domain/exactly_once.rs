//! Exactly once under faults (SPEC §13): idempotency keys, the three SMS outcomes, notes of
//! sent SMS reconciled, normalised tech names, templates that keep their interface, and no
//! head-of-line blocking.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::*;
use async_trait::async_trait;
use domain::actions::{ActionKind, Recipient};
use domain::alerts::AlertLevel;
use domain::executor::Execution;
use domain::memory::{ManualClock, MemoryWorld, WorldEvent};
use domain::mocks::{MockPorts, Rig};
use domain::phrases::*;
use domain::ports::{
    EntryState, LedgerEntry, LedgerKey, PortError, SmsLedger, SmsPurpose, TicketRepository,
};
use domain::rules::{self, LedgerFacts, Step};
use domain::*;
use serde_json::json;

fn rig() -> Rig {
    Rig::new(dispatch_templates::COMMON, dispatch_templates::LIT)
}

/// The client's confirmation SMS alone (the Confirmed note is there, no tech yet).
fn confirmation(rig: &Rig) -> (Dispatch, Vec<Step>) {
    let mut dispatch = rig.dispatch(Status::Confirmed);
    dispatch.tech_phone = None;
    let plan = rig.plan(&dispatch, &[REQUESTED, CONFIRMED]);
    assert_eq!(plan.steps.len(), 1);
    (dispatch, plan.steps)
}

#[tokio::test]
async fn every_sms_request_carries_its_idempotency_key() {
    let rig = rig();
    let (dispatch, steps) = confirmation(&rig);
    let mut mocks = MockPorts::new();
    mocks
        .notifier
        .expect_send_sms()
        .withf(|_, _, key| key == "test:TEST:DIS37405:confirmed:12123595129")
        .times(1)
        .returning(|_, _, _| Ok(()));
    mocks.tickets.expect_append_note().returning(|_, _| Ok(()));
    let execution = rig.run(mocks, &dispatch, &steps).await;
    assert_eq!(execution, Execution::Completed { steps: 1 });
}

#[tokio::test]
async fn an_unanswered_sms_is_marked_uncertain_alerted_and_kept_claimable() {
    let rig = rig();
    let (dispatch, steps) = confirmation(&rig);
    let mut mocks = MockPorts::new();
    mocks
        .notifier
        .expect_send_sms()
        .returning(|_, _, _| Err(PortError::Uncertain("no reply within 60s".into())));
    mocks
        .ledger
        .expect_mark_uncertain()
        .times(1)
        .returning(|_| Ok(()));
    mocks.ledger.expect_release().never();
    mocks.ledger.expect_mark_sent().never();
    mocks.tickets.expect_append_note().never();
    mocks
        .notifier
        .expect_post_slack()
        .withf(|line| {
            line.contains("SMS to +12123595129 may have been delivered; it will be sent again with the same idempotency key")
        })
        .times(1)
        .returning(|_| Ok(()));
    let execution = rig.run(mocks, &dispatch, &steps).await;
    assert!(
        matches!(execution, Execution::Stopped { steps: 0, .. }),
        "{execution:?}"
    );
}

#[tokio::test]
async fn a_refused_sms_releases_its_claim_and_is_not_uncertain() {
    let rig = rig();
    let (dispatch, steps) = confirmation(&rig);
    let mut mocks = MockPorts::new();
    mocks.notifier.expect_send_sms().returning(|_, _, _| {
        Err(PortError::Rejected {
            status: 500,
            detail: "gateway".into(),
        })
    });
    mocks.ledger.expect_release().times(1).returning(|_| Ok(()));
    mocks.ledger.expect_mark_uncertain().never();
    mocks.tickets.expect_append_note().never();
    let execution = rig
        .alert_level(AlertLevel::Errors)
        .run(mocks, &dispatch, &steps)
        .await;
    assert!(matches!(execution, Execution::Stopped { .. }));
}

/// The engine over the in-memory world with the flat test vendor.
fn engine(world: &MemoryWorld) -> Engine {
    Engine::new(world.ports(), EngineSettings::default())
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(FlatVendor::new(), &BTreeMap::new())
        .unwrap()
}

fn key(number: &str, kind: ActionKind, to: Recipient, phone: &str) -> LedgerKey {
    LedgerKey {
        vendor: VendorName::fixed("LIT"),
        dispatch_number: DispatchNumber::parse(number).unwrap(),
        purpose: SmsPurpose { kind, to },
        recipient: PhoneE164::parse_us(phone).unwrap(),
        change: None,
    }
}

#[tokio::test]
async fn a_lost_note_of_a_sent_sms_is_written_after_the_status_moved_on() {
    let world = MemoryWorld::new(Arc::new(ManualClock::new(hours_before(30.0))));
    let vendor = VendorName::fixed("LIT");
    world.source.set_list(
        &vendor,
        json!({"list": [record("DIS1", "100", "cancelled")]}),
    );
    let ticket = TicketId::parse("100").unwrap();
    world.tickets.seed_note(
        &ticket,
        "#*MetTel's IPA*# DIS1\nDispatch Management - Dispatch Requested",
        hours_before(48.0),
    );
    // The 2 h reminder went out, but its note was lost; the dispatch was cancelled since.
    let reminder = key(
        "DIS1",
        ActionKind::Reminder { hours: 2 },
        Recipient::Client,
        CLIENT,
    );
    let note = "#*MetTel's IPA*# DIS1\nDispatch 2h prior reminder SMS sent to +12123595129\n";
    world
        .ledger
        .claim(&reminder, note, Duration::from_secs(150))
        .await
        .unwrap();
    world.ledger.mark_sent(&reminder).await.unwrap();

    engine(&world)
        .run_cycle(&vendor, Mode::Execute)
        .await
        .unwrap();
    let texts = world.tickets.texts(&ticket);
    assert_eq!(texts[1], note, "the reminder's note first");
    assert!(texts[2].contains(CANCELLED));
    let sms = world
        .log
        .entries()
        .iter()
        .filter(|e| matches!(e.event, WorldEvent::Sms { .. }))
        .count();
    assert_eq!(sms, 0, "nothing is sent again");

    // The next cycle finds every note in place.
    engine(&world)
        .run_cycle(&vendor, Mode::Execute)
        .await
        .unwrap();
    assert_eq!(world.tickets.texts(&ticket).len(), 3);
}

#[test]
fn a_step_planned_again_takes_up_its_sent_sms_instead_of_a_bare_note() {
    let rig = rig();
    let mut dispatch = rig.dispatch(Status::Confirmed);
    dispatch.tech_name = Some("Hulk Hogan".into());
    let fe_note = format!("{FE_CONFIRMED}\n\nField Engineer\nJoe Malone\n+1 212");
    let texts = [
        REQUESTED,
        CONFIRMED,
        CONFIRMED_SMS,
        CONFIRMED_SMS_TECH,
        &fe_note,
    ];
    let mut plan = rig.plan(&dispatch, &texts);
    let Step::Act(change) = &plan.steps[0] else {
        panic!("{:?}", plan.steps)
    };
    assert_eq!(change.kind, ActionKind::TechChanged);
    // The client's text went out; the tech's did not (the dispatch stopped there).
    let client = LedgerEntry {
        key: change.sms[0].key.clone(),
        state: EntryState::Sent,
        note: change.note.clone(),
    };
    let notes = rig.notes(&dispatch, &texts);
    assert!(rules::reconcile(&plan, std::slice::from_ref(&client), &notes).is_empty());
    plan.mark_sent(&LedgerFacts::from_entries(&[client]));
    let Step::Act(change) = &plan.steps[0] else {
        panic!()
    };
    assert!(change.sms[0].already_sent && !change.sms[1].already_sent);
}

#[test]
fn names_that_read_back_differently_are_the_same_tech() {
    for (on_record, current) in [
        ("Joe  Malone", "joe malone"),
        ("O&#39;Brien &amp; Sons", "O'Brien & Sons"),
        ("\tAda Lovelace ", "ADA LOVELACE"),
    ] {
        let rig = rig();
        let mut dispatch = rig.dispatch(Status::Confirmed);
        dispatch.tech_name = Some(current.into());
        let fe_note = format!("{FE_CONFIRMED}\n\nField Engineer\n{on_record}\n+1 212");
        let texts = [
            REQUESTED,
            CONFIRMED,
            CONFIRMED_SMS,
            CONFIRMED_SMS_TECH,
            &fe_note,
        ];
        let plan = rig.plan(&dispatch, &texts);
        assert!(
            plan.steps.is_empty(),
            "{on_record:?} vs {current:?}: {:?}",
            plan.steps
        );
    }
}

#[tokio::test]
async fn a_new_tech_who_cannot_be_texted_still_gets_the_client_told_and_an_alert() {
    // An unusable phone, and no phone at all (SPEC §18.1): neither holds back the client.
    let cases: [(Option<&str>, &'static str); 2] = [
        (Some("12345"), "the tech's phone is not a usable number"),
        (None, "the tech has no phone"),
    ];
    for (raw_phone, why) in cases {
        let rig = rig();
        let mut dispatch = rig.dispatch(Status::Confirmed);
        dispatch.tech_name = Some("Hulk Hogan".into());
        dispatch.tech_phone = None;
        dispatch.tech_phone_raw = raw_phone.map(str::to_owned);
        let fe_note = format!("{FE_CONFIRMED}\n\nField Engineer\nJoe Malone\n+1 212");
        let plan = rig.plan(
            &dispatch,
            &[
                REQUESTED,
                CONFIRMED,
                CONFIRMED_SMS,
                CONFIRMED_SMS_TECH,
                &fe_note,
            ],
        );
        let Step::Act(change) = &plan.steps[0] else {
            panic!("{why}: {:?}", plan.steps)
        };
        assert_eq!(change.sms.len(), 1, "{why}: the client only");
        assert_eq!(change.sms[0].to.as_str(), Rig::CLIENT);
        assert_eq!(
            change.sms[0].key.change.as_deref(),
            Some("joe malone->hulk hogan #1")
        );
        let mut mocks = MockPorts::new();
        mocks
            .notifier
            .expect_send_sms()
            .times(1)
            .returning(|_, _, _| Ok(()));
        mocks
            .tickets
            .expect_append_note()
            .withf(|_, note| note.contains("Field Engineer\nHulk Hogan\n"))
            .times(1)
            .returning(|_, _| Ok(()));
        let alert = format!("tech change: its SMS to the new tech is skipped: {why}");
        mocks
            .notifier
            .expect_post_slack()
            .withf(move |line| line.contains(&alert))
            .times(1)
            .returning(|_| Ok(()));
        let execution = rig.run(mocks, &dispatch, &plan.steps).await;
        assert_eq!(execution, Execution::Completed { steps: 1 }, "{why}");
    }
}

#[test]
fn templates_that_drop_their_interface_are_refused_at_start_up() {
    let with = |vendor: &[TemplateSource], name: &'static str, source: &'static str| {
        let mut sources = with_common(vendor);
        sources.push((name, source));
        sources
    };
    let cases: [(VendorPolicy, &[TemplateSource], &str, &str, &str); 4] = [
        (
            lit_policy(),
            LIT_TEMPLATES,
            "reminder_note",
            "#*MetTel's IPA*# {{note_key}}\nReminder sent.\n",
            "watermark phrase",
        ),
        (
            lit_policy(),
            LIT_TEMPLATES,
            "cancelled_note",
            "Dispatch Management - Dispatch Cancelled\n",
            "watermark line",
        ),
        (
            lit_policy(),
            LIT_TEMPLATES,
            "fe_confirmed_note",
            "#*MetTel's IPA*# {{note_key}}\nDispatch Management - Field Engineer Confirmed\n{{tech_name}}\n",
            "Field Engineer",
        ),
        (
            cts_policy(),
            CTS_TEMPLATES,
            "confirmed_note",
            "#*MetTel's IPA*# {{note_key}}\nDispatch Management - Dispatch Confirmed\n",
            "Field Engineer",
        ),
    ];
    for (policy, vendor, name, source, missing) in cases {
        let fields = if policy.field_engineer_step {
            LIT_FIELDS
        } else {
            &[]
        };
        let error = Templates::build(policy, with(vendor, name, source), fields).unwrap_err();
        let TemplateError::Interface {
            name: failed,
            missing: why,
        } = &error
        else {
            panic!("{name}: {error:?}")
        };
        assert_eq!(failed, name);
        assert!(why.contains(missing), "{name}: {error}");
    }
    // The same texts without the interface are fine where nothing reads them back.
    let lit_confirmed = "#*MetTel's IPA*# {{note_key}}\nDispatch Management - Dispatch Confirmed\n";
    assert!(
        Templates::build(
            lit_policy(),
            with(LIT_TEMPLATES, "confirmed_note", lit_confirmed),
            LIT_FIELDS
        )
        .is_ok()
    );
}

#[test]
fn reminder_notes_are_checked_for_every_configured_hour() {
    // "2h" hard-coded: right at 2 h, wrong at 12 h and 6 h (SPEC §18.3).
    let fixed = "#*MetTel's IPA*# {{note_key}}\nDispatch 2h prior reminder SMS sent to {{phone}}\n";
    let fixed_tech =
        "#*MetTel's IPA*# {{note_key}}\nDispatch 2h prior reminder tech SMS sent to {{phone}}\n";
    let fixed_quiet = "#*MetTel's IPA*# {{note_key}}\nDispatch 2h prior reminder SMS not sent to {{phone}}: quiet hours {{quiet_hours}} at the site\n";
    let cases: [(&str, &str, &[u32], Option<u32>); 6] = [
        ("reminder_note", fixed, &[12, 6, 2], Some(12)),
        ("reminder_note", fixed, &[24, 2], Some(24)),
        ("reminder_note", fixed, &[2], None),
        ("reminder_tech_note", fixed_tech, &[12, 6, 2], Some(12)),
        ("reminder_quiet_hours_note", fixed_quiet, &[2, 6], Some(6)),
        ("reminder_quiet_hours_note", fixed_quiet, &[2], None),
    ];
    for (name, source, hours, refused_at) in cases {
        let mut sources = with_common(LIT_TEMPLATES);
        sources.push((name, source));
        let built = Templates::build_for(lit_policy(), sources.clone(), LIT_FIELDS, hours);
        match (refused_at, built) {
            (None, Ok(_)) => {}
            (
                Some(h),
                Err(TemplateError::Interface {
                    name: failed,
                    missing,
                }),
            ) => {
                assert_eq!(failed, name);
                assert!(
                    missing.contains(&format!("Dispatch {h}h prior reminder")),
                    "{missing}"
                );
            }
            (expected, built) => panic!("{name} at {hours:?}: {expected:?} vs {built:?}"),
        }
        // The engine checks the configured hours.
        let settings = EngineSettings {
            rules: rules::RuleSettings {
                reminder_hours: hours.to_vec(),
                ..rules::RuleSettings::default()
            },
            ..EngineSettings::default()
        };
        let world = MemoryWorld::new(Arc::new(ManualClock::new(hours_before(30.0))));
        let overrides = BTreeMap::from([(name.to_owned(), source.to_owned())]);
        let engine = Engine::new(world.ports(), settings)
            .with_common_templates(dispatch_templates::COMMON)
            .with_vendor(FlatVendor::new(), &overrides);
        assert_eq!(engine.is_ok(), refused_at.is_none(), "{name} at {hours:?}");
    }
}

/// Reads every ticket at once, except the first one listed: it answers only once every other
/// ticket of the cycle has been read.
struct SlowFirst {
    inner: Arc<dyn TicketRepository>,
    others_read: AtomicUsize,
    others: usize,
    all_read: tokio::sync::Notify,
}

#[async_trait]
impl TicketRepository for SlowFirst {
    async fn ticket_notes(&self, ticket: &TicketId) -> Result<Vec<RawTicketNote>, PortError> {
        if ticket.as_str() == "1000" {
            let all = self.all_read.notified();
            if self.others_read.load(Ordering::SeqCst) < self.others {
                all.await;
            }
        } else if self.others_read.fetch_add(1, Ordering::SeqCst) + 1 == self.others {
            self.all_read.notify_waiters();
        }
        self.inner.ticket_notes(ticket).await
    }
    async fn append_note(&self, ticket: &TicketId, note: &str) -> Result<(), PortError> {
        self.inner.append_note(ticket, note).await
    }
}

#[tokio::test]
async fn one_slow_dispatch_never_holds_the_others_back_and_reports_keep_list_order() {
    let world = MemoryWorld::new(Arc::new(ManualClock::new(hours_before(30.0))));
    let vendor = VendorName::fixed("LIT");
    let records: Vec<_> = (0..8)
        .map(|i| record(&format!("D{i}"), &format!("{}", 1000 + i), "requested"))
        .collect();
    world.source.set_list(&vendor, json!({ "list": records }));
    let mut ports = world.ports();
    ports.tickets = Arc::new(SlowFirst {
        inner: world.tickets.clone(),
        others_read: AtomicUsize::new(0),
        others: 7,
        all_read: tokio::sync::Notify::new(),
    });
    let settings = EngineSettings {
        concurrency: 2,
        ..EngineSettings::default()
    };
    let engine = Engine::new(ports, settings)
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(FlatVendor::new(), &BTreeMap::new())
        .unwrap();
    let report = tokio::time::timeout(
        Duration::from_secs(10),
        engine.run_cycle(&vendor, Mode::Execute),
    )
    .await
    .expect("the slow first dispatch held the others back")
    .unwrap();
    let numbers: Vec<&str> = report
        .dispatches
        .iter()
        .map(|d| d.dispatch.dispatch_number.as_str())
        .collect();
    assert_eq!(numbers, ["D0", "D1", "D2", "D3", "D4", "D5", "D6", "D7"]);
}

#[tokio::test]
async fn a_note_another_run_appended_or_is_appending_is_not_appended_again() {
    let rig = rig();
    let mut dispatch = rig.dispatch(Status::Canceled);
    dispatch.tech_phone = None;
    let plan = rig.plan(&dispatch, &[REQUESTED]);
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim_note()
        .withf(|key, _| key.entry_id() == "note:cancelled_note")
        .returning(|_, _| Ok(domain::ports::Claim::AlreadySent));
    mocks.tickets.expect_append_note().never();
    mocks.notifier.expect_post_slack().never();
    let execution = rig.run(mocks, &dispatch, &plan.steps).await;
    assert_eq!(execution, Execution::Completed { steps: 1 });

    let rig = self::rig();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim_note()
        .returning(|_, _| Ok(domain::ports::Claim::HeldElsewhere));
    mocks.tickets.expect_append_note().never();
    let execution = rig.run(mocks, &dispatch, &plan.steps).await;
    assert!(matches!(execution, Execution::Stopped { steps: 0, .. }));
}

/// A LIT dispatch's journal entries, oldest first.
async fn journal_of(
    journal: &domain::memory::MemoryJournal,
    number: &str,
) -> Vec<domain::journal::JournalEntry> {
    let lit = VendorName::fixed("LIT");
    domain::journal::Journal::dispatch(journal, &lit, number)
        .await
        .unwrap()
        .map(|history| history.entries)
        .unwrap_or_default()
}

/// Runs one executed cycle of LIT with DIS1 (ticket 100) assigned to `tech`.
async fn cycle_with_tech(
    world: &MemoryWorld,
    journal: &Arc<domain::memory::MemoryJournal>,
    tech: &str,
) {
    let lit = VendorName::fixed("LIT");
    let mut listed = record("DIS1", "100", "confirmed");
    listed["tech"] = json!(tech);
    world.source.set_list(&lit, json!({ "list": [listed] }));
    engine(world)
        .with_journal(journal.clone())
        .run_cycle(&lit, Mode::Execute)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tech_who_comes_back_twice_is_announced_and_noted_every_time() {
    let clock = Arc::new(ManualClock::new(hours_before(30.0)));
    let world = MemoryWorld::new(clock.clone());
    let journal = Arc::new(domain::memory::MemoryJournal::default());
    let ticket = TicketId::parse("100").unwrap();
    world.tickets.seed_note(
        &ticket,
        "#*MetTel's IPA*# DIS1\nDispatch Management - Dispatch Requested",
        hours_before(48.0),
    );
    // The confirmation stage with Joe Malone, then A -> B -> A -> B.
    let techs = ["Joe Malone", "Hulk Hogan", "Joe Malone", "Hulk Hogan"];
    for tech in techs {
        clock.advance(chrono::Duration::minutes(15));
        cycle_with_tech(&world, &journal, tech).await;
    }
    let changes: Vec<String> = world
        .tickets
        .texts(&ticket)
        .into_iter()
        .filter(|text| text.contains(TECH_CHANGED))
        .collect();
    assert_eq!(changes.len(), 3, "each change is noted: {changes:?}");
    for (note, tech) in changes.iter().zip(&techs[1..]) {
        assert!(
            note.contains(&format!("Field Engineer\n{tech}\n")),
            "{note}"
        );
    }
    let keys: Vec<String> = world
        .log
        .entries()
        .into_iter()
        .filter_map(|e| match e.event {
            WorldEvent::Sms { key, .. } if key.contains(":tech-changed") => Some(key),
            _ => None,
        })
        .collect();
    assert_eq!(
        keys,
        [
            "dev:LIT:DIS1:tech-changed:12123595129:joe malone->hulk hogan #1",
            "dev:LIT:DIS1:tech-changed-tech:12123595130:joe malone->hulk hogan #1",
            "dev:LIT:DIS1:tech-changed:12123595129:hulk hogan->joe malone #2",
            "dev:LIT:DIS1:tech-changed-tech:12123595130:hulk hogan->joe malone #2",
            "dev:LIT:DIS1:tech-changed:12123595129:joe malone->hulk hogan #3",
            "dev:LIT:DIS1:tech-changed-tech:12123595130:joe malone->hulk hogan #3",
        ],
        "the client and the tech are told of every change, each under its own key"
    );
    // Once told, nothing is sent, noted or journaled again, cycle after cycle.
    let before = journal_of(&journal, "DIS1").await.len();
    let events = world.log.entries().len();
    for _ in 0..3 {
        clock.advance(chrono::Duration::minutes(15));
        cycle_with_tech(&world, &journal, "Hulk Hogan").await;
    }
    assert_eq!(world.log.entries().len(), events, "no SMS or note");
    let after = journal_of(&journal, "DIS1").await;
    assert_eq!(
        after.len(),
        before,
        "no new journal entries: {:?}",
        &after[before..]
    );
}
