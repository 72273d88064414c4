//! The LIT vendor adapter: checks LIT's dispatch list response, maps each raw LIT record into a
//! domain [`Dispatch`] (SPEC §2, §5, §5.1) and supplies LIT's own note and SMS templates.
//!
//! This crate owns LIT's JSON shape and nothing else. It must not depend on NATS, Redis or any
//! I/O: the engine fetches the list and hands the body over. LIT's JSON types never leave the
//! crate; everything public is in domain terms.

#![warn(missing_docs)]

mod time;

use domain::{
    Dispatch, DispatchSpec, ListError, NoteKey, PhoneE164, RawRecord, RawRecordText, SkipReason,
    Status, TemplateSource, UsZone, VendorAdapter, VendorName, VendorPolicy, join_present,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use domain::record::{self, Field, is_true};

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

/// The LIT `Dispatch_Status` text of a general status; not monitored reads `On Hold`.
pub fn vendor_status(status: Status) -> &'static str {
    match status {
        Status::Requested => "New Dispatch",
        Status::Confirmed => "Request Confirmed",
        Status::TechOnSite => "Tech Arrived",
        Status::Canceled => "Cancelled",
        Status::Completed => "Close Out",
        Status::NotMonitored => "On Hold",
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
            name: VendorName::fixed(VENDOR),
        }
    }
}

impl Default for LitAdapter {
    fn default() -> Self {
        Self::new()
    }
}

/// The LIT fields the monitor reads besides the identity, borrowed from one raw record.
struct LitRecord<'a> {
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
        dispatch_templates::LIT
    }

    fn template_fields(&self) -> &'static [&'static str] {
        TEMPLATE_FIELDS
    }

    /// Accepts `{"Status": "Success", "DispatchList": [...]}` only (SPEC §9).
    fn records<'a>(&self, body: &'a RawValue) -> Result<Vec<RawRecordText<'a>>, ListError> {
        let error = |reason| ListError::new(&self.name, reason);
        let (body, records) = record::list_fields(body, "DispatchList").map_err(error)?;
        match Field::text(&body, "Status") {
            Field::Text("Success") => {}
            other => {
                let found = match other {
                    Field::Text(text) => format!("{text:?}"),
                    other => other.describe(),
                };
                return Err(error(format!("Status is {found}, not \"Success\"")));
            }
        }
        record::list_records(records, "DispatchList").map_err(error)
    }

    fn list_body(&self, records: Vec<RawRecord>) -> Value {
        serde_json::json!({"Status": "Success", "Message": null, "DispatchList": records})
    }

    /// A LIT record: the appointment as `Date_of_Dispatch`, a `4:00PM` start and `Pacific
    /// Time`; the contact as `Site contact <phone>`; check-in and check-out times as evidence.
    fn record_for(&self, spec: &DispatchSpec) -> Option<RawRecord> {
        let (date, time, zone) = match &spec.appointment {
            Some((local, zone)) => (
                Some(local.format("%Y-%m-%d").to_string()),
                Some(local.format("%-I:%M%p").to_string()),
                Some(UsZone::vendor_text(zone)),
            ),
            None => (None, None, None),
        };
        let checked_in = spec.tech_on_site || spec.completed;
        Some(serde_json::json!({
            "Dispatch_Number": spec.dispatch_number,
            "MetTel_Bruin_TicketID": spec.ticket_id,
            "Dispatch_Status": vendor_status(spec.status),
            "Date_of_Dispatch": date,
            "Hard_Time_of_Dispatch_Local": time,
            "Hard_Time_of_Dispatch_Time_Zone_Local": zone,
            "Tech_First_Name": spec.tech_name,
            "Tech_Mobile_Number": spec.tech_phone,
            "Job_Site_Contact_Name_and_Phone_Number":
                spec.client_phone.as_ref().map(|phone| format!("Site contact {phone}")),
            "Job_Site": spec.site,
            "Job_Site_Street": spec.street,
            "Tech_Arrived_On_Site": checked_in,
            "Time_of_Check_In": checked_in.then_some("09:00"),
            "Time_of_Check_Out": spec.completed.then_some("11:00"),
        }))
    }

    fn map_record(&self, record: &RawRecord) -> Result<Dispatch, SkipReason> {
        let object = record::object(record)?;
        let (dispatch_number, ticket_id) =
            record::identity(object, "Dispatch_Number", "MetTel_Bruin_TicketID")?;
        let note_key = NoteKey::parse(dispatch_number.as_str()).map_err(|error| {
            SkipReason::new(
                Some(dispatch_number.as_str()),
                format!("Dispatch_Number: {error}"),
            )
        })?;
        let raw = LitRecord::read(object);

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
