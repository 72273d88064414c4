//! The dispatch registry other services read (SPEC §4): `{ENVIRONMENT_NAME}-{dispatch_number}`
//! holding compact JSON, written once with `SET NX EX 259200`; a key found holding anything
//! else than a JSON object is reported, never silently kept.

use async_trait::async_trait;
use domain::ports::{DispatchRegistry, PortError};
use fred::prelude::{Client, LuaInterface};

use crate::connection::unavailable;

/// How long a registry key lives: three days.
pub const REGISTRY_TTL_SECS: i64 = 259_200;

/// The dispatch registry in Redis.
#[derive(Debug, Clone)]
pub struct RedisRegistry {
    client: Client,
    env_name: String,
}

impl RedisRegistry {
    pub(crate) fn new(client: Client, env_name: &str) -> Self {
        Self {
            client,
            env_name: env_name.to_owned(),
        }
    }

    /// The key for a dispatch, e.g. `production-DIS37405`.
    pub fn key(&self, dispatch_number: &str) -> String {
        format!("{}-{dispatch_number}", self.env_name)
    }
}

/// Writes KEYS[1] unless it exists (`written:`); otherwise returns what it holds
/// (`held:VALUE`). ARGV: the value, the TTL (s).
const REGISTER_SCRIPT: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then
  return 'written:'
end
return 'held:' .. redis.call('GET', KEYS[1])
";

#[async_trait]
impl DispatchRegistry for RedisRegistry {
    /// Written once; a key that already holds something other than a JSON object (garbage
    /// other services cannot read) is an error, until it is fixed or expires.
    async fn register(
        &self,
        dispatch_number: &str,
        value: &serde_json::Value,
    ) -> Result<bool, PortError> {
        let json = serde_json::to_string(value)
            .map_err(|error| PortError::Malformed(format!("registry value: {error}")))?;
        let key = self.key(dispatch_number);
        let args = vec![json, REGISTRY_TTL_SECS.to_string()];
        let outcome: String = self
            .client
            .eval(REGISTER_SCRIPT, key.as_str(), args)
            .await
            .map_err(|error| unavailable("registry SET", &error))?;
        match outcome.split_once(':') {
            Some(("written", _)) => Ok(true),
            Some(("held", held)) if is_json_object(held) => Ok(false),
            _ => Err(PortError::Malformed(format!(
                "the registry key {key} holds {:?}, not a dispatch's JSON; fix or delete it",
                outcome
                    .trim_start_matches("held:")
                    .chars()
                    .take(60)
                    .collect::<String>()
            ))),
        }
    }
}

fn is_json_object(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok_and(|value| value.is_object())
}
