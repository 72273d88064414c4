//! The fault suite (SPEC §13): `dispatch-monitor run` replicas against real NATS and Redis
//! and the simulated bridges, while the world moves on and the test kills and restarts Redis
//! (empty) and NATS on their ports, SIGKILLs one replica mid-cycle, SIGTERMs another, and
//! makes SMS replies go missing. When the faults stop, every note and SMS must be what a
//! fault-free run of the same world produced: each note exactly once, each SMS delivered —
//! once per idempotency key with a deduplicating notifier; with one that does not
//! deduplicate, again only when its outcome was uncertain.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use dispatch_monitor::wiring;
use domain::{DispatchSpec, Status, VendorName};
use e2e::bridge_sim::{Fault, Outbox, Sim, scenario, subjects};
use regex::Regex;
use serde_json::Value;
use test_support::servers::{NatsServer, RedisServer};

/// One `dispatch-monitor run` process and the lines it logs.
struct Replica {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    fn start(nats: &NatsServer, redis: &RedisServer) -> Self {
        let mut child = e2e::monitor_run([
            ("NATS_SERVER1", nats.url()),
            ("REDIS_URL", redis.url()),
            ("ENVIRONMENT_NAME", "faults".into()),
            ("DISPATCH_MONITOR_SERVER_PORT", "0".into()),
            ("MONITOR_LIT_INTERVAL_SECS", "1".into()),
            ("MONITOR_CTS_INTERVAL_SECS", "1".into()),
            ("MONITOR_LEASE_TTL_SECS", "6".into()),
            ("MONITOR_REQUEST_TIMEOUT_SECS", "2".into()),
            ("MONITOR_SHUTDOWN_GRACE_SECS", "5".into()),
            ("MONITOR_ALERT_LEVEL", "errors".into()),
            ("MONITOR_LOG_FORMAT", "json".into()),
            ("RUST_LOG", "info".into()),
            // The uncertain SMS are matched to deliveries by their whole number in the logs.
            ("MONITOR_API_SHOW_PHONES", "true".into()),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            logs,
            reader: Some(reader),
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits for the exit status, at most `limit`.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Stops it (SIGTERM) and returns every line it logged.
    fn finish(mut self) -> Vec<String> {
        if self.child.try_wait().unwrap().is_none() {
            self.signal("-TERM");
            if self.wait(Duration::from_secs(15)).is_none() {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn lit() -> VendorName {
    VendorName::fixed("LIT")
}

fn cts() -> VendorName {
    VendorName::fixed("CTS")
}

/// A dispatch of the world: confirmed with a tech, `hours` from now, in Eastern time.
fn dispatch(
    number: &str,
    ticket: &str,
    igz: Option<&str>,
    hours: f64,
    tech: Option<&str>,
    n: u32,
) -> DispatchSpec {
    let after = chrono::Duration::seconds((hours * 3600.0) as i64);
    let mut spec = DispatchSpec::new(number, ticket);
    spec.note_key = igz.map(str::to_owned);
    spec.status = Status::Confirmed;
    spec.appointment =
        scenario::local_time(Utc::now(), after, "Eastern").map(|t| (t, "Eastern".to_owned()));
    spec.client_phone = Some(format!("+1 212 555 {:04}", 1000 + n));
    if let Some(tech) = tech {
        spec.tech_name = Some(tech.to_owned());
        spec.tech_phone = Some(format!("+1 212 555 {:04}", 5000 + n));
    }
    spec.site = Some(format!("Site {n}"));
    spec.street = Some(format!("{n} Main St"));
    spec
}

/// The world at the start: what every run serves.
fn populate(sim: &Sim) {
    let mut lit_dispatches = vec![
        dispatch("DIS201", "5000201", None, 11.5, Some("Ann Lee"), 1),
        DispatchSpec {
            status: Status::Requested,
            ..dispatch("DIS202", "5000202", None, 30.0, None, 2)
        },
        dispatch("DIS203", "5000203", None, 40.0, Some("Cal Ray"), 3),
        dispatch("DIS204", "5000204", None, 5.5, Some("Eve Oh"), 4),
        dispatch("DIS206", "5000206", None, 30.0, Some("Not Ours"), 6),
    ];
    for n in 0..8 {
        lit_dispatches.push(dispatch(
            &format!("DIS21{n}"),
            &format!("500021{n}"),
            None,
            50.0,
            Some("Filler Tech"),
            10 + n,
        ));
    }
    let mut cts_dispatches = vec![
        dispatch("S-301", "5000301", Some("IGZ_301"), 1.5, Some("Gus Ho"), 31),
        DispatchSpec {
            status: Status::Requested,
            tech_name: None,
            tech_phone: None,
            ..dispatch("S-302", "5000302", Some("IGZ_302"), 30.0, None, 32)
        },
    ];
    for n in 0..5 {
        cts_dispatches.push(dispatch(
            &format!("S-31{n}"),
            &format!("500031{n}"),
            Some(&format!("IGZ_31{n}")),
            50.0,
            Some("Filler Tech"),
            40 + n,
        ));
    }
    for spec in lit_dispatches {
        if spec.dispatch_number != "DIS206" {
            sim.book(&spec.ticket_id, &spec.dispatch_number);
        }
        sim.upsert(&lit(), spec);
    }
    for spec in cts_dispatches {
        sim.book(&spec.ticket_id, spec.note_key.as_deref().unwrap());
        sim.upsert(&cts(), spec);
    }
    sim.book("5000205", "DIS205");
    sim.book("5000303", "IGZ_303");
}

/// The world moves on: each state lasts several seconds of one-second cycles.
fn world_step(sim: &Sim, second: u64) {
    let set = |vendor: VendorName, number: &str, change: &dyn Fn(&mut DispatchSpec)| {
        assert!(sim.update(&vendor, number, change), "{number}");
    };
    match second {
        3 => set(lit(), "DIS202", &|d| d.status = Status::Confirmed),
        4 => set(cts(), "S-302", &|d| {
            d.status = Status::Confirmed;
            d.tech_name = Some("Hal Mo".into());
            d.tech_phone = Some("+1 212 555 5032".into());
        }),
        6 => sim.upsert(
            &lit(),
            dispatch("DIS205", "5000205", None, 26.0, Some("Fay Wu"), 5),
        ),
        7 => sim.upsert(
            &cts(),
            dispatch(
                "S-303",
                "5000303",
                Some("IGZ_303"),
                20.0,
                Some("Ida Po"),
                33,
            ),
        ),
        8 => set(lit(), "DIS202", &|d| {
            d.tech_name = Some("Bob Yu".into());
            d.tech_phone = Some("+1 212 555 5002".into());
        }),
        9 => {
            set(lit(), "DIS201", &|d| {
                d.status = Status::TechOnSite;
                d.tech_on_site = true;
            });
            set(lit(), "DIS203", &|d| {
                d.tech_name = Some("Dee Xu".into());
                d.tech_phone = Some("+1 212 555 5033".into());
            });
        }
        10 => set(cts(), "S-301", &|d| {
            d.status = Status::TechOnSite;
            d.tech_on_site = true;
        }),
        12 => set(lit(), "DIS204", &|d| d.status = Status::Canceled),
        15 => set(lit(), "DIS201", &|d| {
            d.status = Status::Completed;
            d.completed = true;
        }),
        16 => set(cts(), "S-301", &|d| {
            d.status = Status::Completed;
            d.completed = true;
        }),
        _ => {}
    }
}

/// The last second the world changes.
const WORLD_ENDS: u64 = 16;

/// Appointment texts depend on when a run started; they read `<when>` here.
fn normalised(text: &str) -> String {
    let display = Regex::new(r"[A-Z][a-z]{2} \d{2}, \d{4} @ \d{2}:\d{2} [AP]M [A-Za-z]+").unwrap();
    let raw = Regex::new(r"\d{4}-\d{2}-\d{2} @ \d{1,2}:\d{2}[AP]M [A-Za-z]+ Time").unwrap();
    let text = display.replace_all(text.trim_end(), "<when>");
    raw.replace_all(&text, "<when>").replace('\n', " | ")
}

/// Every note appended, as `ticket: text`, sorted (duplicates kept).
fn notes(outbox: &Outbox) -> Vec<String> {
    let mut notes: Vec<String> = outbox
        .notes
        .iter()
        .map(|note| format!("{}: {}", note.ticket, normalised(&note.text)))
        .collect();
    notes.sort();
    notes
}

/// Every SMS delivered, as `+to: text`, sorted (duplicates kept).
fn sms(outbox: &Outbox) -> Vec<String> {
    let mut sms: Vec<String> = outbox
        .sms
        .iter()
        .map(|sms| format!("+{}: {}", sms.to, normalised(&sms.text)))
        .collect();
    sms.sort();
    sms
}

/// What the test does to a run at a given time.
enum Disruption {
    Sim(Fault),
    StopRedis,
    StartRedis,
    StopNats,
    StartNats,
    Kill(usize),
    Terminate(usize),
    AddReplica,
}

/// One run: its servers, bridges and replicas, and what was done to them.
struct Run {
    nats: NatsServer,
    redis: RedisServer,
    sim: Sim,
    replicas: Vec<Replica>,
    terminated: Vec<Terminated>,
}

impl Run {
    async fn start(replicas: usize, deduplicate: bool) -> Self {
        let nats = NatsServer::new();
        let redis = RedisServer::new();
        let sim = e2e::start(&nats.url(), wiring::vendor_adapters()).await;
        sim.set_deduplicate_sms(deduplicate);
        populate(&sim);
        let replicas = (0..replicas)
            .map(|_| Replica::start(&nats, &redis))
            .collect();
        Self {
            nats,
            redis,
            sim,
            replicas,
            terminated: Vec::new(),
        }
    }

    fn apply(&mut self, fault: &Disruption) {
        match fault {
            Disruption::Sim(fault) => self.sim.add_fault(fault),
            Disruption::StopRedis => self.redis.stop(),
            Disruption::StartRedis => self.redis.start(),
            Disruption::StopNats => self.nats.stop(),
            Disruption::StartNats => self.nats.start(),
            Disruption::Kill(index) => self.replicas[*index].signal("-KILL"),
            Disruption::Terminate(index) => {
                let replica = &mut self.replicas[*index];
                replica.signal("-TERM");
                // The grace period is 5 s; a clean stop takes less.
                let code = replica.wait(Duration::from_secs(10));
                self.terminated.push((*index, code));
            }
            Disruption::AddReplica => {
                let replica = Replica::start(&self.nats, &self.redis);
                self.replicas.push(replica);
            }
        }
    }

    /// Every line the replicas logged; stops those still running.
    fn finish(self) -> (Outbox, Vec<String>, Vec<Terminated>) {
        let outbox = self.sim.outbox();
        let logs = self
            .replicas
            .into_iter()
            .flat_map(Replica::finish)
            .collect();
        (outbox, logs, self.terminated)
    }
}

/// A replica stopped by SIGTERM: its index and exit code.
type Terminated = (usize, Option<i32>);

fn sms_fault(no_reply: u32, bad_json: u32) -> Disruption {
    Disruption::Sim(Fault {
        subject: subjects::SMS.into(),
        no_reply,
        bad_json,
        ..Fault::default()
    })
}

/// Plays the world's timeline on every run at once, with each run's faults at their times.
async fn play(runs: &mut [(&mut Run, Vec<(u64, Disruption)>)]) {
    let started = Instant::now();
    for tenth in 0..=(WORLD_ENDS * 10) {
        let at = started + Duration::from_millis(tenth * 100);
        tokio::time::sleep_until(at.into()).await;
        for (run, faults) in runs.iter_mut() {
            if tenth % 10 == 0 {
                world_step(&run.sim, tenth / 10);
            }
            for (_, fault) in faults.iter().filter(|(when, _)| *when == tenth) {
                run.apply(fault);
            }
        }
    }
}

/// Waits until `run`'s notes and SMS equal `expected`'s, and stay so for two seconds.
async fn converge(run: &Run, expected: &Outbox, distinct_sms: bool) {
    let deadline = Instant::now() + Duration::from_secs(75);
    let mut stable_since: Option<Instant> = None;
    loop {
        let outbox = run.sim.outbox();
        let mut delivered = sms(&outbox);
        if distinct_sms {
            delivered.dedup();
        }
        let done = notes(&outbox) == notes(expected) && delivered == sms(expected);
        match (done, stable_since) {
            (true, Some(since)) if since.elapsed() > Duration::from_secs(2) => return,
            (true, None) => stable_since = Some(Instant::now()),
            (false, _) => stable_since = None,
            _ => {}
        }
        if Instant::now() > deadline {
            let have = notes(&outbox);
            let missing: Vec<String> = notes(expected)
                .into_iter()
                .filter(|note| !have.contains(note))
                .collect();
            panic!(
                "no convergence.\nnotes: {} of {} ({} missing: {missing:#?})\nsms: {} of {}",
                outbox.notes.len(),
                expected.notes.len(),
                missing.len(),
                outbox.sms.len(),
                expected.sms.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The (dispatch number, recipient digits) of every SMS a replica logged as uncertain.
fn uncertain_sms(logs: &[String]) -> BTreeSet<(String, String)> {
    logs.iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "SMS may have been delivered")
        .filter_map(|line| {
            let to = line["fields"]["to"]
                .as_str()?
                .trim_start_matches('+')
                .to_owned();
            let number = line["spans"]
                .as_array()?
                .iter()
                .find_map(|span| span["dispatch_number"].as_str())?
                .to_owned();
            Some((number, to))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_converge_to_a_fault_free_run_under_faults() {
    let mut reference = Run::start(1, false).await;
    let mut with_dedup = Run::start(3, true).await;
    let mut without_dedup = Run::start(2, false).await;
    let dedup_faults = vec![
        (10, sms_fault(2, 1)),
        (25, Disruption::StopRedis),
        (40, Disruption::StartRedis),
        (50, Disruption::Kill(0)),
        (65, Disruption::StopNats),
        (80, Disruption::StartNats),
        (
            105,
            Disruption::Sim(Fault {
                subject: subjects::NOTE_APPEND.into(),
                fail: 3,
                ..Fault::default()
            }),
        ),
        (110, Disruption::Terminate(1)),
        (115, Disruption::AddReplica),
        (130, sms_fault(2, 0)),
    ];
    let plain_faults = vec![
        (10, sms_fault(3, 0)),
        (65, Disruption::StopNats),
        (80, Disruption::StartNats),
        (110, Disruption::Terminate(1)),
        (130, sms_fault(2, 0)),
    ];
    play(&mut [
        (&mut reference, vec![]),
        (&mut with_dedup, dedup_faults),
        (&mut without_dedup, plain_faults),
    ])
    .await;

    // The fault-free run settles first: it is the expectation.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (0, 0);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let outbox = reference.sim.outbox();
        let now = (outbox.notes.len(), outbox.sms.len());
        if now == last && now != (0, 0) {
            break;
        }
        last = now;
        assert!(
            Instant::now() < deadline,
            "the fault-free run did not settle"
        );
    }
    let expected = reference.sim.outbox();
    let expected_notes = notes(&expected);
    let mut unique = expected_notes.clone();
    unique.dedup();
    assert_eq!(
        unique, expected_notes,
        "the fault-free run wrote a note twice"
    );
    assert!(
        expected.notes.len() > 60 && expected.sms.len() > 40,
        "{} notes, {} SMS",
        expected.notes.len(),
        expected.sms.len()
    );

    converge(&with_dedup, &expected, false).await;
    converge(&without_dedup, &expected, true).await;

    let (dedup_outbox, dedup_logs, dedup_terminated) = with_dedup.finish();
    let (plain_outbox, plain_logs, plain_terminated) = without_dedup.finish();
    let _ = reference.finish();

    // Every SIGTERMed replica stopped cleanly within its grace period; nothing panicked.
    for (index, code) in dedup_terminated.iter().chain(&plain_terminated) {
        assert_eq!(*code, Some(0), "replica {index} did not exit 0 on SIGTERM");
    }
    for line in dedup_logs.iter().chain(&plain_logs) {
        assert!(!line.contains("panicked"), "{line}");
    }

    // With a deduplicating notifier: every key delivered once, every note once.
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    for sms in &dedup_outbox.sms {
        *keys
            .entry(sms.idempotency_key.as_deref().unwrap())
            .or_default() += 1;
    }
    assert!(keys.values().all(|count| *count == 1));
    assert_eq!(notes(&dedup_outbox), expected_notes);

    // Without: an SMS goes twice only when a replica could not know it went out.
    let uncertain = uncertain_sms(&plain_logs);
    let mut delivered: BTreeMap<&str, usize> = BTreeMap::new();
    for sms in &plain_outbox.sms {
        *delivered
            .entry(sms.idempotency_key.as_deref().unwrap())
            .or_default() += 1;
    }
    let duplicated: Vec<&str> = delivered
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(key, _)| *key)
        .collect();
    for key in &duplicated {
        // faults:LIT:DIS201:confirmed:12125551001
        let parts: Vec<&str> = key.split(':').collect();
        let pair = (parts[2].to_owned(), parts[4].to_owned());
        assert!(
            uncertain.contains(&pair),
            "{key} went twice but was never uncertain: {uncertain:?}"
        );
    }
    assert_eq!(notes(&plain_outbox), expected_notes);

    eprintln!(
        "fault suite: expected {} notes and {} SMS. With a deduplicating notifier: {} SMS \
         delivered, {} answered again without delivering, 0 notes missing or twice. Without: \
         {} SMS delivered, {} keys delivered twice, {} SMS uncertain, 0 notes missing or twice.",
        expected.notes.len(),
        expected.sms.len(),
        dedup_outbox.sms.len(),
        dedup_outbox.deduplicated,
        plain_outbox.sms.len(),
        duplicated.len(),
        uncertain.len()
    );
}
