//! The Slack alert queue: alert lines are posted by a background task, in order, so a slow
//! or hanging Slack bridge never holds up a dispatch (SPEC §7.5).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use domain::PhoneE164;
use domain::ports::{Email, Notifier, PortError};

/// A notifier whose Slack alerts are posted by a background task, in order, so a slow Slack
/// bridge never holds up a dispatch (SPEC §7.5). SMS and email pass straight through.
pub struct AlertQueue {
    inner: Arc<dyn Notifier>,
    queue: tokio::sync::mpsc::Sender<String>,
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

impl AlertQueue {
    /// Starts the background poster; needs a running tokio runtime.
    pub fn spawn(inner: Arc<dyn Notifier>) -> Arc<Self> {
        let (queue, mut lines) = tokio::sync::mpsc::channel::<String>(ALERT_QUEUE_CAPACITY);
        let pending = Arc::new(AtomicUsize::new(0));
        let poster = inner.clone();
        let done = pending.clone();
        tokio::spawn(async move {
            while let Some(line) = lines.recv().await {
                if let Err(error) = poster.post_slack(&line).await {
                    metrics::counter!(domain::telemetry::ALERT_FAILURES).increment(1);
                    tracing::warn!(%error, alert = %line, "could not post the Slack alert");
                }
                done.fetch_sub(1, Ordering::SeqCst);
            }
        });
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
}

#[async_trait]
impl Notifier for AlertQueue {
    async fn send_sms(&self, to: &PhoneE164, text: &str, key: &str) -> Result<(), PortError> {
        self.inner.send_sms(to, text, key).await
    }

    async fn post_slack(&self, message: &str) -> Result<(), PortError> {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.queue.try_send(message.to_owned()).map_err(|_| {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            PortError::Unavailable("the alert queue is full".into())
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
}
