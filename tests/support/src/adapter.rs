//! The contract every vendor adapter keeps, checked the same way for each vendor, so a new
//! vendor crate's tests are its own mapping tables plus one call per contract:
//!
//! - [`assert_templates_build`]: its templates are known names and build, with the common
//!   ones, for its policy and extra values;
//! - [`assert_list_body_round_trips`]: `records(list_body(records))` gives the records back;
//! - [`Fuzz::run`]: no JSON — any value in any field, any whole record, any list body — makes
//!   it panic, and every dispatch it accepts obeys the domain's invariants.

use domain::{
    Dispatch, DispatchSpec, PhoneE164, Status, TemplateName, Templates, VendorAdapter, records_of,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

/// Every template the adapter brings is a known name, and all of them, with the common texts,
/// build and trial-render for the adapter's policy and extra values.
pub fn assert_templates_build(adapter: &dyn VendorAdapter) -> Templates {
    for (name, _) in adapter.templates() {
        assert!(
            TemplateName::parse(name).is_some(),
            "{name} is not a template name of the action table"
        );
    }
    let sources = dispatch_templates::COMMON
        .iter()
        .chain(adapter.templates())
        .copied();
    Templates::build(adapter.policy(), sources, adapter.template_fields())
        .unwrap_or_else(|error| panic!("{}'s templates: {error}", adapter.name()))
}

/// The list body the adapter makes for `records` is one it accepts, with the same records.
pub fn assert_list_body_round_trips(adapter: &dyn VendorAdapter, records: Vec<Value>) {
    let body = adapter.list_body(records.clone());
    assert_eq!(
        records_of(adapter, &body),
        Ok(records),
        "{}",
        adapter.name()
    );
    let empty = adapter.list_body(Vec::new());
    assert_eq!(
        records_of(adapter, &empty),
        Ok(Vec::new()),
        "{}",
        adapter.name()
    );
}

/// Property tests of an adapter against arbitrary JSON.
pub struct Fuzz<'a> {
    /// The adapter.
    pub adapter: &'a dyn VendorAdapter,
    /// The fields it reads (and a few it ignores): object keys come mostly from here.
    pub fields: &'static [&'static str],
    /// Strings that look like the values it cares about, and arbitrary ones.
    pub text: BoxedStrategy<String>,
    /// Real records to start from (e.g. the SPEC fixture's).
    pub fixtures: Vec<Value>,
    /// The vendor's own invariants of an accepted dispatch, beyond the common ones.
    pub check: &'a dyn Fn(&Dispatch),
}

impl std::fmt::Debug for Fuzz<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fuzz")
            .field("adapter", &self.adapter.name())
            .finish_non_exhaustive()
    }
}

impl Fuzz<'_> {
    /// Runs every property; panics with the smallest failing input.
    pub fn run(&self) {
        let json = crate::arbitrary::json(self.text.clone(), self.fields).boxed();
        let key = crate::arbitrary::key(self.fields);
        let fixtures = self.fixtures.clone();
        assert!(!fixtures.is_empty(), "give at least one fixture record");
        let count = fixtures.len();

        let edits = (0..count, prop::collection::vec((key, json.clone()), 1..4));
        self.check_all("any value in any field", edits, |(index, changes)| {
            let mut record = fixtures[index].clone();
            if let Some(object) = record.as_object_mut() {
                object.extend(changes);
            }
            self.map(&record);
        });
        self.check_all("any whole record", json.clone(), |record| self.map(&record));
        let known_fields =
            prop::collection::btree_map(prop::sample::select(self.fields), json.clone(), 0..12);
        self.check_all("records of known fields", known_fields, |fields| {
            let record: Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            self.map(&Value::Object(record));
        });
        self.check_all("any list body", json, |body| {
            if let Ok(records) = records_of(self.adapter, &body) {
                for record in &records {
                    self.map(record);
                }
            }
        });
    }

    fn check_all<S: Strategy>(&self, what: &str, strategy: S, test: impl Fn(S::Value))
    where
        S::Value: std::fmt::Debug,
    {
        let config = Config {
            cases: 256,
            failure_persistence: None,
            ..Config::default()
        };
        let result = TestRunner::new(config).run(&strategy, |value| {
            test(value);
            Ok(())
        });
        if let Err(error) = result {
            panic!("{} adapter, {what}: {error}", self.adapter.name());
        }
    }

    /// Maps one record; an accepted dispatch must obey every invariant.
    fn map(&self, record: &Value) {
        if let Ok(dispatch) = self.adapter.map_record(record) {
            assert_common_invariants(self.adapter, &dispatch);
            (self.check)(&dispatch);
        }
    }
}

/// What any dispatch an adapter accepts must satisfy.
pub fn assert_common_invariants(adapter: &dyn VendorAdapter, dispatch: &Dispatch) {
    assert_eq!(&dispatch.vendor, adapter.name());
    let ticket = dispatch.ticket_id.as_str();
    assert!(!ticket.is_empty() && ticket.bytes().all(|b| b.is_ascii_digit()));
    assert!(!dispatch.dispatch_number.as_str().is_empty());
    for key in dispatch.template_fields.keys() {
        assert!(
            adapter.template_fields().contains(&key.as_str()),
            "{key} is not declared in template_fields()"
        );
    }
    assert!(!dispatch.registry_fields.contains_key("ticket_id"));
}

/// `record_for(spec)` is a record the adapter maps back to `spec`'s values.
pub fn assert_record_for_round_trips(adapter: &dyn VendorAdapter, spec: &DispatchSpec) {
    let record = adapter
        .record_for(spec)
        .unwrap_or_else(|| panic!("{} cannot be simulated", adapter.name()));
    let dispatch = adapter
        .map_record(&record)
        .unwrap_or_else(|reason| panic!("{spec:?} maps to a skip: {reason}"));
    assert_common_invariants(adapter, &dispatch);
    assert_eq!(dispatch.dispatch_number.as_str(), spec.dispatch_number);
    assert_eq!(dispatch.ticket_id.as_str(), spec.ticket_id);
    assert_eq!(dispatch.status, spec.status, "{record}");
    let phone = |text: &Option<String>| PhoneE164::parse_optional(text.as_deref());
    assert_eq!(dispatch.client_phone, phone(&spec.client_phone), "{record}");
    assert_eq!(dispatch.tech_phone, phone(&spec.tech_phone));
    assert_eq!(dispatch.tech_name, spec.tech_name);
    assert_eq!(dispatch.site, spec.site);
    assert_eq!(dispatch.street, spec.street);
    assert_eq!(dispatch.tech_on_site, spec.tech_on_site || spec.completed);
    assert_eq!(dispatch.completed, spec.completed, "{record}");
    match &spec.appointment {
        Some((local, zone)) => {
            let appointment = dispatch.appointment.expect("the appointment reads back");
            assert_eq!(appointment.instant.naive_local(), *local);
            assert!(
                appointment.display.ends_with(zone.as_str()),
                "{}",
                appointment.display
            );
        }
        None => assert_eq!(dispatch.appointment, None),
    }
    if let Some(key) = &spec.note_key {
        assert!(
            dispatch
                .note_key
                .as_ref()
                .is_some_and(|k| k.as_str() == key)
                || dispatch.note_key.as_ref().map(|k| k.as_str()) == Some(&spec.dispatch_number),
            "note key {:?}",
            dispatch.note_key
        );
    }
}

/// A few specs covering every status and the absent values, for
/// [`assert_record_for_round_trips`].
pub fn sample_specs() -> Vec<DispatchSpec> {
    let appointment = "2026-03-16T16:00:00".parse().expect("a valid time");
    let full = DispatchSpec {
        note_key: Some("IGZ_1".into()),
        status: Status::Confirmed,
        appointment: Some((appointment, "Pacific".into())),
        tech_name: Some("Joe Malone".into()),
        tech_phone: Some("+1 (212) 555-0102".into()),
        client_phone: Some("212 555 0101".into()),
        site: Some("Red Rose Inn".into()),
        street: Some("160 Broadway".into()),
        ..DispatchSpec::new("DIS1", "4000001")
    };
    let mut specs = vec![DispatchSpec::new("DIS0", "4000000"), full.clone()];
    for status in [Status::TechOnSite, Status::Canceled, Status::NotMonitored] {
        specs.push(DispatchSpec {
            status,
            tech_on_site: status == Status::TechOnSite,
            ..full.clone()
        });
    }
    // Zones outside the US words read back by their own names (`Europe/Paris Time` was once
    // written and never read back; see docs/fuzzing.md).
    for zone in ["Europe/Paris", "UTC"] {
        specs.push(DispatchSpec {
            appointment: Some((appointment, zone.into())),
            ..full.clone()
        });
    }
    specs.push(DispatchSpec {
        status: Status::Completed,
        tech_on_site: true,
        completed: true,
        ..full
    });
    specs
}
