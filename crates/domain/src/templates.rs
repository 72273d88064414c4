//! Note, SMS and alert texts: Handlebars templates with HTML escaping off and strict mode on,
//! compiled and trial-rendered when built (SPEC §8).

use std::collections::BTreeMap;
use std::fmt;

use handlebars::Handlebars;
use serde_json::{Map, Value};

use crate::{TemplateSource, VendorPolicy};

/// Bruin rejects notes longer than this many characters.
pub const MAX_NOTE_CHARS: usize = 1500;

/// Every text the rules render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateName {
    /// The Confirmed note (vendor-specific).
    ConfirmedNote,
    /// The client's confirmation SMS (vendor-specific).
    ConfirmedSms,
    /// The Field Engineer Confirmed note (vendors with the field-engineer step).
    FieldEngineerConfirmedNote,
    /// The client's "field engineer assigned" SMS (vendors with the field-engineer step).
    FieldEngineerAssignedSms,
    /// The note recording the client's confirmation SMS.
    ConfirmedSmsNote,
    /// The note recording the tech's confirmation SMS.
    ConfirmedTechSmsNote,
    /// The tech's confirmation SMS.
    ConfirmedTechSms,
    /// The note recording a client reminder.
    ReminderNote,
    /// The note recording a tech reminder.
    ReminderTechNote,
    /// The client's reminder SMS.
    ReminderSms,
    /// The tech's reminder SMS.
    ReminderTechSms,
    /// The tech-on-site note.
    TechOnSiteNote,
    /// The client's "tech arrived" SMS.
    TechOnSiteSms,
    /// The tech-changed note.
    TechChangedNote,
    /// The client's "new tech" SMS.
    TechChangedSms,
    /// The new tech's confirmation SMS.
    TechChangedTechSms,
    /// The Cancelled note.
    CancelledNote,
    /// The Repair Completed note.
    CompletedNote,
    /// The Slack alert line.
    Alert,
}

impl TemplateName {
    /// Every template, in a fixed order.
    pub const ALL: [TemplateName; 19] = [
        TemplateName::ConfirmedNote,
        TemplateName::ConfirmedSms,
        TemplateName::FieldEngineerConfirmedNote,
        TemplateName::FieldEngineerAssignedSms,
        TemplateName::ConfirmedSmsNote,
        TemplateName::ConfirmedTechSmsNote,
        TemplateName::ConfirmedTechSms,
        TemplateName::ReminderNote,
        TemplateName::ReminderTechNote,
        TemplateName::ReminderSms,
        TemplateName::ReminderTechSms,
        TemplateName::TechOnSiteNote,
        TemplateName::TechOnSiteSms,
        TemplateName::TechChangedNote,
        TemplateName::TechChangedSms,
        TemplateName::TechChangedTechSms,
        TemplateName::CancelledNote,
        TemplateName::CompletedNote,
        TemplateName::Alert,
    ];

    /// The file stem under `templates/<vendor or common>/`, e.g. `confirmed_note`.
    pub fn file_stem(self) -> &'static str {
        match self {
            TemplateName::ConfirmedNote => "confirmed_note",
            TemplateName::ConfirmedSms => "confirmed_sms",
            TemplateName::FieldEngineerConfirmedNote => "fe_confirmed_note",
            TemplateName::FieldEngineerAssignedSms => "fe_assigned_sms",
            TemplateName::ConfirmedSmsNote => "confirmed_sms_note",
            TemplateName::ConfirmedTechSmsNote => "confirmed_tech_sms_note",
            TemplateName::ConfirmedTechSms => "confirmed_tech_sms",
            TemplateName::ReminderNote => "reminder_note",
            TemplateName::ReminderTechNote => "reminder_tech_note",
            TemplateName::ReminderSms => "reminder_sms",
            TemplateName::ReminderTechSms => "reminder_tech_sms",
            TemplateName::TechOnSiteNote => "tech_on_site_note",
            TemplateName::TechOnSiteSms => "tech_on_site_sms",
            TemplateName::TechChangedNote => "tech_changed_note",
            TemplateName::TechChangedSms => "tech_changed_sms",
            TemplateName::TechChangedTechSms => "tech_changed_tech_sms",
            TemplateName::CancelledNote => "cancelled_note",
            TemplateName::CompletedNote => "completed_note",
            TemplateName::Alert => "alert",
        }
    }

    /// Whether the text is a ticket note (and so bound by [`MAX_NOTE_CHARS`]).
    pub fn is_note(self) -> bool {
        self.file_stem().ends_with("_note")
    }

    /// Whether a vendor with `policy` needs this template.
    pub fn required_for(self, policy: VendorPolicy) -> bool {
        match self {
            TemplateName::FieldEngineerConfirmedNote | TemplateName::FieldEngineerAssignedSms => {
                policy.field_engineer_step
            }
            _ => true,
        }
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_stem())
    }
}

/// The templates shared by every vendor, from `templates/common/`.
pub const COMMON_TEMPLATES: &[TemplateSource] = &[
    (
        "confirmed_sms_note",
        include_str!("../../../templates/common/confirmed_sms_note.hbs"),
    ),
    (
        "confirmed_tech_sms_note",
        include_str!("../../../templates/common/confirmed_tech_sms_note.hbs"),
    ),
    (
        "confirmed_tech_sms",
        include_str!("../../../templates/common/confirmed_tech_sms.hbs"),
    ),
    (
        "reminder_note",
        include_str!("../../../templates/common/reminder_note.hbs"),
    ),
    (
        "reminder_tech_note",
        include_str!("../../../templates/common/reminder_tech_note.hbs"),
    ),
    (
        "reminder_sms",
        include_str!("../../../templates/common/reminder_sms.hbs"),
    ),
    (
        "reminder_tech_sms",
        include_str!("../../../templates/common/reminder_tech_sms.hbs"),
    ),
    (
        "tech_on_site_note",
        include_str!("../../../templates/common/tech_on_site_note.hbs"),
    ),
    (
        "tech_on_site_sms",
        include_str!("../../../templates/common/tech_on_site_sms.hbs"),
    ),
    (
        "tech_changed_note",
        include_str!("../../../templates/common/tech_changed_note.hbs"),
    ),
    (
        "tech_changed_sms",
        include_str!("../../../templates/common/tech_changed_sms.hbs"),
    ),
    (
        "tech_changed_tech_sms",
        include_str!("../../../templates/common/tech_changed_tech_sms.hbs"),
    ),
    (
        "cancelled_note",
        include_str!("../../../templates/common/cancelled_note.hbs"),
    ),
    (
        "completed_note",
        include_str!("../../../templates/common/completed_note.hbs"),
    ),
    ("alert", include_str!("../../../templates/common/alert.hbs")),
];

/// A template could not be built or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A required template has no source.
    #[error("template {0} is missing")]
    Missing(String),
    /// A source has no known name.
    #[error("template {0} is not a known template name")]
    Unknown(String),
    /// A source does not compile.
    #[error("template {name} does not compile: {reason}")]
    Syntax {
        /// The template.
        name: String,
        /// The compiler's message.
        reason: String,
    },
    /// Rendering failed, typically a value the template needs is absent (strict mode).
    #[error("template {name} cannot be rendered: {reason}")]
    Render {
        /// The template.
        name: String,
        /// The renderer's message.
        reason: String,
    },
    /// A rendered note is longer than Bruin accepts.
    #[error("rendered {name} is {chars} characters, over the {MAX_NOTE_CHARS}-character limit")]
    TooLong {
        /// The template.
        name: String,
        /// The rendered length in characters.
        chars: usize,
    },
}

/// Values available to templates. Absent values are left out so strict mode catches them.
pub type TemplateContext = Map<String, Value>;

/// The compiled templates of one vendor: the common ones with the vendor's overriding them.
#[derive(Debug, Clone)]
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    /// Compiles `COMMON_TEMPLATES` overridden by `vendor_sources`, then by `overrides`
    /// (e.g. files an operator points the service at), and trial-renders every template the
    /// vendor needs with a full sample context, so that a typo fails at start-up.
    ///
    /// `vendor_fields` names the vendor's extra template values (see
    /// [`VendorAdapter::template_fields`](crate::VendorAdapter::template_fields)).
    pub fn build(
        policy: VendorPolicy,
        vendor_sources: &[TemplateSource],
        vendor_fields: &[&str],
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, TemplateError> {
        let mut sources: BTreeMap<String, String> = BTreeMap::new();
        let owned = |list: &[TemplateSource]| {
            list.iter()
                .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
                .collect::<Vec<_>>()
        };
        for (name, source) in owned(COMMON_TEMPLATES)
            .into_iter()
            .chain(owned(vendor_sources))
            .chain(overrides.iter().map(|(n, s)| (n.clone(), s.clone())))
        {
            if !TemplateName::ALL
                .iter()
                .any(|known| known.file_stem() == name)
            {
                return Err(TemplateError::Unknown(name));
            }
            sources.insert(name, source);
        }

        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        for (name, source) in &sources {
            registry
                .register_template_string(name, source)
                .map_err(|error| TemplateError::Syntax {
                    name: name.clone(),
                    reason: error.to_string(),
                })?;
        }
        let templates = Self { registry };
        let mut sample = sample_context();
        for field in vendor_fields {
            sample.insert((*field).to_owned(), Value::String(format!("<{field}>")));
        }
        for name in TemplateName::ALL
            .into_iter()
            .filter(|name| name.required_for(policy))
        {
            if !templates.registry.has_template(name.file_stem()) {
                return Err(TemplateError::Missing(name.file_stem().to_owned()));
            }
            templates.render(name, &sample)?;
        }
        Ok(templates)
    }

    /// Renders one template. Notes longer than [`MAX_NOTE_CHARS`] are refused.
    pub fn render(
        &self,
        name: TemplateName,
        context: &TemplateContext,
    ) -> Result<String, TemplateError> {
        let text = self
            .registry
            .render(name.file_stem(), context)
            .map_err(|error| TemplateError::Render {
                name: name.file_stem().to_owned(),
                reason: error.to_string(),
            })?;
        let chars = text.chars().count();
        if name.is_note() && chars > MAX_NOTE_CHARS {
            return Err(TemplateError::TooLong {
                name: name.file_stem().to_owned(),
                chars,
            });
        }
        Ok(text)
    }
}

/// Every value any default template uses, for the start-up trial render.
fn sample_context() -> TemplateContext {
    [
        ("note_key", "DIS00000"),
        ("ticket_id", "1"),
        ("dispatch_number", "DIS00000"),
        ("VENDOR", "VENDOR"),
        ("vendor", "VENDOR"),
        ("event", "event"),
        ("when", "Jan 01, 2020 @ 09:00 AM Eastern"),
        ("phone", "+12125550100"),
        ("hours", "2"),
        ("tech_name", "Tech Name"),
        ("tech_phone", "+1 212 555 0101"),
        ("site", "Site"),
        ("street", "1 Main St"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), Value::String(value.to_owned())))
    .collect()
}
