//! The binary's command line: parsing, exit codes, `check-config` and `demo`.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn monitor(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dispatch-monitor"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const VALID: &[(&str, &str)] = &[
    ("NATS_SERVER1", "nats://127.0.0.1:4999"),
    ("REDIS_URL", "redis://:hunter2@127.0.0.1:6999"),
    ("ENVIRONMENT_NAME", "test"),
];

fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = VALID.to_vec();
    env.extend_from_slice(extra);
    env
}

#[test]
fn help_lists_every_command() {
    let output = monitor(&["--help"], &[]);
    assert!(output.status.success());
    for command in [
        "run",
        "once",
        "plan",
        "demo",
        "check-config",
        "opt-out",
        "pause",
        "resume",
    ] {
        assert!(
            stdout(&output).contains(command),
            "{command} missing from --help"
        );
    }
}

#[test]
fn unknown_arguments_are_usage_errors() {
    let output = monitor(&["frobnicate"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let output = monitor(&["plan", "--format", "yaml"], VALID);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_missing_required_setting_exits_2_naming_it() {
    for (missing, env) in [
        (
            "NATS_SERVER1",
            vec![("REDIS_HOSTNAME", "redis"), ("ENVIRONMENT_NAME", "e")],
        ),
        (
            "REDIS_HOSTNAME",
            vec![("NATS_SERVER1", "nats://n:4222"), ("ENVIRONMENT_NAME", "e")],
        ),
        (
            "ENVIRONMENT_NAME",
            vec![("NATS_SERVER1", "nats://n:4222"), ("REDIS_HOSTNAME", "r")],
        ),
    ] {
        for command in ["check-config", "once", "plan", "run"] {
            let output = monitor(&[command], &env);
            assert_eq!(output.status.code(), Some(2), "{command} without {missing}");
            let message = stderr(&output);
            assert_eq!(message.lines().count(), 1, "one line: {message}");
            assert!(message.contains(missing), "{message}");
        }
    }
}

#[test]
fn an_invalid_setting_exits_2_naming_it() {
    for (name, value) in [
        ("MONITOR_CONCURRENCY", "lots"),
        ("MONITOR_REMINDER_HOURS", "12,six"),
        ("MONITOR_ALERT_LEVEL", "chatty"),
        ("MONITOR_LIT_INTERVAL_SECS", "0"),
        ("MONITOR_QUIET_HOURS", "9pm-8am"),
    ] {
        let output = monitor(&["check-config"], &with(&[(name, value)]));
        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains(name), "{message}");
    }
}

#[test]
fn every_configuration_mistake_is_reported_in_one_run_one_line_each() {
    let dir = std::env::temp_dir().join(format!("monitor-cli-all-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("monitor.toml");
    std::fs::write(
        &file,
        "MONITOR_REMINDER_HOURS = \"12,six\"\nmonitor_alert_levl = \"all\"\n",
    )
    .unwrap();
    let output = monitor(
        &["--config", file.to_str().unwrap(), "check-config"],
        &[
            ("REDIS_URL", "redis://:hunter2@127.0.0.1:notaport"),
            ("MONITOR_CONCURENCY", "4"),
            ("MONITOR_LIT_ENABLED", "maybe"),
            ("MONITOR_BIN", "target/debug/dispatch-monitor"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    let expected = [
        "unknown setting MONITOR_ALERT_LEVL in ",
        "unknown setting MONITOR_CONCURENCY in the environment; did you mean MONITOR_CONCURRENCY?",
        "missing required setting NATS_SERVER1",
        "invalid setting REDIS_URL=",
        "missing required setting ENVIRONMENT_NAME",
        "invalid setting MONITOR_REMINDER_HOURS=\"12,six\"",
        "invalid setting MONITOR_LIT_ENABLED=\"maybe\": expected true or false (also accepted",
    ];
    assert_eq!(message.lines().count(), expected.len(), "{message}");
    for line in expected {
        assert!(
            message
                .lines()
                .any(|l| l.starts_with(&format!("dispatch-monitor: {line}"))),
            "{line:?} missing:\n{message}"
        );
    }
    assert!(!message.contains("hunter2"), "{message}");
    // A TOML syntax error names the file, in one line.
    std::fs::write(&file, "MONITOR_CONCURRENCY = = 3\n").unwrap();
    let output = monitor(&["--config", file.to_str().unwrap(), "check-config"], VALID);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("file {}: ", file.display())),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn out_of_bounds_intervals_lease_ttl_and_grace_exit_2_naming_the_setting() {
    // Once this interval overflowed the schedule's clock: a panic that silently ended the
    // vendor's schedule while the process lived on (SPEC §18.6).
    let cases = [
        ("MONITOR_LIT_INTERVAL_SECS", "18446744073709551615"),
        ("MONITOR_CTS_INTERVAL_SECS", "86401"),
        ("MONITOR_LEASE_TTL_SECS", "5"),
        ("MONITOR_LEASE_TTL_SECS", "3601"),
        ("MONITOR_SHUTDOWN_GRACE_SECS", "601"),
    ];
    let dir = std::env::temp_dir().join(format!("monitor-cli-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("monitor.toml");
    for (name, value) in cases {
        std::fs::write(&file, format!("{name} = {value:?}\n")).unwrap();
        let from_file = ["--config", file.to_str().unwrap()];
        for (args, env) in [
            (vec!["check-config"], with(&[(name, value)])),
            ([&from_file[..], &["check-config"]].concat(), VALID.to_vec()),
            (vec!["run"], with(&[(name, value)])),
        ] {
            let output = monitor(&args, &env);
            assert_eq!(output.status.code(), Some(2), "{args:?} {name}={value}");
            let message = stderr(&output);
            assert_eq!(message.lines().count(), 1, "{message}");
            assert!(message.contains(name), "{message}");
            assert!(!message.contains("panicked"), "{message}");
        }
    }
    // A TOML integer too large for TOML itself is a configuration error too.
    std::fs::write(&file, "MONITOR_LIT_INTERVAL_SECS = 18446744073709551615\n").unwrap();
    let output = monitor(&["--config", file.to_str().unwrap(), "run"], VALID);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("MONITOR_LIT_INTERVAL_SECS"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn configuration_mistakes_exit_2_in_one_line_without_secrets_or_panics() {
    // A host with a port is not a host (SPEC §13.10).
    let output = monitor(
        &["check-config"],
        &[
            ("NATS_SERVER1", "nats://127.0.0.1:4999"),
            ("REDIS_HOSTNAME", "redis:6380"),
            ("ENVIRONMENT_NAME", "test"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("REDIS_HOSTNAME"),
        "{}",
        stderr(&output)
    );
    // An invalid URL is named without its password.
    let output = monitor(
        &["check-config"],
        &[
            ("NATS_SERVER1", "nats://127.0.0.1:4999"),
            ("REDIS_URL", "redis://:hunter2@127.0.0.1:notaport"),
            ("ENVIRONMENT_NAME", "test"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("REDIS_URL") && !message.contains("hunter2"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
    // A setting that is not UTF-8 is a configuration error, not a panic.
    use std::os::unix::ffi::OsStrExt;
    let output = Command::new(env!("CARGO_BIN_EXE_dispatch-monitor"))
        .arg("check-config")
        .env_clear()
        .envs(VALID.iter().copied())
        .env("ENVIRONMENT_NAME", std::ffi::OsStr::from_bytes(b"prod\xff"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains("ENVIRONMENT_NAME") && message.contains("UTF-8"),
        "{message}"
    );
    assert!(!message.contains("panicked"), "{message}");
}

#[test]
fn check_config_prints_effective_settings_with_secrets_masked() {
    let output = monitor(
        &["check-config"],
        &with(&[
            ("MONITOR_CONCURRENCY", "4"),
            ("MONITOR_CTS_ENABLED", "false"),
        ]),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("MONITOR_CONCURRENCY=4"));
    assert!(text.contains("MONITOR_CTS_ENABLED=false"));
    assert!(text.contains("MONITOR_REMINDER_HOURS=12,6,2"));
    assert!(text.contains("REDIS_URL=redis://***@127.0.0.1:6999"));
    assert!(!text.contains("hunter2"));
}

#[test]
fn passwords_with_commas_are_masked_by_check_config_and_the_exit_2_line() {
    let shown = |env: &[(&str, &str)]| {
        let output = monitor(&["check-config"], env);
        (output.status.code(), stdout(&output) + &stderr(&output))
    };
    let (code, text) = shown(&with(&[(
        "REDIS_URL",
        "redis://:Qa,Zs@Xk:Vb@127.0.0.1:6999",
    )]));
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("REDIS_URL=redis://***@127.0.0.1:6999"),
        "{text}"
    );
    for (name, value) in [
        ("REDIS_URL", "redis://:Qa,Zs@127.0.0.1:notaport"),
        ("REDIS_URL", "redis://:Qa/Zs@127.0.0.1:6999"),
        ("NATS_SERVER1", "nats://u:Qa,Zs@127.0.0.1:4999"),
    ] {
        let (code, text) = shown(&with(&[(name, value)]));
        assert_eq!(code, Some(2), "{name}={value}: {text}");
        assert!(text.contains(name), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        for part in ["Qa", "Zs", "Xk", "Vb"] {
            assert!(!text.contains(part), "{name}={value}: {text}");
        }
    }
}

#[test]
fn the_config_file_is_read_and_the_environment_wins() {
    let dir = std::env::temp_dir().join(format!("monitor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("monitor.toml");
    std::fs::write(
        &file,
        "NATS_SERVER1 = \"nats://127.0.0.1:4998\"\nREDIS_HOSTNAME = \"127.0.0.1\"\n\
         ENVIRONMENT_NAME = \"from-file\"\nMONITOR_CONCURRENCY = 2\n",
    )
    .unwrap();
    let output = monitor(
        &["--config", file.to_str().unwrap(), "check-config"],
        &[("MONITOR_CONCURRENCY", "6")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("ENVIRONMENT_NAME=from-file"));
    assert!(text.contains("MONITOR_CONCURRENCY=6"));
    assert!(text.contains("REDIS_URL=redis://127.0.0.1:6379"));
    let missing = monitor(&["--config", "/no/such/file.toml", "check-config"], VALID);
    assert_eq!(missing.status.code(), Some(2));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn broken_template_overrides_exit_2() {
    let dir = std::env::temp_dir().join(format!("monitor-templates-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("common")).unwrap();
    std::fs::write(dir.join("common/cancelled_note.hbs"), "{{note_kye}}\n").unwrap();
    let dir_text = dir.display().to_string();
    let output = monitor(
        &["check-config"],
        &with(&[("MONITOR_TEMPLATES_DIR", dir_text.as_str())]),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cancelled_note"),
        "{}",
        stderr(&output)
    );

    std::fs::write(
        dir.join("common/cancelled_note.hbs"),
        "#*MetTel's IPA*# {{note_key}}\nDispatch Management - Dispatch Cancelled\nCancelled: {{when}}.\n",
    )
    .unwrap();
    let output = monitor(
        &["check-config"],
        &with(&[("MONITOR_TEMPLATES_DIR", dir_text.as_str())]),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_reminder_note_with_its_hour_hard_coded_exits_2_for_the_configured_hours() {
    let dir = std::env::temp_dir().join(format!("monitor-reminders-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("common")).unwrap();
    std::fs::write(
        dir.join("common/reminder_note.hbs"),
        "#*MetTel's IPA*# {{note_key}}\nDispatch 2h prior reminder SMS sent to {{phone}}\n",
    )
    .unwrap();
    let dir_text = dir.display().to_string();
    // The default hours (12, 6, 2): the 12 h note would not say 12 h.
    let output = monitor(
        &["check-config"],
        &with(&[("MONITOR_TEMPLATES_DIR", dir_text.as_str())]),
    );
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let error = stderr(&output);
    assert!(
        error.contains("reminder_note") && error.contains("Dispatch 12h prior reminder SMS"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    // The configured hours are the ones checked: 2 h only is fine, 24 h is not.
    for (hours, code) in [("2", Some(0)), ("24,2", Some(2))] {
        let output = monitor(
            &["check-config"],
            &with(&[
                ("MONITOR_TEMPLATES_DIR", dir_text.as_str()),
                ("MONITOR_REMINDER_HOURS", hours),
            ]),
        );
        assert_eq!(output.status.code(), code, "{hours}: {}", stderr(&output));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unknown_vendor_exits_2() {
    let output = monitor(&["once", "--vendor", "no-such-vendor"], VALID);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--vendor"), "{}", stderr(&output));
}

#[test]
fn once_exits_1_when_nothing_can_be_reached() {
    // Ports just freed: nothing listens there, so the lease cannot be taken.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let nats = format!("nats://127.0.0.1:{}", free());
    let redis = format!("redis://127.0.0.1:{}", free());
    let output = monitor(
        &["once", "--vendor", "lit"],
        &[
            ("NATS_SERVER1", nats.as_str()),
            ("REDIS_URL", redis.as_str()),
            ("ENVIRONMENT_NAME", "test"),
            ("MONITOR_REQUEST_TIMEOUT_SECS", "2"),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("LIT: cycle not run: the lease store cannot be reached"),
        "{}",
        stderr(&output)
    );
}

/// The start of the demo's timeline, pinned byte for byte.
const DEMO_OPENING: [&str; 18] = [
    "Dispatch monitor demo: a simulated day, one cycle per vendor every 15 minutes.",
    "Every note and SMS the monitor writes is listed; times are Pacific.",
    "Quiet hours are 21:00-08:00 at the site (MONITOR_QUIET_HOURS).",
    "",
    "Mon Mar 16 08:00 PDT  REGISTERED DIS10001 = {\"ticket_id\":\"4000001\"}",
    "Mon Mar 16 08:00 PDT  REGISTERED S-20001 = {\"igz_dispatch_number\":\"IGZ_20001\",\"ticket_id\":\"4000003\"}",
    "Mon Mar 16 08:00 PDT  REGISTERED S-20002 = {\"igz_dispatch_number\":\"IGZ_20002\",\"ticket_id\":\"4000004\"}",
    "Mon Mar 16 08:30 PDT  NOTE on ticket 4000001 (LIT DIS10001)",
    "      | #*MetTel's IPA*# DIS10001",
    "      | Dispatch Management - Dispatch Confirmed",
    "      | Dispatch scheduled for 2026-03-17 @ 10AM-12PM Pacific Time",
    "Mon Mar 16 08:30 PDT  SMS  to +12125550101 (LIT DIS10001 site contact)",
    "      | This is an automated message from MetTel.",
    "      | ",
    "      | A dispatch has been confirmed for your location on Mar 17, 2026 @ 10:00 AM Pacific.",
    "Mon Mar 16 08:30 PDT  NOTE on ticket 4000001 (LIT DIS10001)",
    "      | #*MetTel's IPA*# DIS10001",
    "      | Dispatch confirmation SMS sent to +12125550101",
];

#[test]
fn demo_prints_the_whole_timeline_without_services() {
    let output = monitor(&["demo"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&DEMO_OPENING.map(|line| format!("{line}\n")).concat()),
        "{text}"
    );
    for expected in [
        "Dispatch Management - Dispatch Confirmed",
        "Dispatch confirmation SMS sent to +12125550101",
        "Dispatch Management - Field Engineer Confirmed",
        "Dispatch confirmation SMS tech sent to +12125550102",
        "Dispatch 12h prior reminder tech SMS sent to +12125550102",
        "Dispatch 6h prior reminder SMS sent to +12025550104",
        "Dispatch 2h prior reminder tech SMS sent to +12125550103",
        "The new field engineer will be: Hulk Hogan",
        "The Field Engineer assigned to this dispatch has changed.",
        "Dispatch Management - Field Engineer On Site",
        "Dispatch Management - Dispatch Cancelled",
        "Dispatch Management - Repair Completed",
        "REGISTERED S-20001 = {\"igz_dispatch_number\":\"IGZ_20001\",\"ticket_id\":\"4000003\"}",
    ] {
        assert!(text.contains(expected), "demo output lacks {expected:?}");
    }
    assert!(!text.contains("ticket 4000002"), "DIS10002 is not ours");
    // The one-cycle SMS outage is alerted and the reminder goes out once, a cycle later.
    assert!(text.contains(
        "Mon Mar 16 14:15 PDT  ALERT [dispatch-monitor] [CTS] Dispatch [S-20001] in ticket_id: \
         4000003 - 2h reminder SMS to the client to +12025550104 failed"
    ));
    assert_eq!(
        text.matches("Dispatch 2h prior reminder SMS sent to +12025550104")
            .count(),
        1
    );
    // Quiet hours at the site (SPEC §15): the night's client reminders are skipped with a note,
    // the tech's go; the tech change at 06:00 waits for 08:00.
    for expected in [
        "Mon Mar 16 22:15 PDT  NOTE on ticket 4000001 (LIT DIS10001)\n      \
         | #*MetTel's IPA*# DIS10001\n      \
         | Dispatch 12h prior reminder SMS not sent to +12125550101: quiet hours 21:00-08:00 at the site\n",
        "Dispatch 6h prior reminder SMS not sent to +12125550101: quiet hours 21:00-08:00 at the site",
        "Tue Mar 17 04:15 PDT  SMS  to +12125550102 (LIT DIS10001 tech Joe Malone)",
        "Tue Mar 17 06:00 PDT  HELD tech change SMS to +12125550101 (LIT DIS10001 site contact): \
         quiet hours 21:00-08:00 at the site; a later cycle sends it\n\
         Tue Mar 17 08:00 PDT  SMS  to +12125550101 (LIT DIS10001 site contact)",
    ] {
        assert!(text.contains(expected), "demo output lacks {expected:?}");
    }
    assert!(!text.contains("Dispatch 12h prior reminder SMS sent to +12125550101"));
    // Safeguards (SPEC §17): an opted-out site contact gets one note and no text; a paused
    // dispatch gets its Confirmed note and no text.
    for expected in [
        "Mon Mar 16 10:00 PDT  OPT-OUT +12125550106 (LIT DIS10003 site contact) by cli:demo: replied STOP",
        "Mon Mar 16 10:00 PDT  WITHHELD confirmation SMS to the client +12125550106 (LIT DIS10003 \
         site contact): the number opted out of texts",
        "      | #*MetTel's IPA*# DIS10003\n      \
         | Dispatch SMS withheld from +12125550106: the number opted out of texts\n",
        "Mon Mar 16 10:30 PDT  PAUSED CTS S-20003 by cli:demo: the customer asked for no texts about this visit",
        "WITHHELD confirmation SMS to the tech +12025550108 (CTS S-20003 tech Marty McFly): the \
         dispatch is paused by cli:demo: the customer asked for no texts about this visit",
        "      | #*MetTel's IPA*# IGZ_20003\n      | Dispatch Management - Dispatch Confirmed\n",
    ] {
        assert!(text.contains(expected), "demo output lacks {expected:?}");
    }
    assert_eq!(text.matches("Dispatch SMS withheld from").count(), 1);
    for nobody in [
        "SMS  to +12125550106",
        "SMS  to +12025550107",
        "SMS  to +12025550108",
    ] {
        assert!(!text.contains(nobody), "{nobody}");
    }
    assert!(!text.contains("Dispatch 6h prior reminder SMS sent to +12125550101"));
    // Every note is written once: no line of a recorded SMS repeats.
    let sms_notes: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("SMS sent to") || l.contains("SMS tech sent to"))
        .collect();
    let mut unique = sms_notes.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), sms_notes.len());
    // The timeline is in order: confirmation before reminders before arrival.
    let at = |needle: &str| text.find(needle).unwrap();
    assert!(
        at("Dispatch confirmation SMS sent to +12125550101")
            < at("Dispatch 12h prior reminder SMS not sent to +12125550101")
    );
    assert!(
        at("Dispatch 2h prior reminder SMS sent to +12125550101")
            < at("Hulk Hogan, the field engineer")
    );
}

#[test]
fn sigterm_while_nats_and_redis_are_still_being_reached_exits_0_at_once() {
    // Nothing listens on these ports: start-up waits for the connections (up to 10 s). A
    // SIGTERM then used to kill the process (status 143) instead of stopping it (SPEC §18.6).
    let nats = format!("nats://127.0.0.1:{}", test_support::servers::free_port());
    let redis = format!("redis://127.0.0.1:{}", test_support::servers::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatch-monitor"))
        .arg("run")
        .env_clear()
        .envs([
            ("NATS_SERVER1", nats.as_str()),
            ("REDIS_URL", redis.as_str()),
            ("ENVIRONMENT_NAME", "startup"),
            ("DISPATCH_MONITOR_SERVER_PORT", "0"),
            ("MONITOR_REQUEST_TIMEOUT_SECS", "60"),
            ("RUST_LOG", "info"),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (seen, waiting) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("connecting to NATS and Redis") {
                let _ = seen.send(());
            }
            lines.push(line);
        }
        lines
    });
    let started = waiting.recv_timeout(Duration::from_secs(30));
    assert!(started.is_ok(), "the start-up wait was never logged");
    let signalled = Instant::now();
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = reader.join().unwrap().join("\n");
    assert_eq!(status.code(), Some(0), "{status:?}\n{lines}");
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "{:?}",
        signalled.elapsed()
    );
}

/// One Redis command from a synchronous test.
fn raw_redis(url: &str, args: &[&str]) -> String {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test_support::wire::redis(url, args))
}

/// The settings of a monitor whose Redis is `redis` (NATS is never reached by these commands).
fn against(redis: &str) -> Vec<(&str, &str)> {
    vec![
        ("NATS_SERVER1", "nats://127.0.0.1:4999"),
        ("REDIS_URL", redis),
        ("ENVIRONMENT_NAME", "test"),
        ("USER", "ops"),
    ]
}

#[test]
fn opt_outs_are_added_listed_masked_and_removed_from_the_command_line() {
    let server = test_support::servers::RedisServer::new();
    let url = server.url();
    let env = against(&url);
    let run = |args: &[&str]| {
        let output = monitor(args, &env);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    assert_eq!(
        run(&[
            "opt-out",
            "add",
            "(212) 359-5129",
            "--reason",
            "replied STOP"
        ]),
        "+12123595129 added to the opt-out list: no text goes to it\n"
    );
    assert!(
        run(&["opt-out", "add", "212.359.5129"])
            .starts_with("+12123595129 is already on the opt-out list (since ")
    );
    run(&["opt-out", "add", "+1 202 772 3610"]);
    let listed = run(&["opt-out", "list"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("+1******3610  since "), "{listed}");
    assert!(lines[1].starts_with("+1******5129  since "), "{listed}");
    assert!(lines[1].ends_with(" by cli:ops: replied STOP"), "{listed}");
    assert!(!listed.contains("2123595129"), "masked: {listed}");
    assert!(run(&["opt-out", "list", "--show-phones"]).contains("+12123595129  since "));
    assert_eq!(
        run(&["opt-out", "remove", "212/359/5129"]),
        "+12123595129 removed from the opt-out list: texts still due go to it again\n"
    );
    assert_eq!(
        run(&["opt-out", "remove", "2123595129"]),
        "+12123595129 was not on the opt-out list\n"
    );
    let raw = raw_redis(&url, &["HKEYS", "test-dispatch-monitor:opt-outs"]);
    assert!(
        raw.contains("+12027723610") && !raw.contains("+12123595129"),
        "{raw}"
    );
}

#[test]
fn a_dispatch_is_paused_and_resumed_from_the_command_line() {
    let server = test_support::servers::RedisServer::new();
    let url = server.url();
    let env = against(&url);
    let output = monitor(
        &["pause", "lit", "DIS37405", "--reason", "customer asked"],
        &env,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "LIT DIS37405 paused: its texts are withheld until resumed (30 days at most)\n"
    );
    let stored = raw_redis(&url, &["GET", "test-dispatch-monitor:paused:LIT:DIS37405"]);
    assert!(
        stored.contains("\"by\":\"cli:ops\"") && stored.contains("customer asked"),
        "{stored}"
    );
    let journal = raw_redis(
        &url,
        &[
            "LRANGE",
            "test-dispatch-monitor:journal:LIT:DIS37405",
            "0",
            "-1",
        ],
    );
    assert!(journal.contains("\"outcome\":\"paused\""), "{journal}");

    let output = monitor(&["resume", "LIT", "DIS37405"], &env);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("LIT DIS37405 resumed: texts still due go out"));
    let output = monitor(&["resume", "LIT", "DIS37405"], &env);
    assert_eq!(stdout(&output), "LIT DIS37405 was not paused\n");
    let journal = raw_redis(
        &url,
        &[
            "LRANGE",
            "test-dispatch-monitor:journal:LIT:DIS37405",
            "0",
            "-1",
        ],
    );
    assert!(journal.contains("\"outcome\":\"resumed\""), "{journal}");
}

#[test]
fn bad_phones_vendors_and_times_exit_2_naming_them() {
    let cases: &[(&[&str], &str)] = &[
        (&["opt-out", "add", "12345"], "PHONE=\"12345\""),
        (
            &["opt-out", "remove", "Jane 212 359 5129"],
            "PHONE=\"Jane 212 359 5129\"",
        ),
        (
            &["pause", "NO-SUCH-VENDOR", "D1", "--reason", "x"],
            "VENDOR=\"NO-SUCH-VENDOR\"",
        ),
        (&["resume", "LIT", " "], "DISPATCH=\" \""),
        (&["plan", "--at", "tonight"], "--at=\"tonight\""),
        (&["plan", "--at", "+6d"], "--at=\"+6d\""),
    ];
    for (args, named) in cases {
        let output = monitor(args, VALID);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "{message}");
        assert!(message.contains(named), "{args:?}: {message}");
    }
    // `pause` needs its reason.
    let output = monitor(&["pause", "LIT", "DIS37405"], VALID);
    assert_eq!(output.status.code(), Some(2));
}

/// The status line and body of `GET path`, or `None` while nothing listens.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn health_answers_503_while_nats_is_awaited_and_each_failed_attempt_is_logged_once() {
    // Nothing listens on these ports: start-up waits up to 10 s for NATS. The HTTP port used
    // to stay closed all that time, and each attempt was logged twice as "nats: IO error".
    let nats_port = test_support::servers::free_port();
    let nats = format!("nats://user:s3cret@127.0.0.1:{nats_port}");
    let redis = format!("redis://127.0.0.1:{}", test_support::servers::free_port());
    let port = test_support::servers::free_port();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatch-monitor"))
        .arg("run")
        .env_clear()
        .envs([
            ("NATS_SERVER1", nats.as_str()),
            ("REDIS_URL", redis.as_str()),
            ("ENVIRONMENT_NAME", "startup"),
            ("DISPATCH_MONITOR_SERVER_ADDRESS", "127.0.0.1"),
            ("DISPATCH_MONITOR_SERVER_PORT", &port.to_string()),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let health = loop {
        if let Some(response) = http_get(port, "/_health") {
            break response;
        }
        if started.elapsed() > Duration::from_secs(1) {
            let _ = child.kill();
            panic!("the HTTP port is still closed after 1 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(health.starts_with("HTTP/1.0 503"), "{health}");
    assert!(
        health.ends_with(r#"{"nats":"down","redis":"down"}"#),
        "{health}"
    );
    // Let a few attempts fail, then stop it.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let log = stderr(&output);
    let attempts: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("cannot connect to NATS"))
        .collect();
    assert!(attempts.len() >= 2, "{log}");
    for line in &attempts {
        assert!(
            line.contains(&format!("url=nats://***@127.0.0.1:{nats_port}"))
                && line.contains("cause=Connection refused"),
            "{line}"
        );
    }
    assert!(!log.contains("s3cret"), "{log}");
    // Once per attempt: no other line speaks of the failed attempts.
    let mentions = log.lines().filter(|line| line.contains("IO error")).count();
    assert_eq!(mentions, attempts.len(), "{log}");
}

#[test]
fn demo_lists_every_slack_alert_line_it_counts() {
    let output = monitor(&["demo"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let done = text.lines().find(|l| l.starts_with("Done: ")).unwrap();
    let count: usize = done
        .split("; ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no alert count in {done:?}"));
    assert!(count > 1, "{done}");
    let (_, listed) = text
        .split_once("\nSlack alert lines (failures are in the timeline too):\n")
        .expect("the alert lines are listed");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), count, "{listed}");
    for line in lines {
        assert!(
            line.contains(" PDT  [LIT] Dispatch [") || line.contains(" PDT  [CTS] Dispatch ["),
            "{line}"
        );
    }
}
