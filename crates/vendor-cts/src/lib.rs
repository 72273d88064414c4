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
    Dispatch, DispatchSpec, ListError, NoteKey, PhoneE164, RawRecord, RawRecordText, SkipReason,
    Status, TemplateSource, UsZone, VendorAdapter, VendorName, VendorPolicy, join_present,
};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::description::Description;
use domain::record::{self, Field, is_true};

pub use crate::description::parse_onsite_time;

/// The vendor's name as alerts show it; its list subject is `cts.dispatch.get`.
pub const VENDOR: &str = "CTS";

/// The registry value's extra field holding the IGZ dispatch number (SPEC §4).
pub const IGZ_REGISTRY_FIELD: &str = "igz_dispatch_number";

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

/// The CTS `Status__c` text of a general status; not monitored reads `On Hold`.
pub fn vendor_status(status: Status) -> &'static str {
    match status {
        Status::Requested => "Open",
        Status::Confirmed => "Scheduled",
        Status::TechOnSite => "On Site",
        Status::Canceled => "Canceled",
        Status::Completed => "Completed",
        Status::NotMonitored => "On Hold",
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
            name: VendorName::fixed(VENDOR),
        }
    }
}

impl Default for CtsAdapter {
    fn default() -> Self {
        Self::new()
    }
}

/// The CTS fields the monitor reads besides the identity, borrowed from one raw record.
struct CtsRecord<'a> {
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
        dispatch_templates::CTS
    }

    /// Accepts `{"done": true, "records": [...]}` only (SPEC §9).
    fn records<'a>(&self, body: &'a RawValue) -> Result<Vec<RawRecordText<'a>>, ListError> {
        let error = |reason| ListError::new(&self.name, reason);
        let (body, records) = record::list_fields(body, "records").map_err(error)?;
        if !is_true(&body, "done") {
            let found = match body.get("done") {
                None => "missing".to_owned(),
                Some(Value::Bool(false)) => "false".to_owned(),
                Some(other) => record::json_kind(other).to_owned(),
            };
            return Err(error(format!("done is {found}, not true")));
        }
        record::list_records(records, "records").map_err(error)
    }

    fn list_body(&self, records: Vec<RawRecord>) -> Value {
        serde_json::json!({"done": true, "totalSize": records.len(), "records": records})
    }

    /// A CTS record: the appointment, contact and IGZ number as `Description__c` lines, the
    /// check-in date as on-site evidence.
    fn record_for(&self, spec: &DispatchSpec) -> Option<RawRecord> {
        let mut lines = Vec::new();
        if let Some((local, zone)) = &spec.appointment {
            lines.push(format!(
                "Onsite Time Needed: {}",
                local.format("%Y-%m-%d %I.%M%p")
            ));
            lines.push(format!("Onsite Timezone: {}", UsZone::vendor_text(zone)));
        }
        if let Some(phone) = &spec.client_phone {
            lines.push(format!("Contact #: {phone}"));
        }
        if let Some(igz) = &spec.note_key {
            lines.push(format!("IGZ Dispatch Number: {igz}"));
        }
        let status = if spec.completed && spec.status != Status::Canceled {
            Status::Completed
        } else {
            spec.status
        };
        Some(serde_json::json!({
            "Name": spec.dispatch_number,
            "Ext_Ref_Num__c": spec.ticket_id,
            "Status__c": vendor_status(status),
            "Description__c": lines.join("\r\n\r\n"),
            "API_Resource_Name__c": spec.tech_name,
            "Resource_Phone_Number__c": spec.tech_phone,
            "Lookup_Location_Owner__c": spec.site,
            "Street__c": spec.street,
            "Check_In_Date__c": (spec.tech_on_site || spec.completed).then_some("2026-01-01T09:00:00.000+0000"),
        }))
    }

    fn map_record(&self, record: &RawRecord) -> Result<Dispatch, SkipReason> {
        let object = record::object(record)?;
        let (dispatch_number, ticket_id) = record::identity(object, "Name", "Ext_Ref_Num__c")?;
        let raw = CtsRecord::read(object);

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
