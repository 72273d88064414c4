//! The executor through mocked ports: the delivery rule and every failure path (SPEC §7).

use crate::common::*;
use domain::alerts::AlertLevel;
use domain::executor::Execution;
use domain::mocks::{MockPorts, Rig};
use domain::phrases::*;
use domain::ports::{Claim, PortError};
use domain::rules::{self, LedgerFacts, RuleInput, RuleSettings, Step};
use domain::{Dispatch, Status};
use mockall::Sequence;
use mockall::predicate::*;

fn plan_for(
    dispatch: &Dispatch,
    notes: &[&str],
    facts: &LedgerFacts,
    settings: &RuleSettings,
) -> Vec<Step> {
    let templates = lit_templates();
    let notes = notes_for(dispatch, notes);
    let mut plan = rules::plan(&RuleInput {
        dispatch,
        notes: &notes,
        now: hours_before(30.0),
        policy: lit_policy(),
        settings,
        templates: &templates,
        safeguards: &domain::safeguards::SafeguardFacts::NONE,
    });
    plan.mark_sent(facts);
    plan.steps
}

fn notes_for(dispatch: &Dispatch, texts: &[&str]) -> domain::DispatchNotes {
    notes(dispatch.note_key.as_ref().unwrap().as_str(), texts)
}

fn rig() -> Rig {
    Rig::new(dispatch_templates::COMMON, dispatch_templates::LIT)
}

/// The confirmation SMS step alone (notes already have the Confirmed note; no tech).
fn confirmation_sms_only() -> (Dispatch, Vec<Step>) {
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.tech_name = None;
    dispatch.tech_phone = None;
    let steps = plan_for(
        &dispatch,
        &[REQUESTED, CONFIRMED],
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    assert_eq!(steps.len(), 1);
    (dispatch, steps)
}

#[tokio::test]
async fn sms_goes_out_under_the_ledger_before_its_note() {
    let (dispatch, steps) = confirmation_sms_only();
    let mut seq = Sequence::new();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(Claim::Claimed));
    mocks
        .notifier
        .expect_send_sms()
        .withf(|to, text, _| {
            to.as_str() == CLIENT && text.contains("A dispatch has been confirmed")
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .ledger
        .expect_mark_sent()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    mocks
        .tickets
        .expect_append_note()
        .withf(|ticket, note| {
            ticket.as_str() == "3544800"
                && note.contains("Dispatch confirmation SMS sent to +12123595129")
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mocks.notifier
        .expect_post_slack()
        .with(eq("[dispatch-monitor] [LIT] Dispatch [DIS37405] in ticket_id: 3544800 - confirmation SMS to the client: SMS sent to +12123595129 and note appended"))
        .times(1)
        .returning(|_| Ok(()));
    mocks.ledger.expect_release().never();
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert_eq!(outcome, Execution::Completed { steps: 1 });
}

#[tokio::test]
async fn a_failed_sms_releases_its_claim_alerts_and_stops_without_a_note() {
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.tech_name = None;
    let steps = plan_for(
        &dispatch,
        &[REQUESTED],
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    assert_eq!(steps.len(), 3, "note, client SMS, tech SMS");
    let mut mocks = MockPorts::new();
    // The Confirmed note goes first, then the client SMS fails: the tech SMS is not tried.
    mocks
        .tickets
        .expect_append_note()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .ledger
        .expect_claim()
        .times(1)
        .returning(|_, _, _| Ok(Claim::Claimed));
    mocks
        .notifier
        .expect_send_sms()
        .times(1)
        .returning(|_, _, _| Err(PortError::Unavailable("no responders".into())));
    mocks.ledger.expect_release().times(1).returning(|_| Ok(()));
    mocks.ledger.expect_mark_sent().never();
    mocks
        .notifier
        .expect_post_slack()
        .withf(|line| line.ends_with("Confirmed note: note appended"))
        .times(1)
        .returning(|_| Ok(()));
    mocks
        .notifier
        .expect_post_slack()
        .withf(|line| {
            line.contains(
                "confirmation SMS to the client to +12123595129 failed: unavailable: no responders",
            )
        })
        .times(1)
        .returning(|_| Ok(()));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert!(
        matches!(outcome, Execution::Stopped { steps: 1, .. }),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_failed_note_after_a_sent_sms_keeps_the_sent_mark_and_stops() {
    let (dispatch, steps) = confirmation_sms_only();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim()
        .returning(|_, _, _| Ok(Claim::Claimed));
    mocks
        .notifier
        .expect_send_sms()
        .times(1)
        .returning(|_, _, _| Ok(()));
    mocks
        .ledger
        .expect_mark_sent()
        .times(1)
        .returning(|_| Ok(()));
    mocks.ledger.expect_release().never();
    mocks
        .tickets
        .expect_append_note()
        .times(1)
        .returning(|_, _| {
            Err(PortError::Rejected {
                status: 500,
                detail: "Bruin down".into(),
            })
        });
    mocks
        .notifier
        .expect_post_slack()
        .withf(|line| {
            line.contains("appending the note failed: rejected with status 500: Bruin down")
        })
        .times(1)
        .returning(|_| Ok(()));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert!(matches!(outcome, Execution::Stopped { steps: 0, .. }));
}

#[tokio::test]
async fn next_cycle_appends_the_missing_note_without_sending_again() {
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.tech_name = None;
    dispatch.tech_phone = None;
    let draft = plan_for(
        &dispatch,
        &[REQUESTED, CONFIRMED],
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let facts: LedgerFacts = rules::Plan {
        steps: draft,
        skipped: vec![],
    }
    .ledger_keys()
    .into_iter()
    .collect();
    let steps = plan_for(
        &dispatch,
        &[REQUESTED, CONFIRMED],
        &facts,
        &RuleSettings::default(),
    );
    let mut mocks = MockPorts::new();
    mocks.ledger.expect_claim().never();
    mocks.notifier.expect_send_sms().never();
    mocks
        .tickets
        .expect_append_note()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .notifier
        .expect_post_slack()
        .times(1)
        .returning(|_| Ok(()));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert_eq!(outcome, Execution::Completed { steps: 1 });
}

#[tokio::test]
async fn a_claim_that_finds_the_sms_sent_skips_the_sms_but_writes_the_note() {
    let (dispatch, steps) = confirmation_sms_only();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim()
        .returning(|_, _, _| Ok(Claim::AlreadySent));
    mocks.notifier.expect_send_sms().never();
    mocks
        .tickets
        .expect_append_note()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks.notifier.expect_post_slack().returning(|_| Ok(()));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert_eq!(outcome, Execution::Completed { steps: 1 });
}

#[tokio::test]
async fn a_claim_held_by_another_replica_stops_quietly() {
    let (dispatch, steps) = confirmation_sms_only();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim()
        .returning(|_, _, _| Ok(Claim::HeldElsewhere));
    mocks.notifier.expect_send_sms().never();
    mocks.notifier.expect_post_slack().never();
    mocks.tickets.expect_append_note().never();
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert!(matches!(outcome, Execution::Stopped { steps: 0, .. }));
}

#[tokio::test]
async fn a_ledger_outage_alerts_and_sends_nothing() {
    let (dispatch, steps) = confirmation_sms_only();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim()
        .returning(|_, _, _| Err(PortError::Unavailable("redis down".into())));
    mocks.notifier.expect_send_sms().never();
    mocks.tickets.expect_append_note().never();
    mocks
        .notifier
        .expect_post_slack()
        .withf(|line| line.contains("SMS ledger unavailable: unavailable: redis down"))
        .times(1)
        .returning(|_| Ok(()));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert!(matches!(outcome, Execution::Stopped { .. }));
}

#[tokio::test]
async fn a_blocked_step_alerts_and_takes_nothing() {
    let mut dispatch = lit_dispatch(Status::Confirmed);
    dispatch.tech_name = Some("X".repeat(1600));
    let steps = plan_for(
        &dispatch,
        &[REQUESTED, CONFIRMED, CONFIRMED_SMS],
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    assert!(matches!(steps[0], Step::Blocked(_)));
    let mut mocks = MockPorts::new();
    mocks
        .notifier
        .expect_post_slack()
        .withf(|line| {
            line.contains("field engineer confirmation not taken") && line.contains("1500")
        })
        .times(1)
        .returning(|_| Ok(()));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert!(matches!(outcome, Execution::Stopped { steps: 0, .. }));
}

#[tokio::test]
async fn a_slack_failure_never_blocks_processing() {
    let (dispatch, steps) = confirmation_sms_only();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim()
        .returning(|_, _, _| Ok(Claim::Claimed));
    mocks.ledger.expect_mark_sent().returning(|_| Ok(()));
    mocks
        .notifier
        .expect_send_sms()
        .times(1)
        .returning(|_, _, _| Ok(()));
    mocks
        .tickets
        .expect_append_note()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .notifier
        .expect_post_slack()
        .returning(|_| Err(PortError::Unavailable("slack".into())));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert_eq!(outcome, Execution::Completed { steps: 1 });
}

#[tokio::test]
async fn errors_level_posts_failures_only() {
    let (dispatch, steps) = confirmation_sms_only();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim()
        .returning(|_, _, _| Ok(Claim::Claimed));
    mocks.ledger.expect_mark_sent().returning(|_| Ok(()));
    mocks.notifier.expect_send_sms().returning(|_, _, _| Ok(()));
    mocks.tickets.expect_append_note().returning(|_, _| Ok(()));
    mocks.notifier.expect_post_slack().never();
    let outcome = rig()
        .alert_level(AlertLevel::Errors)
        .run(mocks, &dispatch, &steps)
        .await;
    assert_eq!(outcome, Execution::Completed { steps: 1 });
}

#[tokio::test]
async fn a_failed_mark_sent_alerts_but_still_records_the_note() {
    let (dispatch, steps) = confirmation_sms_only();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim()
        .returning(|_, _, _| Ok(Claim::Claimed));
    mocks
        .ledger
        .expect_mark_sent()
        .returning(|_| Err(PortError::Unavailable("redis".into())));
    mocks
        .notifier
        .expect_send_sms()
        .times(1)
        .returning(|_, _, _| Ok(()));
    mocks
        .tickets
        .expect_append_note()
        .times(1)
        .returning(|_, _| Ok(()));
    mocks
        .notifier
        .expect_post_slack()
        .withf(|line| line.contains("SMS ledger could not record it"))
        .times(1)
        .returning(|_| Ok(()));
    mocks.notifier.expect_post_slack().returning(|_| Ok(()));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert_eq!(outcome, Execution::Completed { steps: 1 });
}

#[tokio::test]
async fn cancellation_email_follows_the_note_and_its_failure_only_alerts() {
    let dispatch = lit_dispatch(Status::Canceled);
    let settings = RuleSettings {
        cancel_email_recipients: vec!["ops@example.com".into()],
        ..RuleSettings::default()
    };
    let steps = plan_for(&dispatch, &[REQUESTED], &LedgerFacts::default(), &settings);
    let mut mocks = MockPorts::new();
    let mut seq = Sequence::new();
    mocks
        .tickets
        .expect_append_note()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mocks
        .notifier
        .expect_post_slack()
        .withf(|l| l.ends_with("Cancelled note: note appended"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    mocks
        .notifier
        .expect_send_email()
        .withf(|email| email.recipients == "ops@example.com")
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(PortError::Unavailable("smtp".into())));
    mocks
        .notifier
        .expect_post_slack()
        .withf(|l| l.contains("cancellation email to ops@example.com failed"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert_eq!(outcome, Execution::Completed { steps: 1 });
}

#[tokio::test]
async fn the_whole_lit_stage_runs_in_order() {
    let dispatch = lit_dispatch(Status::Confirmed);
    let steps = plan_for(
        &dispatch,
        &[REQUESTED],
        &LedgerFacts::default(),
        &RuleSettings::default(),
    );
    let mut seq = Sequence::new();
    let mut mocks = MockPorts::new();
    mocks
        .ledger
        .expect_claim()
        .returning(|_, _, _| Ok(Claim::Claimed));
    mocks.ledger.expect_mark_sent().returning(|_| Ok(()));
    mocks.notifier.expect_post_slack().returning(|_| Ok(()));
    mocks
        .tickets
        .expect_append_note()
        .withf(|_, n| n.contains(CONFIRMED))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mocks
        .notifier
        .expect_send_sms()
        .withf(|to, t, _| to.as_str() == CLIENT && t.contains("dispatch has been confirmed"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .tickets
        .expect_append_note()
        .withf(|_, n| n.contains(CONFIRMED_SMS))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mocks
        .notifier
        .expect_send_sms()
        .withf(|to, t, _| to.as_str() == CLIENT && t.contains("field engineer has been assigned"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .tickets
        .expect_append_note()
        .withf(|_, n| n.contains(FE_CONFIRMED))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    mocks
        .notifier
        .expect_send_sms()
        .withf(|to, t, _| to.as_str() == TECH && t.contains("For Red Rose Inn at 160 Broadway"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    mocks
        .tickets
        .expect_append_note()
        .withf(|_, n| n.contains(CONFIRMED_SMS_TECH))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    let outcome = rig()
        .alert_level(AlertLevel::All)
        .run(mocks, &dispatch, &steps)
        .await;
    assert_eq!(outcome, Execution::Completed { steps: 4 });
}

/// What each common rig plans for a Confirmed dispatch with no notes yet but the portal's.
#[test]
fn the_rigs_plan_the_common_cases() {
    use domain::actions::ActionKind::*;
    let kinds = |rig: &Rig, dispatch: &Dispatch| -> Vec<_> {
        let plan = rig.plan(dispatch, &[REQUESTED]);
        plan.steps.iter().map(Step::kind).collect()
    };
    let (lit, cts) = (Rig::lit(), Rig::cts());
    let cases = [
        (
            &lit,
            lit.dispatch(Status::Confirmed),
            vec![
                ConfirmedNote,
                ConfirmedSms,
                FieldEngineerConfirmed,
                ConfirmedTechSms,
            ],
        ),
        (
            &lit,
            lit.dispatch_without_tech(Status::Confirmed),
            vec![ConfirmedNote, ConfirmedSms],
        ),
        (
            &cts,
            cts.dispatch(Status::Confirmed),
            vec![ConfirmedNote, ConfirmedSms, ConfirmedTechSms],
        ),
        (&cts, cts.dispatch_without_tech(Status::Confirmed), vec![]),
    ];
    for (rig, dispatch, expected) in cases {
        assert_eq!(
            kinds(rig, &dispatch),
            expected,
            "{:?} {:?}",
            dispatch.vendor,
            dispatch.tech_name
        );
    }
    assert_eq!(lit.dispatch(Status::Confirmed).vendor.as_str(), "LIT");
    assert_eq!(cts.dispatch(Status::Confirmed).vendor.as_str(), "CTS");
    assert!(lit.policy().field_engineer_step && cts.policy().confirmed_needs_tech);
}
