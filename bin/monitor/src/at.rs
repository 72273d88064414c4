//! "What goes out tonight" (SPEC §17.4): the instant `plan --at TIME` and
//! `GET /api/v1/plan?at=TIME` compute a plan for ([`crate::plan::engine_at`] plans as at it).
//! The CLI and the API share this parser, so both accept exactly the same forms, and the
//! OpenAPI document's `pattern` is [`AT_PATTERN`], which the parser checks first: a text is
//! accepted exactly when it matches it.

use std::sync::LazyLock;

use chrono::{DateTime, Duration, Utc};
use regex::Regex;

/// The most hours `+Nh` may say (7 days).
pub const MAX_AT_HOURS: i64 = 168;
/// The most minutes `+Nm` may say (7 days).
pub const MAX_AT_MINUTES: i64 = MAX_AT_HOURS * 60;
/// The forms `at` takes, as the OpenAPI document and error messages say them.
pub const AT_FORMS: &str = "an RFC 3339 time (e.g. 2026-12-04T21:00:00-05:00: a real date of the years 0000 to 9999, hours 00 to 23, no leap second, at most 9 decimals of a second, an offset within ±23:59), or +Nh (N from 0 to 168) or +Nm (N from 0 to 10080) from now, N without leading zeros";

/// Every `at` accepted, and nothing else (the OpenAPI document's `pattern`; ECMA-262, Python
/// and Rust read it alike). A `+` may be a space (a query string reads an unescaped `+` as
/// one), or be left out before `N`. The date part is a real calendar date: February 29th only
/// in leap years (divisible by 4, centuries only when divisible by 400).
pub const AT_PATTERN: &str = concat!(
    "^(?:",
    // +Nh, 0 to 168; +Nm, 0 to 10080.
    "[+ ]?(?:(?:[0-9]|[1-9][0-9]|1[0-5][0-9]|16[0-8])h",
    "|(?:[0-9]|[1-9][0-9]{1,3}|100[0-7][0-9]|10080)m)",
    // A date: any year with months of 31, 30 or 28 days...
    "|(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])",
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)",
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))",
    // ...or February 29th of a leap year.
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[048]|[2468][048]|[13579][26])00)-02-29)",
    // The time, its fraction and offset.
    "[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?",
    "(?:[Zz]|[+ -](?:[01][0-9]|2[0-3]):[0-5][0-9])",
    ")$"
);

static AT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(AT_PATTERN).expect("AT_PATTERN is a valid regex"));

/// Why a time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {AT_FORMS}, got {given:?}")]
pub struct InvalidAt {
    /// The text as given.
    pub given: String,
}

/// Reads `text` as an instant: an RFC 3339 time (any offset), or `+6h`, `+90m` from `now`
/// (the `+` may be left out, or be a space). A space before an offset's digits is read as
/// the `+` a query string turned into it (`…T21:00:00 02:00`). Nothing else: no surrounding
/// spaces, no empty text; exactly the texts [`AT_PATTERN`] matches.
pub fn parse_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, InvalidAt> {
    let invalid = || InvalidAt {
        given: text.to_owned(),
    };
    if !AT.is_match(text) {
        return Err(invalid());
    }
    // The pattern matched: the text is ASCII and one of its forms.
    let at = match text.strip_suffix(['h', 'm']) {
        Some(amount) => {
            let amount: i64 = amount
                .trim_start_matches(['+', ' '])
                .parse()
                .map_err(|_| invalid())?;
            now + if text.ends_with('h') {
                Duration::hours(amount)
            } else {
                Duration::minutes(amount)
            }
        }
        None => absolute(text).ok_or_else(invalid)?,
    };
    Ok(at)
}

/// An RFC 3339 time the pattern matched, its offset's `+` possibly a space.
fn absolute(text: &str) -> Option<DateTime<Utc>> {
    let at = DateTime::parse_from_rfc3339(&mended(text)).ok()?;
    Some(at.with_timezone(&Utc))
}

/// `text` with the space before its offset's digits (`…T21:00:00 02:00`) read as the `+` a
/// query string turned into it. `text` is ASCII.
fn mended(text: &str) -> String {
    let Some(cut) = text.len().checked_sub(6) else {
        return text.to_owned();
    };
    let (head, offset) = text.split_at(cut);
    match offset.strip_prefix(' ') {
        Some(digits) => format!("{head}+{digits}"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Timelike};
    use proptest::prelude::*;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-04T15:00:00Z".parse().unwrap()
    }

    /// The pattern without its anchors, for proptest to generate from.
    fn body(pattern: &str) -> &str {
        &pattern["^(?:".len()..pattern.len() - ")$".len()]
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
            (" 6h", "2026-12-04T21:00:00Z"),
            ("+90m", "2026-12-04T16:30:00Z"),
            ("+0m", "2026-12-04T15:00:00Z"),
            ("0h", "2026-12-04T15:00:00Z"),
            ("+168h", "2026-12-11T15:00:00Z"),
            ("+10080m", "2026-12-11T15:00:00Z"),
            ("2026-12-04T21:00:00Z", "2026-12-04T21:00:00Z"),
            ("2026-12-04T21:00:00-05:00", "2026-12-05T02:00:00Z"),
            ("2026-12-04T21:00:00 02:00", "2026-12-04T19:00:00Z"),
            ("2026-12-04T21:00:00+02:00", "2026-12-04T19:00:00Z"),
            ("2026-12-04 21:00:00.5z", "2026-12-04T21:00:00.500Z"),
            (
                "2026-12-04t21:00:00.123456789Z",
                "2026-12-04T21:00:00.123456789Z",
            ),
            ("2026-11-27T15:00:00Z", "2026-11-27T15:00:00Z"),
            // Far instants are planned too: the pattern cannot say "within 7 days of now".
            ("2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z"),
            ("2028-02-29T12:00:00Z", "2028-02-29T12:00:00Z"),
            ("2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z"),
            ("0000-02-29T00:00:00+23:59", "0000-02-28T00:01:00Z"),
            ("0000-01-01T00:00:00+00:01", "-0001-12-31T23:59:00Z"),
            ("9999-12-31T23:59:59-23:59", "+10000-01-01T23:58:59Z"),
        ] {
            let expected: DateTime<Utc> = expected.parse().unwrap();
            assert_eq!(parse_at(text, now()), Ok(expected), "{text:?}");
            assert!(AT.is_match(text), "{text:?}");
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_forms() {
        for text in [
            "",
            " ",
            "+",
            "h",
            "+6",
            "+6d",
            "+-6h",
            "++6h",
            "+1.5h",
            "+06h",
            "+00m",
            "+169h",
            "+10081m",
            "+9999999h",
            " +90m ",
            "+6h ",
            "+6h\n",
            "tonight",
            "2026-12-04",
            "21:00",
            "2026-12-04T21:00:00",
            " 2026-12-04T21:00:00Z",
            "2026-12-04T21:00:00Z ",
            "2026-12-04T21:00Z",
            "2026-02-29T12:00:00Z",
            "1900-02-29T12:00:00Z",
            "2026-04-31T12:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-12-00T00:00:00Z",
            "2026-12-04T24:00:00Z",
            "2026-12-04T21:60:00Z",
            "2026-12-31T23:59:60Z",
            "2026-12-04T21:00:00+24:00",
            "2026-12-04T21:00:00+05:60",
            "2026-12-04T21:00:00+0500",
            "2026-12-04T21:00:00.Z",
            "2026-12-04T21:00:00.0123456789Z",
            "12026-12-04T21:00:00Z",
            "0204-17-00T32:97:01 70:93",
        ] {
            let error = parse_at(text, now()).unwrap_err();
            assert!(error.to_string().contains("RFC 3339"), "{text:?}: {error}");
            assert!(!AT.is_match(text), "{text:?}");
        }
    }

    #[test]
    fn the_date_part_is_exactly_the_calendar() {
        let date = |year: i32, month: u32, day: u32| format!("{year:04}-{month:02}-{day:02}");
        let accepted = |text: &str| AT.is_match(&format!("{text}T00:00:00Z"));
        for year in 0..=9999 {
            for month in 0..=13 {
                for day in [0, 1, 28, 29, 30, 31, 32] {
                    let real = NaiveDate::from_ymd_opt(year, month, day).is_some();
                    let text = date(year, month, day);
                    assert_eq!(accepted(&text), real, "{text}");
                }
            }
        }
    }

    /// What the parser should accept, said otherwise than the pattern (for the texts [`NEAR`]
    /// generates): for relative times, digits without a leading zero up to the bound; for
    /// RFC 3339 times, what chrono reads, without a leap second or more than 9 decimals.
    fn oracle(text: &str) -> bool {
        if let Some(amount) = text.strip_suffix(['h', 'm']) {
            let digits = amount.strip_prefix(['+', ' ']).unwrap_or(amount);
            let max = if text.ends_with('h') {
                MAX_AT_HOURS
            } else {
                MAX_AT_MINUTES
            };
            return !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && (digits == "0" || !digits.starts_with('0'))
                && digits.parse::<i64>().is_ok_and(|n| n <= max);
        }
        let decimals = text.split_once('.').map_or(0, |(_, fraction)| {
            fraction.bytes().take_while(u8::is_ascii_digit).count()
        });
        DateTime::parse_from_rfc3339(&mended(text))
            .is_ok_and(|at| at.nanosecond() < 1_000_000_000 && decimals <= 9)
    }

    /// Texts shaped like the accepted ones, most of them wrong somewhere.
    const NEAR: &str = concat!(
        "[+ -]{0,2}[0-9]{1,6}[hmd ]",
        "|[0-9]{4,5}-[0-9]{2}-[0-9]{2}[Tt x][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,11})?",
        "([Zzx]|[+ -][0-9]{2}:?[0-9]{2})",
        "|(19|20)[0-9]{2}-(0[0-9]|1[0-3])-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9]:[0-6][0-9]",
        "(\\.[0-9]{1,10})?([Zz]|[+ -][0-2][0-9]:[0-6][0-9])",
    );

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn every_text_the_pattern_generates_is_accepted(text in body(AT_PATTERN)) {
            prop_assert!(parse_at(&text, now()).is_ok(), "{:?}", text);
        }

        #[test]
        fn the_parser_accepts_exactly_what_the_pattern_matches(text in NEAR) {
            let accepted = parse_at(&text, now()).is_ok();
            prop_assert_eq!(accepted, AT.is_match(&text), "{:?}", text);
            prop_assert_eq!(accepted, oracle(&text), "{:?}", text);
        }

        #[test]
        fn any_text_is_accepted_only_when_the_pattern_matches(text in "\\PC{0,40}") {
            prop_assert_eq!(parse_at(&text, now()).is_ok(), AT.is_match(&text), "{:?}", text);
        }
    }
}
