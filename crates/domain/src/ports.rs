//! The ports: async traits the engine drives and infrastructure crates implement.
//!
//! With the `mocks` feature (or in this crate's tests) each trait has a mockall mock,
//! `MockDispatchSource`, `MockTicketRepository`, and so on.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::actions::SmsPurpose;
use crate::{DispatchNumber, PhoneE164, RawTicketNote, TicketId, VendorName};

/// A port call failed. The message says what, for alerts and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The service could not be reached or did not answer in time (NATS 503, Redis down).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The service answered with a failure status.
    #[error("rejected with status {status}: {detail}")]
    Rejected {
        /// The reply's status code.
        status: u16,
        /// What the reply said.
        detail: String,
    },
    /// The reply could not be understood.
    #[error("malformed reply: {0}")]
    Malformed(String),
    /// The request went out but no usable reply came back (timeout, connection lost after it
    /// was sent, a reply that cannot be read): it may have been acted on.
    #[error("no answer, it may have been acted on: {0}")]
    Uncertain(String),
}

/// Fetches a vendor's whole dispatch list.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DispatchSource: Send + Sync {
    /// The successful reply's body as JSON text, unchecked; the vendor adapter checks its
    /// shape and splits it into records.
    async fn fetch_dispatches(&self, vendor: &VendorName) -> Result<crate::ListBody, PortError>;
}

/// Reads and writes Bruin ticket notes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TicketRepository: Send + Sync {
    /// The ticket's notes as Bruin returns them.
    async fn ticket_notes(&self, ticket: &TicketId) -> Result<Vec<RawTicketNote>, PortError>;
    /// Appends a public note.
    async fn append_note(&self, ticket: &TicketId, note: &str) -> Result<(), PortError>;
}

/// An email about a dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Email {
    /// The subject line.
    pub subject: String,
    /// Comma-separated addresses.
    pub recipients: String,
    /// The plain-text body.
    pub text: String,
}

/// Sends SMS, Slack alerts and emails through the notifier.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one SMS. `idempotency_key` is the same for every attempt at the same text and
    /// differs for different texts (SPEC §13.1): a notifier that deduplicates on it delivers
    /// it once. [`PortError::Uncertain`] means it may have been delivered.
    async fn send_sms(
        &self,
        to: &PhoneE164,
        text: &str,
        idempotency_key: &str,
    ) -> Result<(), PortError>;
    /// Posts one line to Slack.
    async fn post_slack(&self, message: &str) -> Result<(), PortError>;
    /// Sends an email.
    async fn send_email(&self, email: &Email) -> Result<(), PortError>;
}

/// The registry other services read to find our dispatches (SPEC §4).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DispatchRegistry: Send + Sync {
    /// Writes the key if absent; `true` when this call wrote it.
    async fn register(
        &self,
        dispatch_number: &str,
        value: &serde_json::Value,
    ) -> Result<bool, PortError>;
}

/// Identifies one SMS: its dispatch, what it is for, who receives it and, for a tech change,
/// which change (`previous->new #n`: normalised names and its ordinal on the ticket). The
/// ledger keeps one entry per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LedgerKey {
    /// The vendor.
    pub vendor: VendorName,
    /// The vendor's dispatch id.
    pub dispatch_number: DispatchNumber,
    /// What the SMS is for.
    pub purpose: SmsPurpose,
    /// Who receives it.
    pub recipient: PhoneE164,
    /// For a tech change: `previous->new #n`, both names normalised, n its ordinal on the
    /// ticket (SPEC §18.1).
    pub change: Option<String>,
}

impl LedgerKey {
    /// The entry's id within its dispatch's ledger, e.g. `reminder-2h:12123595129`.
    pub fn entry_id(&self) -> String {
        let mut id = format!("{}:{}", self.purpose.label(), self.recipient.digits());
        if let Some(change) = &self.change {
            id.push(':');
            id.push_str(change);
        }
        id
    }

    /// The SMS's idempotency key (SPEC §13.1):
    /// `{environment}:{vendor}:{dispatch_number}:{purpose}:{recipient digits}[:{change}]`.
    pub fn idempotency_key(&self, environment: &str) -> String {
        format!(
            "{environment}:{}:{}:{}",
            self.vendor,
            self.dispatch_number,
            self.entry_id()
        )
    }

    /// A readable form for logs, e.g. `LIT:DIS37405:confirmed:12123595129`.
    pub fn as_key(&self) -> String {
        format!(
            "{}:{}:{}",
            self.vendor,
            self.dispatch_number,
            self.entry_id()
        )
    }
}

/// Identifies the note one step appends, so that two replicas never both append it (their
/// leases can overlap when the lease store fails): the step's dispatch, kind and, for a tech
/// change, which change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StepKey {
    /// The vendor.
    pub vendor: VendorName,
    /// The vendor's dispatch id.
    pub dispatch_number: DispatchNumber,
    /// The step.
    pub kind: crate::actions::ActionKind,
    /// For a tech change: `previous->new #n`, both names normalised, n its ordinal on the
    /// ticket (SPEC §18.1).
    pub change: Option<String>,
}

impl StepKey {
    /// The entry's id within its dispatch's ledger, e.g. `note:reminder_note:2`.
    pub fn entry_id(&self) -> String {
        let mut id = format!("note:{}", self.kind.row().note);
        if let Some(hours) = self.kind.hours() {
            id.push_str(&format!(":{hours}"));
        }
        if let Some(change) = &self.change {
            id.push(':');
            id.push_str(change);
        }
        id
    }
}

/// Where an SMS's entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// A run holds it and is sending it.
    Claimed,
    /// It was delivered.
    Sent,
    /// The send got no answer: it may have been delivered; it is sent again, with the same
    /// idempotency key, when its rule still applies.
    Uncertain,
}

/// One entry of a dispatch's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The SMS.
    pub key: LedgerKey,
    /// Where it stands.
    pub state: EntryState,
    /// The note that records it, as rendered when it was claimed.
    pub note: String,
}

/// The result of claiming an SMS in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the claim and may send.
    Claimed,
    /// The SMS was already sent; do not send it again.
    AlreadySent,
    /// Another process holds a live claim right now.
    HeldElsewhere,
}

/// The SMS ledger that makes every SMS go out at most once per idempotency key (SPEC §7,
/// §13) and every note be appended once even when two replicas act on one dispatch: one
/// record per dispatch, read whole in one round trip, kept 30 days after its last write.
/// Implementations retry a failed write briefly before reporting it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsLedger: Send + Sync {
    /// Every entry of one dispatch's ledger.
    async fn entries(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Vec<LedgerEntry>, PortError>;
    /// Claims the SMS for `ttl`, keeping `note` (the note that will record it). A free entry,
    /// an uncertain one, or a claim that outlived its TTL can be claimed.
    async fn claim(&self, key: &LedgerKey, note: &str, ttl: Duration) -> Result<Claim, PortError>;
    /// Records that the SMS was delivered.
    async fn mark_sent(&self, key: &LedgerKey) -> Result<(), PortError>;
    /// Records that the SMS may have been delivered.
    async fn mark_uncertain(&self, key: &LedgerKey) -> Result<(), PortError>;
    /// Drops this caller's claim after the notifier refused the SMS.
    async fn release(&self, key: &LedgerKey) -> Result<(), PortError>;
    /// Claims the right to append a step's note: [`Claim::AlreadySent`] when it was appended.
    async fn claim_note(&self, key: &StepKey, ttl: Duration) -> Result<Claim, PortError>;
    /// Records that the step's note was appended.
    async fn note_appended(&self, key: &StepKey) -> Result<(), PortError>;
    /// Drops this caller's claim on a note after the append failed.
    async fn release_note(&self, key: &StepKey) -> Result<(), PortError>;
}

/// A held vendor lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseToken {
    /// The vendor the lease is for.
    pub vendor: VendorName,
    /// The holder's unique token.
    pub holder: String,
}

/// A renewable per-vendor lease so that two replicas never run the same vendor cycle.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait VendorLease: Send + Sync {
    /// Takes the lease when free; `None` when another holder has it.
    async fn try_acquire(
        &self,
        vendor: &VendorName,
        ttl: Duration,
    ) -> Result<Option<LeaseToken>, PortError>;
    /// Extends the lease; `false` when the token no longer holds it.
    async fn renew(&self, token: &LeaseToken, ttl: Duration) -> Result<bool, PortError>;
    /// Gives the lease up; `false` when the token did not hold it.
    async fn release(&self, token: &LeaseToken) -> Result<bool, PortError>;
    /// Who holds the vendor's lease now (the replica's name), for operators; `None` when free
    /// or unknown.
    async fn holder(&self, vendor: &VendorName) -> Result<Option<String>, PortError> {
        let _ = vendor;
        Ok(None)
    }
}

/// Stores large message payloads for the NATS transport (SPEC §3 large messages).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LargeMessageStore: Send + Sync {
    /// Stores `json` under `token` for `ttl`.
    async fn put(&self, token: &str, json: &str, ttl: Duration) -> Result<(), PortError>;
    /// Reads and deletes the payload under `token`; `None` when absent.
    async fn take(&self, token: &str) -> Result<Option<String>, PortError>;
}

/// The current time; the demo and tests drive a simulated one.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
