//! The Redis ports against a real `redis-server`, one binary.

mod journal;
mod redis_ports;
