//! The binary's tests, one test binary: the command line, and the service against real
//! `nats-server` and `redis-server` with simulated bridges.

mod cli;
mod service_real;
