//! Quiet hours for customer texts (SPEC §15): a daily window, in the site's own time, when
//! client reminders are not sent and other client texts wait.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;

use crate::Appointment;

/// A daily window `HH:MM-HH:MM` (24-hour clock), which may wrap midnight (`21:00-08:00`).
/// Its start is in the window, its end is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuietHours {
    start: NaiveTime,
    end: NaiveTime,
}

impl QuietHours {
    /// Whether the wall-clock time `time` is in the window.
    pub fn contains(&self, time: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// Whether it is quiet hours at the appointment's site at `now` (the site's zone, with its
    /// daylight saving).
    pub fn at_site(&self, appointment: &Appointment, now: DateTime<Utc>) -> bool {
        self.contains(appointment.zone.local(now).time())
    }
}

impl FromStr for QuietHours {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let why = || "expected HH:MM-HH:MM on a 24-hour clock, e.g. 21:00-08:00".to_owned();
        let (start, end) = text.trim().split_once('-').ok_or_else(why)?;
        let time = |part: &str| NaiveTime::parse_from_str(part.trim(), "%H:%M").map_err(|_| why());
        let hours = Self {
            start: time(start)?,
            end: time(end)?,
        };
        if hours.start == hours.end {
            return Err("the window is empty: start and end are the same time".to_owned());
        }
        Ok(hours)
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveTime {
        NaiveTime::parse_from_str(text, "%H:%M").unwrap()
    }

    #[test]
    fn windows_read_and_may_wrap_midnight() {
        let night: QuietHours = "21:00-08:00".parse().unwrap();
        assert_eq!(night.to_string(), "21:00-08:00");
        for (time, quiet) in [
            ("20:59", false),
            ("21:00", true),
            ("23:59", true),
            ("00:00", true),
            ("07:59", true),
            ("08:00", false),
            ("12:00", false),
        ] {
            assert_eq!(night.contains(at(time)), quiet, "{time}");
        }
        let lunch: QuietHours = " 12:00 - 13:30 ".parse().unwrap();
        assert!(lunch.contains(at("12:00")) && lunch.contains(at("13:29")));
        assert!(!lunch.contains(at("13:30")) && !lunch.contains(at("11:59")));
        for bad in [
            "",
            "21:00",
            "21-08",
            "25:00-08:00",
            "21:00-08:60",
            "09:00-09:00",
            "9pm-8am",
        ] {
            assert!(bad.parse::<QuietHours>().is_err(), "{bad:?}");
        }
    }
}
