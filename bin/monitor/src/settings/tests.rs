use super::*;

fn vendors() -> Vec<VendorName> {
    vec![
        VendorName::parse("LIT").unwrap(),
        VendorName::parse("CTS").unwrap(),
    ]
}

fn base() -> Vec<(&'static str, &'static str)> {
    vec![
        ("NATS_SERVER1", "nats://nats-server:4222"),
        ("REDIS_HOSTNAME", "redis"),
        ("ENVIRONMENT_NAME", "dev"),
    ]
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let raw = RawSettings::load(None, env(pairs)).unwrap();
    Settings::from_raw(&raw, &vendors())
}

#[test]
fn original_names_and_defaults() {
    let settings = load(&base()).unwrap();
    assert_eq!(settings.nats_urls.0.expose(), "nats://nats-server:4222");
    assert_eq!(settings.redis_url().expose(), "redis://redis:6379");
    assert_eq!(settings.environment_name, "dev");
    assert_eq!(settings.http_port, 5000);
    assert_eq!(settings.concurrency, 8);
    assert_eq!(settings.reminder_hours.0, vec![12, 6, 2]);
    assert_eq!(settings.request_timeout.0, Duration::from_secs(60));
    assert_eq!(settings.alert_level, AlertLevel::All);
    assert!(settings.completed_notes);
    assert!(settings.cancel_email_recipients.0.is_empty());
    assert_eq!(settings.lease_ttl.0, Duration::from_secs(60));
    assert_eq!(settings.shutdown_grace.0, Duration::from_secs(30));
    assert_eq!(settings.log_format, LogFormat::Text);
    assert!(
        settings
            .vendors
            .iter()
            .all(|v| v.enabled && v.interval.as_secs() == 900)
    );
}

#[test]
fn environment_overrides_file_overrides_defaults() {
    let dir = std::env::temp_dir().join(format!("monitor-settings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("monitor.toml");
    std::fs::write(
        &file,
        "NATS_SERVER1 = \"nats://from-file:4222\"\nmonitor_concurrency = 3\n\
         MONITOR_REMINDER_HOURS = [24, 1]\nMONITOR_CTS_ENABLED = false\n\
         REDIS_URL = \"redis://:secret@file-redis:6380\"\nENVIRONMENT_NAME = \"file\"\n",
    )
    .unwrap();
    let raw = RawSettings::load(
        Some(&file),
        env(&[("MONITOR_CONCURRENCY", "5"), ("ENVIRONMENT_NAME", "env")]),
    )
    .unwrap();
    let settings = Settings::from_raw(&raw, &vendors()).unwrap();
    assert_eq!(
        settings.nats_urls.0.expose(),
        "nats://from-file:4222",
        "file over default"
    );
    assert_eq!(settings.concurrency, 5, "environment over file");
    assert_eq!(settings.environment_name, "env");
    assert_eq!(settings.reminder_hours.0, vec![24, 1]);
    assert!(!settings.vendors[1].enabled);
    assert_eq!(
        settings.redis_url().expose(),
        "redis://:secret@file-redis:6380",
        "REDIS_URL wins"
    );
    let effective = settings.effective();
    let redis = effective.iter().find(|(k, _)| k == "REDIS_URL").unwrap();
    assert_eq!(redis.1, "redis://***@file-redis:6380");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_and_invalid_settings_name_the_setting() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("REDIS_HOSTNAME", "r"), ("ENVIRONMENT_NAME", "e")],
            "missing required setting NATS_SERVER1",
        ),
        (
            &[("NATS_SERVER1", "nats://n:4222"), ("ENVIRONMENT_NAME", "e")],
            "missing required setting REDIS_HOSTNAME",
        ),
        (
            &[("NATS_SERVER1", "nats://n:4222"), ("REDIS_HOSTNAME", "r")],
            "missing required setting ENVIRONMENT_NAME",
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(load(pairs).unwrap_err().to_string(), *expected);
    }
    let invalid_cases = [
        ("MONITOR_CONCURRENCY", "zero"),
        ("MONITOR_CONCURRENCY", "0"),
        ("MONITOR_REMINDER_HOURS", "12,x"),
        ("MONITOR_REMINDER_HOURS", "0"),
        ("MONITOR_ALERT_LEVEL", "loud"),
        ("MONITOR_COMPLETED_NOTES", "maybe"),
        ("MONITOR_LIT_INTERVAL_SECS", "-5"),
        ("MONITOR_LOG_FORMAT", "xml"),
        ("DISPATCH_MONITOR_SERVER_PORT", "70000"),
        ("REDIS_URL", "http://x"),
        ("REDIS_URL", "redis://127.0.0.1:notaport"),
        ("NATS_SERVER1", "nats://127.0.0.1:99999"),
        ("NATS_SERVER1", "localhost 4222"),
        ("MONITOR_REQUEST_TIMEOUT_SECS", "600"),
        ("MONITOR_CANCEL_EMAIL_RECIPIENTS", "ops"),
        ("MONITOR_TEMPLATES_DIR", "/does/not/exist"),
        ("MONITOR_QUIET_HOURS", "21:00"),
        ("MONITOR_QUIET_HOURS", "08:00-08:00"),
    ];
    for (name, value) in invalid_cases {
        let mut pairs = base();
        pairs.push((name, value));
        let error = load(&pairs).unwrap_err();
        assert!(
            matches!(&error, SettingsError::Invalid { name: n, .. } if n == name),
            "{name}={value}: {error}"
        );
        assert!(!error.to_string().contains('\n'));
    }
}

#[test]
fn good_urls_pass() {
    for url in [
        "nats://nats-server:4222",
        "nats://user:pw@127.0.0.1:4222",
        "tls://n:4443",
        "nats://[::1]:4222",
        "nats://localhost",
    ] {
        assert!(NatsUrls::parse(url).is_ok(), "{url}");
    }
    assert!(SecretUrl::parse("redis://:secret@r:6380/2").is_ok());
}

#[test]
fn urls_are_masked() {
    assert_eq!(
        mask_credentials("nats://user:pw@host:4222"),
        "nats://***@host:4222"
    );
    assert_eq!(mask_credentials("redis://host:6379"), "redis://host:6379");
    let url = SecretUrl::parse("redis://:hunter2@host:6379/0").unwrap();
    assert_eq!(
        format!("{url} {url:?}"),
        "redis://***@host:6379/0 SecretUrl(redis://***@host:6379/0)"
    );
    // A comma in a password stays in its URL (fuzz target `settings`): it used to split the
    // URL and show the whole password.
    let url = SecretUrl::parse("redis://:pa,ss@host:6379").unwrap();
    assert_eq!(url.to_string(), "redis://***@host:6379");
    assert_eq!(
        mask_credentials("nats://u:p@a:4222,tls://v:q@b:4443"),
        "nats://***@a:4222,tls://***@b:4443"
    );
}

#[test]
fn every_effective_setting_has_a_row() {
    let settings = load(&base()).unwrap();
    let rows = Settings::rows();
    for (name, _) in settings.effective() {
        let generic = name
            .replace("_LIT_", "_<VENDOR>_")
            .replace("_CTS_", "_<VENDOR>_");
        assert!(rows.iter().any(|row| row.name == generic), "{name}");
    }
}

/// The README's configuration table, as the settings table makes it.
fn markdown_table() -> String {
    let mut table = String::from("| Variable | Default | Meaning |\n|---|---|---|\n");
    for row in Settings::rows() {
        let default = match &row.default {
            DefaultValue::Required => "— (required)".to_owned(),
            DefaultValue::Empty => "—".to_owned(),
            DefaultValue::Value(value) => format!("`{value}`"),
        };
        table.push_str(&format!(
            "| `{}` | {default} | {} |\n",
            row.name, row.meaning
        ));
    }
    table
}

#[test]
fn the_readme_table_is_the_settings_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md at the workspace root");
    let expected = markdown_table();
    assert!(
        readme.contains(&expected),
        "README.md's configuration table differs from the settings table; it should read:\n{expected}"
    );
}

#[test]
fn quiet_hours_are_off_by_default_and_read_as_a_window() {
    assert_eq!(load(&base()).unwrap().rule_settings().quiet_hours, None);
    let mut pairs = base();
    pairs.push(("MONITOR_QUIET_HOURS", "21:00-08:00"));
    let settings = load(&pairs).unwrap();
    let quiet = settings.rule_settings().quiet_hours.unwrap();
    assert_eq!(quiet.to_string(), "21:00-08:00");
    assert!(
        settings
            .effective()
            .contains(&("MONITOR_QUIET_HOURS".to_owned(), "21:00-08:00".to_owned()))
    );
}

#[test]
fn the_api_token_is_never_shown() {
    let mut pairs = base();
    pairs.push(("MONITOR_API_TOKEN", "secret-operator-token-42"));
    let settings = load(&pairs).unwrap();
    let shown = format!("{:?} {:?}", settings.effective(), settings);
    assert!(!shown.contains("secret-operator-token-42"), "{shown}");
    assert!(
        settings
            .effective()
            .contains(&("MONITOR_API_TOKEN".to_owned(), "***".to_owned()))
    );
    pairs.pop();
    pairs.push(("MONITOR_API_TOKEN", "short"));
    assert!(matches!(
        load(&pairs),
        Err(SettingsError::Invalid { name, .. }) if name == "MONITOR_API_TOKEN"
    ));
}

#[test]
fn nats_seed_lists_and_redis_sentinel_and_cluster_urls_are_read_and_masked() {
    let mut pairs = vec![
        ("NATS_SERVER1", "nats://n1:4222, nats://user:pw@n2:4222"),
        ("NATS_SERVER2", "nats://n3:4222"),
        ("NATS_SERVER4", "tls://n4:4222"),
        (
            "REDIS_URL",
            "redis-sentinel://user:secret@s1:26379/0?sentinelServiceName=primary&node=s2:26379&node=s3:26379&sentinelPassword=hidden",
        ),
        ("ENVIRONMENT_NAME", "dev"),
    ];
    let settings = load(&pairs).unwrap();
    assert_eq!(
        settings.nats_urls.0.expose(),
        "nats://n1:4222,nats://user:pw@n2:4222,nats://n3:4222,tls://n4:4222"
    );
    let shown = format!("{:?}", settings.effective());
    for secret in ["pw@", "secret", "hidden"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("sentinelPassword=***"), "{shown}");
    assert!(shown.contains("nats://***@n2:4222"), "{shown}");

    for url in [
        "redis-cluster://c1:7000?node=c2:7001&node=c3:7002",
        "rediss-cluster://:pw@c1:7000",
        "rediss-sentinel://s1:26379?sentinelServiceName=primary",
    ] {
        pairs[3] = ("REDIS_URL", url);
        assert!(load(&pairs).is_ok(), "{url}");
    }
    for url in [
        "redis-sentinel://s1:26379",
        "redis-sentinel://s1:26379?sentinelServiceName=",
        "redis-cluster://c1:7000?node=c2",
        "redis-cluster://c1:7000?node=c2:port",
        "redis-swarm://c1:7000",
    ] {
        pairs[3] = ("REDIS_URL", url);
        assert!(
            matches!(load(&pairs), Err(SettingsError::Invalid { name, .. }) if name == "REDIS_URL"),
            "{url}"
        );
    }
    pairs[3] = ("REDIS_URL", "redis://r:6379");
    pairs[0] = ("NATS_SERVER1", "nats://n1:4222,,nats://n2:4222");
    assert!(matches!(
        load(&pairs),
        Err(SettingsError::Invalid { name, .. }) if name == "NATS_SERVER1"
    ));
}
