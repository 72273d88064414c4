//! The command line: parses arguments and calls [`App`], [`app::once`], [`app::plan`],
//! [`demo`] or the [`operator`] levers (opt-outs, pauses); `run` is the default.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use domain::{DispatchNumber, PhoneE164, VendorName};

use crate::app::{self, App};
use crate::settings::{self, RawSettings, Settings, SettingsError};
use crate::{demo, operator, plan, service, telemetry, wiring};

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
        /// Plan as at this instant on today's vendor data and notes: RFC 3339
        /// (`2026-12-04T21:00:00-05:00`) or from now (`+6h`, `+90m`).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Numbers that opted out of texts: the monitor never texts them (SPEC §17.1).
    OptOut {
        /// What to do with the list.
        #[command(subcommand)]
        action: OptOutAction,
    },
    /// Withhold every text of one dispatch until resumed (notes still written; SPEC §17.3).
    Pause {
        /// The vendor, e.g. LIT.
        vendor: String,
        /// The vendor's dispatch number, e.g. DIS37405.
        dispatch: String,
        /// Why, for the journal.
        #[arg(long)]
        reason: String,
    },
    /// Lets a paused dispatch's texts go again.
    Resume {
        /// The vendor, e.g. LIT.
        vendor: String,
        /// The vendor's dispatch number.
        dispatch: String,
    },
    /// Run the engine against a simulated world and print the timeline; needs no services.
    Demo,
    /// Validate configuration and templates and print the effective settings.
    CheckConfig,
}

/// `opt-out` subcommands.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum OptOutAction {
    /// Lists a number (any usual US form: `(212) 359-5129`, `+12123595129`, ...).
    Add {
        /// The phone number.
        phone: String,
        /// Why, e.g. `replied STOP`.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Takes a number off the list.
    Remove {
        /// The phone number.
        phone: String,
    },
    /// Prints the list, numbers masked to their last 4 digits.
    List {
        /// Print the numbers whole.
        #[arg(long)]
        show_phones: bool,
    },
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
        Command::CheckConfig => check_config(&settings),
        Command::Run => match signal {
            Some(signal) => report(run(settings, signal).await),
            None => unreachable!("the signal is set for run"),
        },
        Command::Once { vendors } => match select_vendors(&settings, &vendors) {
            Ok(selected) => report(once(&settings, &selected).await),
            Err(error) => config_error(&error),
        },
        Command::Plan {
            vendors,
            format,
            at,
        } => match (
            select_vendors(&settings, &vendors),
            plan_instant(at.as_deref()),
        ) {
            (Ok(selected), Ok(at)) => report(plan_command(&settings, &selected, format, at).await),
            (Err(error), _) | (_, Err(error)) => config_error(&error),
        },
        Command::OptOut { action } => opt_out(&settings, action).await,
        Command::Pause {
            vendor,
            dispatch,
            reason,
        } => pause(&settings, &vendor, &dispatch, &reason).await,
        Command::Resume { vendor, dispatch } => resume(&settings, &vendor, &dispatch).await,
        Command::Demo => unreachable!("handled above"),
    }
}

/// `check-config`: the settings are valid; prints the effective ones.
fn check_config(settings: &Settings) -> ExitCode {
    println!("configuration and templates are valid; effective settings:");
    for (name, value) in settings.effective() {
        println!("{name}={value}");
    }
    ExitCode::SUCCESS
}

/// `pause VENDOR DISPATCH`: pauses the dispatch's texts.
async fn pause(settings: &Settings, vendor: &str, dispatch: &str, reason: &str) -> ExitCode {
    match dispatch_of(settings, vendor, dispatch) {
        Ok((vendor, number)) => output(operator::pause(settings, &vendor, &number, reason).await),
        Err(error) => config_error(&error),
    }
}

/// `resume VENDOR DISPATCH`: resumes the dispatch's texts.
async fn resume(settings: &Settings, vendor: &str, dispatch: &str) -> ExitCode {
    match dispatch_of(settings, vendor, dispatch) {
        Ok((vendor, number)) => output(operator::resume(settings, &vendor, &number).await),
        Err(error) => config_error(&error),
    }
}

/// `--at`, read as at this moment.
fn plan_instant(at: Option<&str>) -> Result<Option<DateTime<Utc>>, SettingsError> {
    at.map(|text| {
        plan::parse_at(text, Utc::now()).map_err(|why| SettingsError::invalid("--at", text, why))
    })
    .transpose()
}

/// A phone number an operator typed; an invalid one is named.
fn phone_of(text: &str) -> Result<PhoneE164, SettingsError> {
    PhoneE164::parse_input(text).map_err(|error| SettingsError::invalid("PHONE", text, error.why))
}

/// A wired vendor and a dispatch number from the command line.
fn dispatch_of(
    settings: &Settings,
    vendor: &str,
    dispatch: &str,
) -> Result<(VendorName, DispatchNumber), SettingsError> {
    let known: Vec<String> = settings
        .vendors
        .iter()
        .map(|v| v.name.to_string())
        .collect();
    let vendor = VendorName::parse(vendor)
        .ok()
        .filter(|name| known.contains(&name.to_string()))
        .ok_or_else(|| {
            SettingsError::invalid(
                "VENDOR",
                vendor,
                format!("expected one of {}", known.join(", ")),
            )
        })?;
    let number = DispatchNumber::parse(dispatch)
        .map_err(|error| SettingsError::invalid("DISPATCH", dispatch, error.why))?;
    Ok((vendor, number))
}

async fn opt_out(settings: &Settings, action: OptOutAction) -> ExitCode {
    let result = match action {
        OptOutAction::Add { phone, reason } => match phone_of(&phone) {
            Ok(phone) => operator::opt_out_add(settings, &phone, &reason).await,
            Err(error) => return config_error(&error),
        },
        OptOutAction::Remove { phone } => match phone_of(&phone) {
            Ok(phone) => operator::opt_out_remove(settings, &phone).await,
            Err(error) => return config_error(&error),
        },
        OptOutAction::List { show_phones } => operator::opt_out_list(settings, show_phones).await,
    };
    output(result)
}

/// Prints a command's answer; exit 0, or 1 with the error.
fn output(result: anyhow::Result<String>) -> ExitCode {
    report(result.map(|text| {
        println!("{text}");
        ExitCode::SUCCESS
    }))
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
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<ExitCode> {
    let (reports, failed) = app::plan_at(settings, vendors, at).await?;
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
