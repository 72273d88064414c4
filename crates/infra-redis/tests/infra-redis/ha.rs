//! The Redis ports over highly available Redis (SPEC §16): every port against a real 3-node
//! Redis Cluster (each script and command touches one hash slot), and a Sentinel failover
//! followed by the same client without a restart.

use std::time::Duration;

use domain::actions::{ActionKind, Recipient};
use domain::journal::{DispatchSnapshot, EntryKind, Journal, JournalEntry};
use domain::ports::{
    Claim, DispatchRegistry, EntryState, LargeMessageStore, LedgerKey, SmsLedger, SmsPurpose,
    VendorLease,
};
use domain::{DispatchNumber, PhoneE164, VendorName};
use infra_redis::RedisConnection;
use serde_json::json;
use test_support::ha::{RedisCluster, RedisSentinels};
use tokio::time::{Instant, sleep};

const ENV: &str = "ha";

/// A connection to `url` once Redis answers.
pub async fn connect(url: &str) -> RedisConnection {
    let connection = RedisConnection::connect(url, Duration::from_secs(2))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while connection.ping().await.is_err() {
        assert!(Instant::now() < deadline, "Redis did not become reachable");
        sleep(Duration::from_millis(50)).await;
    }
    connection
}

fn ledger_key(dispatch: &str) -> LedgerKey {
    LedgerKey {
        vendor: VendorName::fixed("LIT"),
        dispatch_number: DispatchNumber::parse(dispatch).unwrap(),
        purpose: SmsPurpose {
            kind: ActionKind::ConfirmedSms,
            to: Recipient::Client,
        },
        recipient: PhoneE164::parse_us("+1 212 359 5129").unwrap(),
        change: None,
    }
}

/// Claims `key`'s SMS, which must be free, and records it as sent.
async fn claim_and_send(ledger: &impl SmsLedger, key: &LedgerKey) {
    let claim = ledger.claim(key, "note", Duration::from_secs(60)).await;
    assert_eq!(claim.unwrap(), Claim::Claimed);
    ledger.mark_sent(key).await.unwrap();
}

fn entry(n: i64) -> JournalEntry {
    JournalEntry {
        at: chrono::DateTime::from_timestamp(1_800_000_000 + n, 0).unwrap(),
        kind: EntryKind::Sms,
        action: None,
        outcome: "sent".into(),
        to: None,
        text: None,
        detail: None,
        replica: "a".into(),
    }
}

fn snapshot(number: &str) -> DispatchSnapshot {
    DispatchSnapshot {
        vendor: "LIT".into(),
        dispatch_number: number.into(),
        ticket_id: "1".into(),
        status: "confirmed".into(),
        vendor_status: "Request Confirmed".into(),
        appointment: None,
        ours: true,
        tech_name: None,
        tech_phone: None,
        client_phone: None,
        site: None,
        street: None,
        skipped_rules: vec![],
        seen: chrono::Utc::now(),
        last_action: None,
        paused: None,
    }
}

/// Every port's commands, over keys that land in many hash slots.
async fn exercise_every_port(redis: &RedisConnection) {
    let ledger = redis.ledger(ENV);
    let lease = redis.lease(ENV);
    let registry = redis.registry(ENV);
    let journal = redis.journal(ENV);
    let store = redis.large_messages();
    for n in 0..20 {
        let dispatch = format!("DIS{n:05}");
        let key = ledger_key(&dispatch);
        claim_and_send(&ledger, &key).await;
        let entries = ledger
            .entries(&key.vendor, &key.dispatch_number)
            .await
            .unwrap();
        assert_eq!(entries[0].state, EntryState::Sent);
        assert!(
            registry
                .register(&dispatch, &json!({"ticket_id": n.to_string()}))
                .await
                .unwrap()
        );
        journal
            .record_dispatch(snapshot(&dispatch), vec![entry(n)])
            .await
            .unwrap();
        store
            .put(&format!("token-{n}"), "{}", Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store.take(&format!("token-{n}")).await.unwrap().as_deref(),
            Some("{}")
        );
    }
    for vendor in ["LIT", "CTS", "ACME", "FOO", "BAR"] {
        let vendor = VendorName::fixed(vendor);
        let token = lease
            .try_acquire(&vendor, Duration::from_secs(10))
            .await
            .unwrap()
            .expect("free");
        assert!(lease.renew(&token, Duration::from_secs(10)).await.unwrap());
        assert!(lease.holder(&vendor).await.unwrap().is_some());
        assert!(lease.release(&token).await.unwrap());
    }
    exercise_safeguards(redis).await;
    journal.flush(Duration::from_secs(10)).await;
    for n in 0..20 {
        let history = journal
            .dispatch(&VendorName::fixed("LIT"), &format!("DIS{n:05}"))
            .await
            .unwrap()
            .expect("journaled");
        assert_eq!(history.entries.len(), 1);
    }
}

/// The safeguards' commands (SPEC §17) over numbers and dispatches in many hash slots.
async fn exercise_safeguards(redis: &RedisConnection) {
    use domain::safeguards::{DailyCap, Reservation, SafeguardMark, Safeguards};
    let safeguards = redis.safeguards(ENV);
    let now = chrono::Utc::now();
    let mark = SafeguardMark {
        at: now,
        by: "test".into(),
        reason: "ha".into(),
    };
    for n in 0..20 {
        let phone = domain::PhoneE164::parse_input(&format!("212555{n:04}")).unwrap();
        let vendor = VendorName::fixed("LIT");
        let number = domain::DispatchNumber::parse(&format!("DIS{n:05}")).unwrap();
        assert!(safeguards.add_opt_out(&phone, &mark).await.unwrap());
        assert!(safeguards.pause(&vendor, &number, &mark).await.unwrap());
        let reserved = safeguards.reserve(&phone, "text", 1, now).await.unwrap();
        assert_eq!(reserved, Reservation::Reserved);
        let full = safeguards.reserve(&phone, "other", 1, now).await.unwrap();
        assert_eq!(full, Reservation::Full { count: 1 });
        assert!(safeguards.first_cap_alert(&phone, now).await.unwrap());
        let phones = [phone.clone()];
        let facts = safeguards
            .dispatch_facts(&vendor, &number, &phones, DailyCap(1), now)
            .await
            .unwrap();
        assert!(facts.opted_out.contains(&phone) && facts.capped.contains(&phone));
        assert_eq!(facts.paused, Some(mark.clone()));
        safeguards.release(&phone, "text").await.unwrap();
        assert!(safeguards.resume(&vendor, &number).await.unwrap().is_some());
        assert!(safeguards.remove_opt_out(&phone).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_port_works_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3).await;
    let redis = connect(&cluster.url()).await;
    exercise_every_port(&redis).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sentinel_failover_is_followed_without_a_restart() {
    let mut set = RedisSentinels::start().await;
    let redis = connect(&set.url()).await;
    let ledger = redis.ledger(ENV);
    let key = ledger_key("DIS00001");
    claim_and_send(&ledger, &key).await;
    // Let the write reach the replica, then lose the primary.
    let deadline = Instant::now() + Duration::from_secs(10);
    while test_support::wire::redis(
        &set.replica.url(),
        &["EXISTS", "ha-dispatch-monitor:ledger:LIT:DIS00001"],
    )
    .await
        != "1"
    {
        assert!(
            Instant::now() < deadline,
            "the write never reached the replica"
        );
        sleep(Duration::from_millis(50)).await;
    }
    set.primary.stop();
    set.wait_for_primary(set.replica.port()).await;

    // The same client finds the new primary: the ledger is there, and writes work again.
    let deadline = Instant::now() + Duration::from_secs(30);
    let key2 = ledger_key("DIS00002");
    loop {
        match ledger.claim(&key2, "note", Duration::from_secs(60)).await {
            Ok(claim) => {
                assert_eq!(claim, Claim::Claimed);
                break;
            }
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "no write after the failover: {error}"
                );
                sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let entries = ledger
        .entries(&key.vendor, &key.dispatch_number)
        .await
        .unwrap();
    assert_eq!(entries[0].state, EntryState::Sent);
    assert_eq!(
        ledger
            .claim(&key, "note", Duration::from_secs(60))
            .await
            .unwrap(),
        Claim::AlreadySent
    );
    redis.ping().await.unwrap();
}
