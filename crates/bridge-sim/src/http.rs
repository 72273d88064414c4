//! The simulator's own HTTP port: `GET /outbox` (JSON: notes per ticket, SMS, Slack, emails,
//! the deduplicated count), `GET /` (the same as a plain HTML page), `POST /faults` (a JSON
//! [`Fault`] or a list of them, set at once) and `DELETE /faults`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::{Fault, Outbox, SentSms, Sim};

/// What `GET /outbox` answers.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxView {
    /// The notes appended, per ticket, in order.
    pub notes: BTreeMap<String, Vec<String>>,
    /// The SMS delivered, in order.
    pub sms: Vec<SentSms>,
    /// The Slack lines.
    pub slack: Vec<String>,
    /// The emails (`email_data`).
    pub emails: Vec<serde_json::Value>,
    /// SMS answered without delivering again (same idempotency key).
    pub deduplicated: usize,
}

impl From<Outbox> for OutboxView {
    fn from(outbox: Outbox) -> Self {
        let mut notes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for note in outbox.notes {
            notes.entry(note.ticket).or_default().push(note.text);
        }
        Self {
            notes,
            sms: outbox.sms,
            slack: outbox.slack,
            emails: outbox.emails,
            deduplicated: outbox.deduplicated,
        }
    }
}

/// One fault or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Faults {
    One(Fault),
    Many(Vec<Fault>),
}

/// The router over a running simulator.
pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/outbox", get(outbox))
        .route(
            "/faults",
            axum::routing::post(add_faults).delete(clear_faults),
        )
        .with_state(sim)
}

async fn outbox(State(sim): State<Arc<Sim>>) -> Json<OutboxView> {
    Json(sim.outbox().into())
}

async fn add_faults(State(sim): State<Arc<Sim>>, body: String) -> Response {
    let faults = match serde_json::from_str::<Faults>(&body) {
        Ok(Faults::One(fault)) => vec![fault],
        Ok(Faults::Many(faults)) => faults,
        Err(error) => {
            let body = serde_json::json!({"error": format!("expected a fault or a list of faults: {error}")});
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    };
    for fault in &faults {
        sim.add_fault(fault);
    }
    let set: Vec<String> = faults.iter().map(Fault::describe).collect();
    Json(serde_json::json!({ "set": set })).into_response()
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

async fn page(State(sim): State<Arc<Sim>>) -> Html<String> {
    Html(render_page(&sim.outbox().into()))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The outbox as a plain HTML page that refreshes itself.
pub fn render_page(view: &OutboxView) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>dispatch-sim outbox</title><style>body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:60em}\
         pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap}h2{margin-top:1.5em}</style></head><body>\
         <h1>dispatch-sim outbox</h1>",
    );
    let _ = write!(
        html,
        "<p>{} SMS delivered, {} deduplicated; {} notes; {} Slack lines; {} emails. \
         JSON at <a href=\"/outbox\">/outbox</a>.</p>",
        view.sms.len(),
        view.deduplicated,
        view.notes.values().map(Vec::len).sum::<usize>(),
        view.slack.len(),
        view.emails.len()
    );
    html.push_str("<h2>SMS</h2>");
    for sms in &view.sms {
        let _ = write!(
            html,
            "<p>{} to +{}</p><pre>{}</pre>",
            sms.at.format("%H:%M:%S"),
            escape(&sms.to),
            escape(&sms.text)
        );
    }
    html.push_str("<h2>Notes</h2>");
    for (ticket, notes) in &view.notes {
        let _ = write!(html, "<h3>Ticket {}</h3>", escape(ticket));
        for note in notes {
            let _ = write!(html, "<pre>{}</pre>", escape(note));
        }
    }
    html.push_str("<h2>Slack</h2><pre>");
    for line in &view.slack {
        let _ = writeln!(html, "{}", escape(line));
    }
    html.push_str("</pre></body></html>");
    html
}
