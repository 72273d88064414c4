//! The NATS ports against a real `nats-server`, one binary: request/reply, large messages
//! through a real Redis, and RPC metrics.

#[allow(dead_code)]
mod cluster;
mod common;
mod large_messages;
mod nats_rpc;
mod rpc_metrics;
