//! The dashboard in a real headless Chromium (driven through chromedriver) against
//! `dispatch-monitor run`, real `nats-server` and `redis-server`, and the simulated bridges:
//! the dispatch rows appear, and a dispatch's timeline shows the SMS and notes the bridges
//! received; an operator opts a number out and pauses a dispatch through the page (the token
//! asked for once, a wrong one refused plainly), and Redis holds both. A screenshot is saved
//! as `target/dashboard.png`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dispatch_monitor::api::mask_phones;
use dispatch_monitor::wiring;
use e2e::{http_get, redis};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use test_support::servers::{NatsServer, RedisServer, free_port};

const TOKEN: &str = "dashboard-token-0123456789";

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
        ("MONITOR_API_TOKEN", TOKEN.into()),
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

    an_operator_opts_out_and_pauses_through_the_page(&client, &redis).await;

    let png = client.screenshot().await.unwrap();
    let path = target_dir().join("dashboard.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    client.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&profile);
}

async fn wait_for(client: &Client, css: &str, what: &str) -> fantoccini::elements::Element {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{what}: {error}"))
}

async fn type_into(client: &Client, css: &str, text: &str) {
    let field = client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Gives the token the dialog asks for.
async fn give_token(client: &Client, token: &str) {
    wait_for(
        client,
        "#token-dialog:not([hidden])",
        "the token is asked for",
    )
    .await;
    type_into(client, "#token-input", token).await;
    click(client, "#token-save").await;
}

async fn status_text(client: &Client, class: &str) -> String {
    let css = format!("#action-status.{class}:not([hidden])");
    let status = wait_for(client, &css, "the action's outcome is shown").await;
    status.text().await.unwrap()
}

/// Polls Redis until `command` answers `expected`.
async fn wait_for_redis(url: &str, command: &[&str], expected: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = redis(url, command).await;
        if expected(&answer) {
            return answer;
        }
        assert!(Instant::now() < deadline, "{command:?}: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn an_operator_opts_out_and_pauses_through_the_page(client: &Client, server: &RedisServer) {
    let url = server.url();
    let hash = "dashboard-dispatch-monitor:opt-outs";

    // A wrong token: the 401 is shown plainly and nothing is stored.
    type_into(client, "#opt-out-phone", "(212) 359-5129").await;
    type_into(client, "#opt-out-reason", "replied STOP").await;
    click(client, "#opt-out-add").await;
    give_token(client, "not-the-operator-token").await;
    let refused = status_text(client, "bad").await;
    assert!(
        refused.contains("401") && refused.contains("token was refused"),
        "{refused}"
    );
    assert_eq!(redis(&url, &["HLEN", hash]).await, "0");

    // Asked again, the right token: listed, masked, and in the Redis hash.
    click(client, "#opt-out-add").await;
    give_token(client, TOKEN).await;
    let added = status_text(client, "ok").await;
    assert!(added.contains("Opted out"), "{added}");
    wait_for(
        client,
        "#opt-out-rows tr.opt-out-row[data-phone=\"+1******5129\"]",
        "the opt-out is listed",
    )
    .await;
    let stored = redis(&url, &["HGET", hash, "+12123595129"]).await;
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        (&stored["by"], &stored["reason"]),
        (&json!("api"), &json!("replied STOP"))
    );

    // The open dispatch is paused with the kept token: no second question.
    wait_for(
        client,
        "#pause-box[data-paused=\"false\"]:not([hidden])",
        "the pause state",
    )
    .await;
    type_into(client, "#pause-reason", "customer asked for no more texts").await;
    click(client, "#pause-btn").await;
    wait_for(
        client,
        "#pause-box[data-paused=\"true\"]",
        "the dispatch shows paused",
    )
    .await;
    let dialog = client.find(Locator::Css("#token-dialog")).await.unwrap();
    assert!(dialog.attr("hidden").await.unwrap().is_some(), "asked once");
    let key = "dashboard-dispatch-monitor:paused:LIT:DIS37405";
    let pause: Value = serde_json::from_str(&redis(&url, &["GET", key]).await).unwrap();
    assert_eq!(pause["reason"], "customer asked for no more texts");
    assert_eq!(pause["by"], "api");
    let state = client.find(Locator::Css("#pause-state")).await.unwrap();
    let state = state.text().await.unwrap();
    assert!(
        state.contains("customer asked for no more texts"),
        "{state}"
    );
    wait_for(
        client,
        "#timeline .entry[data-kind=\"pause\"][data-outcome=\"paused\"]",
        "the timeline shows the pause",
    )
    .await;

    // Removed by typing the number in another form; resumed.
    type_into(client, "#opt-out-phone", "212.359.5129").await;
    click(client, "#opt-out-remove").await;
    wait_for_redis(&url, &["HLEN", hash], |n| n == "0").await;
    click(client, "#resume-btn").await;
    wait_for(
        client,
        "#pause-box[data-paused=\"false\"]",
        "the dispatch shows resumed",
    )
    .await;
    assert_eq!(redis(&url, &["EXISTS", key]).await, "0");
    wait_for(
        client,
        "#opt-out-rows td.empty",
        "the opt-out list is empty",
    )
    .await;
}
