//! A vendor cycle over the real wire: `cargo bench -p e2e --bench wire_cycle`.
//!
//! Starts `nats-server` and `redis-server` on free loopback ports and the simulated bridges,
//! serves a LIT list of N confirmed dispatches of ours, and times one `once` cycle through the
//! production wiring: the first (every dispatch: ticket read, registry write, 4 notes and 3 SMS
//! under the ledger, Slack lines) and a steady-state one (ticket reads and ledger checks only).
//!
//! Target: a steady-state cycle of 500 dispatches at the default concurrency (8) well under the
//! 15-minute interval — under 10 s on two cores, bridges included.

use std::time::{Duration, Instant};

use dispatch_monitor::service::{self, LeasedCycle};
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::wiring;
use domain::VendorName;
use e2e::Bridges;
use serde_json::json;
use test_support::servers::{NatsServer, RedisServer};

fn lit_record(i: usize) -> serde_json::Value {
    json!({
        "Dispatch_Number": format!("DIS{i}"),
        "MetTel_Bruin_TicketID": format!("{}", 500_000 + i),
        "Dispatch_Status": "Request Confirmed",
        "Date_of_Dispatch": "2099-03-16",
        "Hard_Time_of_Dispatch_Local": "4PM-6PM",
        "Hard_Time_of_Dispatch_Time_Zone_Local": "Pacific Time",
        "Tech_First_Name": "Joe Malone",
        "Tech_Mobile_Number": "+1 (212) 555-0102",
        "Job_Site_Contact_Name_and_Phone_Number": "Jane Doe +1 212 555 0101",
        "Job_Site": "Red Rose Inn",
        "Job_Site_Street": "160 Broadway",
        "Tech_Arrived_On_Site": false,
    })
}

async fn cycle(settings: &Settings, lit: &VendorName) -> Duration {
    let infra = wiring::connect(settings).await.unwrap();
    let engine = wiring::build_engine(settings, infra.ports.clone()).unwrap();
    let started = Instant::now();
    let outcomes = service::run_once(
        &engine,
        infra.lease.as_ref(),
        settings.lease_ttl.0,
        std::slice::from_ref(lit),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(outcomes[0], LeasedCycle::Ran(Ok(_))),
        "{outcomes:?}"
    );
    infra.flush_alerts(Duration::from_secs(30)).await;
    elapsed
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    let n: usize = if std::env::args().any(|a| a == "--bench") {
        500
    } else {
        20
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let nats = NatsServer::new();
        let redis = RedisServer::new();
        let bridges = Bridges::start(&nats.url()).await;
        let records: Vec<_> = (0..n).map(lit_record).collect();
        bridges.state().lists.insert(
            "lit.dispatch.get".into(),
            json!({"Status": "Success", "DispatchList": records}),
        );
        for i in 0..n {
            bridges.seed_note(
                &format!("{}", 500_000 + i),
                &format!("#*MetTel's IPA*# DIS{i}\nDispatch Management - Dispatch Requested\n"),
            );
        }
        let raw = RawSettings::from_pairs([
            ("NATS_SERVER1", nats.url().as_str()),
            ("REDIS_URL", redis.url().as_str()),
            ("ENVIRONMENT_NAME", "bench"),
            ("MONITOR_ALERT_LEVEL", "errors"),
        ]);
        let settings = Settings::from_raw(&raw, &wiring::vendor_names()).unwrap();
        let lit = VendorName::parse("LIT").unwrap();

        let first = cycle(&settings, &lit).await;
        assert_eq!(bridges.state().sms.len(), n * 3);
        assert_eq!(bridges.state().appended.len(), n * 4);
        let steady = cycle(&settings, &lit).await;
        assert_eq!(bridges.state().sms.len(), n * 3, "nothing is sent twice");
        println!(
            "wire_cycle: {n} LIT dispatches, concurrency {}: first cycle {:.2} s \
             ({} SMS, {} notes), steady-state cycle {:.2} s",
            settings.concurrency,
            first.as_secs_f64(),
            n * 3,
            n * 4,
            steady.as_secs_f64()
        );
    });
}
