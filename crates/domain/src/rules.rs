//! The rules of SPEC §7 as one pure function: a dispatch, its notes, the time and the SMS
//! ledger's facts in; the ordered steps to take out. Every text is rendered here, before any
//! side effect (SPEC §12.7), so a step that cannot be rendered is planned as blocked.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::notes::phrases;
use crate::ports::{Email, LedgerKey, SmsPurpose};
use crate::{
    Dispatch, DispatchNotes, NoteKey, PhoneE164, Status, TemplateContext, TemplateName, Templates,
    VendorPolicy,
};

/// Rule settings an operator can change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSettings {
    /// Hours before the appointment at which reminders go out (default 12, 6, 2).
    pub reminder_hours: Vec<u32>,
    /// Whether Repair Completed notes are written (default on).
    pub completed_notes: bool,
    /// Who gets an email when a dispatch is cancelled (default nobody).
    pub cancel_email_recipients: Vec<String>,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            reminder_hours: vec![12, 6, 2],
            completed_notes: true,
            cancel_email_recipients: vec![],
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

impl FromIterator<LedgerKey> for LedgerFacts {
    fn from_iter<I: IntoIterator<Item = LedgerKey>>(iter: I) -> Self {
        Self {
            sent: iter.into_iter().collect(),
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActionKind {
    /// Append the Confirmed note.
    ConfirmedNote,
    /// SMS the client the confirmation and record it.
    ConfirmedSms,
    /// SMS the client that a field engineer is assigned and append the FE Confirmed note.
    FieldEngineerConfirmed,
    /// SMS the tech the confirmation and record it.
    ConfirmedTechSms,
    /// SMS the client and the new tech about a tech change and record it.
    TechChanged,
    /// SMS the client a reminder and record it.
    Reminder {
        /// Hours before the appointment.
        hours: u32,
    },
    /// SMS the tech a reminder and record it.
    ReminderTech {
        /// Hours before the appointment.
        hours: u32,
    },
    /// SMS the client that the tech arrived and append the On Site note.
    TechOnSite,
    /// Append the Cancelled note (and email, when configured).
    Cancelled,
    /// Append the Repair Completed note.
    Completed,
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActionKind::ConfirmedNote => f.write_str("Confirmed note"),
            ActionKind::ConfirmedSms => f.write_str("confirmation SMS to the client"),
            ActionKind::FieldEngineerConfirmed => f.write_str("field engineer confirmation"),
            ActionKind::ConfirmedTechSms => f.write_str("confirmation SMS to the tech"),
            ActionKind::TechChanged => f.write_str("tech change"),
            ActionKind::Reminder { hours } => write!(f, "{hours}h reminder SMS to the client"),
            ActionKind::ReminderTech { hours } => write!(f, "{hours}h reminder SMS to the tech"),
            ActionKind::TechOnSite => f.write_str("tech on site SMS to the client"),
            ActionKind::Cancelled => f.write_str("Cancelled note"),
            ActionKind::Completed => f.write_str("Repair Completed note"),
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
}

impl Step {
    /// What the step does.
    pub fn kind(&self) -> ActionKind {
        match self {
            Step::Act(action) => action.kind,
            Step::Blocked(blocked) => blocked.kind,
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
                Step::Blocked(_) => None,
            })
            .flatten()
            .collect()
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
    /// The SMS already recorded as sent.
    pub ledger: &'a LedgerFacts,
    /// The vendor's confirmation flow.
    pub policy: VendorPolicy,
    /// Operator settings.
    pub settings: &'a RuleSettings,
    /// The vendor's templates.
    pub templates: &'a Templates,
}

/// Plans the steps for one dispatch that is ours (SPEC §7). Pure: same input, same plan.
pub fn plan(input: &RuleInput<'_>) -> Plan {
    let mut planner = Planner {
        input,
        plan: Plan::default(),
    };
    let Some(note_key) = input.dispatch.note_key.clone() else {
        planner.skip("the dispatch has no note key");
        return planner.plan;
    };
    match input.dispatch.status {
        Status::Confirmed => planner.confirmed(&note_key),
        Status::TechOnSite => planner.tech_on_site(&note_key),
        Status::Canceled => planner.cancelled(&note_key),
        Status::Completed => planner.completed(&note_key),
        Status::Requested | Status::NotMonitored => {}
    }
    planner.plan
}

struct Planner<'i, 'a> {
    input: &'i RuleInput<'a>,
    plan: Plan,
}

/// One SMS a step needs: purpose, recipient, template, and the tech name for the ledger key.
struct SmsSpec<'s> {
    purpose: SmsPurpose,
    to: &'s PhoneE164,
    template: TemplateName,
    tech_in_key: Option<&'s str>,
}

impl<'a> Planner<'_, 'a> {
    fn dispatch(&self) -> &'a Dispatch {
        self.input.dispatch
    }

    fn has(&self, phrase: &str) -> bool {
        self.input.notes.has(phrase)
    }

    fn skip(&mut self, reason: impl Into<String>) {
        self.plan.skipped.push(reason.into());
    }

    fn confirmed(&mut self, note_key: &NoteKey) {
        let dispatch = self.dispatch();
        let Some(appointment) = dispatch.appointment.clone() else {
            return self.skip("Confirmed rules skipped: the appointment is unknown");
        };
        let Some(client) = dispatch.client_phone.clone() else {
            return self.skip("Confirmed rules skipped: no valid client phone");
        };
        let tech_name = dispatch.tech_name.clone();
        let tech_phone = dispatch.tech_phone.clone();
        let policy = self.input.policy;
        if policy.confirmed_needs_tech && (tech_name.is_none() || tech_phone.is_none()) {
            return self.skip("Confirmed rules skipped: no tech name and tech phone yet");
        }

        // The confirmation stage, in order.
        let before = self.plan.steps.len();
        if !self.has(phrases::CONFIRMED) {
            self.step(
                ActionKind::ConfirmedNote,
                note_key,
                &[],
                TemplateName::ConfirmedNote,
                None,
                None,
            );
        }
        if !self.has(phrases::CONFIRMED_SMS) {
            let sms = SmsSpec {
                purpose: SmsPurpose::Confirmed,
                to: &client,
                template: TemplateName::ConfirmedSms,
                tech_in_key: None,
            };
            self.step(
                ActionKind::ConfirmedSms,
                note_key,
                &[sms],
                TemplateName::ConfirmedSmsNote,
                Some(&client),
                None,
            );
        }
        if policy.field_engineer_step
            && tech_name.is_some()
            && tech_phone.is_some()
            && !self.has(phrases::FE_CONFIRMED)
        {
            let sms = SmsSpec {
                purpose: SmsPurpose::FieldEngineerAssigned,
                to: &client,
                template: TemplateName::FieldEngineerAssignedSms,
                tech_in_key: None,
            };
            self.step(
                ActionKind::FieldEngineerConfirmed,
                note_key,
                &[sms],
                TemplateName::FieldEngineerConfirmedNote,
                None,
                None,
            );
        }
        let site_known = dispatch.site.is_some() && dispatch.street.is_some();
        if tech_phone.is_some() && !site_known {
            self.skip("tech SMS skipped: the site name or street is unknown");
        }
        if let Some(tech) = tech_phone.as_ref().filter(|_| site_known)
            && !self.has(phrases::CONFIRMED_SMS_TECH)
        {
            let sms = SmsSpec {
                purpose: SmsPurpose::ConfirmedTech,
                to: tech,
                template: TemplateName::ConfirmedTechSms,
                tech_in_key: None,
            };
            self.step(
                ActionKind::ConfirmedTechSms,
                note_key,
                &[sms],
                TemplateName::ConfirmedTechSmsNote,
                Some(tech),
                None,
            );
        }
        if self.plan.steps.len() > before {
            // Tech changes and reminders wait until the stage is complete, so never in the
            // same cycle as a confirmation SMS.
            return;
        }

        // Tech change.
        let baseline = if policy.field_engineer_step {
            phrases::FE_CONFIRMED
        } else {
            phrases::CONFIRMED
        };
        if let (Some(on_record), Some(current)) = (
            self.input.notes.tech_on_record(baseline),
            tech_name.as_deref(),
        ) && on_record != current
        {
            if dispatch.tech_phone_raw.is_none() && tech_phone.is_none() {
                self.skip("tech change waits: the new tech has no phone yet");
            } else {
                // The key names the change by its place in the history, so a tech who comes
                // back after another is announced again, and a retried change is not.
                let changes = self.input.notes.count(phrases::TECH_CHANGED);
                let change = format!("{current}#{changes}");
                let mut sms = vec![SmsSpec {
                    purpose: SmsPurpose::TechChanged,
                    to: &client,
                    template: TemplateName::TechChangedSms,
                    tech_in_key: Some(&change),
                }];
                if let Some(tech) = tech_phone.as_ref().filter(|_| site_known) {
                    sms.push(SmsSpec {
                        purpose: SmsPurpose::TechChangedTech,
                        to: tech,
                        template: TemplateName::TechChangedTechSms,
                        tech_in_key: Some(&change),
                    });
                }
                self.step(
                    ActionKind::TechChanged,
                    note_key,
                    &sms,
                    TemplateName::TechChangedNote,
                    None,
                    None,
                );
            }
        }

        // Reminders: future appointments only, each recipient at its own number.
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
            if !self.has(&phrases::reminder(h)) {
                let sms = SmsSpec {
                    purpose: SmsPurpose::Reminder(h),
                    to: &client,
                    template: TemplateName::ReminderSms,
                    tech_in_key: None,
                };
                self.step(
                    ActionKind::Reminder { hours: h },
                    note_key,
                    &[sms],
                    TemplateName::ReminderNote,
                    Some(&client),
                    Some(h),
                );
            }
            if let Some(tech) = tech_phone.as_ref().filter(|_| site_known)
                && !self.has(&phrases::reminder_tech(h))
            {
                let sms = SmsSpec {
                    purpose: SmsPurpose::ReminderTech(h),
                    to: tech,
                    template: TemplateName::ReminderTechSms,
                    tech_in_key: None,
                };
                self.step(
                    ActionKind::ReminderTech { hours: h },
                    note_key,
                    &[sms],
                    TemplateName::ReminderTechNote,
                    Some(tech),
                    Some(h),
                );
            }
        }
    }

    fn tech_on_site(&mut self, note_key: &NoteKey) {
        let dispatch = self.dispatch();
        if !dispatch.tech_on_site {
            return self.skip("Tech on site rule skipped: the vendor shows no check-in yet");
        }
        let Some(client) = dispatch.client_phone.clone() else {
            return self.skip("Tech on site rule skipped: no valid client phone");
        };
        if dispatch.tech_name.is_none() {
            return self.skip("Tech on site rule skipped: no tech name");
        }
        if !self.has(phrases::ON_SITE) {
            let sms = SmsSpec {
                purpose: SmsPurpose::TechOnSite,
                to: &client,
                template: TemplateName::TechOnSiteSms,
                tech_in_key: None,
            };
            self.step(
                ActionKind::TechOnSite,
                note_key,
                &[sms],
                TemplateName::TechOnSiteNote,
                Some(&client),
                None,
            );
        }
    }

    fn cancelled(&mut self, note_key: &NoteKey) {
        if self.has(phrases::CANCELLED) {
            return;
        }
        self.step(
            ActionKind::Cancelled,
            note_key,
            &[],
            TemplateName::CancelledNote,
            None,
            None,
        );
        let recipients = &self.input.settings.cancel_email_recipients;
        if let (false, Some(Step::Act(action))) =
            (recipients.is_empty(), self.plan.steps.last_mut())
        {
            let dispatch = self.input.dispatch;
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

    fn completed(&mut self, note_key: &NoteKey) {
        if !self.input.settings.completed_notes {
            return;
        }
        if !self.dispatch().completed {
            return self.skip("Completed rule skipped: the vendor shows no check-out yet");
        }
        if !self.has(phrases::COMPLETED) {
            self.step(
                ActionKind::Completed,
                note_key,
                &[],
                TemplateName::CompletedNote,
                None,
                None,
            );
        }
    }

    /// The values every template may use; absent values are left out (strict mode).
    fn context(&self, phone: Option<&PhoneE164>, hours: Option<u32>) -> TemplateContext {
        let dispatch = self.dispatch();
        let mut context = TemplateContext::new();
        let mut put = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                context.insert(key.to_owned(), Value::String(value));
            }
        };
        put(
            "note_key",
            dispatch.note_key.as_ref().map(|k| k.as_str().to_owned()),
        );
        put("ticket_id", Some(dispatch.ticket_id.to_string()));
        put(
            "dispatch_number",
            Some(dispatch.dispatch_number.to_string()),
        );
        put("VENDOR", Some(dispatch.vendor.to_string()));
        put("vendor", Some(dispatch.vendor.to_string()));
        put("when", Some(dispatch.when_text()));
        put("tech_name", dispatch.tech_name.clone());
        put(
            "tech_phone",
            dispatch
                .tech_phone_raw
                .clone()
                .or_else(|| dispatch.tech_phone.as_ref().map(|p| p.to_string())),
        );
        put("site", dispatch.site.clone());
        put("street", dispatch.street.clone());
        put("phone", phone.map(PhoneE164::to_string));
        put("hours", hours.map(|h| h.to_string()));
        for (key, value) in &dispatch.template_fields {
            put(key, Some(value.clone()));
        }
        context
    }

    /// Renders every text of the step first; any failure plans the step as blocked.
    fn step(
        &mut self,
        kind: ActionKind,
        note_key: &NoteKey,
        sms: &[SmsSpec<'_>],
        note_template: TemplateName,
        note_phone: Option<&PhoneE164>,
        hours: Option<u32>,
    ) {
        let templates = self.input.templates;
        let rendered = (|| {
            let mut planned = Vec::with_capacity(sms.len());
            for spec in sms {
                let text = templates.render(spec.template, &self.context(Some(spec.to), hours))?;
                let key = LedgerKey {
                    vendor: self.dispatch().vendor.clone(),
                    note_key: note_key.as_str().to_owned(),
                    purpose: spec.purpose,
                    recipient: spec.to.clone(),
                    tech_name: spec.tech_in_key.map(str::to_owned),
                };
                let already_sent = self.input.ledger.is_sent(&key);
                planned.push(PlannedSms {
                    key,
                    to: spec.to.clone(),
                    text,
                    already_sent,
                });
            }
            let note = templates.render(note_template, &self.context(note_phone, hours))?;
            Ok::<_, crate::TemplateError>(Action {
                kind,
                sms: planned,
                note,
                email: None,
            })
        })();
        let step = match rendered {
            Ok(action) => Step::Act(action),
            Err(error) => Step::Blocked(BlockedAction {
                kind,
                reason: error.to_string(),
            }),
        };
        self.plan.steps.push(step);
    }
}
