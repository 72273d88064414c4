//! CTS records and list responses mapped into domain terms, checked against the SPEC fixtures
//! and tables of expectations.

use std::collections::BTreeMap;

use domain::{Dispatch, SkipReason, Status, VendorAdapter, records_of};
use serde_json::{Value, json};
use test_support::fixtures;
use vendor_cts::{CtsAdapter, parse_onsite_time};

fn fixture_records() -> Vec<Value> {
    records_of(
        &CtsAdapter::new(),
        &fixtures::json("cts-dispatch-list.json"),
    )
    .unwrap()
}

/// The scheduled fixture record (`S-12345`, IGZ_0001) with some fields changed.
fn scheduled_with(changes: Value) -> Value {
    let mut record = fixture_records().swap_remove(1);
    let object = record.as_object_mut().unwrap();
    for (key, value) in changes.as_object().unwrap() {
        if value == &json!("<remove>") {
            object.remove(key);
        } else {
            object.insert(key.clone(), value.clone());
        }
    }
    record
}

fn map(record: &Value) -> Result<Dispatch, SkipReason> {
    CtsAdapter::new().map_record(record)
}

/// What one fixture record must map to.
struct Expected {
    dispatch_number: &'static str,
    ticket: &'static str,
    status: Status,
    note_key: Option<&'static str>,
    client_phone: Option<&'static str>,
    tech_name: Option<&'static str>,
    tech_phone: Option<&'static str>,
    tech_phone_raw: Option<&'static str>,
    instant: Option<&'static str>,
    display: Option<&'static str>,
    appointment_raw: Option<&'static str>,
    tech_on_site: bool,
}

#[test]
fn the_fixture_list_maps_record_by_record() {
    let scheduled = |number, ticket, igz| Expected {
        dispatch_number: number,
        ticket,
        status: Status::Confirmed,
        note_key: igz,
        client_phone: Some("+12027723610"),
        tech_name: Some("Michael J. Fox"),
        tech_phone: Some("+12123595131"),
        tech_phone_raw: Some("+1 (212) 359-5131"),
        instant: Some("2020-06-23T15:00:00-07:00"),
        display: Some("Jun 23, 2020 @ 03:00 PM Pacific"),
        appointment_raw: Some("2020-06-23 03.00PM Pacific Time"),
        tech_on_site: false,
    };
    let expected = [
        Expected {
            status: Status::Requested,
            tech_name: None,
            tech_phone: None,
            tech_phone_raw: None,
            ..scheduled("S-12345", "4694961", Some("IGZ_0001"))
        },
        scheduled("S-12345", "4694961", Some("IGZ_0001")),
        Expected {
            status: Status::TechOnSite,
            tech_on_site: true,
            ..scheduled("S-12346", "4694962", Some("IGZ_0002"))
        },
        Expected {
            status: Status::Canceled,
            ..scheduled("S-12347", "4694963", Some("IGZ_0003"))
        },
        // No IGZ line: kept, but it can never be ours.
        scheduled("S-12348", "4694964", None),
        // A null description: every description value is absent.
        Expected {
            client_phone: None,
            instant: None,
            display: None,
            appointment_raw: None,
            ..scheduled("S-12349", "4694965", None)
        },
    ];

    let records = fixture_records();
    assert_eq!(records.len(), expected.len());
    for (record, want) in records.iter().zip(&expected) {
        let number = want.dispatch_number;
        let dispatch = map(record).unwrap_or_else(|skip| panic!("{number}: skipped: {skip}"));
        assert_eq!(dispatch.vendor.as_str(), "CTS");
        assert_eq!(dispatch.dispatch_number.as_str(), number);
        assert_eq!(dispatch.ticket_id.as_str(), want.ticket, "{number}");
        assert_eq!(dispatch.status, want.status, "{number}");
        assert_eq!(
            dispatch.note_key.as_ref().map(|k| k.as_str()),
            want.note_key,
            "{number}"
        );
        let registry: BTreeMap<String, String> = want
            .note_key
            .map(|igz| ("igz_dispatch_number".to_owned(), igz.to_owned()))
            .into_iter()
            .collect();
        assert_eq!(dispatch.registry_fields, registry, "{number}");
        assert_eq!(
            dispatch.client_phone.as_ref().map(|p| p.as_str()),
            want.client_phone,
            "{number}"
        );
        assert_eq!(dispatch.tech_name.as_deref(), want.tech_name, "{number}");
        assert_eq!(
            dispatch.tech_phone.as_ref().map(|p| p.as_str()),
            want.tech_phone,
            "{number}"
        );
        assert_eq!(
            dispatch.tech_phone_raw.as_deref(),
            want.tech_phone_raw,
            "{number}"
        );
        let instant = dispatch
            .appointment
            .as_ref()
            .map(|a| a.instant.to_rfc3339());
        assert_eq!(instant.as_deref(), want.instant, "{number}");
        let display = dispatch.appointment.as_ref().map(|a| a.display.as_str());
        assert_eq!(display, want.display, "{number}");
        assert_eq!(
            dispatch.appointment_raw.as_deref(),
            want.appointment_raw,
            "{number}"
        );
        assert_eq!(dispatch.tech_on_site, want.tech_on_site, "{number}");
        assert!(!dispatch.completed, "{number}");
        assert!(dispatch.template_fields.is_empty(), "{number}");
        assert_eq!(dispatch.site.as_deref(), Some("Premier Financial Bancorp"));
        assert_eq!(dispatch.street.as_deref(), Some("1501 K St NW"));
    }
    let first = map(&records[0]).unwrap();
    assert_eq!(first.vendor_status, "Open");
    assert_eq!(
        first.registry_value(),
        json!({"ticket_id": "4694961", "igz_dispatch_number": "IGZ_0001"})
    );
}

#[test]
fn phone_texts_map_to_e164_through_both_phone_fields() {
    let cases: &[(Value, Option<&str>)] = &[
        (json!("Jane Doe +1 212 359 5129"), Some("+12123595129")),
        (json!("(202) 772-3610"), Some("+12027723610")),
        (json!("+1 (212) 359-5129"), Some("+12123595129")),
        (json!("no valid Number"), None),
        (json!(""), None),
        (Value::Null, None),
        (json!(2123595129_u64), None),
    ];
    for (input, expected) in cases {
        // The client phone is a description line; a non-text value means no such line.
        let contact_line = input
            .as_str()
            .map(|text| format!("Contact #: {text}\r\n"))
            .unwrap_or_default();
        let description = format!(
            "Onsite Time Needed: 2020-06-23 03.00PM\r\nOnsite Timezone: Pacific Time\r\n\
             {contact_line}IGZ Dispatch Number: IGZ_0001"
        );
        let dispatch = map(&scheduled_with(json!({
            "Description__c": description,
            "Resource_Phone_Number__c": input,
        })))
        .unwrap();
        assert_eq!(
            dispatch.client_phone.as_ref().map(|p| p.as_str()),
            *expected,
            "client {input}"
        );
        assert_eq!(
            dispatch.tech_phone.as_ref().map(|p| p.as_str()),
            *expected,
            "tech {input}"
        );
        let raw = input.as_str().filter(|text| !text.is_empty());
        assert_eq!(
            dispatch.tech_phone_raw.as_deref(),
            raw,
            "raw tech phone {input}"
        );
    }
}

#[test]
fn description_lines_are_found_with_either_line_ending_and_in_any_order() {
    let lines = [
        "Onsite Timezone: Eastern Time",
        "Contact #: 212.359.5129",
        "Onsite Contact: Manager On Duty",
        "IGZ Dispatch Number: IGZ_0042",
        "Onsite Time Needed: 2020-01-15 09.30AM",
    ];
    for separator in ["\r\n", "\n", "\r\n\r\n", "\n\n"] {
        for rotation in 0..lines.len() {
            let mut ordered = lines.to_vec();
            ordered.rotate_left(rotation);
            let description = ordered.join(separator);
            let dispatch = map(&scheduled_with(json!({"Description__c": description}))).unwrap();
            assert_eq!(
                dispatch.note_key.as_ref().map(|k| k.as_str()),
                Some("IGZ_0042")
            );
            assert_eq!(
                dispatch.client_phone.as_ref().map(|p| p.as_str()),
                Some("+12123595129")
            );
            let appointment = dispatch.appointment.unwrap();
            assert_eq!(
                appointment.instant.to_rfc3339(),
                "2020-01-15T09:30:00-05:00"
            );
            assert_eq!(appointment.display, "Jan 15, 2020 @ 09:30 AM Eastern");
            assert_eq!(
                dispatch.appointment_raw.as_deref(),
                Some("2020-01-15 09.30AM Eastern Time")
            );
        }
    }
}

#[test]
fn description_values_that_are_absent_or_unreadable() {
    /// Description__c, then the expected note key, appointment display and appointment_raw.
    type Case = (
        Value,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        (Value::Null, None, None, None),
        (json!(42), None, None, None),
        (json!(["IGZ Dispatch Number: IGZ_1"]), None, None, None),
        (json!(""), None, None, None),
        (json!("IGZ Dispatch Number: "), None, None, None),
        (
            json!("IGZ Dispatch Number:IGZ_7"),
            Some("IGZ_7"),
            None,
            None,
        ),
        (
            json!("IGZ Dispatch Number:  IGZ_8  \r\n"),
            Some("IGZ_8"),
            None,
            None,
        ),
        (
            json!("Onsite Time Needed: 2020-06-23 15:00\nOnsite Timezone: Pacific Time"),
            None,
            None,
            Some("2020-06-23 15:00 Pacific Time"),
        ),
        (
            json!("Onsite Time Needed: 2020-06-23 03.00PM\nOnsite Timezone: Mars Time"),
            None,
            None,
            Some("2020-06-23 03.00PM Mars Time"),
        ),
        (
            json!("Onsite Time Needed: 2020-06-23 03.00PM"),
            None,
            None,
            Some("2020-06-23 03.00PM"),
        ),
        (
            json!("Onsite Time Needed: 2020-03-08 02.30AM\nOnsite Timezone: US/Pacific"),
            None,
            Some("Mar 08, 2020 @ 03:30 AM Pacific"),
            Some("2020-03-08 02.30AM US/Pacific"),
        ),
    ];
    for (description, note_key, display, raw) in cases {
        let dispatch = map(&scheduled_with(json!({"Description__c": description}))).unwrap();
        assert_eq!(
            dispatch.note_key.as_ref().map(|k| k.as_str()),
            *note_key,
            "{description}"
        );
        assert_eq!(
            dispatch.registry_fields.is_empty(),
            note_key.is_none(),
            "{description}"
        );
        let got = dispatch.appointment.as_ref().map(|a| a.display.as_str());
        assert_eq!(got, *display, "{description}");
        assert_eq!(dispatch.appointment_raw.as_deref(), *raw, "{description}");
    }
}

#[test]
fn onsite_time_parsing_is_exposed_for_reuse() {
    let appointment = parse_onsite_time(Some("2020-11-01 01.30AM"), Some("Pacific Time")).unwrap();
    assert_eq!(
        appointment.instant.to_rfc3339(),
        "2020-11-01T01:30:00-07:00"
    );
    assert!(parse_onsite_time(Some("2020-02-30 01.30AM"), Some("Pacific Time")).is_none());
    assert!(parse_onsite_time(Some("2020-06-23 13.00PM"), Some("Pacific Time")).is_none());
}

#[test]
fn wrong_list_shapes_are_list_errors() {
    let cases: &[(Value, &str)] = &[
        (json!({"done": false, "records": []}), "done is false"),
        (json!({"done": "true", "records": []}), "done is a string"),
        (json!({"done": 1, "records": []}), "done is a number"),
        (json!({"done": null, "records": []}), "done is null"),
        (json!({"records": []}), "done is missing"),
        (json!({"done": true}), "records is missing"),
        (json!({"done": true, "records": null}), "records is null"),
        (json!({"done": true, "records": {}}), "records is an object"),
        (
            json!({"done": true, "records": "[]"}),
            "records is a string",
        ),
        (json!([]), "not an object"),
        (json!(true), "not an object"),
        (Value::Null, "not an object"),
    ];
    let adapter = CtsAdapter::new();
    for (body, reason) in cases {
        let error = records_of(&adapter, body).unwrap_err();
        assert_eq!(error.vendor.as_str(), "CTS");
        assert!(error.reason.contains(reason), "{body}: {error}");
    }
    let ok = json!({"done": true, "totalSize": 2, "records": [1, "x"]});
    assert_eq!(
        records_of(&adapter, &ok).unwrap(),
        vec![json!(1), json!("x")]
    );
}

#[test]
fn unusable_identity_fields_skip_the_record_naming_the_field() {
    let cases: &[(Value, &str)] = &[
        (json!({"Name": "<remove>"}), "Name is missing"),
        (json!({"Name": null}), "Name is null"),
        (json!({"Name": 12345}), "Name is a number"),
        (json!({"Name": {"id": "S-12345"}}), "Name is an object"),
        (json!({"Name": ""}), "Name is empty"),
        (
            json!({"Ext_Ref_Num__c": "<remove>"}),
            "Ext_Ref_Num__c is missing",
        ),
        (json!({"Ext_Ref_Num__c": null}), "Ext_Ref_Num__c is null"),
        (
            json!({"Ext_Ref_Num__c": 4694961}),
            "Ext_Ref_Num__c is a number",
        ),
        (
            json!({"Ext_Ref_Num__c": false}),
            "Ext_Ref_Num__c is a boolean",
        ),
        (
            json!({"Ext_Ref_Num__c": "4663397|IW24654081"}),
            "Ext_Ref_Num__c",
        ),
        (
            json!({"Ext_Ref_Num__c": "712637/IW76236"}),
            "Ext_Ref_Num__c",
        ),
        (json!({"Ext_Ref_Num__c": "123-3123"}), "Ext_Ref_Num__c"),
        (json!({"Ext_Ref_Num__c": "as|asdf"}), "Ext_Ref_Num__c"),
    ];
    for (changes, reason) in cases {
        let skip = map(&scheduled_with(changes.clone())).unwrap_err();
        assert!(skip.reason.contains(reason), "{changes}: {skip}");
    }
    let skip = map(&scheduled_with(json!({"Ext_Ref_Num__c": "as|asdf"}))).unwrap_err();
    assert_eq!(skip.dispatch_number.as_deref(), Some("S-12345"));
    for record in [json!(null), json!("S-12345"), json!([1]), json!(7.5)] {
        let skip = map(&record).unwrap_err();
        assert!(skip.reason.contains("not an object"), "{record}: {skip}");
    }
}

#[test]
fn wrong_types_in_other_fields_leave_them_absent() {
    let dispatch = map(&scheduled_with(json!({
        "API_Resource_Name__c": ["Michael J. Fox"],
        "Resource_Phone_Number__c": 2123595131_u64,
        "Lookup_Location_Owner__c": {"name": "Premier"},
        "Street__c": 1501,
        "Check_In_Date__c": true,
    })))
    .unwrap();
    assert_eq!(dispatch.tech_name, None);
    assert_eq!(dispatch.tech_phone, None);
    assert_eq!(dispatch.tech_phone_raw, None);
    assert_eq!(dispatch.site, None);
    assert_eq!(dispatch.street, None);
    assert!(!dispatch.tech_on_site);

    let bare = map(&json!({"Name": "S-1", "Ext_Ref_Num__c": "1"})).unwrap();
    assert_eq!(bare.status, Status::NotMonitored);
    assert_eq!(bare.vendor_status, "(missing)");
    assert_eq!(bare.note_key, None);
    assert_eq!(bare.when_text(), "the scheduled date");
}

#[test]
fn statuses_map_exactly_and_completed_follows_status_alone() {
    let cases: &[(Value, Status)] = &[
        (json!("Open"), Status::Requested),
        (json!("Scheduled"), Status::Confirmed),
        (json!("On Site"), Status::TechOnSite),
        (json!("Canceled"), Status::Canceled),
        (json!("Completed"), Status::Completed),
        (json!("Complete Pending Collateral"), Status::Completed),
        (json!("Submitted for Billing"), Status::NotMonitored),
        (json!("Billed"), Status::NotMonitored),
        (json!("On Hold"), Status::NotMonitored),
        (json!("Reschedule"), Status::NotMonitored),
        (json!("Not Scheduled"), Status::NotMonitored),
        (json!("Scheduled "), Status::NotMonitored),
        (json!(3), Status::NotMonitored),
        (Value::Null, Status::NotMonitored),
    ];
    for (value, status) in cases {
        let dispatch = map(&scheduled_with(json!({"Status__c": value}))).unwrap();
        assert_eq!(dispatch.status, *status, "{value}");
        assert_eq!(dispatch.completed, *status == Status::Completed, "{value}");
    }
}

#[test]
fn on_site_evidence_is_a_check_in_date() {
    let cases: &[(Value, bool)] = &[
        (json!("2020-06-23T22:05:00.000+0000"), true),
        (Value::Null, false),
        (json!("<remove>"), false),
        (json!(""), false),
        (json!(1592950000), false),
    ];
    for (check_in, on_site) in cases {
        let dispatch = map(&scheduled_with(json!({"Check_In_Date__c": check_in}))).unwrap();
        assert_eq!(dispatch.tech_on_site, *on_site, "{check_in}");
    }
}

#[test]
fn templates_are_the_cts_files_and_build_with_the_common_ones() {
    let adapter = CtsAdapter::new();
    assert_eq!(adapter.templates(), dispatch_templates::CTS);
    assert_eq!(adapter.name().as_str(), "CTS");
    assert_eq!(adapter.name().lower(), "cts");
    assert!(!adapter.policy().field_engineer_step);
    assert!(adapter.policy().confirmed_needs_tech);
    assert!(adapter.template_fields().is_empty());
    test_support::adapter::assert_templates_build(&adapter);
}

#[test]
fn the_list_body_round_trips() {
    let records = fixtures::json("cts-dispatch-list.json")["records"]
        .as_array()
        .unwrap()
        .clone();
    test_support::adapter::assert_list_body_round_trips(&CtsAdapter::new(), records);
}

#[test]
fn simulated_records_map_back_to_their_specs() {
    for spec in test_support::adapter::sample_specs() {
        test_support::adapter::assert_record_for_round_trips(&CtsAdapter::new(), &spec);
    }
}
