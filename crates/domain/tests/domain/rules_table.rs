//! The rules of SPEC §7 as data tables: notes, time and dispatch in; steps out.

use crate::common::*;
use domain::actions::Recipient;
use domain::phrases::*;
use domain::ports::SmsPurpose;
use domain::rules::{self, ActionKind, LedgerFacts, RuleInput, RuleSettings, Step};
use domain::{Dispatch, DispatchNotes, Status, Templates, VendorPolicy, phrases};

use ActionKind::*;

fn plan_kinds(
    dispatch: &Dispatch,
    notes: &DispatchNotes,
    hours: f64,
    policy: VendorPolicy,
    templates: &Templates,
    settings: &RuleSettings,
) -> Vec<ActionKind> {
    let input = RuleInput {
        dispatch,
        notes,
        now: hours_before(hours),
        policy,
        settings,
        templates,
        safeguards: &domain::safeguards::SafeguardFacts::NONE,
    };
    rules::plan(&input).steps.iter().map(Step::kind).collect()
}

fn fe_note(name: &str) -> String {
    format!("{FE_CONFIRMED}\n\nField Engineer\n{name}\n+1 212")
}

fn changed_note(name: &str) -> String {
    format!("{TECH_CHANGED}.\nReference: 3544800\n\nField Engineer\n{name}\n+1 212")
}

struct Case {
    name: &'static str,
    notes: Vec<String>,
    hours_before: f64,
    edit: fn(&mut Dispatch),
    expected: Vec<ActionKind>,
}

fn no_edit(_: &mut Dispatch) {}

fn owned(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| (*t).to_owned()).collect()
}

#[test]
fn lit_confirmed_rules() {
    let stage_with_joe: Vec<String> = {
        let mut v = owned(&[REQUESTED, CONFIRMED, CONFIRMED_SMS, CONFIRMED_SMS_TECH]);
        v.push(fe_note("Joe Malone"));
        v
    };
    let cases = vec![
        Case {
            name: "fresh confirmation runs the whole stage in order",
            notes: owned(&[REQUESTED]),
            hours_before: 30.0,
            edit: no_edit,
            expected: vec![
                ConfirmedNote,
                ConfirmedSms,
                FieldEngineerConfirmed,
                ConfirmedTechSms,
            ],
        },
        Case {
            name: "no tech yet: note and client SMS only",
            notes: owned(&[REQUESTED]),
            hours_before: 30.0,
            edit: |d| {
                d.tech_name = None;
                d.tech_phone = None;
                d.tech_phone_raw = None;
            },
            expected: vec![ConfirmedNote, ConfirmedSms],
        },
        Case {
            name: "tech name without phone: no field engineer step, no tech SMS",
            notes: owned(&[REQUESTED, CONFIRMED, CONFIRMED_SMS]),
            hours_before: 30.0,
            edit: |d| d.tech_phone = None,
            expected: vec![],
        },
        Case {
            name: "stage incomplete at 11.5h: finish the stage, no reminder in the same cycle",
            notes: owned(&[REQUESTED, CONFIRMED, CONFIRMED_SMS, FE_CONFIRMED]),
            hours_before: 11.5,
            edit: no_edit,
            expected: vec![ConfirmedTechSms],
        },
        Case {
            name: "12h reminders for client and tech",
            notes: stage_with_joe.clone(),
            hours_before: 11.5,
            edit: no_edit,
            expected: vec![Reminder { hours: 12 }, ReminderTech { hours: 12 }],
        },
        Case {
            name: "client 12h reminder already recorded",
            notes: [stage_with_joe.clone(), vec![reminder(12)]].concat(),
            hours_before: 11.2,
            edit: no_edit,
            expected: vec![ReminderTech { hours: 12 }],
        },
        Case {
            name: "both 12h reminders recorded",
            notes: [
                stage_with_joe.clone(),
                vec![reminder(12), reminder_tech(12)],
            ]
            .concat(),
            hours_before: 11.0,
            edit: no_edit,
            expected: vec![],
        },
        Case {
            name: "12.5h before: outside every window",
            notes: stage_with_joe.clone(),
            hours_before: 12.5,
            edit: no_edit,
            expected: vec![],
        },
        Case {
            name: "exactly 12h before: window is [11, 12)",
            notes: stage_with_joe.clone(),
            hours_before: 12.0,
            edit: no_edit,
            expected: vec![],
        },
        Case {
            name: "exactly 11h before: inside the 12h window",
            notes: stage_with_joe.clone(),
            hours_before: 11.0,
            edit: no_edit,
            expected: vec![Reminder { hours: 12 }, ReminderTech { hours: 12 }],
        },
        Case {
            name: "6h reminders",
            notes: stage_with_joe.clone(),
            hours_before: 5.5,
            edit: no_edit,
            expected: vec![Reminder { hours: 6 }, ReminderTech { hours: 6 }],
        },
        Case {
            name: "2h reminders",
            notes: stage_with_joe.clone(),
            hours_before: 1.25,
            edit: no_edit,
            expected: vec![Reminder { hours: 2 }, ReminderTech { hours: 2 }],
        },
        Case {
            name: "half an hour before: no window",
            notes: stage_with_joe.clone(),
            hours_before: 0.5,
            edit: no_edit,
            expected: vec![],
        },
        Case {
            name: "past appointments get no reminders (the original's bug)",
            notes: stage_with_joe.clone(),
            hours_before: -1.5,
            edit: no_edit,
            expected: vec![],
        },
        Case {
            name: "no tech phone: client reminder only",
            notes: owned(&[REQUESTED, CONFIRMED, CONFIRMED_SMS]),
            hours_before: 1.5,
            edit: |d| {
                d.tech_name = None;
                d.tech_phone = None;
            },
            expected: vec![Reminder { hours: 2 }],
        },
        Case {
            name: "tech changed since the field engineer note",
            notes: stage_with_joe.clone(),
            hours_before: 30.0,
            edit: |d| d.tech_name = Some("Hulk Hogan".into()),
            expected: vec![TechChanged],
        },
        Case {
            name: "tech change and a reminder in one cycle",
            notes: stage_with_joe.clone(),
            hours_before: 1.5,
            edit: |d| d.tech_name = Some("Hulk Hogan".into()),
            expected: vec![
                TechChanged,
                Reminder { hours: 2 },
                ReminderTech { hours: 2 },
            ],
        },
        Case {
            name: "tech change already recorded",
            notes: [stage_with_joe.clone(), vec![changed_note("Hulk Hogan")]].concat(),
            hours_before: 30.0,
            edit: |d| d.tech_name = Some("Hulk Hogan".into()),
            expected: vec![],
        },
        Case {
            name: "tech changed back to the first one",
            notes: [stage_with_joe.clone(), vec![changed_note("Hulk Hogan")]].concat(),
            hours_before: 30.0,
            edit: no_edit,
            expected: vec![TechChanged],
        },
        Case {
            name: "unknown appointment skips the Confirmed rules",
            notes: owned(&[REQUESTED]),
            hours_before: 30.0,
            edit: |d| d.appointment = None,
            expected: vec![],
        },
        Case {
            name: "no client phone skips the Confirmed rules",
            notes: owned(&[REQUESTED]),
            hours_before: 30.0,
            edit: |d| d.client_phone = None,
            expected: vec![],
        },
    ];
    let templates = lit_templates();
    let settings = RuleSettings::default();
    for case in cases {
        let mut dispatch = lit_dispatch(Status::Confirmed);
        (case.edit)(&mut dispatch);
        let texts: Vec<&str> = case.notes.iter().map(String::as_str).collect();
        let notes = notes("DIS37405", &texts);
        let got = plan_kinds(
            &dispatch,
            &notes,
            case.hours_before,
            lit_policy(),
            &templates,
            &settings,
        );
        assert_eq!(got, case.expected, "case: {}", case.name);
    }
}

#[test]
fn cts_confirmed_rules() {
    let cts_confirmed = |name: &str| {
        format!("{CONFIRMED}\nDispatch scheduled for x\n\nField Engineer\n{name}\n+1 212")
    };
    let stage: Vec<String> = vec![
        REQUESTED.into(),
        cts_confirmed("Joe Malone"),
        CONFIRMED_SMS.into(),
        CONFIRMED_SMS_TECH.into(),
    ];
    let cases = vec![
        Case {
            name: "Scheduled with tech: note, client SMS, tech SMS; no field engineer step",
            notes: owned(&[REQUESTED]),
            hours_before: 30.0,
            edit: no_edit,
            expected: vec![ConfirmedNote, ConfirmedSms, ConfirmedTechSms],
        },
        Case {
            name: "Scheduled without tech phone is not confirmed yet",
            notes: owned(&[REQUESTED]),
            hours_before: 30.0,
            edit: |d| d.tech_phone = None,
            expected: vec![],
        },
        Case {
            name: "Scheduled without tech name is not confirmed yet",
            notes: owned(&[REQUESTED]),
            hours_before: 30.0,
            edit: |d| d.tech_name = None,
            expected: vec![],
        },
        Case {
            name: "tech change is measured against the Confirmed note",
            notes: stage.clone(),
            hours_before: 30.0,
            edit: |d| d.tech_name = Some("Michael J. Fox".into()),
            expected: vec![TechChanged],
        },
        Case {
            name: "same tech: reminders only",
            notes: stage.clone(),
            hours_before: 5.9,
            edit: no_edit,
            expected: vec![Reminder { hours: 6 }, ReminderTech { hours: 6 }],
        },
    ];
    let templates = cts_templates();
    let settings = RuleSettings::default();
    for case in cases {
        let mut dispatch = cts_dispatch(Status::Confirmed);
        (case.edit)(&mut dispatch);
        let texts: Vec<&str> = case.notes.iter().map(String::as_str).collect();
        let notes = notes("IGZ_0001", &texts);
        let got = plan_kinds(
            &dispatch,
            &notes,
            case.hours_before,
            cts_policy(),
            &templates,
            &settings,
        );
        assert_eq!(got, case.expected, "case: {}", case.name);
    }
}

#[test]
fn other_status_rules() {
    struct StatusCase {
        name: &'static str,
        status: Status,
        notes: &'static [&'static str],
        edit: fn(&mut Dispatch),
        settings: RuleSettings,
        expected: Vec<ActionKind>,
    }
    let completed_off = RuleSettings {
        completed_notes: false,
        ..RuleSettings::default()
    };
    let cases = vec![
        StatusCase {
            name: "tech on site",
            status: Status::TechOnSite,
            notes: &[REQUESTED],
            edit: |d| d.tech_on_site = true,
            settings: RuleSettings::default(),
            expected: vec![TechOnSite],
        },
        StatusCase {
            name: "tech on site without check-in evidence",
            status: Status::TechOnSite,
            notes: &[REQUESTED],
            edit: no_edit,
            settings: RuleSettings::default(),
            expected: vec![],
        },
        StatusCase {
            name: "tech on site already recorded",
            status: Status::TechOnSite,
            notes: &[REQUESTED, ON_SITE],
            edit: |d| d.tech_on_site = true,
            settings: RuleSettings::default(),
            expected: vec![],
        },
        StatusCase {
            name: "tech on site without client phone",
            status: Status::TechOnSite,
            notes: &[REQUESTED],
            edit: |d| {
                d.tech_on_site = true;
                d.client_phone = None;
            },
            settings: RuleSettings::default(),
            expected: vec![],
        },
        StatusCase {
            name: "cancelled",
            status: Status::Canceled,
            notes: &[REQUESTED],
            edit: no_edit,
            settings: RuleSettings::default(),
            expected: vec![Cancelled],
        },
        StatusCase {
            name: "cancelled already recorded",
            status: Status::Canceled,
            notes: &[REQUESTED, CANCELLED],
            edit: no_edit,
            settings: RuleSettings::default(),
            expected: vec![],
        },
        StatusCase {
            name: "cancelled with an unknown appointment still gets its note",
            status: Status::Canceled,
            notes: &[REQUESTED],
            edit: |d| d.appointment = None,
            settings: RuleSettings::default(),
            expected: vec![Cancelled],
        },
        StatusCase {
            name: "completed",
            status: Status::Completed,
            notes: &[REQUESTED],
            edit: |d| d.completed = true,
            settings: RuleSettings::default(),
            expected: vec![Completed],
        },
        StatusCase {
            name: "completed without evidence",
            status: Status::Completed,
            notes: &[REQUESTED],
            edit: no_edit,
            settings: RuleSettings::default(),
            expected: vec![],
        },
        StatusCase {
            name: "completed notes switched off",
            status: Status::Completed,
            notes: &[REQUESTED],
            edit: |d| d.completed = true,
            settings: completed_off,
            expected: vec![],
        },
        StatusCase {
            name: "completed already recorded",
            status: Status::Completed,
            notes: &[REQUESTED, COMPLETED],
            edit: |d| d.completed = true,
            settings: RuleSettings::default(),
            expected: vec![],
        },
        StatusCase {
            name: "requested: nothing to do",
            status: Status::Requested,
            notes: &[REQUESTED],
            edit: no_edit,
            settings: RuleSettings::default(),
            expected: vec![],
        },
        StatusCase {
            name: "not monitored: nothing to do",
            status: Status::NotMonitored,
            notes: &[REQUESTED],
            edit: no_edit,
            settings: RuleSettings::default(),
            expected: vec![],
        },
        StatusCase {
            name: "no note key: nothing to do",
            status: Status::Canceled,
            notes: &[REQUESTED],
            edit: |d| d.note_key = None,
            settings: RuleSettings::default(),
            expected: vec![],
        },
    ];
    let templates = lit_templates();
    for case in cases {
        let mut dispatch = lit_dispatch(case.status);
        (case.edit)(&mut dispatch);
        let notes = notes("DIS37405", case.notes);
        let got = plan_kinds(
            &dispatch,
            &notes,
            30.0,
            lit_policy(),
            &templates,
            &case.settings,
        );
        assert_eq!(got, case.expected, "case: {}", case.name);
    }
}

fn single_plan(
    dispatch: &Dispatch,
    notes: &DispatchNotes,
    hours: f64,
    ledger: &LedgerFacts,
    settings: &RuleSettings,
) -> rules::Plan {
    let templates = lit_templates();
    let mut plan = rules::plan(&RuleInput {
        dispatch,
        notes,
        now: hours_before(hours),
        policy: lit_policy(),
        settings,
        templates: &templates,
        safeguards: &domain::safeguards::SafeguardFacts::NONE,
    });
    plan.mark_sent(ledger);
    plan
}

fn action(step: &Step) -> &rules::Action {
    match step {
        Step::Act(action) => action,
        other => panic!("not an action: {other:?}"),
    }
}

#[test]
fn each_recipient_gets_its_own_number_and_texts_are_exact() {
    let dispatch = lit_dispatch(Status::Confirmed);
    let notes = notes(
        "DIS37405",
        &[
            REQUESTED,
            CONFIRMED,
            CONFIRMED_SMS,
            CONFIRMED_SMS_TECH,
            &fe_note("Joe Malone"),
        ],
    );
    let plan = single_plan(
        &dispatch,
        &notes,
        1.5,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let client = action(&plan.steps[0]);
    let tech = action(&plan.steps[1]);
    assert_eq!(client.sms[0].to.as_str(), CLIENT);
    assert_eq!(
        client.sms[0].key.purpose,
        SmsPurpose {
            kind: Reminder { hours: 2 },
            to: Recipient::Client
        }
    );
    assert_eq!(
        tech.sms[0].to.as_str(),
        TECH,
        "tech reminders go to the tech's number"
    );
    assert_eq!(
        tech.sms[0].key.purpose,
        SmsPurpose {
            kind: ReminderTech { hours: 2 },
            to: Recipient::Tech
        }
    );
    assert_eq!(
        client.sms[0].text,
        "This is an automated message from MetTel.\n\nA field engineer will arrive in 2 hours, \
         Mar 16, 2020 @ 04:00 PM Pacific, at your location.\n\nYou will receive a text message \
         at this number when they have arrived.\n"
    );
    assert_eq!(
        client.note,
        "#*MetTel's IPA*# DIS37405\nDispatch 2h prior reminder SMS sent to +12123595129\n"
    );
    assert_eq!(
        tech.note,
        "#*MetTel's IPA*# DIS37405\nDispatch 2h prior reminder tech SMS sent to +12123595130\n"
    );
    assert!(tech.note.contains(&phrases::reminder_tech(2)));
}

#[test]
fn lit_confirmation_texts_use_raw_fields_and_tech_change_keys_carry_the_new_name() {
    let dispatch = lit_dispatch(Status::Confirmed);
    let plan = single_plan(
        &dispatch,
        &notes("DIS37405", &[REQUESTED]),
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    assert_eq!(
        action(&plan.steps[0]).note,
        "#*MetTel's IPA*# DIS37405\nDispatch Management - Dispatch Confirmed\nDispatch scheduled for 2020-03-16 @ 4PM-6PM Pacific Time\n"
    );
    assert_eq!(
        action(&plan.steps[2]).note,
        "#*MetTel's IPA*# DIS37405\nDispatch Management - Field Engineer Confirmed\n\nField Engineer\nJoe Malone\n+1 (212) 359-5130\n"
    );

    let mut changed = lit_dispatch(Status::Confirmed);
    changed.tech_name = Some("Hulk Hogan".into());
    let notes = notes(
        "DIS37405",
        &[
            REQUESTED,
            CONFIRMED,
            CONFIRMED_SMS,
            CONFIRMED_SMS_TECH,
            &fe_note("Joe Malone"),
        ],
    );
    let plan = single_plan(
        &changed,
        &notes,
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let step = action(&plan.steps[0]);
    assert_eq!(step.sms.len(), 2);
    assert_eq!(step.sms[0].to.as_str(), CLIENT);
    assert_eq!(step.sms[1].to.as_str(), TECH);
    assert!(
        step.sms
            .iter()
            .all(|sms| sms.key.change.as_deref() == Some("joe malone->hulk hogan #1"))
    );
    assert!(
        step.note
            .contains("Reference: 3544800\n\nField Engineer\nHulk Hogan\n")
    );
}

#[test]
fn ledger_facts_turn_a_sent_sms_into_a_note_only_step() {
    let dispatch = lit_dispatch(Status::Confirmed);
    let notes = notes("DIS37405", &[REQUESTED, CONFIRMED]);
    let draft = single_plan(
        &dispatch,
        &notes,
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let keys = draft.ledger_keys();
    assert_eq!(
        keys.len(),
        3,
        "client confirmation, field engineer, tech confirmation"
    );
    let facts: LedgerFacts = keys.into_iter().take(1).collect();
    let plan = single_plan(&dispatch, &notes, 30.0, &facts, &RuleSettings::default());
    let steps: Vec<&rules::Action> = plan.steps.iter().map(action).collect();
    assert!(steps[0].sms[0].already_sent);
    assert!(!steps[1].sms[0].already_sent);
    assert_eq!(
        steps.len(),
        draft.steps.len(),
        "facts never change which steps are planned"
    );
}

#[test]
fn a_note_over_the_limit_blocks_its_step_before_any_sms() {
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.tech_name = Some("X".repeat(1600));
    let notes = notes("DIS37405", &[REQUESTED, CONFIRMED, CONFIRMED_SMS]);
    let plan = single_plan(
        &dispatch,
        &notes,
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    match &plan.steps[0] {
        Step::Blocked(blocked) => {
            assert_eq!(blocked.kind, FieldEngineerConfirmed);
            assert!(blocked.reason.contains("1500"), "{}", blocked.reason);
        }
        other => panic!("the step must be blocked: {other:?}"),
    }
}

#[test]
fn cancelled_texts_fall_back_to_raw_times_and_email_when_configured() {
    let mut dispatch = lit_dispatch(Status::Canceled);
    dispatch.appointment = None;
    let settings = RuleSettings {
        cancel_email_recipients: vec!["ops@example.com".into(), "desk@example.com".into()],
        ..RuleSettings::default()
    };
    let plan = single_plan(
        &dispatch,
        &notes("DIS37405", &[REQUESTED]),
        30.0,
        &LedgerFacts::default(),
        &settings,
    );
    let step = action(&plan.steps[0]);
    assert_eq!(
        step.note,
        "#*MetTel's IPA*# DIS37405\nDispatch Management - Dispatch Cancelled\nDispatch for 2020-03-16 4PM-6PM Pacific Time has been cancelled.\n"
    );
    let email = step.email.as_ref().unwrap();
    assert_eq!(email.recipients, "ops@example.com, desk@example.com");
    assert!(email.subject.contains("DIS37405"));

    dispatch.appointment_raw = None;
    let plan = single_plan(
        &dispatch,
        &notes("DIS37405", &[REQUESTED]),
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let step = action(&plan.steps[0]);
    assert!(
        step.note
            .contains("Dispatch for the scheduled date has been cancelled.")
    );
    assert!(step.email.is_none());
}

#[test]
fn custom_reminder_hours_are_honoured() {
    let dispatch = lit_dispatch(Status::Confirmed);
    let notes = notes(
        "DIS37405",
        &[
            REQUESTED,
            CONFIRMED,
            CONFIRMED_SMS,
            CONFIRMED_SMS_TECH,
            &fe_note("Joe Malone"),
        ],
    );
    let settings = RuleSettings {
        reminder_hours: vec![24],
        ..RuleSettings::default()
    };
    let plan = single_plan(&dispatch, &notes, 23.5, &LedgerFacts::default(), &settings);
    let kinds: Vec<ActionKind> = plan.steps.iter().map(Step::kind).collect();
    assert_eq!(
        kinds,
        vec![Reminder { hours: 24 }, ReminderTech { hours: 24 }]
    );
    let plan = single_plan(&dispatch, &notes, 11.5, &LedgerFacts::default(), &settings);
    assert!(plan.steps.is_empty());
}

#[test]
fn skipped_rules_say_why() {
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.client_phone = None;
    let plan = single_plan(
        &dispatch,
        &notes("DIS37405", &[REQUESTED]),
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    assert_eq!(
        plan.skipped,
        vec!["Confirmed rules skipped: no valid client phone".to_owned()]
    );
}

#[test]
fn a_tech_who_comes_back_is_announced_again_under_a_new_ledger_key() {
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.tech_name = Some("Hulk Hogan".into());
    let history = [
        REQUESTED.to_owned(),
        CONFIRMED.to_owned(),
        CONFIRMED_SMS.to_owned(),
        CONFIRMED_SMS_TECH.to_owned(),
        fe_note("Hulk Hogan"),
        changed_note("Joe Malone"),
    ];
    let texts: Vec<&str> = history.iter().map(String::as_str).collect();
    let plan = single_plan(
        &dispatch,
        &notes("DIS37405", &texts),
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let step = action(&plan.steps[0]);
    assert_eq!(step.kind, TechChanged);
    assert_eq!(
        step.sms[0].key.change.as_deref(),
        Some("joe malone->hulk hogan #2"),
        "the second change on the ticket"
    );
}

#[test]
fn missing_site_details_skip_tech_texts_without_blocking_the_rest() {
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.street = None;
    let fresh = single_plan(
        &dispatch,
        &notes("DIS37405", &[REQUESTED]),
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let kinds: Vec<ActionKind> = fresh.steps.iter().map(Step::kind).collect();
    assert_eq!(
        kinds,
        vec![ConfirmedNote, ConfirmedSms, FieldEngineerConfirmed]
    );
    assert!(fresh.skipped.iter().any(|r| r.contains("street")));

    // The stage counts as complete without the tech SMS: the client's reminder still goes out.
    let done = notes(
        "DIS37405",
        &[REQUESTED, CONFIRMED, CONFIRMED_SMS, &fe_note("Joe Malone")],
    );
    let plan = single_plan(
        &dispatch,
        &done,
        1.5,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let kinds: Vec<ActionKind> = plan.steps.iter().map(Step::kind).collect();
    assert_eq!(kinds, vec![Reminder { hours: 2 }]);
}

#[test]
fn a_new_tech_with_no_phone_at_all_never_holds_back_the_client() {
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.tech_name = Some("Hulk Hogan".into());
    dispatch.tech_phone = None;
    dispatch.tech_phone_raw = None;
    let done = notes(
        "DIS37405",
        &[
            REQUESTED,
            CONFIRMED,
            CONFIRMED_SMS,
            CONFIRMED_SMS_TECH,
            &fe_note("Joe Malone"),
        ],
    );
    let plan = single_plan(
        &dispatch,
        &done,
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let step = action(&plan.steps[0]);
    assert_eq!(step.kind, TechChanged);
    let to: Vec<&str> = step.sms.iter().map(|sms| sms.to.as_str()).collect();
    assert_eq!(
        to,
        vec![CLIENT],
        "the client is told; the new tech cannot be"
    );
    assert_eq!(
        step.notices,
        vec!["its SMS to the new tech is skipped: the tech has no phone".to_owned()]
    );
    assert!(step.note.contains("Field Engineer\nHulk Hogan\n"));
}

#[test]
fn a_tech_who_comes_back_twice_gets_a_key_of_its_own_and_its_lost_note_is_found() {
    // A -> B -> A on the ticket; the vendor now shows B again: the third change.
    let history = [
        REQUESTED.to_owned(),
        CONFIRMED.to_owned(),
        CONFIRMED_SMS.to_owned(),
        CONFIRMED_SMS_TECH.to_owned(),
        fe_note("Joe Malone"),
        changed_note("Hulk Hogan"),
        changed_note("Joe Malone"),
    ];
    let texts: Vec<&str> = history.iter().map(String::as_str).collect();
    let done = notes("DIS37405", &texts);
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.tech_name = Some("Hulk Hogan".into());
    let draft = single_plan(
        &dispatch,
        &done,
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let step = action(&draft.steps[0]);
    assert!(
        step.sms
            .iter()
            .all(|sms| sms.key.change.as_deref() == Some("joe malone->hulk hogan #3"))
    );
    // The first change's texts, sent long ago, do not count for this one.
    let first: LedgerFacts = step
        .sms
        .iter()
        .map(|sms| domain::ports::LedgerKey {
            change: Some("joe malone->hulk hogan #1".into()),
            ..sms.key.clone()
        })
        .collect();
    let plan = single_plan(&dispatch, &done, 30.0, &first, &RuleSettings::default());
    assert!(
        action(&plan.steps[0])
            .sms
            .iter()
            .all(|sms| !sms.already_sent)
    );

    // The third change's texts went out but its note was lost, and the vendor moved back to
    // A since: the note is still written, although an older note names B.
    let sent: Vec<domain::ports::LedgerEntry> = step
        .sms
        .iter()
        .map(|sms| domain::ports::LedgerEntry {
            key: sms.key.clone(),
            state: domain::ports::EntryState::Sent,
            note: step.note.clone(),
        })
        .collect();
    dispatch.tech_name = Some("Joe Malone".into());
    let now = single_plan(
        &dispatch,
        &done,
        30.0,
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    assert!(now.steps.is_empty());
    let reconciled = rules::reconcile(&now, &sent, &done);
    assert_eq!(reconciled.len(), 1, "{reconciled:?}");
    assert_eq!(action(&reconciled[0]).note, step.note);
    // Once that note is on the ticket, it is recorded.
    let (_, third) = step.note.split_once('\n').unwrap();
    let with_third: Vec<&str> = texts.iter().copied().chain([third]).collect();
    let recorded = notes("DIS37405", &with_third);
    assert!(rules::reconcile(&now, &sent, &recorded).is_empty());
}
