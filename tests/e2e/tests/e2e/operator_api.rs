//! The operator API (SPEC §14) end to end: two replicas of the service over real `nats-server`
//! and `redis-server` and the simulated bridges, each answering for what both did.

use std::time::{Duration, Instant};

use dispatch_monitor::api::{self, ROUTES};
use dispatch_monitor::app::{App, RunningApp};
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::wiring;
use domain::{DispatchSpec, Status, VendorName};
use e2e::bridge_sim::scenario::local_time;
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
            // The planned vendor's lines: the recorder is shared by every test in this
            // process, and replica A's own LIT cycles go on meanwhile.
            .filter(|l| {
                (l.starts_with("dispatch_monitor_cycle_duration_seconds")
                    || l.starts_with("dispatch_monitor_dispatches_seen_total"))
                    && l.contains(r#"vendor="CTS""#)
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
    // Other tests of this process may run a CTS cycle meanwhile, which the shared recorder
    // counts: a plan that counted as a cycle would change the lines every time, so a few
    // fresh plans (a new `at` each, so not served again) must leave them as they were once.
    let mut metrics_before = metrics_before;
    let mut unchanged = cycle_metrics().await == metrics_before;
    for hours in 1..=5 {
        if unchanged {
            break;
        }
        metrics_before = cycle_metrics().await;
        let (status, body) =
            http_get(w.a.port, &format!("/api/v1/plan?vendor=CTS&at=%2B{hours}h")).await;
        assert_eq!(status, 200, "{body}");
        unchanged = cycle_metrics().await == metrics_before;
    }
    assert!(unchanged, "plans are not cycles");
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
            .replace("{dispatch_number}", "DIS37405")
            .replace("{phone}", "2123595129");
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

/// A request to replica `port` with the operator token (when given) and a JSON body.
async fn act(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("Authorization", bearer.as_str()));
    }
    http_request(port, method, path, &headers, body).await
}

/// Polls `path` on `port` until `check` holds for its JSON.
async fn wait_for_json(port: u16, path: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, json) = get_json(port, path).await;
        if check(&json) {
            return json;
        }
        assert!(Instant::now() < deadline, "{what}: {json}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_pauses_and_plans_at_a_time_through_the_api() {
    let w = world().await;
    opt_outs_are_listed_masked_and_guarded(&w).await;
    a_dispatch_is_paused_and_resumed_with_who_and_why(&w).await;
    plans_are_computed_at_a_time(&w).await;
    w.a.stop().await.unwrap();
    w.b.stop().await.unwrap();
}

async fn opt_outs_are_listed_masked_and_guarded(w: &World) {
    let (a, b) = (w.a.port, w.b.port);
    let hash = "api-dispatch-monitor:opt-outs";
    assert_eq!(
        get_json(a, "/api/v1/opt-outs").await,
        (200, Value::Array(vec![]))
    );
    let stop = r#"{"reason": "replied STOP to 212-359-5129"}"#;

    // The token guards writes exactly as it guards the cycle trigger.
    let path = "/api/v1/opt-outs/%2B12123595129";
    let (status, body) = act(b, "PUT", path, Some(TOKEN), stop).await;
    assert_error(status, &body, 403, "MONITOR_API_TOKEN");
    let (status, body) = act(a, "PUT", path, None, stop).await;
    assert_error(status, &body, 401, "Bearer");
    let (status, body) = act(a, "PUT", path, Some("operator-token-wrong-guess"), stop).await;
    assert_error(status, &body, 401, "Bearer");
    let (status, body) = act(a, "DELETE", path, None, "").await;
    assert_error(status, &body, 401, "Bearer");
    assert_eq!(redis(&w.redis.url(), &["HLEN", hash]).await, "0");

    // Added (201), then listed already in another form (200, the first listing kept).
    let (status, body) = act(a, "PUT", path, Some(TOKEN), stop).await;
    assert_eq!(status, 201, "{body}");
    let added: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(added["phone"], "+1******5129");
    assert_eq!(added["by"], "api");
    assert_eq!(added["reason"], "replied STOP to ***-***-5129");
    let again = "/api/v1/opt-outs/(212)%20359-5129";
    let (status, body) = act(a, "PUT", again, Some(TOKEN), r#"{"reason": "twice"}"#).await;
    assert_eq!(status, 200, "{body}");
    let kept: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&kept["at"], &kept["reason"]),
        (&added["at"], &added["reason"])
    );
    let (status, body) = act(a, "PUT", "/api/v1/opt-outs/202.772.3610", Some(TOKEN), "{}").await;
    assert_eq!(status, 201, "{body}");

    // Stored in the one hash, E.164 fields, `{at, by, reason}` values; listed masked by any
    // replica.
    let fields = redis(&w.redis.url(), &["HKEYS", hash]).await;
    let mut fields: Vec<&str> = fields.lines().collect();
    fields.sort();
    assert_eq!(fields, ["+12027723610", "+12123595129"]);
    let stored = redis(&w.redis.url(), &["HGET", hash, "+12123595129"]).await;
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["by"], "api");
    assert_eq!(stored["reason"], "replied STOP to 212-359-5129");
    assert_eq!(redis(&w.redis.url(), &["TTL", hash]).await, "-1");
    let (status, listed) = get_json(b, "/api/v1/opt-outs").await;
    assert_eq!(status, 200);
    let phones: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["phone"].as_str().unwrap())
        .collect();
    assert_eq!(phones, ["+1******3610", "+1******5129"]);
    assert!(!listed.to_string().contains("212-359-5129"), "{listed}");

    // Bad phones and bodies are named: a phone not of the documented pattern (a usual US form)
    // is a 400; a body axum cannot read keeps its status (400 not JSON, 422 not of the shape).
    for (path, body, expected, mentions) in [
        ("/api/v1/opt-outs/12345", stop, 400, "phone"),
        ("/api/v1/opt-outs/0", stop, 400, "phone"),
        (
            "/api/v1/opt-outs/%2B44%2020%207946%200000",
            stop,
            400,
            "phone",
        ),
        (
            "/api/v1/opt-outs/Jane%20212%20359%205129",
            stop,
            400,
            "phone",
        ),
        ("/api/v1/opt-outs/%202123595129", stop, 400, "phone"),
        ("/api/v1/opt-outs/%2B2123595129", stop, 400, "phone"),
        (path, r#"{"reason": "two\nlines"}"#, 400, "reason"),
        (path, r#"{"reason": 5}"#, 422, "body"),
        // Found by schemathesis: serde reads a struct from the array of its fields too.
        (path, "[null]", 422, "body"),
        (path, "null", 422, "body"),
        (path, "not json", 400, "body"),
        (path, "", 400, "body"),
    ] {
        let (status, answer) = act(a, "PUT", path, Some(TOKEN), body).await;
        assert_error(status, &answer, expected, mentions);
    }
    // A body not declared as JSON: 415, as JSON like every error.
    let bearer = format!("Bearer {TOKEN}");
    let headers = [("Authorization", bearer.as_str())];
    let (status, answer) = http_request(a, "PUT", path, &headers, stop).await;
    assert_error(status, &answer, 415, "body");
    let long = format!(
        r#"{{"reason": "{}"}}"#,
        "x".repeat(api::MAX_REASON_CHARS + 1)
    );
    let (status, answer) = act(a, "PUT", path, Some(TOKEN), &long).await;
    assert_error(status, &answer, 400, "reason");
    let (status, answer) = act(a, "DELETE", "/api/v1/opt-outs/555", Some(TOKEN), "").await;
    assert_error(status, &answer, 400, "phone");

    // Removed (204) in yet another form; then absent (404).
    let remove = "/api/v1/opt-outs/1-212-359-5129";
    let (status, body) = act(a, "DELETE", remove, Some(TOKEN), "").await;
    assert_eq!((status, body.as_str()), (204, ""));
    let (status, body) = act(a, "DELETE", remove, Some(TOKEN), "").await;
    assert_error(status, &body, 404, "not on the opt-out list");
    assert_eq!(
        redis(&w.redis.url(), &["HKEYS", hash]).await,
        "+12027723610"
    );
}

async fn a_dispatch_is_paused_and_resumed_with_who_and_why(w: &World) {
    let (a, b) = (w.a.port, w.b.port);
    let path = "/api/v1/dispatches/lit/DIS37405/pause";
    let key = "api-dispatch-monitor:paused:LIT:DIS37405";
    let why = r#"{"reason": "customer called 212-359-5129: no more texts"}"#;
    let (status, body) = act(b, "PUT", path, Some(TOKEN), why).await;
    assert_error(status, &body, 403, "MONITOR_API_TOKEN");
    let (status, body) = act(a, "PUT", path, None, why).await;
    assert_error(status, &body, 401, "Bearer");
    for (path, body, status, mentions) in [
        (
            "/api/v1/dispatches/NO-SUCH-VENDOR/DIS37405/pause",
            why,
            404,
            "unknown vendor NO-SUCH-VENDOR",
        ),
        (
            "/api/v1/dispatches/LIT/%20/pause",
            why,
            400,
            "dispatch_number",
        ),
        (path, "{}", 422, "body"),
        (path, r#"["paused by hand"]"#, 422, "body"),
        (path, r#"{"reason": ""}"#, 400, "reason"),
    ] {
        let (got, answer) = act(a, "PUT", path, Some(TOKEN), body).await;
        assert_error(got, &answer, status, mentions);
    }
    assert_eq!(redis(&w.redis.url(), &["EXISTS", key]).await, "0");

    // Paused (201), paused again (200): one key, 30 days.
    let (status, body) = act(a, "PUT", path, Some(TOKEN), why).await;
    assert_eq!(status, 201, "{body}");
    let paused: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&paused["vendor"], &paused["by"]),
        (&"LIT".into(), &"api".into())
    );
    assert_eq!(
        paused["reason"],
        "customer called ***-***-5129: no more texts"
    );
    let (status, body) = act(a, "PUT", path, Some(TOKEN), why).await;
    assert_eq!(status, 200, "{body}");
    let stored: Value = serde_json::from_str(&redis(&w.redis.url(), &["GET", key]).await).unwrap();
    assert_eq!(
        stored["reason"],
        "customer called 212-359-5129: no more texts"
    );
    assert_eq!(stored["by"], "api");
    let ttl: i64 = redis(&w.redis.url(), &["TTL", key]).await.parse().unwrap();
    assert!((30 * 86_400 - 60..=30 * 86_400).contains(&ttl), "{ttl}");

    // The dispatch view shows the pause (masked), and the journal who paused it and why.
    let view = wait_for_json(
        b,
        "/api/v1/dispatches/LIT/DIS37405",
        "the pause journaled",
        |v| {
            v["journal"]
                .as_array()
                .is_some_and(|j| j.iter().any(|e| e["kind"] == "pause"))
        },
    )
    .await;
    assert_eq!(view["paused"]["by"], "api");
    assert_eq!(view["paused"]["reason"], paused["reason"]);
    let entry = view["journal"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "pause")
        .unwrap()
        .clone();
    assert_eq!(
        (&entry["outcome"], &entry["replica"]),
        (&"paused".into(), &"replica-a".into())
    );
    let detail = entry["detail"].as_str().unwrap();
    assert!(
        detail.contains("by api") && detail.contains("no more texts"),
        "{detail}"
    );
    assert!(!detail.contains("212-359-5129"), "{detail}");

    // The next cycle's snapshot carries the pause into the dispatch list.
    let cycles = wait_for_cycles(a, "LIT", 1).await.len();
    let (status, body) = act(a, "POST", "/api/v1/vendors/LIT/cycle", Some(TOKEN), "").await;
    assert_eq!(status, 202, "{body}");
    wait_for_cycles(a, "LIT", cycles + 1).await;
    let listed = wait_for_json(
        b,
        "/api/v1/dispatches?q=DIS37405",
        "the list shows the pause",
        |l| l[0]["paused"].is_object(),
    )
    .await;
    assert_eq!(listed[0]["paused"]["by"], "api");
    assert_eq!(listed[0]["paused"]["reason"], paused["reason"]);

    // Resumed (204), then not paused (404); the resume journaled.
    let (status, body) = act(a, "DELETE", path, Some(TOKEN), "").await;
    assert_eq!((status, body.as_str()), (204, ""));
    let (status, body) = act(a, "DELETE", path, Some(TOKEN), "").await;
    assert_error(status, &body, 404, "not paused");
    assert_eq!(redis(&w.redis.url(), &["EXISTS", key]).await, "0");
    let view = wait_for_json(
        a,
        "/api/v1/dispatches/LIT/DIS37405",
        "the resume journaled",
        |v| {
            v["journal"]
                .as_array()
                .is_some_and(|j| j.iter().any(|e| e["outcome"] == "resumed"))
        },
    )
    .await;
    assert_eq!(view["paused"], Value::Null);
}

async fn plans_are_computed_at_a_time(w: &World) {
    let before = w.sim.outbox().sms.len();
    // An unescaped `+` reads as a space: ` 90m` and `… 02:00` are accepted as `+90m`, `+02:00`.
    for at in [
        "%2B6h",
        "6h",
        "+90m",
        "%2B0m",
        "2030-01-01T00:00:00Z",
        "2030-01-01T00:00:00+02:00",
    ] {
        let path = format!("/api/v1/plan?vendor=LIT&at={at}");
        let (status, body) = http_get(w.a.port, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(serde_json::from_str::<Value>(&body).unwrap().is_array());
    }
    let soon = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let path = format!("/api/v1/plan?at={}", soon.replace('+', "%2B"));
    let (status, body) = http_get(w.a.port, &path).await;
    assert_eq!(status, 200, "{path}: {body}");
    for bad in [
        "",
        "tonight",
        "%2B169h",
        "%2B6d",
        "%2B06h",
        "%20%2B6h",
        "2026-13-01T00:00:00Z",
        "2027-02-29T00:00:00Z",
    ] {
        let (status, body) = http_get(w.a.port, &format!("/api/v1/plan?at={bad}")).await;
        assert_error(status, &body, 400, "invalid parameter at");
    }
    assert_eq!(w.sim.outbox().sms.len(), before, "plans send nothing");
    the_plan_at_a_time_shows_the_reminders_due_then(w).await;
}

/// DIS50001, confirmed and recorded, its appointment 30 h away: nothing is due now, and its 12 h
/// reminders are due in 18 h 30 min.
async fn the_plan_at_a_time_shows_the_reminders_due_then(w: &World) {
    let appointment = local_time(chrono::Utc::now(), chrono::Duration::hours(30), "Pacific");
    let spec = DispatchSpec {
        status: Status::Confirmed,
        appointment: Some((appointment.unwrap(), "Pacific".to_owned())),
        tech_name: Some("Joe Malone".to_owned()),
        tech_phone: Some("+1 212 555 0102".to_owned()),
        client_phone: Some("+1 212 555 0101".to_owned()),
        site: Some("Red Rose Inn".to_owned()),
        street: Some("160 Broadway".to_owned()),
        ..DispatchSpec::new("DIS50001", "5000001")
    };
    // The fixture list is served as it is: DIS50001's record goes after it.
    let mut records = test_support::fixtures::json("lit-dispatch-list.json")["DispatchList"]
        .as_array()
        .unwrap()
        .clone();
    records.push(wiring::vendor_adapters()[0].record_for(&spec).unwrap());
    w.sim.set_records(&VendorName::fixed("LIT"), records);
    w.sim.book("5000001", "DIS50001");
    for recorded in [
        "Dispatch Management - Dispatch Confirmed\nDispatch scheduled",
        "Dispatch confirmation SMS sent to +12125550101",
        "Dispatch Management - Field Engineer Confirmed\n\nField Engineer\nJoe Malone\n+1 212 555 0102",
        "Dispatch confirmation SMS tech sent to +12125550102",
    ] {
        w.sim
            .seed_note("5000001", &format!("#*MetTel's IPA*# DIS50001\n{recorded}"));
    }
    let reminders = |rows: &Value| -> Vec<String> {
        rows.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["dispatch_number"] == "DIS50001")
            .map(|r| r["action"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (status, now) = get_json(w.a.port, "/api/v1/plan?vendor=LIT").await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(reminders(&now), Vec::<String>::new(), "{now}");
    let (status, later) = get_json(w.a.port, "/api/v1/plan?vendor=LIT&at=%2B1110m").await;
    assert_eq!(status, 200, "{later}");
    let due = reminders(&later);
    assert!(
        !due.is_empty() && due.iter().all(|a| a.contains("12h reminder")),
        "{later}"
    );

    // What goes out tonight once the client opted out: the client's text is withheld.
    let opt_out = "/api/v1/opt-outs/212-555-0101";
    let (status, body) = act(w.a.port, "PUT", opt_out, Some(TOKEN), "{}").await;
    assert_eq!(status, 201, "{body}");
    // A plan asked the same way is reused for 10 s (SPEC §18.5): ask for the same instant
    // written without its `+`, which is computed afresh.
    let (_, later) = get_json(w.a.port, "/api/v1/plan?vendor=LIT&at=1110m").await;
    let client: Vec<&Value> = later
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["dispatch_number"] == "DIS50001" && r["recipient"] == "+1******0101")
        .collect();
    assert!(!client.is_empty(), "{later}");
    assert!(
        client
            .iter()
            .all(|r| r["channel"] == "withheld (opted out)"),
        "{later}"
    );
    let (status, _) = act(w.a.port, "DELETE", opt_out, Some(TOKEN), "").await;
    assert_eq!(status, 204);
}
