//! The Redis ports against a real `redis-server`, one binary.

mod corrupt;
mod ha;
mod journal;
mod redis_ports;
mod safeguards;
