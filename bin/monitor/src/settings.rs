//! Configuration: built-in defaults, then an optional TOML file, then the environment (SPEC §10,
//! §12.10, §13.10). Every setting is one row of the [`settings!`] table below — name, type,
//! default and meaning — which makes the `Settings` field, its parsing, `check-config`'s
//! effective value and the row of docs/configuration.md. Adding a setting is one row plus its use.

use std::net::IpAddr;
use std::time::Duration;

use domain::alerts::AlertLevel;
use domain::rules::RuleSettings;
use domain::safeguards::DailyCap;
use domain::{QuietHours, VendorName};

mod raw;
pub mod values;

pub use raw::{RawSettings, environment};
use values::{
    ApiToken, CaFile, EmailList, GraceSecs, Host, IntervalSecs, LeaseTtlSecs, LogFormat, NatsUrls,
    ReminderHours, SecretUrl, Secs, SettingValue, TemplatesDir, mask_credentials,
};

/// A setting is missing or invalid; the message names it in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required setting has no value.
    #[error("missing required setting {0}")]
    Missing(String),
    /// A setting's value cannot be used. The value is shown with URL credentials masked.
    #[error("invalid setting {name}={value:?}: {why}")]
    Invalid {
        /// The setting's name.
        name: String,
        /// The value given, credentials masked.
        value: String,
        /// What is expected.
        why: String,
    },
    /// A name in the configuration file, or a `MONITOR_*` variable, that is no setting.
    #[error("unknown setting {name} {origin}{}", suggestion.as_ref().map(|s| format!("; did you mean {s}?")).unwrap_or_default())]
    Unknown {
        /// The name, upper-cased.
        name: String,
        /// Where it was given: `in <file>` or `in the environment`.
        origin: String,
        /// The closest setting's name.
        suggestion: Option<String>,
    },
    /// The configuration file or the environment cannot be read.
    #[error("cannot read configuration: {0}")]
    Source(String),
    /// Several of the above, one a line.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<SettingsError>),
}

impl SettingsError {
    /// An invalid value; credentials in it are masked.
    pub fn invalid(name: &str, value: &str, why: impl Into<String>) -> Self {
        SettingsError::Invalid {
            name: name.to_owned(),
            value: mask_credentials(value),
            why: why.into(),
        }
    }

    /// The one error, or all of them; `None` when there is none.
    fn from_list(mut errors: Vec<SettingsError>) -> Option<Self> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(SettingsError::Several(errors)),
        }
    }

    /// Each error on its own, in the order found.
    pub fn each(&self) -> Vec<&SettingsError> {
        match self {
            SettingsError::Several(errors) => errors.iter().collect(),
            one => vec![one],
        }
    }
}

/// Keeps a parse error for the report; the value, or `None` when it was invalid.
fn record<T>(
    errors: &mut Vec<SettingsError>,
    result: Result<Option<T>, SettingsError>,
) -> Option<Option<T>> {
    result.map_err(|error| errors.push(error)).ok()
}

/// A required setting's value; a missing one is kept for the report.
fn required<T>(
    errors: &mut Vec<SettingsError>,
    name: &str,
    result: Result<Option<T>, SettingsError>,
) -> Option<T> {
    let value = record(errors, result)?;
    if value.is_none() {
        errors.push(SettingsError::Missing(name.to_owned()));
    }
    value
}

/// What a setting does when it is not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultValue {
    /// It must be given.
    Required,
    /// It is off or empty.
    Empty,
    /// This value, as it would be written.
    Value(String),
}

/// One row of the settings table, for `check-config` and docs/configuration.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The environment name.
    pub name: String,
    /// The default.
    pub default: DefaultValue,
    /// What it means.
    pub meaning: &'static str,
}

macro_rules! settings {
    ($($field:ident: $ty:ty = $name:literal, $default:tt, $meaning:literal;)*) => {
        /// The validated settings; the per-vendor ones are in `vendors`.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Settings {
            $(#[doc = concat!("`", $name, "`: ", $meaning)] pub $field: $ty,)*
            /// `MONITOR_<VENDOR>_ENABLED` and `MONITOR_<VENDOR>_INTERVAL_SECS`, in wiring order.
            pub vendors: Vec<VendorSchedule>,
        }

        impl Settings {
            /// Every table setting; `None` when one is missing or invalid (each is in
            /// `errors`).
            fn parse_table(raw: &RawSettings, errors: &mut Vec<SettingsError>) -> Option<Self> {
                $(let $field: Option<$ty> = settings!(@value raw, errors, $ty, $name, $default);)*
                Some(Self {
                    $($field: $field?,)*
                    vendors: Vec::new(),
                })
            }

            fn table_rows() -> Vec<Row> {
                vec![$(Row {
                    name: $name.to_owned(),
                    default: settings!(@default $ty, $default),
                    meaning: $meaning,
                },)*]
            }

            fn table_values(&self) -> Vec<(String, String)> {
                vec![$(($name.to_owned(), self.$field.show()),)*]
            }
        }
    };
    (@value $raw:ident, $errors:ident, $ty:ty, $name:literal, required) => {
        required($errors, $name, $raw.parse::<$ty>($name))
    };
    (@value $raw:ident, $errors:ident, $ty:ty, $name:literal, optional) => {
        record($errors, $raw.parse::<$ty>($name)).map(Option::unwrap_or_default)
    };
    (@value $raw:ident, $errors:ident, $ty:ty, $name:literal, ($default:expr)) => {
        record($errors, $raw.parse::<$ty>($name)).map(|value| value.unwrap_or_else(|| $default))
    };
    (@default $ty:ty, required) => { DefaultValue::Required };
    (@default $ty:ty, optional) => { DefaultValue::Empty };
    (@default $ty:ty, ($default:expr)) => {{
        let value: $ty = $default;
        DefaultValue::Value(value.show())
    }};
}

settings! {
    nats_urls: NatsUrls = "NATS_SERVER1", required, "NATS URL, e.g. `nats://nats-server:4222` (credentials as `user:password@` or `token@`, a `,` in them written `%2C`), or a cluster's seed list separated by commas; `NATS_SERVER2` … `NATS_SERVER9`, when set, are added to it";
    redis_url: Option<SecretUrl> = "REDIS_URL", optional, "full Redis URL; overrides `REDIS_HOSTNAME`";
    redis_hostname: Option<Host> = "REDIS_HOSTNAME", optional, "Redis host name or address, port 6379 (required unless `REDIS_URL` is set)";
    environment_name: String = "ENVIRONMENT_NAME", required, "registry key prefix (`{ENVIRONMENT_NAME}-{dispatch_number}`)";
    current_environment: String = "CURRENT_ENVIRONMENT", ("dev".to_owned()), "label shown in logs";
    http_port: u16 = "DISPATCH_MONITOR_SERVER_PORT", (5000), "HTTP port of `/_health`, `/metrics`, the operator API and the dashboard (0: any free port)";
    http_address: IpAddr = "DISPATCH_MONITOR_SERVER_ADDRESS", (IpAddr::from([0, 0, 0, 0])), "address the HTTP server listens on (`127.0.0.1`: this machine only)";
    concurrency: usize = "MONITOR_CONCURRENCY", (domain::EngineSettings::default().concurrency), "dispatches processed at once per vendor cycle";
    reminder_hours: ReminderHours = "MONITOR_REMINDER_HOURS", (ReminderHours(RuleSettings::default().reminder_hours)), "reminder hours before the appointment (1–168)";
    request_timeout: Secs = "MONITOR_REQUEST_TIMEOUT_SECS", (Secs::from_secs(60)), "NATS request timeout (at most 240)";
    alert_level: AlertLevel = "MONITOR_ALERT_LEVEL", (AlertLevel::default()), "Slack alerts for every outcome (`all`) or failures only (`errors`)";
    cancel_email_recipients: EmailList = "MONITOR_CANCEL_EMAIL_RECIPIENTS", optional, "comma-separated addresses emailed on a cancellation";
    quiet_hours: Option<QuietHours> = "MONITOR_QUIET_HOURS", optional, "`HH:MM-HH:MM` at the site (may wrap midnight): client reminders due then are skipped with a note, other client texts wait; recommended `21:00-08:00`";
    daily_cap: DailyCap = "MONITOR_SMS_DAILY_CAP", (DailyCap::default()), "at most this many SMS to one number in any rolling 24 hours, across dispatches, vendors and replicas (0: off)";
    completed_notes: bool = "MONITOR_COMPLETED_NOTES", (RuleSettings::default().completed_notes), "write Repair Completed notes";
    lease_ttl: LeaseTtlSecs = "MONITOR_LEASE_TTL_SECS", (LeaseTtlSecs::from_secs(60)), "vendor lease TTL (6–3,600 s), renewed every third of it while a cycle runs; no dispatch starts once the last renewal request is this old";
    shutdown_grace: GraceSecs = "MONITOR_SHUTDOWN_GRACE_SECS", (GraceSecs::from_secs(30)), "time from SIGTERM/SIGINT to exit (0–600 s): in-flight dispatches, then lease release and the journal and alert flush";
    log_format: LogFormat = "MONITOR_LOG_FORMAT", (LogFormat::Text), "`text` (coloured only when standard error is a terminal and `NO_COLOR` is unset) or `json` (one JSON object per line)";
    tls_ca_file: Option<CaFile> = "MONITOR_TLS_CA_FILE", optional, "PEM file of CA certificates trusted, besides the system's, for `rediss://` and `tls://` URLs";
    replica_name: Option<String> = "MONITOR_REPLICA_NAME", optional, "this replica's name in the journal and on vendor leases (default `host:pid`)";
    api_token: Option<ApiToken> = "MONITOR_API_TOKEN", optional, "bearer token for the API's writes (`POST /api/v1/vendors/{vendor}/cycle`, opt-outs, pauses; at least 16 characters); unset: acting through HTTP is off (403)";
    api_show_phones: bool = "MONITOR_API_SHOW_PHONES", (false), "show whole phone numbers in the API, the dashboard and the logs (default: last 4 digits)";
    templates_dir: Option<TemplatesDir> = "MONITOR_TEMPLATES_DIR", optional, "folder of template overrides: `common/<name>.hbs` or `<vendor>/<name>.hbs`";
}

/// Rows of the per-vendor settings; `<VENDOR>` stands for each wired vendor's name.
const VENDOR_ROWS: [(&str, &str); 2] = [
    ("ENABLED", "vendor on/off"),
    ("INTERVAL_SECS", "cycle interval (1–86,400 s)"),
];
/// The per-vendor defaults.
const VENDOR_ENABLED: bool = true;
const VENDOR_INTERVAL: IntervalSecs = IntervalSecs::from_secs(900);
/// `NATS_SERVER1` … `NATS_SERVER9` (SPEC §16).
const MAX_NATS_SERVERS: u32 = 9;
/// The longest request timeout; SMS claims are sized from it.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(240);

/// One vendor's schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorSchedule {
    /// The vendor.
    pub name: VendorName,
    /// Whether its cycles run.
    pub enabled: bool,
    /// Time between cycle starts.
    pub interval: Duration,
}

fn vendor_setting(vendor: &VendorName, suffix: &str) -> String {
    format!("MONITOR_{}_{suffix}", vendor.as_str().replace('-', "_"))
}

/// One vendor's schedule; `None` when a value is invalid (it is in `errors`).
fn schedule(
    raw: &RawSettings,
    vendor: &VendorName,
    errors: &mut Vec<SettingsError>,
) -> Option<VendorSchedule> {
    let enabled = record(errors, raw.parse(&vendor_setting(vendor, "ENABLED")));
    let interval = record(
        errors,
        raw.parse::<IntervalSecs>(&vendor_setting(vendor, "INTERVAL_SECS")),
    );
    Some(VendorSchedule {
        name: vendor.clone(),
        enabled: enabled?.unwrap_or(VENDOR_ENABLED),
        interval: interval?.unwrap_or(VENDOR_INTERVAL).0,
    })
}

impl Settings {
    /// Validates the raw values for the given vendors. Every problem is returned, one
    /// [`SettingsError`] each ([`SettingsError::Several`] when there are more than one).
    pub fn from_raw(raw: &RawSettings, vendors: &[VendorName]) -> Result<Self, SettingsError> {
        let mut errors = raw.unknown_names(&Self::known_names(vendors));
        let table = Self::parse_table(raw, &mut errors);
        let more_nats: Vec<NatsUrls> = (2..=MAX_NATS_SERVERS)
            .filter_map(|number| record(&mut errors, raw.parse(&format!("NATS_SERVER{number}"))))
            .flatten()
            .collect();
        let schedules: Vec<Option<VendorSchedule>> = vendors
            .iter()
            .map(|vendor| schedule(raw, vendor, &mut errors))
            .collect();
        if raw.get("REDIS_URL").is_none() && raw.get("REDIS_HOSTNAME").is_none() {
            errors.push(SettingsError::Missing("REDIS_HOSTNAME".into()));
        }
        if let Some(settings) = &table {
            errors.extend(settings.out_of_bounds());
        }
        if let Some(error) = SettingsError::from_list(errors) {
            return Err(error);
        }
        let mut settings = table.expect("a table with no error is complete");
        for more in &more_nats {
            settings.nats_urls = settings.nats_urls.with(more);
        }
        if settings.redis_url.is_none() {
            settings.redis_url = settings.redis_hostname.as_ref().map(Host::default_url);
        }
        settings.vendors = schedules.into_iter().flatten().collect();
        Ok(settings)
    }

    /// Every name a setting has for these vendors.
    fn known_names(vendors: &[VendorName]) -> Vec<String> {
        let table = Self::table_rows().into_iter().map(|row| row.name);
        let nats = (2..=MAX_NATS_SERVERS).map(|number| format!("NATS_SERVER{number}"));
        let per_vendor = vendors.iter().flat_map(|vendor| {
            VENDOR_ROWS
                .iter()
                .map(|(suffix, _)| vendor_setting(vendor, suffix))
        });
        table.chain(nats).chain(per_vendor).collect()
    }

    /// The checks that span more than one value's text.
    fn out_of_bounds(&self) -> Vec<SettingsError> {
        let mut errors = Vec::new();
        if self.concurrency == 0 {
            errors.push(SettingsError::invalid(
                "MONITOR_CONCURRENCY",
                "0",
                "expected a whole number above 0",
            ));
        }
        if self.request_timeout.0 > MAX_REQUEST_TIMEOUT {
            errors.push(SettingsError::invalid(
                "MONITOR_REQUEST_TIMEOUT_SECS",
                &self.request_timeout.show(),
                "expected at most 240 seconds, so an SMS claim outlives its request",
            ));
        }
        errors
    }

    /// The Redis URL to connect to: `REDIS_URL`, or `redis://{REDIS_HOSTNAME}:6379`.
    pub fn redis_url(&self) -> &SecretUrl {
        self.redis_url
            .as_ref()
            .expect("from_raw always sets the Redis URL")
    }

    /// The rule settings these settings make.
    pub fn rule_settings(&self) -> RuleSettings {
        RuleSettings {
            reminder_hours: self.reminder_hours.0.clone(),
            completed_notes: self.completed_notes,
            cancel_email_recipients: self.cancel_email_recipients.0.clone(),
            quiet_hours: self.quiet_hours,
            daily_cap: self.daily_cap,
        }
    }

    /// Every setting, with `<VENDOR>` rows for the per-vendor ones.
    pub fn rows() -> Vec<Row> {
        let mut rows = Self::table_rows();
        let at = rows
            .iter()
            .position(|row| row.name == "MONITOR_CONCURRENCY")
            .unwrap_or(rows.len());
        let vendor_rows = VENDOR_ROWS.iter().map(|(suffix, meaning)| Row {
            name: format!("MONITOR_<VENDOR>_{suffix}"),
            default: DefaultValue::Value(match *suffix {
                "ENABLED" => VENDOR_ENABLED.show(),
                _ => VENDOR_INTERVAL.show(),
            }),
            meaning,
        });
        rows.splice(at..at, vendor_rows);
        rows
    }

    /// The effective settings as `NAME=value` lines, credentials masked.
    pub fn effective(&self) -> Vec<(String, String)> {
        let mut lines = self.table_values();
        let at = lines
            .iter()
            .position(|(name, _)| name == "MONITOR_CONCURRENCY")
            .unwrap_or(lines.len());
        let vendor_lines = self.vendors.iter().flat_map(|vendor| {
            [
                (
                    vendor_setting(&vendor.name, "ENABLED"),
                    vendor.enabled.show(),
                ),
                (
                    vendor_setting(&vendor.name, "INTERVAL_SECS"),
                    vendor.interval.as_secs().to_string(),
                ),
            ]
        });
        lines.splice(at..at, vendor_lines);
        lines
    }
}

#[cfg(test)]
mod tests;
