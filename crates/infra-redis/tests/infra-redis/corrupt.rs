//! Garbage in the keys the ports read (issue 22), table-driven: each port reports it clearly
//! as an error (or leaves the unreadable record out, with a warning), never panics, never takes
//! garbage for "not sent yet", and works again once the key is fixed or has expired.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use domain::actions::{ActionKind, Recipient};
use domain::journal::{EntryKind, Journal, JournalEntry};
use domain::ports::{
    Claim, DispatchRegistry, LedgerKey, PortError, SmsLedger, SmsPurpose, VendorLease,
};
use domain::safeguards::{DailyCap, Safeguards};
use domain::{DispatchNumber, PhoneE164, VendorName};
use infra_redis::RedisConnection;
use serde_json::json;
use test_support::servers::RedisServer;
use test_support::wire::redis;

const ENV: &str = "test";
const CLAIM: Duration = Duration::from_secs(150);

fn key() -> LedgerKey {
    LedgerKey {
        vendor: VendorName::fixed("LIT"),
        dispatch_number: DispatchNumber::parse("DIS37405").unwrap(),
        purpose: SmsPurpose {
            kind: ActionKind::ConfirmedSms,
            to: Recipient::Client,
        },
        recipient: PhoneE164::parse_us("+1 212 359 5129").unwrap(),
        change: None,
    }
}

const LEDGER: &str = "test-dispatch-monitor:ledger:LIT:DIS37405";
const LEASE: &str = "test-dispatch-monitor:lease:LIT";
const REGISTRY: &str = "test-DIS37405";

/// What a port does with the corrupt key, as text: `ok: ...` or `error: ...`.
async fn claim(redis: &RedisConnection) -> String {
    match redis.ledger(ENV).claim(&key(), "the note", CLAIM).await {
        Ok(Claim::Claimed) => "ok: claimed".into(),
        Ok(other) => format!("ok: {other:?}"),
        Err(error) => format!("error: {error}"),
    }
}

async fn register(redis: &RedisConnection) -> String {
    let value = json!({"ticket_id": "3544800"});
    match redis.registry(ENV).register("DIS37405", &value).await {
        Ok(written) => format!("ok: written {written}"),
        Err(error) => format!("error: {error}"),
    }
}

async fn acquire(redis: &RedisConnection) -> String {
    let lease = redis.lease(ENV);
    match lease
        .try_acquire(&VendorName::fixed("LIT"), Duration::from_millis(300))
        .await
    {
        Ok(Some(_)) => "ok: taken".into(),
        Ok(None) => "ok: held".into(),
        Err(error) => format!("error: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_in_a_key_is_reported_and_fixing_the_key_recovers() {
    type Row = (
        &'static str,
        &'static [&'static [&'static str]],
        &'static str,
    );
    let field = key().entry_id();
    let rows: Vec<(Row, &str)> = vec![
        (
            (
                "ledger entry not JSON",
                &[&["HSET", LEDGER, "FIELD", "}garbage{"]],
                "cannot be read",
            ),
            "claim",
        ),
        (
            (
                "ledger entry in no known state",
                &[&["HSET", LEDGER, "FIELD", r#"{"state":"gone"}"#]],
                "cannot be read",
            ),
            "claim",
        ),
        (
            (
                "ledger claim without expiry",
                &[&[
                    "HSET",
                    LEDGER,
                    "FIELD",
                    r#"{"state":"claimed","holder":"x"}"#,
                ]],
                "cannot be read",
            ),
            "claim",
        ),
        (
            (
                "ledger not a hash",
                &[&["SET", LEDGER, "garbage"]],
                "WRONGTYPE",
            ),
            "claim",
        ),
        (
            (
                "registry value not JSON",
                &[&["SET", REGISTRY, "garbage"]],
                "holds \"garbage\"",
            ),
            "register",
        ),
        (
            (
                "registry JSON but no object",
                &[&["SET", REGISTRY, "[1,2]"]],
                "not a dispatch's JSON",
            ),
            "register",
        ),
        (
            (
                "registry not a string",
                &[&["RPUSH", REGISTRY, "garbage"]],
                "WRONGTYPE",
            ),
            "register",
        ),
        (
            (
                "lease without expiry",
                &[&["SET", LEASE, "garbage"]],
                "without an expiry",
            ),
            "acquire",
        ),
        (
            (
                "lease not a string",
                &[&["HSET", LEASE, "a", "b"]],
                "without an expiry",
            ),
            "acquire",
        ),
        // The safeguards' keys have their own table below.
    ];
    let server = RedisServer::new();
    let url = server.url();
    let connection = crate::ha::connect(&url).await;
    for ((name, commands, expected), port) in rows {
        for command in commands {
            let command: Vec<&str> = command
                .iter()
                .map(|arg| if *arg == "FIELD" { field.as_str() } else { arg })
                .collect();
            redis(&url, &command).await;
        }
        let run = async || match port {
            "claim" => claim(&connection).await,
            "register" => register(&connection).await,
            _ => acquire(&connection).await,
        };
        let outcome = run().await;
        assert!(
            outcome.starts_with("error: ") && outcome.contains(expected),
            "{name}: {outcome}"
        );
        // Still an error (never taken for "free") on the next try, unless it expires.
        if port != "acquire" {
            let again = run().await;
            assert!(
                again.starts_with("error: "),
                "{name} the second time: {again}"
            );
            for key in [LEDGER, REGISTRY] {
                redis(&url, &["DEL", key]).await;
            }
        } else {
            // A lease key without expiry is given one: it lapses by itself.
            let pttl: i64 = redis(&url, &["PTTL", LEASE]).await.parse().unwrap();
            assert!((1..=300).contains(&pttl), "{name}: pttl {pttl}");
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let fixed = run().await;
        assert!(fixed.starts_with("ok: "), "{name} once fixed: {fixed}");
        for key in [LEDGER, REGISTRY, LEASE] {
            redis(&url, &["DEL", key]).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sent_entry_stays_sent_and_unreadable_entries_are_left_out_of_the_ledger() {
    let server = RedisServer::new();
    let url = server.url();
    let ledger = crate::ha::connect(&url).await.ledger(ENV);
    ledger.claim(&key(), "the note", CLAIM).await.unwrap();
    ledger.mark_sent(&key()).await.unwrap();
    redis(&url, &["HSET", LEDGER, "sms:other", "garbage"]).await;
    let entries = ledger
        .entries(&VendorName::fixed("LIT"), &key().dispatch_number)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        ledger.claim(&key(), "the note", CLAIM).await,
        Ok(Claim::AlreadySent)
    );
    // Marking an entry that became garbage rewrites it whole.
    redis(&url, &["HSET", LEDGER, &key().entry_id(), "garbage"]).await;
    ledger.mark_sent(&key()).await.unwrap();
    assert_eq!(
        ledger.claim(&key(), "the note", CLAIM).await,
        Ok(Claim::AlreadySent)
    );
    assert!(!matches!(
        ledger.release(&key()).await,
        Err(PortError::Malformed(_))
    ));
}

fn skipped(second: i64) -> JournalEntry {
    JournalEntry {
        at: Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap(),
        kind: EntryKind::Skipped,
        action: None,
        outcome: "skipped".into(),
        to: None,
        text: None,
        detail: Some("skipped".into()),
        replica: "a".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_in_the_journal_is_left_out_and_writes_go_on() {
    let server = RedisServer::new();
    let url = server.url();
    let journal = crate::ha::connect(&url).await.journal(ENV);
    let list = "test-dispatch-monitor:journal:LIT:DIS37405";
    redis(&url, &["RPUSH", list, "}garbage{"]).await;
    redis(
        &url,
        &["RPUSH", "test-dispatch-monitor:cycles:LIT", "garbage"],
    )
    .await;
    let lit = VendorName::fixed("LIT");
    journal
        .record_entries(&lit, "DIS37405", vec![skipped(1)])
        .await
        .unwrap();
    journal.flush(Duration::from_secs(10)).await;

    let history = journal.dispatch(&lit, "DIS37405").await.unwrap().unwrap();
    assert_eq!(history.entries, vec![skipped(1)]);
    assert_eq!(redis(&url, &["LLEN", list]).await, "2");
    assert_eq!(journal.cycles(&lit, 10).await.unwrap(), vec![]);
}

const OPT_OUTS: &str = "test-dispatch-monitor:opt-outs";
const PAUSE: &str = "test-dispatch-monitor:paused:LIT:DIS37405";

/// What the rules learn about the dispatch of [`key`], as text: `ok: ...` or `error: ...`.
async fn facts(redis: &RedisConnection) -> String {
    let key = key();
    let store = redis.safeguards(ENV);
    let phones = [key.recipient.clone()];
    let read = store.dispatch_facts(
        &key.vendor,
        &key.dispatch_number,
        &phones,
        DailyCap::default(),
        Utc::now(),
    );
    match read.await {
        Ok(facts) => format!(
            "ok: {} opted out, paused {}",
            facts.opted_out.len(),
            facts.paused.is_some()
        ),
        Err(error) => format!("error: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_in_the_safeguards_is_an_error_until_the_key_is_fixed() {
    // Each row: what is written, what the error must say, and how it is fixed. An error makes
    // the rules hold every text of the dispatch and alert (SPEC §17.5): never "not listed".
    let rows: &[(&str, &[&str], &str, &[&str])] = &[
        (
            "opt-out entry not JSON",
            &["HSET", OPT_OUTS, "+12123595129", "}garbage{"],
            "the opt-out entry of the number ending 5129",
            &["HDEL", OPT_OUTS, "+12123595129"],
        ),
        (
            "opt-out entry JSON of another shape",
            &["HSET", OPT_OUTS, "+12123595129", "[1]"],
            "cannot be read",
            &[
                "HSET",
                OPT_OUTS,
                "+12123595129",
                r#"{"at":"2026-12-04T15:00:00Z","by":"cli:ops","reason":"fixed"}"#,
            ],
        ),
        (
            "opt-outs not a hash",
            &["SET", OPT_OUTS, "garbage"],
            "WRONGTYPE",
            &["DEL", OPT_OUTS],
        ),
        (
            "pause not JSON",
            &["SET", PAUSE, "garbage"],
            "the pause key test-dispatch-monitor:paused:LIT:DIS37405 cannot be read",
            &["DEL", PAUSE],
        ),
        (
            "pause not a string",
            &["HSET", PAUSE, "a", "b"],
            "WRONGTYPE",
            &["DEL", PAUSE],
        ),
    ];
    let server = RedisServer::new();
    let url = server.url();
    let connection = crate::ha::connect(&url).await;
    assert_eq!(facts(&connection).await, "ok: 0 opted out, paused false");
    for (name, corrupt, expected, fix) in rows {
        redis(&url, corrupt).await;
        for attempt in ["first", "second"] {
            let outcome = facts(&connection).await;
            assert!(
                outcome.starts_with("error: ") && outcome.contains(expected),
                "{name}, {attempt} read: {outcome}"
            );
            assert!(!outcome.contains("2123595129"), "{name}: {outcome}");
        }
        redis(&url, fix).await;
        let fixed = facts(&connection).await;
        assert!(fixed.starts_with("ok: "), "{name} once fixed: {fixed}");
        for key in [OPT_OUTS, PAUSE] {
            redis(&url, &["DEL", key]).await;
        }
    }
    // A pause key that lapses by itself lifts the error with it.
    redis(&url, &["SET", PAUSE, "garbage", "PX", "300"]).await;
    assert!(facts(&connection).await.starts_with("error: "));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(facts(&connection).await, "ok: 0 opted out, paused false");
}
