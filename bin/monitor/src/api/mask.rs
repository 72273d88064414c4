//! Phone numbers in API answers are masked to their last 4 digits (`+1******5129`) unless the
//! operator asks for them whole (SPEC §14).

use std::sync::LazyLock;

use domain::journal::{CycleRecord, DispatchSnapshot, JournalEntry};
use regex::Regex;

use crate::plan::PlanRow;

/// E.164 numbers (`+12123595129`) and North American numbers as vendors write them
/// (`+1 (212) 359-5130`, `(202) 555-0104`, `212.555.0101`).
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\+\d{8,15}\b|(?:\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}\b")
        .expect("a valid pattern")
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
        snapshot.skipped_rules.iter_mut().for_each(|r| self.text(r));
        if let Some(last) = &mut snapshot.last_action {
            self.text(&mut last.text);
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
        ] {
            assert_eq!(mask_phones(text), masked, "{text}");
        }
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
        ] {
            assert_eq!(mask_phones(text), text);
        }
    }
}
