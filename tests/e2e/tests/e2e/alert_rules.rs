//! The alert rules of `deploy/prometheus` on a real Prometheus: it scrapes `dispatch-monitor
//! run`, the test kills Redis, and the Redis-down alert must fire, then resolve once Redis is
//! back. The test's copy of the rules has every `for:` shortened and Prometheus scrapes and
//! evaluates every second. Skipped when `prometheus` is not installed (`scripts/test.sh`
//! installs it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dispatch_monitor::wiring;
use e2e::http_get;
use regex::Regex;
use serde_json::Value;
use test_support::servers::{NatsServer, RedisServer, free_port};

const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../deploy/prometheus/dispatch-monitor.rules.yml"
);

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_binary() -> Option<PathBuf> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// The rules file with every `for:` set to `for`, and at least one replaced.
fn rules_with_short_for(rules: &str, r#for: &str) -> String {
    let pattern = Regex::new(r"(?m)^(\s+for:) \S+$").unwrap();
    assert!(pattern.is_match(rules), "no `for:` in the rules");
    pattern.replace_all(rules, format!("$1 {for}")).into_owned()
}

fn write_config(dir: &Path, monitor_port: u16) {
    let rules = std::fs::read_to_string(RULES).unwrap();
    std::fs::write(dir.join("rules.yml"), rules_with_short_for(&rules, "2s")).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - rules.yml\n\
         scrape_configs:\n  - job_name: dispatch-monitor\n    static_configs:\n      \
         - targets: [\"127.0.0.1:{monitor_port}\"]\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
}

fn start_prometheus(binary: &Path, dir: &Path, port: u16) -> Killed {
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new(binary)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus starts");
    Killed(child)
}

/// Polls `check` every 250 ms until it returns a value, at most `limit`.
async fn wait_for<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The JSON of a Prometheus API call, when it listens and answers 200.
async fn api(port: u16, path: &str) -> Option<Value> {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let (status, body) = http_get(port, path).await;
    (status == 200).then(|| serde_json::from_str(&body).ok())?
}

/// The states of the active alerts named `name`, with their labels.
async fn alerts(port: u16, name: &str) -> Vec<(String, Value)> {
    let Some(body) = api(port, "/api/v1/alerts").await else {
        return Vec::new();
    };
    body["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|alert| alert["labels"]["alertname"] == name)
        .map(|alert| {
            let state = alert["state"].as_str().unwrap_or_default().to_owned();
            (state, alert["labels"].clone())
        })
        .collect()
}

/// The value Prometheus last scraped for the dependency's gauge.
async fn dependency_up(port: u16, dependency: &str) -> Option<String> {
    let body = api(port, "/api/v1/query?query=dispatch_monitor_dependency_up").await?;
    body["data"]["result"]
        .as_array()?
        .iter()
        .find(|sample| sample["metric"]["dependency"] == dependency)
        .and_then(|sample| sample["value"][1].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fires_on_a_real_prometheus_and_resolves() {
    let Some(prometheus) = prometheus_binary() else {
        eprintln!(
            "SKIPPED: `prometheus` is not installed (Debian's `prometheus` package; \
             scripts/test.sh installs it)"
        );
        return;
    };
    let nats = NatsServer::new();
    let mut redis = RedisServer::new();
    let _sim = e2e::spec_world(&nats.url(), wiring::vendor_adapters()).await;
    let monitor_port = free_port();
    let _monitor = Killed(
        e2e::monitor_run([
            ("NATS_SERVER1", nats.url()),
            ("REDIS_URL", redis.url()),
            ("ENVIRONMENT_NAME", "alerts".into()),
            ("DISPATCH_MONITOR_SERVER_PORT", monitor_port.to_string()),
            ("MONITOR_LIT_INTERVAL_SECS", "2".into()),
            ("MONITOR_CTS_INTERVAL_SECS", "2".into()),
            ("MONITOR_REQUEST_TIMEOUT_SECS", "2".into()),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let dir = std::env::temp_dir().join(format!("alert-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_config(&dir, monitor_port);
    let port = free_port();
    let _prometheus = start_prometheus(&prometheus, &dir, port);
    let limit = Duration::from_secs(60);

    wait_for("Redis up as Prometheus scraped it", limit, async || {
        (dependency_up(port, "redis").await? == "1").then_some(())
    })
    .await;
    assert!(alerts(port, "DispatchMonitorRedisDown").await.is_empty());

    redis.stop();
    let labels = wait_for("DispatchMonitorRedisDown firing", limit, async || {
        let alerts = alerts(port, "DispatchMonitorRedisDown").await;
        alerts
            .into_iter()
            .find_map(|(state, labels)| (state == "firing").then_some(labels))
    })
    .await;
    assert_eq!(labels["dependency"], "redis");
    assert_eq!(labels["severity"], "page");
    assert_eq!(labels["instance"], format!("127.0.0.1:{monitor_port}"));
    assert!(alerts(port, "DispatchMonitorNatsDown").await.is_empty());

    redis.start();
    // Resolved because Redis is up again, not because a slow scrape left no sample.
    wait_for("DispatchMonitorRedisDown resolved", limit, async || {
        let resolved = alerts(port, "DispatchMonitorRedisDown").await.is_empty();
        (resolved && dependency_up(port, "redis").await? == "1").then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_for_is_shortened_in_the_test_copy() {
    let rules = std::fs::read_to_string(RULES).unwrap();
    let copy = rules_with_short_for(&rules, "2s");
    let count = |text: &str, needle: &str| text.matches(needle).count();
    assert!(count(&rules, "for: ") > 0);
    assert_eq!(count(&copy, "for: 2s"), count(&rules, "for: "));
}
