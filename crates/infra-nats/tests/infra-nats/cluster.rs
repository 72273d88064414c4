//! The client over a `nats-server` cluster (SPEC §16): a seed list, and the loss of the node
//! it is connected to followed without a restart.

use std::time::Duration;

use infra_nats::NatsClient;
use serde_json::json;
use test_support::ha::NatsCluster;
use tokio::time::{Instant, sleep};

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn losing_the_connected_node_moves_the_client_to_another() {
    let mut cluster = NatsCluster::start(3).await;
    let seeds = cluster.urls();
    // The service answers from another member's point of view: any node reaches it.
    let _echo = responder(&seeds, "test.echo", |request| async move {
        envelope(&request, 200, request["body"].clone())
    })
    .await;
    let client = NatsClient::connect(&seeds, Duration::from_secs(5), memory_store())
        .await
        .unwrap();
    assert!(client.wait_until_connected(HANG_GUARD).await);
    assert_eq!(client.call("test.echo", json!(1)).await.unwrap(), json!(1));

    for round in 0..2 {
        let port = client.server_port().expect("connected");
        let node = cluster
            .nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .expect("connected to a member");
        node.stop();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let moved = client.server_port().is_some_and(|now| now != port);
            if moved && let Ok(body) = client.call("test.echo", json!(round)).await {
                assert_eq!(body, json!(round));
                break;
            }
            assert!(Instant::now() < deadline, "never moved off the lost node");
            sleep(Duration::from_millis(100)).await;
        }
        cluster
            .nodes
            .iter_mut()
            .find(|node| node.port() == port)
            .unwrap()
            .start();
        cluster.wait_until_routed().await;
    }
}
