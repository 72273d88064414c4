//! The LIT appointment: free-text start times typed by people (SPEC §5.1).

use std::sync::LazyLock;

use chrono::{NaiveDate, NaiveTime};
use domain::Appointment;
use regex::Regex;

/// The first number in the text with an optional `:MM` part. Digit runs are taken whole, so
/// `1030AM` is a three-digit number and not a start time.
static START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([0-9]+)(?::([0-9]+))?").expect("the start-time pattern compiles")
});

/// The first `A` or `P` directly after a digit, optionally after one space or `-`.
static MERIDIEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9][ \-]?([AP])").expect("the meridiem pattern compiles"));

/// Reads a LIT appointment from the raw `Date_of_Dispatch` (`2020-03-16`),
/// `Hard_Time_of_Dispatch_Local` (free text such as `4PM-6PM` or `10a-12p ET`) and
/// `Hard_Time_of_Dispatch_Time_Zone_Local` (`Pacific Time`, an IANA name, ...) texts.
///
/// Returns `None` when any part is absent or cannot be read, including a time without a
/// meridiem such as `12:00`. The zone always comes from the zone field, never from the time
/// text, and DST gaps and overlaps are resolved by [`Appointment::localise`].
///
/// ```
/// let at = vendor_lit::parse_appointment(Some("2020-03-16"), Some("4-6pm"), Some("Pacific Time"));
/// let at = at.unwrap();
/// assert_eq!(at.instant.to_rfc3339(), "2020-03-16T16:00:00-07:00");
/// assert_eq!(at.display, "Mar 16, 2020 @ 04:00 PM Pacific");
/// assert!(vendor_lit::parse_appointment(Some("2020-03-16"), Some("12:00"), Some("Pacific")).is_none());
/// ```
pub fn parse_appointment(
    date: Option<&str>,
    time: Option<&str>,
    zone: Option<&str>,
) -> Option<Appointment> {
    let date = NaiveDate::parse_from_str(date?.trim(), "%Y-%m-%d").ok()?;
    let time = parse_start_time(time?)?;
    Appointment::localise(date, time, zone?)
}

/// Reads the start time of a free-text LIT time range, e.g. `4PM-6PM` → 16:00, `12am` →
/// 00:00, `7.00PM` → 19:00, `3:30a ET` → 03:30. `None` without a meridiem or a usable number.
pub fn parse_start_time(text: &str) -> Option<NaiveTime> {
    let text = text.to_uppercase().replace('.', ":").replace("::", ":");
    let start = START.captures(&text)?;
    let hour_text = start.get(1)?.as_str();
    if hour_text.len() > 2 {
        return None;
    }
    let hour: u32 = hour_text.parse().ok()?;
    let minute: u32 = match start.get(2) {
        Some(minutes) if minutes.as_str().len() == 2 => minutes.as_str().parse().ok()?,
        Some(_) => return None,
        None => 0,
    };
    let afternoon = &MERIDIEM.captures(&text)?[1] == "P";
    if !(1..=12).contains(&hour) {
        return None;
    }
    let hour = hour % 12 + if afternoon { 12 } else { 0 };
    NaiveTime::from_hms_opt(hour, minute, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(text: &str) -> Option<String> {
        parse_start_time(text).map(|time| time.format("%H:%M").to_string())
    }

    #[test]
    fn start_times_follow_the_first_number_and_the_first_meridiem() {
        let cases: &[(&str, Option<&str>)] = &[
            ("4PM-6PM", Some("16:00")),
            ("4-6pm", Some("16:00")),
            ("8am-1p PT", Some("08:00")),
            ("12am", Some("00:00")),
            ("12pm", Some("12:00")),
            ("12::00PM", Some("12:00")),
            ("7.00PM", Some("19:00")),
            ("9:00 AM", Some("09:00")),
            ("10 - am", None),
            ("12:00", None),
            ("TBD", None),
            ("", None),
            ("13PM", None),
            ("0AM", None),
            ("1030AM", None),
            ("10:3AM", None),
            ("10:75AM", None),
        ];
        for (text, expected) in cases {
            assert_eq!(hm(text).as_deref(), *expected, "time text {text:?}");
        }
    }
}
