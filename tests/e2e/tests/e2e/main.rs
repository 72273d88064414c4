//! End-to-end tests, one binary: the monitor's production wiring against real servers.

mod adding_a_vendor;
mod alert_rules;
mod corrupt_redis;
mod dashboard;
mod default_day;
mod faults;
mod ha;
mod monitor_e2e;
mod operator_api;
mod partitions;
mod quiet_hours;
mod safeguards;
mod tech_changes;
