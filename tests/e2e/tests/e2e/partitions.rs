//! Network partitions (issue 22): one `dispatch-monitor run` replica runs in its own network
//! namespace and reaches NATS and Redis over a veth pair; `iptables` rules in the namespace
//! then cut it off from Redis only, or from NATS only, while it holds the vendor lease in the
//! middle of a slow cycle. Another replica, in the root namespace, takes over; with a
//! deduplicating notifier nothing is sent twice, and nothing is lost. When the rule goes, the
//! cut-off replica rejoins: `/_health` is up and its cycles deliver again.
//!
//! Skipped, with a message, where network namespaces or `iptables` are not allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::{DispatchSpec, Status, VendorName};
use e2e::bridge_sim::{Fault, Sim, scenario, subjects};
use serde_json::Value;
use test_support::netns::NetNs;
use test_support::servers::{NatsServer, RedisServer, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The environment name: the keys' prefix.
const ENV: &str = "partitions";
/// The vendor lease's TTL, in seconds.
const LEASE_TTL_SECS: u64 = 6;
/// Dispatches booked before the cut.
const DISPATCHES: usize = 6;
/// The latency of every note append and SMS while the cut is made: a cycle is then in flight.
const SLOW_MS: u64 = 300;

/// One replica and the lines it logs.
struct Replica {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    fn spawn(mut command: Command, env: Vec<(&str, String)>) -> Self {
        let mut child = command
            .envs(env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, logs }
    }

    fn lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

fn settings(
    name: &str,
    nats: String,
    redis: String,
    address: Ipv4Addr,
    port: u16,
) -> Vec<(&'static str, String)> {
    vec![
        ("NATS_SERVER1", nats),
        ("REDIS_URL", redis),
        ("ENVIRONMENT_NAME", ENV.into()),
        ("MONITOR_REPLICA_NAME", name.into()),
        ("DISPATCH_MONITOR_SERVER_ADDRESS", address.to_string()),
        ("DISPATCH_MONITOR_SERVER_PORT", port.to_string()),
        ("MONITOR_LIT_INTERVAL_SECS", "1".into()),
        ("MONITOR_CTS_INTERVAL_SECS", "1".into()),
        ("MONITOR_LEASE_TTL_SECS", LEASE_TTL_SECS.to_string()),
        ("MONITOR_REQUEST_TIMEOUT_SECS", "2".into()),
        ("MONITOR_CONCURRENCY", "1".into()),
        ("MONITOR_ALERT_LEVEL", "errors".into()),
        ("MONITOR_LOG_FORMAT", "json".into()),
        ("RUST_LOG", "info".into()),
    ]
}

/// The servers, the simulated bridges, and the namespace the first replica runs in.
struct World {
    netns: NetNs,
    nats: NatsServer,
    redis: RedisServer,
    sim: Sim,
    booked: Vec<String>,
}

impl World {
    /// `None` (after saying why) where namespaces or `iptables` cannot be used.
    async fn start() -> Option<Self> {
        let netns = match NetNs::create() {
            Ok(netns) => netns,
            Err(why) => {
                eprintln!("SKIPPED: network namespaces cannot be used here: {why}");
                return None;
            }
        };
        let nats = NatsServer::on_host(netns.root_address());
        let redis = RedisServer::also_on_host(netns.root_address());
        let sim = e2e::start(&nats.url(), dispatch_monitor::wiring::vendor_adapters()).await;
        sim.set_deduplicate_sms(true);
        Some(Self {
            netns,
            nats,
            redis,
            sim,
            booked: Vec::new(),
        })
    }

    /// The replica in the namespace, reaching both servers over the veth.
    fn partitioned_replica(&self, port: u16) -> Replica {
        let root = self.netns.root_address();
        let env = settings(
            "cut-off",
            self.nats.url(),
            format!("redis://{root}:{}", self.redis.port()),
            self.netns.ns_address(),
            port,
        );
        let mut command = self.netns.command(&e2e::monitor_binary());
        command.arg("run");
        Replica::spawn(command, env)
    }

    /// The replica in the root namespace, on Redis's loopback address.
    fn root_replica(&self) -> Replica {
        let env = settings(
            "root",
            self.nats.url(),
            self.redis.url(),
            Ipv4Addr::LOCALHOST,
            free_port(),
        );
        let mut command = Command::new(e2e::monitor_binary());
        command.arg("run").env_clear();
        Replica::spawn(command, env)
    }

    /// A confirmed LIT dispatch with a tech, a day away: 4 notes and 3 SMS are owed.
    fn book(&mut self) {
        let n = self.booked.len();
        let number = format!("DIS7{n:04}");
        let ticket = format!("70{n:05}");
        let appointment = scenario::local_time(Utc::now(), chrono::Duration::hours(30), "Pacific");
        let spec = DispatchSpec {
            status: Status::Confirmed,
            appointment: appointment.map(|a| (a, "Pacific".to_owned())),
            tech_name: Some(format!("Tech {n}")),
            tech_phone: Some(format!("+1 212 555 {:04}", 2000 + n)),
            client_phone: Some(format!("+1 212 555 {:04}", 1000 + n)),
            site: Some("Red Rose Inn".to_owned()),
            street: Some("160 Broadway".to_owned()),
            ..DispatchSpec::new(&number, &ticket)
        };
        self.sim.upsert(&VendorName::fixed("LIT"), spec);
        self.sim.book(&ticket, &number);
        self.booked.push(ticket);
    }

    fn slow_bridges(&self, ms: u64) {
        for subject in [subjects::NOTE_APPEND, subjects::SMS] {
            self.sim.add_fault(&Fault {
                subject: subject.into(),
                latency_ms: Some(ms),
                ..Fault::default()
            });
        }
    }

    /// The holder of the LIT lease, as stored.
    async fn lease_holder(&self) -> String {
        let key = format!("{ENV}-dispatch-monitor:lease:LIT");
        e2e::redis(&self.redis.url(), &["GET", &key]).await
    }

    /// The tickets still short of their 5 notes (the portal's and the monitor's 4).
    fn tickets_missing_notes(&self) -> Vec<&String> {
        self.booked
            .iter()
            .filter(|ticket| self.sim.ticket_notes(ticket).len() < 5)
            .collect()
    }
}

/// Waits until `done` holds, at most `limit`; panics with `what` otherwise.
async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET path` on `address:port`; `(0, "")` when nothing answers.
async fn http_get(address: Ipv4Addr, port: u16, path: &str) -> (u16, String) {
    let Ok(Ok(mut stream)) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((address, port)),
    )
    .await
    else {
        return (0, String::new());
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut response = Vec::new();
    let exchange = async {
        stream.write_all(request.as_bytes()).await?;
        stream.read_to_end(&mut response).await
    };
    if !matches!(
        tokio::time::timeout(Duration::from_secs(5), exchange).await,
        Ok(Ok(_))
    ) {
        return (0, String::new());
    }
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The dispatch numbers of the lines in `lines` logged inside a dispatch's span.
fn dispatches_in(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| {
            line["spans"]
                .as_array()?
                .iter()
                .find_map(|span| span["dispatch_number"].as_str().map(str::to_owned))
        })
        .collect()
}

fn position(lines: &[String], message: &str) -> Option<usize> {
    lines.iter().position(|line| line.contains(message))
}

/// What a partition test counts, printed at its end.
struct Figures {
    texts: usize,
    duplicates: usize,
    answered_again: usize,
    notes_missing: usize,
}

/// Every booked ticket has its notes once, every SMS key was delivered once; the figures.
fn check_nothing_lost_nothing_twice(world: &World) -> Figures {
    let outbox = world.sim.outbox();
    let mut notes_missing = 0;
    for ticket in &world.booked {
        let notes = world.sim.ticket_notes(ticket);
        let unique: BTreeSet<&String> = notes.iter().collect();
        assert_eq!(
            unique.len(),
            notes.len(),
            "{ticket}: a note twice: {notes:#?}"
        );
        notes_missing += 5_usize.saturating_sub(notes.len());
    }
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for sms in &outbox.sms {
        *per_key
            .entry(sms.idempotency_key.as_deref().unwrap_or("none"))
            .or_default() += 1;
    }
    let duplicates = per_key.values().map(|n| n - 1).sum();
    let figures = Figures {
        texts: outbox.sms.len(),
        duplicates,
        answered_again: outbox.deduplicated,
        notes_missing,
    };
    assert_eq!(figures.duplicates, 0, "{per_key:#?}");
    assert_eq!(figures.notes_missing, 0);
    assert_eq!(per_key.len(), world.booked.len() * 3, "{per_key:#?}");
    figures
}

/// Starts the cut-off replica alone, waits until it holds the lease in the middle of a slow
/// cycle (some texts out, not all), and returns it with its HTTP port.
async fn replica_mid_cycle(world: &mut World) -> (Replica, u16) {
    for _ in 0..DISPATCHES {
        world.book();
    }
    world.slow_bridges(SLOW_MS);
    let port = free_port();
    let mut replica = world.partitioned_replica(port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(3..DISPATCHES * 3 / 2).contains(&world.sim.outbox().sms.len()) {
        let lines = replica.lines();
        let tail = &lines[lines.len().saturating_sub(20)..];
        assert!(
            Instant::now() < deadline,
            "no texts mid-cycle: {} sent; the replica ({:?}) logged {tail:#?}",
            world.sim.outbox().sms.len(),
            replica.child.try_wait()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let holder = world.lease_holder().await;
    assert!(holder.starts_with("cut-off/"), "the lease is {holder:?}");
    (replica, port)
}

/// Heals `port`, stops the other replica, and checks the cut-off one rejoins: `/_health` up,
/// and a dispatch booked now gets its notes from it alone.
async fn heal_and_rejoin(
    world: &mut World,
    cut_off: &Replica,
    other: &mut Replica,
    port: u16,
    cut: u16,
) {
    world.netns.heal(cut).unwrap();
    other.kill();
    let address = world.netns.ns_address();
    wait_for(
        "/_health up after healing",
        Duration::from_secs(30),
        async || {
            http_get(address, port, "/_health").await
                == (200, r#"{"nats":"up","redis":"up"}"#.to_owned())
        },
    )
    .await;
    world.slow_bridges(0);
    world.book();
    let ticket = world.booked.last().unwrap().clone();
    let (sim, booked) = (&world.sim, world.booked.len());
    wait_for(
        "the rejoined replica's notes and texts",
        Duration::from_secs(60),
        async || {
            let keys: BTreeSet<Option<String>> = sim
                .outbox()
                .sms
                .into_iter()
                .map(|sms| sms.idempotency_key)
                .collect();
            sim.ticket_notes(&ticket).len() >= 5 && keys.len() >= booked * 3
        },
    )
    .await;
    for line in cut_off.lines().iter().chain(&other.lines()) {
        assert!(!line.contains("panicked"), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_from_redis_stops_dispatch_and_another_replica_takes_over() {
    let Some(mut world) = World::start().await else {
        return;
    };
    let (cut_off, port) = replica_mid_cycle(&mut world).await;
    let redis_port = world.redis.port();
    let mut other = world.root_replica();
    world.netns.cut(redis_port).unwrap();
    let cut_at = Instant::now();

    // The other replica takes the lease only once it lapsed.
    let ttl = Duration::from_secs(LEASE_TTL_SECS);
    wait_for("the lease taken over", ttl * 4, async || {
        world.lease_holder().await.starts_with("root/")
    })
    .await;
    let took_over = cut_at.elapsed();
    wait_for(
        "every note and text",
        Duration::from_secs(120),
        async || {
            world.tickets_missing_notes().is_empty()
                && world.sim.outbox().sms.len() >= DISPATCHES * 3
        },
    )
    .await;

    // Cut off, it noticed the lapse, and started no dispatch after that.
    let lines = cut_off.lines();
    let lapsed = position(&lines, "the vendor lease was not renewed in time")
        .expect("the cut-off replica saw its lease lapse");
    let before = dispatches_in(&lines[..lapsed]);
    let after = dispatches_in(&lines[lapsed..]);
    assert!(
        after.is_subset(&before),
        "started after the lapse: {after:?} (before: {before:?})"
    );

    heal_and_rejoin(&mut world, &cut_off, &mut other, port, redis_port).await;
    let figures = check_nothing_lost_nothing_twice(&world);
    eprintln!(
        "partition from Redis: taken over after {:.1} s (lease TTL {LEASE_TTL_SECS} s); {} \
         texts sent, {} sent twice with a deduplicating notifier, {} that a notifier without \
         deduplication would have sent twice, {} notes missing",
        took_over.as_secs_f64(),
        figures.texts,
        figures.duplicates,
        figures.answered_again,
        figures.notes_missing
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_from_nats_loses_nothing_and_the_replica_rejoins() {
    let Some(mut world) = World::start().await else {
        return;
    };
    let (cut_off, port) = replica_mid_cycle(&mut world).await;
    let nats_port = world.nats.port();
    let mut other = world.root_replica();
    world.netns.cut(nats_port).unwrap();

    // Cut off from NATS, the replica still reaches Redis: /_health says which is down.
    let address = world.netns.ns_address();
    wait_for(
        "/_health reports NATS down",
        Duration::from_secs(30),
        async || {
            let (status, body) = http_get(address, port, "/_health").await;
            status == 503 && body.contains(r#""nats":"down""#)
        },
    )
    .await;
    world.slow_bridges(0);
    wait_for(
        "every note and text",
        Duration::from_secs(120),
        async || {
            world.tickets_missing_notes().is_empty()
                && world.sim.outbox().sms.len() >= DISPATCHES * 3
        },
    )
    .await;

    heal_and_rejoin(&mut world, &cut_off, &mut other, port, nats_port).await;
    let figures = check_nothing_lost_nothing_twice(&world);
    eprintln!(
        "partition from NATS: {} texts sent, {} sent twice with a deduplicating notifier, {} \
         that a notifier without deduplication would have sent twice, {} notes missing",
        figures.texts, figures.duplicates, figures.answered_again, figures.notes_missing
    );
}
