//! Bruin ticket notes: cleaning, ordering, matching to a dispatch, and the watermark phrases
//! the rules look for (SPEC §6, §7).

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::NoteKey;

/// The watermark that starts every note we write.
pub const WATERMARK: &str = "#*MetTel's IPA*#";
/// The watermark older notes carry; still recognised.
pub const LEGACY_WATERMARK: &str = "#*Automation Engine*#";

/// The phrases the rules search the dispatch's notes for (SPEC §7 table). Each action's phrase
/// is read from the action table ([`crate::actions`]); these names are for readers and
/// other services.
pub mod phrases {
    use crate::actions::ActionKind;

    /// The portal's note: the dispatch is ours.
    pub const REQUESTED: &str = "Dispatch Management - Dispatch Requested";
    /// The Confirmed note.
    pub const CONFIRMED: &str = ActionKind::ConfirmedNote.row().phrase;
    /// The Field Engineer Confirmed note (LIT).
    pub const FE_CONFIRMED: &str = ActionKind::FieldEngineerConfirmed.row().phrase;
    /// The tech-on-site note.
    pub const ON_SITE: &str = ActionKind::TechOnSite.row().phrase;
    /// The Repair Completed note.
    pub const COMPLETED: &str = ActionKind::Completed.row().phrase;
    /// The Cancelled note.
    pub const CANCELLED: &str = ActionKind::Cancelled.row().phrase;
    /// The tech-changed note.
    pub const TECH_CHANGED: &str = ActionKind::TechChanged.row().phrase;
    /// The note recording the client's confirmation SMS.
    pub const CONFIRMED_SMS: &str = ActionKind::ConfirmedSms.row().phrase;
    /// The note recording the tech's confirmation SMS.
    pub const CONFIRMED_SMS_TECH: &str = ActionKind::ConfirmedTechSms.row().phrase;

    /// The note recording the client's reminder `hours` before the appointment.
    pub fn reminder(hours: u32) -> String {
        ActionKind::Reminder { hours }.phrase().into_owned()
    }

    /// The note recording the tech's reminder `hours` before the appointment.
    pub fn reminder_tech(hours: u32) -> String {
        ActionKind::ReminderTech { hours }.phrase().into_owned()
    }

    /// OPTED_OUT(phone): the note saying texts to `phone` (E.164 with its `+`) are withheld
    /// because the number opted out (SPEC §17.1).
    pub fn opted_out(phone: &str) -> String {
        format!("{} {phone}", ActionKind::OptedOutNote.row().phrase)
    }
}

/// A line that is exactly this introduces a technician's name on the next line.
pub const FIELD_ENGINEER_HEADING: &str = "Field Engineer";

/// A note as the Bruin bridge returns it; every field may be missing, and a field of an
/// unexpected JSON type reads as absent rather than failing the whole note.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawTicketNote {
    /// Bruin's note id.
    #[serde(rename = "noteId", default, deserialize_with = "lenient_integer")]
    pub note_id: Option<i64>,
    /// The text; null or empty notes are dropped.
    #[serde(rename = "noteValue", default, deserialize_with = "lenient_text")]
    pub note_value: Option<String>,
    /// ISO-8601 with an offset, e.g. `2020-05-28T06:05:54.987-04:00`.
    #[serde(rename = "createdDate", default, deserialize_with = "lenient_text")]
    pub created_date: Option<String>,
}

/// Reads any JSON value and keeps it only when it is a string.
fn lenient_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::Text(text) => Some(text),
        Loose::Integer(_) | Loose::Other => None,
    })
}

/// Reads any JSON value and keeps it only when it is an integer that fits an `i64`.
fn lenient_integer<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Loose::deserialize(d)? {
        Loose::Integer(number) => Some(number),
        Loose::Text(_) | Loose::Other => None,
    })
}

/// A JSON value reduced to what a note's field may be; anything else is skipped unbuilt.
enum Loose {
    Text(String),
    Integer(i64),
    Other,
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> serde::de::Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, text: &str) -> Result<Loose, E> {
        Ok(Loose::Text(text.to_owned()))
    }
    fn visit_string<E>(self, text: String) -> Result<Loose, E> {
        Ok(Loose::Text(text))
    }
    fn visit_i64<E>(self, number: i64) -> Result<Loose, E> {
        Ok(Loose::Integer(number))
    }
    fn visit_u64<E>(self, number: u64) -> Result<Loose, E> {
        Ok(i64::try_from(number).map_or(Loose::Other, Loose::Integer))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_unit<E>(self) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_none<E>(self) -> Result<Loose, E> {
        Ok(Loose::Other)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}

/// A non-empty note with its creation instant (when readable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketNote {
    /// Bruin's note id.
    pub id: Option<i64>,
    /// The text.
    pub text: String,
    /// When it was written; `None` when the date could not be read.
    pub created: Option<DateTime<FixedOffset>>,
}

/// All of a ticket's non-empty notes, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TicketNotes(Vec<TicketNote>);

impl TicketNotes {
    /// Drops null and empty notes and sorts the rest by instant, oldest first. Notes whose
    /// date cannot be read are kept (a dropped note could repeat an action) and sort first.
    pub fn from_raw(raw: impl IntoIterator<Item = RawTicketNote>) -> Self {
        let mut notes: Vec<TicketNote> = raw
            .into_iter()
            .filter_map(|note| {
                let text = note.note_value.filter(|text| !text.trim().is_empty())?;
                let created = note
                    .created_date
                    .as_deref()
                    .and_then(|date| DateTime::parse_from_rfc3339(date).ok());
                Some(TicketNote {
                    id: note.note_id,
                    text,
                    created,
                })
            })
            .collect();
        // Stable: equal instants keep Bruin's order. Instants compare whole, so a date outside
        // the nanosecond range (before 1677, after 2262) still sorts by its instant.
        notes.sort_by_key(|note| note.created);
        Self(notes)
    }

    /// The notes in order.
    pub fn as_slice(&self) -> &[TicketNote] {
        &self.0
    }

    /// The notes that belong to one dispatch (SPEC §6.3).
    pub fn for_key(&self, key: &NoteKey) -> DispatchNotes {
        DispatchNotes(
            self.0
                .iter()
                .filter(|note| belongs_to(&note.text, key))
                .cloned()
                .collect(),
        )
    }
}

/// Whether a note belongs to `key`: one of its lines holds a watermark followed, after
/// trimming, by exactly the key. `DIS37405` does not match a note for `DIS374050`.
pub fn belongs_to(text: &str, key: &NoteKey) -> bool {
    text.lines().any(|line| {
        [WATERMARK, LEGACY_WATERMARK].iter().any(|watermark| {
            find_phrase(line, watermark)
                .map(|at| line[at + watermark.len()..].trim() == key.as_str())
                .unwrap_or(false)
        })
    })
}

/// Where `phrase` first occurs in `text`, like `str::find`. The rules look up a dozen phrases
/// in each of a dispatch's short notes every cycle; jumping between the phrase's first byte
/// with `memchr` costs far less there than preparing a general substring search each time.
pub fn find_phrase(text: &str, phrase: &str) -> Option<usize> {
    let needle = phrase.as_bytes();
    let Some(&first) = needle.first() else {
        return Some(0);
    };
    let haystack = text.as_bytes();
    // UTF-8 is self-synchronising: a match of valid UTF-8 bytes starts at a char boundary.
    memchr::memchr_iter(first, haystack).find(|&at| haystack[at..].starts_with(needle))
}

/// Whether `text` contains `phrase` (see [`find_phrase`]).
pub fn mentions(text: &str, phrase: &str) -> bool {
    find_phrase(text, phrase).is_some()
}

/// The technician names a note records: each line right after a line that is exactly
/// `Field Engineer` (SPEC §7.1).
pub fn tech_names_in(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0].trim_end() == FIELD_ENGINEER_HEADING)
        .map(|pair| pair[1].trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

/// A technician's name as the rules compare it (SPEC §13.5): trimmed, runs of white space as
/// one space, the HTML entities `&amp; &lt; &gt; &quot; &#39;` decoded, in lower case. A name
/// that reads back from a note slightly differently is still the same tech.
pub fn normalise_name(name: &str) -> String {
    let decoded = if name.contains('&') {
        Cow::Owned(
            name.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&"),
        )
    } else {
        Cow::Borrowed(name)
    };
    let mut normal = String::with_capacity(decoded.len());
    for word in decoded.split_whitespace() {
        if !normal.is_empty() {
            normal.push(' ');
        }
        normal.push_str(word);
    }
    normal.to_lowercase()
}

/// One dispatch's notes, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DispatchNotes(Vec<TicketNote>);

impl DispatchNotes {
    /// Notes given directly, already ordered oldest first.
    pub fn from_ordered(notes: Vec<TicketNote>) -> Self {
        Self(notes)
    }

    /// Whether one of the notes contains `phrase`.
    pub fn has(&self, phrase: &str) -> bool {
        self.0.iter().any(|note| mentions(&note.text, phrase))
    }

    /// How many notes contain `phrase`.
    pub fn count(&self, phrase: &str) -> usize {
        self.0
            .iter()
            .filter(|note| mentions(&note.text, phrase))
            .count()
    }

    /// The notes, oldest first.
    pub fn as_slice(&self) -> &[TicketNote] {
        &self.0
    }

    /// The technician on record: the last name found in the baseline notes (those containing
    /// `baseline_phrase`) and the tech-changed notes, oldest first.
    pub fn tech_on_record(&self, baseline_phrase: &str) -> Option<String> {
        self.0
            .iter()
            .filter(|note| {
                mentions(&note.text, baseline_phrase) || mentions(&note.text, phrases::TECH_CHANGED)
            })
            .flat_map(|note| tech_names_in(&note.text))
            .last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: i64, value: Option<&str>, date: &str) -> RawTicketNote {
        RawTicketNote {
            note_id: Some(id),
            note_value: value.map(str::to_owned),
            created_date: Some(date.to_owned()),
        }
    }

    fn key(text: &str) -> NoteKey {
        NoteKey::parse(text).unwrap()
    }

    #[test]
    fn phrases_are_found_where_str_find_finds_them() {
        let texts = [
            "",
            "Dispatch Management - Dispatch Confirmed",
            "#*MetTel's IPA*# DIS1\nDispatch Management - Dispatch Cancelled\nDispatch",
            "DDDispatch",
            "aaab",
            "café Dispatch é",
            "é",
        ];
        let phrases = [
            "",
            "Dispatch",
            "Dispatch Confirmed",
            "aab",
            "é",
            "é D",
            "ab",
            "Cancelled\n",
        ];
        for text in texts {
            for phrase in phrases {
                assert_eq!(
                    find_phrase(text, phrase),
                    text.find(phrase),
                    "{phrase:?} in {text:?}"
                );
            }
        }
    }

    #[test]
    fn empty_notes_are_dropped_and_the_rest_sorted_by_instant() {
        let notes = TicketNotes::from_raw([
            raw(1, Some("third"), "2020-05-28T08:15:01.1-04:00"),
            raw(2, None, "2020-05-28T06:05:54.987-04:00"),
            raw(3, Some(""), "2020-05-28T06:05:54.987-04:00"),
            // 10:00Z, earlier than 06:06-04:00 = 10:06Z although it reads later.
            raw(4, Some("first"), "2020-05-28T12:00:00+02:00"),
            raw(5, Some("second"), "2020-05-28T06:06:40.27-04:00"),
            RawTicketNote {
                note_id: Some(6),
                note_value: Some("undated".into()),
                created_date: None,
            },
        ]);
        let texts: Vec<&str> = notes.as_slice().iter().map(|n| n.text.as_str()).collect();
        assert_eq!(texts, ["undated", "first", "second", "third"]);
    }

    #[test]
    fn dates_outside_the_nanosecond_range_sort_by_their_instant() {
        // Found by the `ticket_notes` fuzz target: year 4040 sorted before 2020.
        let notes = TicketNotes::from_raw([
            raw(1, Some("4040"), "4040-05-28T06:05:54.987-04:00"),
            raw(2, Some("2020"), "2020-05-28T08:15:01.1-04:00"),
            raw(3, Some("1600"), "1600-01-01T00:00:00Z"),
        ]);
        let texts: Vec<&str> = notes.as_slice().iter().map(|n| n.text.as_str()).collect();
        assert_eq!(texts, ["1600", "2020", "4040"]);
    }

    #[test]
    fn matching_needs_the_exact_key_after_a_watermark() {
        let cases = [
            (
                "#*MetTel's IPA*# DIS37405\nDispatch Management - Dispatch Requested",
                "DIS37405",
                true,
            ),
            (
                "#*MetTel's IPA*# DIS374050\nDispatch Management - Dispatch Requested",
                "DIS37405",
                false,
            ),
            ("#*MetTel's IPA*# IGZ_00012\nx", "IGZ_0001", false),
            ("#*Automation Engine*# DIS37405\nx", "DIS37405", true),
            ("#*MetTel's IPA*#   DIS37405  \r\nx", "DIS37405", true),
            ("header\n#*MetTel's IPA*# DIS37405", "DIS37405", true),
            ("DIS37405 without a watermark", "DIS37405", false),
            ("#*MetTel's IPA*#\nDIS37405", "DIS37405", false),
        ];
        for (text, note_key, expected) in cases {
            assert_eq!(
                belongs_to(text, &key(note_key)),
                expected,
                "{text:?} vs {note_key}"
            );
        }
    }

    #[test]
    fn tech_on_record_is_the_last_name_in_baseline_and_change_notes() {
        let note = |text: &str| TicketNote {
            id: None,
            text: text.to_owned(),
            created: None,
        };
        let notes = DispatchNotes::from_ordered(vec![
            note(
                "#*MetTel's IPA*# D\nDispatch Management - Field Engineer Confirmed\n\nField Engineer\nJoe Malone\n+1 212",
            ),
            note("#*MetTel's IPA*# D\nSomething else\nField Engineer\nNot Counted"),
            note(
                "#*MetTel's IPA*# D\nThe Field Engineer assigned to this dispatch has changed.\nReference: 1\n\nField Engineer\nHulk Hogan\n+1",
            ),
        ]);
        assert_eq!(
            notes.tech_on_record(phrases::FE_CONFIRMED).as_deref(),
            Some("Hulk Hogan")
        );
        assert_eq!(
            DispatchNotes::default().tech_on_record(phrases::CONFIRMED),
            None
        );
        assert_eq!(tech_names_in("Field Engineers\nX"), Vec::<String>::new());
        assert_eq!(
            tech_names_in("Field Engineer\r\nJane\r\n"),
            vec!["Jane".to_owned()]
        );
    }

    #[test]
    fn names_compare_normalised() {
        for (a, b) in [
            ("Joe Malone", "joe  malone "),
            ("O&#39;Brien &amp; Sons", "o'brien & sons"),
            ("\tAda\nLovelace", "ADA LOVELACE"),
            ("&lt;Hulk&gt; &quot;H&quot;", "<hulk> \"h\""),
        ] {
            assert_eq!(normalise_name(a), normalise_name(b), "{a:?} {b:?}");
        }
        assert_ne!(normalise_name("Joe Malone"), normalise_name("Joe Malon"));
    }

    #[test]
    fn odd_field_types_read_as_absent() {
        let note: RawTicketNote = serde_json::from_value(serde_json::json!({
            "noteId": "70805299", "noteValue": "text", "createdDate": 5
        }))
        .unwrap();
        assert_eq!(note.note_id, None);
        assert_eq!(note.note_value.as_deref(), Some("text"));
        assert_eq!(note.created_date, None);

        // Every JSON type, read from text (as the bridge adapter does) and from a value.
        let cases = [
            (r#"7"#, Some(7), None),
            (r#"-7"#, Some(-7), None),
            (r#"18446744073709551615"#, None, None),
            (r#"7.5"#, None, None),
            (r#""7""#, None, Some("7")),
            (r#""""#, None, Some("")),
            (r#"true"#, None, None),
            (r#"null"#, None, None),
            (r#"[1, "x", {"a": [2]}]"#, None, None),
            (r#"{"a": {"b": "c"}}"#, None, None),
        ];
        for (json, id, text) in cases {
            let note = format!(r#"{{"noteId": {json}, "noteValue": {json}, "noteValueAfter": 1}}"#);
            let from_text: RawTicketNote = serde_json::from_str(&note).unwrap();
            let value: serde_json::Value = serde_json::from_str(&note).unwrap();
            let from_value: RawTicketNote = serde_json::from_value(value).unwrap();
            for read in [from_text, from_value] {
                assert_eq!(read.note_id, id, "{json}");
                assert_eq!(read.note_value.as_deref(), text, "{json}");
            }
        }
    }

    #[test]
    fn reminder_phrases_do_not_overlap() {
        assert!(!phrases::reminder(12).contains(&phrases::reminder(2)));
        assert!(!phrases::reminder_tech(2).contains(&phrases::reminder(2)));
    }
}
