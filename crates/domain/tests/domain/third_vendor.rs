//! A made-up third vendor, ACME, with its own record shape and templates, driven through the
//! real engine over the in-memory ports. It shows that adding a vendor needs no change to the
//! `domain` crate: implementing `VendorAdapter` is enough.

use std::sync::Arc;

use chrono::{NaiveDateTime, TimeZone, Utc};
use domain::memory::{ManualClock, MemoryWorld, WorldEvent};
use domain::*;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// ACME's records look like `{"id", "ticket", "state", "when", "zone", "contact"}`.
#[derive(Debug)]
struct AcmeAdapter {
    name: VendorName,
}

impl AcmeAdapter {
    fn new() -> Self {
        Self {
            name: VendorName::parse("ACME").unwrap(),
        }
    }
}

impl VendorAdapter for AcmeAdapter {
    fn name(&self) -> &VendorName {
        &self.name
    }

    fn policy(&self) -> VendorPolicy {
        VendorPolicy {
            field_engineer_step: false,
            confirmed_needs_tech: false,
        }
    }

    fn templates(&self) -> &'static [TemplateSource] {
        &[
            (
                "confirmed_note",
                "#*MetTel's IPA*# {{note_key}}\nDispatch Management - Dispatch Confirmed\n\
                 ACME visit booked for {{when}}\n",
            ),
            ("confirmed_sms", "ACME confirmed your visit on {{when}}.\n"),
        ]
    }

    fn records<'a>(&self, body: &'a RawValue) -> Result<Vec<RawRecordText<'a>>, ListError> {
        let (_, items) =
            record::list_fields(body, "items").map_err(|why| ListError::new(&self.name, why))?;
        record::list_records(items, "items").map_err(|_| ListError {
            vendor: self.name.clone(),
            reason: "items is not an array".into(),
        })
    }

    fn list_body(&self, records: Vec<RawRecord>) -> Value {
        serde_json::json!({ "items": records })
    }

    fn map_record(&self, record: &RawRecord) -> Result<Dispatch, SkipReason> {
        let text = |key: &str| record.get(key).and_then(Value::as_str);
        let id = text("id").ok_or_else(|| SkipReason::new(None, "id is not a string"))?;
        let number = DispatchNumber::parse(id).map_err(|e| SkipReason::new(None, e.to_string()))?;
        let ticket = text("ticket")
            .ok_or_else(|| SkipReason::new(Some(id), "ticket is not a string"))
            .and_then(|t| {
                TicketId::parse(t).map_err(|e| SkipReason::new(Some(id), e.to_string()))
            })?;
        let state = text("state").unwrap_or_default();
        let status = match state {
            "booked" => Status::Requested,
            "confirmed" => Status::Confirmed,
            "cancelled" => Status::Canceled,
            _ => Status::NotMonitored,
        };
        let mut dispatch = Dispatch::new(self.name.clone(), number, ticket, status, state);
        dispatch.note_key = NoteKey::parse(id).ok();
        dispatch.appointment = text("when")
            .and_then(|when| NaiveDateTime::parse_from_str(when, "%Y-%m-%d %H:%M").ok())
            .zip(text("zone"))
            .and_then(|(local, zone)| Appointment::localise(local.date(), local.time(), zone));
        dispatch.appointment_raw = join_present([text("when"), text("zone")]);
        dispatch.client_phone = PhoneE164::parse_optional(text("contact"));
        Ok(dispatch)
    }
}

fn requested_note(key: &str) -> String {
    format!("#*MetTel's IPA*# {key}\nDispatch Management - Dispatch Requested")
}

fn acme_record(id: &str, ticket: &str, state: &str) -> Value {
    json!({
        "id": id,
        "ticket": ticket,
        "state": state,
        "when": "2026-01-02 15:00",
        "zone": "Eastern",
        "contact": "Front desk +1 212 359 5129",
    })
}

#[tokio::test]
async fn a_third_vendor_runs_through_the_engine_without_domain_changes() {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let world = MemoryWorld::new(Arc::new(ManualClock::new(start)));
    let acme = VendorName::parse("ACME").unwrap();
    let ours = TicketId::parse("123456").unwrap();
    let other = TicketId::parse("654321").unwrap();
    world.tickets.seed_note(
        &ours,
        &requested_note("ACME-1"),
        start - chrono::Duration::hours(1),
    );
    world.source.set_list(
        &acme,
        json!({"items": [
            acme_record("ACME-1", "123456", "confirmed"),
            // Booked by someone else: no Dispatch Requested note, so never touched.
            acme_record("ACME-2", "654321", "confirmed"),
            // Unusable ticket id: skipped with a reason.
            acme_record("ACME-3", "12|34", "confirmed"),
        ]}),
    );
    let engine = Engine::new(world.ports(), EngineSettings::default())
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(Arc::new(AcmeAdapter::new()), &Default::default())
        .unwrap();
    assert_eq!(engine.vendors(), vec![acme.clone()]);

    let report = engine.run_cycle(&acme, Mode::Execute).await.unwrap();
    assert_eq!(report.records, 3);
    assert_eq!(report.skipped_records.len(), 1);
    assert_eq!(
        report.skipped_records[0].dispatch_number.as_deref(),
        Some("ACME-3")
    );
    assert_eq!(report.dispatches.len(), 2);
    assert!(matches!(
        report.dispatches[1].outcome,
        DispatchOutcome::NotOurs { .. }
    ));

    let client = PhoneE164::parse_us("+1 212 359 5129").unwrap();
    let sms: Vec<(PhoneE164, String)> = world
        .log
        .entries()
        .into_iter()
        .filter_map(|entry| match entry.event {
            WorldEvent::Sms { to, text, .. } => Some((to, text)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sms,
        vec![(
            client.clone(),
            "ACME confirmed your visit on Jan 02, 2026 @ 03:00 PM Eastern.\n".into()
        )]
    );
    assert_eq!(
        world.tickets.texts(&ours),
        vec![
            requested_note("ACME-1"),
            "#*MetTel's IPA*# ACME-1\nDispatch Management - Dispatch Confirmed\n\
             ACME visit booked for Jan 02, 2026 @ 03:00 PM Eastern\n"
                .to_owned(),
            "#*MetTel's IPA*# ACME-1\nDispatch confirmation SMS sent to +12123595129\n".to_owned(),
        ]
    );
    assert!(world.tickets.texts(&other).is_empty());
    assert_eq!(
        world.registry.get("ACME-1"),
        Some(json!({"ticket_id": "123456"}))
    );
    assert_eq!(world.registry.get("ACME-2"), None);
    let alerts: Vec<String> = world
        .log
        .entries()
        .into_iter()
        .filter_map(|entry| match entry.event {
            WorldEvent::Slack(line) => Some(line),
            _ => None,
        })
        .collect();
    assert!(
        alerts
            .iter()
            .any(|line| line.starts_with("[dispatch-monitor] [ACME] Dispatch [ACME-1]")),
        "{alerts:?}"
    );

    // The next cycle finds everything done: no second SMS, no second note.
    world.log.drain();
    world.clock.advance(chrono::Duration::minutes(15));
    engine.run_cycle(&acme, Mode::Execute).await.unwrap();
    let repeated = world.log.entries().into_iter().any(|entry| {
        matches!(
            entry.event,
            WorldEvent::Sms { .. } | WorldEvent::Note { .. }
        )
    });
    assert!(!repeated, "{:?}", world.log.entries());
    assert_eq!(world.tickets.texts(&ours).len(), 3);
}

#[tokio::test]
async fn a_malformed_third_vendor_list_fails_the_cycle_with_an_alert() {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let world = MemoryWorld::new(Arc::new(ManualClock::new(start)));
    let acme = VendorName::parse("ACME").unwrap();
    world.source.set_list(&acme, json!({"items": "nope"}));
    let engine = Engine::new(world.ports(), EngineSettings::default())
        .with_common_templates(dispatch_templates::COMMON)
        .with_vendor(Arc::new(AcmeAdapter::new()), &Default::default())
        .unwrap();
    let error = engine.run_cycle(&acme, Mode::Execute).await.unwrap_err();
    assert!(matches!(error, CycleError::Malformed(_)), "{error}");
    let alerted =
        world.log.entries().into_iter().any(
            |entry| matches!(&entry.event, WorldEvent::Slack(line) if line.contains("[ACME]")),
        );
    assert!(alerted);
}
