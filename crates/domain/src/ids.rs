//! Validated newtypes for the identifiers and phone numbers the rules handle.

use std::fmt;
use std::sync::LazyLock;

use phonenumber::metadata::Database;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// libphonenumber's metadata for the United States alone: loading the crate's whole-world
/// database costs about 140 ms of CPU and several MiB, and only US numbers are ever parsed.
static US_PHONE_METADATA: LazyLock<Database> = LazyLock::new(|| {
    Database::parse(include_str!("../data/us-phone-metadata.xml"))
        .expect("the embedded US phone metadata loads")
});

/// The forms of a US number an operator types, and nothing else ([`PhoneE164::parse_input`]
/// accepts exactly the texts it matches; ECMA-262, Python and Rust read it alike): an optional
/// country code `1` or `+1`, the area code (in parentheses or not), the exchange and the line,
/// each part followed by at most one of ` ./-`. The national number is the US metadata's
/// 10-digit shape, `[2-9]\d{9}` (its `generalDesc`): the area code does not start with 0 or 1.
/// No surrounding spaces.
pub const PHONE_INPUT_PATTERN: &str = concat!(
    r"^(?:(?:\+?1[ ./-]?)?",
    r"(?:\([2-9][0-9]{2}\)|[2-9][0-9]{2})[ ./-]?",
    r"[0-9]{3}[ ./-]?[0-9]{4})$",
);

static PHONE_INPUT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(PHONE_INPUT_PATTERN).expect("PHONE_INPUT_PATTERN is a valid regex")
});

/// A value failed validation; the message names the value and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {why}")]
pub struct InvalidValue {
    /// What kind of value it was meant to be, e.g. "ticket id".
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// Why it was rejected.
    pub why: &'static str,
}

impl InvalidValue {
    fn new(what: &'static str, value: &str, why: &'static str) -> Self {
        Self {
            what,
            value: value.to_owned(),
            why,
        }
    }
}

/// `TryFrom<String>` (through the type's validating constructor), `From<T> for String` and
/// `Display` for a validated string newtype.
macro_rules! string_conversions {
    ($type:ident, $parse:ident) => {
        impl TryFrom<String> for $type {
            type Error = InvalidValue;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::$parse(&value)
            }
        }

        impl From<$type> for String {
            fn from(value: $type) -> Self {
                value.0
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A Bruin ticket id: one or more ASCII digits, nothing else (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketId(String);

impl TicketId {
    /// Accepts `^[0-9]+$` only: `"4663397|IW24654081"` or `"123-3123"` are rejected.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        if text.is_empty() {
            return Err(InvalidValue::new("ticket id", text, "it is empty"));
        }
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidValue::new(
                "ticket id",
                text,
                "it must be all digits",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_conversions!(TicketId, parse);

/// A US phone number in E.164 form, `+12123595129` (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneE164(String);

impl PhoneE164 {
    /// Keeps the digits of free text such as `"Jane Doe +1 212 359 5129"` and parses them as a
    /// US number; a leading country code 1 is allowed.
    ///
    /// A number is accepted when it is *possible* for the US: ten national digits after the
    /// optional country code. Validity (real area codes) is not required, so `+1 666 666 6666`
    /// is accepted, as the SPEC asks; `12345` and seven-digit local numbers are not.
    pub fn parse_us(text: &str) -> Result<Self, InvalidValue> {
        Self::parse_us_with(&US_PHONE_METADATA, text)
    }

    fn parse_us_with(metadata: &Database, text: &str) -> Result<Self, InvalidValue> {
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Err(InvalidValue::new("phone number", text, "it has no digits"));
        }
        let number = phonenumber::parse_with(metadata, Some(phonenumber::country::Id::US), &digits)
            .map_err(|_| InvalidValue::new("phone number", text, "it is not a US number"))?;
        if number.code().value() != 1 {
            return Err(InvalidValue::new(
                "phone number",
                text,
                "it is not a US number",
            ));
        }
        let national = number.national().to_string();
        if national.len() != 10 {
            return Err(InvalidValue::new(
                "phone number",
                text,
                "it is not a possible US number (10 digits)",
            ));
        }
        Ok(Self(format!("+1{national}")))
    }

    /// Parses a number an operator typed, in a usual US form: `+12123595129`, `12123595129`,
    /// `2123595129`, `(212) 359-5129`, `212.359.5129`, `212/359/5129`, `+1 212 359 5129`,
    /// `1-212-359-5129`: exactly the texts [`PHONE_INPUT_PATTERN`] matches. Unlike
    /// [`parse_us`](Self::parse_us), which reads free text such as a contact field, anything
    /// else is refused (`Jane 212 359 5129`, `+44 20 7946 0000`, `212-359-5129 x12`).
    pub fn parse_input(text: &str) -> Result<Self, InvalidValue> {
        if !PHONE_INPUT.is_match(text) {
            return Err(InvalidValue::new(
                "phone number",
                text,
                "expected a US number: an optional 1 or +1, the area code (2-9 then 2 digits, in parentheses or not), 3 and 4 digits, each part followed by at most one of space . / -",
            ));
        }
        Self::parse_us(text)
    }

    /// Optional parse of an optional field: absent or unusable text gives `None`.
    pub fn parse_optional(text: Option<&str>) -> Option<Self> {
        text.and_then(|t| Self::parse_us(t).ok())
    }

    /// The number with its leading `+`, as written in notes.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+`, as sent in `sms_to`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

string_conversions!(PhoneE164, parse_us);

/// The identifier our notes carry after the watermark: the LIT dispatch number or the CTS IGZ
/// number. Non-empty, trimmed, a single line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NoteKey(String);

impl NoteKey {
    /// Trims the text and rejects empty or multi-line keys.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(InvalidValue::new("note key", text, "it is empty"));
        }
        if trimmed.contains(['\n', '\r']) {
            return Err(InvalidValue::new(
                "note key",
                text,
                "it spans several lines",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_conversions!(NoteKey, parse);

/// The vendor's own dispatch id (LIT `Dispatch_Number`, CTS `Name`). Non-empty and trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DispatchNumber(String);

impl DispatchNumber {
    /// Trims the text and rejects an empty one.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(InvalidValue::new("dispatch number", text, "it is empty"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_conversions!(DispatchNumber, parse);

/// A vendor's short name in upper case, as alerts show it (`LIT`, `CTS`).
///
/// Its lower-case form names the vendor's list subject (`lit.dispatch.get`) and template folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VendorName(String);

impl VendorName {
    /// Accepts ASCII letters, digits, `-` and `_`; stores the upper-case form.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        if text.is_empty() {
            return Err(InvalidValue::new("vendor name", text, "it is empty"));
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(InvalidValue::new(
                "vendor name",
                text,
                "use ASCII letters, digits, '-' or '_'",
            ));
        }
        Ok(Self(text.to_ascii_uppercase()))
    }

    /// A vendor's own constant name, e.g. `VendorName::fixed("LIT")` in an adapter's
    /// constructor. Panics on an invalid name: that is a bug in the adapter, not bad input.
    pub fn fixed(name: &'static str) -> Self {
        Self::parse(name).unwrap_or_else(|error| panic!("{error}"))
    }

    /// The upper-case name, e.g. `LIT`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-case name, e.g. `lit`.
    pub fn lower(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

string_conversions!(VendorName, parse);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_ids_must_be_all_digits() {
        for good in ["3544800", "0", "4694961"] {
            assert_eq!(TicketId::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "4663397|IW24654081",
            "712637/IW76236",
            "123-3123",
            "as|asdf",
            "",
            " 12",
        ] {
            assert!(TicketId::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn phones_parse_as_us_e164() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Jane Doe +1 212 359 5129", Some("+12123595129")),
            ("(202) 772-3610", Some("+12027723610")),
            ("+1 (212) 359-5129", Some("+12123595129")),
            ("2123595129", Some("+12123595129")),
            ("+1 666 6666 666", Some("+16666666666")),
            ("no valid Number", None),
            ("", None),
            ("12345", None),
            ("359-5129", None),
            ("212 359 5129 1234", None),
        ];
        for (input, expected) in cases {
            let got = PhoneE164::parse_us(input).ok();
            assert_eq!(
                got.as_ref().map(PhoneE164::as_str),
                *expected,
                "input {input:?}"
            );
        }
        assert_eq!(PhoneE164::parse_optional(None), None);
        let phone = PhoneE164::parse_us("(202) 772-3610").unwrap();
        assert_eq!(phone.digits(), "12027723610");
    }

    #[test]
    fn operators_type_phones_in_any_usual_us_form() {
        let forms = [
            "+12123595129",
            "12123595129",
            "2123595129",
            "(212) 359-5129",
            "(212)359-5129",
            "212.359.5129",
            "212/359/5129",
            "+1 212 359 5129",
            "+1 (212) 359-5129",
            "1-212-359-5129",
            "1 212.3595129",
        ];
        for form in forms {
            assert_eq!(
                PhoneE164::parse_input(form).map(|p| p.to_string()),
                Ok("+12123595129".to_owned()),
                "{form:?}"
            );
            assert!(PHONE_INPUT.is_match(form), "{form:?}");
        }
        assert_eq!(
            PhoneE164::parse_input("+1 666 666 6666").unwrap().as_str(),
            "+16666666666",
            "possible, not necessarily valid (SPEC §5)"
        );
        for bad in REFUSED_INPUTS {
            assert!(PhoneE164::parse_input(bad).is_err(), "{bad:?}");
            assert!(!PHONE_INPUT.is_match(bad), "{bad:?}");
        }
    }

    /// Texts an operator might type that are not a usual US form, or not a US number.
    const REFUSED_INPUTS: &[&str] = &[
        "",
        "0",
        "00",
        "12345",
        "359-5129",
        "Jane 212 359 5129",
        "212-359-5129 x12",
        "+44 20 7946 0000",
        "+212 359 5129",
        "+2123595129",
        "1123595129",
        "0123595129",
        "+11123595129",
        "11 212 359 5129",
        "011 1 212 359 5129",
        " 2123595129",
        "2123595129 ",
        "2123595129\n",
        "212  359 5129",
        "212--359-5129",
        "(212 359-5129",
        "212) 359-5129",
        "(2123595129)",
        "+1 666 6666 666",
        "212_359_5129",
        "٢١٢٣٥٩٥١٢٩",
        "21235951290",
        "+1+2123595129",
        "1+2123595129",
    ];

    /// `generalDesc`'s 10-digit national number pattern in the embedded US metadata.
    fn metadata_national_pattern() -> String {
        let xml = include_str!("../data/us-phone-metadata.xml");
        let general = xml.split("<generalDesc>").nth(1).unwrap();
        let general = general.split("</generalDesc>").next().unwrap();
        let pattern = general.split("<nationalNumberPattern>").nth(1).unwrap();
        let pattern = pattern.split("</nationalNumberPattern>").next().unwrap();
        let pattern: String = pattern.chars().filter(|c| !c.is_whitespace()).collect();
        let ten: Vec<&str> = pattern
            .split('|')
            .filter(|alternative| alternative.ends_with(r"\d{9}"))
            .collect();
        assert_eq!(ten.len(), 1, "{pattern}");
        ten[0].to_owned()
    }

    #[test]
    fn the_input_pattern_takes_its_national_number_from_the_us_metadata() {
        assert_eq!(metadata_national_pattern(), r"[2-9]\d{9}");
        assert!(PHONE_INPUT_PATTERN.contains(r"[2-9][0-9]{2}"));
    }

    /// The pattern without its anchors, for proptest to generate from.
    fn input_body() -> &'static str {
        &PHONE_INPUT_PATTERN["^(?:".len()..PHONE_INPUT_PATTERN.len() - ")$".len()]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn every_input_the_pattern_generates_is_its_e164_number(text in input_body()) {
            let national = regex::Regex::new(&format!("^{}$", metadata_national_pattern())).unwrap();
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            let ten = &digits[digits.len() - 10..];
            proptest::prop_assert!(national.is_match(ten), "{:?}", text);
            let parsed = PhoneE164::parse_input(&text);
            proptest::prop_assert_eq!(
                parsed.map(|p| p.to_string()),
                Ok(format!("+1{ten}")),
                "{:?}", text
            );
        }

        #[test]
        fn an_input_is_accepted_exactly_when_the_pattern_matches(
            text in r"[0-9 +()./\-x]{0,20}|\+?1?[ ./-]?\(?[0-9]{3}\)?[ ./-]{0,2}[0-9]{3}[ ./-]{0,2}[0-9]{4,5}",
        ) {
            proptest::prop_assert_eq!(
                PhoneE164::parse_input(&text).is_ok(),
                PHONE_INPUT.is_match(&text),
                "{:?}", text
            );
        }
    }

    #[test]
    fn the_us_metadata_reads_numbers_as_the_whole_world_database_does() {
        let inputs = [
            "Jane Doe +1 212 359 5129",
            "+1 416 555 0123",
            "1-800-555-0199",
            "+1 666 6666 666",
            "011 44 20 7946 0000",
            "+44 20 7946 0000",
            "442079460000",
            "+52 55 1234 5678",
            "1 212 359 5129 9",
            "0 212 359 5129",
            "911",
            "12345",
            "359-5129",
            "00000000000",
        ];
        for input in inputs {
            assert_eq!(
                PhoneE164::parse_us(input),
                PhoneE164::parse_us_with(&phonenumber::metadata::DATABASE, input),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn note_keys_and_dispatch_numbers_are_trimmed_single_lines() {
        assert_eq!(NoteKey::parse(" IGZ_0001 ").unwrap().as_str(), "IGZ_0001");
        assert!(NoteKey::parse("  ").is_err());
        assert!(NoteKey::parse("A\nB").is_err());
        assert_eq!(
            DispatchNumber::parse("DIS37405").unwrap().as_str(),
            "DIS37405"
        );
        assert!(DispatchNumber::parse("").is_err());
    }

    #[test]
    fn vendor_names_are_upper_case() {
        let name = VendorName::parse("lit").unwrap();
        assert_eq!(name.as_str(), "LIT");
        assert_eq!(name.lower(), "lit");
        assert!(VendorName::parse("l.t").is_err());
    }
}
