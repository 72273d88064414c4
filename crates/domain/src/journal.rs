//! The journal (SPEC §14): what the monitor did to each dispatch, and each vendor cycle, kept
//! where every replica can read it. The engine collects a dispatch's entries while it works on
//! it and hands them, with the dispatch's snapshot, to the [`Journal`] port once the dispatch
//! is done; the cycle's record goes at its end. Journaling never fails or delays a
//! dispatch: a port that cannot write logs and counts it.
//!
//! The journal owns the types it records — a dispatch's [`DispatchReport`] and
//! [`DispatchOutcome`], and the executor's [`Execution`] in it — so that it imports nothing
//! from the engine, the executor or the events that write it (they are re-exported there).

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::PortError;
use crate::rules::Step;
use crate::safeguards::SafeguardMark;
use crate::{Dispatch, VendorName};

/// At most this many entries are kept per dispatch (oldest dropped).
pub const MAX_ENTRIES: usize = 200;
/// At most this many cycles are kept per vendor.
pub const MAX_CYCLES: usize = 100;
/// Journal keys expire this long after their last write (30 days).
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// What a journal entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// An SMS: sent, failed, uncertain, deduplicated, or held in quiet hours.
    Sms,
    /// A ticket note: appended or failed.
    Note,
    /// The cancellation email.
    Email,
    /// A Slack alert line about the dispatch.
    Alert,
    /// A step that could not be rendered.
    Blocked,
    /// The dispatch or one of its rules was skipped, and why.
    Skipped,
    /// The SMS ledger could not be read or written.
    Ledger,
    /// The ticket's notes could not be read.
    Details,
    /// An operator paused or resumed the dispatch's texts (SPEC §17.3).
    Pause,
}

/// One thing that happened to a dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JournalEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// What it is about.
    pub kind: EntryKind,
    /// The action, e.g. `12h reminder SMS to the client`.
    pub action: Option<String>,
    /// What happened: `sent`, `failed`, `uncertain`, `deduplicated`, `quiet_hours`,
    /// `opted_out`, `paused`, `capped`, `appended`, `queued`, `posted`, `blocked`, `skipped`,
    /// `not_ours`, and for a pause entry `paused` or `resumed`.
    pub outcome: String,
    /// The recipient: a phone, `ticket 3544800`, or email addresses.
    pub to: Option<String>,
    /// The text sent or appended.
    pub text: Option<String>,
    /// Why, for failures and skips.
    pub detail: Option<String>,
    /// The replica that acted.
    pub replica: String,
}

impl JournalEntry {
    /// Whether the entry records something the monitor did (an SMS or note went out).
    pub fn is_action(&self) -> bool {
        matches!(
            (self.kind, self.outcome.as_str()),
            (EntryKind::Sms, "sent") | (EntryKind::Note, "appended") | (EntryKind::Email, "sent")
        )
    }

    /// Whether it repeats every cycle while nothing changes (a skip, a blocked or held step):
    /// such an entry is not written again when the journal's last entry says the same.
    pub fn repeats(&self) -> bool {
        matches!(self.kind, EntryKind::Skipped | EntryKind::Blocked)
            || matches!(
                self.outcome.as_str(),
                "quiet_hours" | "opted_out" | "paused" | "capped"
            )
    }

    /// One line for a dispatch list: `12h reminder SMS to the client: sent to +1...`.
    pub fn summary(&self) -> String {
        let what = self.action.clone().unwrap_or_else(|| match self.kind {
            EntryKind::Note => "note".to_owned(),
            other => format!("{other:?}").to_lowercase(),
        });
        match (self.kind, &self.to) {
            (EntryKind::Note, _) => format!("{what}: note {}", self.outcome),
            (_, Some(to)) => format!("{what}: {} to {to}", self.outcome),
            (_, None) => format!("{what}: {}", self.outcome),
        }
    }
}

/// What happened to one dispatch in a cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DispatchOutcome {
    /// The ticket details request failed; retried next cycle.
    DetailsFailed {
        /// Why.
        error: String,
    },
    /// Not created by our portal.
    NotOurs {
        /// Why it was judged not ours.
        reason: String,
    },
    /// The SMS ledger could not be read; nothing was done.
    LedgerUnavailable {
        /// Why.
        error: String,
    },
    /// The steps were executed.
    Executed(Execution),
    /// Dry run: the steps were only planned.
    Planned,
}

/// One dispatch's part of a cycle report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// The dispatch as mapped.
    pub dispatch: Dispatch,
    /// What happened.
    pub outcome: DispatchOutcome,
    /// The planned steps (empty when not ours or details failed).
    pub steps: Vec<Step>,
    /// Rules skipped for lack of data.
    pub skipped_rules: Vec<String>,
    /// SMS, notes and emails that went out for it this cycle.
    pub actions: usize,
    /// The last of them.
    pub last_action: Option<LastAction>,
    /// The dispatch's pause, when paused (SPEC §17.3).
    pub paused: Option<SafeguardMark>,
}

/// How executing a dispatch's steps ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Execution {
    /// Every step was taken.
    Completed {
        /// How many steps.
        steps: usize,
    },
    /// A step failed or was refused; the rest waits for the next cycle.
    Stopped {
        /// How many steps were taken before.
        steps: usize,
        /// What stopped it.
        reason: String,
    },
}

/// The last thing done to a dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LastAction {
    /// When.
    pub at: DateTime<Utc>,
    /// What, in one line.
    pub text: String,
}

/// A dispatch as a cycle last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DispatchSnapshot {
    /// The vendor.
    pub vendor: String,
    /// The vendor's dispatch id.
    pub dispatch_number: String,
    /// The Bruin ticket.
    pub ticket_id: String,
    /// The general status: `requested`, `confirmed`, `tech_on_site`, `canceled`, `completed`,
    /// `not_monitored`.
    pub status: String,
    /// The vendor's own status text.
    pub vendor_status: String,
    /// The appointment as people read it, or the vendor's raw texts.
    pub appointment: Option<String>,
    /// Whether our portal booked it (only then does the monitor act on it).
    pub ours: bool,
    /// The technician.
    pub tech_name: Option<String>,
    /// The technician's phone (E.164).
    pub tech_phone: Option<String>,
    /// The site contact's phone (E.164).
    pub client_phone: Option<String>,
    /// The site's name.
    pub site: Option<String>,
    /// The site's street.
    pub street: Option<String>,
    /// Rules skipped for lack of data, or why the dispatch is not ours.
    pub skipped_rules: Vec<String>,
    /// When a cycle last saw it.
    pub seen: DateTime<Utc>,
    /// The last SMS, note or email the monitor sent for it.
    pub last_action: Option<LastAction>,
    /// Its texts are paused (SPEC §17.3): who paused them, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<SafeguardMark>,
}

impl DispatchSnapshot {
    /// The snapshot of a dispatch a cycle reported on, `seen` at that time.
    pub fn of(report: &DispatchReport, seen: DateTime<Utc>) -> Self {
        let dispatch = &report.dispatch;
        let mut skipped_rules = report.skipped_rules.clone();
        if let DispatchOutcome::NotOurs { reason } = &report.outcome {
            skipped_rules.push(format!("not ours: {reason}"));
        }
        Self {
            vendor: dispatch.vendor.to_string(),
            dispatch_number: dispatch.dispatch_number.to_string(),
            ticket_id: dispatch.ticket_id.to_string(),
            status: dispatch.status.label().to_owned(),
            vendor_status: dispatch.vendor_status.clone(),
            appointment: dispatch
                .appointment
                .as_ref()
                .map(|a| a.display.clone())
                .or_else(|| dispatch.appointment_raw.clone()),
            ours: !matches!(report.outcome, DispatchOutcome::NotOurs { .. }),
            tech_name: dispatch.tech_name.clone(),
            tech_phone: dispatch.tech_phone.as_ref().map(ToString::to_string),
            client_phone: dispatch.client_phone.as_ref().map(ToString::to_string),
            site: dispatch.site.clone(),
            street: dispatch.street.clone(),
            skipped_rules,
            seen,
            last_action: report.last_action.clone(),
            paused: report.paused.clone(),
        }
    }
}

/// One vendor cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CycleRecord {
    /// The vendor.
    pub vendor: String,
    /// The replica that ran it.
    pub replica: String,
    /// When it started.
    pub started: DateTime<Utc>,
    /// When it ended.
    pub finished: DateTime<Utc>,
    /// `ok`, `failed` (the list could not be fetched or read), `lease_lost` (the vendor lease
    /// lapsed or was taken while the cycle ran: no dispatch started after that) or `stopped`
    /// (shutdown left dispatches for the next cycle).
    pub outcome: String,
    /// Why it failed.
    pub error: Option<String>,
    /// Records in the vendor's list.
    pub records: usize,
    /// Dispatches booked by our portal.
    pub ours: usize,
    /// SMS, notes and emails sent.
    pub actions: usize,
    /// Dispatches that stopped on a failure.
    pub failures: usize,
}

impl CycleRecord {
    /// Counts a finished cycle's dispatches.
    pub fn count(&mut self, reports: &[DispatchReport]) {
        self.ours = reports
            .iter()
            .filter(|r| !matches!(r.outcome, DispatchOutcome::NotOurs { .. }))
            .count();
        self.failures = reports.iter().filter(|r| r.failed()).count();
        self.actions = reports.iter().map(|r| r.actions).sum();
    }
}

impl DispatchReport {
    /// Whether the dispatch stopped on a failure this cycle.
    pub fn failed(&self) -> bool {
        matches!(
            self.outcome,
            DispatchOutcome::DetailsFailed { .. }
                | DispatchOutcome::LedgerUnavailable { .. }
                | DispatchOutcome::Executed(Execution::Stopped { .. })
        )
    }
}

/// A dispatch's last snapshot and its journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchHistory {
    /// The dispatch as the last cycle saw it.
    pub snapshot: Option<DispatchSnapshot>,
    /// Its entries, oldest first.
    pub entries: Vec<JournalEntry>,
}

impl DispatchHistory {
    /// The history with its entries as stored, put in time order: an alert's outcome, known
    /// once a queue posted it, may be stored before the entries of the dispatch that raised
    /// it (SPEC §18.5). Entries of the same instant keep their stored order.
    pub fn in_time_order(
        snapshot: Option<DispatchSnapshot>,
        mut entries: Vec<JournalEntry>,
    ) -> Self {
        entries.sort_by_key(|entry| entry.at);
        Self { snapshot, entries }
    }
}

/// Where the journal is kept. Writes must return quickly (queue them); reads serve the API.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Journal: Send + Sync {
    /// Records a dispatch a cycle just finished: its snapshot (a dispatch without a new action
    /// keeps its last one) and its new entries (at most [`MAX_ENTRIES`] are kept).
    async fn record_dispatch(
        &self,
        snapshot: DispatchSnapshot,
        entries: Vec<JournalEntry>,
    ) -> Result<(), PortError>;
    /// Adds entries to a dispatch's journal outside a cycle's record of it (the outcome of an
    /// alert a queue posted later, SPEC §18.5; an operator's pause or resume, §17.3); its
    /// snapshot stays as it is. Reads return entries in time order.
    async fn record_entries(
        &self,
        vendor: &VendorName,
        dispatch_number: &str,
        entries: Vec<JournalEntry>,
    ) -> Result<(), PortError>;
    /// Records a finished cycle. When it ran, `seen` lists its dispatch numbers: the
    /// snapshots of the vendor's other dispatches (no longer listed) are dropped.
    async fn record_cycle(
        &self,
        cycle: CycleRecord,
        seen: Option<Vec<String>>,
    ) -> Result<(), PortError>;
    /// The vendor's last `limit` cycles, newest first.
    async fn cycles(
        &self,
        vendor: &VendorName,
        limit: usize,
    ) -> Result<Vec<CycleRecord>, PortError>;
    /// The dispatches of the vendor's last cycle that ran.
    async fn dispatches(&self, vendor: &VendorName) -> Result<Vec<DispatchSnapshot>, PortError>;
    /// A dispatch's last snapshot and its entries, oldest first; `None` when never seen.
    async fn dispatch(
        &self,
        vendor: &VendorName,
        dispatch_number: &str,
    ) -> Result<Option<DispatchHistory>, PortError>;
}

/// A journal that keeps nothing (dry runs, tests that do not look).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJournal;

#[async_trait]
impl Journal for NoJournal {
    async fn record_dispatch(
        &self,
        _: DispatchSnapshot,
        _: Vec<JournalEntry>,
    ) -> Result<(), PortError> {
        Ok(())
    }
    async fn record_entries(
        &self,
        _: &VendorName,
        _: &str,
        _: Vec<JournalEntry>,
    ) -> Result<(), PortError> {
        Ok(())
    }
    async fn record_cycle(&self, _: CycleRecord, _: Option<Vec<String>>) -> Result<(), PortError> {
        Ok(())
    }
    async fn cycles(&self, _: &VendorName, _: usize) -> Result<Vec<CycleRecord>, PortError> {
        Ok(Vec::new())
    }
    async fn dispatches(&self, _: &VendorName) -> Result<Vec<DispatchSnapshot>, PortError> {
        Ok(Vec::new())
    }
    async fn dispatch(
        &self,
        _: &VendorName,
        _: &str,
    ) -> Result<Option<DispatchHistory>, PortError> {
        Ok(None)
    }
}

/// The entries one dispatch collects while the engine works on it.
#[derive(Debug, Default)]
pub struct EntryBuffer {
    entries: Mutex<Vec<JournalEntry>>,
}

impl EntryBuffer {
    /// Adds an entry.
    pub fn push(&self, entry: JournalEntry) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
    }

    /// The entries, in order.
    pub fn take(&self) -> Vec<JournalEntry> {
        std::mem::take(&mut *self.entries.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Builds entries for one dispatch: the time and the replica are stamped here.
#[derive(Debug, Clone, Copy)]
pub struct EntryStamp<'a> {
    /// When.
    pub at: DateTime<Utc>,
    /// Which replica.
    pub replica: &'a str,
}

impl EntryStamp<'_> {
    /// An entry with only its kind and outcome set.
    pub fn entry(&self, kind: EntryKind, outcome: &str) -> JournalEntry {
        JournalEntry {
            at: self.at,
            kind,
            action: None,
            outcome: outcome.to_owned(),
            to: None,
            text: None,
            detail: None,
            replica: self.replica.to_owned(),
        }
    }
}

/// The dispatch's last action among `entries`: the last SMS sent, or else the last note or
/// email (an SMS's note follows it, and the SMS is what operators ask about).
pub fn last_action(entries: &[JournalEntry]) -> Option<LastAction> {
    let last_sms = entries
        .iter()
        .rev()
        .find(|e| e.is_action() && e.kind == EntryKind::Sms);
    last_sms
        .or_else(|| entries.iter().rev().find(|e| e.is_action()))
        .map(|e| LastAction {
            at: e.at,
            text: e.summary(),
        })
}

/// The entries for a dispatch's outcome that are not steps: skipped rules, not ours, the
/// ticket or ledger unreadable.
pub fn outcome_entries(
    stamp: EntryStamp<'_>,
    dispatch: &Dispatch,
    outcome: &DispatchOutcome,
    skipped_rules: &[String],
) -> Vec<JournalEntry> {
    let mut entries = Vec::new();
    match outcome {
        DispatchOutcome::NotOurs { reason } => entries.push(JournalEntry {
            detail: Some(format!("not ours: {reason}")),
            ..stamp.entry(EntryKind::Skipped, "not_ours")
        }),
        DispatchOutcome::DetailsFailed { error } => entries.push(JournalEntry {
            to: Some(format!("ticket {}", dispatch.ticket_id)),
            detail: Some(format!("ticket details request failed: {error}")),
            ..stamp.entry(EntryKind::Details, "failed")
        }),
        DispatchOutcome::LedgerUnavailable { error } => entries.push(JournalEntry {
            detail: Some(format!("SMS ledger unavailable: {error}")),
            ..stamp.entry(EntryKind::Ledger, "failed")
        }),
        DispatchOutcome::Executed(_) | DispatchOutcome::Planned => {}
    }
    if !skipped_rules.is_empty() {
        entries.push(JournalEntry {
            detail: Some(skipped_rules.join("; ")),
            ..stamp.entry(EntryKind::Skipped, "skipped")
        });
    }
    entries
}
