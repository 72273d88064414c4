//! Where setting values come from: the optional TOML file, then the environment, layered
//! with the `config` crate into one map of upper-case names.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::Path;

use super::SettingsError;
use super::values::SettingValue;

/// The raw layered values, keyed by upper-case setting name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSettings(BTreeMap<String, String>);

impl RawSettings {
    /// Layers the optional TOML file and then `environment` (the process environment in
    /// production, an explicit map in tests).
    pub fn load(
        file: Option<&Path>,
        environment: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        // The config crate lower-cases environment names but keeps file keys as written, so
        // each layer is read on its own, its names upper-cased, and the environment applied last.
        let mut raw = BTreeMap::new();
        if let Some(path) = file {
            let source = config::File::from(path)
                .format(config::FileFormat::Toml)
                .required(true);
            let layer = Self::layer(config::Config::builder().add_source(source));
            raw.extend(layer.map_err(|error| oversized_number(path).unwrap_or(error))?);
        }
        let env_map: HashMap<String, String> = environment.into_iter().collect();
        let source = config::Environment::default().source(Some(env_map));
        raw.extend(Self::layer(config::Config::builder().add_source(source))?);
        Ok(Self(raw))
    }

    fn layer(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
    ) -> Result<BTreeMap<String, String>, SettingsError> {
        let built = builder
            .build()
            .map_err(|error| SettingsError::Source(error.to_string()))?;
        let table: HashMap<String, config::Value> = built
            .try_deserialize()
            .map_err(|error| SettingsError::Source(error.to_string()))?;
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
        Ok(layer)
    }

    /// The value of one setting, trimmed; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// One setting parsed as `T`; `None` when absent.
    pub fn parse<T: SettingValue>(&self, name: &str) -> Result<Option<T>, SettingsError> {
        self.get(name)
            .map(|text| T::parse(text).map_err(|why| SettingsError::invalid(name, text, why)))
            .transpose()
    }

    /// Builds settings from explicit pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), v.to_owned()))
                .collect(),
        )
    }
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
