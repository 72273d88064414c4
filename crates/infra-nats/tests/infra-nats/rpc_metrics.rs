//! The RPC metrics: a duration per request and a failure counter per subject and reason.
//! This binary installs its own global recorder, so it holds a single test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{connected_client, envelope, memory_store, responder};
use bytes::Bytes;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde_json::json;
use test_support::servers::NatsServer;

/// One recorded value: metric name, labels, value.
type Event = (String, Vec<(String, String)>, f64);

#[derive(Debug, Clone, Default)]
struct Events(Arc<Mutex<Vec<Event>>>);

impl Events {
    fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(event_name, event_labels, _)| {
                event_name == name
                    && labels.iter().all(|(key, value)| {
                        event_labels.iter().any(|(k, v)| k == key && v == value)
                    })
            })
            .map(|(_, _, value)| *value)
            .collect()
    }
}

struct Handle {
    name: String,
    labels: Vec<(String, String)>,
    events: Events,
}

impl Handle {
    fn push(&self, value: f64) {
        self.events
            .0
            .lock()
            .unwrap()
            .push((self.name.clone(), self.labels.clone(), value));
    }
}

impl metrics::CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.push(value as f64);
    }
    fn absolute(&self, value: u64) {
        self.push(value as f64);
    }
}

impl metrics::HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.push(value);
    }
}

struct TestRecorder(Events);

impl TestRecorder {
    fn handle(&self, key: &Key) -> Arc<Handle> {
        Arc::new(Handle {
            name: key.name().to_owned(),
            labels: key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect(),
            events: self.0.clone(),
        })
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle(key))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handle(key))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_record_their_duration_and_failures_by_reason() {
    let events = Events::default();
    metrics::set_global_recorder(TestRecorder(events.clone())).unwrap();

    let nats = NatsServer::new();
    let _ok = responder(&nats.url(), "m.ok", |request| async move {
        envelope(&request, 200, json!(null))
    })
    .await;
    let _bad = responder(&nats.url(), "m.bad", |request| async move {
        envelope(&request, 500, json!("no"))
    })
    .await;
    let _junk = responder(&nats.url(), "m.junk", |_| async {
        Some(Bytes::from_static(b"{"))
    })
    .await;
    let _silent = responder(&nats.url(), "m.silent", |_| async { None }).await;
    let client = connected_client(&nats, Duration::from_millis(300), memory_store()).await;

    client.call("m.ok", json!({})).await.unwrap();
    client.call("m.bad", json!({})).await.unwrap_err();
    client.call("m.junk", json!({})).await.unwrap_err();
    client.call("m.silent", json!({})).await.unwrap_err();
    client.call("m.nobody", json!({})).await.unwrap_err();

    let durations = "dispatch_monitor_rpc_duration_seconds";
    let failures = "dispatch_monitor_rpc_failures_total";
    for subject in ["m.ok", "m.bad", "m.junk", "m.silent", "m.nobody"] {
        let recorded = events.matching(durations, &[("subject", subject)]);
        assert_eq!(recorded.len(), 1, "{subject}");
        assert!(recorded[0] >= 0.0);
    }
    assert!(events.matching(failures, &[("subject", "m.ok")]).is_empty());
    for (subject, reason) in [
        ("m.bad", "rejected"),
        ("m.junk", "invalid_reply"),
        ("m.silent", "timeout"),
        ("m.nobody", "no_responders"),
    ] {
        let counted = events.matching(failures, &[("subject", subject), ("reason", reason)]);
        assert_eq!(counted, vec![1.0], "{subject} {reason}");
    }
}
