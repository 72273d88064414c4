//! Pausing and resuming a dispatch's texts for an operator (SPEC §17.3): the safeguards store
//! is changed and the journal records who did it and why. Kept apart from `safeguards` so that
//! the journal's imports and the safeguards' run one way.

use chrono::{DateTime, Utc};

use crate::journal::{EntryKind, EntryStamp, Journal, JournalEntry};
use crate::ports::PortError;
use crate::safeguards::{SafeguardMark, Safeguards};
use crate::{DispatchNumber, VendorName};

/// Pauses a dispatch's texts (SPEC §17.3) and journals who paused it and why; `false` when it
/// was paused already (the new mark replaces the old). A journal failure is only logged.
pub async fn pause_dispatch(
    store: &dyn Safeguards,
    journal: &dyn Journal,
    vendor: &VendorName,
    dispatch_number: &DispatchNumber,
    mark: &SafeguardMark,
    replica: &str,
) -> Result<bool, PortError> {
    let newly = store.pause(vendor, dispatch_number, mark).await?;
    let detail = format!("by {}: {}", mark.by, mark.reason);
    let entry = pause_entry(mark.at, "paused", detail, replica);
    record(journal, vendor, dispatch_number, entry).await;
    Ok(newly)
}

/// Resumes a paused dispatch (SPEC §17.3) and journals who resumed it; the pause it lifted,
/// `None` (and no entry) when it was not paused.
pub async fn resume_dispatch(
    store: &dyn Safeguards,
    journal: &dyn Journal,
    vendor: &VendorName,
    dispatch_number: &DispatchNumber,
    by: &str,
    at: DateTime<Utc>,
    replica: &str,
) -> Result<Option<SafeguardMark>, PortError> {
    let lifted = store.resume(vendor, dispatch_number).await?;
    if let Some(pause) = &lifted {
        let detail = format!(
            "by {by}; it was paused by {} at {}: {}",
            pause.by,
            pause.at.to_rfc3339(),
            pause.reason
        );
        let entry = pause_entry(at, "resumed", detail, replica);
        record(journal, vendor, dispatch_number, entry).await;
    }
    Ok(lifted)
}

fn pause_entry(at: DateTime<Utc>, outcome: &str, detail: String, replica: &str) -> JournalEntry {
    JournalEntry {
        detail: Some(detail),
        ..EntryStamp { at, replica }.entry(EntryKind::Pause, outcome)
    }
}

async fn record(
    journal: &dyn Journal,
    vendor: &VendorName,
    dispatch_number: &DispatchNumber,
    entry: JournalEntry,
) {
    let recorded = journal
        .record_entries(vendor, dispatch_number.as_str(), vec![entry])
        .await;
    if let Err(error) = recorded {
        tracing::warn!(%error, "could not journal the pause");
        metrics::counter!(crate::telemetry::JOURNAL_FAILURES).increment(1);
    }
}
