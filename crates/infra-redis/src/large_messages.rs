//! Large NATS messages (SPEC §3): the JSON under its bare token with `SET token json EX ttl`,
//! read once and deleted.

use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{LargeMessageStore, PortError};
use fred::prelude::{Client, Expiration, KeysInterface, LuaInterface};

use crate::connection::{unavailable, whole_seconds};

/// GET then DEL in one step, so two readers never both get the payload.
const TAKE_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('DEL', KEYS[1])
end
return value
";

/// The large-message store in Redis.
#[derive(Debug, Clone)]
pub struct RedisLargeMessageStore {
    client: Client,
}

impl RedisLargeMessageStore {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl LargeMessageStore for RedisLargeMessageStore {
    async fn put(&self, token: &str, json: &str, ttl: Duration) -> Result<(), PortError> {
        self.client
            .set::<(), _, _>(
                token,
                json,
                Some(Expiration::EX(whole_seconds(ttl))),
                None,
                false,
            )
            .await
            .map_err(|error| unavailable("large-message SET", &error))
    }

    async fn take(&self, token: &str) -> Result<Option<String>, PortError> {
        self.client
            .eval(TAKE_SCRIPT, token, ())
            .await
            .map_err(|error| unavailable("large-message GET+DEL", &error))
    }
}
