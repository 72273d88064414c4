//! The simulator against a real `nats-server` (and `redis-server` for large messages), asked
//! through the monitor's own NATS client.

mod bridges;
