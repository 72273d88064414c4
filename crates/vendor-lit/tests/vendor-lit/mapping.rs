//! LIT records and list responses mapped into domain terms, checked against the SPEC fixtures
//! and tables of expectations.

use std::collections::BTreeMap;

use domain::{Dispatch, SkipReason, Status, TemplateName, VendorAdapter, records_of};
use serde_json::{Value, json};
use test_support::fixtures;
use vendor_lit::{LitAdapter, parse_appointment};

fn fixture_records() -> Vec<Value> {
    records_of(
        &LitAdapter::new(),
        &fixtures::json("lit-dispatch-list.json"),
    )
    .unwrap()
}

/// The confirmed fixture record (`DIS37405`, `Request Confirmed`) with some fields changed.
fn confirmed_with(changes: Value) -> Value {
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
    LitAdapter::new().map_record(record)
}

#[test]
fn every_time_case_of_the_fixture_parses_as_expected() {
    let cases = fixtures::json("lit-time-cases.json");
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 38, "the fixture lists {} cases", cases.len());
    for case in cases {
        let text = |key: &str| case[key].as_str();
        let got = parse_appointment(text("date"), text("time"), text("zone"));
        assert_eq!(
            got.as_ref().map(|a| a.instant.to_rfc3339()).as_deref(),
            text("instant"),
            "instant of {case}"
        );
        assert_eq!(
            got.as_ref().map(|a| a.display.as_str()),
            text("display"),
            "display of {case}"
        );
    }
}

#[test]
fn every_time_case_also_parses_through_the_record_fields() {
    let cases = fixtures::json("lit-time-cases.json");
    for case in cases["cases"].as_array().unwrap() {
        let record = confirmed_with(json!({
            "Date_of_Dispatch": case["date"],
            "Hard_Time_of_Dispatch_Local": case["time"],
            "Hard_Time_of_Dispatch_Time_Zone_Local": case["zone"],
        }));
        let dispatch = map(&record).unwrap();
        assert_eq!(
            dispatch.appointment.as_ref().map(|a| a.display.as_str()),
            case["display"].as_str(),
            "{case}"
        );
    }
}

/// What one fixture record must map to.
struct Expected {
    dispatch_number: &'static str,
    /// The ticket id, or a text the skip reason must contain.
    ticket: Result<&'static str, &'static str>,
    status: Status,
    client_phone: Option<&'static str>,
    tech_name: Option<&'static str>,
    tech_phone: Option<&'static str>,
    instant: Option<&'static str>,
    display: Option<&'static str>,
    appointment_raw: Option<&'static str>,
    tech_on_site: bool,
}

#[test]
fn the_fixture_list_maps_record_by_record() {
    const PACIFIC_4PM: (Option<&str>, Option<&str>) = (
        Some("2020-03-16T16:00:00-07:00"),
        Some("Mar 16, 2020 @ 04:00 PM Pacific"),
    );
    let confirmed = |number, ticket| Expected {
        dispatch_number: number,
        ticket: Ok(ticket),
        status: Status::Confirmed,
        client_phone: Some("+12123595129"),
        tech_name: Some("Joe Malone"),
        tech_phone: Some("+12123595130"),
        instant: PACIFIC_4PM.0,
        display: PACIFIC_4PM.1,
        appointment_raw: Some("2020-03-16 4PM-6PM Pacific Time"),
        tech_on_site: false,
    };
    let expected = [
        Expected {
            dispatch_number: "DIS37405",
            ticket: Ok("3544800"),
            status: Status::Requested,
            client_phone: None,
            tech_name: None,
            tech_phone: None,
            instant: None,
            display: None,
            appointment_raw: Some("2020-03-16"),
            tech_on_site: false,
        },
        confirmed("DIS37405", "3544800"),
        Expected {
            status: Status::TechOnSite,
            tech_name: Some("Hulk Hogan"),
            instant: Some("2020-03-16T10:30:00-04:00"),
            display: Some("Mar 16, 2020 @ 10:30 AM Eastern"),
            appointment_raw: Some("2020-03-16 10:30AM-11:30AM Eastern Time"),
            tech_on_site: true,
            ..confirmed("DIS37406", "3544801")
        },
        Expected {
            status: Status::Canceled,
            ..confirmed("DIS37407", "3544802")
        },
        Expected {
            ticket: Err("MetTel_Bruin_TicketID"),
            ..confirmed("DIS37408", "")
        },
        confirmed("DIS37409", "3544803"),
    ];

    let records = fixture_records();
    assert_eq!(records.len(), expected.len());
    for (record, want) in records.iter().zip(&expected) {
        let number = want.dispatch_number;
        let dispatch = match (map(record), want.ticket) {
            (Ok(dispatch), Ok(ticket)) => {
                assert_eq!(dispatch.ticket_id.as_str(), ticket, "{number}");
                dispatch
            }
            (Err(skip), Err(field)) => {
                assert_eq!(skip.dispatch_number.as_deref(), Some(number));
                assert!(skip.reason.contains(field), "{number}: {skip}");
                assert!(
                    skip.reason.contains("4663397|IW24654081"),
                    "{number}: {skip}"
                );
                continue;
            }
            (got, _) => panic!("{number}: unexpected {got:?}"),
        };
        assert_eq!(dispatch.vendor.as_str(), "LIT");
        assert_eq!(dispatch.dispatch_number.as_str(), number);
        assert_eq!(dispatch.note_key.as_ref().map(|k| k.as_str()), Some(number));
        assert_eq!(dispatch.status, want.status, "{number}");
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
        assert!(dispatch.registry_fields.is_empty(), "{number}");
        assert_eq!(dispatch.site.as_deref(), Some("Red Rose Inn"));
        assert_eq!(dispatch.street.as_deref(), Some("160 Broadway"));
    }
}

#[test]
fn raw_texts_go_to_template_fields_and_the_tech_phone_stays_raw() {
    let records = fixture_records();
    let requested = map(&records[0]).unwrap();
    assert_eq!(
        requested.template_fields,
        BTreeMap::from([("date_of_dispatch".to_owned(), "2020-03-16".to_owned())])
    );
    let confirmed = map(&records[1]).unwrap();
    assert_eq!(
        confirmed.template_fields,
        BTreeMap::from([
            ("date_of_dispatch".to_owned(), "2020-03-16".to_owned()),
            ("time_of_dispatch".to_owned(), "4PM-6PM".to_owned()),
            ("time_zone".to_owned(), "Pacific Time".to_owned()),
        ])
    );
    assert_eq!(confirmed.vendor_status, "Request Confirmed");
    assert_eq!(
        confirmed.tech_phone_raw.as_deref(),
        Some("+1 (212) 359-5130")
    );
    assert_eq!(confirmed.when_text(), "Mar 16, 2020 @ 04:00 PM Pacific");
    let adapter = LitAdapter::new();
    for key in confirmed.template_fields.keys() {
        assert!(
            adapter.template_fields().contains(&key.as_str()),
            "{key} is not declared"
        );
    }
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
        let record = confirmed_with(json!({
            "Job_Site_Contact_Name_and_Phone_Number": input,
            "Tech_Mobile_Number": input,
        }));
        let dispatch = map(&record).unwrap();
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
fn wrong_list_shapes_are_list_errors() {
    let cases: &[(Value, &str)] = &[
        (
            json!({"Status": "Failed", "DispatchList": []}),
            "\"Failed\"",
        ),
        (json!({"Status": "success", "DispatchList": []}), "Status"),
        (json!({"Status": null, "DispatchList": []}), "Status"),
        (json!({"Status": true, "DispatchList": []}), "Status"),
        (json!({"DispatchList": []}), "Status"),
        (json!({"Status": "Success"}), "DispatchList is missing"),
        (
            json!({"Status": "Success", "DispatchList": null}),
            "DispatchList is null",
        ),
        (
            json!({"Status": "Success", "DispatchList": {}}),
            "DispatchList is an object",
        ),
        (
            json!({"Status": "Success", "DispatchList": "[]"}),
            "DispatchList is a string",
        ),
        (json!([]), "not an object"),
        (json!("Success"), "not an object"),
        (Value::Null, "not an object"),
    ];
    let adapter = LitAdapter::new();
    for (body, reason) in cases {
        let error = records_of(&adapter, body).unwrap_err();
        assert_eq!(error.vendor.as_str(), "LIT");
        assert!(error.reason.contains(reason), "{body}: {error}");
    }
    let ok = json!({"Status": "Success", "Message": null, "DispatchList": [1, "x"]});
    assert_eq!(
        records_of(&adapter, &ok).unwrap(),
        vec![json!(1), json!("x")]
    );
}

#[test]
fn unusable_identity_fields_skip_the_record_naming_the_field() {
    let cases: &[(Value, &str)] = &[
        (
            json!({"Dispatch_Number": "<remove>"}),
            "Dispatch_Number is missing",
        ),
        (json!({"Dispatch_Number": null}), "Dispatch_Number is null"),
        (
            json!({"Dispatch_Number": 37405}),
            "Dispatch_Number is a number",
        ),
        (
            json!({"Dispatch_Number": {"id": "DIS37405"}}),
            "Dispatch_Number is an object",
        ),
        (
            json!({"Dispatch_Number": ["DIS37405"]}),
            "Dispatch_Number is an array",
        ),
        (json!({"Dispatch_Number": "  "}), "Dispatch_Number is empty"),
        (json!({"Dispatch_Number": "DIS\n37405"}), "Dispatch_Number"),
        (
            json!({"MetTel_Bruin_TicketID": "<remove>"}),
            "MetTel_Bruin_TicketID is missing",
        ),
        (
            json!({"MetTel_Bruin_TicketID": null}),
            "MetTel_Bruin_TicketID is null",
        ),
        (
            json!({"MetTel_Bruin_TicketID": 3544800}),
            "MetTel_Bruin_TicketID is a number",
        ),
        (
            json!({"MetTel_Bruin_TicketID": true}),
            "MetTel_Bruin_TicketID is a boolean",
        ),
        (
            json!({"MetTel_Bruin_TicketID": ""}),
            "MetTel_Bruin_TicketID is empty",
        ),
        (
            json!({"MetTel_Bruin_TicketID": "712637/IW76236"}),
            "MetTel_Bruin_TicketID",
        ),
        (
            json!({"MetTel_Bruin_TicketID": "123-3123"}),
            "MetTel_Bruin_TicketID",
        ),
        (
            json!({"MetTel_Bruin_TicketID": "as|asdf"}),
            "MetTel_Bruin_TicketID",
        ),
        (
            json!({"MetTel_Bruin_TicketID": " 3544800"}),
            "MetTel_Bruin_TicketID",
        ),
    ];
    for (changes, reason) in cases {
        let skip = map(&confirmed_with(changes.clone())).unwrap_err();
        assert!(skip.reason.contains(reason), "{changes}: {skip}");
    }
    for record in [json!(null), json!("DIS37405"), json!([1]), json!(7)] {
        let skip = map(&record).unwrap_err();
        assert!(skip.reason.contains("not an object"), "{record}: {skip}");
    }
}

#[test]
fn wrong_types_in_other_fields_leave_them_absent() {
    let dispatch = map(&confirmed_with(json!({
        "Tech_First_Name": {"first": "Joe"},
        "Tech_Mobile_Number": 2123595130_u64,
        "Job_Site_Contact_Name_and_Phone_Number": ["Jane Doe +1 212 359 5129"],
        "Job_Site": 12,
        "Job_Site_Street": false,
        "Date_of_Dispatch": 20200316,
    })))
    .unwrap();
    assert_eq!(dispatch.tech_name, None);
    assert_eq!(dispatch.tech_phone, None);
    assert_eq!(dispatch.tech_phone_raw, None);
    assert_eq!(dispatch.client_phone, None);
    assert_eq!(dispatch.site, None);
    assert_eq!(dispatch.street, None);
    assert_eq!(dispatch.appointment, None);
    assert_eq!(
        dispatch.appointment_raw.as_deref(),
        Some("4PM-6PM Pacific Time")
    );
    assert!(!dispatch.template_fields.contains_key("date_of_dispatch"));
    assert_eq!(dispatch.when_text(), "4PM-6PM Pacific Time");

    let all_missing = map(&json!({"Dispatch_Number": "D1", "MetTel_Bruin_TicketID": "1"})).unwrap();
    assert_eq!(all_missing.status, Status::NotMonitored);
    assert_eq!(all_missing.vendor_status, "(missing)");
    assert_eq!(all_missing.appointment_raw, None);
    assert_eq!(all_missing.when_text(), "the scheduled date");
    assert!(all_missing.template_fields.is_empty());
    assert!(!all_missing.tech_on_site && !all_missing.completed);
}

#[test]
fn statuses_map_and_unknown_ones_are_still_dispatches() {
    let cases: &[(Value, Status)] = &[
        (json!("New Dispatch"), Status::Requested),
        (json!("Request Confirmed"), Status::Confirmed),
        (json!("Tech Arrived"), Status::TechOnSite),
        (json!("Cancelled"), Status::Canceled),
        (json!("Close Out"), Status::Completed),
        (json!("Billed"), Status::NotMonitored),
        (
            json!("Request Confirmed (rescheduled)"),
            Status::NotMonitored,
        ),
        (json!(5), Status::NotMonitored),
        (Value::Null, Status::NotMonitored),
    ];
    for (value, status) in cases {
        let dispatch = map(&confirmed_with(json!({"Dispatch_Status": value}))).unwrap();
        assert_eq!(dispatch.status, *status, "{value}");
    }
}

#[test]
fn on_site_and_completed_evidence_needs_a_json_true_and_check_times() {
    // (Tech_Arrived_On_Site, Time_of_Check_In, Time_of_Check_Out) -> (on site, completed)
    let cases: &[(Value, Value, Value, bool, bool)] = &[
        (json!(true), json!("6"), Value::Null, true, false),
        (json!(true), json!("6"), json!("8"), true, true),
        (json!(true), Value::Null, json!("8"), false, false),
        (json!(false), json!("6"), json!("8"), false, false),
        (json!("true"), json!("6"), json!("8"), false, false),
        (json!(1), json!("6"), json!("8"), false, false),
        (json!(true), json!(6), Value::Null, false, false),
        (json!(true), json!(""), Value::Null, false, false),
        (json!(true), json!("6"), json!(8), true, false),
        (json!(true), json!("<remove>"), Value::Null, false, false),
    ];
    for (arrived, check_in, check_out, on_site, completed) in cases {
        let dispatch = map(&confirmed_with(json!({
            "Dispatch_Status": "Close Out",
            "Tech_Arrived_On_Site": arrived,
            "Time_of_Check_In": check_in,
            "Time_of_Check_Out": check_out,
        })))
        .unwrap();
        let case = format!("{arrived} {check_in} {check_out}");
        assert_eq!(dispatch.status, Status::Completed, "{case}");
        assert_eq!(dispatch.tech_on_site, *on_site, "{case}");
        assert_eq!(dispatch.completed, *completed, "{case}");
    }
}

#[test]
fn templates_are_the_lit_files_and_build_with_the_common_ones() {
    let adapter = LitAdapter::new();
    assert_eq!(adapter.templates(), dispatch_templates::LIT);
    assert_eq!(adapter.name().as_str(), "LIT");
    assert_eq!(adapter.name().lower(), "lit");
    assert!(adapter.policy().field_engineer_step);
    assert!(!adapter.policy().confirmed_needs_tech);
    assert_eq!(
        adapter.template_fields(),
        ["date_of_dispatch", "time_of_dispatch", "time_zone"]
    );
    let templates = test_support::adapter::assert_templates_build(&adapter);
    let dispatch = map(&fixture_records()[1]).unwrap();
    let mut context = domain::TemplateContext::new();
    context.insert("note_key".into(), json!("DIS37405"));
    for (key, value) in &dispatch.template_fields {
        context.insert(key.clone(), json!(value));
    }
    assert_eq!(
        templates
            .render(TemplateName::parse("confirmed_note").unwrap(), &context)
            .unwrap(),
        "#*MetTel's IPA*# DIS37405\nDispatch Management - Dispatch Confirmed\n\
         Dispatch scheduled for 2020-03-16 @ 4PM-6PM Pacific Time\n"
    );
}

#[test]
fn the_list_body_round_trips() {
    test_support::adapter::assert_list_body_round_trips(&LitAdapter::new(), fixture_records());
}

#[test]
fn simulated_records_map_back_to_their_specs() {
    for spec in test_support::adapter::sample_specs() {
        test_support::adapter::assert_record_for_round_trips(&LitAdapter::new(), &spec);
    }
}
