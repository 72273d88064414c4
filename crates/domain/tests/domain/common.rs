//! Shared builders for the domain's tests: the templates, dispatches and notes.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use domain::{
    Appointment, Dispatch, DispatchNotes, DispatchNumber, ListError, NoteKey, PhoneE164, RawRecord,
    RawRecordText, SkipReason, Status, TemplateSource, Templates, TicketId, TicketNote,
    VendorAdapter, VendorName, VendorPolicy, record,
};
use serde_json::value::RawValue;
use serde_json::{Value, json};

pub const LIT_TEMPLATES: &[TemplateSource] = dispatch_templates::LIT;

pub const CTS_TEMPLATES: &[TemplateSource] = dispatch_templates::CTS;

pub const LIT_FIELDS: &[&str] = &["date_of_dispatch", "time_of_dispatch", "time_zone"];

pub fn lit_policy() -> VendorPolicy {
    VendorPolicy {
        field_engineer_step: true,
        confirmed_needs_tech: false,
    }
}

pub fn cts_policy() -> VendorPolicy {
    VendorPolicy {
        field_engineer_step: false,
        confirmed_needs_tech: true,
    }
}

/// The common texts, then `vendor`'s.
pub fn with_common(vendor: &[TemplateSource]) -> Vec<TemplateSource> {
    dispatch_templates::COMMON
        .iter()
        .chain(vendor)
        .copied()
        .collect()
}

pub fn lit_templates() -> Templates {
    Templates::build(lit_policy(), with_common(LIT_TEMPLATES), LIT_FIELDS).unwrap()
}

pub fn cts_templates() -> Templates {
    Templates::build(cts_policy(), with_common(CTS_TEMPLATES), &[]).unwrap()
}

/// The appointment every test dispatch has: Mar 16, 2020 @ 04:00 PM Pacific.
pub fn appointment() -> Appointment {
    Appointment::localise(
        "2020-03-16".parse().unwrap(),
        "16:00:00".parse().unwrap(),
        "Pacific Time",
    )
    .unwrap()
}

/// `hours` before the appointment (negative: after it).
pub fn hours_before(hours: f64) -> DateTime<Utc> {
    appointment().instant.with_timezone(&Utc) - Duration::seconds((hours * 3600.0) as i64)
}

pub const CLIENT: &str = "+12123595129";
pub const TECH: &str = "+12123595130";

/// A confirmed LIT dispatch with everything present.
pub fn lit_dispatch(status: Status) -> Dispatch {
    let mut dispatch = Dispatch::new(
        VendorName::parse("LIT").unwrap(),
        DispatchNumber::parse("DIS37405").unwrap(),
        TicketId::parse("3544800").unwrap(),
        status,
        "Request Confirmed",
    );
    dispatch.note_key = Some(NoteKey::parse("DIS37405").unwrap());
    dispatch.appointment = Some(appointment());
    dispatch.appointment_raw = Some("2020-03-16 4PM-6PM Pacific Time".into());
    dispatch.tech_name = Some("Joe Malone".into());
    dispatch.tech_phone = Some(PhoneE164::parse_us(TECH).unwrap());
    dispatch.tech_phone_raw = Some("+1 (212) 359-5130".into());
    dispatch.client_phone = Some(PhoneE164::parse_us(CLIENT).unwrap());
    dispatch.site = Some("Red Rose Inn".into());
    dispatch.street = Some("160 Broadway".into());
    for (key, value) in [
        ("date_of_dispatch", "2020-03-16"),
        ("time_of_dispatch", "4PM-6PM"),
        ("time_zone", "Pacific Time"),
    ] {
        dispatch.template_fields.insert(key.into(), value.into());
    }
    dispatch
}

/// A confirmed CTS dispatch with everything present.
pub fn cts_dispatch(status: Status) -> Dispatch {
    let mut dispatch = lit_dispatch(status);
    dispatch.vendor = VendorName::parse("CTS").unwrap();
    dispatch.dispatch_number = DispatchNumber::parse("S-12345").unwrap();
    dispatch.note_key = Some(NoteKey::parse("IGZ_0001").unwrap());
    dispatch.template_fields.clear();
    dispatch
        .registry_fields
        .insert("igz_dispatch_number".into(), "IGZ_0001".into());
    dispatch
}

/// Notes for `key`, one per text, in the given order.
pub fn notes(key: &str, texts: &[&str]) -> DispatchNotes {
    DispatchNotes::from_ordered(
        texts
            .iter()
            .map(|text| TicketNote {
                id: None,
                text: format!("#*MetTel's IPA*# {key}\n{text}"),
                created: None,
            })
            .collect(),
    )
}

/// A made-up vendor whose records are already flat: enough to drive the engine.
#[derive(Debug)]
pub struct FlatVendor(VendorName);

impl FlatVendor {
    pub fn new() -> Arc<Self> {
        Arc::new(Self(VendorName::parse("LIT").unwrap()))
    }
}

impl VendorAdapter for FlatVendor {
    fn name(&self) -> &VendorName {
        &self.0
    }
    fn policy(&self) -> VendorPolicy {
        lit_policy()
    }
    fn templates(&self) -> &'static [TemplateSource] {
        LIT_TEMPLATES
    }
    fn template_fields(&self) -> &'static [&'static str] {
        LIT_FIELDS
    }
    fn records<'a>(&self, body: &'a RawValue) -> Result<Vec<RawRecordText<'a>>, ListError> {
        let (_, list) =
            record::list_fields(body, "list").map_err(|why| ListError::new(&self.0, why))?;
        record::list_records(list, "list").map_err(|_| ListError {
            vendor: self.0.clone(),
            reason: "no list array".into(),
        })
    }
    fn list_body(&self, records: Vec<RawRecord>) -> Value {
        json!({ "list": records })
    }
    fn map_record(&self, record: &RawRecord) -> Result<Dispatch, SkipReason> {
        let number = record["number"]
            .as_str()
            .ok_or_else(|| SkipReason::new(None, "no number"))?;
        let ticket = record["ticket"]
            .as_str()
            .and_then(|t| TicketId::parse(t).ok())
            .ok_or_else(|| SkipReason::new(Some(number), "invalid ticket"))?;
        let status = match record["status"].as_str() {
            Some("confirmed") => Status::Confirmed,
            Some("cancelled") => Status::Canceled,
            _ => Status::Requested,
        };
        let mut dispatch = lit_dispatch(status);
        dispatch.dispatch_number = DispatchNumber::parse(number).unwrap();
        dispatch.note_key = Some(NoteKey::parse(number).unwrap());
        dispatch.ticket_id = ticket;
        if let Some(tech) = record["tech"].as_str() {
            dispatch.tech_name = Some(tech.to_owned());
        }
        if record["tech_phone"].is_null() && record.get("tech_phone").is_some() {
            dispatch.tech_phone = None;
            dispatch.tech_phone_raw = None;
        }
        Ok(dispatch)
    }
}

/// A flat record for [`FlatVendor`]; `"tech"` names another tech, `"tech_phone": null`
/// leaves the tech without a phone.
pub fn record(number: &str, ticket: &str, status: &str) -> Value {
    json!({"number": number, "ticket": ticket, "status": status})
}
