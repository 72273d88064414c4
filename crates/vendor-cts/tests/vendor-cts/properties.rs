//! Properties: no JSON value in any field, no description text, and no whole record or list
//! body makes the adapter panic; what it does accept obeys the domain's invariants.

use domain::{Dispatch, Status, VendorAdapter};
use proptest::prelude::*;
use serde_json::Value;
use test_support::fixtures;
use vendor_cts::CtsAdapter;

/// Every field the adapter reads, plus a few it ignores and the list keys.
const FIELDS: &[&str] = &[
    "Name",
    "Ext_Ref_Num__c",
    "Status__c",
    "Description__c",
    "API_Resource_Name__c",
    "Resource_Phone_Number__c",
    "Lookup_Location_Owner__c",
    "Street__c",
    "Check_In_Date__c",
    "Check_Out_Date__c",
    "Confirmed__c",
    "done",
    "records",
];

/// Description texts made of the labelled lines CTS writes, with arbitrary values and endings.
fn arb_description() -> impl Strategy<Value = String> {
    let label = prop::sample::select(vec![
        "IGZ Dispatch Number: ",
        "IGZ Dispatch Number:",
        "Contact #: ",
        "Onsite Contact: ",
        "Onsite Time Needed: ",
        "Onsite Timezone: ",
        "",
    ]);
    let value = prop_oneof![
        ".*",
        "IGZ_[0-9]{1,5}",
        "[0-9 ()+\\-.]{0,16}",
        "20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}\\.[0-9]{2}[AP]M",
        "(Pacific|Eastern|Central|Mountain|Alaska|Hawaii|Arizona) Time",
    ];
    let ending = prop::sample::select(vec!["\r\n", "\n", "\r\n\r\n", "\r", ""]);
    prop::collection::vec((label, value, ending), 0..8).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(label, value, ending)| format!("{label}{value}{ending}"))
            .collect()
    })
}

/// Strings that look like the values the adapter cares about, and arbitrary ones.
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "[0-9]{0,12}",
        "[0-9 ()+\\-]{0,18}",
        "20[0-9]{2}-[0-9]{2}-[0-9]{2}",
        prop::sample::select(vec![
            "Open",
            "Scheduled",
            "On Site",
            "Canceled",
            "Completed",
            "Complete Pending Collateral",
            "S-12345",
            "4694961",
        ])
        .prop_map(str::to_owned),
        arb_description(),
    ]
}

fn fixture_record(index: usize) -> Value {
    let list = fixtures::json("cts-dispatch-list.json");
    let records = list["records"].as_array().unwrap();
    records[index % records.len()].clone()
}

/// What any mapped dispatch must satisfy, whatever the input.
fn check_invariants(dispatch: &Dispatch) {
    assert_eq!(dispatch.vendor.as_str(), "CTS");
    assert!(!dispatch.ticket_id.as_str().is_empty());
    assert!(
        dispatch
            .ticket_id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    match &dispatch.note_key {
        Some(key) => {
            assert_eq!(dispatch.registry_fields.len(), 1);
            assert_eq!(
                dispatch.registry_fields["igz_dispatch_number"],
                key.as_str()
            );
        }
        None => assert!(dispatch.registry_fields.is_empty()),
    }
    assert_eq!(dispatch.completed, dispatch.status == Status::Completed);
    assert!(dispatch.template_fields.is_empty());
    assert!(dispatch.appointment.is_none() || dispatch.appointment_raw.is_some());
}

#[test]
fn no_json_makes_the_adapter_panic() {
    let adapter = CtsAdapter::new();
    let list = fixtures::json("cts-dispatch-list.json");
    test_support::adapter::Fuzz {
        adapter: &adapter,
        fields: FIELDS,
        text: arb_text().boxed(),
        fixtures: list["records"].as_array().unwrap().clone(),
        check: &check_invariants,
    }
    .run();
}

proptest! {
    #[test]
    fn any_description_never_panics(index in 0usize..6, description in arb_description()) {
        let mut record = fixture_record(index);
        record["Description__c"] = Value::String(description);
        let dispatch = CtsAdapter::new().map_record(&record).unwrap();
        check_invariants(&dispatch);
    }

    #[test]
    fn crlf_and_lf_descriptions_read_the_same(index in 0usize..6, description in arb_description()) {
        let adapter = CtsAdapter::new();
        let lf = description.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        let mut record = fixture_record(index);
        record["Description__c"] = Value::String(lf);
        let from_lf = adapter.map_record(&record).unwrap();
        record["Description__c"] = Value::String(crlf);
        let from_crlf = adapter.map_record(&record).unwrap();
        prop_assert_eq!(from_lf, from_crlf);
    }

}
