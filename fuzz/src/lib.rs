//! Invariants the fuzz targets share. Each target is a thin `fuzz_target!` around one function
//! here, so a crashing input can be replayed by the crates' own tests through the same checks.

use domain::serde_json::value::RawValue;
use domain::{Dispatch, DispatchSpec, VendorAdapter};

/// A vendor list body as the bridge would send it: the adapter accepts or refuses it, and
/// every dispatch it maps round-trips through [`VendorAdapter::record_for`].
pub fn check_list(adapter: &dyn VendorAdapter, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(body) = serde_json::from_str::<Box<RawValue>>(text) else {
        return;
    };
    let Ok(records) = adapter.records(&body) else {
        return;
    };
    for record in records {
        let Ok(record) = serde_json::from_str(record.get()) else {
            continue;
        };
        if let Ok(dispatch) = adapter.map_record(&record) {
            check_round_trip(adapter, &dispatch);
        }
    }
}

/// The spec a mapped dispatch states, in the terms `record_for` takes.
pub fn spec_of(dispatch: &Dispatch) -> DispatchSpec {
    DispatchSpec {
        dispatch_number: dispatch.dispatch_number.as_str().to_owned(),
        ticket_id: dispatch.ticket_id.as_str().to_owned(),
        note_key: dispatch
            .note_key
            .as_ref()
            .map(|key| key.as_str().to_owned()),
        status: dispatch.status,
        appointment: dispatch.appointment.as_ref().map(|at| {
            // The display is `Mar 16, 2020 @ 04:00 PM Pacific`: the zone word follows the time.
            let (_, after) = at.display.split_once(" @ ").expect("a display has ` @ `");
            (at.instant.naive_local(), after[9..].to_owned())
        }),
        tech_name: dispatch.tech_name.clone(),
        tech_phone: dispatch.tech_phone_raw.clone(),
        client_phone: dispatch
            .client_phone
            .as_ref()
            .map(|p| p.as_str().to_owned()),
        site: dispatch.site.clone(),
        street: dispatch.street.clone(),
        tech_on_site: dispatch.tech_on_site,
        completed: dispatch.completed,
    }
}

/// The record `record_for` writes for the dispatch's spec maps back to a dispatch with the same
/// spec, the same validated phones and the same appointment instant and display.
pub fn check_round_trip(adapter: &dyn VendorAdapter, dispatch: &Dispatch) {
    let spec = spec_of(dispatch);
    let record = adapter
        .record_for(&spec)
        .expect("both vendors can be simulated");
    let again = adapter
        .map_record(&record)
        .unwrap_or_else(|skip| panic!("{spec:?} wrote {record}, skipped: {skip}"));
    assert_eq!(spec_of(&again), spec, "record {record}");
    assert_eq!(again.tech_phone, dispatch.tech_phone, "record {record}");
    assert_eq!(again.client_phone, dispatch.client_phone, "record {record}");
    let instant = |d: &Dispatch| {
        d.appointment
            .as_ref()
            .map(|at| (at.instant, at.display.clone()))
    };
    assert_eq!(instant(&again), instant(dispatch), "record {record}");
}

/// LIT's three appointment texts, one per line of the input.
pub fn check_lit_time(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (date, time, zone) = (parts.next(), parts.next(), parts.next());
    if let Some(time) = time
        && let Some(start) = vendor_lit::parse_start_time(time)
    {
        use chrono::Timelike;
        assert_eq!(start.second(), 0, "{time:?}");
        let rendered = start.format("%-I:%M%p").to_string();
        assert_eq!(
            vendor_lit::parse_start_time(&rendered),
            Some(start),
            "{time:?}"
        );
    }
    let Some(at) = vendor_lit::parse_appointment(date, time, zone) else {
        return;
    };
    // The instant renders back into LIT's own texts, which read back to the same instant.
    let local = at.instant.naive_local();
    let date = local.format("%Y-%m-%d").to_string();
    let time = local.format("%-I:%M%p").to_string();
    let again = vendor_lit::parse_appointment(Some(&date), Some(&time), zone)
        .unwrap_or_else(|| panic!("{date} {time} {zone:?} does not read back"));
    assert_eq!(again, at, "{date} {time} {zone:?}");
}

/// The envelope's JSON as a bridge writes it (request id and body only when present).
fn encode_reply(reply: &infra_nats::RawReply) -> String {
    let mut fields = vec![format!("\"status\":{}", reply.status)];
    if let Some(id) = &reply.request_id {
        let id = serde_json::to_string(id).expect("a string serialises");
        fields.push(format!("\"request_id\":{id}"));
    }
    if let Some(body) = &reply.body {
        fields.push(format!("\"body\":{}", body.get()));
    }
    format!("{{{}}}", fields.join(","))
}

/// A NATS reply: a decoded envelope re-encodes to one that decodes equal and is never read as
/// a stored message; a stored-message token re-encodes to the same token.
pub fn check_nats_reply(data: &[u8]) {
    use infra_nats::fuzzing::{parse_reply, stored_reply_token};
    // An absent body and a null one mean the same (`into_raw_body` gives `null` for both).
    let body_text = |reply: &infra_nats::RawReply| {
        reply
            .body
            .as_ref()
            .map_or("null".to_owned(), |b| b.get().to_owned())
    };
    if let Ok(reply) = parse_reply(data) {
        let encoded = encode_reply(&reply);
        let again = parse_reply(encoded.as_bytes()).expect("a re-encoded reply decodes");
        assert_eq!(again.status, reply.status);
        assert_eq!(again.request_id, reply.request_id);
        assert_eq!(body_text(&again), body_text(&reply));
        assert_eq!(
            stored_reply_token(encoded.as_bytes()).ok(),
            Some(None),
            "{encoded}"
        );
        // The body as JSON values: equal to its text read, or an unparseable reply.
        match infra_nats::Reply::try_from(reply.clone()) {
            Ok(read) => {
                assert_eq!(read.status, reply.status);
                let text = body_text(&reply);
                assert_eq!(
                    serde_json::from_str::<serde_json::Value>(&text).ok(),
                    Some(read.body)
                );
            }
            Err(failure) => assert_eq!(failure.reason(), "invalid_reply"),
        }
        match reply.clone().into_raw_body() {
            Ok(body) => assert_eq!(body.get(), body_text(&reply)),
            Err(domain::ports::PortError::Rejected { status, detail }) => {
                assert_eq!(status, reply.status);
                assert!(!(200..300).contains(&status));
                assert!(detail.chars().count() <= 501, "{detail}");
            }
            Err(other) => panic!("a decoded reply fails only as rejected: {other}"),
        }
    }
    if let Ok(Some(token)) = stored_reply_token(data) {
        assert!(!token.is_empty());
        let pointer = serde_json::json!({"token": token, "is_stored": true}).to_string();
        assert_eq!(
            stored_reply_token(pointer.as_bytes()).ok(),
            Some(Some(token))
        );
    }
}

/// Notes as raw notes again, their dates written back in RFC 3339.
fn raw_again(notes: &[domain::TicketNote]) -> Vec<domain::RawTicketNote> {
    notes
        .iter()
        .map(|note| domain::RawTicketNote {
            note_id: note.id,
            note_value: Some(note.text.clone()),
            created_date: note.created.map(|at| at.to_rfc3339()),
        })
        .collect()
}

/// Bruin ticket details: the notes decode, re-encode and decode equal; cleaning and ordering
/// is idempotent and sorts by instant; every watermarked key finds its note.
pub fn check_ticket_notes(data: &[u8]) {
    use domain::{NoteKey, TicketNotes, WATERMARK, belongs_to, tech_names_in};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(body) = serde_json::from_str::<Box<RawValue>>(text) else {
        return;
    };
    let Ok(raw) = infra_nats::fuzzing::parse_ticket_notes(&body) else {
        return;
    };
    let encoded = serde_json::json!({ "ticketNotes": raw }).to_string();
    let body = serde_json::from_str::<Box<RawValue>>(&encoded).expect("JSON reads back");
    let again = infra_nats::fuzzing::parse_ticket_notes(&body).expect("re-encoded notes decode");
    assert_eq!(again, raw, "{encoded}");

    let notes = TicketNotes::from_raw(raw.clone());
    let slice = notes.as_slice();
    assert!(slice.len() <= raw.len());
    assert!(slice.iter().all(|note| !note.text.trim().is_empty()));
    assert!(
        slice
            .windows(2)
            .all(|pair| pair[0].created <= pair[1].created),
        "notes out of order: {:?}",
        slice.iter().map(|n| n.created).collect::<Vec<_>>()
    );
    assert_eq!(TicketNotes::from_raw(raw_again(slice)), notes);

    for note in slice {
        for name in tech_names_in(&note.text) {
            assert!(!name.is_empty() && name == name.trim() && !name.contains('\n'));
            let written = format!("Field Engineer\n{name}");
            assert_eq!(tech_names_in(&written), vec![name.clone()]);
        }
        for line in note.text.lines() {
            let Some(at) = line.find(WATERMARK) else {
                continue;
            };
            let Ok(key) = NoteKey::parse(&line[at + WATERMARK.len()..]) else {
                continue;
            };
            assert!(belongs_to(&note.text, &key), "{key:?} in {:?}", note.text);
            let mine = notes.for_key(&key);
            assert!(mine.as_slice().contains(note));
            let ours = TicketNotes::from_raw(raw_again(mine.as_slice()));
            assert_eq!(ours.for_key(&key), mine, "for_key is idempotent");
        }
    }
}

/// Every credential `shown` still holds as a URL is masked as `***`.
fn assert_masked(given: &str, shown: &str) {
    use dispatch_monitor::settings::values::credentials_a_reader_finds;
    for secret in credentials_a_reader_finds(shown) {
        assert_eq!(secret, "***", "{given:?} shows as {shown:?}");
    }
}

/// One setting value read as a Redis URL and as a NATS seed list: a parsed URL's masked forms
/// never hold its credentials, and masking is idempotent.
pub fn check_url_value(text: &str) {
    use dispatch_monitor::settings::values::{NatsUrls, SecretUrl, SettingValue, mask_credentials};
    let masked = mask_credentials(text);
    assert_eq!(mask_credentials(&masked), masked, "{text:?}");
    if let Ok(url) = SecretUrl::parse(text) {
        assert_masked(text, &url.to_string());
        let debug = format!("{url:?}");
        assert_masked(text, &debug["SecretUrl(".len()..debug.len() - 1]);
        assert_eq!(url.expose(), text);
    }
    if let Ok(urls) = NatsUrls::parse(text) {
        for seed in urls.show().split(',') {
            assert_masked(text, seed);
        }
    }
}

/// Settings as `NAME=value` lines: they validate, or the error names a known setting and hides
/// credentials; valid settings always have a usable Redis URL and show no credentials.
pub fn check_settings(data: &[u8]) {
    use dispatch_monitor::settings::values::{SecretUrl, SettingValue};
    use dispatch_monitor::settings::{RawSettings, Settings};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pairs: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once('=')).collect();
    for (_, value) in &pairs {
        check_url_value(value.trim());
    }
    let raw = RawSettings::from_pairs(pairs.iter().copied());
    let vendors = [
        domain::VendorName::fixed("LIT"),
        domain::VendorName::fixed("CTS"),
    ];
    let mut known: Vec<String> = Settings::rows()
        .into_iter()
        .flat_map(|row| {
            vendors
                .iter()
                .map(|v| row.name.replace("<VENDOR>", v.as_str()))
                .collect::<Vec<_>>()
        })
        .collect();
    known.extend((2..=9).map(|n| format!("NATS_SERVER{n}")));
    match Settings::from_raw(&raw, &vendors) {
        Err(error) => check_settings_error(&error, &known),
        Ok(settings) => {
            let redis = settings.redis_url().expose();
            assert!(SecretUrl::parse(redis).is_ok(), "{redis:?} does not parse");
            for (name, value) in settings.effective() {
                match name.as_str() {
                    "REDIS_URL" => assert_masked(text, &value),
                    "NATS_SERVER1" => value.split(',').for_each(|seed| assert_masked(text, seed)),
                    _ => {}
                }
            }
        }
    }
}

/// A signed offset as the scenario format writes it: `+40s`, `-7200s`.
fn offset_text(seconds: i64) -> String {
    if seconds < 0 {
        format!("-{}s", seconds.unsigned_abs())
    } else {
        format!("+{seconds}s")
    }
}

/// A parsed scenario written back as scenario TOML.
pub fn render_scenario(scenario: &bridge_sim::scenario::Scenario) -> String {
    use toml::{Table, Value};
    let text = |s: &str| Value::String(s.to_owned());
    let tech = |name: &str, phone: &Option<String>| {
        let mut tech = Table::new();
        tech.insert("name".into(), text(name));
        if let Some(phone) = phone {
            tech.insert("phone".into(), text(phone));
        }
        Value::Table(tech)
    };
    let mut dispatches = Vec::new();
    for d in &scenario.dispatches {
        let spec = &d.spec;
        let mut t = Table::new();
        t.insert("vendor".into(), text(d.vendor.as_str()));
        t.insert("number".into(), text(&spec.dispatch_number));
        t.insert("ticket".into(), text(&spec.ticket_id));
        t.insert("status".into(), text(spec.status.label()));
        t.insert("ours".into(), Value::Boolean(d.ours));
        t.insert("tech_on_site".into(), Value::Boolean(spec.tech_on_site));
        t.insert("completed".into(), Value::Boolean(spec.completed));
        t.insert(
            "notes".into(),
            Value::Array(d.notes.iter().map(|n| text(n)).collect()),
        );
        t.insert(
            "appears".into(),
            text(&format!("+{}s", d.appears.as_secs())),
        );
        if let Some((after, zone)) = &d.appointment {
            t.insert(
                "appointment".into(),
                text(&offset_text(after.num_seconds())),
            );
            t.insert("zone".into(), text(zone));
        }
        if let Some(name) = &spec.tech_name {
            t.insert("tech".into(), tech(name, &spec.tech_phone));
        }
        for (key, value) in [
            ("igz", &spec.note_key),
            ("client_phone", &spec.client_phone),
            ("site", &spec.site),
            ("street", &spec.street),
        ] {
            if let Some(value) = value {
                t.insert(key.into(), text(value));
            }
        }
        dispatches.push(Value::Table(t));
    }
    let mut changes = Vec::new();
    for c in &scenario.changes {
        let mut t = Table::new();
        t.insert("at".into(), text(&format!("+{}s", c.at.as_secs())));
        t.insert("vendor".into(), text(c.vendor.as_str()));
        t.insert("number".into(), text(&c.number));
        if let Some(status) = c.status {
            t.insert("status".into(), text(status.label()));
        }
        if let Some((name, phone)) = &c.tech {
            t.insert("tech".into(), tech(name, phone));
        }
        if let Some(after) = c.appointment {
            t.insert(
                "appointment".into(),
                text(&offset_text(after.num_seconds())),
            );
        }
        for (key, value) in [("tech_on_site", c.tech_on_site), ("completed", c.completed)] {
            if let Some(value) = value {
                t.insert(key.into(), Value::Boolean(value));
            }
        }
        if let Some(note) = &c.note {
            t.insert("note".into(), text(note));
        }
        changes.push(Value::Table(t));
    }
    let mut faults = Vec::new();
    for f in &scenario.faults {
        let mut t = Table::new();
        let fault = &f.fault;
        t.insert("at".into(), text(&format!("+{}s", f.at.as_secs())));
        t.insert("subject".into(), text(&fault.subject));
        t.insert("fail".into(), Value::Integer(fault.fail.into()));
        t.insert("no_reply".into(), Value::Integer(fault.no_reply.into()));
        t.insert("bad_json".into(), Value::Integer(fault.bad_json.into()));
        if let Some(status) = fault.status {
            t.insert("status".into(), Value::Integer(status.into()));
        }
        if let Some(latency) = fault.latency_ms {
            let latency = i64::try_from(latency).expect("TOML integers are i64");
            t.insert("latency_ms".into(), Value::Integer(latency));
        }
        faults.push(Value::Table(t));
    }
    let mut file = Table::new();
    file.insert("name".into(), text(&scenario.name));
    file.insert("dispatch".into(), Value::Array(dispatches));
    file.insert("change".into(), Value::Array(changes));
    file.insert("fault".into(), Value::Array(faults));
    toml::to_string(&file).expect("a TOML table renders")
}

/// A scenario file: refused with a line inside the file, or parsed into a scenario whose
/// timeline is in order, whose appointments place at a site time, and which, written back as
/// TOML, parses equal.
pub fn check_scenario(data: &[u8]) {
    use bridge_sim::scenario::{Scenario, local_time};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vendors = [
        domain::VendorName::fixed("LIT"),
        domain::VendorName::fixed("CTS"),
    ];
    let scenario = match Scenario::parse(text, &vendors) {
        Ok(scenario) => scenario,
        Err(error) => {
            let lines = text.matches('\n').count() + 1;
            assert!(
                (1..=lines).contains(&error.line),
                "{error} of {lines} lines"
            );
            return;
        }
    };
    assert!(scenario.changes.windows(2).all(|p| p[0].at <= p[1].at));
    assert!(scenario.faults.windows(2).all(|p| p[0].at <= p[1].at));
    let start = chrono::DateTime::from_timestamp(1_773_676_800, 0).expect("a valid instant");
    for dispatch in &scenario.dispatches {
        assert!(dispatch.spec.ticket_id.bytes().all(|b| b.is_ascii_digit()));
        if let Some((after, zone)) = &dispatch.appointment {
            // Far offsets may fall outside the calendar; they must not panic.
            let _ = local_time(start, *after, zone);
        }
    }
    let written = render_scenario(&scenario);
    let again = Scenario::parse(&written, &vendors)
        .unwrap_or_else(|error| panic!("written back: {error}\n{written}"));
    assert_eq!(again, scenario, "{written}");
}

/// Every error a refused set of settings gives names a known setting (or, for a name that is
/// no setting, that name); several are reported together, one a line.
fn check_settings_error(error: &dispatch_monitor::settings::SettingsError, known: &[String]) {
    match error {
        dispatch_monitor::settings::SettingsError::Missing(name) => {
            assert!(known.contains(name), "{name}")
        }
        dispatch_monitor::settings::SettingsError::Invalid { name, .. } => {
            assert!(known.contains(name), "{name}");
            assert!(error.to_string().contains(name.as_str()));
        }
        dispatch_monitor::settings::SettingsError::Unknown { name, .. } => {
            assert!(!known.contains(name), "{name} is a setting");
            assert!(error.to_string().contains(name.as_str()));
        }
        dispatch_monitor::settings::SettingsError::Several(errors) => {
            assert!(errors.len() > 1, "{error}");
            assert_eq!(error.to_string().lines().count(), errors.len(), "{error}");
            errors
                .iter()
                .for_each(|inner| check_settings_error(inner, known));
        }
        other => panic!("settings from pairs fail only as missing, invalid or unknown: {other}"),
    }
}
