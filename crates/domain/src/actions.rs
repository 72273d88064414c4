//! The action table: for every kind of action the rules can take, the watermark phrase that
//! records it on the ticket, the note template that writes that record, and the SMS it sends
//! first (purpose, recipient, template). The rules decide *whether* to act; this table says
//! *what* acting means. SMS purposes, template names and watermark phrases are all read from
//! here, so adding an action is one row plus the rule that takes it.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::VendorPolicy;

/// Who an SMS goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// The site contact.
    Client,
    /// The technician.
    Tech,
}

/// One SMS of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsRow {
    /// The purpose's label in ledger keys, e.g. `reminder-{h}h` (`{h}`: the hours).
    pub purpose: &'static str,
    /// Who receives it.
    pub to: Recipient,
    /// Its text's template.
    pub template: &'static str,
}

/// Whether an action's note names the tech (a line `Field Engineer`, then the name), so that
/// tech changes can read it back (SPEC §7.1, §13.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamesTech {
    /// Never.
    No,
    /// Always.
    Yes,
    /// When the Confirmed note is the tech on record: for vendors without the field-engineer
    /// step that confirm only with a tech (CTS).
    WhenConfirmedWithTech,
}

impl NamesTech {
    /// Whether, for a vendor with `policy`, the note must name the tech.
    pub fn applies(self, policy: VendorPolicy) -> bool {
        match self {
            NamesTech::No => false,
            NamesTech::Yes => true,
            NamesTech::WhenConfirmedWithTech => {
                !policy.field_engineer_step && policy.confirmed_needs_tech
            }
        }
    }
}

/// What quiet hours at the site do to an action (SPEC §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    /// Nothing: notes, texts to the tech, the tech-on-site text.
    Unaffected,
    /// The client's text waits for a later cycle: the step is not taken now.
    Deferred,
    /// The client's reminder is not sent, ever: this note (a template) records it instead.
    SkippedWithNote(&'static str),
}

/// Which vendors need an action's templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeededBy {
    /// Every vendor.
    Every,
    /// Vendors whose policy has the field-engineer step (LIT).
    FieldEngineerStep,
}

impl NeededBy {
    /// Whether a vendor with `policy` needs the row's templates.
    pub fn includes(self, policy: VendorPolicy) -> bool {
        match self {
            NeededBy::Every => true,
            NeededBy::FieldEngineerStep => policy.field_engineer_step,
        }
    }
}

/// One row of the table. Texts holding `{h}` are completed with the action's hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionRow {
    /// What the action is called in plans, logs and alerts, e.g. `Confirmed note`.
    pub title: &'static str,
    /// The watermark phrase: a dispatch note containing it means the action was taken.
    pub phrase: &'static str,
    /// The template of the note that records the action.
    pub note: &'static str,
    /// The SMS sent before the note, in order.
    pub sms: &'static [SmsRow],
    /// Which vendors need the row's templates.
    pub needed_by: NeededBy,
    /// Whether its note names the tech.
    pub names_tech: NamesTech,
    /// What quiet hours at the site do to it.
    pub quiet: Quiet,
}

/// What a step does. Reminders carry their hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// Append the note saying texts to a number are withheld: it opted out (SPEC §17.1).
    OptedOutNote,
}

use ActionKind::*;
use Recipient::{Client, Tech};

/// The action table, one row per kind in [`ActionKind::every`] order.
const ACTIONS: [ActionRow; 11] = [
    // ConfirmedNote: the Confirmed note.
    ActionRow {
        title: "Confirmed note",
        phrase: "Dispatch Management - Dispatch Confirmed",
        note: "confirmed_note",
        sms: &[],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::WhenConfirmedWithTech,
        quiet: Quiet::Unaffected,
    },
    // ConfirmedSms: the client's confirmation.
    ActionRow {
        title: "confirmation SMS to the client",
        phrase: "Dispatch confirmation SMS sent to",
        note: "confirmed_sms_note",
        sms: &[SmsRow {
            purpose: "confirmed",
            to: Client,
            template: "confirmed_sms",
        }],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::No,
        quiet: Quiet::Deferred,
    },
    // FieldEngineerConfirmed: the client's field-engineer-assigned text (LIT).
    ActionRow {
        title: "field engineer confirmation",
        phrase: "Dispatch Management - Field Engineer Confirmed",
        note: "fe_confirmed_note",
        sms: &[SmsRow {
            purpose: "field-engineer-assigned",
            to: Client,
            template: "fe_assigned_sms",
        }],
        needed_by: NeededBy::FieldEngineerStep,
        names_tech: NamesTech::Yes,
        quiet: Quiet::Deferred,
    },
    // ConfirmedTechSms: the tech's confirmation.
    ActionRow {
        title: "confirmation SMS to the tech",
        phrase: "Dispatch confirmation SMS tech sent to",
        note: "confirmed_tech_sms_note",
        sms: &[SmsRow {
            purpose: "confirmed-tech",
            to: Tech,
            template: "confirmed_tech_sms",
        }],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::No,
        quiet: Quiet::Unaffected,
    },
    // TechChanged: a tech change, told to the client and the new tech.
    ActionRow {
        title: "tech change",
        phrase: "The Field Engineer assigned to this dispatch has changed",
        note: "tech_changed_note",
        sms: &[
            SmsRow {
                purpose: "tech-changed",
                to: Client,
                template: "tech_changed_sms",
            },
            SmsRow {
                purpose: "tech-changed-tech",
                to: Tech,
                template: "tech_changed_tech_sms",
            },
        ],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::Yes,
        quiet: Quiet::Deferred,
    },
    // Reminder: the client's reminder.
    ActionRow {
        title: "{h}h reminder SMS to the client",
        phrase: "Dispatch {h}h prior reminder SMS",
        note: "reminder_note",
        sms: &[SmsRow {
            purpose: "reminder-{h}h",
            to: Client,
            template: "reminder_sms",
        }],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::No,
        quiet: Quiet::SkippedWithNote("reminder_quiet_hours_note"),
    },
    // ReminderTech: the tech's reminder.
    ActionRow {
        title: "{h}h reminder SMS to the tech",
        phrase: "Dispatch {h}h prior reminder tech SMS",
        note: "reminder_tech_note",
        sms: &[SmsRow {
            purpose: "reminder-tech-{h}h",
            to: Tech,
            template: "reminder_tech_sms",
        }],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::No,
        quiet: Quiet::Unaffected,
    },
    // TechOnSite: the tech arrived.
    ActionRow {
        title: "tech on site SMS to the client",
        phrase: "Dispatch Management - Field Engineer On Site",
        note: "tech_on_site_note",
        sms: &[SmsRow {
            purpose: "tech-on-site",
            to: Client,
            template: "tech_on_site_sms",
        }],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::No,
        quiet: Quiet::Unaffected,
    },
    // Cancelled: the Cancelled note.
    ActionRow {
        title: "Cancelled note",
        phrase: "Dispatch Management - Dispatch Cancelled",
        note: "cancelled_note",
        sms: &[],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::No,
        quiet: Quiet::Unaffected,
    },
    // Completed: the Repair Completed note.
    ActionRow {
        title: "Repair Completed note",
        phrase: "Dispatch Management - Repair Completed",
        note: "completed_note",
        sms: &[],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::No,
        quiet: Quiet::Unaffected,
    },
    // OptedOutNote: texts to a number withheld (SPEC §17.1). The phrase is completed with the
    // number, OPTED_OUT(phone) = `Dispatch SMS withheld from {phone}`.
    ActionRow {
        title: "opted-out note",
        phrase: "Dispatch SMS withheld from",
        note: "opted_out_note",
        sms: &[],
        needed_by: NeededBy::Every,
        names_tech: NamesTech::No,
        quiet: Quiet::Unaffected,
    },
];

impl ActionKind {
    /// Every kind, reminders with the given hours; the order is the table's.
    pub fn every(hours: u32) -> [ActionKind; 11] {
        [
            ConfirmedNote,
            ConfirmedSms,
            FieldEngineerConfirmed,
            ConfirmedTechSms,
            TechChanged,
            Reminder { hours },
            ReminderTech { hours },
            TechOnSite,
            Cancelled,
            Completed,
            OptedOutNote,
        ]
    }

    /// The kind's row of the action table.
    pub const fn row(self) -> &'static ActionRow {
        &ACTIONS[self.index()]
    }

    /// The kind's place in the table.
    const fn index(self) -> usize {
        match self {
            ConfirmedNote => 0,
            ConfirmedSms => 1,
            FieldEngineerConfirmed => 2,
            ConfirmedTechSms => 3,
            TechChanged => 4,
            Reminder { .. } => 5,
            ReminderTech { .. } => 6,
            TechOnSite => 7,
            Cancelled => 8,
            Completed => 9,
            OptedOutNote => 10,
        }
    }

    /// The reminder hours, for reminder kinds.
    pub fn hours(self) -> Option<u32> {
        match self {
            Reminder { hours } | ReminderTech { hours } => Some(hours),
            _ => None,
        }
    }

    /// The watermark phrase recording this action, e.g. `Dispatch 12h prior reminder SMS`.
    pub fn phrase(self) -> Cow<'static, str> {
        self.complete(self.row().phrase)
    }

    /// Whether taking the action sends SMS (and so the safeguards apply to it).
    pub fn sends_sms(self) -> bool {
        !self.row().sms.is_empty()
    }

    /// Fills `{h}` in one of the row's texts with the kind's hours.
    pub fn complete(self, text: &'static str) -> Cow<'static, str> {
        match self.hours() {
            Some(hours) if text.contains("{h}") => {
                Cow::Owned(text.replace("{h}", &hours.to_string()))
            }
            _ => Cow::Borrowed(text),
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.complete(self.row().title))
    }
}

/// What an SMS is for: its action and its recipient; part of its ledger key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SmsPurpose {
    /// The action sending it.
    pub kind: ActionKind,
    /// Who receives it.
    pub to: Recipient,
}

impl SmsPurpose {
    /// The row of the action table describing this SMS.
    pub fn row(&self) -> &'static SmsRow {
        self.kind
            .row()
            .sms
            .iter()
            .find(|sms| sms.to == self.to)
            .unwrap_or(&UNKNOWN_SMS)
    }

    /// A stable label for keys and logs, e.g. `reminder-12h`.
    pub fn label(&self) -> Cow<'static, str> {
        self.kind.complete(self.row().purpose)
    }
}

/// Stands in for an SMS the table does not list (a purpose built by hand).
const UNKNOWN_SMS: SmsRow = SmsRow {
    purpose: "unlisted",
    to: Client,
    template: "",
};

/// Every watermark phrase an action writes, reminders for the given hours.
pub fn action_phrases(reminder_hours: &[u32]) -> Vec<Cow<'static, str>> {
    let mut phrases: Vec<Cow<'static, str>> = ActionKind::every(0)
        .into_iter()
        .filter(|kind| kind.hours().is_none())
        .map(ActionKind::phrase)
        .collect();
    for hours in reminder_hours {
        phrases.push(Reminder { hours: *hours }.phrase());
        phrases.push(ReminderTech { hours: *hours }.phrase());
    }
    phrases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_kind_order() {
        for (index, kind) in ActionKind::every(1).into_iter().enumerate() {
            assert_eq!(kind.index(), index, "{kind:?}");
        }
    }

    #[test]
    fn texts_with_hours_are_completed() {
        let kind = Reminder { hours: 12 };
        assert_eq!(kind.phrase(), "Dispatch 12h prior reminder SMS");
        assert_eq!(kind.to_string(), "12h reminder SMS to the client");
        let purpose = SmsPurpose {
            kind: ReminderTech { hours: 6 },
            to: Tech,
        };
        assert_eq!(purpose.label(), "reminder-tech-6h");
        assert_eq!(purpose.row().template, "reminder_tech_sms");
    }

    #[test]
    fn no_phrase_contains_another_kinds_phrase() {
        // `has(phrase)` must never mistake one action's note for another's.
        let phrases = action_phrases(&[12, 6, 2, 1]);
        for (i, a) in phrases.iter().enumerate() {
            for (j, b) in phrases.iter().enumerate() {
                if i != j {
                    assert!(!a.contains(b.as_ref()), "{a:?} contains {b:?}");
                }
            }
        }
    }

    #[test]
    fn every_sms_purpose_label_is_distinct() {
        let mut labels: Vec<String> = ActionKind::every(2)
            .into_iter()
            .flat_map(|kind| {
                kind.row()
                    .sms
                    .iter()
                    .map(move |sms| SmsPurpose { kind, to: sms.to }.label().into_owned())
            })
            .collect();
        let count = labels.len();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), count);
    }
}
