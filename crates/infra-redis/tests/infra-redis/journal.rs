//! The journal (SPEC §14) against a real `redis-server`: its bounds, its TTLs, repeated entries
//! written once, writes that never block, and two replicas' records readable from either.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use domain::VendorName;
use domain::journal::{
    CycleRecord, DispatchHistory, DispatchSnapshot, EntryKind, Journal, JournalEntry, LastAction,
};
use fred::prelude::{Builder, Client, ClientLike, Config, KeysInterface, ListInterface};
use infra_redis::{JOURNAL_QUEUE, RedisConnection};
use test_support::servers::RedisServer;

const ENV: &str = "test";
const THIRTY_DAYS_MS: i64 = 30 * 24 * 3600 * 1000;

async fn connect(server: &RedisServer) -> RedisConnection {
    crate::ha::connect(&server.url()).await
}

async fn raw_client(server: &RedisServer) -> Client {
    let client = Builder::from_config(Config::from_url(&server.url()).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap()
}

fn sent(second: i64, replica: &str) -> JournalEntry {
    JournalEntry {
        at: at(second),
        kind: EntryKind::Sms,
        action: Some("12h reminder SMS to the client".into()),
        outcome: "sent".into(),
        to: Some("+12123595129".into()),
        text: Some(format!("reminder {second}")),
        detail: None,
        replica: replica.into(),
    }
}

fn skipped(second: i64) -> JournalEntry {
    JournalEntry {
        at: at(second),
        kind: EntryKind::Skipped,
        action: None,
        outcome: "skipped".into(),
        to: None,
        text: None,
        detail: Some("Tech on site rule skipped: the vendor shows no check-in yet".into()),
        replica: "a".into(),
    }
}

fn cycle(vendor: &str, second: i64, replica: &str) -> CycleRecord {
    CycleRecord {
        vendor: vendor.into(),
        replica: replica.into(),
        started: at(second),
        finished: at(second + 1),
        outcome: "ok".into(),
        error: None,
        records: 2,
        ours: 1,
        actions: 1,
        failures: 0,
    }
}

fn snapshot(vendor: &str, number: &str, last_action: Option<LastAction>) -> DispatchSnapshot {
    DispatchSnapshot {
        vendor: vendor.into(),
        dispatch_number: number.into(),
        ticket_id: "3544800".into(),
        status: "confirmed".into(),
        vendor_status: "Request Confirmed".into(),
        appointment: Some("Mar 16, 2020 @ 04:00 PM Pacific".into()),
        ours: true,
        tech_name: None,
        tech_phone: None,
        client_phone: Some("+12123595129".into()),
        site: None,
        street: None,
        skipped_rules: vec![],
        seen: at(0),
        last_action,
        paused: None,
    }
}

fn lit() -> VendorName {
    VendorName::fixed("LIT")
}

/// Records LIT `number`'s entries with a snapshot without a new last action.
async fn record(journal: &impl Journal, number: &str, entries: Vec<JournalEntry>) {
    journal
        .record_dispatch(snapshot("LIT", number, None), entries)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dispatch_keeps_its_last_200_entries_for_30_days() {
    let server = RedisServer::new();
    let journal = connect(&server).await.journal(ENV);
    for batch in 0..5 {
        let entries = (0..50).map(|i| sent(batch * 50 + i, "a")).collect();
        record(&journal, "DIS37405", entries).await;
    }
    journal.flush(Duration::from_secs(10)).await;

    let DispatchHistory { snapshot, entries } =
        journal.dispatch(&lit(), "DIS37405").await.unwrap().unwrap();
    assert_eq!(snapshot.unwrap().dispatch_number, "DIS37405");
    assert_eq!(entries.len(), 200);
    assert_eq!(entries[0].at, at(50), "the oldest 50 were dropped");
    assert_eq!(entries[199].at, at(249), "oldest first");

    let raw = raw_client(&server).await;
    let key = "test-dispatch-monitor:journal:LIT:DIS37405";
    assert_eq!(raw.llen::<i64, _>(key).await.unwrap(), 200);
    let ttl: i64 = raw.pttl(key).await.unwrap();
    assert!(
        (THIRTY_DAYS_MS - 60_000..=THIRTY_DAYS_MS).contains(&ttl),
        "{ttl}"
    );
    assert_eq!(journal.dispatch(&lit(), "DIS99999").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_that_repeats_each_cycle_is_written_once() {
    let server = RedisServer::new();
    let journal = connect(&server).await.journal(ENV);
    for second in 0..4 {
        record(&journal, "DIS37405", vec![skipped(second)]).await;
    }
    record(&journal, "DIS37405", vec![sent(10, "a")]).await;
    journal.flush(Duration::from_secs(10)).await;
    let DispatchHistory {
        snapshot: _,
        entries,
    } = journal.dispatch(&lit(), "DIS37405").await.unwrap().unwrap();
    let kinds: Vec<EntryKind> = entries.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EntryKind::Skipped, EntryKind::Sms]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vendor_keeps_its_last_100_cycles_newest_first_and_its_listed_dispatches() {
    let server = RedisServer::new();
    let journal = connect(&server).await.journal(ENV);
    let reminded = LastAction {
        at: at(5),
        text: "12h reminder SMS to the client: sent to +12123595129".into(),
    };
    journal
        .record_dispatch(snapshot("LIT", "DIS37405", Some(reminded.clone())), vec![])
        .await
        .unwrap();
    for second in 0..120 {
        for number in ["DIS37405", "DIS37406", "DIS37407"] {
            record(&journal, number, vec![]).await;
        }
        let seen = ["DIS37405", "DIS37406"].map(str::to_owned).to_vec();
        journal
            .record_cycle(cycle("LIT", second, "a"), Some(seen))
            .await
            .unwrap();
    }
    // A cycle whose list could not be fetched leaves the dispatches as they were.
    let mut failed = cycle("LIT", 200, "a");
    failed.outcome = "failed".into();
    journal.record_cycle(failed, None).await.unwrap();
    journal.flush(Duration::from_secs(10)).await;

    let cycles = journal.cycles(&lit(), 1000).await.unwrap();
    assert_eq!(cycles.len(), 100);
    assert_eq!(cycles[0].outcome, "failed");
    assert_eq!(cycles[1].started, at(119));
    assert_eq!(journal.cycles(&lit(), 3).await.unwrap().len(), 3);

    // DIS37407 is no longer listed: dropped. A dispatch without a new action keeps its last.
    let dispatches = journal.dispatches(&lit()).await.unwrap();
    let numbers: Vec<&str> = dispatches
        .iter()
        .map(|d| d.dispatch_number.as_str())
        .collect();
    assert_eq!(numbers, ["DIS37405", "DIS37406"]);
    assert_eq!(dispatches[0].last_action, Some(reminded.clone()));
    assert_eq!(dispatches[1].last_action, None);
    let history = journal.dispatch(&lit(), "DIS37405").await.unwrap().unwrap();
    assert_eq!(history.snapshot.unwrap().last_action, Some(reminded));
    assert_eq!(journal.dispatch(&lit(), "DIS37407").await.unwrap(), None);

    let raw = raw_client(&server).await;
    for key in [
        "test-dispatch-monitor:cycles:LIT",
        "test-dispatch-monitor:dispatches:LIT",
    ] {
        let ttl: i64 = raw.pttl(key).await.unwrap();
        assert!(
            (THIRTY_DAYS_MS - 60_000..=THIRTY_DAYS_MS).contains(&ttl),
            "{key}: {ttl}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_records_are_read_by_either() {
    let server = RedisServer::new();
    let replica_a = connect(&server).await.journal(ENV);
    let replica_b = connect(&server).await.journal(ENV);
    record(&replica_a, "DIS37405", vec![sent(1, "a")]).await;
    replica_a.flush(Duration::from_secs(10)).await;
    record(&replica_b, "DIS37405", vec![sent(2, "b")]).await;
    replica_b
        .record_dispatch(snapshot("CTS", "S-12345", None), vec![])
        .await
        .unwrap();
    replica_b
        .record_cycle(cycle("CTS", 3, "b"), Some(vec!["S-12345".to_owned()]))
        .await
        .unwrap();
    replica_a.flush(Duration::from_secs(10)).await;
    replica_b.flush(Duration::from_secs(10)).await;
    for journal in [&replica_a, &replica_b] {
        let DispatchHistory {
            snapshot: _,
            entries,
        } = journal.dispatch(&lit(), "DIS37405").await.unwrap().unwrap();
        let replicas: Vec<&str> = entries.iter().map(|e| e.replica.as_str()).collect();
        assert_eq!(replicas, ["a", "b"]);
        let cts = VendorName::fixed("CTS");
        assert_eq!(journal.cycles(&cts, 5).await.unwrap()[0].replica, "b");
        assert_eq!(journal.dispatches(&cts).await.unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_never_wait_for_a_redis_that_is_down() {
    let mut server = RedisServer::new();
    let journal = connect(&server).await.journal(ENV);
    server.stop();
    // Queued: each call returns at once, while the writer waits on Redis, then logs and counts
    // what it cannot write. Once the queue is full, writes are dropped with an error.
    let queued = tokio::time::timeout(Duration::from_secs(20), async {
        let mut refused = None;
        for second in 0..(JOURNAL_QUEUE as i64 + 100) {
            let result = journal
                .record_dispatch(snapshot("LIT", "DIS37405", None), vec![sent(second, "a")])
                .await;
            if let Err(error) = result {
                refused = Some(error);
                break;
            }
        }
        refused
    })
    .await
    .expect("journal writes must not wait for Redis");
    let refused = queued.expect("a full queue refuses writes");
    assert!(refused.to_string().contains("queue is full"), "{refused}");
    // A flush gives up in time, waiting for room in the full queue included: it once waited
    // for a slot outside its timeout (SPEC §18.6, shutdown within the grace period).
    let started = std::time::Instant::now();
    journal.flush(Duration::from_millis(500)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // Reads say why they fail.
    let error = journal.cycles(&lit(), 5).await.unwrap_err();
    assert!(error.to_string().contains("unavailable"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_outcome_recorded_before_its_dispatch_reads_back_in_time_order() {
    let server = RedisServer::new();
    let journal = connect(&server).await.journal(ENV);
    let alert = |second: i64, outcome: &str| JournalEntry {
        at: at(second),
        kind: EntryKind::Alert,
        action: None,
        outcome: outcome.into(),
        to: None,
        text: Some("[dispatch-monitor] [LIT] line".into()),
        detail: None,
        replica: "a".into(),
    };
    // The queue posted the line (second 3) before the dispatch recorded its entries.
    journal
        .record_entries(&lit(), "DIS37405", vec![alert(3, "posted")])
        .await
        .unwrap();
    record(&journal, "DIS37405", vec![sent(1, "a"), alert(2, "queued")]).await;
    journal.flush(Duration::from_secs(10)).await;
    let DispatchHistory { entries, .. } =
        journal.dispatch(&lit(), "DIS37405").await.unwrap().unwrap();
    let outcomes: Vec<&str> = entries.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["sent", "queued", "posted"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_and_its_resume_are_journaled_after_the_dispatchs_entries() {
    let server = RedisServer::new();
    let connection = connect(&server).await;
    let journal = connection.journal(ENV);
    let store = connection.safeguards(ENV);
    let number = domain::DispatchNumber::parse("DIS37405").unwrap();
    let vendor = lit();
    record(&journal, "DIS37405", vec![sent(1, "a")]).await;
    let mark = domain::safeguards::SafeguardMark {
        at: at(2),
        by: "cli:ops".into(),
        reason: "customer asked".into(),
    };
    let paused = domain::pausing::pause_dispatch(&store, &journal, &vendor, &number, &mark, "a");
    assert!(paused.await.unwrap());
    let resumed =
        domain::pausing::resume_dispatch(&store, &journal, &vendor, &number, "api", at(3), "b");
    assert_eq!(resumed.await.unwrap(), Some(mark));
    journal.flush(Duration::from_secs(10)).await;
    let history = journal.dispatch(&lit(), "DIS37405").await.unwrap().unwrap();
    let outcomes: Vec<(EntryKind, &str, &str)> = history
        .entries
        .iter()
        .map(|e| (e.kind, e.outcome.as_str(), e.replica.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (EntryKind::Sms, "sent", "a"),
            (EntryKind::Pause, "paused", "a"),
            (EntryKind::Pause, "resumed", "b"),
        ]
    );
    assert_eq!(
        history.entries[1].detail.as_deref(),
        Some("by cli:ops: customer asked")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_stored_cycle_is_counted_and_a_second_connection_reads_the_same() {
    let server = RedisServer::new();
    let journal = connect(&server).await.journal(ENV);
    let reader = journal.reading_through(&connect(&server).await);
    let stored = reader.cycles_stored();
    assert_eq!(*stored.borrow(), 0);
    record(&journal, "DIS37405", vec![sent(1, "a")]).await;
    journal.flush(Duration::from_secs(10)).await;
    assert_eq!(*stored.borrow(), 0, "a dispatch alone is not a cycle");
    let seen = vec!["DIS37405".to_owned()];
    journal
        .record_cycle(cycle("LIT", 2, "a"), Some(seen))
        .await
        .unwrap();
    journal.flush(Duration::from_secs(10)).await;
    assert_eq!(*stored.borrow(), 1, "counted once the record is stored");
    let numbers: Vec<String> = reader
        .dispatches(&lit())
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.dispatch_number)
        .collect();
    assert_eq!(numbers, ["DIS37405"]);
    assert_eq!(reader.cycles(&lit(), 5).await.unwrap().len(), 1);
    // Writes through the reader go through the one queue.
    reader
        .record_cycle(cycle("LIT", 3, "a"), None)
        .await
        .unwrap();
    journal.flush(Duration::from_secs(10)).await;
    assert_eq!(*journal.cycles_stored().borrow(), 2);
}
