//! The bridges: one NATS subscription per subject, each request answered as the real bridge
//! would (SPEC §3), after whatever fault the subject has. Requests are handled concurrently.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use crate::faults::Verdict;
use crate::world::{SimEvent, World};
use crate::{Shared, subjects};

/// A message longer than this many bytes travels through the large-message store (SPEC §3).
const LARGE_MESSAGE_THRESHOLD: usize = 1_048_576;
/// How long a stored reply waits for its reader.
const LARGE_MESSAGE_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Subscribes to `subject` and answers each request in its own task.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    subject: String,
) -> Result<JoinHandle<()>, async_nats::SubscribeError> {
    let mut subscription = shared.client.subscribe(subject.clone()).await?;
    Ok(tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            let shared = shared.clone();
            let subject = subject.clone();
            tokio::spawn(async move { handle(&shared, &subject, message).await });
        }
    }))
}

async fn handle(shared: &Shared, subject: &str, message: async_nats::Message) {
    let received = std::time::Instant::now();
    let Some(reply_to) = message.reply.clone() else {
        return;
    };
    let request = decode(shared, &message.payload).await;
    let (verdict, latency) = {
        let mut world = shared.lock();
        if let Some(requests) = &mut world.requests {
            requests.push((subject.to_owned(), request.clone()));
        }
        world.faults.next(subject)
    };
    let answer = match verdict {
        Verdict::Refuse(status) => envelope(&request, status, json!("simulated failure")),
        Verdict::Answer | Verdict::Silent | Verdict::Garble => act(shared, subject, &request),
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let payload = match verdict {
        Verdict::Silent => return,
        Verdict::Garble => Bytes::from_static(b"{\"request_id\": not json"),
        Verdict::Answer | Verdict::Refuse(_) => encode(shared, answer).await,
    };
    if let Err(error) = shared.client.publish(reply_to, payload).await {
        tracing::warn!(subject, %error, "could not publish the reply");
    }
    if subject == subjects::TICKET_DETAILS {
        shared.lock().details_held += received.elapsed();
    }
}

/// The request's JSON, read from the store when it was stored; null when unreadable.
async fn decode(shared: &Shared, payload: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    if value.get("is_stored") != Some(&Value::Bool(true)) {
        return value;
    }
    let (Some(store), Some(token)) = (&shared.store, value["token"].as_str()) else {
        return Value::Null;
    };
    match store.take(token).await {
        Ok(Some(json)) => serde_json::from_str(&json).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// The reply's bytes, stored when large and a store is configured.
async fn encode(shared: &Shared, answer: Value) -> Bytes {
    let json = answer.to_string();
    if json.len() <= LARGE_MESSAGE_THRESHOLD {
        return Bytes::from(json);
    }
    let Some(store) = &shared.store else {
        tracing::warn!(
            bytes = json.len(),
            "a large reply without a store; NATS may refuse it"
        );
        return Bytes::from(json);
    };
    let token = uuid::Uuid::new_v4().simple().to_string();
    match store.put(&token, &json, LARGE_MESSAGE_TTL).await {
        Ok(()) => Bytes::from(json!({"token": token, "is_stored": true}).to_string()),
        Err(error) => {
            tracing::warn!(%error, "could not store a large reply");
            Bytes::from(envelope(&Value::Null, 503, json!("store unavailable")).to_string())
        }
    }
}

fn envelope(request: &Value, status: u16, body: Value) -> Value {
    json!({"request_id": request["request_id"], "status": status, "body": body})
}

fn flat(request: &Value, status: u16) -> Value {
    json!({"request_id": request["request_id"], "status": status})
}

/// Acts on one request and returns the reply envelope.
fn act(shared: &Shared, subject: &str, request: &Value) -> Value {
    let body = &request["body"];
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let now = Utc::now();
    let mut world = shared.lock();
    let (reply, event) = match subject {
        subjects::TICKET_DETAILS => {
            let details = world.ticket_details(&text(&body["ticket_id"]));
            (envelope(request, 200, details), None)
        }
        subjects::NOTE_APPEND => {
            let (ticket, note) = (text(&body["ticket_id"]), text(&body["note"]));
            match world.append_note(&ticket, &note, body["is_private"].as_bool(), now) {
                Ok(()) => {
                    let event = SimEvent::Note { ticket, text: note };
                    (envelope(request, 200, json!("Note appended")), Some(event))
                }
                Err(why) => (envelope(request, 400, json!(why)), None),
            }
        }
        subjects::SMS => {
            let (to, sms) = (text(&body["sms_to"]), text(&body["sms_data"]));
            let delivered = world.deliver_sms(&to, &sms, body["idempotency_key"].as_str(), now);
            let event = SimEvent::Sms {
                to,
                text: sms,
                deduplicated: !delivered,
            };
            (envelope(request, 200, json!("SMS sent")), Some(event))
        }
        subjects::SLACK => {
            let line = text(&request["message"]);
            world.outbox.slack.push(line.clone());
            (flat(request, 200), Some(SimEvent::Slack { line }))
        }
        subjects::EMAIL => {
            let email = request["email_data"].clone();
            let event = SimEvent::Email {
                subject: text(&email["subject"]),
                recipients: text(&email["recipient"]),
            };
            world.outbox.emails.push(email);
            (flat(request, 200), Some(event))
        }
        list => list_reply(&world, list, request),
    };
    drop(world);
    if let Some(event) = event {
        shared.emit(event);
    }
    reply
}

fn list_reply(world: &World, subject: &str, request: &Value) -> (Value, Option<SimEvent>) {
    match world.vendor_of_subject(subject) {
        Some(vendor) => (envelope(request, 200, World::list_body(vendor)), None),
        None => {
            let why = Map::from_iter([("error".to_owned(), json!("unknown subject"))]);
            (envelope(request, 404, Value::Object(why)), None)
        }
    }
}
