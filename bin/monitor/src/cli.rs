//! The command line: `run` (default), `once`, `plan`, `demo`, `check-config`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use domain::{CycleReport, Engine, Mode, VendorName};

use crate::service::{self, HeldLeases, LeasedCycle, Scheduler};
use crate::settings::{RawSettings, Settings, SettingsError};
use crate::{demo, http, plan, telemetry, wiring};

/// Exit status for configuration errors (SPEC §12.1).
pub const EXIT_CONFIG: u8 = 2;
/// Exit status when a selected vendor's list could not be fetched or read.
pub const EXIT_VENDOR_FAILED: u8 = 1;

/// Watches LIT and CTS dispatches and keeps customers and technicians informed.
#[derive(Debug, Parser)]
#[command(name = "dispatch-monitor", version, about)]
pub struct Cli {
    /// Optional TOML file; the environment overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// What to do (default: run).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the service: every vendor on its schedule, HTTP health and metrics.
    Run,
    /// Run one cycle per selected vendor, then exit (1 if a vendor's list failed).
    Once {
        /// Vendors to run (default: every enabled vendor).
        #[arg(long = "vendor", value_name = "VENDOR")]
        vendors: Vec<String>,
    },
    /// Print what one cycle would do, doing nothing: no SMS, no notes, no Redis writes.
    Plan {
        /// Vendors to plan (default: every enabled vendor).
        #[arg(long = "vendor", value_name = "VENDOR")]
        vendors: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run the engine against a simulated world and print the timeline; needs no services.
    Demo,
    /// Validate configuration and templates and print the effective settings.
    CheckConfig,
}

/// `plan` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable blocks.
    Text,
    /// A JSON array of rows.
    Json,
}

/// Parses the process arguments and runs; returns the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dispatch-monitor: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let env = std::env::vars();
    runtime.block_on(execute(cli, env))
}

/// Runs a parsed command line with the given environment.
pub async fn execute(cli: Cli, env: impl IntoIterator<Item = (String, String)>) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Run);
    if command == Command::Demo {
        return match demo::run().await {
            Ok(timeline) => {
                print!("{timeline}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("dispatch-monitor: demo failed: {error:#}");
                ExitCode::FAILURE
            }
        };
    }

    let settings = match load_settings(cli.config.as_deref(), env) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("dispatch-monitor: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init_logs(settings.log_format);
    // Templates are checked before anything connects.
    if let Err(error) = wiring::build_engine(&settings, offline_ports()) {
        eprintln!("dispatch-monitor: {error:#}");
        return ExitCode::from(EXIT_CONFIG);
    }

    let result = match command {
        Command::CheckConfig => {
            println!("configuration and templates are valid; effective settings:");
            for (name, value) in settings.effective() {
                println!("{name}={value}");
            }
            return ExitCode::SUCCESS;
        }
        Command::Run => run(&settings).await,
        Command::Once { vendors } => match select_vendors(&settings, &vendors) {
            Ok(selected) => once(&settings, &selected).await,
            Err(error) => return config_error(&error),
        },
        Command::Plan { vendors, format } => match select_vendors(&settings, &vendors) {
            Ok(selected) => plan_command(&settings, &selected, format).await,
            Err(error) => return config_error(&error),
        },
        Command::Demo => unreachable!("handled above"),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("dispatch-monitor: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_error(error: &SettingsError) -> ExitCode {
    eprintln!("dispatch-monitor: {error}");
    ExitCode::from(EXIT_CONFIG)
}

/// Loads and validates settings for the wired vendors.
pub fn load_settings(
    file: Option<&std::path::Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, SettingsError> {
    let raw = RawSettings::load(file, env)?;
    Settings::from_raw(&raw, &wiring::vendor_names())
}

/// The vendors named on the command line (any case), or every enabled one.
pub fn select_vendors(
    settings: &Settings,
    names: &[String],
) -> Result<Vec<VendorName>, SettingsError> {
    if names.is_empty() {
        return Ok(settings
            .vendors
            .iter()
            .filter(|v| v.enabled)
            .map(|v| v.name.clone())
            .collect());
    }
    names
        .iter()
        .map(|name| {
            let wanted = VendorName::parse(name).ok();
            settings
                .vendors
                .iter()
                .find(|v| Some(&v.name) == wanted.as_ref())
                .map(|v| v.name.clone())
                .ok_or_else(|| SettingsError::Invalid {
                    name: "--vendor".into(),
                    value: name.clone(),
                    why: format!(
                        "expected one of {}",
                        settings
                            .vendors
                            .iter()
                            .map(|v| v.name.lower())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                })
        })
        .collect()
}

/// Ports that reach nothing; only for checking templates before connecting.
fn offline_ports() -> domain::Ports {
    let clock = Arc::new(domain::memory::ManualClock::new(chrono::Utc::now()));
    domain::memory::MemoryWorld::new(clock).ports()
}

/// `once`: one leased cycle per vendor; 1 when a vendor's list failed.
pub async fn once(settings: &Settings, vendors: &[VendorName]) -> anyhow::Result<ExitCode> {
    let infra = wiring::connect(settings).await?;
    let engine = wiring::build_engine(settings, infra.ports.clone())?;
    let outcomes = once_with(&engine, infra.lease.as_ref(), settings, vendors).await;
    infra.flush_alerts(Duration::from_secs(10)).await;
    let failed = outcomes.iter().any(LeasedCycle::failed);
    Ok(if failed {
        ExitCode::from(EXIT_VENDOR_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The cycles of `once`, over given ports (also used by tests).
pub async fn once_with(
    engine: &Engine,
    lease: &dyn domain::ports::VendorLease,
    settings: &Settings,
    vendors: &[VendorName],
) -> Vec<LeasedCycle> {
    let held = HeldLeases::default();
    let stop = AtomicBool::new(false);
    let mut outcomes = Vec::new();
    for vendor in vendors {
        let outcome =
            service::leased_cycle(engine, lease, &held, vendor, settings.lease_ttl, &stop).await;
        match &outcome {
            LeasedCycle::Ran(Ok(report)) => tracing::info!(
                %vendor,
                records = report.records,
                dispatches = report.dispatches.len(),
                "cycle done"
            ),
            LeasedCycle::Ran(Err(error)) => tracing::error!(%vendor, %error, "cycle failed"),
            LeasedCycle::LeaseHeld => {}
            LeasedCycle::LeaseUnavailable(error) => {
                tracing::error!(%vendor, %error, "cycle not run");
            }
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// `plan`: dry-run cycles over read-only ports, printed.
async fn plan_command(
    settings: &Settings,
    vendors: &[VendorName],
    format: Format,
) -> anyhow::Result<ExitCode> {
    let infra = wiring::connect(settings).await?;
    let engine = wiring::build_engine(settings, plan::read_only(infra.ports.clone()))?;
    let (reports, failed) = plan_with(&engine, vendors).await;
    match format {
        Format::Text => print!("{}", plan::render_text(&reports)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan::rows(&reports))?),
    }
    Ok(if failed {
        ExitCode::from(EXIT_VENDOR_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Dry-run cycles; the flag is set when a vendor's list failed.
pub async fn plan_with(engine: &Engine, vendors: &[VendorName]) -> (Vec<CycleReport>, bool) {
    let mut reports = Vec::new();
    let mut failed = false;
    for vendor in vendors {
        match engine.run_cycle(vendor, Mode::DryRun).await {
            Ok(report) => reports.push(report),
            Err(error) => {
                eprintln!("dispatch-monitor: {vendor}: {error}");
                failed = true;
            }
        }
    }
    (reports, failed)
}

/// `run`: schedules, HTTP, graceful shutdown.
async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    tracing::info!(
        environment = %settings.current_environment,
        registry_prefix = %settings.environment_name,
        "dispatch monitor starting"
    );
    let metrics = telemetry::install_metrics()?;
    let infra = wiring::connect(settings).await?;
    let engine = Arc::new(wiring::build_engine(settings, infra.ports.clone())?);

    let listener = tokio::net::TcpListener::bind(("0.0.0.0", settings.http_port)).await?;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let probe = Arc::new(http::LiveProbe {
        nats: infra.nats.clone(),
        redis: infra.redis.clone(),
    });
    let mut http_shutdown = shutdown_rx.clone();
    let http_task = tokio::spawn(http::serve(
        listener,
        http::router(probe, metrics),
        async move {
            let _ = http_shutdown.wait_for(|stop| *stop).await;
        },
    ));

    let scheduler = Scheduler {
        engine,
        lease: infra.lease.clone(),
        notifier: infra.notifier.clone(),
        held: Arc::default(),
        lease_ttl: settings.lease_ttl,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let mut schedules = tokio::task::JoinSet::new();
    for schedule in settings.vendors.iter().filter(|v| v.enabled).cloned() {
        let scheduler = scheduler.clone();
        let shutdown = shutdown_rx.clone();
        tracing::info!(vendor = %schedule.name, interval_secs = schedule.interval.as_secs(), "vendor scheduled");
        schedules.spawn(async move { scheduler.run_vendor(schedule, shutdown).await });
    }

    service::shutdown_signal().await;
    tracing::info!(
        grace_secs = settings.shutdown_grace.as_secs(),
        "shutting down: no new cycles or dispatches"
    );
    service::begin_shutdown(&scheduler.stop, &shutdown_tx);
    let drained = tokio::time::timeout(settings.shutdown_grace, async {
        while schedules.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("grace period over; abandoning in-flight dispatches");
        schedules.abort_all();
    }
    scheduler.held.release_all(scheduler.lease.as_ref()).await;
    infra.flush_alerts(Duration::from_secs(5)).await;
    let _ = http_task.await;
    tracing::info!("dispatch monitor stopped");
    Ok(ExitCode::SUCCESS)
}
