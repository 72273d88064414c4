//! The dispatch registry other services read (SPEC §4): `{ENVIRONMENT_NAME}-{dispatch_number}`
//! holding compact JSON, written once with `SET NX EX 259200`.

use async_trait::async_trait;
use domain::ports::{DispatchRegistry, PortError};
use fred::prelude::{Client, Expiration, KeysInterface, SetOptions};

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

#[async_trait]
impl DispatchRegistry for RedisRegistry {
    async fn register(
        &self,
        dispatch_number: &str,
        value: &serde_json::Value,
    ) -> Result<bool, PortError> {
        let json = serde_json::to_string(value)
            .map_err(|error| PortError::Malformed(format!("registry value: {error}")))?;
        let written: Option<String> = self
            .client
            .set(
                self.key(dispatch_number),
                json,
                Some(Expiration::EX(REGISTRY_TTL_SECS)),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(|error| unavailable("registry SET", &error))?;
        Ok(written.is_some())
    }
}
