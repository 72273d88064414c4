//! End-to-end test kit: simulated bridge services (LIT, CTS, Bruin, notifier) answering on a
//! real NATS server, a raw Redis client to inspect keys, and a raw HTTP GET. The tests in
//! `tests/` drive the monitor's real wiring against real `nats-server` and `redis-server`.
//!
//! Test-only: nothing in production may depend on this crate.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_debug_implementations
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the simulated bridges hold and received.
#[derive(Debug, Default)]
pub struct BridgeState {
    /// Each vendor subject's list reply body.
    pub lists: BTreeMap<String, Value>,
    /// Ticket id → notes (Bruin note JSON).
    pub notes: BTreeMap<String, Vec<Value>>,
    /// Every SMS request body that was accepted.
    pub sms: Vec<Value>,
    /// Every note append request body that was accepted.
    pub appended: Vec<Value>,
    /// Every Slack request.
    pub slack: Vec<Value>,
    /// Every email request.
    pub emails: Vec<Value>,
    /// Ticket-details requests by ticket id.
    pub details_requests: BTreeMap<String, usize>,
    /// When set, SMS requests are answered with status 500 and not recorded.
    pub fail_sms: bool,
    /// Whole request envelopes, per subject, for wire-format checks.
    pub envelopes: Vec<(String, Value)>,
}

/// The simulated bridges; they stop when dropped.
pub struct Bridges {
    state: Arc<Mutex<BridgeState>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The subjects the bridges answer.
pub const SUBJECTS: [&str; 7] = [
    "lit.dispatch.get",
    "cts.dispatch.get",
    "bruin.ticket.details.request",
    "bruin.ticket.note.append.request",
    "notification.sms.request",
    "notification.slack.request",
    "notification.email.request",
];

impl Bridges {
    /// Connects to `nats_url` and answers every subject.
    pub async fn start(nats_url: &str) -> Self {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(nats_url)
            .await
            .expect("the bridges connect");
        let state = Arc::new(Mutex::new(BridgeState::default()));
        let mut tasks = Vec::new();
        for subject in SUBJECTS {
            let mut subscription = client.subscribe(subject).await.expect("subscribe");
            let client = client.clone();
            let state = state.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(message) = subscription.next().await {
                    let Some(reply) = message.reply.clone() else {
                        continue;
                    };
                    let request: Value =
                        serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
                    let answer = answer(&state, subject, &request);
                    let _ = client.publish(reply, answer.to_string().into()).await;
                }
            }));
        }
        client.flush().await.expect("flush");
        Self { state, tasks }
    }

    /// The shared state.
    pub fn state(&self) -> MutexGuard<'_, BridgeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves the SPEC fixture lists, and writes the portal's Dispatch Requested notes for the
    /// dispatches of those lists that are ours: LIT DIS37405-DIS37407 and CTS IGZ_0001-IGZ_0003.
    /// DIS37409's ticket only has a note for another dispatch (DIS374090).
    pub fn serve_spec_fixtures(&self) {
        {
            let mut state = self.state();
            let lists = [
                ("lit.dispatch.get", "lit-dispatch-list.json"),
                ("cts.dispatch.get", "cts-dispatch-list.json"),
            ];
            for (subject, fixture) in lists {
                state
                    .lists
                    .insert(subject.into(), test_support::fixtures::json(fixture));
            }
        }
        for (ticket, key) in [
            ("3544800", "DIS37405"),
            ("3544801", "DIS37406"),
            ("3544802", "DIS37407"),
            ("4694961", "IGZ_0001"),
            ("4694962", "IGZ_0002"),
            ("4694963", "IGZ_0003"),
            ("3544803", "DIS374090"),
        ] {
            self.seed_note(
                ticket,
                &format!(
                    "#*MetTel's IPA*# {key}\nDispatch Management - Dispatch Requested\n\n\
                     Please see the summary below."
                ),
            );
        }
    }

    /// Adds a note to a ticket, as the portal would.
    pub fn seed_note(&self, ticket: &str, text: &str) {
        let mut state = self.state();
        let id = 1000 + state.notes.values().map(Vec::len).sum::<usize>();
        state
            .notes
            .entry(ticket.to_owned())
            .or_default()
            .push(json!({
                "noteId": id,
                "noteValue": text,
                "serviceNumber": [ticket],
                "createdDate": "2020-03-01T10:00:00-05:00",
                "creator": null,
            }));
    }
}

impl Drop for Bridges {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn answer(state: &Mutex<BridgeState>, subject: &str, request: &Value) -> Value {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    state.envelopes.push((subject.to_owned(), request.clone()));
    let id = request["request_id"].clone();
    let ok = |body: Value| json!({"request_id": id, "status": 200, "body": body});
    let body = &request["body"];
    match subject {
        "lit.dispatch.get" | "cts.dispatch.get" => match state.lists.get(subject) {
            Some(list) => ok(list.clone()),
            None => json!({"request_id": id, "status": 500, "body": "no list"}),
        },
        "bruin.ticket.details.request" => {
            let ticket = body["ticket_id"].as_str().unwrap_or_default().to_owned();
            *state.details_requests.entry(ticket.clone()).or_default() += 1;
            let notes = state.notes.get(&ticket).cloned().unwrap_or_default();
            ok(
                json!({"ticketDetails": [{"detailID": 1, "detailValue": ticket}], "ticketNotes": notes}),
            )
        }
        "bruin.ticket.note.append.request" => {
            let ticket = body["ticket_id"].as_str().unwrap_or_default().to_owned();
            let text = body["note"].clone();
            let count = state.notes.values().map(Vec::len).sum::<usize>();
            state.notes.entry(ticket.clone()).or_default().push(json!({
                "noteId": 5000 + count,
                "noteValue": text,
                "serviceNumber": [ticket],
                "createdDate": "2020-03-02T10:00:00-05:00",
                "creator": null,
            }));
            state.appended.push(body.clone());
            ok(json!("Note appended"))
        }
        "notification.sms.request" => {
            if state.fail_sms {
                return json!({"request_id": id, "status": 500, "body": "SMS gateway down"});
            }
            state.sms.push(body.clone());
            ok(json!("SMS sent"))
        }
        "notification.slack.request" => {
            state.slack.push(request.clone());
            json!({"request_id": id, "status": 200})
        }
        "notification.email.request" => {
            state.emails.push(request.clone());
            json!({"request_id": id, "status": 200})
        }
        _ => json!({"request_id": id, "status": 404}),
    }
}

/// Sends one command to Redis over RESP and returns the reply as text (integers and bulk
/// strings as their value, nil as `(nil)`, arrays as lines).
pub async fn redis(url: &str, args: &[&str]) -> String {
    let address = url.trim_start_matches("redis://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("redis reachable");
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(command.as_bytes()).await.unwrap();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = stream.read(&mut chunk).await.unwrap();
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(text) = parse_resp(&buffer) {
            return text;
        }
        if read == 0 {
            panic!("redis closed the connection");
        }
    }
}

fn parse_resp(buffer: &[u8]) -> Option<String> {
    fn one(data: &[u8]) -> Option<(String, usize)> {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&data[1..end]).ok()?;
        match data.first()? {
            b'+' | b'-' | b':' => Some((line.to_owned(), end + 2)),
            b'$' => {
                let len: i64 = line.parse().ok()?;
                if len < 0 {
                    return Some(("(nil)".into(), end + 2));
                }
                let start = end + 2;
                let stop = start + len as usize;
                if data.len() < stop + 2 {
                    return None;
                }
                Some((
                    String::from_utf8_lossy(&data[start..stop]).into_owned(),
                    stop + 2,
                ))
            }
            b'*' => {
                let count: i64 = line.parse().ok()?;
                let mut offset = end + 2;
                let mut items = Vec::new();
                for _ in 0..count.max(0) {
                    let (item, used) = one(&data[offset..])?;
                    items.push(item);
                    offset += used;
                }
                Some((items.join("\n"), offset))
            }
            _ => None,
        }
    }
    one(buffer).map(|(text, _)| text)
}

/// A plain HTTP/1.1 GET on loopback; returns the status code and body.
pub async fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("http up");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
