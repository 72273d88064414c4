//! The domain ports over the NATS bridges: dispatch lists, Bruin notes, and notifications.

use async_trait::async_trait;
use domain::ports::{DispatchSource, Email, Notifier, PortError, TicketRepository};
use domain::{ListBody, PhoneE164, RawTicketNote, TicketId, VendorName};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::NatsClient;
use crate::subjects;

/// Fetches a vendor's dispatch list from `{vendor}.dispatch.get`.
#[derive(Debug, Clone)]
pub struct NatsDispatchSource {
    client: NatsClient,
}

impl NatsDispatchSource {
    pub(crate) fn new(client: NatsClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl DispatchSource for NatsDispatchSource {
    async fn fetch_dispatches(&self, vendor: &VendorName) -> Result<ListBody, PortError> {
        self.client
            .call_raw(&subjects::dispatch_list(vendor), json!({}))
            .await
    }
}

/// Reads and appends Bruin ticket notes through the Bruin bridge.
#[derive(Debug, Clone)]
pub struct NatsTicketRepository {
    client: NatsClient,
}

impl NatsTicketRepository {
    pub(crate) fn new(client: NatsClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl TicketRepository for NatsTicketRepository {
    async fn ticket_notes(&self, ticket: &TicketId) -> Result<Vec<RawTicketNote>, PortError> {
        let body = self
            .client
            .call_raw(
                subjects::TICKET_DETAILS,
                json!({"ticket_id": ticket.as_str()}),
            )
            .await?;
        parse_ticket_notes(&body)
    }

    async fn append_note(&self, ticket: &TicketId, note: &str) -> Result<(), PortError> {
        self.client
            .call(
                subjects::TICKET_NOTE_APPEND,
                json!({"ticket_id": ticket.as_str(), "note": note, "is_private": false}),
            )
            .await
            .map(drop)
    }
}

/// Reads `ticketNotes` from a ticket-details body. A note that is not an object makes the whole
/// body malformed: silently dropping a note could repeat the action it records. A field of an
/// odd type inside a note reads as absent (see `RawTicketNote`).
pub fn parse_ticket_notes(body: &RawValue) -> Result<Vec<RawTicketNote>, PortError> {
    // The notes are read straight into their fields; everything else in the details is
    // skipped without being built as JSON values.
    #[derive(serde::Deserialize)]
    struct TicketDetails {
        /// `None` when the key is missing, `Some(None)` when it is null.
        #[serde(rename = "ticketNotes", default, deserialize_with = "present")]
        notes: Option<Option<Vec<RawTicketNote>>>,
    }
    fn present<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<Vec<RawTicketNote>>>, D::Error> {
        serde::Deserialize::deserialize(deserializer).map(Some)
    }

    if !body.get().starts_with('{') {
        return Err(PortError::Malformed(
            "ticket details are not a JSON object".into(),
        ));
    }
    let details: TicketDetails = serde_json::from_str(body.get())
        .map_err(|error| PortError::Malformed(format!("ticket details cannot be read: {error}")))?;
    match details.notes {
        None => Err(PortError::Malformed(
            "ticket details have no ticketNotes".into(),
        )),
        // A ticket without notes.
        Some(notes) => Ok(notes.unwrap_or_default()),
    }
}

/// Sends SMS, Slack alerts and emails through the notifier bridge.
#[derive(Debug, Clone)]
pub struct NatsNotifier {
    client: NatsClient,
}

impl NatsNotifier {
    pub(crate) fn new(client: NatsClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Notifier for NatsNotifier {
    async fn send_sms(
        &self,
        to: &PhoneE164,
        text: &str,
        idempotency_key: &str,
    ) -> Result<(), PortError> {
        let body = json!({
            "sms_to": to.digits(),
            "sms_data": text,
            "idempotency_key": idempotency_key,
        });
        self.client.call(subjects::SMS, body).await.map(drop)
    }

    async fn post_slack(&self, message: &str) -> Result<(), PortError> {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String(message.to_owned()));
        self.client.call_flat(subjects::SLACK, fields).await
    }

    async fn send_email(&self, email: &Email) -> Result<(), PortError> {
        let mut fields = Map::new();
        fields.insert(
            "email_data".into(),
            json!({
                "subject": email.subject,
                "recipient": email.recipients,
                "text": email.text,
                "html": text_to_html(&email.text),
                "images": [],
                "attachments": [],
            }),
        );
        self.client.call_flat(subjects::EMAIL, fields).await
    }
}

/// The plain text as HTML: escaped, one `<br>` per line break.
fn text_to_html(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + 16);
    for (index, line) in text.lines().enumerate() {
        if index > 0 {
            html.push_str("<br>\n");
        }
        for c in line.chars() {
            match c {
                '&' => html.push_str("&amp;"),
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                '"' => html.push_str("&quot;"),
                '\'' => html.push_str("&#39;"),
                other => html.push(other),
            }
        }
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(body: &Value) -> Box<RawValue> {
        domain::list_body_of(body)
    }

    #[test]
    fn ticket_notes_are_read_from_the_details_body() {
        let body = json!({
            "ticketDetails": [{"detailID": 1}],
            "ticketNotes": [
                {"noteId": 41, "noteValue": "#*MetTel's IPA*# DIS1", "serviceNumber": ["S1"],
                 "createdDate": "2020-05-28T06:05:54.987-04:00", "creator": null},
                {"noteId": 42, "noteValue": null, "createdDate": null},
                {}
            ]
        });
        let notes = parse_ticket_notes(&raw(&body)).unwrap();
        assert_eq!(notes.len(), 3);
        assert_eq!(notes[0].note_id, Some(41));
        assert_eq!(
            notes[0].note_value.as_deref(),
            Some("#*MetTel's IPA*# DIS1")
        );
        assert_eq!(
            notes[0].created_date.as_deref(),
            Some("2020-05-28T06:05:54.987-04:00")
        );
        assert_eq!(notes[1].note_value, None);
        assert_eq!(notes[2], RawTicketNote::default());
        assert_eq!(
            parse_ticket_notes(&raw(&json!({"ticketNotes": null}))).unwrap(),
            vec![]
        );
    }

    #[test]
    fn malformed_details_bodies_are_refused() {
        for body in [
            json!(null),
            json!([]),
            json!({"ticketDetails": []}),
            json!({"ticketNotes": "none"}),
            json!({"ticketNotes": [7]}),
        ] {
            assert!(
                matches!(
                    parse_ticket_notes(&raw(&body)),
                    Err(PortError::Malformed(_))
                ),
                "{body} should be malformed"
            );
        }
    }

    #[test]
    fn odd_note_fields_read_as_absent_without_losing_the_note() {
        let notes = parse_ticket_notes(&raw(&json!({"ticketNotes": [
            {"noteId": "not a number", "noteValue": "kept"},
            {"noteValue": 12},
        ]})))
        .unwrap();
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].note_id, None);
        assert_eq!(notes[0].note_value.as_deref(), Some("kept"));
        assert_eq!(notes[1].note_value, None);
    }

    #[test]
    fn email_html_is_escaped_text_with_line_breaks() {
        assert_eq!(
            text_to_html("a < b & c\nnext \"line\""),
            "a &lt; b &amp; c<br>\nnext &quot;line&quot;"
        );
        assert_eq!(text_to_html(""), "");
    }
}
