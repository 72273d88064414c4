//! The CTS vendor adapter: checks CTS's (Salesforce) dispatch list response, maps each raw CTS
//! record into a domain [`Dispatch`] (SPEC §2, §5, §5.2) — including the values CTS keeps as
//! lines of its free-text `Description__c` — and supplies CTS's own note and SMS templates.
//!
//! This crate owns CTS's JSON shape and nothing else. It must not depend on NATS, Redis or any
//! I/O: the engine fetches the list and hands the body over. CTS's JSON types never leave the
//! crate; everything public is in domain terms.

#![warn(missing_docs)]

mod description;

use std::collections::BTreeMap;

use domain::{
    Dispatch, DispatchNumber, ListError, NoteKey, PhoneE164, RawRecord, SkipReason, Status,
    TemplateSource, TicketId, VendorAdapter, VendorName, VendorPolicy, join_present,
};
use serde_json::{Map, Value};

use crate::description::Description;
use domain::record::{Field, is_true, json_kind};

pub use crate::description::parse_onsite_time;

/// The vendor's name as alerts show it; its list subject is `cts.dispatch.get`.
pub const VENDOR: &str = "CTS";

/// The registry value's extra field holding the IGZ dispatch number (SPEC §4).
pub const IGZ_REGISTRY_FIELD: &str = "igz_dispatch_number";

const TEMPLATES: &[TemplateSource] = &[
    (
        "confirmed_note",
        include_str!("../../../templates/cts/confirmed_note.hbs"),
    ),
    (
        "confirmed_sms",
        include_str!("../../../templates/cts/confirmed_sms.hbs"),
    ),
];

/// Maps a CTS `Status__c` to the general status (SPEC §2). Matching is exact (`Scheduled`
/// only, not any text containing it); anything else is [`Status::NotMonitored`].
pub fn general_status(vendor_status: &str) -> Status {
    match vendor_status {
        "Open" => Status::Requested,
        "Scheduled" => Status::Confirmed,
        "On Site" => Status::TechOnSite,
        "Canceled" => Status::Canceled,
        "Completed" | "Complete Pending Collateral" => Status::Completed,
        _ => Status::NotMonitored,
    }
}

/// The CTS adapter.
#[derive(Debug, Clone)]
pub struct CtsAdapter {
    name: VendorName,
}

impl CtsAdapter {
    /// The adapter; it holds no state besides its name.
    pub fn new() -> Self {
        Self {
            name: VendorName::parse(VENDOR).expect("CTS is a valid vendor name"),
        }
    }

    fn list_error(&self, reason: impl Into<String>) -> ListError {
        ListError {
            vendor: self.name.clone(),
            reason: reason.into(),
        }
    }
}

impl Default for CtsAdapter {
    fn default() -> Self {
        Self::new()
    }
}

/// The CTS fields the monitor reads, borrowed from one raw record.
struct CtsRecord<'a> {
    name: Field<'a>,
    ticket_id: Field<'a>,
    status: Field<'a>,
    description: Description<'a>,
    tech_name: Field<'a>,
    tech_phone: Field<'a>,
    site: Field<'a>,
    street: Field<'a>,
    check_in: Field<'a>,
}

impl<'a> CtsRecord<'a> {
    fn read(record: &'a Map<String, Value>) -> Self {
        let text = |name| Field::text(record, name);
        Self {
            name: text("Name"),
            ticket_id: text("Ext_Ref_Num__c"),
            status: text("Status__c"),
            // A null or non-string description leaves every description value absent.
            description: text("Description__c")
                .raw()
                .map(Description::parse)
                .unwrap_or_default(),
            tech_name: text("API_Resource_Name__c"),
            tech_phone: text("Resource_Phone_Number__c"),
            site: text("Lookup_Location_Owner__c"),
            street: text("Street__c"),
            check_in: text("Check_In_Date__c"),
        }
    }
}

impl VendorAdapter for CtsAdapter {
    fn name(&self) -> &VendorName {
        &self.name
    }

    fn policy(&self) -> VendorPolicy {
        VendorPolicy {
            field_engineer_step: false,
            confirmed_needs_tech: true,
        }
    }

    fn templates(&self) -> &'static [TemplateSource] {
        TEMPLATES
    }

    /// Accepts `{"done": true, "records": [...]}` only (SPEC §9).
    fn records(&self, body: Value) -> Result<Vec<RawRecord>, ListError> {
        let Value::Object(mut body) = body else {
            return Err(self.list_error(format!("the body is {}, not an object", json_kind(&body))));
        };
        if !is_true(&body, "done") {
            let found = match body.get("done") {
                None => "missing".to_owned(),
                Some(Value::Bool(false)) => "false".to_owned(),
                Some(other) => json_kind(other).to_owned(),
            };
            return Err(self.list_error(format!("done is {found}, not true")));
        }
        match body.remove("records") {
            Some(Value::Array(records)) => Ok(records),
            Some(other) => {
                Err(self.list_error(format!("records is {}, not an array", json_kind(&other))))
            }
            None => Err(self.list_error("records is missing")),
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
        let raw = CtsRecord::read(object);

        let name_text = raw
            .name
            .required("Name")
            .map_err(|why| SkipReason::new(None, why))?;
        let dispatch_number = DispatchNumber::parse(name_text)
            .map_err(|error| SkipReason::new(None, format!("Name: {error}")))?;
        let skip = |why: String| SkipReason::new(Some(dispatch_number.as_str()), why);
        let ticket_text = raw.ticket_id.required("Ext_Ref_Num__c").map_err(skip)?;
        let ticket_id = TicketId::parse(ticket_text)
            .map_err(|error| skip(format!("Ext_Ref_Num__c: {error}")))?;

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

        // Without an IGZ number the dispatch is kept but can never be ours (SPEC §6.4).
        let description = &raw.description;
        dispatch.note_key = description.igz.and_then(|igz| NoteKey::parse(igz).ok());
        if let Some(key) = &dispatch.note_key {
            dispatch.registry_fields =
                BTreeMap::from([(IGZ_REGISTRY_FIELD.to_owned(), key.as_str().to_owned())]);
        }
        dispatch.client_phone = PhoneE164::parse_optional(description.contact);
        dispatch.appointment = parse_onsite_time(description.time_needed, description.timezone);
        dispatch.appointment_raw = join_present([description.time_needed, description.timezone]);

        dispatch.tech_name = raw.tech_name.single_line();
        dispatch.tech_phone_raw = raw.tech_phone.owned();
        dispatch.tech_phone = PhoneE164::parse_optional(raw.tech_phone.raw());
        dispatch.site = raw.site.owned();
        dispatch.street = raw.street.owned();
        dispatch.tech_on_site = raw.check_in.present().is_some();
        dispatch.completed = status == Status::Completed;
        Ok(dispatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_exactly() {
        let cases = [
            ("Open", Status::Requested),
            ("Scheduled", Status::Confirmed),
            ("On Site", Status::TechOnSite),
            ("Canceled", Status::Canceled),
            ("Completed", Status::Completed),
            ("Complete Pending Collateral", Status::Completed),
            ("Submitted for Billing", Status::NotMonitored),
            ("Billed", Status::NotMonitored),
            ("On Hold", Status::NotMonitored),
            ("Reschedule", Status::NotMonitored),
            ("Rescheduled", Status::NotMonitored),
            ("Not Scheduled", Status::NotMonitored),
            ("scheduled", Status::NotMonitored),
            ("Cancelled", Status::NotMonitored),
            ("", Status::NotMonitored),
        ];
        for (text, status) in cases {
            assert_eq!(general_status(text), status, "{text:?}");
        }
    }
}
