//! The domain's NATS-backed ports, on `async-nats`: the request/reply envelope every bridge
//! service speaks, with large messages passed through a store (SPEC §3), and the adapters that
//! fetch vendor dispatch lists, read and append Bruin ticket notes, and send SMS, Slack alerts
//! and emails. [`NatsClient`] owns the connection; it reconnects by itself, and a request that
//! cannot be answered (timeout, no responder, connection down or lost, unparseable reply) counts
//! as status 503 and is logged with its subject, request id and elapsed time.
//!
//! This crate must not depend on Redis (`fred`, `infra-redis`): large messages go through the
//! domain's `LargeMessageStore` port. It does not read vendor JSON either: a dispatch list is
//! returned unchecked for the vendor adapters.

mod adapters;
mod client;
mod rpc;

pub mod subjects;

/// The decoders of what other services send, for the fuzz targets (`fuzz/`, docs/fuzzing.md):
/// not part of the crate's API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::adapters::parse_ticket_notes;
    pub use crate::rpc::{parse_reply, stored_reply_token};
}

pub use adapters::{NatsDispatchSource, NatsNotifier, NatsTicketRepository};
pub use client::{ConnectionState, DEFAULT_REQUEST_TIMEOUT, NatsClient, NatsError};
pub use rpc::{LARGE_MESSAGE_THRESHOLD, LARGE_MESSAGE_TTL, RawReply, Reply, RpcFailure};
