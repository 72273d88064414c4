//! The Redis ports against a real `redis-server` started for each test on a free port.

use std::sync::Arc;
use std::time::Duration;

use domain::actions::{ActionKind, Recipient};
use domain::ports::{
    Claim, DispatchRegistry, EntryState, LargeMessageStore, LeaseToken, LedgerEntry, LedgerKey,
    PortError, SmsLedger, SmsPurpose, VendorLease,
};
use domain::{DispatchNumber, PhoneE164, VendorName};
use fred::prelude::{Builder, Client, ClientLike, Config, HashesInterface, KeysInterface};
use infra_redis::{REGISTRY_TTL_SECS, RedisConnection};
use serde_json::json;
use test_support::servers::RedisServer;
use tokio::sync::Barrier;
use tokio::time::{Instant, sleep, timeout};

const ENV: &str = "test";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// A generous bound so that a hanging call fails the test instead of blocking it.
const HANG_GUARD: Duration = Duration::from_secs(15);

async fn connect(server: &RedisServer) -> RedisConnection {
    let connection = RedisConnection::connect(&server.url(), COMMAND_TIMEOUT)
        .await
        .unwrap();
    wait_until_ready(&connection).await;
    connection
}

async fn wait_until_ready(connection: &RedisConnection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while connection.ping().await.is_err() {
        assert!(Instant::now() < deadline, "Redis did not become reachable");
        sleep(Duration::from_millis(50)).await;
    }
}

/// A plain fred client to look at keys behind the ports' backs.
async fn raw_client(server: &RedisServer) -> Client {
    let client = Builder::from_config(Config::from_url(&server.url()).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

fn ledger_key(purpose: SmsPurpose) -> LedgerKey {
    LedgerKey {
        vendor: VendorName::parse("LIT").unwrap(),
        dispatch_number: DispatchNumber::parse("DIS37405").unwrap(),
        purpose,
        recipient: PhoneE164::parse_us("+1 212 359 5129").unwrap(),
        change: None,
    }
}

/// The claim TTL the tests use unless they test expiry.
const CLAIM: Duration = Duration::from_secs(150);

fn vendor() -> VendorName {
    VendorName::parse("cts").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_writes_a_key_once_with_a_three_day_ttl() {
    let server = RedisServer::new();
    let redis = connect(&server).await;
    let registry = redis.registry(ENV);
    let raw = raw_client(&server).await;

    let first = json!({"ticket_id": "3544800", "igz_dispatch_number": "IGZ_0001"});
    assert!(registry.register("S-12345", &first).await.unwrap());
    let second = json!({"ticket_id": "999"});
    assert!(!registry.register("S-12345", &second).await.unwrap());

    let stored: String = raw.get("test-S-12345").await.unwrap();
    assert!(!stored.contains(' '), "not compact: {stored}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stored).unwrap(),
        first
    );
    let ttl: i64 = raw.ttl("test-S-12345").await.unwrap();
    assert!(
        (REGISTRY_TTL_SECS - 10..=REGISTRY_TTL_SECS).contains(&ttl),
        "ttl {ttl}"
    );
    assert_eq!(REGISTRY_TTL_SECS, 259_200);
}

#[tokio::test(flavor = "multi_thread")]
async fn ledger_claims_marks_and_releases_entries_of_one_hash_per_dispatch() {
    let server = RedisServer::new();
    let ledger = connect(&server).await.ledger(ENV);
    let other_replica = connect(&server).await.ledger(ENV);
    let raw = raw_client(&server).await;
    let key = ledger_key(SmsPurpose {
        kind: ActionKind::ConfirmedSms,
        to: Recipient::Client,
    });
    let (vendor, number) = (key.vendor.clone(), key.dispatch_number.clone());
    let hash = "test-dispatch-monitor:ledger:LIT:DIS37405";
    let note = "#*MetTel's IPA*# DIS37405\nDispatch confirmation SMS sent to +12123595129\n";

    assert_eq!(ledger.entries(&vendor, &number).await.unwrap(), vec![]);
    assert_eq!(
        ledger.claim(&key, note, CLAIM).await.unwrap(),
        Claim::Claimed
    );
    let fields: Vec<String> = raw.hkeys(hash).await.unwrap();
    assert_eq!(fields, ["confirmed:12123595129"]);
    let entries = ledger.entries(&vendor, &number).await.unwrap();
    assert_eq!(
        entries,
        vec![LedgerEntry {
            key: key.clone(),
            state: EntryState::Claimed,
            note: note.into()
        }]
    );
    // Another replica finds it held; releasing someone else's claim does nothing.
    assert_eq!(
        other_replica.claim(&key, note, CLAIM).await.unwrap(),
        Claim::HeldElsewhere
    );
    other_replica.release(&key).await.unwrap();
    assert_eq!(
        other_replica.claim(&key, note, CLAIM).await.unwrap(),
        Claim::HeldElsewhere
    );
    // The holder releases it after a refusal: free again.
    ledger.release(&key).await.unwrap();
    assert_eq!(ledger.entries(&vendor, &number).await.unwrap(), vec![]);
    assert_eq!(
        other_replica.claim(&key, note, CLAIM).await.unwrap(),
        Claim::Claimed
    );

    other_replica.mark_sent(&key).await.unwrap();
    let entries = ledger.entries(&vendor, &number).await.unwrap();
    assert_eq!(entries[0].state, EntryState::Sent);
    assert_eq!(entries[0].note, note, "the note survives the mark");
    assert_eq!(
        ledger.claim(&key, note, CLAIM).await.unwrap(),
        Claim::AlreadySent
    );
    let ttl: i64 = raw.ttl(hash).await.unwrap();
    assert!(
        ttl > 29 * 24 * 3600 && ttl <= 30 * 24 * 3600,
        "ledger ttl {ttl}"
    );
    // Releasing never forgets a sent SMS.
    other_replica.release(&key).await.unwrap();
    assert_eq!(
        ledger.claim(&key, note, CLAIM).await.unwrap(),
        Claim::AlreadySent
    );

    // Another purpose is another entry of the same hash.
    let reminder = ledger_key(SmsPurpose {
        kind: ActionKind::Reminder { hours: 12 },
        to: Recipient::Client,
    });
    assert_eq!(
        ledger.claim(&reminder, "r", CLAIM).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(ledger.entries(&vendor, &number).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uncertain_entry_is_claimable_at_once_and_a_dead_claim_after_its_ttl() {
    let server = RedisServer::new();
    let ledger = connect(&server).await.ledger(ENV);
    let other_replica = connect(&server).await.ledger(ENV);
    let key = ledger_key(SmsPurpose {
        kind: ActionKind::TechOnSite,
        to: Recipient::Client,
    });
    assert_eq!(
        ledger.claim(&key, "n", CLAIM).await.unwrap(),
        Claim::Claimed
    );
    ledger.mark_uncertain(&key).await.unwrap();
    let entries = ledger
        .entries(&key.vendor, &key.dispatch_number)
        .await
        .unwrap();
    assert_eq!(entries[0].state, EntryState::Uncertain);
    assert_eq!(entries[0].note, "n");
    assert_eq!(
        other_replica.claim(&key, "n", CLAIM).await.unwrap(),
        Claim::Claimed
    );

    // A replica that died holding a short claim frees it when the claim's TTL is over.
    let short = ledger_key(SmsPurpose {
        kind: ActionKind::ConfirmedTechSms,
        to: Recipient::Tech,
    });
    let ttl = Duration::from_millis(300);
    assert_eq!(
        ledger.claim(&short, "n", ttl).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        other_replica.claim(&short, "n", ttl).await.unwrap(),
        Claim::HeldElsewhere
    );
    let deadline = Instant::now() + HANG_GUARD;
    while other_replica.claim(&short, "n", ttl).await.unwrap() != Claim::Claimed {
        assert!(Instant::now() < deadline, "the dead claim never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ledger_claim_race_has_exactly_one_winner() {
    let server = RedisServer::new();
    // Two connections, like two monitor replicas.
    let ledgers = [
        connect(&server).await.ledger(ENV),
        connect(&server).await.ledger(ENV),
    ];
    for round in 0..25_u32 {
        let key = ledger_key(SmsPurpose {
            kind: ActionKind::Reminder { hours: round },
            to: Recipient::Client,
        });
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = ledgers
            .iter()
            .map(|ledger| {
                let (ledger, key, barrier) = (ledger.clone(), key.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    ledger.claim(&key, "note", CLAIM).await.unwrap()
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(timeout(HANG_GUARD, task).await.unwrap().unwrap());
        }
        let winners = outcomes
            .iter()
            .filter(|claim| **claim == Claim::Claimed)
            .count();
        assert_eq!(winners, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.contains(&Claim::HeldElsewhere),
            "round {round}: {outcomes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_is_exclusive_and_only_its_holder_renews_or_releases_it() {
    let server = RedisServer::new();
    let first = connect(&server).await.lease(ENV);
    let second = connect(&server).await.lease(ENV);
    let raw = raw_client(&server).await;
    let ttl = Duration::from_secs(60);

    let token = first
        .try_acquire(&vendor(), ttl)
        .await
        .unwrap()
        .expect("the lease is free");
    assert_eq!(token.vendor, vendor());
    assert!(second.try_acquire(&vendor(), ttl).await.unwrap().is_none());
    let stored: String = raw.get("test-dispatch-monitor:lease:CTS").await.unwrap();
    assert_eq!(stored, token.holder);

    // Renewal extends the lease.
    assert!(first.renew(&token, Duration::from_secs(600)).await.unwrap());
    let pttl: i64 = raw.pttl("test-dispatch-monitor:lease:CTS").await.unwrap();
    assert!(pttl > 60_000, "pttl {pttl}");

    // A non-holder can neither renew nor release it.
    let impostor = LeaseToken {
        vendor: vendor(),
        holder: "someone-else".into(),
    };
    assert!(!second.renew(&impostor, ttl).await.unwrap());
    assert!(!second.release(&impostor).await.unwrap());
    assert!(second.try_acquire(&vendor(), ttl).await.unwrap().is_none());

    // The holder releases it, then another can take it.
    assert!(first.release(&token).await.unwrap());
    assert!(!first.release(&token).await.unwrap());
    let taken = second
        .try_acquire(&vendor(), ttl)
        .await
        .unwrap()
        .expect("released");
    assert_ne!(taken.holder, token.holder);
    assert!(!first.renew(&token, ttl).await.unwrap());

    // Leases are per vendor.
    let lit = VendorName::parse("LIT").unwrap();
    assert!(first.try_acquire(&lit, ttl).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_expires_when_its_holder_dies() {
    let server = RedisServer::new();
    let first = connect(&server).await.lease(ENV);
    let second = connect(&server).await.lease(ENV);
    let short = Duration::from_millis(300);

    let token = first
        .try_acquire(&vendor(), short)
        .await
        .unwrap()
        .expect("free");
    assert!(
        second
            .try_acquire(&vendor(), short)
            .await
            .unwrap()
            .is_none()
    );
    // The holder "dies": it never renews.
    let deadline = Instant::now() + HANG_GUARD;
    let taken = loop {
        if let Some(taken) = second
            .try_acquire(&vendor(), Duration::from_secs(60))
            .await
            .unwrap()
        {
            break taken;
        }
        assert!(Instant::now() < deadline, "the lease never expired");
        sleep(Duration::from_millis(50)).await;
    };
    // The late holder cannot renew or release the new holder's lease.
    assert!(!first.renew(&token, Duration::from_secs(60)).await.unwrap());
    assert!(!first.release(&token).await.unwrap());
    assert!(second.release(&taken).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn large_messages_are_read_once_and_deleted() {
    let server = RedisServer::new();
    let store = connect(&server).await.large_messages();
    let raw = raw_client(&server).await;
    let json = format!(r#"{{"blob":"{}"}}"#, "x".repeat(2_000_000));

    store
        .put("token-1", &json, Duration::from_secs(300))
        .await
        .unwrap();
    let ttl: i64 = raw.ttl("token-1").await.unwrap();
    assert!((290..=300).contains(&ttl), "ttl {ttl}");
    assert_eq!(
        store.take("token-1").await.unwrap().as_deref(),
        Some(json.as_str())
    );
    assert_eq!(raw.exists::<i64, _>("token-1").await.unwrap(), 0);
    assert_eq!(store.take("token-1").await.unwrap(), None);
    assert_eq!(store.take("never-stored").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_redis_is_used_again_by_the_same_client() {
    let mut server = RedisServer::new();
    let redis = connect(&server).await;
    let registry = redis.registry(ENV);
    let ledger = redis.ledger(ENV);
    assert!(
        registry
            .register("DIS1", &json!({"ticket_id": "1"}))
            .await
            .unwrap()
    );

    server.stop();
    // While Redis is down, commands fail within the command timeout instead of hanging.
    let down = timeout(
        HANG_GUARD,
        registry.register("DIS2", &json!({"ticket_id": "2"})),
    )
    .await
    .expect("a command hung while Redis was down");
    match down {
        Err(PortError::Unavailable(message)) => assert!(message.contains("Redis"), "{message}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let claim = timeout(
        HANG_GUARD,
        ledger.claim(
            &ledger_key(SmsPurpose {
                kind: ActionKind::TechOnSite,
                to: Recipient::Client,
            }),
            "note",
            CLAIM,
        ),
    )
    .await
    .expect("a claim hung while Redis was down");
    assert!(matches!(claim, Err(PortError::Unavailable(_))), "{claim:?}");
    assert!(timeout(HANG_GUARD, redis.ping()).await.unwrap().is_err());

    server.start();
    wait_until_ready(&redis).await;
    assert!(redis.is_connected());
    // The restarted server is empty: persistence is off in tests.
    assert!(
        registry
            .register("DIS1", &json!({"ticket_id": "1"}))
            .await
            .unwrap()
    );
    assert_eq!(
        ledger
            .claim(
                &ledger_key(SmsPurpose {
                    kind: ActionKind::TechOnSite,
                    to: Recipient::Client
                }),
                "note",
                CLAIM
            )
            .await
            .unwrap(),
        Claim::Claimed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connecting_while_redis_is_down_returns_and_recovers_later() {
    let mut server = RedisServer::new();
    server.stop();

    let redis = timeout(
        HANG_GUARD,
        RedisConnection::connect(&server.url(), COMMAND_TIMEOUT),
    )
    .await
    .expect("connect hung while Redis was down")
    .unwrap();
    assert!(!redis.is_connected());
    let store = redis.large_messages();
    let down = timeout(HANG_GUARD, store.take("token"))
        .await
        .expect("a command hung");
    assert!(matches!(down, Err(PortError::Unavailable(_))), "{down:?}");

    server.start();
    wait_until_ready(&redis).await;
    store
        .put("token", "{}", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(store.take("token").await.unwrap().as_deref(), Some("{}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_url_is_refused() {
    let error = RedisConnection::connect("redis://:password@host:notaport", COMMAND_TIMEOUT)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("invalid Redis URL"), "{message}");
    assert!(!message.contains("password"), "the URL leaked: {message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tls_url_speaks_tls_with_a_verified_certificate_and_never_plaintext() {
    let tls = test_support::servers::TlsFiles::generate();
    let server = RedisServer::tls(&tls);
    assert!(server.url().starts_with("rediss://"));

    // Trusting the test CA: commands work over TLS.
    let redis = RedisConnection::connect_with(&server.url(), COMMAND_TIMEOUT, Some(&tls.ca_cert()))
        .await
        .unwrap();
    wait_until_ready(&redis).await;
    assert!(
        redis
            .registry(ENV)
            .register("DIS1", &json!({"ticket_id": "1"}))
            .await
            .unwrap()
    );

    // Without the CA the certificate is not trusted: no connection, no fallback.
    let untrusted = RedisConnection::connect(&server.url(), COMMAND_TIMEOUT)
        .await
        .unwrap();
    sleep(Duration::from_millis(500)).await;
    assert!(untrusted.ping().await.is_err());
    assert!(!untrusted.is_connected());
    // The plaintext scheme cannot reach the TLS-only port.
    let plaintext_url = server.url().replacen("rediss://", "redis://", 1);
    let plaintext = RedisConnection::connect(&plaintext_url, COMMAND_TIMEOUT)
        .await
        .unwrap();
    assert!(plaintext.ping().await.is_err());

    // A CA file that is not PEM is refused up front.
    let bad = std::env::temp_dir().join(format!("not-a-ca-{}.pem", std::process::id()));
    std::fs::write(&bad, "not a certificate").unwrap();
    let error = RedisConnection::connect_with(&server.url(), COMMAND_TIMEOUT, Some(&bad))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("TLS"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_steps_note_is_claimed_by_one_replica_and_then_known_as_appended() {
    let server = RedisServer::new();
    let ledger = connect(&server).await.ledger(ENV);
    let other_replica = connect(&server).await.ledger(ENV);
    let step = domain::ports::StepKey {
        vendor: VendorName::parse("LIT").unwrap(),
        dispatch_number: DispatchNumber::parse("DIS37405").unwrap(),
        kind: ActionKind::Cancelled,
        change: None,
    };
    assert_eq!(
        ledger.claim_note(&step, CLAIM).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        other_replica.claim_note(&step, CLAIM).await.unwrap(),
        Claim::HeldElsewhere
    );
    ledger.release_note(&step).await.unwrap();
    assert_eq!(
        other_replica.claim_note(&step, CLAIM).await.unwrap(),
        Claim::Claimed
    );
    other_replica.note_appended(&step).await.unwrap();
    assert_eq!(
        ledger.claim_note(&step, CLAIM).await.unwrap(),
        Claim::AlreadySent
    );
    // Notes' claims are not SMS entries.
    let entries = ledger
        .entries(&step.vendor, &step.dispatch_number)
        .await
        .unwrap();
    assert!(entries.is_empty(), "{entries:?}");
}
