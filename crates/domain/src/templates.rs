//! Note, SMS and alert texts: Handlebars templates with HTML escaping off and strict mode on,
//! compiled and trial-rendered when built (SPEC §8).

use std::collections::BTreeMap;
use std::fmt;

use handlebars::Handlebars;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::VendorPolicy;
use crate::actions::{ActionKind, Quiet, SmsPurpose};

/// Bruin rejects notes longer than this many characters.
pub const MAX_NOTE_CHARS: usize = 1500;

/// A template's name: the file stem under `templates/<vendor or common>/`, e.g.
/// `confirmed_note`. The names are those of the action table (see [`crate::actions`]) plus
/// the alert line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TemplateName(&'static str);

impl TemplateName {
    /// The Slack alert line.
    pub const ALERT: TemplateName = TemplateName("alert");

    /// A name the action table lists; `None` for any other text.
    pub fn parse(stem: &str) -> Option<Self> {
        Self::all().into_iter().find(|name| name.0 == stem)
    }

    /// Every template: each action's note and SMS templates, in table order, then the alert.
    pub fn all() -> Vec<TemplateName> {
        let mut names = Vec::new();
        for kind in ActionKind::every(0) {
            let row = kind.row();
            names.push(TemplateName(row.note));
            names.extend(row.sms.iter().map(|sms| TemplateName(sms.template)));
            if let Quiet::SkippedWithNote(note) = row.quiet {
                names.push(TemplateName(note));
            }
        }
        names.push(Self::ALERT);
        names
    }

    /// The note template of an action.
    pub fn note_of(kind: ActionKind) -> Self {
        TemplateName(kind.row().note)
    }

    /// The note recording an action's SMS not sent in quiet hours, when it has one.
    pub fn quiet_note_of(kind: ActionKind) -> Option<Self> {
        match kind.row().quiet {
            Quiet::SkippedWithNote(note) => Some(TemplateName(note)),
            _ => None,
        }
    }

    /// The template of one SMS.
    pub fn sms_of(purpose: &SmsPurpose) -> Self {
        TemplateName(purpose.row().template)
    }

    /// The file stem, e.g. `confirmed_note`.
    pub fn file_stem(self) -> &'static str {
        self.0
    }

    /// Whether the text is a ticket note (and so bound by [`MAX_NOTE_CHARS`]).
    pub fn is_note(self) -> bool {
        ActionKind::every(0)
            .iter()
            .any(|kind| kind.row().note == self.0 || Self::quiet_note_of(*kind) == Some(self))
    }

    /// Whether a vendor with `policy` needs this template.
    pub fn required_for(self, policy: VendorPolicy) -> bool {
        let rows_using: Vec<_> = ActionKind::every(0)
            .into_iter()
            .map(ActionKind::row)
            .filter(|row| {
                row.note == self.0
                    || row.sms.iter().any(|s| s.template == self.0)
                    || row.quiet == Quiet::SkippedWithNote(self.0)
            })
            .collect();
        rows_using.is_empty() || rows_using.iter().any(|row| row.needed_by.includes(policy))
    }
}

impl fmt::Display for TemplateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

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
    /// A note template does not write what other services and the rules read back.
    #[error("template {name} does not produce {missing}")]
    Interface {
        /// The template.
        name: String,
        /// What its trial render lacks.
        missing: String,
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

/// Values given to templates as a free-form map (tests, trial renders of odd overrides).
pub type TemplateContext = Map<String, Value>;

/// Every value a template may use. Absent values are left out, so strict mode refuses a
/// template that needs one. Rules, alerts and the start-up trial render all fill this one
/// struct, so the names templates can use are exactly its fields (plus the vendor's extra
/// values in `vendor_fields`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TemplateValues<'a> {
    /// The id our notes carry (LIT dispatch number, CTS IGZ number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note_key: Option<&'a str>,
    /// The Bruin ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<&'a str>,
    /// The vendor's dispatch id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_number: Option<&'a str>,
    /// The vendor's name, e.g. `LIT` (both spellings are accepted).
    #[serde(rename = "VENDOR", skip_serializing_if = "Option::is_none")]
    pub vendor_upper: Option<&'a str>,
    /// The vendor's name, e.g. `LIT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<&'a str>,
    /// The appointment as people read it, e.g. `Mar 16, 2020 @ 04:00 PM Pacific`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// The technician's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tech_name: Option<&'a str>,
    /// The technician's phone as the vendor wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tech_phone: Option<&'a str>,
    /// The site's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<&'a str>,
    /// The site's street.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<&'a str>,
    /// The SMS recipient's phone, E.164 with the `+`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<&'a str>,
    /// The reminder's hours before the appointment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours: Option<u32>,
    /// What happened, in alert lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a str>,
    /// The quiet hours as configured, e.g. `21:00-08:00` (the quiet-hours note).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<String>,
    /// The vendor's own extra values (see [`crate::Dispatch::template_fields`]).
    #[serde(flatten)]
    pub vendor_fields: BTreeMap<&'a str, &'a str>,
}

impl<'a> TemplateValues<'a> {
    /// A value for every field, for the start-up trial render; `vendor_fields` names the
    /// vendor's extra values.
    pub fn sample(vendor_fields: &[&'a str]) -> Self {
        Self {
            note_key: Some(SAMPLE_NOTE_KEY),
            ticket_id: Some("1"),
            dispatch_number: Some("DIS00000"),
            vendor_upper: Some("VENDOR"),
            vendor: Some("VENDOR"),
            when: Some("Jan 01, 2020 @ 09:00 AM Eastern".to_owned()),
            tech_name: Some(SAMPLE_TECH_NAME),
            tech_phone: Some("+1 212 555 0101"),
            site: Some("Site"),
            street: Some("1 Main St"),
            phone: Some("+12125550100"),
            hours: Some(SAMPLE_HOURS),
            event: Some("event"),
            quiet_hours: Some("21:00-08:00".to_owned()),
            vendor_fields: vendor_fields
                .iter()
                .map(|field| (*field, SAMPLE_VENDOR_VALUE))
                .collect(),
        }
    }
}

/// The note key of the trial render.
pub(crate) const SAMPLE_NOTE_KEY: &str = "DIS00000";
/// The tech name of the trial render.
pub(crate) const SAMPLE_TECH_NAME: &str = "Tech Name";
/// The reminder hours of the trial render.
pub(crate) const SAMPLE_HOURS: u32 = 2;
/// Each vendor extra value of the trial render.
const SAMPLE_VENDOR_VALUE: &str = "<vendor value>";

/// The compiled templates of one vendor: the common ones with the vendor's overriding them.
#[derive(Debug, Clone)]
pub struct Templates {
    registry: Handlebars<'static>,
}

impl Templates {
    /// Compiles `sources` — `(name, Handlebars source)` pairs, a later one replacing an
    /// earlier one of the same name (common texts, then the vendor's, then an operator's
    /// overrides) — and trial-renders every template a vendor with `policy` needs with a full
    /// sample, so that a typo fails at start-up. `vendor_fields` names the vendor's extra
    /// values (see [`VendorAdapter::template_fields`](crate::VendorAdapter::template_fields)).
    /// Reminder notes are checked for the default reminder hours; see [`Templates::build_for`].
    pub fn build<'s>(
        policy: VendorPolicy,
        sources: impl IntoIterator<Item = (&'s str, &'s str)>,
        vendor_fields: &[&str],
    ) -> Result<Self, TemplateError> {
        let hours = crate::rules::RuleSettings::default().reminder_hours;
        Self::build_for(policy, sources, vendor_fields, &hours)
    }

    /// As [`Templates::build`], with reminder notes trial-rendered for every hour in
    /// `reminder_hours` (the configured ones): each rendering must carry that hour's phrase
    /// (SPEC §18.3).
    pub fn build_for<'s>(
        policy: VendorPolicy,
        sources: impl IntoIterator<Item = (&'s str, &'s str)>,
        vendor_fields: &[&str],
        reminder_hours: &[u32],
    ) -> Result<Self, TemplateError> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        for (name, source) in sources {
            if TemplateName::parse(name).is_none() {
                return Err(TemplateError::Unknown(name.to_owned()));
            }
            registry
                .register_template_string(name, source)
                .map_err(|error| TemplateError::Syntax {
                    name: name.to_owned(),
                    reason: error.to_string(),
                })?;
        }
        let templates = Self { registry };
        let sample = TemplateValues::sample(vendor_fields);
        for name in TemplateName::all()
            .into_iter()
            .filter(|name| name.required_for(policy))
        {
            if !templates.registry.has_template(name.file_stem()) {
                return Err(TemplateError::Missing(name.file_stem().to_owned()));
            }
            templates.render(name, &sample)?;
        }
        templates.check_interface(policy, vendor_fields, reminder_hours)?;
        Ok(templates)
    }

    /// Every note a vendor with `policy` writes keeps its interface (SPEC §13.6, §18.3): the
    /// watermark line, the action's watermark phrase (a reminder's for each of the
    /// `reminder_hours`), and, where the tech is read back, a line `Field Engineer` followed
    /// by the tech's name.
    fn check_interface(
        &self,
        policy: VendorPolicy,
        vendor_fields: &[&str],
        reminder_hours: &[u32],
    ) -> Result<(), TemplateError> {
        let hours = if reminder_hours.is_empty() {
            &[SAMPLE_HOURS][..]
        } else {
            reminder_hours
        };
        // Each kind once; the reminder kinds once per hour.
        let kinds = ActionKind::every(hours[0]).into_iter().chain(
            hours[1..]
                .iter()
                .flat_map(|h| ActionKind::every(*h))
                .filter(|kind| kind.hours().is_some()),
        );
        for kind in kinds.filter(|kind| kind.row().needed_by.includes(policy)) {
            let sample = TemplateValues {
                hours: kind.hours().or(Some(SAMPLE_HOURS)),
                ..TemplateValues::sample(vendor_fields)
            };
            self.check_note(policy, kind, TemplateName::note_of(kind), &sample)?;
            if let Some(quiet) = TemplateName::quiet_note_of(kind) {
                self.check_note(policy, kind, quiet, &sample)?;
            }
        }
        Ok(())
    }

    /// One note of `kind` rendered with `sample` keeps its interface; `name` is the action's
    /// own note or its quiet-hours note (which names no tech).
    fn check_note(
        &self,
        policy: VendorPolicy,
        kind: ActionKind,
        name: TemplateName,
        sample: &TemplateValues<'_>,
    ) -> Result<(), TemplateError> {
        let text = self.render(name, sample)?;
        let lacks = |missing: String| TemplateError::Interface {
            name: name.to_string(),
            missing,
        };
        let watermark = format!("{} {SAMPLE_NOTE_KEY}", crate::WATERMARK);
        if !text.lines().any(|line| line.trim() == watermark) {
            return Err(lacks(format!(
                "the watermark line {:?}",
                "#*MetTel's IPA*# {{note_key}}"
            )));
        }
        let phrase = match kind {
            // OPTED_OUT(phone) names the number.
            ActionKind::OptedOutNote => {
                crate::phrases::opted_out(sample.phone.unwrap_or_default()).into()
            }
            _ => kind.phrase(),
        };
        if !text.contains(phrase.as_ref()) {
            let hours = kind
                .hours()
                .map(|h| format!(" for {h} h (MONITOR_REMINDER_HOURS)"))
                .unwrap_or_default();
            return Err(lacks(format!("its watermark phrase {phrase:?}{hours}")));
        }
        let own_note = name == TemplateName::note_of(kind);
        let names = crate::tech_names_in(&text);
        if own_note
            && kind.row().names_tech.applies(policy)
            && names.last().map(String::as_str) != Some(SAMPLE_TECH_NAME)
        {
            return Err(lacks(
                "a line \"Field Engineer\" followed by {{tech_name}}".into(),
            ));
        }
        Ok(())
    }

    /// Renders one template. Notes longer than [`MAX_NOTE_CHARS`] are refused.
    pub fn render<T: Serialize>(
        &self,
        name: TemplateName,
        values: &T,
    ) -> Result<String, TemplateError> {
        let text = self
            .registry
            .render(name.file_stem(), values)
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
