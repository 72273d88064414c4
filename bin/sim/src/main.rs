//! `dispatch-sim`: the bridges the dispatch monitor talks to — every wired vendor's list, Bruin
//! and the notifier — simulated over NATS from a scenario, with a live timeline on standard
//! output and the outbox on its own HTTP port. See `bridge_sim` for the pieces.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bridge_sim::{Scenario, Sim, SimConfig, http, timeline};
use clap::Parser;

/// Simulates the bridges of the dispatch monitor over NATS, from a scenario.
#[derive(Debug, Parser)]
#[command(name = "dispatch-sim", version, about)]
struct Args {
    /// The NATS server.
    #[arg(long, env = "NATS_SERVER1", default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// Redis, for large messages (SPEC §3); optional.
    #[arg(long, env = "REDIS_URL")]
    redis: Option<String>,
    /// A scenario file (TOML); the built-in day when absent.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Multiplies every time of the timeline (0.5: twice as fast).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// The address of the simulator's HTTP port (`/`, `/outbox`, `/faults`).
    #[arg(long, default_value = "127.0.0.1:5100")]
    http: SocketAddr,
    /// Deliver an SMS again even when its idempotency key was delivered before.
    #[arg(long)]
    no_dedup: bool,
    /// Print Slack lines too.
    #[arg(long)]
    slack: bool,
    /// Seconds without a note or SMS, after the timeline's last step, that end the simulated
    /// day: its summary is printed then.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    settle: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let vendors: Vec<_> = dispatch_monitor::wiring::vendor_names();
    let scenario = match load_scenario(args.scenario.as_deref(), &vendors) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("dispatch-sim: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dispatch-sim: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, scenario)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dispatch-sim: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The scenario file, or the built-in day; errors read `FILE:LINE: reason`.
fn load_scenario(
    path: Option<&std::path::Path>,
    vendors: &[domain::VendorName],
) -> Result<Scenario, String> {
    let Some(path) = path else {
        return Scenario::default_day(vendors)
            .map_err(|error| format!("built-in scenario: {error}"));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    Scenario::parse(&text, vendors)
        .map_err(|error| format!("{}:{}: {}", path.display(), error.line, error.reason))
}

async fn run(args: Args, scenario: Scenario) -> anyhow::Result<()> {
    let config = SimConfig {
        redis_url: args.redis.clone(),
        deduplicate_sms: !args.no_dedup,
        ..SimConfig::new(&args.nats, dispatch_monitor::wiring::vendor_adapters())
    };
    let sim = Arc::new(
        Sim::start(config)
            .await
            .context("cannot start the bridges")?,
    );
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("cannot listen on {}", args.http))?;
    let address = listener.local_addr()?;
    tokio::spawn(axum::serve(listener, http::router(sim.clone())).into_future());
    println!(
        "dispatch-sim: {} — bridges on {}, outbox at http://{address}/ and /outbox",
        scenario.name, args.nats
    );
    let mut events = sim.subscribe();
    sim.play(&scenario, args.time_scale);
    let settle = Duration::try_from_secs_f64(args.settle).unwrap_or(Duration::from_secs(30));
    let timeline_end = scale(last_step(&scenario), args.time_scale);
    show_the_day(&sim, &mut events, &args, timeline_end, settle).await;
    println!("dispatch-sim: stopped; {}.", summary(&sim.outbox()));
    Ok(())
}

/// Prints the timeline until Ctrl-C, and the summary once the day is over: `settle` without a
/// note or SMS after the timeline's last step.
async fn show_the_day(
    sim: &Sim,
    events: &mut tokio::sync::broadcast::Receiver<bridge_sim::SimEvent>,
    args: &Args,
    timeline_end: Duration,
    settle: Duration,
) {
    let started = tokio::time::Instant::now();
    let mut day_over_at = Some(started + timeline_end + settle);
    loop {
        let day_over = async {
            match day_over_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => {
                    let activity = matches!(
                        event,
                        bridge_sim::SimEvent::Note { .. } | bridge_sim::SimEvent::Sms { .. }
                    );
                    if let Some(at) = day_over_at.as_mut().filter(|_| activity) {
                        *at = (*at).max(tokio::time::Instant::now() + settle);
                    }
                    if matches!(event, bridge_sim::SimEvent::Slack { .. }) && !args.slack {
                        continue;
                    }
                    print!("{}", timeline::render(started.elapsed(), &event, &sim.labels()));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    println!("... {missed} events not shown");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            () = day_over => {
                day_over_at = None;
                println!("dispatch-sim: the simulated day is over: {}.", summary(&sim.outbox()));
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
}

/// What the bridges received, in one line.
fn summary(outbox: &bridge_sim::Outbox) -> String {
    format!(
        "{} SMS delivered ({} deduplicated), {} notes, {} Slack lines",
        outbox.sms.len(),
        outbox.deduplicated,
        outbox.notes.len(),
        outbox.slack.len()
    )
}

/// When the scenario's last timed step happens, unscaled.
fn last_step(scenario: &Scenario) -> Duration {
    let changes = scenario.changes.iter().map(|change| change.at);
    let faults = scenario.faults.iter().map(|fault| fault.at);
    let appearances = scenario.dispatches.iter().map(|dispatch| dispatch.appears);
    changes
        .chain(faults)
        .chain(appearances)
        .max()
        .unwrap_or_default()
}

/// `at` multiplied by the time scale.
fn scale(at: Duration, time_scale: f64) -> Duration {
    Duration::try_from_secs_f64(at.as_secs_f64() * time_scale).unwrap_or(at)
}
