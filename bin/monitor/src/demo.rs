//! `demo`: the real engine and vendor adapters against an in-process simulated world — LIT and
//! CTS dispatches moving through their statuses over a simulated day — printed as a timeline.
//! Needs no NATS or Redis.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::America::Los_Angeles;
use domain::memory::{ManualClock, MemoryWorld, WorldEntry, WorldEvent};
use domain::ports::Clock;
use domain::rules::{RuleSettings, Step, WithheldAction};
use domain::safeguards::{SafeguardMark, Safeguards};
use domain::{
    CycleReport, DispatchNumber, Engine, EngineSettings, Mode, PhoneE164, TicketId, VendorName,
};
use serde_json::{Value, json};

use crate::wiring;

/// The simulated day starts at 08:00 Pacific.
fn start() -> DateTime<Utc> {
    "2026-03-16T15:00:00Z".parse().expect("a valid instant")
}

const LIT_CLIENT: &str = "+1 212 555 0101";
const LIT_TECH_1: &str = "+1 (212) 555-0102";
const LIT_TECH_2: &str = "+1 (212) 555-0103";
const CTS_CLIENT: &str = "(202) 555-0104";
const CTS_TECH: &str = "+1 (202) 555-0105";
/// The site contact of LIT DIS10003, who replied STOP: on the opt-out list (SPEC §17.1).
const OPTED_OUT_CLIENT: &str = "(212) 555-0106";
/// CTS S-20003's site contact and tech; an operator pauses its texts (SPEC §17.3).
const PAUSED_CLIENT: &str = "(202) 555-0107";
const PAUSED_TECH: &str = "+1 (202) 555-0108";
/// When LIT DIS10003 is confirmed (10:00) and CTS S-20003 scheduled and paused (10:30).
const OPTED_OUT_FROM: i64 = 2 * 60;
const PAUSED_FROM: i64 = 2 * 60 + 30;

/// Who a phone number belongs to, for the timeline.
fn who(phone: &str) -> &'static str {
    match phone {
        "+12125550101" => "LIT DIS10001 site contact",
        "+12125550102" => "LIT DIS10001 tech Joe Malone",
        "+12125550103" => "LIT DIS10001 tech Hulk Hogan",
        "+12025550104" => "CTS S-20001 site contact",
        "+12025550105" => "CTS S-20001 tech Michael J. Fox",
        "+12125550106" => "LIT DIS10003 site contact",
        "+12025550107" => "CTS S-20003 site contact",
        "+12025550108" => "CTS S-20003 tech Marty McFly",
        _ => "someone else",
    }
}

fn ticket_label(ticket: &str) -> &'static str {
    match ticket {
        "4000001" => "LIT DIS10001",
        "4000002" => "LIT DIS10002",
        "4000003" => "CTS S-20001",
        "4000004" => "CTS S-20002",
        "4000005" => "LIT DIS10003",
        "4000006" => "CTS S-20003",
        _ => "another dispatch",
    }
}

fn lit_record(number: &str, ticket: &str, status: &str, tech: Option<(&str, &str)>) -> Value {
    json!({
        "Dispatch_Number": number,
        "MetTel_Bruin_TicketID": ticket,
        "Dispatch_Status": status,
        "Date_of_Dispatch": "2026-03-17",
        "Hard_Time_of_Dispatch_Local": "10AM-12PM",
        "Hard_Time_of_Dispatch_Time_Zone_Local": "Pacific Time",
        "Tech_First_Name": tech.map(|t| t.0),
        "Tech_Mobile_Number": tech.map(|t| t.1),
        "Job_Site_Contact_Name_and_Phone_Number": format!("Jane Doe {LIT_CLIENT}"),
        "Job_Site": "Red Rose Inn",
        "Job_Site_Street": "160 Broadway",
        "Tech_Arrived_On_Site": false,
        "Time_of_Check_In": null,
        "Time_of_Check_Out": null,
    })
}

fn cts_record(name: &str, igz: &str, ticket: &str, status: &str, tech: bool) -> Value {
    let description = format!(
        "Onsite Time Needed: 2026-03-16 04.00PM\r\n\r\nOnsite Timezone: Pacific Time\r\n\r\n\
         Contact #: {CTS_CLIENT}\r\n\r\nIGZ Dispatch Number: {igz}"
    );
    json!({
        "Name": name,
        "Ext_Ref_Num__c": ticket,
        "Status__c": status,
        "Description__c": description,
        "API_Resource_Name__c": if tech { Some("Michael J. Fox") } else { None },
        "Resource_Phone_Number__c": if tech { Some(CTS_TECH) } else { None },
        "Lookup_Location_Owner__c": "Premier Financial Bancorp",
        "Street__c": "1501 K St NW",
        "Check_In_Date__c": null,
    })
}

/// The vendors' lists `minutes` into the simulated day.
fn lists_at(minutes: i64) -> (Value, Value) {
    (lit_list_at(minutes), cts_list_at(minutes))
}

/// Minutes in `hours` hours.
fn h(hours: i64) -> i64 {
    hours * 60
}

/// The LIT list `minutes` into the simulated day.
fn lit_list_at(minutes: i64) -> Value {
    // LIT DIS10002 is confirmed but was not booked by our portal: the monitor leaves it alone.
    let dis10002 = lit_record(
        "DIS10002",
        "4000002",
        "Request Confirmed",
        Some(("Joe Malone", LIT_TECH_1)),
    );
    let lit_list: Vec<Value> = [dis10001(minutes), dis10002]
        .into_iter()
        .chain(dis10003(minutes))
        .collect();
    json!({"Status": "Success", "Message": null, "DispatchList": lit_list})
}

/// LIT DIS10001: appointment 2026-03-17 10:00 Pacific, 26 hours after the start.
fn dis10001(minutes: i64) -> Value {
    let mut dis10001 = match minutes {
        m if m < 30 => lit_record("DIS10001", "4000001", "New Dispatch", None),
        m if m < h(2) => lit_record("DIS10001", "4000001", "Request Confirmed", None),
        m if m < h(22) => lit_record(
            "DIS10001",
            "4000001",
            "Request Confirmed",
            Some(("Joe Malone", LIT_TECH_1)),
        ),
        m if m < h(26) + 10 => lit_record(
            "DIS10001",
            "4000001",
            "Request Confirmed",
            Some(("Hulk Hogan", LIT_TECH_2)),
        ),
        m if m < h(28) => lit_record(
            "DIS10001",
            "4000001",
            "Tech Arrived",
            Some(("Hulk Hogan", LIT_TECH_2)),
        ),
        _ => lit_record(
            "DIS10001",
            "4000001",
            "Close Out",
            Some(("Hulk Hogan", LIT_TECH_2)),
        ),
    };
    if minutes >= h(26) + 10 {
        dis10001["Tech_Arrived_On_Site"] = json!(true);
        dis10001["Time_of_Check_In"] = json!("10:10");
    }
    if minutes >= h(28) {
        dis10001["Time_of_Check_Out"] = json!("12:00");
    }
    dis10001
}

/// The CTS list `minutes` into the simulated day.
fn cts_list_at(minutes: i64) -> Value {
    // CTS S-20001: appointment 16:00 Pacific the same day, 8 hours after the start.
    let mut s20001 = match minutes {
        m if m < 60 => cts_record("S-20001", "IGZ_20001", "4000003", "Open", false),
        m if m < h(8) + 5 => cts_record("S-20001", "IGZ_20001", "4000003", "Scheduled", true),
        m if m < h(9) => cts_record("S-20001", "IGZ_20001", "4000003", "On Site", true),
        _ => cts_record("S-20001", "IGZ_20001", "4000003", "Completed", true),
    };
    if minutes >= h(8) + 5 {
        s20001["Check_In_Date__c"] = json!("2026-03-16T23:05:00.000+0000");
    }
    // CTS S-20002 is scheduled, then cancelled after three hours.
    let s20002 = if minutes < h(3) {
        cts_record("S-20002", "IGZ_20002", "4000004", "Open", false)
    } else {
        cts_record("S-20002", "IGZ_20002", "4000004", "Canceled", true)
    };
    let cts_list: Vec<Value> = [s20001, s20002]
        .into_iter()
        .chain(s20003(minutes))
        .collect();
    json!({"done": true, "totalSize": cts_list.len(), "records": cts_list})
}

/// LIT DIS10003 from 10:00: confirmed without a tech yet; its site contact opted out of texts.
fn dis10003(minutes: i64) -> Option<Value> {
    let mut record = lit_record("DIS10003", "4000005", "Request Confirmed", None);
    record["Job_Site_Contact_Name_and_Phone_Number"] =
        json!(format!("John Roe {OPTED_OUT_CLIENT}"));
    (minutes >= OPTED_OUT_FROM).then_some(record)
}

/// CTS S-20003 from 10:30: scheduled, its texts paused by an operator.
fn s20003(minutes: i64) -> Option<Value> {
    let mut record = cts_record("S-20003", "IGZ_20003", "4000006", "Scheduled", true);
    let description = record["Description__c"].as_str().unwrap_or_default();
    record["Description__c"] = json!(description.replace(CTS_CLIENT, PAUSED_CLIENT));
    record["API_Resource_Name__c"] = json!("Marty McFly");
    record["Resource_Phone_Number__c"] = json!(PAUSED_TECH);
    (minutes >= PAUSED_FROM).then_some(record)
}

/// Runs the simulated day and returns the timeline text.
pub async fn run() -> anyhow::Result<String> {
    let clock = Arc::new(ManualClock::new(start()));
    let world = MemoryWorld::new(clock.clone());
    seed_requested_notes(&world)?;
    let engine = demo_engine(&world)?;
    let lit = VendorName::parse("LIT")?;
    let cts = VendorName::parse("CTS")?;

    let mut timeline = Timeline::default();
    write_header(&mut timeline)?;
    for minutes in (0..=h_total()).step_by(15) {
        clock.set(start() + Duration::minutes(minutes as i64));
        let (lit_list, cts_list) = lists_at(minutes as i64);
        world.source.set_list(&lit, lit_list);
        world.source.set_list(&cts, cts_list);
        // The SMS gateway is down for one cycle when the CTS 2h reminder is due: the reminder
        // waits for the next cycle and still goes out once.
        let gateway_down = minutes == SMS_OUTAGE_AT;
        if gateway_down {
            let now = local(clock.now());
            writeln!(
                timeline.out,
                "{now}  (the SMS gateway is down for this cycle)"
            )?;
        }
        world.notifier.set_sms_failing(gateway_down);
        safeguard_operators(&world, &mut timeline, minutes as i64).await?;
        for vendor in [&lit, &cts] {
            let report = engine.run_cycle(vendor, Mode::Execute).await?;
            timeline.held(clock.now(), &report)?;
        }
        for entry in world.log.drain() {
            timeline.write(entry)?;
        }
    }
    timeline.finish()
}

/// The portal booked every demo dispatch: each ticket has its Dispatch Requested note.
fn seed_requested_notes(world: &MemoryWorld) -> anyhow::Result<()> {
    for (ticket, key) in [
        ("4000001", "DIS10001"),
        ("4000003", "IGZ_20001"),
        ("4000004", "IGZ_20002"),
        ("4000005", "DIS10003"),
        ("4000006", "IGZ_20003"),
    ] {
        world.tickets.seed_note(
            &TicketId::parse(ticket)?,
            &format!(
                "#*MetTel's IPA*# {key}\nDispatch Management - Dispatch Requested\n\n\
                 Please see the summary below."
            ),
            start() - Duration::hours(1),
        );
    }
    Ok(())
}

/// The real engine and vendor adapters over the simulated world, with the demo's quiet hours.
fn demo_engine(world: &MemoryWorld) -> anyhow::Result<Engine> {
    let settings = EngineSettings {
        rules: RuleSettings {
            quiet_hours: Some(DEMO_QUIET_HOURS.parse().map_err(anyhow::Error::msg)?),
            ..RuleSettings::default()
        },
        ..EngineSettings::default()
    };
    let mut engine =
        Engine::new(world.ports(), settings).with_common_templates(dispatch_templates::COMMON);
    for adapter in wiring::vendor_adapters() {
        engine = engine.with_vendor(adapter, &BTreeMap::new())?;
    }
    Ok(engine)
}

/// The timeline's first lines.
fn write_header(timeline: &mut Timeline) -> anyhow::Result<()> {
    writeln!(
        timeline.out,
        "Dispatch monitor demo: a simulated day, one cycle per vendor every 15 minutes."
    )?;
    writeln!(
        timeline.out,
        "Every note and SMS the monitor writes is listed; times are Pacific."
    )?;
    writeln!(
        timeline.out,
        "Quiet hours are {DEMO_QUIET_HOURS} at the site (MONITOR_QUIET_HOURS).\n"
    )?;
    Ok(())
}

/// What the operators do: the opted-out number is listed when its dispatch appears, and
/// S-20003's texts are paused when it is scheduled.
async fn safeguard_operators(
    world: &MemoryWorld,
    timeline: &mut Timeline,
    minutes: i64,
) -> anyhow::Result<()> {
    let at = world.clock.now();
    if minutes == OPTED_OUT_FROM {
        let phone = PhoneE164::parse_input(OPTED_OUT_CLIENT)?;
        let reason = "replied STOP";
        world
            .safeguards
            .add_opt_out(&phone, &demo_mark(at, reason))
            .await?;
        writeln!(
            timeline.out,
            "{}  OPT-OUT {phone} ({}) by cli:demo: {reason}",
            local(at),
            who(phone.as_str())
        )?;
    }
    if minutes == PAUSED_FROM {
        let reason = "the customer asked for no texts about this visit";
        let (vendor, number) = (VendorName::parse("CTS")?, DispatchNumber::parse("S-20003")?);
        world
            .safeguards
            .pause(&vendor, &number, &demo_mark(at, reason))
            .await?;
        writeln!(
            timeline.out,
            "{}  PAUSED CTS S-20003 by cli:demo: {reason}",
            local(at)
        )?;
    }
    Ok(())
}

fn demo_mark(at: DateTime<Utc>, reason: &str) -> SafeguardMark {
    SafeguardMark {
        at,
        by: "cli:demo".to_owned(),
        reason: reason.to_owned(),
    }
}

/// The timeline being written, with its counts.
#[derive(Debug, Default)]
struct Timeline {
    out: String,
    /// Texts held for quiet hours, listed the first cycle they wait.
    held: BTreeSet<(String, String)>,
    sms: usize,
    notes: usize,
    /// Every Slack alert line and when it was posted, listed after the timeline.
    alerts: Vec<(String, String)>,
}

impl Timeline {
    /// Lists the texts a cycle held for quiet hours, each once.
    fn held(&mut self, now: DateTime<Utc>, report: &CycleReport) -> std::fmt::Result {
        for dispatch_report in &report.dispatches {
            for step in &dispatch_report.steps {
                if let Step::Withheld(withheld) = step {
                    self.withheld(now, &dispatch_report.dispatch, withheld)?;
                }
                let Step::Deferred(deferred) = step else {
                    continue;
                };
                let to = deferred
                    .to
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let dispatch = &dispatch_report.dispatch;
                let key = (
                    dispatch.dispatch_number.to_string(),
                    deferred.kind.to_string(),
                );
                if self.held.insert(key) {
                    writeln!(
                        self.out,
                        "{}  HELD {} SMS to {to} ({}): {}; a later cycle sends it",
                        local(now),
                        deferred.kind,
                        who(&to),
                        deferred.reason
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Lists a text a safeguard withholds (opted out, paused, capped), once per dispatch, kind
    /// and number.
    fn withheld(
        &mut self,
        now: DateTime<Utc>,
        dispatch: &domain::Dispatch,
        withheld: &WithheldAction,
    ) -> std::fmt::Result {
        for to in &withheld.to {
            let key = (
                dispatch.dispatch_number.to_string(),
                format!("{} {to}", withheld.kind),
            );
            if self.held.insert(key) {
                writeln!(
                    self.out,
                    "{}  WITHHELD {} {to} ({}): {}",
                    local(now),
                    withheld.kind,
                    who(to.as_str()),
                    withheld.reason
                )?;
            }
        }
        Ok(())
    }

    fn write(&mut self, entry: WorldEntry) -> std::fmt::Result {
        let at = local(entry.at);
        let out = &mut self.out;
        match entry.event {
            WorldEvent::Sms { to, text, .. } => {
                self.sms += 1;
                writeln!(out, "{at}  SMS  to {} ({})", to, who(to.as_str()))?;
                write_indented(out, &text)
            }
            WorldEvent::Note { ticket, text } => {
                self.notes += 1;
                let label = ticket_label(ticket.as_str());
                writeln!(out, "{at}  NOTE on ticket {ticket} ({label})")?;
                write_indented(out, &text)
            }
            WorldEvent::Registered {
                dispatch_number,
                value,
            } => writeln!(out, "{at}  REGISTERED {dispatch_number} = {value}"),
            WorldEvent::Email(email) => {
                writeln!(
                    out,
                    "{at}  EMAIL to {}: {}",
                    email.recipients, email.subject
                )
            }
            WorldEvent::Slack(line) => {
                if line.contains("failed") {
                    writeln!(out, "{at}  ALERT {line}")?;
                }
                self.alerts.push((at, line));
                Ok(())
            }
        }
    }

    fn finish(mut self) -> anyhow::Result<String> {
        let (sms, notes, alerts) = (self.sms, self.notes, self.alerts.len());
        writeln!(
            self.out,
            "Done: {sms} SMS and {notes} notes, each exactly once; {alerts} Slack alert lines posted (listed below)."
        )?;
        writeln!(
            self.out,
            "LIT DIS10002 was never touched: no portal note says it is ours."
        )?;
        writeln!(
            self.out,
            "+12125550106 opted out: LIT DIS10003 texted nobody, and one note says why."
        )?;
        writeln!(
            self.out,
            "CTS S-20003 stayed paused: its Confirmed note was written, no text went out."
        )?;
        writeln!(
            self.out,
            "\nSlack alert lines (failures are in the timeline too):"
        )?;
        for (at, line) in &self.alerts {
            let line = line.strip_prefix("[dispatch-monitor] ").unwrap_or(line);
            writeln!(self.out, "{at}  {line}")?;
        }
        Ok(self.out)
    }
}

/// Minutes into the day when the SMS gateway fails for one cycle (14:15 Pacific).
const SMS_OUTAGE_AT: usize = 6 * 60 + 15;

/// The demo runs with the quiet hours the README recommends.
const DEMO_QUIET_HOURS: &str = "21:00-08:00";

fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&Los_Angeles)
        .format("%a %b %d %H:%M %Z")
        .to_string()
}

/// The simulated day lasts 29 hours, in minutes.
fn h_total() -> usize {
    29 * 60
}

fn write_indented(out: &mut String, text: &str) -> std::fmt::Result {
    for line in text.lines() {
        writeln!(out, "      | {line}")?;
    }
    Ok(())
}
