//! The Slack alert queue: alert lines are posted by a background task, in order, so a slow
//! or hanging Slack bridge never holds up a dispatch (SPEC §7.5). A line about a dispatch is
//! journaled as `queued` by the dispatch, then as `posted` or `failed` here once Slack
//! answered (SPEC §18.5).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use domain::PhoneE164;
use domain::alerts::{AlertOutbox, QueuedAlert};
use domain::journal::{EntryKind, EntryStamp, Journal};
use domain::ports::{Email, Notifier, PortError};

/// A notifier whose Slack alerts are posted by a background task, in order, so a slow Slack
/// bridge never holds up a dispatch (SPEC §7.5). SMS and email pass straight through.
pub struct AlertQueue {
    inner: Arc<dyn Notifier>,
    queue: tokio::sync::mpsc::Sender<Queued>,
    pending: Arc<AtomicUsize>,
}

impl std::fmt::Debug for AlertQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertQueue")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

/// Alerts waiting beyond this many are dropped (and logged).
const ALERT_QUEUE_CAPACITY: usize = 1024;

/// A line waiting for Slack; a line about a dispatch has its outcome journaled.
struct Queued {
    line: String,
    dispatch: Option<QueuedAlert>,
}

/// Where the outcome of each line about a dispatch is journaled, and as which replica.
#[derive(Debug, Clone)]
pub struct OutcomeJournal {
    /// The operator journal (SPEC §14).
    pub journal: Arc<dyn Journal>,
    /// This replica's name in the journal.
    pub replica: String,
}

impl AlertQueue {
    /// Starts the background poster; needs a running tokio runtime.
    pub fn spawn(inner: Arc<dyn Notifier>) -> Arc<Self> {
        Self::spawn_with(inner, None)
    }

    /// Starts the background poster, journaling the outcome of each line about a dispatch in
    /// `outcomes` (when given); needs a running tokio runtime.
    pub fn spawn_with(inner: Arc<dyn Notifier>, outcomes: Option<OutcomeJournal>) -> Arc<Self> {
        let (queue, lines) = tokio::sync::mpsc::channel::<Queued>(ALERT_QUEUE_CAPACITY);
        let pending = Arc::new(AtomicUsize::new(0));
        tokio::spawn(post_all(inner.clone(), lines, pending.clone(), outcomes));
        Arc::new(Self {
            inner,
            queue,
            pending,
        })
    }

    /// Waits until every queued alert is posted, or `limit` passes.
    pub async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.pending.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn push(&self, queued: Queued) -> Result<(), PortError> {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.queue.try_send(queued).map_err(|_| {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            PortError::Unavailable("the alert queue is full".into())
        })
    }
}

/// The background poster: posts each line in order; a failure is logged and counted, and
/// for a line about a dispatch, the outcome is journaled.
async fn post_all(
    poster: Arc<dyn Notifier>,
    mut lines: tokio::sync::mpsc::Receiver<Queued>,
    pending: Arc<AtomicUsize>,
    outcomes: Option<OutcomeJournal>,
) {
    while let Some(Queued { line, dispatch }) = lines.recv().await {
        let result = poster.post_slack(&line).await;
        if let Err(error) = &result {
            metrics::counter!(domain::telemetry::ALERT_FAILURES).increment(1);
            tracing::warn!(%error, alert = %line, "could not post the Slack alert");
        }
        if let (Some(outcomes), Some(alert)) = (&outcomes, dispatch) {
            let stamp = EntryStamp {
                at: chrono::Utc::now(),
                replica: &outcomes.replica,
            };
            let outcome = if result.is_ok() { "posted" } else { "failed" };
            let entry = domain::journal::JournalEntry {
                text: Some(line),
                detail: result.err().map(|error| error.to_string()),
                ..stamp.entry(EntryKind::Alert, outcome)
            };
            let number = alert.dispatch_number.as_str();
            if let Err(error) = outcomes
                .journal
                .record_entries(&alert.vendor, number, vec![entry])
                .await
            {
                tracing::warn!(%error, "could not journal the Slack alert's outcome");
            }
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AlertOutbox for AlertQueue {
    fn enqueue(&self, alert: QueuedAlert) -> Result<(), PortError> {
        self.push(Queued {
            line: alert.line.clone(),
            dispatch: Some(alert),
        })
    }
}

#[async_trait]
impl Notifier for AlertQueue {
    async fn send_sms(&self, to: &PhoneE164, text: &str, key: &str) -> Result<(), PortError> {
        self.inner.send_sms(to, text, key).await
    }

    async fn post_slack(&self, message: &str) -> Result<(), PortError> {
        self.push(Queued {
            line: message.to_owned(),
            dispatch: None,
        })
    }

    async fn send_email(&self, email: &Email) -> Result<(), PortError> {
        self.inner.send_email(email).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    /// A Slack bridge that never answers.
    struct HangingSlack;

    #[async_trait]
    impl Notifier for HangingSlack {
        async fn send_sms(&self, _: &PhoneE164, _: &str, _: &str) -> Result<(), PortError> {
            Ok(())
        }
        async fn post_slack(&self, _: &str) -> Result<(), PortError> {
            std::future::pending().await
        }
        async fn send_email(&self, _: &Email) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_hanging_slack_bridge_never_holds_up_an_alert() {
        let queue = AlertQueue::spawn(Arc::new(HangingSlack));
        for _ in 0..3 {
            let posted = queue
                .post_slack("[dispatch-monitor] [LIT] line")
                .now_or_never();
            assert_eq!(posted, Some(Ok(())), "posting an alert returns at once");
        }
        // The queue is bounded: past its capacity alerts are refused, not waited for.
        let mut refused = 0;
        for _ in 0..ALERT_QUEUE_CAPACITY + 10 {
            if let Some(Err(_)) = queue.post_slack("line").now_or_never() {
                refused += 1;
            }
        }
        assert!(refused > 0);
    }

    /// A Slack bridge that takes every line, or fails every line.
    struct Slack {
        fails: bool,
    }

    #[async_trait]
    impl Notifier for Slack {
        async fn send_sms(&self, _: &PhoneE164, _: &str, _: &str) -> Result<(), PortError> {
            Ok(())
        }
        async fn post_slack(&self, _: &str) -> Result<(), PortError> {
            if self.fails {
                Err(PortError::Unavailable("slack down".into()))
            } else {
                Ok(())
            }
        }
        async fn send_email(&self, _: &Email) -> Result<(), PortError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_outcome_of_a_queued_dispatch_alert_is_journaled_once_slack_answered() {
        use domain::memory::MemoryJournal;
        use domain::{DispatchNumber, VendorName};
        for (fails, outcome, detail) in [
            (false, "posted", None),
            (true, "failed", Some("unavailable: slack down")),
        ] {
            let journal = Arc::new(MemoryJournal::default());
            let outcomes = OutcomeJournal {
                journal: journal.clone(),
                replica: "replica-a".into(),
            };
            let queue = AlertQueue::spawn_with(Arc::new(Slack { fails }), Some(outcomes));
            let lit = VendorName::fixed("LIT");
            let line = "[dispatch-monitor] [LIT] Dispatch [DIS1] in ticket_id: 1 - event";
            let alert = QueuedAlert {
                vendor: lit.clone(),
                dispatch_number: DispatchNumber::parse("DIS1").unwrap(),
                line: line.into(),
            };
            queue.enqueue(alert).unwrap();
            // A vendor-level line is posted, but belongs to no dispatch's journal.
            queue
                .post_slack("[dispatch-monitor] [LIT] vendor")
                .await
                .unwrap();
            queue.flush(Duration::from_secs(5)).await;
            let history = journal.dispatch(&lit, "DIS1").await.unwrap().unwrap();
            assert_eq!(history.entries.len(), 1, "{:?}", history.entries);
            let entry = &history.entries[0];
            assert_eq!(entry.kind, EntryKind::Alert);
            assert_eq!(entry.outcome, outcome);
            assert_eq!(entry.text.as_deref(), Some(line));
            assert_eq!(entry.detail.as_deref(), detail);
            assert_eq!(entry.replica, "replica-a");
        }
    }
}
