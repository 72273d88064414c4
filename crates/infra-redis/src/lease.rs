//! Per-vendor leases (SPEC §9): `{ENVIRONMENT_NAME}-dispatch-monitor:lease:{VENDOR}` holding
//! the holder's random token, taken with `SET NX PX` (in a script that gives a key without
//! expiry one, so that garbage there cannot stop the vendor for good) and renewed or released only by that
//! holder, atomically.

use std::time::Duration;

use async_trait::async_trait;
use domain::VendorName;
use domain::ports::{LeaseToken, PortError, VendorLease};
use fred::prelude::{Client, KeysInterface, LuaInterface};

use crate::connection::{unavailable, whole_millis};
use crate::own_prefix;

/// Takes the lease when KEYS[1] is free (`taken`); ARGV: holder, TTL (ms). A key without an
/// expiry is no lease of ours (garbage, or written by hand): it is given the TTL, so that it
/// lapses, and reported (`no-expiry`); otherwise another holder has it (`held`).
const ACQUIRE_SCRIPT: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return 'taken'
end
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 'no-expiry'
end
return 'held'
";

/// Extends the lease when KEYS[1] still holds ARGV[1]; ARGV[2] is the TTL in milliseconds.
const RENEW_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the lease when KEYS[1] still holds ARGV[1].
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Vendor leases in Redis.
#[derive(Debug, Clone)]
pub struct RedisLease {
    client: Client,
    prefix: String,
    replica: String,
}

impl RedisLease {
    pub(crate) fn new(client: Client, env_name: &str) -> Self {
        Self {
            client,
            prefix: format!("{}lease:", own_prefix(env_name)),
            replica: "replica".to_owned(),
        }
    }

    /// Names the replica in the leases it takes (`{replica}/{random}`), so that operators can
    /// see who holds one.
    pub fn with_replica(mut self, replica: &str) -> Self {
        self.replica = replica.replace('/', "_");
        self
    }

    /// The Redis key of a vendor's lease, e.g. `production-dispatch-monitor:lease:LIT`.
    pub fn redis_key(&self, vendor: &VendorName) -> String {
        format!("{}{}", self.prefix, vendor.as_str())
    }
}

#[async_trait]
impl VendorLease for RedisLease {
    async fn try_acquire(
        &self,
        vendor: &VendorName,
        ttl: Duration,
    ) -> Result<Option<LeaseToken>, PortError> {
        let holder = format!("{}/{}", self.replica, uuid::Uuid::new_v4());
        let key = self.redis_key(vendor);
        let args = vec![holder.clone(), whole_millis(ttl).to_string()];
        let outcome: String = self
            .client
            .eval(ACQUIRE_SCRIPT, key.as_str(), args)
            .await
            .map_err(|error| unavailable("lease acquire", &error))?;
        match outcome.as_str() {
            "taken" => Ok(Some(LeaseToken {
                vendor: vendor.clone(),
                holder,
            })),
            "held" => Ok(None),
            "no-expiry" => Err(PortError::Malformed(format!(
                "the lease key {key} held a value without an expiry, which is no lease; it now \
                 expires in {} ms",
                whole_millis(ttl)
            ))),
            other => Err(PortError::Malformed(format!(
                "lease acquire returned {other:?}"
            ))),
        }
    }

    async fn renew(&self, token: &LeaseToken, ttl: Duration) -> Result<bool, PortError> {
        let renewed: i64 = self
            .client
            .eval(
                RENEW_SCRIPT,
                self.redis_key(&token.vendor),
                vec![token.holder.clone(), whole_millis(ttl).to_string()],
            )
            .await
            .map_err(|error| unavailable("lease renew", &error))?;
        Ok(renewed == 1)
    }

    async fn holder(&self, vendor: &VendorName) -> Result<Option<String>, PortError> {
        let holder: Option<String> = self
            .client
            .get(self.redis_key(vendor))
            .await
            .map_err(|error| unavailable("lease read", &error))?;
        Ok(holder.map(|h| {
            h.rsplit_once('/')
                .map_or(h.clone(), |(replica, _)| replica.to_owned())
        }))
    }

    async fn release(&self, token: &LeaseToken) -> Result<bool, PortError> {
        let released: i64 = self
            .client
            .eval(
                RELEASE_SCRIPT,
                self.redis_key(&token.vendor),
                token.holder.as_str(),
            )
            .await
            .map_err(|error| unavailable("lease release", &error))?;
        Ok(released == 1)
    }
}
