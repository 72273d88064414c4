//! The simulated world: each vendor's dispatches, the Bruin tickets and their notes, and the
//! outbox of everything the monitor sent. One mutex guards it; every bridge reads and writes it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use domain::{DispatchSpec, VendorAdapter, VendorName};
use serde::Serialize;
use serde_json::{Value, json};

use crate::faults::Faults;

/// The Bruin bridge refuses notes longer than this many characters (SPEC §3).
pub const MAX_NOTE_CHARS: usize = 1500;

/// One SMS the notifier delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SentSms {
    /// `sms_to` as sent: E.164 digits without the `+`.
    pub to: String,
    /// The text.
    pub text: String,
    /// The request's idempotency key, when it had one (SPEC §13.1).
    pub idempotency_key: Option<String>,
    /// When it arrived.
    pub at: DateTime<Utc>,
}

/// One note the Bruin bridge appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppendedNote {
    /// The ticket.
    pub ticket: String,
    /// The text.
    pub text: String,
    /// The request's `is_private` flag.
    pub is_private: Option<bool>,
    /// When it arrived.
    pub at: DateTime<Utc>,
}

/// Everything the monitor sent through the bridges.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outbox {
    /// Notes appended, in order.
    pub notes: Vec<AppendedNote>,
    /// SMS delivered, in order; each idempotency key once when deduplicating.
    pub sms: Vec<SentSms>,
    /// Slack lines posted.
    pub slack: Vec<String>,
    /// Email requests (`email_data`).
    pub emails: Vec<Value>,
    /// SMS requests answered 200 without delivering again: their key was delivered already.
    pub deduplicated: usize,
}

impl Outbox {
    /// The recipients of the delivered SMS (`sms_to`), sorted.
    pub fn sms_recipients(&self) -> Vec<String> {
        let mut to: Vec<String> = self.sms.iter().map(|sms| sms.to.clone()).collect();
        to.sort();
        to
    }

    /// The texts of the notes appended to `ticket`, in order.
    pub fn notes_on(&self, ticket: &str) -> Vec<&str> {
        self.notes
            .iter()
            .filter(|note| note.ticket == ticket)
            .map(|note| note.text.as_str())
            .collect()
    }
}

/// What happened, as it happens: the live timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SimEvent {
    /// A note was appended.
    Note {
        /// The ticket.
        ticket: String,
        /// The text.
        text: String,
    },
    /// An SMS was delivered, or answered again without delivering.
    Sms {
        /// `sms_to`.
        to: String,
        /// The text.
        text: String,
        /// Answered without delivering: the key was delivered already.
        deduplicated: bool,
    },
    /// A Slack line was posted.
    Slack {
        /// The line.
        line: String,
    },
    /// An email was sent.
    Email {
        /// The subject.
        subject: String,
        /// The addresses.
        recipients: String,
    },
    /// The world changed (a timeline step).
    Change {
        /// What changed.
        what: String,
    },
    /// A fault was set.
    Fault {
        /// The fault.
        what: String,
    },
}

/// One vendor's part of the world.
pub(crate) struct VendorWorld {
    pub(crate) adapter: Arc<dyn VendorAdapter>,
    /// The dispatches, in list order.
    pub(crate) dispatches: Vec<DispatchSpec>,
    /// Raw records served instead of the dispatches (fixtures, bad input).
    pub(crate) raw: Option<Vec<Value>>,
}

/// The world's state.
pub(crate) struct World {
    pub(crate) vendors: BTreeMap<VendorName, VendorWorld>,
    pub(crate) tickets: BTreeMap<String, Vec<Value>>,
    next_note_id: i64,
    pub(crate) outbox: Outbox,
    pub(crate) details_requests: BTreeMap<String, usize>,
    /// How long the ticket-details requests were held in all, from receipt to the reply.
    pub(crate) details_held: std::time::Duration,
    pub(crate) faults: Faults,
    delivered_keys: HashSet<String>,
    pub(crate) deduplicate_sms: bool,
    /// Every request envelope, per subject, when recording (tests).
    pub(crate) requests: Option<Vec<(String, Value)>>,
}

impl World {
    pub(crate) fn new(vendors: &[Arc<dyn VendorAdapter>]) -> Self {
        Self {
            vendors: vendors
                .iter()
                .map(|adapter| {
                    let world = VendorWorld {
                        adapter: adapter.clone(),
                        dispatches: Vec::new(),
                        raw: None,
                    };
                    (adapter.name().clone(), world)
                })
                .collect(),
            tickets: BTreeMap::new(),
            next_note_id: 70_000_000,
            outbox: Outbox::default(),
            details_requests: BTreeMap::new(),
            details_held: std::time::Duration::ZERO,
            faults: Faults::default(),
            delivered_keys: HashSet::new(),
            deduplicate_sms: true,
            requests: None,
        }
    }

    /// The vendor whose list subject is `subject`.
    pub(crate) fn vendor_of_subject(&self, subject: &str) -> Option<&VendorWorld> {
        self.vendors
            .iter()
            .find(|(name, _)| crate::list_subject(name) == subject)
            .map(|(_, world)| world)
    }

    /// The vendor's list response body.
    pub(crate) fn list_body(vendor: &VendorWorld) -> Value {
        let records = match &vendor.raw {
            Some(raw) => raw.clone(),
            None => vendor
                .dispatches
                .iter()
                .filter_map(|spec| vendor.adapter.record_for(spec))
                .collect(),
        };
        vendor.adapter.list_body(records)
    }

    /// Adds or replaces a dispatch (by dispatch number), keeping list order.
    pub(crate) fn upsert(&mut self, vendor: &VendorName, spec: DispatchSpec) -> bool {
        let Some(world) = self.vendors.get_mut(vendor) else {
            return false;
        };
        match world
            .dispatches
            .iter_mut()
            .find(|d| d.dispatch_number == spec.dispatch_number)
        {
            Some(existing) => *existing = spec,
            None => world.dispatches.push(spec),
        }
        true
    }

    /// The dispatch `number` of `vendor`, to change.
    pub(crate) fn dispatch_mut(
        &mut self,
        vendor: &VendorName,
        number: &str,
    ) -> Option<&mut DispatchSpec> {
        self.vendors
            .get_mut(vendor)?
            .dispatches
            .iter_mut()
            .find(|d| d.dispatch_number == number)
    }

    /// Adds a note to a ticket as another service would (no outbox entry).
    pub(crate) fn seed_note(&mut self, ticket: &str, text: &str, at: DateTime<Utc>) {
        self.push_note(ticket, text, at);
    }

    fn push_note(&mut self, ticket: &str, text: &str, at: DateTime<Utc>) {
        self.next_note_id += 1;
        let note = json!({
            "noteId": self.next_note_id,
            "noteValue": text,
            "serviceNumber": [ticket],
            "createdDate": at.to_rfc3339_opts(SecondsFormat::Millis, false),
            "creator": null,
        });
        self.tickets
            .entry(ticket.to_owned())
            .or_default()
            .push(note);
    }

    /// The ticket-details body; counts the request.
    pub(crate) fn ticket_details(&mut self, ticket: &str) -> Value {
        *self.details_requests.entry(ticket.to_owned()).or_default() += 1;
        let notes = self.tickets.get(ticket).cloned().unwrap_or_default();
        json!({
            "ticketDetails": [{"detailID": 1, "detailValue": ticket}],
            "ticketNotes": notes,
        })
    }

    /// Appends a note the monitor sent; `Err` with the reason when the bridge refuses it.
    pub(crate) fn append_note(
        &mut self,
        ticket: &str,
        text: &str,
        is_private: Option<bool>,
        at: DateTime<Utc>,
    ) -> Result<(), String> {
        if ticket.is_empty() {
            return Err("no ticket_id".into());
        }
        let chars = text.chars().count();
        if chars > MAX_NOTE_CHARS {
            return Err(format!(
                "note of {chars} characters is over the {MAX_NOTE_CHARS}-character limit"
            ));
        }
        self.push_note(ticket, text, at);
        self.outbox.notes.push(AppendedNote {
            ticket: ticket.to_owned(),
            text: text.to_owned(),
            is_private,
            at,
        });
        Ok(())
    }

    /// Delivers an SMS, or, when its key was delivered before and the notifier deduplicates,
    /// only counts it; whether it was delivered now.
    pub(crate) fn deliver_sms(
        &mut self,
        to: &str,
        text: &str,
        key: Option<&str>,
        at: DateTime<Utc>,
    ) -> bool {
        if let Some(key) = key
            && self.deduplicate_sms
            && !self.delivered_keys.insert(key.to_owned())
        {
            self.outbox.deduplicated += 1;
            return false;
        }
        self.outbox.sms.push(SentSms {
            to: to.to_owned(),
            text: text.to_owned(),
            idempotency_key: key.map(str::to_owned),
            at,
        });
        true
    }
}
