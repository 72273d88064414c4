//! The rules of SPEC §7 as one pure function: a dispatch, its notes and the time in; the
//! ordered steps to take out. Each rule is ordinary code deciding *whether* an action is due
//! ("if its phrase is not recorded, take it"); what the action sends and writes comes from the
//! action table ([`crate::actions`]). Every text is rendered here, before any side effect
//! (SPEC §12.7), so a step that cannot be rendered is planned as blocked.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use crate::actions::ActionKind;
use crate::actions::{Quiet, Recipient, SmsPurpose};
use crate::notes::{mentions, normalise_name, phrases, tech_names_in};
use crate::ports::{Email, EntryState, LedgerEntry, LedgerKey};
use crate::safeguards::{DailyCap, SafeguardFacts, Withhold};
use crate::{
    Appointment, Dispatch, DispatchNotes, NoteKey, PhoneE164, QuietHours, Status, TemplateName,
    TemplateValues, Templates, VendorPolicy,
};

/// What the tech-changed note gives as the phone of a new tech who has none.
pub const NO_TECH_PHONE: &str = "no phone given";

/// Rule settings an operator can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSettings {
    /// Hours before the appointment at which reminders go out (default 12, 6, 2).
    pub reminder_hours: Vec<u32>,
    /// Whether Repair Completed notes are written (default on).
    pub completed_notes: bool,
    /// Who gets an email when a dispatch is cancelled (default nobody).
    pub cancel_email_recipients: Vec<String>,
    /// When client texts are held at the site (SPEC §15); off by default.
    pub quiet_hours: Option<QuietHours>,
    /// At most this many SMS per number in any rolling 24 hours (SPEC §17.2; default 10,
    /// 0 = off).
    pub daily_cap: DailyCap,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            reminder_hours: vec![12, 6, 2],
            completed_notes: true,
            cancel_email_recipients: vec![],
            quiet_hours: None,
            daily_cap: DailyCap::default(),
        }
    }
}

/// The SMS the ledger already records as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFacts {
    sent: BTreeSet<LedgerKey>,
}

impl LedgerFacts {
    /// Records one key as sent.
    pub fn insert_sent(&mut self, key: LedgerKey) {
        self.sent.insert(key);
    }

    /// Whether the key is recorded as sent.
    pub fn is_sent(&self, key: &LedgerKey) -> bool {
        self.sent.contains(key)
    }
}

impl LedgerFacts {
    /// The entries of a dispatch's ledger that are sent.
    pub fn from_entries(entries: &[LedgerEntry]) -> Self {
        entries
            .iter()
            .filter(|entry| entry.state == EntryState::Sent)
            .map(|entry| entry.key.clone())
            .collect()
    }
}

impl FromIterator<LedgerKey> for LedgerFacts {
    fn from_iter<I: IntoIterator<Item = LedgerKey>>(iter: I) -> Self {
        Self {
            sent: iter.into_iter().collect(),
        }
    }
}

/// One SMS of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedSms {
    /// Its ledger key.
    pub key: LedgerKey,
    /// The recipient.
    pub to: PhoneE164,
    /// The rendered text.
    pub text: String,
    /// The ledger says it went out already: only its note is missing.
    pub already_sent: bool,
}

/// A step to take: its SMS first (each under the ledger), then its note, then its email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    /// What it does.
    pub kind: ActionKind,
    /// The SMS to send first, in order.
    pub sms: Vec<PlannedSms>,
    /// The note to append once every SMS went out.
    pub note: String,
    /// An email to send after the note.
    pub email: Option<Email>,
    /// Texts the action leaves out, and why; each is alerted when the action is taken.
    pub notices: Vec<String>,
    /// SMS not sent on purpose: quiet hours at the site (SPEC §15); the note records it.
    pub withheld: Vec<PhoneE164>,
    /// The number a note-only action is about (the opted-out note, SPEC §17.1): its note is
    /// claimed once per number.
    pub about: Option<PhoneE164>,
}

/// A step that waits for a later cycle (the client's text in quiet hours, SPEC §15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeferredAction {
    /// What it would do.
    pub kind: ActionKind,
    /// Whom the held text is for.
    pub to: Option<PhoneE164>,
    /// Why it waits, e.g. `quiet hours 21:00-08:00 at the site`.
    pub reason: String,
}

/// An SMS step a safeguard withholds (SPEC §17): nothing is sent, claimed or noted, and the
/// step stays pending for a later cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WithheldAction {
    /// What it would do.
    pub kind: ActionKind,
    /// The texts' recipients that the safeguard concerns.
    pub to: Vec<PhoneE164>,
    /// Which safeguard.
    pub why: Withhold,
    /// Why, in words, e.g. `the dispatch is paused by cli:ops: customer asked`.
    pub reason: String,
}

/// A step whose texts could not be rendered; it must not be taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockedAction {
    /// What it would have done.
    pub kind: ActionKind,
    /// Why it cannot be rendered.
    pub reason: String,
}

/// One planned step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Take this action.
    Act(Action),
    /// Raise an alert and stop the dispatch for this cycle.
    Blocked(BlockedAction),
    /// Not now: a later cycle takes it. The dispatch's other steps go on.
    Deferred(DeferredAction),
    /// Withheld by a safeguard (opted out, paused, capped): not now; the other steps go on.
    Withheld(WithheldAction),
}

impl Step {
    /// What the step does.
    pub fn kind(&self) -> ActionKind {
        match self {
            Step::Act(action) => action.kind,
            Step::Blocked(blocked) => blocked.kind,
            Step::Deferred(deferred) => deferred.kind,
            Step::Withheld(withheld) => withheld.kind,
        }
    }

    /// Whether the step holds back the steps that wait for its stage: a text withheld
    /// because its number opted out, and the note saying so, do not (that text may never go).
    fn gates(&self) -> bool {
        match self {
            Step::Withheld(withheld) => withheld.why != Withhold::OptedOut,
            step => step.kind() != ActionKind::OptedOutNote,
        }
    }
}

/// The rules' answer for one dispatch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The steps, in the order they must be taken.
    pub steps: Vec<Step>,
    /// Rules that did not apply for lack of data, each with its reason (logged).
    pub skipped: Vec<String>,
}

impl Plan {
    /// The ledger keys of every SMS the plan would send.
    pub fn ledger_keys(&self) -> Vec<LedgerKey> {
        self.steps
            .iter()
            .filter_map(|step| match step {
                Step::Act(action) => Some(action.sms.iter().map(|sms| sms.key.clone())),
                Step::Blocked(_) | Step::Deferred(_) | Step::Withheld(_) => None,
            })
            .flatten()
            .collect()
    }

    /// Marks every SMS the ledger records as sent: only its note is still to be written.
    pub fn mark_sent(&mut self, facts: &LedgerFacts) {
        for step in &mut self.steps {
            if let Step::Act(action) = step {
                for sms in &mut action.sms {
                    sms.already_sent = facts.is_sent(&sms.key);
                }
            }
        }
    }
}

/// Everything the rules look at.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    /// The dispatch.
    pub dispatch: &'a Dispatch,
    /// Its notes (already matched to its note key), oldest first.
    pub notes: &'a DispatchNotes,
    /// The current time.
    pub now: DateTime<Utc>,
    /// The vendor's confirmation flow.
    pub policy: VendorPolicy,
    /// Operator settings.
    pub settings: &'a RuleSettings,
    /// The vendor's templates.
    pub templates: &'a Templates,
    /// The dispatch's opt-outs, pause and capped numbers (SPEC §17), read once per cycle.
    pub safeguards: &'a SafeguardFacts,
}

/// Plans the steps for one dispatch that is ours (SPEC §7). Pure: same input, same plan.
pub fn plan(input: &RuleInput<'_>) -> Plan {
    let Some(note_key) = input.dispatch.note_key.as_ref() else {
        return Plan {
            steps: vec![],
            skipped: vec!["the dispatch has no note key".into()],
        };
    };
    let mut planner = Planner::new(input, note_key);
    match input.dispatch.status {
        Status::Confirmed => planner.confirmed(),
        Status::TechOnSite => planner.tech_on_site(),
        Status::Canceled => planner.cancelled(),
        Status::Completed => planner.completed(),
        Status::Requested | Status::NotMonitored => {}
    }
    planner.plan
}

/// Where a dispatch's confirmation stage stands this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Everything is recorded.
    Complete,
    /// Only client texts held for quiet hours are left (SPEC §15, §18.2).
    ClientWaits,
    /// Steps are being taken this cycle.
    InProgress,
}

struct Planner<'i, 'a> {
    input: &'i RuleInput<'a>,
    dispatch: &'a Dispatch,
    /// The values every text of this dispatch shares.
    values: TemplateValues<'a>,
    plan: Plan,
}

impl<'i, 'a> Planner<'i, 'a> {
    fn new(input: &'i RuleInput<'a>, note_key: &'a NoteKey) -> Self {
        let dispatch = input.dispatch;
        let values = TemplateValues {
            note_key: Some(note_key.as_str()),
            ticket_id: Some(dispatch.ticket_id.as_str()),
            dispatch_number: Some(dispatch.dispatch_number.as_str()),
            vendor_upper: Some(dispatch.vendor.as_str()),
            vendor: Some(dispatch.vendor.as_str()),
            when: Some(dispatch.when_text()),
            tech_name: dispatch.tech_name.as_deref(),
            tech_phone: dispatch
                .tech_phone_raw
                .as_deref()
                .or(dispatch.tech_phone.as_ref().map(PhoneE164::as_str)),
            site: dispatch.site.as_deref(),
            street: dispatch.street.as_deref(),
            vendor_fields: dispatch
                .template_fields
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str()))
                .collect(),
            ..TemplateValues::default()
        };
        Self {
            input,
            dispatch,
            values,
            plan: Plan::default(),
        }
    }

    fn has(&self, phrase: &str) -> bool {
        self.input.notes.has(phrase)
    }

    fn skip(&mut self, reason: impl Into<String>) {
        self.plan.skipped.push(reason.into());
    }

    /// Whether texts to the tech can be written: they name the site and its street.
    fn site_known(&self) -> bool {
        self.dispatch.site.is_some() && self.dispatch.street.is_some()
    }

    /// Where an SMS to `to` goes; `None` when the number is unknown (or, for the tech, the
    /// site the text names is).
    fn phone_of(&self, to: Recipient) -> Option<&'a PhoneE164> {
        match to {
            Recipient::Client => self.dispatch.client_phone.as_ref(),
            Recipient::Tech => self
                .dispatch
                .tech_phone
                .as_ref()
                .filter(|_| self.site_known()),
        }
    }

    /// The rule "if its phrase is not recorded, take the action".
    fn unless_recorded(&mut self, kind: ActionKind) {
        if !self.has(&kind.phrase()) {
            self.step(kind);
        }
    }

    fn confirmed(&mut self) {
        let dispatch = self.dispatch;
        let Some(appointment) = dispatch.appointment.as_ref() else {
            return self.skip("Confirmed rules skipped: the appointment is unknown");
        };
        if dispatch.client_phone.is_none() {
            return self.skip("Confirmed rules skipped: no valid client phone");
        }
        let has_tech = dispatch.tech_name.is_some() && dispatch.tech_phone.is_some();
        if self.input.policy.confirmed_needs_tech && !has_tech {
            return self.skip("Confirmed rules skipped: no tech name and tech phone yet");
        }
        match self.confirmation_stage() {
            // Tech changes and reminders wait until the stage is complete, so never in the
            // same cycle as a confirmation SMS.
            Stage::InProgress => {}
            // Only client texts held for quiet hours are left: the tech's reminders follow
            // their own windows; the client's, and a tech change, wait (SPEC §18.2).
            Stage::ClientWaits => self.reminders(appointment, false),
            Stage::Complete => {
                self.tech_change();
                self.reminders(appointment, true);
            }
        }
    }

    /// The confirmation stage, in order; what it left to do.
    fn confirmation_stage(&mut self) -> Stage {
        let before = self.plan.steps.len();
        let dispatch = self.dispatch;
        self.unless_recorded(ActionKind::ConfirmedNote);
        self.unless_recorded(ActionKind::ConfirmedSms);
        let has_tech = dispatch.tech_name.is_some() && dispatch.tech_phone.is_some();
        if self.input.policy.field_engineer_step && has_tech {
            self.unless_recorded(ActionKind::FieldEngineerConfirmed);
        }
        if dispatch.tech_phone.is_some() && !self.site_known() {
            self.skip("tech SMS skipped: the site name or street is unknown");
        }
        if self.phone_of(Recipient::Tech).is_some() {
            self.unless_recorded(ActionKind::ConfirmedTechSms);
        }
        // A text withheld because its number opted out may never go: it holds nothing back.
        let planned: Vec<&Step> = self.plan.steps[before..]
            .iter()
            .filter(|step| step.gates())
            .collect();
        if planned.is_empty() {
            Stage::Complete
        } else if planned.iter().all(|step| matches!(step, Step::Deferred(_))) {
            Stage::ClientWaits
        } else {
            Stage::InProgress
        }
    }

    /// A tech other than the one on record: tell the client and the new tech. Names are
    /// compared normalised, and the change is named `previous->new #n`, n being its ordinal
    /// on the ticket (SPEC §13.5, §18.1): a tech who comes back, even twice, is announced
    /// again, and a name that reads back differently is no change. A new tech who cannot be
    /// texted (no phone at all, an unusable one, no site) never holds back the client's text.
    fn tech_change(&mut self) {
        let dispatch = self.dispatch;
        let baseline = if self.input.policy.field_engineer_step {
            phrases::FE_CONFIRMED
        } else {
            phrases::CONFIRMED
        };
        let (Some(on_record), Some(current)) = (
            self.input.notes.tech_on_record(baseline),
            dispatch.tech_name.as_deref(),
        ) else {
            return;
        };
        let (previous, new) = (normalise_name(&on_record), normalise_name(current));
        if previous == new {
            return;
        }
        let notice = match (&dispatch.tech_phone, self.site_known()) {
            (None, _) if dispatch.tech_phone_raw.is_none() => {
                Some("its SMS to the new tech is skipped: the tech has no phone")
            }
            (None, _) => {
                Some("its SMS to the new tech is skipped: the tech's phone is not a usable number")
            }
            (Some(_), false) => {
                Some("its SMS to the new tech is skipped: the site name or street is unknown")
            }
            (Some(_), true) => None,
        };
        let ordinal = self.input.notes.count(phrases::TECH_CHANGED) + 1;
        let change = TechChange::identity(&previous, &new, ordinal);
        self.push_step(ActionKind::TechChanged, Some(&change));
        if let (Some(notice), Some(Step::Act(action))) = (notice, self.plan.steps.last_mut()) {
            action.notices.push(notice.to_owned());
        }
    }

    /// Reminders: future appointments only, each recipient at its own number; the client's
    /// only when `client` is set.
    fn reminders(&mut self, appointment: &Appointment, client: bool) {
        let seconds_until =
            (appointment.instant.with_timezone(&Utc) - self.input.now).num_seconds();
        if seconds_until <= 0 {
            return;
        }
        let hours_until = seconds_until as f64 / 3600.0;
        let mut hours: Vec<u32> = self.input.settings.reminder_hours.clone();
        hours.sort_unstable_by(|a, b| b.cmp(a));
        hours.dedup();
        for h in hours.into_iter().filter(|h| *h >= 1) {
            if !(f64::from(h - 1) <= hours_until && hours_until < f64::from(h)) {
                continue;
            }
            if client {
                self.unless_recorded(ActionKind::Reminder { hours: h });
            }
            if self.phone_of(Recipient::Tech).is_some() {
                self.unless_recorded(ActionKind::ReminderTech { hours: h });
            }
        }
    }

    fn tech_on_site(&mut self) {
        let dispatch = self.dispatch;
        if !dispatch.tech_on_site {
            return self.skip("Tech on site rule skipped: the vendor shows no check-in yet");
        }
        if dispatch.client_phone.is_none() {
            return self.skip("Tech on site rule skipped: no valid client phone");
        }
        if dispatch.tech_name.is_none() {
            return self.skip("Tech on site rule skipped: no tech name");
        }
        self.unless_recorded(ActionKind::TechOnSite);
    }

    fn cancelled(&mut self) {
        if self.has(phrases::CANCELLED) {
            return;
        }
        self.step(ActionKind::Cancelled);
        let recipients = &self.input.settings.cancel_email_recipients;
        if let (false, Some(Step::Act(action))) =
            (recipients.is_empty(), self.plan.steps.last_mut())
        {
            let dispatch = self.dispatch;
            action.email = Some(Email {
                subject: format!(
                    "Dispatch {} ({}) for ticket {} was cancelled",
                    dispatch.dispatch_number, dispatch.vendor, dispatch.ticket_id
                ),
                recipients: recipients.join(", "),
                text: action.note.clone(),
            });
        }
    }

    fn completed(&mut self) {
        if !self.input.settings.completed_notes {
            return;
        }
        if !self.dispatch.completed {
            return self.skip("Completed rule skipped: the vendor shows no check-out yet");
        }
        self.unless_recorded(ActionKind::Completed);
    }

    /// Plans `kind` as the action table describes it.
    fn step(&mut self, kind: ActionKind) {
        self.push_step(kind, None);
    }

    /// Renders every text of the step first; any failure plans the step as blocked. An SMS
    /// whose recipient cannot be texted is left out. `tech_change` (`previous->new #n`) names
    /// a tech change in its ledger keys.
    fn push_step(&mut self, kind: ActionKind, tech_change: Option<&str>) {
        let left_out = match self.safeguard(kind) {
            Ok(left_out) => left_out,
            Err(step) => return self.plan.steps.push(*step),
        };
        if let Some(quiet) = self.quiet_hours() {
            match kind.row().quiet {
                Quiet::Unaffected => {}
                Quiet::Deferred => {
                    let to = self.phone_of(Recipient::Client).cloned();
                    let reason = format!("quiet hours {quiet} at the site");
                    self.plan
                        .steps
                        .push(Step::Deferred(DeferredAction { kind, to, reason }));
                    return;
                }
                Quiet::SkippedWithNote(_) => return self.push_quiet_note(kind, quiet),
            }
        }
        let step = match self.render(kind, tech_change, &left_out) {
            Ok(mut action) => {
                for phone in &left_out {
                    let notice =
                        format!("its SMS to {phone} is withheld: the number opted out of texts");
                    action.notices.push(notice);
                }
                Step::Act(action)
            }
            Err(error) => Step::Blocked(BlockedAction {
                kind,
                reason: error.to_string(),
            }),
        };
        self.plan.steps.push(step);
    }

    fn render(
        &self,
        kind: ActionKind,
        tech_change: Option<&str>,
        left_out: &[PhoneE164],
    ) -> Result<Action, crate::TemplateError> {
        let templates = self.input.templates;
        let mut planned = Vec::new();
        for row in kind.row().sms {
            let Some(to) = self.phone_of(row.to).filter(|to| !left_out.contains(to)) else {
                continue;
            };
            let purpose = SmsPurpose { kind, to: row.to };
            let text =
                templates.render(TemplateName::sms_of(&purpose), &self.values_for(kind, to))?;
            planned.push(PlannedSms {
                key: LedgerKey {
                    vendor: self.dispatch.vendor.clone(),
                    dispatch_number: self.dispatch.dispatch_number.clone(),
                    purpose,
                    recipient: to.clone(),
                    change: tech_change.map(str::to_owned),
                },
                to: to.clone(),
                text,
                already_sent: false,
            });
        }
        // The note records the first SMS's recipient.
        let mut note_values = match planned.first() {
            Some(sms) => self.values_for(kind, &sms.to),
            None => TemplateValues {
                hours: kind.hours(),
                ..self.values.clone()
            },
        };
        if kind == ActionKind::TechChanged {
            // A new tech with no phone at all is still recorded (SPEC §18.1).
            note_values.tech_phone = note_values.tech_phone.or(Some(NO_TECH_PHONE));
        }
        let note = templates.render(TemplateName::note_of(kind), &note_values)?;
        Ok(Action {
            kind,
            sms: planned,
            note,
            email: None,
            notices: Vec::new(),
            withheld: Vec::new(),
            about: None,
        })
    }

    /// The safeguards over an SMS step (SPEC §17), in precedence order: opted out > paused >
    /// capped (quiet hours come after, in `push_step`). `Err` is the step to plan instead:
    /// blocked when the safeguards could not be read (fail safe), or withheld. `Ok` lists the
    /// recipients left out of a step that still texts others (an opted-out new tech).
    fn safeguard(&mut self, kind: ActionKind) -> Result<Vec<PhoneE164>, Box<Step>> {
        let facts = self.input.safeguards;
        let recipients: Vec<&'a PhoneE164> = kind
            .row()
            .sms
            .iter()
            .filter_map(|row| self.phone_of(row.to))
            .collect();
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(error) = &facts.unreadable {
            let reason = format!("the customer-text safeguards cannot be read: {error}");
            return Err(Box::new(Step::Blocked(BlockedAction { kind, reason })));
        }
        let (opted, rest): (Vec<&PhoneE164>, Vec<&PhoneE164>) = recipients
            .into_iter()
            .partition(|phone| facts.opted_out.contains(*phone));
        for phone in &opted {
            self.opted_out_note(phone);
        }
        let withheld = |to: Vec<&PhoneE164>, why, reason: String| {
            let to = to.into_iter().cloned().collect();
            Err(Box::new(Step::Withheld(WithheldAction {
                kind,
                to,
                why,
                reason,
            })))
        };
        if rest.is_empty() {
            let reason = "the number opted out of texts".to_owned();
            return withheld(opted, Withhold::OptedOut, reason);
        }
        if let Some(pause) = &facts.paused {
            let reason = format!("the dispatch is paused by {}: {}", pause.by, pause.reason);
            return withheld(rest, Withhold::Paused, reason);
        }
        let capped: Vec<&PhoneE164> = rest
            .into_iter()
            .filter(|phone| facts.capped.contains(*phone))
            .collect();
        if !capped.is_empty() {
            let cap = self.input.settings.daily_cap;
            let reason = format!("{cap} texts in 24 h (MONITOR_SMS_DAILY_CAP)");
            return withheld(capped, Withhold::Capped, reason);
        }
        Ok(opted.into_iter().cloned().collect())
    }

    /// The note saying texts to `phone` are withheld, once per dispatch and number.
    fn opted_out_note(&mut self, phone: &'a PhoneE164) {
        let kind = ActionKind::OptedOutNote;
        let planned = self.plan.steps.iter().any(|step| {
            matches!(step, Step::Act(action) if action.kind == kind && action.about.as_ref() == Some(phone))
        });
        if planned || self.has(&crate::phrases::opted_out(phone.as_str())) {
            return;
        }
        let values = self.values_for(kind, phone);
        let step = match self
            .input
            .templates
            .render(TemplateName::note_of(kind), &values)
        {
            Ok(note) => Step::Act(Action {
                kind,
                sms: Vec::new(),
                note,
                email: None,
                notices: Vec::new(),
                withheld: Vec::new(),
                about: Some(phone.clone()),
            }),
            Err(error) => Step::Blocked(BlockedAction {
                kind,
                reason: error.to_string(),
            }),
        };
        self.plan.steps.push(step);
    }

    /// The quiet hours, when it is quiet hours at the site now.
    fn quiet_hours(&self) -> Option<QuietHours> {
        let quiet = self.input.settings.quiet_hours?;
        let appointment = self.dispatch.appointment.as_ref()?;
        quiet.at_site(appointment, self.input.now).then_some(quiet)
    }

    /// A client reminder due in quiet hours: not sent, ever; a note records it (SPEC §15).
    fn push_quiet_note(&mut self, kind: ActionKind, quiet: QuietHours) {
        let Some(client) = self.phone_of(Recipient::Client) else {
            return;
        };
        let values = TemplateValues {
            quiet_hours: Some(quiet.to_string()),
            ..self.values_for(kind, client)
        };
        let rendered = TemplateName::quiet_note_of(kind)
            .ok_or_else(|| crate::TemplateError::Missing(format!("quiet-hours note of {kind}")))
            .and_then(|name| self.input.templates.render(name, &values));
        let step = match rendered {
            Ok(note) => Step::Act(Action {
                kind,
                sms: Vec::new(),
                note,
                email: None,
                notices: Vec::new(),
                withheld: vec![client.clone()],
                about: None,
            }),
            Err(error) => Step::Blocked(BlockedAction {
                kind,
                reason: error.to_string(),
            }),
        };
        self.plan.steps.push(step);
    }

    /// The dispatch's values with the recipient's phone and the action's hours.
    fn values_for(&self, kind: ActionKind, phone: &'a PhoneE164) -> TemplateValues<'a> {
        TemplateValues {
            phone: Some(phone.as_str()),
            hours: kind.hours(),
            ..self.values.clone()
        }
    }
}

/// The notes to append for SMS the ledger records as sent whose note is missing from the
/// ticket and that `plan` does not take up again (SPEC §13.4): after a failed append, whatever
/// the status or the reminder window is now, the note is written without sending again. Each
/// is a step whose SMS are marked already sent; entries sharing a note make one step.
pub fn reconcile(plan: &Plan, entries: &[LedgerEntry], notes: &DispatchNotes) -> Vec<Step> {
    let planned: BTreeSet<LedgerKey> = plan.ledger_keys().into_iter().collect();
    let mut steps: Vec<Step> = Vec::new();
    for entry in entries {
        if entry.state != EntryState::Sent
            || planned.contains(&entry.key)
            || entry.note.is_empty()
            || is_recorded(entry, notes)
        {
            continue;
        }
        let sms = PlannedSms {
            key: entry.key.clone(),
            to: entry.key.recipient.clone(),
            text: String::new(),
            already_sent: true,
        };
        let same_note = steps.iter_mut().find_map(|step| match step {
            Step::Act(action) if action.note == entry.note => Some(action),
            _ => None,
        });
        match same_note {
            Some(action) => action.sms.push(sms),
            None => steps.push(Step::Act(Action {
                kind: entry.key.purpose.kind,
                sms: vec![sms],
                note: entry.note.clone(),
                email: None,
                notices: Vec::new(),
                withheld: Vec::new(),
                about: None,
            })),
        }
    }
    steps
}

/// Whether the dispatch's notes hold the note recording `entry`: its action's phrase, and for
/// a tech change, the tech-changed note of its ordinal naming the new tech (a key written
/// before ordinals existed: any tech-changed note naming the new tech).
fn is_recorded(entry: &LedgerEntry, notes: &DispatchNotes) -> bool {
    let phrase = entry.key.purpose.kind.phrase();
    let Some(change) = entry.key.change.as_deref().and_then(TechChange::parse) else {
        return notes.has(&phrase);
    };
    let names_new_tech = |text: &str| {
        tech_names_in(text)
            .last()
            .is_some_and(|name| normalise_name(name) == change.new)
    };
    let mut changes = notes
        .as_slice()
        .iter()
        .filter(|note| mentions(&note.text, &phrase));
    match change.ordinal {
        Some(n) => changes
            .nth(n - 1)
            .is_some_and(|note| names_new_tech(&note.text)),
        None => changes.any(|note| names_new_tech(&note.text)),
    }
}

/// A tech change's identity in its ledger keys and idempotency keys (SPEC §18.1):
/// `previous->new #n`, both names normalised, n the number of tech-changed notes on the
/// ticket before it plus one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TechChange<'a> {
    /// The new tech, normalised.
    pub new: &'a str,
    /// The change's ordinal on the ticket; `None` in keys written before ordinals existed.
    pub ordinal: Option<usize>,
}

impl<'a> TechChange<'a> {
    /// The identity of the `ordinal`-th change, from `previous` to `new` (normalised names).
    pub fn identity(previous: &str, new: &str, ordinal: usize) -> String {
        format!("{previous}->{new} #{ordinal}")
    }

    /// Reads an identity back; `None` when it names no change.
    pub fn parse(identity: &'a str) -> Option<Self> {
        let (_, rest) = identity.split_once("->")?;
        let numbered = rest
            .rsplit_once(" #")
            .and_then(|(new, n)| Some((new, n.parse::<usize>().ok().filter(|n| *n >= 1)?)));
        Some(match numbered {
            Some((new, n)) => Self {
                new,
                ordinal: Some(n),
            },
            None => Self {
                new: rest,
                ordinal: None,
            },
        })
    }
}
