//! Customer-text safeguards (SPEC §17) end to end: the production wiring against real
//! `nats-server` and `redis-server`. An opted-out client and a paused dispatch get no text
//! (`plan` shows why), and when Redis dies in the middle of a cycle no text goes out until it
//! is back.

use std::time::{Duration, Instant};

use chrono::{Duration as Span, Utc};
use dispatch_monitor::app;
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::{plan, wiring};
use domain::journal::Journal;
use domain::pausing;
use domain::safeguards::{SafeguardMark, Safeguards};
use domain::{DispatchNumber, DispatchSpec, PhoneE164, Status, VendorName};
use e2e::bridge_sim::scenario::local_time;
use e2e::bridge_sim::{Fault, Sim, subjects};
use infra_redis::RedisConnection;
use test_support::servers::{NatsServer, RedisServer};

const ENV: &str = "safe";

fn settings(nats: &NatsServer, redis: &RedisServer) -> Settings {
    let raw = RawSettings::from_pairs([
        ("NATS_SERVER1", nats.url().as_str()),
        ("REDIS_URL", redis.url().as_str()),
        ("ENVIRONMENT_NAME", ENV),
        ("MONITOR_REQUEST_TIMEOUT_SECS", "5"),
        ("MONITOR_CTS_ENABLED", "false"),
    ]);
    Settings::from_raw(&raw, &wiring::vendor_names()).unwrap()
}

/// A just-confirmed LIT dispatch, 30 hours away at a Pacific site, booked by the portal.
fn book(sim: &Sim, number: &str, ticket: &str, client: &str, tech: &str) {
    let appointment = local_time(Utc::now(), Span::hours(30), "Pacific").unwrap();
    let spec = DispatchSpec {
        status: Status::Confirmed,
        appointment: Some((appointment, "Pacific".to_owned())),
        tech_name: Some("Joe Malone".to_owned()),
        tech_phone: Some(tech.to_owned()),
        client_phone: Some(client.to_owned()),
        site: Some("Red Rose Inn".to_owned()),
        street: Some("160 Broadway".to_owned()),
        ..DispatchSpec::new(number, ticket)
    };
    sim.upsert(&VendorName::fixed("LIT"), spec);
    sim.book(ticket, number);
}

fn mark(reason: &str) -> SafeguardMark {
    SafeguardMark {
        at: Utc::now(),
        by: "test".into(),
        reason: reason.into(),
    }
}

fn texts_to(sim: &Sim, digits: &str) -> usize {
    sim.outbox()
        .sms
        .iter()
        .filter(|sms| sms.to == digits)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_out_client_and_a_paused_dispatch_get_no_text() {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::start(&nats.url(), wiring::vendor_adapters()).await;
    book(
        &sim,
        "DIS60001",
        "6000001",
        "(212) 555-0111",
        "212 555 0112",
    );
    book(&sim, "DIS60002", "6000002", "212.555.0121", "212/555/0122");
    let lit = VendorName::fixed("LIT");

    let connection = RedisConnection::connect(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    let store = connection.safeguards(ENV);
    let journal = connection.journal(ENV);
    let opted = PhoneE164::parse_input("+1 212 555 0111").unwrap();
    assert!(store.add_opt_out(&opted, &mark("STOP")).await.unwrap());
    let number = DispatchNumber::parse("DIS60002").unwrap();
    let pause = mark("customer asked");
    let paused = pausing::pause_dispatch(&store, &journal, &lit, &number, &pause, "test");
    assert!(paused.await.unwrap());
    journal.flush(Duration::from_secs(5)).await;

    let settings = settings(&nats, &redis);
    let (reports, _) = app::plan(&settings, std::slice::from_ref(&lit))
        .await
        .unwrap();
    let rows = plan::rows(&reports);
    let channel_of = |number: &str, to: &str| -> Vec<String> {
        rows.iter()
            .filter(|r| r.dispatch_number == number && r.recipient == to)
            .map(|r| r.channel.clone())
            .collect()
    };
    assert_eq!(
        channel_of("DIS60001", "+12125550111"),
        ["withheld (opted out)", "withheld (opted out)"],
        "the confirmation and the field-engineer text"
    );
    assert_eq!(channel_of("DIS60001", "+12125550112"), ["sms"]);
    assert_eq!(
        channel_of("DIS60002", "+12125550122"),
        ["withheld (paused)"]
    );

    for _ in 0..2 {
        app::once(&settings, std::slice::from_ref(&lit))
            .await
            .unwrap();
    }
    assert_eq!(texts_to(&sim, "12125550111"), 0);
    assert_eq!(texts_to(&sim, "12125550112"), 1, "the tech still hears");
    assert_eq!(
        texts_to(&sim, "12125550121") + texts_to(&sim, "12125550122"),
        0
    );
    let withheld: Vec<String> = sim
        .ticket_notes("6000001")
        .into_iter()
        .filter(|n| n.contains("Dispatch SMS withheld from +12125550111"))
        .collect();
    assert_eq!(withheld.len(), 1, "{withheld:?}");
    let paused_notes = sim.ticket_notes("6000002");
    assert!(
        paused_notes
            .iter()
            .any(|n| n.contains("Dispatch Management - Dispatch Confirmed")),
        "{paused_notes:?}"
    );
    let history = journal.dispatch(&lit, "DIS60002").await.unwrap().unwrap();
    assert_eq!(
        history.snapshot.unwrap().paused.unwrap().reason,
        "customer asked"
    );
    assert!(history.entries.iter().any(|e| e.outcome == "paused"));

    // Resumed and listed no more: the texts still due go out.
    store.remove_opt_out(&opted).await.unwrap();
    pausing::resume_dispatch(&store, &journal, &lit, &number, "test", Utc::now(), "t")
        .await
        .unwrap();
    app::once(&settings, std::slice::from_ref(&lit))
        .await
        .unwrap();
    assert_eq!(texts_to(&sim, "12125550111"), 2);
    assert_eq!(texts_to(&sim, "12125550121"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_dying_mid_cycle_sends_no_text_until_it_is_back() {
    let nats = NatsServer::new();
    let mut redis = RedisServer::new();
    let sim = e2e::start(&nats.url(), wiring::vendor_adapters()).await;
    book(&sim, "DIS61001", "6100001", "212 555 0131", "212 555 0132");
    let lit = VendorName::fixed("LIT");
    let settings = settings(&nats, &redis);
    // The Confirmed note's reply is slow: Redis dies while it is awaited.
    sim.add_fault(&Fault {
        subject: subjects::NOTE_APPEND.to_owned(),
        latency_ms: Some(1500),
        ..Fault::default()
    });
    let cycle = {
        let settings = settings.clone();
        let lit = lit.clone();
        tokio::spawn(async move { app::once(&settings, &[lit]).await })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sim
        .ticket_notes("6100001")
        .iter()
        .any(|n| n.contains("Dispatch Management - Dispatch Confirmed"))
    {
        assert!(
            Instant::now() < deadline,
            "the cycle never appended its first note"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.stop();
    let _ = tokio::time::timeout(Duration::from_secs(60), cycle)
        .await
        .expect("the cycle ends");
    assert_eq!(sim.outbox().sms.len(), 0, "{:?}", sim.outbox().sms);
    let slack = sim.outbox().slack;
    assert!(
        slack
            .iter()
            .any(|line| line.contains("DIS61001") && line.contains("cannot be read")),
        "{slack:?}"
    );

    // Back (empty): the next cycle sends what is due, once.
    redis.start();
    sim.clear_faults();
    app::once(&settings, &[lit]).await.unwrap();
    assert_eq!(texts_to(&sim, "12125550131"), 2);
    assert_eq!(texts_to(&sim, "12125550132"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_at_shows_what_goes_out_at_another_instant() {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::start(&nats.url(), wiring::vendor_adapters()).await;
    book(&sim, "DIS62001", "6200001", "212 555 0141", "212 555 0142");
    for recorded in [
        "Dispatch Management - Dispatch Confirmed\nDispatch scheduled for tomorrow",
        "Dispatch confirmation SMS sent to +12125550141",
        "Dispatch Management - Field Engineer Confirmed\n\nField Engineer\nJoe Malone\n+1 212 555 0142",
        "Dispatch confirmation SMS tech sent to +12125550142",
    ] {
        sim.seed_note("6200001", &format!("#*MetTel's IPA*# DIS62001\n{recorded}"));
    }
    let settings = settings(&nats, &redis);
    let lit = [VendorName::fixed("LIT")];
    let actions = |reports: &[domain::CycleReport]| -> Vec<String> {
        plan::rows(reports)
            .into_iter()
            .filter(|row| row.channel == "sms")
            .map(|row| row.action)
            .collect()
    };
    let (now, _) = app::plan_at(&settings, &lit, None).await.unwrap();
    assert!(actions(&now).is_empty(), "{:?}", actions(&now));
    // The appointment is 30 h away: in 18.5 h it is 11.5 h away, the 12h reminders' window.
    let at = plan::parse_at("+1110m", Utc::now()).unwrap();
    let (later, _) = app::plan_at(&settings, &lit, Some(at)).await.unwrap();
    assert_eq!(
        actions(&later),
        [
            "12h reminder SMS to the client",
            "12h reminder SMS to the tech"
        ]
    );
    assert!(
        sim.outbox().sms.is_empty() && sim.outbox().notes.is_empty(),
        "read-only"
    );
}
