//! The monitor end to end: real `nats-server` and `redis-server` on free loopback ports,
//! simulated bridges on NATS, the production wiring in between.

use std::time::{Duration, Instant};

use dispatch_monitor::app::{self, App};
use dispatch_monitor::service::{self, LeasedCycle};
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::{plan, wiring};
use domain::VendorName;
use e2e::bridge_sim::{Fault, Sim, subjects};
use e2e::{http_get, redis};
use serde_json::Value;
use test_support::servers::{NatsServer, RedisServer};

fn settings(nats: &NatsServer, redis: &RedisServer) -> Settings {
    let raw = RawSettings::from_pairs([
        ("NATS_SERVER1", nats.url().as_str()),
        ("REDIS_URL", redis.url().as_str()),
        ("ENVIRONMENT_NAME", "e2e"),
        ("MONITOR_REQUEST_TIMEOUT_SECS", "5"),
        ("MONITOR_LEASE_TTL_SECS", "10"),
        ("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1"),
        ("DISPATCH_MONITOR_SERVER_PORT", "0"),
    ]);
    Settings::from_raw(&raw, &wiring::vendor_names()).unwrap()
}

fn vendors() -> Vec<VendorName> {
    wiring::vendor_names()
}

struct World {
    nats: NatsServer,
    redis: RedisServer,
    sim: Sim,
    settings: Settings,
}

async fn world() -> World {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::spec_world(&nats.url(), wiring::vendor_adapters()).await;
    let settings = settings(&nats, &redis);
    World {
        nats,
        redis,
        sim,
        settings,
    }
}

/// One `once` run over fresh connections, as the binary's `once` does it.
async fn run_once(settings: &Settings) -> Vec<LeasedCycle> {
    app::once(settings, &vendors()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_acts_on_our_dispatches_exactly_once_over_the_wire() {
    let w = world().await;
    let outcomes = run_once(&w.settings).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, LeasedCycle::Ran(Ok(_)))),
        "{outcomes:?}"
    );

    {
        let outbox = w.sim.outbox();
        // LIT DIS37405: client confirmation, field engineer, tech confirmation; DIS37406 on
        // site. CTS S-12345: client and tech confirmations; S-12346 on site.
        assert_eq!(outbox.sms.len(), 7, "{:#?}", outbox.sms);
        assert_eq!(
            outbox.sms_recipients(),
            [
                "12027723610",
                "12027723610",
                "12123595129",
                "12123595129",
                "12123595129",
                "12123595130",
                "12123595131",
            ]
        );
        // Notes: LIT 4 + 1 + 1, CTS 3 + 1 + 1.
        assert_eq!(outbox.notes.len(), 11, "{:#?}", outbox.notes);
        for note in &outbox.notes {
            assert_eq!(note.is_private, Some(false));
            assert!(note.ticket.bytes().all(|b| b.is_ascii_digit()));
        }
        // Each dispatch's ticket was read once in the cycle, even DIS37405 listed twice.
        assert_eq!(w.sim.details_requests("3544800"), 1);
        assert_eq!(w.sim.details_requests("4694961"), 1);
        // Envelopes carry unique request ids and a body.
        let requests = w.sim.requests();
        let ids: std::collections::BTreeSet<&str> = requests
            .iter()
            .filter_map(|(_, e)| e["request_id"].as_str())
            .collect();
        assert_eq!(ids.len(), requests.len());
        let (_, sms_envelope) = requests.iter().find(|(s, _)| s == subjects::SMS).unwrap();
        assert!(
            sms_envelope["body"]["sms_data"]
                .as_str()
                .unwrap()
                .starts_with("This is an automated message from MetTel.")
        );
        // Slack lines use their own shape: `message`, not `body`.
        let slack: Vec<&Value> = requests
            .iter()
            .filter(|(s, _)| s == subjects::SLACK)
            .map(|(_, e)| e)
            .collect();
        assert!(!slack.is_empty());
        assert!(slack.iter().all(|s| {
            s.get("body").is_none()
                && s["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("[dispatch-monitor] [")
        }));
    }

    // The registry keys other services read.
    assert_eq!(
        redis(&w.redis.url(), &["GET", "e2e-DIS37405"]).await,
        r#"{"ticket_id":"3544800"}"#
    );
    let cts: Value =
        serde_json::from_str(&redis(&w.redis.url(), &["GET", "e2e-S-12345"]).await).unwrap();
    assert_eq!(
        cts,
        serde_json::json!({"ticket_id": "4694961", "igz_dispatch_number": "IGZ_0001"})
    );
    let ttl: i64 = redis(&w.redis.url(), &["TTL", "e2e-DIS37405"])
        .await
        .parse()
        .unwrap();
    assert!((259_000..=259_200).contains(&ttl), "ttl {ttl}");
    assert_eq!(
        redis(&w.redis.url(), &["EXISTS", "e2e-DIS37409"]).await,
        "0",
        "not ours"
    );
    assert_eq!(
        redis(&w.redis.url(), &["EXISTS", "e2e-S-12348"]).await,
        "0",
        "no IGZ number"
    );

    // A second run finds every note in place: nothing more is sent or written.
    let outcomes = run_once(&w.settings).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, LeasedCycle::Ran(Ok(_))))
    );
    let outbox = w.sim.outbox();
    assert_eq!(outbox.sms.len(), 7);
    assert_eq!(outbox.notes.len(), 11);
    drop(w.nats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_the_actions_and_changes_nothing() {
    let w = world().await;
    let (reports, failed) = app::plan(&w.settings, &vendors()).await.unwrap();
    assert!(!failed);
    let rows = plan::rows(&reports);
    assert_eq!(rows.iter().filter(|r| r.channel == "sms").count(), 7);
    assert_eq!(rows.iter().filter(|r| r.channel == "note").count(), 11);
    let text = plan::render_text(&reports);
    assert!(text.contains("SMS to +12123595129"), "{text}");
    assert!(text.contains("Dispatch Management - Dispatch Confirmed"));

    {
        let outbox = w.sim.outbox();
        assert!(outbox.sms.is_empty(), "plan sent an SMS");
        assert!(outbox.notes.is_empty(), "plan appended a note");
        assert!(outbox.slack.is_empty(), "plan posted to Slack");
    }
    assert_eq!(
        redis(&w.redis.url(), &["DBSIZE"]).await,
        "0",
        "plan wrote to Redis"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_send_the_same_text_twice() {
    let w = world().await;
    let (a, b) = tokio::join!(run_once(&w.settings), run_once(&w.settings));
    let ran = a
        .iter()
        .chain(b.iter())
        .filter(|o| matches!(o, LeasedCycle::Ran(Ok(_))))
        .count();
    assert!(ran >= 2, "each vendor ran at least once: {a:?} {b:?}");
    let outbox = w.sim.outbox();
    assert_eq!(outbox.sms.len(), 7, "{:#?}", outbox.sms);
    let mut texts: Vec<(String, String)> = outbox
        .sms
        .iter()
        .map(|s| (s.to.clone(), s.text.clone()))
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sms_is_retried_next_cycle_and_sent_once() {
    let w = world().await;
    w.sim.add_fault(&Fault {
        subject: subjects::SMS.into(),
        fail: 1_000,
        ..Fault::default()
    });
    let outcomes = run_once(&w.settings).await;
    // Per-dispatch failures do not fail the cycle (SPEC §12.1).
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, LeasedCycle::Ran(Ok(_))))
    );
    {
        let outbox = w.sim.outbox();
        assert!(outbox.sms.is_empty());
        assert!(outbox.slack.iter().any(|line| line.contains("failed")));
        // No note records an SMS that did not go out.
        assert!(outbox.notes.iter().all(|n| !n.text.contains("SMS sent to")));
    }
    w.sim.clear_faults();
    run_once(&w.settings).await;
    run_once(&w.settings).await;
    let outbox = w.sim.outbox();
    assert_eq!(outbox.sms.len(), 7);
    assert_eq!(outbox.notes.len(), 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cycles_fail_fast_while_nats_is_down_and_recover_without_a_restart() {
    let mut w = world().await;
    let infra = wiring::connect(&w.settings).await.unwrap();
    assert!(
        infra
            .nats
            .wait_until_connected(Duration::from_secs(10))
            .await
    );
    let engine = wiring::build_engine(&w.settings, infra.ports.clone()).unwrap();
    let ttl = w.settings.lease_ttl.0;

    w.nats.stop();
    let started = Instant::now();
    let outcomes = service::run_once(&engine, infra.lease.as_ref(), ttl, &vendors()).await;
    assert!(outcomes.iter().all(LeasedCycle::failed), "{outcomes:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fails fast, not after timeouts"
    );

    w.nats.start();
    assert!(
        infra
            .nats
            .wait_until_connected(Duration::from_secs(15))
            .await
    );
    // The simulator's own client reconnects and resubscribes too; allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let outcomes = service::run_once(&engine, infra.lease.as_ref(), ttl, &vendors()).await;
        if outcomes
            .iter()
            .all(|o| matches!(o, LeasedCycle::Ran(Ok(_))))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {outcomes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(w.sim.outbox().sms.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_503_while_redis_is_down_and_back_to_200() {
    let mut w = world().await;
    let app = App::build(w.settings.clone()).await.unwrap().spawn();
    let port = app.port;

    let wait_for = |expected: u16| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = http_get(port, "/_health").await;
            if status == expected {
                return body;
            }
            assert!(Instant::now() < deadline, "health stayed {status}: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let body = wait_for(200).await;
    assert_eq!(body, r#"{"nats":"up","redis":"up"}"#);

    w.redis.stop();
    let body = wait_for(503).await;
    assert_eq!(body, r#"{"nats":"up","redis":"down"}"#);

    w.redis.start();
    wait_for(200).await;

    let (status, metrics) = http_get(port, "/metrics").await;
    assert_eq!(status, 200);
    let _ = metrics;
    app.stop().await.unwrap();
    drop(w.sim);
}
