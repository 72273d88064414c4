//! Appointment instants, US zone names and the display text both vendors share (SPEC §5.1–5.3).

use chrono::{
    DateTime, Duration, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::Serialize;

/// A known appointment: the instant (with the site zone's offset), the text shown to people,
/// and the site's zone, so that the time of day at the site can be told at any moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Appointment {
    /// The instant, carrying the UTC offset of the site's zone at that moment.
    pub instant: DateTime<FixedOffset>,
    /// For example `Mar 16, 2020 @ 04:00 PM Pacific`.
    pub display: String,
    /// The site's zone.
    #[serde(skip)]
    pub zone: SiteZone,
}

/// The zone an appointment's site is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteZone {
    /// A named zone, with its daylight-saving rules.
    Named(Tz),
    /// Only a fixed offset is known (the vendor sent an instant without a zone name).
    Offset(FixedOffset),
}

impl SiteZone {
    /// The wall-clock time at the site at `at`.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        match self {
            SiteZone::Named(tz) => at.with_timezone(tz).naive_local(),
            SiteZone::Offset(offset) => at.with_timezone(offset).naive_local(),
        }
    }
}

impl Appointment {
    /// An appointment a vendor sends as an instant with its UTC offset and no zone name, e.g.
    /// `2026-03-16T16:00:00-07:00`: shown in that offset (`Mar 16, 2026 @ 04:00 PM UTC-07:00`),
    /// or in `zone_text`'s zone when it names one (SPEC §5.1 names), e.g. `Pacific`.
    pub fn at_offset(instant: DateTime<FixedOffset>, zone_text: Option<&str>) -> Self {
        if let Some(zone) = zone_text.and_then(UsZone::parse) {
            let local = instant.with_timezone(&zone.tz);
            return Self {
                instant,
                display: format!("{} {}", local.format("%b %d, %Y @ %I:%M %p"), zone.word),
                zone: SiteZone::Named(zone.tz),
            };
        }
        let offset = *instant.offset();
        Self {
            instant,
            display: instant.format("%b %d, %Y @ %I:%M %p UTC%:z").to_string(),
            zone: SiteZone::Offset(offset),
        }
    }

    /// [`at_offset`](Self::at_offset) of an RFC 3339 text; `None` when it cannot be read.
    pub fn parse_rfc3339(text: &str, zone_text: Option<&str>) -> Option<Self> {
        let instant = DateTime::parse_from_rfc3339(text.trim()).ok()?;
        Some(Self::at_offset(instant, zone_text))
    }

    /// Localises a wall-clock date and time in a zone named as in SPEC §5.1.
    ///
    /// A time inside a spring-forward gap moves forward by the gap; an ambiguous fall-back time
    /// takes the earlier instant. Returns `None` when the zone name is not recognised.
    pub fn localise(date: NaiveDate, time: NaiveTime, zone_text: &str) -> Option<Self> {
        let zone = UsZone::parse(zone_text)?;
        let instant = localise_in(zone.tz, date.and_time(time));
        let display = format!("{} {}", instant.format("%b %d, %Y @ %I:%M %p"), zone.word);
        Some(Self {
            instant: instant.fixed_offset(),
            display,
            zone: SiteZone::Named(zone.tz),
        })
    }
}

fn localise_in(tz: Tz, local: chrono::NaiveDateTime) -> DateTime<Tz> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(instant) => instant,
        LocalResult::Ambiguous(earlier, _later) => earlier,
        LocalResult::None => {
            // The wall time falls in a gap: read it with the offset in force before the gap,
            // which lands the same distance past the gap's end.
            let before = tz
                .from_local_datetime(&(local - Duration::hours(6)))
                .earliest()
                .map(|t| t.offset().fix())
                .unwrap_or_else(|| FixedOffset::east_opt(0).unwrap());
            let utc = local - Duration::seconds(i64::from(before.local_minus_utc()));
            tz.from_utc_datetime(&utc)
        }
    }
}

/// A zone recognised from vendor text, with the word shown in display texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsZone {
    /// The IANA zone.
    pub tz: Tz,
    /// The word shown after the time, e.g. `Pacific`.
    pub word: String,
}

const US_ZONE_WORDS: [(&str, Tz); 7] = [
    ("Pacific", Tz::America__Los_Angeles),
    ("Mountain", Tz::America__Denver),
    ("Central", Tz::America__Chicago),
    ("Eastern", Tz::America__New_York),
    ("Alaska", Tz::America__Anchorage),
    ("Hawaii", Tz::Pacific__Honolulu),
    ("Arizona", Tz::America__Phoenix),
];

impl UsZone {
    /// Reads `Pacific Time`, `Eastern`, `Arizona`, ... (the word `Time` and spaces are ignored,
    /// case too), or an IANA name such as `America/Chicago` or `US/Pacific`.
    pub fn parse(text: &str) -> Option<Self> {
        let trimmed = text.trim();
        let reduced: String = trimmed
            .replace("Time", "")
            .replace("TIME", "")
            .replace("time", "");
        let reduced: String = reduced.chars().filter(|c| !c.is_whitespace()).collect();
        if let Some((word, tz)) = US_ZONE_WORDS
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(&reduced))
        {
            return Some(Self {
                tz: *tz,
                word: (*word).to_owned(),
            });
        }
        let tz: Tz = trimmed.parse().ok()?;
        // An IANA name for one of the US zones shows that zone's word; any other its own name.
        let word = US_ZONE_WORDS
            .iter()
            .find(|(_, known)| *known == tz)
            .map(|(word, _)| (*word).to_owned())
            .or_else(|| us_alias_word(trimmed))
            .unwrap_or_else(|| trimmed.to_owned());
        Some(Self { tz, word })
    }
}

impl UsZone {
    /// The zone text a vendor record carries for a display word: `Pacific Time` for a US word,
    /// any other zone name (`Europe/Paris`, `UTC`) as it is; [`UsZone::parse`] reads either
    /// back to the same word.
    pub fn vendor_text(word: &str) -> String {
        let with_time = format!("{word} Time");
        if Self::parse(&with_time).is_some_and(|zone| zone.word == word) {
            with_time
        } else {
            word.to_owned()
        }
    }
}

fn us_alias_word(name: &str) -> Option<String> {
    let word = match name {
        "US/Pacific" => "Pacific",
        "US/Mountain" => "Mountain",
        "US/Central" => "Central",
        "US/Eastern" => "Eastern",
        "US/Alaska" => "Alaska",
        "US/Hawaii" => "Hawaii",
        "US/Arizona" => "Arizona",
        _ => return None,
    };
    Some(word.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str, time: &str, zone: &str) -> Option<Appointment> {
        Appointment::localise(
            NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap(),
            NaiveTime::parse_from_str(time, "%H:%M").unwrap(),
            zone,
        )
    }

    #[test]
    fn zones_localise_with_their_offsets_and_words() {
        let cases = [
            (
                "Pacific Time",
                "2020-03-16T16:00:00-07:00",
                "Mar 16, 2020 @ 04:00 PM Pacific",
            ),
            (
                "Arizona",
                "2020-03-16T16:00:00-07:00",
                "Mar 16, 2020 @ 04:00 PM Arizona",
            ),
            (
                "America/Chicago",
                "2020-03-16T16:00:00-05:00",
                "Mar 16, 2020 @ 04:00 PM Central",
            ),
            (
                "US/Eastern",
                "2020-03-16T16:00:00-04:00",
                "Mar 16, 2020 @ 04:00 PM Eastern",
            ),
            (
                "eastern time",
                "2020-03-16T16:00:00-04:00",
                "Mar 16, 2020 @ 04:00 PM Eastern",
            ),
            (
                "Europe/Paris",
                "2020-03-16T16:00:00+01:00",
                "Mar 16, 2020 @ 04:00 PM Europe/Paris",
            ),
        ];
        for (zone, instant, display) in cases {
            let appointment = at("2020-03-16", "16:00", zone).unwrap();
            assert_eq!(appointment.instant.to_rfc3339(), instant, "{zone}");
            assert_eq!(appointment.display, display, "{zone}");
        }
        assert!(at("2020-03-16", "16:00", "BAD").is_none());
        assert!(at("2020-03-16", "16:00", "").is_none());
    }

    #[test]
    fn an_instant_with_an_offset_shows_that_offset_or_the_named_zone() {
        let bare = Appointment::parse_rfc3339("2026-03-16T16:00:00-07:00", None).unwrap();
        assert_eq!(bare.display, "Mar 16, 2026 @ 04:00 PM UTC-07:00");
        assert_eq!(bare.instant.to_rfc3339(), "2026-03-16T16:00:00-07:00");
        let named =
            Appointment::parse_rfc3339("2026-03-16T23:00:00Z", Some("Pacific Time")).unwrap();
        assert_eq!(named.display, "Mar 16, 2026 @ 04:00 PM Pacific");
        let noon = "2026-03-16T19:00:00Z".parse().unwrap();
        assert_eq!(bare.zone.local(noon).to_string(), "2026-03-16 12:00:00");
        assert!(Appointment::parse_rfc3339("tomorrow", None).is_none());
    }

    #[test]
    fn dst_gap_moves_forward_and_overlap_takes_the_earlier_instant() {
        let gap = at("2020-03-08", "02:30", "Pacific Time").unwrap();
        assert_eq!(gap.instant.to_rfc3339(), "2020-03-08T03:30:00-07:00");
        assert_eq!(gap.display, "Mar 08, 2020 @ 03:30 AM Pacific");
        let overlap = at("2020-11-01", "01:30", "Pacific Time").unwrap();
        assert_eq!(overlap.instant.to_rfc3339(), "2020-11-01T01:30:00-07:00");
    }
}
