//! Quiet hours (SPEC §15) end to end: the monitor's production wiring against real
//! `nats-server` and `redis-server`, with a quiet window placed around the site's current time
//! so the test does not depend on when it runs.

use std::time::{Duration, Instant};

use chrono::{Duration as Span, Utc};
use chrono_tz::America::Los_Angeles;
use dispatch_monitor::app::{self, App};
use dispatch_monitor::service::LeasedCycle;
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::{plan, wiring};
use domain::{DispatchSpec, Status, VendorName};
use e2e::bridge_sim::Sim;
use e2e::bridge_sim::scenario::local_time;
use e2e::http_get;
use test_support::servers::{NatsServer, RedisServer};

const CLIENT: &str = "+1 212 555 0101";
const TECH: &str = "+1 212 555 0102";
const ON_SITE_CLIENT: &str = "+1 212 555 0103";

/// A window of `from`..`to` hours around the current time at a Pacific site, as `HH:MM-HH:MM`.
fn window_around_now(from: i64, to: i64) -> String {
    let now = Utc::now().with_timezone(&Los_Angeles);
    let at = |hours: i64| (now + Span::hours(hours)).format("%H:%M").to_string();
    format!("{}-{}", at(from), at(to))
}

/// The settings of a monitor running LIT only (every other wired vendor disabled).
fn settings(nats: &NatsServer, redis: &RedisServer, quiet_hours: &str) -> Settings {
    let mut pairs = vec![
        ("NATS_SERVER1".to_owned(), nats.url()),
        ("REDIS_URL".to_owned(), redis.url()),
        ("ENVIRONMENT_NAME".to_owned(), "quiet".to_owned()),
        ("MONITOR_REQUEST_TIMEOUT_SECS".to_owned(), "5".to_owned()),
        ("MONITOR_QUIET_HOURS".to_owned(), quiet_hours.to_owned()),
        (
            "DISPATCH_MONITOR_SERVER_ADDRESS".to_owned(),
            "127.0.0.1".to_owned(),
        ),
        ("DISPATCH_MONITOR_SERVER_PORT".to_owned(), "0".to_owned()),
    ];
    for name in wiring::vendor_names() {
        let enabled = (name.as_str() == "LIT").to_string();
        pairs.push((format!("MONITOR_{name}_ENABLED"), enabled));
    }
    let raw = RawSettings::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Settings::from_raw(&raw, &wiring::vendor_names()).unwrap()
}

/// A confirmed LIT dispatch with a tech, its appointment `after` from now at a Pacific site.
fn confirmed(number: &str, ticket: &str, after: Span, client: &str) -> DispatchSpec {
    let appointment = local_time(Utc::now(), after, "Pacific").unwrap();
    DispatchSpec {
        status: Status::Confirmed,
        appointment: Some((appointment, "Pacific".to_owned())),
        tech_name: Some("Joe Malone".to_owned()),
        tech_phone: Some(TECH.to_owned()),
        client_phone: Some(client.to_owned()),
        site: Some("Red Rose Inn".to_owned()),
        street: Some("160 Broadway".to_owned()),
        ..DispatchSpec::new(number, ticket)
    }
}

/// DIS50001: confirmed and recorded, its 12h reminder due. DIS50002: just confirmed.
/// DIS50003: the tech is on site.
fn load_world(sim: &Sim) {
    let lit = VendorName::fixed("LIT");
    sim.upsert(
        &lit,
        confirmed("DIS50001", "5000001", Span::minutes(11 * 60 + 30), CLIENT),
    );
    sim.book("5000001", "DIS50001");
    for recorded in [
        "Dispatch Management - Dispatch Confirmed\nDispatch scheduled for today",
        "Dispatch confirmation SMS sent to +12125550101",
        "Dispatch Management - Field Engineer Confirmed\n\nField Engineer\nJoe Malone\n+1 212 555 0102",
        "Dispatch confirmation SMS tech sent to +12125550102",
    ] {
        sim.seed_note("5000001", &format!("#*MetTel's IPA*# DIS50001\n{recorded}"));
    }
    sim.upsert(
        &lit,
        confirmed("DIS50002", "5000002", Span::hours(30), CLIENT),
    );
    sim.book("5000002", "DIS50002");
    let on_site = DispatchSpec {
        status: Status::TechOnSite,
        tech_on_site: true,
        ..confirmed("DIS50003", "5000003", Span::minutes(-30), ON_SITE_CLIENT)
    };
    sim.upsert(&lit, on_site);
    sim.book("5000003", "DIS50003");
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_texts_wait_or_are_skipped_in_quiet_hours_and_the_rest_goes() {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::start(&nats.url(), wiring::vendor_adapters()).await;
    load_world(&sim);

    // Quiet now at the site: a cycle as the service runs it, /metrics scraped after.
    let quiet = settings(&nats, &redis, &window_around_now(-1, 1));
    let app = App::build(quiet.clone()).await.unwrap().spawn();
    let on_site_note = "Dispatch Management - Field Engineer On Site";
    wait_for("the first cycle's notes", || {
        sim.outbox()
            .notes
            .iter()
            .any(|n| n.text.contains(on_site_note))
            && sim.outbox().notes.len() >= 5
    })
    .await;
    let (status, metrics) = http_get(app.port, "/metrics").await;
    app.stop().await.unwrap();
    assert_eq!(status, 200);
    let quiet_line = metrics
        .lines()
        .find(|l| l.starts_with("dispatch_monitor_sms_total") && l.contains("quiet_hours"))
        .unwrap_or_else(|| panic!("no quiet_hours outcome in\n{metrics}"));
    assert!(quiet_line.contains("vendor=\"LIT\""), "{quiet_line}");

    let outbox = sim.outbox();
    let notes_on = |ticket: &str| outbox.notes_on(ticket).join("\n---\n");
    // DIS50001: the client's 12h reminder is skipped with its note; the tech's goes.
    let dis50001 = notes_on("5000001");
    assert!(
        dis50001.contains(&format!(
            "Dispatch 12h prior reminder SMS not sent to +12125550101: quiet hours {} at the site",
            quiet_window(&quiet)
        )),
        "{dis50001}"
    );
    assert!(dis50001.contains("Dispatch 12h prior reminder tech SMS sent to +12125550102"));
    // DIS50002: the Confirmed note and the tech's text now; the client's two texts wait.
    let dis50002 = notes_on("5000002");
    assert!(dis50002.contains("Dispatch Management - Dispatch Confirmed"));
    assert!(dis50002.contains("Dispatch confirmation SMS tech sent to +12125550102"));
    assert!(!dis50002.contains("Dispatch confirmation SMS sent to"));
    // DIS50003: tech on site is sent as usual.
    assert!(notes_on("5000003").contains(on_site_note));
    let mut recipients = outbox.sms_recipients();
    recipients.dedup();
    assert_eq!(
        recipients,
        ["12125550102", "12125550103"],
        "{:#?}",
        outbox.sms
    );

    // `plan` shows what waits.
    let (reports, _) = app::plan(&quiet, &[VendorName::fixed("LIT")])
        .await
        .unwrap();
    let rows = plan::rows(&reports);
    let deferred: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r.channel == "deferred (quiet hours)")
        .map(|r| (r.dispatch_number.as_str(), r.recipient.as_str()))
        .collect();
    assert_eq!(
        deferred,
        [("DIS50002", "+12125550101"), ("DIS50002", "+12125550101")],
        "{rows:#?}"
    );
    let text = plan::render_text(&reports);
    assert!(
        text.contains("SMS to +12125550101 deferred (quiet hours)"),
        "{text}"
    );

    // Once the window has passed, the held texts go out; the skipped reminder never does.
    let day = settings(&nats, &redis, &window_around_now(2, 3));
    let outcomes = app::once(&day, &[VendorName::fixed("LIT")]).await.unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, LeasedCycle::Ran(Ok(_)))),
        "{outcomes:?}"
    );
    let outbox = sim.outbox();
    let client_texts: Vec<&str> = outbox
        .sms
        .iter()
        .filter(|sms| sms.to == "12125550101")
        .map(|sms| sms.text.as_str())
        .collect();
    assert_eq!(client_texts.len(), 2, "{client_texts:#?}");
    assert!(client_texts[0].contains("A dispatch has been confirmed for your location"));
    assert!(client_texts[1].contains("A field engineer has been assigned"));
    assert!(
        outbox
            .sms
            .iter()
            .all(|sms| !sms.text.contains("will arrive in 12 hours"))
    );
    drop(sim);
}

fn quiet_window(settings: &Settings) -> String {
    settings
        .quiet_hours
        .map(|quiet| quiet.to_string())
        .unwrap_or_default()
}
