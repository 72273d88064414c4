//! Helpers shared by the NATS tests: a responder written in the test, a connected client, and
//! the domain's in-memory large-message store.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use domain::memory::MemoryLargeMessages;
use domain::ports::LargeMessageStore;
use futures::StreamExt;
use infra_nats::NatsClient;
use serde_json::Value;
use test_support::servers::NatsServer;
use tokio::task::JoinHandle;

/// A generous bound so that a hanging call fails the test instead of blocking it.
pub const HANG_GUARD: Duration = Duration::from_secs(20);

/// A service answering one subject from a test; stops when dropped.
pub struct Responder {
    task: JoinHandle<()>,
    /// Every request received, parsed as JSON (null when not JSON).
    pub received: Arc<Mutex<Vec<Value>>>,
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Subscribes on `subject` and answers each request with what `handler` returns: raw bytes,
/// or no reply at all for `None`. The subscription is active when this returns.
pub async fn responder<F, Fut>(url: &str, subject: &str, handler: F) -> Responder
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<Bytes>> + Send + 'static,
{
    let seeds: Vec<&str> = url.split(',').collect();
    let client = async_nats::connect(seeds).await.unwrap();
    let mut subscriber = client.subscribe(subject.to_owned()).await.unwrap();
    client.flush().await.unwrap();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&received);
    let task = tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            let request: Value = serde_json::from_slice(&message.payload).unwrap_or(Value::Null);
            log.lock().unwrap().push(request.clone());
            if let (Some(reply_to), Some(reply)) = (message.reply, handler(request).await) {
                let _ = client.publish(reply_to, reply).await;
                let _ = client.flush().await;
            }
        }
    });
    Responder { task, received }
}

/// A reply envelope answering `request` with `status` and `body`.
pub fn envelope(request: &Value, status: u16, body: Value) -> Option<Bytes> {
    let reply = serde_json::json!({
        "request_id": request["request_id"],
        "status": status,
        "body": body,
    });
    Some(Bytes::from(reply.to_string()))
}

/// A client with `timeout`, connected to `nats`.
pub async fn connected_client(
    nats: &NatsServer,
    timeout: Duration,
    store: Arc<dyn LargeMessageStore>,
) -> NatsClient {
    let client = NatsClient::connect(&nats.url(), timeout, store)
        .await
        .unwrap();
    assert!(
        client.wait_until_connected(HANG_GUARD).await,
        "the client never connected"
    );
    client
}

/// A large-message store in memory.
pub fn memory_store() -> Arc<MemoryLargeMessages> {
    Arc::new(MemoryLargeMessages::default())
}
