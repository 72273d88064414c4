//! The benchmark's world: N LIT and CTS dispatches in the simulator, most in steady state (their
//! whole confirmation already on the ticket, the appointment days away, so a cycle has nothing
//! to send), a share freshly confirmed (a cycle owes them their confirmation SMS and notes).

use bridge_sim::Sim;
use chrono::{Duration, Utc};
use domain::phrases::{CONFIRMED, CONFIRMED_SMS, CONFIRMED_SMS_TECH, FE_CONFIRMED, REQUESTED};
use domain::{DispatchSpec, Status, VendorName};

/// What the world holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// Dispatches in all.
    pub dispatches: usize,
    /// Percent of them that are CTS (the rest LIT).
    pub cts_percent: usize,
    /// Percent of them that need their confirmation sent.
    pub action_percent: usize,
}

const CLIENT: &str = "+1 212 555 0101";
const TECH: &str = "+1 212 555 0102";
const TECH_NAME: &str = "Joe Malone";

/// What a first cycle over the world owes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owed {
    /// SMS.
    pub sms: usize,
    /// Notes.
    pub notes: usize,
}

/// Loads the world into `sim`; what the first cycle must send.
pub fn load(sim: &Sim, mix: &Mix) -> Owed {
    let lit = VendorName::fixed("LIT");
    let cts = VendorName::fixed("CTS");
    let appointment = bridge_sim::scenario::local_time(Utc::now(), Duration::days(3), "Pacific")
        .expect("a Pacific time");
    let mut owed = Owed::default();
    for i in 0..mix.dispatches {
        let is_cts = i % 100 < mix.cts_percent;
        let needs_action = (i * 7 + 3) % 100 < mix.action_percent;
        let ticket = format!("{}", 7_000_000 + i);
        let (vendor, number, key) = if is_cts {
            (&cts, format!("S-{i:06}"), format!("IGZ_{i:06}"))
        } else {
            (&lit, format!("DIS{i:06}"), format!("DIS{i:06}"))
        };
        let spec = DispatchSpec {
            note_key: Some(key.clone()),
            status: Status::Confirmed,
            appointment: Some((appointment, "Pacific".to_owned())),
            tech_name: Some(TECH_NAME.to_owned()),
            tech_phone: Some(TECH.to_owned()),
            client_phone: Some(CLIENT.to_owned()),
            site: Some("Red Rose Inn".to_owned()),
            street: Some("160 Broadway".to_owned()),
            ..DispatchSpec::new(&number, &ticket)
        };
        sim.upsert(vendor, spec);
        let note = |text: &str| sim.seed_note(&ticket, &format!("#*MetTel's IPA*# {key}\n{text}"));
        note(REQUESTED);
        let field_engineer = format!("Field Engineer\n{TECH_NAME}\n{TECH}");
        if needs_action {
            // LIT: Confirmed note, 2 client SMS and the field engineer's, and their notes.
            owed.sms += if is_cts { 2 } else { 3 };
            owed.notes += if is_cts { 3 } else { 4 };
        } else if is_cts {
            note(&format!(
                "{CONFIRMED}\nDispatch scheduled\n\n{field_engineer}"
            ));
            note(&format!("{CONFIRMED_SMS} to +12125550101"));
            note(&format!("{CONFIRMED_SMS_TECH} to +12125550102"));
        } else {
            note(&format!("{CONFIRMED}\nDispatch scheduled"));
            note(&format!("{CONFIRMED_SMS} to +12125550101"));
            note(&format!("{FE_CONFIRMED}\n\n{field_engineer}"));
            note(&format!("{CONFIRMED_SMS_TECH} to +12125550102"));
        }
    }
    owed
}
