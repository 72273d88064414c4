//! Adding a vendor is its crate, its templates and one wiring line. Here a throwaway vendor is
//! wired beside the real ones, the way `wiring::vendor_adapters` would list it: its settings
//! exist, the simulator serves it, and LIT and CTS behave exactly as without it, whatever
//! other vendors are wired.

use std::sync::Arc;

use dispatch_monitor::app;
use dispatch_monitor::service::LeasedCycle;
use dispatch_monitor::settings::{RawSettings, Settings};
use dispatch_monitor::wiring;
use domain::prelude::*;
use domain::record;
use test_support::servers::{NatsServer, RedisServer};

/// A vendor whose records are flat: `{"ref", "ticket", "state", "contact", "at"}`.
#[derive(Debug)]
struct Throwaway(VendorName);

impl VendorAdapter for Throwaway {
    fn name(&self) -> &VendorName {
        &self.0
    }
    fn policy(&self) -> VendorPolicy {
        VendorPolicy::default()
    }
    fn templates(&self) -> &'static [TemplateSource] {
        &[
            (
                "confirmed_note",
                "#*MetTel's IPA*# {{note_key}}\nDispatch Management - Dispatch Confirmed\nAt {{when}}\n",
            ),
            ("confirmed_sms", "Booked for {{when}}.\n"),
        ]
    }
    fn records<'a>(&self, body: &'a RawValue) -> Result<Vec<RawRecordText<'a>>, ListError> {
        let error = |why| ListError::new(&self.0, why);
        let (_, jobs) = record::list_fields(body, "jobs").map_err(error)?;
        record::list_records(jobs, "jobs").map_err(error)
    }
    fn list_body(&self, records: Vec<RawRecord>) -> Value {
        serde_json::json!({ "jobs": records })
    }
    fn map_record(&self, raw: &RawRecord) -> Result<Dispatch, SkipReason> {
        let object = record::object(raw)?;
        let (number, ticket) = record::identity(object, "ref", "ticket")?;
        let field = |name| record::Field::text(object, name);
        let status = match field("state").raw() {
            Some("booked") => Status::Confirmed,
            _ => Status::Requested,
        };
        let mut dispatch = Dispatch::new(self.0.clone(), number, ticket, status, "x");
        dispatch.note_key = NoteKey::parse(dispatch.dispatch_number.as_str()).ok();
        dispatch.client_phone = PhoneE164::parse_optional(field("contact").raw());
        dispatch.appointment = field("at")
            .raw()
            .and_then(|at| Appointment::parse_rfc3339(at, None));
        Ok(dispatch)
    }
    fn record_for(&self, spec: &DispatchSpec) -> Option<RawRecord> {
        let state = if spec.status == Status::Confirmed {
            "booked"
        } else {
            "new"
        };
        Some(serde_json::json!({
            "ref": spec.dispatch_number,
            "ticket": spec.ticket_id,
            "state": state,
            "contact": spec.client_phone,
            "at": "2031-05-01T09:00:00-04:00",
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wired_throwaway_vendor_changes_nothing_for_the_others() {
    let throwaway = VendorName::fixed("THROWAWAY");
    let mut adapters = wiring::vendor_adapters();
    let wired = adapters.len();
    adapters.push(Arc::new(Throwaway(throwaway.clone())));
    let names: Vec<VendorName> = adapters.iter().map(|a| a.name().clone()).collect();

    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::spec_world(&nats.url(), adapters.clone()).await;
    let raw = RawSettings::from_pairs([
        ("NATS_SERVER1", nats.url().as_str()),
        ("REDIS_URL", redis.url().as_str()),
        ("ENVIRONMENT_NAME", "throwaway"),
        ("MONITOR_REQUEST_TIMEOUT_SECS", "5"),
        ("MONITOR_THROWAWAY_INTERVAL_SECS", "60"),
    ]);
    let settings = Settings::from_raw(&raw, &names).unwrap();
    let effective = settings.effective();
    assert!(effective.contains(&("MONITOR_THROWAWAY_INTERVAL_SECS".into(), "60".into())));
    assert!(effective.contains(&("MONITOR_THROWAWAY_ENABLED".into(), "true".into())));

    // The simulator serves the new vendor an empty list until told otherwise: every cycle,
    // the new one included, runs; LIT and CTS do exactly what they do without it.
    let (reports, failed) = app::plan_with(&settings, adapters.clone(), &names)
        .await
        .unwrap();
    assert!(!failed);
    assert_eq!(reports.len(), wired + 1);
    let outcomes = app::once_with(&settings, adapters.clone(), &names)
        .await
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, LeasedCycle::Ran(Ok(_)))),
        "{outcomes:?}"
    );
    let outbox = sim.outbox();
    assert_eq!(outbox.sms.len(), 7);
    assert_eq!(outbox.notes.len(), 11);

    // A dispatch of the new vendor, booked by the portal, is confirmed like any other.
    let mut spec = DispatchSpec::new("T-1", "4999001");
    spec.status = Status::Confirmed;
    spec.client_phone = Some("+1 212 555 0177".into());
    sim.upsert(&throwaway, spec);
    sim.book("4999001", "T-1");
    let outcomes = app::once_with(&settings, adapters, std::slice::from_ref(&throwaway))
        .await
        .unwrap();
    assert!(
        matches!(outcomes[0], LeasedCycle::Ran(Ok(_))),
        "{outcomes:?}"
    );
    let outbox = sim.outbox();
    assert_eq!(outbox.sms.len(), 8);
    assert_eq!(outbox.sms[7].to, "12125550177");
    assert_eq!(
        outbox.sms[7].text,
        "Booked for May 01, 2031 @ 09:00 AM UTC-04:00.\n"
    );
    assert_eq!(
        outbox.notes_on("4999001"),
        [
            "#*MetTel's IPA*# T-1\nDispatch Management - Dispatch Confirmed\nAt May 01, 2031 @ 09:00 AM UTC-04:00\n",
            "#*MetTel's IPA*# T-1\nDispatch confirmation SMS sent to +12125550177\n",
        ]
    );
}
