//! The domain's Redis-backed ports, on `fred`: the dispatch registry other services read
//! (SPEC §4), the SMS ledger that makes every SMS go out once per idempotency key (SPEC §7,
//! §13), the per-vendor leases that keep replicas from running the same cycle (SPEC §9), and
//! the store for large NATS messages (SPEC §3), the operator journal (SPEC §14), and the
//! customer-text safeguards (SPEC §17). [`RedisConnection`] owns the one client they
//! share; it reconnects by itself, and every command fails after a bounded timeout while
//! Redis is down.
//!
//! This crate knows nothing of NATS or of any vendor's JSON; it depends on the domain's ports
//! only, so the NATS transport reaches Redis through the `LargeMessageStore` port.

mod connection;
mod journal;
mod large_messages;
mod lease;
mod ledger;
mod registry;
mod safeguards;

pub use connection::{DEFAULT_COMMAND_TIMEOUT, RedisConnection, RedisError};
pub use journal::{JOURNAL_QUEUE, RedisJournal};
pub use large_messages::RedisLargeMessageStore;
pub use lease::RedisLease;
pub use ledger::{LEDGER_TTL, MARK_RETRIES, RedisSmsLedger, retry};
pub use registry::{REGISTRY_TTL_SECS, RedisRegistry};
pub use safeguards::RedisSafeguards;

/// The prefix of the keys the monitor keeps for itself, e.g. `production-dispatch-monitor:`.
pub fn own_prefix(env_name: &str) -> String {
    format!("{env_name}-dispatch-monitor:")
}
