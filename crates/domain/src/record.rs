//! Reading fields of a raw JSON vendor record without ever converting between JSON types,
//! for vendor adapters. Vendor-specific record types stay in the vendor crates.
//!
//! A value of the wrong type is reported as such and otherwise treated as absent (SPEC §12.9).

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::{DispatchNumber, RawRecord, SkipReason, TicketId};

/// One field of a raw record, as far as a text field is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// The key is not in the record.
    Missing,
    /// The value is JSON `null`.
    Null,
    /// The value is a JSON string.
    Text(&'a str),
    /// The value has another JSON type, named by the string.
    WrongType(&'static str),
}

impl<'a> Field<'a> {
    /// Reads `name` from `record` as a text field.
    pub fn text(record: &'a Map<String, Value>, name: &str) -> Self {
        match record.get(name) {
            None => Field::Missing,
            Some(Value::Null) => Field::Null,
            Some(Value::String(text)) => Field::Text(text),
            Some(other) => Field::WrongType(json_kind(other)),
        }
    }

    /// The string exactly as sent, when the value is a string.
    pub fn raw(self) -> Option<&'a str> {
        match self {
            Field::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The trimmed string, when the value is a string that is not blank.
    pub fn present(self) -> Option<&'a str> {
        self.raw().map(str::trim).filter(|text| !text.is_empty())
    }

    /// The trimmed, non-blank string as an owned value.
    pub fn owned(self) -> Option<String> {
        self.present().map(str::to_owned)
    }

    /// The text on one line with runs of white space collapsed, for names that notes record on
    /// a single line (a name spanning lines could never match the note that records it).
    pub fn single_line(self) -> Option<String> {
        self.present()
            .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
    }

    /// The string as sent when it is not blank; otherwise why the field is unusable, naming it.
    pub fn required(self, name: &str) -> Result<&'a str, String> {
        match self {
            Field::Missing => Err(format!("{name} is missing")),
            Field::Null => Err(format!("{name} is null")),
            Field::WrongType(kind) => Err(format!("{name} is {kind}, not a string")),
            Field::Text(text) if text.trim().is_empty() => Err(format!("{name} is empty")),
            Field::Text(text) => Ok(text),
        }
    }

    /// A short description of the value for logs: the text itself, or what was there instead.
    pub fn describe(self) -> String {
        match self {
            Field::Missing => "(missing)".to_owned(),
            Field::Null => "(null)".to_owned(),
            Field::WrongType(kind) => format!("({kind})"),
            Field::Text(text) => text.to_owned(),
        }
    }
}

/// The record as a JSON object, or why it cannot be read.
pub fn object(record: &RawRecord) -> Result<&Map<String, Value>, SkipReason> {
    record.as_object().ok_or_else(|| {
        SkipReason::new(
            None,
            format!("the record is {}, not an object", json_kind(record)),
        )
    })
}

/// A list body's top-level fields read as JSON, except the array named `records`, which is
/// kept as text (see [`list_records`]); or why the body cannot be read (for
/// [`ListError`](crate::ListError)).
pub fn list_fields<'a>(
    body: &'a RawValue,
    records: &str,
) -> Result<(Map<String, Value>, Option<&'a RawValue>), String> {
    let raw_fields: BTreeMap<String, &'a RawValue> = serde_json::from_str(body.get())
        .map_err(|_| format!("the body is {}, not an object", raw_kind(body)))?;
    let mut fields = Map::new();
    let mut array = None;
    for (name, raw) in raw_fields {
        if name == records {
            array = Some(raw);
        } else {
            let value = serde_json::from_str(raw.get())
                .map_err(|error| format!("{name} cannot be read: {error}"))?;
            fields.insert(name, value);
        }
    }
    Ok((fields, array))
}

/// The records of the array `name` that [`list_fields`] kept as text, each still text; or why
/// not.
pub fn list_records<'a>(
    array: Option<&'a RawValue>,
    name: &str,
) -> Result<Vec<&'a RawValue>, String> {
    let array = array.ok_or_else(|| format!("{name} is missing"))?;
    serde_json::from_str(array.get())
        .map_err(|_| format!("{name} is {}, not an array", raw_kind(array)))
}

/// The JSON type of a value given as text, for messages (see [`json_kind`]).
fn raw_kind(raw: &RawValue) -> &'static str {
    serde_json::from_str::<Value>(raw.get())
        .map(|value| json_kind(&value))
        .unwrap_or("unreadable")
}

/// A record's identity: its dispatch number and ticket id, read from the fields named
/// `number_field` and `ticket_field`. A missing or invalid one is a [`SkipReason`] naming the
/// field (SPEC §5): a ticket id must be all digits.
pub fn identity(
    record: &Map<String, Value>,
    number_field: &str,
    ticket_field: &str,
) -> Result<(DispatchNumber, TicketId), SkipReason> {
    let number = Field::text(record, number_field)
        .required(number_field)
        .map_err(|why| SkipReason::new(None, why))?;
    let dispatch_number = DispatchNumber::parse(number)
        .map_err(|error| SkipReason::new(None, format!("{number_field}: {error}")))?;
    let skip = |why: String| SkipReason::new(Some(dispatch_number.as_str()), why);
    let ticket = Field::text(record, ticket_field)
        .required(ticket_field)
        .map_err(skip)?;
    let ticket_id =
        TicketId::parse(ticket).map_err(|error| skip(format!("{ticket_field}: {error}")))?;
    Ok((dispatch_number, ticket_id))
}

/// Whether `name` holds the JSON boolean `true`; a string `"true"` does not count.
pub fn is_true(record: &Map<String, Value>, name: &str) -> bool {
    matches!(record.get(name), Some(Value::Bool(true)))
}

/// The JSON type of a value with its article, for messages: `a number`, `an array`, ...
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_never_convert_types() {
        let record = json!({"s": " x ", "n": 5, "b": "true", "t": true, "z": null, "e": "  "});
        let record = record.as_object().unwrap();
        assert_eq!(Field::text(record, "s").present(), Some("x"));
        assert_eq!(Field::text(record, "s").raw(), Some(" x "));
        assert_eq!(Field::text(record, "n"), Field::WrongType("a number"));
        assert_eq!(Field::text(record, "n").present(), None);
        assert_eq!(Field::text(record, "z"), Field::Null);
        assert_eq!(Field::text(record, "nope"), Field::Missing);
        assert_eq!(Field::text(record, "e").present(), None);
        assert_eq!(
            Field::text(record, "e").required("e").unwrap_err(),
            "e is empty"
        );
        assert_eq!(
            Field::text(record, "n").required("n").unwrap_err(),
            "n is a number, not a string"
        );
        let multi = json!({"name": " Joe \n  Malone\t"});
        assert_eq!(
            Field::text(multi.as_object().unwrap(), "name")
                .single_line()
                .as_deref(),
            Some("Joe Malone")
        );
        assert!(is_true(record, "t"));
        assert!(!is_true(record, "b"));
        assert!(!is_true(record, "nope"));
    }
}
