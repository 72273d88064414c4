//! `dispatch-bench`: measures the real `dispatch-monitor once` from outside, against the
//! simulated bridges over real `nats-server` and `redis-server` started on free loopback ports.
//! Each ticket-details request waits L; with concurrency C a cycle over N dispatches cannot
//! take less than N·L/C (the bound). One row per cycle: wall, bound, wall ÷ bound, how long the
//! simulated bridge really held each ticket-details request and wall ÷ the bound with that time
//! instead of L, Bruin requests per dispatch, SMS and notes sent, CPU (user + sys) and peak RSS
//! of the monitor.
//!
//! ```sh
//! cargo build --release -p dispatch-monitor -p dispatch-bench
//! target/release/dispatch-bench --dispatches 1000 --latency-ms 20 --concurrency 8
//! ```

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bridge_sim::{Fault, Sim, SimConfig, subjects};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use test_support::servers::{NatsServer, RedisServer};

mod world;

#[derive(Debug, Parser)]
#[command(name = "dispatch-bench", about = "Benchmarks `dispatch-monitor once`.")]
struct Args {
    #[command(subcommand)]
    measure: Option<Measure>,
    /// Dispatches in the world (several: one world each), e.g. `1000,10000`.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    dispatches: Vec<usize>,
    /// Latency added to every Bruin ticket-details reply, in milliseconds (several allowed).
    #[arg(long, value_delimiter = ',', default_value = "20")]
    latency_ms: Vec<u64>,
    /// MONITOR_CONCURRENCY (several allowed).
    #[arg(long, value_delimiter = ',', default_value = "8")]
    concurrency: Vec<usize>,
    /// `once` runs per world; the first registers every dispatch and sends what is owed.
    #[arg(long, default_value_t = 2)]
    cycles: usize,
    /// Percent of CTS dispatches (the rest are LIT).
    #[arg(long, default_value_t = 0)]
    cts_percent: usize,
    /// Percent of dispatches that need their confirmation sent on the first cycle.
    #[arg(long, default_value_t = 0)]
    action_percent: usize,
    /// The monitor binary (default: `dispatch-monitor` beside this one).
    #[arg(long)]
    monitor: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Measure {
    /// Internal: runs a command and prints its wall time, CPU and peak RSS as JSON.
    #[command(hide = true)]
    Measure {
        /// The command and its arguments.
        #[arg(trailing_var_arg = true, required = true)]
        command: Vec<String>,
    },
    /// Starts nats-server, redis-server and the simulator with the world of `--dispatches`
    /// (the first value), `--latency-ms` and the mix options, prints `NATS_URL REDIS_URL` on
    /// one line, and serves until stdin closes (scripts/api-load-bench.sh runs `run` on it).
    #[command(hide = true)]
    World,
}

/// What one measured run cost.
#[derive(Debug, Serialize, Deserialize)]
struct Cost {
    wall_s: f64,
    cpu_s: f64,
    max_rss_kib: i64,
    success: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Measure::Measure { command }) = &args.measure {
        return measure(command);
    }
    if let Some(Measure::World) = &args.measure {
        return serve_world(&args);
    }
    let monitor = match &args.monitor {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("dispatch-monitor"),
    };
    if !monitor.exists() {
        bail!(
            "{} is missing: build it first (`cargo build --release -p dispatch-monitor`) or pass --monitor",
            monitor.display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    println!(
        "{:>6} {:>5} {:>4} {:>5} {:>8} {:>8} {:>6} {:>8} {:>6} {:>9} {:>5} {:>6} {:>7} {:>8}",
        "N",
        "L ms",
        "C",
        "cycle",
        "wall s",
        "bound s",
        "ratio",
        "held ms",
        "÷held",
        "bruin/d",
        "sms",
        "notes",
        "cpu s",
        "rss MiB"
    );
    for &dispatches in &args.dispatches {
        for &latency in &args.latency_ms {
            for &concurrency in &args.concurrency {
                let mix = world::Mix {
                    dispatches,
                    cts_percent: args.cts_percent,
                    action_percent: args.action_percent,
                };
                let run = Run {
                    mix,
                    latency: Duration::from_millis(latency),
                    concurrency,
                    cycles: args.cycles,
                    monitor: monitor.clone(),
                };
                runtime.block_on(run.execute())?;
            }
        }
    }
    Ok(())
}

/// One world, measured over `cycles` runs of `once`.
struct Run {
    mix: world::Mix,
    latency: Duration,
    concurrency: usize,
    cycles: usize,
    monitor: PathBuf,
}

impl Run {
    async fn execute(&self) -> anyhow::Result<()> {
        let nats = NatsServer::new();
        let redis = RedisServer::new();
        let config = SimConfig {
            redis_url: Some(redis.url()),
            ..SimConfig::new(&nats.url(), dispatch_monitor::wiring::vendor_adapters())
        };
        let sim = Sim::start(config).await.context("the simulator starts")?;
        let owed = world::load(&sim, &self.mix);
        if !self.latency.is_zero() {
            let millis = u64::try_from(self.latency.as_millis())?;
            sim.add_fault(&Fault {
                subject: subjects::TICKET_DETAILS.to_owned(),
                latency_ms: Some(millis),
                ..Fault::default()
            });
        }
        let mut before = Counts::of(&sim);
        for cycle in 1..=self.cycles {
            let cost = self.once(&nats, &redis)?;
            let after = Counts::of(&sim);
            self.print_row(cycle, &cost, &before, &after);
            if cycle == 1
                && (after.sms - before.sms != owed.sms || after.notes - before.notes != owed.notes)
            {
                eprintln!(
                    "warning: the first cycle sent {} SMS and {} notes; the world owed {} and {}",
                    after.sms - before.sms,
                    after.notes - before.notes,
                    owed.sms,
                    owed.notes
                );
            }
            before = after;
        }
        Ok(())
    }

    /// Runs `dispatch-monitor once` under `dispatch-bench measure`.
    fn once(&self, nats: &NatsServer, redis: &RedisServer) -> anyhow::Result<Cost> {
        let output = Command::new(std::env::current_exe()?)
            .arg("measure")
            .arg(&self.monitor)
            .arg("once")
            .env_clear()
            .envs([
                ("NATS_SERVER1", nats.url()),
                ("REDIS_URL", redis.url()),
                ("ENVIRONMENT_NAME", "bench".to_owned()),
                ("MONITOR_CONCURRENCY", self.concurrency.to_string()),
                ("MONITOR_ALERT_LEVEL", "errors".to_owned()),
                // The world texts one site contact from every dispatch, which the daily cap
                // per number (SPEC §17.2) would hold after ten.
                ("MONITOR_SMS_DAILY_CAP", "0".to_owned()),
                ("RUST_LOG", "warn".to_owned()),
            ])
            .stderr(Stdio::inherit())
            .output()?;
        let cost: Cost = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("reading {:?}", String::from_utf8_lossy(&output.stdout)))?;
        if !cost.success {
            bail!("dispatch-monitor once failed");
        }
        Ok(cost)
    }

    fn print_row(&self, cycle: usize, cost: &Cost, before: &Counts, after: &Counts) {
        let n = self.mix.dispatches;
        let bound = n as f64 * self.latency.as_secs_f64() / self.concurrency as f64;
        let ratio = if bound > 0.0 {
            format!("{:.2}", cost.wall_s / bound)
        } else {
            "-".to_owned()
        };
        let requests = after.details - before.details;
        let bruin = requests as f64 / n.max(1) as f64;
        let held_ms = (after.held - before.held).as_secs_f64() * 1000.0 / requests.max(1) as f64;
        // The bound with the time the bridge really held each request instead of L.
        let held_bound = n as f64 * held_ms / 1000.0 / self.concurrency as f64;
        let held_ratio = if bound > 0.0 {
            format!("{:.2}", cost.wall_s / held_bound)
        } else {
            "-".to_owned()
        };
        println!(
            "{:>6} {:>5} {:>4} {:>5} {:>8.2} {:>8.2} {:>6} {:>8.2} {:>6} {:>9.2} {:>5} {:>6} {:>7.3} {:>8.1}",
            n,
            self.latency.as_millis(),
            self.concurrency,
            cycle,
            cost.wall_s,
            bound,
            ratio,
            held_ms,
            held_ratio,
            bruin,
            after.sms - before.sms,
            after.notes - before.notes,
            cost.cpu_s,
            cost.max_rss_kib as f64 / 1024.0,
        );
    }
}

/// The world of `args` (first values) on its own servers until stdin closes.
fn serve_world(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let nats = NatsServer::new();
        let redis = RedisServer::new();
        let config = SimConfig {
            redis_url: Some(redis.url()),
            ..SimConfig::new(&nats.url(), dispatch_monitor::wiring::vendor_adapters())
        };
        let sim = Sim::start(config).await.context("the simulator starts")?;
        let mix = world::Mix {
            dispatches: args.dispatches[0],
            cts_percent: args.cts_percent,
            action_percent: args.action_percent,
        };
        world::load(&sim, &mix);
        let latency = args.latency_ms[0];
        if latency > 0 {
            sim.add_fault(&Fault {
                subject: subjects::TICKET_DETAILS.to_owned(),
                latency_ms: Some(latency),
                ..Fault::default()
            });
        }
        println!("{} {}", nats.url(), redis.url());
        // Until stdin closes: the servers stop when `nats` and `redis` drop.
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await??;
        drop(sim);
        Ok(())
    })
}

/// The simulator's counters.
struct Counts {
    details: usize,
    held: Duration,
    sms: usize,
    notes: usize,
}

impl Counts {
    fn of(sim: &Sim) -> Self {
        let outbox = sim.outbox();
        Self {
            details: sim.details_requests_total(),
            held: sim.details_held_total(),
            sms: outbox.sms.len(),
            notes: outbox.notes.len(),
        }
    }
}

/// Runs `command`, then prints its cost: the children's CPU time and peak RSS are this
/// process's only child's, so they are the command's alone.
fn measure(command: &[String]) -> anyhow::Result<()> {
    use nix::sys::resource::{UsageWho, getrusage};
    let started = Instant::now();
    let status = Command::new(&command[0])
        .args(&command[1..])
        .stdout(Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", command[0]))?;
    let wall_s = started.elapsed().as_secs_f64();
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let cost = Cost {
        wall_s,
        cpu_s: seconds(usage.user_time()) + seconds(usage.system_time()),
        max_rss_kib: usage.max_rss(),
        success: status.success(),
    };
    println!("{}", serde_json::to_string(&cost)?);
    Ok(())
}
