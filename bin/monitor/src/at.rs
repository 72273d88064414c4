//! "What goes out tonight" (SPEC §17.4): the instant `plan --at TIME` and
//! `GET /api/v1/plan?at=TIME` compute a plan for ([`crate::plan::engine_at`] plans as at it).
//! The CLI and the API share this parser, so both accept exactly the same forms, and the
//! OpenAPI document states its bounds.

use chrono::{DateTime, Duration, Utc};

/// How far from now a plan may be asked for, either way: 7 days.
pub const MAX_AT_DAYS: i64 = 7;
/// The most hours `+Nh` may say (7 days).
pub const MAX_AT_HOURS: i64 = MAX_AT_DAYS * 24;
/// The most minutes `+Nm` may say (7 days).
pub const MAX_AT_MINUTES: i64 = MAX_AT_HOURS * 60;
/// The longest `at` accepted, in characters (the OpenAPI document's `maxLength`).
pub const MAX_AT_CHARS: usize = 40;
/// The forms `at` takes, as the OpenAPI document and error messages say them.
pub const AT_FORMS: &str = "an RFC 3339 time within 7 days of now (e.g. 2026-12-04T21:00:00-05:00), or +Nh (0 to 168) or +Nm (0 to 10080) from now";
/// The pattern every accepted `at` matches (the OpenAPI document's `pattern`). A `+` may be
/// left out, since a query string reads an unescaped `+` as a space.
pub const AT_PATTERN: &str = r"^(\+?[0-9]{1,6}[hm]|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+ -][0-9]{2}:[0-9]{2}))$";

/// Why a time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {AT_FORMS}, got {given:?}")]
pub struct InvalidAt {
    /// The text as given.
    pub given: String,
}

/// Reads `text` as an instant: an RFC 3339 time (any offset) within [`MAX_AT_DAYS`] of
/// `now`, or `+6h`, `+90m` from `now` (the `+` may be left out). Surrounding spaces are
/// ignored, and a space before an offset's digits is read as the `+` a query string turned
/// into it (`…T21:00:00 02:00`).
pub fn parse_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidAt> {
    let invalid = || InvalidAt {
        given: text.to_owned(),
    };
    let trimmed = text.trim();
    // Every accepted form is ASCII; the splits below cut at byte offsets.
    if !trimmed.is_ascii() || trimmed.len() > MAX_AT_CHARS {
        return Err(invalid());
    }
    let at = match relative(trimmed) {
        Some(offset) => now + offset.ok_or_else(invalid)?,
        None => absolute(trimmed).ok_or_else(invalid)?,
    };
    let bound = Duration::days(MAX_AT_DAYS);
    if at < now - bound || at > now + bound {
        return Err(invalid());
    }
    Ok(at)
}

/// `+6h` or `+90m`: `None` when `text` is not of that form, `Some(None)` when it is but out
/// of bounds.
fn relative(text: &str) -> Option<Option<Duration>> {
    let body = text.strip_prefix('+').unwrap_or(text);
    let (digits, unit) = body.split_at(body.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: i64 = digits.parse().ok()?;
    match unit {
        "h" => Some((amount <= MAX_AT_HOURS).then(|| Duration::hours(amount))),
        "m" => Some((amount <= MAX_AT_MINUTES).then(|| Duration::minutes(amount))),
        _ => None,
    }
}

fn absolute(text: &str) -> Option<DateTime<Utc>> {
    let parse = |t: &str| DateTime::parse_from_rfc3339(t).ok();
    let mended = || {
        // `…21:00:00 02:00`: the `+` of the offset, decoded as a space from a query string.
        let (head, offset) = text.split_at(text.len().checked_sub(6)?);
        let digits = offset.strip_prefix(' ')?;
        parse(&format!("{head}+{digits}"))
    };
    parse(text).or_else(mended).map(|at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-04T15:00:00Z".parse().unwrap()
    }

    #[test]
    fn text_ending_in_a_multibyte_character_is_refused_without_panicking() {
        // Found by schemathesis: `µ¤ê….Þ` panicked splitting inside a character.
        for text in ["µ¤ê\u{95430}ùÎ.Þ", "6Þ", "+Þ", "2026-12-04T21:00:00 0Þ:00"] {
            assert!(parse_at(text, now()).is_err(), "{text}");
        }
    }

    #[test]
    fn every_accepted_form_gives_its_instant() {
        for (text, expected) in [
            ("+6h", "2026-12-04T21:00:00Z"),
            ("6h", "2026-12-04T21:00:00Z"),
            (" +90m ", "2026-12-04T16:30:00Z"),
            ("+0m", "2026-12-04T15:00:00Z"),
            ("+168h", "2026-12-11T15:00:00Z"),
            ("+10080m", "2026-12-11T15:00:00Z"),
            ("2026-12-04T21:00:00Z", "2026-12-04T21:00:00Z"),
            ("2026-12-04T21:00:00-05:00", "2026-12-05T02:00:00Z"),
            ("2026-12-04T21:00:00 02:00", "2026-12-04T19:00:00Z"),
            ("2026-12-04T21:00:00+02:00", "2026-12-04T19:00:00Z"),
            ("2026-12-04 21:00:00.5z", "2026-12-04T21:00:00.500Z"),
            ("2026-11-27T15:00:00Z", "2026-11-27T15:00:00Z"),
        ] {
            let expected: DateTime<Utc> = expected.parse().unwrap();
            assert_eq!(parse_at(text, now()), Ok(expected), "{text:?}");
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_forms() {
        for text in [
            "",
            "+",
            "h",
            "+6",
            "+6d",
            "+-6h",
            "+1.5h",
            "+169h",
            "+10081m",
            "+9999999h",
            "tonight",
            "2026-12-04",
            "21:00",
            "2026-12-04T21:00:00",
            "2026-12-11T15:00:01Z",
            "2026-11-27T14:59:59Z",
            "9999-12-31T23:59:59Z",
            "2026-12-04T21:00:00.0000000000000000000001Z",
        ] {
            let error = parse_at(text, now()).unwrap_err();
            assert!(error.to_string().contains("RFC 3339"), "{text:?}: {error}");
        }
    }

    #[test]
    fn the_documented_pattern_matches_every_accepted_form() {
        let pattern = regex::Regex::new(AT_PATTERN).unwrap();
        for text in [
            "+6h",
            "6h",
            "+90m",
            "2026-12-04T21:00:00Z",
            "2026-12-04T21:00:00-05:00",
            "2026-12-04T21:00:00 02:00",
            "2026-12-04 21:00:00.5z",
        ] {
            assert!(pattern.is_match(text), "{text:?}");
            assert!(parse_at(text, now()).is_ok(), "{text:?}");
        }
    }
}
