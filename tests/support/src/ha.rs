//! Highly available topologies of real servers on free loopback ports (SPEC §16): a
//! `nats-server` cluster, a Redis primary with a replica and three sentinels, and a Redis
//! Cluster. Each waits until it is formed, so tests start from a working topology, and each
//! node can be killed to test failover.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::servers::{NatsServer, RedisSentinel, RedisServer, free_port};
use crate::wire::redis;

/// How long a topology may take to form.
const FORM_DEADLINE: Duration = Duration::from_secs(30);

fn fresh_dir(what: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

async fn wait_until(what: &str, mut formed: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + FORM_DEADLINE;
    while !formed().await {
        assert!(Instant::now() < deadline, "{what} did not form in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `nats-server` cluster whose nodes route to each other.
#[derive(Debug)]
pub struct NatsCluster {
    /// The nodes; each can be stopped and started again on its ports.
    pub nodes: Vec<NatsServer>,
    monitor_ports: Vec<u16>,
}

impl NatsCluster {
    /// Starts `size` nodes (`--cluster`, `--routes`, `--cluster_name`) and waits until every
    /// node has a route to every other.
    pub async fn start(size: usize) -> Self {
        let cluster_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let monitor_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let nodes = (0..size)
            .map(|i| {
                let routes: Vec<String> = cluster_ports
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, port)| format!("nats://127.0.0.1:{port}"))
                    .collect();
                NatsServer::with_args(vec![
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{}", cluster_ports[i]),
                    "--routes".into(),
                    routes.join(","),
                    "--cluster_name".into(),
                    "test-cluster".into(),
                    "-m".into(),
                    monitor_ports[i].to_string(),
                ])
            })
            .collect();
        let cluster = Self {
            nodes,
            monitor_ports,
        };
        cluster.wait_until_routed().await;
        cluster
    }

    /// The seed list of every node, `nats://127.0.0.1:A,nats://127.0.0.1:B,...`.
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(NatsServer::url).collect();
        urls.join(",")
    }

    /// Waits until every running node routes to every other running node.
    pub async fn wait_until_routed(&self) {
        let wanted = self.nodes.len() - 1;
        let ports = self.monitor_ports.clone();
        wait_until("the NATS cluster", async || {
            let mut all = true;
            for port in &ports {
                let (status, body) = tokio::time::timeout(
                    Duration::from_secs(2),
                    crate::wire::http_get(*port, "/routez"),
                )
                .await
                .unwrap_or_default();
                let routes = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|json| json["num_routes"].as_u64());
                all &= status == 200 && routes.is_some_and(|n| n as usize >= wanted);
            }
            all
        })
        .await;
    }
}

/// A Redis primary, one replica, and three sentinels watching the primary as `primary`.
#[derive(Debug)]
pub struct RedisSentinels {
    /// The primary at start.
    pub primary: RedisServer,
    /// Its replica, promoted when the primary dies.
    pub replica: RedisServer,
    /// The sentinels.
    pub sentinels: Vec<RedisSentinel>,
}

impl RedisSentinels {
    /// The name the sentinels monitor the primary under.
    pub const SERVICE: &'static str = "primary";

    /// Starts the primary, its replica and three sentinels, and waits until the replica is in
    /// sync and every sentinel knows the replica and the other sentinels.
    pub async fn start() -> Self {
        let primary = RedisServer::new();
        let replica = RedisServer::with_args(vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.port().to_string(),
        ]);
        let dir = fresh_dir("sentinels");
        let sentinels = (0..3)
            .map(|_| RedisSentinel::new(&dir, Self::SERVICE, primary.port()))
            .collect();
        let set = Self {
            primary,
            replica,
            sentinels,
        };
        let replica_url = set.replica.url();
        let sentinel_urls: Vec<String> = set
            .sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port()))
            .collect();
        wait_until("the Redis replica and sentinels", async || {
            let info = redis(&replica_url, &["INFO", "replication"]).await;
            if !info.contains("master_link_status:up") {
                return false;
            }
            for url in &sentinel_urls {
                let info = redis(url, &["INFO", "sentinel"]).await;
                if !(info.contains("status=ok")
                    && info.contains("slaves=1")
                    && info.contains("sentinels=3"))
                {
                    return false;
                }
            }
            true
        })
        .await;
        set
    }

    /// fred's URL for this deployment:
    /// `redis-sentinel://127.0.0.1:S1?sentinelServiceName=primary&node=127.0.0.1:S2&...`.
    pub fn url(&self) -> String {
        let mut ports = self.sentinels.iter().map(RedisSentinel::port);
        let first = ports.next().expect("three sentinels");
        let nodes: Vec<String> = ports.map(|p| format!("node=127.0.0.1:{p}")).collect();
        format!(
            "redis-sentinel://127.0.0.1:{first}/0?sentinelServiceName={}&{}",
            Self::SERVICE,
            nodes.join("&")
        )
    }

    /// Waits until the sentinels name `port` as the primary.
    pub async fn wait_for_primary(&self, port: u16) {
        let url = format!("redis://127.0.0.1:{}", self.sentinels[0].port());
        let wanted = format!("127.0.0.1:{port}");
        wait_until("the Sentinel failover", async || {
            let info = redis(&url, &["INFO", "sentinel"]).await;
            info.contains(&format!("address={wanted}"))
        })
        .await;
    }
}

/// A Redis Cluster of primaries only, every slot assigned.
#[derive(Debug)]
pub struct RedisCluster {
    /// The nodes.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `size` (at least 3) `--cluster-enabled yes` nodes, joins them with `redis-cli
    /// --cluster create` and waits until the cluster's state is `ok` on every node.
    pub async fn start(size: usize) -> Self {
        let dir = fresh_dir("redis-cluster");
        let nodes: Vec<RedisServer> = (0..size)
            .map(|i| {
                std::fs::create_dir_all(dir.join(i.to_string())).expect("a node's folder");
                RedisServer::with_args(vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    format!("nodes-{i}.conf"),
                    "--cluster-node-timeout".into(),
                    "2000".into(),
                    "--dir".into(),
                    dir.join(i.to_string()).display().to_string(),
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let status = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("redis-cli runs (Debian package redis-tools)");
        assert!(status.success(), "redis-cli --cluster create failed");
        let urls: Vec<String> = nodes.iter().map(RedisServer::url).collect();
        wait_until("the Redis Cluster", async || {
            for url in &urls {
                if !redis(url, &["CLUSTER", "INFO"])
                    .await
                    .contains("cluster_state:ok")
                {
                    return false;
                }
            }
            true
        })
        .await;
        Self { nodes }
    }

    /// fred's URL: `redis-cluster://127.0.0.1:A?node=127.0.0.1:B&node=127.0.0.1:C`.
    pub fn url(&self) -> String {
        let mut ports = self.nodes.iter().map(RedisServer::port);
        let first = ports.next().expect("cluster nodes");
        let nodes: Vec<String> = ports.map(|p| format!("node=127.0.0.1:{p}")).collect();
        format!("redis-cluster://127.0.0.1:{first}?{}", nodes.join("&"))
    }
}
