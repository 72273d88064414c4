//! Phone numbers in API answers, journal text included, and in log lines are masked to their
//! last 4 digits (`+1******5129`) unless the operator asks for them whole (SPEC §14, §18.4).

use std::sync::LazyLock;

use domain::journal::{CycleRecord, DispatchSnapshot, JournalEntry};
use regex::Regex;

use crate::plan::PlanRow;

/// A separator inside a phone number: space, `.`, `/`, `_` or `-`.
const SEP: &str = r"[\s./_-]?";

/// Phone numbers in every form they take (SPEC §18.4): North American numbers with their
/// country code (`+12123595129`, `12123595129`, `+1 (212) 359-5130`, `1-212-359-5129`), other
/// E.164 numbers (`+447700900123`), and North American numbers without it (`(202) 555-0104`,
/// `212.555.0101`, `212/359/5129`, `212_359_5129`, `2123595129`). A run of digits longer than
/// a number is left alone.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    let rest = format!(r"{SEP}\d{{3}}{SEP}\d{{4}}\b");
    let pattern = [
        format!(r"(?:\+|\b)1{SEP}(?:\(\d{{3}}\)|\d{{3}}){rest}"),
        r"\+\d{8,15}\b".to_owned(),
        format!(r"(?:\(\d{{3}}\)|\b\d{{3}}){rest}"),
    ]
    .join("|");
    Regex::new(&pattern).expect("a valid pattern")
});

/// `text` with every phone number's digits but the last 4 (and a leading `+` and its first
/// digit) replaced by `*`.
pub fn mask_phones(text: &str) -> String {
    PHONE
        .replace_all(text, |found: &regex::Captures<'_>| mask_one(&found[0]))
        .into_owned()
}

fn mask_one(phone: &str) -> String {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let keep_first = phone.starts_with('+');
    let mut seen = 0;
    phone
        .chars()
        .map(|c| {
            if !c.is_ascii_digit() {
                return c;
            }
            seen += 1;
            if (keep_first && seen == 1) || seen > digits.saturating_sub(4) {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// Masks phones in API answers, or leaves them whole.
#[derive(Debug, Clone, Copy)]
pub struct Masker {
    /// `MONITOR_API_SHOW_PHONES`.
    pub show_phones: bool,
}

impl Masker {
    fn text(self, text: &mut String) {
        if !self.show_phones {
            *text = mask_phones(text);
        }
    }

    fn option(self, text: &mut Option<String>) {
        if let Some(text) = text {
            self.text(text);
        }
    }

    /// Masks a dispatch's snapshot.
    pub fn snapshot(self, snapshot: &mut DispatchSnapshot) {
        self.option(&mut snapshot.tech_phone);
        self.option(&mut snapshot.client_phone);
        self.option(&mut snapshot.appointment);
        self.option(&mut snapshot.tech_name);
        self.option(&mut snapshot.site);
        self.option(&mut snapshot.street);
        self.text(&mut snapshot.vendor_status);
        snapshot.skipped_rules.iter_mut().for_each(|r| self.text(r));
        if let Some(last) = &mut snapshot.last_action {
            self.text(&mut last.text);
        }
    }

    /// Masks a snapshot as the API shows it: its phones, and its pause's reason.
    pub fn shown_snapshot(self, snapshot: &mut DispatchSnapshot) {
        self.snapshot(snapshot);
        if let Some(mark) = &mut snapshot.paused {
            self.text(&mut mark.reason);
        }
    }

    /// Masks a journal entry.
    pub fn entry(self, entry: &mut JournalEntry) {
        self.option(&mut entry.to);
        self.option(&mut entry.text);
        self.option(&mut entry.detail);
        self.option(&mut entry.action);
    }

    /// Masks a cycle's error.
    pub fn cycle(self, cycle: &mut CycleRecord) {
        self.option(&mut cycle.error);
    }

    /// Masks a plan row.
    pub fn plan_row(self, row: &mut PlanRow) {
        self.text(&mut row.recipient);
        self.text(&mut row.text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_their_last_four_digits() {
        for (text, masked) in [
            ("+12123595129", "+1******5129"),
            ("SMS sent to +12125550101\n", "SMS sent to +1******0101\n"),
            ("+1 (212) 359-5130", "+1 (***) ***-5130"),
            ("Jane Doe (202) 555-0104", "Jane Doe (***) ***-0104"),
            ("call 212.555.0101 now", "call ***.***.0101 now"),
            ("+447700900123", "+4*******0123"),
            (
                "rejected: 12123595129 is not valid",
                "rejected: *******5129 is not valid",
            ),
            ("212/359/5129", "***/***/5129"),
            ("212_359_5129", "***_***_5129"),
            ("212-359-5129", "***-***-5129"),
            ("212 359 5129", "*** *** 5129"),
            ("2123595129", "******5129"),
            ("(212)359-5129", "(***)***-5129"),
            ("1-212-359-5129", "*-***-***-5129"),
            ("1 (212) 359-5129", "* (***) ***-5129"),
            ("+1.212.359.5129", "+1.***.***.5129"),
            ("+1-212-359-5129.", "+1-***-***-5129."),
            ("to=12123595129,", "to=*******5129,"),
        ] {
            assert_eq!(mask_phones(text), masked, "{text}");
        }
    }

    #[test]
    fn journal_details_in_the_wire_form_are_masked() {
        let mut entry: JournalEntry = serde_json::from_value(serde_json::json!({
            "at": "2026-03-16T10:00:00Z",
            "kind": "sms",
            "action": "tech_reminder_2h",
            "outcome": "failed",
            "to": "+12123595129",
            "text": "Reach the tech at 212/359/5129",
            "detail": "notifier rejected 12123595129: invalid number",
            "replica": "r1",
        }))
        .expect("a journal entry");
        Masker { show_phones: false }.entry(&mut entry);
        let shown = serde_json::to_string(&entry).unwrap();
        assert!(!shown.contains("212") && !shown.contains("359"), "{shown}");
        assert_eq!(
            entry.detail.as_deref(),
            Some("notifier rejected *******5129: invalid number")
        );
    }

    #[test]
    fn tickets_dates_and_times_are_left_alone() {
        for text in [
            "ticket 3544800",
            "Dispatch scheduled for 2026-03-17 @ 10AM-12PM Pacific Time",
            "Onsite Time Needed: 2026-03-16 04.00PM",
            "Mar 16, 2026 @ 04:00 PM Pacific",
            "DIS37405 IGZ_20001 S-12345",
            "2026-11-29T09:00:01.123Z",
            "2026/11/29 09:00",
            "ticket 123456789012345678",
            "lit:DIS37405:3544800:tech_changed:a->b #2",
        ] {
            assert_eq!(mask_phones(text), text);
        }
    }
}
