//! The normalised dispatch every vendor adapter produces.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{Appointment, DispatchNumber, NoteKey, PhoneE164, Status, TicketId, VendorName};

/// One vendor dispatch in the monitor's terms. Absent or unusable vendor values are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dispatch {
    /// The vendor it came from.
    pub vendor: VendorName,
    /// The vendor's id (LIT `Dispatch_Number`, CTS `Name`); the registry key uses it.
    pub dispatch_number: DispatchNumber,
    /// The Bruin ticket the dispatch belongs to.
    pub ticket_id: TicketId,
    /// The id our notes carry; `None` means the dispatch can never be ours (CTS without IGZ).
    pub note_key: Option<NoteKey>,
    /// The general status.
    pub status: Status,
    /// The vendor's own status text, for logs.
    pub vendor_status: String,
    /// The appointment, when the vendor's date, time and zone could be read.
    pub appointment: Option<Appointment>,
    /// The raw appointment texts joined by single spaces, for texts when it could not be read.
    pub appointment_raw: Option<String>,
    /// The technician's name.
    pub tech_name: Option<String>,
    /// The technician's phone, validated.
    pub tech_phone: Option<PhoneE164>,
    /// The technician's phone as the vendor wrote it; notes show this text.
    pub tech_phone_raw: Option<String>,
    /// The on-site contact's phone, validated.
    pub client_phone: Option<PhoneE164>,
    /// The site's name.
    pub site: Option<String>,
    /// The site's street.
    pub street: Option<String>,
    /// The vendor reports the technician on site (SPEC §5 evidence).
    pub tech_on_site: bool,
    /// The vendor reports the work complete (SPEC §5 evidence).
    pub completed: bool,
    /// Extra vendor values templates may use, e.g. LIT's raw `date_of_dispatch`.
    pub template_fields: BTreeMap<String, String>,
    /// Extra fields of the registry value besides `ticket_id`, e.g. CTS `igz_dispatch_number`.
    pub registry_fields: BTreeMap<String, String>,
}

impl Dispatch {
    /// A dispatch with only its identity and status set; adapters fill in the rest.
    pub fn new(
        vendor: VendorName,
        dispatch_number: DispatchNumber,
        ticket_id: TicketId,
        status: Status,
        vendor_status: impl Into<String>,
    ) -> Self {
        Self {
            vendor,
            dispatch_number,
            ticket_id,
            note_key: None,
            status,
            vendor_status: vendor_status.into(),
            appointment: None,
            appointment_raw: None,
            tech_name: None,
            tech_phone: None,
            tech_phone_raw: None,
            client_phone: None,
            site: None,
            street: None,
            tech_on_site: false,
            completed: false,
            template_fields: BTreeMap::new(),
            registry_fields: BTreeMap::new(),
        }
    }

    /// The registry value of SPEC §4: `{"ticket_id": ...}` plus the vendor's extra fields.
    pub fn registry_value(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("ticket_id".into(), self.ticket_id.as_str().into());
        for (key, value) in &self.registry_fields {
            map.insert(key.clone(), value.as_str().into());
        }
        serde_json::Value::Object(map)
    }

    /// The appointment text for notes: the display time, else the raw vendor texts, else
    /// `the scheduled date` (SPEC §12.5).
    pub fn when_text(&self) -> String {
        match (&self.appointment, &self.appointment_raw) {
            (Some(appointment), _) => appointment.display.clone(),
            (None, Some(raw)) if !raw.trim().is_empty() => raw.clone(),
            _ => "the scheduled date".to_owned(),
        }
    }
}

/// How a vendor's confirmation flow differs, stated as behaviour rather than vendor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct VendorPolicy {
    /// After the client's confirmation SMS, a separate "field engineer assigned" SMS and a
    /// Field Engineer Confirmed note record the technician (LIT). That note, not the Confirmed
    /// note, is then the tech-change baseline.
    pub field_engineer_step: bool,
    /// The dispatch counts as confirmed only with a tech name and tech phone (CTS).
    pub confirmed_needs_tech: bool,
}

/// Joins the present, non-blank parts with single spaces; `None` when none is present.
pub fn join_present<'a>(parts: impl IntoIterator<Item = Option<&'a str>>) -> Option<String> {
    let joined = parts
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!joined.is_empty()).then_some(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_value_has_ticket_id_and_extras() {
        let mut dispatch = Dispatch::new(
            VendorName::parse("CTS").unwrap(),
            DispatchNumber::parse("S-1").unwrap(),
            TicketId::parse("42").unwrap(),
            Status::Requested,
            "Open",
        );
        assert_eq!(
            dispatch.registry_value(),
            serde_json::json!({"ticket_id": "42"})
        );
        dispatch
            .registry_fields
            .insert("igz_dispatch_number".into(), "IGZ_1".into());
        assert_eq!(
            dispatch.registry_value(),
            serde_json::json!({"ticket_id": "42", "igz_dispatch_number": "IGZ_1"})
        );
    }

    #[test]
    fn when_text_falls_back_to_raw_then_a_phrase() {
        let mut dispatch = Dispatch::new(
            VendorName::parse("LIT").unwrap(),
            DispatchNumber::parse("D").unwrap(),
            TicketId::parse("1").unwrap(),
            Status::Canceled,
            "Cancelled",
        );
        assert_eq!(dispatch.when_text(), "the scheduled date");
        dispatch.appointment_raw = join_present([Some("2020-03-16"), None, Some("BAD")]);
        assert_eq!(dispatch.when_text(), "2020-03-16 BAD");
        assert_eq!(join_present([None, Some("  ")]), None);
    }
}
