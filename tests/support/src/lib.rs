//! Test helpers shared by the workspace's tests: the fixtures, arbitrary JSON for
//! property tests, the contract every vendor adapter keeps ([`adapter`]), real `nats-server`
//! and `redis-server` processes started on free loopback ports ([`servers`]) and highly
//! available topologies of them ([`ha`]), a network namespace to partition a process in
//! ([`netns`]), and raw Redis and HTTP requests ([`wire`]).
//!
//! Only tests depend on this crate; it must never become a dependency of production code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod adapter;
pub mod arbitrary;
pub mod fixtures;
pub mod ha;
pub mod netns;
pub mod servers;
#[cfg(test)]
mod standalone;
pub mod wire;
