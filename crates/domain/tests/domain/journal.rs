//! The journal the engine writes (SPEC §14): what each executed dispatch and cycle did, and a
//! journal that fails never changes what is sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::common::*;
use domain::journal::{DispatchHistory, EntryKind, Journal, MockJournal};
use domain::memory::{ManualClock, MemoryJournal, MemoryWorld, WorldEvent};
use domain::ports::PortError;
use domain::*;
use serde_json::json;

fn engine(world: &MemoryWorld, journal: Arc<dyn Journal>) -> Engine {
    let settings = EngineSettings {
        replica: "replica-a".into(),
        ..EngineSettings::default()
    };
    Engine::new(world.ports(), settings)
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(FlatVendor::new(), &BTreeMap::new())
        .unwrap()
        .with_journal(journal)
}

fn world() -> MemoryWorld {
    let world = MemoryWorld::new(Arc::new(ManualClock::new(hours_before(30.0))));
    let list = json!({ "list": [
        record("DIS1", "100", "confirmed"),
        record("DIS2", "200", "confirmed"),
    ]});
    world.source.set_list(&VendorName::fixed("LIT"), list);
    world.tickets.seed_note(
        &TicketId::parse("100").unwrap(),
        "#*MetTel's IPA*# DIS1\nDispatch Management - Dispatch Requested\n",
        hours_before(48.0),
    );
    world
}

fn sent_sms(world: &MemoryWorld) -> Vec<String> {
    world
        .log
        .entries()
        .into_iter()
        .filter_map(|e| match e.event {
            WorldEvent::Sms { to, text, .. } => Some(format!("{to}: {text}")),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_executed_cycle_journals_each_outcome_and_the_cycle() {
    let world = world();
    let journal = Arc::new(MemoryJournal::default());
    let lit = VendorName::fixed("LIT");
    engine(&world, journal.clone())
        .run_cycle(&lit, Mode::Execute)
        .await
        .unwrap();

    let DispatchHistory { snapshot, entries } =
        journal.dispatch(&lit, "DIS1").await.unwrap().unwrap();
    let snapshot = snapshot.unwrap();
    assert!(snapshot.ours);
    assert_eq!(snapshot.ticket_id, "100");
    assert_eq!(snapshot.client_phone.as_deref(), Some(CLIENT));
    let last = snapshot.last_action.unwrap();
    assert_eq!(
        last.text,
        "confirmation SMS to the tech: sent to +12123595130"
    );
    assert!(entries.iter().all(|e| e.replica == "replica-a"));
    let sms: Vec<&str> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Sms && e.outcome == "sent")
        .map(|e| e.to.as_deref().unwrap())
        .collect();
    assert_eq!(sms, [CLIENT, CLIENT, TECH]);
    let first_sms = entries.iter().find(|e| e.kind == EntryKind::Sms).unwrap();
    assert!(
        first_sms
            .text
            .as_deref()
            .unwrap()
            .starts_with("This is an automated message from MetTel.")
    );
    let notes = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Note && e.outcome == "appended")
        .count();
    assert_eq!(notes, 4);
    assert!(entries.iter().any(|e| e.kind == EntryKind::Alert));

    // DIS2 is not ours: it is seen, and the journal says why nothing was done.
    let DispatchHistory { snapshot, entries } =
        journal.dispatch(&lit, "DIS2").await.unwrap().unwrap();
    assert!(!snapshot.unwrap().ours);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].outcome, "not_ours");

    let cycles = journal.cycles(&lit, 10).await.unwrap();
    assert_eq!(cycles.len(), 1);
    let cycle = &cycles[0];
    assert_eq!(
        (
            cycle.outcome.as_str(),
            cycle.records,
            cycle.ours,
            cycle.actions,
            cycle.failures
        ),
        ("ok", 2, 1, 7, 0)
    );
    assert_eq!(journal.dispatches(&lit).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_dry_run_journals_nothing() {
    let world = world();
    let journal = Arc::new(MemoryJournal::default());
    let lit = VendorName::fixed("LIT");
    engine(&world, journal.clone())
        .run_cycle(&lit, Mode::DryRun)
        .await
        .unwrap();
    assert!(journal.cycles(&lit, 10).await.unwrap().is_empty());
    assert_eq!(journal.dispatch(&lit, "DIS1").await.unwrap(), None);
}

#[tokio::test]
async fn a_journal_that_fails_never_changes_what_is_sent() {
    let lit = VendorName::fixed("LIT");
    let healthy = world();
    engine(&healthy, Arc::new(MemoryJournal::default()))
        .run_cycle(&lit, Mode::Execute)
        .await
        .unwrap();

    let broken = world();
    let mut journal = MockJournal::new();
    journal
        .expect_record_dispatch()
        .times(2)
        .returning(|_, _| Err(PortError::Unavailable("journal down".into())));
    journal
        .expect_record_cycle()
        .times(1)
        .returning(|_, _| Err(PortError::Unavailable("journal down".into())));
    let report = engine(&broken, Arc::new(journal))
        .run_cycle(&lit, Mode::Execute)
        .await
        .unwrap();
    assert!(report.dispatches.iter().all(|d| !d.failed()));
    assert_eq!(sent_sms(&broken), sent_sms(&healthy));
    assert_eq!(sent_sms(&broken).len(), 3);
}

/// An alert queue whose Slack bridge fails every line: it journals each failure as soon as it
/// is queued, before the dispatch that raised it has recorded its own entries.
struct FailingOutbox {
    journal: Arc<MemoryJournal>,
    at: chrono::DateTime<chrono::Utc>,
    lines: std::sync::Mutex<Vec<String>>,
}

impl domain::alerts::AlertOutbox for FailingOutbox {
    fn enqueue(&self, alert: domain::alerts::QueuedAlert) -> Result<(), PortError> {
        self.lines.lock().unwrap().push(alert.line.clone());
        let entry = domain::journal::JournalEntry {
            at: self.at,
            kind: EntryKind::Alert,
            action: None,
            outcome: "failed".into(),
            to: None,
            text: Some(alert.line),
            detail: Some("unavailable: slack down".into()),
            replica: "replica-a".into(),
        };
        let number = alert.dispatch_number.as_str();
        futures::executor::block_on(
            self.journal
                .record_entries(&alert.vendor, number, vec![entry]),
        )
    }
}

#[tokio::test]
async fn a_queued_alert_is_journaled_as_queued_then_as_failed_when_slack_fails_later() {
    let world = world();
    let journal = Arc::new(MemoryJournal::default());
    let outbox = Arc::new(FailingOutbox {
        journal: journal.clone(),
        at: hours_before(30.0) + chrono::Duration::seconds(1),
        lines: std::sync::Mutex::default(),
    });
    let lit = VendorName::fixed("LIT");
    engine(&world, journal.clone())
        .with_alert_outbox(outbox.clone())
        .run_cycle(&lit, Mode::Execute)
        .await
        .unwrap();
    let queued = outbox.lines.lock().unwrap().clone();
    assert!(!queued.is_empty());
    assert!(
        world
            .log
            .entries()
            .iter()
            .all(|e| !matches!(e.event, domain::memory::WorldEvent::Slack(_))),
        "dispatch alerts go through the queue"
    );
    let DispatchHistory { entries, .. } = journal.dispatch(&lit, "DIS1").await.unwrap().unwrap();
    let alerts: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Alert)
        .map(|e| (e.outcome.as_str(), e.text.as_deref().unwrap()))
        .collect();
    assert!(
        !alerts.iter().any(|(outcome, _)| *outcome == "posted"),
        "{alerts:?}"
    );
    // Each line: queued by the dispatch, then failed, in that order.
    for line in &queued {
        let outcomes: Vec<&str> = alerts
            .iter()
            .filter(|(_, text)| text == line)
            .map(|(outcome, _)| *outcome)
            .collect();
        assert_eq!(outcomes, ["queued", "failed"], "{line}");
    }
}

/// A cycle's outcome in the journal follows why it stopped (SPEC §18.6): a lease lost before a
/// dispatch started, or while the last ones ran, is `lease_lost`; shutdown is `stopped`.
#[tokio::test]
async fn a_cycle_that_lost_its_lease_is_journaled_as_lease_lost() {
    let lit = VendorName::fixed("LIT");
    let cases: [(&str, usize, Option<StopReason>, usize, &str); 4] = [
        // (case, stop() answers None this many times, then this, dispatches done, outcome)
        (
            "lost before the second dispatch",
            1,
            Some(StopReason::LeaseLost),
            1,
            "lease_lost",
        ),
        (
            "lost during the last dispatch",
            2,
            Some(StopReason::LeaseLost),
            2,
            "lease_lost",
        ),
        (
            "shutdown before the second dispatch",
            1,
            Some(StopReason::Shutdown),
            1,
            "stopped",
        ),
        (
            "shutdown during the last dispatch",
            2,
            Some(StopReason::Shutdown),
            2,
            "ok",
        ),
    ];
    for (case, clear, then, done, outcome) in cases {
        let world = world();
        let journal = Arc::new(MemoryJournal::default());
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let stop = || {
            let n = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n < clear { None } else { then }
        };
        let report = engine(&world, journal.clone())
            .run_cycle_until(&lit, Mode::Execute, &stop)
            .await
            .unwrap();
        assert_eq!(report.dispatches.len(), done, "{case}");
        let cycles = journal.cycles(&lit, 5).await.unwrap();
        assert_eq!(cycles[0].outcome, outcome, "{case}");
    }
}
