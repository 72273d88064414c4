//! The safeguards store (SPEC §17) against a real `redis-server`: opt-outs, pauses, and the
//! daily cap, including two replicas reserving at once.

use std::sync::Arc;
use std::time::Duration;

use domain::chrono::{DateTime, TimeDelta, Utc};
use domain::ports::PortError;
use domain::safeguards::{Reservation, SafeguardMark, Safeguards};
use domain::{DispatchNumber, PhoneE164, VendorName};
use fred::prelude::{
    Builder, Client, ClientLike, Config, HashesInterface, KeysInterface, SortedSetsInterface,
};
use infra_redis::RedisConnection;
use test_support::servers::RedisServer;
use tokio::time::{Instant, sleep};

const ENV: &str = "test";

async fn connect(server: &RedisServer) -> RedisConnection {
    let connection = RedisConnection::connect(&server.url(), Duration::from_secs(2))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while connection.ping().await.is_err() {
        assert!(Instant::now() < deadline, "Redis did not become reachable");
        sleep(Duration::from_millis(50)).await;
    }
    connection
}

async fn raw_client(server: &RedisServer) -> Client {
    let client = Builder::from_config(Config::from_url(&server.url()).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

fn phone(text: &str) -> PhoneE164 {
    PhoneE164::parse_input(text).unwrap()
}

fn mark(by: &str, reason: &str) -> SafeguardMark {
    SafeguardMark {
        at: "2026-12-04T15:00:00Z".parse().unwrap(),
        by: by.to_owned(),
        reason: reason.to_owned(),
    }
}

fn now() -> DateTime<Utc> {
    "2026-12-04T15:00:00Z".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn opt_outs_are_one_hash_of_json_marks_without_expiry() {
    let server = RedisServer::new();
    let store = connect(&server).await.safeguards(ENV);
    let raw = raw_client(&server).await;
    let (a, b, c) = (
        phone("(212) 359-5129"),
        phone("202.772.3610"),
        phone("+1 646 555 0100"),
    );

    assert!(
        store
            .add_opt_out(&a, &mark("cli:ops", "replied STOP"))
            .await
            .unwrap()
    );
    assert!(!store.add_opt_out(&a, &mark("api", "again")).await.unwrap());
    assert!(store.add_opt_out(&b, &mark("api", "")).await.unwrap());

    let listed = store
        .opted_out(&[a.clone(), c.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(
        listed.into_iter().collect::<Vec<_>>(),
        [b.clone(), a.clone()]
    );
    assert!(
        store
            .opted_out(std::slice::from_ref(&c))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.opted_out(&[]).await.unwrap().is_empty());

    let stored: String = raw
        .hget("test-dispatch-monitor:opt-outs", "+12123595129")
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(value["by"], "cli:ops", "the first listing is kept");
    assert_eq!(value["reason"], "replied STOP");
    assert_eq!(value["at"], "2026-12-04T15:00:00Z");
    let ttl: i64 = raw.ttl("test-dispatch-monitor:opt-outs").await.unwrap();
    assert_eq!(ttl, -1, "no expiry");

    let list = store.opt_outs().await.unwrap();
    let phones: Vec<&str> = list.iter().map(|o| o.phone.as_str()).collect();
    assert_eq!(phones, ["+12027723610", "+12123595129"]);
    assert_eq!(list[1].mark, mark("cli:ops", "replied STOP"));

    assert!(store.remove_opt_out(&a).await.unwrap());
    assert!(!store.remove_opt_out(&a).await.unwrap());
    assert_eq!(
        store
            .opted_out(&[a.clone(), b.clone()])
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_opt_out_entry_is_an_error_and_listed_as_unreadable() {
    let server = RedisServer::new();
    let store = connect(&server).await.safeguards(ENV);
    let raw = raw_client(&server).await;
    let _: i64 = raw
        .hset(
            "test-dispatch-monitor:opt-outs",
            ("+12123595129", "not json"),
        )
        .await
        .unwrap();
    let number = phone("2123595129");
    // Never taken for "not listed": the rules hold the dispatch's texts and alert.
    let error = store
        .opted_out(std::slice::from_ref(&number))
        .await
        .unwrap_err();
    assert!(matches!(error, PortError::Malformed(_)), "{error}");
    assert!(error.to_string().contains("ending 5129"), "{error}");
    assert!(!error.to_string().contains("2123595129"), "{error}");
    // Other numbers are read as usual.
    assert!(
        store
            .opted_out(&[phone("2125550100")])
            .await
            .unwrap()
            .is_empty()
    );
    // The list shows it, so that it can be removed.
    let listed = store.opt_outs().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].phone, number);
    assert!(
        listed[0].mark.reason.starts_with("unreadable entry"),
        "{:?}",
        listed[0]
    );
    assert!(store.remove_opt_out(&number).await.unwrap());
    assert!(store.opted_out(&[number]).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_is_one_key_kept_thirty_days_and_resume_lifts_it() {
    let server = RedisServer::new();
    let store = connect(&server).await.safeguards(ENV);
    let raw = raw_client(&server).await;
    let vendor = VendorName::parse("LIT").unwrap();
    let number = DispatchNumber::parse("DIS37405").unwrap();

    assert_eq!(store.paused(&vendor, &number).await.unwrap(), None);
    assert!(
        store
            .pause(&vendor, &number, &mark("cli:ops", "customer asked"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .pause(&vendor, &number, &mark("api", "still"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.paused(&vendor, &number).await.unwrap(),
        Some(mark("api", "still"))
    );
    let key = "test-dispatch-monitor:paused:LIT:DIS37405";
    let ttl: i64 = raw.ttl(key).await.unwrap();
    assert!(
        (30 * 24 * 3600 - 60..=30 * 24 * 3600).contains(&ttl),
        "{ttl}"
    );

    assert_eq!(
        store.resume(&vendor, &number).await.unwrap(),
        Some(mark("api", "still"))
    );
    assert_eq!(store.resume(&vendor, &number).await.unwrap(), None);
    let exists: i64 = raw.exists(key).await.unwrap();
    assert_eq!(exists, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cap_counts_a_rolling_day_per_number() {
    let server = RedisServer::new();
    let store = connect(&server).await.safeguards(ENV);
    let raw = raw_client(&server).await;
    let number = phone("2123595129");
    let t0 = now();

    for i in 0..3 {
        let at = t0 + TimeDelta::minutes(i);
        let id = format!("text-{i}");
        assert_eq!(
            store.reserve(&number, &id, 3, at).await.unwrap(),
            Reservation::Reserved
        );
    }
    // The same text (a resend with its idempotency key) counts once.
    assert_eq!(
        store.reserve(&number, "text-1", 3, t0).await.unwrap(),
        Reservation::Reserved
    );
    let later = t0 + TimeDelta::hours(1);
    assert_eq!(
        store.reserve(&number, "text-3", 3, later).await.unwrap(),
        Reservation::Full { count: 3 }
    );
    assert_eq!(store.texts_in_window(&number, later).await.unwrap(), 3);

    // A refused text gives its slot back.
    store.release(&number, "text-2").await.unwrap();
    assert_eq!(
        store.reserve(&number, "text-3", 3, later).await.unwrap(),
        Reservation::Reserved
    );

    // 24 hours after the first text, it no longer counts.
    let next_day = t0 + TimeDelta::hours(24);
    assert_eq!(store.texts_in_window(&number, next_day).await.unwrap(), 2);
    assert_eq!(
        store.reserve(&number, "text-4", 3, next_day).await.unwrap(),
        Reservation::Reserved
    );

    let key = "test-dispatch-monitor:cap:12123595129";
    let members: i64 = raw.zcard(key).await.unwrap();
    assert_eq!(members, 3, "trimmed to the window");
    let ttl: i64 = raw.ttl(key).await.unwrap();
    assert!((1..=24 * 3600).contains(&ttl), "{ttl}");
    // Other numbers have their own count.
    assert_eq!(
        store
            .texts_in_window(&phone("2027723610"), next_day)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_reserving_at_once_never_exceed_the_cap() {
    let server = RedisServer::new();
    let replicas = [
        Arc::new(connect(&server).await.safeguards(ENV)),
        Arc::new(connect(&server).await.safeguards(ENV)),
    ];
    let number = phone("2123595129");
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = replicas[i % 2].clone();
        let number = number.clone();
        tasks.push(tokio::spawn(async move {
            store
                .reserve(&number, &format!("text-{i}"), 10, now())
                .await
                .unwrap()
        }));
    }
    let mut reserved = 0;
    for task in tasks {
        if task.await.unwrap() == Reservation::Reserved {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 10);
    let raw = raw_client(&server).await;
    let members: i64 = raw
        .zcard("test-dispatch-monitor:cap:12123595129")
        .await
        .unwrap();
    assert_eq!(members, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cap_alert_goes_once_per_number_per_day() {
    let server = RedisServer::new();
    let store = connect(&server).await.safeguards(ENV);
    let raw = raw_client(&server).await;
    let number = phone("2123595129");
    assert!(store.first_cap_alert(&number, now()).await.unwrap());
    assert!(!store.first_cap_alert(&number, now()).await.unwrap());
    assert!(
        store
            .first_cap_alert(&phone("2027723610"), now())
            .await
            .unwrap()
    );
    let ttl: i64 = raw
        .ttl("test-dispatch-monitor:cap-alerted:12123595129")
        .await
        .unwrap();
    assert!((24 * 3600 - 60..=24 * 3600).contains(&ttl), "{ttl}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dispatch_facts_are_read_together_and_fail_when_redis_is_down() {
    let mut server = RedisServer::new();
    let store = connect(&server).await.safeguards(ENV);
    let vendor = VendorName::parse("LIT").unwrap();
    let number = DispatchNumber::parse("DIS37405").unwrap();
    let (client, tech) = (phone("2123595129"), phone("2123595130"));
    store
        .add_opt_out(&tech, &mark("api", "STOP"))
        .await
        .unwrap();
    store
        .pause(&vendor, &number, &mark("api", "asked"))
        .await
        .unwrap();
    for i in 0..2 {
        store
            .reserve(&client, &format!("t{i}"), 2, now())
            .await
            .unwrap();
    }
    let phones = [client.clone(), tech.clone()];
    let cap = domain::safeguards::DailyCap(2);
    let facts = store
        .dispatch_facts(&vendor, &number, &phones, cap, now())
        .await
        .unwrap();
    assert_eq!(facts.opted_out.iter().collect::<Vec<_>>(), [&tech]);
    assert_eq!(facts.capped.iter().collect::<Vec<_>>(), [&client]);
    assert_eq!(facts.paused, Some(mark("api", "asked")));
    let off = domain::safeguards::DailyCap(0);
    let facts = store
        .dispatch_facts(&vendor, &number, &phones, off, now())
        .await
        .unwrap();
    assert!(facts.capped.is_empty(), "a cap of 0 is off");

    server.stop();
    let down = store
        .dispatch_facts(&vendor, &number, &phones, cap, now())
        .await;
    assert!(matches!(down, Err(PortError::Unavailable(_))), "{down:?}");
    let reserve = store.reserve(&client, "t9", 2, now()).await;
    assert!(
        matches!(reserve, Err(PortError::Unavailable(_))),
        "{reserve:?}"
    );
}
