//! The binary itself against real `nats-server` and `redis-server` with the simulated bridges:
//! `run` (health, metrics, JSON logs, SIGTERM), `plan` and `once`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dispatch_monitor::wiring;
use e2e::bridge_sim::{Fault, Sim};
use e2e::{http_get, redis};
use serde_json::Value;
use test_support::servers::{NatsServer, RedisServer};

struct Services {
    nats: NatsServer,
    redis: RedisServer,
    sim: Sim,
}

async fn services() -> Services {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::spec_world(&nats.url(), wiring::vendor_adapters()).await;
    Services { nats, redis, sim }
}

fn monitor(services: &Services, args: &[&str], extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dispatch-monitor"));
    command
        .args(args)
        .env_clear()
        .env("NATS_SERVER1", services.nats.url())
        .env("REDIS_URL", services.redis.url())
        .env("ENVIRONMENT_NAME", "svc")
        .env("MONITOR_REQUEST_TIMEOUT_SECS", "5")
        .envs(extra.iter().copied());
    command
}

/// The lines a child process writes to standard error, read as they come.
struct LogTail {
    lines: Arc<Mutex<Vec<String>>>,
    reader: std::thread::JoinHandle<()>,
}

impl LogTail {
    fn follow(child: &mut Child) -> Self {
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { lines, reader }
    }

    /// The HTTP port the service logged when it started listening (it was given port 0).
    async fn http_port(&self) -> u16 {
        let mut port = None;
        wait_until(
            "the HTTP listening line",
            Duration::from_secs(30),
            async || {
                port = self.lines.lock().unwrap().iter().find_map(|line| {
                    let line: Value = serde_json::from_str(line).ok()?;
                    let address = line["fields"]["address"].as_str()?;
                    address.rsplit_once(':')?.1.parse().ok()
                });
                port.is_some()
            },
        )
        .await;
        port.unwrap()
    }

    /// Every line, once the process has exited.
    fn finish(self) -> String {
        self.reader.join().unwrap();
        self.lines.lock().unwrap().join("\n")
    }
}

async fn wait_until(what: &str, deadline: Duration, mut check: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !check().await {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn wait_for_exit(child: &mut Child, deadline: Duration) -> Option<i32> {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > until {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_health_and_metrics_acts_once_and_stops_on_sigterm() {
    let s = services().await;
    let mut child = monitor(
        &s,
        &["run"],
        &[
            ("DISPATCH_MONITOR_SERVER_PORT", "0"),
            ("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1"),
            ("MONITOR_LIT_INTERVAL_SECS", "1"),
            ("MONITOR_CTS_INTERVAL_SECS", "1"),
            ("MONITOR_LEASE_TTL_SECS", "6"),
            ("MONITOR_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let logs = LogTail::follow(&mut child);
    let port = logs.http_port().await;
    wait_until("health 200", Duration::from_secs(30), async || {
        http_get(port, "/_health").await.0 == 200
    })
    .await;
    wait_until("7 SMS", Duration::from_secs(30), async || {
        s.sim.outbox().sms.len() >= 7
    })
    .await;
    // Several more one-second cycles run: nothing is sent twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.sim.outbox().sms.len(), 7);
    assert_eq!(s.sim.outbox().notes.len(), 11);

    let (status, metrics) = http_get(port, "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "dispatch_monitor_cycle_duration_seconds",
        "dispatch_monitor_dispatches_seen_total",
        "dispatch_monitor_sms_total",
        "dispatch_monitor_notes_total",
        "dispatch_monitor_rpc_duration_seconds",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
    assert!(metrics.contains(r#"status="confirmed""#), "{metrics}");
    // The gauges the alert rules in deploy/prometheus read.
    for line in [
        r#"dispatch_monitor_dependency_up{dependency="nats"} 1"#,
        r#"dispatch_monitor_dependency_up{dependency="redis"} 1"#,
        r#"dispatch_monitor_cycle_interval_seconds{vendor="LIT"} 1"#,
        r#"dispatch_monitor_cycle_interval_seconds{vendor="CTS"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "/metrics lacks {line}:\n{metrics}"
        );
    }
    let last_ok = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                r#"dispatch_monitor_last_successful_cycle_timestamp_seconds{vendor="LIT"} "#,
            )
        })
        .and_then(|value| value.parse::<f64>().ok())
        .expect("the last successful LIT cycle");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - 10.0..=now).contains(&last_ok), "{last_ok} vs {now}");

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = wait_for_exit(&mut child, Duration::from_secs(20));
    assert_eq!(code, Some(0), "SIGTERM ends the service with status 0");
    let leases = redis(&s.redis.url(), &["KEYS", "svc-dispatch-monitor:lease:*"]).await;
    assert_eq!(leases, "", "leases are released on shutdown");

    let logs = logs.finish();
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(!lines.is_empty(), "JSON log lines: {logs}");
    let about_dispatches: Vec<&Value> = lines
        .iter()
        .filter(|l| l.to_string().contains("\"dispatch_number\""))
        .collect();
    assert!(!about_dispatches.is_empty());
    for line in about_dispatches {
        let text = line.to_string();
        assert!(
            text.contains("\"vendor\"") && text.contains("\"ticket_id\""),
            "{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_json_and_touches_nothing_then_once_acts() {
    let s = services().await;
    let output = monitor(&s, &["plan", "--format", "json"], &[])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rows.iter().filter(|r| r["channel"] == "sms").count(), 7);
    // One row pinned field for field.
    assert_eq!(
        rows[1],
        serde_json::json!({
            "vendor": "LIT",
            "dispatch_number": "DIS37405",
            "ticket_id": "3544800",
            "status": "confirmed",
            "action": "confirmation SMS to the client",
            "channel": "sms",
            "recipient": "+12123595129",
            "text": "This is an automated message from MetTel.\n\nA dispatch has been confirmed for your location on Mar 16, 2020 @ 04:00 PM Pacific.\n",
            "already_sent": false
        })
    );
    assert!(
        rows.iter()
            .any(|r| r["recipient"] == "+12123595130"
                && r["action"] == "confirmation SMS to the tech")
    );
    {
        let outbox = s.sim.outbox();
        assert!(outbox.sms.is_empty() && outbox.notes.is_empty() && outbox.slack.is_empty());
    }
    assert_eq!(redis(&s.redis.url(), &["DBSIZE"]).await, "0");

    let lit = monitor(&s, &["plan", "--vendor", "lit"], &[])
        .output()
        .unwrap();
    let lit = String::from_utf8_lossy(&lit.stdout).into_owned();
    // The README shows this output.
    assert!(
        lit.starts_with("== LIT: 6 records, 2 skipped, 3 ours, 3 with actions\n"),
        "{lit}"
    );
    assert!(lit.contains("-- LIT DIS37405 ticket 3544800 (confirmed)\n   1. Confirmed note\n"));

    let text = monitor(&s, &["plan", "--vendor", "cts"], &[])
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("== CTS"), "{text}");
    assert!(!text.contains("== LIT"));

    let once = monitor(&s, &["once"], &[]).output().unwrap();
    assert_eq!(
        once.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert_eq!(s.sim.outbox().sms.len(), 7);

    // A vendor whose list request fails makes `once` exit 1; the other vendor still runs.
    s.sim.add_fault(&Fault {
        subject: "lit.dispatch.get".into(),
        fail: 1_000,
        ..Fault::default()
    });
    let once = monitor(&s, &["once"], &[]).output().unwrap();
    assert_eq!(once.status.code(), Some(1));
    let once = monitor(&s, &["once", "--vendor", "cts"], &[])
        .output()
        .unwrap();
    assert_eq!(once.status.code(), Some(0));
    drop(s.nats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_redis_down_and_the_journal_queue_full_exits_0_within_the_grace_period() {
    // The journal's flush once waited for room in its full queue outside its timeout, and the
    // HTTP server and the lease release were waited for without bound (SPEC §18.6).
    let mut s = services().await;
    let lit = domain::VendorName::parse("LIT").unwrap();
    // Small records, many of them: all start at once and each journals two writes.
    let records = (0..7000)
        .map(|i| {
            serde_json::json!({
                "Dispatch_Number": format!("DIS{i:05}"),
                "MetTel_Bruin_TicketID": format!("{}", 100_000 + i),
                "Dispatch_Status": "New Dispatch",
            })
        })
        .collect();
    s.sim.set_records(&lit, records);
    // The list comes late, so Redis can be stopped while the cycle holds its lease.
    s.sim.add_fault(&Fault {
        subject: "lit.dispatch.get".into(),
        latency_ms: Some(3000),
        ..Fault::default()
    });
    let grace = Duration::from_secs(2);
    let mut child = monitor(
        &s,
        &["run"],
        &[
            ("DISPATCH_MONITOR_SERVER_PORT", "0"),
            ("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1"),
            ("MONITOR_CTS_ENABLED", "false"),
            ("MONITOR_CONCURRENCY", "10000"),
            ("MONITOR_ALERT_LEVEL", "errors"),
            ("MONITOR_SHUTDOWN_GRACE_SECS", "2"),
            ("MONITOR_LOG_FORMAT", "json"),
            ("RUST_LOG", "warn,dispatch_monitor=info"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let logs = LogTail::follow(&mut child);
    let lease_url = s.redis.url();
    wait_until("the LIT lease", Duration::from_secs(30), async || {
        !redis(&lease_url, &["KEYS", "svc-dispatch-monitor:lease:*"])
            .await
            .is_empty()
    })
    .await;
    s.redis.stop();
    wait_until(
        "a full journal queue",
        Duration::from_secs(60),
        async || {
            let lines = logs.lines.lock().unwrap();
            lines
                .iter()
                .any(|l| l.contains("the journal queue is full"))
        },
    )
    .await;

    let pid = child.id().to_string();
    let signalled = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = wait_for_exit(&mut child, Duration::from_secs(30));
    let took = signalled.elapsed();
    drop(logs.finish());
    assert_eq!(code, Some(0), "SIGTERM ends the service with status 0");
    assert!(
        took < grace + Duration::from_millis(1500),
        "{took:?} from SIGTERM to exit, the grace period being {grace:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_past_the_grace_period_for_a_slow_plan_request() {
    use tokio::io::AsyncWriteExt;
    let s = services().await;
    // A plan reads the vendor's list, which now takes 20 s to come.
    s.sim.add_fault(&Fault {
        subject: "lit.dispatch.get".into(),
        latency_ms: Some(20_000),
        ..Fault::default()
    });
    let grace = Duration::from_secs(1);
    let mut child = monitor(
        &s,
        &["run"],
        &[
            ("DISPATCH_MONITOR_SERVER_PORT", "0"),
            ("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1"),
            ("MONITOR_LIT_ENABLED", "false"),
            ("MONITOR_CTS_ENABLED", "false"),
            ("MONITOR_REQUEST_TIMEOUT_SECS", "60"),
            ("MONITOR_SHUTDOWN_GRACE_SECS", "1"),
            ("MONITOR_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let logs = LogTail::follow(&mut child);
    let port = logs.http_port().await;
    let mut plan = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    plan.write_all(b"GET /api/v1/plan?vendor=LIT HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    // The request reaches the handler, which waits for the list.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = child.id().to_string();
    let signalled = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let code = wait_for_exit(&mut child, Duration::from_secs(30));
    let took = signalled.elapsed();
    drop(logs.finish());
    drop(plan);
    assert_eq!(code, Some(0), "SIGTERM ends the service with status 0");
    assert!(
        took < grace + Duration::from_millis(1500),
        "{took:?} from SIGTERM to exit, the grace period being {grace:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_that_loses_its_lease_is_listed_as_lease_lost() {
    let s = services().await;
    let lit = domain::VendorName::parse("LIT").unwrap();
    let records = (0..300)
        .map(|i| {
            serde_json::json!({
                "Dispatch_Number": format!("DIS{i:05}"),
                "MetTel_Bruin_TicketID": format!("{}", 100_000 + i),
                "Dispatch_Status": "New Dispatch",
            })
        })
        .collect();
    s.sim.set_records(&lit, records);
    // One dispatch at a time, 100 ms each: the cycle would take 30 s.
    s.sim.add_fault(&Fault {
        subject: e2e::bridge_sim::subjects::TICKET_DETAILS.into(),
        latency_ms: Some(100),
        ..Fault::default()
    });
    let mut child = monitor(
        &s,
        &["run"],
        &[
            ("DISPATCH_MONITOR_SERVER_PORT", "0"),
            ("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1"),
            ("MONITOR_CTS_ENABLED", "false"),
            ("MONITOR_LIT_INTERVAL_SECS", "3600"),
            ("MONITOR_CONCURRENCY", "1"),
            ("MONITOR_LEASE_TTL_SECS", "6"),
            ("MONITOR_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let logs = LogTail::follow(&mut child);
    let port = logs.http_port().await;
    let url = s.redis.url();
    let key = "svc-dispatch-monitor:lease:LIT";
    wait_until("the LIT lease", Duration::from_secs(30), async || {
        !redis(&url, &["GET", key]).await.is_empty()
    })
    .await;
    // Another replica takes the lease: the next renewal finds it gone.
    redis(&url, &["SET", key, "another-replica", "PX", "60000"]).await;
    let mut cycles = Value::Null;
    wait_until("the cycle's record", Duration::from_secs(30), async || {
        let (status, body) = http_get(port, "/api/v1/cycles?vendor=LIT").await;
        cycles = serde_json::from_str(&body).unwrap_or(Value::Null);
        status == 200 && cycles.as_array().is_some_and(|c| !c.is_empty())
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    drop(logs.finish());
    let cycle = &cycles[0];
    assert_eq!(cycle["outcome"], "lease_lost", "{cycles}");
    assert!(cycle["records"] == 300, "{cycle}");
}

/// The NATS password the monitor uses: `@`, `:` and `,` (written `%2C` in the URL, where a
/// comma separates seeds). Each part is looked for in the logs.
const NATS_PASSWORD_PARTS: [&str; 4] = ["PwAlpha7", "PwBravo8", "PwCharlie9", "PwDelta0"];

/// A `nats-server` requiring a password of the monitor; the simulated bridges connect without
/// one, as the server's `no_auth_user`, who may only reply: a monitor that connected without
/// the password could send no request.
fn nats_with_password() -> NatsServer {
    let dir = std::env::temp_dir().join(format!("monitor-nats-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("nats.conf");
    let [a, b, c, d] = NATS_PASSWORD_PARTS;
    std::fs::write(
        &config,
        format!(
            "authorization {{\n  users = [\n    {{user: monitor, password: \"{a}@{b}:{c},{d}\"}}\n    {{user: bridges, password: \"bridges-password\", permissions: {{publish: [\"_INBOX.>\"], subscribe: [\">\"]}}}}\n  ]\n}}\nno_auth_user: bridges\n"
        ),
    )
    .unwrap();
    NatsServer::with_args(vec!["-c".to_owned(), config.display().to_string()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_show_no_credentials_and_info_logs_no_whole_phone_numbers() {
    let nats = nats_with_password();
    let redis = RedisServer::new();
    let sim = e2e::spec_world(&nats.url(), wiring::vendor_adapters()).await;
    let [a, b, c, d] = NATS_PASSWORD_PARTS;
    let url = format!("nats://monitor:{a}@{b}:{c}%2C{d}@127.0.0.1:{}", nats.port());
    let s = Services { nats, redis, sim };
    let mut child = monitor(
        &s,
        &["run"],
        &[
            ("NATS_SERVER1", url.as_str()),
            ("DISPATCH_MONITOR_SERVER_PORT", "0"),
            ("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1"),
            ("MONITOR_LIT_INTERVAL_SECS", "1"),
            ("MONITOR_CTS_INTERVAL_SECS", "1"),
            ("MONITOR_LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let logs = LogTail::follow(&mut child);
    logs.http_port().await;
    wait_until("7 SMS", Duration::from_secs(30), async || {
        s.sim.outbox().sms.len() >= 7
    })
    .await;
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(wait_for_exit(&mut child, Duration::from_secs(20)), Some(0));
    let logs = logs.finish();

    assert!(logs.contains("connected to NATS"), "{logs}");
    assert!(logs.contains("\"level\":\"DEBUG\""), "debug lines are on");
    for part in NATS_PASSWORD_PARTS {
        assert!(!logs.contains(part), "the password appears in the logs");
    }
    let sms_lines: Vec<&str> = logs.lines().filter(|l| l.contains("SMS sent")).collect();
    assert!(!sms_lines.is_empty(), "{logs}");
    assert!(
        sms_lines.iter().all(|l| l.contains("******")),
        "{sms_lines:?}"
    );
    for sms in s.sim.outbox().sms {
        let last_ten = &sms.to[sms.to.len() - 10..];
        assert!(
            !logs.contains(last_ten),
            "{} appears whole in the logs",
            sms.to
        );
    }
}

/// `once > cycle.log`: text logs written to a file carry no ANSI escape byte, whether or not
/// `NO_COLOR` is set; JSON lines neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_written_to_a_file_have_no_colour_codes() {
    let s = services().await;
    let dir = std::env::temp_dir().join(format!("monitor-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, extra) in [
        ("text", vec![]),
        ("text-no-color", vec![("NO_COLOR", "1")]),
        ("json", vec![("MONITOR_LOG_FORMAT", "json")]),
    ] {
        let path = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&path).unwrap();
        let mut env = vec![("RUST_LOG", "info")];
        env.extend(extra);
        let status = monitor(&s, &["once"], &env)
            .stdout(Stdio::null())
            .stderr(file)
            .status()
            .unwrap();
        assert!(status.success(), "{name}: once exits 0");
        let logs = std::fs::read(&path).unwrap();
        assert!(
            logs.windows(6).any(|w| w == b"cycle "),
            "{name}: the log names the cycle: {}",
            String::from_utf8_lossy(&logs)
        );
        assert!(
            !logs.contains(&0x1b),
            "{name}: an escape byte in {}",
            String::from_utf8_lossy(&logs)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
