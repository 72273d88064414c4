//! Memory stays flat over many cycles whether or not `/metrics` is scraped (SPEC §13.9): 500
//! short leased cycles over real NATS and Redis and the simulated bridges, the Prometheus
//! recorder installed and its upkeep running as in `run`, `/metrics` never read. The resident
//! memory after the warm-up and at the end is printed; only a generous bound is asserted.
//! Its own test binary, so the process's memory is the soak's alone.
//!
//! `SOAK_WITHOUT_UPKEEP=1` leaves the upkeep out, to see the growth it prevents;
//! `SOAK_CYCLES` and `SOAK_DISPATCHES` change the size.

use std::time::{Duration, Instant};

use chrono::Utc;
use dispatch_monitor::service::{HeldLeases, LeasedCycle, leased_cycle};
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::{telemetry, wiring};
use domain::{DispatchSpec, Status, VendorName};
use e2e::bridge_sim::{Sim, SimConfig, scenario};
use test_support::servers::{NatsServer, RedisServer};
use tokio_util::sync::CancellationToken;

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_over_500_cycles_without_a_scrape() {
    let cycles = env_number("SOAK_CYCLES", 500);
    let dispatches = env_number("SOAK_DISPATCHES", 40);
    let with_upkeep = std::env::var("SOAK_WITHOUT_UPKEEP").is_err();

    let nats = NatsServer::new();
    let redis = RedisServer::new();
    // The bridges keep no request log here: only the monitor's memory may grow.
    let config = SimConfig::new(&nats.url(), wiring::vendor_adapters());
    let sim = Sim::start(config).await.unwrap();
    let lit = VendorName::fixed("LIT");
    // Steady state: every dispatch of ours is confirmed and has all its notes already after
    // the first cycle, so later cycles read tickets and ledgers and send nothing.
    for i in 0..dispatches {
        let number = format!("DIS{i}");
        let ticket = format!("{}", 6_000_000 + i);
        let mut spec = DispatchSpec::new(&number, &ticket);
        spec.status = Status::Confirmed;
        let at = scenario::local_time(Utc::now(), chrono::Duration::hours(40), "Pacific");
        spec.appointment = at.map(|t| (t, "Pacific".to_owned()));
        // Each its own site contact: the daily cap per number (SPEC §17.2) holds a number
        // after ten texts.
        spec.client_phone = Some(format!("+1 212 555 {:04}", 1000 + i));
        sim.book(&ticket, &number);
        sim.upsert(&lit, spec);
    }
    let raw = RawSettings::from_pairs([
        ("NATS_SERVER1", nats.url().as_str()),
        ("REDIS_URL", redis.url().as_str()),
        ("ENVIRONMENT_NAME", "soak"),
        ("MONITOR_ALERT_LEVEL", "errors"),
        ("MONITOR_CONCURRENCY", "8"),
    ]);
    let settings = Settings::from_raw(&raw, &wiring::vendor_names()).unwrap();
    let metrics = telemetry::install_metrics().unwrap();
    let stop = CancellationToken::new();
    if with_upkeep {
        let every = Duration::from_millis(200);
        tokio::spawn(telemetry::keep_metrics_bounded(
            metrics.clone(),
            every,
            stop.clone(),
        ));
    }
    let infra = wiring::connect(&settings).await.unwrap();
    let engine = wiring::build_engine(&settings, infra.ports.clone()).unwrap();
    let held = HeldLeases::default();
    let ttl = Duration::from_secs(10);

    let started = Instant::now();
    let mut warm = 0;
    for cycle in 0..cycles {
        let outcome = leased_cycle(&engine, infra.lease.as_ref(), &held, &lit, ttl, &stop).await;
        assert!(matches!(outcome, LeasedCycle::Ran(Ok(_))), "{outcome:?}");
        if cycle == cycles / 10 {
            warm = rss_kib();
        }
    }
    let end = rss_kib();
    stop.cancel();
    eprintln!(
        "soak: {cycles} cycles of {dispatches} dispatches in {:.1} s, upkeep {}: resident \
         memory {:.1} MiB after the warm-up, {:.1} MiB at the end ({:+.1} MiB); /metrics never \
         scraped",
        started.elapsed().as_secs_f64(),
        if with_upkeep { "on" } else { "off" },
        warm as f64 / 1024.0,
        end as f64 / 1024.0,
        (end as f64 - warm as f64) / 1024.0
    );
    assert_eq!(
        sim.outbox().sms.len(),
        dispatches,
        "one confirmation each, once"
    );
    if with_upkeep {
        assert!(
            end < warm + 24 * 1024,
            "resident memory grew from {warm} KiB to {end} KiB"
        );
    }
    // The metrics are still there when someone scrapes at last.
    assert!(
        metrics
            .render()
            .contains("dispatch_monitor_rpc_duration_seconds")
    );
}
