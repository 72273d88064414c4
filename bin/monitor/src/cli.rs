//! The command line: parses arguments and calls [`App`], [`app::once`], [`app::plan`] or
//! [`demo`]; `run` is the default.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use domain::VendorName;

use crate::app::{self, App};
use crate::settings::{self, RawSettings, Settings, SettingsError};
use crate::{demo, plan, service, telemetry, wiring};

/// Exit status for configuration errors (SPEC §12.1).
pub const EXIT_CONFIG: u8 = 2;
/// Exit status when a selected vendor's list could not be fetched or read.
pub const EXIT_VENDOR_FAILED: u8 = 1;

/// Watches field-technician dispatches of every wired vendor and keeps customers and
/// technicians informed.
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
        /// Vendors to run, by name in any case (default: every enabled vendor).
        #[arg(long = "vendor", value_name = "VENDOR")]
        vendors: Vec<String>,
    },
    /// Print what one cycle would do, doing nothing: no SMS, no notes, no Redis writes.
    Plan {
        /// Vendors to plan, by name in any case (default: every enabled vendor).
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
    // The long-running service spreads its work over every core; a one-shot command runs on
    // this thread alone, which spares it the cross-thread wake-ups.
    let mut builder = match cli.command {
        None | Some(Command::Run) => tokio::runtime::Builder::new_multi_thread(),
        Some(_) => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("dispatch-monitor: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let env = match settings::environment(std::env::vars_os()) {
        Ok(env) => env,
        Err(error) => return config_error(&error),
    };
    let code = runtime.block_on(execute(cli, env));
    // Everything worth waiting for was awaited; tasks still running (a connection attempt, a
    // journal write past the grace period) must not hold up the exit.
    runtime.shutdown_background();
    code
}

/// Runs a parsed command line with the given environment.
pub async fn execute(cli: Cli, env: impl IntoIterator<Item = (String, String)>) -> ExitCode {
    let command = cli.command.unwrap_or(Command::Run);
    // The service listens for SIGTERM before anything else, so a signal during start-up (while
    // NATS or Redis are still being reached) ends it with status 0 too (SPEC §18.6).
    let signal = (command == Command::Run).then(service::shutdown_signal);
    if command == Command::Demo {
        return report(demo::run().await.map(|timeline| {
            print!("{timeline}");
            ExitCode::SUCCESS
        }));
    }
    let settings = match load_settings(cli.config.as_deref(), env) {
        Ok(settings) => settings,
        Err(error) => return config_error(&error),
    };
    telemetry::init_logs(settings.log_format, settings.api_show_phones);
    // Templates are checked before anything connects.
    if let Err(error) = wiring::check_templates(&settings) {
        eprintln!("dispatch-monitor: {error:#}");
        return ExitCode::from(EXIT_CONFIG);
    }
    match command {
        Command::CheckConfig => {
            println!("configuration and templates are valid; effective settings:");
            for (name, value) in settings.effective() {
                println!("{name}={value}");
            }
            ExitCode::SUCCESS
        }
        Command::Run => match signal {
            Some(signal) => report(run(settings, signal).await),
            None => unreachable!("the signal is set for run"),
        },
        Command::Once { vendors } => match select_vendors(&settings, &vendors) {
            Ok(selected) => report(once(&settings, &selected).await),
            Err(error) => config_error(&error),
        },
        Command::Plan { vendors, format } => match select_vendors(&settings, &vendors) {
            Ok(selected) => report(plan_command(&settings, &selected, format).await),
            Err(error) => config_error(&error),
        },
        Command::Demo => unreachable!("handled above"),
    }
}

fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    result.unwrap_or_else(|error| {
        eprintln!("dispatch-monitor: {error:#}");
        ExitCode::FAILURE
    })
}

fn config_error(error: &SettingsError) -> ExitCode {
    for one in error.each() {
        eprintln!("dispatch-monitor: {one}");
    }
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
    let known: Vec<String> = settings.vendors.iter().map(|v| v.name.lower()).collect();
    names
        .iter()
        .map(|name| {
            let wanted = VendorName::parse(name).ok();
            settings
                .vendors
                .iter()
                .find(|v| Some(&v.name) == wanted.as_ref())
                .map(|v| v.name.clone())
                .ok_or_else(|| {
                    SettingsError::invalid(
                        "--vendor",
                        name,
                        format!("expected one of {}", known.join(", ")),
                    )
                })
        })
        .collect()
}

async fn run(
    settings: Settings,
    signal: impl std::future::Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    let mut signal = std::pin::pin!(signal);
    let app = tokio::select! {
        app = App::build(settings) => app?,
        () = &mut signal => {
            tracing::info!("stopped during start-up");
            return Ok(ExitCode::SUCCESS);
        }
    };
    app.run_until(signal).await?;
    Ok(ExitCode::SUCCESS)
}

async fn once(settings: &Settings, vendors: &[VendorName]) -> anyhow::Result<ExitCode> {
    let outcomes = app::once(settings, vendors).await?;
    for (vendor, outcome) in vendors.iter().zip(&outcomes) {
        match outcome {
            service::LeasedCycle::LeaseUnavailable(error) => eprintln!(
                "dispatch-monitor: {vendor}: cycle not run: the lease store cannot be reached: {error}"
            ),
            service::LeasedCycle::Ran(Err(error)) | service::LeasedCycle::LeaseLost(Err(error)) => {
                eprintln!("dispatch-monitor: {vendor}: {error}")
            }
            _ => {}
        }
    }
    Ok(if outcomes.iter().any(service::LeasedCycle::failed) {
        ExitCode::from(EXIT_VENDOR_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

async fn plan_command(
    settings: &Settings,
    vendors: &[VendorName],
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (reports, failed) = app::plan(settings, vendors).await?;
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
