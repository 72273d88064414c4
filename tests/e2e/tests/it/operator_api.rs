//! The operator API (SPEC §14) end to end: two replicas of the service over real `nats-server`
//! and `redis-server` and the simulated bridges, each answering for what both did.

use std::time::{Duration, Instant};

use dispatch_monitor::api::{self, ROUTES};
use dispatch_monitor::app::{App, RunningApp};
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::wiring;
use domain::VendorName;
use e2e::bridge_sim::{Fault, Sim, list_subject};
use e2e::{http_get, http_request, redis};
use serde_json::Value;
use test_support::servers::{NatsServer, RedisServer};

const TOKEN: &str = "operator-token-0123456789";

/// A replica running `vendor` only, hourly (so cycles run at start and when asked): every
/// other wired vendor is disabled.
fn settings(nats: &NatsServer, redis: &RedisServer, replica: &str, vendor: &str) -> Settings {
    let mut pairs = vec![
        ("NATS_SERVER1".to_owned(), nats.url()),
        ("REDIS_URL".to_owned(), redis.url()),
        ("ENVIRONMENT_NAME".to_owned(), "api".to_owned()),
        ("MONITOR_REQUEST_TIMEOUT_SECS".to_owned(), "5".to_owned()),
        ("MONITOR_REPLICA_NAME".to_owned(), replica.to_owned()),
        (
            "DISPATCH_MONITOR_SERVER_ADDRESS".to_owned(),
            "127.0.0.1".to_owned(),
        ),
        ("DISPATCH_MONITOR_SERVER_PORT".to_owned(), "0".to_owned()),
    ];
    for name in wiring::vendor_names() {
        let enabled = (name.as_str() == vendor).to_string();
        pairs.push((format!("MONITOR_{name}_ENABLED"), enabled));
        pairs.push((format!("MONITOR_{name}_INTERVAL_SECS"), "3600".to_owned()));
    }
    if replica == "replica-a" {
        pairs.push(("MONITOR_API_TOKEN".to_owned(), TOKEN.to_owned()));
    }
    let raw = RawSettings::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Settings::from_raw(&raw, &wiring::vendor_names()).unwrap()
}

/// A vendor name no wiring has: the API answers 404 for it.
fn unwired_vendor() -> &'static str {
    let name = "NO-SUCH-VENDOR";
    assert!(!wiring::vendor_names().iter().any(|n| n.as_str() == name));
    name
}

struct World {
    _nats: NatsServer,
    redis: RedisServer,
    sim: Sim,
    a: RunningApp,
    b: RunningApp,
}

/// Replica A runs LIT and has a token; replica B runs CTS and has none.
async fn world() -> World {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::spec_world(&nats.url(), wiring::vendor_adapters()).await;
    let a = App::build(settings(&nats, &redis, "replica-a", "LIT"))
        .await
        .unwrap()
        .spawn();
    let b = App::build(settings(&nats, &redis, "replica-b", "CTS"))
        .await
        .unwrap()
        .spawn();
    let w = World {
        _nats: nats,
        redis,
        sim,
        a,
        b,
    };
    for vendor in ["LIT", "CTS"] {
        wait_for_cycles(w.a.port, vendor, 1).await;
    }
    w
}

async fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (status, body) = http_get(port, path).await;
    let json = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}"));
    (status, json)
}

/// Waits until `vendor` has at least `count` cycles in the journal.
async fn wait_for_cycles(port: u16, vendor: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, cycles) = get_json(port, &format!("/api/v1/cycles?vendor={vendor}")).await;
        let cycles = cycles.as_array().cloned().unwrap_or_default();
        if cycles.len() >= count {
            return cycles;
        }
        assert!(
            Instant::now() < deadline,
            "{vendor} has {} cycles",
            cycles.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_error(status: u16, body: &str, expected_status: u16, mentions: &str) {
    assert_eq!(status, expected_status, "{body}");
    let json: Value = serde_json::from_str(body).unwrap();
    let error = json["error"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert!(
        error.contains(mentions),
        "{error:?} should mention {mentions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_api_answers_for_every_replica() {
    let w = world().await;

    // Vendors: A schedules LIT, and sees the CTS cycle B ran.
    let (status, vendors) = get_json(w.a.port, "/api/v1/vendors").await;
    assert_eq!(status, 200);
    let named = |name: &str| {
        let found = vendors
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name);
        found
            .unwrap_or_else(|| panic!("{name} in {vendors}"))
            .clone()
    };
    let lit = &named("LIT");
    assert_eq!(lit["enabled"], true);
    assert_eq!(lit["interval_secs"], 3600);
    assert_eq!(lit["last_cycle"]["outcome"], "ok");
    assert_eq!(lit["last_cycle"]["replica"], "replica-a");
    assert!(lit["next_cycle"].is_string(), "{lit}");
    let cts = &named("CTS");
    assert_eq!(cts["enabled"], false);
    assert_eq!(cts["next_cycle"], Value::Null);
    assert_eq!(cts["last_cycle"]["replica"], "replica-b");

    // Cycles, newest first, with their counts.
    let (_, cycles) = get_json(w.b.port, "/api/v1/cycles?vendor=LIT&limit=5").await;
    let cycle = &cycles[0];
    assert_eq!(cycle["vendor"], "LIT");
    assert_eq!(
        (cycle["records"].as_u64(), cycle["ours"].as_u64()),
        (Some(6), Some(3))
    );
    assert!(cycle["actions"].as_u64().unwrap() > 0);
    let (_, all) = get_json(w.a.port, "/api/v1/cycles").await;
    assert_eq!(all.as_array().unwrap().len(), 2);

    // Dispatches of the last cycles, filtered, phones masked.
    let (_, dispatches) = get_json(w.a.port, "/api/v1/dispatches").await;
    let numbers: Vec<&str> = dispatches
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["dispatch_number"].as_str().unwrap())
        .collect();
    assert!(
        numbers.contains(&"DIS37405") && numbers.contains(&"S-12345"),
        "{numbers:?}"
    );
    let (_, found) = get_json(w.b.port, "/api/v1/dispatches?q=3544800").await;
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 1);
    let dis37405 = &found[0];
    assert_eq!(dis37405["client_phone"], "+1******5129");
    assert_eq!(dis37405["tech_phone"], "+1******5130");
    assert_eq!(dis37405["ours"], true);
    assert!(
        dis37405["last_action"]["text"]
            .as_str()
            .unwrap()
            .contains("+1******")
    );
    let (_, on_site) = get_json(
        w.a.port,
        "/api/v1/dispatches?status=tech_on_site&vendor=lit",
    )
    .await;
    assert!(
        on_site
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "tech_on_site" && d["vendor"] == "LIT")
    );

    // One dispatch's journal: what was sent, by which replica, oldest first.
    let (status, view) = get_json(w.a.port, "/api/v1/dispatches/CTS/S-12345").await;
    assert_eq!(status, 200);
    assert_eq!(view["snapshot"]["ticket_id"], "4694961");
    let journal = view["journal"].as_array().unwrap();
    let sent: Vec<&Value> = journal
        .iter()
        .filter(|e| e["kind"] == "sms" && e["outcome"] == "sent")
        .collect();
    assert_eq!(sent.len(), 2);
    assert!(sent.iter().all(|e| e["replica"] == "replica-b"));
    assert!(
        sent[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("This is an automated message from MetTel.")
    );
    assert!(journal.iter().all(|e| {
        let text = e.to_string();
        !text.contains("2027723610") && !text.contains("12123595130")
    }));
    let times: Vec<&str> = journal.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

    // Plan: read-only rows.
    let before = w.sim.outbox().sms.len();
    let (status, rows) = get_json(w.a.port, "/api/v1/plan?vendor=LIT").await;
    assert_eq!(status, 200, "{rows}");
    assert!(rows.is_array());
    assert_eq!(w.sim.outbox().sms.len(), before);

    bad_requests_name_the_parameter(w.a.port).await;
    every_api_error_is_json(w.a.port).await;
    the_cycle_trigger_is_guarded(&w).await;
    the_document_lists_every_route(w.b.port).await;
    plans_are_computed_once_per_vendor_and_not_counted(&w).await;

    w.a.stop().await.unwrap();
    w.b.stop().await.unwrap();
}

async fn bad_requests_name_the_parameter(port: u16) {
    let unknown = unwired_vendor();
    let unknown_vendor = format!("unknown vendor {unknown}");
    for (path, status, mentions) in [
        (
            format!("/api/v1/cycles?vendor={unknown}"),
            404,
            unknown_vendor.as_str(),
        ),
        ("/api/v1/cycles?limit=0".into(), 400, "limit"),
        ("/api/v1/cycles?limit=lots".into(), 400, "limit"),
        ("/api/v1/cycles?limit=101".into(), 400, "limit"),
        ("/api/v1/dispatches?status=happy".into(), 400, "status"),
        ("/api/v1/dispatches?colour=red".into(), 400, "colour"),
        ("/api/v1/dispatches?limit=-1".into(), 400, "limit"),
        (
            format!("/api/v1/dispatches/{unknown}/DIS1"),
            404,
            &unknown_vendor,
        ),
        ("/api/v1/dispatches/LIT/DIS00000".into(), 404, "never seen"),
        ("/api/v1/dispatches/LIT/%20".into(), 400, "dispatch_number"),
        (
            format!("/api/v1/plan?vendor={unknown}"),
            404,
            "unknown vendor",
        ),
        ("/api/v1/dispatches/LIT/%FF".into(), 400, "invalid path"),
        ("/api/v1/vendors/%FF%FE/cycle".into(), 400, "invalid path"),
        // Found by schemathesis: what the document declares is exactly what is accepted.
        ("/api/v1/cycles?limit=".into(), 400, "limit"),
        ("/api/v1/dispatches?limit=%2B5".into(), 400, "limit"),
        ("/api/v1/dispatches?status=".into(), 400, "status"),
        ("/api/v1/dispatches?status=REQUESTED".into(), 400, "status"),
        (
            "/api/v1/dispatches/LIT/%C2%85".into(),
            400,
            "dispatch_number",
        ),
        ("/api/v1/vendors?colour=red".into(), 400, "colour"),
        (
            "/api/v1/dispatches/LIT/DIS37405?colour=red".into(),
            400,
            "colour",
        ),
        ("/api/v1/vendors/LIT/cycle?colour=red".into(), 400, "colour"),
    ] {
        let route = path.split('?').next().unwrap_or_default();
        let method = if route.ends_with("/cycle") {
            "POST"
        } else {
            "GET"
        };
        let bearer = format!("Bearer {TOKEN}");
        let (got, body) = http_request(
            port,
            method,
            &path,
            &[("Authorization", bearer.as_str())],
            "",
        )
        .await;
        assert_error(got, &body, status, mentions);
    }
}

/// Unknown routes and wrong methods answer `{"error": ...}` too (SPEC §18.5).
async fn every_api_error_is_json(port: u16) {
    for (method, path, status, mentions) in [
        ("GET", "/api/v1/nothing", 404, "/api/v1/nothing"),
        ("GET", "/api/v1/vendors/LIT", 404, "/api/v1/vendors/LIT"),
        ("GET", "/api/v2/vendors", 404, "/api/v2/vendors"),
        ("DELETE", "/api/v1/vendors", 405, "DELETE"),
        ("POST", "/api/v1/plan", 405, "POST"),
        ("GET", "/api/v1/vendors/LIT/cycle", 405, "GET"),
    ] {
        let (got, body) = http_request(port, method, path, &[], "").await;
        assert_error(got, &body, status, mentions);
    }
}

/// Concurrent plans of one vendor are one computation (one list request to the bridge), a
/// repeated one within 10 s is served again, and none counts in the cycle metrics. Replica A
/// has not planned CTS yet (B has, when every route was tried).
async fn plans_are_computed_once_per_vendor_and_not_counted(w: &World) {
    let cts = list_subject(&VendorName::fixed("CTS"));
    let list_requests = || {
        w.sim
            .requests()
            .iter()
            .filter(|(subject, _)| *subject == cts)
            .count()
    };
    let cycle_metrics = async || {
        let (_, metrics) = http_get(w.a.port, "/metrics").await;
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("dispatch_monitor_cycle_duration_seconds")
                    || l.starts_with("dispatch_monitor_dispatches_seen_total")
            })
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let metrics_before = cycle_metrics().await;
    let before = list_requests();
    // The list answers slowly, so the plans overlap.
    w.sim.add_fault(&Fault {
        subject: cts.clone(),
        latency_ms: Some(500),
        ..Fault::default()
    });
    let plans = (0..6).map(|_| http_get(w.a.port, "/api/v1/plan?vendor=CTS"));
    let answers = futures::future::join_all(plans).await;
    w.sim.clear_faults();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body, &answers[0].1, "every caller gets the same plan");
    }
    let rows: Value = serde_json::from_str(&answers[0].1).unwrap();
    assert!(rows.is_array(), "{rows}");
    assert_eq!(
        list_requests() - before,
        1,
        "one plan computed for 6 callers"
    );
    let (status, again) = http_get(w.a.port, "/api/v1/plan?vendor=CTS").await;
    assert_eq!((status, &again), (200, &answers[0].1));
    assert_eq!(
        list_requests() - before,
        1,
        "a plan under 10 s old is served again"
    );
    assert_eq!(
        cycle_metrics().await,
        metrics_before,
        "plans are not cycles"
    );
}

async fn the_cycle_trigger_is_guarded(w: &World) {
    let post = |port: u16, vendor: &'static str, token: Option<&'static str>| async move {
        // The scheme is matched case-insensitively (RFC 6750).
        let bearer = token.map(|t| format!("bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| vec![("Authorization", b)])
            .unwrap_or_default();
        http_request(
            port,
            "POST",
            &format!("/api/v1/vendors/{vendor}/cycle"),
            &headers,
            "",
        )
        .await
    };
    let (status, body) = post(w.b.port, "CTS", Some(TOKEN)).await;
    assert_error(status, &body, 403, "MONITOR_API_TOKEN");
    let (status, body) = post(w.a.port, "LIT", None).await;
    assert_error(status, &body, 401, "Bearer");
    let (status, body) = post(w.a.port, "LIT", Some("operator-token-wrong-guess")).await;
    assert_error(status, &body, 401, "Bearer");
    let unknown = unwired_vendor();
    let (status, body) = post(w.a.port, unknown, Some(TOKEN)).await;
    assert_error(status, &body, 404, unknown);

    // Another replica holds the lease: 409 naming it.
    let lease = "api-dispatch-monitor:lease:LIT";
    redis(
        &w.redis.url(),
        &["SET", lease, "replica-z/123", "PX", "60000"],
    )
    .await;
    let (status, body) = post(w.a.port, "LIT", Some(TOKEN)).await;
    assert_error(status, &body, 409, "replica-z");
    redis(&w.redis.url(), &["DEL", lease]).await;

    // Started: 202, and while the (slowed) cycle runs, 409.
    w.sim.add_fault(&Fault {
        subject: list_subject(&VendorName::fixed("LIT")),
        latency_ms: Some(1500),
        ..Fault::default()
    });
    let (status, body) = post(w.a.port, "LIT", Some(TOKEN)).await;
    assert_eq!(status, 202, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "started");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = post(w.a.port, "LIT", Some(TOKEN)).await;
        if status == 409 {
            assert!(body.contains("running"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never saw the cycle running: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    w.sim.clear_faults();
    wait_for_cycles(w.a.port, "LIT", 2).await;
}

async fn the_document_lists_every_route(port: u16) {
    let (status, document) = get_json(port, "/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut routed: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    routed.sort();
    assert_eq!(documented, routed);
    assert_eq!(
        serde_json::to_value(api::openapi()).unwrap(),
        document,
        "the served document is the one generated from the code"
    );
    // The documented `limit` bounds are exactly the accepted ones.
    for path in ["/api/v1/cycles", "/api/v1/dispatches"] {
        let limit = document["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap()["schema"]
            .clone();
        let (min, max) = (
            limit["minimum"].as_u64().unwrap(),
            limit["maximum"].as_u64().unwrap(),
        );
        for (value, accepted) in [(min - 1, false), (min, true), (max, true), (max + 1, false)] {
            let (status, body) = http_get(port, &format!("{path}?limit={value}")).await;
            assert_eq!(
                status == 200,
                accepted,
                "{path}?limit={value}: {status} {body}"
            );
        }
    }
    // Every documented route is served (no 404 from the router itself).
    for (method, path) in &routed {
        let concrete = path
            .replace("{vendor}", "LIT")
            .replace("{dispatch_number}", "DIS37405");
        let (status, body) = http_request(port, method, &concrete, &[], "").await;
        assert!(
            status != 404 && status != 405,
            "{method} {concrete}: {status} {body}"
        );
    }
    // Swagger UI with its own assets: no internet needed.
    let (status, page) = http_get(port, "/docs/").await;
    assert_eq!(status, 200);
    assert!(page.contains("swagger-ui"), "{page}");
    let (status, initializer) = http_get(port, "/docs/swagger-initializer.js").await;
    assert_eq!(status, 200);
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "Swagger UI must not call validator.swagger.io: {initializer}"
    );
    let (status, bundle) = http_get(port, "/docs/swagger-ui-bundle.js").await;
    assert_eq!(status, 200);
    assert!(bundle.len() > 100_000);
    let (status, dashboard) = http_get(port, "/").await;
    assert_eq!(status, 200);
    assert!(dashboard.contains("id=\"dispatch-rows\""));
}
