//! The Redis ports against a real `redis-server`, one binary.

mod redis_ports;
