//! Corrupt Redis (issue 22), table-driven: while `dispatch-monitor run` cycles, garbage is
//! written into one key a dispatch's cycle reads — a ledger entry, a ledger hash, a registry
//! key, the vendor lease, a journal list, an opt-out entry, a pause key — before the dispatch
//! is booked. Each gives a clear log line and a Slack alert (the journal needs neither: its garbage is passed over), never a
//! panic and never a text twice (the notifier does not deduplicate here, so a duplicate would
//! show), and the dispatch gets every note and text once the key is fixed or has expired.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use dispatch_monitor::wiring;
use domain::actions::{ActionKind, Recipient};
use domain::ports::{LedgerKey, SmsPurpose};
use domain::{DispatchNumber, DispatchSpec, PhoneE164, Status, VendorName};
use e2e::bridge_sim::{Sim, scenario};
use test_support::servers::{NatsServer, RedisServer};

const ENV: &str = "corrupt";
const LEASE: &str = "corrupt-dispatch-monitor:lease:LIT";

/// One row: what is written, the log line and Slack alert it must give, and how it is fixed
/// (nothing: it expires). `{n}` is the dispatch number, `{field}` its client's confirmation
/// text's ledger field, `{client}` the client's number and `{ending}` its last four digits.
struct Row {
    name: &'static str,
    corrupt: &'static [&'static str],
    log: Option<&'static str>,
    slack: Option<&'static str>,
    /// Whether texts wait until the key is fixed (whether they went out is unknown).
    withholds: bool,
    fix: &'static [&'static str],
}

const ROWS: &[Row] = &[
    Row {
        name: "a ledger entry",
        corrupt: &[
            "HSET",
            "corrupt-dispatch-monitor:ledger:LIT:{n}",
            "{field}",
            "}x{",
        ],
        log: Some("cannot be read, so whether it went out is unknown"),
        slack: Some("cannot be read"),
        withholds: true,
        fix: &["HDEL", "corrupt-dispatch-monitor:ledger:LIT:{n}", "{field}"],
    },
    Row {
        name: "a ledger hash",
        corrupt: &["SET", "corrupt-dispatch-monitor:ledger:LIT:{n}", "garbage"],
        log: Some("WRONGTYPE"),
        slack: Some("WRONGTYPE"),
        withholds: true,
        fix: &["DEL", "corrupt-dispatch-monitor:ledger:LIT:{n}"],
    },
    Row {
        name: "a registry key",
        corrupt: &["SET", "corrupt-{n}", "garbage"],
        log: Some("the registry key corrupt-{n} holds"),
        slack: Some("the registry key corrupt-{n} holds"),
        withholds: false,
        fix: &["DEL", "corrupt-{n}"],
    },
    Row {
        name: "the vendor lease",
        corrupt: &["SET", LEASE, "garbage"],
        log: Some("held a value without an expiry"),
        slack: Some("held a value without an expiry"),
        withholds: false,
        fix: &[],
    },
    Row {
        name: "a journal list",
        corrupt: &["RPUSH", "corrupt-dispatch-monitor:journal:LIT:{n}", "}x{"],
        log: None,
        slack: None,
        withholds: false,
        fix: &[],
    },
    Row {
        name: "an opt-out entry",
        corrupt: &[
            "HSET",
            "corrupt-dispatch-monitor:opt-outs",
            "{client}",
            "}x{",
        ],
        log: Some("the opt-out entry of the number ending {ending} in"),
        slack: Some("the opt-out entry of the number ending {ending} in"),
        withholds: true,
        fix: &["HDEL", "corrupt-dispatch-monitor:opt-outs", "{client}"],
    },
    Row {
        name: "a pause key",
        corrupt: &["SET", "corrupt-dispatch-monitor:paused:LIT:{n}", "garbage"],
        log: Some("the pause key corrupt-dispatch-monitor:paused:LIT:{n} cannot be read"),
        slack: Some("the pause key corrupt-dispatch-monitor:paused:LIT:{n} cannot be read"),
        withholds: true,
        fix: &["DEL", "corrupt-dispatch-monitor:paused:LIT:{n}"],
    },
];

fn number(n: usize) -> String {
    format!("DIS8{n:04}")
}

fn client_phone(n: usize) -> String {
    format!("+1 212 555 {:04}", 1000 + n)
}

/// The ledger field of the confirmation text to dispatch `n`'s client.
fn client_field(n: usize) -> String {
    LedgerKey {
        vendor: VendorName::fixed("LIT"),
        dispatch_number: DispatchNumber::parse(&number(n)).unwrap(),
        purpose: SmsPurpose {
            kind: ActionKind::ConfirmedSms,
            to: Recipient::Client,
        },
        recipient: PhoneE164::parse_us(&client_phone(n)).unwrap(),
        change: None,
    }
    .entry_id()
}

fn fill(template: &str, n: usize) -> String {
    let client = PhoneE164::parse_us(&client_phone(n)).unwrap().to_string();
    template
        .replace("{n}", &number(n))
        .replace("{field}", &client_field(n))
        .replace("{ending}", &client[client.len() - 4..])
        .replace("{client}", &client)
}

/// A confirmed LIT dispatch with a tech, a day away: 4 notes and 3 SMS are owed.
fn book(sim: &Sim, n: usize) -> String {
    let ticket = format!("80{n:05}");
    let appointment = scenario::local_time(Utc::now(), chrono::Duration::hours(30), "Pacific");
    let spec = DispatchSpec {
        status: Status::Confirmed,
        appointment: appointment.map(|a| (a, "Pacific".to_owned())),
        tech_name: Some(format!("Tech {n}")),
        tech_phone: Some(format!("+1 212 555 {:04}", 2000 + n)),
        client_phone: Some(client_phone(n)),
        site: Some("Red Rose Inn".to_owned()),
        street: Some("160 Broadway".to_owned()),
        ..DispatchSpec::new(&number(n), &ticket)
    };
    sim.upsert(&VendorName::fixed("LIT"), spec);
    sim.book(&ticket, &number(n));
    ticket
}

/// The replica and the lines it logs.
struct Replica {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    fn start(nats: &NatsServer, redis: &RedisServer) -> Self {
        let mut child = e2e::monitor_run([
            ("NATS_SERVER1", nats.url()),
            ("REDIS_URL", redis.url()),
            ("ENVIRONMENT_NAME", ENV.into()),
            ("DISPATCH_MONITOR_SERVER_PORT", "0".into()),
            ("MONITOR_LIT_INTERVAL_SECS", "1".into()),
            ("MONITOR_CTS_INTERVAL_SECS", "1".into()),
            ("MONITOR_LEASE_TTL_SECS", "6".into()),
            ("MONITOR_REQUEST_TIMEOUT_SECS", "2".into()),
            ("MONITOR_ALERT_LEVEL", "errors".into()),
            ("RUST_LOG", "info".into()),
        ])
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

    fn logged(&self, text: &str) -> bool {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(text))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_for(replica: &Replica, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            let logs = replica.logs.lock().unwrap().clone();
            let warnings: Vec<&String> = logs
                .iter()
                .filter(|line| !line.contains(" INFO "))
                .collect();
            let tail = &warnings[warnings.len().saturating_sub(15)..];
            panic!("timed out waiting: {what}; the replica's last warnings: {tail:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The SMS delivered per idempotency key of dispatch `n`.
fn texts_of(sim: &Sim, n: usize) -> usize {
    let prefix = format!("{ENV}:LIT:{}:", number(n));
    sim.outbox()
        .sms
        .iter()
        .filter(|sms| {
            sms.idempotency_key
                .as_deref()
                .is_some_and(|key| key.starts_with(&prefix))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_redis_keys_alert_never_send_twice_and_recover() {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::start(&nats.url(), wiring::vendor_adapters()).await;
    let replica = Replica::start(&nats, &redis);
    let url = redis.url();
    for (n, row) in ROWS.iter().enumerate() {
        let command: Vec<String> = row.corrupt.iter().map(|arg| fill(arg, n)).collect();
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        e2e::redis(&url, &args).await;
        let ticket = book(&sim, n);
        if let Some(log) = row.log {
            let log = fill(log, n);
            wait_for(
                &replica,
                &format!("{}: log {log:?}", row.name),
                Duration::from_secs(30),
                || replica.logged(&log),
            )
            .await;
        }
        if let Some(slack) = row.slack {
            let slack = fill(slack, n);
            wait_for(
                &replica,
                &format!("{}: Slack {slack:?}", row.name),
                Duration::from_secs(30),
                || sim.outbox().slack.iter().any(|line| line.contains(&slack)),
            )
            .await;
        }
        if row.withholds {
            assert!(texts_of(&sim, n) < 3, "{}: every text went out", row.name);
        }
        if !row.fix.is_empty() {
            let command: Vec<String> = row.fix.iter().map(|arg| fill(arg, n)).collect();
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            e2e::redis(&url, &args).await;
        }
        wait_for(
            &replica,
            &format!("{}: recovery", row.name),
            Duration::from_secs(40),
            || sim.ticket_notes(&ticket).len() >= 5 && texts_of(&sim, n) >= 3,
        )
        .await;
        eprintln!("corrupt {}: alerted, recovered", row.name);
    }

    // Nothing twice, nothing panicked, the journal never failed to write.
    let outbox = sim.outbox();
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for sms in &outbox.sms {
        *per_key
            .entry(sms.idempotency_key.as_deref().unwrap_or("none"))
            .or_default() += 1;
    }
    assert!(per_key.values().all(|n| *n == 1), "{per_key:#?}");
    assert_eq!(per_key.len(), ROWS.len() * 3);
    for n in 0..ROWS.len() {
        let notes = sim.ticket_notes(&format!("80{n:05}"));
        assert_eq!(notes.len(), 5, "{notes:#?}");
    }
    assert!(!replica.logged("panicked"));
    assert!(!replica.logged("could not write the journal"));
    eprintln!(
        "corrupt Redis: {} rows, {} texts sent once each, {} Slack alerts",
        ROWS.len(),
        outbox.sms.len(),
        outbox.slack.len()
    );
}
