//! `dispatch-monitor run` over highly available NATS and Redis (SPEC §16): a 3-node
//! `nats-server` cluster given as a seed list, and a Redis primary with a replica and three
//! sentinels. While cycles run, each NATS node in turn (so also the one the service is
//! connected to) and then the Redis primary are killed; the service carries on without a
//! restart, failed steps go again next cycle, nothing is sent twice (the notifier
//! deduplicates) and nothing is lost.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::{DispatchSpec, Status, VendorName};
use e2e::bridge_sim::Sim;
use e2e::bridge_sim::scenario::local_time;
use e2e::http_get;
use test_support::ha::{NatsCluster, RedisSentinels};
use test_support::servers::free_port;

/// The service's process, killed when dropped.
struct Monitor(Child);

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_monitor(cluster: &NatsCluster, sentinels: &RedisSentinels, port: u16) -> Monitor {
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url()).collect();
    let child = e2e::monitor_run([
        ("NATS_SERVER1", urls[..2].join(",")),
        ("NATS_SERVER2", urls[2].clone()),
        ("REDIS_URL", sentinels.url()),
        ("ENVIRONMENT_NAME", "ha".into()),
        ("DISPATCH_MONITOR_SERVER_PORT", port.to_string()),
        ("MONITOR_LIT_INTERVAL_SECS", "1".into()),
        ("MONITOR_CTS_INTERVAL_SECS", "1".into()),
        ("MONITOR_LEASE_TTL_SECS", "6".into()),
        ("MONITOR_REQUEST_TIMEOUT_SECS", "2".into()),
        ("MONITOR_ALERT_LEVEL", "errors".into()),
        ("RUST_LOG", "warn".into()),
    ])
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    Monitor(child)
}

/// A confirmed LIT dispatch with a tech, booked by the portal, its appointment a day away:
/// the monitor owes it 4 notes and 3 SMS.
fn book(sim: &Sim, n: usize) -> String {
    let number = format!("DIS6{n:04}");
    let ticket = format!("60{n:05}");
    let appointment = local_time(Utc::now(), chrono::Duration::hours(30), "Pacific").unwrap();
    let spec = DispatchSpec {
        status: Status::Confirmed,
        appointment: Some((appointment, "Pacific".to_owned())),
        tech_name: Some(format!("Tech {n}")),
        tech_phone: Some(format!("+1 212 555 {:04}", 2000 + n)),
        client_phone: Some(format!("+1 212 555 {:04}", 1000 + n)),
        site: Some("Red Rose Inn".to_owned()),
        street: Some("160 Broadway".to_owned()),
        ..DispatchSpec::new(&number, &ticket)
    };
    sim.upsert(&VendorName::fixed("LIT"), spec);
    sim.book(&ticket, &number);
    ticket
}

/// Waits until the ticket has the monitor's 4 notes (the portal's note is the fifth).
async fn wait_for_notes(sim: &Sim, ticket: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.ticket_notes(ticket).len() < 5 {
        assert!(
            Instant::now() < deadline,
            "{what}: ticket {ticket} has {:?}",
            sim.ticket_notes(ticket)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_rides_out_the_loss_of_a_nats_node_and_the_redis_primary() {
    let mut cluster = NatsCluster::start(3).await;
    let mut sentinels = RedisSentinels::start().await;
    let sim = e2e::start(&cluster.urls(), dispatch_monitor::wiring::vendor_adapters()).await;
    sim.set_deduplicate_sms(true);
    let port = free_port();
    let mut monitor = start_monitor(&cluster, &sentinels, port);

    let mut tickets = vec![book(&sim, 0)];
    wait_for_notes(&sim, &tickets[0], "before any fault").await;

    // Each NATS node in turn, the connected one among them: work goes on while it is down.
    for i in 0..cluster.nodes.len() {
        cluster.nodes[i].stop();
        let ticket = book(&sim, tickets.len());
        wait_for_notes(&sim, &ticket, &format!("NATS node {i} down")).await;
        tickets.push(ticket);
        cluster.nodes[i].start();
        cluster.wait_until_routed().await;
    }

    // The Redis primary: the sentinels promote the replica, and the service follows.
    let ticket = book(&sim, tickets.len());
    sentinels.primary.stop();
    sentinels.wait_for_primary(sentinels.replica.port()).await;
    wait_for_notes(&sim, &ticket, "after the Redis failover").await;
    tickets.push(ticket);
    let ticket = book(&sim, tickets.len());
    wait_for_notes(&sim, &ticket, "at the end").await;
    tickets.push(ticket);

    // Still the same process, healthy.
    assert!(
        monitor.0.try_wait().unwrap().is_none(),
        "the service exited"
    );
    let (status, body) = http_get(port, "/_health").await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"nats":"up","redis":"up"}"#)
    );

    // Nothing lost, nothing twice: each dispatch's 4 notes once, its 3 SMS delivered once.
    let outbox = sim.outbox();
    for ticket in &tickets {
        let notes = sim.ticket_notes(ticket);
        assert_eq!(notes.len(), 5, "{ticket}: {notes:#?}");
        let mut unique = notes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), notes.len(), "{ticket}: a note twice");
    }
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for sms in &outbox.sms {
        *per_key
            .entry(sms.idempotency_key.as_deref().unwrap_or("none"))
            .or_default() += 1;
    }
    assert!(per_key.values().all(|count| *count == 1), "{per_key:#?}");
    assert_eq!(outbox.sms.len(), tickets.len() * 3, "{per_key:#?}");
    eprintln!(
        "{} dispatches, {} SMS delivered once each, {} repeated requests answered without delivering",
        tickets.len(),
        outbox.sms.len(),
        outbox.deduplicated
    );
}
