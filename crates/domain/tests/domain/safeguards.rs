//! Customer-text safeguards (SPEC §17): the rules as a table over every SMS action kind ×
//! {opted out, paused, capped, quiet hours} — opted out > paused > capped > quiet hours — and
//! whole cycles over the in-memory world: the opted-out note once, the cap held and alerted
//! once, a pause and its journal, and nothing sent while the safeguards cannot be read.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::common::*;
use ActionKind::*;
use domain::journal::{EntryKind, Journal};
use domain::memory::{ManualClock, MemoryJournal, MemoryWorld, WorldEvent};
use domain::phrases::*;
use domain::ports::{Clock, SmsLedger};
use domain::rules::{self, ActionKind, RuleInput, RuleSettings, Step};
use domain::safeguards::{
    DailyCap, Reservation, SafeguardFacts, SafeguardMark, Safeguards, Withhold,
};
use domain::*;
use serde_json::json;

/// What became of a planned SMS step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Taken,
    /// Quiet hours: the client's reminder is not sent; a note records it.
    Skipped,
    /// Quiet hours: the client's text waits.
    Deferred,
    Withheld(Withhold),
}

/// A dispatch, its notes and the hours before its appointment at which `kind` is due.
fn scenario(kind: ActionKind) -> (Dispatch, Vec<String>, f64) {
    let stage = |tech: &str| {
        vec![
            REQUESTED.to_owned(),
            CONFIRMED.to_owned(),
            CONFIRMED_SMS.to_owned(),
            format!("{FE_CONFIRMED}\n\nField Engineer\n{tech}\n+1 212"),
            CONFIRMED_SMS_TECH.to_owned(),
        ]
    };
    let confirmed = lit_dispatch(Status::Confirmed);
    match kind {
        ConfirmedSms => (confirmed, stage("Joe Malone")[..2].to_vec(), 30.0),
        FieldEngineerConfirmed => (confirmed, stage("Joe Malone")[..3].to_vec(), 30.0),
        ConfirmedTechSms => (confirmed, stage("Joe Malone")[..4].to_vec(), 30.0),
        TechChanged => (confirmed, stage("Old Tech"), 30.0),
        Reminder { .. } | ReminderTech { .. } => (confirmed, stage("Joe Malone"), 1.5),
        TechOnSite => {
            let mut dispatch = lit_dispatch(Status::TechOnSite);
            dispatch.tech_on_site = true;
            (dispatch, vec![REQUESTED.to_owned()], 0.5)
        }
        other => panic!("{other:?} sends no SMS"),
    }
}

/// Every SMS kind of the action table, checked against it below.
const SMS_KINDS: [ActionKind; 7] = [
    ConfirmedSms,
    FieldEngineerConfirmed,
    ConfirmedTechSms,
    TechChanged,
    Reminder { hours: 2 },
    ReminderTech { hours: 2 },
    TechOnSite,
];

/// The recipients of `kind`'s texts on the sample dispatch.
fn recipients(kind: ActionKind) -> Vec<PhoneE164> {
    kind.row()
        .sms
        .iter()
        .map(|row| match row.to {
            domain::actions::Recipient::Client => PhoneE164::parse_us(CLIENT).unwrap(),
            domain::actions::Recipient::Tech => PhoneE164::parse_us(TECH).unwrap(),
        })
        .collect()
}

fn plan_with(
    dispatch: &Dispatch,
    texts: &[String],
    hours: f64,
    settings: &RuleSettings,
    facts: &SafeguardFacts,
) -> rules::Plan {
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let templates = lit_templates();
    rules::plan(&RuleInput {
        dispatch,
        notes: &notes("DIS37405", &texts),
        now: hours_before(hours),
        policy: lit_policy(),
        settings,
        templates: &templates,
        safeguards: facts,
    })
}

fn fate_of(plan: &rules::Plan, kind: ActionKind) -> Option<Fate> {
    plan.steps
        .iter()
        .find(|s| s.kind() == kind)
        .map(|step| match step {
            Step::Act(action) if !action.withheld.is_empty() => Fate::Skipped,
            Step::Act(_) => Fate::Taken,
            Step::Deferred(_) => Fate::Deferred,
            Step::Withheld(withheld) => Fate::Withheld(withheld.why),
            Step::Blocked(blocked) => panic!("{kind}: blocked: {}", blocked.reason),
        })
}

/// What quiet hours alone do to `kind` (SPEC §15).
fn quiet_fate(kind: ActionKind) -> Fate {
    match kind.row().quiet {
        domain::actions::Quiet::Unaffected => Fate::Taken,
        domain::actions::Quiet::Deferred => Fate::Deferred,
        domain::actions::Quiet::SkippedWithNote(_) => Fate::Skipped,
    }
}

#[test]
fn every_sms_kind_under_every_mix_of_safeguards_follows_the_precedence() {
    let table_kinds: Vec<ActionKind> = ActionKind::every(2)
        .into_iter()
        .filter(|kind| kind.sends_sms())
        .collect();
    assert_eq!(table_kinds, SMS_KINDS, "every SMS kind is covered");
    let mut checked = 0;
    for kind in table_kinds {
        let (dispatch, texts, hours) = scenario(kind);
        for mix in 0..16u8 {
            let (opted, paused, capped, quiet) =
                (mix & 1 != 0, mix & 2 != 0, mix & 4 != 0, mix & 8 != 0);
            let to = recipients(kind);
            let facts = SafeguardFacts {
                opted_out: if opted {
                    to.iter().cloned().collect()
                } else {
                    Default::default()
                },
                paused: paused.then(|| SafeguardMark {
                    at: hours_before(40.0),
                    by: "cli:ops".into(),
                    reason: "customer asked".into(),
                }),
                capped: if capped {
                    to.iter().cloned().collect()
                } else {
                    Default::default()
                },
                unreadable: None,
            };
            let settings = RuleSettings {
                quiet_hours: quiet.then(|| "00:00-23:59".parse().unwrap()),
                ..RuleSettings::default()
            };
            let expected = if opted {
                Fate::Withheld(Withhold::OptedOut)
            } else if paused {
                Fate::Withheld(Withhold::Paused)
            } else if capped {
                Fate::Withheld(Withhold::Capped)
            } else if quiet {
                quiet_fate(kind)
            } else {
                Fate::Taken
            };
            let plan = plan_with(&dispatch, &texts, hours, &settings, &facts);
            let case =
                format!("{kind} opted={opted} paused={paused} capped={capped} quiet={quiet}");
            assert_eq!(
                fate_of(&plan, kind),
                Some(expected),
                "{case}: {:#?}",
                plan.steps
            );
            let notes_for: Vec<&PhoneE164> = plan
                .steps
                .iter()
                .filter_map(|step| match step {
                    Step::Act(action) if action.kind == OptedOutNote => action.about.as_ref(),
                    _ => None,
                })
                .collect();
            if opted {
                for phone in &to {
                    assert!(
                        notes_for.contains(&phone),
                        "{case}: an opted-out note for {phone}"
                    );
                }
            } else {
                assert!(notes_for.is_empty(), "{case}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 7 * 16);
}

#[test]
fn the_opted_out_note_is_the_spec_text_and_written_once_per_number() {
    let (dispatch, texts, hours) = scenario(ConfirmedSms);
    let client = PhoneE164::parse_us(CLIENT).unwrap();
    let facts = SafeguardFacts {
        opted_out: [client.clone()].into(),
        ..SafeguardFacts::default()
    };
    let plan = plan_with(&dispatch, &texts, hours, &RuleSettings::default(), &facts);
    let notes: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Act(action) if action.kind == OptedOutNote => Some(action.note.as_str()),
            _ => None,
        })
        .collect();
    // Two client texts are due (confirmation, field engineer assigned): one note.
    assert_eq!(
        notes,
        [
            "#*MetTel's IPA*# DIS37405\nDispatch SMS withheld from +12123595129: the number opted out of texts\n"
        ]
    );
    assert_eq!(
        opted_out("+12123595129"),
        "Dispatch SMS withheld from +12123595129"
    );

    let mut noted = texts.clone();
    noted.push(opted_out(client.as_str()));
    let plan = plan_with(&dispatch, &noted, hours, &RuleSettings::default(), &facts);
    assert!(
        plan.steps.iter().all(|s| s.kind() != OptedOutNote),
        "{:#?}",
        plan.steps
    );
    assert_eq!(
        fate_of(&plan, ConfirmedSms),
        Some(Fate::Withheld(Withhold::OptedOut))
    );
}

#[test]
fn an_opted_out_client_never_holds_back_the_techs_texts() {
    let (dispatch, _, _) = scenario(ConfirmedSms);
    let facts = SafeguardFacts {
        opted_out: [PhoneE164::parse_us(CLIENT).unwrap()].into(),
        ..SafeguardFacts::default()
    };
    // The tech was told; the client's texts are withheld, and never will go.
    let texts = [REQUESTED, CONFIRMED, CONFIRMED_SMS_TECH].map(str::to_owned);
    let plan = plan_with(&dispatch, &texts, 1.5, &RuleSettings::default(), &facts);
    let fates: Vec<(ActionKind, Option<Fate>)> = [
        ConfirmedSms,
        FieldEngineerConfirmed,
        ConfirmedTechSms,
        Reminder { hours: 2 },
        ReminderTech { hours: 2 },
    ]
    .into_iter()
    .map(|kind| (kind, fate_of(&plan, kind)))
    .collect();
    let withheld = Some(Fate::Withheld(Withhold::OptedOut));
    assert_eq!(
        fates,
        [
            (ConfirmedSms, withheld),
            (FieldEngineerConfirmed, withheld),
            (ConfirmedTechSms, None),
            (Reminder { hours: 2 }, withheld),
            (ReminderTech { hours: 2 }, Some(Fate::Taken)),
        ]
    );
}

#[test]
fn an_opted_out_new_tech_is_left_out_and_the_client_is_still_told() {
    let (dispatch, texts, hours) = scenario(TechChanged);
    let facts = SafeguardFacts {
        opted_out: [PhoneE164::parse_us(TECH).unwrap()].into(),
        ..SafeguardFacts::default()
    };
    let plan = plan_with(&dispatch, &texts, hours, &RuleSettings::default(), &facts);
    let Some(Step::Act(action)) = plan.steps.iter().find(|s| s.kind() == TechChanged) else {
        panic!("{:#?}", plan.steps);
    };
    let to: Vec<&str> = action.sms.iter().map(|sms| sms.to.as_str()).collect();
    assert_eq!(to, [CLIENT]);
    assert_eq!(
        action.notices,
        ["its SMS to +12123595130 is withheld: the number opted out of texts"]
    );
    assert!(plan.steps.iter().any(|s| s.kind() == OptedOutNote));
}

#[test]
fn a_pause_withholds_texts_but_not_the_notes_that_record_none() {
    let paused = SafeguardFacts {
        paused: Some(SafeguardMark {
            at: hours_before(40.0),
            by: "api".into(),
            reason: "visit moved".into(),
        }),
        ..SafeguardFacts::default()
    };
    let (dispatch, _, _) = scenario(ConfirmedSms);
    let settings = RuleSettings::default();
    let requested = [REQUESTED.to_owned()];
    let plan = plan_with(&dispatch, &requested, 30.0, &settings, &paused);
    assert_eq!(fate_of(&plan, ConfirmedNote), Some(Fate::Taken));
    assert_eq!(
        fate_of(&plan, ConfirmedSms),
        Some(Fate::Withheld(Withhold::Paused))
    );
    let Some(Step::Withheld(withheld)) = plan.steps.iter().find(|s| s.kind() == ConfirmedSms)
    else {
        unreachable!()
    };
    assert_eq!(
        withheld.reason,
        "the dispatch is paused by api: visit moved"
    );
    for (status, kind) in [
        (Status::Canceled, Cancelled),
        (Status::Completed, Completed),
    ] {
        let mut dispatch = lit_dispatch(status);
        dispatch.completed = true;
        let plan = plan_with(&dispatch, &requested, 30.0, &settings, &paused);
        assert_eq!(fate_of(&plan, kind), Some(Fate::Taken), "{kind}");
    }
}

#[test]
fn unreadable_safeguards_block_every_text_and_nothing_else() {
    let facts = SafeguardFacts::unreadable(&ports::PortError::Unavailable("down".into()));
    let (dispatch, _, _) = scenario(ConfirmedSms);
    let plan = plan_with(
        &dispatch,
        &[REQUESTED.to_owned()],
        30.0,
        &RuleSettings::default(),
        &facts,
    );
    assert!(matches!(plan.steps[0], Step::Act(ref a) if a.kind == ConfirmedNote));
    let Step::Blocked(blocked) = &plan.steps[1] else {
        panic!("{:#?}", plan.steps)
    };
    assert_eq!(blocked.kind, ConfirmedSms);
    assert_eq!(
        blocked.reason,
        "the customer-text safeguards cannot be read: unavailable: down"
    );
}

// Whole cycles over the in-memory world.

struct World {
    world: MemoryWorld,
    engine: Engine,
    journal: Arc<MemoryJournal>,
    vendor: VendorName,
}

fn world(numbers: &[&str], cap: u32) -> World {
    let clock = Arc::new(ManualClock::new(hours_before(30.0)));
    let world = MemoryWorld::new(clock);
    let vendor = VendorName::parse("LIT").unwrap();
    let records: Vec<_> = numbers
        .iter()
        .enumerate()
        .map(|(i, number)| record(number, &format!("35448{i:02}"), "confirmed"))
        .collect();
    world.source.set_list(&vendor, json!({ "list": records }));
    for (i, number) in numbers.iter().enumerate() {
        world.tickets.seed_note(
            &TicketId::parse(&format!("35448{i:02}")).unwrap(),
            &format!("#*MetTel's IPA*# {number}\n{REQUESTED}\n"),
            hours_before(48.0),
        );
    }
    let settings = EngineSettings {
        concurrency: 1,
        rules: RuleSettings {
            daily_cap: DailyCap(cap),
            ..RuleSettings::default()
        },
        ..EngineSettings::default()
    };
    let journal = Arc::new(MemoryJournal::default());
    let engine = Engine::new(world.ports(), settings)
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(FlatVendor::new(), &BTreeMap::new())
        .unwrap()
        .with_journal(journal.clone());
    World {
        world,
        engine,
        journal,
        vendor,
    }
}

impl World {
    async fn cycle(&self) -> CycleReport {
        self.engine
            .run_cycle(&self.vendor, Mode::Execute)
            .await
            .unwrap()
    }

    fn texts_to(&self, phone: &str) -> usize {
        self.world
            .log
            .entries()
            .iter()
            .filter(|e| matches!(&e.event, WorldEvent::Sms { to, .. } if to.as_str() == phone))
            .count()
    }

    fn notes(&self, ticket: &str) -> Vec<String> {
        self.world.tickets.texts(&TicketId::parse(ticket).unwrap())
    }

    fn slack(&self) -> Vec<String> {
        self.world
            .log
            .entries()
            .into_iter()
            .filter_map(|e| match e.event {
                WorldEvent::Slack(line) => Some(line),
                _ => None,
            })
            .collect()
    }
}

fn client() -> PhoneE164 {
    PhoneE164::parse_us(CLIENT).unwrap()
}

fn mark(reason: &str) -> SafeguardMark {
    SafeguardMark {
        at: hours_before(31.0),
        by: "cli:ops".into(),
        reason: reason.into(),
    }
}

#[tokio::test]
async fn an_opted_out_client_gets_no_text_one_note_and_texts_again_once_removed() {
    let w = world(&["DIS1"], 10);
    let store = &w.world.safeguards;
    store.add_opt_out(&client(), &mark("STOP")).await.unwrap();
    w.cycle().await;
    w.cycle().await;
    assert_eq!(w.texts_to(CLIENT), 0);
    assert_eq!(w.texts_to(TECH), 1, "the tech's confirmation still goes");
    let withheld: Vec<String> = w
        .notes("3544800")
        .into_iter()
        .filter(|n| n.contains("Dispatch SMS withheld from +12123595129"))
        .collect();
    assert_eq!(withheld.len(), 1, "once per dispatch and number");
    assert!(!w.notes("3544800").iter().any(|n| n.contains(CONFIRMED_SMS)));
    let number = DispatchNumber::parse("DIS1").unwrap();
    let ledger = w.world.ledger.entries(&w.vendor, &number).await.unwrap();
    assert!(
        ledger.iter().all(|e| e.key.recipient != client()),
        "never claimed"
    );
    let history = w
        .journal
        .dispatch(&w.vendor, "DIS1")
        .await
        .unwrap()
        .unwrap();
    assert!(history.entries.iter().any(|e| e.outcome == "opted_out"));

    store.remove_opt_out(&client()).await.unwrap();
    w.cycle().await;
    // The confirmation and the field-engineer text, still due once the number leaves.
    assert_eq!(w.texts_to(CLIENT), 2);
}

#[tokio::test]
async fn the_cap_holds_a_number_across_dispatches_and_alerts_once() {
    let w = world(&["DIS1"], 10);
    let now = w.world.clock.now();
    for i in 0..10 {
        let id = format!("earlier-{i}");
        let reserved = w.world.safeguards.reserve(&client(), &id, 10, now).await;
        assert_eq!(reserved.unwrap(), Reservation::Reserved);
    }
    w.cycle().await;
    w.cycle().await;
    assert_eq!(w.texts_to(CLIENT), 0);
    let held: Vec<String> = w
        .slack()
        .into_iter()
        .filter(|l| l.contains("held"))
        .collect();
    assert_eq!(
        held,
        [
            "[dispatch-monitor] [LIT] Dispatch [DIS1] in ticket_id: 3544800 - SMS to +12123595129 held: 10 texts in 24 h (MONITOR_SMS_DAILY_CAP)"
        ]
    );
    let history = w
        .journal
        .dispatch(&w.vendor, "DIS1")
        .await
        .unwrap()
        .unwrap();
    assert!(history.entries.iter().any(|e| e.outcome == "capped"));

    // A day later the earlier texts no longer count.
    w.world.clock.advance(chrono::Duration::hours(24));
    w.cycle().await;
    assert_eq!(w.texts_to(CLIENT), 2);
}

#[tokio::test]
async fn the_cap_is_reserved_before_sending_and_given_back_when_refused() {
    let w = world(&["DIS1", "DIS2", "DIS3"], 2);
    w.cycle().await;
    // Each dispatch texts the client twice (confirmation, engineer assigned): two in all.
    assert_eq!(w.texts_to(CLIENT), 2);
    let now = w.world.clock.now();
    assert_eq!(
        w.world
            .safeguards
            .texts_in_window(&client(), now)
            .await
            .unwrap(),
        2
    );

    let w = world(&["DIS1"], 2);
    w.world.notifier.set_sms_failing(true);
    w.cycle().await;
    let now = w.world.clock.now();
    let counted = w.world.safeguards.texts_in_window(&client(), now).await;
    assert_eq!(counted.unwrap(), 0, "a refused text is not counted");
}

#[tokio::test]
async fn a_paused_dispatch_writes_its_notes_but_texts_nobody_until_resumed() {
    let w = world(&["DIS1"], 10);
    let number = DispatchNumber::parse("DIS1").unwrap();
    let store: &dyn Safeguards = w.world.safeguards.as_ref();
    let pause = mark("customer asked");
    let paused = pausing::pause_dispatch(
        store,
        w.journal.as_ref(),
        &w.vendor,
        &number,
        &pause,
        "test",
    );
    assert!(paused.await.unwrap());
    let report = w.cycle().await;
    assert_eq!(w.texts_to(CLIENT) + w.texts_to(TECH), 0);
    assert!(w.notes("3544800").iter().any(|n| n.contains(CONFIRMED)));
    assert_eq!(report.dispatches[0].paused, Some(mark("customer asked")));
    let snapshots = w.journal.dispatches(&w.vendor).await.unwrap();
    assert_eq!(snapshots[0].paused, Some(mark("customer asked")));

    let resumed = pausing::resume_dispatch(
        store,
        w.journal.as_ref(),
        &w.vendor,
        &number,
        "api",
        hours_before(29.0),
        "test",
    );
    assert_eq!(resumed.await.unwrap(), Some(mark("customer asked")));
    w.cycle().await;
    assert_eq!(
        w.texts_to(CLIENT),
        2,
        "the confirmation and the field-engineer text"
    );
    let history = w
        .journal
        .dispatch(&w.vendor, "DIS1")
        .await
        .unwrap()
        .unwrap();
    let pauses: Vec<(String, String)> = history
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Pause)
        .map(|e| (e.outcome.clone(), e.detail.clone().unwrap()))
        .collect();
    assert_eq!(
        pauses,
        [
            ("paused".to_owned(), "by cli:ops: customer asked".to_owned()),
            (
                "resumed".to_owned(),
                "by api; it was paused by cli:ops at 2020-03-15T16:00:00+00:00: customer asked"
                    .to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn unreadable_safeguards_send_nothing_alert_and_are_retried() {
    let w = world(&["DIS1"], 10);
    w.world.safeguards.set_failing(true);
    let report = w.cycle().await;
    assert_eq!(w.texts_to(CLIENT) + w.texts_to(TECH), 0);
    assert!(
        report.dispatches[0].failed(),
        "{:?}",
        report.dispatches[0].outcome
    );
    assert!(
        w.slack()
            .iter()
            .any(|l| l.contains("the customer-text safeguards cannot be read")),
        "{:?}",
        w.slack()
    );
    w.world.safeguards.set_failing(false);
    w.cycle().await;
    assert_eq!(w.texts_to(CLIENT), 2);
}

#[tokio::test]
async fn a_text_whose_outcome_is_unknown_stays_counted() {
    use domain::mocks::{MockPorts, Rig};
    let rig = Rig::new(dispatch_templates::COMMON, dispatch_templates::LIT);
    let mut dispatch = rig.dispatch(Status::Confirmed);
    dispatch.tech_phone = None;
    let plan = rig.plan(&dispatch, &[REQUESTED, CONFIRMED]);
    for (reply, counted) in [
        (ports::PortError::Uncertain("timed out".into()), 1),
        (
            ports::PortError::Rejected {
                status: 500,
                detail: "refused".into(),
            },
            0,
        ),
    ] {
        let mut mocks = MockPorts::new();
        let store = mocks.safeguards.clone();
        mocks
            .notifier
            .expect_send_sms()
            .times(1)
            .returning(move |_, _, _| Err(reply.clone()));
        let execution = rig.run(mocks, &dispatch, &plan.steps).await;
        assert!(matches!(execution, executor::Execution::Stopped { .. }));
        let now: chrono::DateTime<chrono::Utc> = Rig::NOW.parse().unwrap();
        let phone = PhoneE164::parse_us(Rig::CLIENT).unwrap();
        assert_eq!(store.texts_in_window(&phone, now).await.unwrap(), counted);
    }
}
