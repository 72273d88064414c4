//! The ports: async traits the engine drives and infrastructure crates implement.
//!
//! With the `mocks` feature (or in this crate's tests) each trait has a mockall mock,
//! `MockDispatchSource`, `MockTicketRepository`, and so on.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::actions::SmsPurpose;
use crate::{PhoneE164, RawTicketNote, TicketId, VendorName};

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
}

/// Fetches a vendor's whole dispatch list.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DispatchSource: Send + Sync {
    /// The successful reply's body, unchecked; the vendor adapter checks its shape.
    async fn fetch_dispatches(&self, vendor: &VendorName) -> Result<serde_json::Value, PortError>;
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
    /// Sends one SMS.
    async fn send_sms(&self, to: &PhoneE164, text: &str) -> Result<(), PortError>;
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

/// Identifies one SMS for the ledger: vendor, note key, purpose, recipient and, for tech
/// changes, the new tech's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LedgerKey {
    /// The vendor.
    pub vendor: VendorName,
    /// The dispatch's note key.
    pub note_key: String,
    /// What the SMS is for.
    pub purpose: SmsPurpose,
    /// Who receives it.
    pub recipient: PhoneE164,
    /// The new tech's name, for tech changes.
    pub tech_name: Option<String>,
}

impl LedgerKey {
    /// The key's text, unique per SMS, e.g. `LIT:DIS37405:confirmed:+12123595129`.
    pub fn as_key(&self) -> String {
        let mut key = format!(
            "{}:{}:{}:{}",
            self.vendor,
            self.note_key,
            self.purpose.label(),
            self.recipient
        );
        if let Some(name) = &self.tech_name {
            key.push(':');
            key.push_str(name);
        }
        key
    }
}

/// The result of claiming an SMS in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the claim and may send.
    Claimed,
    /// The SMS was already sent; do not send it again.
    AlreadySent,
    /// Another process holds the claim right now.
    HeldElsewhere,
}

/// The SMS ledger that makes every SMS go out at most once (SPEC §7 delivery rule).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SmsLedger: Send + Sync {
    /// Claims the SMS atomically; a claim left by a crashed process expires.
    async fn claim(&self, key: &LedgerKey) -> Result<Claim, PortError>;
    /// Records that the SMS was sent.
    async fn mark_sent(&self, key: &LedgerKey) -> Result<(), PortError>;
    /// Drops this caller's claim after a failed send.
    async fn release(&self, key: &LedgerKey) -> Result<(), PortError>;
    /// Whether the SMS is recorded as sent.
    async fn is_sent(&self, key: &LedgerKey) -> Result<bool, PortError>;
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
