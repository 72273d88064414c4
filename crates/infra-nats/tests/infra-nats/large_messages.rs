//! Large requests and replies through a real Redis (SPEC §3): stored with `SET token json EX
//! 300`, sent as `{"token", "is_stored": true}`, read with GET then DEL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{HANG_GUARD, connected_client, envelope, responder};
use async_trait::async_trait;
use bytes::Bytes;
use domain::ports::{LargeMessageStore, PortError};
use infra_nats::{LARGE_MESSAGE_THRESHOLD, LARGE_MESSAGE_TTL};
use infra_redis::{RedisConnection, RedisLargeMessageStore};
use serde_json::{Value, json};
use test_support::servers::{NatsServer, RedisServer};
use tokio::time::timeout;

/// The Redis store, noting every `put` the client makes.
#[derive(Debug)]
struct RecordingStore {
    redis: RedisLargeMessageStore,
    puts: Mutex<Vec<(String, usize, Duration)>>,
}

#[async_trait]
impl LargeMessageStore for RecordingStore {
    async fn put(&self, token: &str, json: &str, ttl: Duration) -> Result<(), PortError> {
        self.puts
            .lock()
            .unwrap()
            .push((token.to_owned(), json.len(), ttl));
        self.redis.put(token, json, ttl).await
    }

    async fn take(&self, token: &str) -> Result<Option<String>, PortError> {
        self.redis.take(token).await
    }
}

async fn redis_store(redis: &RedisServer) -> RedisLargeMessageStore {
    let connection = RedisConnection::connect(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    timeout(HANG_GUARD, async {
        while connection.ping().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("Redis never answered");
    connection.large_messages()
}

fn big_text(bytes: usize) -> String {
    "d".repeat(bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn large_requests_and_replies_travel_through_redis() {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let responder_store = redis_store(&redis).await;
    let client_store = Arc::new(RecordingStore {
        redis: redis_store(&redis).await,
        puts: Mutex::new(Vec::new()),
    });
    let reply_tokens = Arc::new(Mutex::new(Vec::<String>::new()));

    // The service reads a stored request like the real bridges do, checks that the key is
    // gone, and answers with a stored reply.
    let service_store = responder_store.clone();
    let tokens = Arc::clone(&reply_tokens);
    let service = responder(&nats.url(), "test.large", move |request| {
        let store = service_store.clone();
        let tokens = Arc::clone(&tokens);
        async move {
            let request: Value = if request["is_stored"] == json!(true) {
                let token = request["token"].as_str().unwrap();
                let json = store.take(token).await.unwrap().expect("the stored request");
                assert_eq!(store.take(token).await.unwrap(), None, "GET+DEL left the key");
                serde_json::from_str(&json).unwrap()
            } else {
                request
            };
            let size = request["body"]["reply_bytes"].as_u64().unwrap() as usize;
            let reply = json!({
                "request_id": request["request_id"],
                "status": 200,
                "body": {"records": big_text(size), "got": request["body"]["data"].as_str().map(str::len)},
            })
            .to_string();
            if reply.len() <= LARGE_MESSAGE_THRESHOLD {
                return Some(Bytes::from(reply));
            }
            let token = uuid::Uuid::new_v4().to_string();
            store.put(&token, &reply, Duration::from_secs(300)).await.unwrap();
            tokens.lock().unwrap().push(token.clone());
            Some(Bytes::from(json!({"token": token, "is_stored": true}).to_string()))
        }
    })
    .await;
    let client = connected_client(&nats, Duration::from_secs(30), client_store.clone()).await;

    // A large request and a large reply.
    let data = big_text(2 * LARGE_MESSAGE_THRESHOLD);
    let body = client
        .call(
            "test.large",
            json!({"data": data, "reply_bytes": 3 * LARGE_MESSAGE_THRESHOLD}),
        )
        .await
        .unwrap();
    assert_eq!(body["got"], json!(data.len()));
    assert_eq!(
        body["records"].as_str().unwrap().len(),
        3 * LARGE_MESSAGE_THRESHOLD
    );

    // The service got the token form only.
    let received = service.received.lock().unwrap().clone();
    let token_form = received[0].as_object().unwrap();
    assert_eq!(token_form.len(), 2, "{token_form:?}");
    assert_eq!(token_form["is_stored"], json!(true));
    let request_token = token_form["token"].as_str().unwrap().to_owned();
    let puts = client_store.puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].0, request_token);
    assert!(puts[0].1 > LARGE_MESSAGE_THRESHOLD);
    assert_eq!(puts[0].2, LARGE_MESSAGE_TTL);
    assert_eq!(LARGE_MESSAGE_TTL, Duration::from_secs(300));

    // The client read the stored reply with GET then DEL: the key is gone.
    let reply_token = reply_tokens.lock().unwrap()[0].clone();
    assert_eq!(responder_store.take(&reply_token).await.unwrap(), None);

    // Small messages stay inline both ways.
    let body = client
        .call("test.large", json!({"data": "small", "reply_bytes": 10}))
        .await
        .unwrap();
    assert_eq!(body["got"], json!(5));
    assert_eq!(client_store.puts.lock().unwrap().len(), 1);
    let small = service.received.lock().unwrap()[1].clone();
    assert_eq!(small["body"]["data"], "small");
    assert_eq!(reply_tokens.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_request_fails_as_unavailable_when_redis_is_down() {
    let nats = NatsServer::new();
    let mut redis = RedisServer::new();
    let store = Arc::new(redis_store(&redis).await);
    let _service = responder(&nats.url(), "test.large", |request| async move {
        envelope(&request, 200, json!("ok"))
    })
    .await;
    let client = connected_client(&nats, Duration::from_secs(30), store).await;
    redis.stop();

    let data = big_text(LARGE_MESSAGE_THRESHOLD + 1);
    let outcome = timeout(
        HANG_GUARD,
        client.request("test.large", json!({"data": data})),
    )
    .await
    .expect("the request hung while Redis was down");
    assert!(
        matches!(outcome, Err(infra_nats::RpcFailure::LargeMessage(_))),
        "{outcome:?}"
    );
}
