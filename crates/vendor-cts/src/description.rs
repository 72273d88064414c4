//! The values CTS keeps as `Label: value` lines in its free-text `Description__c` field.

use chrono::NaiveDateTime;
use domain::Appointment;

const IGZ_LABEL: &str = "IGZ Dispatch Number:";
const CONTACT_LABEL: &str = "Contact #:";
const TIME_LABEL: &str = "Onsite Time Needed:";
const ZONE_LABEL: &str = "Onsite Timezone:";

/// The lines of `Description__c` the monitor reads; each is the first non-blank value found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Description<'a> {
    /// The text after `IGZ Dispatch Number:`, the id our notes carry.
    pub(crate) igz: Option<&'a str>,
    /// The text after `Contact #:`.
    pub(crate) contact: Option<&'a str>,
    /// The text after `Onsite Time Needed:`, e.g. `2020-06-23 03.00PM`.
    pub(crate) time_needed: Option<&'a str>,
    /// The text after `Onsite Timezone:`, e.g. `Pacific Time`.
    pub(crate) timezone: Option<&'a str>,
}

impl<'a> Description<'a> {
    /// Reads the labelled lines; lines may end in `\r\n` or `\n`.
    pub(crate) fn parse(text: &'a str) -> Self {
        let mut found = Self::default();
        for line in text.lines() {
            for (label, slot) in [
                (IGZ_LABEL, &mut found.igz),
                (CONTACT_LABEL, &mut found.contact),
                (TIME_LABEL, &mut found.time_needed),
                (ZONE_LABEL, &mut found.timezone),
            ] {
                if slot.is_none() {
                    *slot = value_after(line, label);
                }
            }
        }
        found
    }
}

/// The trimmed, non-blank text after `label` on a line containing it.
fn value_after<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let start = line.find(label)? + label.len();
    Some(line[start..].trim()).filter(|value| !value.is_empty())
}

/// Reads a CTS appointment from the `Onsite Time Needed` (`2020-06-23 03.00PM`, format
/// `%Y-%m-%d %I.%M%p`) and `Onsite Timezone` (`Pacific Time`) values (SPEC §5.2). `None` when
/// either is absent or unreadable.
pub fn parse_onsite_time(time_needed: Option<&str>, timezone: Option<&str>) -> Option<Appointment> {
    let local = NaiveDateTime::parse_from_str(time_needed?.trim(), "%Y-%m-%d %I.%M%p").ok()?;
    Appointment::localise(local.date(), local.time(), timezone?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labelled_lines_are_read_with_either_line_ending() {
        let crlf = "Onsite Time Needed: 2020-06-23 03.00PM\r\n\r\nOnsite Timezone: Pacific Time\r\n\
                    Onsite Contact: Manager On Duty\r\nContact #: (202) 772-3610\r\n\
                    IGZ Dispatch Number: IGZ_0001";
        let lf = crlf.replace("\r\n", "\n");
        for text in [crlf, lf.as_str()] {
            let found = Description::parse(text);
            assert_eq!(found.igz, Some("IGZ_0001"));
            assert_eq!(found.contact, Some("(202) 772-3610"));
            assert_eq!(found.time_needed, Some("2020-06-23 03.00PM"));
            assert_eq!(found.timezone, Some("Pacific Time"));
        }
        assert_eq!(
            Description::parse("IGZ Dispatch Number:   \r\n"),
            Description::default()
        );
        assert_eq!(Description::parse(""), Description::default());
    }

    #[test]
    fn onsite_times_use_the_cts_format() {
        let appointment =
            parse_onsite_time(Some("2020-06-23 03.00PM"), Some("Pacific Time")).unwrap();
        assert_eq!(
            appointment.instant.to_rfc3339(),
            "2020-06-23T15:00:00-07:00"
        );
        assert_eq!(appointment.display, "Jun 23, 2020 @ 03:00 PM Pacific");
        assert!(parse_onsite_time(Some("2020-06-23 15:00"), Some("Pacific Time")).is_none());
        assert!(parse_onsite_time(Some("2020-06-23 03.00PM"), Some("Mars")).is_none());
        assert!(parse_onsite_time(None, Some("Pacific Time")).is_none());
        assert!(parse_onsite_time(Some("2020-06-23 03.00PM"), None).is_none());
    }
}
