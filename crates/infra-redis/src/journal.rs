//! The journal (SPEC §14) in Redis, readable by every replica:
//!
//! - `{ENVIRONMENT_NAME}-dispatch-monitor:journal:{VENDOR}:{dispatch_number}`: a list of JSON
//!   entries, oldest first, at most 200, expiring 30 days after its last write;
//! - `...:dispatches:{VENDOR}`: a hash of the vendor's dispatches as the last cycles saw them,
//!   one field per dispatch (`{dispatch_number}`) and one for its last action
//!   (`{dispatch_number}:last`), written as each dispatch is done; a dispatch no longer listed
//!   is dropped at the end of a cycle that ran;
//! - `...:cycles:{VENDOR}`: the last 100 cycles, newest first.
//!
//! Writes are queued and made by one background task, a batch at a time, so a dispatch never
//! waits for them and memory stays flat however long the list; a full queue drops the write
//! and says so. Every script touches one key (one hash slot).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use domain::journal::{
    CycleRecord, DispatchHistory, DispatchSnapshot, Journal, JournalEntry, MAX_CYCLES, MAX_ENTRIES,
    RETENTION,
};
use domain::ports::PortError;
use domain::{VendorName, telemetry};
use fred::prelude::{Client, HashesInterface, ListInterface, LuaInterface};
use tokio::sync::{mpsc, oneshot, watch};

use crate::connection::{unavailable, whole_millis};
use crate::own_prefix;

/// Writes waiting for the background task; beyond this, writes are dropped.
pub const JOURNAL_QUEUE: usize = 10_000;
/// An entry that repeats each cycle (a skip, a held text) is not written again when one of
/// this many last entries says the same.
const REPEAT_WINDOW: i64 = 5;

/// Appends entries, skipping a repeating one already among the last few (an entry there that is
/// not JSON is passed over); trims and expires.
/// KEYS[1] the list; ARGV: TTL (ms), max entries, repeat window, then pairs of (repeats flag,
/// entry JSON).
const APPEND_SCRIPT: &str = r"
local appended = 0
for i = 4, #ARGV, 2 do
  local push = true
  if ARGV[i] == '1' then
    local new = cjson.decode(ARGV[i + 1])
    for _, old_json in ipairs(redis.call('LRANGE', KEYS[1], -tonumber(ARGV[3]), -1)) do
      local ok, old = pcall(cjson.decode, old_json)
      if ok and type(old) == 'table' and old.kind == new.kind and old.outcome == new.outcome and old.action == new.action
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

/// Writes snapshot fields, of one dispatch or of a batch. KEYS[1] the vendor's hash; ARGV:
/// TTL (ms), then field, value pairs.
const SNAPSHOT_SCRIPT: &str = r"
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// Drops the fields of dispatches not listed in ARGV (their number, or number plus `:last`).
/// KEYS[1] the vendor's hash.
const FORGET_SCRIPT: &str = r"
local seen = {}
for _, number in ipairs(ARGV) do
  seen[number] = true
end
local dropped = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local number = string.gsub(field, ':last$', '')
  if not seen[number] then
    redis.call('HDEL', KEYS[1], field)
    dropped = dropped + 1
  end
end
return dropped
";

/// Records a cycle, newest first. KEYS[1] the list; ARGV: cycle JSON, max cycles, TTL (ms).
const CYCLE_SCRIPT: &str = r"
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

enum Write {
    /// Entries of one dispatch, for the append script.
    Entries {
        key: String,
        args: Vec<String>,
    },
    /// Fields of a vendor's snapshot hash; a batch's fields of one hash go in one script.
    Snapshot {
        key: String,
        fields: Vec<(String, String)>,
    },
    Cycle {
        cycle: CycleRecord,
        seen: Option<Vec<String>>,
    },
    Flush(oneshot::Sender<()>),
}

/// Writes made together, at most this many at once.
const BATCH: usize = 64;

/// The journal in Redis; cloning shares the queue.
#[derive(Debug, Clone)]
pub struct RedisJournal {
    reader: Keys,
    queue: mpsc::Sender<Write>,
    cycles_stored: watch::Receiver<u64>,
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
        let (stored, cycles_stored) = watch::channel(0);
        tokio::spawn(write_all(keys.clone(), writes, stored));
        Self {
            reader: keys,
            queue,
            cycles_stored,
        }
    }

    /// This journal reading through `connection` instead (the operator API's own, so that
    /// its reads never queue ahead of a cycle's commands); writes still go through the one
    /// queue.
    pub fn reading_through(&self, connection: &crate::RedisConnection) -> Self {
        Self {
            reader: Keys {
                client: connection.client().clone(),
                prefix: self.reader.prefix.clone(),
            },
            ..self.clone()
        }
    }

    /// How many cycle records this process has stored so far (a record that failed counts
    /// too): a copy of a vendor's dispatch list made before the count last changed may miss
    /// a cycle.
    pub fn cycles_stored(&self) -> watch::Receiver<u64> {
        self.cycles_stored.clone()
    }

    /// Waits until every write queued so far is made, or `timeout` passes; waiting for room
    /// in a full queue counts in the timeout.
    pub async fn flush(&self, timeout: Duration) {
        let (done, flushed) = oneshot::channel();
        let flush = async {
            if self.queue.send(Write::Flush(done)).await.is_ok() {
                let _ = flushed.await;
            }
        };
        if tokio::time::timeout(timeout, flush).await.is_err() {
            tracing::warn!(
                queued = JOURNAL_QUEUE - self.queue.capacity(),
                "journal writes not made in time are dropped"
            );
        }
    }

    /// Queues the append of a dispatch's entries, when there are any.
    fn append(
        &self,
        vendor: &str,
        number: &str,
        entries: &[JournalEntry],
    ) -> Result<(), PortError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut args = vec![
            whole_millis(RETENTION).to_string(),
            MAX_ENTRIES.to_string(),
            REPEAT_WINDOW.to_string(),
        ];
        for entry in entries {
            args.push(if entry.repeats() { "1" } else { "0" }.to_owned());
            args.push(serde_json::to_string(entry).unwrap_or_default());
        }
        let key = self.reader.journal(vendor, number);
        self.enqueue(Write::Entries { key, args })
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

/// The background writer: takes what is queued, a batch at a time; the dispatches' writes of
/// a batch go together (the snapshots of one vendor in one script), and a cycle record or a
/// flush waits for the writes before it. A failure is logged and counted. Each cycle record
/// made is counted in `stored`.
async fn write_all(keys: Keys, mut writes: mpsc::Receiver<Write>, stored: watch::Sender<u64>) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut pending = Pending::default();
    while writes.recv_many(&mut batch, BATCH).await > 0 {
        for write in batch.drain(..) {
            match write {
                Write::Entries { key, args } => pending.scripts.push((APPEND_SCRIPT, key, args)),
                Write::Snapshot { key, fields } => {
                    pending.snapshots.entry(key).or_default().extend(fields);
                }
                Write::Cycle { cycle, seen } => {
                    pending.write(&keys).await;
                    report(vec![keys.write_cycle(cycle, seen).await]);
                    stored.send_modify(|count| *count += 1);
                }
                Write::Flush(done) => {
                    pending.write(&keys).await;
                    let _ = done.send(());
                }
            }
        }
        pending.write(&keys).await;
    }
}

/// The writes of a batch not made yet.
#[derive(Default)]
struct Pending {
    scripts: Vec<(&'static str, String, Vec<String>)>,
    /// Snapshot fields by hash; a later value of a field replaces an earlier one.
    snapshots: BTreeMap<String, BTreeMap<String, String>>,
}

impl Pending {
    /// Makes every pending write, all at once, and waits for them.
    async fn write(&mut self, keys: &Keys) {
        let ttl = whole_millis(RETENTION).to_string();
        let snapshots = std::mem::take(&mut self.snapshots)
            .into_iter()
            .map(|(key, fields)| {
                let args = std::iter::once(ttl.clone())
                    .chain(fields.into_iter().flat_map(|(field, json)| [field, json]))
                    .collect();
                (SNAPSHOT_SCRIPT, key, args)
            });
        let writes = self
            .scripts
            .drain(..)
            .chain(snapshots)
            .map(|(script, key, args)| keys.client.eval::<i64, _, _, _>(script, key, args));
        report(futures::future::join_all(writes).await);
    }
}

fn report<T>(results: Vec<Result<T, fred::error::Error>>) {
    for error in results.into_iter().filter_map(Result::err) {
        tracing::warn!(%error, "could not write the journal");
        metrics::counter!(telemetry::JOURNAL_FAILURES).increment(1);
    }
}

impl Keys {
    /// Writes the cycle; when it ran, drops the snapshots of dispatches it did not list.
    async fn write_cycle(
        &self,
        cycle: CycleRecord,
        seen: Option<Vec<String>>,
    ) -> Result<i64, fred::error::Error> {
        let ttl = whole_millis(RETENTION);
        let vendor = cycle.vendor.clone();
        if let Some(seen) = seen {
            let _: i64 = self
                .client
                .eval(FORGET_SCRIPT, self.dispatches(&vendor), seen)
                .await?;
        }
        let json = serde_json::to_string(&cycle).unwrap_or_default();
        let args = vec![json, MAX_CYCLES.to_string(), ttl.to_string()];
        self.client
            .eval(CYCLE_SCRIPT, self.cycles(&vendor), args)
            .await
    }

    async fn read_dispatches(&self, vendor: &str) -> Result<Vec<DispatchSnapshot>, PortError> {
        let fields: HashMap<String, String> = self
            .client
            .hgetall(self.dispatches(vendor))
            .await
            .map_err(|error| unavailable("journal read", &error))?;
        let mut snapshots = Vec::new();
        for (field, json) in &fields {
            if field.ends_with(":last") {
                continue;
            }
            let last = fields.get(&format!("{field}:last")).map(String::as_str);
            match snapshot_of(json, last) {
                Ok(snapshot) => snapshots.push(snapshot),
                Err(error) => unreadable(&self.dispatches(vendor), &error),
            }
        }
        snapshots.sort_by(|a, b| a.dispatch_number.cmp(&b.dispatch_number));
        Ok(snapshots)
    }
}

/// A stored snapshot with its last action put back.
fn snapshot_of(json: &str, last: Option<&str>) -> Result<DispatchSnapshot, PortError> {
    let mut snapshot: DispatchSnapshot = parse(json)?;
    if let Some(last) = last {
        snapshot.last_action = Some(parse(last)?);
    }
    Ok(snapshot)
}

/// Says that a record of `key` cannot be read and is left out.
fn unreadable(key: &str, error: &PortError) {
    tracing::warn!(key, %error, "a journal record cannot be read; it is left out");
}

/// The records of `key` that can be read; each other one is left out, with a warning.
fn readable<T: serde::de::DeserializeOwned>(key: &str, records: &[String]) -> Vec<T> {
    records
        .iter()
        .filter_map(|json| parse(json).map_err(|error| unreadable(key, &error)).ok())
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, PortError> {
    serde_json::from_str(json)
        .map_err(|error| PortError::Malformed(format!("journal record: {error}")))
}

#[async_trait]
impl Journal for RedisJournal {
    async fn record_dispatch(
        &self,
        mut snapshot: DispatchSnapshot,
        entries: Vec<JournalEntry>,
    ) -> Result<(), PortError> {
        let vendor = snapshot.vendor.clone();
        let number = snapshot.dispatch_number.clone();
        self.append(&vendor, &number, &entries)?;
        // The last action has its own field, so a cycle without one keeps the previous.
        let last = snapshot.last_action.take();
        let mut fields = vec![(
            number.clone(),
            serde_json::to_string(&snapshot).unwrap_or_default(),
        )];
        if let Some(last) = last {
            fields.push((
                format!("{number}:last"),
                serde_json::to_string(&last).unwrap_or_default(),
            ));
        }
        self.enqueue(Write::Snapshot {
            key: self.reader.dispatches(&vendor),
            fields,
        })
    }

    async fn record_entries(
        &self,
        vendor: &VendorName,
        dispatch_number: &str,
        entries: Vec<JournalEntry>,
    ) -> Result<(), PortError> {
        self.append(vendor.as_str(), dispatch_number, &entries)
    }

    async fn record_cycle(
        &self,
        cycle: CycleRecord,
        seen: Option<Vec<String>>,
    ) -> Result<(), PortError> {
        self.enqueue(Write::Cycle { cycle, seen })
    }

    async fn cycles(
        &self,
        vendor: &VendorName,
        limit: usize,
    ) -> Result<Vec<CycleRecord>, PortError> {
        let stop = i64::try_from(limit.max(1)).unwrap_or(i64::MAX) - 1;
        let key = self.reader.cycles(vendor.as_str());
        let cycles: Vec<String> = self
            .reader
            .client
            .lrange(key.as_str(), 0, stop)
            .await
            .map_err(|error| unavailable("journal read", &error))?;
        Ok(readable(&key, &cycles))
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
        let fields: Vec<Option<String>> = keys
            .client
            .hmget(
                keys.dispatches(vendor.as_str()),
                vec![
                    dispatch_number.to_owned(),
                    format!("{dispatch_number}:last"),
                ],
            )
            .await
            .map_err(|error| unavailable("journal read", &error))?;
        let list = keys.journal(vendor.as_str(), dispatch_number);
        let entries: Vec<String> = keys
            .client
            .lrange(list.as_str(), 0, -1)
            .await
            .map_err(|error| unavailable("journal read", &error))?;
        let snapshot = match fields.as_slice() {
            [Some(json), last] => snapshot_of(json, last.as_deref())
                .map_err(|error| unreadable(&keys.dispatches(vendor.as_str()), &error))
                .ok(),
            _ => None,
        };
        if snapshot.is_none() && entries.is_empty() {
            return Ok(None);
        }
        let entries = readable(&list, &entries);
        Ok(Some(DispatchHistory::in_time_order(snapshot, entries)))
    }
}
