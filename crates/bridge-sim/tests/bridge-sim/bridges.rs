//! Every subject answered as the real bridges would, faults, and SMS deduplication.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bridge_sim::{Fault, Scenario, Sim, SimConfig, SimEvent, subjects};
use domain::memory::MemoryLargeMessages;
use domain::{DispatchSpec, Status, VendorAdapter, VendorName};
use infra_nats::NatsClient;
use serde_json::{Map, Value, json};
use test_support::servers::{NatsServer, RedisServer};

fn vendors() -> Vec<Arc<dyn VendorAdapter>> {
    vec![
        Arc::new(vendor_lit::LitAdapter::new()),
        Arc::new(vendor_cts::CtsAdapter::new()),
    ]
}

fn lit() -> VendorName {
    VendorName::fixed("LIT")
}

async fn client(nats: &NatsServer, timeout: Duration) -> NatsClient {
    let client = NatsClient::connect(
        &nats.url(),
        timeout,
        Arc::new(MemoryLargeMessages::default()),
    )
    .await
    .unwrap();
    assert!(client.wait_until_connected(Duration::from_secs(10)).await);
    client
}

async fn sim(nats: &NatsServer) -> Sim {
    Sim::start(SimConfig::new(&nats.url(), vendors()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_tickets_and_notes_answer_like_the_bridges() {
    let nats = NatsServer::new();
    let sim = sim(&nats).await;
    let client = client(&nats, Duration::from_secs(5)).await;

    // Every wired vendor's list is served, empty until told otherwise.
    let lit_list = client.call("lit.dispatch.get", json!({})).await.unwrap();
    assert_eq!(lit_list["DispatchList"], json!([]));
    let cts_list = client.call("cts.dispatch.get", json!({})).await.unwrap();
    assert_eq!(cts_list["records"], json!([]));
    let mut spec = DispatchSpec::new("DIS1", "4000001");
    spec.status = Status::Confirmed;
    sim.upsert(&lit(), spec);
    let list = client.call("lit.dispatch.get", json!({})).await.unwrap();
    let records = domain::records_of(&vendor_lit::LitAdapter::new(), &list).unwrap();
    assert_eq!(records[0]["Dispatch_Status"], "Request Confirmed");

    // Ticket details, then a note appended with createdDate now, then read back.
    sim.book("4000001", "DIS1");
    let before = chrono::Utc::now();
    client
        .call(
            subjects::NOTE_APPEND,
            json!({"ticket_id": "4000001", "note": "#*MetTel's IPA*# DIS1\nhello", "is_private": false}),
        )
        .await
        .unwrap();
    let details = client
        .call(subjects::TICKET_DETAILS, json!({"ticket_id": "4000001"}))
        .await
        .unwrap();
    let notes = details["ticketNotes"].as_array().unwrap();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[1]["noteValue"], "#*MetTel's IPA*# DIS1\nhello");
    let created =
        chrono::DateTime::parse_from_rfc3339(notes[1]["createdDate"].as_str().unwrap()).unwrap();
    assert!(created >= before - chrono::Duration::seconds(1));
    assert_eq!(sim.details_requests("4000001"), 1);

    // Notes over 1,500 characters are refused with 400 and not appended.
    let long = "x".repeat(1501);
    let refused = client
        .call(
            subjects::NOTE_APPEND,
            json!({"ticket_id": "4000001", "note": long}),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("400"), "{refused}");
    assert_eq!(sim.outbox().notes.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_slack_and_email_land_in_the_outbox_and_keys_deliver_once() {
    let nats = NatsServer::new();
    let sim = sim(&nats).await;
    let mut events = sim.subscribe();
    let client = client(&nats, Duration::from_secs(5)).await;
    let sms =
        |key: &str| json!({"sms_to": "12125550101", "sms_data": "hi", "idempotency_key": key});
    client.call(subjects::SMS, sms("k1")).await.unwrap();
    client.call(subjects::SMS, sms("k1")).await.unwrap();
    client.call(subjects::SMS, sms("k2")).await.unwrap();
    client
        .call(
            subjects::SMS,
            json!({"sms_to": "12125550101", "sms_data": "no key"}),
        )
        .await
        .unwrap();
    let mut slack = Map::new();
    slack.insert("message".into(), json!("[dispatch-monitor] [LIT] line"));
    client.call_flat(subjects::SLACK, slack).await.unwrap();
    let mut email = Map::new();
    email.insert(
        "email_data".into(),
        json!({"subject": "S", "recipient": "a@x"}),
    );
    client.call_flat(subjects::EMAIL, email).await.unwrap();

    let outbox = sim.outbox();
    let keys: Vec<Option<&str>> = outbox
        .sms
        .iter()
        .map(|s| s.idempotency_key.as_deref())
        .collect();
    assert_eq!(keys, [Some("k1"), Some("k2"), None]);
    assert_eq!(outbox.deduplicated, 1);
    assert_eq!(outbox.slack, ["[dispatch-monitor] [LIT] line"]);
    assert_eq!(outbox.emails[0]["subject"], "S");
    let first = events.recv().await.unwrap();
    assert_eq!(
        first,
        SimEvent::Sms {
            to: "12125550101".into(),
            text: "hi".into(),
            deduplicated: false
        }
    );

    // A notifier that does not deduplicate delivers every request.
    sim.set_deduplicate_sms(false);
    client.call(subjects::SMS, sms("k1")).await.unwrap();
    assert_eq!(sim.outbox().sms.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_fail_silence_garble_and_delay() {
    let nats = NatsServer::new();
    let sim = sim(&nats).await;
    let client = client(&nats, Duration::from_millis(500)).await;
    let sms = json!({"sms_to": "12125550101", "sms_data": "hi"});
    sim.add_fault(&Fault {
        subject: subjects::SMS.into(),
        fail: 1,
        status: Some(503),
        no_reply: 1,
        bad_json: 1,
        ..Fault::default()
    });
    let refused = client.call(subjects::SMS, sms.clone()).await.unwrap_err();
    assert!(refused.to_string().contains("503"), "{refused}");
    assert_eq!(sim.outbox().sms.len(), 0, "a refused SMS is not delivered");
    let silent = client.call(subjects::SMS, sms.clone()).await.unwrap_err();
    assert!(silent.to_string().contains("no reply"), "{silent}");
    assert_eq!(sim.outbox().sms.len(), 1, "a lost reply: the SMS went out");
    let garbled = client.call(subjects::SMS, sms.clone()).await.unwrap_err();
    assert!(garbled.to_string().contains("unparseable"), "{garbled}");
    client.call(subjects::SMS, sms.clone()).await.unwrap();
    assert_eq!(sim.outbox().sms.len(), 3);

    sim.add_fault(&Fault {
        subject: "lit.dispatch.get".into(),
        latency_ms: Some(300),
        ..Fault::default()
    });
    let started = Instant::now();
    client.call("lit.dispatch.get", json!({})).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_list_travels_through_redis() {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let config = SimConfig {
        redis_url: Some(redis.url()),
        ..SimConfig::new(&nats.url(), vendors())
    };
    let sim = Sim::start(config).await.unwrap();
    for i in 0..4000 {
        let mut spec = DispatchSpec::new(&format!("DIS{i}"), &format!("{}", 5_000_000 + i));
        spec.site = Some("x".repeat(200));
        sim.upsert(&lit(), spec);
    }
    let connection = infra_redis::RedisConnection::connect(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    let client = NatsClient::connect(
        &nats.url(),
        Duration::from_secs(10),
        Arc::new(connection.large_messages()),
    )
    .await
    .unwrap();
    assert!(client.wait_until_connected(Duration::from_secs(10)).await);
    let list = client.call("lit.dispatch.get", json!({})).await.unwrap();
    assert_eq!(list["DispatchList"].as_array().unwrap().len(), 4000);
    assert!(list.to_string().len() > 1_048_576);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_plays_its_timeline() {
    let nats = NatsServer::new();
    let sim = sim(&nats).await;
    let text = r#"
        [[dispatch]]
        vendor = "LIT"
        number = "DIS1"
        ticket = "4000001"
        appointment = "+2h"

        [[change]]
        at = "+1s"
        vendor = "LIT"
        number = "DIS1"
        status = "confirmed"
        note = "someone wrote this"

        [[fault]]
        at = "+1s"
        subject = "notification.sms.request"
        fail = 1
    "#;
    let scenario = Scenario::parse(text, &[lit(), VendorName::fixed("CTS")]).unwrap();
    let mut events = sim.subscribe();
    sim.play(&scenario, 0.2);
    assert!(sim.ticket_notes("4000001")[0].contains("Dispatch Requested"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while seen.len() < 2 && Instant::now() < deadline {
        if let Ok(Ok(event)) = tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
            seen.push(event);
        }
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, SimEvent::Change { what } if what.contains("status confirmed"))),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| matches!(e, SimEvent::Fault { .. })),
        "{seen:?}"
    );
    let client = client(&nats, Duration::from_secs(5)).await;
    let list = client.call("lit.dispatch.get", json!({})).await.unwrap();
    let record = &list["DispatchList"][0];
    assert_eq!(record["Dispatch_Status"], "Request Confirmed");
    assert!(
        record["Hard_Time_of_Dispatch_Local"]
            .as_str()
            .unwrap()
            .ends_with('M')
    );
    assert_eq!(sim.ticket_notes("4000001")[1], "someone wrote this");
    let _: Value = list;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_port_shows_the_outbox_and_takes_faults() {
    use test_support::wire::{http_get, http_request};
    let nats = NatsServer::new();
    let sim = Arc::new(sim(&nats).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(axum::serve(listener, bridge_sim::http::router(sim.clone())).into_future());
    let client = client(&nats, Duration::from_millis(500)).await;
    client
        .call(
            subjects::NOTE_APPEND,
            json!({"ticket_id": "7", "note": "a <b> note"}),
        )
        .await
        .unwrap();
    client
        .call(
            subjects::SMS,
            json!({"sms_to": "12125550101", "sms_data": "hi", "idempotency_key": "k"}),
        )
        .await
        .unwrap();

    let (status, body) = http_get(port, "/outbox").await;
    assert_eq!(status, 200);
    let outbox: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outbox["notes"]["7"], json!(["a <b> note"]));
    assert_eq!(outbox["sms"][0]["to"], "12125550101");
    assert_eq!(outbox["sms"][0]["idempotency_key"], "k");
    assert_eq!(outbox["deduplicated"], 0);
    let (status, page) = http_get(port, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("a &lt;b&gt; note"), "{page}");

    let fault = r#"{"subject": "notification.sms.request", "fail": 1, "status": 502}"#;
    let (status, body) = http_request(
        port,
        "POST",
        "/faults",
        &[("Content-Type", "application/json")],
        fault,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refused = client
        .call(
            subjects::SMS,
            json!({"sms_to": "12125550101", "sms_data": "hi"}),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("502"), "{refused}");
    let (status, _) = http_request(port, "POST", "/faults", &[], "not json").await;
    assert_eq!(status, 400);
}
