//! Configuration: built-in defaults, then an optional TOML file, then the environment (SPEC §10,
//! §12.10). Setting names are the environment names; a TOML file uses the same names in any
//! case (`NATS_SERVER1 = "..."` or `nats_server1 = "..."`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use domain::VendorName;
use domain::alerts::AlertLevel;

/// A setting is missing or invalid; the message names it in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required setting has no value.
    #[error("missing required setting {0}")]
    Missing(String),
    /// A setting's value cannot be used.
    #[error("invalid setting {name}={value:?}: {why}")]
    Invalid {
        /// The setting's name.
        name: String,
        /// The value given.
        value: String,
        /// What is expected.
        why: String,
    },
    /// The configuration file cannot be read.
    #[error("cannot read configuration: {0}")]
    Source(String),
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

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

/// The validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `NATS_SERVER1`.
    pub nats_url: String,
    /// `REDIS_URL`, or `redis://{REDIS_HOSTNAME}:6379`.
    pub redis_url: String,
    /// `ENVIRONMENT_NAME`: the registry key prefix.
    pub environment_name: String,
    /// `CURRENT_ENVIRONMENT`: shown in logs.
    pub current_environment: String,
    /// `DISPATCH_MONITOR_SERVER_PORT`.
    pub http_port: u16,
    /// Per-vendor schedules, in wiring order.
    pub vendors: Vec<VendorSchedule>,
    /// `MONITOR_CONCURRENCY`.
    pub concurrency: usize,
    /// `MONITOR_REMINDER_HOURS`.
    pub reminder_hours: Vec<u32>,
    /// `MONITOR_REQUEST_TIMEOUT_SECS`.
    pub request_timeout: Duration,
    /// `MONITOR_ALERT_LEVEL`.
    pub alert_level: AlertLevel,
    /// `MONITOR_CANCEL_EMAIL_RECIPIENTS`.
    pub cancel_email_recipients: Vec<String>,
    /// `MONITOR_COMPLETED_NOTES`.
    pub completed_notes: bool,
    /// `MONITOR_LEASE_TTL_SECS`.
    pub lease_ttl: Duration,
    /// `MONITOR_SHUTDOWN_GRACE_SECS`.
    pub shutdown_grace: Duration,
    /// `MONITOR_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `MONITOR_TEMPLATES_DIR`: optional folder of template overrides.
    pub templates_dir: Option<PathBuf>,
}

/// Every setting with its default (empty: none) and meaning, for `check-config` and the README.
pub const SETTINGS_TABLE: &[(&str, &str, &str)] = &[
    (
        "NATS_SERVER1",
        "",
        "NATS URL (required), e.g. nats://nats-server:4222",
    ),
    ("REDIS_URL", "", "full Redis URL; overrides REDIS_HOSTNAME"),
    (
        "REDIS_HOSTNAME",
        "",
        "Redis host, port 6379 (required unless REDIS_URL is set)",
    ),
    ("ENVIRONMENT_NAME", "", "registry key prefix (required)"),
    (
        "CURRENT_ENVIRONMENT",
        "dev",
        "environment label shown in logs",
    ),
    (
        "DISPATCH_MONITOR_SERVER_PORT",
        "5000",
        "HTTP port for /_health and /metrics",
    ),
    (
        "MONITOR_<VENDOR>_ENABLED",
        "true",
        "vendor on/off (LIT, CTS)",
    ),
    (
        "MONITOR_<VENDOR>_INTERVAL_SECS",
        "900",
        "vendor cycle interval",
    ),
    (
        "MONITOR_CONCURRENCY",
        "8",
        "dispatches processed at once per vendor cycle",
    ),
    (
        "MONITOR_REMINDER_HOURS",
        "12,6,2",
        "reminder hours before the appointment",
    ),
    ("MONITOR_REQUEST_TIMEOUT_SECS", "60", "NATS request timeout"),
    ("MONITOR_ALERT_LEVEL", "all", "Slack alerts: all or errors"),
    (
        "MONITOR_CANCEL_EMAIL_RECIPIENTS",
        "",
        "comma-separated addresses emailed on cancellations",
    ),
    (
        "MONITOR_COMPLETED_NOTES",
        "true",
        "write Repair Completed notes",
    ),
    (
        "MONITOR_LEASE_TTL_SECS",
        "60",
        "vendor lease TTL, renewed while a cycle runs",
    ),
    (
        "MONITOR_SHUTDOWN_GRACE_SECS",
        "30",
        "grace period for in-flight dispatches on shutdown",
    ),
    ("MONITOR_LOG_FORMAT", "text", "text or json"),
    (
        "MONITOR_TEMPLATES_DIR",
        "",
        "folder of <vendor>/<name>.hbs or common/<name>.hbs overrides",
    ),
];

/// The raw layered values, keyed by upper-case setting name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSettings(BTreeMap<String, String>);

impl RawSettings {
    /// Layers the optional TOML file and then `environment` (the process environment in
    /// production, an explicit map in tests).
    pub fn load(
        file: Option<&Path>,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        // The config crate lower-cases environment names but keeps file keys as written, so
        // each layer is read on its own, its names upper-cased, and the environment applied last.
        let mut raw = BTreeMap::new();
        if let Some(path) = file {
            let source = config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true);
            raw.extend(Self::layer(config::Config::builder().add_source(source))?);
        }
        let env_map: HashMap<String, String> = environment.into_iter().collect();
        let source = config::Environment::default().source(Some(env_map));
        raw.extend(Self::layer(config::Config::builder().add_source(source))?);
        Ok(Self(raw))
    }

    fn layer(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<BTreeMap<String, String>, SettingsError> {
        let built = builder
            .build()
            .map_err(|error| SettingsError::Source(error.to_string()))?;
        let table: HashMap<String, config::Value> = built
            .try_deserialize()
            .map_err(|error| SettingsError::Source(error.to_string()))?;
        let mut layer = BTreeMap::new();
        for (key, value) in table {
            let text = match value.clone().into_array() {
                Ok(items) => items
                    .into_iter()
                    .map(|item| item.into_string().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(","),
                Err(_) => match value.into_string() {
                    Ok(text) => text,
                    // Nested tables are not settings of ours.
                    Err(_) => continue,
                },
            };
            layer.insert(key.to_ascii_uppercase(), text);
        }
        Ok(layer)
    }

    /// The value of one setting, trimmed; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// Builds settings from explicit pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v.to_owned()))
                .collect(),
        )
    }
}

fn invalid(name: &str, value: &str, why: &str) -> SettingsError {
    SettingsError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        why: why.to_owned(),
    }
}

fn parse_or<T: std::str::FromStr>(
    raw: &RawSettings,
    name: &str,
    default: T,
    why: &str,
) -> Result<T, SettingsError> {
    match raw.get(name) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| invalid(name, text, why)),
    }
}

fn bool_or(raw: &RawSettings, name: &str, default: bool) -> Result<bool, SettingsError> {
    match raw.get(name).map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(_) => Err(invalid(
            name,
            raw.get(name).unwrap_or_default(),
            "expected true or false",
        )),
    }
}

fn secs_or(raw: &RawSettings, name: &str, default: u64) -> Result<Duration, SettingsError> {
    let secs: u64 = parse_or(
        raw,
        name,
        default,
        "expected a whole number of seconds above 0",
    )?;
    if secs == 0 {
        return Err(invalid(
            name,
            "0",
            "expected a whole number of seconds above 0",
        ));
    }
    Ok(Duration::from_secs(secs))
}

fn required(raw: &RawSettings, name: &str) -> Result<String, SettingsError> {
    raw.get(name)
        .map(str::to_owned)
        .ok_or_else(|| SettingsError::Missing(name.to_owned()))
}

impl Settings {
    /// Validates the raw values for the given vendors. The first problem is returned.
    pub fn from_raw(raw: &RawSettings, vendors: &[VendorName]) -> Result<Self, SettingsError> {
        let nats_url = required(raw, "NATS_SERVER1")?;
        check_url(&nats_url, &["nats", "tls"])
            .map_err(|why| invalid("NATS_SERVER1", &nats_url, &why))?;
        let redis_url = match (raw.get("REDIS_URL"), raw.get("REDIS_HOSTNAME")) {
            (Some(url), _) => {
                check_url(url, &["redis", "rediss"])
                    .map_err(|why| invalid("REDIS_URL", url, &why))?;
                url.to_owned()
            }
            (None, Some(host)) => {
                if host.contains(['/', ' ']) {
                    return Err(invalid("REDIS_HOSTNAME", host, "expected a host name"));
                }
                format!("redis://{host}:6379")
            }
            (None, None) => return Err(SettingsError::Missing("REDIS_HOSTNAME".into())),
        };
        let environment_name = required(raw, "ENVIRONMENT_NAME")?;
        let current_environment = raw.get("CURRENT_ENVIRONMENT").unwrap_or("dev").to_owned();
        let http_port = parse_or(
            raw,
            "DISPATCH_MONITOR_SERVER_PORT",
            5000u16,
            "expected a port number",
        )?;

        let mut schedules = Vec::new();
        for vendor in vendors {
            let prefix = format!("MONITOR_{}", vendor.as_str().replace('-', "_"));
            schedules.push(VendorSchedule {
                name: vendor.clone(),
                enabled: bool_or(raw, &format!("{prefix}_ENABLED"), true)?,
                interval: secs_or(raw, &format!("{prefix}_INTERVAL_SECS"), 900)?,
            });
        }

        let concurrency: usize = parse_or(
            raw,
            "MONITOR_CONCURRENCY",
            8,
            "expected a whole number above 0",
        )?;
        if concurrency == 0 {
            return Err(invalid(
                "MONITOR_CONCURRENCY",
                "0",
                "expected a whole number above 0",
            ));
        }
        let reminder_hours = match raw.get("MONITOR_REMINDER_HOURS") {
            None => vec![12, 6, 2],
            Some(text) => {
                let why = "expected comma-separated whole hours from 1 to 168, e.g. 12,6,2";
                let hours: Result<Vec<u32>, _> =
                    text.split(',').map(|h| h.trim().parse::<u32>()).collect();
                match hours {
                    Ok(hours) if hours.iter().all(|h| (1..=168).contains(h)) => hours,
                    _ => return Err(invalid("MONITOR_REMINDER_HOURS", text, why)),
                }
            }
        };
        let request_timeout = secs_or(raw, "MONITOR_REQUEST_TIMEOUT_SECS", 60)?;
        if request_timeout > MAX_REQUEST_TIMEOUT {
            return Err(invalid(
                "MONITOR_REQUEST_TIMEOUT_SECS",
                &request_timeout.as_secs().to_string(),
                "expected at most 240 seconds, so an SMS claim (5 minutes) outlives its request",
            ));
        }
        let alert_level = match raw.get("MONITOR_ALERT_LEVEL") {
            None => AlertLevel::All,
            Some(text) => text
                .parse()
                .map_err(|_| invalid("MONITOR_ALERT_LEVEL", text, "expected all or errors"))?,
        };
        let cancel_email_recipients: Vec<String> = raw
            .get("MONITOR_CANCEL_EMAIL_RECIPIENTS")
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(bad) = cancel_email_recipients.iter().find(|a| !a.contains('@')) {
            return Err(invalid(
                "MONITOR_CANCEL_EMAIL_RECIPIENTS",
                bad,
                "expected email addresses",
            ));
        }
        let completed_notes = bool_or(raw, "MONITOR_COMPLETED_NOTES", true)?;
        let lease_ttl = secs_or(raw, "MONITOR_LEASE_TTL_SECS", 60)?;
        let shutdown_grace = secs_or(raw, "MONITOR_SHUTDOWN_GRACE_SECS", 30)?;
        let log_format = match raw
            .get("MONITOR_LOG_FORMAT")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(invalid(
                    "MONITOR_LOG_FORMAT",
                    other,
                    "expected text or json",
                ));
            }
        };
        let templates_dir = raw.get("MONITOR_TEMPLATES_DIR").map(PathBuf::from);
        if let Some(dir) = &templates_dir
            && !dir.is_dir()
        {
            return Err(invalid(
                "MONITOR_TEMPLATES_DIR",
                &dir.display().to_string(),
                "expected an existing folder",
            ));
        }

        Ok(Self {
            nats_url,
            redis_url,
            environment_name,
            current_environment,
            http_port,
            vendors: schedules,
            concurrency,
            reminder_hours,
            request_timeout,
            alert_level,
            cancel_email_recipients,
            completed_notes,
            lease_ttl,
            shutdown_grace,
            log_format,
            templates_dir,
        })
    }

    /// The log format alone, for setting up logs before full validation.
    pub fn log_format_of(raw: &RawSettings) -> LogFormat {
        match raw
            .get("MONITOR_LOG_FORMAT")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }

    /// The effective settings as `NAME=value` lines, secrets in URLs masked.
    pub fn effective(&self) -> Vec<(String, String)> {
        let mut lines = vec![
            ("NATS_SERVER1".to_owned(), mask_url(&self.nats_url)),
            ("REDIS_URL".to_owned(), mask_url(&self.redis_url)),
            ("ENVIRONMENT_NAME".to_owned(), self.environment_name.clone()),
            (
                "CURRENT_ENVIRONMENT".to_owned(),
                self.current_environment.clone(),
            ),
            (
                "DISPATCH_MONITOR_SERVER_PORT".to_owned(),
                self.http_port.to_string(),
            ),
        ];
        for vendor in &self.vendors {
            let prefix = format!("MONITOR_{}", vendor.name.as_str().replace('-', "_"));
            lines.push((format!("{prefix}_ENABLED"), vendor.enabled.to_string()));
            lines.push((
                format!("{prefix}_INTERVAL_SECS"),
                vendor.interval.as_secs().to_string(),
            ));
        }
        let hours: Vec<String> = self.reminder_hours.iter().map(u32::to_string).collect();
        lines.extend([
            (
                "MONITOR_CONCURRENCY".to_owned(),
                self.concurrency.to_string(),
            ),
            ("MONITOR_REMINDER_HOURS".to_owned(), hours.join(",")),
            (
                "MONITOR_REQUEST_TIMEOUT_SECS".to_owned(),
                self.request_timeout.as_secs().to_string(),
            ),
            (
                "MONITOR_ALERT_LEVEL".to_owned(),
                self.alert_level.to_string(),
            ),
            (
                "MONITOR_CANCEL_EMAIL_RECIPIENTS".to_owned(),
                self.cancel_email_recipients.join(","),
            ),
            (
                "MONITOR_COMPLETED_NOTES".to_owned(),
                self.completed_notes.to_string(),
            ),
            (
                "MONITOR_LEASE_TTL_SECS".to_owned(),
                self.lease_ttl.as_secs().to_string(),
            ),
            (
                "MONITOR_SHUTDOWN_GRACE_SECS".to_owned(),
                self.shutdown_grace.as_secs().to_string(),
            ),
            (
                "MONITOR_LOG_FORMAT".to_owned(),
                match self.log_format {
                    LogFormat::Text => "text".to_owned(),
                    LogFormat::Json => "json".to_owned(),
                },
            ),
            (
                "MONITOR_TEMPLATES_DIR".to_owned(),
                self.templates_dir
                    .as_ref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
            ),
        ]);
        lines
    }
}

/// The longest request timeout: an SMS claim must outlive the request that sends the SMS.
const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(240);

/// Checks `scheme://[credentials@]host[:port][/path]` with one of `schemes` and a valid port.
fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    let expected = format!("expected a URL like {}://host:port", schemes[0]);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(expected);
    };
    if !schemes.contains(&scheme) {
        return Err(expected);
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if host_port.starts_with('[') {
        // An IPv6 literal: the port, if any, follows the closing bracket.
        match host_port.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => return Err(expected),
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(expected);
    }
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(format!("{port:?} is not a port number"));
    }
    Ok(())
}

/// Hides the password (and user) of a URL: `redis://:secret@host:6379` → `redis://***@host:6379`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((_credentials, host)) => format!("{scheme}://***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vendors() -> Vec<VendorName> {
        vec![
            VendorName::parse("LIT").unwrap(),
            VendorName::parse("CTS").unwrap(),
        ]
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("NATS_SERVER1", "nats://nats-server:4222"),
            ("REDIS_HOSTNAME", "redis"),
            ("ENVIRONMENT_NAME", "dev"),
        ]
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn original_names_and_defaults() {
        let raw = RawSettings::load(None, env(&base())).unwrap();
        let settings = Settings::from_raw(&raw, &vendors()).unwrap();
        assert_eq!(settings.nats_url, "nats://nats-server:4222");
        assert_eq!(settings.redis_url, "redis://redis:6379");
        assert_eq!(settings.environment_name, "dev");
        assert_eq!(settings.http_port, 5000);
        assert_eq!(settings.concurrency, 8);
        assert_eq!(settings.reminder_hours, vec![12, 6, 2]);
        assert_eq!(settings.request_timeout, Duration::from_secs(60));
        assert_eq!(settings.alert_level, AlertLevel::All);
        assert!(settings.completed_notes);
        assert!(settings.cancel_email_recipients.is_empty());
        assert_eq!(settings.lease_ttl, Duration::from_secs(60));
        assert_eq!(settings.shutdown_grace, Duration::from_secs(30));
        assert_eq!(settings.log_format, LogFormat::Text);
        assert!(
            settings
                .vendors
                .iter()
                .all(|v| v.enabled && v.interval.as_secs() == 900)
        );
    }

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("monitor-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("monitor.toml");
        std::fs::write(
            &file,
            "NATS_SERVER1 = \"nats://from-file:4222\"\nmonitor_concurrency = 3\n\
             MONITOR_REMINDER_HOURS = [24, 1]\nMONITOR_CTS_ENABLED = false\n\
             REDIS_URL = \"redis://:secret@file-redis:6380\"\nENVIRONMENT_NAME = \"file\"\n",
        )
        .unwrap();
        let raw = RawSettings::load(
            Some(&file),
            env(&[("MONITOR_CONCURRENCY", "5"), ("ENVIRONMENT_NAME", "env")]),
        )
        .unwrap();
        let settings = Settings::from_raw(&raw, &vendors()).unwrap();
        assert_eq!(
            settings.nats_url, "nats://from-file:4222",
            "file over default"
        );
        assert_eq!(settings.concurrency, 5, "environment over file");
        assert_eq!(settings.environment_name, "env");
        assert_eq!(settings.reminder_hours, vec![24, 1]);
        assert!(!settings.vendors[1].enabled);
        assert_eq!(
            settings.redis_url, "redis://:secret@file-redis:6380",
            "REDIS_URL wins"
        );
        let effective = settings.effective();
        let redis = effective.iter().find(|(k, _)| k == "REDIS_URL").unwrap();
        assert_eq!(redis.1, "redis://***@file-redis:6380");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_and_invalid_settings_name_the_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("REDIS_HOSTNAME", "r"), ("ENVIRONMENT_NAME", "e")],
                "missing required setting NATS_SERVER1",
            ),
            (
                &[("NATS_SERVER1", "nats://n:4222"), ("ENVIRONMENT_NAME", "e")],
                "missing required setting REDIS_HOSTNAME",
            ),
            (
                &[("NATS_SERVER1", "nats://n:4222"), ("REDIS_HOSTNAME", "r")],
                "missing required setting ENVIRONMENT_NAME",
            ),
        ];
        for (pairs, expected) in cases {
            let raw = RawSettings::load(None, env(pairs)).unwrap();
            assert_eq!(
                Settings::from_raw(&raw, &vendors())
                    .unwrap_err()
                    .to_string(),
                *expected
            );
        }
        let invalid_cases = [
            ("MONITOR_CONCURRENCY", "zero"),
            ("MONITOR_CONCURRENCY", "0"),
            ("MONITOR_REMINDER_HOURS", "12,x"),
            ("MONITOR_REMINDER_HOURS", "0"),
            ("MONITOR_ALERT_LEVEL", "loud"),
            ("MONITOR_COMPLETED_NOTES", "maybe"),
            ("MONITOR_LIT_INTERVAL_SECS", "-5"),
            ("MONITOR_LOG_FORMAT", "xml"),
            ("DISPATCH_MONITOR_SERVER_PORT", "70000"),
            ("REDIS_URL", "http://x"),
            ("REDIS_URL", "redis://127.0.0.1:notaport"),
            ("NATS_SERVER1", "nats://127.0.0.1:99999"),
            ("NATS_SERVER1", "localhost 4222"),
            ("MONITOR_REQUEST_TIMEOUT_SECS", "600"),
            ("MONITOR_CANCEL_EMAIL_RECIPIENTS", "ops"),
            ("MONITOR_TEMPLATES_DIR", "/does/not/exist"),
        ];
        for (name, value) in invalid_cases {
            let mut pairs = base();
            pairs.push((name, value));
            let raw = RawSettings::load(None, env(&pairs)).unwrap();
            let error = Settings::from_raw(&raw, &vendors()).unwrap_err();
            assert!(
                matches!(&error, SettingsError::Invalid { name: n, .. } if n == name),
                "{name}={value}: {error}"
            );
            assert!(!error.to_string().contains('\n'));
        }
    }

    #[test]
    fn good_urls_pass() {
        for url in [
            "nats://nats-server:4222",
            "nats://user:pw@127.0.0.1:4222",
            "tls://n:4443",
            "nats://[::1]:4222",
            "nats://localhost",
        ] {
            assert_eq!(check_url(url, &["nats", "tls"]), Ok(()), "{url}");
        }
        assert_eq!(
            check_url("redis://:secret@r:6380/2", &["redis", "rediss"]),
            Ok(())
        );
    }

    #[test]
    fn urls_are_masked() {
        assert_eq!(mask_url("nats://user:pw@host:4222"), "nats://***@host:4222");
        assert_eq!(mask_url("redis://host:6379"), "redis://host:6379");
    }
}
