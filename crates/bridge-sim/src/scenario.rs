//! Scenario files (TOML): the dispatches of each vendor with their tickets and notes, a
//! timeline of changes, and faults. Times are relative to the simulator's start: `+40s`,
//! `+11h30m`, `-2h`. A file that cannot be used is refused with its line and the reason.
//!
//! ```toml
//! [[dispatch]]
//! vendor = "LIT"              # a wired vendor
//! number = "DIS10001"         # the vendor's dispatch id
//! ticket = "4000001"          # the Bruin ticket
//! status = "confirmed"        # requested, confirmed, tech_on_site, canceled, completed, not_monitored
//! appointment = "+11h30m"     # from the start; `zone` says where (default Pacific)
//! client_phone = "+1 212 555 0101"
//! tech = { name = "Joe Malone", phone = "+1 212 555 0102" }
//! site = "Red Rose Inn"
//! street = "160 Broadway"
//! # ours = true (default): the portal's Dispatch Requested note is on the ticket.
//!
//! [[change]]
//! at = "+40s"
//! vendor = "LIT"
//! number = "DIS10001"
//! status = "tech_on_site"
//!
//! [[fault]]
//! at = "+30s"
//! subject = "notification.sms.request"
//! fail = 2
//! status = 503
//! ```

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use domain::{DispatchSpec, Status, UsZone, VendorName};
use serde::Deserialize;
use toml::Spanned;

use crate::faults::Fault;

/// The built-in scenario: a whole day at the dispatch desk in three minutes and a half.
pub const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.toml");

/// A scenario could not be used: the line it is about and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ScenarioError {
    /// The line (1-based).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// A parsed, checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// The dispatches, in list order per vendor.
    pub dispatches: Vec<ScenarioDispatch>,
    /// The timeline of changes, in time order.
    pub changes: Vec<Change>,
    /// Faults, in time order.
    pub faults: Vec<TimedFault>,
}

/// A dispatch of the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioDispatch {
    /// Its vendor.
    pub vendor: VendorName,
    /// Its values; the appointment is completed from `appointment` at the start.
    pub spec: DispatchSpec,
    /// The appointment: how long after the start, and the zone word.
    pub appointment: Option<(chrono::Duration, String)>,
    /// The portal's Dispatch Requested note is on its ticket.
    pub ours: bool,
    /// Other notes on its ticket, written before the start.
    pub notes: Vec<String>,
    /// When it appears in the vendor's list (zero: from the start).
    pub appears: Duration,
}

/// One step of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// When, after the start.
    pub at: Duration,
    /// The vendor.
    pub vendor: VendorName,
    /// The dispatch.
    pub number: String,
    /// A new status.
    pub status: Option<Status>,
    /// A new tech: name and phone.
    pub tech: Option<(String, Option<String>)>,
    /// A new appointment, after the start, in the dispatch's zone.
    pub appointment: Option<chrono::Duration>,
    /// The tech checked in (or not).
    pub tech_on_site: Option<bool>,
    /// The tech checked out (or not).
    pub completed: Option<bool>,
    /// A note another service writes on the ticket.
    pub note: Option<String>,
}

/// A fault set at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedFault {
    /// When, after the start.
    pub at: Duration,
    /// The fault.
    pub fault: Fault,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    #[serde(default)]
    dispatch: Vec<DispatchEntry>,
    #[serde(default)]
    change: Vec<ChangeEntry>,
    #[serde(default)]
    fault: Vec<FaultEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tech {
    name: String,
    phone: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DispatchEntry {
    vendor: Spanned<String>,
    number: Spanned<String>,
    ticket: Spanned<String>,
    igz: Option<String>,
    ours: Option<bool>,
    status: Option<Spanned<String>>,
    appointment: Option<Spanned<String>>,
    zone: Option<Spanned<String>>,
    client_phone: Option<String>,
    tech: Option<Tech>,
    site: Option<String>,
    street: Option<String>,
    #[serde(default)]
    tech_on_site: bool,
    #[serde(default)]
    completed: bool,
    #[serde(default)]
    notes: Vec<String>,
    appears: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeEntry {
    at: Spanned<String>,
    vendor: Spanned<String>,
    number: Spanned<String>,
    status: Option<Spanned<String>>,
    tech: Option<Tech>,
    appointment: Option<Spanned<String>>,
    tech_on_site: Option<bool>,
    completed: Option<bool>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultEntry {
    at: Option<Spanned<String>>,
    subject: Spanned<String>,
    #[serde(default)]
    fail: u32,
    status: Option<u16>,
    #[serde(default)]
    no_reply: u32,
    #[serde(default)]
    bad_json: u32,
    latency_ms: Option<u64>,
}

/// Reads spans as lines.
struct Lines<'a>(&'a str);

impl Lines<'_> {
    fn of<T>(&self, spanned: &Spanned<T>) -> usize {
        let start = spanned.span().start.min(self.0.len());
        self.0[..start].matches('\n').count() + 1
    }

    fn error<T>(&self, spanned: &Spanned<T>, reason: impl Into<String>) -> ScenarioError {
        ScenarioError {
            line: self.of(spanned),
            reason: reason.into(),
        }
    }
}

impl Scenario {
    /// The built-in scenario, for `vendors`.
    pub fn default_day(vendors: &[VendorName]) -> Result<Self, ScenarioError> {
        Self::parse(DEFAULT_SCENARIO, vendors)
    }

    /// Reads a scenario whose dispatches belong to `vendors`.
    pub fn parse(text: &str, vendors: &[VendorName]) -> Result<Self, ScenarioError> {
        let file: File = toml::from_str(text).map_err(|error| ScenarioError {
            line: error.span().map_or(1, |span| {
                text[..span.start.min(text.len())].matches('\n').count() + 1
            }),
            reason: error.message().to_owned(),
        })?;
        let lines = Lines(text);
        let vendor = |name: &Spanned<String>| {
            let known = VendorName::parse(name.get_ref())
                .ok()
                .filter(|vendor| vendors.contains(vendor));
            known.ok_or_else(|| {
                let names: Vec<&str> = vendors.iter().map(VendorName::as_str).collect();
                lines.error(
                    name,
                    format!(
                        "unknown vendor {:?}; wired: {}",
                        name.get_ref(),
                        names.join(", ")
                    ),
                )
            })
        };
        let mut dispatches = Vec::new();
        for entry in file.dispatch {
            dispatches.push(read_dispatch(entry, &lines, &vendor)?);
        }
        let mut changes = Vec::new();
        for entry in file.change {
            let line = lines.of(&entry.number);
            let change = read_change(entry, &lines, &vendor)?;
            if !dispatches
                .iter()
                .any(|d| d.vendor == change.vendor && d.spec.dispatch_number == change.number)
            {
                return Err(ScenarioError {
                    line,
                    reason: format!(
                        "a change names {} {}, which no [[dispatch]] lists",
                        change.vendor, change.number
                    ),
                });
            }
            changes.push(change);
        }
        changes.sort_by_key(|change| change.at);
        let mut faults = Vec::new();
        for entry in file.fault {
            faults.push(read_fault(entry, &lines)?);
        }
        faults.sort_by_key(|fault| fault.at);
        Ok(Self {
            name: file.name.unwrap_or_else(|| "scenario".to_owned()),
            dispatches,
            changes,
            faults,
        })
    }
}

fn read_dispatch(
    entry: DispatchEntry,
    lines: &Lines<'_>,
    vendor: &dyn Fn(&Spanned<String>) -> Result<VendorName, ScenarioError>,
) -> Result<ScenarioDispatch, ScenarioError> {
    let vendor = vendor(&entry.vendor)?;
    let number = non_empty(&entry.number, lines, "number")?;
    let ticket = entry.ticket.get_ref().trim().to_owned();
    if ticket.is_empty() || !ticket.bytes().all(|b| b.is_ascii_digit()) {
        return Err(lines.error(&entry.ticket, "a ticket is all digits"));
    }
    let zone = match &entry.zone {
        Some(zone) => zone_word(zone, lines)?,
        None => "Pacific".to_owned(),
    };
    let appointment = match &entry.appointment {
        Some(at) => Some((signed_offset(at, lines)?, zone)),
        None => None,
    };
    let mut spec = DispatchSpec::new(&number, &ticket);
    spec.note_key = entry.igz;
    spec.status = match &entry.status {
        Some(status) => read_status(status, lines)?,
        None => Status::Requested,
    };
    if let Some(tech) = entry.tech {
        spec.tech_name = Some(tech.name);
        spec.tech_phone = tech.phone;
    }
    spec.client_phone = entry.client_phone;
    spec.site = entry.site;
    spec.street = entry.street;
    spec.tech_on_site = entry.tech_on_site;
    spec.completed = entry.completed;
    let appears = match &entry.appears {
        Some(at) => offset(at, lines)?,
        None => Duration::ZERO,
    };
    Ok(ScenarioDispatch {
        vendor,
        spec,
        appointment,
        ours: entry.ours.unwrap_or(true),
        notes: entry.notes,
        appears,
    })
}

fn read_change(
    entry: ChangeEntry,
    lines: &Lines<'_>,
    vendor: &dyn Fn(&Spanned<String>) -> Result<VendorName, ScenarioError>,
) -> Result<Change, ScenarioError> {
    Ok(Change {
        at: offset(&entry.at, lines)?,
        vendor: vendor(&entry.vendor)?,
        number: non_empty(&entry.number, lines, "number")?,
        status: entry
            .status
            .as_ref()
            .map(|status| read_status(status, lines))
            .transpose()?,
        tech: entry.tech.map(|tech| (tech.name, tech.phone)),
        appointment: entry
            .appointment
            .as_ref()
            .map(|at| signed_offset(at, lines))
            .transpose()?,
        tech_on_site: entry.tech_on_site,
        completed: entry.completed,
        note: entry.note,
    })
}

fn read_fault(entry: FaultEntry, lines: &Lines<'_>) -> Result<TimedFault, ScenarioError> {
    let subject = non_empty(&entry.subject, lines, "subject")?;
    if let Some(status) = entry.status
        && !(100..=599).contains(&status)
    {
        return Err(lines.error(
            &entry.subject,
            format!("status {status} is not an HTTP status"),
        ));
    }
    Ok(TimedFault {
        at: match &entry.at {
            Some(at) => offset(at, lines)?,
            None => Duration::ZERO,
        },
        fault: Fault {
            subject,
            fail: entry.fail,
            status: entry.status,
            no_reply: entry.no_reply,
            bad_json: entry.bad_json,
            latency_ms: entry.latency_ms,
        },
    })
}

fn non_empty(
    text: &Spanned<String>,
    lines: &Lines<'_>,
    what: &str,
) -> Result<String, ScenarioError> {
    let value = text.get_ref().trim();
    if value.is_empty() {
        return Err(lines.error(text, format!("{what} is empty")));
    }
    Ok(value.to_owned())
}

fn read_status(text: &Spanned<String>, lines: &Lines<'_>) -> Result<Status, ScenarioError> {
    Status::ALL
        .into_iter()
        .find(|status| status.label() == text.get_ref().trim())
        .ok_or_else(|| {
            let labels: Vec<&str> = Status::ALL.iter().map(|s| s.label()).collect();
            lines.error(
                text,
                format!(
                    "unknown status {:?}; one of {}",
                    text.get_ref(),
                    labels.join(", ")
                ),
            )
        })
}

fn zone_word(text: &Spanned<String>, lines: &Lines<'_>) -> Result<String, ScenarioError> {
    const WORDS: [&str; 7] = [
        "Pacific", "Mountain", "Central", "Eastern", "Alaska", "Hawaii", "Arizona",
    ];
    UsZone::parse(text.get_ref())
        .map(|zone| zone.word)
        .filter(|word| WORDS.contains(&word.as_str()))
        .ok_or_else(|| {
            lines.error(
                text,
                format!(
                    "unknown zone {:?}; one of {}",
                    text.get_ref(),
                    WORDS.join(", ")
                ),
            )
        })
}

/// A time after the start: `+40s`, `+2m30s`, `+1h` (the `+` is optional).
fn offset(text: &Spanned<String>, lines: &Lines<'_>) -> Result<Duration, ScenarioError> {
    let signed = signed_offset(text, lines)?;
    signed
        .to_std()
        .map_err(|_| lines.error(text, "a time on the timeline cannot be before the start"))
}

/// A signed duration: `+11h30m`, `-2h`, `+1d`.
fn signed_offset(
    text: &Spanned<String>,
    lines: &Lines<'_>,
) -> Result<chrono::Duration, ScenarioError> {
    parse_offset(text.get_ref()).ok_or_else(|| {
        lines.error(
            text,
            format!(
                "{:?} is not a time like +40s, +11h30m or -2h",
                text.get_ref()
            ),
        )
    })
}

/// `+11h30m` → 11.5 h; units d, h, m, s, in that order, each at most once.
pub fn parse_offset(text: &str) -> Option<chrono::Duration> {
    let text = text.trim();
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0i64;
    let mut number = String::new();
    let mut last_unit = 0;
    for c in rest.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let (rank, seconds) = match c {
            'd' => (1, 86_400),
            'h' => (2, 3_600),
            'm' => (3, 60),
            's' => (4, 1),
            _ => return None,
        };
        if number.is_empty() || rank <= last_unit {
            return None;
        }
        total = total.checked_add(number.parse::<i64>().ok()?.checked_mul(seconds)?)?;
        number.clear();
        last_unit = rank;
    }
    if !number.is_empty() {
        return None;
    }
    // Beyond chrono's range (about 292 million years) the text is refused, not a panic.
    chrono::Duration::try_seconds(sign * total)
}

/// The wall-clock time at the site `after` the start, to the minute (vendors send minutes).
pub fn local_time(
    start: DateTime<Utc>,
    after: chrono::Duration,
    zone: &str,
) -> Option<NaiveDateTime> {
    let zone = UsZone::parse(zone)?;
    let local = start
        .checked_add_signed(after)?
        .with_timezone(&zone.tz)
        .naive_local();
    local.with_second(0)?.with_nanosecond(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_beyond_the_calendar_are_refused_without_panicking() {
        // Found while writing the `scenario` fuzz target's invariant: both used to panic.
        assert_eq!(parse_offset("+9999999999999999s"), None);
        let text = "[[dispatch]]\nvendor = \"LIT\"\nnumber = \"D\"\nticket = \"1\"\n\
                    appointment = \"+9999999999999999s\"\n";
        let error = Scenario::parse(text, &[VendorName::fixed("LIT")]).unwrap_err();
        assert_eq!(error.line, 5);
        let far = parse_offset("+9000000000000000s").unwrap();
        assert_eq!(local_time(Utc::now(), far, "Pacific"), None);
    }

    fn vendors() -> Vec<VendorName> {
        vec![VendorName::fixed("LIT"), VendorName::fixed("CTS")]
    }

    #[test]
    fn offsets_read_units_in_order() {
        let minutes = |m: i64| Some(chrono::Duration::minutes(m));
        assert_eq!(parse_offset("+11h30m"), minutes(690));
        assert_eq!(parse_offset("40s"), Some(chrono::Duration::seconds(40)));
        assert_eq!(parse_offset("-2h"), minutes(-120));
        assert_eq!(parse_offset("+1d1h"), minutes(1500));
        for bad in ["", "+", "11", "h", "+30m1h", "+1x", "1.5h", "+1h1h"] {
            assert_eq!(parse_offset(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_documented_example_reads() {
        let text = include_str!("../scenarios/example.toml");
        let scenario = Scenario::parse(text, &vendors()).unwrap();
        assert_eq!(scenario.dispatches.len(), 2);
        assert_eq!(scenario.changes.len(), 2);
        assert_eq!(scenario.faults.len(), 2);
    }

    #[test]
    fn the_default_day_reads() {
        let scenario = Scenario::default_day(&vendors()).unwrap();
        assert!(scenario.dispatches.len() >= 6);
        assert!(!scenario.changes.is_empty());
        assert!(!scenario.faults.is_empty());
    }

    #[test]
    fn bad_files_name_the_line_and_the_reason() {
        let cases = [
            (
                "[[dispatch]]\nvendor = \"NO-SUCH-VENDOR\"\nnumber = \"D\"\nticket = \"1\"\n",
                2,
                "unknown vendor",
            ),
            (
                "[[dispatch]]\nvendor = \"LIT\"\nnumber = \"D\"\nticket = \"12a\"\n",
                4,
                "all digits",
            ),
            (
                "[[dispatch]]\nvendor = \"LIT\"\nnumber = \"D\"\nticket = \"1\"\nstatus = \"done\"\n",
                5,
                "unknown status",
            ),
            (
                "[[dispatch]]\nvendor = \"LIT\"\nnumber = \"D\"\nticket = \"1\"\nappointment = \"soon\"\n",
                5,
                "is not a time",
            ),
            (
                "[[dispatch]]\nvendor = \"LIT\"\nnumber = \"D\"\nticket = \"1\"\nzone = \"Mars\"\n",
                5,
                "unknown zone",
            ),
            (
                "[[dispatch]]\nvendor = \"LIT\"\nnumber = \"D\"\nticket = \"1\"\ncolour = 3\n",
                5,
                "unknown field",
            ),
            (
                "[[dispatch]]\nvendor = \"LIT\"\nnumber = \"D\"\nticket = \n",
                4,
                "",
            ),
            (
                "[[fault]]\nat = \"-1m\"\nsubject = \"s\"\n",
                2,
                "before the start",
            ),
        ];
        for (text, line, reason) in cases {
            let error = Scenario::parse(text, &vendors()).unwrap_err();
            assert_eq!(error.line, line, "{text}: {error}");
            assert!(error.reason.contains(reason), "{text}: {error}");
        }
    }

    #[test]
    fn a_change_must_name_a_listed_dispatch() {
        let text = "[[change]]\nat = \"+1s\"\nvendor = \"LIT\"\nnumber = \"NOPE\"\n";
        let error = Scenario::parse(text, &vendors()).unwrap_err();
        assert!(error.reason.contains("NOPE"), "{error}");
        assert_eq!(error.line, 4);
    }

    #[test]
    fn local_times_are_wall_clock_at_the_site_to_the_minute() {
        let start: DateTime<Utc> = "2026-03-16T15:00:30Z".parse().unwrap();
        let local = local_time(start, chrono::Duration::hours(2), "Pacific").unwrap();
        assert_eq!(local.to_string(), "2026-03-16 10:00:00");
    }
}
