//! The journal (SPEC §14) in Redis, readable by every replica:
//!
//! - `{ENVIRONMENT_NAME}-dispatch-monitor:journal:{VENDOR}:{dispatch_number}`: a list of JSON
//!   entries, oldest first, at most 200, expiring 30 days after its last write;
//! - `...:snapshot:{VENDOR}:{dispatch_number}`: the dispatch as a cycle last saw it;
//! - `...:cycles:{VENDOR}`: the last 100 cycles, newest first;
//! - `...:dispatches:{VENDOR}`: the snapshots of the vendor's last cycle that ran.
//!
//! Writes are queued and made by one background task, so a dispatch never waits for them; a
//! full queue drops the write and says so. Every script touches one key (one hash slot).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use domain::journal::{
    CycleRecord, DispatchHistory, DispatchSnapshot, Journal, JournalEntry, MAX_CYCLES, MAX_ENTRIES,
    RETENTION,
};
use domain::ports::PortError;
use domain::{VendorName, telemetry};
use fred::prelude::{Client, Expiration, KeysInterface, ListInterface, LuaInterface};
use tokio::sync::{mpsc, oneshot};

use crate::connection::{unavailable, whole_millis};
use crate::own_prefix;

/// Writes waiting for the background task; beyond this, writes are dropped.
pub const JOURNAL_QUEUE: usize = 10_000;
/// An entry that repeats each cycle (a skip, a held text) is not written again when one of
/// this many last entries says the same.
const REPEAT_WINDOW: i64 = 5;

/// Appends entries, skipping a repeating one already among the last few; trims and expires.
/// KEYS[1] the list; ARGV: TTL (ms), max entries, repeat window, then pairs of (repeats flag,
/// entry JSON).
const APPEND_SCRIPT: &str = r"
local appended = 0
for i = 4, #ARGV, 2 do
  local push = true
  if ARGV[i] == '1' then
    local new = cjson.decode(ARGV[i + 1])
    for _, old_json in ipairs(redis.call('LRANGE', KEYS[1], -tonumber(ARGV[3]), -1)) do
      local old = cjson.decode(old_json)
      if old.kind == new.kind and old.outcome == new.outcome and old.action == new.action
         and old.to == new.to and old.detail == new.detail then
        push = false
      end
    end
  end
  if push then
    redis.call('RPUSH', KEYS[1], ARGV[i + 1])
    appended = appended + 1
  end
end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return appended
";

/// Records a cycle, newest first. KEYS[1] the list; ARGV: cycle JSON, max cycles, TTL (ms).
const CYCLE_SCRIPT: &str = r"
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

enum Write {
    Entries {
        key: String,
        args: Vec<String>,
    },
    Cycle {
        cycle: CycleRecord,
        snapshots: Option<Vec<DispatchSnapshot>>,
    },
    Flush(oneshot::Sender<()>),
}

/// The journal in Redis; cloning shares the queue.
#[derive(Debug, Clone)]
pub struct RedisJournal {
    reader: Keys,
    queue: mpsc::Sender<Write>,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Write")
    }
}

/// Key names and the client.
#[derive(Debug, Clone)]
struct Keys {
    client: Client,
    prefix: String,
}

impl Keys {
    fn journal(&self, vendor: &str, number: &str) -> String {
        format!("{}journal:{vendor}:{number}", self.prefix)
    }
    fn snapshot(&self, vendor: &str, number: &str) -> String {
        format!("{}snapshot:{vendor}:{number}", self.prefix)
    }
    fn cycles(&self, vendor: &str) -> String {
        format!("{}cycles:{vendor}", self.prefix)
    }
    fn dispatches(&self, vendor: &str) -> String {
        format!("{}dispatches:{vendor}", self.prefix)
    }
}

impl RedisJournal {
    /// Starts the background writer on the current Tokio runtime; it ends when every clone is
    /// dropped.
    pub(crate) fn start(client: Client, env_name: &str) -> Self {
        let keys = Keys {
            client,
            prefix: own_prefix(env_name),
        };
        let (queue, writes) = mpsc::channel(JOURNAL_QUEUE);
        tokio::spawn(write_all(keys.clone(), writes));
        Self {
            reader: keys,
            queue,
        }
    }

    /// Waits until every write queued so far is made, or `timeout` passes.
    pub async fn flush(&self, timeout: Duration) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Write::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(timeout, flushed).await;
        }
    }

    fn enqueue(&self, write: Write) -> Result<(), PortError> {
        self.queue.try_send(write).map_err(|error| {
            PortError::Unavailable(match error {
                mpsc::error::TrySendError::Full(_) => "the journal queue is full".to_owned(),
                mpsc::error::TrySendError::Closed(_) => "the journal writer stopped".to_owned(),
            })
        })
    }
}

/// The background writer: each write in turn; a failure is logged and counted.
async fn write_all(keys: Keys, mut writes: mpsc::Receiver<Write>) {
    while let Some(write) = writes.recv().await {
        let result = match write {
            Write::Entries { key, args } => keys
                .client
                .eval::<i64, _, _, _>(APPEND_SCRIPT, key, args)
                .await
                .map(|_| ()),
            Write::Cycle { cycle, snapshots } => keys.write_cycle(cycle, snapshots).await,
            Write::Flush(done) => {
                let _ = done.send(());
                Ok(())
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "could not write the journal");
            metrics::counter!(telemetry::JOURNAL_FAILURES).increment(1);
        }
    }
}

impl Keys {
    /// Writes the cycle; when it ran, the vendor's dispatch list and each snapshot, keeping
    /// the last action of dispatches that had none this cycle.
    async fn write_cycle(
        &self,
        cycle: CycleRecord,
        snapshots: Option<Vec<DispatchSnapshot>>,
    ) -> Result<(), fred::error::Error> {
        let ttl = whole_millis(RETENTION);
        let vendor = cycle.vendor.clone();
        if let Some(mut snapshots) = snapshots {
            let previous = self.read_dispatches(&vendor).await.unwrap_or_default();
            let mut last: HashMap<String, _> = previous
                .into_iter()
                .filter_map(|s| s.last_action.map(|a| (s.dispatch_number, a)))
                .collect();
            for snapshot in &mut snapshots {
                if snapshot.last_action.is_none() {
                    snapshot.last_action = last.remove(&snapshot.dispatch_number);
                }
            }
            let pipeline = self.client.pipeline();
            for snapshot in &snapshots {
                let key = self.snapshot(&snapshot.vendor, &snapshot.dispatch_number);
                let json = serde_json::to_string(snapshot).unwrap_or_default();
                let _: () = pipeline
                    .set(key, json, Some(Expiration::PX(ttl)), None, false)
                    .await?;
            }
            let list = serde_json::to_string(&snapshots).unwrap_or_default();
            let _: () = pipeline
                .set(
                    self.dispatches(&vendor),
                    list,
                    Some(Expiration::PX(ttl)),
                    None,
                    false,
                )
                .await?;
            let _: Vec<fred::types::Value> = pipeline.all().await?;
        }
        let json = serde_json::to_string(&cycle).unwrap_or_default();
        let args = vec![json, MAX_CYCLES.to_string(), ttl.to_string()];
        self.client
            .eval::<i64, _, _, _>(CYCLE_SCRIPT, self.cycles(&vendor), args)
            .await
            .map(|_| ())
    }

    async fn read_dispatches(&self, vendor: &str) -> Result<Vec<DispatchSnapshot>, PortError> {
        let json: Option<String> = self
            .client
            .get(self.dispatches(vendor))
            .await
            .map_err(|error| unavailable("journal read", &error))?;
        json.map_or(Ok(Vec::new()), |json| parse(&json))
    }
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, PortError> {
    serde_json::from_str(json)
        .map_err(|error| PortError::Malformed(format!("journal record: {error}")))
}

#[async_trait]
impl Journal for RedisJournal {
    async fn record_entries(
        &self,
        vendor: &VendorName,
        dispatch_number: &str,
        entries: Vec<JournalEntry>,
    ) -> Result<(), PortError> {
        let mut args = vec![
            whole_millis(RETENTION).to_string(),
            MAX_ENTRIES.to_string(),
            REPEAT_WINDOW.to_string(),
        ];
        for entry in &entries {
            args.push(if entry.repeats() { "1" } else { "0" }.to_owned());
            args.push(serde_json::to_string(entry).unwrap_or_default());
        }
        let key = self.reader.journal(vendor.as_str(), dispatch_number);
        self.enqueue(Write::Entries { key, args })
    }

    async fn record_cycle(
        &self,
        cycle: CycleRecord,
        snapshots: Option<Vec<DispatchSnapshot>>,
    ) -> Result<(), PortError> {
        self.enqueue(Write::Cycle { cycle, snapshots })
    }

    async fn cycles(
        &self,
        vendor: &VendorName,
        limit: usize,
    ) -> Result<Vec<CycleRecord>, PortError> {
        let stop = i64::try_from(limit.max(1)).unwrap_or(i64::MAX) - 1;
        let cycles: Vec<String> = self
            .reader
            .client
            .lrange(self.reader.cycles(vendor.as_str()), 0, stop)
            .await
            .map_err(|error| unavailable("journal read", &error))?;
        cycles.iter().map(|json| parse(json)).collect()
    }

    async fn dispatches(&self, vendor: &VendorName) -> Result<Vec<DispatchSnapshot>, PortError> {
        self.reader.read_dispatches(vendor.as_str()).await
    }

    async fn dispatch(
        &self,
        vendor: &VendorName,
        dispatch_number: &str,
    ) -> Result<Option<DispatchHistory>, PortError> {
        let keys = &self.reader;
        let snapshot: Option<String> = keys
            .client
            .get(keys.snapshot(vendor.as_str(), dispatch_number))
            .await
            .map_err(|error| unavailable("journal read", &error))?;
        let entries: Vec<String> = keys
            .client
            .lrange(keys.journal(vendor.as_str(), dispatch_number), 0, -1)
            .await
            .map_err(|error| unavailable("journal read", &error))?;
        if snapshot.is_none() && entries.is_empty() {
            return Ok(None);
        }
        let snapshot = snapshot.map(|json| parse(&json)).transpose()?;
        let entries = entries
            .iter()
            .map(|json| parse(json))
            .collect::<Result<_, _>>()?;
        Ok(Some(DispatchHistory { snapshot, entries }))
    }
}
