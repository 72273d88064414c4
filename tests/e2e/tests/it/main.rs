//! End-to-end tests, one binary: the monitor's production wiring against real servers.

mod monitor_e2e;
