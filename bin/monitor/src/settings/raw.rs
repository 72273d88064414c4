//! Where setting values come from: the optional TOML file, then the environment, layered
//! with the `config` crate into one map of upper-case names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::SettingsError;
use super::values::SettingValue;

/// The most letters a `MONITOR_*` variable may differ from a setting's name to be refused as a
/// misspelling of it; farther ones are left alone (scripts use some, e.g. `MONITOR_BIN`),
/// unless they name a vendor's setting of a vendor that is not wired.
const MISSPELLING_DISTANCE: usize = 3;
/// Environment prefixes that only settings use.
const SETTING_PREFIXES: [&str; 2] = ["MONITOR_", "DISPATCH_MONITOR_"];

/// The raw layered values, keyed by upper-case setting name, and where the names came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSettings {
    values: BTreeMap<String, String>,
    /// The configuration file and every key in it, upper-cased.
    file: Option<(PathBuf, BTreeSet<String>)>,
    /// The names given by the environment.
    environment: BTreeSet<String>,
}

impl RawSettings {
    /// Layers the optional TOML file and then `environment` (the process environment in
    /// production, an explicit map in tests).
    pub fn load(
        file: Option<&Path>,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        // The config crate lower-cases environment names but keeps file keys as written, so
        // each layer is read on its own, its names upper-cased, and the environment applied last.
        let mut raw = Self::from_pairs([]);
        if let Some(path) = file {
            let source = config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true);
            let layer = Self::layer(config::Config::builder().add_source(source))
                .map_err(|error| oversized_number(path).unwrap_or_else(|| in_file(path, &error)));
            let (values, keys) = layer?;
            raw.values.extend(values);
            raw.file = Some((path.to_path_buf(), keys));
        }
        let env_map: HashMap<String, String> = environment.into_iter().collect();
        let source = config::Environment::default().source(Some(env_map));
        let (values, keys) = Self::layer(config::Config::builder().add_source(source))?;
        raw.values.extend(values);
        raw.environment = keys;
        Ok(raw)
    }

    /// One layer's values (nested tables left out) and every key in it, upper-cased.
    fn layer(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<(BTreeMap<String, String>, BTreeSet<String>), SettingsError> {
        let built = builder
            .build()
            .map_err(|error| SettingsError::Source(error.to_string()))?;
        let table: HashMap<String, config::Value> = built
            .try_deserialize()
            .map_err(|error| SettingsError::Source(error.to_string()))?;
        let keys = table.keys().map(|key| key.to_ascii_uppercase()).collect();
        let mut layer = BTreeMap::new();
        for (key, value) in table {
            let text = match value.clone().into_array() {
                Ok(items) => items
                    .into_iter()
                    .map(|item| item.into_string().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(","),
                // Nested tables are not settings of ours.
                Err(_) => match value.into_string() {
                    Ok(text) => text,
                    Err(_) => continue,
                },
            };
            layer.insert(key.to_ascii_uppercase(), text);
        }
        Ok((layer, keys))
    }

    /// The names that are not settings: every unknown key of the file, and each `MONITOR_*`
    /// or `DISPATCH_MONITOR_*` variable that is a few letters off a setting's name.
    pub fn unknown_names(&self, known: &[String]) -> Vec<SettingsError> {
        let mut errors = Vec::new();
        if let Some((path, keys)) = &self.file {
            for key in keys.iter().filter(|key| !known.contains(key)) {
                errors.push(SettingsError::Unknown {
                    name: key.clone(),
                    origin: format!("in {}", path.display()),
                    suggestion: close_to(key, known).map(str::to_owned),
                });
            }
        }
        let ours = |name: &&String| SETTING_PREFIXES.iter().any(|p| name.starts_with(p));
        for name in self.environment.iter().filter(ours) {
            if known.contains(name) {
                continue;
            }
            let suggestion = close_to(name, known);
            if suggestion.is_some() || per_vendor(name) {
                errors.push(SettingsError::Unknown {
                    name: name.clone(),
                    origin: "in the environment".to_owned(),
                    suggestion: suggestion.map(str::to_owned),
                });
            }
        }
        errors
    }

    /// The value of one setting, trimmed; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// One setting parsed as `T`; `None` when absent.
    pub fn parse<T: SettingValue>(&self, name: &str) -> Result<Option<T>, SettingsError> {
        self.get(name)
            .map(|text| T::parse(text).map_err(|why| SettingsError::invalid(name, text, why)))
            .transpose()
    }

    /// Builds settings from explicit pairs, as if from the environment (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let values: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v.to_owned()))
            .collect();
        Self {
            environment: values.keys().cloned().collect(),
            values,
            file: None,
        }
    }
}

/// Whether `name` is a per-vendor setting's (`MONITOR_<VENDOR>_ENABLED` or
/// `MONITOR_<VENDOR>_INTERVAL_SECS`), of a vendor that may not be wired.
fn per_vendor(name: &str) -> bool {
    name.strip_prefix("MONITOR_").is_some_and(|rest| {
        ["_ENABLED", "_INTERVAL_SECS"]
            .iter()
            .any(|suffix| rest.len() > suffix.len() && rest.ends_with(suffix))
    })
}

/// The known name closest to `name`, when it is a few letters off.
fn close_to<'a>(name: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| (candidate.as_str(), edit_distance(name, candidate)))
        .min_by_key(|(_, distance)| *distance)
        .filter(|(_, distance)| *distance <= MISSPELLING_DISTANCE)
        .map(|(candidate, _)| candidate)
}

/// The Levenshtein distance: letters inserted, removed or replaced to make `b` from `a`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let replace = previous[j] + usize::from(ca != *cb);
            current.push(replace.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The file's error in one line that names the file: the parser's message without the
/// quoted source lines or the relative path it appends.
fn in_file(path: &Path, error: &SettingsError) -> SettingsError {
    let text = match error {
        SettingsError::Source(text)
            if !text.contains(&format!("{:?}", path.display().to_string())) =>
        {
            text
        }
        _ => return error.clone(),
    };
    let message: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.contains('|') && !line.starts_with("in "))
        .collect();
    SettingsError::Source(format!("file {}: {}", path.display(), message.join(": ")))
}

/// A setting in the file whose number TOML cannot hold (above 2^63 - 1): the file cannot be
/// read at all, and this names the setting instead.
fn oversized_number(path: &Path) -> Option<SettingsError> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (name, value) = line.split_once('=')?;
        let (name, value) = (name.trim().trim_matches('"'), value.trim());
        let digits = value.trim_start_matches(['+', '-']).replace('_', "");
        let oversized = !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && value.replace('_', "").parse::<i64>().is_err();
        oversized.then(|| {
            SettingsError::invalid(&name.to_ascii_uppercase(), value, "the number is too large")
        })
    })
}

/// The process environment as text. A variable of ours that is not valid UTF-8 is a
/// configuration error; other variables that are not are left out.
pub fn environment(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<Vec<(String, String)>, SettingsError> {
    let ours = |name: &str| {
        ["NATS_", "REDIS_", "MONITOR_", "DISPATCH_MONITOR_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || ["ENVIRONMENT_NAME", "CURRENT_ENVIRONMENT"].contains(&name)
    };
    let mut env = Vec::new();
    for (name, value) in vars {
        let Ok(name) = name.into_string() else {
            continue;
        };
        match value.into_string() {
            Ok(value) => env.push((name, value)),
            Err(_) if ours(&name) => {
                return Err(SettingsError::invalid(
                    &name,
                    "(not UTF-8)",
                    "expected valid UTF-8 text",
                ));
            }
            Err(_) => {}
        }
    }
    Ok(env)
}
