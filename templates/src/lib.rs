//! The dispatch monitor's default texts: every note, SMS and alert template as Handlebars
//! source, embedded from the `.hbs` files of this folder (`common/` for every vendor, one
//! folder per vendor for its own texts and overrides). Each entry is `(name, source)`, the
//! name being the file stem the action table uses (`confirmed_note`, `reminder_sms`, ...).
//!
//! The texts are data: this crate depends on nothing, and `domain` compiles whatever sources
//! it is given, so other services can reuse `domain` with their own texts. The watermark lines
//! and phrases in the notes are an interface other services search for; `domain`'s tests
//! compare every file with the SPEC byte for byte.

/// A template: its name (the file stem) and its Handlebars source.
pub type Source = (&'static str, &'static str);

/// The texts every vendor shares, from `common/`.
pub const COMMON: &[Source] = &[
    ("alert", include_str!("../common/alert.hbs")),
    (
        "cancelled_note",
        include_str!("../common/cancelled_note.hbs"),
    ),
    (
        "completed_note",
        include_str!("../common/completed_note.hbs"),
    ),
    (
        "confirmed_sms_note",
        include_str!("../common/confirmed_sms_note.hbs"),
    ),
    (
        "confirmed_tech_sms",
        include_str!("../common/confirmed_tech_sms.hbs"),
    ),
    (
        "confirmed_tech_sms_note",
        include_str!("../common/confirmed_tech_sms_note.hbs"),
    ),
    (
        "opted_out_note",
        include_str!("../common/opted_out_note.hbs"),
    ),
    ("reminder_note", include_str!("../common/reminder_note.hbs")),
    (
        "reminder_quiet_hours_note",
        include_str!("../common/reminder_quiet_hours_note.hbs"),
    ),
    ("reminder_sms", include_str!("../common/reminder_sms.hbs")),
    (
        "reminder_tech_note",
        include_str!("../common/reminder_tech_note.hbs"),
    ),
    (
        "reminder_tech_sms",
        include_str!("../common/reminder_tech_sms.hbs"),
    ),
    (
        "tech_changed_note",
        include_str!("../common/tech_changed_note.hbs"),
    ),
    (
        "tech_changed_sms",
        include_str!("../common/tech_changed_sms.hbs"),
    ),
    (
        "tech_changed_tech_sms",
        include_str!("../common/tech_changed_tech_sms.hbs"),
    ),
    (
        "tech_on_site_note",
        include_str!("../common/tech_on_site_note.hbs"),
    ),
    (
        "tech_on_site_sms",
        include_str!("../common/tech_on_site_sms.hbs"),
    ),
];

/// LIT's own texts, from `lit/`.
pub const LIT: &[Source] = &[
    ("confirmed_note", include_str!("../lit/confirmed_note.hbs")),
    ("confirmed_sms", include_str!("../lit/confirmed_sms.hbs")),
    (
        "fe_assigned_sms",
        include_str!("../lit/fe_assigned_sms.hbs"),
    ),
    (
        "fe_confirmed_note",
        include_str!("../lit/fe_confirmed_note.hbs"),
    ),
];

/// CTS's own texts, from `cts/`.
pub const CTS: &[Source] = &[
    ("confirmed_note", include_str!("../cts/confirmed_note.hbs")),
    ("confirmed_sms", include_str!("../cts/confirmed_sms.hbs")),
];

/// Every folder of this crate with the texts embedded from it, `common` first: a new vendor's
/// folder is listed here too (the tests check that each folder is, file by file).
pub const FOLDERS: &[(&str, &[Source])] = &[
    ("common", COMMON),
    ("lit", LIT),
    ("cts", CTS),
    // A new vendor's folder: one more line.
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.hbs` file of `folder` is listed, and nothing else.
    fn assert_lists_the_folder(folder: &str, sources: &[Source]) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|entry| {
                let name = entry.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".hbs").map(str::to_owned)
            })
            .collect();
        files.sort();
        let mut listed: Vec<&str> = sources.iter().map(|(name, _)| *name).collect();
        listed.sort_unstable();
        assert_eq!(files, listed, "{folder}");
    }

    /// The folders beside `src/`, by name.
    fn template_folders() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut folders: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_type().unwrap().is_dir())
            .map(|entry| entry.file_name().into_string().unwrap())
            .filter(|name| name != "src" && name != "target")
            .collect();
        folders.sort();
        folders
    }

    #[test]
    fn every_folder_and_every_file_is_embedded() {
        let mut listed: Vec<String> = FOLDERS.iter().map(|(name, _)| (*name).into()).collect();
        listed.sort();
        assert_eq!(template_folders(), listed, "a folder missing from FOLDERS");
        for (folder, sources) in FOLDERS {
            assert_lists_the_folder(folder, sources);
        }
    }
}
