//! Benchmarks of the dispatch monitor's hot paths (run with `cargo bench -p domain`).
//!
//! Performance targets live here, never in timed test assertions:
//!
//! - `rules::plan` for one confirmed dispatch: **< 100 µs** per dispatch, both for a full
//!   confirmation stage (note, client SMS, Field Engineer note, tech SMS) and for a reminder.
//! - A 1000-dispatch **steady-state** vendor cycle (every note already in place, nothing to do)
//!   through `Engine::run_cycle(Mode::Execute)` over the in-memory ports, concurrency 8:
//!   **< 200 ms**.
//! - A 1000-dispatch **first** cycle (every dispatch registered and confirmed: 4 steps, 3 SMS and
//!   4 notes each, plus a Slack line per step) over the same ports: **< 1 s**.
//!
//! The in-memory ports do no I/O, so the cycle numbers measure the engine's own cost (mapping,
//! note matching, planning, ledger checks, rendering, executing) — the budget left for the
//! real NATS and Redis round trips is everything else in the 15-minute interval.
//!
//! Measurement is kept short (10 samples, 3 s each) so the whole run stays well under two
//! minutes on two cores.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use domain::memory::{ManualClock, MemoryWorld, WorldEvent};
use domain::phrases::{CONFIRMED, CONFIRMED_SMS, CONFIRMED_SMS_TECH, FE_CONFIRMED, REQUESTED};
use domain::rules::{RuleInput, RuleSettings, plan};
use domain::{Engine, EngineSettings, Mode, Status, TicketId, VendorName};
use serde_json::{Value, json};

// The test builders: LIT templates, a fully populated dispatch, notes, the flat vendor.
#[path = "../tests/domain/common.rs"]
#[allow(dead_code)]
mod common;

use common::{FlatVendor, hours_before, lit_dispatch, lit_policy, lit_templates, notes, record};

// ---------------------------------------------------------------------------------------------
// rules::plan

fn bench_plan(c: &mut Criterion) {
    let templates = lit_templates();
    let settings = RuleSettings::default();
    let dispatch = lit_dispatch(Status::Confirmed);

    // Only the portal's note: the whole confirmation stage is due.
    let fresh = notes("DIS37405", &[REQUESTED]);
    // The stage is done; 11.5 h before the appointment the 12 h reminders are due.
    let fe_note = format!("{FE_CONFIRMED}\n\nField Engineer\nJoe Malone\n+1 212");
    let stage_done = notes(
        "DIS37405",
        &[
            REQUESTED,
            CONFIRMED,
            CONFIRMED_SMS,
            CONFIRMED_SMS_TECH,
            &fe_note,
        ],
    );

    let confirmation = RuleInput {
        dispatch: &dispatch,
        notes: &fresh,
        now: hours_before(30.0),
        policy: lit_policy(),
        settings: &settings,
        templates: &templates,
        safeguards: &domain::safeguards::SafeguardFacts::NONE,
    };
    assert_eq!(
        plan(&confirmation).steps.len(),
        4,
        "full confirmation stage"
    );
    let reminder = RuleInput {
        notes: &stage_done,
        now: hours_before(11.5),
        ..confirmation
    };
    assert_eq!(plan(&reminder).steps.len(), 2, "client and tech reminders");

    let mut group = c.benchmark_group("plan");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("confirmation_stage", |b| {
        b.iter(|| plan(black_box(&confirmation)))
    });
    group.bench_function("reminder", |b| b.iter(|| plan(black_box(&reminder))));
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Whole vendor cycles over the in-memory world

struct World {
    world: MemoryWorld,
    engine: Engine,
    vendor: VendorName,
}

/// `n` confirmed dispatches of ours, each ticket seeded with its Dispatch Requested note.
fn world(n: usize) -> World {
    let clock = Arc::new(ManualClock::new(hours_before(30.0)));
    let world = MemoryWorld::new(clock);
    let vendor = VendorName::parse("LIT").unwrap();
    let records: Vec<Value> = (0..n)
        .map(|i| record(&format!("DIS{i}"), &format!("{}", 100_000 + i), "confirmed"))
        .collect();
    world.source.set_list(&vendor, json!({ "list": records }));
    for i in 0..n {
        world.tickets.seed_note(
            &TicketId::parse(&format!("{}", 100_000 + i)).unwrap(),
            &format!("#*MetTel's IPA*# DIS{i}\n{REQUESTED}\n"),
            hours_before(48.0),
        );
    }
    // Every dispatch texts the same site contact, which the daily cap per number would hold
    // after ten texts: it is off here.
    let settings = EngineSettings {
        concurrency: 8,
        rules: domain::rules::RuleSettings {
            daily_cap: domain::safeguards::DailyCap(0),
            ..Default::default()
        },
        ..EngineSettings::default()
    };
    let engine = Engine::new(world.ports(), settings)
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(FlatVendor::new(), &BTreeMap::new())
        .unwrap();
    World {
        world,
        engine,
        vendor,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn bench_cycle(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("cycle");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    for n in [100, 1000] {
        // Sanity: the first cycle acts on every dispatch, the second has nothing to do.
        let check = world(n);
        let first = rt
            .block_on(check.engine.run_cycle(&check.vendor, Mode::Execute))
            .unwrap();
        assert_eq!(first.dispatches.len(), n);
        assert!(first.dispatches.iter().all(|d| d.steps.len() == 4));
        let again = rt
            .block_on(check.engine.run_cycle(&check.vendor, Mode::Execute))
            .unwrap();
        assert!(again.dispatches.iter().all(|d| d.steps.is_empty()));
        let count = |kind: fn(&WorldEvent) -> bool| {
            check
                .world
                .log
                .entries()
                .iter()
                .filter(|entry| kind(&entry.event))
                .count()
        };
        assert_eq!(count(|e| matches!(e, WorldEvent::Sms { .. })), n * 3);
        assert_eq!(count(|e| matches!(e, WorldEvent::Note { .. })), n * 4);
        assert_eq!(count(|e| matches!(e, WorldEvent::Registered { .. })), n);

        group.bench_function(format!("first/{n}"), |b| {
            b.iter_batched(
                || world(n),
                |w| {
                    let report = rt
                        .block_on(w.engine.run_cycle(&w.vendor, Mode::Execute))
                        .unwrap();
                    // Dropping the world and report is left out of the timing.
                    (w, report)
                },
                BatchSize::PerIteration,
            )
        });

        // `check` has had its first cycle: every later one is the steady state.
        group.bench_function(format!("steady/{n}"), |b| {
            b.iter(|| {
                rt.block_on(check.engine.run_cycle(&check.vendor, Mode::Execute))
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_plan, bench_cycle);
criterion_main!(benches);
