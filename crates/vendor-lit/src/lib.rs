//! The LIT vendor adapter: checks LIT's dispatch list response, maps each raw LIT record into a
//! domain [`Dispatch`] (SPEC §2, §5, §5.1) and supplies LIT's own note and SMS templates.
//!
//! This crate owns LIT's JSON shape and nothing else. It must not depend on NATS, Redis or any
//! I/O: the engine fetches the list and hands the body over. LIT's JSON types never leave the
//! crate; everything public is in domain terms.

#![warn(missing_docs)]

mod time;

use domain::{
    Dispatch, DispatchNumber, ListError, NoteKey, PhoneE164, RawRecord, SkipReason, Status,
    TemplateSource, TicketId, VendorAdapter, VendorName, VendorPolicy, join_present,
};
use serde_json::{Map, Value};

use domain::record::{Field, is_true, json_kind};

pub use crate::time::{parse_appointment, parse_start_time};

/// The vendor's name as alerts show it; its list subject is `lit.dispatch.get`.
pub const VENDOR: &str = "LIT";

/// The template value holding the raw `Date_of_Dispatch` text.
pub const DATE_OF_DISPATCH: &str = "date_of_dispatch";
/// The template value holding the raw `Hard_Time_of_Dispatch_Local` text.
pub const TIME_OF_DISPATCH: &str = "time_of_dispatch";
/// The template value holding the raw `Hard_Time_of_Dispatch_Time_Zone_Local` text.
pub const TIME_ZONE: &str = "time_zone";

const TEMPLATE_FIELDS: &[&str] = &[DATE_OF_DISPATCH, TIME_OF_DISPATCH, TIME_ZONE];

const TEMPLATES: &[TemplateSource] = &[
    (
        "confirmed_note",
        include_str!("../../../templates/lit/confirmed_note.hbs"),
    ),
    (
        "confirmed_sms",
        include_str!("../../../templates/lit/confirmed_sms.hbs"),
    ),
    (
        "fe_confirmed_note",
        include_str!("../../../templates/lit/fe_confirmed_note.hbs"),
    ),
    (
        "fe_assigned_sms",
        include_str!("../../../templates/lit/fe_assigned_sms.hbs"),
    ),
];

/// Maps a LIT `Dispatch_Status` to the general status (SPEC §2). Matching is exact; anything
/// else is [`Status::NotMonitored`].
pub fn general_status(vendor_status: &str) -> Status {
    match vendor_status {
        "New Dispatch" => Status::Requested,
        "Request Confirmed" => Status::Confirmed,
        "Tech Arrived" => Status::TechOnSite,
        "Cancelled" => Status::Canceled,
        "Close Out" => Status::Completed,
        _ => Status::NotMonitored,
    }
}

/// The LIT adapter.
#[derive(Debug, Clone)]
pub struct LitAdapter {
    name: VendorName,
}

impl LitAdapter {
    /// The adapter; it holds no state besides its name.
    pub fn new() -> Self {
        Self {
            name: VendorName::parse(VENDOR).expect("LIT is a valid vendor name"),
        }
    }

    fn list_error(&self, reason: impl Into<String>) -> ListError {
        ListError {
            vendor: self.name.clone(),
            reason: reason.into(),
        }
    }
}

impl Default for LitAdapter {
    fn default() -> Self {
        Self::new()
    }
}

/// The LIT fields the monitor reads, borrowed from one raw record.
struct LitRecord<'a> {
    dispatch_number: Field<'a>,
    ticket_id: Field<'a>,
    status: Field<'a>,
    date: Field<'a>,
    time: Field<'a>,
    zone: Field<'a>,
    tech_name: Field<'a>,
    tech_phone: Field<'a>,
    contact: Field<'a>,
    site: Field<'a>,
    street: Field<'a>,
    check_in: Field<'a>,
    check_out: Field<'a>,
    arrived: bool,
}

impl<'a> LitRecord<'a> {
    fn read(record: &'a Map<String, Value>) -> Self {
        let text = |name| Field::text(record, name);
        Self {
            dispatch_number: text("Dispatch_Number"),
            ticket_id: text("MetTel_Bruin_TicketID"),
            status: text("Dispatch_Status"),
            date: text("Date_of_Dispatch"),
            time: text("Hard_Time_of_Dispatch_Local"),
            zone: text("Hard_Time_of_Dispatch_Time_Zone_Local"),
            tech_name: text("Tech_First_Name"),
            tech_phone: text("Tech_Mobile_Number"),
            contact: text("Job_Site_Contact_Name_and_Phone_Number"),
            site: text("Job_Site"),
            street: text("Job_Site_Street"),
            check_in: text("Time_of_Check_In"),
            check_out: text("Time_of_Check_Out"),
            arrived: is_true(record, "Tech_Arrived_On_Site"),
        }
    }
}

impl VendorAdapter for LitAdapter {
    fn name(&self) -> &VendorName {
        &self.name
    }

    fn policy(&self) -> VendorPolicy {
        VendorPolicy {
            field_engineer_step: true,
            confirmed_needs_tech: false,
        }
    }

    fn templates(&self) -> &'static [TemplateSource] {
        TEMPLATES
    }

    fn template_fields(&self) -> &'static [&'static str] {
        TEMPLATE_FIELDS
    }

    /// Accepts `{"Status": "Success", "DispatchList": [...]}` only (SPEC §9).
    fn records(&self, body: Value) -> Result<Vec<RawRecord>, ListError> {
        let Value::Object(mut body) = body else {
            return Err(self.list_error(format!("the body is {}, not an object", json_kind(&body))));
        };
        match Field::text(&body, "Status") {
            Field::Text("Success") => {}
            Field::Text(other) => {
                return Err(self.list_error(format!("Status is {other:?}, not \"Success\"")));
            }
            other => {
                let found = other.describe();
                return Err(self.list_error(format!("Status is {found}, not \"Success\"")));
            }
        }
        match body.remove("DispatchList") {
            Some(Value::Array(records)) => Ok(records),
            Some(other) => Err(self.list_error(format!(
                "DispatchList is {}, not an array",
                json_kind(&other)
            ))),
            None => Err(self.list_error("DispatchList is missing")),
        }
    }

    fn map_record(&self, record: &RawRecord) -> Result<Dispatch, SkipReason> {
        let Some(object) = record.as_object() else {
            let kind = json_kind(record);
            return Err(SkipReason::new(
                None,
                format!("the record is {kind}, not an object"),
            ));
        };
        let raw = LitRecord::read(object);

        let number_text = raw
            .dispatch_number
            .required("Dispatch_Number")
            .map_err(|why| SkipReason::new(None, why))?;
        let invalid_number = |error| SkipReason::new(None, format!("Dispatch_Number: {error}"));
        let dispatch_number = DispatchNumber::parse(number_text).map_err(invalid_number)?;
        let note_key = NoteKey::parse(number_text).map_err(invalid_number)?;
        let skip = |why: String| SkipReason::new(Some(dispatch_number.as_str()), why);
        let ticket_text = raw
            .ticket_id
            .required("MetTel_Bruin_TicketID")
            .map_err(skip)?;
        let ticket_id = TicketId::parse(ticket_text)
            .map_err(|error| skip(format!("MetTel_Bruin_TicketID: {error}")))?;

        let status = raw
            .status
            .raw()
            .map_or(Status::NotMonitored, general_status);
        let mut dispatch = Dispatch::new(
            self.name.clone(),
            dispatch_number,
            ticket_id,
            status,
            raw.status.describe(),
        );
        dispatch.note_key = Some(note_key);

        let (date, time, zone) = (raw.date.present(), raw.time.present(), raw.zone.present());
        dispatch.appointment = parse_appointment(date, time, zone);
        dispatch.appointment_raw = join_present([date, time, zone]);
        for (key, value) in [
            (DATE_OF_DISPATCH, date),
            (TIME_OF_DISPATCH, time),
            (TIME_ZONE, zone),
        ] {
            if let Some(value) = value {
                dispatch
                    .template_fields
                    .insert(key.to_owned(), value.to_owned());
            }
        }

        dispatch.tech_name = raw.tech_name.single_line();
        dispatch.tech_phone_raw = raw.tech_phone.owned();
        dispatch.tech_phone = PhoneE164::parse_optional(raw.tech_phone.raw());
        dispatch.client_phone = PhoneE164::parse_optional(raw.contact.raw());
        dispatch.site = raw.site.owned();
        dispatch.street = raw.street.owned();
        dispatch.tech_on_site = raw.arrived && raw.check_in.present().is_some();
        dispatch.completed = dispatch.tech_on_site && raw.check_out.present().is_some();
        Ok(dispatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_exactly() {
        let cases = [
            ("New Dispatch", Status::Requested),
            ("Request Confirmed", Status::Confirmed),
            ("Tech Arrived", Status::TechOnSite),
            ("Cancelled", Status::Canceled),
            ("Close Out", Status::Completed),
            ("request confirmed", Status::NotMonitored),
            ("Request Confirmed ", Status::NotMonitored),
            ("Canceled", Status::NotMonitored),
            ("", Status::NotMonitored),
        ];
        for (text, status) in cases {
            assert_eq!(general_status(text), status, "{text:?}");
        }
    }
}
