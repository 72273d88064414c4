//! The SMS ledger (SPEC §7 delivery rule): one key per SMS under
//! `{ENVIRONMENT_NAME}-dispatch-monitor:sms:`, holding `claimed` while a sender holds it and
//! `sent` once the SMS went out. Both values expire, so the ledger never grows without bound.

use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{Claim, LedgerKey, PortError, SmsLedger};
use fred::prelude::{Client, Expiration, KeysInterface, LuaInterface};

use crate::connection::{unavailable, whole_seconds};
use crate::own_prefix;

/// How long a claim lasts; a claim left by a crashed sender frees itself after this.
pub const CLAIM_TTL: Duration = Duration::from_secs(300);
/// How long a sent mark is remembered: 30 days, far beyond any dispatch's life.
pub const SENT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

const CLAIMED: &str = "claimed";
const SENT: &str = "sent";

/// Claims a free key, or says who has it. ARGV[1] is the claim TTL in seconds.
const CLAIM_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then
  redis.call('SET', KEYS[1], 'claimed', 'EX', ARGV[1])
  return 'claimed'
end
if value == 'sent' then
  return 'sent'
end
return 'held'
";

/// Deletes the key only while it is a claim, never a sent mark.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == 'claimed' then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// The SMS ledger in Redis.
#[derive(Debug, Clone)]
pub struct RedisSmsLedger {
    client: Client,
    prefix: String,
}

impl RedisSmsLedger {
    pub(crate) fn new(client: Client, env_name: &str) -> Self {
        Self {
            client,
            prefix: format!("{}sms:", own_prefix(env_name)),
        }
    }

    /// The Redis key of one SMS, e.g.
    /// `production-dispatch-monitor:sms:LIT:DIS37405:confirmed:+12123595129`.
    pub fn redis_key(&self, key: &LedgerKey) -> String {
        format!("{}{}", self.prefix, key.as_key())
    }
}

#[async_trait]
impl SmsLedger for RedisSmsLedger {
    async fn claim(&self, key: &LedgerKey) -> Result<Claim, PortError> {
        let outcome: String = self
            .client
            .eval(CLAIM_SCRIPT, self.redis_key(key), whole_seconds(CLAIM_TTL))
            .await
            .map_err(|error| unavailable("SMS ledger claim", &error))?;
        match outcome.as_str() {
            CLAIMED => Ok(Claim::Claimed),
            SENT => Ok(Claim::AlreadySent),
            "held" => Ok(Claim::HeldElsewhere),
            other => Err(PortError::Malformed(format!(
                "SMS ledger claim returned {other:?}"
            ))),
        }
    }

    async fn mark_sent(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.client
            .set::<(), _, _>(
                self.redis_key(key),
                SENT,
                Some(Expiration::EX(whole_seconds(SENT_TTL))),
                None,
                false,
            )
            .await
            .map_err(|error| unavailable("SMS ledger mark-sent", &error))
    }

    async fn release(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.client
            .eval::<i64, _, _, _>(RELEASE_SCRIPT, self.redis_key(key), ())
            .await
            .map(drop)
            .map_err(|error| unavailable("SMS ledger release", &error))
    }

    async fn is_sent(&self, key: &LedgerKey) -> Result<bool, PortError> {
        let value: Option<String> = self
            .client
            .get(self.redis_key(key))
            .await
            .map_err(|error| unavailable("SMS ledger read", &error))?;
        Ok(value.as_deref() == Some(SENT))
    }
}
