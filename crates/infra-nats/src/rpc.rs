//! The request/reply envelope (SPEC §3): `{"request_id", "body"}` out, `{"request_id",
//! "status", "body"}` back, large messages through the store, metrics and logs per request.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use async_nats::{Request, RequestError, RequestErrorKind};
use bytes::Bytes;
use domain::ports::PortError;
use domain::telemetry;
use memchr::memmem;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{ConnectionState, NatsClient};

/// A message whose compact JSON is longer than this many bytes travels through the store.
pub const LARGE_MESSAGE_THRESHOLD: usize = 1_048_576;
/// How long a stored request waits in the store for its receiver.
pub const LARGE_MESSAGE_TTL: Duration = Duration::from_secs(300);
/// The key only a stored-message reply has: a reply without it is not read twice.
static STORED_FLAG: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\"is_stored\""));
/// The longest reply detail kept in a rejection.
const MAX_DETAIL_CHARS: usize = 500;

/// A reply envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The request id the reply carries, when it carries one.
    pub request_id: Option<String>,
    /// The status; `200 <= status < 300` is success.
    pub status: u16,
    /// The reply's body; null when absent.
    pub body: Value,
}

impl Reply {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body of a 2xx reply, else `PortError::Rejected` with the status and what the body
    /// said.
    pub fn into_body(self) -> Result<Value, PortError> {
        if self.is_success() {
            Ok(self.body)
        } else {
            Err(PortError::Rejected {
                status: self.status,
                detail: detail(&self.body),
            })
        }
    }
}

/// A reply envelope whose body is still JSON text, so that a large body (a vendor list) is
/// never one JSON tree; [`Reply`] is this with the body read.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// The request id the reply carries, when it carries one.
    pub request_id: Option<String>,
    /// The status; `200 <= status < 300` is success.
    pub status: u16,
    /// The reply's body as JSON text; `None` when absent.
    pub body: Option<Box<RawValue>>,
}

impl RawReply {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body of a 2xx reply as JSON text (`null` when absent), else `PortError::Rejected`
    /// as [`Reply::into_body`] says.
    pub fn into_raw_body(self) -> Result<Box<RawValue>, PortError> {
        if self.is_success() {
            Ok(self.body.unwrap_or_else(null_body))
        } else {
            Err(PortError::Rejected {
                status: self.status,
                detail: raw_detail(self.body.as_deref()),
            })
        }
    }
}

impl TryFrom<RawReply> for Reply {
    type Error = RpcFailure;

    /// Reads the body. Well-formed JSON text may still hold what no JSON value can, such as
    /// the number `1e400`: such a reply is unparseable (found by the `nats_reply` fuzz target;
    /// it used to read as a null body).
    fn try_from(raw: RawReply) -> Result<Self, RpcFailure> {
        let body = match raw.body {
            Some(body) => serde_json::from_str(body.get()).map_err(|error| {
                RpcFailure::InvalidReply(format!("the body cannot be read: {error}"))
            })?,
            None => Value::Null,
        };
        Ok(Reply {
            request_id: raw.request_id,
            status: raw.status,
            body,
        })
    }
}

fn null_body() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
}

/// Why a request got no usable reply. Each one counts as status 503 (SPEC §3).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcFailure {
    /// The connection was not up when the request was to be sent; it was not sent.
    #[error("not connected to NATS ({0})")]
    Disconnected(ConnectionState),
    /// The connection dropped while the request waited for its reply.
    #[error("the NATS connection dropped while waiting for the reply")]
    ConnectionLost,
    /// Nobody replied in time.
    #[error("no reply within {0:?}")]
    TimedOut(Duration),
    /// Nobody listens on the subject.
    #[error("no responders on the subject")]
    NoResponders,
    /// The reply could not be read.
    #[error("unparseable reply: {0}")]
    InvalidReply(String),
    /// A large message could not be stored or fetched.
    #[error("large-message store: {0}")]
    LargeMessage(PortError),
    /// The request could not be sent.
    #[error("request failed: {0}")]
    Transport(String),
}

impl RpcFailure {
    /// The status the failure counts as.
    pub fn status(&self) -> u16 {
        503
    }

    /// A short label for metrics and logs, e.g. `timeout`.
    pub fn reason(&self) -> &'static str {
        match self {
            RpcFailure::Disconnected(_) => "disconnected",
            RpcFailure::ConnectionLost => "connection_lost",
            RpcFailure::TimedOut(_) => "timeout",
            RpcFailure::NoResponders => "no_responders",
            RpcFailure::InvalidReply(_) => "invalid_reply",
            RpcFailure::LargeMessage(_) => "large_message_store",
            RpcFailure::Transport(_) => "transport",
        }
    }

    /// Whether the request may have reached its service: it was sent, and no usable reply
    /// came (a timeout, the connection lost while waiting, a reply that cannot be read).
    pub fn may_have_been_acted_on(&self) -> bool {
        matches!(
            self,
            RpcFailure::TimedOut(_) | RpcFailure::ConnectionLost | RpcFailure::InvalidReply(_)
        )
    }

    /// The port error naming the subject: `Uncertain` when the request may have been acted
    /// on, `Unavailable` when it surely was not.
    pub fn into_port_error(self, subject: &str) -> PortError {
        let message = format!("{subject}: {self} (status {})", self.status());
        if self.may_have_been_acted_on() {
            PortError::Uncertain(message)
        } else {
            PortError::Unavailable(message)
        }
    }

    fn from_request_error(error: &RequestError, timeout: Duration) -> Self {
        match error.kind() {
            RequestErrorKind::TimedOut => RpcFailure::TimedOut(timeout),
            RequestErrorKind::NoResponders => RpcFailure::NoResponders,
            _ => RpcFailure::Transport(error.to_string()),
        }
    }
}

impl NatsClient {
    /// Sends `{"request_id": <new uuid>, "body": body}` and returns the reply envelope,
    /// whatever its status.
    pub async fn request(&self, subject: &str, body: Value) -> Result<Reply, RpcFailure> {
        self.request_raw(subject, body)
            .await
            .and_then(Reply::try_from)
    }

    /// [`request`](Self::request), with the reply's body left as JSON text.
    pub async fn request_raw(&self, subject: &str, body: Value) -> Result<RawReply, RpcFailure> {
        let mut payload = Map::new();
        payload.insert("body".into(), body);
        self.round_trip(subject, payload).await
    }

    /// Sends `{"request_id": <new uuid>, ...fields}`, for the subjects whose requests have no
    /// `body` (Slack, email), and returns the reply envelope.
    pub async fn request_flat(
        &self,
        subject: &str,
        fields: Map<String, Value>,
    ) -> Result<Reply, RpcFailure> {
        self.round_trip(subject, fields)
            .await
            .and_then(Reply::try_from)
    }

    /// [`request`](Self::request), then the body of a 2xx reply. Non-2xx replies are
    /// `Rejected`; requests that got no usable reply are `Unavailable`.
    pub async fn call(&self, subject: &str, body: Value) -> Result<Value, PortError> {
        self.request(subject, body)
            .await
            .map_err(|failure| failure.into_port_error(subject))?
            .into_body()
    }

    /// [`call`](Self::call) with the body left as JSON text, for large bodies (vendor lists)
    /// that are read piece by piece.
    pub async fn call_raw(&self, subject: &str, body: Value) -> Result<Box<RawValue>, PortError> {
        self.request_raw(subject, body)
            .await
            .map_err(|failure| failure.into_port_error(subject))?
            .into_raw_body()
    }

    /// [`request_flat`](Self::request_flat), then `Ok` for a 2xx reply.
    pub async fn call_flat(
        &self,
        subject: &str,
        fields: Map<String, Value>,
    ) -> Result<(), PortError> {
        self.request_flat(subject, fields)
            .await
            .map_err(|failure| failure.into_port_error(subject))?
            .into_body()
            .map(drop)
    }

    async fn round_trip(
        &self,
        subject: &str,
        mut payload: Map<String, Value>,
    ) -> Result<RawReply, RpcFailure> {
        let request_id = uuid::Uuid::new_v4().to_string();
        payload.insert("request_id".into(), Value::String(request_id.clone()));
        let started = Instant::now();
        let outcome = match self.exchange(subject, &Value::Object(payload)).await {
            Ok(json) => parse_reply(json.as_ref()),
            Err(failure) => Err(failure),
        };
        let elapsed = started.elapsed();
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        metrics::histogram!(telemetry::RPC_DURATION, "subject" => subject.to_owned())
            .record(elapsed.as_secs_f64());
        match &outcome {
            Ok(reply) if reply.is_success() => {
                if reply
                    .request_id
                    .as_deref()
                    .is_some_and(|id| id != request_id)
                {
                    tracing::debug!(subject, request_id, reply_id = ?reply.request_id, "reply carries another request id");
                }
                tracing::debug!(
                    subject,
                    request_id,
                    status = reply.status,
                    elapsed_ms,
                    "NATS request answered"
                );
            }
            Ok(reply) => {
                count_failure(subject, "rejected");
                tracing::warn!(
                    subject,
                    request_id,
                    status = reply.status,
                    elapsed_ms,
                    detail = %raw_detail(reply.body.as_deref()),
                    "NATS request rejected"
                );
            }
            Err(failure) => {
                count_failure(subject, failure.reason());
                tracing::warn!(
                    subject,
                    request_id,
                    reason = failure.reason(),
                    error = %failure,
                    elapsed_ms,
                    "NATS request failed; counted as status 503"
                );
            }
        }
        outcome
    }

    /// Sends the payload (through the store when large) and returns the reply's JSON text
    /// (fetched from the store when the reply was stored).
    async fn exchange(&self, subject: &str, payload: &Value) -> Result<ReplyJson, RpcFailure> {
        // A request sent while disconnected would only wait out the whole timeout.
        let state = self.connection_state();
        if state != ConnectionState::Connected {
            return Err(RpcFailure::Disconnected(state));
        }
        let json = serde_json::to_string(payload).map_err(|error| {
            RpcFailure::Transport(format!("cannot encode the request: {error}"))
        })?;
        let bytes = if json.len() > LARGE_MESSAGE_THRESHOLD {
            let token = uuid::Uuid::new_v4().simple().to_string();
            self.inner
                .store
                .put(&token, &json, LARGE_MESSAGE_TTL)
                .await
                .map_err(RpcFailure::LargeMessage)?;
            tracing::debug!(
                subject,
                token,
                bytes = json.len(),
                "request stored as a large message"
            );
            json!({"token": token, "is_stored": true}).to_string()
        } else {
            json
        };

        let timeout = self.inner.request_timeout;
        let mut disconnections = self.inner.disconnections.clone();
        disconnections.borrow_and_update();
        let request = Request::new()
            .payload(Bytes::from(bytes))
            .timeout(Some(timeout));
        let message = tokio::select! {
            reply = self.inner.client.send_request(subject.to_owned(), request) => {
                reply.map_err(|error| RpcFailure::from_request_error(&error, timeout))?
            }
            () = next_disconnection(&mut disconnections) => return Err(RpcFailure::ConnectionLost),
        };

        match stored_reply_token(&message.payload)? {
            None => Ok(ReplyJson::Message(message.payload)),
            Some(token) => self.take_stored(&token).await.map(ReplyJson::Stored),
        }
    }

    /// Reads and deletes a stored reply.
    async fn take_stored(&self, token: &str) -> Result<String, RpcFailure> {
        let json = self
            .inner
            .store
            .take(token)
            .await
            .map_err(RpcFailure::LargeMessage)?
            .ok_or_else(|| {
                RpcFailure::InvalidReply(format!("the stored reply {token} is not in the store"))
            })?;
        if let Err(error) = serde_json::from_str::<IgnoredAny>(&json) {
            return Err(RpcFailure::InvalidReply(format!(
                "the stored reply {token} is not JSON: {error}"
            )));
        }
        Ok(json)
    }
}

/// A reply's JSON text: the message itself, or the stored message it pointed to.
enum ReplyJson {
    Message(Bytes),
    Stored(String),
}

impl AsRef<[u8]> for ReplyJson {
    fn as_ref(&self) -> &[u8] {
        match self {
            ReplyJson::Message(bytes) => bytes,
            ReplyJson::Stored(text) => text.as_bytes(),
        }
    }
}

/// A reply's top-level fields, each still JSON text; an error when the reply is not JSON or
/// not an object. (A non-object reply reads as no fields here; [`parse_reply`] refuses it.)
fn top_level_fields(json: &[u8]) -> Result<BTreeMap<String, &RawValue>, RpcFailure> {
    match serde_json::from_slice::<BTreeMap<String, &RawValue>>(json) {
        Ok(fields) => Ok(fields),
        Err(error) => match serde_json::from_slice::<IgnoredAny>(json) {
            Ok(_) => Ok(BTreeMap::new()),
            Err(_) => Err(RpcFailure::InvalidReply(format!("not JSON: {error}"))),
        },
    }
}

/// Resolves at the next disconnection; never when the connection's watcher is gone.
async fn next_disconnection(disconnections: &mut watch::Receiver<u64>) {
    if disconnections.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The token of a reply that points to a stored message (`{"token": "...", "is_stored":
/// true}`); `None` for a reply to read as it is.
pub fn stored_reply_token(payload: &[u8]) -> Result<Option<String>, RpcFailure> {
    if STORED_FLAG.find(payload).is_none() {
        return Ok(None);
    }
    stored_token(&top_level_fields(payload)?)
}

/// The token of a stored message `{"token": "...", "is_stored": true}`, if it is one.
fn stored_token(fields: &BTreeMap<String, &RawValue>) -> Result<Option<String>, RpcFailure> {
    if fields.get("is_stored").map(|flag| flag.get().trim()) != Some("true") {
        return Ok(None);
    }
    match fields
        .get("token")
        .map(|token| serde_json::from_str::<Value>(token.get()))
    {
        Some(Ok(Value::String(token))) if !token.is_empty() => Ok(Some(token)),
        _ => Err(RpcFailure::InvalidReply(
            "a stored reply without a token".into(),
        )),
    }
}

/// Reads `{"request_id", "status", "body"}`, the body left as JSON text.
pub fn parse_reply(json: &[u8]) -> Result<RawReply, RpcFailure> {
    let not_object = || RpcFailure::InvalidReply("the reply is not a JSON object".into());
    if json.trim_ascii_start().first() != Some(&b'{') {
        return Err(not_object());
    }
    /// The envelope's fields, still JSON text; any others are skipped.
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow, default)]
        status: Option<&'a RawValue>,
        #[serde(borrow, default)]
        request_id: Option<&'a RawValue>,
        #[serde(borrow, default)]
        body: Option<&'a RawValue>,
    }
    let envelope: Envelope<'_> = match serde_json::from_slice(json) {
        Ok(envelope) => envelope,
        // A repeated field, or not JSON at all: read it field by field instead.
        Err(_) => {
            let mut fields = top_level_fields(json)?;
            Envelope {
                status: fields.remove("status"),
                request_id: fields.remove("request_id"),
                body: fields.remove("body"),
            }
        }
    };
    let field =
        |raw: Option<&RawValue>| raw.and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
    let status = match field(envelope.status) {
        Some(Value::Number(number)) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
        _ => None,
    }
    .ok_or_else(|| RpcFailure::InvalidReply("the reply has no integer status".into()))?;
    let request_id = match field(envelope.request_id) {
        Some(Value::String(id)) => Some(id),
        _ => None,
    };
    let body = envelope.body.map(ToOwned::to_owned);
    Ok(RawReply {
        request_id,
        status,
        body,
    })
}

/// [`detail`] of a body given as JSON text.
fn raw_detail(body: Option<&RawValue>) -> String {
    let body = body
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or(Value::Null);
    detail(&body)
}

/// What a failure reply's body says, shortened for alerts.
fn detail(body: &Value) -> String {
    let text = match body {
        Value::Null => return "no detail".into(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= MAX_DETAIL_CHARS {
        text
    } else {
        let mut short: String = text.chars().take(MAX_DETAIL_CHARS).collect();
        short.push('…');
        short
    }
}

fn count_failure(subject: &str, reason: &'static str) {
    metrics::counter!(telemetry::RPC_FAILURES, "subject" => subject.to_owned(), "reason" => reason)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: Value) -> Result<RawReply, RpcFailure> {
        parse_reply(value.to_string().as_bytes())
    }

    #[test]
    fn replies_parse_with_or_without_body() {
        let reply = parse(json!({"request_id": "r1", "status": 200, "body": {"a": 1}})).unwrap();
        assert_eq!(reply.request_id.as_deref(), Some("r1"));
        assert!(reply.is_success());
        assert_eq!(reply.clone().into_raw_body().unwrap().get(), r#"{"a":1}"#);
        assert_eq!(
            Reply::try_from(reply).unwrap().into_body().unwrap(),
            json!({"a": 1})
        );

        let reply = parse(json!({"request_id": "r2", "status": 204})).unwrap();
        assert!(reply.body.is_none());
        assert_eq!(reply.clone().into_raw_body().unwrap().get(), "null");
        assert_eq!(Reply::try_from(reply).unwrap().body, Value::Null);
        assert!(!parse(json!({"status": 300})).unwrap().is_success());
        // As with any JSON object read here, a repeated field keeps its last value.
        let repeated = parse_reply(br#"{"status": 500, "body": 1, "status": 200}"#).unwrap();
        assert!(repeated.is_success());
        assert_eq!(repeated.into_raw_body().unwrap().get(), "1");
        assert!(!parse(json!({"status": 199})).unwrap().is_success());
    }

    #[test]
    fn a_body_no_json_value_can_hold_is_an_unparseable_reply() {
        // Found by the `nats_reply` fuzz target: it read as a null body.
        let reply = parse_reply(br#"{"status": 200, "body": {"n": 1e400}}"#).unwrap();
        assert_eq!(
            reply.clone().into_raw_body().unwrap().get(),
            r#"{"n": 1e400}"#
        );
        assert!(matches!(
            Reply::try_from(reply),
            Err(RpcFailure::InvalidReply(_))
        ));
    }

    #[test]
    fn replies_without_an_integer_status_are_unparseable() {
        for value in [
            json!({"body": 1}),
            json!({"status": "200"}),
            json!({"status": 2.5}),
            json!([1]),
        ] {
            assert!(matches!(parse(value), Err(RpcFailure::InvalidReply(_))));
        }
        assert!(matches!(
            parse(json!({"status": 70000})),
            Err(RpcFailure::InvalidReply(_))
        ));
        assert!(matches!(
            parse_reply(b"{not json"),
            Err(RpcFailure::InvalidReply(_))
        ));
    }

    #[test]
    fn failed_replies_become_rejections_with_a_short_detail() {
        let reply = Reply {
            request_id: None,
            status: 500,
            body: json!("Bruin is down"),
        };
        assert_eq!(
            reply.into_body(),
            Err(PortError::Rejected {
                status: 500,
                detail: "Bruin is down".into()
            })
        );
        let long = Reply {
            request_id: None,
            status: 400,
            body: json!("x".repeat(2_000)),
        };
        let Err(PortError::Rejected { detail, .. }) = long.into_body() else {
            panic!()
        };
        assert_eq!(detail.chars().count(), MAX_DETAIL_CHARS + 1);
        assert_eq!(super::detail(&Value::Null), "no detail");
        assert_eq!(
            super::detail(&json!({"error": "bad"})),
            r#"{"error":"bad"}"#
        );
    }

    #[test]
    fn stored_messages_are_recognised_by_their_flag() {
        let token = |value: Value| stored_token(&top_level_fields(value.to_string().as_bytes())?);
        assert_eq!(
            token(json!({"token": "t", "is_stored": true})).unwrap(),
            Some("t".to_owned())
        );
        assert_eq!(
            token(json!({"token": "t", "is_stored": false})).unwrap(),
            None
        );
        assert_eq!(token(json!({"status": 200})).unwrap(), None);
        assert_eq!(token(json!([true])).unwrap(), None);
        assert!(token(json!({"is_stored": true})).is_err());
        assert!(token(json!({"is_stored": true, "token": ""})).is_err());
    }

    #[test]
    fn failures_count_as_503_and_say_whether_the_request_may_have_been_acted_on() {
        let error =
            RpcFailure::TimedOut(Duration::from_secs(60)).into_port_error("lit.dispatch.get");
        let PortError::Uncertain(message) = error else {
            panic!("{error:?}")
        };
        assert!(message.contains("lit.dispatch.get"), "{message}");
        assert!(message.contains("503"), "{message}");
        for sent in [
            RpcFailure::ConnectionLost,
            RpcFailure::InvalidReply("x".into()),
        ] {
            assert!(matches!(sent.into_port_error("s"), PortError::Uncertain(_)));
        }
        for unsent in [
            RpcFailure::NoResponders,
            RpcFailure::Disconnected(ConnectionState::Disconnected),
            RpcFailure::Transport("x".into()),
        ] {
            assert!(matches!(
                unsent.into_port_error("s"),
                PortError::Unavailable(_)
            ));
        }
        assert_eq!(RpcFailure::NoResponders.reason(), "no_responders");
    }
}
