//! Every template rendered and compared with `templates.md` byte for byte.

use std::collections::BTreeMap;

use crate::common::*;
use domain::{TemplateContext, TemplateError, TemplateName, Templates};
use serde_json::Value;

/// Which template each `templates.md` heading's code blocks are, in block order.
const HEADINGS: &[(&str, &[(&str, &str)])] = &[
    ("Confirmed — LIT", &[("lit", "confirmed_note")]),
    ("Confirmed — CTS", &[("cts", "confirmed_note")]),
    (
        "Field Engineer Confirmed — LIT",
        &[("lit", "fe_confirmed_note")],
    ),
    (
        "Confirmation SMS sent (client / tech) — both vendors",
        &[
            ("common", "confirmed_sms_note"),
            ("common", "confirmed_tech_sms_note"),
        ],
    ),
    (
        "Reminder SMS sent (client / tech) — both vendors",
        &[
            ("common", "reminder_note"),
            ("common", "reminder_tech_note"),
        ],
    ),
    (
        "Tech on site — both vendors",
        &[("common", "tech_on_site_note")],
    ),
    (
        "Tech changed — both vendors",
        &[("common", "tech_changed_note")],
    ),
    ("Cancelled — both vendors", &[("common", "cancelled_note")]),
    (
        "Repair completed — both vendors",
        &[("common", "completed_note")],
    ),
    ("Confirmed, to client — LIT", &[("lit", "confirmed_sms")]),
    ("Confirmed, to client — CTS", &[("cts", "confirmed_sms")]),
    (
        "Field engineer assigned, to client — LIT",
        &[("lit", "fe_assigned_sms")],
    ),
    (
        "Confirmed, to tech — both vendors",
        &[("common", "confirmed_tech_sms")],
    ),
    (
        "Reminder, to client — both vendors",
        &[("common", "reminder_sms")],
    ),
    (
        "Reminder, to tech — both vendors",
        &[("common", "reminder_tech_sms")],
    ),
    (
        "Tech on site, to client — both vendors",
        &[("common", "tech_on_site_sms")],
    ),
    (
        "Tech changed, to client — both vendors",
        &[("common", "tech_changed_sms")],
    ),
    (
        "Tech changed, to the new tech — both vendors",
        &[("common", "tech_changed_tech_sms")],
    ),
];

/// The code blocks under each `### ` heading of templates.md.
fn spec_blocks() -> BTreeMap<String, Vec<String>> {
    let text = test_support::fixtures::text("templates.md");
    let mut blocks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut heading = String::new();
    let mut current: Option<String> = None;
    for line in text.split_inclusive('\n') {
        if let Some(block) = current.as_mut() {
            if line.trim_end() == "```" {
                blocks
                    .entry(heading.clone())
                    .or_default()
                    .push(current.take().unwrap());
            } else {
                block.push_str(line);
            }
        } else if let Some(title) = line.strip_prefix("### ") {
            heading = title.trim().to_owned();
        } else if line.trim_end() == "```" {
            current = Some(String::new());
        }
    }
    blocks
}

/// A context where every value is its own placeholder, so rendering gives back the source.
fn identity_context() -> TemplateContext {
    [
        "note_key",
        "ticket_id",
        "dispatch_number",
        "VENDOR",
        "event",
        "when",
        "phone",
        "hours",
        "tech_name",
        "tech_phone",
        "site",
        "street",
        "date_of_dispatch",
        "time_of_dispatch",
        "time_zone",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), Value::String(format!("{{{{{name}}}}}"))))
    .collect()
}

fn template_name(stem: &str) -> TemplateName {
    TemplateName::parse(stem).unwrap()
}

#[test]
fn every_template_renders_exactly_the_spec_text() {
    let blocks = spec_blocks();
    assert_eq!(
        blocks.len(),
        HEADINGS.len(),
        "every templates.md heading is mapped"
    );
    let lit = lit_templates();
    let cts = cts_templates();
    let context = identity_context();
    let mut compared = 0;
    for (heading, templates) in HEADINGS {
        let spec = blocks
            .get(*heading)
            .unwrap_or_else(|| panic!("no heading {heading:?}"));
        assert_eq!(spec.len(), templates.len(), "blocks under {heading:?}");
        for ((folder, stem), expected) in templates.iter().zip(spec) {
            let name = template_name(stem);
            let rendered = match *folder {
                "cts" => cts.render(name, &context).unwrap(),
                _ => lit.render(name, &context).unwrap(),
            };
            assert_eq!(&rendered, expected, "{folder}/{stem}.hbs under {heading:?}");
            if *folder == "common" {
                assert_eq!(cts.render(name, &context).unwrap(), rendered);
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 20);
}

#[test]
fn the_alert_line_matches_the_spec() {
    let text = test_support::fixtures::text("templates.md");
    let spec_line = text
        .lines()
        .find(|line| line.starts_with("`[dispatch-monitor]"))
        .unwrap()
        .trim_matches('`');
    let rendered = lit_templates()
        .render(TemplateName::ALERT, &identity_context())
        .unwrap();
    assert_eq!(rendered.trim_end(), spec_line);
}

#[test]
fn values_are_not_html_escaped() {
    let mut context = identity_context();
    context.insert(
        "tech_name".into(),
        Value::String("O'Brien & <Sons> \"=\"".into()),
    );
    let text = lit_templates()
        .render(template_name("tech_on_site_sms"), &context)
        .unwrap();
    assert!(text.contains("O'Brien & <Sons> \"=\""), "{text}");
}

#[test]
fn strict_mode_refuses_a_missing_value() {
    let mut context = identity_context();
    context.remove("tech_name");
    let error = lit_templates()
        .render(template_name("tech_on_site_sms"), &context)
        .unwrap_err();
    assert!(matches!(error, TemplateError::Render { .. }), "{error:?}");
}

#[test]
fn start_up_checks_catch_bad_templates() {
    let cts = with_common(CTS_TEMPLATES);
    let with = |name: &'static str, source: &'static str| {
        let mut sources = cts.clone();
        sources.push((name, source));
        sources
    };
    // A vendor with the field-engineer step must bring its templates.
    let missing = Templates::build(lit_policy(), cts.clone(), &[]).unwrap_err();
    assert_eq!(missing, TemplateError::Missing("fe_confirmed_note".into()));
    // A typo in a variable fails the trial render.
    assert!(matches!(
        Templates::build(cts_policy(), with("cancelled_note", "{{note_kye}}\n"), &[]).unwrap_err(),
        TemplateError::Render { .. }
    ));
    // Broken syntax and unknown names are refused.
    assert!(matches!(
        Templates::build(cts_policy(), with("cancelled_note", "{{#if}}\n"), &[]).unwrap_err(),
        TemplateError::Syntax { .. }
    ));
    assert_eq!(
        Templates::build(cts_policy(), with("nope", "x"), &[]).unwrap_err(),
        TemplateError::Unknown("nope".into())
    );
    // An operator's override replaces the default text.
    let custom = "#*MetTel's IPA*# {{note_key}}\nDispatch Management - Dispatch Cancelled\nGone.\n";
    let templates = Templates::build(cts_policy(), with("cancelled_note", custom), &[]).unwrap();
    let text = templates
        .render(template_name("cancelled_note"), &identity_context())
        .unwrap();
    assert!(text.ends_with("Gone.\n"));
}

#[test]
fn the_opted_out_note_is_the_spec_text_and_keeps_its_phrase() {
    // SPEC §17.1 (rev 3) gives this text; templates.md predates it.
    let expected = "#*MetTel's IPA*# {{note_key}}\nDispatch SMS withheld from {{phone}}: the number opted out of texts\n";
    let name = template_name("opted_out_note");
    for templates in [lit_templates(), cts_templates()] {
        assert_eq!(
            templates.render(name, &identity_context()).unwrap(),
            expected
        );
    }
    // An override that drops OPTED_OUT(phone) would append its note every cycle.
    let mut sources = with_common(CTS_TEMPLATES);
    sources.push((
        "opted_out_note",
        "#*MetTel's IPA*# {{note_key}}\nTexts to {{phone}} withheld\n",
    ));
    let error = Templates::build(cts_policy(), sources, &[]).unwrap_err();
    assert!(
        matches!(&error, TemplateError::Interface { name, .. } if name == "opted_out_note"),
        "{error:?}"
    );
}
