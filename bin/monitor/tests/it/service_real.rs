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
            ("MONITOR_LEASE_TTL_SECS", "5"),
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
