//! The simulator's built-in day, compressed, against the monitor's `run`: at the end every
//! note and SMS is exactly the expected one, each once.

use std::time::{Duration, Instant};

use dispatch_monitor::app::App;
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::wiring;
use e2e::bridge_sim::{Outbox, Scenario};
use regex::Regex;
use test_support::servers::{NatsServer, RedisServer};

/// Appointment texts depend on when the test runs; they read `<when>` here.
fn normalised(text: &str) -> String {
    let display = Regex::new(r"[A-Z][a-z]{2} \d{2}, \d{4} @ \d{2}:\d{2} [AP]M [A-Za-z]+").unwrap();
    let raw = Regex::new(r"\d{4}-\d{2}-\d{2} @ \d{1,2}:\d{2}[AP]M [A-Za-z]+ Time").unwrap();
    let text = display.replace_all(text.trim_end(), "<when>");
    raw.replace_all(&text, "<when>").replace('\n', " | ")
}

fn transcript(outbox: &Outbox) -> Vec<String> {
    let mut lines: Vec<String> = outbox
        .notes
        .iter()
        .map(|note| format!("NOTE {} {}", note.ticket, normalised(&note.text)))
        .chain(
            outbox
                .sms
                .iter()
                .map(|sms| format!("SMS +{} {}", sms.to, normalised(&sms.text))),
        )
        .collect();
    lines.sort();
    lines
}

/// The day's notes and SMS, sorted; each exactly once.
const EXPECTED: &[&str] = &[
    "NOTE 4000001 #*MetTel's IPA*# DIS10001 | Dispatch 2h prior reminder SMS sent to +12125550101",
    "NOTE 4000001 #*MetTel's IPA*# DIS10001 | Dispatch 2h prior reminder tech SMS sent to +12125550103",
    "NOTE 4000001 #*MetTel's IPA*# DIS10001 | Dispatch Management - Dispatch Confirmed | Dispatch scheduled for <when>",
    "NOTE 4000001 #*MetTel's IPA*# DIS10001 | Dispatch Management - Field Engineer Confirmed |  | Field Engineer | Joe Malone | +1 212 555 0102",
    "NOTE 4000001 #*MetTel's IPA*# DIS10001 | Dispatch Management - Field Engineer On Site | SMS notification sent to +12125550101 |  | The field engineer, Hulk Hogan has arrived.",
    "NOTE 4000001 #*MetTel's IPA*# DIS10001 | Dispatch Management - Repair Completed |  | Dispatch request for <when> has been completed. | Reference: 4000001",
    "NOTE 4000001 #*MetTel's IPA*# DIS10001 | Dispatch confirmation SMS sent to +12125550101",
    "NOTE 4000001 #*MetTel's IPA*# DIS10001 | Dispatch confirmation SMS tech sent to +12125550102",
    "NOTE 4000001 #*MetTel's IPA*# DIS10001 | The Field Engineer assigned to this dispatch has changed. | Reference: 4000001 |  | Field Engineer | Hulk Hogan | +1 212 555 0103",
    "NOTE 4000003 #*MetTel's IPA*# DIS10003 | Dispatch 12h prior reminder SMS sent to +16465550111",
    "NOTE 4000003 #*MetTel's IPA*# DIS10003 | Dispatch 12h prior reminder tech SMS sent to +16465550112",
    "NOTE 4000003 #*MetTel's IPA*# DIS10003 | Dispatch Management - Dispatch Confirmed | Dispatch scheduled for <when>",
    "NOTE 4000003 #*MetTel's IPA*# DIS10003 | Dispatch Management - Field Engineer Confirmed |  | Field Engineer | Ada Lovelace | +1 646 555 0112",
    "NOTE 4000003 #*MetTel's IPA*# DIS10003 | Dispatch confirmation SMS sent to +16465550111",
    "NOTE 4000003 #*MetTel's IPA*# DIS10003 | Dispatch confirmation SMS tech sent to +16465550112",
    "NOTE 4000004 #*MetTel's IPA*# DIS10004 | Dispatch Management - Dispatch Cancelled | Dispatch for <when> has been cancelled.",
    "NOTE 4000004 #*MetTel's IPA*# DIS10004 | Dispatch Management - Dispatch Confirmed | Dispatch scheduled for <when>",
    "NOTE 4000004 #*MetTel's IPA*# DIS10004 | Dispatch Management - Field Engineer Confirmed |  | Field Engineer | Grace Hopper | +1 312 555 0122",
    "NOTE 4000004 #*MetTel's IPA*# DIS10004 | Dispatch confirmation SMS sent to +13125550121",
    "NOTE 4000004 #*MetTel's IPA*# DIS10004 | Dispatch confirmation SMS tech sent to +13125550122",
    "NOTE 4000011 #*MetTel's IPA*# IGZ_20001 | Dispatch 6h prior reminder SMS sent to +12025550104",
    "NOTE 4000011 #*MetTel's IPA*# IGZ_20001 | Dispatch 6h prior reminder tech SMS sent to +12025550105",
    "NOTE 4000011 #*MetTel's IPA*# IGZ_20001 | Dispatch Management - Dispatch Confirmed | Dispatch scheduled for <when> |  | Field Engineer | Katherine Johnson | +1 (202) 555-0105",
    "NOTE 4000011 #*MetTel's IPA*# IGZ_20001 | Dispatch confirmation SMS sent to +12025550104",
    "NOTE 4000011 #*MetTel's IPA*# IGZ_20001 | Dispatch confirmation SMS tech sent to +12025550105",
    "NOTE 4000012 #*MetTel's IPA*# IGZ_20002 | Dispatch 2h prior reminder SMS sent to +13035550131",
    "NOTE 4000012 #*MetTel's IPA*# IGZ_20002 | Dispatch 2h prior reminder tech SMS sent to +13035550132",
    "NOTE 4000012 #*MetTel's IPA*# IGZ_20002 | Dispatch Management - Dispatch Confirmed | Dispatch scheduled for <when> |  | Field Engineer | Michael J. Fox | +1 (303) 555-0132",
    "NOTE 4000012 #*MetTel's IPA*# IGZ_20002 | Dispatch Management - Field Engineer On Site | SMS notification sent to +13035550131 |  | The field engineer, Michael J. Fox has arrived.",
    "NOTE 4000012 #*MetTel's IPA*# IGZ_20002 | Dispatch Management - Repair Completed |  | Dispatch request for <when> has been completed. | Reference: 4000012",
    "NOTE 4000012 #*MetTel's IPA*# IGZ_20002 | Dispatch confirmation SMS sent to +13035550131",
    "NOTE 4000012 #*MetTel's IPA*# IGZ_20002 | Dispatch confirmation SMS tech sent to +13035550132",
    "SMS +12025550104 This is an automated message from MetTel. |  | A dispatch has been confirmed for your location on <when>. | The field engineer handling this dispatch will be Katherine Johnson.",
    "SMS +12025550104 This is an automated message from MetTel. |  | A field engineer will arrive in 6 hours, <when>, at your location. |  | You will receive a text message at this number when they have arrived.",
    "SMS +12025550105 This is an automated message from MetTel. |  | You have a dispatch coming up in 6 hours, <when>. | For Premier Financial Bancorp at 1501 K St NW",
    "SMS +12025550105 This is an automated message from MetTel. |  | You have been confirmed for a dispatch on <when>. | For Premier Financial Bancorp at 1501 K St NW",
    "SMS +12125550101 This is an automated message from MetTel. |  | A dispatch has been confirmed for your location on <when>.",
    "SMS +12125550101 This is an automated message from MetTel. |  | A field engineer has been assigned for your location on <when>. | The field engineer handling this dispatch will be Joe Malone.",
    "SMS +12125550101 This is an automated message from MetTel. |  | A field engineer will arrive in 2 hours, <when>, at your location. |  | You will receive a text message at this number when they have arrived.",
    "SMS +12125550101 This is an automated message from MetTel. |  | The field engineer handling your dispatch on <when> has changed. | The new field engineer will be: Hulk Hogan",
    "SMS +12125550101 This is an automated message from MetTel. | Hulk Hogan, the field engineer handling today's repair has arrived on-site.",
    "SMS +12125550102 This is an automated message from MetTel. |  | You have been confirmed for a dispatch on <when>. | For Red Rose Inn at 160 Broadway",
    "SMS +12125550103 This is an automated message from MetTel. |  | You have a dispatch coming up in 2 hours, <when>. | For Red Rose Inn at 160 Broadway",
    "SMS +12125550103 This is an automated message from MetTel. |  | You have been confirmed for a dispatch on <when>. | For Red Rose Inn at 160 Broadway",
    "SMS +13035550131 This is an automated message from MetTel. |  | A dispatch has been confirmed for your location on <when>. | The field engineer handling this dispatch will be Michael J. Fox.",
    "SMS +13035550131 This is an automated message from MetTel. |  | A field engineer will arrive in 2 hours, <when>, at your location. |  | You will receive a text message at this number when they have arrived.",
    "SMS +13035550131 This is an automated message from MetTel. | Michael J. Fox, the field engineer handling today's repair has arrived on-site.",
    "SMS +13035550132 This is an automated message from MetTel. |  | You have a dispatch coming up in 2 hours, <when>. | For Union Station at 1701 Wynkoop St",
    "SMS +13035550132 This is an automated message from MetTel. |  | You have been confirmed for a dispatch on <when>. | For Union Station at 1701 Wynkoop St",
    "SMS +13125550121 This is an automated message from MetTel. |  | A dispatch has been confirmed for your location on <when>.",
    "SMS +13125550121 This is an automated message from MetTel. |  | A field engineer has been assigned for your location on <when>. | The field engineer handling this dispatch will be Grace Hopper.",
    "SMS +13125550122 This is an automated message from MetTel. |  | You have been confirmed for a dispatch on <when>. | For Loop Branch at 233 S Wacker Dr",
    "SMS +16465550111 This is an automated message from MetTel. |  | A dispatch has been confirmed for your location on <when>.",
    "SMS +16465550111 This is an automated message from MetTel. |  | A field engineer has been assigned for your location on <when>. | The field engineer handling this dispatch will be Ada Lovelace.",
    "SMS +16465550111 This is an automated message from MetTel. |  | A field engineer will arrive in 12 hours, <when>, at your location. |  | You will receive a text message at this number when they have arrived.",
    "SMS +16465550112 This is an automated message from MetTel. |  | You have a dispatch coming up in 12 hours, <when>. | For Flatiron Office at 175 5th Ave",
    "SMS +16465550112 This is an automated message from MetTel. |  | You have been confirmed for a dispatch on <when>. | For Flatiron Office at 175 5th Ave",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_day_ends_with_every_note_and_sms_once() {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::start(&nats.url(), wiring::vendor_adapters()).await;
    let scenario = Scenario::default_day(&wiring::vendor_names()).unwrap();
    let raw = RawSettings::from_pairs([
        ("NATS_SERVER1", nats.url().as_str()),
        ("REDIS_URL", redis.url().as_str()),
        ("ENVIRONMENT_NAME", "day"),
        ("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1"),
        ("DISPATCH_MONITOR_SERVER_PORT", "0"),
        ("MONITOR_LIT_INTERVAL_SECS", "1"),
        ("MONITOR_CTS_INTERVAL_SECS", "1"),
        ("MONITOR_REQUEST_TIMEOUT_SECS", "5"),
        ("MONITOR_LEASE_TTL_SECS", "6"),
    ]);
    let settings = Settings::from_raw(&raw, &wiring::vendor_names()).unwrap();
    let app = App::build(settings).await.unwrap().spawn();
    sim.play(&scenario, 0.1);

    // The day's last step (DIS10001 completed) is at 200 s × 0.1 = 20 s.
    let deadline = Instant::now() + Duration::from_secs(90);
    let last = "NOTE 4000001 #*MetTel's IPA*# DIS10001 | Dispatch Management - Repair Completed";
    loop {
        let lines = transcript(&sim.outbox());
        if lines.iter().any(|line| line.starts_with(last)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the day did not finish:\n{}",
            lines.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A few more cycles: nothing more is sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    app.stop().await.unwrap();
    let outbox = sim.outbox();
    assert_eq!(transcript(&outbox), EXPECTED);
    // The SMS gateway failed twice on the way; the notifier saw those texts again later.
    assert_eq!(outbox.deduplicated, 0);
}
