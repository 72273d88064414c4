//! The types settings are parsed into: each says how its text is read (and what is expected
//! when it cannot be) and how its effective value is shown, credentials masked.

use std::fmt;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

use domain::alerts::AlertLevel;
use regex::Regex;

/// A setting's type.
pub trait SettingValue: Sized {
    /// Reads the (trimmed, non-empty) text; the error says what is expected.
    fn parse(text: &str) -> Result<Self, String>;
    /// The value as `check-config` shows it; secrets masked.
    fn show(&self) -> String;
}

impl<T: SettingValue> SettingValue for Option<T> {
    fn parse(text: &str) -> Result<Self, String> {
        T::parse(text).map(Some)
    }
    fn show(&self) -> String {
        self.as_ref().map(T::show).unwrap_or_default()
    }
}

impl SettingValue for String {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_owned())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

impl SettingValue for u16 {
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| "expected a port number".to_owned())
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for usize {
    fn parse(text: &str) -> Result<Self, String> {
        match text.parse() {
            Ok(0) | Err(_) => Err("expected a whole number above 0".to_owned()),
            Ok(count) => Ok(count),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for bool {
    fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(
                "expected true or false (also accepted, in any case: yes or no, on or off, 1 or 0)"
                    .to_owned(),
            ),
        }
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for AlertLevel {
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| "expected all or errors".to_owned())
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for domain::QuietHours {
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for domain::safeguards::DailyCap {
    fn parse(text: &str) -> Result<Self, String> {
        text.parse().map(Self).map_err(|_| {
            "expected a whole number of texts per number per 24 hours (0: off)".to_owned()
        })
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for std::net::IpAddr {
    fn parse(text: &str) -> Result<Self, String> {
        text.parse()
            .map_err(|_| "expected an IP address, e.g. 0.0.0.0 or 127.0.0.1".to_owned())
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// A whole number of seconds above zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl Secs {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl SettingValue for Secs {
    fn parse(text: &str) -> Result<Self, String> {
        match text.parse::<u64>() {
            Ok(secs) if secs > 0 => Ok(Self::from_secs(secs)),
            _ => Err("expected a whole number of seconds above 0".to_owned()),
        }
    }
    fn show(&self) -> String {
        self.0.as_secs().to_string()
    }
}

/// A whole number of seconds from `MIN` to `MAX` (SPEC §18.6): a value outside them is a
/// configuration error, never a timer that overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundedSecs<const MIN: u64, const MAX: u64>(pub Duration);

/// A cycle interval: 1 s to a day.
pub type IntervalSecs = BoundedSecs<1, 86_400>;
/// A vendor lease TTL: 6 s (renewed every 2 s) to an hour.
pub type LeaseTtlSecs = BoundedSecs<6, 3_600>;
/// The shutdown grace period: 0 to 10 minutes.
pub type GraceSecs = BoundedSecs<0, 600>;

impl<const MIN: u64, const MAX: u64> BoundedSecs<MIN, MAX> {
    /// `secs` seconds; the caller keeps it within the bounds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl<const MIN: u64, const MAX: u64> SettingValue for BoundedSecs<MIN, MAX> {
    fn parse(text: &str) -> Result<Self, String> {
        match text.parse::<u64>() {
            Ok(secs) if (MIN..=MAX).contains(&secs) => Ok(Self::from_secs(secs)),
            _ => Err(format!("expected whole seconds from {MIN} to {MAX}")),
        }
    }
    fn show(&self) -> String {
        self.0.as_secs().to_string()
    }
}

/// Reminder hours, each from 1 to 168.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderHours(pub Vec<u32>);

impl SettingValue for ReminderHours {
    fn parse(text: &str) -> Result<Self, String> {
        let why = "expected comma-separated whole hours from 1 to 168, e.g. 12,6,2";
        let hours: Vec<u32> = text
            .split(',')
            .map(|h| h.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| why.to_owned())?;
        if hours.iter().all(|h| (1..=168).contains(h)) {
            Ok(Self(hours))
        } else {
            Err(why.to_owned())
        }
    }
    fn show(&self) -> String {
        let hours: Vec<String> = self.0.iter().map(u32::to_string).collect();
        hours.join(",")
    }
}

/// Comma-separated email addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailList(pub Vec<String>);

impl SettingValue for EmailList {
    fn parse(text: &str) -> Result<Self, String> {
        let addresses: Vec<String> = text
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        match addresses.iter().find(|a| !a.contains('@')) {
            Some(bad) => Err(format!("expected email addresses, not {bad:?}")),
            None => Ok(Self(addresses)),
        }
    }
    fn show(&self) -> String {
        self.0.join(",")
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl SettingValue for LogFormat {
    fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("expected text or json".to_owned()),
        }
    }
    fn show(&self) -> String {
        match self {
            LogFormat::Text => "text".to_owned(),
            LogFormat::Json => "json".to_owned(),
        }
    }
}

/// An existing folder of template overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplatesDir(pub PathBuf);

impl SettingValue for TemplatesDir {
    fn parse(text: &str) -> Result<Self, String> {
        let path = PathBuf::from(text);
        if path.is_dir() {
            Ok(Self(path))
        } else {
            Err("expected an existing folder".to_owned())
        }
    }
    fn show(&self) -> String {
        self.0.display().to_string()
    }
}

/// An existing PEM file of CA certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFile(pub PathBuf);

impl SettingValue for CaFile {
    fn parse(text: &str) -> Result<Self, String> {
        let path = PathBuf::from(text);
        if path.is_file() {
            Ok(Self(path))
        } else {
            Err("expected an existing PEM file".to_owned())
        }
    }
    fn show(&self) -> String {
        self.0.display().to_string()
    }
}

/// A bare Redis host name or address: no scheme, no port (SPEC §13.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host(pub String);

impl Host {
    /// `redis://{host}:6379`.
    pub fn default_url(&self) -> SecretUrl {
        let host = if self.0.contains(':') {
            format!("[{}]", self.0)
        } else {
            self.0.clone()
        };
        SecretUrl(format!("redis://{host}:6379"))
    }
}

impl SettingValue for Host {
    fn parse(text: &str) -> Result<Self, String> {
        let why =
            "expected a bare host name or address (no scheme, no port); use REDIS_URL for more";
        let is_ipv6 = text.parse::<std::net::Ipv6Addr>().is_ok();
        let bad = text.contains("://")
            || text.contains(['/', ' ', '@', '[', ']'])
            || (text.contains(':') && !is_ipv6);
        if bad {
            return Err(why.to_owned());
        }
        // The URL it makes must be one the Redis client reads (found by the fuzz target
        // `settings`: control characters made a URL that failed only when connecting).
        let host = Self(text.to_owned());
        match SecretUrl::parse(host.default_url().expose()) {
            Ok(_) => Ok(host),
            Err(_) => Err(why.to_owned()),
        }
    }
    fn show(&self) -> String {
        self.0.clone()
    }
}

/// A URL that may hold credentials: `Debug` and `Display` mask them.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The URL itself, credentials included: only for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The scheme, e.g. `redis`.
    pub fn scheme(&self) -> &str {
        self.0.split_once("://").map_or("", |(scheme, _)| scheme)
    }

    /// Checks `scheme://[credentials@]host[:port][/path]` with one of `schemes`.
    pub fn parse_with(text: &str, schemes: &[&str]) -> Result<Self, String> {
        check_url(text, schemes)?;
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({})", mask_credentials(&self.0))
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_credentials(&self.0))
    }
}

/// The Redis URL forms (SPEC §4, §13.12, §16): a server, a Sentinel deployment, a Cluster.
pub const REDIS_SCHEMES: [&str; 6] = [
    "redis",
    "rediss",
    "redis-sentinel",
    "rediss-sentinel",
    "redis-cluster",
    "rediss-cluster",
];

impl SettingValue for SecretUrl {
    /// `redis://`, `rediss://`, and fred's `redis-sentinel://host:port[/db]?sentinelServiceName=
    /// NAME&node=host2:port2…` and `redis-cluster://host:port?node=host2:port2…` (and their
    /// `rediss-` TLS forms); every `node` must be `host:port`.
    fn parse(text: &str) -> Result<Self, String> {
        let url = Self::parse_with(text, &REDIS_SCHEMES)?;
        let scheme = url.scheme();
        let query = text.split_once('?').map_or("", |(_, query)| query);
        let params: Vec<(&str, &str)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        for (_, node) in params.iter().filter(|(name, _)| *name == "node") {
            let has_port = node
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok_and(|p| p > 0));
            if !has_port || check_url(&format!("redis://{node}"), &["redis"]).is_err() {
                return Err(format!("node={node:?} is not host:port"));
            }
        }
        if scheme.ends_with("-sentinel")
            && !params
                .iter()
                .any(|(name, value)| *name == "sentinelServiceName" && !value.is_empty())
        {
            return Err(
                "a Sentinel URL needs ?sentinelServiceName=NAME (the monitored primary's name)"
                    .to_owned(),
            );
        }
        Ok(url)
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// The NATS server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsUrls(pub SecretUrl);

impl NatsUrls {
    /// The seed list with `more` URLs added (`NATS_SERVER2` … `NATS_SERVER9`).
    pub fn with(&self, more: &NatsUrls) -> NatsUrls {
        NatsUrls(SecretUrl(format!("{},{}", self.0.0, more.0.0)))
    }
}

impl SettingValue for NatsUrls {
    /// One URL, or several separated by commas (a cluster's seed list, SPEC §16).
    fn parse(text: &str) -> Result<Self, String> {
        let seeds: Vec<&str> = text.split(',').map(str::trim).collect();
        for seed in &seeds {
            if seed.is_empty() {
                return Err("an empty URL in the list: separate URLs with single commas".to_owned());
            }
            check_url(seed, &["nats", "tls"])?;
        }
        Ok(Self(SecretUrl(seeds.join(","))))
    }
    fn show(&self) -> String {
        self.0.show()
    }
}

/// Checks `scheme://[credentials@]host[:port][/path]` with one of `schemes` and a valid port.
fn check_url(url: &str, schemes: &[&str]) -> Result<(), String> {
    let expected = format!("expected a URL like {}://host:port", schemes[0]);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(expected);
    };
    if !schemes.contains(&scheme) {
        return Err(expected);
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
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
        // The port is not repeated: a password holding `:` or `/` can be misread as one.
        return Err("the port is not a number from 1 to 65535".to_owned());
    }
    Ok(())
}

/// Where a URL starts: its scheme and `://`.
static URL_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Za-z][A-Za-z0-9+.-]*://").expect("a valid pattern"));

/// A query parameter whose name says it holds a password, up to its value.
static PASSWORD_PARAM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)[?&][^&=]*password[^&=]*=").expect("a valid pattern"));

/// Hides the credentials of every URL in `text`: `redis://:secret@host:6379` becomes
/// `redis://***@host:6379`, and a `sentinelPassword=` query value becomes `***`. A URL runs
/// to the next URL (a seed list's comma excluded) or the end, and its credentials to its last
/// `@`, so a password holding `,`, `@`, `:` or `/` is hidden whole. After every `://`, the user
/// info a URL reader finds (to the last `@` before the first `/` or `?`) is hidden too.
pub fn mask_credentials(text: &str) -> String {
    // Masking can uncover another reading of a mangled text (the fuzz target `settings` found
    // such texts); it is repeated until nothing changes, so that masked text is final.
    let mut masked = mask_once(text);
    for _ in 0..64 {
        let again = mask_once(&masked);
        if again == masked {
            break;
        }
        masked = again;
    }
    masked
}

/// One masking pass of [`mask_credentials`].
fn mask_once(text: &str) -> String {
    // Password values first: one may hold what reads as another URL (`password=x=nats://…`).
    let text = &mask_password_values(text);
    let starts: Vec<usize> = URL_START.find_iter(text).map(|m| m.start()).collect();
    let Some(&first) = starts.first() else {
        return mask_authorities(text);
    };
    let mut masked = text[..first].to_owned();
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(text.len());
        let segment = &text[start..end];
        // The separator before the next URL (`,` and spaces) is not part of this one.
        let url_end = segment.trim_end_matches([',', ' ', '\t', '\n']).len();
        masked.push_str(&mask_one_url(&segment[..url_end]));
        masked.push_str(&segment[url_end..]);
    }
    mask_authorities(&masked)
}

/// After every `://`, the user info as a URL reader finds it hidden: the authority ends at the
/// first `/` or `?`, and the user info runs to its last `@`. A mangled text can hold an `@`
/// there that the per-URL rule missed (fuzz target `settings`).
fn mask_authorities(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut tail = text;
    while let Some(found) = tail.find("://") {
        let (head, rest) = tail.split_at(found + 3);
        masked.push_str(head);
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        tail = match authority.rfind('@') {
            Some(at) => {
                masked.push_str("***");
                &rest[at..]
            }
            None => rest,
        };
    }
    masked.push_str(tail);
    masked
}

/// Every `password` query value hidden, up to the next `&` or the end: a comma may belong to
/// the password, so a seed list's later URLs are hidden with it rather than risk it.
fn mask_password_values(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut tail = text;
    while let Some(found) = PASSWORD_PARAM.find(tail) {
        masked.push_str(&tail[..found.end()]);
        masked.push_str("***");
        let value = &tail[found.end()..];
        tail = value.find('&').map_or("", |end| &value[end..]);
    }
    masked.push_str(tail);
    masked
}

/// The credentials a URL reader finds in `url`: the user info (before the last `@` of the
/// authority, which ends at the first `/` or `?`) and the values of query parameters whose
/// name holds `password`. Masked text yields only `***` here (tests and the fuzz target
/// `settings` check that).
pub fn credentials_a_reader_finds(url: &str) -> Vec<&str> {
    let Some((_, rest)) = url.split_once("://") else {
        return Vec::new();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let mut credentials: Vec<&str> = rest[..authority_end]
        .rsplit_once('@')
        .map(|(user, _)| user)
        .into_iter()
        .collect();
    if let Some((_, query)) = rest[authority_end..].split_once('?') {
        for (name, value) in query.split('&').filter_map(|p| p.split_once('=')) {
            if name.to_ascii_lowercase().contains("password") {
                credentials.push(value);
            }
        }
    }
    credentials
}

/// `scheme://user:pass@host…?…password=…` with the credentials and password values hidden.
fn mask_one_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    // The credentials run to the last `@` before the first password value: a password
    // parameter's name may start inside them (`u:p&@h?password=`).
    let query_secret = PASSWORD_PARAM.find(rest).map_or(rest.len(), |m| m.end());
    let rest = match rest[..query_secret].rfind('@') {
        Some(at) => format!("***{}", &rest[at..]),
        None => rest.to_owned(),
    };
    format!("{scheme}://{}", mask_password_values(&rest))
}

/// A bearer token: `Debug`, `Display` and `check-config` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// Whether `given` is the token, compared in constant time.
    pub fn matches(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.as_bytes().ct_eq(given.as_bytes()))
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

impl SettingValue for ApiToken {
    fn parse(text: &str) -> Result<Self, String> {
        if text.len() < 16 || text.chars().any(char::is_whitespace) {
            return Err("expected at least 16 characters without spaces".to_owned());
        }
        Ok(Self(text.to_owned()))
    }
    fn show(&self) -> String {
        "***".to_owned()
    }
}
