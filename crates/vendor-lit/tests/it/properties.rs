//! Properties: no JSON value in any field, and no whole record or list body, makes the adapter
//! panic; what it does accept obeys the domain's invariants.

use domain::{Dispatch, VendorAdapter};
use proptest::prelude::*;
use serde_json::{Map, Value};
use test_support::fixtures;
use vendor_lit::{LitAdapter, parse_appointment, parse_start_time};

/// Every field the adapter reads, plus a few it ignores and the list keys.
const FIELDS: &[&str] = &[
    "Dispatch_Number",
    "MetTel_Bruin_TicketID",
    "Dispatch_Status",
    "Date_of_Dispatch",
    "Hard_Time_of_Dispatch_Local",
    "Hard_Time_of_Dispatch_Time_Zone_Local",
    "Tech_First_Name",
    "Tech_Mobile_Number",
    "Job_Site_Contact_Name_and_Phone_Number",
    "Job_Site",
    "Job_Site_Street",
    "Tech_Arrived_On_Site",
    "Time_of_Check_In",
    "Time_of_Check_Out",
    "Time_Zone_Local",
    "Status",
    "DispatchList",
];

/// Strings that look like the values the adapter cares about, and arbitrary ones.
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "[0-9]{0,12}",
        "[0-9 ()+\\-]{0,18}",
        "[0-9]{1,3}([:.]{1,2}[0-9]{0,3})?[ \\-]?[AaPp]?[Mm]?(-[0-9]{1,2}[AaPp]?)?( [A-Z]T)?",
        "20[0-9]{2}-[0-9]{2}-[0-9]{2}",
        prop::sample::select(vec![
            "Success",
            "New Dispatch",
            "Request Confirmed",
            "Tech Arrived",
            "Cancelled",
            "Close Out",
            "Pacific Time",
            "US/Eastern",
            "Arizona",
            "DIS37405",
            "3544800",
        ])
        .prop_map(str::to_owned),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    test_support::arbitrary::json(arb_text().boxed(), FIELDS)
}

fn arb_key() -> impl Strategy<Value = String> {
    test_support::arbitrary::key(FIELDS)
}

fn fixture_record(index: usize) -> Value {
    let list = fixtures::json("lit-dispatch-list.json");
    let records = list["DispatchList"].as_array().unwrap();
    records[index % records.len()].clone()
}

/// What any mapped dispatch must satisfy, whatever the input.
fn check_invariants(dispatch: &Dispatch) {
    assert_eq!(dispatch.vendor.as_str(), "LIT");
    assert!(
        dispatch
            .ticket_id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    assert!(!dispatch.ticket_id.as_str().is_empty());
    assert_eq!(
        dispatch.note_key.as_ref().map(|k| k.as_str()),
        Some(dispatch.dispatch_number.as_str())
    );
    assert!(dispatch.registry_fields.is_empty());
    assert!(!dispatch.completed || dispatch.tech_on_site);
    for key in dispatch.template_fields.keys() {
        assert!(LitAdapter::new().template_fields().contains(&key.as_str()));
    }
    if dispatch.appointment.is_some() {
        assert_eq!(dispatch.template_fields.len(), 3);
    }
}

proptest! {
    #[test]
    fn any_value_in_any_field_never_panics(
        index in 0usize..6,
        changes in prop::collection::vec((arb_key(), arb_json()), 1..4),
    ) {
        let mut record = fixture_record(index);
        let object = record.as_object_mut().unwrap();
        for (key, value) in changes {
            object.insert(key, value);
        }
        if let Ok(dispatch) = LitAdapter::new().map_record(&record) {
            check_invariants(&dispatch);
        }
    }

    #[test]
    fn any_whole_record_never_panics(record in arb_json()) {
        if let Ok(dispatch) = LitAdapter::new().map_record(&record) {
            check_invariants(&dispatch);
        }
    }

    #[test]
    fn records_of_known_fields_with_any_values_never_panic(
        fields in prop::collection::btree_map(prop::sample::select(FIELDS), arb_json(), 0..FIELDS.len()),
    ) {
        let record: Map<String, Value> =
            fields.into_iter().map(|(key, value)| (key.to_owned(), value)).collect();
        if let Ok(dispatch) = LitAdapter::new().map_record(&Value::Object(record)) {
            check_invariants(&dispatch);
        }
    }

    #[test]
    fn any_list_body_never_panics(body in arb_json(), status in arb_json(), list in arb_json()) {
        let adapter = LitAdapter::new();
        let _ = adapter.records(body);
        let shaped = serde_json::json!({"Status": status, "DispatchList": list});
        if let Ok(records) = adapter.records(shaped.clone()) {
            prop_assert!(shaped["Status"] == "Success");
            for record in &records {
                let _ = adapter.map_record(record);
            }
        }
    }

    #[test]
    fn any_appointment_text_never_panics(
        date in proptest::option::of(arb_text()),
        time in proptest::option::of(arb_text()),
        zone in proptest::option::of(arb_text()),
    ) {
        let _ = parse_appointment(date.as_deref(), time.as_deref(), zone.as_deref());
    }

    #[test]
    fn twelve_hour_start_times_read_back(
        hour in 1u32..=12,
        minute in 0u32..60,
        pm in any::<bool>(),
        separator in prop::sample::select(vec!["", " ", "-"]),
        suffix in prop::sample::select(vec!["", "M", "m"]),
        upper in any::<bool>(),
        rest in prop::sample::select(vec!["", "-6PM", " ET", "-11:30", " to 5p"]),
    ) {
        let letter = match (pm, upper) {
            (true, true) => "P",
            (true, false) => "p",
            (false, true) => "A",
            (false, false) => "a",
        };
        let text = format!("{hour}:{minute:02}{separator}{letter}{suffix}{rest}");
        let time = parse_start_time(&text).unwrap();
        let expected = hour % 12 + if pm { 12 } else { 0 };
        prop_assert_eq!(time.format("%H:%M").to_string(), format!("{expected:02}:{minute:02}"));
    }
}
