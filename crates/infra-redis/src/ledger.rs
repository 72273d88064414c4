//! The SMS ledger (SPEC §7, §13): one Redis hash per dispatch,
//! `{ENVIRONMENT_NAME}-dispatch-monitor:ledger:{VENDOR}:{dispatch_number}`, one field per SMS
//! (`reminder-2h:12123595129`), each a JSON entry with its state (`claimed`, `sent`,
//! `uncertain`), the note that records it, and — while claimed — the holder and when the claim
//! expires. Beside them, `note:` fields claim each step's note, so that two replicas never
//! both append it. Every write is one Lua script on that one key (one hash slot), and pushes the
//! hash's expiry 30 days out, so the ledger never grows without bound. A dispatch's whole
//! ledger is one `HGETALL`.

use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{Claim, EntryState, LedgerEntry, LedgerKey, PortError, SmsLedger, StepKey};
use domain::{DispatchNumber, VendorName};
use fred::prelude::{Client, HashesInterface, LuaInterface};
use serde::{Deserialize, Serialize};

use crate::connection::{unavailable, whole_millis};
use crate::own_prefix;

/// How long a dispatch's ledger is kept after its last write: 30 days, beyond any dispatch's
/// life.
pub const LEDGER_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The pauses before retrying a failed `mark_sent` or `mark_uncertain` (SPEC §13.2).
pub const MARK_RETRIES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
];

/// Claims an entry unless it is sent or claimed live by another holder; an entry that cannot
/// be read (not JSON, an unknown state, a claim without expiry) is `corrupt` and left as it is:
/// it may stand for a text already sent. KEYS[1] the hash; ARGV: field, holder, claim TTL (ms), key JSON, note, hash TTL (ms).
const CLAIM_SCRIPT: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, entry = pcall(cjson.decode, current)
  if not ok or type(entry) ~= 'table' then
    return 'corrupt'
  end
  if entry.state == 'sent' then
    return 'sent'
  end
  if entry.state ~= 'claimed' and entry.state ~= 'uncertain' then
    return 'corrupt'
  end
  if entry.state == 'claimed' and entry.holder ~= ARGV[2] then
    local expires = tonumber(entry.expires)
    if expires == nil then
      return 'corrupt'
    end
    if expires > now then
      return 'held'
    end
  end
end
local entry = {state = 'claimed', holder = ARGV[2], expires = now + tonumber(ARGV[3]),
               key_json = ARGV[4], note = ARGV[5]}
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 'claimed'
";

/// Sets an entry's state (`sent` or `uncertain`), keeping its note; creates it if the ledger
/// was lost meanwhile. KEYS[1] the hash; ARGV: field, state, key JSON, hash TTL (ms).
const MARK_SCRIPT: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
local note = ''
if current then
  local ok, old = pcall(cjson.decode, current)
  if ok and type(old) == 'table' and type(old.note) == 'string' then
    note = old.note
  end
end
local entry = {state = ARGV[2], key_json = ARGV[3], note = note}
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(entry))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
";

/// Drops an entry only while this holder claims it. KEYS[1] the hash; ARGV: field, holder.
const RELEASE_SCRIPT: &str = r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, entry = pcall(cjson.decode, current)
  if ok and type(entry) == 'table' and entry.state == 'claimed' and entry.holder == ARGV[2] then
    return redis.call('HDEL', KEYS[1], ARGV[1])
  end
end
return 0
";

/// One entry as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    state: EntryState,
    key_json: String,
    #[serde(default)]
    note: String,
}

/// The SMS ledger in Redis.
#[derive(Debug, Clone)]
pub struct RedisSmsLedger {
    client: Client,
    prefix: String,
    /// This process's claims carry it; only it can release them.
    holder: String,
}

impl RedisSmsLedger {
    pub(crate) fn new(client: Client, env_name: &str) -> Self {
        Self {
            client,
            prefix: format!("{}ledger:", own_prefix(env_name)),
            holder: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The Redis key of one dispatch's ledger, e.g.
    /// `production-dispatch-monitor:ledger:LIT:DIS37405`.
    pub fn redis_key(&self, vendor: &VendorName, dispatch_number: &DispatchNumber) -> String {
        format!("{}{vendor}:{dispatch_number}", self.prefix)
    }

    fn key_of(&self, key: &LedgerKey) -> String {
        self.redis_key(&key.vendor, &key.dispatch_number)
    }

    /// Sets the state of the entry `field` of the hash `hash`, retried (SPEC §13.2).
    async fn mark<K: Serialize>(
        &self,
        hash: String,
        field: String,
        key: &K,
        state: &str,
    ) -> Result<(), PortError> {
        let args = vec![
            field,
            state.to_owned(),
            key_json(key)?,
            whole_millis(LEDGER_TTL).to_string(),
        ];
        retry(&MARK_RETRIES, || async {
            self.client
                .eval::<i64, _, _, _>(MARK_SCRIPT, hash.clone(), args.clone())
                .await
                .map(drop)
                .map_err(|error| unavailable("SMS ledger mark", &error))
        })
        .await
    }

    /// Claims the entry `field` of the hash `hash` for `ttl`.
    async fn claim_entry<K: Serialize>(
        &self,
        hash: String,
        field: String,
        key: &K,
        note: &str,
        ttl: Duration,
    ) -> Result<Claim, PortError> {
        let args = vec![
            field,
            self.holder.clone(),
            whole_millis(ttl).to_string(),
            key_json(key)?,
            note.to_owned(),
            whole_millis(LEDGER_TTL).to_string(),
        ];
        let field = args[0].clone();
        let outcome: String = self
            .client
            .eval(CLAIM_SCRIPT, hash.as_str(), args)
            .await
            .map_err(|error| unavailable("SMS ledger claim", &error))?;
        match outcome.as_str() {
            "claimed" => Ok(Claim::Claimed),
            "sent" => Ok(Claim::AlreadySent),
            "held" => Ok(Claim::HeldElsewhere),
            "corrupt" => Err(PortError::Malformed(format!(
                "the SMS ledger entry {field} of {hash} cannot be read, so whether it went out \
                 is unknown; fix or delete the field"
            ))),
            other => Err(PortError::Malformed(format!(
                "SMS ledger claim returned {other:?}"
            ))),
        }
    }

    /// Drops the entry `field` of the hash `hash` while this holder claims it.
    async fn release_entry(&self, hash: String, field: String) -> Result<(), PortError> {
        self.client
            .eval::<i64, _, _, _>(RELEASE_SCRIPT, hash, vec![field, self.holder.clone()])
            .await
            .map(drop)
            .map_err(|error| unavailable("SMS ledger release", &error))
    }
}

/// Runs `attempt`, and again after each pause while it fails; the last error otherwise.
pub async fn retry<F, Fut>(pauses: &[Duration], mut attempt: F) -> Result<(), PortError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), PortError>>,
{
    let mut result = attempt().await;
    for pause in pauses {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(*pause).await;
        result = attempt().await;
    }
    result
}

#[async_trait]
impl SmsLedger for RedisSmsLedger {
    async fn entries(
        &self,
        vendor: &VendorName,
        dispatch_number: &DispatchNumber,
    ) -> Result<Vec<LedgerEntry>, PortError> {
        let fields: Vec<(String, String)> = self
            .client
            .hgetall(self.redis_key(vendor, dispatch_number))
            .await
            .map_err(|error| unavailable("SMS ledger read", &error))?;
        let mut entries = Vec::with_capacity(fields.len());
        // Notes' claims live beside the SMS entries; only SMS entries are returned.
        for (field, value) in fields
            .into_iter()
            .filter(|(field, _)| !field.starts_with("note:"))
        {
            let parsed = serde_json::from_str::<Stored>(&value).and_then(|stored| {
                let key = serde_json::from_str(&stored.key_json)?;
                Ok(LedgerEntry {
                    key,
                    state: stored.state,
                    note: stored.note,
                })
            });
            match parsed {
                Ok(entry) => entries.push(entry),
                Err(error) => {
                    tracing::warn!(field, %error, "an SMS ledger entry cannot be read; its text is not sent until the field is fixed or deleted")
                }
            }
        }
        Ok(entries)
    }

    async fn claim(&self, key: &LedgerKey, note: &str, ttl: Duration) -> Result<Claim, PortError> {
        self.claim_entry(self.key_of(key), key.entry_id(), key, note, ttl)
            .await
    }

    async fn mark_sent(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.mark(self.key_of(key), key.entry_id(), key, "sent")
            .await
    }

    async fn mark_uncertain(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.mark(self.key_of(key), key.entry_id(), key, "uncertain")
            .await
    }

    async fn release(&self, key: &LedgerKey) -> Result<(), PortError> {
        self.release_entry(self.key_of(key), key.entry_id()).await
    }

    async fn claim_note(&self, key: &StepKey, ttl: Duration) -> Result<Claim, PortError> {
        let hash = self.redis_key(&key.vendor, &key.dispatch_number);
        self.claim_entry(hash, key.entry_id(), key, "", ttl).await
    }

    async fn note_appended(&self, key: &StepKey) -> Result<(), PortError> {
        let hash = self.redis_key(&key.vendor, &key.dispatch_number);
        self.mark(hash, key.entry_id(), key, "sent").await
    }

    async fn release_note(&self, key: &StepKey) -> Result<(), PortError> {
        let hash = self.redis_key(&key.vendor, &key.dispatch_number);
        self.release_entry(hash, key.entry_id()).await
    }
}

fn key_json<K: Serialize>(key: &K) -> Result<String, PortError> {
    serde_json::to_string(key).map_err(|error| PortError::Malformed(format!("ledger key: {error}")))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failed_write_is_retried_three_times() {
        let calls = AtomicUsize::new(0);
        let pauses = MARK_RETRIES;
        let result = retry(&pauses, || async {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            if call < 2 {
                Err(PortError::Unavailable("down".into()))
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!(result, Ok(()));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicUsize::new(0);
        let result = retry(&pauses, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(PortError::Unavailable("down".into()))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "the first try and three retries"
        );
    }
}
