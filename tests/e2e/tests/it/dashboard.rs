//! The dashboard in a real headless Chromium (driven through chromedriver) against
//! `dispatch-monitor run`, real `nats-server` and `redis-server`, and the simulated bridges:
//! the dispatch rows appear, and a dispatch's timeline shows the SMS and notes the bridges
//! received. A screenshot is saved as `target/dashboard.png`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dispatch_monitor::api::mask_phones;
use dispatch_monitor::wiring;
use e2e::http_get;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use test_support::servers::{NatsServer, RedisServer, free_port};

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
        let path = PathBuf::from(dir).join(name);
        if path.exists() {
            return path;
        }
    }
    panic!(
        "{name} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
    );
}

fn start_monitor(nats: &NatsServer, redis: &RedisServer, port: u16) -> Process {
    let child = e2e::monitor_run([
        ("NATS_SERVER1", nats.url()),
        ("REDIS_URL", redis.url()),
        ("ENVIRONMENT_NAME", "dashboard".into()),
        ("DISPATCH_MONITOR_SERVER_PORT", port.to_string()),
        ("MONITOR_LIT_INTERVAL_SECS", "2".into()),
        ("MONITOR_CTS_INTERVAL_SECS", "2".into()),
        ("MONITOR_REQUEST_TIMEOUT_SECS", "5".into()),
        ("MONITOR_REPLICA_NAME", "dashboard-test".into()),
        ("RUST_LOG", "warn".into()),
    ])
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    Process(child)
}

fn start_chromedriver(port: u16) -> Process {
    let child = Command::new(find("chromedriver"))
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Process(child)
}

/// Waits until `port` accepts connections and, when `health` is given, answers it with 200.
async fn wait_until_up(port: u16, health: Option<&str>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut up = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok();
        if let (true, Some(path)) = (up, health) {
            let answer = tokio::time::timeout(Duration::from_secs(5), http_get(port, path)).await;
            up = matches!(answer, Ok((200, _)));
        }
        if up {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn browser(driver_port: u16, profile: &std::path::Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1440,900",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": find("chromium").display().to_string(),
            "args": args,
        }
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("chromedriver starts a headless Chromium session")
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .find(|dir| dir.file_name().is_some_and(|name| name == "target"))
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
}

/// The texts of the timeline's entries of `kind` with `outcome`.
async fn timeline_texts(client: &Client, kind: &str, outcome: &str) -> Vec<String> {
    let selector =
        format!("#timeline .entry[data-kind=\"{kind}\"][data-outcome=\"{outcome}\"] .entry-text");
    let mut texts = Vec::new();
    for element in client.find_all(Locator::Css(&selector)).await.unwrap() {
        texts.push(element.text().await.unwrap().trim().to_owned());
    }
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_dispatches_and_a_timeline_in_headless_chromium() {
    let nats = NatsServer::new();
    let redis = RedisServer::new();
    let sim = e2e::spec_world(&nats.url(), wiring::vendor_adapters()).await;
    let monitor_port = free_port();
    let _monitor = start_monitor(&nats, &redis, monitor_port);
    wait_until_up(monitor_port, Some("/_health"), "dispatch-monitor").await;
    let driver_port = free_port();
    let _driver = start_chromedriver(driver_port);
    wait_until_up(driver_port, None, "chromedriver").await;
    let profile = std::env::temp_dir().join(format!("dashboard-test-{}", std::process::id()));
    let client = browser(driver_port, &profile).await;

    // Wait for the notes of DIS37405's first cycle to reach the bridge.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.outbox().notes_on("3544800").len() < 4 {
        assert!(
            Instant::now() < deadline,
            "the monitor never acted on DIS37405"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    client
        .goto(&format!("http://127.0.0.1:{monitor_port}/"))
        .await
        .unwrap();
    let row = client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(
            "#dispatch-rows tr.dispatch-row[data-vendor=\"LIT\"][data-dispatch=\"DIS37405\"]",
        ))
        .await
        .expect("the dispatch rows appear");
    let rows = client
        .find_all(Locator::Css("#dispatch-rows tr.dispatch-row"))
        .await
        .unwrap();
    assert!(rows.len() >= 6, "{} rows", rows.len());
    row.click().await.unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(
            "#timeline .entry[data-kind=\"sms\"][data-outcome=\"sent\"]",
        ))
        .await
        .expect("the timeline shows the SMS sent");
    let title = client
        .find(Locator::Css("#detail-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        title.contains("DIS37405") && title.contains("3544800"),
        "{title}"
    );

    // Every note and SMS the bridges received for DIS37405 is in its timeline, masked.
    let outbox = sim.outbox();
    let notes: Vec<String> = outbox
        .notes_on("3544800")
        .iter()
        .map(|note| mask_phones(note.trim()))
        .collect();
    let sms: Vec<String> = outbox
        .sms
        .iter()
        .filter(|sms| {
            sms.idempotency_key
                .as_deref()
                .is_some_and(|key| key.contains(":DIS37405:"))
        })
        .map(|sms| mask_phones(sms.text.trim()))
        .collect();
    assert!(!notes.is_empty() && !sms.is_empty());
    assert_eq!(timeline_texts(&client, "note", "appended").await, notes);
    assert_eq!(timeline_texts(&client, "sms", "sent").await, sms);
    let recipients = client
        .find_all(Locator::Css(
            "#timeline .entry[data-kind=\"sms\"] .entry-to",
        ))
        .await
        .unwrap();
    for recipient in recipients {
        let text = recipient.text().await.unwrap();
        assert!(text.contains("******"), "phones are masked: {text}");
    }
    let banner = client.find(Locator::Css("#api-status")).await.unwrap();
    assert!(banner.attr("hidden").await.unwrap().is_some());

    let png = client.screenshot().await.unwrap();
    let path = target_dir().join("dashboard.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}
