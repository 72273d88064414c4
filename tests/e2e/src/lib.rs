//! The end-to-end test kit: the simulator ([`bridge_sim`]) loaded with the SPEC's fixture
//! world, for the tests that drive the monitor's production wiring against real
//! `nats-server` and `redis-server` processes.
//!
//! Test-only: nothing in production may depend on this crate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bridge_sim::{Sim, SimConfig};
use domain::{VendorAdapter, VendorName};

pub use bridge_sim;
pub use test_support::wire::{http_get, http_request, redis};

/// Starts the simulated bridges for `vendors` on `nats_url` (as [`start`] does), with
/// the SPEC fixture lists for LIT and CTS (other vendors serve an empty list) and the portal's
/// Dispatch Requested notes for the dispatches of those lists that are ours: LIT
/// DIS37405-DIS37407 and CTS IGZ_0001-IGZ_0003. DIS37409's ticket only has a note for another
/// dispatch (DIS374090).
pub async fn spec_world(nats_url: &str, vendors: Vec<Arc<dyn VendorAdapter>>) -> Sim {
    let sim = start(nats_url, vendors).await;
    let lists = [
        ("LIT", "lit-dispatch-list.json", "DispatchList"),
        ("CTS", "cts-dispatch-list.json", "records"),
    ];
    for (vendor, fixture, field) in lists {
        let records = test_support::fixtures::json(fixture)[field]
            .as_array()
            .unwrap()
            .clone();
        sim.set_records(&VendorName::fixed(vendor), records);
    }
    for (ticket, key) in [
        ("3544800", "DIS37405"),
        ("3544801", "DIS37406"),
        ("3544802", "DIS37407"),
        ("4694961", "IGZ_0001"),
        ("4694962", "IGZ_0002"),
        ("4694963", "IGZ_0003"),
        ("3544803", "DIS374090"),
    ] {
        sim.book(ticket, key);
    }
    sim
}

/// Starts the simulated bridges for `vendors`, every list empty, recording every request. The
/// notifier delivers every SMS, even one whose idempotency key it saw: tests see every send.
pub async fn start(nats_url: &str, vendors: Vec<Arc<dyn VendorAdapter>>) -> Sim {
    let config = SimConfig {
        record_requests: true,
        deduplicate_sms: false,
        ..SimConfig::new(nats_url, vendors)
    };
    Sim::start(config)
        .await
        .expect("the simulated bridges start")
}

/// The monitor's binary, built beside the test binaries by the workspace's tests.
pub fn monitor_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("dispatch-monitor");
    assert!(
        binary.exists(),
        "{} is missing: run the workspace's tests (`cargo test --workspace`), which build it",
        binary.display()
    );
    binary
}

/// `dispatch-monitor run` with only `env` (nothing inherited), serving HTTP on 127.0.0.1, its
/// standard output discarded; the caller chooses what becomes of standard error and spawns it.
pub fn monitor_run<'a>(env: impl IntoIterator<Item = (&'a str, String)>) -> std::process::Command {
    let mut command = std::process::Command::new(monitor_binary());
    command
        .arg("run")
        .env_clear()
        .env("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1")
        .envs(env)
        .stdout(std::process::Stdio::null());
    command
}
