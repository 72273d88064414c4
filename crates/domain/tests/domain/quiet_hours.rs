//! Quiet hours (SPEC §15) as data tables: the site's wall clock decides, in its own zone and
//! with its daylight saving; reminders are skipped with a note, other client texts wait, texts
//! to the tech and tech-on-site texts go as usual.

use chrono::{DateTime, Utc};
use domain::phrases::*;
use domain::rules::{self, ActionKind, RuleInput, RuleSettings, Step};
use domain::{Appointment, Dispatch, DispatchNotes, QuietHours, Status};

use crate::common::*;
use ActionKind::*;

/// What became of a planned step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Taken as usual.
    Taken,
    /// Its client text skipped; the note records it.
    Skipped,
    /// Left for a later cycle.
    Deferred,
}

use Fate::*;

struct Case {
    name: &'static str,
    /// The site's zone and the appointment's local date and time.
    appointment: (&'static str, &'static str, &'static str),
    status: Status,
    notes: Vec<String>,
    /// The time of the cycle, in UTC.
    now: &'static str,
    expected: Vec<(ActionKind, Fate)>,
}

fn night() -> RuleSettings {
    RuleSettings {
        quiet_hours: Some("21:00-08:00".parse().unwrap()),
        ..RuleSettings::default()
    }
}

fn fates(plan: &rules::Plan) -> Vec<(ActionKind, Fate)> {
    plan.steps
        .iter()
        .map(|step| match step {
            Step::Act(action) if !action.withheld.is_empty() => (action.kind, Skipped),
            Step::Act(action) => (action.kind, Taken),
            Step::Deferred(deferred) => (deferred.kind, Deferred),
            Step::Blocked(blocked) => panic!("blocked: {}", blocked.reason),
            Step::Withheld(withheld) => panic!("withheld: {}", withheld.reason),
        })
        .collect()
}

fn dispatch_at(case: &Case) -> Dispatch {
    let (zone, date, time) = case.appointment;
    let mut dispatch = lit_dispatch(case.status);
    dispatch.tech_on_site = case.status == Status::TechOnSite;
    dispatch.appointment =
        Some(Appointment::localise(date.parse().unwrap(), time.parse().unwrap(), zone).unwrap());
    dispatch
}

fn plan_for(
    dispatch: &Dispatch,
    notes: &DispatchNotes,
    now: DateTime<Utc>,
    settings: &RuleSettings,
) -> rules::Plan {
    let templates = lit_templates();
    rules::plan(&RuleInput {
        dispatch,
        notes,
        now,
        policy: lit_policy(),
        settings,
        templates: &templates,
        safeguards: &domain::safeguards::SafeguardFacts::NONE,
    })
}

fn confirmed_stage() -> Vec<String> {
    let mut notes: Vec<String> = [REQUESTED, CONFIRMED, CONFIRMED_SMS, CONFIRMED_SMS_TECH]
        .map(str::to_owned)
        .to_vec();
    notes.push(format!(
        "{FE_CONFIRMED}\n\nField Engineer\nJoe Malone\n+1 212"
    ));
    notes
}

fn cases() -> Vec<Case> {
    let pacific_4pm = ("Pacific Time", "2020-03-16", "16:00:00");
    let pacific_evening = ("Pacific Time", "2020-03-16", "19:30:00");
    vec![
        Case {
            name: "12h reminder due at 07:45 at the site: skipped with a note, the tech's goes",
            appointment: pacific_evening,
            status: Status::Confirmed,
            notes: confirmed_stage(),
            now: "2020-03-16T14:45:00Z",
            expected: vec![
                (Reminder { hours: 12 }, Skipped),
                (ReminderTech { hours: 12 }, Taken),
            ],
        },
        Case {
            name: "6h reminder due at 10:30 at the site: outside the window, sent",
            appointment: pacific_4pm,
            status: Status::Confirmed,
            notes: [confirmed_stage(), vec![reminder(12), reminder_tech(12)]].concat(),
            now: "2020-03-16T17:30:00Z",
            expected: vec![
                (Reminder { hours: 6 }, Taken),
                (ReminderTech { hours: 6 }, Taken),
            ],
        },
        Case {
            name: "the window's end is not in it: 08:00 at the site sends",
            appointment: pacific_evening,
            status: Status::Confirmed,
            notes: confirmed_stage(),
            now: "2020-03-16T15:00:00Z",
            expected: vec![
                (Reminder { hours: 12 }, Taken),
                (ReminderTech { hours: 12 }, Taken),
            ],
        },
        Case {
            name: "confirmation at 21:30 the evening before: note and tech text now, client texts wait",
            appointment: pacific_4pm,
            status: Status::Confirmed,
            notes: vec![REQUESTED.to_owned()],
            now: "2020-03-16T04:30:00Z",
            expected: vec![
                (ConfirmedNote, Taken),
                (ConfirmedSms, Deferred),
                (FieldEngineerConfirmed, Deferred),
                (ConfirmedTechSms, Taken),
            ],
        },
        Case {
            name: "confirmation at 20:59 the evening before: everything goes",
            appointment: pacific_4pm,
            status: Status::Confirmed,
            notes: vec![REQUESTED.to_owned()],
            now: "2020-03-16T03:59:00Z",
            expected: vec![
                (ConfirmedNote, Taken),
                (ConfirmedSms, Taken),
                (FieldEngineerConfirmed, Taken),
                (ConfirmedTechSms, Taken),
            ],
        },
        Case {
            name: "a new tech at 23:00 (past midnight UTC): the tech-changed step waits",
            appointment: pacific_4pm,
            status: Status::Confirmed,
            notes: [
                confirmed_stage(),
                vec![format!(
                    "{FE_CONFIRMED}\n\nField Engineer\nAnn Other\n+1 212"
                )],
            ]
            .concat(),
            now: "2020-03-16T06:00:00Z",
            expected: vec![(TechChanged, Deferred)],
        },
        Case {
            name: "tech on site at 02:00 at the site: sent as usual",
            appointment: pacific_4pm,
            status: Status::TechOnSite,
            notes: vec![REQUESTED.to_owned()],
            now: "2020-03-16T09:00:00Z",
            expected: vec![(TechOnSite, Taken)],
        },
        Case {
            name: "a site in another zone: 07:30 at the site is quiet while it is 11:30 UTC",
            appointment: ("Eastern Time", "2020-03-16", "19:00:00"),
            status: Status::Confirmed,
            notes: confirmed_stage(),
            now: "2020-03-16T11:30:00Z",
            expected: vec![
                (Reminder { hours: 12 }, Skipped),
                (ReminderTech { hours: 12 }, Taken),
            ],
        },
        Case {
            name: "a site in another zone: 19:30 at the site is not quiet while it is 23:30 UTC",
            appointment: ("Eastern Time", "2020-03-16", "07:00:00"),
            status: Status::Confirmed,
            notes: confirmed_stage(),
            now: "2020-03-15T23:30:00Z",
            expected: vec![
                (Reminder { hours: 12 }, Taken),
                (ReminderTech { hours: 12 }, Taken),
            ],
        },
        Case {
            name: "a site in another zone: 05:30 at the site is quiet while it is 10:30 UTC",
            appointment: ("Central Time", "2020-03-16", "11:00:00"),
            status: Status::Confirmed,
            notes: [confirmed_stage(), vec![reminder(12), reminder_tech(12)]].concat(),
            now: "2020-03-16T10:30:00Z",
            expected: vec![
                (Reminder { hours: 6 }, Skipped),
                (ReminderTech { hours: 6 }, Taken),
            ],
        },
        Case {
            name: "spring-forward day: 15:30 UTC is 08:30 PDT (07:30 in PST), so not quiet",
            appointment: ("Pacific Time", "2020-03-08", "14:00:00"),
            status: Status::Confirmed,
            notes: [confirmed_stage(), vec![reminder(12), reminder_tech(12)]].concat(),
            now: "2020-03-08T15:30:00Z",
            expected: vec![
                (Reminder { hours: 6 }, Taken),
                (ReminderTech { hours: 6 }, Taken),
            ],
        },
        Case {
            name: "fall-back day: 15:30 UTC is 07:30 PST (08:30 in PDT), so quiet",
            appointment: ("Pacific Time", "2020-11-01", "13:00:00"),
            status: Status::Confirmed,
            notes: [confirmed_stage(), vec![reminder(12), reminder_tech(12)]].concat(),
            now: "2020-11-01T15:30:00Z",
            expected: vec![
                (Reminder { hours: 6 }, Skipped),
                (ReminderTech { hours: 6 }, Taken),
            ],
        },
    ]
}

#[test]
fn quiet_hours_rule_table() {
    for case in cases() {
        let dispatch = dispatch_at(&case);
        let texts: Vec<&str> = case.notes.iter().map(String::as_str).collect();
        let notes = notes("DIS37405", &texts);
        let now: DateTime<Utc> = case.now.parse().unwrap();
        let plan = plan_for(&dispatch, &notes, now, &night());
        assert_eq!(fates(&plan), case.expected, "{}", case.name);
        // With the setting off, every step is taken as before.
        let plan = plan_for(&dispatch, &notes, now, &RuleSettings::default());
        let taken: Vec<(ActionKind, Fate)> = case
            .expected
            .iter()
            .map(|(kind, _)| (*kind, Taken))
            .collect();
        assert_eq!(fates(&plan), taken, "{} (setting off)", case.name);
    }
}

#[test]
fn the_skipped_reminder_note_counts_as_the_reminder() {
    let case = &cases()[0];
    let dispatch = dispatch_at(case);
    let texts: Vec<&str> = case.notes.iter().map(String::as_str).collect();
    let plan = plan_for(
        &dispatch,
        &notes("DIS37405", &texts),
        case.now.parse().unwrap(),
        &night(),
    );
    let Step::Act(skipped) = &plan.steps[0] else {
        panic!("the reminder must be an action: {:?}", plan.steps[0]);
    };
    assert!(skipped.sms.is_empty());
    assert_eq!(skipped.withheld[0].as_str(), CLIENT);
    assert_eq!(
        skipped.note,
        "#*MetTel's IPA*# DIS37405\nDispatch 12h prior reminder SMS not sent to +12123595129: \
         quiet hours 21:00-08:00 at the site\n"
    );
    // Once the note is on the ticket, the reminder is never sent: not in the window's later
    // cycles, and not after 08:00 while the 12h window is still open.
    let (_, recorded_text) = skipped.note.split_once('\n').unwrap();
    let with_note: Vec<&str> = texts.iter().copied().chain([recorded_text]).collect();
    let recorded = notes("DIS37405", &with_note);
    for now in ["2020-03-16T14:55:00Z", "2020-03-16T15:10:00Z"] {
        let plan = plan_for(&dispatch, &recorded, now.parse().unwrap(), &night());
        assert_eq!(
            fates(&plan),
            vec![(ReminderTech { hours: 12 }, Taken)],
            "{now}: only the tech's reminder is left"
        );
    }
}

#[test]
fn a_deferred_confirmation_names_its_recipient_and_reason() {
    let case = &cases()[3];
    let dispatch = dispatch_at(case);
    let plan = plan_for(
        &dispatch,
        &notes("DIS37405", &[REQUESTED]),
        case.now.parse().unwrap(),
        &night(),
    );
    let Step::Deferred(deferred) = &plan.steps[1] else {
        panic!("the client's text must wait: {:?}", plan.steps[1]);
    };
    assert_eq!(deferred.to.as_ref().map(|to| to.as_str()), Some(CLIENT));
    assert_eq!(deferred.reason, "quiet hours 21:00-08:00 at the site");
    assert!(
        plan.ledger_keys()
            .iter()
            .all(|key| key.purpose.kind == ConfirmedTechSms),
        "only the tech's text is sent"
    );
}

#[test]
fn quiet_hours_are_read_from_the_setting_text() {
    let quiet: QuietHours = "22:30-07:15".parse().unwrap();
    assert_eq!(quiet.to_string(), "22:30-07:15");
    assert!("07:00".parse::<QuietHours>().is_err());
}

#[test]
fn a_client_text_held_for_quiet_hours_never_holds_back_the_techs_reminders() {
    // Confirmed at night: the note and the tech's text went out, the client's texts wait.
    // The appointment is at 19:30 at the site; its 12 h window opens at 07:30, still quiet.
    let case = Case {
        name: "the client's confirmation waits at 07:45 while the tech's 12h reminder is due",
        appointment: ("Pacific Time", "2020-03-16", "19:30:00"),
        status: Status::Confirmed,
        notes: [REQUESTED, CONFIRMED, CONFIRMED_SMS_TECH]
            .map(str::to_owned)
            .to_vec(),
        now: "2020-03-16T14:45:00Z",
        expected: vec![
            (ConfirmedSms, Deferred),
            (FieldEngineerConfirmed, Deferred),
            (ReminderTech { hours: 12 }, Taken),
        ],
    };
    let dispatch = dispatch_at(&case);
    let texts: Vec<&str> = case.notes.iter().map(String::as_str).collect();
    let waiting = notes("DIS37405", &texts);
    let plan = plan_for(&dispatch, &waiting, case.now.parse().unwrap(), &night());
    assert_eq!(
        fates(&plan),
        case.expected,
        "{}: the client's own reminder waits for the client's stage, with no note",
        case.name
    );

    // At 08:00 the client's texts go, alone in their cycle; the client's reminder follows
    // in the next cycle, its window still open.
    let tech_reminder = reminder_tech(12);
    let with_tech_reminder: Vec<&str> = texts
        .iter()
        .copied()
        .chain([tech_reminder.as_str()])
        .collect();
    let morning = notes("DIS37405", &with_tech_reminder);
    let plan = plan_for(
        &dispatch,
        &morning,
        "2020-03-16T15:00:00Z".parse().unwrap(),
        &night(),
    );
    assert_eq!(
        fates(&plan),
        vec![(ConfirmedSms, Taken), (FieldEngineerConfirmed, Taken)]
    );
    let fe = format!("{FE_CONFIRMED}\n\nField Engineer\nJoe Malone\n+1 212");
    let stage_done: Vec<&str> = with_tech_reminder
        .iter()
        .copied()
        .chain([CONFIRMED_SMS, fe.as_str()])
        .collect();
    let plan = plan_for(
        &dispatch,
        &notes("DIS37405", &stage_done),
        "2020-03-16T15:15:00Z".parse().unwrap(),
        &night(),
    );
    assert_eq!(fates(&plan), vec![(Reminder { hours: 12 }, Taken)]);
}
