//! Tech changes end to end (SPEC §18.1): a tech who comes back twice is announced and noted
//! every time, over real `nats-server` and `redis-server`, and a settled dispatch adds nothing
//! to its journal cycle after cycle.

use chrono::{Duration as Span, Utc};
use dispatch_monitor::app;
use dispatch_monitor::service::LeasedCycle;
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::wiring;
use domain::{DispatchSpec, Status, VendorName};
use e2e::bridge_sim::scenario::local_time;
use e2e::redis;
use test_support::servers::{NatsServer, RedisServer};

fn settings(nats: &NatsServer, redis: &RedisServer) -> Settings {
    let raw = RawSettings::from_pairs([
        ("NATS_SERVER1", nats.url().as_str()),
        ("REDIS_URL", redis.url().as_str()),
        ("ENVIRONMENT_NAME", "techs"),
        ("MONITOR_REQUEST_TIMEOUT_SECS", "5"),
        ("MONITOR_CTS_ENABLED", "false"),
        ("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1"),
        ("DISPATCH_MONITOR_SERVER_PORT", "0"),
    ]);
    Settings::from_raw(&raw, &wiring::vendor_names()).unwrap()
}

async fn run_once(settings: &Settings) {
    let outcomes = app::once(settings, &[VendorName::fixed("LIT")])
        .await
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, LeasedCycle::Ran(Ok(_)))),
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tech_who_comes_back_twice_is_announced_every_time_over_the_wire() {
    let nats = NatsServer::new();
    let redis_server = RedisServer::new();
    let sim = e2e::start(&nats.url(), wiring::vendor_adapters()).await;
    let settings = settings(&nats, &redis_server);
    let lit = VendorName::fixed("LIT");
    let appointment = local_time(Utc::now(), Span::hours(40), "Pacific").unwrap();
    sim.upsert(
        &lit,
        DispatchSpec {
            status: Status::Confirmed,
            appointment: Some((appointment, "Pacific".to_owned())),
            tech_name: Some("Joe Malone".to_owned()),
            tech_phone: Some("+1 212 555 0102".to_owned()),
            client_phone: Some("+1 212 555 0101".to_owned()),
            site: Some("Red Rose Inn".to_owned()),
            street: Some("160 Broadway".to_owned()),
            ..DispatchSpec::new("DIS60001", "6000001")
        },
    );
    sim.book("6000001", "DIS60001");
    run_once(&settings).await;
    for tech in ["Hulk Hogan", "Joe Malone", "Hulk Hogan"] {
        assert!(sim.update(&lit, "DIS60001", |d| d.tech_name = Some(tech.into())));
        run_once(&settings).await;
    }
    let outbox = sim.outbox();
    let changes: Vec<&str> = outbox
        .notes_on("6000001")
        .into_iter()
        .filter(|note| note.contains("The Field Engineer assigned to this dispatch has changed"))
        .collect();
    assert_eq!(changes.len(), 3, "{changes:#?}");
    let keys: Vec<&str> = outbox
        .sms
        .iter()
        .filter_map(|sms| sms.idempotency_key.as_deref())
        .filter(|key| key.contains(":tech-changed"))
        .collect();
    assert_eq!(
        keys,
        [
            "techs:LIT:DIS60001:tech-changed:12125550101:joe malone->hulk hogan #1",
            "techs:LIT:DIS60001:tech-changed-tech:12125550102:joe malone->hulk hogan #1",
            "techs:LIT:DIS60001:tech-changed:12125550101:hulk hogan->joe malone #2",
            "techs:LIT:DIS60001:tech-changed-tech:12125550102:hulk hogan->joe malone #2",
            "techs:LIT:DIS60001:tech-changed:12125550101:joe malone->hulk hogan #3",
            "techs:LIT:DIS60001:tech-changed-tech:12125550102:joe malone->hulk hogan #3",
        ]
    );

    // Settled: later cycles send, note and journal nothing more.
    let journal = "techs-dispatch-monitor:journal:LIT:DIS60001";
    let entries = redis(&redis_server.url(), &["LLEN", journal]).await;
    assert_ne!(entries, "0", "the dispatch is journaled");
    let (sms, notes) = (outbox.sms.len(), outbox.notes.len());
    for _ in 0..2 {
        run_once(&settings).await;
    }
    let outbox = sim.outbox();
    assert_eq!((outbox.sms.len(), outbox.notes.len()), (sms, notes));
    assert_eq!(
        redis(&redis_server.url(), &["LLEN", journal]).await,
        entries
    );
    drop(nats);
}
