//! Whole vendor cycles through the engine over the in-memory world (SPEC §6, §9, §11).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use async_trait::async_trait;
use domain::memory::{ManualClock, MemoryWorld, WorldEvent};
use domain::ports::{MockSmsLedger, MockTicketRepository, PortError, TicketRepository};
use domain::*;
use serde_json::{Value, json};

fn requested_note(key: &str) -> String {
    format!("#*MetTel's IPA*# {key}\nDispatch Management - Dispatch Requested\n")
}

struct Setup {
    world: MemoryWorld,
    engine: Engine,
    vendor: VendorName,
}

fn setup(records: Vec<Value>, settings: EngineSettings) -> Setup {
    let clock = Arc::new(ManualClock::new(hours_before(30.0)));
    let world = MemoryWorld::new(clock);
    let vendor = VendorName::parse("LIT").unwrap();
    world.source.set_list(&vendor, json!({ "list": records }));
    let engine = Engine::new(world.ports(), settings)
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(FlatVendor::new(), &BTreeMap::new())
        .unwrap();
    Setup {
        world,
        engine,
        vendor,
    }
}

fn seed_requested(world: &MemoryWorld, ticket: &str, key: &str) {
    world.tickets.seed_note(
        &TicketId::parse(ticket).unwrap(),
        &requested_note(key),
        hours_before(48.0),
    );
}

fn sms_count(world: &MemoryWorld) -> usize {
    world
        .log
        .entries()
        .iter()
        .filter(|e| matches!(e.event, WorldEvent::Sms { .. }))
        .count()
}

fn slack_lines(world: &MemoryWorld) -> Vec<String> {
    world
        .log
        .entries()
        .into_iter()
        .filter_map(|e| match e.event {
            WorldEvent::Slack(line) => Some(line),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_dispatch_of_ours_is_registered_and_confirmed_once() {
    let s = setup(
        vec![record("DIS1", "100", "confirmed")],
        EngineSettings::default(),
    );
    seed_requested(&s.world, "100", "DIS1");
    let report = s.engine.run_cycle(&s.vendor, Mode::Execute).await.unwrap();
    assert_eq!(report.dispatches.len(), 1);
    assert!(matches!(
        report.dispatches[0].outcome,
        DispatchOutcome::Executed(executor::Execution::Completed { steps: 4 })
    ));
    assert_eq!(
        s.world.registry.get("DIS1"),
        Some(json!({"ticket_id": "100"}))
    );
    assert_eq!(sms_count(&s.world), 3);

    // The next cycle finds every note in place: nothing is sent twice.
    let again = s.engine.run_cycle(&s.vendor, Mode::Execute).await.unwrap();
    assert!(again.dispatches[0].steps.is_empty());
    assert_eq!(sms_count(&s.world), 3);
}

#[tokio::test]
async fn dispatches_without_our_requested_note_are_left_alone() {
    let s = setup(
        vec![record("DIS2", "200", "confirmed")],
        EngineSettings::default(),
    );
    // A note for a dispatch whose number merely starts with ours.
    seed_requested(&s.world, "200", "DIS20");
    let report = s.engine.run_cycle(&s.vendor, Mode::Execute).await.unwrap();
    assert!(matches!(
        report.dispatches[0].outcome,
        DispatchOutcome::NotOurs { .. }
    ));
    assert_eq!(s.world.registry.get("DIS2"), None);
    assert!(s.world.log.entries().is_empty());
}

#[tokio::test]
async fn requested_and_unmonitored_dispatches_of_ours_are_registered_without_actions() {
    let s = setup(
        vec![record("DIS3", "300", "requested")],
        EngineSettings::default(),
    );
    seed_requested(&s.world, "300", "DIS3");
    let report = s.engine.run_cycle(&s.vendor, Mode::Execute).await.unwrap();
    assert!(report.dispatches[0].steps.is_empty());
    assert_eq!(
        s.world.registry.get("DIS3"),
        Some(json!({"ticket_id": "300"}))
    );
}

#[tokio::test]
async fn a_fetch_failure_alerts_and_fails_the_cycle() {
    let s = setup(vec![], EngineSettings::default());
    s.world.source.fail(
        &s.vendor,
        PortError::Unavailable("request timed out".into()),
    );
    let error = s
        .engine
        .run_cycle(&s.vendor, Mode::Execute)
        .await
        .unwrap_err();
    assert!(matches!(error, CycleError::Fetch { .. }));
    assert_eq!(
        slack_lines(&s.world),
        vec![
            "[dispatch-monitor] [LIT] fetching the LIT dispatch list failed: unavailable: request timed out"
        ]
    );
}

#[tokio::test]
async fn a_malformed_list_alerts_and_fails_the_cycle() {
    let s = setup(vec![], EngineSettings::default());
    s.world
        .source
        .set_list(&s.vendor, json!({"Status": "Failed"}));
    let error = s
        .engine
        .run_cycle(&s.vendor, Mode::Execute)
        .await
        .unwrap_err();
    assert!(matches!(error, CycleError::Malformed(_)));
    assert_eq!(
        slack_lines(&s.world),
        vec!["[dispatch-monitor] [LIT] malformed LIT dispatch list: no list array"]
    );
}

#[tokio::test]
async fn bad_records_are_skipped_and_the_rest_processed() {
    let s = setup(
        vec![
            json!({"number": 5}),
            record("DIS4", "12-3", "confirmed"),
            record("DIS5", "500", "cancelled"),
        ],
        EngineSettings::default(),
    );
    seed_requested(&s.world, "500", "DIS5");
    let report = s.engine.run_cycle(&s.vendor, Mode::Execute).await.unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.skipped_records.len(), 2);
    assert_eq!(report.dispatches.len(), 1);
    assert!(
        s.world.tickets.texts(&TicketId::parse("500").unwrap())[1].contains("Dispatch Cancelled")
    );
}

#[tokio::test]
async fn a_dry_run_plans_but_changes_nothing() {
    let s = setup(
        vec![record("DIS6", "600", "confirmed")],
        EngineSettings::default(),
    );
    seed_requested(&s.world, "600", "DIS6");
    let report = s.engine.run_cycle(&s.vendor, Mode::DryRun).await.unwrap();
    assert_eq!(report.dispatches[0].outcome, DispatchOutcome::Planned);
    assert_eq!(report.dispatches[0].steps.len(), 4);
    assert!(
        s.world.log.entries().is_empty(),
        "no SMS, note, Slack or registry write"
    );
    assert_eq!(s.world.registry.get("DIS6"), None);
    assert_eq!(
        s.world
            .tickets
            .texts(&TicketId::parse("600").unwrap())
            .len(),
        1
    );
}

#[tokio::test]
async fn a_failed_note_is_retried_next_cycle_without_a_second_sms() {
    let mut settings = EngineSettings::default();
    settings.rules.completed_notes = true;
    let s = setup(vec![record("DIS7", "700", "confirmed")], settings);
    seed_requested(&s.world, "700", "DIS7");
    let ticket = TicketId::parse("700").unwrap();
    // The Confirmed note exists; the SMS goes out but its note fails.
    s.world.tickets.seed_note(
        &ticket,
        "#*MetTel's IPA*# DIS7\nDispatch Management - Dispatch Confirmed\n",
        hours_before(40.0),
    );
    s.world.tickets.set_append_failing(&ticket, true);
    let first = s.engine.run_cycle(&s.vendor, Mode::Execute).await.unwrap();
    assert!(matches!(
        first.dispatches[0].outcome,
        DispatchOutcome::Executed(executor::Execution::Stopped { .. })
    ));
    assert_eq!(sms_count(&s.world), 1);
    assert!(
        slack_lines(&s.world)
            .iter()
            .any(|l| l.contains("appending the note failed"))
    );

    s.world.tickets.set_append_failing(&ticket, false);
    s.engine.run_cycle(&s.vendor, Mode::Execute).await.unwrap();
    let client_sms = s
        .world
        .log
        .entries()
        .iter()
        .filter(|e| matches!(&e.event, WorldEvent::Sms { text, .. } if text.contains("A dispatch has been confirmed")))
        .count();
    assert_eq!(
        client_sms, 1,
        "the client's confirmation went out exactly once"
    );
    assert!(
        s.world
            .tickets
            .texts(&ticket)
            .iter()
            .any(|t| t.contains("Dispatch confirmation SMS sent to +12123595129"))
    );
}

/// Counts ticket-details requests and the most in flight at once.
struct CountingTickets {
    inner: Arc<dyn TicketRepository>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[async_trait]
impl TicketRepository for CountingTickets {
    async fn ticket_notes(&self, ticket: &TicketId) -> Result<Vec<RawTicketNote>, PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.inner.ticket_notes(ticket).await
    }
    async fn append_note(&self, ticket: &TicketId, note: &str) -> Result<(), PortError> {
        self.inner.append_note(ticket, note).await
    }
}

#[tokio::test]
async fn dispatches_run_concurrently_up_to_the_limit_with_one_details_request_each() {
    let clock = Arc::new(ManualClock::new(hours_before(30.0)));
    let world = MemoryWorld::new(clock);
    let vendor = VendorName::parse("LIT").unwrap();
    let mut records: Vec<Value> = (0..20)
        .map(|i| record(&format!("D{i}"), &format!("{}", 1000 + i), "requested"))
        .collect();
    // The same dispatch listed twice is read once.
    records.push(record("D0", "1000", "requested"));
    world.source.set_list(&vendor, json!({ "list": records }));
    let counting = Arc::new(CountingTickets {
        inner: world.tickets.clone(),
        calls: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
    });
    let mut ports = world.ports();
    ports.tickets = counting.clone();
    let settings = EngineSettings {
        concurrency: 3,
        ..EngineSettings::default()
    };
    let engine = Engine::new(ports, settings)
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(FlatVendor::new(), &BTreeMap::new())
        .unwrap();
    let report = engine.run_cycle(&vendor, Mode::Execute).await.unwrap();
    assert_eq!(report.dispatches.len(), 20);
    assert_eq!(counting.calls.load(Ordering::SeqCst), 20);
    let max = counting.max_in_flight.load(Ordering::SeqCst);
    assert!(max > 1 && max <= 3, "max in flight {max}");
}

#[tokio::test]
async fn a_details_failure_skips_only_that_dispatch_and_alerts() {
    let s = setup(
        vec![
            record("DIS8", "800", "cancelled"),
            record("DIS9", "900", "cancelled"),
        ],
        EngineSettings::default(),
    );
    seed_requested(&s.world, "900", "DIS9");
    let mut tickets = MockTicketRepository::new();
    let memory = s.world.tickets.clone();
    tickets.expect_ticket_notes().returning(move |ticket| {
        if ticket.as_str() == "800" {
            Err(PortError::Unavailable("timeout".into()))
        } else {
            futures::executor::block_on(memory.ticket_notes(ticket))
        }
    });
    let memory = s.world.tickets.clone();
    tickets.expect_append_note().returning(move |ticket, note| {
        futures::executor::block_on(memory.append_note(ticket, note))
    });
    let mut ports = s.world.ports();
    ports.tickets = Arc::new(tickets);
    let engine = Engine::new(ports, EngineSettings::default())
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(FlatVendor::new(), &BTreeMap::new())
        .unwrap();
    let report = engine.run_cycle(&s.vendor, Mode::Execute).await.unwrap();
    assert!(matches!(
        report.dispatches[0].outcome,
        DispatchOutcome::DetailsFailed { .. }
    ));
    assert!(matches!(
        report.dispatches[1].outcome,
        DispatchOutcome::Executed(_)
    ));
    assert!(slack_lines(&s.world).contains(
        &"[dispatch-monitor] [LIT] Dispatch [DIS8] in ticket_id: 800 - ticket details request failed: unavailable: timeout".to_owned()
    ));
}

#[tokio::test]
async fn an_unreadable_ledger_sends_nothing() {
    let s = setup(
        vec![record("DIS10", "1010", "confirmed")],
        EngineSettings::default(),
    );
    seed_requested(&s.world, "1010", "DIS10");
    let mut ledger = MockSmsLedger::new();
    ledger
        .expect_entries()
        .returning(|_, _| Err(PortError::Unavailable("redis down".into())));
    ledger.expect_claim().never();
    let mut ports = s.world.ports();
    ports.ledger = Arc::new(ledger);
    let engine = Engine::new(ports, EngineSettings::default())
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(FlatVendor::new(), &BTreeMap::new())
        .unwrap();
    let report = engine.run_cycle(&s.vendor, Mode::Execute).await.unwrap();
    assert!(matches!(
        report.dispatches[0].outcome,
        DispatchOutcome::LedgerUnavailable { .. }
    ));
    assert_eq!(sms_count(&s.world), 0);
}

#[tokio::test]
async fn unknown_vendors_are_refused() {
    let s = setup(vec![], EngineSettings::default());
    let other = VendorName::parse("NO-SUCH-VENDOR").unwrap();
    assert!(matches!(
        s.engine.run_cycle(&other, Mode::Execute).await,
        Err(CycleError::UnknownVendor(_))
    ));
    assert_eq!(s.engine.vendors(), vec![s.vendor.clone()]);
}
