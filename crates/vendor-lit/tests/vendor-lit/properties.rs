//! Properties: no JSON value in any field, and no whole record or list body, makes the adapter
//! panic; what it does accept obeys the domain's invariants.

use domain::{Dispatch, VendorAdapter};
use proptest::prelude::*;
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

#[test]
fn no_json_makes_the_adapter_panic() {
    let adapter = LitAdapter::new();
    let list = fixtures::json("lit-dispatch-list.json");
    test_support::adapter::Fuzz {
        adapter: &adapter,
        fields: FIELDS,
        text: arb_text().boxed(),
        fixtures: list["DispatchList"].as_array().unwrap().clone(),
        check: &check_invariants,
    }
    .run();
}

proptest! {
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
